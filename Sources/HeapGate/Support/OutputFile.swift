#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A report file (--json, --xml-file, --log-file), written where its path leads, as valgrind
/// writes its log: symbolic links are followed and devices and FIFOs written to
/// (`--log-file=/dev/stdout`, `/dev/null`, a FIFO a log collector reads). Foundation's
/// `createFile` writes a temporary file and renames it over the path, which, run as root,
/// replaced `/dev/null` or `/dev/full` with a regular file and a link with a file of its own.
public enum OutputFile {
    /// Writes `data` to `path` (created with mode 0666 less the umask, or truncated), and
    /// throws the system's reason when it cannot be opened, written whole or closed (a full
    /// disk: `/dev/full` gives ENOSPC).
    public static func write(_ data: Data, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw OutputFileError(errno: errno) }
        var failure = data.withUnsafeBytes { WholeWrite.write($0, to: descriptor) }
        if close(descriptor) != 0, failure == 0, errno != EINTR { failure = errno }
        if failure != 0 { throw OutputFileError(errno: failure) }
    }

    /// Whether `path` can be opened for writing, checked before the program runs so that a
    /// typo is not found only after it. A file that does not exist is created (empty), as the
    /// report will be; an existing one is left as it is. A FIFO is not opened: its reader
    /// would take the check's close for the end of its input. The report waits for a reader
    /// there, as valgrind's log does.
    public static func check(_ path: String) throws {
        if let status = FileStatus.of(path), status.st_mode & S_IFMT == S_IFIFO { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o666)
        guard descriptor >= 0 else { throw OutputFileError(errno: errno) }
        close(descriptor)
    }
}

/// Why a report file could not be written: the system's error.
public struct OutputFileError: Error, CustomStringConvertible {
    public var errno: Int32
    public init(errno: Int32) { self.errno = errno }
    public var description: String { String(cString: strerror(errno)) }
}
