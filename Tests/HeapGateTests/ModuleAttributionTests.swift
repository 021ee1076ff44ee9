import Foundation
import Testing
@testable import HeapGate

/// Which module a recorded frame is attributed to: the newest loaded module whose segments hold
/// it (docs/trace-format.md, MODULE_LOAD and MODULE_UNLOAD), however modules overlap, unload
/// and come back. The reader answers from an index (`LoadedModules`), not a scan of the list.
@Suite("Frames attributed to modules")
struct ModuleAttributionTests {
    // MARK: A crafted trace, read by the replay

    static func header() -> Data {
        var bytes = Data("HEAPGATE".utf8)
        for field: UInt32 in [4, 56, 4242, 1] { withUnsafeBytes(of: field.littleEndian) { bytes.append(contentsOf: $0) } }
        bytes.append(Data(count: 8)) // start_ns
        for field: UInt32 in [0, 64] { withUnsafeBytes(of: field.littleEndian) { bytes.append(contentsOf: $0) } }
        bytes.append(Data(count: 16)) // reserved
        return bytes
    }

    static func string(_ text: String) -> Data { TraceBuilder.uv(UInt64(text.utf8.count)) + Data(text.utf8) }

    static func moduleLoad(_ id: UInt64, base: UInt64, _ segments: [(vaddr: UInt64, size: UInt64)]) -> Data {
        var record = Data([0x02]) + TraceBuilder.uv(id) + TraceBuilder.uv(base) + string("/lib/m\(id).so") + TraceBuilder.uv(0)
        record += TraceBuilder.uv(UInt64(segments.count))
        for segment in segments { record += TraceBuilder.uv(segment.vaddr) + TraceBuilder.uv(segment.size) }
        return record
    }

    static func moduleUnload(_ id: UInt64) -> Data { Data([0x03]) + TraceBuilder.uv(id) }

    static func stack(_ id: UInt64, _ frames: [UInt64]) -> Data {
        var record = Data([0x04]) + TraceBuilder.uv(id) + TraceBuilder.uv(UInt64(frames.count)) + TraceBuilder.uv(frames[0])
        for (previous, frame) in zip(frames, frames.dropFirst()) {
            record += TraceBuilder.sv(Int64(bitPattern: frame &- previous))
        }
        return record
    }

    /// Modules m0 … m5 come and go over the addresses 0x10000 – 0x10fff; each STACK record
    /// probes the same kind of addresses, and the modules the frames fall in are exact.
    @Test func newestLoadedModuleWinsAndUnloadedOnesStopCovering() throws {
        let top: UInt64 = 0xffff_ffff_ffff_f000
        let wrapsAt: UInt64 = .max - 0xff
        let parts: [Data] = [
            Data([0x01]) + TraceBuilder.uv(1) + Self.string("crafted") + Self.string(""),
            Self.moduleLoad(0, base: 0x10000, [(0, 0x1000)]),           // 0x10000 – 0x10fff
            Self.moduleLoad(1, base: 0x10000, [(0x800, 0x100)]),        // 0x10800 – 0x108ff, over m0
            Self.stack(1, [0x10010, 0x10810, 0x108ff, 0x10900, 0x20000]),
            Self.moduleUnload(1),                                       // m0 covers 0x10800 again
            Self.stack(2, [0x10810]),
            Self.moduleUnload(0),
            Self.moduleLoad(2, base: 0x10000, [(0, 0x800)]),            // replaces m0's first half
            Self.stack(3, [0x10010, 0x10810]),
            Self.moduleLoad(3, base: 0x10000, [(0, 0x1000)]),           // newer than m2, over it
            Self.stack(4, [0x10010, 0x10810]),
            Self.moduleLoad(2, base: 0x10000, [(0, 0x800)]),            // m2 restated: newest again
            Self.stack(5, [0x10010, 0x10810, 0x10fff, 0x11000]),
            Self.moduleLoad(4, base: top, [(0x800, 0x1000)]),           // runs past the top to 0x7ff
            Self.moduleLoad(5, base: 0x30000, [(wrapsAt, 0x200)]),      // its end wraps: holds nothing
            Self.stack(6, [top + 0x7ff, top + 0x800, .max, 0, 0x7ff, 0x800, 0x30000 &+ wrapsAt]),
        ]
        let records = parts.reduce(Data(), +)
        try Harness.withTemporaryDirectory { directory in
            let path = directory + "/crafted.trace"
            try (Self.header() + records).write(to: URL(fileURLWithPath: path))
            let heap = try HeapReplay.load(path: path)
            func modules(_ stack: UInt64) -> [UInt64?] { heap.stacks[stack]?.map(\.moduleID) ?? [] }
            #expect(modules(1) == [0, 1, 1, 0, nil])
            #expect(modules(2) == [0])
            #expect(modules(3) == [2, nil])
            #expect(modules(4) == [3, 3])
            #expect(modules(5) == [2, 3, 3, nil])
            #expect(modules(6) == [nil, 4, 4, 4, 4, nil, nil])
            #expect(heap.stacks[1]?.map(\.address) == [0x10010, 0x10810, 0x108ff, 0x10900, 0x20000])
            #expect(heap.modules.keys.sorted() == [0, 1, 2, 3, 4, 5]) // unloaded ones are kept
        }
    }

    // MARK: The index against the list it replaced

    /// The list scan the index replaced: the newest loaded module that contains the address.
    struct ModuleList {
        var loaded: [TraceModule] = []
        mutating func load(_ module: TraceModule) {
            loaded.removeAll { $0.id == module.id }
            loaded.append(module)
        }
        mutating func unload(id: UInt64) { loaded.removeAll { $0.id == id } }
        func module(containing address: UInt64) -> UInt64? { loaded.last { $0.contains(address) }?.id }
    }

    /// A fixed-seed generator, so that a failure can be replayed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d4_9ceb_133b_111b
            return z ^ (z >> 31)
        }
    }

    /// Random loads (new ids, and ids loaded again), unloads and look-ups over a small window of
    /// addresses, so that segments overlap, nest and share ends; some modules sit at the top of
    /// the address space, some segments wrap. Every answer must be the list's.
    @Test(arguments: [1, 2, 3, 4])
    func indexAnswersAsTheListDid(seed: UInt64) {
        var random = SplitMix64(state: seed)
        var index = LoadedModules(), list = ModuleList()
        var nextID: UInt64 = 0
        var hits = 0, misses = 0
        let window: UInt64 = 0x400
        func address() -> UInt64 {
            let offset = UInt64.random(in: 0..<window, using: &random)
            return Bool.random(using: &random) ? 0x10000 &+ offset : 0 &- window / 2 &+ offset
        }
        for _ in 0..<3000 {
            switch UInt64.random(in: 0..<10, using: &random) {
            case 0..<3:
                let id = nextID > 0 && UInt64.random(in: 0..<4, using: &random) == 0 ? UInt64.random(in: 0..<nextID, using: &random) : nextID
                if id == nextID { nextID += 1 }
                let segments = (0..<Int.random(in: 0...4, using: &random)).map { _ -> (vaddr: UInt64, size: UInt64) in
                    let vaddr = UInt64.random(in: 0..<10, using: &random) == 0 ? .max - UInt64.random(in: 0..<0x40, using: &random)
                                                                               : UInt64.random(in: 0..<0x100, using: &random)
                    return (vaddr, UInt64.random(in: 0..<0x100, using: &random))
                }
                let module = TraceModule(id: id, path: "/m\(id)", base: address() &- 0x80, buildID: [], segments: segments)
                index.load(module)
                list.load(module)
            case 3:
                guard nextID > 0 else { continue }
                let id = UInt64.random(in: 0..<nextID, using: &random)
                index.unload(id: id)
                list.unload(id: id)
            default:
                for _ in 0..<20 {
                    let probe = address()
                    let expected = list.module(containing: probe)
                    let found = index.module(containing: probe)
                    #expect(found == expected, "address \(String(probe, radix: 16))")
                    if found != expected { return }
                    if found == nil { misses += 1 } else { hits += 1 }
                }
            }
        }
        #expect(hits > 100 && misses > 100, "\(hits) look-ups found a module, \(misses) none")
    }
}
