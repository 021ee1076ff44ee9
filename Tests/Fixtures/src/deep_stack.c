/*
 * deep_stack.c - a leak 20 distinct frames below main.
 *
 * main -> level_20 -> level_19 -> ... -> level_1 -> malloc(8)
 * level_1() LEAKS 8 bytes (1 block).  Every level is its own noinline
 * function and does work after the call (adds its number), so no frame
 * is merged or turned into a tail call; the complete allocation stack is
 *   malloc, level_1, level_2, ..., level_20, main   (22 frames)
 * (valgrind shows only 12 frames unless run with --num-callers >= 22.)
 * Exit status 0; output via write(2).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

NOINLINE int level_1(int x)
{
    char *p = malloc(8);
    memset(p, x, 8);
    KEEP(p);
    return x + 1;
}

NOINLINE int level_2(int x) { return level_1(x) + 2; }
NOINLINE int level_3(int x) { return level_2(x) + 3; }
NOINLINE int level_4(int x) { return level_3(x) + 4; }
NOINLINE int level_5(int x) { return level_4(x) + 5; }
NOINLINE int level_6(int x) { return level_5(x) + 6; }
NOINLINE int level_7(int x) { return level_6(x) + 7; }
NOINLINE int level_8(int x) { return level_7(x) + 8; }
NOINLINE int level_9(int x) { return level_8(x) + 9; }
NOINLINE int level_10(int x) { return level_9(x) + 10; }
NOINLINE int level_11(int x) { return level_10(x) + 11; }
NOINLINE int level_12(int x) { return level_11(x) + 12; }
NOINLINE int level_13(int x) { return level_12(x) + 13; }
NOINLINE int level_14(int x) { return level_13(x) + 14; }
NOINLINE int level_15(int x) { return level_14(x) + 15; }
NOINLINE int level_16(int x) { return level_15(x) + 16; }
NOINLINE int level_17(int x) { return level_16(x) + 17; }
NOINLINE int level_18(int x) { return level_17(x) + 18; }
NOINLINE int level_19(int x) { return level_18(x) + 19; }
NOINLINE int level_20(int x) { return level_19(x) + 20; }

int main(void)
{
    int sum = level_20(0);
    static const char msg[] = "deep_stack: done\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return sum == 210 ? 0 : 1;
}
