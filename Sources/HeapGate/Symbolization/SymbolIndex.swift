import CLibdw

/// The ELF symbol naming an address, found by binary search in a table built once per module,
/// with the same answer as `dwfl_module_addrinfo`.
///
/// Why: elfutils 0.188 answers each `dwfl_module_addrinfo` by walking the whole symbol table
/// (two libelf calls per symbol). A Swift program's report names tens of frames in
/// libswiftCore, whose table has tens of thousands of symbols: 60–70 ms of the report went
/// there. One walk at build time, then a binary search per address, costs the same as one
/// of those look-ups.
///
/// Same answer, by construction: libdw's choice between symbols whose sized range covers the
/// address depends only on those symbols, their order in the table and their binding, and
/// they are compared here in the same order by the same rule: it first searches the global
/// symbols; a covering symbol wins over the current choice if it starts later or has a
/// stronger binding (global > weak > local > other), or, at the same start and binding,
/// when it is smaller; only when no global covers the address does it search the locals the
/// same way. When no sized symbol covers the address, libdw falls back to a nearby symbol
/// without a size (an assembly label) under rules that depend on every symbol below the
/// address: those addresses, and an address that a global label sits exactly on, are left to
/// libdw itself (`needsLibdw`), unless no label lies at or below the address, when libdw has
/// nothing to fall back to and names no symbol (`noSymbol`). That is most addresses of a
/// stripped program whose .dynsym is large: cc1plus exports 30,592 symbols, its other
/// functions none, and libdw's walk for each of their addresses was a fifth of a report on g++.
struct SymbolIndex {
    private struct Entry {
        var start: UInt64
        var end: UInt64
        /// Position in the symbol table: ties are broken in table order, as libdw does.
        var order: Int32
        var binding: Int8
        /// Into the module's string table, which lives as long as its `Dwfl` session.
        var name: UnsafePointer<CChar>
    }

    /// Sized symbols sorted by start, with the largest end of any symbol up to each one, so
    /// that the walk back from an address stops where nothing before can still cover it.
    private struct Ranges {
        var entries: [Entry] = []
        var reach: [UInt64] = []

        mutating func seal() {
            // Entries were appended in table order, so an entry's position breaks ties as its
            // order does. Sorting packed keys (start, position) instead of the 32-byte entries
            // with a comparator takes a fifth of the instructions; it was a fifth of
            // `heapgate summary` on a Swift program (libswiftCore's table).
            if entries.count < (1 << 24), entries.allSatisfy({ $0.start < (1 << 40) }) {
                let keys = entries.indices.map { UInt64(entries[$0].start) << 24 | UInt64($0) }.sorted()
                entries = keys.map { entries[Int($0 & 0xFF_FFFF)] }
            } else {
                entries.sort { $0.start != $1.start ? $0.start < $1.start : $0.order < $1.order }
            }
            var furthest: UInt64 = 0
            reach = entries.map { entry in
                furthest = max(furthest, entry.end)
                return furthest
            }
        }

        /// libdw's pick among the symbols covering `address`, or nil when none does.
        func pick(_ address: UInt64) -> Entry? {
            var low = 0, high = entries.count // first entry starting after the address
            while low < high {
                let middle = (low + high) / 2
                if entries[middle].start <= address { low = middle + 1 } else { high = middle }
            }
            var covering: [Entry] = []
            var index = low - 1
            while index >= 0, reach[index] > address {
                if entries[index].end > address { covering.append(entries[index]) }
                index -= 1
            }
            var chosen: Entry?
            for candidate in covering.sorted(by: { $0.order < $1.order }) {
                guard let current = chosen else {
                    chosen = candidate
                    continue
                }
                if current.start < candidate.start || current.binding < candidate.binding {
                    chosen = candidate
                } else if current.start == candidate.start, current.binding == candidate.binding,
                          current.end - current.start > candidate.end - candidate.start {
                    chosen = candidate
                }
            }
            return chosen
        }

        /// The entries with the same start and end as `entry`, itself included when it is here.
        func sameRange(as entry: Entry) -> [Entry] {
            var low = 0, high = entries.count // first entry starting at or after the entry's start
            while low < high {
                let middle = (low + high) / 2
                if entries[middle].start < entry.start { low = middle + 1 } else { high = middle }
            }
            var found: [Entry] = []
            while low < entries.count, entries[low].start == entry.start {
                if entries[low].end == entry.end { found.append(entries[low]) }
                low += 1
            }
            return found
        }
    }

    private var globals = Ranges()
    private var locals = Ranges()
    /// Starts of global symbols without a size: libdw skips the locals when one sits exactly
    /// on the address.
    private var globalLabels: Set<UInt64> = []
    /// The lowest start of any symbol without a size that libdw would consider.
    private var lowestLabel = UInt64.max

    /// Reads the module's symbol table (the full one if the module has it, else .dynsym).
    init(module: OpaquePointer) {
        guard let (count, firstGlobal) = LibDW.dwflSymbolTable(module) else { return }
        for index in 1..<count {
            guard let (symbol, address, name) = LibDW.dwflSymbol(module, index),
                  name.pointee != 0, symbol.st_shndx != UInt16(SHN_UNDEF) else { continue }
            let type = Int32(symbol.st_info & 0xf)
            guard type != STT_SECTION, type != STT_FILE, type != STT_TLS else { continue }
            let isGlobal = firstGlobal == 0 || index >= firstGlobal
            guard symbol.st_size != 0 else {
                if isGlobal { globalLabels.insert(address) }
                lowestLabel = min(lowestLabel, address)
                continue
            }
            let entry = Entry(start: address, end: address &+ symbol.st_size, order: Int32(index),
                              binding: Self.strength(of: symbol), name: name)
            if isGlobal { globals.entries.append(entry) } else { locals.entries.append(entry) }
        }
        globals.seal()
        locals.seal()
    }

    /// The name of the symbol libdw would pick, or `needsLibdw` where no sized symbol covers
    /// the address or a global label sits exactly on it (libdw's answer then depends on
    /// symbols without a size, and it is asked itself).
    enum Answer: Equatable {
        case name(String)
        case noSymbol
        case needsLibdw
    }

    func lookUp(_ address: UInt64) -> Answer {
        if let picked = pick(address) { return .name(String(cString: picked.name)) }
        return hasNoSymbol(at: address) ? .noSymbol : .needsLibdw
    }

    /// Whether libdw names no symbol at `address`: no sized symbol covers it (`pick`), and no
    /// symbol without a size lies at or below it for libdw to fall back to.
    func hasNoSymbol(at address: UInt64) -> Bool {
        address < lowestLabel && pick(address) == nil
    }

    /// Every name of the function libdw names at `address`: the sized symbols, global or local,
    /// with exactly its range (`strdup`, `__strdup` and `__GI___strdup` in libc's full symbol
    /// table), libdw's pick among them. Nil where libdw has to be asked itself.
    func aliases(at address: UInt64) -> [String]? {
        guard let picked = pick(address) else { return nil }
        return (globals.sameRange(as: picked) + locals.sameRange(as: picked)).map { String(cString: $0.name) }
    }

    private func pick(_ address: UInt64) -> Entry? {
        if let entry = globals.pick(address) { return entry }
        if globalLabels.contains(address) { return nil }
        return locals.pick(address)
    }

    /// The name memcheck shows for a function with several names (valgrind's `preferName`, in
    /// coregrind/m_debuginfo/storage.c): the shortest without its version suffix (`@…`), at
    /// equal length the versioned one, then the first in byte order. So memcheck shows
    /// `strdup` where libdw picks `__GI___strdup`, and `getpwuid_r@@GLIBC_2.2.5` rather than
    /// `__getpwuid_r`; a suppression that `--gen-suppressions` wrote under memcheck names the
    /// frame that way.
    static func memcheckName(among names: [String]) -> String? {
        names.filter { $0.contains { !$0.isWhitespace } }.min { a, b in
            let aBase = a.utf8.prefix { $0 != UInt8(ascii: "@") }.count
            let bBase = b.utf8.prefix { $0 != UInt8(ascii: "@") }.count
            if aBase != bBase { return aBase < bBase }
            let aVersioned = aBase < a.utf8.count, bVersioned = bBase < b.utf8.count
            if aVersioned != bVersioned { return aVersioned }
            return a.utf8.lexicographicallyPrecedes(b.utf8)
        }
    }

    /// libdw's order of bindings: global, then weak, then local, then anything else.
    private static func strength(of symbol: GElf_Sym) -> Int8 {
        switch Int32(symbol.st_info >> 4) {
        case STB_GLOBAL: return 3
        case STB_WEAK: return 2
        case STB_LOCAL: return 1
        default: return 0
        }
    }
}
