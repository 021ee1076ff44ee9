/*
 * leakclass.cpp - leak classification cases in C++ (output: leakclass_cpp).
 *
 * Usage: leakclass_cpp CASE.  What each case allocates, and how memcheck
 * classifies it (see EXPECTED.md, "Leak classification"):
 *
 *   shared_ptr_cycle  make_peer() calls std::make_shared<Peer>() twice (from two
 *                     lines of make_shared_cycle()): one 48-byte block each
 *                     (the control block, 16 bytes: vtable pointer and two
 *                     counts, with the 32-byte Peer inside it).  a->other = b,
 *                     b->other = a, then both locals go away: each count stays
 *                     at 1.  A shared_ptr holds the Peer's address (block + 16)
 *                     and the control block's address (block + 0), so each
 *                     block has a start pointer from the other.
 *                     DEFINITELY LOST 48 B in 1 block + 48 B in 1 block
 *                     INDIRECTLY LOST: "96 (48 direct, 48 indirect) bytes".
 *   new_arrays        make_tracked_array(): new Tracked[6], Tracked has a
 *                     destructor, so new[] allocates 8 + 6 x 4 = 32 bytes and
 *                     returns block + 8 (the element count is in the first
 *                     word); that pointer is kept in the global g_tracked and
 *                     delete[] is never called.  STILL REACHABLE 32 B in 1 block,
 *                     through memcheck's "newarray" heuristic (6 elements,
 *                     (32 - 8) % 6 == 0).
 *                     make_int_array(): new int[10] (40 bytes, no cookie), the
 *                     pointer dropped.  DEFINITELY LOST 40 B in 1 block.
 *   secondary_base    make_both(): new Both, where Both derives from First and
 *                     Second, each with a virtual destructor and a long (40
 *                     bytes: First's vtable pointer and long, Second's vtable
 *                     pointer and long, Both's long).  The only pointer is the
 *                     global g_second, a Second *, so it points 16 bytes into
 *                     the block, at Second's vtable pointer.  STILL REACHABLE
 *                     40 B in 1 block, through memcheck's "multipleinheritance"
 *                     heuristic (without it: possibly lost).
 *   array_start_kept  make_kept_array(): new Tracked[6] (32 bytes) as in
 *                     new_arrays, kept in the global g_kept; then
 *                     exit_holding_start() keeps the block's start (8 bytes
 *                     before the array) in a volatile local and calls exit(0),
 *                     so the stack, scanned after the globals, holds a start
 *                     pointer.  STILL REACHABLE 32 B in 1 block, and not
 *                     counted under "reachable via heuristic".
 *   internal_linkage  make_static_block(24) and make_hidden_block(16): a
 *                     static function and one in an anonymous namespace, each
 *                     with an int parameter, allocate with new char[n] and
 *                     drop the pointer.  GCC gives such functions no
 *                     DW_AT_linkage_name, only a plain DW_AT_name; memcheck
 *                     names them from the symbol table: "make_static_block(int)",
 *                     "(anonymous namespace)::make_hidden_block(int)".
 *                     DEFINITELY LOST 24 B in 1 block, 16 B in 1 block.
 *   member_object     make_outer(): new Outer (32 bytes: Outer's vtable pointer
 *                     and a long, then a Member, a class with virtual functions
 *                     of its own: its vtable pointer and a long).  The only
 *                     pointer is the global g_member, &outer->member, 16 bytes
 *                     into the block, at Member's vtable pointer.  Member is no
 *                     base of Outer, but memcheck's "multipleinheritance"
 *                     heuristic asks only that the block's first word and the
 *                     word pointed at both look like vtables (each points to
 *                     function pointers): STILL REACHABLE 32 B in 1 block.
 *
 * The libstdc++ emergency exception pool (72,704 bytes, allocated before main)
 * is still reachable in every run.  No iostreams, so no stdout buffer.  main
 * overwrites the dead part of the stack before returning (see leakclass.c).
 * Exit status 0; 2 for an unknown case.
 */
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

struct Peer {
    std::shared_ptr<Peer> other;
    long payload[2];
}; // 32 bytes

struct Tracked {
    int value = 7;
    ~Tracked();
}; // 4 bytes, with a destructor

__attribute__((noinline)) Tracked::~Tracked()
{
    KEEP(value);
}

Tracked *g_tracked; // new_arrays: the only pointer, 8 bytes into its block

__attribute__((noinline)) std::shared_ptr<Peer> make_peer()
{
    return std::make_shared<Peer>();
}

__attribute__((noinline)) void make_shared_cycle()
{
    std::shared_ptr<Peer> a = make_peer();
    std::shared_ptr<Peer> b = make_peer();
    a->other = b;
    b->other = a;
}

__attribute__((noinline)) void make_tracked_array()
{
    g_tracked = new Tracked[6];
}

__attribute__((noinline)) void make_int_array()
{
    int *numbers = new int[10];
    std::memset(numbers, 0, 10 * sizeof(int));
    KEEP(numbers);
}

struct First {
    virtual ~First() {}
    long first = 1;
};

struct Second {
    virtual ~Second() {}
    long second = 2;
};

struct Both : First, Second {
    long both = 3;
}; // 40 bytes: Second starts at 16

Second *g_second; // secondary_base: the only pointer, 16 bytes into its block

__attribute__((noinline)) void make_both()
{
    g_second = new Both;
}

Tracked *g_kept; // array_start_kept: 8 bytes into its block

__attribute__((noinline)) void make_kept_array()
{
    g_kept = new Tracked[6];
}

__attribute__((noreturn, noinline)) void exit_holding_start()
{
    char *volatile start = reinterpret_cast<char *>(g_kept) - sizeof(long); // kept in this frame
    KEEP(&start);
    std::exit(0);
}

__attribute__((noinline)) static void make_static_block(int n)
{
    KEEP(new char[n]);
}

namespace {
__attribute__((noinline)) void make_hidden_block(int n)
{
    KEEP(new char[n]);
}
} // namespace

struct Member {
    virtual ~Member() {}
    virtual long value() { return member; }
    long member = 5;
};

struct Outer {
    virtual ~Outer() {}
    long outer = 4;
    Member member; // at 16
};

Member *g_member; // member_object: the only pointer, 16 bytes into its block

__attribute__((noinline)) void make_outer()
{
    g_member = &(new Outer)->member;
}

__attribute__((noinline)) void scrub_stack()
{
    char pad[16384];
    std::memset(pad, 0, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "";
    if (std::strcmp(name, "shared_ptr_cycle") == 0) {
        make_shared_cycle();
    } else if (std::strcmp(name, "new_arrays") == 0) {
        make_tracked_array();
        make_int_array();
    } else if (std::strcmp(name, "secondary_base") == 0) {
        make_both();
    } else if (std::strcmp(name, "array_start_kept") == 0) {
        make_kept_array();
        exit_holding_start();
    } else if (std::strcmp(name, "internal_linkage") == 0) {
        make_static_block(24);
        make_hidden_block(16);
    } else if (std::strcmp(name, "member_object") == 0) {
        make_outer();
    } else {
        static const char usage[] = "usage: leakclass_cpp shared_ptr_cycle|new_arrays|secondary_base|array_start_kept|internal_linkage|member_object\n";
        if (write(2, usage, sizeof usage - 1) < 0) return 4;
        return 2;
    }
    scrub_stack();
    return 0;
}
