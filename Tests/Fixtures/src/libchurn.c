/*
 * libchurn.c - one of the four plugins dl_churn loads in turn, built four times
 * (libchurn1.so ... libchurn4.so) with CHURN_ID 1 to 4.
 *
 * The four have the same shape: each is mapped where the last one was, and its
 * function (churn1_leak ... churn4_leak, named so that a frame given to the
 * wrong plugin shows) allocates from the same return address. Each leaks
 * CHURN_ID x 8 bytes per call, so the report can tell the plugins apart by size.
 */
#include <stdlib.h>

#define PASTE(a, b, c) a##b##c
#define NAMED(a, b, c) PASTE(a, b, c)

static void *kept;

void *NAMED(churn, CHURN_ID, _leak)(void)
{
    kept = malloc(CHURN_ID * 8);
    return kept;
}
