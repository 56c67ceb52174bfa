/* kyufu simulation: a server that stalls (SIGSTOP, a VM pause, a process
 * stuck on its disk) and later resumes.
 *
 * A stalled process runs nothing: its timer does not fire, the messages its
 * peers send wait in its sockets' kernel buffers, and its disk and send
 * completions wait in its loop.  When it is continued it handles all of
 * them in one burst, in the order they arrived, and a timer that expired
 * fires once.  The fixture's raft_fixture_kill is a different fault: it
 * drops every message to and from the server (a partition), and its disk
 * still completes.  The difference matters: after a stall the follower
 * reads the leader's queued AppendEntries (which still match its log and
 * carry a newer commit index) before it hears that the leader compacted
 * past it, so it can cross its own snapshot threshold right before an
 * InstallSnapshot arrives (issue 15; docs/raft.md, "Install during a local
 * snapshot").
 *
 * How: a layer between the fixture's raft_io and everything above it
 * (raft-glue's io_guard, then raft).  It wraps start (to see raft's tick
 * and recv callbacks) and the asynchronous methods append, snapshot_put,
 * snapshot_get and send (its own request for each, so it sees the
 * completion).  While the server is stalled a tick, a received message (by
 * value: it owns its entries or snapshot data) or a completion is queued;
 * sim_stall_end hands them to the layer above in order.  The layer also
 * completes appends in the order they were submitted, as raft_uv does
 * (appends_complete).  It reads raft's state only to choose when an armed
 * stall of the random model begins (sim_stall_at_threshold) and to count
 * what a stall interrupted. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

enum stall_kind { STALL_TICK, STALL_RECV, STALL_APPEND, STALL_PUT, STALL_GET,
                  STALL_SEND };

struct sim_stall_event
{
    struct sim_stall_event *next;
    enum stall_kind kind;
    struct raft_io *io;
    int status;
    void *req; /* the request of the layer above */
    union {
        raft_io_append_cb append;
        raft_io_snapshot_put_cb put;
        raft_io_snapshot_get_cb get;
        raft_io_send_cb send;
    } cb;
    struct raft_snapshot *snapshot; /* STALL_GET */
    struct raft_message message;    /* STALL_RECV */
};

/* Our request handed to the fixture for one of the layer above. */
struct stall_req
{
    union {
        struct raft_io_append append;
        struct raft_io_snapshot_put put;
        struct raft_io_snapshot_get get;
        struct raft_io_send send;
    } req;
    struct sim_stall *st;
    struct raft_io *io;
    void *orig;
    struct stall_req *next; /* appends: the next submitted */
    bool done;              /* appends: completed, waiting for older ones */
    int status;
    union {
        raft_io_append_cb append;
        raft_io_snapshot_put_cb put;
        raft_io_snapshot_get_cb get;
        raft_io_send_cb send;
    } cb;
};

static struct sim *current; /* one simulation at a time */

static struct sim_stall *of(struct raft_io *io)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (current->stall[i].io == io) {
            return &current->stall[i];
        }
    }
    assert(0);
    return NULL;
}

static struct sim_stall_event *push(struct sim_stall *st, enum stall_kind kind,
                                    struct raft_io *io)
{
    struct sim_stall_event *e = calloc(1, sizeof *e);
    assert(e != NULL);
    e->kind = kind;
    e->io = io;
    if (st->tail != NULL) {
        st->tail->next = e;
    } else {
        st->head = e;
    }
    st->tail = e;
    st->n_deferred++;
    return e;
}

static void tick(struct raft_io *io)
{
    struct sim_stall *st = of(io);
    sim_trace(current, "tick", io, NULL);
    if (!st->on) {
        st->tick(io);
    } else if (!st->tick_queued) {
        st->tick_queued = true; /* an expired timer fires once */
        push(st, STALL_TICK, io);
    }
}

static void recv_(struct raft_io *io, struct raft_message *m)
{
    struct sim_stall *st = of(io);
    sim_trace(current, "recv", io, m);
    if (!st->on) {
        st->recv(io, m);
        return;
    }
    /* The fixture frees *m (not what it points to) when recv returns. */
    push(st, STALL_RECV, io)->message = *m;
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        st->n_installs_queued++;
    }
}

static int start(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick_cb,
                 raft_io_recv_cb recv_cb)
{
    struct sim_stall *st = of(io);
    st->tick = tick_cb;
    st->recv = recv_cb;
    return st->start(io, msecs, tick, recv_);
}

static struct stall_req *wrap(struct sim_stall *st, struct raft_io *io,
                              void *orig)
{
    struct stall_req *w = calloc(1, sizeof *w);
    assert(w != NULL);
    w->st = st;
    w->io = io;
    w->orig = orig;
    return w;
}

/* Complete the oldest appends that are done, in the order they were
 * submitted.  raft_uv completes appends in order and 0.22.1 relies on it
 * (stepPersistedEntries asserts `index > last_stored`, compiled out in
 * Debian's build: an older completion after a newer one moves last_stored
 * back and the follower then waits forever for an append that already
 * completed); the fixture completes each after its own disk latency, so a
 * latency lowered between two appends would reorder them. */
static void appends_complete(struct sim_stall *st)
{
    while (st->appends != NULL && st->appends->done) {
        struct stall_req *w = st->appends;
        struct raft_io_append *orig = w->orig;
        raft_io_append_cb cb = w->cb.append;
        struct raft_io *io = w->io;
        int status = w->status;
        st->appends = w->next;
        if (st->appends == NULL) {
            st->appends_tail = NULL;
        }
        free(w);
        if (st->on) {
            struct sim_stall_event *e = push(st, STALL_APPEND, io);
            e->req = orig;
            e->cb.append = cb;
            e->status = status;
        } else if (cb != NULL) {
            cb(orig, status);
        }
    }
}

static void append_cb(struct raft_io_append *req, int status)
{
    struct stall_req *w = req->data;
    w->done = true;
    w->status = status;
    if (w != w->st->appends) {
        w->st->n_appends_reordered++;
    }
    appends_complete(w->st);
}

static int append(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb)
{
    struct sim_stall *st = of(io);
    struct stall_req *w = wrap(st, io, req);
    int rv;
    w->req.append.data = w;
    w->cb.append = cb;
    req->cb = cb;
    rv = st->append(io, &w->req.append, entries, n, append_cb);
    if (rv != 0) {
        free(w);
        return rv;
    }
    if (st->appends_tail != NULL) {
        st->appends_tail->next = w;
    } else {
        st->appends = w;
    }
    st->appends_tail = w;
    return 0;
}

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct stall_req *w = req->data;
    struct sim_stall *st = w->st;
    struct raft_io_snapshot_put *orig = w->orig;
    raft_io_snapshot_put_cb cb = w->cb.put;
    struct raft_io *io = w->io;
    free(w);
    if (st->on) {
        struct sim_stall_event *e = push(st, STALL_PUT, io);
        e->req = orig;
        e->cb.put = cb;
        e->status = status;
    } else if (cb != NULL) {
        cb(orig, status);
    }
}

static int snapshot_put(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb)
{
    struct sim_stall *st = of(io);
    struct stall_req *w = wrap(st, io, req);
    int rv;
    w->req.put.data = w;
    w->cb.put = cb;
    req->cb = cb;
    rv = st->snapshot_put(io, trailing, &w->req.put, snapshot, put_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static void get_cb(struct raft_io_snapshot_get *req,
                   struct raft_snapshot *snapshot,
                   int status)
{
    struct stall_req *w = req->data;
    struct sim_stall *st = w->st;
    struct raft_io_snapshot_get *orig = w->orig;
    raft_io_snapshot_get_cb cb = w->cb.get;
    struct raft_io *io = w->io;
    free(w);
    if (st->on) {
        struct sim_stall_event *e = push(st, STALL_GET, io);
        e->req = orig;
        e->cb.get = cb;
        e->snapshot = snapshot;
        e->status = status;
    } else {
        cb(orig, snapshot, status);
    }
}

static int snapshot_get(struct raft_io *io,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb)
{
    struct sim_stall *st = of(io);
    struct stall_req *w = wrap(st, io, req);
    int rv;
    w->req.get.data = w;
    w->cb.get = cb;
    req->cb = cb;
    rv = st->snapshot_get(io, &w->req.get, get_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static void send_cb(struct raft_io_send *req, int status)
{
    struct stall_req *w = req->data;
    struct sim_stall *st = w->st;
    struct raft_io_send *orig = w->orig;
    raft_io_send_cb cb = w->cb.send;
    struct raft_io *io = w->io;
    free(w);
    if (st->on) {
        struct sim_stall_event *e = push(st, STALL_SEND, io);
        e->req = orig;
        e->cb.send = cb;
        e->status = status;
    } else if (cb != NULL) {
        cb(orig, status);
    }
}

static int send_message(struct raft_io *io,
                        struct raft_io_send *req,
                        const struct raft_message *message,
                        raft_io_send_cb cb)
{
    struct sim_stall *st = of(io);
    struct stall_req *w = wrap(st, io, req);
    int rv;
    sim_trace(current, "send", io, message);
    w->req.send.data = w;
    w->cb.send = cb;
    req->cb = cb;
    rv = st->send(io, &w->req.send, message, send_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

void sim_stall_setup(struct sim *s, unsigned i)
{
    struct sim_stall *st = &s->stall[i];
    struct raft_io *io = raft_fixture_get(&s->f, i)->io;
    current = s;
    memset(st, 0, sizeof *st);
    st->io = io;
    st->start = io->start;
    st->append = io->append;
    st->snapshot_put = io->snapshot_put;
    st->snapshot_get = io->snapshot_get;
    st->send = io->send;
    io->start = start;
    io->append = append;
    io->snapshot_put = snapshot_put;
    io->snapshot_get = snapshot_get;
    io->send = send_message;
}

void sim_stall_begin(struct sim *s, unsigned i)
{
    struct sim_stall *st = &s->stall[i];
    assert(!st->on);
    struct raft *r = raft_fixture_get(&s->f, i);
    st->armed = SIM_STALL_NOW;
    st->on = true;
    st->since = raft_fixture_time(&s->f);
    st->n_stalls++;
    /* What the model reaches (the summary line). */
    st->n_stalls_leader += raft_state(r) == RAFT_LEADER ? 1 : 0;
    st->n_stalls_taking += r->legacy.snapshot_taking ? 1 : 0;
    st->n_stalls_installing += r->snapshot.installing ? 1 : 0;
    if (s->verbose) {
        fprintf(stderr, "sim: server %u stalls at %llu ms\n", i,
                (unsigned long long)st->since);
    }
}

void sim_stall_end(struct sim *s, unsigned i)
{
    struct sim_stall *st = &s->stall[i];
    assert(st->on);
    st->on = false;
    st->tick_queued = false;
    if (s->verbose) {
        unsigned n = 0;
        for (const struct sim_stall_event *e = st->head; e != NULL;
             e = e->next) {
            n++;
        }
        fprintf(stderr, "sim: server %u resumes at %llu ms: %u events\n", i,
                (unsigned long long)raft_fixture_time(&s->f), n);
    }
    /* The burst: what waited, in order (nothing new is queued meanwhile). */
    while (st->head != NULL) {
        struct sim_stall_event *e = st->head;
        st->head = e->next;
        if (st->head == NULL) {
            st->tail = NULL;
        }
        switch (e->kind) {
            case STALL_TICK:
                st->tick(e->io);
                break;
            case STALL_RECV:
                st->recv(e->io, &e->message);
                break;
            case STALL_APPEND:
                if (e->cb.append != NULL) {
                    e->cb.append(e->req, e->status);
                }
                break;
            case STALL_PUT:
                if (e->cb.put != NULL) {
                    e->cb.put(e->req, e->status);
                }
                break;
            case STALL_GET:
                e->cb.get(e->req, e->snapshot, e->status);
                break;
            case STALL_SEND:
                if (e->cb.send != NULL) {
                    e->cb.send(e->req, e->status);
                }
                break;
        }
        free(e);
    }
}

bool sim_stall_at_threshold(struct sim *s, unsigned i)
{
    struct raft *r = raft_fixture_get(&s->f, i);
    raft_index snap = s->guard[i].anchor.index;
    unsigned th = r->legacy.snapshot_threshold;
    return raft_state(r) == RAFT_FOLLOWER && !r->legacy.snapshot_taking &&
           raft_commit_index(r) < snap + th &&
           raft_last_index(r) >= snap + th;
}

/* Whether server i is at the moment an armed stall waits for. */
static bool moment(struct sim *s, unsigned i, enum sim_stall_when when)
{
    struct raft *r = raft_fixture_get(&s->f, i);
    switch (when) {
        case SIM_STALL_AT_THRESHOLD:
            return sim_stall_at_threshold(s, i);
        case SIM_STALL_TAKING:
            return r->legacy.snapshot_taking;
        case SIM_STALL_INSTALLING:
            return r->snapshot.installing;
        case SIM_STALL_NOW:
            break;
    }
    return true;
}

/* The random model's stall fault (sim.c), on its own PRNG stream so that
 * with --no-stalls the other faults draw the same numbers: at most one server
 * stalled (or armed) at a time, so a quorum keeps running.  A stall
 * begins now (half the time), or is armed to begin at the first step at
 * which that server is a follower about to cross its snapshot threshold
 * (issue 15's trigger), is putting a snapshot of its own, or is putting
 * an install (sim_stall_step).  A stalled server resumes at the next
 * stall fault; the writes of its burst take 1-2,000 ms (a disk that
 * stalled too: its own snapshot's put is then in flight while messages
 * arrive), later writes 1-60 ms. */
void sim_stall_fault(struct sim *s)
{
    static const enum sim_stall_when armed[] = {
        SIM_STALL_NOW,     SIM_STALL_NOW,         SIM_STALL_NOW,
        SIM_STALL_AT_THRESHOLD, SIM_STALL_TAKING, SIM_STALL_INSTALLING};
    unsigned i = sim_rng_range(&s->stall_rng, 0, N_SERVERS - 1);
    unsigned burst_ms = sim_rng_range(&s->stall_rng, 1, 2000);
    unsigned after_ms = sim_rng_range(&s->stall_rng, 1, 60);
    enum sim_stall_when when = armed[sim_rng_range(&s->stall_rng, 0, 5)];
    for (unsigned k = 0; k < N_SERVERS; k++) {
        if (s->stall[k].on) {
            raft_fixture_set_disk_latency(&s->f, k, burst_ms);
            sim_stall_end(s, k);
            raft_fixture_set_disk_latency(&s->f, k, after_ms);
            return;
        }
        if (s->stall[k].armed != SIM_STALL_NOW) {
            return; /* not reached yet: let it */
        }
    }
    if (s->stopped[i]) {
        return;
    }
    if (when != SIM_STALL_NOW) {
        s->stall[i].armed = when;
    } else {
        sim_stall_begin(s, i);
    }
}

void sim_stall_step(struct sim *s)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (s->stall[i].armed != SIM_STALL_NOW &&
            moment(s, i, s->stall[i].armed)) {
            sim_stall_begin(s, i);
        }
    }
}
