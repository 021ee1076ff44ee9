#if canImport(Glibc)
import Glibc
#endif

/// The file-size limit (`ulimit -f`, RLIMIT_FSIZE) that a traced program inherits. The shim
/// never writes past it (a write that starts there raises SIGXFSZ, which would kill the
/// program), so a trace that reached it ends there, incomplete, and the report should say why.
public enum FileSizeLimit {
    /// This process's limit in bytes, or nil when there is none.
    public static var bytes: UInt64? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { // RLIM_INFINITY, all ones
            return nil
        }
        return UInt64(limit.rlim_cur)
    }

    /// The files among `paths` that reached `limit` bytes.
    public static func filesAtLimit(_ paths: [String], limit: UInt64) -> [String] {
        paths.filter { path in (FileStatus.size(path) ?? 0) >= limit }
    }
}
