/// memcheck's `--leak-check-heuristics`: layouts in which an interior pointer is a reference.
/// A still reachable block that only such a pointer reached is counted under its heuristic in
/// the LEAK SUMMARY ("of which reachable via heuristic"), in this order.
public enum LeakHeuristic: String, CaseIterable, Sendable, Codable, CodingKeyRepresentable {
    /// The pre-C++11 std::string: a pointer 24 bytes in, past length, capacity and refcount.
    case stdstring
    /// A 64-bit length prefix: a pointer 8 bytes in.
    case length64
    /// C++ `new[]` of a type with a destructor: a pointer 8 bytes in, past the element count.
    case newarray
    /// A C++ object reached through a secondary base: a pointer to that base's vtable pointer.
    case multipleinheritance

    /// Its number in the trace (HG_HEURISTIC_* in hg_trace_format.h).
    init?(traceValue: UInt64) {
        guard (1...UInt64(Self.allCases.count)).contains(traceValue) else { return nil }
        self = Self.allCases[Int(traceValue) - 1]
    }
}
