/* libuv's work pool: its size, and how long work waits for a thread
 * (node-internal).
 *
 * libuv has one pool for the whole process (UV_THREADPOOL_SIZE threads,
 * 4 unless set, one FIFO queue), and raft_uv needs it on the write path: a
 * log write that the kernel would not take without blocking (io_submit
 * with RWF_NOWAIT answering EAGAIN, e.g. on a busy disk) is redone there,
 * and every new open segment is created and allocated there.  kyufu
 * queues its own long work on the same pool: password hashes, whole-store
 * reads, snapshot serialisation, the store's background sync, heap
 * releases, while raft_uv writes and reads snapshots there too.  With four
 * threads, a snapshot being taken (its serialisation, raft_uv's write and
 * fsync of it, the store's sync, the heap release after it) fills the
 * pool for seconds, and a Raft append queued behind them waits for no
 * disk at all.
 *
 * Size: kyufud sets the pool to KYUFU_NODE_WORK_THREADS (limits.h: every
 * long job kyufu can have at once, each bounded there, plus a reserve for
 * raft_uv's own), before any thread starts.  A UV_THREADPOOL_SIZE in the
 * environment is the operator's and kept (the start warns when it is
 * smaller).  Idle threads cost an 8 MiB stack reservation each, not
 * memory.
 *
 * Probe: every stall tick (stall.h) that finds no probe in flight queues
 * an empty work item and records, in kyufu_work_queue_wait_seconds, how
 * long it waited for a thread: the wait a Raft append queued at that
 * moment would have had.  The node's finish waits for a probe in flight. */
#ifndef KYUFU_NODE_WORK_POOL_H
#define KYUFU_NODE_WORK_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct kyufu_node;

struct kyufu_node_work_probe
{
    uv_work_t work;
    bool working;        /* queued or running */
    uint64_t queued_ns;  /* uv_hrtime() when queued (loop thread) */
    uint64_t started_ns; /* when a thread took it (set on that thread) */
};

/* Set UV_THREADPOOL_SIZE to KYUFU_NODE_WORK_THREADS unless the
 * environment has one; before the first uv_queue_work of the process
 * (libuv reads it once).  Returns the size the pool will have. */
unsigned kyufu_node_work_pool_size(void);

/* Queue a probe unless one is in flight or the node is stopping.  Loop
 * thread. */
void kyufu_node__work_probe(struct kyufu_node *n);

#endif /* KYUFU_NODE_WORK_POOL_H */
