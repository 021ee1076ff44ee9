/*
 * fork_child.c - leaks on both sides of a fork.
 *
 * Usage: fork_child [_exit|exit]      (default: _exit)
 *
 *   parent, before fork:  parent_leak()        malloc(16)  LEAKED 16 bytes
 *   child:                child_leak()         malloc(48)  LEAKED 48 bytes,
 *                         then _exit(0) (default) or exit(0) ("exit"), so
 *                         the child ends without / with atexit handlers and
 *                         destructors.
 *   parent, after wait:   parent_after_fork()  malloc(64)  LEAKED 64 bytes
 *   parent exits 0 (1 if the child did not exit with status 0).
 *
 * So the parent leaks 16 + 64 = 80 bytes in 2 blocks; the child leaks its
 * own 48 bytes plus its copy of the parent's 16-byte block = 64 bytes in
 * 2 blocks.  Output only via write(2) (no stdio buffers to duplicate).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void parent_leak(void)
{
    void *p = malloc(16);
    memset(p, 'p', 16);
    KEEP(p);
}

__attribute__((noinline)) void child_leak(void)
{
    void *p = malloc(48);
    memset(p, 'c', 48);
    KEEP(p);
}

__attribute__((noinline)) void parent_after_fork(void)
{
    void *p = malloc(64);
    memset(p, 'a', 64);
    KEEP(p);
}

static void say(const char *s)
{
    if (write(1, s, strlen(s)) < 0)
        _exit(3);
}

int main(int argc, char **argv)
{
    int use_exit = argc > 1 && strcmp(argv[1], "exit") == 0;

    parent_leak();
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        child_leak();
        if (use_exit) {
            say("fork_child: child exit(0)\n");
            exit(0);
        }
        say("fork_child: child _exit(0)\n");
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    parent_after_fork();
    say("fork_child: parent done\n");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
