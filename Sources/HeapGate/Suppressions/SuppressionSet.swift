/// The suppressions in force: any number of files, valgrind's and LeakSanitizer's mixed, tried in
/// the order they were added.
public struct SuppressionSet: Equatable, Sendable {
    public var suppressions: [Suppression]
    /// Like valgrind's `--num-callers`: location lines beyond this many are ignored (valgrind stops
    /// reading a suppression there), so a suppression written for deeper stacks still matches.
    /// Nil: every line counts.
    public var numCallers: Int?

    public init(_ suppressions: [Suppression] = [], numCallers: Int? = nil) {
        self.suppressions = suppressions
        self.numCallers = numCallers
    }

    /// Parses one file's text; see `SuppressionParser.parse`.
    public static func parse(_ text: String, file: String, format: Suppression.Format? = nil) throws -> SuppressionSet {
        SuppressionSet(try SuppressionParser.parse(text, file: file, format: format))
    }

    /// Reads suppression files, in order. Throws `SuppressionFileError` for the first bad one.
    public static func load(paths: [String]) throws -> SuppressionSet {
        SuppressionSet(try paths.flatMap { try SuppressionParser.load(path: $0) })
    }

    public mutating func append(contentsOf other: SuppressionSet) {
        suppressions += other.suppressions
    }

    /// The first suppression that hides a leak of `kind` allocated at `frames` (frame 0 = the
    /// allocator entry point, then its callers, inlined calls included), or nil.
    public func firstMatch(frames: [SuppressionFrame], kind: LeakKind) -> Suppression? {
        SuppressionMatching(self).firstMatch(frames: frames, kind: kind)
    }
}
