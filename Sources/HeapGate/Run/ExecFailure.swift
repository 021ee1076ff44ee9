#if canImport(Glibc)
import Glibc
#endif

/// Why the kernel would not start a program that exists: posix_spawn reports exec's errno, and
/// a shell turns the same errors into 126 or 127 with a message that says what to fix. Every
/// one was exit status 1 ("Exec format error", or "No such file or directory" naming the script
/// when its interpreter was missing), which a CI job cannot tell from the program's own 1.
extension LaunchError {
    /// The error for exec's `error` on `path`, a file that was found.
    static func execFailure(_ path: String, _ error: Int32) -> LaunchError {
        if [ENOENT, EACCES, ENOEXEC].contains(error), let interpreter = ScriptInterpreter.named(by: path) {
            return .badInterpreter(path, interpreter: interpreter, error)
        }
        switch error {
        case ENOEXEC: return .cannotExecute(path)
        case EACCES: return .notExecutable(path)
        case ENOENT: return .requiredFileMissing(path)
        default: return .spawnFailed(path, error)
        }
    }
}

/// The interpreter a script's `#!` line names, as the kernel reads it (binfmt_script).
enum ScriptInterpreter {
    /// The path after `#!` (blanks before it skipped, up to the next blank or the line's end),
    /// or nil when the file does not start with `#!` and a path, or cannot be read.
    static func named(by path: String) -> String? {
        // Only a regular file can be a script (a FIFO's open would wait for a writer). The
        // kernel reads at most 256 bytes of the line (BINPRM_BUF_SIZE).
        guard let file = ReadOnlyFile(path: path, nonBlocking: true), file.type == S_IFREG,
              let bytes = file.read(upTo: 256), bytes.starts(with: Array("#!".utf8)) else { return nil }
        let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        let rest = bytes.dropFirst(2).drop(while: blank)
        let name = rest.prefix { !blank($0) && $0 != UInt8(ascii: "\n") && $0 != 0 }
        return name.isEmpty ? nil : String(decoding: name, as: UTF8.self)
    }

    /// The name with its control characters written out (`\r`, `\x1B`), for a message of one
    /// line: the carriage return that DOS line endings leave at the end of the `#!` line sent
    /// the terminal's cursor back over the message, whose end then hid its start.
    static func shown(_ name: String) -> String {
        var text = ""
        for scalar in name.unicodeScalars {
            switch scalar.value {
            case 0x0D: text += "\\r"
            case 0..<0x20, 0x7F: text += "\\x" + String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 2)
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
