/* raft_fsm adapter over storage/.  Contract in fsm.h; design and the
 * rejected alternatives in docs/raft.md.
 *
 * Happy path: raft commits an entry → apply decodes the framing → storage
 * applies the CommandBatch in one LMDB transaction at (index, term) → the
 * results go to the proposer hook.  Failure modes: a malformed frame (not
 * written by kyufu) is recorded as a no-op at that index on every node
 * alike; a sealed entry that fails authentication poisons the FSM (never
 * applied); a fatal storage error poisons the FSM and stops applying; a
 * non-fatal one (NOMEM) fails the apply so raft tries again at its next
 * commit update (nothing was committed, so this is no retried write). */
#include "fsm.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <openssl/rand.h>

#include "chunk_sink.h"
#include "conf_track.h"
#include "frame.h"
#include "glue_limits.h"
#include "seal.h"
#include "snapshot_spacing.h"

static void poison(struct kyufu_fsm *f, int rv, const char *what)
{
    assert(rv != 0);
    if (f->fatal_rv != 0) {
        return;
    }
    f->fatal_rv = rv;
    /* errmsg may already hold storage's detail: prefix what failed. */
    char detail[128];
    memcpy(detail, f->errmsg, sizeof detail - 1);
    detail[sizeof detail - 1] = '\0';
    snprintf(f->errmsg, sizeof f->errmsg, "%.16s: %.64s: %s", what,
             kyufu_storage_strerror(rv), detail);
    if (f->hooks.fatal != NULL) {
        f->hooks.fatal(f->hooks.arg, rv, f->errmsg);
    }
}

/* Map a storage error to what raft gets back. */
static int storage_to_raft(int rv)
{
    return rv == KYUFU_STORAGE_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
}

/* Open a sealed entry into *out (malloc'ed, fr->len bytes).  Returns 0 or
 * a storage error with f->errmsg set: CORRUPT when this node has no key or
 * the tag does not verify. */
static int open_entry(struct kyufu_fsm *f, uint64_t index,
                      const struct glue_frame *fr, uint8_t **out)
{
    int rv;
    if (!kyufu_storage_keys_present(f->storage)) {
        snprintf(f->errmsg, sizeof f->errmsg,
                 "entry %llu is encrypted (key version %u) and this node "
                 "has no cluster master key",
                 (unsigned long long)index, fr->key_version);
        return KYUFU_STORAGE_ECORRUPT;
    }
    rv = glue__stream_key_load(f->storage, fr->key_version, &f->apply_key);
    if (rv != 0) {
        snprintf(f->errmsg, sizeof f->errmsg,
                 "entry %llu: no stream key of version %u",
                 (unsigned long long)index, fr->key_version);
        return rv;
    }
    *out = malloc(fr->len > 0 ? fr->len : 1);
    if (*out == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    rv = glue__entry_open(&f->apply_key, fr, *out);
    if (rv != 0) {
        free(*out);
        *out = NULL;
        snprintf(f->errmsg, sizeof f->errmsg,
                 "entry %llu failed authentication (key version %u): %s",
                 (unsigned long long)index, fr->key_version,
                 kyufu_storage_crypto_strerror(rv));
        return rv == KYUFU_CRYPTO_ENOMEM ? KYUFU_STORAGE_ENOMEM
                                         : KYUFU_STORAGE_ECORRUPT;
    }
    return 0;
}

/* Raft's threshold: the distance from this node's last snapshot to its
 * next slot, for a period from the last snapshot's size and the mean entry
 * (snapshot_spacing.h).  Before the first snapshot the size is unknown and
 * the floor is the period: the first snapshots are staggered too. */
void glue__fsm_retune(struct kyufu_fsm *f)
{
    if (f->threshold_floor == 0 || f->raft == NULL) {
        return;
    }
    unsigned t = glue__snapshot_threshold(
        f->threshold_floor, f->last_snapshot_bytes, f->mean_entry_bytes);
    unsigned rank;
    unsigned voters;
    f->period = glue__snapshot_period(f->threshold_floor, t);
    glue__snapshot_voter_rank(f->raft, &rank, &voters);
    /* The windows: the same on every voter with the same floor. */
    unsigned window = f->threshold_floor / voters;
    window = window > 0 ? window : 1;
    unsigned n = glue__snapshot_slot_distance(
        f->last_snapshot_index, raft_commit_index(f->raft), f->period, rank,
        voters, window);
    if (n != f->threshold_set) {
        raft_set_snapshot_threshold(f->raft, n);
        f->threshold_set = n;
    }
}

void glue__fsm_snapshot_sized(struct kyufu_fsm *f,
                              uint64_t index,
                              const struct raft_buffer *bufs,
                              unsigned n_bufs)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < n_bufs; i++) {
        bytes += bufs[i].len;
    }
    f->last_snapshot_bytes = bytes;
    f->last_snapshot_index = index;
    glue__fsm_retune(f);
}

static int fsm_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    struct kyufu_fsm *f = fsm->data;
    struct kyufu_storage_results results = {0, NULL};
    uint64_t index;
    uint64_t applied_index;
    uint64_t applied_term;
    uint64_t term;
    struct glue_frame fr;
    const uint8_t *payload;
    uint8_t *plain = NULL;
    size_t len;
    int rv;

    assert(f != NULL && f->raft != NULL);
    *result = NULL; /* Always: see fsm.h on 0.22.1 leaking results. */
    if (f->fatal_rv != 0) {
        /* Poisoned: the node is stopping.  Record nothing and report
         * success (see fsm.h: apply never fails towards raft). */
        f->n_dropped++;
        return 0;
    }

    index = raft_last_applied(f->raft) + 1;
    /* The mean command entry of each block of SIZING_ENTRIES_MIN indexes
     * (blocks aligned on indexes, so every voter takes the same means at
     * the same indexes, and so the same snapshot period once the log's
     * bytes are at their cap), taken when the first command of a later
     * block arrives: entries that grow under load lower the threshold in
     * time, so the log's bytes stay near the bound
     * (glue__snapshot_threshold).  Barriers and configuration entries
     * never reach apply (a block of 64 indexes may hold fewer commands);
     * raft applies in index order, so only the first block after a start
     * or a restore may have been entered part-way: it gives no mean. */
    uint64_t block = index / KYUFU_SNAPSHOT_SIZING_ENTRIES_MIN;
    bool sized = false;
    if (block != f->window_block || !f->window_seen) {
        if (f->window_seen && f->window_whole && f->window_entries > 0) {
            f->mean_entry_bytes = f->window_bytes / f->window_entries;
            if (f->mean_entry_bytes == 0) {
                f->mean_entry_bytes = 1;
            }
            sized = true;
        }
        f->window_whole = f->window_seen;
        f->window_seen = true;
        f->window_block = block;
        f->window_bytes = 0;
        f->window_entries = 0;
    }
    f->window_bytes += buf->len;
    f->window_entries++;
    bool run_start = index > f->run_end;
    if (run_start) {
        f->n_apply_runs++;
        f->run_end = raft_commit_index(f->raft);
        assert(f->run_end >= index);
    }
    if (sized || run_start) {
        /* A new run may end past this node's slot, where raft would take
         * the snapshot: retune keeps it out of other voters' windows. */
        glue__fsm_retune(f);
    }
    kyufu_storage_applied(f->storage, &applied_index, &applied_term);
    if (index <= applied_index) {
        /* Replayed after a restart: LMDB already holds it. */
        f->n_skipped++;
        return 0;
    }

    f->errmsg[0] = '\0';
    if (!glue__frame_parse(buf->base, buf->len, &fr)) {
        /* Not written by kyufu: every node sees the same bytes, so each
         * records the same no-op and state stays identical. */
        f->n_bad_frames++;
        rv = kyufu_storage_apply_noop(f->storage, index, applied_term,
                                      f->errmsg, sizeof f->errmsg);
        if (rv != 0) {
            goto err;
        }
        return 0;
    }
    /* A sealed entry is authenticated before anything in it is believed,
     * its term included (the term is in the associated data). */
    term = fr.term;
    payload = fr.payload;
    len = fr.len;
    if (fr.version == GLUE_FRAME_VERSION_SEALED) {
        rv = open_entry(f, index, &fr, &plain);
        if (rv != 0) {
            goto err;
        }
        payload = plain;
    }
    /* Terms never decrease along a log, so a lower one is a frame kyufu's
     * leaders did not write (or a bug): applying it would record a term
     * going backwards, skipping it would let replicas disagree on what the
     * entry was.  Stop the node and leave the store as it is. */
    if (term < applied_term) {
        snprintf(f->errmsg, sizeof f->errmsg,
                 "entry %llu has term %llu below the applied term %llu",
                 (unsigned long long)index, (unsigned long long)term,
                 (unsigned long long)applied_term);
        rv = KYUFU_STORAGE_ECORRUPT;
        goto err;
    }

    {
        /* Timed for the node's stall log: this LMDB transaction runs on
         * the loop thread, with its flush when the store syncs its commits
         * ([storage] flush = commit; with background the flush is
         * store_sync.c's, off the loop). */
        uint64_t t0 = uv_hrtime();
        rv = kyufu_storage_apply_bytes(f->storage, index, term, payload, len,
                                       &results, f->errmsg,
                                       sizeof f->errmsg);
        uint64_t dt = uv_hrtime() - t0;
        f->apply_ns_last = dt;
        if (dt > f->apply_ns_max) {
            f->apply_ns_max = dt;
        }
    }
    free(plain);
    plain = NULL;
    if (rv != 0) {
        goto err;
    }
    f->n_applied++;
    if (fr.version == GLUE_FRAME_VERSION_SEALED) {
        f->n_sealed++;
    }

    /* Postcondition: storage recorded this entry. */
    kyufu_storage_applied(f->storage, &applied_index, &applied_term);
    assert(applied_index == index);

    if (f->hooks.applied != NULL) {
        f->hooks.applied(f->hooks.arg, index, term, &results);
    } else {
        kyufu_storage_results_free(&results);
    }
    return 0;

err:
    /* Every failure poisons, NOMEM included: returning an error to raft
     * is not an option (fsm.h), and skipping the entry while staying alive
     * would lose it. */
    assert(rv != 0);
    free(plain);
    poison(f, rv, "apply");
    f->n_dropped++;
    return 0;
}

static void free_bufs(struct raft_buffer *bufs, unsigned n, unsigned from)
{
    for (unsigned i = from; i < n; i++) {
        raft_free(bufs[i].base);
    }
}

static int fsm_snapshot(struct raft_fsm *fsm,
                        struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct kyufu_fsm *f = fsm->data;
    struct glue_snapshot_header h;
    struct glue_chunk_buffers c = {NULL, 0};
    struct glue_chunk_sink k = {0};
    void *header;
    size_t header_len;
    int rv;

    memset(&h, 0, sizeof h);
    assert(f->snap == NULL);
    if (f->fatal_rv != 0) {
        return RAFT_IOERR;
    }
    /* After a restart raft replays entries the store already applied (their
     * applies are skipped), and 0.22.1 asks for a snapshot whenever its
     * commit index has moved `threshold` past its last one, also while it
     * is still below the store's applied index (a snapshot cancelled by a
     * stop, commits arriving in pieces).  A snapshot now would be labelled
     * with an index older than its content.  Refuse: legacy drops the
     * attempt (nothing changes) and asks again after a later apply, once
     * raft has caught up with the store. */
    {
        uint64_t store_index, store_term;
        kyufu_storage_applied(f->storage, &store_index, &store_term);
        if (store_index > raft_last_applied(f->raft)) {
            f->n_snapshots_refused++;
            return RAFT_BUSY;
        }
    }
    /* Nor soon after the file system refused one (a full disk): every
     * apply would otherwise serialize the whole ledger into it again. */
    if (raft_last_applied(f->raft) < f->snapshot_hold_until) {
        f->n_snapshots_held++;
        return RAFT_BUSY;
    }
    /* Nor while raft's committed configuration may lag the applied index
     * (conf_track.h): the snapshot would record an older membership.
     * legacy asks again after its next event. */
    if (!glue__conf_snapshot_ok(f->raft)) {
        f->n_snapshots_deferred_conf++;
        return RAFT_BUSY;
    }

    rv = kyufu_storage_snapshot_begin(f->storage, &f->snap);
    if (rv != 0) {
        goto err;
    }
    h.raft_index = raft_last_applied(f->raft);
    kyufu_storage_snapshot_applied(f->snap, &h.storage_index, &h.storage_term);
    assert(h.storage_index <= h.raft_index);

    if (kyufu_storage_keys_present(f->storage)) {
        /* Sealed: a fresh id, and the key for whichever thread serializes:
         * the snapshot's own (format 3) once no build older than the nonce
         * bound's can install this state, else the stream subkey. */
        h.key_version = kyufu_storage_keys_active(f->storage);
        h.own_key = glue__snapshot_own_key(f->storage);
        if (RAND_bytes(h.id, sizeof h.id) != 1 ||
            glue__snapshot_header_key(f->storage, &h, &f->snap_key) != 0) {
            rv = KYUFU_STORAGE_ENOMEM;
            goto err_after_begin;
        }
        k.key = &f->snap_key;
    }
    header_len = glue__snapshot_header_size(&h);
    header = raft_malloc(header_len);
    if (header == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_begin;
    }
    glue__snapshot_header_write(header, &h);
    k.header = header;
    k.header_len = header_len;
    k.out = glue__chunk_sink_buffers;
    k.arg = &c;
    rv = glue__chunk_sink_buffers(&k, header, header_len);
    if (rv != 0) {
        goto err_after_begin;
    }

    if (f->mode == KYUFU_FSM_SNAPSHOT_DEFERRED) {
        /* Serialized later, off the loop thread (snapshot_io.c), after the
         * store's sync (glue__fsm_deferred_write). */
        f->deferred_header = header;
        f->deferred_header_len = header_len;
    } else {
        /* Compaction waits for the store's sync: see
         * glue__fsm_deferred_write.  Here on the loop thread (simulation). */
        rv = kyufu_storage_sync(f->storage, h.storage_index, f->errmsg,
                                sizeof f->errmsg);
        if (rv != 0) {
            goto err_after_chunks;
        }
        rv = glue__chunk_sink_write(&k, f->snap);
        if (rv != 0) {
            goto err_after_chunks;
        }
        kyufu_storage_snapshot_end(f->snap);
        f->snap = NULL;
        glue__stream_key_wipe(&f->snap_key);
    }

    f->n_snapshots++;
    if (f->mode == KYUFU_FSM_SNAPSHOT_INLINE) {
        glue__fsm_snapshot_sized(f, h.raft_index, c.bufs, c.n);
    }
    *bufs = c.bufs;
    *n_bufs = c.n;
    return 0;

err_after_chunks:
    free_bufs(c.bufs, c.n, 0);
    raft_free(c.bufs);
err_after_begin:
    kyufu_storage_snapshot_end(f->snap);
    f->snap = NULL;
    glue__stream_key_wipe(&f->snap_key);
err:
    assert(rv != 0);
    if (kyufu_storage_is_fatal(rv)) {
        poison(f, rv, "snapshot");
    }
    return storage_to_raft(rv);
}

/* Since fsm version 2 raft never frees snapshot buffers itself. Called once
 * after every successful fsm->snapshot, written to disk or not. */
static int fsm_snapshot_finalize(struct raft_fsm *fsm,
                                 struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    struct kyufu_fsm *f = fsm->data;
    if (*bufs != NULL) {
        free_bufs(*bufs, *n_bufs, 0);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    f->deferred_header = NULL;
    f->deferred_header_len = 0;
    glue__stream_key_wipe(&f->snap_key);
    if (f->snap != NULL) {
        kyufu_storage_snapshot_end(f->snap);
        f->snap = NULL;
    }
    return 0;
}

/* Open a sealed snapshot in place (seal.h): on success its plaintext
 * stream follows the header, *len bytes.  Errors as glue__snapshot_open,
 * and CORRUPT when this node has no cluster master key. */
static int open_snapshot(struct kyufu_fsm *f,
                         const struct glue_snapshot_header *h,
                         struct raft_buffer *buf, size_t header_len,
                         size_t *len)
{
    struct glue_stream_key k = {0, NULL, false};
    int rv;
    if (!kyufu_storage_keys_present(f->storage)) {
        snprintf(f->errmsg, sizeof f->errmsg,
                 "snapshot at index %llu is encrypted (key version %u) and "
                 "this node has no cluster master key",
                 (unsigned long long)h->raft_index, h->key_version);
        return KYUFU_STORAGE_ECORRUPT;
    }
    rv = glue__snapshot_header_key(f->storage, h, &k);
    if (rv != 0) {
        snprintf(f->errmsg, sizeof f->errmsg,
                 "snapshot: no key of version %u", h->key_version);
        return rv;
    }
    rv = glue__snapshot_open(&k, buf->base, buf->len, header_len, len,
                             f->errmsg, sizeof f->errmsg);
    glue__stream_key_wipe(&k);
    return rv;
}

/* On success the FSM owns buf->base (libraft frees it only on failure). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct kyufu_fsm *f = fsm->data;
    struct glue_snapshot_header h;
    uint64_t applied_index;
    uint64_t applied_term;
    size_t header_len;
    size_t len;
    int rv;

    if (f->fatal_rv != 0) {
        return RAFT_IOERR;
    }
    if (!glue__snapshot_header_read(buf->base, buf->len, &h)) {
        uint32_t version;
        if (glue__snapshot_header_newer(buf->base, buf->len, &version)) {
            /* A newer build's format (a spare not yet upgraded): stop as
             * for a newer command set, exit 4 with the upgrade message. */
            snprintf(f->errmsg, sizeof f->errmsg,
                     "snapshot format %u is newer than this build's",
                     version);
            poison(f, KYUFU_STORAGE_ENEWER, "restore");
            return RAFT_CORRUPT;
        }
        snprintf(f->errmsg, sizeof f->errmsg, "bad snapshot header");
        poison(f, KYUFU_STORAGE_ECORRUPT, "restore");
        return RAFT_CORRUPT;
    }
    header_len = glue__snapshot_header_size(&h);
    len = buf->len - header_len;
    if (h.key_version != 0) {
        /* Authenticated before anything in it is believed, the header's
         * indexes included (every chunk's associated data holds it). */
        rv = open_snapshot(f, &h, buf, header_len, &len);
        if (rv != 0) {
            poison(f, rv, "restore");
            return rv == KYUFU_STORAGE_ECORRUPT ? RAFT_CORRUPT
                                                : storage_to_raft(rv);
        }
    }

    /* This node's snapshot at a start, or one installed: spacing from
     * its size either way. */
    glue__fsm_snapshot_sized(f, h.raft_index, buf, 1);
    f->window_seen = false; /* raft applies from past the snapshot */
    kyufu_storage_applied(f->storage, &applied_index, &applied_term);
    if (h.storage_index <= applied_index) {
        /* The local store already holds everything the snapshot does (it
         * only ever applied committed entries), and maybe more: restoring
         * would move it back in time.  Keep it.  A store that lost its
         * unsynced commits in a power loss reopens at its durable index:
         * below a snapshot's index it is restored here, at or above it the
         * log (which the snapshot's compaction kept from there on, see
         * glue__fsm_deferred_write) replays the rest. */
        f->n_restores_skipped++;
        raft_free(buf->base);
        return 0;
    }

    f->errmsg[0] = '\0';
    rv = kyufu_storage_restore(f->storage,
                               (const uint8_t *)buf->base + header_len, len,
                               f->errmsg, sizeof f->errmsg);
    if (rv != 0) {
        poison(f, rv, "restore");
        return rv == KYUFU_STORAGE_ECORRUPT ? RAFT_CORRUPT
                                            : storage_to_raft(rv);
    }
    /* Postcondition: the store is exactly at the snapshot's point. */
    kyufu_storage_applied(f->storage, &applied_index, &applied_term);
    assert(applied_index == h.storage_index);
    /* Flushed before raft goes on: raft may now compact its log up to the
     * snapshot, so the store must not fall below it again at a power loss
     * (the durable index covers it; docs/storage.md "Durability of the
     * store").  One flush per restore, on the loop thread: restores are
     * rare and the restore itself wrote the whole store. */
    rv = kyufu_storage_sync(f->storage, applied_index, f->errmsg,
                            sizeof f->errmsg);
    if (rv != 0) {
        poison(f, rv, "restore flush");
        return storage_to_raft(rv);
    }
    f->n_restores++;
    raft_free(buf->base);
    return 0;
}

void kyufu_fsm_init(struct raft_fsm *fsm,
                    struct kyufu_fsm *state,
                    struct kyufu_storage *storage,
                    enum kyufu_fsm_snapshot_mode mode,
                    const struct kyufu_fsm_hooks *hooks)
{
    assert(fsm != NULL && state != NULL && storage != NULL);
    assert(mode == KYUFU_FSM_SNAPSHOT_INLINE ||
           mode == KYUFU_FSM_SNAPSHOT_DEFERRED);
    memset(state, 0, sizeof *state);
    state->storage = storage;
    state->mode = mode;
    if (hooks != NULL) {
        state->hooks = *hooks;
    }
    memset(fsm, 0, sizeof *fsm);
    fsm->version = 3;
    fsm->data = state;
    fsm->apply = fsm_apply;
    fsm->snapshot = fsm_snapshot;
    fsm->restore = fsm_restore;
    fsm->snapshot_finalize = fsm_snapshot_finalize;
    fsm->snapshot_async = NULL; /* Also synchronous in 0.22.1 legacy mode. */
}

void kyufu_fsm_wipe_keys(struct kyufu_fsm *state)
{
    glue__stream_key_wipe(&state->apply_key);
    glue__stream_key_wipe(&state->snap_key);
}

bool glue__fsm_is_deferred(struct kyufu_fsm *state, const void *buf)
{
    return state->mode == KYUFU_FSM_SNAPSHOT_DEFERRED &&
           state->deferred_header != NULL && buf == state->deferred_header;
}

void glue__fsm_snapshot_refused(struct kyufu_fsm *state, uint64_t index)
{
    unsigned hold = state->period / KYUFU_SNAPSHOT_FILE_HOLD_DIV;
    unsigned floor = state->threshold_floor / KYUFU_SNAPSHOT_FILE_HOLD_DIV;
    hold = hold > floor ? hold : floor;
    state->snapshot_hold_until = index + (hold > 0 ? hold : 1);
}

int glue__fsm_deferred_write(struct kyufu_fsm *state, const char *dir,
                             uint64_t room, struct glue_stream_file *file)
{
    uint64_t index;
    uint64_t term;
    char errmsg[128];
    int rv;
    assert(state->snap != NULL);
    /* Compaction waits for the store's sync.  raft_uv truncates the log
     * behind this snapshot once snapshot_io.c hands it over, after this
     * returns: flush the store first, so that what it applied up to the
     * snapshot's index is on disk before any entry it came from can go.
     * The snapshot's read txn began after those commits returned, so they
     * are covered.  Without this a power loss would leave the store below
     * the snapshot, which restore would then replace wholesale
     * (docs/storage.md, "Crash windows").  Refusing the snapshot instead
     * (BUSY) until a background sync caught up would never succeed under
     * load: 0.22.1 takes it at the last applied index, which runs ahead of
     * every finished sync. */
    kyufu_storage_snapshot_applied(state->snap, &index, &term);
    rv = kyufu_storage_sync(state->storage, index, errmsg, sizeof errmsg);
    if (rv != 0) {
        return rv;
    }
    bool sealed = state->snap_key.version != 0;
    return glue__stream_file_write(
        file, dir, room, state->snap, sealed ? &state->snap_key : NULL,
        sealed ? state->deferred_header : NULL,
        sealed ? state->deferred_header_len : 0);
}
