/*
 * main_thread_exit.c - the main thread leaves by pthread_exit while a worker runs on; the
 * process ends, with status 0, when the worker (its last thread) returns.
 *
 *   main:    before_leaving()  malloc(8)   LEAKED 8 bytes; starts the worker; pthread_exit
 *   worker:  sleeps 50 ms, in_worker()  malloc(24)  LEAKED 24 bytes, prints
 *            "main_thread_exit: worker done", returns
 *
 * So 32 bytes in 2 blocks are lost, plus the worker's DTV that glibc keeps. Output only via
 * write(2).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void before_leaving(void)
{
    void *p = malloc(8);
    memset(p, 'm', 8);
    KEEP(p);
}

__attribute__((noinline)) void in_worker(void)
{
    void *p = malloc(24);
    memset(p, 'w', 24);
    KEEP(p);
}

static void *worker(void *unused)
{
    (void)unused;
    usleep(50000);
    in_worker();
    if (write(1, "main_thread_exit: worker done\n", 30) < 0)
        return NULL;
    return NULL;
}

int main(void)
{
    before_leaving();
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 3;
    pthread_exit(NULL);
}
