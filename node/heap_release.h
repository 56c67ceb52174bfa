/* The heap's free pages handed back after each compaction of the Raft
 * log, on a libuv work thread (docs/soak.md "After the trim").
 *
 * kyufu_node_malloc_release (malloc_trim) walks and madvises the freed
 * log's pages: 6-10 ms in a micro-benchmark, a mean of 71 ms and six over
 * 100 ms in the seconds a snapshot was taken during the hour soak of the
 * nineteenth session, when it ran on the loop thread.  glibc's malloc_trim
 * is thread-safe (it locks each arena in turn), so it runs off the loop;
 * one at a time (a compaction while one runs skips it: the next one frees
 * both).  The node's finish waits for a running one.  Doubt: it holds
 * each arena's lock for that arena's whole walk, and the loop thread
 * allocates from the main arena (LMDB's per-command lists included), so
 * the loop may still wait for much of it; the histogram times the work
 * thread, not that wait: judge it by loop stalls and apply times in a
 * soak (not yet done). */
#ifndef KYUFU_NODE_HEAP_RELEASE_H
#define KYUFU_NODE_HEAP_RELEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct kyufu_node;

struct kyufu_node_heap_release
{
    uv_work_t work;
    bool working;      /* a release runs on a work thread */
    uint64_t took_ns;  /* the running one's, set on the work thread */
};

/* A compaction happened (the glue's compacted callback): start a release
 * unless one runs.  Loop thread. */
void kyufu_node__heap_release(struct kyufu_node *n);

#endif /* KYUFU_NODE_HEAP_RELEASE_H */
