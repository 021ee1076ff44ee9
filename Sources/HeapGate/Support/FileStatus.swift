#if canImport(Glibc)
import Glibc
#endif

/// What stat(2) says about a path, following symbolic links.
public enum FileStatus {
    /// Wraps stat(2); nil when the path cannot be looked up.
    static func of(_ path: String) -> stat? {
        var status = stat()
        return stat(path, &status) == 0 ? status : nil
    }

    /// True when `path` names a directory.
    public static func isDirectory(_ path: String) -> Bool {
        of(path).map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
    }

    /// True when `path` names a regular file (not a FIFO, a device or a directory, whose
    /// open or read may block or never end).
    public static func isRegularFile(_ path: String) -> Bool {
        of(path).map { $0.st_mode & S_IFMT == S_IFREG } ?? false
    }

    /// What a file whose `st_mode` is `mode` is, when it is not a regular file, in words for
    /// a message ("a FIFO"); nil for a regular file.
    static func irregularKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "a special file"
        }
    }

    /// What tells one file from another, whatever path names it: device and inode.
    public struct Identity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    /// The identity of the file at `path` (links followed); nil when it cannot be looked up.
    public static func identity(_ path: String) -> Identity? {
        of(path).map { Identity(device: UInt64($0.st_dev), inode: UInt64($0.st_ino)) }
    }

    /// True when something exists at `path`.
    public static func exists(_ path: String) -> Bool { of(path) != nil }

    /// True when both paths exist and are the same file (device and inode: another name, a
    /// symbolic or hard link, count too).
    public static func isSameFile(_ one: String, _ other: String) -> Bool {
        guard let a = of(one), let b = of(other) else { return false }
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    /// The size in bytes of the file at `path`.
    public static func size(_ path: String) -> UInt64? {
        of(path).map { UInt64($0.st_size) }
    }

    /// Seconds since the file at `path` was last modified (negative for a time in the future).
    public static func secondsSinceModification(_ path: String) -> Int? {
        of(path).map { time(nil) - $0.st_mtim.tv_sec }
    }
}
