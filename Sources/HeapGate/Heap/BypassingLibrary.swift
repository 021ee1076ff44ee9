/// A library loaded after start-up that called glibc's allocator directly, past the shim
/// (opened with `RTLD_DEEPBIND`), from the trace's BYPASS record.
public struct BypassingLibrary: Equatable, Sendable, Encodable {
    public var path: String
    /// True when the shim rebound its calls to itself (those before were not seen); false
    /// when they still went to glibc at exit.
    public var rebound: Bool

    public init(path: String, rebound: Bool) {
        self.path = path
        self.rebound = rebound
    }
}
