/// Whitespace trimming in plain Swift, on UTF-8 bytes. Foundation's `trimmingCharacters(in:)`
/// goes through NSString on Linux, and walking Characters pays for grapheme breaking: parsing
/// the default suppressions that way was a quarter of a short `heapgate run`'s own time.
/// Whitespace here is ASCII: space, tab, and the line breaks \n, \v, \f, \r.
extension StringProtocol where UTF8View: BidirectionalCollection {
    /// The text without leading and trailing whitespace.
    func trimmingWhitespace() -> String {
        let bytes = utf8
        guard let first = bytes.firstIndex(where: { !isASCIIWhitespace($0) }),
              let last = bytes.lastIndex(where: { !isASCIIWhitespace($0) })
        else { return "" }
        // The byte after the last non-blank one is ASCII (or the end): a character boundary.
        return String(self[first..<bytes.index(after: last)])
    }
}

private func isASCIIWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
