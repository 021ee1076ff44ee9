/*
 * thread_churn.c - 2,000 threads made and joined one after another.
 *
 * The shim gives each thread a mapping for its unwinder and hands it to the next thread
 * when the thread ends (CShim/hg_unwind.c), and glibc gives the next thread the same stack:
 * whatever the last thread left there must not decide the next one's stacks. Even threads
 * allocate through path_a, odd ones through path_b, at the same depth. Each thread
 * allocates and frees 10 blocks; thread 100k keeps 24 bytes (path_a) and thread 100k+1
 * keeps 40 (path_b), both in keep_block, without keeping a pointer: 20 blocks of 24 bytes
 * and 20 of 40 definitely lost. 20,040 allocs, 20,000 frees. Output: none.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" ::"r"(p) : "memory")

__attribute__((noinline)) static void keep_block(size_t size) {
    void *block = malloc(size);
    memset(block, 'k', size);
    KEEP(block);
}

__attribute__((noinline)) static void churn(long n) {
    for (int i = 0; i < 10; i++) {
        void *block = malloc(16 + (size_t)i * 8);
        KEEP(block);
        free(block);
    }
    if (n % 100 == 0) keep_block(24);
    if (n % 100 == 1) keep_block(40);
}

__attribute__((noinline)) static void path_a(long n) { churn(n); }

__attribute__((noinline)) static void path_b(long n) { churn(n); }

static void *thread_main(void *arg) {
    long n = (long)arg;
    if (n % 2 == 0)
        path_a(n);
    else
        path_b(n);
    return NULL;
}

int main(void) {
    for (long n = 0; n < 2000; n++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, thread_main, (void *)n) != 0) return 1;
        pthread_join(thread, NULL);
    }
    return 0;
}
