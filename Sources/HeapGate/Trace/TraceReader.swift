#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Decodes a trace file record by record, holding only a read buffer.
///
/// A file cut off between or inside records is not an error: `next()` returns nil and
/// `isComplete` stays false (no END record), so callers report what the trace holds and say
/// that it is incomplete. Anything that cannot be a heapgate trace throws `TraceFormatError`,
/// and so does a file that ends with the footer (the writer's last write: the file is whole)
/// but does not read to its END record.
struct TraceReader {
    let path: String
    let header: TraceHeader
    private let file: ReadOnlyFile
    private var stream: ByteStream
    /// Where the footer says the exit snapshot starts, when the file ends with a footer.
    private let footerSnapshotOffset: UInt64?
    /// True when the file ends with the footer, which the writer writes last: the file is
    /// whole, so a record that runs past its end is damage, not a cut.
    private var endsWithFooter: Bool { footerSnapshotOffset != nil }
    private var previousAddress: UInt64 = 0
    private(set) var isComplete = false
    /// The exit snapshot once its SNAPSHOT record was read (SNAPSHOT_BLOCK records come only
    /// after one): the blocks it announced, and the SNAPSHOT_BLOCK records read since.
    private var snapshotBlocks: (announced: UInt64, read: UInt64)?
    /// Where the SNAPSHOT record that was read starts: the footer after END names it.
    private var snapshotOffset: UInt64?
    /// True when the file ended inside a record.
    private(set) var endedMidRecord = false
    /// STACK records read in this part of the file, the event stream or the exit snapshot: the
    /// writer numbers them 1, 2, 3, … in each, and writes each before the first record naming it.
    private var stacksDefined: UInt64 = 0

    init(path: String) throws {
        self.path = path
        // Without blocking, and only a regular file: open(2) of a FIFO without a writer waited
        // for one for ever, and a FIFO or a device may never end.
        guard let file = ReadOnlyFile(path: path, nonBlocking: true) else {
            let reason = FileStatus.exists(path) ? "permission denied or not a file" : "no such file"
            throw TraceFormatError.cannotOpen(path: path, reason: reason)
        }
        if let mode = file.status?.st_mode, let kind = FileStatus.irregularKind(mode) {
            throw TraceFormatError.cannotOpen(path: path, reason: mode & S_IFMT == S_IFDIR ? "is a directory" : "\(kind), not a regular file")
        }
        self.file = file
        stream = ByteStream(file: file)
        if stream.isAtEnd() { throw TraceFormatError.empty(path: path) }
        header = try Self.readHeader(&stream, path: path)
        footerSnapshotOffset = Self.footerSnapshotOffset(of: file)
    }

    /// The snapshot offset in the footer (docs/trace-format.md, "Exit snapshot and footer"),
    /// if the file's last 16 bytes are one.
    private static func footerSnapshotOffset(of file: ReadOnlyFile) -> UInt64? {
        guard let size = file.size, size >= 16 + UInt64(TraceFormat.minimumHeaderSize),
              let footer = file.read(upTo: 16, at: size - 16), footer.count == 16,
              Array(footer[8...]) == TraceFormat.footerMagic else { return nil }
        return footer[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    private static func readHeader(_ stream: inout ByteStream, path: String) throws -> TraceHeader {
        do {
            let magic = try stream.bytes(8)
            guard magic == TraceFormat.magic else { throw TraceFormatError.notATrace(path: path) }
            let version = try stream.littleEndianU32()
            guard version <= TraceFormat.supportedVersion, version > 0 else {
                if version == 0 { throw TraceFormatError.corrupt(path: path, offset: 8, reason: "version 0") }
                throw TraceFormatError.unsupportedVersion(path: path, version: version)
            }
            let headerSize = Int(try stream.littleEndianU32())
            guard headerSize >= TraceFormat.minimumHeaderSize, headerSize < 1 << 16 else {
                throw TraceFormatError.corrupt(path: path, offset: 12, reason: "header size \(headerSize)")
            }
            let pid = try stream.littleEndianU32()
            let ppid = try stream.littleEndianU32()
            let start = try stream.littleEndianU64()
            let flags = try stream.littleEndianU32()
            let depth = try stream.littleEndianU32()
            _ = try stream.bytes(headerSize - 40) // reserved, and fields of newer minor revisions
            return TraceHeader(version: version, pid: Int(pid), parentPID: Int(ppid), startNanoseconds: start,
                               isForkChild: flags & TraceFormat.flagForked != 0, maxDepth: Int(depth),
                               stoppedForSandbox: flags & TraceFormat.flagSandboxed != 0)
        } catch is ByteStream.EndOfData {
            if (try? TraceReader.peekMagic(path: path)) == false { throw TraceFormatError.notATrace(path: path) }
            throw TraceFormatError.truncatedHeader(path: path)
        }
    }

    /// Whether the file at least starts like a trace (used to word errors on short files).
    private static func peekMagic(path: String) throws -> Bool {
        let data = FileManager.default.contents(atPath: path) ?? Data()
        let prefix = Array(data.prefix(8))
        return prefix == Array(TraceFormat.magic.prefix(prefix.count))
    }

    private mutating func address() throws -> UInt64 {
        let delta = try stream.sv()
        previousAddress = previousAddress &+ UInt64(bitPattern: delta)
        return previousAddress
    }

    /// A block's stack id: 0 (none captured) or one a STACK record before it defined. Trusted, a
    /// damaged id (or a STACK record lost to damage) made a loss record with no frame at all,
    /// and `--gen-suppressions` wrote for it a suppression of one `obj:*`, which matches any leak.
    private mutating func stackID() throws -> UInt64 {
        let id = try stream.uv()
        guard id <= stacksDefined else { throw corrupt("stack id \(id), which no STACK record before it defines") }
        return id
    }

    private mutating func string() throws -> String {
        guard let bytes = try stream.byteString() else { throw corrupt("string longer than 1 MiB") }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func corrupt(_ reason: String) -> TraceFormatError {
        .corrupt(path: path, offset: stream.offset, reason: reason)
    }

    /// Moves to the exit snapshot of a complete trace, if its footer names one, so that the
    /// event stream is skipped. Returns false (and stays put) for a trace without a footer.
    mutating func skipToSnapshot() -> Bool {
        guard let offset = footerSnapshotOffset, let size = file.size, size >= 16 else { return false }
        // A footer that does not point at a SNAPSHOT record (a damaged file) is no footer: the
        // events are replayed instead. Trusted, it skipped to wherever it pointed, and a trace
        // with leaks came out complete and empty.
        guard offset >= stream.offset, offset < size - 16,
              file.read(upTo: 1, at: offset)?.first == TraceFormat.Tag.snapshot.rawValue,
              stream.seek(to: offset) else { return false }
        return true
    }

    /// The next record, or nil at the end of the data (complete or not).
    mutating func next() throws -> TraceRecord? {
        if isComplete || endedMidRecord { return nil }
        let start = stream.offset
        if stream.isAtEnd() {
            guard endsWithFooter else { return nil }
            throw TraceFormatError.corrupt(path: path, offset: start, reason: "the file ends before its END record,"
                + " yet it ends with the footer of a whole trace")
        }
        do {
            let raw = try stream.byte()
            guard let tag = TraceFormat.Tag(rawValue: raw) else {
                throw TraceFormatError.corrupt(path: path, offset: start, reason: "unknown record tag 0x\(String(raw, radix: 16))")
            }
            if tag == .snapshot { snapshotOffset = start }
            return try decode(tag)
        } catch is ByteStream.EndOfData {
            // Taken for a cut, a damaged length in a whole file dropped the snapshot, and the
            // events it had jumped over were not there to fall back on: a report of nothing,
            // which passed the leak gate.
            guard !endsWithFooter else {
                throw TraceFormatError.corrupt(path: path, offset: start, reason: "the record runs past the end of the file,"
                    + " which ends with the footer of a whole trace")
            }
            endedMidRecord = true
            return nil
        } catch is ByteStream.Overlong {
            throw TraceFormatError.corrupt(path: path, offset: start, reason: "a number longer than 64 bits")
        }
    }

    private mutating func decode(_ tag: TraceFormat.Tag) throws -> TraceRecord {
        switch tag {
        case .command:
            let count = try stream.uv()
            guard count < 1 << 16 else { throw corrupt("\(count) arguments") }
            var arguments: [String] = []
            for _ in 0..<count { arguments.append(try string()) }
            return .command(arguments: arguments, executable: try string())
        case .moduleLoad:
            let id = try stream.uv()
            let base = try stream.uv()
            let path = try string()
            guard let buildID = try stream.byteString(limit: 64) else { throw corrupt("build-id longer than 64 bytes") }
            let count = try stream.uv()
            guard count <= 64 else { throw corrupt("\(count) segments") }
            var segments: [(vaddr: UInt64, size: UInt64)] = []
            for _ in 0..<count { segments.append((try stream.uv(), try stream.uv())) }
            return .moduleLoad(TraceModule(id: id, path: path, base: base, buildID: buildID, segments: segments))
        case .moduleUnload:
            return .moduleUnload(id: try stream.uv())
        case .stack:
            let id = try stream.uv()
            guard id == stacksDefined + 1 else { throw corrupt("stack id \(id) where \(stacksDefined + 1) comes next") }
            stacksDefined = id
            let depth = try stream.uv()
            guard depth >= 1, depth <= 1024 else { throw corrupt("stack of depth \(depth)") }
            var addresses = [try stream.uv()]
            addresses.reserveCapacity(Int(depth))
            for _ in 1..<depth { addresses.append(addresses[addresses.count - 1] &+ UInt64(bitPattern: try stream.sv())) }
            return .stack(id: id, addresses: addresses)
        case .alloc:
            return .alloc(address: try address(), size: try stream.uv(), stack: try stackID())
        case .free:
            return .free(address: try address())
        case .reallocFree:
            return .reallocFree(address: try address())
        case .realloc:
            let new = try address()
            let size = try stream.uv()
            let stack = try stackID()
            let old = new &+ UInt64(bitPattern: try stream.sv())
            return .realloc(address: new, size: size, stack: stack, oldAddress: old)
        case .elided:
            return .elided(pairs: try stream.uv(), bytesAllocated: try stream.uv())
        case .inherited:
            return .inherited(allocs: try stream.uv(), frees: try stream.uv(), bytesAllocated: try stream.uv())
        case .inheritedBlock:
            return .inheritedBlock(address: try address(), size: try stream.uv(), stack: try stackID())
        case .snapshot:
            let (allocs, frees, bytesAllocated, blocks) = (try stream.uv(), try stream.uv(), try stream.uv(), try stream.uv())
            // Each block takes a record of 5 bytes at least. The size as it is now: a trace read
            // while its process exits grows.
            let size = file.size ?? .max
            let room = size > stream.offset ? (size - stream.offset) / 5 : 0
            // In a whole file a count it cannot hold is damage. In a cut one it is what a process
            // killed while it wrote its snapshot leaves (it was called corrupt): the blocks that
            // did come are checked against the count at END, which a cut file never reaches.
            guard blocks <= room || !endsWithFooter else { throw corrupt("\(blocks) blocks in a snapshot") }
            previousAddress = 0 // the snapshot starts the address register afresh
            stacksDefined = 0 // and the stack ids: it writes the stacks it names again
            snapshotBlocks = (announced: blocks, read: 0)
            // Trusted, the count sized the reader's table: 2^64 blocks asked for 12.9 GB.
            return .snapshot(allocs: allocs, frees: frees, bytesAllocated: bytesAllocated, blocksToReserve: min(blocks, room))
        case .snapshotBlock:
            guard let counted = snapshotBlocks else { throw corrupt("a snapshot block before the snapshot") }
            guard counted.read < counted.announced else {
                throw corrupt("more snapshot blocks than the \(counted.announced) its SNAPSHOT record announced")
            }
            snapshotBlocks = (counted.announced, counted.read + 1)
            let address = try address()
            let size = try stream.uv()
            let stack = try stackID()
            let raw = try stream.uv()
            // 0 unclassified, 1...4 a kind, 4 + HG_HEURISTIC_*: still reachable through that heuristic.
            let kinds: [LeakKind] = [.definite, .indirect, .possible, .reachable]
            let heuristic = raw > UInt64(kinds.count) ? LeakHeuristic(traceValue: raw - UInt64(kinds.count)) : nil
            guard raw <= UInt64(kinds.count) || heuristic != nil else { throw corrupt("leak kind \(raw)") }
            let kind = raw == 0 ? nil : heuristic != nil ? .reachable : kinds[Int(raw) - 1]
            let leader = kind == .indirect ? address &+ UInt64(bitPattern: try stream.sv()) : nil
            return .snapshotBlock(address: address, size: size, stack: stack, kind: kind, leader: leader, heuristic: heuristic)
        case .scanDone:
            return .scanDone(blocks: try stream.uv(), rootBytes: try stream.uv(), nanoseconds: try stream.uv())
        case .scanSkipped:
            let raw = try stream.uv()
            guard let reason = LeakScanSkip(traceValue: raw) else { throw corrupt("reason \(raw) for a skipped scan") }
            return .scanSkipped(reason)
        case .stats:
            return .stats(events: try stream.uv(), ringFullWaits: try stream.uv(), lostEvents: try stream.uv(),
                          allocationsWithoutStack: header.version >= 5 ? try stream.uv() : 0)
        case .allocator:
            let outcome = try stream.uv()
            guard outcome == 1 || outcome == 2 else { throw corrupt("allocator outcome \(outcome)") }
            let object = try string()
            let reason = try string()
            return .allocator(ForeignAllocator(object: object, replaced: outcome == 1, reason: outcome == 1 ? nil : reason))
        case .bypass:
            let state = try stream.uv()
            guard state == 1 || state == 2 else { throw corrupt("bypass state \(state)") }
            return .bypass(BypassingLibrary(path: try string(), rebound: state == 2))
        case .end:
            let status = try stream.uv()
            if let counted = snapshotBlocks, counted.read != counted.announced {
                throw corrupt("END after \(counted.read) of the \(counted.announced) blocks the snapshot announced")
            }
            try checkWhatFollowsEnd()
            return .end(exitStatus: status == TraceFormat.unknownExitStatus ? nil : Int(truncatingIfNeeded: status))
        }
    }

    /// Complete means END and the footer after it, intact, and nothing more. A file cut in the
    /// footer (or right after END, as traces written before the footer end) is cut. Anything
    /// else after END no cut makes: it is damage, which was reported as a cut trace.
    private mutating func checkWhatFollowsEnd() throws {
        let afterEnd = stream.offset
        let tail = stream.bytes(upTo: 17)
        if tail.count == 16, Array(tail[8...]) == TraceFormat.footerMagic {
            // The writer writes the snapshot, then END and the footer: never one without the other.
            guard snapshotOffset != nil else {
                throw TraceFormatError.corrupt(path: path, offset: afterEnd, reason: "END and a footer, but no exit snapshot before them")
            }
            isComplete = true
            return
        }
        let footer = snapshotOffset.map { offset in (0..<8).map { UInt8(truncatingIfNeeded: offset >> (8 * $0)) } + TraceFormat.footerMagic }
        let isCutInFooter = tail.count < 16 && (tail.isEmpty || footer?.starts(with: tail) == true)
        guard isCutInFooter, !endsWithFooter else {
            let extra = (file.size ?? afterEnd) &- afterEnd
            throw TraceFormatError.corrupt(path: path, offset: afterEnd, reason: "END is followed by \(extra) bytes that are not the footer")
        }
        endedMidRecord = true
    }
}
