/* Linked into own_allocator_early: its constructor runs before heapgate's (ld.so initialises
 * the program's libraries, then the preloaded shim), so the two blocks it allocates come from
 * the program's own allocator, before heapgate replaced it with glibc's. */
#include <stdlib.h>
#include <string.h>

static char *early_text, *early_scratch;

__attribute__((constructor)) static void early_init(void) {
    early_text = malloc(100);
    strcpy(early_text, "made before heapgate started");
    early_scratch = malloc(50);
}

/* Frees one early block and grows the other: both reach heapgate's entry points now. */
char *early_grow(void) {
    free(early_scratch);
    early_text = realloc(early_text, 4000);
    return early_text;
}
