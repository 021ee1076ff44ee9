#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The suppression `valgrind --gen-suppressions=all` prints for a leak of `kind` allocated at
/// `frames`, as memcheck would see the stack (see `SuppressionMatcher`: heapgate's `malloc`
/// under C++'s `operator new` is left out):
///
///     {
///        <insert_a_suppression_name_here>
///        Memcheck:Leak
///        match-leak-kinds: definite
///        fun:malloc
///        fun:make_widget
///        fun:main
///     }
///
/// Frames are `fun:` with the mangled name, `obj:` with the object's path when the function is
/// unknown, `obj:*` when both are; at most `maxFrames` of them, and none after `main` or
/// the first `(below main)`. `name` is printed as given
/// (newlines become spaces; empty means valgrind's placeholder; `{`, `}` and names starting with
/// `#` are put in angle brackets, or they would not read back). No trailing newline.
public func valgrindSuppression(for frames: [SuppressionFrame], kind: LeakKind,
                                name: String = "<insert_a_suppression_name_here>", maxFrames: Int = 24) -> String {
    var cleanName = name.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingWhitespace()
    if cleanName.isEmpty { cleanName = "<insert_a_suppression_name_here>" }
    // A name line that reads as a brace or a comment would not parse back.
    if cleanName == "{" || cleanName == "}" || cleanName.hasPrefix("#") { cleanName = "<\(cleanName)>" }
    var lines = ["{", "   " + cleanName, "   Memcheck:Leak", "   match-leak-kinds: \(kind.rawValue)"]
    let view = SuppressionMatcher.Stack(frames).valgrindView
    for frame in view.prefix(max(maxFrames, 1)) {
        if frame.hasName {
            let isBelowMain = frame.functions.contains(SuppressionMatcher.belowMain)
            lines.append("   fun:" + (isBelowMain ? SuppressionMatcher.belowMain : frame.functions[0]))
            // memcheck's stacks end at `main` or, without it, at the first start-up function
            // (--show-below-main=no), and so do its suppressions: glibc's two start-up frames
            // and _start are not two `(below main)` lines and an `obj:`.
            if isBelowMain || frame.functions[0] == "main" { break }
        } else if frame.hasObject {
            lines.append("   obj:" + frame.objects[0])
        } else {
            lines.append("   obj:*")
        }
    }
    if view.isEmpty { lines.append("   obj:*") }
    lines.append("}")
    return lines.joined(separator: "\n")
}
