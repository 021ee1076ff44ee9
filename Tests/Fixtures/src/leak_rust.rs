// leak_rust.rs - Rust leaks through std::mem::forget and Box::leak.
//
//   leak_string()  String::with_capacity(48), filled, then std::mem::forget
//                  LEAKED 48 bytes (the capacity), 1 block
//   leak_box()     Box::new([7u8; 64]), then Box::leak     LEAKED 64 bytes, 1 block
//   use_vec()      a Vec<u32> of 100 elements (400 bytes), dropped normally
//   main prints one line with println!.
// Leaked by the program: 112 bytes in 2 blocks, both "definitely lost".
// Runtime: the Rust standard library makes a few allocations of its own
// (thread bookkeeping, the stdout buffer); see EXPECTED.md - these depend on
// the rustc/std version.
use std::hint::black_box;

#[inline(never)]
fn leak_string() {
    let mut s = String::with_capacity(48);
    s.push_str("this string is forgotten, never freed");
    std::mem::forget(black_box(s));
}

#[inline(never)]
fn leak_box() {
    let b: Box<[u8; 64]> = Box::new([7u8; 64]);
    let leaked: &'static mut [u8; 64] = Box::leak(b);
    black_box(leaked);
}

#[inline(never)]
fn use_vec() -> usize {
    let v: Vec<u32> = (0..100).collect();
    black_box(&v);
    v.len()
}

fn main() {
    leak_string();
    leak_box();
    let n = use_vec();
    println!("leak_rust: vec held {} elements", n);
}
