/* raft-glue's io_guard against libraft 0.22.1 reading a follower's state
 * union as a candidate's (io_guard.c, stale_vote_result): a RequestVote
 * result carrying a higher term reaches a follower that knows no leader.
 * 0.22.1's recvRequestVoteResult reads `candidate_state.in_pre_vote`,
 * here the second byte of the NULL leader address, as false and moves the
 * follower to the result's term; the guard drops the result, so the
 * follower keeps its term and the drop is counted.  A candidate still gets
 * its results.
 *
 * Deterministic (virtual time, an unelected fixture cluster, no storage). */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io_guard.h"

#define N 3

static struct glue_io_guard guard;
static unsigned n_failed;
/* The guard's receive callback, as the fixture would call it. */
static raft_io_recv_cb guard_recv;
static int (*fixture_start)(struct raft_io *io,
                            unsigned msecs,
                            raft_io_tick_cb tick,
                            raft_io_recv_cb recv);

static int capture_start(struct raft_io *io,
                         unsigned msecs,
                         raft_io_tick_cb tick,
                         raft_io_recv_cb recv)
{
    guard_recv = recv;
    return fixture_start(io, msecs, tick, recv);
}

static void on_failed(struct glue_io_guard *g, const char *call, int rv)
{
    (void)g;
    (void)call;
    (void)rv;
    n_failed++;
}

/* An append that raft_uv queues and then fails (0.22.1's UvAppend returns
 * its first write's error with the request still queued): the request is
 * kept here, its callback called by the test, as raft_uv would later. */
static struct raft_io_append *kept_req;
static raft_io_append_cb kept_cb;
static bool keep_next;
static unsigned n_outer_cb;

static int queue_then_fail(struct raft_io *io,
                           struct raft_io_append *req,
                           const struct raft_entry entries[],
                           unsigned n,
                           raft_io_append_cb cb)
{
    (void)io;
    (void)entries;
    (void)n;
    if (keep_next) {
        kept_req = req;
        kept_cb = cb;
    }
    return RAFT_IOERR;
}

static void outer_done(struct raft_io_append *req, int status)
{
    (void)req;
    (void)status;
    n_outer_cb++;
}

static void timed(struct glue_io_guard *g, uint64_t ns)
{
    (void)g;
    (void)ns;
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

static void vote_result(struct raft *r, raft_term term, bool pre_vote)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_REQUEST_VOTE_RESULT;
    m.server_id = 3;
    m.server_address = "3";
    m.request_vote_result.version = 2;
    m.request_vote_result.term = term;
    m.request_vote_result.vote_granted = false;
    m.request_vote_result.pre_vote = pre_vote;
    guard_recv(r->io, &m);
}

int main(void)
{
    struct raft_fixture f;
    struct raft_fsm fsm[N];
    struct raft_configuration conf;
    struct raft *r;

    memset(fsm, 0, sizeof fsm);
    CHECK(raft_fixture_init(&f) == 0);
    for (unsigned i = 0; i < N; i++) {
        fsm[i].version = 1;
        fsm[i].apply = fsm_apply;
        CHECK(raft_fixture_grow(&f, &fsm[i]) == 0);
        raft_fixture_get(&f, i)->tracer = NULL;
    }
    r = raft_fixture_get(&f, 1);
    glue__io_guard_wrap(&guard, r, on_failed, NULL);
    fixture_start = guard.start;
    guard.start = capture_start;
    CHECK(raft_fixture_configuration(&f, N, &conf) == 0);
    CHECK(raft_fixture_bootstrap(&f, &conf) == 0);
    raft_configuration_close(&conf);
    CHECK(raft_fixture_start(&f) == 0);
    CHECK(guard_recv != NULL);

    /* A follower that knows no leader: a stale pre-vote result and a stale
     * vote result, both of a higher term, change nothing. */
    CHECK(raft_state(r) == RAFT_FOLLOWER);
    CHECK(raft_current_term(r) == 1);
    vote_result(r, 5, true);
    CHECK(raft_state(r) == RAFT_FOLLOWER);
    CHECK(raft_current_term(r) == 1);
    vote_result(r, 6, false);
    CHECK(raft_current_term(r) == 1);
    CHECK(guard.n_vote_results_dropped == 2);

    /* A candidate still hears its results: a real vote result of a higher
     * term makes it step down to that term. */
    raft_set_pre_vote(r, false);
    raft_fixture_kill(&f, 0); /* nobody else elects itself */
    raft_fixture_kill(&f, 2);
    CHECK(raft_fixture_step_until_state_is(&f, 1, RAFT_CANDIDATE, 5000));
    CHECK(raft_current_term(r) == 2);
    vote_result(r, 7, false);
    CHECK(raft_state(r) == RAFT_FOLLOWER);
    CHECK(raft_current_term(r) == 7);
    CHECK(guard.n_vote_results_dropped == 2);
    CHECK(n_failed == 0);

    /* A timed append that fails with its request still queued in the io
     * (as 0.22.1's UvAppend can): the caller (legacy) frees its own
     * request on the error, so when the io calls back later the guard
     * must not call it; one the io did not keep is freed at the close
     * (ASan and LSan check both). */
    {
        struct raft_io_append outer[2];
        struct raft_entry e = {.term = 1, .type = RAFT_COMMAND};
        int (*real_append)(struct raft_io *, struct raft_io_append *,
                           const struct raft_entry[], unsigned,
                           raft_io_append_cb) = guard.append;
        unsigned long failed_before = guard.n_failed;
        guard.append = queue_then_fail;
        guard.appended = timed;
        keep_next = true;
        CHECK(r->io->append(r->io, &outer[0], &e, 1, outer_done) ==
              RAFT_IOERR);
        keep_next = false;
        CHECK(r->io->append(r->io, &outer[1], &e, 1, outer_done) ==
              RAFT_IOERR);
        CHECK(guard.n_failed == failed_before + 2);
        CHECK(kept_req != NULL && guard.orphans != NULL);
        kept_cb(kept_req, RAFT_CANCELED); /* the io's late callback */
        CHECK(n_outer_cb == 0);
        CHECK(guard.orphans != NULL); /* the one the io never kept */
        guard.append = real_append;
        guard.appended = NULL;
    }

    /* raft_close goes through the guard: the snapshot gate learns it
     * before the real io closes (test_snapshot_send: a load in flight
     * then sends nothing). */
    CHECK(!guard.snapshot_send.closing);
    raft_fixture_close(&f);
    CHECK(guard.snapshot_send.closing);
    glue__io_guard_close(&guard);
    CHECK(guard.orphans == NULL);
    printf("io_guard: RequestVote results to a non-candidate dropped (2), "
           "a candidate's delivered; raft_close reaches the snapshot gate; "
           "a failed append the io kept is never answered to its caller\n");
    return 0;
}
