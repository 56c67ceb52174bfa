/* libkyufu's hedge (docs/failover.md "Client hedge"), on the scripted
 * transport with silent ("held") nodes: the properties users rely on are
 * that a call whose node stays silent is sent, byte for byte (same
 * idempotency key), to the next node, that the first final answer wins and
 * the other attempt is cancelled (RST_STREAM on the real transport), that
 * the hedged attempt's late answer still wins if it comes first, that the
 * retries of the hedge never go back to the silent node (nor does a
 * follower's UNAUTHENTICATED redirect send them there), that at most one
 * hedge runs at a time, that pinned calls, Auth calls and hedge_ms = 0
 * never hedge, and that hedge_ms is bounded in the config.  Outcomes
 * depend only on the order of events (a held call never answers by
 * itself), never on a clock: the waits below only give a hedge that must
 * NOT happen the time to show itself. */
#include <string.h>

#include "check.h"
#include "fake_transport.h"
#include "kyufu.h"

static const char *const EPS[] = { "10.0.0.1:8001", "10.0.0.2:8002",
                                   "10.0.0.3:8003" };

#define HEDGE_MS 50u
#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct t
{
    uv_loop_t loop;
    struct fake f;
    struct kyufu_client *c;
    struct kyufu_client_req req;
    bool done;
    int rv;
};

static void on_done(struct kyufu_client_req *req, int status)
{
    struct t *t = req->data;
    t->done = true;
    t->rv = status;
}

static void open_t(struct t *t, uint32_t hedge_ms)
{
    memset(t, 0, sizeof *t);
    CHECK(uv_loop_init(&t->loop) == 0);
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    for (unsigned i = 0; i < 3; i++) {
        cfg.endpoints[i] = strdup(EPS[i]);
    }
    cfg.n_endpoints = 3;
    cfg.ca_file = strdup("/nonexistent/ca.pem"); /* never read by the fake */
    cfg.actor = strdup("clerk1");
    cfg.deadline_ms = 600000; /* never reached */
    cfg.attempt_ms = 600000;  /* a held call is never timed out */
    cfg.backoff_ms_initial = 0;
    cfg.backoff_ms_max = 0;
    cfg.hedge_ms = hedge_ms;
    char err[256] = "";
    int rv = client__create_with(&cfg, &t->loop, fake_factory, &t->f, &t->c, err,
                                 sizeof err);
    if (rv != 0) {
        fprintf(stderr, "create: %s\n", err);
    }
    CHECK(rv == 0);
    kyufu_client_config_free(&cfg);
}

static void on_closed(struct kyufu_client *c, void *arg)
{
    (void)c;
    *(bool *)arg = true;
}

static void close_t(struct t *t)
{
    bool closed = false;
    kyufu_client_close(t->c, on_closed, &closed);
    while (!closed) {
        uv_run(&t->loop, UV_RUN_ONCE);
    }
    uv_run(&t->loop, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&t->loop) == 0); /* every handle closed */
    fake_reset_log(&t->f);
}

static void submit_async(struct t *t, const struct kyufu_client_call_opts *opts)
{
    Kyufu__V1__SubmitApplicationRequest req = KYUFU__V1__SUBMIT_APPLICATION_REQUEST__INIT;
    Kyufu__V1__SubmitApplication cmd = KYUFU__V1__SUBMIT_APPLICATION__INIT;
    cmd.program_code = "P2026";
    cmd.household_no = "H-1";
    req.command = &cmd;
    t->done = false;
    t->req = (struct kyufu_client_req){ .data = t };
    CHECK_EQ_INT(kyufu_client_call_async(t->c, &t->req, "SubmitApplication", &req.base,
                                         &kyufu__v1__write_response__descriptor, opts,
                                         on_done),
                 0);
}

static void run_until_done(struct t *t)
{
    while (!t->done) {
        uv_run(&t->loop, UV_RUN_ONCE);
    }
}

static void on_wait(uv_timer_t *timer)
{
    *(bool *)timer->data = true;
}

/* Run the loop for ms of loop time: long enough for a hedge of HEDGE_MS
 * that should not happen to happen. */
static void run_for(struct t *t, uint64_t ms)
{
    uv_timer_t timer;
    bool fired = false;
    CHECK(uv_timer_init(&t->loop, &timer) == 0);
    timer.data = &fired;
    uv_timer_start(&timer, on_wait, ms, 0);
    while (!fired) {
        uv_run(&t->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

static bool same_body(const struct fake_log *a, const struct fake_log *b)
{
    return a->len == b->len && memcmp(a->body, b->body, a->len) == 0;
}

static uint64_t raft_index(const struct kyufu_client_result *r)
{
    const Kyufu__V1__WriteResponse *w = (const void *)r->response;
    CHECK(w != NULL && w->result != NULL);
    return w->result->raft_index;
}

static Kyufu__V1__WriteResponse ok_resp[3];
static Kyufu__V1__CommandResult ok_cr[3];

static const ProtobufCMessage *ok(unsigned i)
{
    kyufu__v1__write_response__init(&ok_resp[i]);
    kyufu__v1__command_result__init(&ok_cr[i]);
    ok_cr[i].raft_index = 100 + i;
    ok_resp[i].result = &ok_cr[i];
    return &ok_resp[i].base;
}

static void test_silent_leader(void)
{
    struct t t;
    open_t(&t, HEDGE_MS);
    /* Node 1 is silent (SIGSTOPped leader); node 2 answers. */
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(0) });
    fake_push(&t.f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = ok(1) });
    submit_async(&t, NULL);
    run_until_done(&t);
    CHECK_EQ_INT(t.rv, 0);
    CHECK_EQ_INT(t.req.result.grpc_status, KYUFU_GRPC_OK);
    CHECK_EQ_INT(t.req.result.endpoint, 1);
    CHECK_EQ_INT(t.req.result.attempts, 2);
    CHECK_EQ_INT(raft_index(&t.req.result), 101);
    CHECK_EQ_INT(t.f.n_log, 2);
    CHECK_EQ_INT(t.f.log[0].endpoint, 0);
    CHECK_EQ_INT(t.f.log[1].endpoint, 1);
    CHECK(same_body(&t.f.log[0], &t.f.log[1])); /* same idempotency key */
    CHECK(t.f.log[0].cancelled);                 /* the loser is reset */
    CHECK_EQ_INT(t.f.cancels, 1);
    CHECK_EQ_INT(t.f.n_held, 0);
    kyufu_client_response_free(t.req.result.response);

    /* The node that answered is the leader for the next call. */
    fake_push(&t.f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = ok(2) });
    submit_async(&t, NULL);
    run_until_done(&t);
    CHECK_EQ_INT(t.req.result.endpoint, 1);
    CHECK_EQ_INT(t.f.n_log, 3);
    CHECK_EQ_INT(t.f.log[2].endpoint, 1);
    CHECK(!same_body(&t.f.log[0], &t.f.log[2])); /* a new write, a new key */
    kyufu_client_response_free(t.req.result.response);
    close_t(&t);
}

static void test_straggler_wins(void)
{
    struct t t;
    open_t(&t, HEDGE_MS);
    /* Both silent; then the first one (a slow, not dead, leader) answers. */
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(0) });
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(1) });
    submit_async(&t, NULL);
    while (t.f.n_log < 2) {
        uv_run(&t.loop, UV_RUN_ONCE);
    }
    CHECK(!t.done);
    CHECK(fake_release(&t.f, 0));
    run_until_done(&t);
    CHECK_EQ_INT(t.rv, 0);
    CHECK_EQ_INT(t.req.result.grpc_status, KYUFU_GRPC_OK);
    CHECK_EQ_INT(t.req.result.endpoint, 0);
    CHECK_EQ_INT(raft_index(&t.req.result), 100);
    CHECK(same_body(&t.f.log[0], &t.f.log[1]));
    CHECK(t.f.log[1].cancelled);
    CHECK_EQ_INT(t.f.cancels, 1);
    CHECK(!fake_release(&t.f, 1)); /* cancelled, not held any more */
    kyufu_client_response_free(t.req.result.response);
    close_t(&t);
}

static void test_hedge_avoids_silent_node(void)
{
    struct t t;
    open_t(&t, HEDGE_MS);
    /* Node 1 silent; node 2 has not noticed and names node 1 as leader;
     * node 3 (the new leader) answers.  Node 1 is never asked twice. */
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(0) });
    fake_push(&t.f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                         .leader = EPS[0], .message = "not leader" });
    fake_push(&t.f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = ok(2) });
    submit_async(&t, NULL);
    run_until_done(&t);
    CHECK_EQ_INT(t.rv, 0);
    CHECK_EQ_INT(t.req.result.grpc_status, KYUFU_GRPC_OK);
    CHECK_EQ_INT(t.req.result.endpoint, 2);
    CHECK_EQ_INT(t.f.n_log, 3);
    CHECK_EQ_INT(t.f.log[0].endpoint, 0);
    CHECK_EQ_INT(t.f.log[1].endpoint, 1);
    CHECK_EQ_INT(t.f.log[2].endpoint, 2);
    CHECK(same_body(&t.f.log[0], &t.f.log[2]));
    CHECK(t.f.log[0].cancelled);
    kyufu_client_response_free(t.req.result.response);
    close_t(&t);
}

static void test_auth_redirect_avoids_silent_node(void)
{
    struct t t;
    open_t(&t, HEDGE_MS);
    CHECK_EQ_INT(kyufu_client_set_token(t.c, TOKEN), 0);
    /* Node 1 silent; node 2 has not applied the session yet and names
     * node 1 as the leader that knows it: not a second copy to node 1,
     * the call waits for the hedged attempt there. */
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(0) });
    fake_push(&t.f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                         .leader = EPS[0], .message = "unknown session" });
    submit_async(&t, NULL);
    run_for(&t, 6 * HEDGE_MS);
    CHECK(!t.done);
    CHECK_EQ_INT(t.f.n_log, 2);
    CHECK_EQ_INT(t.f.log[1].endpoint, 1);
    CHECK(fake_release(&t.f, 0));
    run_until_done(&t);
    CHECK_EQ_INT(t.rv, 0);
    CHECK_EQ_INT(t.req.result.grpc_status, KYUFU_GRPC_OK);
    CHECK_EQ_INT(t.req.result.endpoint, 0);
    CHECK_EQ_INT(raft_index(&t.req.result), 100);
    CHECK_EQ_INT(t.f.n_log, 2);
    kyufu_client_response_free(t.req.result.response);
    close_t(&t);
}

static void test_one_hedge_at_a_time(void)
{
    struct t t;
    open_t(&t, HEDGE_MS);
    /* Every node silent: one hedge, never a third attempt in parallel. */
    for (unsigned i = 0; i < 3; i++) {
        fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                             .response = ok(i) });
    }
    submit_async(&t, NULL);
    run_for(&t, 6 * HEDGE_MS);
    CHECK(!t.done);
    CHECK_EQ_INT(t.f.n_log, 2);
    CHECK_EQ_INT(t.f.n_held, 2);
    /* Closing cancels both; the call completes once. */
    bool closed = false;
    kyufu_client_close(t.c, on_closed, &closed);
    while (!closed) {
        uv_run(&t.loop, UV_RUN_ONCE);
    }
    CHECK(t.done);
    CHECK_EQ_INT(t.rv, KYUFU_CLIENT_ECANCELED);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&t.loop) == 0);
    fake_reset_log(&t.f);
}

static void test_no_hedge(void)
{
    /* hedge_ms = 0: off. */
    struct t t;
    open_t(&t, 0);
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(0) });
    submit_async(&t, NULL);
    run_for(&t, 4 * HEDGE_MS);
    CHECK_EQ_INT(t.f.n_log, 1);
    CHECK(fake_release(&t.f, 0));
    run_until_done(&t);
    CHECK_EQ_INT(t.req.result.endpoint, 0);
    kyufu_client_response_free(t.req.result.response);
    close_t(&t);

    /* A call pinned to one node is never hedged. */
    open_t(&t, HEDGE_MS);
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK,
                                         .response = ok(0) });
    struct kyufu_client_call_opts opts = { .endpoint = 2 };
    submit_async(&t, &opts);
    run_for(&t, 4 * HEDGE_MS);
    CHECK_EQ_INT(t.f.n_log, 1);
    CHECK_EQ_INT(t.f.log[0].endpoint, 2);
    close_t(&t);
    CHECK(t.done && t.rv == KYUFU_CLIENT_ECANCELED);

    /* Nor an Auth call (not idempotent: sent once per node). */
    open_t(&t, HEDGE_MS);
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK });
    Kyufu__V1__SignInRequest si = KYUFU__V1__SIGN_IN_REQUEST__INIT;
    si.staff_id = "clerk1";
    si.password = "pw";
    si.totp_code = "";
    t.req = (struct kyufu_client_req){ .data = &t };
    CHECK_EQ_INT(kyufu_client_call_async(t.c, &t.req, "SignIn", &si.base, NULL, NULL,
                                         on_done),
                 0);
    run_for(&t, 4 * HEDGE_MS);
    CHECK_EQ_INT(t.f.n_log, 1);
    close_t(&t);
    CHECK(t.done && t.rv == KYUFU_CLIENT_ECANCELED);

    /* Nor a Cluster call: a second AddNode forwarded to the leader would
     * be refused as "another membership change is running" (seen in CI
     * when an AddNode took longer than hedge_ms under ASan). */
    open_t(&t, HEDGE_MS);
    fake_push(&t.f, (struct fake_reply){ .held = true, .status = KYUFU_GRPC_OK });
    Kyufu__V1__TransferLeadershipRequest tl =
        KYUFU__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
    t.req = (struct kyufu_client_req){ .data = &t };
    CHECK_EQ_INT(kyufu_client_call_async(t.c, &t.req, "TransferLeadership",
                                         &tl.base, NULL, NULL, on_done),
                 0);
    run_for(&t, 4 * HEDGE_MS);
    CHECK_EQ_INT(t.f.n_log, 1);
    close_t(&t);
    CHECK(t.done && t.rv == KYUFU_CLIENT_ECANCELED);
}

static void test_config(void)
{
    struct kyufu_client_config cfg;
    char err[256];
    kyufu_client_config_init(&cfg);
    CHECK_EQ_INT(cfg.hedge_ms, KYUFU_CLIENT_HEDGE_MS_DEFAULT);
    CHECK(KYUFU_CLIENT_HEDGE_MS_DEFAULT < KYUFU_CLIENT_ATTEMPT_MS_DEFAULT);
    cfg.endpoints[0] = strdup(EPS[0]);
    cfg.n_endpoints = 1;
    cfg.ca_file = strdup("/x/ca.pem");
    CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err), 0);
    const uint32_t bad[] = { 1, KYUFU_CLIENT_HEDGE_MS_MIN - 1,
                             KYUFU_CLIENT_DEADLINE_MS_MAX + 1 };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.hedge_ms = bad[i];
        err[0] = '\0';
        CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err),
                     KYUFU_CLIENT_ECONFIG);
        CHECK(strstr(err, "hedge_ms") != NULL);
    }
    cfg.hedge_ms = 0;
    CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err), 0);
    cfg.hedge_ms = KYUFU_CLIENT_HEDGE_MS_MIN;
    CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err), 0);
    kyufu_client_config_free(&cfg);

    /* The INI key: a number of ms; garbage is refused. */
    kyufu_client_config_init(&cfg);
    CHECK_EQ_INT(kyufu_client_config_parse(&cfg, "[client]\nhedge_ms = 0\n", err,
                                           sizeof err),
                 0);
    CHECK_EQ_INT(cfg.hedge_ms, 0);
    CHECK_EQ_INT(kyufu_client_config_parse(&cfg, "[client]\nhedge_ms = 900\n", err,
                                           sizeof err),
                 0);
    CHECK_EQ_INT(cfg.hedge_ms, 900);
    const char *const hostile[] = { "[client]\nhedge_ms = soon\n",
                                    "[client]\nhedge_ms = -5\n",
                                    "[client]\nhedge_ms = 99999999999\n" };
    for (unsigned i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        kyufu_client_config_free(&cfg);
        kyufu_client_config_init(&cfg);
        CHECK(kyufu_client_config_parse(&cfg, hostile[i], err, sizeof err) != 0);
        CHECK_EQ_INT(cfg.hedge_ms, KYUFU_CLIENT_HEDGE_MS_DEFAULT); /* unchanged */
    }
    kyufu_client_config_free(&cfg);
}

int main(void)
{
    test_config();
    test_silent_leader();
    test_straggler_wins();
    test_hedge_avoids_silent_node();
    test_auth_redirect_avoids_silent_node();
    test_one_hedge_at_a_time();
    test_no_hedge();
    printf("client-hedge: ok\n");
    return 0;
}
