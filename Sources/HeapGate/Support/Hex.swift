/// Bytes as lower-case hex digits, two per byte (how build ids name files).
func hexString(_ bytes: [UInt8]) -> String {
    // Built as UTF-8 bytes: through an array of Characters it was 6.7 k instructions for a
    // 20-byte build id, and a report asks for one per frame it symbolizes.
    let digits: StaticString = "0123456789abcdef"
    return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
        digits.withUTF8Buffer { digit in
            for (index, byte) in bytes.enumerated() {
                buffer[2 * index] = digit[Int(byte >> 4)]
                buffer[2 * index + 1] = digit[Int(byte & 15)]
            }
        }
        return bytes.count * 2
    }
}
