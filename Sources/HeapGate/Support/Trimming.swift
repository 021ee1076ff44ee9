/// Whitespace trimming in plain Swift. Foundation's `trimmingCharacters(in:)` goes through
/// NSString on Linux: parsing the default suppressions with it took a quarter of a short
/// `heapgate run`'s own time (perf, `heapgate run -- /bin/true`).
extension StringProtocol {
    /// The text without leading and trailing whitespace (spaces, tabs, line breaks).
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
