/*
 * neighbour.c - a loop of arithmetic that runs until it is killed, for make bench's probe of
 * the machine: started beside a native run, it shows whether the two CPUs share one core's
 * resources (hyper-threads, or the host's placement of two virtual CPUs). When they do, any
 * work on the other CPU, heapgate's drain thread included, takes time from the program.
 * It ends with its parent, and after a minute in any case, so that an interrupted benchmark
 * never leaves it spinning.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60);
    volatile unsigned long x = 1;
    for (;;) x = x * 3 + 1;
}
