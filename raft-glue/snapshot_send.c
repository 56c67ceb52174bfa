/* One InstallSnapshot per peer at a time: see snapshot_send.h.
 *
 * Happy path: raft decides to send → legacy calls snapshot_get → we hand it
 * a placeholder at once → legacy calls send with it → the peer's gate is
 * IDLE: LOADING, the real snapshot_get → loaded: SENDING, the real send of
 * our own copy of the message → sent: SENT, legacy's request completed (it
 * frees the placeholder) → the peer reports the index: IDLE.
 * Failure modes: the gate is not IDLE (legacy's send is refused with BUSY,
 * nothing loaded); the load or the send fails, or leadership was lost while
 * loading (gate IDLE, legacy's request completed with the error); a copy
 * lost after it was written (reconnect, new term or settle time reopens the
 * gate); a copy whose write never completes (settle time: the gate reopens
 * and the copy is detached, freed when raft_uv's callback comes). */
#include "snapshot_send.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The placeholder's bytes: never the start of a real snapshot (kyufu's begin
 * with the FSM header's own magic, and are longer). */
static const char placeholder_magic[16] = "kyufu:ss:holder";

struct ss_send
{
    struct glue_snapshot_send *ss;
    struct glue_snapshot_send_peer *peer; /* NULL: ungated */
    unsigned long copy; /* its number: the gate is peer's while peer->copy
                           equals it (else detached) */
    struct raft_io_snapshot_get get;
    struct raft_io_send send;
    struct raft_message msg;   /* ours: carries the loaded snapshot */
    struct raft_io_send *orig; /* legacy's, with the placeholder */
    raft_io_send_cb orig_cb;
};

static raft_time now(struct glue_snapshot_send *ss)
{
    return ss->io->time(ss->io);
}

static void emit(struct glue_snapshot_send *ss,
                 const struct glue_snapshot_send_peer *p,
                 enum glue_snapshot_send_event_kind kind,
                 int status,
                 const char *reason)
{
    struct glue_snapshot_send_event e;
    if (ss->event == NULL) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.peer = p->id;
    e.index = p->index;
    e.term = p->term;
    e.bytes = p->bytes;
    e.ms = now(ss) - p->started;
    e.status = status;
    e.reason = reason;
    ss->event(ss, &e);
}

static struct glue_snapshot_send_peer *peer_find(struct glue_snapshot_send *ss,
                                                 raft_id id)
{
    for (unsigned i = 0; i < GLUE_SNAPSHOT_SEND_PEERS; i++) {
        if (ss->peers[i].id == id) {
            return &ss->peers[i];
        }
    }
    return NULL;
}

/* The peer's slot, taking a free one or that of another peer with nothing
 * in progress (no copy out, no trailing hold). */
static struct glue_snapshot_send_peer *peer_slot(struct glue_snapshot_send *ss,
                                                 raft_id id)
{
    struct glue_snapshot_send_peer *p = peer_find(ss, id);
    if (p != NULL) {
        return p;
    }
    for (unsigned i = 0; i < GLUE_SNAPSHOT_SEND_PEERS; i++) {
        if (ss->peers[i].phase == GLUE_SNAPSHOT_SEND_IDLE &&
            !ss->peers[i].catching_up && ss->peers[i].detached == 0) {
            p = &ss->peers[i];
            memset(p, 0, sizeof *p);
            p->id = id;
            return p;
        }
    }
    return NULL;
}

static void reopen(struct glue_snapshot_send *ss,
                   struct glue_snapshot_send_peer *p,
                   const char *reason)
{
    assert(p->phase == GLUE_SNAPSHOT_SEND_SENT ||
           p->phase == GLUE_SNAPSHOT_SEND_SENDING);
    if (p->phase == GLUE_SNAPSHOT_SEND_SENDING) {
        assert(p->copy != 0 && p->detached == 0);
        p->detached++;
        ss->n_detached++;
    }
    p->phase = GLUE_SNAPSHOT_SEND_IDLE;
    p->copy = 0;
    ss->n_reopened++;
    emit(ss, p, GLUE_SNAPSHOT_SEND_REOPENED, 0, reason);
}

/* How long a peer may go without visible progress (its copy installed,
 * its log advancing) before it is no longer waited for. */
static raft_time settle_ms(const struct glue_snapshot_send *ss,
                           const struct glue_snapshot_send_peer *p)
{
    return (raft_time)ss->settle_ms +
           (raft_time)ss->settle_ms_per_mib * (raft_time)(p->bytes >> 20);
}

/* A written copy that can no longer be counted on, or one the stream has
 * not taken within the settle time (raft_uv has no write timeout).  A
 * LOADING copy is always waited for: raft_uv's snapshot_get is a thread
 * pool job, whose callback always comes. */
static void reopen_if_stale(struct glue_snapshot_send *ss,
                            struct glue_snapshot_send_peer *p,
                            raft_term term)
{
    if (p->phase == GLUE_SNAPSHOT_SEND_SENDING) {
        /* Once per stuck stream: raft_uv writes a peer's messages on one
         * stream in order, so a new copy queues behind the stuck one, and
         * detaching each in turn would pin one more copy (its whole
         * snapshot in memory) every settle time until the link breaks.
         * While a detached copy is pending, the gate waits for it. */
        if (p->detached == 0 && now(ss) - p->sending >= settle_ms(ss, p)) {
            reopen(ss, p, "copy not written within the settle time");
        }
        return;
    }
    if (p->phase != GLUE_SNAPSHOT_SEND_SENT) {
        return;
    }
    if (p->term != term) {
        reopen(ss, p, "new term");
    } else if (now(ss) - p->written >= settle_ms(ss, p)) {
        reopen(ss, p, "no install reported within the settle time");
    }
}

/* The peer whose gate x still holds; NULL if ungated or detached. */
static struct glue_snapshot_send_peer *gate_of(const struct ss_send *x)
{
    if (x->peer == NULL || x->peer->copy != x->copy) {
        return NULL;
    }
    return x->peer;
}

static bool is_placeholder(const struct raft_message *m)
{
    const struct raft_buffer *b = &m->install_snapshot.data;
    return b->len == sizeof placeholder_magic && b->base != NULL &&
           memcmp(b->base, placeholder_magic, sizeof placeholder_magic) == 0;
}

static void msg_data_free(struct ss_send *x)
{
    raft_configuration_close(&x->msg.install_snapshot.conf);
    raft_free(x->msg.install_snapshot.data.base);
    x->msg.install_snapshot.data.base = NULL;
    x->msg.install_snapshot.data.len = 0;
}

/* Complete legacy's request: it frees the placeholder and its request. */
static void complete(struct ss_send *x, int status)
{
    struct raft_io_send *orig = x->orig;
    raft_io_send_cb cb = x->orig_cb;
    free(x);
    if (cb != NULL) {
        cb(orig, status);
    }
}

static void fail(struct ss_send *x, int status, const char *reason)
{
    struct glue_snapshot_send *ss = x->ss;
    struct glue_snapshot_send_peer *p = gate_of(x);
    assert(status != 0);
    ss->n_failed++;
    if (p != NULL) {
        p->phase = GLUE_SNAPSHOT_SEND_IDLE;
        p->copy = 0;
        emit(ss, p, GLUE_SNAPSHOT_SEND_FAILED, status, reason);
    }
    complete(x, status);
}

static void sent_cb(struct raft_io_send *req, int status)
{
    struct ss_send *x = req->data;
    struct glue_snapshot_send *ss = x->ss;
    struct glue_snapshot_send_peer *p = gate_of(x);
    if (x->peer != NULL && p == NULL) {
        /* A detached copy (every other way a gate lets go of its copy
         * comes after the copy's own completion). */
        assert(x->peer->detached > 0);
        x->peer->detached--;
    }
    msg_data_free(x);
    if (status != 0) {
        fail(x, status, "send failed");
        return;
    }
    ss->n_written++;
    if (p != NULL) {
        assert(p->phase == GLUE_SNAPSHOT_SEND_SENDING);
        p->phase = GLUE_SNAPSHOT_SEND_SENT;
        p->copy = 0;
        p->written = now(ss);
        emit(ss, p, GLUE_SNAPSHOT_SEND_WRITTEN, 0, NULL);
    }
    complete(x, 0);
}

static void loaded_cb(struct raft_io_snapshot_get *req,
                      struct raft_snapshot *snapshot,
                      int status)
{
    struct ss_send *x = req->data;
    struct glue_snapshot_send *ss = x->ss;
    struct raft *r = ss->io->data;
    struct raft_install_snapshot *is = &x->msg.install_snapshot;
    int rv;

    if (status != 0) {
        fail(x, status, "snapshot load failed");
        return;
    }
    assert(snapshot != NULL);
    /* raft_uv and the fixture load a snapshot into one buffer (legacy
     * relies on it as well). */
    if (snapshot->n_bufs != 1) {
        for (unsigned i = 0; i < snapshot->n_bufs; i++) {
            raft_free(snapshot->bufs[i].base);
        }
        raft_free(snapshot->bufs);
        raft_configuration_close(&snapshot->configuration);
        raft_free(snapshot);
        fail(x, RAFT_IOERR, "snapshot loaded in several buffers");
        return;
    }
    is->last_index = snapshot->index;
    is->last_term = snapshot->term;
    is->conf = snapshot->configuration;
    is->conf_index = snapshot->configuration_index;
    is->data = snapshot->bufs[0];
    raft_free(snapshot->bufs);
    raft_free(snapshot);

    /* raft_close began while the file was read: raft_uv's send would make
     * a client that outlives the io (glue__snapshot_send_close). */
    if (ss->closing) {
        msg_data_free(x);
        fail(x, RAFT_CANCELED, "raft closed while loading");
        return;
    }
    /* The peer refuses a copy of an older term: do not send one. */
    if (raft_state(r) != RAFT_LEADER || raft_current_term(r) != is->term) {
        msg_data_free(x);
        fail(x, RAFT_LEADERSHIPLOST, "leadership lost while loading");
        return;
    }
    /* Still LOADING: nothing detaches a copy before it is on the stream. */
    assert(x->peer == NULL || gate_of(x) == x->peer);
    if (x->peer != NULL) {
        assert(x->peer->phase == GLUE_SNAPSHOT_SEND_LOADING);
        x->peer->phase = GLUE_SNAPSHOT_SEND_SENDING;
        x->peer->index = is->last_index;
        x->peer->bytes = is->data.len;
        x->peer->sending = now(ss);
    }
    x->send.data = x;
    rv = ss->send(ss->io, &x->send, &x->msg, sent_cb);
    if (rv != 0) {
        msg_data_free(x);
        fail(x, rv, "send refused");
        return;
    }
    ss->n_started++;
    if (gate_of(x) != NULL) {
        emit(ss, x->peer, GLUE_SNAPSHOT_SEND_STARTED, 0, NULL);
    }
}

/* Trailing hold (snapshot_send.h): keep every entry after the position of
 * the peers still catching up.  A peer stops counting once it is past this
 * node's snapshot, when this node is no longer leader, or when it showed no
 * progress for its settle time (a peer that died mid-install must not make
 * the leader keep its whole log forever). */
static void update_trailing(struct glue_snapshot_send *ss)
{
    struct raft *r = ss->io->data;
    bool leader = raft_state(r) == RAFT_LEADER;
    raft_index last = raft_last_index(r);
    raft_time t = now(ss);
    raft_index from = 0;
    bool any = false;
    unsigned want;

    if (ss->trailing_base == 0) {
        return;
    }
    for (unsigned i = 0; i < GLUE_SNAPSHOT_SEND_PEERS; i++) {
        struct glue_snapshot_send_peer *p = &ss->peers[i];
        if (p->id == 0 || !p->catching_up) {
            continue;
        }
        if (!leader || t - p->hold_progress >= settle_ms(ss, p)) {
            p->catching_up = false;
            ss->n_holds_released_early += leader ? 1 : 0;
            continue;
        }
        if (!any || p->hold_from < from) {
            from = p->hold_from;
        }
        any = true;
    }
    want = ss->trailing_base;
    if (any && last > from) {
        raft_index need = last - from + ss->trailing_base;
        want = need > UINT32_MAX ? UINT32_MAX : (unsigned)need;
    }
    if (want != ss->trailing_set) {
        if (ss->trailing_set == ss->trailing_base) {
            ss->n_trailing_raised++;
        }
        ss->trailing_set = want;
        raft_set_snapshot_trailing(r, want);
    }
}

int glue__snapshot_send_get(struct glue_snapshot_send *ss,
                            struct raft_io_snapshot_get *req,
                            raft_io_snapshot_get_cb cb)
{
    struct raft_snapshot *s;
    if (!ss->enabled) {
        return ss->snapshot_get(ss->io, req, cb);
    }
    s = raft_calloc(1, sizeof *s);
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    s->bufs = raft_malloc(sizeof *s->bufs);
    if (s->bufs == NULL) {
        raft_free(s);
        return RAFT_NOMEM;
    }
    s->bufs[0].base = raft_malloc(sizeof placeholder_magic);
    if (s->bufs[0].base == NULL) {
        raft_free(s->bufs);
        raft_free(s);
        return RAFT_NOMEM;
    }
    memcpy(s->bufs[0].base, placeholder_magic, sizeof placeholder_magic);
    s->bufs[0].len = sizeof placeholder_magic;
    s->n_bufs = 1;
    raft_configuration_init(&s->configuration);
    /* legacy copies a loaded index only if it differs, and expects it
     * larger: the highest index keeps both true.  The real one replaces it
     * in our copy of the message. */
    s->index = (raft_index)-1;
    req->cb = cb;
    /* Synchronously: 0.22.1's legacyLoadSnapshotCb calls send right away
     * and legacyLoadSnapshot does not use its request once we return. */
    cb(req, s, 0);
    return 0;
}

int glue__snapshot_send_send(struct glue_snapshot_send *ss,
                             struct raft_io_send *req,
                             const struct raft_message *message,
                             raft_io_send_cb cb)
{
    struct glue_snapshot_send_peer *p;
    struct ss_send *x;
    int rv;

    if (!ss->enabled || message->type != RAFT_INSTALL_SNAPSHOT ||
        !is_placeholder(message)) {
        return ss->send(ss->io, req, message, cb);
    }
    ss->n_requested++;
    p = peer_slot(ss, message->server_id);
    if (p == NULL) {
        ss->n_ungated++;
    } else {
        reopen_if_stale(ss, p, message->install_snapshot.term);
        if (p->phase != GLUE_SNAPSHOT_SEND_IDLE) {
            ss->n_dropped++;
            snprintf(ss->io->errmsg, sizeof ss->io->errmsg,
                     "a snapshot copy to %llu is already out",
                     (unsigned long long)message->server_id);
            return RAFT_BUSY;
        }
    }
    x = calloc(1, sizeof *x);
    if (x == NULL) {
        return RAFT_NOMEM;
    }
    x->ss = ss;
    x->peer = p;
    x->copy = ++ss->n_copies;
    x->orig = req;
    x->orig_cb = cb;
    req->cb = cb;
    x->msg = *message;
    raft_configuration_init(&x->msg.install_snapshot.conf);
    x->msg.install_snapshot.data.base = NULL;
    x->msg.install_snapshot.data.len = 0;
    x->get.data = x;
    if (p != NULL) {
        p->phase = GLUE_SNAPSHOT_SEND_LOADING;
        p->copy = x->copy;
        p->term = message->install_snapshot.term;
        p->index = 0;
        p->bytes = 0;
        p->started = now(ss);
        if (!p->catching_up && ss->own_snapshot != NULL) {
            p->catching_up = true;
            p->hold_from = *ss->own_snapshot;
        }
        p->hold_progress = p->started;
    }
    rv = ss->snapshot_get(ss->io, &x->get, loaded_cb);
    if (rv != 0) {
        if (p != NULL) {
            p->phase = GLUE_SNAPSHOT_SEND_IDLE;
            p->copy = 0;
        }
        free(x);
        return rv;
    }
    update_trailing(ss);
    return 0;
}

void glue__snapshot_send_recv(struct glue_snapshot_send *ss,
                              const struct raft_message *m)
{
    const struct raft_append_entries_result *res = &m->append_entries_result;
    struct glue_snapshot_send_peer *p;
    if (!ss->enabled) {
        return;
    }
    if (ss->trailing_set != ss->trailing_base) {
        /* A raised hold is re-checked on every message, so a node that
         * lost leadership (it gets no more results) puts it back. */
        update_trailing(ss);
    }
    if (m->type != RAFT_APPEND_ENTRIES_RESULT) {
        return;
    }
    p = peer_find(ss, m->server_id);
    if (p == NULL || res->rejected != 0) {
        return;
    }
    /* Only a success counts: a follower holds the snapshot's index in
     * memory as soon as it starts persisting it (0.22.1 TrailRestore) and
     * reports it in rejections, but it reports success at that index only
     * once the snapshot is persisted and restored (last_log_index is
     * capped at last_stored; replicationPersistSnapshotDone). */
    if (p->phase == GLUE_SNAPSHOT_SEND_SENT &&
        res->last_log_index >= p->index) {
        p->phase = GLUE_SNAPSHOT_SEND_IDLE;
        ss->n_installed++;
        emit(ss, p, GLUE_SNAPSHOT_SEND_INSTALLED, 0, NULL);
    }
    if (p->catching_up) {
        if (res->last_log_index > p->hold_from) {
            p->hold_from = res->last_log_index;
            p->hold_progress = now(ss);
        }
        if (p->phase == GLUE_SNAPSHOT_SEND_IDLE && ss->own_snapshot != NULL &&
            res->last_log_index >= *ss->own_snapshot) {
            p->catching_up = false; /* past our snapshot: trailing suffices */
        }
        update_trailing(ss);
    }
}

void glue__snapshot_send_connected(struct glue_snapshot_send *ss, raft_id id)
{
    struct glue_snapshot_send_peer *p = peer_find(ss, id);
    if (p != NULL && p->phase == GLUE_SNAPSHOT_SEND_SENT) {
        reopen(ss, p, "stream to the peer re-established");
    }
}

void glue__snapshot_send_close(struct glue_snapshot_send *ss)
{
    ss->closing = true;
}

void glue__snapshot_send_init(struct glue_snapshot_send *ss,
                              struct raft_io *io)
{
    memset(ss, 0, sizeof *ss);
    ss->io = io;
    ss->snapshot_get = io->snapshot_get;
    ss->send = io->send;
    /* The header of the libraft we build against (0.22.1 does not export
     * raft_version_number); scripts/setup installs exactly 0.22.1. */
    ss->enabled = RAFT_VERSION_NUMBER == 2201;
}
