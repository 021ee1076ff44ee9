#if canImport(Glibc)
import Glibc
#endif

/// This process's environment variables, read with getenv(3). Foundation's
/// `ProcessInfo.processInfo.environment` builds a dictionary of all of them, 0.3 ms the first
/// time: a tenth of the CLI's start.
public enum Environment {
    /// Wraps getenv: the variable's value, or nil when it is not set.
    public static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The variables among `names` that are set, by name.
    public static func values(_ names: [String]) -> [String: String] {
        var found: [String: String] = [:]
        for name in names { found[name] = value(name) }
        return found
    }
}
