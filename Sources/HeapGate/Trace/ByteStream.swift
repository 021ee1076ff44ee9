#if canImport(Glibc)
import Glibc
#endif

/// Reads a file front to back through a bounded buffer, so a multi-gigabyte trace costs
/// only the buffer. Decoding helpers throw `ByteStream.EndOfData` when the file ends
/// in the middle of a value; callers turn that into "truncated" or "corrupt".
///
/// The buffer is filled with read(2) directly (Foundation's FileHandle read in 4 KiB pieces: 256
/// system calls and a copy per MiB). The first read after opening or seeking is small, because a
/// complete trace is read for its preamble and then left for its exit snapshot.
struct ByteStream {
    struct EndOfData: Error {}
    /// A varint longer than 10 bytes, or whose tenth byte holds more than bit 63: corrupt
    /// data, not a short file.
    struct Overlong: Error {}

    private let file: ReadOnlyFile
    /// Grows to `chunkSize` once a read fills the room it had (most traces of
    /// short-lived processes are smaller: a directory of many costs 64 KiB each).
    private var buffer = [UInt8](repeating: 0, count: ByteStream.firstReadSize)
    /// Bytes of `buffer` that hold file data.
    private var count = 0
    private var index = 0
    private var atEOF = false
    /// Bytes consumed before `buffer`.
    private var bufferStart: UInt64 = 0
    private var readSize = ByteStream.firstReadSize
    private static let chunkSize = 1 << 20
    private static let firstReadSize = 64 << 10

    init(file: ReadOnlyFile) { self.file = file }

    /// The file offset of the next byte.
    var offset: UInt64 { bufferStart + UInt64(index) }

    /// Continues reading at `offset`.
    mutating func seek(to offset: UInt64) -> Bool {
        guard file.seek(to: offset) else { return false }
        count = 0
        index = 0
        bufferStart = offset
        atEOF = false
        readSize = Self.firstReadSize
        return true
    }

    /// True when no byte is left.
    mutating func isAtEnd() -> Bool {
        if index < count { return false }
        refill()
        return index >= count
    }

    /// Keeps the unread bytes, moved to the front, and reads more after them; a read error
    /// ends the data like the end of the file (the reader then reports a truncated trace).
    private mutating func refill() {
        guard !atEOF else { return }
        bufferStart += UInt64(index)
        let kept = count - index
        let room = min(readSize, Self.chunkSize - kept)
        if buffer.count < kept + room {
            // Appended as an array (a memset and a copy): appending a repeated element went byte
            // by byte, and growing to 1 MiB that way was 6 % of a `heapgate summary` of a small trace.
            buffer += [UInt8](repeating: 0, count: kept + room - buffer.count)
        }
        let got = buffer.withUnsafeMutableBytes { raw -> Int in
            let base = raw.baseAddress!
            if kept > 0, index > 0 { memmove(base, base + index, kept) }
            return file.read(into: base + kept, count: room)
        }
        index = 0
        count = kept + max(got, 0)
        if got <= 0 { atEOF = true }
        // Read in large chunks only once a read came back full: a file that fit in its first
        // read (most traces of short-lived processes) never grows the buffer.
        if got == room { readSize = Self.chunkSize }
    }

    @inline(__always)
    mutating func byte() throws -> UInt8 {
        if index >= count {
            refill()
            if index >= count { throw EndOfData() }
        }
        let value = buffer[index]
        index += 1
        return value
    }

    /// Unsigned LEB128.
    mutating func uv() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            // The tenth byte has room for bit 63 alone: more bits were silently dropped.
            if shift == 63, b & 0x7e != 0 { throw Overlong() }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw Overlong() }
        }
    }

    /// Zigzag-encoded signed LEB128.
    mutating func sv() throws -> Int64 {
        let raw = try uv()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try byte()) }
        return out
    }

    /// Up to `count` bytes: fewer where the file ends.
    mutating func bytes(upTo count: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count, let next = try? byte() { out.append(next) }
        return out
    }

    /// A length-prefixed byte string; `limit` guards against corrupt lengths.
    mutating func byteString(limit: Int = 1 << 20) throws -> [UInt8]? {
        let length = try uv()
        guard length <= UInt64(limit) else { return nil }
        return try bytes(Int(length))
    }

    mutating func littleEndianU32() throws -> UInt32 {
        var value: UInt32 = 0
        for shift in stride(from: 0, to: 32, by: 8) { value |= UInt32(try byte()) << UInt32(shift) }
        return value
    }

    mutating func littleEndianU64() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) { value |= UInt64(try byte()) << UInt64(shift) }
        return value
    }
}
