/*
 * leakclass.c - leak classification cases in C (output: leakclass_c).
 *
 * Usage: leakclass_c CASE.  Each case allocates only what is listed here, from
 * the named noinline function, and is classified as memcheck classifies it
 * (valgrind --leak-check=full; see EXPECTED.md, "Leak classification"):
 *
 *   list             list_node() mallocs 4 nodes of 32 bytes, head first (so
 *                    the head has the lowest address), linked head -> ... ->
 *                    tail; then the head pointer is dropped.
 *                    DEFINITELY LOST 32 B in 1 block (the head), with 96 B in 3
 *                    blocks INDIRECTLY LOST under it:
 *                    "128 (32 direct, 96 indirect) bytes in 1 blocks are
 *                    definitely lost" + "96 bytes in 3 blocks are indirectly lost".
 *   list_tail_first  the same list, but the nodes are allocated tail first, so
 *                    the head has the HIGHEST address.  memcheck forms cliques
 *                    in address order: the tail starts one, then every node
 *                    up to the head absorbs the clique before it.  Same result
 *                    as "list": 32 B / 1 definite (the head) + 96 B / 3 indirect.
 *   interior         interior_block() callocs 64 bytes (all zero, so the first
 *                    word is 0 and neither memcheck heuristic newarray nor
 *                    length64 applies); only p + 8 is kept, in the global
 *                    g_interior.  POSSIBLY LOST 64 B in 1 block.
 *   cycle3           cycle_node() mallocs 3 blocks of 24 bytes, a -> b -> c -> a,
 *                    then all three pointers are dropped.  DEFINITELY LOST 24 B
 *                    in 1 block (the lowest address) + 48 B in 2 blocks
 *                    INDIRECTLY LOST: "72 (24 direct, 48 indirect) bytes".
 *   exit_stack       stack_block() mallocs 48 bytes; the only pointer is a
 *                    volatile local of exit_holding(), which then calls exit(0)
 *                    (so its frame is live when the leak check runs).
 *                    STILL REACHABLE 48 B in 1 block.
 *   tls              tls_block() mallocs 40 bytes; the only pointer is the
 *                    main thread's __thread variable tls_slot.
 *                    STILL REACHABLE 40 B in 1 block.
 *   thread_stack     a second thread mallocs 56 bytes in thread_block(), keeps
 *                    the pointer only in a volatile local of its start
 *                    function, and blocks in pause(); main then calls exit(0).
 *                    STILL REACHABLE 56 B in 1 block.  (pthread_create also
 *                    callocs the thread's DTV, which glibc reaches only
 *                    through dtv + 1: possibly lost, the C library's.  Its size
 *                    depends on how many modules are loaded: 288 bytes under
 *                    valgrind, more under an LD_PRELOAD tracker.)
 *   beside_arena     a second thread mallocs 64 bytes in arena_block() (from a
 *                    glibc thread arena, whose heap starts at a 64 MiB
 *                    boundary; the pointer is kept in the global g_arena), then
 *                    main maps 1 MiB of its own right below that heap, with the
 *                    heap's flags, so the kernel merges the two into one line
 *                    of /proc/self/maps, and keeps the only pointer to the 48
 *                    bytes of mapped_block() in it.  STILL REACHABLE 48 B in 1
 *                    block and 64 B in 1 block (the DTV as in thread_stack).
 *   beside_chunk     big_block() mallocs 200 KiB (glibc mmaps such a block on
 *                    its own; the pointer is kept in g_big), and main maps 1 MiB
 *                    of its own right beside it, merged as above, with the only
 *                    pointer to mapped_block()'s 48 bytes.  Blocks that found
 *                    no free neighbour are freed again.  STILL REACHABLE 200 KiB
 *                    in 1 block and 48 B in 1 block.
 *   exited_thread    a second thread mallocs 72 bytes in exited_block(), keeps
 *                    the only pointers in a volatile local and in its
 *                    __thread variable tls_slot, and returns; main joins it.
 *                    glibc keeps the dead thread's stack, static TLS included,
 *                    for the next thread.  memcheck scans that TLS: STILL
 *                    REACHABLE 72 B in 1 block.  heapgate scans only a dead
 *                    thread's descriptor (no thread can reach the rest):
 *                    DEFINITELY LOST 72 B in 1 block.
 *   reserve_commit   main reserves 2 MiB with PROT_NONE and makes the upper
 *                    1 MiB readable and writable (as runtimes commit the heaps
 *                    they reserve), and keeps the only pointer to the 48 bytes
 *                    of mapped_block() at its bottom, right above the reserved
 *                    pages, where a thread's stack would have its guard page.
 *                    STILL REACHABLE 48 B in 1 block.
 *   idle_arena       main mallocs 88 bytes in stale_block(); a second thread
 *                    mallocs a 32-byte holder from its own glibc arena, copies
 *                    the pointer into the holder's third and fourth words
 *                    (glibc's free overwrites the first two), frees it and
 *                    ends; main then drops its pointer.  The thread's arena
 *                    holds no block at exit, only the freed holder with its
 *                    stale copy.  DEFINITELY LOST 88 B in 1 block.
 *   exit_register    register_block() mallocs 80 bytes; the only pointer is in
 *                    a callee-saved register (rbx) of exit_holding_in_register(),
 *                    which calls exit_if(), which calls exit(0).  exit's frames
 *                    save rbx, and memcheck scans them: STILL REACHABLE 80 B in
 *                    1 block.
 *   thread_syscall   a second thread mallocs 104 bytes in syscall_block() and
 *                    blocks in pause(2), made as a raw system call with the only
 *                    pointer in rsi (an argument register); main waits until the
 *                    thread is in the call, then calls exit(0).  memcheck scans
 *                    every thread's registers: STILL REACHABLE 104 B in 1 block
 *                    (the DTV as in thread_stack).
 *                    beside_arena and beside_chunk print "merged" when the kernel merged the mappings
 *                    ("apart" when it did not, e.g. under valgrind, whose
 *                    allocator is its own: then there is nothing to merge with).
 *
 * Every leaking case returns to main, which then overwrites the dead part of
 * the stack (scrub_stack) before it returns: otherwise stale copies of the
 * pointers stay in dead frames, below the live stack pointer but inside the
 * frames that exit() pushes later.  memcheck ignores them because it tracks
 * which stack words are defined; a scanner that cannot must not see them.
 * No stdio buffers: output goes through write(2), so none is allocated.
 * Exit status 0; 2 for an unknown case, 3 if a thread cannot be made, 5 if
 * no memory can be mapped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Make the compiler believe p is used, so the allocation is not elided. */
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

struct node {
    struct node *next;
    long payload[3];
}; /* 32 bytes */

struct ring {
    struct ring *next;
    long payload[2];
}; /* 24 bytes */

void *volatile g_interior;        /* interior: the only (interior) pointer */
__thread void *volatile tls_slot; /* tls: the only pointer, in the main thread's TLS */
static sem_t thread_ready;

__attribute__((noinline)) struct node *list_node(struct node *next, long value)
{
    struct node *n = malloc(sizeof *n);
    n->next = next;
    n->payload[0] = n->payload[1] = n->payload[2] = value;
    return n;
}

__attribute__((noinline)) void lose_list(void)
{
    /* Allocate the head first, then append: addresses rise from head to tail. */
    struct node *head = list_node(NULL, 0), *tail = head;
    for (long i = 1; i < 4; i++) {
        tail->next = list_node(NULL, i);
        tail = tail->next;
    }
    KEEP(head);
}

__attribute__((noinline)) void lose_list_tail_first(void)
{
    /* Allocate the tail first, then prepend: addresses fall from tail to head. */
    struct node *head = NULL;
    for (long i = 0; i < 4; i++) head = list_node(head, i);
    KEEP(head);
}

__attribute__((noinline)) void *interior_block(void)
{
    return calloc(1, 64);
}

__attribute__((noinline)) void keep_interior(void)
{
    char *p = interior_block();
    g_interior = p + 8;
}

__attribute__((noinline)) struct ring *cycle_node(long value)
{
    struct ring *r = malloc(sizeof *r);
    r->next = NULL;
    r->payload[0] = r->payload[1] = value;
    return r;
}

__attribute__((noinline)) void lose_cycle(void)
{
    struct ring *a = cycle_node(1), *b = cycle_node(2), *c = cycle_node(3);
    a->next = b;
    b->next = c;
    c->next = a;
    KEEP(a);
}

__attribute__((noinline)) void *stack_block(void)
{
    void *p = malloc(48);
    memset(p, 0x48, 48);
    return p;
}

__attribute__((noreturn, noinline)) void exit_holding(void)
{
    void *volatile held = stack_block(); /* volatile: kept in this frame's memory */
    KEEP(&held);
    exit(0);
}

__attribute__((noinline)) void *tls_block(void)
{
    void *p = malloc(40);
    memset(p, 0x40, 40);
    return p;
}

__attribute__((noinline)) void keep_in_tls(void)
{
    tls_slot = tls_block();
}

__attribute__((noinline)) void *thread_block(void)
{
    void *p = malloc(56);
    memset(p, 0x56, 56);
    return p;
}

static void *blocked_thread(void *unused)
{
    (void)unused;
    void *volatile held = thread_block(); /* volatile: kept in this thread's stack */
    KEEP(&held);
    sem_post(&thread_ready);
    for (;;) pause();
    return NULL;
}

__attribute__((noreturn, noinline)) void exit_with_blocked_thread(void)
{
    pthread_t thread;
    sem_init(&thread_ready, 0, 0);
    if (pthread_create(&thread, NULL, blocked_thread, NULL) != 0) _exit(3);
    while (sem_wait(&thread_ready) != 0) {}
    exit(0);
}

void *volatile g_arena; /* beside_arena: the thread arena's block */
void *volatile g_big;   /* beside_chunk: the mmap'd block */

#define OWN_BYTES (1 << 20)

/* Whether one line of /proc/self/maps spans both addresses (read with read(2): no stdio buffer). */
static int one_mapping(const void *a, const void *b)
{
    static char text[1 << 16];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    ssize_t length = 0, n;
    while (fd >= 0 && length < (ssize_t)sizeof text - 1 && (n = read(fd, text + length, sizeof text - 1 - length)) > 0)
        length += n;
    if (fd >= 0) close(fd);
    text[length] = '\0';
    for (char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        unsigned long low, high;
        if (sscanf(line, "%lx-%lx", &low, &high) == 2 && (unsigned long)a >= low && (unsigned long)a < high)
            return (unsigned long)b >= low && (unsigned long)b < high;
    }
    return 0;
}

/* 1 MiB of the program's own, right below `below` or else (given) right at `above`; NULL if
 * neither is free. */
static void **map_beside(char *below, char *above, int flags)
{
    int fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | flags;
    void **own = mmap(below - OWN_BYTES, OWN_BYTES, PROT_READ | PROT_WRITE, fixed, -1, 0);
    if (own == MAP_FAILED && above) own = mmap(above, OWN_BYTES, PROT_READ | PROT_WRITE, fixed, -1, 0);
    return own == MAP_FAILED ? NULL : own;
}

__attribute__((noinline)) void *mapped_block(void)
{
    void *p = malloc(48);
    memset(p, 0x48, 48);
    return p;
}

/* Keeps mapped_block()'s only pointer in `own` (any mapping if none could go beside) and says
 * whether the kernel merged it with the glibc memory at `glibc`. */
static void keep_in_own_mapping(void **own, const void *glibc)
{
    if (!own) own = mmap(NULL, OWN_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (own == MAP_FAILED) _exit(5);
    own[0] = mapped_block();
    const char *verdict = one_mapping(own, glibc) ? "merged\n" : "apart\n";
    if (write(1, verdict, strlen(verdict)) < 0) _exit(4);
}

__attribute__((noinline)) void *arena_block(void)
{
    void *p = malloc(64);
    memset(p, 0x64, 64);
    return p;
}

static void *allocate_in_thread(void *unused)
{
    (void)unused;
    g_arena = arena_block();
    return NULL;
}

__attribute__((noinline)) void keep_beside_arena(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, allocate_in_thread, NULL) != 0 || pthread_join(thread, NULL) != 0) _exit(3);
    /* glibc's heap_info sits at the 64 MiB boundary below the block; its mapping is MAP_NORESERVE. */
    char *heap = (char *)((unsigned long)g_arena & ~((64ul << 20) - 1));
    /* A thread making its own arena meanwhile (a tracer's, at its first malloc) maps 128 MiB
     * for a moment, often right below this heap, and trims it to 64 MiB: try again for a while. */
    void **own = map_beside(heap, NULL, MAP_NORESERVE);
    for (int tries = 0; !own && tries < 200; tries++) {
        usleep(1000);
        own = map_beside(heap, NULL, MAP_NORESERVE);
    }
    keep_in_own_mapping(own, g_arena);
}

__attribute__((noinline)) void *big_block(void)
{
    void *p = malloc(200 * 1024);
    memset(p, 0x20, 64);
    return p;
}

__attribute__((noinline)) void keep_beside_chunk(void)
{
    /* The neighbours of a fresh mapping may be taken (under a tracker, by its own mappings made
     * meanwhile): try again with another block, keeping the ones tried so that the kernel does
     * not hand out the same place again, and free those at the end. */
    void *tried[64];
    void **own = NULL;
    int count = 0;
    while (!own && count < 64) {
        char *block = tried[count++] = big_block();
        char *chunk = block - 16, *chunk_end = chunk + ((200 * 1024 + 16 + 4095) & ~4095);
        own = map_beside(chunk, chunk_end, 0);
    }
    g_big = tried[count - 1];
    for (int i = 0; i < count - 1; i++) free(tried[i]);
    keep_in_own_mapping(own, g_big);
}

__attribute__((noinline)) void *exited_block(void)
{
    void *p = malloc(72);
    memset(p, 0x72, 72);
    return p;
}

static void *allocate_and_exit(void *unused)
{
    (void)unused;
    void *volatile held = exited_block(); /* volatile: left in this dead thread's stack */
    KEEP(&held);
    tls_slot = held; /* and in its static TLS, which glibc keeps with the stack */
    return NULL;
}

__attribute__((noinline)) void lose_in_exited_thread(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, allocate_and_exit, NULL) != 0 || pthread_join(thread, NULL) != 0) _exit(3);
}

__attribute__((noinline)) void keep_in_committed_reserve(void)
{
    char *reserve = mmap(NULL, 2 * OWN_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserve == MAP_FAILED || mprotect(reserve + OWN_BYTES, OWN_BYTES, PROT_READ | PROT_WRITE) != 0) _exit(5);
    ((void **)(reserve + OWN_BYTES))[0] = mapped_block();
}

void *volatile g_stale; /* idle_arena: the only pointer, until main drops it */

__attribute__((noinline)) void *stale_block(void)
{
    void *p = malloc(88);
    memset(p, 0x88, 88);
    return p;
}

static void *hold_and_free(void *unused)
{
    (void)unused;
    void **holder = malloc(4 * sizeof *holder);
    holder[0] = holder[1] = NULL;
    holder[2] = holder[3] = g_stale;
    KEEP(holder);
    free(holder);
    return NULL;
}

__attribute__((noinline)) void lose_beside_idle_arena(void)
{
    g_stale = stale_block();
    pthread_t thread;
    if (pthread_create(&thread, NULL, hold_and_free, NULL) != 0 || pthread_join(thread, NULL) != 0) _exit(3);
    g_stale = NULL;
}

__attribute__((noinline)) void *register_block(void)
{
    void *p = malloc(80);
    memset(p, 0x80, 80);
    return p;
}

static volatile int g_exit_now = 1;

/* Not noreturn, so that the caller's pointer stays live across the call. */
__attribute__((noinline)) void exit_if(void)
{
    if (g_exit_now) exit(0);
}

__attribute__((noinline)) void exit_holding_in_register(void)
{
    register void *held __asm__("rbx") = register_block();
    __asm__ volatile("" : "+r"(held)); /* in rbx, and in no stack slot */
    exit_if();
    __asm__ volatile("" : : "r"(held));
}

__attribute__((noinline)) void *syscall_block(void)
{
    void *p = malloc(104);
    memset(p, 0x68, 104);
    return p;
}

static volatile pid_t g_syscall_thread;

/* pause(2) as a raw system call: no libc wrapper's frame saves the pointer to the stack. */
static void *thread_in_syscall(void *unused)
{
    (void)unused;
    void *held = syscall_block();
    g_syscall_thread = (pid_t)syscall(SYS_gettid);
    for (;;) {
        long number = SYS_pause;
        __asm__ volatile("syscall" : "+a"(number) : "S"(held) : "rcx", "r11", "memory");
    }
    return NULL;
}

/* Whether thread `tid` is blocked in pause(2): its /proc syscall line starts with the number. */
static int in_pause(pid_t tid)
{
    char path[64], text[64], expected[16];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    snprintf(expected, sizeof expected, "%d ", (int)SYS_pause);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    return n > 0 && strncmp(text, expected, strlen(expected)) == 0;
}

__attribute__((noreturn, noinline)) void exit_with_thread_in_syscall(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, thread_in_syscall, NULL) != 0) _exit(3);
    for (int tries = 0; tries < 5000 && !(g_syscall_thread && in_pause(g_syscall_thread)); tries++) usleep(1000);
    exit(0);
}

/* Overwrites 16 KiB of the stack below the caller's frame with zeros. */
__attribute__((noinline)) void scrub_stack(void)
{
    char pad[16384];
    memset(pad, 0, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
}

static void say(const char *text)
{
    if (write(2, text, strlen(text)) < 0) _exit(4);
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "";
    if (strcmp(name, "list") == 0) lose_list();
    else if (strcmp(name, "list_tail_first") == 0) lose_list_tail_first();
    else if (strcmp(name, "interior") == 0) keep_interior();
    else if (strcmp(name, "cycle3") == 0) lose_cycle();
    else if (strcmp(name, "exit_stack") == 0) exit_holding();
    else if (strcmp(name, "tls") == 0) keep_in_tls();
    else if (strcmp(name, "thread_stack") == 0) exit_with_blocked_thread();
    else if (strcmp(name, "beside_arena") == 0) keep_beside_arena();
    else if (strcmp(name, "beside_chunk") == 0) keep_beside_chunk();
    else if (strcmp(name, "exited_thread") == 0) lose_in_exited_thread();
    else if (strcmp(name, "reserve_commit") == 0) keep_in_committed_reserve();
    else if (strcmp(name, "idle_arena") == 0) lose_beside_idle_arena();
    else if (strcmp(name, "exit_register") == 0) exit_holding_in_register();
    else if (strcmp(name, "thread_syscall") == 0) exit_with_thread_in_syscall();
    else {
        say("usage: leakclass_c list|list_tail_first|interior|cycle3|exit_stack|tls|thread_stack|beside_arena|beside_chunk|"
            "exited_thread|reserve_commit|idle_arena|exit_register|thread_syscall\n");
        return 2;
    }
    scrub_stack();
    return 0;
}
