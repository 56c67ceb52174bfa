/* Whole-store reads off the loop thread (node-internal).
 *
 * The state digest (Cluster.Status with_digest) and the audit chain check
 * (Ledger.VerifyAudit) walk every record: seconds at a million households,
 * longer than an election timeout.  On the loop thread they stopped Raft
 * and cost a leader its leadership in the 1M install drill
 * (docs/scale.md).  They run on a libuv work thread instead, in their own
 * LMDB read transaction (a storage snapshot; the store is opened
 * MDB_NOTLS), while the loop keeps applying and serving; the call is
 * answered from the after-work callback.
 *
 * Bounds (docs/reader-limit.md): at most KYUFU_NODE_OFFLOAD_MAX run at
 * once (node/limits.h); a call above it is answered RESOURCE_EXHAUSTED at
 * once, never queued.  The snapshot (the reader slot) is begun on the work
 * thread when the work starts and ended there when it is done, so a read
 * waiting in libuv's queue holds no slot and pins no page.  The store is
 * closed only after the last one finished (node.c finish waits on
 * `offloaded`). */
#ifndef KYUFU_NODE_OFFLOAD_H
#define KYUFU_NODE_OFFLOAD_H

#include <uv.h>

#include "node.h"
#include "storage.h"

struct kyufu_node_offload;
/* run: on the work thread, reads o->snap only (open for the call).  done:
 * on the loop thread (o->snap already ended), answers o->call; for a call,
 * not called when the snapshot could not begin (the call was then answered
 * as kyufu_node__call_storage_error with `what`: READERS_FULL as
 * RESOURCE_EXHAUSTED).  offload.c frees o after it. */
typedef void (*kyufu_node_offload_fn)(struct kyufu_node_offload *o);

/* The first member of the caller's struct. */
struct kyufu_node_offload
{
    uv_work_t work;
    struct kyufu_node *node;
    struct kyufu_node_call *call; /* NULL: the node's own work */
    struct kyufu_storage *storage;      /* read on the work thread */
    struct kyufu_storage_snapshot *snap; /* open only while run runs */
    int begin_rv;                        /* snapshot begin's result */
    const char *what;
    kyufu_node_offload_fn run;
    kyufu_node_offload_fn done;
};

/* Allocate `size` zeroed bytes (the caller's struct, which starts with a
 * struct kyufu_node_offload) and queue `run`; `done` answers the call.
 * When the node already runs KYUFU_NODE_OFFLOAD_MAX of them, or any of
 * that fails, the call is answered here instead (over the limit or out of
 * memory: RESOURCE_EXHAUSTED; libuv refusing the work: INTERNAL) and
 * nothing is queued. */
void kyufu_node__offload(struct kyufu_node_call *call,
                         size_t size,
                         kyufu_node_offload_fn run,
                         kyufu_node_offload_fn done,
                         const char *what);

/* The node's own whole-store read, with no call to answer (the scheduled
 * backup, backup_schedule.c), under the same limit and the same wait at
 * stop: allocate `size` zeroed bytes (NULL: no memory), fill the caller's
 * fields, then queue.  Its done runs on the loop in every case, with
 * o->begin_rv != 0 when the snapshot could not begin (run did not run).
 * Queue returns 0, or -1 (over KYUFU_NODE_OFFLOAD_MAX, or libuv refusing
 * the work) after freeing o: nothing queued. */
struct kyufu_node_offload *kyufu_node__offload_new(struct kyufu_node *n,
                                                   size_t size);
int kyufu_node__offload_queue(struct kyufu_node_offload *o,
                              kyufu_node_offload_fn run,
                              kyufu_node_offload_fn done,
                              const char *what);

#endif /* KYUFU_NODE_OFFLOAD_H */
