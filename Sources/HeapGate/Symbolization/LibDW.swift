import CLibdw
#if canImport(Glibc)
import Glibc
#endif

/// One thin Swift wrapper per C function used by `Symbolizer`.
enum LibDW {
    /// Wraps libc `unsetenv`.
    static func unsetenv(_ name: String) {
        _ = Glibc.unsetenv(name)
    }

    /// Wraps `dwfl_begin`: a new session using `callbacks`, which must outlive it.
    static func dwflBegin(_ callbacks: UnsafePointer<Dwfl_Callbacks>) -> OpaquePointer? {
        dwfl_begin(callbacks)
    }

    /// Wraps `dwfl_end`.
    static func dwflEnd(_ dwfl: OpaquePointer) {
        dwfl_end(dwfl)
    }

    /// Wraps `dwfl_report_elf(dwfl, path, path, -1, base, true)`: with `add_p_vaddr` true, `base` is the
    /// load bias for ET_DYN files (ignored for ET_EXEC). Nil if the file is missing or not ELF.
    static func dwflReportElf(_ dwfl: OpaquePointer, path: String, base: UInt64) -> OpaquePointer? {
        dwfl_report_elf(dwfl, path, path, -1, base, true)
    }

    /// Sets the module's userdata (`dwfl_module_info`'s first result), which libdwfl hands to
    /// the find callbacks.
    static func dwflSetUserData(_ module: OpaquePointer, _ value: UnsafeMutableRawPointer?) {
        var slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        _ = dwfl_module_info(module, &slot, nil, nil, nil, nil, nil, nil)
        slot?.pointee = value
    }

    /// The GNU build id of the ELF file open at `descriptor` (`dwelf_elf_gnu_build_id`).
    static func elfBuildID(_ descriptor: Int32) -> [UInt8]? {
        _ = elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(descriptor, ELF_C_READ_MMAP, nil) else { return nil }
        defer { elf_end(elf) }
        var bits: UnsafeRawPointer?
        let length = dwelf_elf_gnu_build_id(elf, &bits)
        guard length > 0, let bits else { return nil }
        return Array(UnsafeRawBufferPointer(start: bits, count: length))
    }

    /// Wraps `dwfl_report_end(dwfl, NULL, NULL)`; true on success.
    static func dwflReportEnd(_ dwfl: OpaquePointer) -> Bool {
        dwfl_report_end(dwfl, nil, nil) == 0
    }

    /// Wraps `dwfl_module_getsrc`: the line-table row covering `address`.
    static func dwflModuleGetSrc(_ module: OpaquePointer, _ address: UInt64) -> OpaquePointer? {
        dwfl_module_getsrc(module, address)
    }

    /// Wraps `dwfl_lineinfo`: source file and line of a line-table row, and, through
    /// `dwfl_linecu`, `dwfl_dwarf_line` and `dwarf_line_file`, the row's unit and file index
    /// (to find the name the line table records, `LineTableFileNames`).
    static func dwflLineInfo(_ line: OpaquePointer) -> SourceLocation? {
        var lineNumber: Int32 = 0
        guard let file = dwfl_lineinfo(line, nil, &lineNumber, nil, nil, nil) else { return nil }
        var bias: Dwarf_Addr = 0
        // Line 0 kept, as in dwarfGetSrcDie.
        return SourceLocation(
            path: absolute(String(cString: file), compDir: dwfl_line_comp_dir(line).map { String(cString: $0) }),
            line: lineNumber >= 0 ? Int(lineNumber) : nil,
            unit: dwfl_linecu(line)?.pointee, fileIndex: dwfl_dwarf_line(line, &bias).flatMap(fileIndex))
    }

    /// A line-table row's source: `path` joined with its directory and made absolute, `unit`
    /// and `fileIndex` where its name is recorded.
    struct SourceLocation {
        var path: String
        var line: Int?
        var unit: Dwarf_Die?
        var fileIndex: Int?
    }

    /// Wraps `dwarf_line_file`: the index of a row's file in its unit's file table.
    private static func fileIndex(_ row: OpaquePointer) -> Int? {
        var files: OpaquePointer?
        var index = 0
        return dwarf_line_file(row, &files, &index) == 0 ? index : nil
    }

    /// A line table's file name made absolute with the unit's compile directory, as memcheck
    /// shows it: a program compiled from a relative path (rustc, make) has relative directories
    /// there, and the XML report's `<dir>` (which tools join with `<file>` to open the source)
    /// was relative to a directory the reader could not know.
    static func absolute(_ file: String, compDir: String?) -> String {
        guard !file.hasPrefix("/"), let compDir, !compDir.isEmpty else { return file }
        return compDir.hasSuffix("/") ? compDir + file : compDir + "/" + file
    }

    /// The unit's `DW_AT_comp_dir`, if it has one.
    static func compDir(_ unit: inout Dwarf_Die) -> String? {
        var attribute = Dwarf_Attribute()
        guard dwarf_attr(&unit, UInt32(DW_AT_comp_dir), &attribute) != nil, let text = dwarf_formstring(&attribute) else { return nil }
        return String(cString: text)
    }

    /// Wraps `dwfl_module_addrinfo`: the ELF symbol (symtab, else dynsym) containing `address`.
    static func dwflModuleAddrInfo(_ module: OpaquePointer, _ address: UInt64) -> String? {
        var offset: GElf_Off = 0
        var symbol = GElf_Sym()
        return dwfl_module_addrinfo(module, address, &offset, &symbol, nil, nil, nil).map { String(cString: $0) }
    }

    /// Wraps `dwfl_module_getsymtab` and `dwfl_module_getsymtab_first_global`: the number of
    /// symbols (index 0 is the null symbol) and the index of the first non-local one (0 when
    /// the module has only .dynsym read through its program headers).
    static func dwflSymbolTable(_ module: OpaquePointer) -> (count: Int, firstGlobal: Int)? {
        let count = Int(dwfl_module_getsymtab(module))
        let firstGlobal = Int(dwfl_module_getsymtab_first_global(module))
        return count > 1 && firstGlobal >= 0 ? (count, firstGlobal) : nil
    }

    /// Wraps `dwfl_module_getsym_info`: symbol `index`, its address, and its name, which
    /// points into the module's string table and lives as long as the module's session.
    static func dwflSymbol(_ module: OpaquePointer, _ index: Int) -> (symbol: GElf_Sym, address: UInt64, name: UnsafePointer<CChar>)? {
        var symbol = GElf_Sym()
        var address: GElf_Addr = 0
        guard let name = dwfl_module_getsym_info(module, Int32(index), &symbol, &address, nil, nil, nil) else { return nil }
        return (symbol, address, name)
    }

    /// Wraps `dwfl_module_info`: the separate debug file libdw opened for the module, if any.
    static func dwflDebugFile(_ module: OpaquePointer) -> String? {
        var debugFile: UnsafePointer<CChar>?
        var mainFile: UnsafePointer<CChar>?
        _ = dwfl_module_info(module, nil, nil, nil, nil, nil, &mainFile, &debugFile)
        return debugFile.map { String(cString: $0) }
    }

    /// Wraps `dwfl_module_getelf`, `elf_getphdrnum` and `gelf_getphdr`: the module's file's
    /// `PT_LOAD` segments, in program-header order (nil when its ELF cannot be read).
    static func dwflLoadLayout(_ module: OpaquePointer) -> LoadLayout? {
        var bias: GElf_Addr = 0
        guard let elf = dwfl_module_getelf(module, &bias) else { return nil }
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else { return nil }
        var segments: [LoadLayout.Segment] = []
        for index in 0..<count {
            var header = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &header) != nil else { return nil }
            if header.p_type == UInt32(PT_LOAD) { segments.append(.init(address: header.p_vaddr, size: header.p_memsz)) }
        }
        return LoadLayout(segments)
    }

    /// Wraps `dwfl_module_build_id`: the module's GNU build id, if it has one.
    static func dwflBuildID(_ module: OpaquePointer) -> [UInt8]? {
        var bits: UnsafePointer<UInt8>?
        var address: GElf_Addr = 0
        let length = dwfl_module_build_id(module, &bits, &address)
        guard length > 0, let bits else { return nil }
        return Array(UnsafeBufferPointer(start: bits, count: Int(length)))
    }

    /// Wraps `dwfl_module_addrdie`: the compile unit DIE covering `address` and the bias to subtract
    /// from runtime addresses for libdw.
    static func dwflModuleAddrDie(_ module: OpaquePointer, _ address: UInt64) -> (UnsafeMutablePointer<Dwarf_Die>, UInt64)? {
        var bias: Dwarf_Addr = 0
        return dwfl_module_addrdie(module, address, &bias).map { ($0, bias) }
    }

    /// Wraps `dwfl_module_getdwarf`: the module's DWARF and the bias to subtract from addresses.
    static func dwflModuleGetDwarf(_ module: OpaquePointer) -> (OpaquePointer, UInt64)? {
        var bias: Dwarf_Addr = 0
        return dwfl_module_getdwarf(module, &bias).map { ($0, bias) }
    }

    /// Wraps `dwarf_cu_info`: for the skeleton unit of split DWARF (`-gsplit-dwarf`), the DIE
    /// of its split unit in the .dwo file, which holds the unit's functions and inlined calls
    /// (the skeleton has only the unit's ranges and line table). Nil for any other unit, or
    /// when the .dwo file was not found.
    static func splitUnit(of unit: inout Dwarf_Die) -> Dwarf_Die? {
        var unitType: UInt8 = 0
        var split = Dwarf_Die()
        guard dwarf_cu_info(unit.cu, nil, &unitType, nil, &split, nil, nil, nil) == 0,
              unitType == UInt8(DW_UT_skeleton), split.addr != nil else { return nil }
        return split
    }

    /// Wraps `dwarf_nextcu` and `dwarf_offdie`: the DIE of every compile unit.
    static func dwarfCompileUnits(_ dwarf: OpaquePointer) -> [Dwarf_Die] {
        var units: [Dwarf_Die] = []
        var offset: Dwarf_Off = 0, next: Dwarf_Off = 0
        var headerSize = 0
        while dwarf_nextcu(dwarf, offset, &next, &headerSize, nil, nil, nil) == 0 {
            var die = Dwarf_Die()
            if dwarf_offdie(dwarf, offset + Dwarf_Off(headerSize), &die) != nil { units.append(die) }
            offset = next
        }
        return units
    }

    /// Wraps `dwarf_getsrc_die`, `dwarf_linesrc` and `dwarf_lineno`: the line-table row of `pc`.
    /// Line 0 is kept: compilers give it to code no source line stands for (Swift's
    /// `__allocating_init`), and memcheck prints such a frame as `(file.swift:0)`.
    static func dwarfGetSrcDie(_ cu: inout Dwarf_Die, _ pc: UInt64) -> SourceLocation? {
        guard let row = dwarf_getsrc_die(&cu, pc), let file = dwarf_linesrc(row, nil, nil) else { return nil }
        var line: Int32 = 0
        let path = absolute(String(cString: file), compDir: compDir(&cu))
        let number = dwarf_lineno(row, &line) == 0 && line >= 0 ? Int(line) : nil
        return SourceLocation(path: path, line: number, unit: cu, fileIndex: fileIndex(row))
    }

    /// Wraps `dwarf_child`: the first child of `die`, if any.
    static func dwarfChild(_ die: inout Dwarf_Die) -> Dwarf_Die? {
        var child = Dwarf_Die()
        return dwarf_child(&die, &child) == 0 ? child : nil
    }

    /// Wraps `dwarf_siblingof`: the next sibling of `die`, if any.
    static func dwarfSibling(_ die: inout Dwarf_Die) -> Dwarf_Die? {
        var sibling = Dwarf_Die()
        return dwarf_siblingof(&die, &sibling) == 0 ? sibling : nil
    }

    /// Wraps `dwarf_ranges`: the DIE's address ranges, [start, end) each.
    static func dwarfRanges(_ die: inout Dwarf_Die) -> [(start: UInt64, end: UInt64)] {
        var ranges: [(start: UInt64, end: UInt64)] = []
        var base: Dwarf_Addr = 0, start: Dwarf_Addr = 0, end: Dwarf_Addr = 0
        var offset = dwarf_ranges(&die, 0, &base, &start, &end)
        while offset > 0 {
            if end > start { ranges.append((start, end)) }
            offset = dwarf_ranges(&die, offset, &base, &start, &end)
        }
        return ranges
    }

    /// Wraps `dwarf_haspc`: whether the DIE's address ranges contain `pc`.
    static func dwarfHasPC(_ die: inout Dwarf_Die, _ pc: UInt64) -> Bool {
        dwarf_haspc(&die, pc) == 1
    }

    /// Wraps `dwarf_tag`.
    static func dwarfTag(_ die: inout Dwarf_Die) -> Int32 {
        dwarf_tag(&die)
    }

    /// Wraps `dwarf_attr_integrate`: the attribute on `die` or on its abstract origin / specification.
    static func dwarfAttrIntegrate(_ die: inout Dwarf_Die, _ name: Int) -> Dwarf_Attribute? {
        var attribute = Dwarf_Attribute()
        return dwarf_attr_integrate(&die, UInt32(name), &attribute) != nil ? attribute : nil
    }

    /// Wraps `dwarf_formstring`.
    static func dwarfFormString(_ attribute: inout Dwarf_Attribute) -> String? {
        dwarf_formstring(&attribute).map { String(cString: $0) }
    }

    /// Wraps `dwarf_formudata`.
    static func dwarfFormUData(_ attribute: inout Dwarf_Attribute) -> UInt64? {
        var value: Dwarf_Word = 0
        return dwarf_formudata(&attribute, &value) == 0 ? value : nil
    }

    /// Wraps `dwarf_getsrcfiles`: the CU's file table and its size.
    static func dwarfGetSrcFiles(_ cu: UnsafeMutablePointer<Dwarf_Die>) -> (files: OpaquePointer, count: Int)? {
        var files: OpaquePointer?
        var count = 0
        guard dwarf_getsrcfiles(cu, &files, &count) == 0, let files else { return nil }
        return (files, count)
    }

    /// Wraps `dwarf_filesrc`: the path of entry `index` of a file table.
    static func dwarfFileSrc(_ files: OpaquePointer, _ index: Int) -> String? {
        dwarf_filesrc(files, index, nil, nil).map { String(cString: $0) }
    }
}
