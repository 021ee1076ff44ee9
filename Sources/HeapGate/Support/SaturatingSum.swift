extension UInt64 {
    /// `self + other`, or `UInt64.max` where the sum does not fit. The sizes and counters of a
    /// damaged or crafted trace can add up past 2^64 − 1; a report's totals then stop at the
    /// largest figure instead of wrapping round to a small one (two blocks of 2^64 − 1 bytes
    /// were reported as 26 bytes definitely lost).
    func addingSaturated(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
