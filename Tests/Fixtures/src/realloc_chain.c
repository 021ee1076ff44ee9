/*
 * realloc_chain.c - one buffer grown by realloc one byte at a time.
 *
 * grow_buffer(): p = realloc(NULL, 1), then p = realloc(p, n) for
 * n = 2, 3, ..., 4096, writing byte n-1 each time and checking that the
 * earlier bytes survived.  The final 4096-byte block is LEAKED; its
 * allocation point is the realloc call inside the loop.
 *
 * valgrind counts each realloc as one alloc + one free of the old block:
 * 4096 allocs, 4095 frees, 1+2+...+4096 = 8,390,656 bytes allocated;
 * 4096 bytes in 1 block leaked.  (glibc often grows in place, so many
 * reallocs return the same address.)  Exit status 0, 1 if a byte was lost.
 */
#include <stdlib.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) int grow_buffer(void)
{
    unsigned char *p = NULL;
    for (size_t n = 1; n <= 4096; n++) {
        p = realloc(p, n);
        if (!p)
            return 1;
        p[n - 1] = (unsigned char)(n * 31);
        if (p[0] != 31 || p[n / 2] != (unsigned char)((n / 2 + 1) * 31))
            return 1;
    }
    KEEP(p);
    return 0;
}

int main(void)
{
    int bad = grow_buffer();
    static const char msg[] = "realloc_chain: done\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return bad;
}
