#if canImport(Glibc)
import Glibc
#endif

/// Messages for the user on standard error, written with write(2) as they come.
public enum StandardError {
    /// Writes `text` whole (retried on EINTR and short writes); gives up quietly on an error,
    /// as nothing better can be done with a message that cannot be shown.
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
