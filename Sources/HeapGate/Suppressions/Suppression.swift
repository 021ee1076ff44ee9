/// One frame of an allocation stack, as suppressions see it: frame 0 is the allocator entry point
/// (in heapgate, `malloc` & co. in libheapgate.so), then its callers, outwards. Inlined calls are
/// frames of their own, innermost first, as `Symbolizer.symbolize` returns them: valgrind matches
/// suppressions against inlined frames too.
public struct SuppressionFrame: Equatable, Hashable, Sendable {
    /// The raw (mangled) name, which valgrind's `fun:` lines are matched against. For C functions,
    /// the symbol name.
    public var linkageName: String?
    /// The demangled name, which LeakSanitizer's `leak:` lines are matched against.
    public var function: String?
    /// For an inlined C++, Rust or Swift frame, the plain name memcheck gives it, which its
    /// `fun:` lines name it by (`SourceFrame.inlinedName`).
    public var inlinedName: String?
    /// Path of the object (executable or shared library) the code belongs to.
    public var object: String?
    /// Other paths of the same object (the one the dynamic loader used, through symbolic links).
    public var objectAliases: [String]
    /// Source file as memcheck shows it (`SourceFrame.shownFile`), which `src:` lines match.
    public var file: String?
    /// Source file path, which `src:` lines with a `/` are also tried against.
    public var path: String?
    public var line: Int?

    public init(linkageName: String? = nil, function: String? = nil, inlinedName: String? = nil, object: String? = nil,
                objectAliases: [String] = [], file: String? = nil, path: String? = nil, line: Int? = nil) {
        self.linkageName = linkageName
        self.function = function
        self.inlinedName = inlinedName
        self.object = object
        self.objectAliases = objectAliases
        self.file = file
        self.path = path
        self.line = line
    }

    /// A symbolized frame of the object at `object` (a module path).
    public init(_ source: SourceFrame, object: String?) {
        self.init(linkageName: source.linkageName, function: source.function, inlinedName: source.inlinedName, object: object,
                  file: source.shownFile, path: source.file, line: source.line)
    }
}

/// One location line of a valgrind suppression.
public enum SuppressionPattern: Equatable, Hashable, Sendable {
    /// `fun:PATTERN`: the function's mangled name, with `*` and `?` wildcards.
    case function(String)
    /// `obj:PATTERN`: the object's path, with `*` and `?` wildcards.
    case object(String)
    /// `src:FILE[:LINE]`: the source file's name (wildcards allowed) and, if given, the line.
    case source(file: String, line: Int?)
    /// `...`: zero or more frames.
    case anyFrames

    /// The line as it would be written in a suppression file.
    public var text: String {
        switch self {
        case .function(let pattern): return "fun:" + pattern
        case .object(let pattern): return "obj:" + pattern
        case .source(let file, let line): return "src:" + file + (line.map { ":\($0)" } ?? "")
        case .anyFrames: return "..."
        }
    }
}

/// One suppression read from a file: a valgrind block `{ … }`, or a LeakSanitizer `type:pattern`
/// line. Only valgrind `Memcheck:Leak` blocks and LeakSanitizer `leak:` lines can match a leak;
/// the others (`Memcheck:Addr4`, `Helgrind:Race`, `race:`, …) are kept but never match.
public struct Suppression: Equatable, Hashable, Sendable {
    public enum Format: String, Equatable, Hashable, Sendable {
        /// valgrind's `{ name / tool:kind / [extra] / frames }` blocks (`--suppressions=FILE`).
        case valgrind
        /// LeakSanitizer's `leak:pattern` lines (`LSAN_OPTIONS=suppressions=FILE`).
        case leakSanitizer
    }

    public var format: Format
    /// valgrind: the name line. LeakSanitizer: the whole line, such as `leak:libfoo.so`.
    public var name: String
    /// The file the suppression was read from, as given to the parser.
    public var file: String
    /// 1-based line of the name (valgrind, where `valgrind -v` says a used suppression is), or of
    /// the LeakSanitizer line.
    public var line: Int
    /// valgrind: the tools of the `tool1,tool2:kind` line. LeakSanitizer: empty.
    public var tools: [String]
    /// valgrind: the suppression kind, such as `Leak` or `Addr4`. LeakSanitizer: the type, such as `leak`.
    public var kind: String
    /// valgrind: the extra line some kinds have (`Memcheck:Param`'s syscall parameter,
    /// `Memcheck:FishyValue`'s `function(argument)`); nil otherwise.
    public var extraInfo: String?
    /// The leak kinds the suppression applies to: `match-leak-kinds:` for `Memcheck:Leak` (all
    /// when the line is absent), all for LeakSanitizer `leak:` lines, none for anything else.
    public var leakKinds: Set<LeakKind>
    /// valgrind: the location lines, innermost frame first. Empty for LeakSanitizer, and for the
    /// suppressions of other tools (valgrind skips their frames unread, and so does heapgate).
    public var frames: [SuppressionPattern]
    /// LeakSanitizer: the pattern after `type:`. Nil for valgrind.
    public var pattern: String?

    public init(format: Format, name: String, file: String, line: Int, tools: [String] = [], kind: String,
                extraInfo: String? = nil, leakKinds: Set<LeakKind>, frames: [SuppressionPattern] = [],
                pattern: String? = nil) {
        self.format = format
        self.name = name
        self.file = file
        self.line = line
        self.tools = tools
        self.kind = kind
        self.extraInfo = extraInfo
        self.leakKinds = leakKinds
        self.frames = frames
        self.pattern = pattern
    }

    /// True for valgrind `Memcheck:Leak` blocks and LeakSanitizer `leak:` lines.
    public var isLeakSuppression: Bool {
        switch format {
        case .valgrind: return kind == "Leak" && tools.contains("Memcheck")
        case .leakSanitizer: return kind == "leak"
        }
    }

    /// `FILE:LINE`, where `valgrind -v` says a used suppression is defined.
    public var location: String { "\(file):\(line)" }
}

/// A suppression file that cannot be used: which file, which line, and why. `description` is one
/// line, `FILE:LINE: REASON`, for the CLI to print before exiting with status 2.
public struct SuppressionFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based line of the problem; 0 when the file could not be read at all.
    public var line: Int
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String {
        line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)"
    }
}
