/// A traced program's arguments as the report's one `Command:` line shows them.
///
/// Every line of a report carries the `==PID==` prefix that log scrapers split on, so an
/// argument holding a newline must not start a line of its own. valgrind writes control
/// characters as `_` and puts a backslash before spaces and backslashes, so that
/// `a\ b` reads as one argument; heapgate does the same. It keeps printable non-ASCII
/// characters, which valgrind turns into one `_` per byte (`ü` → `__`).
public enum CommandLineText {
    /// The arguments joined by spaces, each escaped as valgrind's `Command:` line escapes it.
    public static func shown(_ arguments: [String]) -> String {
        arguments.map(shownArgument).joined(separator: " ")
    }

    /// Text with its control characters as `_` and nothing else changed: valgrind's form of an
    /// argument in the XML preamble's `Command:` line, and what every text report line and
    /// message does with a name the traced program chose (a path, a function's name).
    public static func controlsReplaced(_ argument: String) -> String {
        // Nearly every line has none: checked without building a copy.
        guard argument.unicodeScalars.contains(where: isControl) else { return argument }
        return String(String.UnicodeScalarView(argument.unicodeScalars.map { isControl($0) ? "_" : $0 }))
    }

    static func shownArgument(_ argument: String) -> String {
        var out = ""
        for scalar in argument.unicodeScalars {
            switch scalar {
            case " ": out += "\\ "
            case "\\": out += "\\\\"
            default: out += isControl(scalar) ? "_" : String(scalar)
            }
        }
        return out
    }

    /// C0 and C1 control characters and DEL: what would break the line or the terminal.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
