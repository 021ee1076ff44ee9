/// An allocator the traced program brought ahead of the shim's entry points (linked into the
/// executable, as rustc links jemalloc, or preloaded before heapgate), from the trace's
/// ALLOCATOR record. The shim replaces it with glibc's, as memcheck replaces it with its own,
/// unless that is unsafe; then its blocks are not seen at all, and the report says so.
public struct ForeignAllocator: Equatable, Sendable, Encodable {
    /// The object that defines `malloc` first, as `dladdr` names it (for the executable, the
    /// program's argv[0]); empty when it gives no name.
    public var object: String
    /// True when glibc's allocator took its place; false when it was left in place.
    public var replaced: Bool
    /// Why it was left in place (nil when replaced).
    public var reason: String?

    public init(object: String, replaced: Bool, reason: String?) {
        self.object = object
        self.replaced = replaced
        self.reason = reason
    }

    /// The object as a report names it.
    public var displayName: String { object.isEmpty ? "the program" : object }
}
