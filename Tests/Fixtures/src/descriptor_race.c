/*
 * descriptor_race.c - threads that put files at descriptors 1000-1003 by number while other
 * threads allocate, and a thread that forks children doing the same: a tracer that moves its
 * descriptor out of the way must lose neither its trace nor a line of the program's.
 *
 * Usage: descriptor_race DIR ROUNDS (its files in DIR)
 *   two threads allocate and free until told to stop;
 *   two threads each, ROUNDS times: dup2 their file onto 1000 + 2 * id + (round & 1), write
 *   "D<id>\n" there, close it;
 *   one thread forks until told to stop; each child makes 500 malloc/free pairs, puts its
 *   file at 1000 (dup2), writes "C\n" there and calls _exit(0);
 *   then the files are read back: only whole lines of their own, ROUNDS of each "D<id>";
 *   leak_after_race() leaks 91 bytes.
 * Prints "descriptor race: ok" and exits 0 when every check passes; exit 1 otherwise.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile kept;

__attribute__((noinline)) static void leak_after_race(void) {
    kept = malloc(91);
    kept = NULL;
}

static atomic_int stop;
static int rounds;
static const char *directory;

static int open_in_directory(const char *name, int flags) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    return open(path, flags, 0644);
}

static void *allocate(void *unused) {
    (void)unused;
    for (unsigned long n = 0; !atomic_load(&stop); n++) {
        void *volatile blocks[16];
        for (int i = 0; i < 16; i++) blocks[i] = malloc((n * 7 + (unsigned long)i) % 500 + 1);
        for (int i = 0; i < 16; i++) free(blocks[i]);
    }
    return NULL;
}

static void *put_by_number(void *argument) {
    long id = (long)argument;
    char name[32], line[8];
    snprintf(name, sizeof name, "race-%ld.txt", id);
    int length = snprintf(line, sizeof line, "D%ld\n", id);
    int file = open_in_directory(name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    for (int round = 0; round < rounds; round++) {
        int number = 1000 + 2 * (int)id + (round & 1);
        if (dup2(file, number) != number || write(number, line, (size_t)length) != length) return (void *)1;
        close(number);
    }
    close(file);
    return NULL;
}

static void *fork_children(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        pid_t child = fork();
        if (child == 0) {
            int file = open_in_directory("race-children.txt", O_WRONLY | O_CREAT | O_APPEND);
            for (int i = 0; i < 500; i++) {
                void *volatile block = malloc((size_t)i + 1);
                free(block);
            }
            _exit(dup2(file, 1000) == 1000 && write(1000, "C\n", 2) == 2 ? 0 : 1);
        }
        if (child < 0 || waitpid(child, NULL, 0) != child) return (void *)1;
    }
    return NULL;
}

static int holds_only(const char *name, const char *line, int count) {
    int descriptor = open_in_directory(name, O_RDONLY);
    FILE *file = descriptor < 0 ? NULL : fdopen(descriptor, "r");
    if (!file) return count == 0;
    char read[16];
    int seen = 0, others = 0;
    while (fgets(read, sizeof read, file)) *(strcmp(read, line) == 0 ? &seen : &others) += 1;
    fclose(file);
    return others == 0 && (count < 0 || seen == count);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    directory = argv[1];
    rounds = atoi(argv[2]);
    pthread_t allocators[2], putters[2], forker;
    for (int i = 0; i < 2; i++) pthread_create(&allocators[i], NULL, allocate, NULL);
    pthread_create(&forker, NULL, fork_children, NULL);
    for (long i = 0; i < 2; i++) pthread_create(&putters[i], NULL, put_by_number, (void *)i);
    void *failed = NULL, *result;
    for (int i = 0; i < 2; i++) {
        pthread_join(putters[i], &result);
        failed = failed ? failed : result;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(allocators[i], NULL);
    pthread_join(forker, &result);
    failed = failed ? failed : result;
    int ok = !failed && holds_only("race-0.txt", "D0\n", rounds) && holds_only("race-1.txt", "D1\n", rounds) &&
             holds_only("race-children.txt", "C\n", -1);
    leak_after_race();
    if (!ok) {
        fprintf(stderr, "descriptor_race: a call failed or a file holds lines it should not\n");
        return 1;
    }
    printf("descriptor race: ok\n");
    return 0;
}
