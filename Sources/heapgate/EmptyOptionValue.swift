import ArgumentParser

/// Refuses an option given as `--NAME=` with nothing after the `=`. swift-argument-parser reads
/// it as `--NAME` alone and takes the next word as the value: `heapgate summary --json= a.trace
/// b.trace` wrote the JSON report over a.trace and exited 0, `--log-file=` and `--xml-file=`
/// likewise, and `--error-exitcode= a.trace` complained about the value 'a.trace'.
enum EmptyOptionValue {
    /// heapgate's options that take a value (`ReportFlags`, and `run`'s `--trace-dir`). A test
    /// (`CommandLineTests.everyOptionWithAValueRefusesAnEmptyOne`) reads the options from
    /// `--help`, so one added to the flags without being added here fails it.
    static let valued: Set<String> = [
        "--json", "--num-callers", "--log-file", "--xml", "--xml-file", "--leak-check", "--show-leak-kinds",
        "--errors-for-leak-kinds", "--error-exitcode", "--suppressions", "--default-suppressions",
        "--gen-suppressions", "--trace-dir",
    ]

    /// heapgate's options without a value.
    static let flags: Set<String> = ["-q", "--quiet", "--debuginfod", "-h", "--help"]

    /// Throws for the first `--NAME=` among heapgate's own options in `arguments` (what follows
    /// the subcommand's name). For `run`, only the words before the program count: the scan
    /// stops at `--` or at the first word that is neither an option nor an option's value, and
    /// never looks at the program's arguments. For `summary`, every word before `--`.
    static func check(_ arguments: [String], stopAtFirstOperand: Bool) throws {
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" { return }
            guard word.hasPrefix("-"), word != "-" else {
                if stopAtFirstOperand { return }
                continue
            }
            if word.hasPrefix("--"), let equals = word.firstIndex(of: "=") {
                let name = String(word[..<equals])
                if word.index(after: equals) == word.endIndex, valued.contains(name) || flags.contains(name) {
                    throw ValidationError(valued.contains(name)
                        ? "\(word) has an empty value: give \(name)=VALUE, or leave the option out"
                        : "\(word) has an empty value: \(name) takes none")
                }
            } else if valued.contains(word) {
                // The parser takes the next word as the value unless it reads as an option.
                if index < arguments.count, !arguments[index].hasPrefix("-") || arguments[index] == "-" { index += 1 }
            } else if !flags.contains(word), stopAtFirstOperand {
                // An unknown option: `run` refuses it (RunCommand.unknownOptionMessage).
                return
            }
        }
    }
}
