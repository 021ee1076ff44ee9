/* Part of srcnames.c (see there): a header in a directory of its own, whose inline function
   allocates, so that the frame's source is this file, named as the line table records it. */
#include <stdlib.h>

__attribute__((always_inline)) static inline void *grab_block(size_t size) {
    return malloc(size);
}
