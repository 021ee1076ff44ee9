import Foundation

/// Just enough ELF reading to tell whether LD_PRELOAD can work on a program.
enum ElfInspection {
    /// True for an ELF executable with no PT_INTERP (no dynamic loader, so no preloading).
    /// Scripts and anything unreadable answer false: the kernel or a shell will say more.
    static func isStaticExecutable(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path),
              let data = try? handle.read(upToCount: 64 * 1024) else { return false }
        let bytes = [UInt8](data)
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
              bytes[4] == 2 /* ELFCLASS64 */, bytes[5] == 1 /* little-endian */ else { return false }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let phoff = u64(32), phentsize = u16(54), phnum = u16(56)
        guard phentsize >= 4 else { return false }
        for index in 0..<phnum {
            let at = phoff + index * phentsize
            guard at + 4 <= bytes.count else { return false }
            let type = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            if type == 3 /* PT_INTERP */ { return false }
        }
        return true
    }
}
