import CLibdw
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// libdwfl's `find_debuginfo` callback without the network step: finds a module's separate
/// debug file on this machine, where `dwfl_standard_find_debuginfo` looks, and nowhere else.
///
/// Why: when a module's debug file is missing, the standard callback ends by asking the
/// debuginfod client, and libdwfl `dlopen`s libdebuginfod for that even with
/// `DEBUGINFOD_URLS` unset: libcurl, GnuTLS, Kerberos, LDAP and twenty more libraries,
/// loaded and relocated in every report that meets such a module (nearly all: a Debian
/// binary without its -dbgsym, the Swift runtime). That was a quarter to a third of a short
/// report: `heapgate summary` of the jq benchmark 22.0 → 16.5 ms, sqlite3 24.6 → 15.5 ms,
/// Swift 36.2 → 26.8 ms (`perf stat -r 20`, libdebuginfod refused by a test preload).
///
/// The search, in the standard callback's order:
/// 1. by build id, with libdwfl's own `dwfl_build_id_find_debuginfo` (`DIR/.build-id/xx/…`
///    under each absolute `debuginfo_path` entry; also how a dwz "alt" file is found);
/// 2. by the `.gnu_debuglink` name (else `BASENAME.debug`) in each `debuginfo_path` entry:
///    an empty entry is the file's own directory, a relative one a subdirectory of it, an
///    absolute one that directory followed by the file's directory (then by shorter and
///    shorter tails of it); then the same for the file's real path if it is a symlink.
/// A candidate must carry the module's build id, or, for a module without one, match the
/// debug link's CRC. With `--debuginfod`, the standard callback is used instead.
enum LocalDebugInfoSearch {
    /// The callback; its signature is `Dwfl_Callbacks.find_debuginfo`'s.
    static let callback: @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafePointer<CChar>?, GElf_Addr,
        UnsafePointer<CChar>?, UnsafePointer<CChar>?, GElf_Word, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> Int32 = { module, userdata, moduleName, base, fileName, debugLink, crc, foundName in
        let byID = dwfl_build_id_find_debuginfo(module, userdata, moduleName, base, fileName, debugLink, crc, foundName)
        guard byID < 0, let module, let fileName, let foundName else { return byID }
        // A dwz "alt" file is named without a CRC; only its build id identifies it, and step 1
        // has looked that up.
        if debugLink != nil && crc == 0 { return -1 }
        // The symbolizer puts its `debuginfo_path` in each module's userdata (nil: the default).
        let path = userdata?.pointee.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) }
            ?? DebugInfoCache.defaultSearchPath
        let wanted = Wanted(buildID: LibDW.dwflBuildID(module), crc: crc)
        let file = String(cString: fileName)
        let link = debugLink.map { String(cString: $0) }
        var found = search(file: file, link: link, path: path, wanted: wanted)
        let real = ModuleImage.resolvedPath(file)
        if found == nil, real != file { found = search(file: real, link: link, path: path, wanted: wanted) }
        guard let (descriptor, name) = found else { return -1 }
        foundName.pointee = strdup(name)
        return descriptor
    }

    /// What identifies the right debug file.
    struct Wanted {
        var buildID: [UInt8]?
        var crc: UInt32
    }

    /// The candidates for the debug file of `file`, in search order.
    static func candidates(file: String, link: String?, path: String) -> [String] {
        let slash = file.lastIndex(of: "/")
        let directory = slash.map { String(file[..<$0]) } ?? "."
        let base = slash.map { String(file[file.index(after: $0)...]) } ?? file
        let name = link ?? base + ".debug"
        var entries = path.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // A leading + or - (check CRCs or not) is the standard path's syntax; CRCs are always
        // checked here, where a candidate cannot be told apart otherwise.
        if let first = entries.first, first.hasPrefix("+") || first.hasPrefix("-") { entries[0].removeFirst() }
        var result: [String] = []
        for var entry in entries {
            if entry.hasPrefix("+") || entry.hasPrefix("-") { entry.removeFirst() }
            if entry.isEmpty {
                result.append("\(directory)/\(name)")
            } else if entry.hasPrefix("/") {
                guard directory.hasPrefix("/") else { continue }
                // /usr/lib/debug + /usr/lib/x86_64-linux-gnu, then + /lib/x86_64-linux-gnu, …
                var tail = Substring(directory)
                while !tail.isEmpty {
                    result.append("\(entry)\(tail)/\(name)")
                    guard let next = tail.dropFirst().firstIndex(of: "/") else { break }
                    tail = tail[next...]
                }
                // Without a link name the file's own base name is tried there too.
                if link == nil { result.append("\(entry)\(directory)/\(base)") }
            } else {
                result.append("\(directory)/\(entry)/\(name)")
                if link == nil { result.append("\(directory)/\(entry)/\(base)") }
            }
        }
        return result
    }

    /// The first candidate that is not `file` itself and is what `wanted` describes: its
    /// descriptor (open, read-only) and path.
    static func search(file: String, link: String?, path: String, wanted: Wanted) -> (Int32, String)? {
        var mainFile = stat()
        let hasMain = stat(file, &mainFile) == 0
        for candidate in candidates(file: file, link: link, path: path) {
            let descriptor = open(candidate, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            var opened = stat()
            let isMain = hasMain && fstat(descriptor, &opened) == 0
                && opened.st_dev == mainFile.st_dev && opened.st_ino == mainFile.st_ino
            if !isMain && matches(descriptor, wanted) { return (descriptor, candidate) }
            close(descriptor)
        }
        return nil
    }

    /// True when the open file carries the wanted build id, or (no build id wanted) has the
    /// debug link's CRC; with neither, the name alone decides, as in the standard search.
    static func matches(_ descriptor: Int32, _ wanted: Wanted) -> Bool {
        if let buildID = wanted.buildID { return LibDW.elfBuildID(descriptor) == buildID }
        guard wanted.crc != 0 else { return true }
        return crc32(of: descriptor) == wanted.crc
    }

    /// The CRC-32 (IEEE 802.3, as zlib computes it) of the whole file, which `.gnu_debuglink`
    /// records; nil when the file cannot be read.
    static func crc32(of descriptor: Int32) -> UInt32? {
        var crc: UInt32 = 0xFFFF_FFFF
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0 { return nil }
            if count == 0 { return ~crc }
            for byte in buffer[0..<count] { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
            offset += off_t(count)
        }
    }

    private static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }
}
