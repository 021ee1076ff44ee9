/// Addresses from `first` to `last`, both included (so that a span can end at the top of the
/// address space), put there by load number `load` (the higher, the newer).
struct AddressSpan {
    var first: UInt64
    var last: UInt64
    var load: Int
}

/// A fixed set of spans that answers, for an address, the newest load still live among the
/// spans holding it, in time logarithmic in the number of spans however much they overlap.
///
/// A segment tree over the spans' boundaries: each span is listed at the O(log n) nodes whose
/// ranges together make it up, and an address's spans are those listed on the path from its
/// leaf to the root. Spans are listed in load order, so each node's list ends with its newest
/// load; loads found dead at the end of a list are dropped from it for good (a load never
/// comes back to life), which keeps the look-ups cheap after many unloads.
struct AddressSpanTree {
    /// The spans, oldest load first: what a bigger tree is built from.
    let spans: [AddressSpan]
    /// Distinct and ascending. Leaf i holds the addresses from `boundaries[i]` up to the next
    /// boundary, the last leaf up to the top of the address space.
    private let boundaries: [UInt64]
    /// Node n (1 ..< 2 × leaves; leaf i is node leaves + i) lists the loads
    /// `loads[listStart[n] ..< listEnd[n]]`.
    private let listStart: [Int]
    private var listEnd: [Int]
    private let loads: [Int]

    /// `spans` must come oldest load first.
    init(spans: [AddressSpan]) {
        self.spans = spans
        var points: [UInt64] = []
        points.reserveCapacity(spans.count * 2)
        for span in spans {
            points.append(span.first)
            if span.last != .max { points.append(span.last + 1) }
        }
        points.sort()
        var distinct: [UInt64] = []
        distinct.reserveCapacity(points.count)
        for point in points where point != distinct.last { distinct.append(point) }
        boundaries = distinct

        let leaves = distinct.count
        let leafRanges = spans.map { span in
            (Self.index(of: span.first, in: distinct), span.last == .max ? leaves : Self.index(of: span.last + 1, in: distinct))
        }
        var counts = [Int](repeating: 0, count: 2 * leaves + 1)
        for range in leafRanges { Self.forEachNode(covering: range, leaves: leaves) { counts[$0] += 1 } }
        var start = [Int](repeating: 0, count: 2 * leaves + 1)
        var total = 0
        for node in 0..<counts.count {
            start[node] = total
            total += counts[node]
        }
        var end = start
        var loads = [Int](repeating: 0, count: total)
        for (span, range) in zip(spans, leafRanges) {
            Self.forEachNode(covering: range, leaves: leaves) { node in
                loads[end[node]] = span.load
                end[node] += 1
            }
        }
        listStart = start
        listEnd = end
        self.loads = loads
    }

    /// The newest load whose span holds `address` and for which `isLive` is true.
    mutating func newestLiveLoad(containing address: UInt64, isLive: [Bool]) -> Int? {
        // The leaf holding the address: the last boundary at or below it.
        var low = 0, high = boundaries.count
        while low < high {
            let middle = (low + high) / 2
            if boundaries[middle] <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        var newest: Int?
        var node = boundaries.count + low - 1
        while node >= 1 {
            var end = listEnd[node]
            while end > listStart[node] && !isLive[loads[end - 1]] { end -= 1 }
            listEnd[node] = end
            if end > listStart[node] { newest = max(newest ?? loads[end - 1], loads[end - 1]) }
            node /= 2
        }
        return newest
    }

    /// The position of `point`, which `boundaries` holds.
    private static func index(of point: UInt64, in boundaries: [UInt64]) -> Int {
        var low = 0, high = boundaries.count
        while low < high {
            let middle = (low + high) / 2
            if boundaries[middle] < point { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Calls `body` with the nodes whose ranges together make up leaves `range.0 ..< range.1`.
    private static func forEachNode(covering range: (Int, Int), leaves: Int, _ body: (Int) -> Void) {
        var left = range.0 + leaves, right = range.1 + leaves
        while left < right {
            if left & 1 == 1 {
                body(left)
                left += 1
            }
            if right & 1 == 1 {
                right -= 1
                body(right)
            }
            left /= 2
            right /= 2
        }
    }
}
