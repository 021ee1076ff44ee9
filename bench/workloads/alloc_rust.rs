// alloc_rust.rs - allocation-heavy Rust workload for heapgate benchmarks (std only).
//
// Usage: alloc_rust [N]    (default 150000)
//   Two rounds of: build a BTreeMap<String, Vec<u32>> of N entries, derive a
//   HashMap<String, String> from it, look a third of the keys up again, drop
//   both. Roughly 10 allocations per entry and round, so the default is ~1.5-2 M
//   allocations (and as many frees). Prints a checksum so nothing is optimised
//   away.
use std::collections::{BTreeMap, HashMap};

#[inline(never)]
fn build_tree(n: usize, round: usize) -> BTreeMap<String, Vec<u32>> {
    let mut tree = BTreeMap::new();
    for i in 0..n {
        let key = format!("key-{:08}-round-{}", (i * 7919) % n, round);
        let value: Vec<u32> = (0..(1 + i % 7) as u32).map(|x| x * 3 + i as u32).collect();
        tree.insert(key, value);
    }
    tree
}

#[inline(never)]
fn derive_map(tree: &BTreeMap<String, Vec<u32>>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (key, value) in tree {
        let text: Vec<String> = value.iter().map(|v| v.to_string()).collect();
        map.insert(key.clone(), text.join(","));
    }
    map
}

#[inline(never)]
fn probe(map: &HashMap<String, String>, n: usize, round: usize) -> u64 {
    let mut sum = 0u64;
    for i in (0..n).step_by(3) {
        let key = format!("key-{:08}-round-{}", i, round);
        if let Some(v) = map.get(&key) {
            sum += v.len() as u64;
        }
    }
    sum
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(150_000);
    let mut checksum = 0u64;
    for round in 0..2 {
        let tree = build_tree(n, round);
        let map = derive_map(&tree);
        checksum += probe(&map, n, round) + tree.len() as u64;
        drop(map);
        drop(tree);
    }
    println!("alloc_rust: n={} checksum={}", n, checksum);
}
