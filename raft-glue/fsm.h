/* The raft_fsm adapter over a struct kyufu_storage (internal: includes
 * raft.h; used by glue.c and by the simulation in tests/sim).
 *
 * apply: decodes the entry framing (frame.h), applies the CommandBatch at
 * index raft_last_applied()+1 with the framed term, and hands the results
 * to the `applied` hook (the proposer), which owns them from then on.  The
 * FSM always returns a NULL result to raft: libraft 0.22.1 leaks a result
 * when no local request waits for the index (a follower, or a leader that
 * lost leadership), so results never travel through raft.
 *
 * Entries at or below storage's applied index are skipped: after a restart
 * raft replays its log, and LMDB already holds those entries (the applied
 * index is written in the same transaction as their effects).
 *
 * An entry whose framing is not kyufu's (frame.h: magic, version, length,
 * zero padding, term > 0) is recorded as a no-op at its index on every
 * replica alike (n_bad_frames).  A sealed (version 2) entry is opened with
 * the stream key of its key version (seal.h) before it is applied; one
 * whose tag does not verify (tampered bytes, another cluster's key)
 * poisons the FSM with CORRUPT and "entry N failed authentication", and so
 * does a sealed entry on a node whose store has no cluster master key:
 * never applied, never skipped.  A well-framed entry whose term is below the
 * store's applied term (terms never decrease along a log) poisons the FSM
 * as below, with CORRUPT and an errmsg naming the index and both terms;
 * the store is left untouched.
 *
 * Any storage error during apply poisons the FSM: the `fatal` hook fires
 * once so the owner stops the node, and that entry and every later one are
 * dropped (storage records nothing more; nothing is retried).  apply still
 * returns 0 to raft, always: in 0.22.1 an apply error returned while raft
 * handles a received AppendEntries makes recvCb free the message's entry
 * batch a second time (legacy.c legacyHandleUpdateEntries already freed it)
 * — a double free instead of a clean stop (docs/raft.md).  raft's
 * last_applied then runs ahead of the store, which is harmless: the node
 * is stopping, snapshot and restore refuse once poisoned, and a restart
 * replays from storage's applied index.
 *
 * Snapshots: in INLINE mode fsm->snapshot serializes the whole store
 * synchronously (the simulation); in DEFERRED mode it only opens a storage
 * snapshot (a read transaction) and returns the 40-byte header; the
 * snapshot_io.c wrapper around raft_uv's snapshot_put serializes on a work
 * thread (glue__fsm_deferred_*).  snapshot_finalize frees the buffers and
 * ends the storage snapshot.  With a cluster master key the header is
 * version 2 and storage's stream is handed on in sealed chunks (seal.h);
 * restore opens them (refusing, like a corrupt snapshot, any that fail
 * authentication) and still takes version-1 (plaintext) snapshots. */
#ifndef KYUFU_GLUE_FSM_H
#define KYUFU_GLUE_FSM_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#include "seal.h"
#include "storage.h"
#include "stream_file.h"

struct kyufu_fsm_hooks
{
    void *arg;
    /* Called from apply for every applied command entry, with ownership of
     * *results (the hook must take or free them). */
    void (*applied)(void *arg, uint64_t index, uint64_t term,
                    struct kyufu_storage_results *results);
    /* Called once when the FSM is poisoned by a fatal storage error. */
    void (*fatal)(void *arg, int storage_rv, const char *errmsg);
};

enum kyufu_fsm_snapshot_mode {
    KYUFU_FSM_SNAPSHOT_INLINE = 1,
    KYUFU_FSM_SNAPSHOT_DEFERRED = 2,
};

struct kyufu_fsm
{
    struct kyufu_storage *storage; /* Borrowed. */
    struct raft *raft;             /* Set by the owner after raft_init. */
    struct kyufu_fsm_hooks hooks;
    enum kyufu_fsm_snapshot_mode mode;
    int fatal_rv;                  /* 0, or the storage error that stopped us */
    char errmsg[256];
    /* Outstanding snapshot (between snapshot and snapshot_finalize). */
    struct kyufu_storage_snapshot *snap;
    void *deferred_header;         /* The buffer handed to raft (DEFERRED). */
    size_t deferred_header_len;
    /* Stream keys: entries' (loop thread; the last version seen) and the
     * outstanding snapshot's (loaded when it is taken, used by the thread
     * that serializes it, wiped at finalize).  kyufu_fsm_wipe_keys. */
    struct glue_stream_key apply_key;
    struct glue_stream_key snap_key;
    /* Counters, for tests and status. */
    uint64_t n_applied;
    uint64_t n_skipped;
    uint64_t n_bad_frames;
    uint64_t n_sealed;             /* sealed entries opened and applied */
    uint64_t n_snapshots;
    uint64_t n_snapshots_refused;  /* asked while the store was ahead */
    uint64_t n_snapshots_deferred_conf; /* a configuration uncommitted */
    uint64_t n_restores;
    uint64_t n_restores_skipped;
    uint64_t n_dropped;            /* entries not recorded once poisoned */
    /* Runs of committed entries: libraft applies from last_applied + 1 up
     * to its commit index in one go, one fsm->apply per entry; a run is
     * counted at its first entry (an apply past the end of the last run)
     * and ends at the commit index seen then.  Entries per run is the most
     * one store transaction over a run could carry (docs/benchmarks.md
     * "Store transactions per run of entries"). */
    uint64_t n_apply_runs;
    uint64_t run_end;              /* commit index at the run's first apply */
    uint64_t apply_ns_max;         /* slowest storage apply since taken */
    uint64_t apply_ns_last;        /* the last storage apply (for metrics) */
    /* Snapshot spacing by size and slots (glue__fsm_snapshot_sized): the
     * owner sets threshold_floor (the configured snapshot threshold) to
     * turn it on; 0 leaves raft's threshold alone (the simulation). */
    unsigned threshold_floor;
    unsigned threshold_set;        /* raft's threshold now (0: not set) */
    uint64_t window_block;         /* index / SIZING_ENTRIES_MIN now */
    bool window_seen;              /* window_block holds one (false: none
                                    * since the start or a restore) */
    bool window_whole;             /* not the first since start/restore */
    uint64_t window_bytes;         /* of its commands applied so far */
    uint64_t window_entries;
    uint64_t mean_entry_bytes;     /* of the last whole block's commands */
    uint64_t last_snapshot_bytes;  /* taken or restored (0: none yet) */
    uint64_t last_snapshot_index;  /* its raft index (0: none yet) */
    unsigned period;               /* of this node's slots (0: not yet) */
    /* No snapshot before raft has applied this index: one was refused by
     * the file system (glue__fsm_snapshot_refused); 0: none held. */
    uint64_t snapshot_hold_until;
    uint64_t n_snapshots_held;     /* asks refused while held */
};

/* Fill *fsm (version 3) so that fsm->data is `state`.  `state->raft` must be
 * set before the raft instance starts. */
void kyufu_fsm_init(struct raft_fsm *fsm,
                    struct kyufu_fsm *state,
                    struct kyufu_storage *storage,
                    enum kyufu_fsm_snapshot_mode mode,
                    const struct kyufu_fsm_hooks *hooks);

/* A snapshot at raft index `index` was taken and is on disk (`bufs`: its
 * header and stream; DEFERRED mode calls this from the put's callback,
 * INLINE mode, the simulation's, when it is taken) or restored (the one
 * buffer raft handed over): raft's snapshot threshold becomes the distance
 * to this node's next slot, for a period from its bytes and the mean entry
 * of the last block of 64 indexes (glue__fsm_retune;
 * snapshot_spacing.h).  Loop thread. */
void glue__fsm_snapshot_sized(struct kyufu_fsm *state,
                              uint64_t index,
                              const struct raft_buffer *bufs,
                              unsigned n_bufs);

/* Set raft's snapshot threshold to the distance to this node's next slot
 * (snapshot_spacing.h) again: after every snapshot on disk, at the start
 * of every run of committed entries and after every block of 64, and by
 * the owner once raft has started (a restore at the start comes before
 * raft has its configuration, so before this node's rank).  Does nothing
 * unless threshold_floor is set.  Loop thread. */
void glue__fsm_retune(struct kyufu_fsm *state);

/* Wipe the FSM's copies of stream keys (the owner, when it is done). */
void kyufu_fsm_wipe_keys(struct kyufu_fsm *state);

/* DEFERRED mode: true when `buf` is the header buffer of the outstanding
 * deferred snapshot (raft_uv's snapshot_put is then taking it). */
bool glue__fsm_is_deferred(struct kyufu_fsm *state, const void *buf);

/* DEFERRED mode, on a work thread: once the store is synced up to the
 * outstanding storage snapshot, write its stream (sealed behind the
 * header when keyed) to a new unnamed file in dir, mapped, when dir has
 * `room` bytes available (stream_file.h).  Returns 0, a storage error, or
 * KYUFU_STORAGE_EIO with file->err set when the file system refused (not
 * the store: no reason to stop). */
int glue__fsm_deferred_write(struct kyufu_fsm *state, const char *dir,
                             uint64_t room, struct glue_stream_file *file);

/* DEFERRED mode, on the loop thread: the file system refused the
 * snapshot's file (glue__fsm_deferred_write); no snapshot is taken again
 * before a HOLD_DIV-th of the period has been applied past `index`. */
void glue__fsm_snapshot_refused(struct kyufu_fsm *state, uint64_t index);

#endif /* KYUFU_GLUE_FSM_H */
