// leakclass.rs - leak classification cases in Rust (output: leakclass_rust).
//
// Usage: leakclass_rust CASE.  What each case allocates (all from the named
// #[inline(never)] function), and how it is classified (see EXPECTED.md,
// "Leak classification"):
//
//   forget_string     forget_string(): String::with_capacity(40), filled, then
//                     std::mem::forget.  DEFINITELY LOST 40 B in 1 block.
//   manually_drop     manually_drop_vec(): ManuallyDrop::new(a Vec<u32> of 18
//                     elements, 72 bytes), never dropped.
//                     DEFINITELY LOST 72 B in 1 block.
//   rc_cycle          make_rc_cycle(): three Rc<RefCell<CycleNode>> (RcBox:
//                     strong + weak + borrow flag + next + [u64; 2] = 48 bytes
//                     each, from three lines), a -> b -> c -> a, then the three
//                     locals are dropped (each strong count stays at 1).
//                     DEFINITELY LOST 48 B in 1 block + 96 B in 2 blocks
//                     INDIRECTLY LOST: "144 (48 direct, 96 indirect) bytes".
//   box_into_raw_ffi  hand_box_to_ffi(): Box::into_raw(Box::new(Blob)) (7 x u64 =
//                     56 bytes) passed to ffi_consume, an extern "C" #[no_mangle]
//                     function of this program that reads it and stores nothing;
//                     never reclaimed with Box::from_raw.
//                     DEFINITELY LOST 56 B in 1 block.
//   box_leak_threads  share_with_threads(): Box::leak(Box::new([7u64; 16]))
//                     (128 bytes), the &'static reference moved into two
//                     std::thread::spawn closures, which sum it; both threads
//                     are joined.  The reference lived only in a local and on
//                     the threads' stacks, all gone: DEFINITELY LOST 128 B in 1
//                     block (valgrind agrees).  std's per-thread bookkeeping is
//                     freed on join; the exited threads' DTVs (glibc's, 2 x 288 B
//                     under valgrind) stay in use, possibly lost (reached only
//                     through dtv + 1 from the cached thread descriptors).
//   box_leak_static   leak_into_static(): Box::leak(Box::new([3u64; 12]))
//                     (96 bytes) stored in the static LEAKED (an AtomicPtr,
//                     whose address escapes through black_box so that the
//                     optimiser keeps the store).
//                     STILL REACHABLE 96 B in 1 block.
//   weak_tree         build_weak_tree(): a root and 3 children (Rc<TreeNode>),
//                     children in the root's Vec, each child's parent a Weak;
//                     all dropped at the end.  Nothing of the program's is left:
//                     no definitely, indirectly or possibly lost blocks.
//   hashmap_cache     fill_cache(): 20 entries inserted into
//                     static CACHE: Mutex<Option<HashMap<String, Vec<u8>>>>:
//                     keys String::with_capacity(16) (20 x 16 B), values
//                     vec![_; 100] (20 x 100 B), and the hashbrown table: 32
//                     buckets of 48 bytes + 32 + 16 control bytes = 1,584 B (the
//                     smaller tables it grew from are freed).  The static holds
//                     only the table's `ctrl` pointer, 1,536 bytes into its
//                     block.  memcheck: POSSIBLY LOST, all 41 blocks (3,904 B:
//                     the table through an interior pointer, the entries
//                     through a possibly lost block).  heapgate's hashbrown rule
//                     (hg_is_hashbrown_ctrl) takes the ctrl pointer as a start
//                     pointer: STILL REACHABLE 3,904 B in 41 blocks.
//
// The std runtime's own blocks (the main thread's 544-byte thread info) are
// still reachable in every run.  No output on stdout (std's stdout buffer is
// never allocated).  main overwrites the dead part of the stack before it
// returns (see leakclass.c).  Exit status 0; 2 for an unknown case.
use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::mem::ManuallyDrop;
use std::ptr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;
use std::thread;

#[inline(never)]
fn forget_string() {
    let mut s = String::with_capacity(40);
    s.push_str("forgotten with std::mem::forget");
    std::mem::forget(black_box(s));
}

#[inline(never)]
fn manually_drop_vec() {
    let v: ManuallyDrop<Vec<u32>> = ManuallyDrop::new(vec![5u32; 18]);
    black_box(&v);
}

struct CycleNode {
    next: Option<Rc<RefCell<CycleNode>>>,
    payload: [u64; 2],
}

#[inline(never)]
fn make_rc_cycle() {
    let a = Rc::new(RefCell::new(CycleNode { next: None, payload: [1, 1] }));
    let b = Rc::new(RefCell::new(CycleNode { next: None, payload: [2, 2] }));
    let c = Rc::new(RefCell::new(CycleNode { next: None, payload: [3, 3] }));
    a.borrow_mut().next = Some(Rc::clone(&b));
    b.borrow_mut().next = Some(Rc::clone(&c));
    c.borrow_mut().next = Some(Rc::clone(&a));
    black_box(a.borrow().payload[0] + b.borrow().payload[0] + c.borrow().payload[0]);
}

#[repr(C)]
pub struct Blob {
    words: [u64; 7],
}

/// A C-ABI function of this program: reads the block, keeps nothing.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ffi_consume(blob: *mut Blob) -> u64 {
    unsafe { (*blob).words[0] + (*blob).words[6] }
}

#[inline(never)]
fn hand_box_to_ffi() {
    let raw: *mut Blob = Box::into_raw(Box::new(Blob { words: [9; 7] }));
    black_box(ffi_consume(black_box(raw)));
}

#[inline(never)]
fn share_with_threads() {
    let shared: &'static [u64; 16] = Box::leak(Box::new([7u64; 16]));
    let first = thread::spawn(move || black_box(shared).iter().sum::<u64>());
    let second = thread::spawn(move || black_box(shared).iter().sum::<u64>() + 1);
    black_box(first.join().unwrap() + second.join().unwrap());
}

static LEAKED: AtomicPtr<[u64; 12]> = AtomicPtr::new(ptr::null_mut());

#[inline(never)]
fn leak_into_static() {
    let leaked: &'static mut [u64; 12] = Box::leak(Box::new([3u64; 12]));
    LEAKED.store(leaked, Ordering::Release);
    // Without this the optimiser sees a static that is only ever written, drops the
    // store and then the allocation: the static's address has to escape.
    black_box(&LEAKED);
}

struct TreeNode {
    value: u32,
    parent: RefCell<Weak<TreeNode>>,
    children: RefCell<Vec<Rc<TreeNode>>>,
}

#[inline(never)]
fn build_weak_tree() -> u32 {
    let root = Rc::new(TreeNode { value: 1, parent: RefCell::new(Weak::new()), children: RefCell::new(Vec::new()) });
    for value in 2..5 {
        let child = Rc::new(TreeNode {
            value,
            parent: RefCell::new(Rc::downgrade(&root)),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    let children = root.children.borrow();
    let sum: u32 = children.iter().map(|c| c.value + c.parent.borrow().upgrade().map_or(0, |p| p.value)).sum();
    black_box(sum)
}

static CACHE: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);

#[inline(never)]
fn fill_cache() {
    use std::fmt::Write;
    let mut guard = CACHE.lock().unwrap();
    let cache = guard.get_or_insert_with(HashMap::new);
    for i in 0..20u8 {
        let mut key = String::with_capacity(16);
        write!(key, "entry-{i:02}").unwrap();
        cache.insert(key, vec![i + 1; 100]);
    }
    black_box(cache.len());
}

#[inline(never)]
fn scrub_stack() {
    let mut pad = [0u64; 2048];
    black_box(&mut pad);
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    match name.as_str() {
        "forget_string" => forget_string(),
        "manually_drop" => manually_drop_vec(),
        "rc_cycle" => make_rc_cycle(),
        "box_into_raw_ffi" => hand_box_to_ffi(),
        "box_leak_threads" => share_with_threads(),
        "box_leak_static" => leak_into_static(),
        "weak_tree" => {
            build_weak_tree();
        }
        "hashmap_cache" => fill_cache(),
        _ => {
            eprintln!("usage: leakclass_rust forget_string|manually_drop|rc_cycle|box_into_raw_ffi|box_leak_threads|box_leak_static|weak_tree|hashmap_cache");
            drop(name);
            std::process::exit(2);
        }
    }
    drop(name);
    scrub_stack();
}
