// leakclass.swift - leak classification cases in Swift (output: leakclass_swift).
//
// Usage: leakclass_swift CASE.  What each case allocates (class instances are
// allocated by swift_allocObject: a 16-byte header, then the stored
// properties), and how it is classified (see EXPECTED.md, "Leak
// classification"):
//
//   retain_cycle       makeRetainCycle(): a CycleA and a CycleB (32 bytes each:
//                      header, one strong reference, one Int) pointing at each
//                      other; both locals are released.
//                      DEFINITELY LOST 32 B in 1 block + 32 B in 1 block
//                      INDIRECTLY LOST: "64 (32 direct, 32 indirect) bytes".
//   closure_cycle      makeClosureCycle(): an Owner (40 bytes: header, Int,
//                      optional closure = function + context) whose
//                      install(offset:) stores in self.handler a closure that
//                      captures self and an Int; its context is a 32-byte heap
//                      box (header + self + Int), allocated in install(offset:).
//                      (A closure capturing only self would use self as its
//                      context: no box, a one-block self-cycle.)
//                      Owner -> context -> Owner.  The Owner is allocated first
//                      and has the lower address, so it leads: DEFINITELY LOST
//                      40 B in 1 block + 32 B in 1 block INDIRECTLY LOST:
//                      "72 (40 direct, 32 indirect) bytes".
//   unmanaged          leakUnmanaged(): Unmanaged.passRetained(Token()) (32
//                      bytes: header + two Ints), never released.
//                      DEFINITELY LOST 32 B in 1 block.
//   weak_side_tables   makeWeakReferences(): 4 Observed (24 bytes: header + Int)
//                      appended to the global array `registry` (its storage
//                      grows to a 64-byte buffer for 4 references; the smaller
//                      ones are freed).  A weak reference is formed to each and
//                      destroyed again, which moves each object's reference
//                      count into a side table (HeapObjectSideTableEntry, 32
//                      bytes, allocated by the runtime in swift_weakInit); the
//                      object's refcount word then holds the side table's
//                      address >> 3 with the two top bits set, and nothing
//                      else points to the side table.  heapgate decodes those
//                      words (hg_decode_swift_side_table): STILL REACHABLE,
//                      all 9 blocks (4 objects, 4 side tables, 1 array buffer).
//                      memcheck cannot: it reports the 4 side tables (4 x 32 B)
//                      as DEFINITELY LOST.  (Appending also instantiates the
//                      array's generic metadata; the runtime's 32-byte cache
//                      index for it is reached only through a low-bit-tagged
//                      pointer: possibly lost for memcheck, reachable for
//                      heapgate's Swift-runtime rule.)
//
// Everything else in use at exit is the Swift runtime's (metadata and
// conformance caches, CommandLine.arguments); see EXPECTED.md.  Nothing is
// printed on stdout.  Before returning, the top-level code overwrites the
// dead part of the stack (scrubStack, see leakclass.c).  Exit status 0; 2 for
// an unknown case.

#if canImport(Glibc)
import Glibc
#endif

final class CycleA {
    var partner: CycleB?
    var tag = 1
}

final class CycleB {
    var partner: CycleA?
    var tag = 2
}

@inline(never)
func makeRetainCycle() {
    let a = CycleA()
    let b = CycleB()
    a.partner = b
    b.partner = a
}

final class Owner {
    var value = 42
    var handler: (() -> Int)?

    @inline(never)
    func install(offset: Int) {
        // Two captures (self and offset): a closure capturing exactly one class
        // reference would use that object itself as its context, with no box.
        handler = { self.value + offset }
    }
}

@inline(never)
func makeClosureCycle() {
    let owner = Owner()
    owner.install(offset: 1)
}

final class Token {
    var a = 1
    var b = 2
}

@inline(never)
func leakUnmanaged() {
    let unmanaged = Unmanaged.passRetained(Token())
    _ = unmanaged
}

final class Observed {
    var id: Int
    init(id: Int) { self.id = id }
}

var registry: [Observed] = []

@inline(never)
func observe(_ object: Observed) -> Int {
    weak let watcher = object
    return watcher?.id ?? -1
}

@inline(never)
func makeWeakReferences() {
    for id in 0..<4 {
        let object = Observed(id: id)
        registry.append(object)
        _ = observe(object)
    }
}

/// Zeroes about 20 KiB of the stack below the caller (1 KiB of stack-allocated
/// buffer per level; a temporary allocation of at most 1 KiB is always on the stack).
@inline(never)
func scrubStack(_ depth: Int) {
    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 128) { buffer in
        buffer.initialize(repeating: 0)
    }
    if depth > 0 { scrubStack(depth - 1) }
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "retain_cycle": makeRetainCycle()
case "closure_cycle": makeClosureCycle()
case "unmanaged": leakUnmanaged()
case "weak_side_tables": makeWeakReferences()
default:
    let usage = "usage: leakclass_swift retain_cycle|closure_cycle|unmanaged|weak_side_tables\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
scrubStack(20)
