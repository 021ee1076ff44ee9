/// The modules loaded at the point a replay has reached, and the one a frame falls in: the
/// newest loaded whose segments hold the address (docs/trace-format.md, MODULE_LOAD).
///
/// A list scanned newest first did the same in time proportional to the modules loaded, for
/// each frame and each load: 17.8 s for a crafted 2.9 MB trace of 200,000 MODULE_LOAD records,
/// and half the time of `heapgate summary` on a program linked against 300 libraries. Here
/// each load gets a number that only grows, and its segments go into a stack of
/// `AddressSpanTree`s kept like the digits of a binary counter: a new load makes a tree of its
/// own, and two trees of the same rank merge into one of the next rank (dropping unloaded
/// modules), so a load is merged O(log n) times and a look-up visits O(log n) trees, newest
/// first. An unload only marks its load dead; the trees skip dead loads.
struct LoadedModules {
    private var trees: [(rank: Int, tree: AddressSpanTree)] = []
    /// Module id by load number.
    private var moduleOfLoad: [UInt64] = []
    /// Whether each load's module is still loaded.
    private var isLive: [Bool] = []
    /// The load number of each module loaded now.
    private var loadOfModule: [UInt64: Int] = [:]

    /// `module` is loaded: it is now the newest. A module loaded again under the same id (the
    /// exit snapshot restates every module) leaves its old place.
    mutating func load(_ module: TraceModule) {
        unload(id: module.id)
        let load = moduleOfLoad.count
        moduleOfLoad.append(module.id)
        isLive.append(true)
        loadOfModule[module.id] = load
        let spans = Self.spans(of: module, load: load)
        guard !spans.isEmpty else { return }
        var newest = (rank: 0, tree: AddressSpanTree(spans: spans))
        while let older = trees.last, older.rank == newest.rank {
            trees.removeLast()
            let live = (older.tree.spans + newest.tree.spans).filter { isLive[$0.load] }
            newest = (rank: newest.rank + 1, tree: AddressSpanTree(spans: live))
        }
        trees.append(newest)
    }

    mutating func unload(id: UInt64) {
        guard let load = loadOfModule.removeValue(forKey: id) else { return }
        isLive[load] = false
    }

    /// The id of the newest loaded module whose segments hold `address`.
    mutating func module(containing address: UInt64) -> UInt64? {
        // Every load in a tree is newer than every load in the trees below it.
        for index in trees.indices.reversed() {
            if let load = trees[index].tree.newestLiveLoad(containing: address, isLive: isLive) {
                return moduleOfLoad[load]
            }
        }
        return nil
    }

    /// The addresses `module.contains` accepts, as spans: a segment holds the addresses whose
    /// offset from the load bias, modulo 2^64, is at least `vaddr` and below `vaddr + memsz`
    /// (computed modulo 2^64 too, so a segment whose end wraps holds nothing); a segment that
    /// runs past the top of the address space goes on from address 0.
    static func spans(of module: TraceModule, load: Int) -> [AddressSpan] {
        var spans: [AddressSpan] = []
        for segment in module.segments {
            let (_, endWraps) = segment.vaddr.addingReportingOverflow(segment.size)
            guard segment.size > 0, !endWraps else { continue }
            let first = module.base &+ segment.vaddr
            let (last, runsPastTop) = first.addingReportingOverflow(segment.size - 1)
            if runsPastTop {
                spans.append(AddressSpan(first: first, last: .max, load: load))
                spans.append(AddressSpan(first: 0, last: last, load: load))
            } else {
                spans.append(AddressSpan(first: first, last: last, load: load))
            }
        }
        return spans
    }
}
