import CLibdw
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

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
        /// Per compile unit, as `scopeIndexes`: its line table's recorded file names, read on
        /// first use (nil: unreadable).
        var fileNames: [UInt: LineTableFileNames?] = [:]

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
            let index = symbolIndex()
            if let aliases = index.aliases(at: address) { return SymbolIndex.memcheckName(among: aliases) }
            if index.hasNoSymbol(at: address) { return nil }
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
        /// The name the line table records for `callFile` (see `SourceFrame.fileName`).
        var callFileName: String?
        var callLine: Int?
    }

    /// A file whose build id is not the one the trace recorded for it, or, recorded without
    /// one, whose loadable segments are not the ones recorded (see `LoadLayout`).
    public struct ChangedFile: Hashable, Sendable {
        public var path: String
        /// nil when the trace recorded none: the segments told the change.
        public var recordedBuildID: [UInt8]?
        /// nil when the file now has none.
        public var currentBuildID: [UInt8]?

        /// Why the file's frames have no names, for a warning line.
        public var warning: String {
            let shown = { (id: [UInt8]) in String(hexString(id).prefix(12)) + "…" }
            let evidence = recordedBuildID.map { "build id \(shown($0)) then, \(currentBuildID.map(shown) ?? "none") now" }
                ?? "no build id then; its loadable segments differ from the ones recorded"
            return "\(CommandLineText.controlsReplaced(path)) is not the file the trace recorded (\(evidence):"
                + " rebuilt or replaced since), so its frames are shown as ???"
        }
    }

    private struct RecordedFile: Hashable {
        var path: String
        var buildID: [UInt8]?
        var layout: LoadLayout
    }

    private let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
    /// nil value: the image could not be opened; it is not retried.
    private var sessions: [ModuleImage: Session?] = [:]
    private var cache: [CacheKey: [SourceFrame]] = [:]
    private var compileUnits: [OpaquePointer: [Dwarf_Die]] = [:]
    private var canonicalPaths: [String: String] = [:]
    /// Whether each file was found changed, by its path and the build id a trace recorded.
    private var changedVerdicts: [RecordedFile: Bool] = [:]
    private var changed: [ChangedFile] = []
    private var missing: [String] = []
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
        if isChanged(module) { return framesOfChangedFile(module, address: relative) }
        let key = CacheKey(module: file, address: relative)
        if let frames = cache[key] { return frames }
        let session = session(for: file)
        let buildID = session?.buildID
        let frames: [SourceFrame]
        if session == nil {
            frames = framesOfUnreadableFile(module, address: relative)
        } else if let session, let buildID, let kept = frameCache.entry(buildID: buildID, address: relative),
           kept.fromDWARF || LibDW.dwflModuleGetDwarf(session.module) == nil {
            frames = kept.frames
        } else {
            frames = session.map { lookUp(relative, in: $0) } ?? [Self.unknownFrame]
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

    private static let unknownFrame = SourceFrame(function: nil, file: nil, line: nil, isInlined: false)

    /// The files found with another build id than the trace recorded (rebuilt or replaced since
    /// the process ran) whose frames are shown unnamed, in the order they were met. Frames an
    /// earlier report kept for the recorded build id (`FrameCache`, which knows files by build
    /// id) are still named, and alone do not put a file here.
    public var changedFiles: [ChangedFile] {
        lock.lock()
        defer { lock.unlock() }
        return changed
    }

    /// The files a trace names that are gone (deleted or moved since the process ran) and whose
    /// frames are shown unnamed, in the order they were met: no earlier report kept frames
    /// for their recorded build id (`FrameCache`).
    public var missingFiles: [String] {
        lock.lock()
        defer { lock.unlock() }
        return missing
    }

    /// Why a missing file's frames have no names, for a warning line.
    public static func missingFileWarning(_ path: String) -> String {
        "\(CommandLineText.controlsReplaced(path)) is gone (deleted or moved since the trace was recorded),"
            + " so its frames are shown as ???"
    }

    /// True when the trace recorded a build id for the module's file and the file at its path
    /// now has another (or none), or recorded none and the file's loadable segments are not the
    /// ones it recorded (`LoadLayout`). Its symbols and lines would be another program's: a
    /// trace read after `make` rebuilt the program named `frame_dummy` and a line of a new
    /// function where the old one allocated. Called with the lock held.
    private func isChanged(_ module: ModuleImage) -> Bool {
        if module.buildID == nil && module.layout.segments.isEmpty { return false }
        let file = RecordedFile(path: canonical(module.path), buildID: module.buildID, layout: module.layout)
        if let verdict = changedVerdicts[file] { return verdict }
        // A file that cannot be opened is not called changed: its frames are unnamed anyway.
        guard let session = session(forFileAt: file.path) else {
            changedVerdicts[file] = false
            return false
        }
        let verdict: Bool
        if let recorded = module.buildID {
            verdict = session.buildID != recorded
        } else {
            // Unreadable program headers prove nothing either way.
            verdict = LibDW.dwflLoadLayout(session.module).map { !module.layout.admits($0) } ?? false
        }
        changedVerdicts[file] = verdict
        return verdict
    }

    /// What is known of an address in a changed file: the frames an earlier report kept for
    /// the recorded build id, else one unnamed frame (and the file joins `changedFiles`).
    /// Called with the lock held.
    private func framesOfChangedFile(_ module: ModuleImage, address relative: UInt64) -> [SourceFrame] {
        let path = canonical(module.path)
        guard let recorded = module.buildID, let kept = frameCache.entry(buildID: recorded, address: relative) else {
            if !changed.contains(where: { $0.path == path && $0.recordedBuildID == module.buildID }) {
                let current = session(forFileAt: path)?.buildID
                changed.append(ChangedFile(path: path, recordedBuildID: module.buildID, currentBuildID: current))
            }
            return [Self.unknownFrame]
        }
        return ModuleImage.isShim(module.path) ? Array(kept.frames.suffix(1)) : kept.frames
    }

    /// What is known of an address in a file that cannot be opened: the frames an earlier report
    /// kept for the build id the trace recorded, else one unnamed frame (and a file that is gone
    /// joins `missingFiles`). Called with the lock held.
    private func framesOfUnreadableFile(_ module: ModuleImage, address relative: UInt64) -> [SourceFrame] {
        if let recorded = module.buildID, let kept = frameCache.entry(buildID: recorded, address: relative) {
            return kept.frames
        }
        let path = canonical(module.path)
        if path.hasPrefix("/"), !missing.contains(path), !FileManager.default.fileExists(atPath: path) {
            missing.append(path)
        }
        return [Self.unknownFrame]
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
        if isChanged(module) { return named(framesOfChangedFile(module, address: relative)) ?? Self.unknownFrame }
        if let known = named(cache[CacheKey(module: file, address: relative)]) { return known }
        let session = session(for: file)
        let buildID = session?.buildID
        // The frame cache knows these addresses from earlier reports: reading it spares
        // sorting the module's symbol table (libc's: 6.8 M instructions, a sixth of a short
        // report), which the names of the two or three frames under main would otherwise take.
        if let buildID, let kept = named(frameCache.entry(buildID: buildID, address: relative)?.frames) { return kept }
        if session == nil { return named(framesOfUnreadableFile(module, address: relative)) ?? Self.unknownFrame }
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
    /// index answered alone, how many of them have no symbol, and one line per address where
    /// the two differ.
    func checkSymbolIndex(path: String, stride: Int) -> (answered: Int, withoutSymbol: Int, differences: [String]) {
        lock.lock()
        defer { lock.unlock() }
        guard let session = session(forFileAt: path),
              let (count, _) = LibDW.dwflSymbolTable(session.module) else { return (0, 0, ["\(path): no symbols"]) }
        let index = session.symbolIndex()
        var answered = 0, withoutSymbol = 0
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
                case .noSymbol:
                    answered += 1
                    withoutSymbol += 1
                    got = nil
                case .needsLibdw:
                    got = expected
                }
                if got != expected {
                    differences.append("\(path) 0x\(String(address, radix: 16)): index \(got ?? "nil"), libdw \(expected ?? "nil")")
                }
            }
        }
        return (answered, withoutSymbol, differences)
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
        // A trace names module files by path; one that is now (or, in a damaged trace, was made
        // to be) a FIFO or a device would block libdw's open for ever.
        if FileStatus.isRegularFile(image.path), let dwfl = LibDW.dwflBegin(callbacks) {
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
        let locationName = location.flatMap { recordedName(of: $0.path, unit: $0.unit, index: $0.fileIndex, in: session) }
        let scopes = functionScopes(address, in: session)
        guard !scopes.isEmpty else {
            let symbol = session.symbol(at: address)
            return [SourceFrame(
                function: symbol.map(Demangler.demangle), file: location?.path, line: location?.line,
                isInlined: false, linkageName: symbol, fileName: locationName)]
        }
        var frames = scopes.enumerated().map { index, scope in
            // Innermost frame: where the address is. Outer frames: where the next inner one was inlined.
            var frame = SourceFrame(
                function: scope.name,
                file: index == 0 ? location?.path : scopes[index - 1].callFile,
                line: index == 0 ? location?.line : scopes[index - 1].callLine,
                isInlined: scope.isInlined,
                linkageName: scope.linkageName,
                fileName: index == 0 ? locationName : scopes[index - 1].callFileName
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
            // A C++ function with internal linkage (`static`, or in an anonymous namespace) has
            // no DW_AT_linkage_name from GCC, only its bare DW_AT_name; its mangled symbol names
            // it as memcheck does: `(anonymous namespace)::make_ring(int)`, not `make_ring`.
            let demangled = Demangler.demangle(symbol)
            if demangled != symbol, frames[outer].function == scopes[outer].name { frames[outer].function = demangled }
            if let name = scopes[outer].name, Self.isClone(symbol, of: name) { frames[outer].function = demangled }
            frames[outer].linkageName = symbol
        } else if let linkage = frames[outer].linkageName, let symbol = session.symbol(at: address),
                  Self.isClone(symbol, of: linkage) {
            // DWARF names the clone's subprogram by the original function: memcheck shows the clone's
            // symbol (`q::work(int) [clone .cold]`) and writes it in `fun:` lines (`_ZN1q4workEi.cold`).
            frames[outer].function = Demangler.demangle(symbol)
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

    /// True when `symbol` is a compiler's copy of the function named `name`: GCC's
    /// `static_alloc.constprop.0`, `.isra.0`, `.part.0`, the `.cold` half of a split function,
    /// LLVM's `.llvm.<hash>`. DWARF describes the copy under the original's name; memcheck names
    /// the frame by the symbol.
    private static func isClone(_ symbol: String, of name: String) -> Bool {
        symbol.count > name.count + 1 && symbol.hasPrefix(name) && symbol.dropFirst(name.count).first == "."
    }

    /// Inlined-subroutine scopes containing `address`, innermost first, ending with the subprogram.
    /// Empty when the module has no DWARF for the address.
    ///
    /// The DIE tree is walked by hand, descending into namespaces and types, because elfutils
    /// 0.188's `dwarf_getscopes` finds nothing in rustc's compile units (subprograms nested in
    /// DW_TAG_namespace), where valgrind and gdb find the inlined chain.
    private func functionScopes(_ address: UInt64, in session: Session) -> [Scope] {
        guard let unit = compileUnit(containing: address, in: session.module) else { return [] }
        var skeleton = unit.cu
        // Split DWARF: the functions and inlined calls are in the .dwo file's unit, and the
        // skeleton's own tree is empty (no inlined frames were shown).
        var cuDie = LibDW.splitUnit(of: &skeleton) ?? skeleton
        let compDir = LibDW.compDir(&skeleton)
        let chain = scopeChain(unit: cuDie, pc: address &- unit.bias, in: session)
        var result: [Scope] = []
        for var die in chain.reversed() {
            switch LibDW.dwarfTag(&die) {
            case Int32(DW_TAG_inlined_subroutine):
                let callFileIndex = unsigned(die: &die, DW_AT_call_file).flatMap { Int(exactly: $0) }
                let callFile = callFileIndex.flatMap { sourceFile(cu: &cuDie, index: UInt64($0)) }
                    .map { LibDW.absolute($0, compDir: compDir) }
                let callFileName = callFile.flatMap { recordedName(of: $0, unit: cuDie, index: callFileIndex, in: session) }
                let callLine = unsigned(die: &die, DW_AT_call_line).flatMap { Int(exactly: $0) }
                let names = functionNames(&die)
                result.append(Scope(
                    name: names.name, plainName: string(die: &die, DW_AT_name), linkageName: names.linkageName,
                    hasDwarfLinkageName: names.isMangled, isInlined: true, callFile: callFile,
                    callFileName: callFileName, callLine: callLine))
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

    /// The name the line table of `unit` records for its file `index` (see
    /// `LineTableFileNames`), when `path` is that name joined to a directory: a check that the
    /// table was read as libdw read it. Nil otherwise, and the report shows the base name.
    private func recordedName(of path: String, unit: Dwarf_Die?, index: Int?, in session: Session) -> String? {
        guard var unit, let index else { return nil }
        let key = UInt(bitPattern: unit.addr)
        let table: LineTableFileNames?
        if let known = session.fileNames[key] {
            table = known
        } else {
            table = LineTableFileNames(unit: &unit)
            session.fileNames[key] = .some(table)
        }
        guard let name = table?.name(index) else { return nil }
        return name == path || path.hasSuffix("/" + name) ? name : nil
    }

    /// Path of file number `index` in the line table of compile unit `cu`.
    private func sourceFile(cu: UnsafeMutablePointer<Dwarf_Die>, index: UInt64) -> String? {
        guard let table = LibDW.dwarfGetSrcFiles(cu), index < table.count else { return nil }
        return LibDW.dwarfFileSrc(table.files, Int(index))
    }
}
