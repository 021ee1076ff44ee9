import CLibdw

/// The file names of one line table exactly as the compiler wrote them, before any directory
/// is joined to them: `main.c`, `sub/main.c`, `library/alloc/src/raw_vec/mod.rs`, or an absolute
/// path. memcheck shows a frame's source file by this name (`leaf (sub/main.c:4)` for
/// `clang -gdwarf-5 sub/main.c`, `leaf (main.c:4)` for gcc, which files it under directory
/// `sub`), and matches `src:` suppression lines against it.
///
/// Why read the header here: libdw 0.188 gives a file only joined with its directory
/// (`dwarf_filesrc`, `dwarf_linesrc`) and does not say which directory. Taking off the longest
/// directory of the table that prefixes the joined path is wrong in a common case: clang
/// names a main file given by absolute path (as CMake gives it) absolutely, and a local
/// header puts that file's own directory into the table, so the prefix rule turned
/// `/src/main.c` into `main.c`, where memcheck shows `/src/main.c`.
///
/// Indexes are the ones DWARF's `DW_AT_call_file` and the line program use, which are
/// libdw's too: from 1 before DWARF 5 (index 0 is unused), from 0 in DWARF 5.
struct LineTableFileNames {
    /// By file index; nil where an entry's name could not be read (a string form that needs
    /// data from outside the line table, such as `DW_FORM_strx` or a dwz supplementary file).
    private(set) var names: [String?] = []

    /// The recorded name of file `index`, if the table has it.
    func name(_ index: Int) -> String? {
        index >= 0 && index < names.count ? names[index] : nil
    }

    /// The file names of the line table of `unit`: at its `DW_AT_stmt_list` in `.debug_line`,
    /// or, for a split unit (`-gsplit-dwarf`), the file table at the start of its
    /// `.debug_line.dwo`. Nil when the table cannot be read.
    init?(unit: inout Dwarf_Die) {
        guard let cu = unit.cu, let dwarf = dwarf_cu_getdwarf(cu), let elf = dwarf_getelf(dwarf) else { return nil }
        let sections = DebugSections(elf)
        var attribute = Dwarf_Attribute()
        var reader: ByteReader
        if dwarf_attr(&unit, UInt32(DW_AT_stmt_list), &attribute) != nil {
            var offset: Dwarf_Word = 0
            guard dwarf_formudata(&attribute, &offset) == 0, let lines = sections.bytes(".debug_line"),
                  offset < UInt64(lines.count) else { return nil }
            reader = ByteReader(lines, at: Int(offset))
        } else if let lines = sections.bytes(".debug_line.dwo") {
            reader = ByteReader(lines, at: 0)
        } else {
            return nil
        }
        guard let names = Self.fileNames(&reader, strings: sections) else { return nil }
        self.names = names
    }

    /// Reads a line-table header up to the end of its file table (DWARF 2 to 5).
    private static func fileNames(_ reader: inout ByteReader, strings: DebugSections) -> [String?]? {
        guard var length = reader.u32() else { return nil }
        var offsetSize = 4
        if length == 0xffff_ffff {
            guard let long = reader.u64(), long <= UInt64(UInt32.max) else { return nil }
            length = UInt32(long)
            offsetSize = 8
        }
        guard let version = reader.u16(), (2...5).contains(version) else { return nil }
        if version >= 5 { guard reader.skip(2) else { return nil } }  // address size, segment selector size
        guard reader.skip(offsetSize) else { return nil }  // header_length
        // minimum_instruction_length, maximum_operations_per_instruction (from DWARF 4),
        // default_is_stmt, line_base, line_range
        guard reader.skip(version >= 4 ? 5 : 4), let opcodeBase = reader.u8(), reader.skip(max(Int(opcodeBase) - 1, 0)) else {
            return nil
        }
        if version < 5 {
            // include_directories, then file_names, each ending with an empty string; file 0 unused.
            while let directory = reader.cString(), !directory.isEmpty {}
            var names: [String?] = [nil]
            while let name = reader.cString() {
                if name.isEmpty { return names }
                guard reader.uleb() != nil, reader.uleb() != nil, reader.uleb() != nil else { return nil }
                names.append(name)
            }
            return nil
        }
        // DWARF 5: the directory table, then the file table, each described by its own
        // list of (content type, form) pairs.
        guard entries(&reader, strings: strings, offsetSize: offsetSize) != nil,
              let files = entries(&reader, strings: strings, offsetSize: offsetSize) else { return nil }
        return files
    }

    /// One DWARF 5 entry table: the `DW_LNCT_path` of each entry.
    private static func entries(_ reader: inout ByteReader, strings: DebugSections, offsetSize: Int) -> [String?]? {
        guard let formatCount = reader.u8() else { return nil }
        var format: [(content: UInt64, form: UInt64)] = []
        for _ in 0..<formatCount {
            guard let content = reader.uleb(), let form = reader.uleb() else { return nil }
            format.append((content, form))
        }
        guard let count = reader.uleb(), count <= UInt64(reader.remaining) else { return nil }
        var paths: [String?] = []
        for _ in 0..<count {
            var path: String?
            for (content, form) in format {
                guard let value = reader.formValue(form, offsetSize: offsetSize) else { return nil }
                if content == UInt64(DW_LNCT_path) { path = value.string(strings) }
            }
            paths.append(path)
        }
        return paths
    }
}

/// The ELF sections a line table and its strings live in, found by name (each once).
private final class DebugSections {
    private let elf: OpaquePointer
    private var found: [String: UnsafeBufferPointer<UInt8>?] = [:]

    init(_ elf: OpaquePointer) { self.elf = elf }

    /// The section's bytes, as libdw left them: libdw decompresses the debug sections it
    /// reads in place, so a section still compressed is one it did not read (nil).
    func bytes(_ name: String) -> UnsafeBufferPointer<UInt8>? {
        if let known = found[name] { return known }
        let bytes = find(name)
        found[name] = .some(bytes)
        return bytes
    }

    private func find(_ name: String) -> UnsafeBufferPointer<UInt8>? {
        var namesIndex = 0
        guard elf_getshdrstrndx(elf, &namesIndex) == 0 else { return nil }
        var section = elf_nextscn(elf, nil)
        while let current = section {
            var header = GElf_Shdr()
            if gelf_getshdr(current, &header) != nil, let sectionName = elf_strptr(elf, namesIndex, Int(header.sh_name)),
               String(cString: sectionName) == name {
                guard header.sh_flags & UInt64(SHF_COMPRESSED) == 0, let data = elf_getdata(current, nil),
                      let start = data.pointee.d_buf else { return nil }
                return UnsafeBufferPointer(start: start.assumingMemoryBound(to: UInt8.self), count: data.pointee.d_size)
            }
            section = elf_nextscn(elf, current)
        }
        return nil
    }
}

/// A value read from a line-table entry: inline text, or an offset into a string section.
private enum FormValue {
    case inline(String)
    case offset(section: String, UInt64)
    case other

    func string(_ sections: DebugSections) -> String? {
        switch self {
        case .inline(let text): return text
        case .offset(let section, let offset):
            guard let bytes = sections.bytes(section), offset < UInt64(bytes.count) else { return nil }
            var reader = ByteReader(bytes, at: Int(offset))
            return reader.cString()
        case .other: return nil
        }
    }
}

/// Little-endian reads from a position in a section's bytes; every read is nil past their end.
/// The bytes are libelf's, read in place: a line table is read from the middle of a section
/// that may be megabytes long.
private struct ByteReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, remaining >= count else { return false }
        position += count
        return true
    }

    private mutating func unsigned(_ size: Int) -> UInt64? {
        guard remaining >= size else { return nil }
        var value: UInt64 = 0
        for shift in 0..<size { value |= UInt64(bytes[position + shift]) << (8 * shift) }
        position += size
        return value
    }

    mutating func u8() -> UInt8? { unsigned(1).map { UInt8($0) } }
    mutating func u16() -> UInt16? { unsigned(2).map { UInt16($0) } }
    mutating func u32() -> UInt32? { unsigned(4).map { UInt32($0) } }
    mutating func u64() -> UInt64? { unsigned(8) }

    mutating func uleb() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if shift < 64 { value |= UInt64(byte & 0x7f) << shift }
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    /// A NUL-terminated string (its bytes as UTF-8, invalid ones replaced).
    mutating func cString() -> String? {
        guard let end = bytes[position...].firstIndex(of: 0) else { return nil }
        let text = String(decoding: bytes[position..<end], as: UTF8.self)
        position = end + 1
        return text
    }

    /// Reads one attribute value of `form` (the forms DWARF 5 allows in line-table entries).
    mutating func formValue(_ form: UInt64, offsetSize: Int) -> FormValue? {
        switch Int(truncatingIfNeeded: form) {
        case DW_FORM_string: return cString().map(FormValue.inline)
        case DW_FORM_line_strp: return unsigned(offsetSize).map { .offset(section: ".debug_line_str", $0) }
        case DW_FORM_strp: return unsigned(offsetSize).map { .offset(section: ".debug_str", $0) }
        case DW_FORM_strp_sup, DW_FORM_GNU_strp_alt: return unsigned(offsetSize).map { _ in .other }
        case DW_FORM_udata, DW_FORM_strx: return uleb().map { _ in .other }
        case DW_FORM_data1, DW_FORM_strx1: return skip(1) ? .other : nil
        case DW_FORM_data2, DW_FORM_strx2: return skip(2) ? .other : nil
        case DW_FORM_strx3: return skip(3) ? .other : nil
        case DW_FORM_data4, DW_FORM_strx4: return skip(4) ? .other : nil
        case DW_FORM_data8: return skip(8) ? .other : nil
        case DW_FORM_data16: return skip(16) ? .other : nil
        case DW_FORM_block: return uleb().flatMap { length in length <= UInt64(Int.max) && skip(Int(length)) ? .other : nil }
        default: return nil
        }
    }
}
