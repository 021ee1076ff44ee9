/// How suppressions are matched against stacks, following valgrind (coregrind/m_errormgr.c) and
/// LeakSanitizer (sanitizer_common's suppression templates).
///
/// valgrind:
/// - The location lines are matched against the stack from frame 0 outwards, and only need to
///   match a prefix of it. `...` matches zero or more frames.
/// - `fun:` is matched against the function's mangled name (valgrind never demangles for
///   matching), `obj:` against the object's path (memcheck's, symbolic links resolved, or the
///   one the dynamic loader used), `src:` against the source file's name (and
///   line, when given). A name valgrind does not know is `???` (so `fun:*` matches it).
/// - `*` matches any run of characters (`/` included), `?` exactly one; the whole name must match.
/// - Inlined calls are frames of their own; their object is that of the function they are in.
///   memcheck names them by the function's plain DW_AT_name (`push_back`), which `fun:` lines
///   match as well as the mangled name.
///
/// heapgate's stacks differ from memcheck's at the bottom, and both forms are tried:
/// - Frame 0 is `malloc` (or another entry point) in libheapgate.so, where memcheck has it in its
///   preload object, vgpreload_memcheck-ARCH-linux.so: `obj:` lines for that object match
///   heapgate's frame 0. Allocators memcheck reports under another name (valgrind 3.19 reports
///   `aligned_alloc` and `valloc` as `memalign`, `realloc(NULL, n)` as `malloc`) match that
///   name too.
/// - heapgate does not intercept C++'s `operator new`: libstdc++'s `operator new` calls `malloc`.
///   memcheck replaces `operator new`, so its frame 0 is `operator new` and there is no `malloc`.
///   When frame 1 is an `operator new`/`new[]`, the stack is also tried without frame 0, with
///   `operator new` in vgpreload as frame 0. `_Znwm` and `_Znam` match each other there, because
///   libstdc++'s `operator new[]` tail-calls `operator new` and so never shows up in a stack.
/// - glibc's start-up functions below `main` are also `(below main)`, as valgrind names them.
/// - A thread's first frame, `clone3`, is also `clone`: memcheck refuses clone3, and glibc falls
///   back to clone under it.
/// - memcheck wraps `setenv`: its view has the wrapper's frame above glibc's `__add_to_environ`
///   (`insertSetenvWrapper`).
/// - memcheck's (3.19) `posix_memalign` calls its `memalign`: its view of a `posix_memalign`
///   block has `memalign` as frame 0 and `posix_memalign` under it, both in its preload object.
enum SuppressionMatcher {
    /// A frame under the names valgrind could know it by.
    ///
    /// A class: every record is tried against every suppression, and a struct's arrays and
    /// strings were each retained and released wherever a frame was passed on (a report of
    /// 55,000 records spent a fifth of its time there).
    final class Frame {
        /// Candidates for `fun:`; the first is the name `--gen-suppressions` would print.
        var functions: [String]
        /// Candidates for `obj:`; the first is the real object.
        var objects: [String]
        /// The source file as memcheck shows it, and its path.
        let file: String?
        let path: String?
        let line: Int?
        /// Whether the symbolizer knew the function (else `functions[0]` is `???`).
        let hasName: Bool
        let hasObject: Bool

        init(functions: [String], objects: [String], file: String?, path: String? = nil, line: Int?, hasName: Bool,
             hasObject: Bool) {
            self.functions = functions
            self.objects = objects
            self.file = file
            self.path = path
            self.line = line
            self.hasName = hasName
            self.hasObject = hasObject
        }
    }

    /// A stack with the frame lists valgrind suppressions are tried against.
    struct Stack {
        var frames: [SuppressionFrame]
        /// heapgate's own view first, then memcheck's when it differs.
        var views: [[Frame]]

        init(_ frames: [SuppressionFrame]) {
            self.frames = frames
            self.views = SuppressionMatcher.views(of: frames)
        }

        /// The frames `--gen-suppressions` prints: memcheck's view when there is one.
        var valgrindView: [Frame] { views.last ?? [] }
    }

    // MARK: Views

    /// How a view's frame is made from the stack's frames. A recipe names the frame as well:
    /// `SuppressionMatching` remembers what each suppression line said of it.
    enum FrameRecipe: Hashable {
        case plain(SuppressionFrame)
        /// heapgate's frame 0, an entry point of libheapgate.so: also memcheck's preload object
        /// and the names memcheck reports the entry point under.
        case allocatorEntry(SuppressionFrame)
        /// memcheck's frame 0 where heapgate's frame 1 (this one) is an `operator new`: also
        /// the other of new/new[], in memcheck's preload object.
        case operatorNewEntry(SuppressionFrame)
        /// A function of memcheck's preload object that heapgate's stack has no frame for: its
        /// wrapper of `setenv`, its `memalign` above its `posix_memalign`.
        case memcheckOwn(String)
    }

    static func views(of frames: [SuppressionFrame]) -> [[Frame]] {
        viewRecipes(of: frames).map { $0.map(frame) }
    }

    /// heapgate's own view first, then memcheck's when it differs.
    static func viewRecipes(of frames: [SuppressionFrame]) -> [[FrameRecipe]] {
        var raw = frames.map(FrameRecipe.plain)
        guard let first = frames.first, isHeapgateAllocator(first) else { return [raw] }
        raw[0] = .allocatorEntry(first)
        var memcheck = raw
        var differs = false
        if frames.count > 1, operatorNewCounterpart(of: primaryName(frames[1])) != nil {
            memcheck = Array(raw.dropFirst())
            memcheck[0] = .operatorNewEntry(frames[1])
            differs = true
        }
        differs = insertSetenvWrapper(&memcheck, frames: Array(frames.suffix(memcheck.count))) || differs
        // Last, since it adds a frame the stack does not have. Swift's swift_slowAlloc calls
        // posix_memalign for an explicit alignment (KeyPath objects, UnsafeMutableRawPointer
        // .allocate): memcheck's suppressions for those blocks start `fun:memalign`.
        if primaryName(first) == "posix_memalign" {
            memcheck.insert(.memcheckOwn("memalign"), at: 0)
            differs = true
        }
        return differs ? [raw, memcheck] : [raw]
    }

    /// memcheck wraps `setenv` (its preload object checks the strings), and glibc's `setenv`
    /// tail-calls `__add_to_environ`, so where heapgate's stack has `__add_to_environ` called
    /// straight from outside libc (readline setting LINES and COLUMNS, git its environment),
    /// memcheck's has its wrapper, `setenv`, in between. Returns whether it inserted it.
    static func insertSetenvWrapper(_ view: inout [FrameRecipe], frames: [SuppressionFrame]) -> Bool {
        guard let index = frames.indices.dropLast().first(where: { isAddToEnviron(frames[$0]) }),
              let libc = frames[index].object, frames[index + 1].object != libc else { return false }
        view.insert(.memcheckOwn("setenv"), at: index + 1)
        return true
    }

    /// Whether one of the frame's names for `fun:` is `__add_to_environ` (see `frame`).
    private static func isAddToEnviron(_ frame: SuppressionFrame) -> Bool {
        frame.inlinedName == "__add_to_environ" || (frame.linkageName ?? frame.function) == "__add_to_environ"
    }

    /// The first of the frame's names for `fun:` (see `frame`).
    private static func primaryName(_ frame: SuppressionFrame) -> String {
        frame.inlinedName ?? frame.linkageName ?? frame.function ?? "???"
    }

    static func frame(_ recipe: FrameRecipe) -> Frame {
        switch recipe {
        case .plain(let source):
            return frame(source)
        case .allocatorEntry(let source):
            let made = frame(source)
            made.objects += valgrindPreloadObjects
            made.functions += allocatorAliases[made.functions[0]] ?? []
            return made
        case .operatorNewEntry(let source):
            let made = frame(source)
            made.functions += operatorNewCounterpart(of: made.functions[0]).map { [$0] } ?? []
            made.objects += valgrindPreloadObjects
            return made
        case .memcheckOwn(let function):
            return Frame(functions: [function], objects: valgrindPreloadObjects, file: nil, line: nil,
                         hasName: true, hasObject: true)
        }
    }

    static func frame(_ frame: SuppressionFrame) -> Frame {
        let name = frame.linkageName ?? frame.function
        // An inlined frame under memcheck's name first: the one --gen-suppressions prints.
        var functions = (frame.inlinedName.map { [$0] } ?? []) + [name ?? "???"]
        if let name, isBelowMain(name) || frame.function.map(isBelowMain) == true, name != belowMain {
            functions.append(belowMain)
        }
        // memcheck refuses clone3, so under it glibc starts every thread with clone: the first
        // frame of a thread's stack is `clone` there where it is `clone3` here (the name
        // memcheck would give glibc's clone3, of its three: SymbolIndex.memcheckName).
        if name == "clone3" { functions.append("clone") }
        return Frame(
            functions: functions, objects: [frame.object ?? "???"] + frame.objectAliases, file: frame.file, path: frame.path,
            line: frame.line, hasName: name != nil, hasObject: frame.object != nil)
    }

    /// True for frame 0 of a heapgate stack: an entry point of libheapgate.so.
    static func isHeapgateAllocator(_ frame: SuppressionFrame) -> Bool {
        frame.object.map(ModuleImage.isShim) ?? false
    }

    /// Where distributions install memcheck's preload object.
    static let valgrindPreloadObjects: [String] = {
        #if arch(arm64)
        let platform = "arm64-linux"
        #elseif arch(i386)
        let platform = "x86-linux"
        #else
        let platform = "amd64-linux"
        #endif
        return ["/usr/libexec/valgrind", "/usr/lib/x86_64-linux-gnu/valgrind", "/usr/lib/valgrind",
                "/usr/local/libexec/valgrind", "/usr/local/lib/valgrind"]
            .map { "\($0)/vgpreload_memcheck-\(platform).so" }
    }()

    /// Names memcheck (3.19) reports heapgate's entry points under. Its `realloc` hands a null
    /// pointer on to its `malloc`, so a block from `realloc(NULL, n)` has `malloc` as frame 0
    /// there; heapgate's report no longer knows which of its `realloc`'s blocks came from a
    /// null pointer, so `fun:malloc` matches any of them (the rest of the stack still has to).
    /// memcheck does not replace `reallocarray`: glibc's calls memcheck's `realloc`, which a
    /// null pointer takes on to `malloc` (`sort`, `sed` and `ls` allocate that way).
    static let allocatorAliases: [String: [String]] = [
        "aligned_alloc": ["memalign"],
        "valloc": ["memalign"],
        "pvalloc": ["memalign"],
        "realloc": ["malloc"],
        "reallocarray": ["malloc", "realloc"],
    ]

    /// For a C++ allocation function's mangled name (`_Znwm`, `_ZnamRKSt9nothrow_t`, …), the same
    /// function for the other of new/new[]; nil for any other name.
    static func operatorNewCounterpart(of name: String) -> String? {
        if name.hasPrefix("_Znw") { return "_Zna" + name.dropFirst(4) }
        if name.hasPrefix("_Zna") { return "_Znw" + name.dropFirst(4) }
        if name.hasPrefix("operator new[]") { return "operator new" + name.dropFirst("operator new[]".count) }
        if name.hasPrefix("operator new") { return "operator new[]" + name.dropFirst("operator new".count) }
        return nil
    }

    static let belowMain = "(below main)"

    /// glibc's functions that call `main`, which memcheck calls "(below main)".
    static func isBelowMain(_ name: String) -> Bool {
        name == "__libc_start_main" || name.hasPrefix("__libc_start_main@") || name == "__libc_start_main_impl"
            || name == "__libc_start_call_main" || name == "generic_start_main" || name.hasPrefix("generic_start_main.")
    }

    // MARK: valgrind

    /// Whether `patterns` match a prefix of `frames` (valgrind's VG_(generic_match) with
    /// matchAll = False, `...` as the star).
    ///
    /// Lines that match any frame (`obj:*`, `fun:*`, `...`) also match past the end of the
    /// stack: memcheck's unwinder goes on below a thread's first frame into whatever the stack
    /// holds (`0x1: ???` after ld.so's `_dl_start_user` when a library's constructor
    /// allocates), and its --gen-suppressions writes those frames as `obj:*`; heapgate's
    /// stack ends at the first frame.
    ///
    /// Lines and frames are given by number: `line(p)` is line p, and `lineMatchesFrame(p, f)`
    /// says whether line p, not `...`, matches frame f (`SuppressionMatching` answers from what
    /// it kept).
    static func matches(lines count: Int, frames frameCount: Int, line: (Int) -> SuppressionPattern,
                        lineMatchesFrame: (Int, Int) -> Bool) -> Bool {
        // Up to the first `...`, line p can only be frame p: compared one to one, without the
        // table below. Most suppressions part from a stack there (every record is tried
        // against every suppression), and allocating the table was most of their cost.
        var start = 0
        while start < count, line(start) != .anyFrames {
            if start == frameCount { return (start..<count).allSatisfy { matchesAnyFrame(line($0)) } }
            if !lineMatchesFrame(start, start) { return false }
            start += 1
        }
        if start == count { return true }
        // One `...` and lines after it (the usual form): where those lines start is the only
        // choice, so each start is tried in turn, without the table either.
        let rest = start + 1
        if !(rest..<count).contains(where: { line($0) == .anyFrames }) {
            return (start...frameCount).contains { first in
                // Lines rest... against frames first..., one to one; lines that match any
                // frame also match past the stack's end.
                var frame = first
                for p in rest..<count {
                    if frame == frameCount {
                        if !matchesAnyFrame(line(p)) { return false }
                        continue
                    }
                    if !lineMatchesFrame(p, frame) { return false }
                    frame += 1
                }
                return true
            }
        }
        let columns = frameCount + 1
        // memo[p * columns + f]: 0 unknown, 1 match, 2 no match.
        var memo = [UInt8](repeating: 0, count: (count + 1) * columns)
        func match(_ p: Int, _ f: Int) -> Bool {
            if p == count { return true }
            if f == frameCount, (p..<count).allSatisfy({ matchesAnyFrame(line($0)) }) { return true }
            let key = p * columns + f
            if memo[key] != 0 { return memo[key] == 1 }
            let result: Bool
            if case .anyFrames = line(p) {
                result = match(p + 1, f) || (f < frameCount && match(p, f + 1))
            } else {
                result = f < frameCount && lineMatchesFrame(p, f) && match(p + 1, f + 1)
            }
            memo[key] = result ? 1 : 2
            return result
        }
        return match(start, start)
    }

    /// `obj:*`, `fun:*` and `...`.
    static func matchesAnyFrame(_ pattern: SuppressionPattern) -> Bool {
        switch pattern {
        case .anyFrames: return true
        case .function(let text), .object(let text): return !text.isEmpty && text.allSatisfy { $0 == "*" }
        case .source: return false
        }
    }

    static func frameMatches(_ pattern: SuppressionPattern, _ frame: Frame) -> Bool {
        switch pattern {
        case .function(let pattern):
            return frame.functions.contains { wildcardMatch(pattern, $0) }
        case .object(let pattern):
            return frame.objects.contains { wildcardMatch(pattern, $0) }
        case .source(let pattern, let line):
            guard let file = frame.file else { return false }
            // valgrind compares the name it shows, as the line table records it (`main.c`,
            // or clang's `sub/main.c`). Also tried, as heapgate did before it showed that
            // name: the base name, and for a pattern with a '/' the whole path.
            let path = frame.path ?? file
            let nameMatches = wildcardMatch(pattern, file) || wildcardMatch(pattern, fileName(of: path))
                || (pattern.contains("/") && wildcardMatch(pattern, path))
            return nameMatches && (line == nil || line == frame.line)
        case .anyFrames:
            return true
        }
    }

    /// valgrind's VG_(string_match): `*` any run of bytes, `?` one byte, the whole text must match.
    static func wildcardMatch(_ pattern: String, _ text: String) -> Bool {
        // Like valgrind, compare patterns without wildcards directly.
        if !pattern.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) { return pattern == text }
        return withUTF8(pattern) { p in withUTF8(text) { t in globMatch(p, t, questionMarkIsWildcard: true) } }
    }

    /// Calls `body` with the string's UTF-8 bytes, without copying when they are contiguous.
    static func withUTF8<R>(_ string: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(string.utf8).withUnsafeBufferPointer(body)
    }

    /// Iterative glob match with backtracking to the last `*`: O(pattern × text) at worst.
    static func globMatch<P: RandomAccessCollection<UInt8>, T: RandomAccessCollection<UInt8>>(
        _ pattern: P, _ text: T, questionMarkIsWildcard: Bool
    ) -> Bool where P.Index == Int, T.Index == Int {
        let star = UInt8(ascii: "*"), query = UInt8(ascii: "?")
        let pEnd = pattern.endIndex, tEnd = text.endIndex
        var p = pattern.startIndex, t = text.startIndex
        var starAt = -1, starText = 0
        while t < tEnd {
            if p < pEnd, pattern[p] == star {
                starAt = p
                starText = t
                p += 1
            } else if p < pEnd, pattern[p] == text[t] || (questionMarkIsWildcard && pattern[p] == query) {
                p += 1
                t += 1
            } else if starAt >= 0 {
                p = starAt + 1
                starText += 1
                t = starText
            } else {
                return false
            }
        }
        while p < pEnd, pattern[p] == star { p += 1 }
        return p == pEnd
    }

    // MARK: LeakSanitizer

    /// LeakSanitizer: the pattern matches if it matches any frame's module path, function name
    /// (demangled) or source file (its path, as LeakSanitizer's symbolizer gives it; also the
    /// name memcheck shows and the base name). A pattern is a substring with `*` wildcards;
    /// `^` at the start and `$` at the end anchor it. `?` is not a wildcard.
    static func leakSanitizerMatches(_ pattern: String, _ frames: [SuppressionFrame]) -> Bool {
        var bytes = Array(pattern.utf8)
        let star = UInt8(ascii: "*")
        if bytes.first == UInt8(ascii: "^") { bytes.removeFirst() } else { bytes.insert(star, at: 0) }
        if bytes.last == UInt8(ascii: "$") { bytes.removeLast() } else { bytes.append(star) }
        func matches(_ text: String?) -> Bool {
            guard let text, !text.isEmpty else { return false }
            return withUTF8(text) { globMatch(bytes, $0, questionMarkIsWildcard: false) }
        }
        return frames.contains { frame in
            matches(frame.object) || frame.objectAliases.contains(where: matches)
                || matches(frame.function ?? frame.linkageName) || matches(frame.file) || matches(frame.path)
                || matches(frame.path.map { fileName(of: $0) })
        }
    }
}
