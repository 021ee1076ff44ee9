import ArgumentParser
import HeapGate

/// valgrind options that heapgate takes as valgrind spells them, rewritten into heapgate's own
/// options before the command line is parsed. CTest runs a memcheck with valgrind's default
/// options, `-q --tool=memcheck --leak-check=yes --show-reachable=yes --num-callers=50`, and
/// CI scripts carry the same words: heapgate refused `--tool=memcheck` and `--show-reachable=yes`
/// as unknown options (status 64), so every test of `ctest -T memcheck` failed without running.
///
/// - `--tool=memcheck` is what heapgate does, and is dropped; another tool is refused.
/// - `--show-reachable=yes|no` and `--show-possibly-lost=yes|no` add or remove a kind from
///   `--show-leak-kinds`, in the order given, as memcheck applies them: `--show-reachable=yes`
///   shows every kind, `=no` takes reachable out, `--show-possibly-lost` adds or takes out
///   possible. The result replaces them all as one `--show-leak-kinds`.
/// - `--trace-children=yes` is what heapgate always does, and is dropped (`=no` stays an
///   unknown option, whose message says why).
///
/// Like valgrind, only the `--NAME=VALUE` form is taken, and only among heapgate's own words:
/// for `run`, those before the program or `--` (a program's `--tool=memcheck` is its own).
enum ValgrindSpellings {
    /// `arguments` (the words after the subcommand's name) with valgrind's spellings rewritten.
    static func rewrite(_ arguments: [String], forRun: Bool) throws -> [String] {
        let end = forRun ? ownWordCount(arguments) : (arguments.firstIndex(of: "--") ?? arguments.count)
        var own = Array(arguments[..<end])
        own = try dropTool(own)
        if forRun { own.removeAll { $0 == "--trace-children=yes" } }
        own = try foldShowKinds(own)
        return own + arguments[end...]
    }

    /// The number of leading words that are heapgate's own options (and their values) in `run`'s
    /// arguments: up to `--`, the first operand (the program) or an option heapgate does not know.
    private static func ownWordCount(_ arguments: [String]) -> Int {
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            guard word.hasPrefix("-"), word != "-", word != "--" else { return index }
            index += 1
            let name = String(word.prefix { $0 != "=" })
            if known.contains(name) { continue }
            if EmptyOptionValue.valued.contains(word) {
                // The parser takes the next word as the value unless it reads as an option.
                if index < arguments.count, !arguments[index].hasPrefix("-") || arguments[index] == "-" { index += 1 }
            } else if !EmptyOptionValue.valued.contains(name), !EmptyOptionValue.flags.contains(word) {
                return index - 1
            }
        }
        return index
    }

    /// The valgrind names rewritten here.
    private static let known: Set<String> = ["--tool", "--show-reachable", "--show-possibly-lost", "--trace-children"]

    private static func dropTool(_ words: [String]) throws -> [String] {
        for word in words where word.hasPrefix("--tool=") && word != "--tool=memcheck" {
            throw ValidationError("\(word): heapgate does memcheck's leak check only (--tool=memcheck, or leave --tool out)")
        }
        return words.filter { $0 != "--tool=memcheck" }
    }

    /// Folds `--show-leak-kinds`, `--show-reachable` and `--show-possibly-lost` into one
    /// `--show-leak-kinds`, in their order; `words` unchanged when neither old one is there.
    private static func foldShowKinds(_ words: [String]) throws -> [String] {
        guard words.contains(where: { $0.hasPrefix("--show-reachable") || $0.hasPrefix("--show-possibly-lost") }) else {
            return words
        }
        var kinds = try ReportSettings.kinds(ReportSettings.standard.showLeakKinds, flag: "--show-leak-kinds")
        var kept: [String] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            if word == "--show-leak-kinds", index < words.count {
                kinds = try ReportSettings.kinds(words[index], flag: "--show-leak-kinds")
                index += 1
            } else if word.hasPrefix("--show-leak-kinds=") {
                kinds = try ReportSettings.kinds(String(word.dropFirst("--show-leak-kinds=".count)), flag: "--show-leak-kinds")
            } else if let show = try yesOrNo(word, option: "--show-reachable") {
                if show { kinds = Set(LeakKind.allCases) } else { kinds.remove(.reachable) }
            } else if let show = try yesOrNo(word, option: "--show-possibly-lost") {
                if show { kinds.insert(.possible) } else { kinds.remove(.possible) }
            } else {
                kept.append(word)
            }
        }
        let list = kinds.isEmpty ? "none" : LeakKind.allCases.filter(kinds.contains).map(\.rawValue).joined(separator: ",")
        return kept + ["--show-leak-kinds=" + list]
    }

    /// true or false for `OPTION=yes` or `=no`, nil for another word; throws for another value.
    private static func yesOrNo(_ word: String, option: String) throws -> Bool? {
        guard word == option || word.hasPrefix(option + "=") else { return nil }
        switch word.dropFirst(option.count) {
        case "=yes": return true
        case "=no": return false
        default: throw ValidationError("\(option) takes =yes or =no, as in valgrind (or give --show-leak-kinds=KINDS)")
        }
    }
}
