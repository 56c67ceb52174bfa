/* One InstallSnapshot per peer at a time, loaded only when it is sent
 * (internal: includes raft.h; hosted by io_guard, which owns the raft_io
 * wrappers, so it runs under raft_uv in the glue and under raft's fixture in
 * the simulation).
 *
 * Why (docs/scale.md, "Snapshot install to a lagging node"): libraft 0.22.1
 * sends a whole new InstallSnapshot whenever the leader's progress for a peer
 * leaves snapshot mode: each heartbeat rejection at the snapshot index (the
 * follower does not hold it until its install is done), each tick in which
 * the peer sent nothing (checkContactQuorum), and the install timeout.  Each
 * re-send loads the snapshot file again (legacy.c legacyLoadSnapshot →
 * io->snapshot_get) and queues it behind the copies still on the one TCP
 * stream to that peer.  At a million households (595 MB) that was 10-45
 * copies, 8-19 GB on the leader, loop stalls and an election storm.
 *
 * What: raft still decides when to send; this module decides whether a copy
 * really goes out.  A peer's gate is IDLE, LOADING (the file is being read),
 * SENDING (on the stream) or SENT (written; the peer is receiving, persisting
 * or restoring it).  While it is not IDLE, a new InstallSnapshot to that peer
 * is refused at once (legacy frees it; raft is not told and keeps sending
 * heartbeats anchored at the snapshot index, as for any snapshot in flight).
 * The gate opens again when
 *   - the peer answers an AppendEntries with success at or past the copy's
 *     index (it persisted and restored it; a rejection does not count: the
 *     follower reports the index in rejections as soon as it starts
 *     persisting);
 *   - the send fails (the copy was lost with the connection);
 *   - the stream to or from the peer is re-established after the copy was
 *     written (the peer may have restarted and lost it);
 *   - the term changed (a copy of an older term is refused by the peer);
 *   - the copy was written `settle_ms + settle_ms_per_mib * MiB` ago
 *     (backstop for a copy lost silently, e.g. dropped by a peer busy
 *     installing another one);
 *   - the copy was handed to the stream that long ago and is still not
 *     written.  raft_uv completes a send only when the write completes or
 *     fails (uv_send.c: no timeout); a write to a peer that stays connected
 *     but never reads (a wedged process, a host gone without a reset until
 *     TCP gives up, ~15 min) would keep the gate shut for as long.  The
 *     copy is then detached: its request and buffers stay alive until
 *     raft_uv's callback, which no longer touches the gate (`copy`
 *     numbers the copy the gate waits for).
 * So at most one copy per peer is loaded or on the wire, whatever makes raft
 * re-send, except a copy stuck on the stream for a settle time: then two at
 * most, since the gate reopens that way only once while a detached copy is
 * pending (the next copy queues behind it on the same stream; only the
 * link's failure, which fails both writes, or the stuck write's completion
 * frees them).
 *
 * Trailing hold: a follower that installed snapshot S then needs the log
 * from S + 1; if the leader took snapshots meanwhile and kept only
 * `snapshot_trailing` entries, those are gone and it needs another whole
 * install, and under steady writes it never catches up (1M households with
 * applications: 1.2 GB copies, ~20 s an install, a new snapshot every
 * ~8 s).  So from the moment a copy to P is loaded until P answers success
 * at or past this node's newest snapshot, the leader keeps every entry
 * after P's position: raft's trailing is raised to (last index - P's
 * position + the configured trailing), updated on every reply, and put back
 * when no peer catches up or leadership is lost (checked on every message
 * while raised).  A peer that shows no progress for its settle time (see
 * above) is no longer held for.  Memory: the entries written during one
 * install and catch-up, in raft's in-memory log.
 *
 * How, without touching raft's private state: snapshot_get does not load;
 * it hands legacy a tiny placeholder snapshot synchronously (0.22.1's
 * legacyLoadSnapshotCb then calls send at once, and legacyLoadSnapshot does
 * not touch its request after snapshot_get returns).  The send wrapper
 * recognises the placeholder, applies the gate, and only then loads the real
 * snapshot with the real snapshot_get, sends it with its own request, and
 * completes legacy's request (freeing the placeholder) when that send
 * completes.  The index and term sent are the loaded snapshot's (legacy
 * would keep the term of the snapshot it asked for).  Only enabled when
 * built against libraft 0.22.1, whose legacy.c this relies on. */
#ifndef KYUFU_GLUE_SNAPSHOT_SEND_H
#define KYUFU_GLUE_SNAPSHOT_SEND_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>

/* Peers tracked (a kyufu cluster has 3-7 nodes; a membership change may add
 * ids over time, slots of idle peers are reused).  Beyond this the send of
 * a snapshot passes ungated. */
#define GLUE_SNAPSHOT_SEND_PEERS 16u

enum glue_snapshot_send_phase {
    GLUE_SNAPSHOT_SEND_IDLE = 0,
    GLUE_SNAPSHOT_SEND_LOADING,
    GLUE_SNAPSHOT_SEND_SENDING,
    GLUE_SNAPSHOT_SEND_SENT,
};

/* What the owner is told (for its log); `dropped` refusals are only
 * counted: raft asks again every heartbeat interval. */
enum glue_snapshot_send_event_kind {
    GLUE_SNAPSHOT_SEND_STARTED,   /* loaded, handed to the stream */
    GLUE_SNAPSHOT_SEND_WRITTEN,   /* the stream took the last byte */
    GLUE_SNAPSHOT_SEND_INSTALLED, /* the peer answers success at the index */
    GLUE_SNAPSHOT_SEND_FAILED,    /* load or send failed: gate open */
    GLUE_SNAPSHOT_SEND_REOPENED,  /* reconnect, term change or settle time
                                     (written or stuck on the stream) */
};

struct glue_snapshot_send_event
{
    enum glue_snapshot_send_event_kind kind;
    raft_id peer;
    raft_index index;   /* the copy's snapshot index (0 if never loaded) */
    raft_term term;     /* the term it was sent in */
    size_t bytes;       /* its size (0 if never loaded) */
    raft_time ms;       /* since the load started */
    int status;         /* FAILED: the raft error */
    const char *reason; /* FAILED / REOPENED: why, static text */
};

struct glue_snapshot_send_peer
{
    raft_id id; /* 0: free slot */
    enum glue_snapshot_send_phase phase;
    raft_index index;
    raft_term term;
    size_t bytes;
    raft_time started; /* load started */
    raft_time sending; /* SENDING since */
    raft_time written; /* SENT since */
    unsigned long copy; /* the copy LOADING or SENDING (ss->n_copies), 0: none */
    unsigned detached;  /* detached copies still on the stream (0 or 1): the
                           slot is not reused, the gate not reopened again */
    bool catching_up;     /* trailing hold: from LOADING to caught up */
    raft_index hold_from; /* P holds the log up to here */
    raft_time hold_progress; /* hold_from last advanced (or the load began) */
};

struct glue_snapshot_send
{
    struct raft_io *io;
    int (*snapshot_get)(struct raft_io *io,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb);
    int (*send)(struct raft_io *io,
                struct raft_io_send *req,
                const struct raft_message *message,
                raft_io_send_cb cb);
    bool enabled;        /* false: both methods pass straight through */
    bool closing;        /* raft_close began (glue__snapshot_send_close) */
    unsigned settle_ms;  /* see above; set by the owner after init */
    unsigned settle_ms_per_mib;
    /* Trailing hold (0: off): the configured trailing, the value set in
     * raft now, and this node's newest snapshot index (the owner's). */
    unsigned trailing_base;
    unsigned trailing_set;
    const raft_index *own_snapshot;
    struct glue_snapshot_send_peer peers[GLUE_SNAPSHOT_SEND_PEERS];
    void (*event)(struct glue_snapshot_send *ss,
                  const struct glue_snapshot_send_event *e);
    void *event_arg;
    /* Counters. */
    unsigned long n_requested; /* InstallSnapshots raft asked to send */
    unsigned long n_dropped;   /* refused: a copy to that peer is out */
    unsigned long n_started;   /* copies loaded and handed to the stream */
    unsigned long n_written;
    unsigned long n_installed;
    unsigned long n_failed;
    unsigned long n_reopened;
    unsigned long n_detached;  /* reopened while SENDING (see above) */
    unsigned long n_copies;    /* copies begun: numbers them from 1 */
    unsigned long n_ungated;   /* table full: sent without a gate */
    unsigned long n_trailing_raised; /* the hold raised raft's trailing */
    unsigned long n_holds_released_early; /* a peer without progress */
};

/* Keep io's real snapshot_get and send (the owner installs wrappers that
 * call the two functions below; io->data must be the struct raft, as
 * raft_init leaves it).  Enabled only when built against libraft 0.22.1;
 * settle times start at 0 (the owner sets them), no event callback. */
void glue__snapshot_send_init(struct glue_snapshot_send *ss,
                              struct raft_io *io);

/* The raft_io methods (called by the owner's wrappers). */
int glue__snapshot_send_get(struct glue_snapshot_send *ss,
                            struct raft_io_snapshot_get *req,
                            raft_io_snapshot_get_cb cb);
int glue__snapshot_send_send(struct glue_snapshot_send *ss,
                             struct raft_io_send *req,
                             const struct raft_message *message,
                             raft_io_send_cb cb);

/* Every message received, before raft sees it. */
void glue__snapshot_send_recv(struct glue_snapshot_send *ss,
                              const struct raft_message *m);

/* A stream to or from `id` was (re)established. */
void glue__snapshot_send_connected(struct glue_snapshot_send *ss, raft_id id);

/* raft is closing its raft_io (the owner's io->close wrapper calls this
 * before the real close).  A copy still LOADING then completes with
 * RAFT_CANCELED when its load returns, and is never handed to io->send:
 * raft_uv's snapshot_get completes after raft_close has begun (it is a
 * thread-pool job), while raft's state still reads LEADER and its term is
 * unchanged (0.22.1's raft_close leaves both), and raft_uv's send on a
 * closing io makes a new client that outlives the io (docs/raft.md "A
 * snapshot load that outlives raft_close"). */
void glue__snapshot_send_close(struct glue_snapshot_send *ss);

#endif /* KYUFU_GLUE_SNAPSHOT_SEND_H */
