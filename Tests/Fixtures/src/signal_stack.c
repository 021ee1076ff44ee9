/*
 * signal_stack.c - a signal handler that allocates on an alternate stack the program malloc'd.
 *
 * alt_stack_block() mallocs the 64 KiB alternate signal stack; main installs it with
 * sigaltstack and a SIGUSR1 handler with SA_ONSTACK, and raises SIGUSR1 three times. Each time
 * the handler frees the block the one before kept and keeps a new 48-byte one from
 * handler_block() in the global g_handler_block. Then main takes the alternate stack away
 * (SS_DISABLE) and drops its only pointer (the global g_alt_stack). Expected, as memcheck says:
 *   DEFINITELY LOST  65,536 B in 1 block  (alt_stack_block)
 *   STILL REACHABLE  48 B in 1 block      (handler_block)
 * Allocations: 4 (65,536 + 3 x 48 B), frees 2.
 *
 * A capture from a signal handler goes through libunwind, which kept the addresses of pages
 * of the alternate stack it had checked as readable; heapgate scanned libunwind's data as
 * roots and called the alternate stack possibly lost.
 *
 * The handler's stale frames on the alternate stack hold only pointers to freed blocks and to
 * the reachable one, so the alternate stack's own contents decide nothing. No stdio buffers:
 * output goes through write(2). Exit status 0; 1 if sigaltstack or sigaction fails.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

enum { ALT_STACK_BYTES = 65536 };

void *g_alt_stack;
void *g_handler_block;

__attribute__((noinline)) void *alt_stack_block(void)
{
    void *p = malloc(ALT_STACK_BYTES);
    KEEP(p);
    return p;
}

__attribute__((noinline)) void *handler_block(void)
{
    void *p = malloc(48);
    KEEP(p);
    return p;
}

__attribute__((noinline)) void on_signal(int signal_number)
{
    (void)signal_number;
    free(g_handler_block);
    g_handler_block = handler_block();
}

__attribute__((noinline)) int install(void)
{
    stack_t alternate = {.ss_sp = g_alt_stack, .ss_size = ALT_STACK_BYTES};
    if (sigaltstack(&alternate, NULL) != 0) return -1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    action.sa_flags = SA_ONSTACK;
    return sigaction(SIGUSR1, &action, NULL);
}

__attribute__((noinline)) int uninstall(void)
{
    stack_t disabled = {.ss_flags = SS_DISABLE};
    return sigaltstack(&disabled, NULL);
}

int main(void)
{
    g_alt_stack = alt_stack_block();
    if (install() != 0) return 1;
    for (int i = 0; i < 3; i++) raise(SIGUSR1);
    if (uninstall() != 0) return 1;
    g_alt_stack = NULL;
    if (write(1, "handled\n", 8) != 8) return 1;
    return 0;
}
