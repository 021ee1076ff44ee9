/* The per-thread re-entrancy guard. initial-exec TLS: the shim is preloaded, so its TLS is
 * static and reading it never calls __tls_get_addr (which may allocate). */
#include "hg_internal.h"

__thread int hg_guard_depth __attribute__((tls_model("initial-exec")));
