/*
 * Prints the descriptor its first open() gets, and the lowest free descriptor after a pipe():
 * with heapgate preloaded they must be what they are natively (the shim and libunwind keep their
 * own descriptors above 1000).
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    int fd = open("/dev/null", O_RDONLY);
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    printf("open %d pipe %d %d\n", fd, fds[0], fds[1]);
    return 0;
}
