/*
 * static_hello.c - a statically linked program (built with `cc -static`).
 *
 * It has no dynamic loader, so LD_PRELOAD cannot load a tracer into it;
 * `heapgate run` must refuse it (exit 3) instead of reporting an empty heap.
 * Prints "static_hello\n" and exits 0.  Built only when the C library's
 * static archive (libc.a) is installed.
 */
#include <unistd.h>

int main(void)
{
    static const char msg[] = "static_hello\n";
    return write(1, msg, sizeof msg - 1) < 0;
}
