/// Why the exit-time leak scan could not run although the leak check was wanted (the trace's
/// SCAN_SKIPPED record): the blocks in use are then reported unclassified, the report warns,
/// and a leak gate fails, since a check that never ran must not pass for one that found nothing.
public enum LeakScanSkip: String, Sendable, Codable {
    /// No memory for the scan's tables.
    case noMemory = "no-memory"
    /// /proc/self/maps, where the scan finds its roots, could not be read: every descriptor was
    /// in use, under a limit the scan could not raise.
    case noMappings = "no-mappings"

    /// The reason as the trace gives it (HG_SCAN_SKIPPED_*); nil for a value it never writes.
    init?(traceValue: UInt64) {
        switch traceValue {
        case 1: self = .noMemory
        case 2: self = .noMappings
        default: return nil
        }
    }

    /// What the report's warning says happened.
    public var explanation: String {
        switch self {
        case .noMemory: return "the exit-time scan had no memory for its tables"
        case .noMappings: return "the exit-time scan could not read /proc/self/maps (every descriptor was in use, under a limit it could not raise)"
        }
    }
}
