/*
 * churn.c - allocator load for benchmarks.
 *
 * Usage: churn [ITERATIONS [DEPTH [threads T]]]     (defaults 100000 8, 1 thread)
 *   Recurses DEPTH frames through descend() and there performs ITERATIONS
 *   malloc/free pairs.  Sizes come from a small LCG, 16..1024 bytes.  Blocks
 *   live for a while in a 64-slot ring (slot i % 64 is freed and refilled).
 *   With "threads T", T threads each do the same; every allocation is handed
 *   to the next thread through a lock-free single-producer/single-consumer
 *   queue and freed by it, so most frees are cross-thread (when a queue is
 *   full the block goes to the ring instead and is freed locally).
 *
 * Everything is freed: ITERATIONS*T mallocs (+1 calloc for the queues with
 * threads) and as many frees; nothing leaks.
 * Output: one line via write(2) with the totals.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RING 64
#define QSIZE 1024 /* power of two */
#define MAXTHREADS 256

struct queue { /* single producer (thread t-1), single consumer (thread t) */
    void *slot[QSIZE];
    _Alignas(64) atomic_size_t head; /* next slot to read, consumer-owned */
    _Alignas(64) atomic_size_t tail; /* next slot to write, producer-owned */
};

static long iterations = 100000;
static int depth = 8;
static int nthreads = 1;
static struct queue *queues; /* queue t is filled by thread t-1, drained by t */
static volatile unsigned long sink;

static int q_push(struct queue *q, void *p)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (tail - head == QSIZE)
        return 0;
    q->slot[tail % QSIZE] = p;
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return 1;
}

static void *q_pop(struct queue *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (head == tail)
        return NULL;
    void *p = q->slot[head % QSIZE];
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    return p;
}

__attribute__((noinline)) void churn(int t)
{
    void *ring[RING] = { 0 };
    unsigned int lcg = 12345u + (unsigned int)t * 7919u;
    struct queue *out = nthreads > 1 ? &queues[(t + 1) % nthreads] : NULL;
    struct queue *in = nthreads > 1 ? &queues[t] : NULL;

    for (long i = 0; i < iterations; i++) {
        lcg = lcg * 1103515245u + 12345u;
        size_t size = 16 + (lcg >> 16) % 1009; /* 16..1024 */
        unsigned char *p = malloc(size);
        p[0] = (unsigned char)i;
        p[size - 1] = (unsigned char)size;
        if (out && q_push(out, p))
            p = NULL;
        if (p) {
            int s = (int)(i % RING);
            free(ring[s]);
            ring[s] = p;
        }
        if (in) {
            void *q = q_pop(in);
            free(q);
        }
    }
    for (int s = 0; s < RING; s++)
        free(ring[s]);
}

__attribute__((noinline)) unsigned long descend(int t, int n)
{
    if (n <= 1) {
        churn(t);
        return 1;
    }
    unsigned long r = descend(t, n - 1);
    sink = r;                          /* work after the call: no tail call */
    return r + 1;
}

static void *worker(void *arg)
{
    descend((int)(long)arg, depth);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iterations = atol(argv[1]);
    if (argc > 2)
        depth = atoi(argv[2]);
    if (argc > 4 && strcmp(argv[3], "threads") == 0)
        nthreads = atoi(argv[4]);
    if (iterations < 0 || depth < 1 || nthreads < 1 || nthreads > MAXTHREADS) {
        static const char usage[] = "usage: churn [ITERATIONS [DEPTH [threads T]]]\n";
        if (write(2, usage, sizeof usage - 1) < 0)
            return 2;
        return 2;
    }

    if (nthreads == 1) {
        descend(0, depth);
    } else {
        queues = calloc((size_t)nthreads, sizeof *queues);
        pthread_t tid[MAXTHREADS];
        for (long t = 0; t < nthreads; t++)
            if (pthread_create(&tid[t], NULL, worker, (void *)t) != 0)
                return 1;
        for (int t = 0; t < nthreads; t++)
            pthread_join(tid[t], NULL);
        for (int t = 0; t < nthreads; t++) { /* blocks still queued */
            void *p;
            while ((p = q_pop(&queues[t])) != NULL)
                free(p);
        }
        free(queues);
    }

    char line[128];
    int n = snprintf(line, sizeof line, "churn: %ld iterations x %d threads at depth %d\n",
                     iterations, nthreads, depth);
    if (write(1, line, (size_t)n) < 0)
        return 1;
    return 0;
}
