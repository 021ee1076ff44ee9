import Foundation

/// Reads a file front to back through a fixed buffer, so a multi-gigabyte trace costs
/// only the buffer. Decoding helpers throw `ByteStream.EndOfData` when the file ends
/// in the middle of a value; callers turn that into "truncated" or "corrupt".
struct ByteStream {
    struct EndOfData: Error {}
    /// A varint longer than 10 bytes: corrupt data, not a short file.
    struct Overlong: Error {}

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var index = 0
    private var atEOF = false
    /// Bytes consumed before `buffer`.
    private var bufferStart: UInt64 = 0
    private static let chunkSize = 1 << 20

    init(handle: FileHandle) { self.handle = handle }

    /// The file offset of the next byte.
    var offset: UInt64 { bufferStart + UInt64(index) }

    /// Continues reading at `offset`.
    mutating func seek(to offset: UInt64) -> Bool {
        guard (try? handle.seek(toOffset: offset)) != nil else { return false }
        buffer.removeAll(keepingCapacity: true)
        index = 0
        bufferStart = offset
        atEOF = false
        return true
    }

    /// True when no byte is left.
    mutating func isAtEnd() -> Bool {
        if index < buffer.count { return false }
        refill()
        return index >= buffer.count
    }

    private mutating func refill() {
        guard !atEOF else { return }
        bufferStart += UInt64(index)
        buffer.removeFirst(index)
        index = 0
        let data = (try? handle.read(upToCount: Self.chunkSize)) ?? nil
        if let data, !data.isEmpty { buffer.append(contentsOf: data) } else { atEOF = true }
    }

    @inline(__always)
    mutating func byte() throws -> UInt8 {
        if index >= buffer.count {
            refill()
            if index >= buffer.count { throw EndOfData() }
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
            if shift < 64 { result |= UInt64(b & 0x7f) << shift }
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift >= 70 { throw Overlong() }
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
