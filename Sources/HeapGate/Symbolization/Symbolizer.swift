import CLibdw
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// An ELF file mapped into a process.
public struct ModuleImage: Hashable, Sendable {
    public var path: String
    /// Load bias: runtime address = `base` + ELF virtual address (0 for non-PIE executables).
    public var base: UInt64

    public init(path: String, base: UInt64) {
        self.path = path
        self.base = base
    }

    /// The last component of a path.
    static func fileName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// All but the last component of a path (`/src/proj` of `/src/proj/foo.c`), nil without a `/`.
    static func directoryName(_ path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// libheapgate.so, wherever it is installed: frame 0 of every recorded stack.
    static func isShim(_ path: String) -> Bool { fileName(path).hasPrefix("libheapgate") }

    /// The path with symbolic links resolved, or as given when that fails.
    static func resolvedPath(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }
}

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

/// Maps runtime addresses to functions and source lines with elfutils libdwfl (offline mode).
///
/// `symbolize` returns the logical frames for one address, innermost first, the way
/// `eu-addr2line -i -f` prints them. For an address inside `inner`, inlined into `middle`,
/// itself inlined into the real function `outer`:
///
///     [0] inner   file:line of the address itself                       isInlined: true
///     [1] middle  file:line where `inner` was inlined (DW_AT_call_file/line)  isInlined: true
///     [2] outer   file:line where `middle` was inlined                  isInlined: false
///
/// Without inlining the result is a single frame with `isInlined == false`. The last frame is
/// always the real (out-of-line) function. Names come from DWARF (linkage name demangled, else
/// `DW_AT_name`), or from the ELF symbol table when the address has no DWARF scope.
///
/// Every module image gets its own `Dwfl` session, reported once and kept for the lifetime of the
/// symbolizer, so images whose address ranges overlap (say, several non-PIE executables) never
/// collide. Results are cached per (module, address). Calls are serialized by a lock because libdw
/// is not thread-safe.
public final class Symbolizer {
    private struct CacheKey: Hashable {
        var module: ModuleImage
        var address: UInt64
    }

    /// One `Dwfl` session holding exactly one reported module.
    private final class Session {
        let dwfl: OpaquePointer
        let module: OpaquePointer
        /// Built on the first symbol look-up; its names point into this session's memory.
        private var index: SymbolIndex?
        /// Per compile unit (keyed by its DIE's address in libdw's memory), built on its first
        /// scope look-up.
        var scopeIndexes: [UInt: ScopeIndex] = [:]

        init(dwfl: OpaquePointer, module: OpaquePointer) {
            self.dwfl = dwfl
            self.module = module
        }

        /// The module's GNU build id, if it has one.
        lazy var buildID: [UInt8]? = LibDW.dwflBuildID(module)

        deinit { LibDW.dwflEnd(dwfl) }

        /// The ELF symbol containing `address`, as `dwfl_module_addrinfo` finds it, under the
        /// name memcheck gives it when the function has several (`SymbolIndex.memcheckName`).
        func symbol(at address: UInt64) -> String? {
            if let aliases = symbolIndex().aliases(at: address) { return SymbolIndex.memcheckName(among: aliases) }
            return LibDW.dwflModuleAddrInfo(module, address)
        }

        /// The other names of the function at `address` (see `SymbolIndex.aliases`), when it has any.
        func aliases(at address: UInt64) -> [String] {
            symbolIndex().aliases(at: address) ?? []
        }

        @discardableResult
        func symbolIndex() -> SymbolIndex {
            if let index { return index }
            let built = SymbolIndex(module: module)
            index = built
            return built
        }
    }

    /// A function-like DWARF scope containing the address: an inlined instance or the subprogram.
    private struct Scope {
        var name: String?
        /// The plain DW_AT_name (through DW_AT_abstract_origin and DW_AT_specification).
        var plainName: String?
        /// The DW_AT_linkage_name `name` was demangled from, else a plain DW_AT_name that is a C identifier.
        var linkageName: String?
        /// True when `linkageName` is a DW_AT_linkage_name (not a plain DW_AT_name).
        var hasDwarfLinkageName = false
        var isInlined: Bool
        var callFile: String?
        var callLine: Int?
    }

    private let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
    /// nil value: the image could not be opened; it is not retried.
    private var sessions: [ModuleImage: Session?] = [:]
    private var cache: [CacheKey: [SourceFrame]] = [:]
    private var compileUnits: [OpaquePointer: [Dwarf_Die]] = [:]
    private var canonicalPaths: [String: String] = [:]
    private let lock = Lock()
    private let debugCache: DebugInfoCache
    private let frameCache: FrameCache
    /// libdwfl's `debuginfo_path` (a `char **`), owned here: nil for its default.
    private let debugPath: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    /// - Parameter useDebuginfod: when false (the default), `DEBUGINFOD_URLS` is removed from this
    ///   process's environment, so a missing debug file never triggers a network lookup (an
    ///   unreachable server stalls about 90 s per module).
    /// - Parameter cache: where uncompressed copies of compressed debug files are looked for
    ///   first (and kept by `storeDecompressedDebugFiles`).
    public init(useDebuginfod: Bool = false, cache: DebugInfoCache = .fromEnvironment()) {
        if !useDebuginfod { LibDW.unsetenv("DEBUGINFOD_URLS") }
        debugCache = cache
        frameCache = FrameCache(cache: cache)
        debugPath = .allocate(capacity: 1)
        debugPath.initialize(to: cache.searchPath.flatMap { strdup($0) })
        callbacks = .allocate(capacity: 1)
        callbacks.initialize(to: Dwfl_Callbacks(
            find_elf: dwfl_build_id_find_elf,
            // Not dwfl_standard_find_debuginfo unless asked: see LocalDebugInfoSearch.
            find_debuginfo: useDebuginfod ? dwfl_standard_find_debuginfo : LocalDebugInfoSearch.callback,
            section_address: dwfl_offline_section_address,
            debuginfo_path: debugPath
        ))
    }

    deinit {
        sessions.removeAll()  // dwfl_end before the callbacks they point to go away
        callbacks.deinitialize(count: 1)
        callbacks.deallocate()
        free(debugPath.pointee)
        debugPath.deallocate()
    }

    /// Writes the frames this symbolizer resolved to the cache (see `FrameCache`), so that
    /// later reports need not read the DWARF again. Call once the report is out.
    public func storeFrames() {
        lock.lock()
        defer { lock.unlock() }
        frameCache.store()
    }

    /// Keeps uncompressed copies of the compressed debug files this symbolizer had to read
    /// (see `DebugInfoCache`), so that later reports open them without inflating them. Call
    /// once the report is out: the first copy of libc's takes about 70 ms.
    public func storeDecompressedDebugFiles() {
        lock.lock()
        defer { lock.unlock() }
        for case let session? in sessions.values {
            guard let debugFile = LibDW.dwflDebugFile(session.module), let buildID = LibDW.dwflBuildID(session.module) else { continue }
            debugCache.store(debugFile: debugFile, buildID: buildID)
        }
    }

    /// `address` is the runtime address to look up (callers already subtract 1 from return addresses).
    /// Returns frames innermost first: the inlined callees first, then the real function that contains
    /// the address. At least one element; `function` is nil when unknown.
    public func symbolize(address: UInt64, in module: ModuleImage) -> [SourceFrame] {
        lock.lock()
        defer { lock.unlock() }
        // Every image is opened once per file, at base 0, and looked up file-relative: the same
        // library loaded at different bases (each process of a tree, with ASLR) shares one
        // session and one cache instead of reading its debug info again.
        let (file, relative) = fileRelative(address, in: module)
        let key = CacheKey(module: file, address: relative)
        if let frames = cache[key] { return frames }
        let session = session(for: file)
        let buildID = session?.buildID
        let frames: [SourceFrame]
        if let session, let buildID, let kept = frameCache.entry(buildID: buildID, address: relative),
           kept.fromDWARF || LibDW.dwflModuleGetDwarf(session.module) == nil {
            frames = kept.frames
        } else {
            frames = session.map { lookUp(relative, in: $0) }
                ?? [SourceFrame(function: nil, file: nil, line: nil, isInlined: false)]
            if let session, let buildID {
                let entry = FrameCache.Entry(frames: frames, fromDWARF: LibDW.dwflModuleGetDwarf(session.module) != nil)
                frameCache.keep(entry, buildID: buildID, address: relative)
            }
        }
        // heapgate's own entry points (frame 0 of every stack: malloc, calloc, ...) are one
        // frame each, whatever the shim inlined into them. Applied here, after the frame cache,
        // which keeps what DWARF said: it knows a module by build id only, and the same shim
        // may have been seen under another name.
        let shown = ModuleImage.isShim(module.path) ? Array(frames.suffix(1)) : frames
        cache[key] = shown
        return shown
    }

    /// The ELF symbol covering `address`, demangled, without reading DWARF: no source line and
    /// no inlined frames. For frames a report never shows (those under `main`), where reading a
    /// large library's debug info (libc's, say: tens of megabytes to decompress) would be wasted.
    public func symbolName(address: UInt64, in module: ModuleImage) -> SourceFrame {
        lock.lock()
        defer { lock.unlock() }
        let (file, relative) = fileRelative(address, in: module)
        /// The outer frame's name alone, from frames already known for the address.
        func named(_ frames: [SourceFrame]?) -> SourceFrame? {
            frames?.last.map { SourceFrame(function: $0.function, file: nil, line: nil, isInlined: false, linkageName: $0.linkageName) }
        }
        if let known = named(cache[CacheKey(module: file, address: relative)]) { return known }
        let session = session(for: file)
        let buildID = session?.buildID
        // The frame cache knows these addresses from earlier reports: reading it spares
        // sorting the module's symbol table (libc's: 6.8 M instructions, a sixth of a short
        // report), which the names of the two or three frames under main would otherwise take.
        if let buildID, let kept = named(frameCache.entry(buildID: buildID, address: relative)?.frames) { return kept }
        let symbol = session.flatMap { $0.symbol(at: relative) }
        let frame = SourceFrame(function: symbol.map(Demangler.demangle), file: nil, line: nil, isInlined: false, linkageName: symbol)
        if let buildID, symbol != nil {
            // Kept as a symbol-table answer: a later full look-up of the address still reads DWARF.
            frameCache.keep(FrameCache.Entry(frames: [frame], fromDWARF: false), buildID: buildID, address: relative)
        }
        return frame
    }

    /// Reads the debug information of the files at `paths` now (each at most once), so that a
    /// report built later does not wait for it (see `DebugInfoPreload`): decompressing libc's
    /// debug file, which nearly every report needs for its stdio and locale blocks, takes
    /// about 40 ms when no uncompressed copy is cached yet (see `DebugInfoCache`).
    public func preload(paths: [String]) {
        lock.lock()
        defer { lock.unlock() }
        for path in paths {
            guard let session = session(forFileAt: path) else { continue }
            // The frame cache most likely answers for it again, without its debug information.
            if let buildID = session.buildID, frameCache.knows(buildID: buildID) { continue }
            // One real look-up: libelf decompresses a debug section when it is first read,
            // which opening the DWARF does not do.
            if let function = Self.firstFunction(in: session.module) {
                _ = lookUp(function, in: session)
            } else {
                _ = LibDW.dwflModuleGetDwarf(session.module)
            }
            session.symbolIndex()
        }
    }

    /// The separate debug file libdw opened for the file at `path`, once a look-up has opened
    /// it (for tests: which copy was read).
    func debugFile(forFileAt path: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard let session = sessions[fileImage(path)] ?? nil else { return nil }
        return LibDW.dwflDebugFile(session.module)
    }

    /// Checks the symbol index of the file at `path` against `dwfl_module_addrinfo` itself, at
    /// the start, middle, last byte and end of every `stride`-th symbol and the byte before it
    /// (for tests: the index must give libdw's answer). Returns the number of addresses the
    /// index answered alone, and one line per address where the two differ.
    func checkSymbolIndex(path: String, stride: Int) -> (answered: Int, differences: [String]) {
        lock.lock()
        defer { lock.unlock() }
        guard let session = session(forFileAt: path),
              let (count, _) = LibDW.dwflSymbolTable(session.module) else { return (0, ["\(path): no symbols"]) }
        let index = session.symbolIndex()
        var answered = 0
        var differences: [String] = []
        for symbolNumber in Swift.stride(from: 1, to: count, by: max(1, stride)) {
            guard let (symbol, start, _) = LibDW.dwflSymbol(session.module, symbolNumber) else { continue }
            let size = symbol.st_size
            for address in Set([start &- 1, start, start &+ size / 2, start &+ max(size, 1) &- 1, start &+ size]) {
                let expected = LibDW.dwflModuleAddrInfo(session.module, address)
                let got: String?
                switch index.lookUp(address) {
                case .name(let name):
                    answered += 1
                    got = name
                case .needsLibdw:
                    got = expected
                }
                if got != expected {
                    differences.append("\(path) 0x\(String(address, radix: 16)): index \(got ?? "nil"), libdw \(expected ?? "nil")")
                }
            }
        }
        return (answered, differences)
    }

    /// Checks the scope index of the file at `path` against the walk over its compile units it
    /// replaces, at the start, middle and last byte of every `stride`-th symbol (for tests: the
    /// chains of scopes must be the same DIEs). Returns the number of addresses that had a
    /// chain, and one line per address where the two differ.
    func checkScopeIndex(path: String, stride: Int) -> (checked: Int, differences: [String]) {
        lock.lock()
        defer { lock.unlock() }
        guard let session = session(forFileAt: path),
              let (count, _) = LibDW.dwflSymbolTable(session.module) else { return (0, ["\(path): no symbols"]) }
        var checked = 0
        var differences: [String] = []
        for symbolNumber in Swift.stride(from: 1, to: count, by: max(1, stride)) {
            guard let (symbol, start, _) = LibDW.dwflSymbol(session.module, symbolNumber) else { continue }
            let size = symbol.st_size
            for address in Set([start, start &+ size / 2, start &+ max(size, 1) &- 1]) {
                guard let unit = compileUnit(containing: address, in: session.module) else { continue }
                let pc = address &- unit.bias
                var walked: [Dwarf_Die] = []
                Self.descend(into: unit.cu, pc: pc, chain: &walked)
                let indexed = scopeChain(unit: unit.cu, pc: pc, in: session)
                if !walked.isEmpty { checked += 1 }
                if walked.map({ UInt(bitPattern: $0.addr) }) != indexed.map({ UInt(bitPattern: $0.addr) }) {
                    differences.append("\(path) 0x\(String(address, radix: 16)): walk \(walked.count) scopes, index \(indexed.count)")
                }
            }
        }
        return (checked, differences)
    }

    /// The file's path with symbolic links resolved, as every session and report names it
    /// (cached: a report asks once per frame).
    public func resolvedPath(_ path: String) -> String {
        lock.lock()
        defer { lock.unlock() }
        return canonical(path)
    }

    /// The file's resolved path: one file reached under two names (/lib/… and /usr/lib/…,
    /// say) gets one session. Called with the lock held.
    private func canonical(_ path: String) -> String {
        if let known = canonicalPaths[path] { return known }
        let resolved = ModuleImage.resolvedPath(path)
        canonicalPaths[path] = resolved
        return resolved
    }

    /// The file at `path` as every session holds it: resolved, at base 0. Called with the
    /// lock held.
    private func fileImage(_ path: String) -> ModuleImage {
        ModuleImage(path: canonical(path), base: 0)
    }

    /// The module's file, opened once at base 0, and the address relative to it. Called with
    /// the lock held.
    private func fileRelative(_ address: UInt64, in module: ModuleImage) -> (ModuleImage, UInt64) {
        (fileImage(module.path), address &- module.base)
    }

    private func session(forFileAt path: String) -> Session? { session(for: fileImage(path)) }

    /// The address of the module's first sized function symbol, if it has one.
    private static func firstFunction(in module: OpaquePointer) -> UInt64? {
        guard let (count, _) = LibDW.dwflSymbolTable(module) else { return nil }
        for index in 1..<count {
            guard let (symbol, address, _) = LibDW.dwflSymbol(module, index) else { continue }
            if Int32(symbol.st_info & 0xf) == STT_FUNC && symbol.st_size > 0 && address != 0 { return address }
        }
        return nil
    }

    private func session(for image: ModuleImage) -> Session? {
        if let known = sessions[image] { return known }
        var session: Session?
        if let dwfl = LibDW.dwflBegin(callbacks) {
            if let module = LibDW.dwflReportElf(dwfl, path: image.path, base: image.base), LibDW.dwflReportEnd(dwfl) {
                LibDW.dwflSetUserData(module, debugPath.pointee.map { UnsafeMutableRawPointer($0) })
                session = Session(dwfl: dwfl, module: module)
            } else {
                LibDW.dwflEnd(dwfl)
            }
        }
        sessions[image] = .some(session)
        return session
    }

    private func lookUp(_ address: UInt64, in session: Session) -> [SourceFrame] {
        let module = session.module
        let location = LibDW.dwflModuleGetSrc(module, address).flatMap(LibDW.dwflLineInfo)
            ?? compileUnit(containing: address, in: module).flatMap { unit in
                var cu = unit.cu
                return LibDW.dwarfGetSrcDie(&cu, address &- unit.bias)
            }
        let scopes = functionScopes(address, in: session)
        guard !scopes.isEmpty else {
            let symbol = session.symbol(at: address)
            return [SourceFrame(
                function: symbol.map(Demangler.demangle), file: location?.file, line: location?.line,
                isInlined: false, linkageName: symbol)]
        }
        var frames = scopes.enumerated().map { index, scope in
            // Innermost frame: where the address is. Outer frames: where the next inner one was inlined.
            var frame = SourceFrame(
                function: scope.name,
                file: index == 0 ? location?.file : scopes[index - 1].callFile,
                line: index == 0 ? location?.line : scopes[index - 1].callLine,
                isInlined: scope.isInlined,
                linkageName: scope.linkageName
            )
            // memcheck names an inlined frame by the function's plain DW_AT_name. Where the
            // linkage name is a C one under another name (glibc's `__GI__IO_doallocbuf` for
            // `_IO_doallocbuf`), the frame takes memcheck's name; a mangled one is kept, and
            // memcheck's name goes beside it for suppressions.
            if scope.isInlined, let plain = scope.plainName, plain != scope.linkageName {
                if let linkage = scope.linkageName, Demangler.demangle(linkage) == linkage, isPlainSymbol(plain) {
                    frame.function = plain
                    frame.linkageName = plain
                } else if scope.linkageName != nil {
                    frame.inlinedName = plain
                }
            }
            return frame
        }
        let outer = frames.count - 1
        if !scopes[outer].hasDwarfLinkageName, let symbol = session.symbol(at: address) {
            // The real (out-of-line) function is the ELF symbol covering the address: it names the
            // frame when DWARF does not, and is the raw name when DWARF has only a plain DW_AT_name
            // (C functions, or C++ with -gline-tables-only, whose DW_AT_name is unqualified).
            // A DW_AT_name that is another of the function's names (glibc's `__getpwuid_r` for
            // `getpwuid_r@@GLIBC_2.2.5`) gives way to the name memcheck shows.
            if let name = frames[outer].function, name != symbol, session.aliases(at: address).contains(name) {
                frames[outer].function = Demangler.demangle(symbol)
            }
            if frames[outer].function == nil { frames[outer].function = Demangler.demangle(symbol) }
            frames[outer].linkageName = symbol
        } else if let linkage = frames[outer].linkageName, case let aliases = session.aliases(at: address),
                  aliases.count > 1, aliases.contains(linkage),
                  let shown = SymbolIndex.memcheckName(among: aliases), shown != linkage {
            // A DW_AT_linkage_name that is one of several names of the function (glibc's internal
            // `__GI_setlocale` for `setlocale`; a C++ constructor's C1 and C2 forms): memcheck's name.
            if frames[outer].function == Demangler.demangle(linkage) { frames[outer].function = Demangler.demangle(shown) }
            frames[outer].linkageName = shown
        }
        return frames
    }

    /// Inlined-subroutine scopes containing `address`, innermost first, ending with the subprogram.
    /// Empty when the module has no DWARF for the address.
    ///
    /// The DIE tree is walked by hand, descending into namespaces and types, because elfutils
    /// 0.188's `dwarf_getscopes` finds nothing in rustc's compile units (subprograms nested in
    /// DW_TAG_namespace), where valgrind and gdb find the inlined chain.
    private func functionScopes(_ address: UInt64, in session: Session) -> [Scope] {
        guard let unit = compileUnit(containing: address, in: session.module) else { return [] }
        var cuDie = unit.cu
        let chain = scopeChain(unit: unit.cu, pc: address &- unit.bias, in: session)
        var result: [Scope] = []
        for var die in chain.reversed() {
            switch LibDW.dwarfTag(&die) {
            case Int32(DW_TAG_inlined_subroutine):
                let callFile = unsigned(die: &die, DW_AT_call_file).flatMap { sourceFile(cu: &cuDie, index: $0) }
                let callLine = unsigned(die: &die, DW_AT_call_line).flatMap { Int(exactly: $0) }
                let names = functionNames(&die)
                result.append(Scope(
                    name: names.name, plainName: string(die: &die, DW_AT_name), linkageName: names.linkageName,
                    hasDwarfLinkageName: names.isMangled, isInlined: true, callFile: callFile, callLine: callLine))
            case Int32(DW_TAG_subprogram):
                let names = functionNames(&die)
                result.append(Scope(
                    name: names.name, linkageName: names.linkageName, hasDwarfLinkageName: names.isMangled,
                    isInlined: false))
                return result
            default:
                continue  // lexical blocks
            }
        }
        // Inlined scopes without an enclosing subprogram DIE: the real function comes from the symbol table.
        if !result.isEmpty { result.append(Scope(name: nil, isInlined: false)) }
        return result
    }

    /// The code scopes (outermost first) of `unit` that contain `pc`: the outermost from the
    /// unit's scope index, the rest by descending into it.
    private func scopeChain(unit: Dwarf_Die, pc: UInt64, in session: Session) -> [Dwarf_Die] {
        let key = UInt(bitPattern: unit.addr)
        let index = session.scopeIndexes[key]
            ?? ScopeIndex(unit: unit)
        session.scopeIndexes[key] = index
        guard let outermost = index.outermostScope(containing: pc) else { return [] }
        var chain = [outermost]
        Self.descend(into: outermost, pc: pc, chain: &chain)
        return chain
    }

    /// The compile unit covering `address`. libdwfl finds it through .debug_aranges; Swift
    /// binaries have none (swiftc 6.3 writes DW_AT_ranges on the unit only) and libdwfl then
    /// answers "address out of range", so the units' own ranges are searched instead.
    private func compileUnit(containing address: UInt64, in module: OpaquePointer) -> (cu: Dwarf_Die, bias: UInt64)? {
        if let (cu, bias) = LibDW.dwflModuleAddrDie(module, address) { return (cu.pointee, bias) }
        guard let (dwarf, bias) = LibDW.dwflModuleGetDwarf(module) else { return nil }
        let pc = address &- bias
        for var unit in unitDies(of: module, dwarf: dwarf) where LibDW.dwarfHasPC(&unit, pc) {
            return (unit, bias)
        }
        return nil
    }

    /// Every compile unit's DIE, read once per module.
    private func unitDies(of module: OpaquePointer, dwarf: OpaquePointer) -> [Dwarf_Die] {
        if let known = compileUnits[module] { return known }
        let units = LibDW.dwarfCompileUnits(dwarf)
        compileUnits[module] = units
        return units
    }

    /// Appends to `chain` the code scopes (outermost first) under `parent` that contain `pc`.
    private static func descend(into parent: Dwarf_Die, pc: UInt64, chain: inout [Dwarf_Die]) {
        var parent = parent
        guard var child = LibDW.dwarfChild(&parent) else { return }
        while true {
            let tag = LibDW.dwarfTag(&child)
            if ScopeIndex.containerTags.contains(tag) {
                let before = chain.count
                descend(into: child, pc: pc, chain: &chain)
                if chain.count > before { return }
            } else if ScopeIndex.codeScopeTags.contains(tag), LibDW.dwarfHasPC(&child, pc) {
                chain.append(child)
                descend(into: child, pc: pc, chain: &chain)
                return
            }
            guard let next = LibDW.dwarfSibling(&child) else { return }
            child = next
        }
    }

    /// `name`: the demangled linkage name (fully qualified for C++, Rust, Swift), else the plain
    /// `DW_AT_name`. `linkageName`: the linkage name itself, else the plain `DW_AT_name` when it
    /// is not something a mangled name would demangle from (a C function's name is its symbol).
    /// `isMangled`: `linkageName` is a DW_AT_linkage_name.
    private func functionNames(_ die: inout Dwarf_Die) -> (name: String?, linkageName: String?, isMangled: Bool) {
        for attribute in [DW_AT_linkage_name, DW_AT_MIPS_linkage_name] {
            if let mangled = string(die: &die, attribute) { return (Demangler.demangle(mangled), mangled, true) }
        }
        let plain = string(die: &die, DW_AT_name)
        return (plain, plain.flatMap { isPlainSymbol($0) ? $0 : nil }, false)
    }

    /// True when a DW_AT_name could be a C symbol as is: an identifier, not a C++/Rust/Swift
    /// short name such as `operator new`, `~Foo`, `{closure#0}` or `get<int>`, whose real
    /// symbol is a mangled name DWARF did not record.
    private func isPlainSymbol(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.$".contains($0)) }
    }

    private func string(die: inout Dwarf_Die, _ name: Int) -> String? {
        guard var attribute = LibDW.dwarfAttrIntegrate(&die, name) else { return nil }
        return LibDW.dwarfFormString(&attribute)
    }

    private func unsigned(die: inout Dwarf_Die, _ name: Int) -> UInt64? {
        guard var attribute = LibDW.dwarfAttrIntegrate(&die, name) else { return nil }
        return LibDW.dwarfFormUData(&attribute)
    }

    /// Path of file number `index` in the line table of compile unit `cu`.
    private func sourceFile(cu: UnsafeMutablePointer<Dwarf_Die>, index: UInt64) -> String? {
        guard let table = LibDW.dwarfGetSrcFiles(cu), index < table.count else { return nil }
        return LibDW.dwarfFileSrc(table.files, Int(index))
    }
}

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

    /// Wraps `dwfl_lineinfo`: source file and line of a line-table row.
    static func dwflLineInfo(_ line: OpaquePointer) -> (file: String, line: Int?)? {
        var lineNumber: Int32 = 0
        guard let file = dwfl_lineinfo(line, nil, &lineNumber, nil, nil, nil) else { return nil }
        return (String(cString: file), lineNumber > 0 ? Int(lineNumber) : nil)
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
    static func dwarfGetSrcDie(_ cu: inout Dwarf_Die, _ pc: UInt64) -> (file: String, line: Int?)? {
        guard let row = dwarf_getsrc_die(&cu, pc), let file = dwarf_linesrc(row, nil, nil) else { return nil }
        var line: Int32 = 0
        dwarf_lineno(row, &line)
        return (String(cString: file), line > 0 ? Int(line) : nil)
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
