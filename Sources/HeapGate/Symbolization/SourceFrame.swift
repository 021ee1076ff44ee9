/// One level of a symbolized call stack.
public struct SourceFrame: Equatable, Sendable {
    /// Demangled function name; nil when neither DWARF nor the symbol table knows the address.
    public var function: String?
    /// The raw name `function` was demangled from (DW_AT_linkage_name / DW_AT_MIPS_linkage_name, or
    /// the ELF symbol), as valgrind matches `fun:` suppression lines against it. For C functions,
    /// which have no mangled form, the plain symbol name. Nil when the function is unknown, or when
    /// DWARF gives only a plain `DW_AT_name` and no symbol covers the address.
    public var linkageName: String?
    /// Source file path as recorded in DWARF (usually absolute); callers derive the basename.
    public var file: String?
    public var line: Int?
    /// True when `function` was inlined at this point, i.e. the frame has no machine-level
    /// counterpart: its code sits inside the next (outer) frame's function.
    public var isInlined: Bool
    /// For an inlined frame of C++, Rust or Swift: the plain DW_AT_name of the inlined function
    /// (`push_back`), which memcheck names inlined frames by, in reports and in the `fun:`
    /// lines it generates. Nil when it is `linkageName`.
    public var inlinedName: String?

    public init(function: String?, file: String?, line: Int?, isInlined: Bool, linkageName: String? = nil,
                inlinedName: String? = nil) {
        self.function = function
        self.linkageName = linkageName
        self.file = file
        self.line = line
        self.isInlined = isInlined
        self.inlinedName = inlinedName
    }

    /// Compares what a report shows: `linkageName`, which comes from the same symbol as
    /// `function`, is left out, so frames written without it still compare equal.
    public static func == (a: SourceFrame, b: SourceFrame) -> Bool {
        a.function == b.function && a.file == b.file && a.line == b.line && a.isInlined == b.isInlined
    }
}
