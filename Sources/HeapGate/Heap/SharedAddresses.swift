/// The addresses that more than one library held over a process's life: a library
/// `dlclose`d, and another (or the same file at another load bias) mapped where it was.
///
/// The shim keeps one stack per list of return addresses, so blocks that plugins of one shape
/// allocated at the same addresses, one after another, share a stack, and a return address
/// there cannot say which plugin's code it was in. Named after whichever library the replay
/// found loaded, every plugin's leaks went under the first plugin's function (or, read from
/// the exit snapshot, which restates every module, the last one's). A frame at such an
/// address is left without a module instead, and the report shows `???` and says why: no name
/// rather than a wrong one. The same file at the same load bias is the same code, so a
/// library that is reloaded where it was keeps its names.
struct SharedAddresses {
    /// Disjoint, sorted by `first`: each held by two or more different images.
    private(set) var spans: [(first: UInt64, last: UInt64)] = []

    /// What makes two loads the same code at the same addresses.
    private struct Image: Hashable {
        var path: String
        var base: UInt64
        var buildID: [UInt8]
    }

    init<Modules: Sequence>(modules: Modules) where Modules.Element == TraceModule {
        var images: [Image: Int] = [:]
        // A sweep over span starts and ends, counting the images each address is in.
        var boundaries: [(address: UInt64, starts: Bool, image: Int)] = []
        for module in modules {
            let image = Image(path: module.path, base: module.base, buildID: module.buildID)
            let number = images[image] ?? images.count
            images[image] = number
            for span in LoadedModules.spans(of: module, load: number) {
                boundaries.append((span.first, true, number))
                if span.last < .max { boundaries.append((span.last + 1, false, number)) }
            }
        }
        guard images.count > 1 else { return }
        boundaries.sort { $0.address < $1.address }
        var spansOfImage: [Int: Int] = [:]
        var sharedFrom: UInt64?
        var index = 0
        while index < boundaries.count {
            let address = boundaries[index].address
            while index < boundaries.count, boundaries[index].address == address {
                let boundary = boundaries[index]
                spansOfImage[boundary.image, default: 0] += boundary.starts ? 1 : -1
                if spansOfImage[boundary.image] == 0 { spansOfImage[boundary.image] = nil }
                index += 1
            }
            let shared = spansOfImage.count > 1
            if shared, sharedFrom == nil {
                sharedFrom = address
            } else if !shared, let first = sharedFrom {
                spans.append((first, address - 1))
                sharedFrom = nil
            }
        }
        if let first = sharedFrom { spans.append((first, .max)) }
    }

    /// Whether two or more different images held `address`.
    func contains(_ address: UInt64) -> Bool {
        var low = 0, high = spans.count
        while low < high {
            let middle = (low + high) / 2
            if spans[middle].last < address { low = middle + 1 } else { high = middle }
        }
        return low < spans.count && spans[low].first <= address
    }
}

extension ProcessHeap {
    /// Takes the module away from frames of the blocks in use at addresses that different
    /// libraries held (see `SharedAddresses`), and counts those return addresses.
    mutating func forgetModulesAtSharedAddresses() {
        let shared = SharedAddresses(modules: modules.values)
        guard !shared.spans.isEmpty else { return }
        var stacksInUse = Set<UInt64>()
        forEachBlock { _, block in stacksInUse.insert(block.stack) }
        var addresses = Set<UInt64>()
        for id in stacksInUse {
            guard var frames = stacks[id] else { continue }
            var changed = false
            for index in frames.indices where frames[index].moduleID != nil && shared.contains(frames[index].address) {
                frames[index].moduleID = nil
                addresses.insert(frames[index].address)
                changed = true
            }
            if changed { stacks[id] = frames }
        }
        addressesOfUnknownLibrary = UInt64(addresses.count)
    }
}
