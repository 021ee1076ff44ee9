#if canImport(Glibc)
import Glibc
#endif

/// Messages for the user on standard error, written with write(2) as they come.
public enum StandardError {
    /// Writes `text` whole (retried on EINTR and short writes). Returns 0, or the error that
    /// stopped it, which callers writing a message ignore (nothing better can be done with a
    /// message that cannot be shown) and the report's writer does not (a full disk).
    @discardableResult
    public static func write(_ text: String) -> Int32 {
        Array(text.utf8).withUnsafeBytes { WholeWrite.write($0, to: 2) }
    }
}
