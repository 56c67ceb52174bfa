/* Deferred snapshot_put: see snapshot_io.h.
 *
 * Happy path: put(header) → uv_queue_work → work: storage serializes into
 * an unnamed file, mapped (stream_file.h) → after-work: real put(header +
 * mapping) → put callback: close the file, call raft's callback (→
 * snapshot_finalize).  Failure modes: the serialization fails (a fatal
 * storage error poisons the FSM; raft gets an error and takes a snapshot
 * again later), the file system refuses the file (counted, remembered for
 * the status; the FSM holds the next snapshot back for a quarter period,
 * glue__fsm_snapshot_refused), the real put refuses (raft
 * gets its error), or the glue is closing (raft gets RAFT_CANCELED).  raft's
 * callback always fires after the put call returned, on the loop thread. */
#include "snapshot_io.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "glue_limits.h"

struct deferred_put
{
    uv_work_t work;
    struct glue_snapshot_io *s;
    unsigned trailing;
    struct raft_io_snapshot_put *orig;
    raft_io_snapshot_put_cb orig_cb;
    struct raft_snapshot snap; /* bufs[0] is the FSM's header (borrowed),
                                  bufs[1] the stream's mapping */
    struct raft_buffer bufs[2];
    struct glue_stream_file file;
    uint64_t room; /* bytes the file system must have available */
    struct raft_io_snapshot_put put;
    int rv;
};

static struct glue_snapshot_io *of(struct raft_io *io)
{
    return (struct glue_snapshot_io *)(void *)((char *)io -
                                              offsetof(struct glue_snapshot_io,
                                                       io));
}

static void deferred_free(struct deferred_put *d)
{
    /* bufs[0] belongs to the FSM until snapshot_finalize; the file goes. */
    glue__stream_file_close(&d->file);
    free(d);
}

static void finish(struct deferred_put *d, int status)
{
    struct raft_io_snapshot_put *orig = d->orig;
    raft_io_snapshot_put_cb cb = d->orig_cb;
    assert(d->s->n_inflight > 0);
    d->s->n_inflight--;
    deferred_free(d);
    cb(orig, status);
}

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct deferred_put *d = req->data;
    if (status == 0) {
        /* On disk: raft's callback (in finish) compacts its log at this
         * index, which the next threshold counts from. */
        glue__fsm_snapshot_sized(d->s->fsm, d->snap.index, d->snap.bufs,
                                 d->snap.n_bufs);
    }
    finish(d, status);
}

static void work_cb(uv_work_t *work)
{
    struct deferred_put *d = work->data;
    d->rv = glue__fsm_deferred_write(d->s->fsm, d->s->dir, d->room, &d->file);
    if (d->rv == 0) {
        d->bufs[1].base = d->file.map; /* raft_uv only reads it */
        d->bufs[1].len = d->file.len;
        d->snap.n_bufs = 2;
    }
}

static void after_work_cb(uv_work_t *work, int status)
{
    struct deferred_put *d = work->data;
    struct glue_snapshot_io *s = d->s;
    int rv;

    assert(s->n_work > 0);
    s->n_work--;

    if (status != 0 || s->closing) {
        rv = RAFT_CANCELED;
    } else if (d->rv != 0 && d->file.err != 0) {
        /* The file system refused the snapshot's file (a full disk, no
         * O_TMPFILE): not the store's fault.  raft takes one again later. */
        s->n_failed++;
        s->n_file_failed++;
        s->file_err = d->file.err;
        glue__fsm_snapshot_refused(s->fsm, d->snap.index);
        rv = RAFT_IOERR;
    } else if (d->rv != 0) {
        s->n_failed++;
        if (kyufu_storage_is_fatal(d->rv) && s->fsm->hooks.fatal != NULL &&
            s->fsm->fatal_rv == 0) {
            s->fsm->fatal_rv = d->rv;
            s->fsm->hooks.fatal(s->fsm->hooks.arg, d->rv,
                                "snapshot serialization failed");
        }
        rv = d->rv == KYUFU_STORAGE_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    } else {
        d->put.data = d;
        rv = s->put(&s->io, d->trailing, &d->put, &d->snap, put_cb);
    }
    if (rv != 0) {
        finish(d, rv);
    }
    if (s->n_work == 0 && s->drained != NULL) {
        s->drained(s);
    }
}

static int put_wrap(struct raft_io *io,
                    unsigned trailing,
                    struct raft_io_snapshot_put *req,
                    const struct raft_snapshot *snapshot,
                    raft_io_snapshot_put_cb cb)
{
    struct glue_snapshot_io *s = of(io);
    struct deferred_put *d;
    int rv;

    if (trailing == 0 || snapshot->n_bufs != 1 ||
        !glue__fsm_is_deferred(s->fsm, snapshot->bufs[0].base)) {
        return s->put(io, trailing, req, snapshot, cb);
    }
    if (s->closing) {
        return RAFT_CANCELED;
    }

    d = calloc(1, sizeof *d);
    if (d == NULL) {
        return RAFT_NOMEM;
    }
    d->snap = *snapshot; /* configuration stays raft's until its callback */
    d->bufs[0] = snapshot->bufs[0];
    d->snap.bufs = d->bufs;
    d->snap.n_bufs = 1;
    d->file.fd = -1;
    /* This file and raft_uv's copy, if the ledger is about the size of
     * the last snapshot, and raft_uv's next segments. */
    d->room = 2 * s->fsm->last_snapshot_bytes +
              KYUFU_SNAPSHOT_FILE_ROOM_MARGIN_BYTES;
    d->s = s;
    d->trailing = trailing;
    d->orig = req;
    d->orig_cb = cb;
    req->cb = cb;
    d->work.data = d;
    rv = uv_queue_work(s->loop, &d->work, work_cb, after_work_cb);
    if (rv != 0) {
        free(d);
        return RAFT_IOERR;
    }
    s->n_work++;
    s->n_inflight++;
    s->n_deferred++;
    return 0;
}

void glue__snapshot_io_wrap(struct glue_snapshot_io *s,
                            struct kyufu_fsm *fsm,
                            uv_loop_t *loop,
                            const char *dir)
{
    assert(fsm->mode == KYUFU_FSM_SNAPSHOT_DEFERRED);
    s->put = s->io.snapshot_put;
    s->io.snapshot_put = put_wrap;
    s->fsm = fsm;
    s->loop = loop;
    s->dir = dir;
    s->n_work = 0;
    s->n_inflight = 0;
    s->n_file_failed = 0;
    s->file_err = 0;
    s->closing = false;
    s->drained = NULL;
}
