#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// An allocator linked into a program under names of its own (Rust's tikv-jemallocator as
/// `_rjem_malloc`, mimalloc as `mi_malloc`, …): its blocks are not malloc's, so neither the shim
/// nor memcheck sees them, and a leak gate would pass over them in silence. `heapgate run` looks
/// for one in the program's symbol table and says so beside the report.
public enum PrefixedAllocator {
    /// Entry points that give such an allocator away, and what to call it.
    static let entryPoints: [String: String] = [
        "_rjem_malloc": "jemalloc under the _rjem_ prefix (Rust's tikv-jemallocator)",
        "_rjem_mallocx": "jemalloc under the _rjem_ prefix (Rust's tikv-jemallocator)",
        "je_malloc": "jemalloc under the je_ prefix",
        "je_mallocx": "jemalloc under the je_ prefix",
        "mi_malloc": "mimalloc",
        "mi_malloc_aligned": "mimalloc",
        "sn_rust_alloc": "snmalloc",
        "rpmalloc": "rpmalloc",
        "scalable_malloc": "TBB's scalable allocator",
    ]

    /// The allocator and the entry point found in the ELF file at `path` (its full symbol table,
    /// else its dynamic one), or nil. Only 64-bit little-endian files are read.
    public static func find(inExecutable path: String) -> (allocator: String, symbol: String)? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        return data.withUnsafeBytes { (file: UnsafeRawBufferPointer) -> (String, String)? in
            func u16(_ at: Int) -> Int { at + 2 <= file.count ? Int(file.loadUnaligned(fromByteOffset: at, as: UInt16.self)) : 0 }
            func u32(_ at: Int) -> Int { at + 4 <= file.count ? Int(file.loadUnaligned(fromByteOffset: at, as: UInt32.self)) : 0 }
            func u64(_ at: Int) -> Int {
                at + 8 <= file.count ? Int(truncatingIfNeeded: file.loadUnaligned(fromByteOffset: at, as: UInt64.self)) : 0
            }
            guard file.count >= 64, file[0] == 0x7f, file[1] == 0x45, file[2] == 0x4c, file[3] == 0x46,
                  file[4] == 2, file[5] == 1 else { return nil }
            let sectionOffset = u64(40), sectionSize = u16(58), sectionCount = u16(60)
            guard sectionSize == 64, sectionOffset > 0, sectionOffset <= file.count - sectionCount * 64 else { return nil }
            // SHT_SYMTAB (2) first, then SHT_DYNSYM (11): a stripped file keeps only the second.
            for wanted in [2, 11] {
                for index in 0..<sectionCount {
                    let header = sectionOffset + index * 64
                    guard u32(header + 4) == wanted else { continue }
                    let link = u32(header + 40)
                    guard link < sectionCount else { continue }
                    let symbols = u64(header + 24), symbolsSize = u64(header + 32)
                    let strings = u64(sectionOffset + link * 64 + 24), stringsSize = u64(sectionOffset + link * 64 + 32)
                    guard symbols >= 0, symbolsSize >= 0, symbols + symbolsSize <= file.count,
                          strings >= 0, stringsSize >= 0, strings + stringsSize <= file.count else { continue }
                    for symbol in stride(from: symbols, to: symbols + symbolsSize - 23, by: 24) {
                        // A defined function: st_info's type 2 (STT_FUNC), st_shndx not 0.
                        guard file[symbol + 4] & 0xf == 2, u16(symbol + 6) != 0 else { continue }
                        let name = u32(symbol)
                        guard name < stringsSize else { continue }
                        let start = strings + name
                        var end = start
                        while end < strings + stringsSize, file[end] != 0, end - start < 32 { end += 1 }
                        guard end - start < 32 else { continue }
                        let text = String(decoding: UnsafeRawBufferPointer(rebasing: file[start..<end]), as: UTF8.self)
                        if let allocator = entryPoints[text] { return (allocator, text) }
                    }
                }
            }
            return nil
        }
    }
}
