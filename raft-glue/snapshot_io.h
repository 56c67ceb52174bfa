/* Deferred snapshots: raft_uv's snapshot_put, wrapped (internal).
 *
 * In 0.22.1 legacy mode fsm->snapshot (and snapshot_async) run on the loop
 * thread; serializing a million-household store there would stall every
 * commit.  So in DEFERRED mode fsm->snapshot only opens a storage snapshot
 * (an LMDB read transaction) and returns the 40-byte header, and this
 * wrapper, recognising that header in the put it is handed, serializes the
 * store on a libuv work thread into an unnamed file in the Raft directory
 * (stream_file.h), then calls raft_uv's real snapshot_put with the header
 * and the file's mapping; when that completes it closes the file and calls
 * raft's callback, whose snapshot_finalize ends the storage snapshot.
 *
 * Nothing in 0.22.1 reads the buffers of a snapshot being taken between
 * fsm->snapshot and the put callback: legacy.c hands them only to
 * snapshot_put, and sends InstallSnapshot from disk via snapshot_get (which
 * returns the previous snapshot until this one is written, while the log
 * still holds every entry after it).  Puts of installed snapshots (trailing
 * 0, a buffer that is not our header) pass straight through. */
#ifndef KYUFU_GLUE_SNAPSHOT_IO_H
#define KYUFU_GLUE_SNAPSHOT_IO_H

#include <raft.h>
#include <stdbool.h>
#include <uv.h>

#include "fsm.h"

struct glue_snapshot_io
{
    struct raft_io io; /* raft_uv's; handed to raft_init. */
    int (*put)(struct raft_io *io,
               unsigned trailing,
               struct raft_io_snapshot_put *req,
               const struct raft_snapshot *snapshot,
               raft_io_snapshot_put_cb cb);
    struct kyufu_fsm *fsm;
    uv_loop_t *loop;
    unsigned n_work;     /* serializations on a work thread */
    unsigned n_inflight; /* deferred puts whose raft callback is pending */
    bool closing;        /* fail deferred puts instead of writing them */
    void (*drained)(struct glue_snapshot_io *s); /* n_work reached 0 */
    const char *dir; /* the Raft directory: the stream's unnamed file */
    unsigned long n_deferred;
    unsigned long n_failed;
    unsigned long n_file_failed; /* of those, the file system's refusals */
    int file_err;                /* errno of the last such refusal */
};

/* Call after raft_uv_init(&s->io, ...): installs the wrapper. */
void glue__snapshot_io_wrap(struct glue_snapshot_io *s,
                            struct kyufu_fsm *fsm,
                            uv_loop_t *loop,
                            const char *dir);

#endif /* KYUFU_GLUE_SNAPSHOT_IO_H */
