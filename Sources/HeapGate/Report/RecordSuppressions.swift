/// The suppressions a report applies to its loss records: the user's files (--suppressions)
/// and, unless --default-suppressions=no, the shipped list for runtime one-time allocations.
public struct RecordSuppressions: Sendable {
    public var set: SuppressionSet

    public init(_ set: SuppressionSet = SuppressionSet()) { self.set = set }
}
