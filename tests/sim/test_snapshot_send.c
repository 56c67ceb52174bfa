/* raft-glue's InstallSnapshot gate (raft-glue/snapshot_send.h) when the
 * stream never takes a copy: raft_uv calls a send's callback only when the
 * write completes or fails (no timeout), so a peer that stays connected and
 * never reads would keep a gate in SENDING, and every later copy to that
 * peer refused, for as long.  The gate must reopen after the copy's settle
 * time, and the stuck copy, when its callback finally comes, must complete
 * legacy's request without touching the gate of the copy sent since.
 *
 * The gate runs on a fake raft_io (virtual time; a snapshot_get that loads
 * a 3 MiB copy at once; a send that never completes by itself) over a
 * leader of libraft's fixture.  Deterministic, no storage, no sockets. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "snapshot_send.h"

#define PEER 2u
#define COPY_BYTES ((size_t)3 << 20)
#define SETTLE_MS 1000u
#define SETTLE_MS_PER_MIB 100u
/* settle_ms + settle_ms_per_mib * MiB, as snapshot_send.c computes it. */
#define COPY_SETTLE_MS (SETTLE_MS + SETTLE_MS_PER_MIB * (unsigned)(COPY_BYTES >> 20))
#define SENDS_MAX 8u

static struct glue_snapshot_send ss;
static struct raft_io fake;
static raft_time fake_now;
static raft_index next_index = 100;

/* Copies handed to the stream: completed by hand, never by the stream. */
static struct
{
    struct raft_io_send *req;
    raft_io_send_cb cb;
} sends[SENDS_MAX];
static unsigned n_sends;

/* Events, in order. */
static enum glue_snapshot_send_event_kind events[32];
static const char *reasons[32];
static unsigned n_events;

static raft_time fake_time(struct raft_io *io)
{
    (void)io;
    return fake_now;
}

/* While set, a load stays in flight until load_done() (raft_uv's
 * snapshot_get is a thread-pool job: raft_close can begin meanwhile). */
static bool defer_get;
static struct
{
    struct raft_io_snapshot_get *req;
    struct raft_snapshot *snapshot;
} deferred;

static void load_done(void)
{
    struct raft_io_snapshot_get *req = deferred.req;
    CHECK(req != NULL);
    deferred.req = NULL;
    req->cb(req, deferred.snapshot, 0);
}

static int fake_get(struct raft_io *io,
                    struct raft_io_snapshot_get *req,
                    raft_io_snapshot_get_cb cb)
{
    struct raft_snapshot *s = raft_calloc(1, sizeof *s);
    (void)io;
    CHECK(s != NULL);
    s->bufs = raft_malloc(sizeof *s->bufs);
    CHECK(s->bufs != NULL);
    s->bufs[0].base = raft_malloc(COPY_BYTES);
    CHECK(s->bufs[0].base != NULL);
    memset(s->bufs[0].base, 0x5a, COPY_BYTES);
    s->bufs[0].len = COPY_BYTES;
    s->n_bufs = 1;
    s->index = next_index++;
    s->term = 1;
    raft_configuration_init(&s->configuration);
    s->configuration_index = 1;
    req->cb = cb;
    if (defer_get) {
        CHECK(deferred.req == NULL);
        deferred.req = req;
        deferred.snapshot = s;
        return 0;
    }
    cb(req, s, 0);
    return 0;
}

static int fake_send(struct raft_io *io,
                     struct raft_io_send *req,
                     const struct raft_message *message,
                     raft_io_send_cb cb)
{
    (void)io;
    CHECK(message->type == RAFT_INSTALL_SNAPSHOT);
    CHECK(message->server_id == PEER);
    CHECK(message->install_snapshot.data.len == COPY_BYTES);
    CHECK(n_sends < SENDS_MAX);
    req->cb = cb;
    sends[n_sends].req = req;
    sends[n_sends].cb = cb;
    n_sends++;
    return 0;
}

/* The stream finally takes (status 0) or loses copy k. */
static void stream_done(unsigned k, int status)
{
    CHECK(k < n_sends && sends[k].req != NULL);
    struct raft_io_send *req = sends[k].req;
    sends[k].req = NULL;
    sends[k].cb(req, status);
}

static void on_event(struct glue_snapshot_send *s,
                     const struct glue_snapshot_send_event *e)
{
    (void)s;
    CHECK(e->peer == PEER);
    CHECK(n_events < sizeof events / sizeof events[0]);
    events[n_events] = e->kind;
    reasons[n_events] = e->reason;
    n_events++;
}

/* legacy.c's side: a placeholder from snapshot_get, then send. */
struct legacy_req
{
    struct raft_io_send send;
    unsigned n_cb;
    int status;
};

static struct raft_snapshot *placeholder;

static void legacy_loaded(struct raft_io_snapshot_get *req,
                          struct raft_snapshot *s,
                          int status)
{
    (void)req;
    CHECK(status == 0);
    placeholder = s;
}

static void legacy_sent(struct raft_io_send *req, int status)
{
    struct legacy_req *l = req->data;
    l->n_cb++;
    l->status = status;
}

/* raft asks for a copy to PEER; the send's result. */
static int ask(struct raft *r, struct legacy_req *l)
{
    struct raft_io_snapshot_get get;
    struct raft_message m;
    int rv;
    memset(&get, 0, sizeof get);
    placeholder = NULL;
    CHECK(glue__snapshot_send_get(&ss, &get, legacy_loaded) == 0);
    CHECK(placeholder != NULL && placeholder->n_bufs == 1);
    memset(&m, 0, sizeof m);
    m.type = RAFT_INSTALL_SNAPSHOT;
    m.server_id = PEER;
    m.server_address = "2";
    m.install_snapshot.version = 1;
    m.install_snapshot.term = raft_current_term(r);
    m.install_snapshot.last_index = placeholder->index;
    m.install_snapshot.last_term = 1;
    m.install_snapshot.conf = placeholder->configuration;
    m.install_snapshot.conf_index = 1;
    m.install_snapshot.data = placeholder->bufs[0];
    memset(l, 0, sizeof *l);
    l->send.data = l;
    rv = glue__snapshot_send_send(&ss, &l->send, &m, legacy_sent);
    /* legacy frees the placeholder (the gate keeps no pointer into it). */
    raft_free(placeholder->bufs[0].base);
    raft_free(placeholder->bufs);
    raft_configuration_close(&placeholder->configuration);
    raft_free(placeholder);
    placeholder = NULL;
    return rv;
}

static const struct glue_snapshot_send_peer *peer(void)
{
    for (unsigned i = 0; i < GLUE_SNAPSHOT_SEND_PEERS; i++) {
        if (ss.peers[i].id == PEER) {
            return &ss.peers[i];
        }
    }
    CHECK(!"no slot for the peer");
    return NULL;
}

/* PEER answers success at `index`. */
static void installed(raft_index index)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_APPEND_ENTRIES_RESULT;
    m.server_id = PEER;
    m.server_address = "2";
    m.append_entries_result.version = 1;
    m.append_entries_result.rejected = 0;
    m.append_entries_result.last_log_index = index;
    glue__snapshot_send_recv(&ss, &m);
}

static int fsm_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

int main(void)
{
    struct raft_fixture f;
    struct raft_fsm fsm;
    struct raft_configuration conf;
    struct raft *r;
    struct legacy_req a, b, c, d, e, g, h, k;
    unsigned n_sends_before;

    if (RAFT_VERSION_NUMBER != 2201) {
        printf("snapshot-send: the gate is built only against libraft "
               "0.22.1 (this is %d): skipped\n", RAFT_VERSION_NUMBER);
        return 77;
    }
    memset(&fsm, 0, sizeof fsm);
    fsm.version = 1;
    fsm.apply = fsm_apply;
    CHECK(raft_fixture_init(&f) == 0);
    CHECK(raft_fixture_grow(&f, &fsm) == 0);
    raft_fixture_get(&f, 0)->tracer = NULL;
    CHECK(raft_fixture_configuration(&f, 1, &conf) == 0);
    CHECK(raft_fixture_bootstrap(&f, &conf) == 0);
    raft_configuration_close(&conf);
    CHECK(raft_fixture_start(&f) == 0);
    CHECK(raft_fixture_step_until_has_leader(&f, 5000));
    r = raft_fixture_get(&f, 0);
    CHECK(raft_state(r) == RAFT_LEADER);

    /* The gate over the fake raft_io; loaded_cb reads the leader's state
     * through io->data, as under raft_uv. */
    memset(&fake, 0, sizeof fake);
    fake.data = r;
    fake.time = fake_time;
    fake.snapshot_get = fake_get;
    fake.send = fake_send;
    glue__snapshot_send_init(&ss, &fake);
    CHECK(ss.enabled);
    ss.settle_ms = SETTLE_MS;
    ss.settle_ms_per_mib = SETTLE_MS_PER_MIB;
    ss.event = on_event;
    fake_now = 10000;

    /* A copy goes on a stream that never takes it. */
    CHECK(ask(r, &a) == 0);
    CHECK(n_sends == 1);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_SENDING);
    CHECK(n_events == 1 && events[0] == GLUE_SNAPSHOT_SEND_STARTED);

    /* Within the copy's settle time every re-send is refused, and a
     * refused send never calls its callback. */
    fake_now += COPY_SETTLE_MS - 1;
    CHECK(ask(r, &b) == RAFT_BUSY);
    CHECK(b.n_cb == 0);
    CHECK(n_sends == 1 && ss.n_dropped == 1);

    /* At the settle time the gate reopens: a new copy goes out, and it is
     * gated in turn. */
    fake_now += 1;
    CHECK(ask(r, &c) == 0);
    CHECK(n_sends == 2);
    CHECK(ss.n_detached == 1 && ss.n_reopened == 1);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_SENDING);
    CHECK(n_events == 3 && events[1] == GLUE_SNAPSHOT_SEND_REOPENED &&
          strstr(reasons[1], "not written") != NULL &&
          events[2] == GLUE_SNAPSHOT_SEND_STARTED);
    CHECK(ask(r, &d) == RAFT_BUSY);
    CHECK(d.n_cb == 0 && ss.n_dropped == 2);
    CHECK(a.n_cb == 0); /* the stuck copy is still the stream's */

    /* The second copy queues behind the stuck one on the same stream (as
     * raft_uv writes a peer's messages): at its own settle time the gate
     * does not reopen again while the detached copy is pending, so a stuck
     * stream pins two copies at most, not one more every settle time. */
    fake_now += COPY_SETTLE_MS;
    CHECK(ask(r, &h) == RAFT_BUSY);
    CHECK(h.n_cb == 0 && n_sends == 2 && ss.n_detached == 1);
    CHECK(ss.n_reopened == 1 && peer()->detached == 1);

    /* The stuck copy is written at last: legacy's request completes once,
     * the gate (the second copy's) does not move. */
    stream_done(0, 0);
    CHECK(a.n_cb == 1 && a.status == 0);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_SENDING);
    CHECK(peer()->detached == 0);
    CHECK(n_events == 3);

    /* The second copy is written, then installed: the gate is open. */
    stream_done(1, 0);
    CHECK(c.n_cb == 1 && c.status == 0);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_SENT);
    CHECK(n_events == 4 && events[3] == GLUE_SNAPSHOT_SEND_WRITTEN);
    installed(peer()->index);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_IDLE);
    CHECK(ss.n_installed == 1);

    /* A detached copy that fails later (its connection torn down) fails
     * legacy's request only: the newer copy keeps the gate. */
    CHECK(ask(r, &e) == 0);
    CHECK(n_sends == 3);
    fake_now += COPY_SETTLE_MS;
    CHECK(ask(r, &g) == 0);
    CHECK(n_sends == 4 && ss.n_detached == 2);
    stream_done(2, RAFT_IOERR);
    CHECK(e.n_cb == 1 && e.status == RAFT_IOERR);
    CHECK(ss.n_failed == 1 && peer()->detached == 0);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_SENDING);
    for (unsigned i = 0; i < n_events; i++) {
        CHECK(events[i] != GLUE_SNAPSHOT_SEND_FAILED);
    }
    stream_done(3, 0);
    CHECK(g.n_cb == 1 && g.status == 0);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_SENT);
    CHECK(ss.n_started == 4 && ss.n_written == 3);

    /* raft_close begins while a copy is still loading.  0.22.1's
     * raft_close leaves the state LEADER and the term as they were, so
     * only the close itself can tell the gate; told (io_guard's close
     * wrapper), the loaded copy completes legacy's request with
     * RAFT_CANCELED and never reaches the stream (raft_uv's send on a
     * closing io made a client that outlived it: a SIGSEGV in a stop). */
    installed(peer()->index);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_IDLE);
    defer_get = true;
    CHECK(ask(r, &k) == 0);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_LOADING && deferred.req != NULL);
    glue__snapshot_send_close(&ss);
    CHECK(raft_state(r) == RAFT_LEADER);
    n_sends_before = n_sends;
    load_done();
    CHECK(n_sends == n_sends_before);
    CHECK(k.n_cb == 1 && k.status == RAFT_CANCELED);
    CHECK(peer()->phase == GLUE_SNAPSHOT_SEND_IDLE);
    CHECK(ss.n_failed == 2 && ss.n_started == 4);

    raft_fixture_close(&f);
    printf("snapshot-send: a copy the stream never took reopens the gate "
           "after its settle time (%u ms for %zu MiB); the stuck copy, "
           "written or failed later, completes only its own request; a copy "
           "loaded after raft_close began is cancelled, not sent\n",
           COPY_SETTLE_MS, COPY_BYTES >> 20);
    return 0;
}
