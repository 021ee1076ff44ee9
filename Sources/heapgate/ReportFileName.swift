import ArgumentParser
import HeapGate

/// A `--log-file` or `--xml-file` name as valgrind reads it: `%p` becomes each process's pid,
/// `%q{VAR}` the value of the environment variable VAR, `%%` one `%`; any other `%` is refused,
/// as valgrind refuses it. heapgate replaced `%p` alone, so `--log-file=$DIR/%q{CI_JOB_ID}.log`
/// wrote a file named `%q{CI_JOB_ID}.log`, where the CI job looked for its log under the job's
/// id, and `%%p` became `%` and the pid.
struct ReportFileName: Equatable {
    private enum Part: Equatable {
        case text(String)
        case pid
    }

    private let parts: [Part]

    /// A name taken as it stands (`--json`, which is not valgrind's: no `%` is special).
    init(literal path: String) {
        parts = [.text(path)]
    }

    /// Reads `template`, the value of `option`; `%q{VAR}` is read from heapgate's environment,
    /// which the program inherits.
    init(_ template: String, option: String) throws {
        var parts: [Part] = []
        var text = ""
        var rest = Substring(template)
        while let percent = rest.firstIndex(of: "%") {
            text += rest[..<percent]
            let directive = rest[rest.index(after: percent)...]
            switch directive.first {
            case "p":
                parts.append(.text(text))
                text = ""
                parts.append(.pid)
                rest = directive.dropFirst()
            case "%":
                text += "%"
                rest = directive.dropFirst()
            case "q":
                let braced = directive.dropFirst()
                guard braced.first == "{", let close = braced.firstIndex(of: "}") else {
                    throw ValidationError("\(option)=\(template): %q needs a variable's name in braces, %q{VARIABLE}")
                }
                let name = String(braced[braced.index(after: braced.startIndex)..<close])
                guard let value = Environment.value(name) else {
                    throw ValidationError("\(option)=\(template): the environment variable '\(name)' in %q{\(name)} is not set")
                }
                text += value
                rest = braced[braced.index(after: close)...]
            default:
                let what = directive.first.map { "'%\($0)'" } ?? "a '%' at the end"
                throw ValidationError("\(option)=\(template): \(what) is none of valgrind's %p, %q{VARIABLE} and %%")
            }
        }
        text += rest
        parts.append(.text(text))
        self.parts = parts
    }

    /// Whether the name holds `%p`: one file per process.
    var isPerProcess: Bool { parts.contains(.pid) }

    /// The file's path for the process `pid` (any text: a probe name before the pids are known).
    func path(pid: String) -> String {
        parts.map { part in
            switch part {
            case .text(let text): return text
            case .pid: return pid
            }
        }.joined()
    }

    /// The file's path for the process `pid`.
    func path(pid: Int) -> String { path(pid: String(pid)) }

    /// The one path of a name without `%p`.
    var path: String { path(pid: "") }
}
