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
 * the error is still returned to raft unchanged, except while raft handles
 * a received AppendEntries that carries entries: any failure then makes
 * 0.22.1 free the entry batch twice (recvCb, legacy.c 1655; docs/raft.md,
 * "I/O faults"), so the guard aborts the process instead, after reporting
 * it: a crash stop, as for any failed durable write.  (Asynchronous append
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
 * It holds an InstallSnapshot received while the node takes a snapshot of
 * its own, and hands it to raft only once that snapshot's put has
 * completed (at the next received message or tick).  0.22.1 would park it
 * in `legacy.snapshot_pending` and, when the local put completes,
 * dereference NULL: takeSnapshotCb() (legacy.c 528-533) clears the field
 * before reading it and passes NULL to legacyPersistSnapshotStart(), a
 * segfault at offset 0x48 (docs/raft.md, "Install during a local
 * snapshot").  Holding the message is a delay the network could have
 * caused: raft sees an ordinary late message.  One message is held at a
 * time; a newer one replaces it (the older is freed and counted).
 *
 * And it hosts the leader's snapshot send gate (snapshot_send.h: one
 * InstallSnapshot per peer at a time) and the follower's AppendEntries
 * anchor (append_anchor.h: never below its own snapshot), which need the
 * same lookup, the received messages, and the snapshots loaded and put.
 *
 * It times the appends that succeed, for the node's metrics (`appended`):
 * each request raft_uv sees is then the guard's, answered back to raft's
 * own with raft's callback.
 *
 * Lookup: raft_init sets io->data to the struct raft; the guard sets
 * raft->data to itself, so a wrapper finds its guard from the io alone. */
#ifndef KYUFU_GLUE_IO_GUARD_H
#define KYUFU_GLUE_IO_GUARD_H

#include <raft.h>
#include <stdbool.h>

#include "append_anchor.h"
#include "glue_limits.h"
#include "snapshot_send.h"

struct glue_io_guard;
typedef void (*glue_io_guard_failed_cb)(struct glue_io_guard *g,
                                        const char *call,
                                        int rv);

struct glue_timed_append; /* io_guard.c */

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
    int (*load)(struct raft_io *io,
                raft_term *term,
                raft_id *voted_for,
                struct raft_snapshot **snapshot,
                raft_index *start_index,
                struct raft_entry *entries[],
                size_t *n_entries);
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    void (*close)(struct raft_io *io, raft_io_close_cb cb);
    /* raft's close callback until it is called: libraft 0.22.1's raft_uv
     * fires its close callback a second time when a truncate was still
     * running at the close (docs/raft.md "raft_uv reports closed twice");
     * the guard forwards the first only and counts the others (their
     * memory stays valid: the glue frees it once the loop is idle). */
    raft_io_close_cb raft_closed;
    unsigned long n_late_closes;
    raft_io_recv_cb recv;    /* raft's, set when raft starts the io */
    raft_io_tick_cb tick;    /* raft's, likewise */
    const struct raft_message *receiving; /* during raft's recv, else NULL */
    struct glue_snapshot_send snapshot_send;
    struct glue_append_anchor anchor;
    unsigned long n_install_dropped;
    /* Answers to an AppendEntries from an older term whose last_log_index
     * the guard set (libraft 0.22.1 leaves it uninitialised: see
     * send_message in io_guard.c). */
    unsigned long n_stale_answers_set;
    /* RequestVote results dropped because this server was no longer a
     * candidate (libraft 0.22.1 would read its union as a candidate's:
     * see recv in io_guard.c). */
    unsigned long n_vote_results_dropped;
    /* AppendEntries cut before a configuration entry, and ones that could
     * not be (several batches) (conf_track.h glue__conf_cut). */
    unsigned long n_conf_cut;
    unsigned long n_conf_uncuttable;
    /* InstallSnapshot held during a local snapshot (see above): the
     * message by value (it owns its data and configuration) and a copy of
     * the sender's address, which raft_uv may free before delivery. */
    bool holding;
    struct raft_message held;
    char *held_address;
    bool hold_install;           /* the workaround; tests may clear it */
    unsigned long n_install_held;     /* messages held */
    unsigned long n_install_replaced; /* held ones replaced by newer */
    glue_io_guard_failed_cb failed;
    /* Tests only (NULL in the glue): called before each wrapped call with
     * its name; a nonzero return fails the call with that error without
     * calling the real method, as a failed write would. */
    int (*inject)(struct glue_io_guard *g, const char *call);
    /* Set by the owner (NULL: appends are not timed): a durable append
     * of entries to the log (write and fsync) succeeded after `ns`. */
    void (*appended)(struct glue_io_guard *g, uint64_t ns);
    /* Set by the owner (NULL: nothing): a snapshot put succeeded and raft's
     * callback returned: after a snapshot of this node's own raft has
     * freed its buffers and compacted its in-memory log in there; after an
     * installed one, freed the received data.  (While raft is closing it
     * may have done neither.) */
    void (*compacted)(struct glue_io_guard *g);
    void *data;              /* For the owner. */
    /* The last message received from each peer (raft's io->time, ms), for
     * the node's replication metrics: one slot per sender id, the oldest
     * reused when a new id comes (membership changes). */
    struct
    {
        uint64_t id; /* 0: free */
        uint64_t ms;
    } contact[KYUFU_GLUE_CONTACTS_MAX];
    unsigned long n_failed;  /* Failed calls seen (the first is reported). */
    /* Timed appends that failed: libraft 0.22.1's UvAppend can return an
     * error with the request still held, while legacy frees raft's own
     * request on that error.  Ours stay here until raft_uv's callback
     * (then freed without telling raft) or glue__io_guard_close. */
    struct glue_timed_append *orphans;
};

/* Call after raft_init(r, io, ...): wraps r->io's methods and takes
 * r->data.  `failed` fires once, on the first failure, on the loop thread,
 * from inside the raft call that failed: it must not call into raft. */
void glue__io_guard_wrap(struct glue_io_guard *g,
                         struct raft *r,
                         glue_io_guard_failed_cb failed,
                         void *data);

/* Call after raft has closed (its close callback ran), before freeing g:
 * frees a still-held InstallSnapshot. */
void glue__io_guard_close(struct glue_io_guard *g);

/* Deliver raft a tick now, as raft_uv's tick timer does every
 * heartbeat_timeout ms (a RAFT_TIMEOUT event: raft applies its time rules
 * at the current time; held messages are released first, as at any tick).
 * For the glue's poll, on the loop thread, outside raft's calls; false and
 * nothing done before raft started the io.  Ticks are idempotent in time
 * for followers and candidates (libraft 0.22.1 timeout.c: they only
 * compare the time with the election timer), so the glue gives them only
 * in those states; a leader's tick also checks its contact quorum and
 * aborts pipelines to peers not heard since the last tick, so a leader
 * only gets raft_uv's. */
bool glue__io_guard_tick(struct raft_io *io);

#endif /* KYUFU_GLUE_IO_GUARD_H */
