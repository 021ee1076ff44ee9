/*
 * What a musl program loads instead of the shim.
 *
 * `heapgate run` preloads HEAPGATE_LIB/heapgate-preload/$LIB/libheapgate.so. glibc's loader
 * expands $LIB (to lib/x86_64-linux-gnu on Debian, lib64 on Fedora, lib on Arch) and finds a
 * link to the real shim there. musl's loader does not expand it: it opens the directory
 * named "$LIB" literally and finds this library, which needs nothing and does nothing. Given
 * the glibc-linked shim instead, musl's loader stops with an error and never starts the
 * program: a musl program anywhere in a traced process tree failed with status 127.
 *
 * Built with -nostdlib: no C library, no dependencies, no constructor.
 */
const char heapgate_preload_stub[] = "heapgate: this program is not traced (not linked against glibc)";
