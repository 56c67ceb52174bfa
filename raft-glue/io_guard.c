/* Durable-write guard: see io_guard.h.  Each wrapper calls the real method
 * and, when it fails, records the failure and reports the first one; the
 * result goes back to raft unchanged (never retried, never hidden). */
#include "io_guard.h"

#include "conf_track.h"
#include "entry_batches.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct glue_io_guard *of(struct raft_io *io)
{
    struct raft *r = io->data;
    assert(r != NULL && r->io == io && r->data != NULL);
    return r->data;
}

/* Whether raft is handling a received AppendEntries that carries entries:
 * 0.22.1 frees its entry batch twice if any call fails then (io_guard.h). */
static bool receiving_entries(const struct glue_io_guard *g)
{
    return g->receiving != NULL &&
           g->receiving->type == RAFT_APPEND_ENTRIES &&
           g->receiving->append_entries.n_entries > 0;
}

static int check(struct glue_io_guard *g, const char *call, int rv)
{
    if (rv != 0) {
        g->n_failed++;
        if (g->n_failed == 1) {
            g->failed(g, call, rv);
        }
        if (receiving_entries(g)) {
            /* Returning the error would corrupt the heap (double free in
             * recvCb); the node stops on this failure anyway. */
            fprintf(stderr,
                    "kyufu raft-glue: %s failed (%s) while receiving "
                    "entries; libraft 0.22.1 would free them twice: "
                    "aborting\n",
                    call, raft_strerror(rv));
            abort();
        }
    }
    return rv;
}

static int injected(struct glue_io_guard *g, const char *call)
{
    return g->inject != NULL ? g->inject(g, call) : 0;
}

static int set_term(struct raft_io *io, raft_term term)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "set_term");
    return check(g, "set_term", rv != 0 ? rv : g->set_term(io, term));
}

static int set_vote(struct raft_io *io, raft_id server_id)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "set_vote");
    return check(g, "set_vote", rv != 0 ? rv : g->set_vote(io, server_id));
}

/* Monotonic nanoseconds (uv_hrtime's clock; uv.h's recv() would clash
 * with ours below). */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A timed append (for the node's metrics): the request raft_uv sees, and
 * raft's own, answered from ours with raft's callback. */
struct glue_timed_append
{
    struct raft_io_append inner;
    struct raft_io_append *outer;
    raft_io_append_cb cb;
    struct glue_io_guard *g;
    uint64_t t0;
    /* Failed, but raft_uv may still hold `inner` (io_guard.h orphans). */
    bool orphan;
    struct glue_timed_append *next_orphan;
};

static void timed_append_done(struct raft_io_append *inner, int status)
{
    struct glue_timed_append *t = inner->data;
    struct raft_io_append *outer = t->outer;
    raft_io_append_cb cb = t->cb;
    if (t->orphan) {
        /* raft_uv kept it after all: legacy has freed its own request
         * (legacy.c's append error path), so it is not told. */
        struct glue_timed_append **p = &t->g->orphans;
        while (*p != t) {
            p = &(*p)->next_orphan;
        }
        *p = t->next_orphan;
        free(t);
        return;
    }
    if (status == 0 && t->g->appended != NULL) {
        t->g->appended(t->g, now_ns() - t->t0);
    }
    free(t);
    cb(outer, status);
}

static int append(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "append");
    if (rv != 0) {
        return check(g, "append", rv);
    }
    /* Timed when someone listens and memory allows; never a reason to
     * fail the append. */
    struct glue_timed_append *t =
        g->appended != NULL ? malloc(sizeof *t) : NULL;
    if (t == NULL) {
        return check(g, "append", g->append(io, req, entries, n, cb));
    }
    t->inner.data = t;
    t->outer = req;
    t->cb = cb;
    t->g = g;
    t->t0 = now_ns();
    t->orphan = false;
    t->next_orphan = NULL;
    req->cb = cb; /* as raft_uv would set it */
    rv = g->append(io, &t->inner, entries, n, timed_append_done);
    if (rv != 0) {
        /* 0.22.1's UvAppend queues the request before its first write,
         * and may return that write's error with the request still held
         * (called back later, at the latest inside the close; or never:
         * docs/raft.md "A failed append raft_uv still holds"): kept until
         * its callback or the guard's close (io_guard.h orphans). */
        t->orphan = true;
        t->next_orphan = g->orphans;
        g->orphans = t;
    }
    return check(g, "append", rv);
}

static int truncate_(struct raft_io *io, raft_index index)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "truncate");
    return check(g, "truncate", rv != 0 ? rv : g->truncate(io, index));
}

static void free_install(struct raft_message *m)
{
    assert(m->type == RAFT_INSTALL_SNAPSHOT);
    raft_configuration_close(&m->install_snapshot.conf);
    raft_free(m->install_snapshot.data.base);
}

static void forget_held(struct glue_io_guard *g)
{
    assert(g->holding);
    g->holding = false;
    free(g->held_address);
    g->held_address = NULL;
}

/* Keep an InstallSnapshot that arrived during a local snapshot's put
 * (io_guard.h).  Takes the message's data and configuration; on failure
 * to copy the address the message is dropped as a lost one would be (the
 * leader's gate reopens on its settle time). */
static void hold(struct glue_io_guard *g, const struct raft_message *m)
{
    char *address = strdup(m->server_address != NULL ? m->server_address
                                                     : "");
    if (address == NULL) {
        struct raft_message copy = *m;
        g->n_install_dropped++;
        free_install(&copy);
        return;
    }
    if (g->holding) {
        /* A newer copy supersedes the held one: same or later sender. */
        g->n_install_replaced++;
        free_install(&g->held);
        forget_held(g);
    }
    g->held = *m;
    g->held_address = address;
    g->held.server_address = address;
    g->holding = true;
    g->n_install_held++;
}

/* A message from m->server_id now: its peer's last contact. */
static void note_contact(struct glue_io_guard *g, struct raft_io *io,
                         const struct raft_message *m)
{
    size_t oldest = 0;
    uint64_t now = io->time(io);
    for (size_t i = 0; i < KYUFU_GLUE_CONTACTS_MAX; i++) {
        if (g->contact[i].id == m->server_id) {
            g->contact[i].ms = now;
            return;
        }
        /* A free slot first, else the least recently heard. */
        if (g->contact[oldest].id != 0 &&
            (g->contact[i].id == 0 ||
             g->contact[i].ms < g->contact[oldest].ms)) {
            oldest = i;
        }
    }
    g->contact[oldest].id = m->server_id;
    g->contact[oldest].ms = now;
}

static void deliver(struct glue_io_guard *g, struct raft_io *io,
                    struct raft_message *m)
{
    note_contact(g, io, m);
    glue__snapshot_send_recv(&g->snapshot_send, m);
    glue__append_anchor_recv(&g->anchor, m);
    switch (glue__conf_cut(io->data, m)) {
        case GLUE_CONF_CUT:
            g->n_conf_cut++;
            break;
        case GLUE_CONF_UNCUTTABLE:
            g->n_conf_uncuttable++;
            break;
        case GLUE_CONF_KEPT:
            break;
    }
    assert(g->receiving == NULL);
    g->receiving = m;
    g->recv(io, m);
    g->receiving = NULL;
}

/* Hand raft the held InstallSnapshot once no local snapshot is being put.
 * Runs at the top of a received message or a tick: entry points where
 * raft expects to be called, never from inside its own callbacks. */
static void release_held(struct glue_io_guard *g, struct raft_io *io)
{
    struct raft *r = io->data;
    struct raft_message m;
    char *address;
    if (!g->holding || r->legacy.snapshot_taking) {
        return;
    }
    /* raft copies what it keeps of the address before recv returns. */
    m = g->held;
    address = g->held_address;
    g->held_address = NULL;
    g->holding = false;
    if (r->snapshot.installing) {
        g->n_install_dropped++;
        free_install(&m);
    } else {
        deliver(g, io, &m);
    }
    free(address);
}

/* Whether raft must not see `m`: a RequestVote result that arrives when
 * this server is no longer a candidate.  libraft 0.22.1
 * recv_request_vote_result.c recvRequestVoteResult reads
 * `r->candidate_state.in_pre_vote` before it checks `r->state` (the check
 * right after, "Ignore responses if we are not candidate anymore"),
 * line 32:
 *
 *     if (r->candidate_state.in_pre_vote) {
 *         match = recvCheckMatchingTerms(r, result->term);
 *     } else {
 *         match = recvEnsureMatchingTerms(r, result->term);
 *     }
 *
 * In a follower that byte of the state union is the second byte of
 * `follower_state.current_leader.address`, a heap pointer: a late result
 * carrying a higher term (a pre-vote's is the term the voter would move
 * to) bumps the follower's term or not depending on where malloc put the
 * leader's address (in a leader it is a byte of
 * `leader_state.promotee_id`).  kyufu-sim diverged from run to run on it
 * with the address layout (seed 170: a follower moved to term 3 on a
 * stale pre-vote result, or did not), and a live follower could disrupt
 * its leader the same way.  raft ignores the result apart from that term
 * update, so dropping it is a lost message, which raft tolerates; a newer
 * term still reaches the server in the peer's next request or answer. */
static bool stale_vote_result(struct raft *r, const struct raft_message *m)
{
    return m->type == RAFT_REQUEST_VOTE_RESULT &&
           raft_state(r) != RAFT_CANDIDATE;
}

/* Hold an InstallSnapshot that arrives during a local snapshot, drop a
 * duplicate one during an install (io_guard.h), drop a RequestVote result
 * to a non-candidate (stale_vote_result); reads the raft core's
 * `legacy.snapshot_taking` and `snapshot.installing` flags (public
 * struct, 0.22.1 layout).  The snapshot send gate sees every other
 * message first. */
static void recv(struct raft_io *io, struct raft_message *m)
{
    struct glue_io_guard *g = of(io);
    struct raft *r = io->data;
    release_held(g, io);
    if (stale_vote_result(r, m)) {
        g->n_vote_results_dropped++; /* nothing in it to free */
        return;
    }
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        if (r->snapshot.installing) {
            g->n_install_dropped++;
            free_install(m);
            return;
        }
        if (r->legacy.snapshot_taking && g->hold_install) {
            hold(g, m);
            return;
        }
    }
    deliver(g, io, m);
}

static void tick(struct raft_io *io)
{
    struct glue_io_guard *g = of(io);
    release_held(g, io);
    g->tick(io);
}

bool glue__io_guard_tick(struct raft_io *io)
{
    struct glue_io_guard *g = of(io);
    if (g->tick == NULL) {
        return false;
    }
    tick(io);
    return true;
}

static int load(struct raft_io *io,
                raft_term *term,
                raft_id *voted_for,
                struct raft_snapshot **snapshot,
                raft_index *start_index,
                struct raft_entry *entries[],
                size_t *n_entries)
{
    struct glue_io_guard *g = of(io);
    int rv = g->load(io, term, voted_for, snapshot, start_index, entries,
                     n_entries);
    if (rv == 0 && glue__entry_batches_unshare(*entries, *n_entries) != 0) {
        /* Nothing of it reaches raft: free it all, as a failed load. */
        glue__rio_free_loaded(*snapshot, *entries, *n_entries);
        *snapshot = NULL;
        *entries = NULL;
        *n_entries = 0;
        snprintf(io->errmsg, sizeof io->errmsg,
                 "out of memory copying the loaded entries");
        return RAFT_NOMEM;
    }
    if (rv == 0 && *snapshot != NULL) {
        glue__append_anchor_snapshot(&g->anchor, (*snapshot)->index,
                                     (*snapshot)->term);
    }
    return rv;
}

struct guard_put
{
    struct raft_io_snapshot_put req; /* ours, handed to the real put */
    struct raft_io_snapshot_put *orig;
    struct glue_io_guard *g;
    raft_index index;
    raft_term term;
};

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct guard_put *p = req->data;
    struct raft_io_snapshot_put *orig = p->orig;
    struct glue_io_guard *g = p->g;
    if (status == 0) {
        glue__append_anchor_snapshot(&g->anchor, p->index, p->term);
    }
    free(p);
    orig->cb(orig, status); /* raft compacts its log in there */
    if (status == 0 && g->compacted != NULL) {
        g->compacted(g);
    }
}

static int snapshot_put(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb)
{
    struct glue_io_guard *g = of(io);
    struct guard_put *p = malloc(sizeof *p);
    int rv;
    if (p == NULL) {
        return RAFT_NOMEM;
    }
    p->req.data = p;
    p->orig = req;
    p->g = g;
    p->index = snapshot->index;
    p->term = snapshot->term;
    req->cb = cb;
    rv = g->snapshot_put(io, trailing, &p->req, snapshot, put_cb);
    if (rv != 0) {
        free(p);
    }
    return rv;
}

static int snapshot_get(struct raft_io *io,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb)
{
    return glue__snapshot_send_get(&of(io)->snapshot_send, req, cb);
}

/* Whether `message` is raft's answer to the AppendEntries it is receiving
 * from an older term.  libraft 0.22.1 recvAppendEntries rejects such a
 * request ("local term is higher -> reject") by jumping to its reply before
 * it sets the result's last_log_index: stack garbage goes on the wire (and,
 * on the fixture, into the simulation, which then differs from run to run
 * with the address layout; valgrind on kyufu-sim found it).  The receiver
 * reads the field: as a success (rejected 0) it would take it as the
 * follower's match index, as a rejection as the hint where to resend. */
static bool answers_older_term(struct raft *r,
                               const struct glue_io_guard *g,
                               const struct raft_message *message)
{
    const struct raft_message *in = g->receiving;
    return in != NULL && in->type == RAFT_APPEND_ENTRIES &&
           message->type == RAFT_APPEND_ENTRIES_RESULT &&
           message->server_id == in->server_id &&
           in->append_entries.term < r->current_term;
}

static int send_message(struct raft_io *io,
                        struct raft_io_send *req,
                        const struct raft_message *message,
                        raft_io_send_cb cb)
{
    struct glue_io_guard *g = of(io);
    struct raft *r = io->data;
    if (answers_older_term(r, g, message)) {
        /* The value raft sets for its other rejections: our last index,
         * below the rejected one; 0 (no match) for a "success" that was
         * only an unset rejection of index 0.  Both transports copy the
         * message before send returns, so a copy on the stack will do. */
        struct raft_message m = *message;
        raft_index rejected = m.append_entries_result.rejected;
        raft_index last = raft_last_index(r);
        m.append_entries_result.last_log_index =
            rejected == 0 ? 0 : (last < rejected ? last : rejected - 1);
        g->n_stale_answers_set++;
        return glue__snapshot_send_send(&g->snapshot_send, req, &m, cb);
    }
    return glue__snapshot_send_send(&g->snapshot_send, req, message, cb);
}

static int start(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick_cb,
                 raft_io_recv_cb recv_cb)
{
    struct glue_io_guard *g = of(io);
    g->recv = recv_cb;
    g->tick = tick_cb;
    return g->start(io, msecs, tick, recv);
}

/* The real io's close callback: raft's, once (io_guard.h raft_closed). */
static void closed(struct raft_io *io)
{
    struct glue_io_guard *g = of(io);
    raft_io_close_cb cb = g->raft_closed;
    if (cb == NULL) {
        g->n_late_closes++;
        fprintf(stderr,
                "kyufu raft-glue: raft_uv reported itself closed again "
                "(work it had running at the close finished later: "
                "libraft 0.22.1); ignored\n");
        return;
    }
    g->raft_closed = NULL;
    cb(io);
}

/* raft_close: from here on nothing may start new work on the real io (a
 * snapshot load still in flight completes without a send). */
static void close_(struct raft_io *io, raft_io_close_cb cb)
{
    struct glue_io_guard *g = of(io);
    assert(cb != NULL && g->raft_closed == NULL);
    glue__snapshot_send_close(&g->snapshot_send);
    g->raft_closed = cb;
    g->close(io, closed);
}

void glue__io_guard_wrap(struct glue_io_guard *g,
                         struct raft *r,
                         glue_io_guard_failed_cb failed,
                         void *data)
{
    struct raft_io *io = r->io;
    assert(io != NULL && io->data == r && failed != NULL);
    assert(io->set_term != set_term); /* wrapped once */
    g->set_term = io->set_term;
    g->set_vote = io->set_vote;
    g->append = io->append;
    g->truncate = io->truncate;
    g->start = io->start;
    g->load = io->load;
    g->snapshot_put = io->snapshot_put;
    g->close = io->close;
    g->raft_closed = NULL;
    g->n_late_closes = 0;
    g->recv = NULL;
    g->tick = NULL;
    g->receiving = NULL;
    glue__snapshot_send_init(&g->snapshot_send, io);
    glue__append_anchor_init(&g->anchor);
    g->snapshot_send.own_snapshot = &g->anchor.index;
    g->n_install_dropped = 0;
    g->n_vote_results_dropped = 0;
    g->holding = false;
    g->held_address = NULL;
    g->hold_install = true;
    g->n_install_held = 0;
    g->n_install_replaced = 0;
    g->failed = failed;
    g->inject = NULL;
    g->appended = NULL;
    g->compacted = NULL;
    memset(g->contact, 0, sizeof g->contact);
    g->data = data;
    g->n_failed = 0;
    g->orphans = NULL;
    io->set_term = set_term;
    io->set_vote = set_vote;
    io->append = append;
    io->truncate = truncate_;
    io->start = start;
    io->load = load;
    io->snapshot_put = snapshot_put;
    io->snapshot_get = snapshot_get;
    io->send = send_message;
    io->close = close_;
    r->data = g;
}

void glue__io_guard_close(struct glue_io_guard *g)
{
    if (g->holding) {
        free_install(&g->held);
        forget_held(g);
    }
    /* raft's io has closed: every request raft_uv held has had its
     * callback (it cancels queued appends before it reports closed), so
     * these were never held. */
    while (g->orphans != NULL) {
        struct glue_timed_append *t = g->orphans;
        g->orphans = t->next_orphan;
        free(t);
    }
}
