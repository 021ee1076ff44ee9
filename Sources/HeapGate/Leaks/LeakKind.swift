/// How a block in use at exit is reached, in memcheck's terms.
public enum LeakKind: String, CaseIterable, Sendable, Codable {
    /// Nothing points to the block (in a lost cycle, the block the cycle is reported under).
    case definite
    /// Pointed to only from lost blocks.
    case indirect
    /// Reached only through interior pointers.
    case possible
    /// A chain of start pointers leads to it from a root.
    case reachable

    /// The words valgrind uses in loss records ("are definitely lost").
    public var valgrindPhrase: String {
        switch self {
        case .definite: return "definitely lost"
        case .indirect: return "indirectly lost"
        case .possible: return "possibly lost"
        case .reachable: return "still reachable"
        }
    }
}
