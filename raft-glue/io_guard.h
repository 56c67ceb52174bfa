/* Durable-write guard around a raft_io (internal: includes raft.h; used by
 * glue.c on raft_uv and by the simulation on raft's fixture).
 *
 * libraft 0.22.1 drops the error of a raft_io call made while it handles a
 * tick or a received message (legacy.c tickCb/recvCb: `assert(rv == 0)`,
 * compiled out in Debian's build): a failed set_term, set_vote, append or
 * truncate is then ignored and the raft core carries on with a term, vote
 * or entries its disk does not hold (a vote not persisted can be cast twice
 * after a restart).  The guard wraps those four methods and reports the
 * first synchronous failure through `failed`, so the owner stops the node;
 * the error is still returned to raft unchanged.  (Asynchronous append
 * failures: raft_uv retries them and the glue's raft_uv tracer catches the
 * retry; see docs/raft.md, "Disk write failures".)
 *
 * It also drops an InstallSnapshot received while one is being installed,
 * freeing its data and configuration.  0.22.1 means to ignore it (recv.c
 * expects RAFT_BUSY) but replicationInstallSnapshot returns 0 with `async`
 * set (replication.c 946-950), so nobody frees the message: a leak of a
 * whole snapshot per duplicate, and a leader re-sends one whenever a
 * heartbeat rejection aborts its snapshot mode during a slow install.
 *
 * Lookup: raft_init sets io->data to the struct raft; the guard sets
 * raft->data to itself, so a wrapper finds its guard from the io alone. */
#ifndef KYUFU_GLUE_IO_GUARD_H
#define KYUFU_GLUE_IO_GUARD_H

#include <raft.h>

struct glue_io_guard;
typedef void (*glue_io_guard_failed_cb)(struct glue_io_guard *g,
                                        const char *call,
                                        int rv);

struct glue_io_guard
{
    int (*set_term)(struct raft_io *io, raft_term term);
    int (*set_vote)(struct raft_io *io, raft_id server_id);
    int (*append)(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);
    int (*truncate)(struct raft_io *io, raft_index index);
    int (*start)(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    raft_io_recv_cb recv;    /* raft's, set when raft starts the io */
    unsigned long n_install_dropped;
    glue_io_guard_failed_cb failed;
    /* Tests only (NULL in the glue): called before each wrapped call with
     * its name; a nonzero return fails the call with that error without
     * calling the real method, as a failed write would. */
    int (*inject)(struct glue_io_guard *g, const char *call);
    void *data;              /* For the owner. */
    unsigned long n_failed;  /* Failed calls seen (the first is reported). */
};

/* Call after raft_init(r, io, ...): wraps r->io's methods and takes
 * r->data.  `failed` fires once, on the first failure, on the loop thread,
 * from inside the raft call that failed: it must not call into raft. */
void glue__io_guard_wrap(struct glue_io_guard *g,
                         struct raft *r,
                         glue_io_guard_failed_cb failed,
                         void *data);

#endif /* KYUFU_GLUE_IO_GUARD_H */
