/// One level of a symbolized call stack.
public struct SourceFrame: Equatable, Sendable {
    /// Demangled function name; nil when neither DWARF nor the symbol table knows the address.
    public var function: String?
    /// The raw name `function` was demangled from (DW_AT_linkage_name / DW_AT_MIPS_linkage_name, or
    /// the ELF symbol), as valgrind matches `fun:` suppression lines against it. For C functions,
    /// which have no mangled form, the plain symbol name. Nil when the function is unknown, or when
    /// DWARF gives only a plain `DW_AT_name` and no symbol covers the address.
    public var linkageName: String?
    /// Source file path: the line table's name joined with its directory, made absolute with
    /// the unit's compile directory when it has one.
    public var file: String?
    /// The source file's name as the line table records it, which memcheck shows: `main.c`
    /// (gcc files it under its directory), `sub/main.c` (clang's DWARF 5 keeps the path it was
    /// given), `library/alloc/src/raw_vec/mod.rs`, or an absolute path. Nil when the table
    /// could not be read: `shownFile` is then the base name.
    public var fileName: String?
    public var line: Int?
    /// True when `function` was inlined at this point, i.e. the frame has no machine-level
    /// counterpart: its code sits inside the next (outer) frame's function.
    public var isInlined: Bool
    /// For an inlined frame of C++, Rust or Swift: the plain DW_AT_name of the inlined function
    /// (`push_back`), which memcheck names inlined frames by, in reports and in the `fun:`
    /// lines it generates. Nil when it is `linkageName`.
    public var inlinedName: String?

    public init(function: String?, file: String?, line: Int?, isInlined: Bool, linkageName: String? = nil,
                inlinedName: String? = nil, fileName: String? = nil) {
        self.function = function
        self.linkageName = linkageName
        self.file = file
        self.fileName = file == nil ? nil : fileName
        self.line = line
        self.isInlined = isInlined
        self.inlinedName = inlinedName
    }

    /// The source file as memcheck shows it: the recorded name, else the base name.
    public var shownFile: String? {
        fileName ?? file.map { HeapGate.fileName(of: $0) }
    }

    /// The directory `shownFile` is in, for the XML report's `<dir>`: `file` without the
    /// shown name. For an absolute name, its own directory (memcheck gives the directory
    /// entry the compiler filed it under, which `<file>` makes irrelevant).
    public var directory: String? {
        guard let file, let shown = shownFile else { return nil }
        let tail = ("/" + shown).utf8
        if !shown.hasPrefix("/"), file.utf8.count >= tail.count, file.utf8.suffix(tail.count).elementsEqual(tail) {
            // Cut at the "/" byte: a character boundary.
            let directory = String(file[..<file.utf8.index(file.utf8.endIndex, offsetBy: -tail.count)])
            return directory.isEmpty ? "/" : directory
        }
        return directoryName(of: file)
    }

    /// Compares what a report shows: `linkageName`, which comes from the same symbol as
    /// `function`, is left out, so frames written without it still compare equal; the file
    /// by its path and by the name shown (a frame written without `fileName` shows the base
    /// name).
    public static func == (a: SourceFrame, b: SourceFrame) -> Bool {
        a.function == b.function && a.file == b.file && a.shownFile == b.shownFile && a.line == b.line
            && a.isInlined == b.isInlined
    }
}
