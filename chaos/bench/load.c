/* kyufu-bench-load: load a running cluster through its API and measure it.
 *
 * Happy path: read a kyufuctl.conf, create one asynchronous libkyufu client
 * per 64 calls in flight (HTTP/2 allows 100 streams per connection, and a
 * front end keeps a few connections), all on one libuv loop; sign the calls
 * as a front end does: each with the session token of the person it acts
 * for (a clerk registers and submits, an approver approves: tokens from
 * --clerk-token-file / --approver-token-file or KYUFU_BENCH_CLERK_TOKEN /
 * KYUFU_BENCH_APPROVER_TOKEN, as `kyufuctl login` writes them; Status for
 * the applied index with an operator's, optional); create and open one
 * program as the approver if missing; then
 * for each K of --inflight run N households with K calls in flight.  Each
 * household is a chain of writes — RegisterHousehold, SubmitApplication,
 * ApproveApplication (the last two optional) — and each write has its own
 * idempotency key (kyufu_client_header_init).  Per K: commands/s, latency
 * p50/p99/max of every write (first send to final answer, retries
 * included), the number of distinct Raft entries that carried our commands
 * (CommandResult.raft_index; commands/entries = group-commit factor), and
 * the leader's applied-index advance, and how many writes libkyufu had to
 * send more than once (result.attempts > 1) before its final answer.  The first K is the baseline: every
 * other K reports its throughput and p50 as ratios to it.  JSON on stdout.
 *
 * --duration-s S with a load: each K ends after S seconds or N households,
 * whichever comes first (no new household starts after S; the chains in
 * flight finish); the side-by-side benchmark runs it so.
 *
 * --probe FILE: one call in flight (RegisterHousehold), forever or for
 * --duration-s, one line per write into FILE: "unix_ms latency_us status
 * raft_index endpoint" (endpoint: the index in the config of the node that
 * answered, -1 for a client error).  Stops cleanly on SIGINT/SIGTERM.  The install drill runs it
 * beside the load to see commit latency before and during a snapshot
 * install.
 *
 * Failure modes: a write that ends EUNAVAILABLE/EDEADLINE is re-sent with
 * the SAME key (up to retries_max times; the ledger answers a repeat with
 * the first result), and counted under "retries"; a non-OK gRPC status ends
 * that household's chain and is counted by status name; any other client
 * error is counted under "errors".  The run exits 1 if any write was not
 * answered OK.  Setup failures exit 2 with a message.
 *
 * The in-flight loop, the latency statistics and the argument checks are
 * shared with kyufu-bench-etcd (bench_driver.h, bench_latency.h,
 * bench_args.h).
 *
 * This is a benchmark, run by hand (docs/bench-load.md): it reads the wall
 * clock and is not in any test suite. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "bench_args.h"
#include "bench_driver.h"
#include "bench_latency.h"
#include "kyufu.h"

/* Re-sends of one write after EUNAVAILABLE/EDEADLINE (same key). */
#define LOAD_RETRIES_MAX 20u
/* Overall deadline of one attempt series: at K=1024 a write may queue
 * behind 1,023 others and a group commit or two. */
#define LOAD_DEADLINE_MS_DEFAULT 30000u
#define LOAD_PROGRESS_MS 10000u
#define LOAD_SERIES_MS 1000u
#define LOAD_PACE_MS 10u
#define LOAD_HOUSEHOLD_NO_BYTES 33u
/* Every write's answer is one of the gRPC codes 0..16. */
#define LOAD_GRPC_CODES 17u

enum step { STEP_REGISTER = 0, STEP_SUBMIT = 1, STEP_APPROVE = 2 };
static const char *const step_method[] = {"RegisterHousehold", "SubmitApplication",
                                          "ApproveApplication"};

struct opts
{
    const char *config;
    uint64_t households;  /* per K */
    unsigned ks[KYUFU_BENCH_INFLIGHT_STEPS_MAX];
    unsigned n_ks;
    bool submit;
    bool approve;
    const char *program;
    char prefix[16];
    /* Session tokens (docs/identity.md): the clerk's, the approver's, the
     * operator's ("" when not given). */
    char clerk_token[KYUFU_CLIENT_TOKEN_BYTES + 1];
    char approver_token[KYUFU_CLIENT_TOKEN_BYTES + 1];
    char operator_token[KYUFU_CLIENT_TOKEN_BYTES + 1];
    uint32_t deadline_ms;
    const char *probe_file;
    double duration_s;    /* probe: 0 = until a signal */
    bool progress;
    const char *series_file;  /* one line per second of a phase, or NULL */
    const char *trace_file;   /* one line per write answered, or NULL */
    double households_per_s;  /* 0: as fast as K allows, else a steady pace */
    bool no_setup;
    unsigned per_conn;    /* calls in flight per connection */
};

struct bench;

struct slot
{
    struct bench *b;
    struct kyufu_client *client;
    struct kyufu_client_req req;
    Kyufu__V1__IdempotencyKey key;
    Kyufu__V1__RequestHeader hdr;
    uint64_t household;  /* index in this phase */
    uint64_t app_id;
    enum step step;
    uint64_t t0_ns;      /* first send of the current write */
    unsigned tries;
    bool busy;
    bool parked;         /* waiting for the pace (counted in flight) */
    uint64_t due_ns;     /* paced: when its household was due, if it started
                          * late for want of a free slot (else 0) */
};

/* What one phase (one K) measured. */
struct phase
{
    unsigned k;
    unsigned clients;
    uint64_t households;
    uint64_t next_household;
    uint64_t chains_done;
    uint64_t ok;
    uint64_t by_status[LOAD_GRPC_CODES];
    uint64_t retries;
    uint64_t retried_inside;  /* answered after > 1 attempt (libkyufu's own retries) */
    uint64_t errors;          /* client errors after all retries */
    /* One per answered write (any status), tag: its Raft index (0 unless OK). */
    struct kyufu_bench_latency lat;
    uint64_t t_start_ns;
    uint64_t t_end_ns;
    uint64_t applied_before;
    uint64_t applied_after;
    uint64_t base;            /* first household number of the phase */
};

struct bench
{
    struct opts o;
    uv_loop_t loop;
    struct kyufu_bench_driver drv;
    struct kyufu_client *clients[KYUFU_BENCH_CONNECTIONS_MAX];
    unsigned n_clients;
    unsigned n_closed;
    struct slot slots[KYUFU_BENCH_INFLIGHT_MAX];
    struct phase *ph;
    FILE *probe;
    uv_timer_t progress;
    uint64_t progress_last_writes;
    uint64_t progress_last_ns;
    FILE *series;
    FILE *trace;
    uv_timer_t series_timer;
    uint64_t series_from;     /* first sample of the current second */
    uint64_t series_ok;       /* ph->ok at its start */
    uint64_t series_errors;   /* ph->errors at its start */
    uv_timer_t pace;          /* --households-per-s: wakes parked slots */
    unsigned n_parked;
};

const char kyufu_bench_program[] = "kyufu-bench-load";

/* ------------------------------------------------------------ sync helper */

/* One call, run to its end on the shared loop (setup and status only). */
static int call_wait(struct bench *b, struct kyufu_client *c, const char *method,
                     const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_desc, int endpoint,
                     const char *token, struct kyufu_client_result *result)
{
    struct kyufu_client_call_opts co = {.deadline_ms = b->o.deadline_ms,
                                        .endpoint = endpoint, .token = token};
    return kyufu_client_call(c, method, request, response_desc, &co, result);
}

/* A setup write; ALREADY_EXISTS counts as done (a second run). */
static void setup_write(struct bench *b, const char *method, ProtobufCMessage *request,
                        Kyufu__V1__RequestHeader **hdr_field, const char *token)
{
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if (kyufu_client_header_init(b->clients[0], &hdr, &key, NULL) != 0) {
        kyufu_bench_die("%s: cannot make a request header", method);
    }
    *hdr_field = &hdr;
    struct kyufu_client_result res;
    int rv = call_wait(b, b->clients[0], method, request,
                       &kyufu__v1__write_response__descriptor, -1, token, &res);
    *hdr_field = NULL;
    if (rv != 0) {
        kyufu_bench_die("%s: %s (%s)", method, kyufu_client_strerror(rv), res.message);
    }
    kyufu_client_response_free(res.response);
    if (res.grpc_status != KYUFU_GRPC_OK && res.grpc_status != KYUFU_GRPC_ALREADY_EXISTS) {
        kyufu_bench_die("%s: %s: %s", method, kyufu_grpc_status_name(res.grpc_status), res.message);
    }
}

static void setup(struct bench *b)
{
    /* Accounts are an ID administrator's business (kyufuctl staff create,
     * scripts/run): the bench only uses the sessions it is given. */
    Kyufu__V1__CreateProgramRequest cr = KYUFU__V1__CREATE_PROGRAM_REQUEST__INIT;
    Kyufu__V1__CreateProgram cp = KYUFU__V1__CREATE_PROGRAM__INIT;
    cp.code = (char *)b->o.program;
    cp.name = "kyufu-bench-load";
    cp.fiscal_year = 2026;
    cp.unit_amount = 1000;
    cp.budget = 10000000000000; /* 10^13 yen: 10^10 approvals */
    cp.window_start_ms = 946684800000;  /* 2000-01-01 */
    cp.window_end_ms = 4102444800000;   /* 2100-01-01 */
    cr.command = &cp;
    setup_write(b, "CreateProgram", &cr.base, &cr.header, b->o.approver_token);
    Kyufu__V1__OpenProgramRequest orq = KYUFU__V1__OPEN_PROGRAM_REQUEST__INIT;
    Kyufu__V1__OpenProgram op = KYUFU__V1__OPEN_PROGRAM__INIT;
    op.code = (char *)b->o.program;
    orq.command = &op;
    /* A second run finds it OPEN: FAILED_PRECONDITION is fine too. */
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    kyufu_client_header_init(b->clients[0], &hdr, &key, NULL);
    orq.header = &hdr;
    struct kyufu_client_result res;
    int rv = call_wait(b, b->clients[0], "OpenProgram", &orq.base,
                       &kyufu__v1__write_response__descriptor, -1, b->o.approver_token, &res);
    if (rv != 0) {
        kyufu_bench_die("OpenProgram: %s", kyufu_client_strerror(rv));
    }
    kyufu_client_response_free(res.response);
    if (res.grpc_status != KYUFU_GRPC_OK &&
        res.grpc_status != KYUFU_GRPC_FAILED_PRECONDITION) {
        kyufu_bench_die("OpenProgram: %s: %s", kyufu_grpc_status_name(res.grpc_status), res.message);
    }
}

/* The leader's applied index (0 if no node names itself leader, or no
 * operator's token was given: Cluster.Status is an operator's call). */
static uint64_t leader_applied(struct bench *b)
{
    if (b->o.operator_token[0] == '\0') {
        return 0;
    }
    unsigned n = kyufu_client_endpoint_count(b->clients[0]);
    for (unsigned i = 0; i < n; i++) {
        Kyufu__V1__StatusRequest sr = KYUFU__V1__STATUS_REQUEST__INIT;
        struct kyufu_client_result res;
        int rv = call_wait(b, b->clients[0], "/kyufu.v1.Cluster/Status", &sr.base,
                           &kyufu__v1__node_status__descriptor, (int)i,
                           b->o.operator_token, &res);
        if (rv != 0 || res.grpc_status != KYUFU_GRPC_OK) {
            kyufu_client_response_free(res.response);
            continue;
        }
        Kyufu__V1__NodeStatus *st = (Kyufu__V1__NodeStatus *)res.response;
        uint64_t applied = st->applied_index;
        bool leader = strcmp(st->role, "leader") == 0;
        kyufu_client_response_free(res.response);
        if (leader) {
            return applied;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ the load */

static void write_cb(struct kyufu_client_req *req, int status);

static void household_no(const struct bench *b, uint64_t n, char out[LOAD_HOUSEHOLD_NO_BYTES])
{
    int len = snprintf(out, LOAD_HOUSEHOLD_NO_BYTES, "%s-%" PRIu64, b->o.prefix, n);
    if (len < 0 || len >= (int)LOAD_HOUSEHOLD_NO_BYTES) {
        kyufu_bench_die("household number too long (prefix %s)", b->o.prefix);
    }
}

/* Send the slot's current write; on a retry the same key goes again. */
static void send_write(struct slot *s)
{
    struct bench *b = s->b;
    char no[LOAD_HOUSEHOLD_NO_BYTES];
    char name[64], addr[96], acct[8], kana[48];
    uint64_t n = b->ph->base + s->household;
    household_no(b, n, no);
    /* Each write in the session of the person who does it: the node sets
     * the actor from the token (the header names none). */
    struct kyufu_client_call_opts co = {
        .deadline_ms = b->o.deadline_ms,
        .endpoint = -1,
        .token = s->step == STEP_APPROVE ? b->o.approver_token : b->o.clerk_token};
    int rv;
    if (s->tries == 0) {
        rv = kyufu_client_header_init(s->client, &s->hdr, &s->key, NULL);
        if (rv != 0) {
            kyufu_bench_die("header: %s", kyufu_client_strerror(rv));
        }
        s->t0_ns = uv_hrtime();
        if (s->step == STEP_REGISTER && s->due_ns != 0 && s->due_ns < s->t0_ns) {
            s->t0_ns = s->due_ns;
        }
    }
    switch (s->step) {
    case STEP_REGISTER: {
        Kyufu__V1__RegisterHouseholdRequest r = KYUFU__V1__REGISTER_HOUSEHOLD_REQUEST__INIT;
        Kyufu__V1__RegisterHousehold cmd = KYUFU__V1__REGISTER_HOUSEHOLD__INIT;
        Kyufu__V1__Household h = KYUFU__V1__HOUSEHOLD__INIT;
        Kyufu__V1__BankAccount bank = KYUFU__V1__BANK_ACCOUNT__INIT;
        snprintf(name, sizeof name, "Household %" PRIu64, n);
        snprintf(addr, sizeof addr, "%" PRIu64 " Chuo 1-chome, Kyufu City", n);
        snprintf(acct, sizeof acct, "%07" PRIu64, n % 10000000);
        snprintf(kana, sizeof kana, "KYUFU %" PRIu64, n);
        h.household_no = no;
        h.head_name = name;
        h.address = addr;
        bank.bank_code = "0001";
        bank.branch_code = "001";
        bank.account_type = "ordinary";
        bank.account_no = acct;
        bank.holder_kana = kana;
        h.bank = &bank;
        cmd.household = &h;
        r.header = &s->hdr;
        r.command = &cmd;
        rv = kyufu_client_call_async(s->client, &s->req, step_method[s->step], &r.base,
                                     &kyufu__v1__write_response__descriptor, &co, write_cb);
        break;
    }
    case STEP_SUBMIT: {
        Kyufu__V1__SubmitApplicationRequest r = KYUFU__V1__SUBMIT_APPLICATION_REQUEST__INIT;
        Kyufu__V1__SubmitApplication cmd = KYUFU__V1__SUBMIT_APPLICATION__INIT;
        cmd.program_code = (char *)b->o.program;
        cmd.household_no = no;
        cmd.channel = KYUFU__V1__CHANNEL__CHANNEL_COUNTER;
        r.header = &s->hdr;
        r.command = &cmd;
        rv = kyufu_client_call_async(s->client, &s->req, step_method[s->step], &r.base,
                                     &kyufu__v1__write_response__descriptor, &co, write_cb);
        break;
    }
    case STEP_APPROVE: {
        Kyufu__V1__ApproveApplicationRequest r = KYUFU__V1__APPROVE_APPLICATION_REQUEST__INIT;
        Kyufu__V1__ApproveApplication cmd = KYUFU__V1__APPROVE_APPLICATION__INIT;
        cmd.id = s->app_id;
        r.header = &s->hdr;
        r.command = &cmd;
        rv = kyufu_client_call_async(s->client, &s->req, step_method[s->step], &r.base,
                                     &kyufu__v1__write_response__descriptor, &co, write_cb);
        break;
    }
    default:
        abort();
    }
    if (rv != 0) {
        kyufu_bench_die("%s: call_async: %s", step_method[s->step], kyufu_client_strerror(rv));
    }
    s->busy = true;
    b->drv.in_flight++;
}

/* Whether the phase may still start a household: not stopped, not out of
 * time, and households left. */
static bool household_left(const struct bench *b)
{
    const struct phase *ph = b->ph;
    return kyufu_bench_driver_may_start(&b->drv) &&
           !(ph->households != 0 && ph->next_household >= ph->households);
}

/* Whether the pace (--households-per-s) allows the phase's next household
 * now: household i may start i / rate seconds after the phase began. */
static bool pace_allows(const struct bench *b)
{
    if (b->o.households_per_s <= 0) {
        return true;
    }
    double elapsed_s = (double)(uv_hrtime() - b->ph->t_start_ns) / 1e9;
    return (double)b->ph->next_household <= elapsed_s * b->o.households_per_s;
}

/* The next household on slot s.  Paced, a household that a free slot
 * could not start when it was due (no slot parked, every one busy: the
 * cluster is slower than the pace) has its first write timed from when it was due, so a
 * stall shows in the latencies of all the writes it held up, not of K of
 * them (coordinated omission); one started by the pace's timer (a slot
 * was waiting for it) is timed from its send. */
static void next_chain_from(struct slot *s, bool from_pace)
{
    struct bench *b = s->b;
    struct phase *ph = b->ph;
    if (!household_left(b)) {
        return;
    }
    if (!pace_allows(b)) {
        /* Counted in flight, so the phase does not end while it waits. */
        s->parked = true;
        b->n_parked++;
        b->drv.in_flight++;
        return;
    }
    s->due_ns = 0;
    if (b->o.households_per_s > 0 && !from_pace && b->n_parked == 0) {
        s->due_ns = ph->t_start_ns +
                    (uint64_t)((double)ph->next_household / b->o.households_per_s * 1e9);
    }
    s->household = ph->next_household++;
    s->step = STEP_REGISTER;
    s->tries = 0;
    s->app_id = 0;
    send_write(s);
}

static void next_chain(struct slot *s)
{
    next_chain_from(s, false);
}

static void write_cb(struct kyufu_client_req *req, int status)
{
    struct slot *s = req->data;
    struct bench *b = s->b;
    struct phase *ph = b->ph;
    struct kyufu_client_result *res = &req->result;
    s->busy = false;
    b->drv.in_flight--;
    if (status == KYUFU_CLIENT_ECANCELED) {
        return;
    }
    if ((status == KYUFU_CLIENT_EUNAVAILABLE || status == KYUFU_CLIENT_EDEADLINE) &&
        s->tries < LOAD_RETRIES_MAX && !b->drv.stop) {
        /* Same key again: the ledger answers a repeat with its first result. */
        s->tries++;
        ph->retries++;
        send_write(s);
        return;
    }
    uint32_t lat_us = kyufu_bench_latency_us_since(s->t0_ns);
    if (status != 0) {
        ph->errors++;
        fprintf(stderr, "kyufu-bench-load: %s: %s (%s)\n", step_method[s->step],
                kyufu_client_strerror(status), res->message);
        if (b->probe != NULL) {
            fprintf(b->probe, "%" PRId64 " %" PRIu32 " %d 0 -1\n",
                    kyufu_bench_latency_unix_ms(), lat_us, status);
        }
        next_chain(s);
        return;
    }
    if (res->attempts > 1) {
        ph->retried_inside++;
    }
    unsigned code = (unsigned)res->grpc_status < LOAD_GRPC_CODES ? (unsigned)res->grpc_status
                                                                 : LOAD_GRPC_CODES - 1;
    ph->by_status[code]++;
    uint64_t raft_index = 0;
    bool more = false;
    if (res->grpc_status == KYUFU_GRPC_OK) {
        Kyufu__V1__WriteResponse *w = (Kyufu__V1__WriteResponse *)res->response;
        if (w->result != NULL) {
            raft_index = w->result->raft_index;
            if (s->step == STEP_SUBMIT &&
                w->result->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION) {
                s->app_id = w->result->application->id;
            }
        }
        ph->ok++;
        more = (s->step == STEP_REGISTER && b->o.submit) ||
               (s->step == STEP_SUBMIT && b->o.approve && s->app_id != 0);
    } else if (ph->by_status[code] <= 3) {
        fprintf(stderr, "kyufu-bench-load: %s: %s: %s\n", step_method[s->step],
                kyufu_grpc_status_name(res->grpc_status), res->message);
    }
    kyufu_bench_latency_add(&ph->lat, lat_us, raft_index);
    if (b->trace != NULL) {
        fprintf(b->trace, "%" PRId64 " %" PRIu32 " %d\n", kyufu_bench_latency_unix_ms(),
                lat_us, res->grpc_status);
    }
    if (b->probe != NULL) {
        fprintf(b->probe, "%" PRId64 " %" PRIu32 " %d %" PRIu64 " %d\n",
                kyufu_bench_latency_unix_ms(), lat_us,
                res->grpc_status, raft_index, res->endpoint);
    }
    kyufu_client_response_free(res->response);
    res->response = NULL;
    if (more) {
        s->step++;
        s->tries = 0;
        send_write(s);
        return;
    }
    ph->chains_done++;
    next_chain(s);
}

static void progress_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = uv_hrtime();
    double dt = (double)(now - b->progress_last_ns) / 1e9;
    fprintf(stderr, "kyufu-bench-load: K=%u %" PRIu64 "/%" PRIu64 " households, %" PRIu64
            " writes, %.0f writes/s\n",
            b->ph->k, b->ph->chains_done, b->ph->households, b->ph->lat.n,
            (double)(b->ph->lat.n - b->progress_last_writes) / dt);
    b->progress_last_writes = b->ph->lat.n;
    b->progress_last_ns = now;
}

/* Every 10 ms under --households-per-s: the parked slots start what the
 * pace allows, or, once the phase may start nothing more, stop waiting. */
static void pace_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    for (unsigned i = 0; i < b->ph->k; i++) {
        struct slot *s = &b->slots[i];
        if (!s->parked) {
            continue;
        }
        bool may = household_left(b);
        if (may && !pace_allows(b)) {
            break;
        }
        s->parked = false;
        b->n_parked--;
        b->drv.in_flight--;
        if (may) {
            next_chain_from(s, true);
        }
    }
}

/* One line of the --series file: the second that just ended (wall clock
 * at its end, K, writes answered in it (any gRPC status), of those OK,
 * then client errors (no answer after the retries: not in the latencies),
 * then p50, p99 and max latency in ms of those answered). */
static void series_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct phase *ph = b->ph;
    uint64_t n = ph->lat.n;
    struct kyufu_bench_latency_summary w = kyufu_bench_latency_window(&ph->lat, b->series_from);
    fprintf(b->series, "%" PRId64 " %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %.3f %.3f %.3f\n",
            kyufu_bench_latency_unix_ms(), ph->k, n - b->series_from, ph->ok - b->series_ok,
            ph->errors - b->series_errors, w.p50, w.p99, w.max);
    b->series_from = n;
    b->series_ok = ph->ok;
    b->series_errors = ph->errors;
}

static void run_phase(struct bench *b, struct phase *ph)
{
    assert(ph->k >= 1 && ph->k <= KYUFU_BENCH_INFLIGHT_MAX);
    b->ph = ph;
    ph->clients = kyufu_bench_driver_connections(ph->k, b->o.per_conn);
    assert(ph->clients <= b->n_clients);
    ph->applied_before = leader_applied(b);
    ph->t_start_ns = kyufu_bench_driver_begin(&b->drv);
    b->progress_last_ns = ph->t_start_ns;
    b->progress_last_writes = 0;
    if (b->o.progress) {
        uv_timer_start(&b->progress, progress_cb, LOAD_PROGRESS_MS, LOAD_PROGRESS_MS);
    }
    if (b->series != NULL) {
        b->series_from = b->series_ok = b->series_errors = 0;
        uv_timer_start(&b->series_timer, series_cb, LOAD_SERIES_MS, LOAD_SERIES_MS);
    }
    if (b->o.households_per_s > 0) {
        uv_timer_start(&b->pace, pace_cb, LOAD_PACE_MS, LOAD_PACE_MS);
    }
    for (unsigned i = 0; i < ph->k; i++) {
        struct slot *s = &b->slots[i];
        *s = (struct slot){.b = b, .client = b->clients[i % ph->clients]};
        s->req.data = s;
        next_chain(s);
    }
    ph->t_end_ns = kyufu_bench_driver_drain(&b->drv, ph->t_start_ns, b->o.duration_s,
                                            b->probe != NULL);
    uv_timer_stop(&b->progress);
    uv_timer_stop(&b->series_timer);
    if (b->series != NULL && (ph->lat.n > b->series_from || ph->errors > b->series_errors)) {
        series_cb(&b->series_timer); /* the last, shorter window */
    }
    uv_timer_stop(&b->pace);
    ph->applied_after = leader_applied(b);
}

/* ------------------------------------------------------------ report */

static void report(struct bench *b, struct phase *phs, unsigned n)
{
    struct kyufu_bench_latency_summary base = {0};
    printf("{\n  \"config\": \"%s\", \"prefix\": \"%s\", \"program\": \"%s\",\n"
           "  \"households_per_k\": %" PRIu64 ", \"submit\": %s, \"approve\": %s,\n"
           "  \"calls_per_connection_max\": %u,\n  \"runs\": [\n",
           b->o.config, b->o.prefix, b->o.program, b->o.households,
           b->o.submit ? "true" : "false", b->o.approve ? "true" : "false",
           b->o.per_conn);
    for (unsigned i = 0; i < n; i++) {
        struct phase *ph = &phs[i];
        struct kyufu_bench_latency_summary s =
            kyufu_bench_latency_summarize(&ph->lat, ph->t_start_ns, ph->t_end_ns);
        uint64_t entries = kyufu_bench_latency_distinct_tags(&ph->lat);
        if (i == 0) {
            base = s;
        }
        uint64_t applied = ph->applied_after > ph->applied_before
                               ? ph->applied_after - ph->applied_before : 0;
        printf("    {\"k\": %u, \"connections\": %u, \"households\": %" PRIu64
               ", \"writes\": %" PRIu64 ", \"ok\": %" PRIu64 ", \"retries\": %" PRIu64
               ", \"errors\": %" PRIu64 ", \"answered_after_retry_in_client\": %" PRIu64 ",\n",
               ph->k, ph->clients, ph->chains_done, ph->lat.n, ph->ok, ph->retries,
               ph->errors, ph->retried_inside);
        printf("     \"rejected\": {");
        bool first = true;
        for (unsigned c = 1; c < LOAD_GRPC_CODES; c++) {
            if (ph->by_status[c] != 0) {
                printf("%s\"%s\": %" PRIu64, first ? "" : ", ", kyufu_grpc_status_name((int)c),
                       ph->by_status[c]);
                first = false;
            }
        }
        printf("},\n     ");
        kyufu_bench_latency_print(&s);
        printf(",\n");
        printf("     \"raft_entries_carrying_ours\": %" PRIu64
               ", \"group_commit_factor\": %.2f,\n"
               "     \"leader_applied_delta\": %" PRIu64 ", \"commands_per_applied_index\": %.2f,\n",
               entries, entries ? (double)ph->ok / (double)entries : 0, applied,
               applied ? (double)ph->lat.n / (double)applied : 0);
        printf("     \"vs_baseline\": {\"k\": %u, \"throughput\": %.2f, \"p50\": %.2f,"
               " \"p99\": %.2f}}%s\n",
               phs[0].k, base.per_s > 0 ? s.per_s / base.per_s : 0,
               base.p50 > 0 ? s.p50 / base.p50 : 0, base.p99 > 0 ? s.p99 / base.p99 : 0,
               i + 1 < n ? "," : "");
    }
    printf("  ]\n}\n");
}

/* ------------------------------------------------------------ main */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kyufu-bench-load --config KYUFUCTL_CONF [--households N]\n"
            "         [--inflight 1,16,64,256] [--no-submit] [--approve]\n"
            "         [--program CODE] [--prefix P] [--deadline-ms MS] [--progress]\n"
            "         [--no-setup] [--per-connection N]\n"
            "         [--clerk-token-file F] [--approver-token-file F] [--operator-token-file F]\n"
            "         [--duration-s S]   (per K: stop starting households after S s)\n"
            "         [--series FILE]    (one line per second: unix_ms K answered ok\n"
            "                             client_errors p50_ms p99_ms max_ms)\n"
            "         [--trace FILE]     (one line per write answered: unix_ms\n"
            "                             latency_us grpc_status)\n"
            "         [--households-per-s R] (a steady pace: household i starts i/R s\n"
            "                             into the phase, at most K calls in flight)\n"
            "       kyufu-bench-load --config C --probe FILE [--duration-s S] [--prefix P]\n"
            "session tokens (kyufuctl login writes them; 0600 files): the options, else\n"
            "KYUFU_BENCH_CLERK_TOKEN, KYUFU_BENCH_APPROVER_TOKEN, KYUFU_BENCH_OPERATOR_TOKEN;\n"
            "the clerk's is required, the approver's for setup and --approve, the\n"
            "operator's (optional) for the leader's applied index\n");
}

/* A session token from a file (kyufu_client_token_read's checks: 0600,
 * well-formed) into out. */
static void token_file(const char *opt, const char *path, char *out)
{
    char err[512];
    if (kyufu_client_token_read(path, out, err, sizeof err) != 0) {
        kyufu_bench_die("--%s: %s", opt, err);
    }
}

/* ... or from the environment, when no file was given. */
static void token_env(const char *name, char *out)
{
    const char *v = getenv(name);
    if (out[0] != '\0' || v == NULL || v[0] == '\0') {
        return;
    }
    if (kyufu_client_token_check(v) != 0) {
        kyufu_bench_die("%s is not a session token (%u hex digits)", name, KYUFU_CLIENT_TOKEN_BYTES);
    }
    memcpy(out, v, KYUFU_CLIENT_TOKEN_BYTES + 1);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    enum { O_CONFIG = 0x100, O_HH, O_INFLIGHT, O_NOSUBMIT, O_APPROVE, O_PROGRAM, O_PREFIX,
           O_CLERK_TOK, O_APPROVER_TOK, O_OPERATOR_TOK, O_DEADLINE, O_PROBE, O_DURATION, O_PROGRESS, O_SERIES, O_TRACE, O_PACE,
           O_NOSETUP, O_PERCONN, O_HELP };
    static const struct option lo[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"households", required_argument, NULL, O_HH},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"no-submit", no_argument, NULL, O_NOSUBMIT},
        {"approve", no_argument, NULL, O_APPROVE},
        {"program", required_argument, NULL, O_PROGRAM},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"clerk-token-file", required_argument, NULL, O_CLERK_TOK},
        {"approver-token-file", required_argument, NULL, O_APPROVER_TOK},
        {"operator-token-file", required_argument, NULL, O_OPERATOR_TOK},
        {"deadline-ms", required_argument, NULL, O_DEADLINE},
        {"probe", required_argument, NULL, O_PROBE},
        {"duration-s", required_argument, NULL, O_DURATION},
        {"progress", no_argument, NULL, O_PROGRESS},
        {"series", required_argument, NULL, O_SERIES},
        {"trace", required_argument, NULL, O_TRACE},
        {"households-per-s", required_argument, NULL, O_PACE},
        {"no-setup", no_argument, NULL, O_NOSETUP},
        {"per-connection", required_argument, NULL, O_PERCONN},
        {"help", no_argument, NULL, O_HELP},
        {0},
    };
    *o = (struct opts){.households = 2000, .submit = true, .program = "BENCH",
                       .deadline_ms = LOAD_DEADLINE_MS_DEFAULT,
                       .per_conn = KYUFU_BENCH_CALLS_PER_CONNECTION_MAX};
    kyufu_bench_args_ks("1,16,64,256", o->ks, &o->n_ks);
    /* Default prefix: new per run (seconds since the epoch in hex), so a
     * second run against the same cluster registers new households. */
    snprintf(o->prefix, sizeof o->prefix, "L%" PRIx64, (uint64_t)time(NULL));
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_CONFIG: o->config = optarg; break;
        case O_HH: o->households = kyufu_bench_args_u64("households", optarg, 1, 100000000); break;
        case O_INFLIGHT: kyufu_bench_args_ks(optarg, o->ks, &o->n_ks); break;
        case O_NOSUBMIT: o->submit = false; break;
        case O_APPROVE: o->approve = true; break;
        case O_PROGRAM: o->program = optarg; break;
        case O_PREFIX:
            if (strlen(optarg) == 0 || strlen(optarg) >= 12 ||
                strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789") != strlen(optarg)) {
                kyufu_bench_die("--prefix: 1..11 letters or digits");
            }
            strcpy(o->prefix, optarg);
            break;
        case O_CLERK_TOK: token_file("clerk-token-file", optarg, o->clerk_token); break;
        case O_APPROVER_TOK:
            token_file("approver-token-file", optarg, o->approver_token);
            break;
        case O_OPERATOR_TOK:
            token_file("operator-token-file", optarg, o->operator_token);
            break;
        case O_DEADLINE:
            o->deadline_ms = (uint32_t)kyufu_bench_args_u64("deadline-ms", optarg, 100,
                                                 KYUFU_CLIENT_DEADLINE_MS_MAX);
            break;
        case O_PROBE: o->probe_file = optarg; break;
        case O_DURATION: o->duration_s = kyufu_bench_args_seconds("duration-s", optarg); break;
        case O_PROGRESS: o->progress = true; break;
        case O_SERIES: o->series_file = optarg; break;
        case O_TRACE: o->trace_file = optarg; break;
        case O_PACE:
            o->households_per_s =
                (double)kyufu_bench_args_u64("households-per-s", optarg, 1, 100000);
            break;
        case O_NOSETUP: o->no_setup = true; break;
        case O_PERCONN:
            o->per_conn = (unsigned)kyufu_bench_args_u64("per-connection", optarg, 1,
                                                         KYUFU_BENCH_CALLS_PER_CONNECTION_MAX);
            break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc || o->config == NULL) {
        usage(stderr);
        exit(2);
    }
    if (o->approve && !o->submit) {
        kyufu_bench_die("--approve needs the submit step");
    }
    if (o->probe_file != NULL && o->households_per_s > 0) {
        kyufu_bench_die("--households-per-s paces a load, not the --probe");
    }
    token_env("KYUFU_BENCH_CLERK_TOKEN", o->clerk_token);
    token_env("KYUFU_BENCH_APPROVER_TOKEN", o->approver_token);
    token_env("KYUFU_BENCH_OPERATOR_TOKEN", o->operator_token);
    if (o->clerk_token[0] == '\0') {
        kyufu_bench_die("no clerk session: --clerk-token-file FILE or KYUFU_BENCH_CLERK_TOKEN "
            "(kyufuctl --token-file FILE login as a clerk)");
    }
    if (o->approver_token[0] == '\0' && (o->approve || !o->no_setup)) {
        kyufu_bench_die("no approver session (setup and --approve need one): --approver-token-file "
            "FILE or KYUFU_BENCH_APPROVER_TOKEN");
    }
}

static void close_cb(struct kyufu_client *c, void *arg)
{
    struct bench *b = arg;
    (void)c;
    b->n_closed++;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "kyufu-bench-load: handle left open: %s\n", uv_handle_type_name(h->type));
}

int main(int argc, char **argv)
{
    static struct bench bench;
    struct bench *b = &bench;
    char err[256];
    parse_args(&b->o, argc, argv);
    signal(SIGPIPE, SIG_IGN);

    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    if (kyufu_client_config_load(&cfg, b->o.config, err, sizeof err) != 0 ||
        kyufu_client_config_validate(&cfg, err, sizeof err) != 0) {
        kyufu_bench_die("%s", err);
    }
    if (uv_loop_init(&b->loop) != 0) {
        kyufu_bench_die("uv_loop_init failed");
    }
    unsigned kmax = b->o.probe_file != NULL ? 1 : kyufu_bench_args_ks_max(b->o.ks, b->o.n_ks);
    b->n_clients = kyufu_bench_driver_connections(kmax, b->o.per_conn);
    for (unsigned i = 0; i < b->n_clients; i++) {
        if (kyufu_client_create(&cfg, &b->loop, &b->clients[i], err, sizeof err) != 0) {
            kyufu_bench_die("client: %s", err);
        }
    }
    kyufu_client_config_free(&cfg);
    kyufu_bench_driver_init(&b->drv, &b->loop);
    uv_timer_init(&b->loop, &b->progress);
    b->progress.data = b;
    uv_timer_init(&b->loop, &b->series_timer);
    b->series_timer.data = b;
    uv_timer_init(&b->loop, &b->pace);
    b->pace.data = b;
    if (b->o.series_file != NULL) {
        b->series = fopen(b->o.series_file, "w");
        if (b->series == NULL) {
            kyufu_bench_die("%s: %s", b->o.series_file, strerror(errno));
        }
        setvbuf(b->series, NULL, _IOLBF, 0);
    }
    if (b->o.trace_file != NULL) {
        b->trace = fopen(b->o.trace_file, "w");
        if (b->trace == NULL) {
            kyufu_bench_die("%s: %s", b->o.trace_file, strerror(errno));
        }
    }

    if (!b->o.no_setup) {
        setup(b);
    }
    int rc = 0;
    if (b->o.probe_file != NULL) {
        b->probe = fopen(b->o.probe_file, "w");
        if (b->probe == NULL) {
            kyufu_bench_die("%s: %s", b->o.probe_file, strerror(errno));
        }
        setvbuf(b->probe, NULL, _IOLBF, 0);
        b->o.submit = false;
        b->o.approve = false;
        struct phase ph = {.k = 1, .households = 0 /* until stopped */};
        run_phase(b, &ph);
        fclose(b->probe);
        b->probe = NULL;
        report(b, &ph, 1);
        rc = ph.errors != 0 || ph.ok != ph.lat.n;
        kyufu_bench_latency_free(&ph.lat);
    } else {
        struct phase phs[KYUFU_BENCH_INFLIGHT_STEPS_MAX];
        memset(phs, 0, sizeof phs);
        for (unsigned i = 0; i < b->o.n_ks && !b->drv.stop; i++) {
            phs[i].k = b->o.ks[i];
            phs[i].households = b->o.households;
            phs[i].base = (uint64_t)i * b->o.households;
            run_phase(b, &phs[i]);
            fprintf(stderr, "kyufu-bench-load: K=%u done: %" PRIu64 " writes in %.1f s\n",
                    phs[i].k, phs[i].lat.n,
                    (double)(phs[i].t_end_ns - phs[i].t_start_ns) / 1e9);
            if (phs[i].errors != 0 || phs[i].ok != phs[i].lat.n) {
                rc = 1;
            }
        }
        report(b, phs, b->o.n_ks);
        for (unsigned i = 0; i < b->o.n_ks; i++) {
            kyufu_bench_latency_free(&phs[i].lat);
        }
    }

    kyufu_bench_driver_close(&b->drv);
    uv_close((uv_handle_t *)&b->progress, NULL);
    uv_close((uv_handle_t *)&b->series_timer, NULL);
    uv_close((uv_handle_t *)&b->pace, NULL);
    if (b->series != NULL && fclose(b->series) != 0) {
        kyufu_bench_die("%s: %s", b->o.series_file, strerror(errno));
    }
    if (b->trace != NULL && fclose(b->trace) != 0) {
        kyufu_bench_die("%s: %s", b->o.trace_file, strerror(errno));
    }
    for (unsigned i = 0; i < b->n_clients; i++) {
        kyufu_client_close(b->clients[i], close_cb, b);
    }
    uv_run(&b->loop, UV_RUN_DEFAULT);
    assert(b->n_closed == b->n_clients);
    if (uv_loop_close(&b->loop) != 0) {
        uv_walk(&b->loop, walk_cb, NULL);
        kyufu_bench_die("the loop did not close cleanly");
    }
    return rc;
}
