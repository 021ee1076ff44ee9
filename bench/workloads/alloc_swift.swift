// alloc_swift.swift - allocation-heavy Swift workload for heapgate benchmarks.
//
// Usage: alloc_swift [N]    (default 100000)
//   Two rounds of: create N class instances, each holding a heap string (longer
//   than 15 UTF-8 bytes, so not stored inline) and an array; keep them in an
//   array and in a [String: Node] dictionary; look a third of them up again by a
//   freshly built key; drop everything. About 5 allocations per node and round,
//   so the default is ~1 M allocations. Prints a checksum.

final class Node {
    let name: String
    var values: [Int]
    init(name: String, values: [Int]) {
        self.name = name
        self.values = values
    }
}

@inline(never)
func build(_ n: Int, _ round: Int) -> ([Node], [String: Node]) {
    var nodes: [Node] = []
    var byName: [String: Node] = [:]
    for i in 0..<n {
        let name = "node-number-\(i)-of-round-\(round)"
        let node = Node(name: name, values: [i, i &+ 1, i &+ 2, round])
        nodes.append(node)
        byName[name] = node
    }
    return (nodes, byName)
}

@inline(never)
func probe(_ byName: [String: Node], _ n: Int, _ round: Int) -> Int {
    var sum = 0
    for i in stride(from: 0, to: n, by: 3) {
        if let node = byName["node-number-\(i)-of-round-\(round)"] {
            sum &+= node.values.count &+ node.name.utf8.count
        }
    }
    return sum
}

let args = CommandLine.arguments
let n = args.count > 1 ? (Int(args[1]) ?? 100_000) : 100_000
var checksum = 0
for round in 0..<2 {
    let (nodes, byName) = build(n, round)
    checksum &+= probe(byName, n, round) &+ nodes.count
}
print("alloc_swift: n=\(n) checksum=\(checksum)")
