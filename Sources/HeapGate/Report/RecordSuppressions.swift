/// The suppressions a report applies to its loss records.
public struct RecordSuppressions: Sendable {
    public init() {}

    /// The name of the first suppression matching the record's stack and kind, if any.
    func firstMatch(_ record: LossRecord, kind: LeakKind) -> String? { nil }
}
