/* glibc's allocator settings for kyufud: contract in malloc_policy.h, the
 * figures in node/limits.h and docs/benchmarks.md "A map and an unmap per
 * command".
 *
 * The arenas are capped (KYUFU_NODE_MALLOC_ARENAS_MAX: the work pool's
 * many threads share five).  Two settings, each turning off glibc's
 * dynamic adjustment of both:
 *   - M_MMAP_THRESHOLD between the largest block the write path allocates
 *     (LMDB's nested transaction, 2 MiB and 1 MiB, once per applied
 *     command) and a 4 MiB snapshot chunk.  At 2 MiB every command mapped
 *     and unmapped 2 MiB (tens of microseconds each, on every node);
 *   - M_TRIM_THRESHOLD above what one command frees at the top of the
 *     heap, so the heap is not shrunk after each command and grown again
 *     for the next.
 * Under ASan the allocator is ASan's: its mallopt does nothing and
 * returns 0, so there is nothing to set and nothing to report. */
#include "malloc_policy.h"

#include <malloc.h>

#include "limits.h"

_Static_assert(KYUFU_NODE_LMDB_NESTED_LIST_BYTES < KYUFU_NODE_MMAP_THRESHOLD_BYTES,
               "a command's nested LMDB transaction is not mapped");
_Static_assert(KYUFU_NODE_MMAP_THRESHOLD_BYTES < KYUFU_NODE_TRIM_THRESHOLD_BYTES,
               "what one command frees on the heap is not trimmed");

void kyufu_node_malloc_release(void)
{
#if !defined(__SANITIZE_ADDRESS__)
    /* Keep the top's warm free space (the trim threshold's worth): the
     * holes below live blocks are what this is for. */
    (void)malloc_trim(KYUFU_NODE_TRIM_THRESHOLD_BYTES);
#endif
}

int kyufu_node_malloc_policy(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 0;
#else
    if (mallopt(M_MMAP_THRESHOLD, (int)KYUFU_NODE_MMAP_THRESHOLD_BYTES) != 1) {
        return -1;
    }
    if (mallopt(M_TRIM_THRESHOLD, (int)KYUFU_NODE_TRIM_THRESHOLD_BYTES) != 1) {
        return -1;
    }
    if (mallopt(M_ARENA_MAX, (int)KYUFU_NODE_MALLOC_ARENAS_MAX) != 1) {
        return -1;
    }
    return 0;
#endif
}
