// leak_swift.swift - a Swift object leaked with an unbalanced retain.
//
//   leakPayload()  Payload() (a class instance: 16-byte object header plus
//                  two Int fields = 32 bytes, allocated by swift_allocObject),
//                  then Unmanaged.passRetained(p) whose release never comes:
//                  LEAKED 32 bytes, 1 block.
//   useARC()       a few Payload objects, an Array and a String, all freed by ARC.
//   top level prints one line with print().
// Leaked by the program: 32 bytes in 1 block.  Everything else live at exit
// belongs to the Swift runtime (metadata caches, conformance tables) or to
// glibc's stdout buffer; those figures depend on the Swift version, see
// EXPECTED.md.

final class Payload {
    var a: Int
    var b: Int
    init(_ a: Int, _ b: Int) {
        self.a = a
        self.b = b
    }
}

@inline(never)
func leakPayload() {
    let p = Payload(1, 2)
    _ = Unmanaged.passRetained(p)
}

@inline(never)
func useARC() -> Int {
    var total = 0
    for i in 0..<10 {
        let p = Payload(i, i * 2)
        total += p.a + p.b
    }
    let numbers = Array(0..<100)
    let text = String(repeating: "x", count: 40)
    return total + numbers.count + text.count
}

leakPayload()
let n = useARC()
print("leak_swift: done (\(n))")
