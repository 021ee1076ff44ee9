#if canImport(Glibc)
import Glibc
#endif

/// write(2) until every byte is out: retried on EINTR and after short writes.
enum WholeWrite {
    /// Writes `bytes` to `descriptor`; 0 when all went out, else the error that stopped it.
    static func write(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }
}
