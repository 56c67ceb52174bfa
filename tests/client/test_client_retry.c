/* libkyufu's leader following and retries, on a scripted transport: the
 * properties users rely on are that a write is re-sent byte for byte (same
 * idempotency key) on every attempt, that the sequence grows once per new
 * write and never per retry, that a named leader is tried next and
 * remembered, that a ledger rejection is final, that a call pinned to one
 * endpoint is never moved, that sessions persisted in a file never reuse a
 * key, and that closing cancels calls in flight and leaves the loop clean;
 * and for failover: that a leader named by any node is tried at once (no
 * wait), that waits while no leader is known are jittered within
 * [backoff_ms_initial, backoff_ms_max] and rotate over the nodes, that a
 * seed replays them, that the overall deadline bounds the waits and every
 * attempt, and that kyufu_client_call_each asks every node at once.
 * Waits are observed as the client schedules them (client__testing), never
 * by reading a clock. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fake_transport.h"
#include "kyufu.h"

static const char *const EPS[] = { "10.0.0.1:8001", "10.0.0.2:8002",
                                   "10.0.0.3:8003" };

static void config(struct kyufu_client_config *cfg)
{
    kyufu_client_config_init(cfg);
    for (unsigned i = 0; i < 3; i++) {
        cfg->endpoints[i] = strdup(EPS[i]);
    }
    cfg->n_endpoints = 3;
    cfg->ca_file = strdup("/nonexistent/ca.pem"); /* never read by the fake */
    cfg->actor = strdup("clerk1");
    cfg->terminal = strdup("T-7");
    cfg->deadline_ms = 600000; /* never reached: no test depends on time */
    cfg->backoff_ms_initial = 0;
    cfg->backoff_ms_max = 0;
}

static struct kyufu_client *open_client(struct fake *f,
                                        struct kyufu_client_config *cfg)
{
    struct kyufu_client *c = NULL;
    char err[256] = "";
    int rv = client__create_with(cfg, NULL, fake_factory, f, &c, err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "create: %s\n", err);
    }
    CHECK(rv == 0 && c != NULL);
    return c;
}

static Kyufu__V1__SubmitApplicationRequest *decode_submit(const struct fake_log *l)
{
    return kyufu__v1__submit_application_request__unpack(NULL, l->len, l->body);
}

static void submit(struct kyufu_client *c, struct kyufu_client_result *res, int want_rv)
{
    Kyufu__V1__SubmitApplicationRequest req = KYUFU__V1__SUBMIT_APPLICATION_REQUEST__INIT;
    Kyufu__V1__SubmitApplication cmd = KYUFU__V1__SUBMIT_APPLICATION__INIT;
    cmd.program_code = "P2026";
    cmd.household_no = "H-1";
    req.command = &cmd;
    int rv = kyufu_client_call(c, "SubmitApplication", &req.base,
                               &kyufu__v1__write_response__descriptor, NULL, res);
    CHECK_EQ_INT(rv, want_rv);
    CHECK(req.header == NULL); /* the caller's message is untouched */
}

static void test_redirect_and_key_reuse(void)
{
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    struct kyufu_client *c = open_client(&f, &cfg);
    kyufu_client_config_free(&cfg);

    Kyufu__V1__WriteResponse ok = KYUFU__V1__WRITE_RESPONSE__INIT;
    Kyufu__V1__CommandResult cr = KYUFU__V1__COMMAND_RESULT__INIT;
    cr.object = "application/1";
    cr.raft_index = 42;
    ok.result = &cr;

    /* Node 1 is not the leader and says node 3 is; node 3 answers. */
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                       .leader = EPS[2], .message = "not leader" });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    struct kyufu_client_result res;
    submit(c, &res, 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_OK);
    CHECK_EQ_INT(res.attempts, 2);
    CHECK_EQ_INT(res.endpoint, 2);
    CHECK_EQ_INT(f.n_log, 2);
    CHECK_EQ_INT(f.log[0].endpoint, 0);
    CHECK_EQ_INT(f.log[1].endpoint, 2);
    CHECK(strcmp(f.log[0].path, "/kyufu.v1.Ledger/SubmitApplication") == 0);
    CHECK(f.log[0].len == f.log[1].len &&
          memcmp(f.log[0].body, f.log[1].body, f.log[0].len) == 0);
    Kyufu__V1__SubmitApplicationRequest *sent = decode_submit(&f.log[0]);
    CHECK(sent != NULL && sent->header != NULL && sent->header->key != NULL);
    CHECK(strcmp(sent->header->key->client_id, kyufu_client_id(c)) == 0);
    CHECK(strncmp(kyufu_client_id(c), "c-", 2) == 0 && strlen(kyufu_client_id(c)) == 34);
    CHECK_EQ_INT(sent->header->key->sequence, 1);
    CHECK(strcmp(sent->header->actor, "clerk1") == 0);
    CHECK(strcmp(sent->header->terminal, "T-7") == 0);
    kyufu__v1__submit_application_request__free_unpacked(sent, NULL);
    Kyufu__V1__WriteResponse *got = (Kyufu__V1__WriteResponse *)res.response;
    CHECK(got != NULL && got->result != NULL && got->result->raft_index == 42);
    kyufu_client_response_free(res.response);

    /* The next write goes straight to the learned leader with sequence 2;
     * it fails on the connection, then times out on node 1, then node 2
     * answers: three attempts, one key. */
    fake_reset_log(&f);
    fake_push(&f, (struct fake_reply){ .err = KYUFU_CLIENT_EUNAVAILABLE });
    fake_push(&f, (struct fake_reply){ .err = KYUFU_CLIENT_EDEADLINE });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    submit(c, &res, 0);
    CHECK_EQ_INT(res.attempts, 3);
    CHECK_EQ_INT(f.n_log, 3);
    CHECK_EQ_INT(f.log[0].endpoint, 2);
    CHECK_EQ_INT(f.log[1].endpoint, 0);
    CHECK_EQ_INT(f.log[2].endpoint, 1);
    for (unsigned i = 1; i < 3; i++) {
        CHECK(f.log[i].len == f.log[0].len &&
              memcmp(f.log[i].body, f.log[0].body, f.log[0].len) == 0);
    }
    sent = decode_submit(&f.log[2]);
    CHECK_EQ_INT(sent->header->key->sequence, 2);
    kyufu__v1__submit_application_request__free_unpacked(sent, NULL);
    kyufu_client_response_free(res.response);

    /* A ledger rejection is final: one attempt, status passed through. */
    fake_reset_log(&f);
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_FAILED_PRECONDITION,
                                       .message = "program is closed" });
    submit(c, &res, 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_FAILED_PRECONDITION);
    CHECK_EQ_INT(res.attempts, 1);
    CHECK(res.response == NULL);
    CHECK(strcmp(res.message, "program is closed") == 0);
    CHECK_EQ_INT(f.log[0].endpoint, 1); /* node 2 answered last time */

    /* A caller-supplied key is kept as is (a retry across processes). */
    fake_reset_log(&f);
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    Kyufu__V1__ApproveApplicationRequest ap = KYUFU__V1__APPROVE_APPLICATION_REQUEST__INIT;
    Kyufu__V1__ApproveApplication apc = KYUFU__V1__APPROVE_APPLICATION__INIT;
    Kyufu__V1__RequestHeader hdr;
    Kyufu__V1__IdempotencyKey key;
    CHECK(kyufu_client_header_init(c, &hdr, &key, "approver9") == 0);
    CHECK_EQ_INT(key.sequence, 4);
    key.client_id = "c-old";
    key.sequence = 77;
    ap.header = &hdr;
    apc.id = 1;
    ap.command = &apc;
    CHECK(kyufu_client_call(c, "/kyufu.v1.Ledger/ApproveApplication", &ap.base,
                            NULL, NULL, &res) == 0);
    Kyufu__V1__ApproveApplicationRequest *sa =
        kyufu__v1__approve_application_request__unpack(NULL, f.log[0].len, f.log[0].body);
    CHECK(strcmp(sa->header->key->client_id, "c-old") == 0);
    CHECK_EQ_INT(sa->header->key->sequence, 77);
    CHECK(strcmp(sa->header->actor, "approver9") == 0);
    kyufu__v1__approve_application_request__free_unpacked(sa, NULL);
    kyufu_client_response_free(res.response);

    /* Wrong request type, unknown method: refused up front. */
    Kyufu__V1__GetProgramRequest gp = KYUFU__V1__GET_PROGRAM_REQUEST__INIT;
    CHECK_EQ_INT(kyufu_client_call(c, "ApproveApplication", &gp.base, NULL, NULL, &res),
                 KYUFU_CLIENT_EINVALID);
    CHECK_EQ_INT(kyufu_client_call(c, "NoSuchMethod", &gp.base, NULL, NULL, &res),
                 KYUFU_CLIENT_EUNKNOWN_METHOD);
    CHECK_EQ_INT(f.n_log, 1); /* neither reached the transport */
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* Unavailable everywhere: the call rotates through the endpoints and gives
 * up with EUNAVAILABLE after the attempt cap, the last status in result. */
static void test_all_unavailable(void)
{
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    struct kyufu_client *c = open_client(&f, &cfg);
    kyufu_client_config_free(&cfg);
    struct kyufu_client_result res;
    submit(c, &res, KYUFU_CLIENT_EUNAVAILABLE); /* script empty: all fail */
    CHECK_EQ_INT(res.attempts, KYUFU_CLIENT_ATTEMPTS_MAX);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_UNAVAILABLE);
    for (unsigned i = 0; i < f.n_log; i++) {
        CHECK_EQ_INT(f.log[i].endpoint, i % 3);
        CHECK(memcmp(f.log[i].body, f.log[0].body, f.log[0].len) == 0);
    }
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* Stale hints must not make two nodes bounce a call without backoff
 * forever: a redirect back to a node of the same chain waits, and reads
 * (no key) are retried too. */
static void test_redirect_pinned_and_reads(void)
{
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    struct kyufu_client *c = open_client(&f, &cfg);
    kyufu_client_config_free(&cfg);
    Kyufu__V1__Program prog = KYUFU__V1__PROGRAM__INIT;
    prog.code = "P2026";
    prog.budget = 1000;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE, .leader = EPS[1] });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE, .leader = EPS[0] });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &prog.base });
    Kyufu__V1__GetProgramRequest gp = KYUFU__V1__GET_PROGRAM_REQUEST__INIT;
    gp.code = "P2026";
    struct kyufu_client_result res;
    CHECK(kyufu_client_call(c, "GetProgram", &gp.base, &kyufu__v1__program__descriptor,
                            NULL, &res) == 0);
    CHECK_EQ_INT(res.attempts, 3);
    CHECK_EQ_INT(f.log[0].endpoint, 0);
    CHECK_EQ_INT(f.log[1].endpoint, 1);
    CHECK_EQ_INT(f.log[2].endpoint, 0); /* hint taken, but after a backoff */
    Kyufu__V1__Program *p = (Kyufu__V1__Program *)res.response;
    CHECK(p != NULL && strcmp(p->code, "P2026") == 0 && p->budget == 1000);
    kyufu_client_response_free(res.response);

    /* Pinned to endpoint 2: never moved, never retried. */
    fake_reset_log(&f);
    fake_push(&f, (struct fake_reply){ .err = KYUFU_CLIENT_EUNAVAILABLE });
    Kyufu__V1__StatusRequest st = KYUFU__V1__STATUS_REQUEST__INIT;
    struct kyufu_client_call_opts opts = { .endpoint = 2 };
    CHECK_EQ_INT(kyufu_client_call(c, "Status", &st.base, NULL, &opts, &res),
                 KYUFU_CLIENT_EUNAVAILABLE);
    CHECK_EQ_INT(f.n_log, 1);
    CHECK_EQ_INT(f.log[0].endpoint, 2);
    CHECK(strcmp(f.log[0].path, "/kyufu.v1.Cluster/Status") == 0);
    opts.endpoint = 3;
    CHECK_EQ_INT(kyufu_client_call(c, "Status", &st.base, NULL, &opts, &res),
                 KYUFU_CLIENT_EINVALID);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* A session file carries the client id and the sequence across client
 * objects (processes): keys are never reused. */
static void test_session_file(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/session", dir);
    uint64_t last = 0;
    char id[80] = "";
    for (int round = 0; round < 3; round++) {
        struct fake f = { 0 };
        struct kyufu_client_config cfg;
        config(&cfg);
        cfg.session_file = strdup(path);
        struct kyufu_client *c = open_client(&f, &cfg);
        kyufu_client_config_free(&cfg);
        if (round == 0) {
            snprintf(id, sizeof id, "%s", kyufu_client_id(c));
        } else {
            CHECK(strcmp(id, kyufu_client_id(c)) == 0);
        }
        for (int i = 0; i < 5; i++) {
            Kyufu__V1__IdempotencyKey key;
            CHECK(kyufu_client_key_next(c, &key) == 0);
            CHECK(key.sequence > last);
            last = key.sequence;
        }
        kyufu_client_destroy(c);
    }
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);

    /* A fixed id that disagrees with the file is refused. */
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    cfg.session_file = strdup(path);
    cfg.client_id = strdup("someone-else");
    struct kyufu_client *c = NULL;
    char err[256];
    CHECK_EQ_INT(client__create_with(&cfg, NULL, fake_factory, &f, &c, err, sizeof err),
                 KYUFU_CLIENT_ECONFIG);
    CHECK(strstr(err, "someone-else") != NULL);
    /* A fixed id without a session file is refused too. */
    free(cfg.session_file);
    cfg.session_file = NULL;
    CHECK_EQ_INT(client__create_with(&cfg, NULL, fake_factory, &f, &c, err, sizeof err),
                 KYUFU_CLIENT_ECONFIG);
    kyufu_client_config_free(&cfg);
}

/* Asynchronous use on the caller's loop; closing cancels calls in flight
 * and the loop closes cleanly. */
struct async_state
{
    int done;
    int last_rv;
    bool closed;
};

static void on_call(struct kyufu_client_req *req, int status)
{
    struct async_state *st = req->data;
    st->done++;
    st->last_rv = status;
}

static void on_close(struct kyufu_client *c, void *arg)
{
    (void)c;
    ((struct async_state *)arg)->closed = true;
}

static void test_async_close(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    struct kyufu_client *c = NULL;
    CHECK(client__create_with(&cfg, &loop, fake_factory, &f, &c, NULL, 0) == 0);
    kyufu_client_config_free(&cfg);
    struct async_state st = { 0 };
    struct kyufu_client_req reqs[4];
    Kyufu__V1__GetStaffRequest gs = KYUFU__V1__GET_STAFF_REQUEST__INIT;
    for (int i = 0; i < 4; i++) {
        reqs[i].data = &st;
        CHECK(kyufu_client_call_async(c, &reqs[i], "GetStaff", &gs.base, NULL,
                                      NULL, on_call) == 0);
    }
    CHECK_EQ_INT(st.done, 0); /* never from inside call_async */
    kyufu_client_close(c, on_close, &st);
    CHECK(!st.closed);
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK_EQ_INT(st.done, 4);
    CHECK_EQ_INT(st.last_rv, KYUFU_CLIENT_ECANCELED);
    CHECK(st.closed);
    CHECK(uv_loop_close(&loop) == 0);
    fake_reset_log(&f);
}

/* Settling: the request names the write's own key, never a new one; the
 * session's sequence does not move; retries re-send the same bytes; no key
 * is EINVALID before anything is sent. */
static void test_settle(void)
{
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    struct kyufu_client *c = open_client(&f, &cfg);
    kyufu_client_config_free(&cfg);

    Kyufu__V1__SettleWriteResponse ok = KYUFU__V1__SETTLE_WRITE_RESPONSE__INIT;
    Kyufu__V1__CommandResult cr = KYUFU__V1__COMMAND_RESULT__INIT;
    cr.code = KYUFU__V1__CODE__ABORTED;
    cr.raft_index = 77;
    ok.outcome = KYUFU__V1__WRITE_OUTCOME__WRITE_NOT_APPLIED;
    ok.result = &cr;
    fake_push(&f, (struct fake_reply){ .err = KYUFU_CLIENT_EUNAVAILABLE });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    key.client_id = "fe-1";
    key.sequence = 17;
    struct kyufu_client_result res;
    CHECK_EQ_INT(kyufu_client_settle_write(c, &key, NULL, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_OK);
    CHECK_EQ_INT(res.attempts, 2);
    CHECK_EQ_INT(f.n_log, 2);
    CHECK(strcmp(f.log[0].path, "/kyufu.v1.Ledger/SettleWrite") == 0);
    CHECK(f.log[0].len == f.log[1].len &&
          memcmp(f.log[0].body, f.log[1].body, f.log[0].len) == 0);
    Kyufu__V1__SettleWriteRequest *sent =
        kyufu__v1__settle_write_request__unpack(NULL, f.log[0].len, f.log[0].body);
    CHECK(sent != NULL && sent->header != NULL && sent->header->key != NULL);
    CHECK(strcmp(sent->header->key->client_id, "fe-1") == 0);
    CHECK_EQ_INT(sent->header->key->sequence, 17);
    CHECK(strcmp(sent->header->actor, "clerk1") == 0); /* the config's */
    kyufu__v1__settle_write_request__free_unpacked(sent, NULL);
    Kyufu__V1__SettleWriteResponse *got = (Kyufu__V1__SettleWriteResponse *)res.response;
    CHECK(got != NULL && got->outcome == KYUFU__V1__WRITE_OUTCOME__WRITE_NOT_APPLIED);
    CHECK(got->result != NULL && got->result->raft_index == 77);
    kyufu_client_response_free(res.response);

    /* No key, no call: neither through the helper nor the generic call. */
    fake_reset_log(&f);
    Kyufu__V1__IdempotencyKey none = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    none.client_id = "fe-1";
    CHECK_EQ_INT(kyufu_client_settle_write(c, &none, NULL, NULL, &res),
                 KYUFU_CLIENT_EINVALID);
    CHECK_EQ_INT(kyufu_client_settle_write(c, NULL, NULL, NULL, &res),
                 KYUFU_CLIENT_EINVALID);
    Kyufu__V1__SettleWriteRequest bare = KYUFU__V1__SETTLE_WRITE_REQUEST__INIT;
    CHECK_EQ_INT(kyufu_client_call(c, "SettleWrite", &bare.base, NULL, NULL, &res),
                 KYUFU_CLIENT_EINVALID);
    CHECK_EQ_INT(f.n_log, 0);

    /* The session's own sequence was not used by any of it. */
    Kyufu__V1__IdempotencyKey next = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    CHECK_EQ_INT(kyufu_client_key_next(c, &next), 0);
    CHECK_EQ_INT(next.sequence, 1);
    kyufu_client_destroy(c);
}

/* ---- failover: waits, hints, deadline (jitter seeded) */

struct trace
{
    unsigned n;
    unsigned endpoint[FAKE_MAX];
    uint32_t wait_ms[FAKE_MAX];
};

static void on_trace(void *arg, unsigned endpoint, uint32_t wait_ms)
{
    struct trace *t = arg;
    CHECK(t->n < FAKE_MAX);
    t->endpoint[t->n] = endpoint;
    t->wait_ms[t->n] = wait_ms;
    t->n++;
}

/* A client with the default backoff (10..250 ms), a seeded jitter source
 * and a trace of its retry decisions. */
static struct kyufu_client *open_traced(struct fake *f, struct trace *t,
                                        uint64_t seed, uint32_t deadline_ms)
{
    struct kyufu_client_config cfg;
    config(&cfg);
    cfg.backoff_ms_initial = KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT;
    cfg.backoff_ms_max = KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT;
    cfg.deadline_ms = deadline_ms;
    struct kyufu_client *c = open_client(f, &cfg);
    kyufu_client_config_free(&cfg);
    memset(t, 0, sizeof *t);
    client__testing(c, seed, on_trace, t);
    return c;
}

/* The leader's death as a client sees it: its node refuses, the others
 * know no leader yet (election), then one names the new leader.  Waits
 * while no leader is known are jittered in [10, 250] ms and rotate over
 * the nodes; the named leader is tried at once; the same seed replays the
 * same waits; another seed does not. */
static void election_script(struct fake *f, const Kyufu__V1__WriteResponse *ok)
{
    fake_push(f, (struct fake_reply){ .err = KYUFU_CLIENT_EUNAVAILABLE,
                                      .message = "connection refused" });
    for (int i = 0; i < 6; i++) {
        fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                          .message = "no leader known yet" });
    }
    fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                      .leader = EPS[2],
                                      .message = "not the leader" });
    fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok->base });
}

static void test_election_waits_and_hint(void)
{
    Kyufu__V1__WriteResponse ok = KYUFU__V1__WRITE_RESPONSE__INIT;
    uint32_t first[FAKE_MAX];
    unsigned first_n = 0;
    for (int round = 0; round < 3; round++) {
        struct fake f = { 0 };
        struct trace t;
        /* rounds 0 and 1: same seed; round 2: another */
        struct kyufu_client *c = open_traced(&f, &t, round < 2 ? 1234 : 999, 600000);
        election_script(&f, &ok);
        struct kyufu_client_result res;
        submit(c, &res, 0);
        CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_OK);
        CHECK_EQ_INT(res.attempts, 9);
        CHECK_EQ_INT(res.endpoint, 2);
        CHECK_EQ_INT(t.n, 8);
        uint32_t sum = 0;
        /* The dead node refused: the next one at once.  Then six answers
         * "no leader": the next node in turn, after a wait each. */
        CHECK_EQ_INT(f.log[0].endpoint, 0);
        CHECK_EQ_INT(t.endpoint[0], 1);
        CHECK_EQ_INT(t.wait_ms[0], 0);
        for (unsigned i = 1; i < 7; i++) {
            CHECK_EQ_INT(f.log[i].endpoint, i % 3);
            CHECK_EQ_INT(t.endpoint[i], (i + 1) % 3);
            CHECK(t.wait_ms[i] >= KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT);
            CHECK(t.wait_ms[i] <= KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT);
            CHECK(i > 1 || t.wait_ms[1] <= 3 * KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT);
            sum += t.wait_ms[i];
        }
        /* Attempt 8 (on node 2 = index 1) names node 3: straight there. */
        CHECK_EQ_INT(f.log[7].endpoint, 1);
        CHECK_EQ_INT(t.endpoint[7], 2);
        CHECK_EQ_INT(t.wait_ms[7], 0);
        CHECK_EQ_INT(f.log[8].endpoint, 2);
        CHECK_EQ_INT(res.waited_ms, sum);
        for (unsigned i = 1; i < f.n_log; i++) { /* one key throughout */
            CHECK(f.log[i].len == f.log[0].len &&
                  memcmp(f.log[i].body, f.log[0].body, f.log[0].len) == 0);
        }
        if (round == 0) {
            memcpy(first, t.wait_ms, sizeof first);
            first_n = t.n;
        } else if (round == 1) {
            CHECK(t.n == first_n && memcmp(first, t.wait_ms, t.n * sizeof first[0]) == 0);
        } else {
            CHECK(memcmp(first + 1, t.wait_ms + 1, 6 * sizeof first[0]) != 0);
        }
        kyufu_client_response_free(res.response);
        /* The next call goes straight to the leader it learnt. */
        fake_reset_log(&f);
        fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
        submit(c, &res, 0);
        CHECK_EQ_INT(res.attempts, 1);
        CHECK_EQ_INT(f.log[0].endpoint, 2);
        CHECK_EQ_INT(res.waited_ms, 0);
        kyufu_client_response_free(res.response);
        kyufu_client_destroy(c);
        fake_reset_log(&f);
    }
}

/* A hint is followed at once whatever the failure that carries it
 * (UNAVAILABLE or DEADLINE_EXCEEDED from the server), also as the first
 * answer of a call; only a redirect back into the same chain waits. */
static void test_hint_at_once(void)
{
    Kyufu__V1__WriteResponse ok = KYUFU__V1__WRITE_RESPONSE__INIT;
    struct fake f = { 0 };
    struct trace t;
    struct kyufu_client *c = open_traced(&f, &t, 7, 600000);
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_DEADLINE_EXCEEDED,
                                       .leader = EPS[1] });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                       .leader = EPS[2] });
    /* node 3 names node 1: the chain 1 -> 2 -> 3 has been there: wait */
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                       .leader = EPS[0] });
    /* node 1 names node 2: a new chain after the wait: at once */
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                       .leader = EPS[1] });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    struct kyufu_client_result res;
    submit(c, &res, 0);
    CHECK_EQ_INT(res.attempts, 5);
    CHECK_EQ_INT(t.n, 4);
    const unsigned want_ep[] = { 1, 2, 0, 1 };
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ_INT(t.endpoint[i], want_ep[i]);
        CHECK_EQ_INT(f.log[i + 1].endpoint, want_ep[i]);
    }
    CHECK_EQ_INT(t.wait_ms[0], 0);
    CHECK_EQ_INT(t.wait_ms[1], 0);
    CHECK(t.wait_ms[2] >= KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT);
    CHECK_EQ_INT(t.wait_ms[3], 0);
    CHECK_EQ_INT(res.waited_ms, t.wait_ms[2]);
    kyufu_client_response_free(res.response);

    /* A node naming itself while failing is not followed back to itself:
     * the next node in turn, after a wait. */
    fake_reset_log(&f);
    memset(&t, 0, sizeof t);
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                       .leader = EPS[1] });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    submit(c, &res, 0);
    CHECK_EQ_INT(f.log[0].endpoint, 1);
    CHECK_EQ_INT(f.log[1].endpoint, 2);
    CHECK(t.n == 1 && t.wait_ms[0] >= KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT);
    kyufu_client_response_free(res.response);

    /* A pinned call's answer teaches the leader too (cluster status). */
    fake_reset_log(&f);
    Kyufu__V1__NodeStatus ns = KYUFU__V1__NODE_STATUS__INIT;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .leader = EPS[0],
                                       .response = &ns.base });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    Kyufu__V1__StatusRequest st = KYUFU__V1__STATUS_REQUEST__INIT;
    struct kyufu_client_call_opts opts = { .endpoint = 1 };
    CHECK(kyufu_client_call(c, "Status", &st.base, NULL, &opts, &res) == 0);
    kyufu_client_response_free(res.response);
    submit(c, &res, 0);
    CHECK_EQ_INT(f.log[1].endpoint, 0);
    CHECK_EQ_INT(res.attempts, 1);
    kyufu_client_response_free(res.response);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* The overall deadline is authoritative: with no node reachable, a 300 ms
 * call gives up with its waits summing below 300 ms, each attempt given at
 * most the time left after the waits before it, and no wait scheduled past
 * the deadline.  Unreachable nodes are tried back to back, one wait per
 * round of the three.
 *
 * Every wait is followed by an attempt, except that a wait's timer may
 * fire late (a loaded machine): if the loop's clock, the one the client
 * measures its deadline by, has then reached the deadline, the call gives
 * up without that attempt.  So the call runs on the test's own loop, and a
 * last wait with no attempt after it is accepted only when that loop's
 * clock had passed the deadline when the call finished. */
static void on_deadline_call(struct kyufu_client_req *req, int status)
{
    struct async_state *st = req->data;
    st->done++;
    st->last_rv = status;
}

static void test_deadline(void)
{
    const uint32_t deadline = 300;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uv_loop_t loop;
        CHECK(uv_loop_init(&loop) == 0);
        struct fake f = { 0 };
        struct trace t;
        struct kyufu_client_config cfg;
        config(&cfg);
        cfg.backoff_ms_initial = KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT;
        cfg.backoff_ms_max = KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT;
        cfg.deadline_ms = deadline;
        struct kyufu_client *c = NULL;
        CHECK(client__create_with(&cfg, &loop, fake_factory, &f, &c, NULL, 0) == 0);
        kyufu_client_config_free(&cfg);
        memset(&t, 0, sizeof t);
        client__testing(c, seed, on_trace, &t);

        Kyufu__V1__SubmitApplicationRequest sreq = KYUFU__V1__SUBMIT_APPLICATION_REQUEST__INIT;
        Kyufu__V1__SubmitApplication cmd = KYUFU__V1__SUBMIT_APPLICATION__INIT;
        cmd.program_code = "P2026";
        cmd.household_no = "H-1";
        sreq.command = &cmd;
        struct async_state st = { 0 };
        struct kyufu_client_req req = { .data = &st };
        /* The client reads the same cached loop time for its deadline. */
        const uint64_t started = uv_now(&loop);
        CHECK(kyufu_client_call_async(c, &req, "SubmitApplication", &sreq.base,
                                      &kyufu__v1__write_response__descriptor,
                                      NULL, on_deadline_call) == 0);
        while (st.done == 0) {
            CHECK(uv_run(&loop, UV_RUN_ONCE) >= 0);
        }
        const uint64_t ended = uv_now(&loop);
        CHECK_EQ_INT(st.last_rv, KYUFU_CLIENT_EUNAVAILABLE); /* script empty */
        const struct kyufu_client_result *res = &req.result;
        CHECK(res->attempts >= 2 && res->attempts < KYUFU_CLIENT_ATTEMPTS_MAX);
        CHECK_EQ_INT(f.n_log, res->attempts);
        if (t.n == res->attempts) {
            /* The last wait's timer fired at or past the deadline. */
            fprintf(stderr, "deadline seed %llu: last wait woke at %llu ms "
                            "of %u: no attempt after it\n",
                    (unsigned long long)seed,
                    (unsigned long long)(ended - started), deadline);
            CHECK(ended >= started + deadline);
        } else {
            CHECK_EQ_INT(t.n, res->attempts - 1);
        }
        CHECK(res->waited_ms < deadline);
        uint32_t before = 0;
        for (unsigned i = 0; i < f.n_log; i++) {
            CHECK(f.log[i].timeout_ms >= 1);
            CHECK(f.log[i].timeout_ms <= deadline - before);
            if (i < t.n) {
                before += t.wait_ms[i];
            }
        }
        for (unsigned i = f.n_log; i < t.n; i++) {
            before += t.wait_ms[i];
        }
        CHECK_EQ_INT(before, res->waited_ms);
        for (unsigned i = 0; i < t.n; i++) {
            CHECK_EQ_INT(t.endpoint[i], (i + 1) % 3);
            if (i % 3 == 2) {
                CHECK(t.wait_ms[i] >= KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT);
            } else {
                CHECK_EQ_INT(t.wait_ms[i], 0);
            }
        }
        kyufu_client_close(c, on_close, &st);
        CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
        CHECK(st.closed);
        CHECK(uv_loop_close(&loop) == 0);
        fake_reset_log(&f);
    }
}

/* kyufu_client_call_each: one pinned attempt per node, all started before
 * any answer, each with the given deadline; a failed node is reported for
 * its own index; a write is refused. */
static void test_call_each(void)
{
    struct fake f = { 0 };
    struct trace t;
    struct kyufu_client *c = open_traced(&f, &t, 5, 600000);
    Kyufu__V1__NodeStatus n1 = KYUFU__V1__NODE_STATUS__INIT;
    Kyufu__V1__NodeStatus n3 = KYUFU__V1__NODE_STATUS__INIT;
    n1.id = 1;
    n3.id = 3;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &n1.base });
    fake_push(&f, (struct fake_reply){ .err = KYUFU_CLIENT_EDEADLINE });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .leader = EPS[2],
                                       .response = &n3.base });
    Kyufu__V1__StatusRequest st = KYUFU__V1__STATUS_REQUEST__INIT;
    int rvs[3];
    struct kyufu_client_result res[3];
    CHECK(kyufu_client_call_each(c, "Status", &st.base,
                                 &kyufu__v1__node_status__descriptor, 700, rvs,
                                 res) == 0);
    CHECK_EQ_INT(f.n_log, 3);
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ_INT(f.log[i].endpoint, i);
        CHECK(f.log[i].timeout_ms <= 700);
        CHECK_EQ_INT(res[i].attempts, 1);
    }
    CHECK(rvs[0] == 0 && res[0].grpc_status == KYUFU_GRPC_OK &&
          ((Kyufu__V1__NodeStatus *)res[0].response)->id == 1);
    CHECK_EQ_INT(rvs[1], KYUFU_CLIENT_EDEADLINE);
    CHECK(res[1].response == NULL);
    CHECK(rvs[2] == 0 && ((Kyufu__V1__NodeStatus *)res[2].response)->id == 3);
    CHECK_EQ_INT(t.n, 0); /* never retried */
    kyufu_client_response_free(res[0].response);
    kyufu_client_response_free(res[2].response);
    /* The hint of node 3 made it the leader for the next call. */
    Kyufu__V1__WriteResponse ok = KYUFU__V1__WRITE_RESPONSE__INIT;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_OK, .response = &ok.base });
    struct kyufu_client_result wr;
    submit(c, &wr, 0);
    CHECK_EQ_INT(f.log[3].endpoint, 2);
    kyufu_client_response_free(wr.response);
    /* Writes are never fanned out. */
    Kyufu__V1__AdjustBudgetRequest ab = KYUFU__V1__ADJUST_BUDGET_REQUEST__INIT;
    CHECK_EQ_INT(kyufu_client_call_each(c, "AdjustBudget", &ab.base, NULL, 0,
                                        rvs, res),
                 KYUFU_CLIENT_EINVALID);
    CHECK_EQ_INT(f.n_log, 4);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

int main(void)
{
    char dir[] = "/tmp/kyufu-client-retry-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_redirect_and_key_reuse();
    test_all_unavailable();
    test_redirect_pinned_and_reads();
    test_session_file(dir);
    test_async_close();
    test_settle();
    test_election_waits_and_hint();
    test_hint_at_once();
    test_deadline();
    test_call_each();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
