// clean.rs - Rust that frees everything it allocates.
//
// A Vec<u64> grown by push (several reallocations), a String, a Box, and a
// HashMap<u32, String>; all dropped before main returns.  Prints one line
// with println! (std frees its stdout buffer at exit).  Whatever else is
// live at exit belongs to the Rust runtime; see EXPECTED.md.
use std::collections::HashMap;
use std::hint::black_box;

#[inline(never)]
fn use_heap() -> usize {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..100 {
        v.push(i);
    }
    let s = String::from("a string on the heap, dropped at the end");
    let b = Box::new([1u8; 32]);
    let mut m: HashMap<u32, String> = HashMap::new();
    for i in 0..5 {
        m.insert(i, format!("value {}", i));
    }
    black_box((&v, &s, &b, &m));
    v.len() + s.len() + b.len() + m.len()
}

fn main() {
    let n = use_heap();
    println!("clean_rust: done ({})", n);
}
