#if canImport(Glibc)
import Glibc
#endif

/// A file opened for reading with open(2) and closed when the value goes away. The reader and
/// the launcher need no more than this, and it spares the CLI Foundation's FileHandle, which
/// brings all of Foundation (and ICU) into the static binary (docs/architecture.md, "What the CLI
/// costs each run": `heapgate --version` 4.5 → 3.3 ms, 5,500 → 3,700 conformance records to scan).
final class ReadOnlyFile {
    private let descriptor: Int32

    /// Wraps open(2) with `O_RDONLY | O_CLOEXEC`; nil when the file cannot be opened.
    /// `nonBlocking` adds `O_NONBLOCK`, for a path that may not be a regular file: the open of
    /// a FIFO then returns at once instead of waiting for a writer, and a read of a terminal
    /// fails (EAGAIN) instead of waiting for input. Regular files read as without it.
    init?(path: String, nonBlocking: Bool = false) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0))
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    /// The type of the file opened (`S_IFREG`, `S_IFDIR`, `S_IFIFO`, `S_IFCHR`…: fstat(2)'s
    /// `st_mode & S_IFMT`); nil on an error.
    var type: mode_t? { status.map { $0.st_mode & S_IFMT } }

    deinit { close(descriptor) }

    /// Wraps read(2), retried on EINTR: up to `count` bytes into `buffer`; -1 on an error.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) -> Int {
        while true {
            let got = Glibc.read(descriptor, buffer, count)
            if got >= 0 || errno != EINTR { return got }
        }
    }

    /// Up to `count` bytes from the current offset (fewer at the end of the file); nil on an error.
    func read(upTo count: Int) -> [UInt8]? {
        filled(count) { buffer, wanted, _ in read(into: buffer, count: wanted) }
    }

    /// Wraps pread(2), retried on EINTR: up to `count` bytes at `offset` (fewer at the end of
    /// the file), leaving the file offset where it was; nil on an error.
    func read(upTo count: Int, at offset: UInt64) -> [UInt8]? {
        filled(count) { buffer, wanted, done in
            while true {
                let got = pread(descriptor, buffer, wanted, off_t(offset) + off_t(done))
                if got >= 0 || errno != EINTR { return got }
            }
        }
    }

    /// Up to `count` bytes from repeated calls of `chunk(buffer, wanted, done)`, which reads at
    /// most `wanted` bytes into `buffer`, `done` having come before (0 at the end, -1 on an error).
    private func filled(_ count: Int, _ chunk: (UnsafeMutableRawPointer, Int, Int) -> Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { chunk($0.baseAddress! + done, count - done, done) }
            if got < 0 { return nil }
            if got == 0 { break }
            done += got
        }
        return Array(bytes[..<done])
    }

    /// Wraps fstat(2); nil on an error.
    var status: stat? {
        var status = stat()
        return fstat(descriptor, &status) == 0 ? status : nil
    }

    /// The file's size now.
    var size: UInt64? { status.map { UInt64($0.st_size) } }

    /// Everything from the current offset to the end: for /proc files, whose size reads as 0.
    /// With `limit`, nil once more than `limit` bytes came (a device such as /dev/zero never ends).
    func readToEnd(limit: Int = .max) -> [UInt8]? {
        var all: [UInt8] = []
        while true {
            guard let chunk = read(upTo: 64 * 1024) else { return nil }
            all += chunk
            if all.count > limit { return nil }
            if chunk.isEmpty { return all }
        }
    }

    /// Wraps lseek(2) with SEEK_SET; false on an error.
    func seek(to offset: UInt64) -> Bool {
        lseek(descriptor, off_t(offset), SEEK_SET) >= 0
    }
}
