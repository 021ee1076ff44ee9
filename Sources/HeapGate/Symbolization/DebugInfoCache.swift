import CLibdw
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Uncompressed copies of compressed separate debug files, kept across runs.
///
/// Why: Debian's debug packages (libc6-dbg, the -dbgsym packages) ship their DWARF sections
/// zlib-compressed, and libdw inflates the file's debug sections when it first reads its
/// DWARF, also the ones a report never reads. Nearly every report opens libc's (stdio, locale and NSS
/// blocks are allocated by libc): about 36 ms of a 73 ms `heapgate summary` of `date`. An
/// uncompressed copy opens without that.
///
/// The copies sit in the standard layout, `DIR/.build-id/xx/yyyy….debug`, and `DIR` comes
/// before `/usr/lib/debug` in libdwfl's search path, so libdw finds a copy by the module's
/// build id, and checks that id, exactly as it finds the original. A copy is made by
/// binutils' `objcopy --decompress-debug-sections` (the debug file is otherwise unchanged),
/// written under a temporary name that one run at a time claims, then renamed, so concurrent
/// runs never see half a file; it
/// is made after a report that had to inflate the original, so that run pays once (about
/// 70 ms for libc's) and later ones do not. Without `objcopy`, or with a directory that
/// cannot be written, nothing is cached and nothing else changes.
///
/// `HEAPGATE_CACHE`: the directory, or `off`; by default `$XDG_CACHE_HOME/heapgate`, else
/// `$HOME/.cache/heapgate`.
public struct DebugInfoCache: Sendable {
    /// nil when caching is off.
    public let directory: String?

    /// A relative `directory` is taken from the current directory (libdwfl would read it as
    /// relative to each module's own); one with a colon, which libdwfl's path list cannot
    /// hold, turns caching off.
    public init(directory: String?) {
        guard let directory, !directory.isEmpty, !directory.contains(":") else {
            self.directory = nil
            return
        }
        self.directory = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
    }

    /// The cache `HEAPGATE_CACHE`, `XDG_CACHE_HOME` or `HOME` names.
    public static func fromEnvironment(
        _ environment: [String: String] = Environment.values(["HEAPGATE_CACHE", "XDG_CACHE_HOME", "HOME"])
    ) -> DebugInfoCache {
        if let chosen = environment["HEAPGATE_CACHE"] {
            return DebugInfoCache(directory: chosen == "off" ? nil : chosen)
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return DebugInfoCache(directory: xdg + "/heapgate") }
        if let home = environment["HOME"], home.hasPrefix("/") { return DebugInfoCache(directory: home + "/.cache/heapgate") }
        return DebugInfoCache(directory: nil)
    }

    /// libdwfl's default `debuginfo_path`: the file's directory, its `.debug` subdirectory,
    /// /usr/lib/debug.
    static let defaultSearchPath = ":.debug:/usr/lib/debug"

    /// libdwfl's `debuginfo_path`: its default with the cache searched before /usr/lib/debug.
    var searchPath: String? {
        directory.map { ":.debug:\($0):/usr/lib/debug" }
    }

    /// Where the copy of the debug file with this build id goes.
    func path(buildID: [UInt8]) -> String? {
        guard let directory, buildID.count >= 2 else { return nil }
        let hex = hexString(buildID)
        return "\(directory)/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"
    }

    /// Keeps an uncompressed copy of `debugFile` (the separate debug file of a module with
    /// `buildID`) if it has compressed sections and no copy exists yet. Quietly does nothing
    /// when that fails.
    func store(debugFile: String, buildID: [UInt8]) {
        guard let directory, let destination = path(buildID: buildID),
              !debugFile.hasPrefix(directory + "/"), !FileManager.default.fileExists(atPath: destination),
              Self.hasCompressedSections(debugFile), let objcopy = Self.objcopy else { return }
        guard (try? FileManager.default.createDirectory(atPath: directoryName(of: destination) ?? ".", withIntermediateDirectories: true)) != nil else { return }
        // One maker at a time: concurrent reports (a test suite's, say) would otherwise each
        // inflate and write the same 10 MB. A claim left by a run that died expires.
        let temporary = destination + ".partial"
        guard Self.claim(temporary) else { return }
        let status = QuietCommand.run(objcopy, ["--decompress-debug-sections", debugFile, temporary])
        if status != 0 || rename(temporary, destination) != 0 { unlink(temporary) }
    }

    /// Creates `path` if no other run has (or if its claim is over a minute old).
    private static func claim(_ path: String) -> Bool {
        for _ in 0..<2 {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                close(descriptor)
                return true
            }
            guard errno == EEXIST, let age = FileStatus.secondsSinceModification(path), age > 60 else { return false }
            unlink(path)
        }
        return false
    }

    private static let objcopy: String? = ["/usr/bin/objcopy", "/bin/objcopy"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Whether any section of the ELF file at `path` is stored compressed (SHF_COMPRESSED).
    static func hasCompressedSections(_ path: String) -> Bool {
        LibElf.sectionFlags(ofFileAt: path).contains { $0 & UInt64(SHF_COMPRESSED) != 0 }
    }
}

/// One thin Swift wrapper per libelf function used by `DebugInfoCache`.
private enum LibElf {
    /// Wraps `elf_version`, `elf_begin`, `elf_nextscn`, `gelf_getshdr` and `elf_end`: the
    /// `sh_flags` of every section of the file (none if it is not ELF).
    static func sectionFlags(ofFileAt path: String) -> [UInt64] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return [] }
        defer { close(descriptor) }
        _ = elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(descriptor, ELF_C_READ_MMAP, nil) else { return [] }
        defer { elf_end(elf) }
        var flags: [UInt64] = []
        var section = elf_nextscn(elf, nil)
        while let current = section {
            var header = GElf_Shdr()
            if gelf_getshdr(current, &header) != nil { flags.append(header.sh_flags) }
            section = elf_nextscn(elf, current)
        }
        return flags
    }
}
