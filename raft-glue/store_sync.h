/* The store's background sync (internal to raft-glue; design in
 * docs/storage.md, "Crash windows").
 *
 * With [storage] flush = background kyufud opens its store `no_sync`
 * (MDB_NOSYNC): applying an entry commits an LMDB transaction without
 * flushing it, and this module flushes the store off the loop thread (with
 * the default, commit, the commits flush and the timer does not run).  Every KYUFU_STORE_SYNC_INTERVAL_MS, if the
 * store applied anything since the last flush, it reads the applied index
 * on the loop thread and runs kyufu_storage_sync(upto = that index) on a
 * libuv work thread; one sync at a time.  When it returns, that index is
 * durable (kyufu_storage_durable).  A failed sync calls `failed` once (the
 * glue turns it into a fatal IO error: the node stops) and stops syncing.
 *
 * The Raft log, not the store, makes an acknowledged write durable; this
 * only bounds how much a restart after a power loss replays.  Log
 * compaction does not rely on it: the snapshot path syncs by itself before
 * raft may truncate (fsm.c, glue__fsm_deferred_write).  A clean stop
 * flushes in kyufud (node.c) after the glue closed.
 *
 * close stops the timer, waits for a running sync, then calls `closed` on
 * the loop thread.  Loop thread only, except the work function. */
#ifndef KYUFU_GLUE_STORE_SYNC_H
#define KYUFU_GLUE_STORE_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "storage.h"

struct glue_store_sync
{
    uv_loop_t *loop;
    struct kyufu_storage *storage; /* borrowed */
    uv_timer_t timer;
    uv_work_t work;
    bool busy;          /* a sync runs on a work thread */
    bool closing;
    bool timer_open;
    bool failed_once;
    uint64_t upto;      /* applied index read before the running sync */
    uint64_t started_ns;
    int rv;             /* the running sync's result (work thread) */
    char errmsg[160];   /* its detail (work thread, read after it) */
    void (*failed)(void *arg, const char *errmsg);
    void *arg;
    void (*closed)(struct glue_store_sync *ss);
    /* Counters (status, tests). */
    uint64_t n_syncs;
    uint64_t sync_ns_last;
    uint64_t sync_ns_max;
};

/* Starts the periodic timer at once, unless the store flushes its own
 * commits ([storage] flush = commit, kyufu_storage_syncs_commits: there
 * its durable index follows the commits by itself, and a timer's flush
 * would be one more fdatasync every interval under load, for nothing).
 * Cannot fail (uv_timer_init on a live loop). */
void glue__store_sync_init(struct glue_store_sync *ss,
                           uv_loop_t *loop,
                           struct kyufu_storage *storage,
                           void (*failed)(void *arg, const char *errmsg),
                           void *arg);

/* Stop; `closed` fires once no timer or sync is left (never inline). */
void glue__store_sync_close(struct glue_store_sync *ss,
                            void (*closed)(struct glue_store_sync *ss));

#endif /* KYUFU_GLUE_STORE_SYNC_H */
