#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Just enough ELF reading to tell whether LD_PRELOAD can load the shim into a program.
enum ElfInspection {
    /// What the program's ELF header says about preloading the shim into it.
    enum Verdict: Equatable {
        /// The loader can preload the shim. Also scripts and unreadable files: the kernel or a
        /// shell will say more about those.
        case preloadable
        /// No PT_INTERP: no dynamic loader runs, so nothing honours LD_PRELOAD.
        case staticExecutable
        /// Built for another ELF class or machine than the shim (a 32-bit program, an AArch64
        /// one run by binfmt emulation): the loader refuses the shim ("wrong ELF class") and
        /// runs the program untraced.
        case otherArchitecture(program: String, shim: String)
        /// Linked against musl, whose loader (`loader`) stops with an error, and does not start
        /// the program, when a preload it cannot load (the glibc-linked shim) is asked for.
        case muslProgram(loader: String)
        /// Started by the kernel in secure-execution mode, where the loader ignores LD_PRELOAD
        /// (`why`: see `SecureExecution`). Only ELF files: Linux ignores the set-ID bits and
        /// capabilities of a script, whose interpreter starts as usual.
        case secureExecution(why: String)
    }

    /// The fields of an ELF header that decide whether one file can be loaded into the other.
    struct Target: Equatable {
        var is64Bit: Bool
        var littleEndian: Bool
        var machine: Int

        var name: String {
            switch (machine, is64Bit) {
            case (62, true): return "x86-64"
            case (62, false): return "x32 (x86-64 with 32-bit pointers)"
            case (3, _): return "32-bit x86"
            case (183, _): return "AArch64"
            case (40, _): return "32-bit ARM"
            case (243, _): return is64Bit ? "64-bit RISC-V" : "32-bit RISC-V"
            case (21, _): return littleEndian ? "64-bit little-endian PowerPC" : "64-bit PowerPC"
            case (22, _): return "s390x"
            default: return "machine \(machine), \(is64Bit ? 64 : 32)-bit \(littleEndian ? "little" : "big")-endian"
            }
        }
    }

    static func verdict(program path: String, shim: String) -> Verdict {
        guard let bytes = header(path), let programTarget = target(bytes) else { return .preloadable }
        if let shimTarget = header(shim).flatMap(target), shimTarget != programTarget {
            return .otherArchitecture(program: programTarget.name, shim: shimTarget.name)
        }
        switch interpreter(bytes, programTarget) {
        case .absent?: return .staticExecutable
        case let .path(loader)? where loader.split(separator: "/").last?.hasPrefix("ld-musl") == true:
            return .muslProgram(loader: loader)
        default: return SecureExecution.reason(path: path).map { .secureExecution(why: $0) } ?? .preloadable
        }
    }

    private enum Interpreter {
        case absent
        case path(String)
    }

    /// The first 64 KiB, where the ELF header and (in practice) the program headers are; nil
    /// for anything but a regular file, opened without blocking: `heapgate run -- ./fifo` (a
    /// FIFO with an execute bit, which exec refuses) waited here for a writer for ever.
    private static func header(_ path: String) -> [UInt8]? {
        guard let file = ReadOnlyFile(path: path, nonBlocking: true), file.type == S_IFREG else { return nil }
        return file.read(upTo: 64 * 1024)
    }

    private static func target(_ bytes: [UInt8]) -> Target? {
        guard bytes.count >= 52, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
              bytes[4] == 1 || bytes[4] == 2, bytes[5] == 1 || bytes[5] == 2 else { return nil }
        let littleEndian = bytes[5] == 1
        let machine = littleEndian ? Int(bytes[18]) | Int(bytes[19]) << 8 : Int(bytes[18]) << 8 | Int(bytes[19])
        return Target(is64Bit: bytes[4] == 2, littleEndian: littleEndian, machine: machine)
    }

    /// The PT_INTERP of a 64-bit little-endian ELF file (`.absent`: it has none); nil where that
    /// cannot be told from `bytes` (other layouts, headers beyond them).
    private static func interpreter(_ bytes: [UInt8], _ target: Target) -> Interpreter? {
        guard target.is64Bit, target.littleEndian, bytes.count >= 64 else { return nil }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let phoff = u64(32), phentsize = u16(54), phnum = u16(56)
        guard phentsize >= 4, phoff >= 0, phoff < bytes.count else { return nil }
        for index in 0..<phnum {
            let at = phoff + index * phentsize
            guard at + 4 <= bytes.count else { return nil }
            let type = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            guard type == 3 /* PT_INTERP */ else { continue }
            guard at + 40 <= bytes.count else { return nil }
            let offset = u64(at + 8), size = u64(at + 32)
            guard offset >= 0, size > 0, size < 4096, offset + size <= bytes.count else { return nil }
            let path = bytes[offset..<(offset + size)].prefix { $0 != 0 }
            return .path(String(decoding: path, as: UTF8.self))
        }
        return .absent
    }
}
