/* Source files named as the line table records them, which memcheck shows. Built from
   Tests/Fixtures/src by the relative path srcnames/srcnames.c, as make builds: by clang with
   DWARF 5 (srcnames_clang), which records that path, and by gcc (srcnames_gcc), which records
   srcnames.c under the directory srcnames. inc/grab.h is recorded as grab.h by both.
   Leaks 24 B from leak_direct and 40 B from grab_block (inc/grab.h), inlined into
   leak_inlined. No stdio. */
#include "inc/grab.h"

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

__attribute__((noinline)) void leak_direct(void) {
    void *p = malloc(24);
    KEEP(p);
}

__attribute__((noinline)) void leak_inlined(void) {
    void *p = grab_block(40);
    KEEP(p);
}

int main(void) {
    leak_direct();
    leak_inlined();
    return 0;
}
