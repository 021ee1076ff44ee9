import CLibdw

/// The outermost code scopes of one compile unit (subprograms, directly under the unit or
/// inside namespaces and types) with their address ranges, sorted by start address.
///
/// Why: finding the scope that holds an address by walking the unit's DIEs costs a walk over
/// the whole unit per address, and libdw re-reads every child of a DIE at each sibling step
/// when the producer wrote no DW_AT_sibling (rustc and swiftc do not). A Rust program's one
/// stack took 174 M of the 259 M instructions of its `heapgate summary` there. The index is
/// built by one walk per unit and answered by binary search. Its answer is the walk's: the
/// first scope in DIE order (depth first through containers) whose ranges hold the address.
struct ScopeIndex {
    private struct Entry {
        var start: UInt64
        var end: UInt64
        var order: Int
        var die: Dwarf_Die
    }

    private var entries: [Entry] = []
    /// maxEnd[i]: the largest end among entries[0...i], which bounds the backward scan.
    private var maxEnd: [UInt64] = []

    /// DIEs whose children are searched for code scopes (the symbolizer's walk below a scope
    /// uses the same two sets).
    static let containerTags: Set<Int32> = [
        Int32(DW_TAG_module), Int32(DW_TAG_namespace), Int32(DW_TAG_structure_type), Int32(DW_TAG_class_type),
        Int32(DW_TAG_union_type), Int32(DW_TAG_enumeration_type),
    ]
    static let codeScopeTags: Set<Int32> = [
        Int32(DW_TAG_subprogram), Int32(DW_TAG_inlined_subroutine), Int32(DW_TAG_lexical_block),
    ]

    init(unit: Dwarf_Die) {
        var order = 0
        collect(under: unit, order: &order)
        entries.sort { $0.start != $1.start ? $0.start < $1.start : $0.order < $1.order }
        var running: UInt64 = 0
        maxEnd = entries.map { entry in
            running = max(running, entry.end)
            return running
        }
    }

    private mutating func collect(under parent: Dwarf_Die, order: inout Int) {
        var parent = parent
        guard var child = LibDW.dwarfChild(&parent) else { return }
        while true {
            let tag = LibDW.dwarfTag(&child)
            if Self.containerTags.contains(tag) {
                collect(under: child, order: &order)
            } else if Self.codeScopeTags.contains(tag) {
                for range in LibDW.dwarfRanges(&child) {
                    entries.append(Entry(start: range.start, end: range.end, order: order, die: child))
                }
                order += 1
            }
            guard let next = LibDW.dwarfSibling(&child) else { return }
            child = next
        }
    }

    /// The first scope, in DIE order, whose ranges hold `pc`.
    func outermostScope(containing pc: UInt64) -> Dwarf_Die? {
        // The last entry starting at or before pc; earlier ones may hold pc too while their
        // running maximum end lies above it.
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].start <= pc { low = mid + 1 } else { high = mid }
        }
        var best: Entry?
        var index = low - 1
        while index >= 0, maxEnd[index] > pc {
            let entry = entries[index]
            if entry.start <= pc, pc < entry.end, best.map({ entry.order < $0.order }) ?? true { best = entry }
            index -= 1
        }
        return best?.die
    }
}
