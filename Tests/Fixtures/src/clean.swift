// clean.swift - Swift that frees everything it allocates (through ARC).
//
// Class instances, an Array, a Dictionary and a String are created in
// useHeap() and released when it returns.  Prints one line with print().
// Whatever is live at exit belongs to the Swift runtime or to glibc's
// stdout buffer; see EXPECTED.md.

final class Node {
    var value: Int
    var next: Node?
    init(_ value: Int, _ next: Node?) {
        self.value = value
        self.next = next
    }
}

@inline(never)
func useHeap() -> Int {
    var head: Node? = nil
    for i in 0..<10 {
        head = Node(i, head)
    }
    var sum = 0
    var cur = head
    while let n = cur {
        sum += n.value
        cur = n.next
    }
    let numbers = Array(0..<100)
    var dict: [Int: String] = [:]
    for i in 0..<5 {
        dict[i] = String(repeating: "d", count: 20 + i)
    }
    let text = String(repeating: "x", count: 40)
    return sum + numbers.count + dict.count + text.count
}

let n = useHeap()
print("clean_swift: done (\(n))")
