/* kyufuctl drill failover --mode planned|crash [--rounds N] [--json]
 * (docs/sla.md "Drills").
 *
 * Happy path of one round, on a private loop with an asynchronous client:
 * find the leader (Cluster.Status of every node) -> start the probe (a
 * Ledger.DrillProbe write every KYUFU_CTL_DRILL_PROBE_MS through libkyufu,
 * one in flight, each retried with its own key until acknowledged or its
 * deadline) -> Cluster.Drill{mode}: the leader records the intent in the
 * log, then hands leadership over (planned) or kills itself (crash) -> wait
 * until another node leads and the probe has been acknowledged again for a
 * while -> stop the probe -> read the round's failover from the
 * availability ledger (GetAvailability, by drill_id) -> verify that every
 * acknowledged probe write is in the audit trail exactly once (ListAudit
 * from the first probe's audit_seq) -> record the outcome
 * (Cluster.Drill{DRILL_RESULT}).
 *
 * A crashed leader is not restarted by this tool: systemd
 * (Restart=on-failure) or the operator does it.  Before the next round the
 * tool waits until every node answers Status again.
 *
 * Failure modes: a node refusing drills (PERMISSION_DENIED), no leader, or
 * no new leader within KYUFU_CTL_DRILL_FAILOVER_MS_MAX end the drill with
 * the server's status or UNAVAILABLE; a lost write makes the exit status
 * CHECK (5) after the report is printed. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "kyufu.h"

enum { OPT_MODE = 0x400, OPT_ROUNDS, OPT_HELP };

/* The probe's period: the 10 ms, a hundred writes a second. */
#define KYUFU_CTL_DRILL_PROBE_MS 10u
/* Probe writes before the drill starts, and after the failover, in ms. */
#define KYUFU_CTL_DRILL_SETTLE_MS 300u
/* A failover that takes longer than this is a failed drill. */
#define KYUFU_CTL_DRILL_FAILOVER_MS_MAX 30000u
/* The availability ledger is read from this long before the drill to this
 * long after now: its times are the leaders' identity clocks, which a held
 * wall clock step keeps apart from this host's clock; the drill id picks
 * the round's failover.  A day each way (the query allows 400 days). */
#define KYUFU_CTL_DRILL_LEDGER_SLACK_MS (24 * 3600 * 1000)
/* How long to wait for a crashed node to be back before the next round. */
#define KYUFU_CTL_DRILL_RESTART_MS_MAX 120000u
/* One probe write's deadline, retries included (it spans the failover). */
#define KYUFU_CTL_DRILL_WRITE_MS 20000u
#define KYUFU_CTL_DRILL_ROUNDS_MAX 1000u

struct round
{
    char drill_id[48];
    uint64_t old_leader, new_leader;
    uint64_t rto_ms;        /* the ledger's */
    uint64_t probe_rto_ms;  /* longest wait between two acknowledged writes */
    bool ledger_found;
    uint64_t acked;
    uint64_t *lost;         /* probe sequences */
    size_t n_lost;
};

struct drill
{
    struct ctl__run *r;
    uv_loop_t loop;
    struct kyufu_client *c;
    uv_timer_t tick;
    bool probing;
    bool inflight;
    struct kyufu_client_req probe;
    uint64_t probe_seq;            /* of the write in flight */
    uint64_t *acked;               /* sequences acknowledged this round */
    size_t n_acked, cap_acked;
    uint64_t first_audit_seq;      /* of the first acknowledged write */
    uint64_t last_ack_ms;          /* loop time */
    uint64_t max_gap_ms;
    uint64_t acks_after_mark;      /* acks since the failover was seen */
    char *drill_id;                /* of the round running */
};

/* ------------------------------------------------------------ loop helpers */

/* One call, waited for on the loop (the probe keeps running meanwhile). */
static int call(struct drill *d, const char *method, const ProtobufCMessage *req,
                int endpoint, uint32_t deadline_ms, struct kyufu_client_result *res)
{
    struct kyufu_client_call_opts opts = {.deadline_ms = deadline_ms,
                                          .endpoint = endpoint};
    return kyufu_client_call(d->c, method, req, NULL, &opts, res);
}

static void sleep_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void sleep_ms(struct drill *d, uint64_t ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&d->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, sleep_cb, ms, 0);
    while (!fired) {
        uv_run(&d->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&d->loop, UV_RUN_NOWAIT);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ probe */

static void probe_send(struct drill *d);

static void probe_cb(struct kyufu_client_req *req, int status)
{
    struct drill *d = req->data;
    d->inflight = false;
    if (status == 0 && req->result.grpc_status == KYUFU_GRPC_OK) {
        const Kyufu__V1__WriteResponse *wr = (const void *)req->result.response;
        if (d->n_acked == 0 && wr->result != NULL) {
            d->first_audit_seq = wr->result->audit_seq;
        }
        if (d->n_acked == d->cap_acked) {
            size_t cap = d->cap_acked == 0 ? 256 : d->cap_acked * 2;
            uint64_t *p = realloc(d->acked, cap * sizeof *p);
            if (p == NULL) {
                abort(); /* kyufuctl: out of memory is not recoverable */
            }
            d->acked = p;
            d->cap_acked = cap;
        }
        d->acked[d->n_acked++] = d->probe_seq;
        uint64_t now = uv_now(&d->loop);
        if (d->last_ack_ms != 0 && now - d->last_ack_ms > d->max_gap_ms) {
            d->max_gap_ms = now - d->last_ack_ms;
        }
        d->last_ack_ms = now;
        d->acks_after_mark++;
    }
    if (req->result.response != NULL) {
        kyufu_client_response_free(req->result.response);
        req->result.response = NULL;
    }
}

static void probe_send(struct drill *d)
{
    Kyufu__V1__DrillProbeRequest req = KYUFU__V1__DRILL_PROBE_REQUEST__INIT;
    Kyufu__V1__DrillProbe body = KYUFU__V1__DRILL_PROBE__INIT;
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if (kyufu_client_header_init(d->c, &hdr, &key, d->r->actor) != 0) {
        return;
    }
    body.drill_id = d->drill_id;
    req.header = &hdr;
    req.command = &body;
    memset(&d->probe, 0, sizeof d->probe);
    d->probe.data = d;
    d->probe_seq = key.sequence;
    struct kyufu_client_call_opts opts = {.deadline_ms = KYUFU_CTL_DRILL_WRITE_MS,
                                          .endpoint = -1};
    if (kyufu_client_call_async(d->c, &d->probe, "DrillProbe", &req.base, NULL,
                                &opts, probe_cb) == 0) {
        d->inflight = true;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct drill *d = t->data;
    if (d->probing && !d->inflight) {
        probe_send(d);
    }
}

static void probe_stop(struct drill *d)
{
    d->probing = false;
    while (d->inflight) {
        uv_run(&d->loop, UV_RUN_ONCE);
    }
}

/* ------------------------------------------------------------ cluster */

/* A node that says it leads (0: none yet) and its term; *answered is the
 * number of nodes that answered Status. */
static uint64_t find_leader(struct drill *d, unsigned *answered, uint64_t *term)
{
    uint64_t leader = 0;
    unsigned n = kyufu_client_endpoint_count(d->c);
    *answered = 0;
    *term = 0;
    for (unsigned i = 0; i < n; i++) {
        Kyufu__V1__StatusRequest req = KYUFU__V1__STATUS_REQUEST__INIT;
        struct kyufu_client_result res;
        int rv = call(d, "Status", &req.base, (int)i, 1000, &res);
        if (rv == 0 && res.grpc_status == KYUFU_GRPC_OK) {
            const Kyufu__V1__NodeStatus *st = (const void *)res.response;
            (*answered)++;
            if (strcmp(st->role, "leader") == 0 && st->term >= *term) {
                leader = st->id;
                *term = st->term;
            }
        }
        if (res.response != NULL) {
            kyufu_client_response_free(res.response);
        }
    }
    return leader;
}

/* Count the probe's audit records from first_audit_seq on; every
 * acknowledged sequence must appear exactly once (with outcome OK). */
static int verify(struct drill *d, struct round *rd)
{
    const char *cid = kyufu_client_id(d->c);
    uint64_t lo = d->acked[0], hi = d->acked[d->n_acked - 1];
    size_t span = (size_t)(hi - lo + 1);
    unsigned *count = calloc(span, sizeof *count);
    char token[32];
    if (count == NULL) {
        return ctl__fail(d->r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    snprintf(token, sizeof token, "%" PRIu64,
             d->first_audit_seq > 0 ? d->first_audit_seq - 1 : 0);
    for (;;) {
        Kyufu__V1__ListRequest req = KYUFU__V1__LIST_REQUEST__INIT;
        struct kyufu_client_result res;
        req.page_size = 1000;
        req.page_token = token;
        int rv = call(d, "ListAudit", &req.base, -1, 30000, &res);
        if (rv != 0 || res.grpc_status != KYUFU_GRPC_OK) {
            free(count);
            return ctl__call_exit(d->r, rv, &res);
        }
        const Kyufu__V1__ListAuditResponse *page = (const void *)res.response;
        for (size_t i = 0; i < page->n_records; i++) {
            const Kyufu__V1__AuditRecord *a = page->records[i];
            if (strcmp(a->client_id, cid) == 0 && a->client_seq >= lo &&
                a->client_seq <= hi && a->outcome == KYUFU__V1__CODE__OK) {
                count[a->client_seq - lo]++;
            }
        }
        bool more = page->next_page_token[0] != '\0';
        snprintf(token, sizeof token, "%s", page->next_page_token);
        kyufu_client_response_free(res.response);
        if (!more) {
            break;
        }
    }
    rd->acked = d->n_acked;
    for (size_t i = 0; i < d->n_acked; i++) {
        if (count[d->acked[i] - lo] != 1) {
            uint64_t *p = realloc(rd->lost, (rd->n_lost + 1) * sizeof *p);
            if (p == NULL) {
                free(count);
                return ctl__fail(d->r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
            }
            rd->lost = p;
            rd->lost[rd->n_lost++] = d->acked[i];
        }
    }
    free(count);
    return 0;
}

/* The round's failover as the availability ledger recorded it. */
static void ledger_rto(struct drill *d, struct round *rd, int64_t from_ms)
{
    for (int tries = 0; tries < 50 && !rd->ledger_found; tries++) {
        Kyufu__V1__GetAvailabilityRequest req = KYUFU__V1__GET_AVAILABILITY_REQUEST__INIT;
        struct kyufu_client_result res;
        req.from_ms = from_ms;
        req.to_ms = wall_ms() + KYUFU_CTL_DRILL_LEDGER_SLACK_MS;
        int rv = call(d, "GetAvailability", &req.base, -1, 5000, &res);
        if (rv == 0 && res.grpc_status == KYUFU_GRPC_OK) {
            const Kyufu__V1__AvailabilityReport *rep = (const void *)res.response;
            for (size_t i = 0; i < rep->n_failovers; i++) {
                const Kyufu__V1__Failover *f = rep->failovers[i];
                if (strcmp(f->drill_id, rd->drill_id) == 0 && f->new_leader_id != 0) {
                    rd->rto_ms = f->rto_ms;
                    rd->new_leader = f->new_leader_id;
                    rd->ledger_found = true;
                }
            }
        }
        if (res.response != NULL) {
            kyufu_client_response_free(res.response);
        }
        if (!rd->ledger_found) {
            sleep_ms(d, 100);
        }
    }
}

static int one_round(struct drill *d, Kyufu__V1__DrillMode mode, unsigned i,
                     struct round *rd)
{
    unsigned answered = 0;
    uint64_t deadline = uv_now(&d->loop) + KYUFU_CTL_DRILL_RESTART_MS_MAX;
    uint64_t leader = 0;
    unsigned n_nodes = kyufu_client_endpoint_count(d->c);
    bool said = false;
    /* Every node up and a leader (a crashed one must be back first). */
    uint64_t term = 0;
    for (;;) {
        leader = find_leader(d, &answered, &term);
        if (leader != 0 && answered == n_nodes) {
            break;
        }
        if (uv_now(&d->loop) > deadline) {
            return ctl__fail(d->r, KYUFU_CTL_EXIT_UNAVAILABLE,
                             "drill: %u of %u nodes answer and %s leader after %u s; "
                             "restart the stopped node (systemd does with "
                             "Restart=on-failure)",
                             answered, n_nodes, leader != 0 ? "a" : "no",
                             KYUFU_CTL_DRILL_RESTART_MS_MAX / 1000);
        }
        if (!said && !d->r->json && answered < n_nodes) {
            fprintf(d->r->out, "waiting for every node to answer (%u of %u do): "
                    "the operator or systemd restarts a crashed one\n",
                    answered, n_nodes);
            fflush(d->r->out);
            said = true;
        }
        sleep_ms(d, 200);
    }
    snprintf(rd->drill_id, sizeof rd->drill_id, "%s-%" PRId64 "-%u",
             mode == KYUFU__V1__DRILL_MODE__DRILL_CRASH ? "crash" : "planned",
             wall_ms(), i);
    rd->old_leader = leader;
    d->drill_id = rd->drill_id;
    d->n_acked = 0;
    d->max_gap_ms = 0;
    d->last_ack_ms = 0;
    d->first_audit_seq = 0;
    /* The ledger's times are the leaders' identity clocks, not this
     * host's: a wide range, matched on the drill id (unique). */
    int64_t from_ms = wall_ms() - KYUFU_CTL_DRILL_LEDGER_SLACK_MS;
    d->probing = true;
    sleep_ms(d, KYUFU_CTL_DRILL_SETTLE_MS);

    Kyufu__V1__DrillRequest req = KYUFU__V1__DRILL_REQUEST__INIT;
    struct kyufu_client_result res;
    req.drill_id = rd->drill_id;
    req.mode = mode;
    int rv = call(d, "Drill", &req.base, -1, 20000, &res);
    if (rv != 0 || res.grpc_status != KYUFU_GRPC_OK) {
        probe_stop(d);
        return ctl__call_exit(d->r, rv, &res);
    }
    kyufu_client_response_free(res.response);

    /* A leader of a later term (another node, or after a crash the same
     * one restarted and elected again) and the probe acknowledged again
     * for a while. */
    deadline = uv_now(&d->loop) + KYUFU_CTL_DRILL_FAILOVER_MS_MAX;
    uint64_t now_leader = 0, now_term = 0;
    for (;;) {
        now_leader = find_leader(d, &answered, &now_term);
        if (now_leader != 0 && now_term > term) {
            break;
        }
        if (uv_now(&d->loop) > deadline) {
            probe_stop(d);
            return ctl__fail(d->r, KYUFU_CTL_EXIT_UNAVAILABLE,
                             "drill %s: no other node took over within %u ms",
                             rd->drill_id, KYUFU_CTL_DRILL_FAILOVER_MS_MAX);
        }
        sleep_ms(d, 50);
    }
    d->acks_after_mark = 0;
    while (d->acks_after_mark < 5 && uv_now(&d->loop) < deadline) {
        sleep_ms(d, 20);
    }
    sleep_ms(d, KYUFU_CTL_DRILL_SETTLE_MS);
    probe_stop(d);
    rd->new_leader = now_leader;
    rd->probe_rto_ms = d->max_gap_ms;
    if (d->n_acked == 0) {
        return ctl__fail(d->r, KYUFU_CTL_EXIT_UNAVAILABLE,
                         "drill %s: no probe write was acknowledged (does the "
                         "acting staff account have the OPERATOR role?)",
                         rd->drill_id);
    }
    ledger_rto(d, rd, from_ms);
    rv = verify(d, rd);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__DrillRequest done = KYUFU__V1__DRILL_REQUEST__INIT;
    done.drill_id = rd->drill_id;
    done.mode = KYUFU__V1__DRILL_MODE__DRILL_RESULT;
    done.writes_acknowledged = rd->acked;
    done.writes_lost = rd->n_lost;
    rv = call(d, "Drill", &done.base, -1, 20000, &res);
    if (rv != 0 || res.grpc_status != KYUFU_GRPC_OK) {
        return ctl__call_exit(d->r, rv, &res);
    }
    kyufu_client_response_free(res.response);
    if (!d->r->json) {
        fprintf(d->r->out,
                "round %u %s: leader %" PRIu64 " -> %" PRIu64 ", rto %s%" PRIu64
                " ms (ledger), %" PRIu64 " ms (probe), %" PRIu64
                " writes acknowledged, %zu lost\n",
                i + 1, rd->drill_id, rd->old_leader, rd->new_leader,
                rd->ledger_found ? "" : "(not in ledger) ", rd->rto_ms,
                rd->probe_rto_ms, rd->acked, rd->n_lost);
        if (mode == KYUFU__V1__DRILL_MODE__DRILL_CRASH) {
            fprintf(d->r->out, "  node %" PRIu64 " was killed: the operator or "
                    "systemd (Restart=on-failure) restarts it\n", rd->old_leader);
        }
        fflush(d->r->out);
    }
    return 0;
}

/* ------------------------------------------------------------ report */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    size_t rank = (p * n + 99) / 100;
    return v[rank == 0 ? 0 : rank - 1];
}

static int report(struct drill *d, const char *mode, struct round *rounds,
                  unsigned n)
{
    uint64_t *rto = calloc(n + 1, sizeof *rto);
    uint64_t *probe = calloc(n + 1, sizeof *probe);
    uint64_t acked = 0;
    size_t lost = 0;
    if (rto == NULL || probe == NULL) {
        free(rto);
        free(probe);
        return ctl__fail(d->r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    for (unsigned i = 0; i < n; i++) {
        rto[i] = rounds[i].rto_ms;
        probe[i] = rounds[i].probe_rto_ms;
        acked += rounds[i].acked;
        lost += rounds[i].n_lost;
    }
    qsort(rto, n, sizeof *rto, cmp_u64);
    qsort(probe, n, sizeof *probe, cmp_u64);
    int rv = 0;
    if (d->r->json) {
        json_t *arr = json_array();
        json_t *all_lost = json_array();
        for (unsigned i = 0; i < n; i++) {
            struct round *rd = &rounds[i];
            json_t *l = json_array();
            for (size_t j = 0; j < rd->n_lost; j++) {
                json_array_append_new(l, json_integer((json_int_t)rd->lost[j]));
                json_array_append_new(all_lost, json_integer((json_int_t)rd->lost[j]));
            }
            json_array_append_new(arr, json_pack(
                "{s:i,s:s,s:I,s:I,s:I,s:b,s:I,s:I,s:o}", "round", (int)(i + 1),
                "drill_id", rd->drill_id, "old_leader", (json_int_t)rd->old_leader,
                "new_leader", (json_int_t)rd->new_leader, "rto_ms",
                (json_int_t)rd->rto_ms, "in_ledger", rd->ledger_found,
                "probe_rto_ms", (json_int_t)rd->probe_rto_ms, "acknowledged",
                (json_int_t)rd->acked, "lost", l));
        }
        rv = ctl__emit_json(d->r, json_pack(
            "{s:s,s:o,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:I,s:o}", "mode", mode,
            "rounds", arr, "rto_ms", "p50", (json_int_t)pct(rto, n, 50), "p90",
            (json_int_t)pct(rto, n, 90), "max", (json_int_t)rto[n - 1],
            "probe_rto_ms", "p50", (json_int_t)pct(probe, n, 50), "p90",
            (json_int_t)pct(probe, n, 90), "max", (json_int_t)probe[n - 1],
            "acknowledged", (json_int_t)acked, "lost", all_lost));
    } else {
        fprintf(d->r->out,
                "%s drill, %u rounds: rto p50 %" PRIu64 " ms, p90 %" PRIu64
                " ms, max %" PRIu64 " ms (ledger); probe p50 %" PRIu64
                " ms, max %" PRIu64 " ms; %" PRIu64
                " writes acknowledged, %zu lost\n",
                mode, n, pct(rto, n, 50), pct(rto, n, 90), rto[n - 1],
                pct(probe, n, 50), probe[n - 1], acked, lost);
        for (unsigned i = 0; i < n; i++) {
            for (size_t j = 0; j < rounds[i].n_lost; j++) {
                fprintf(d->r->out, "  lost: round %u, %s sequence %" PRIu64 "\n",
                        i + 1, kyufu_client_id(d->c), rounds[i].lost[j]);
            }
        }
    }
    free(rto);
    free(probe);
    if (rv == 0 && lost > 0) {
        rv = KYUFU_CTL_EXIT_CHECK;
    }
    return rv;
}

/* ------------------------------------------------------------ command */

void ctl__drill_usage(FILE *out)
{
    fprintf(out,
            "  drill failover --mode planned|crash [--rounds N]   (needs [sla] "
            "allow_drills = true on the nodes,\n"
            "                 and --as an OPERATOR account for the probe writes)\n");
}

static void closed_cb(struct kyufu_client *c, void *arg)
{
    (void)c;
    *(bool *)arg = true;
}

int ctl__drill(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    static const struct option extra[] = {
        {"mode", required_argument, NULL, OPT_MODE},
        {"rounds", required_argument, NULL, OPT_ROUNDS},
    };
    struct option opts[CTL__COMMON_OPTS_N + 4];
    const char *mode_s = NULL;
    unsigned long rounds_n = 1;
    if (strcmp(verb, "failover") != 0) {
        return -1;
    }
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    memcpy(opts + CTL__COMMON_OPTS_N, extra, sizeof extra);
    opts[CTL__COMMON_OPTS_N + 2] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[CTL__COMMON_OPTS_N + 3] = (struct option){0};
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (ch == OPT_HELP) {
            ctl__drill_usage(r->out);
            return 0;
        }
        if (ch == '?' || ch == ':') {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "drill failover: unknown option or missing value in '%s'",
                             argv[optind - 1]);
        }
        if (ch == OPT_MODE) {
            mode_s = optarg;
        } else if (ch == OPT_ROUNDS) {
            char *end;
            errno = 0;
            rounds_n = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                rounds_n < 1 || rounds_n > KYUFU_CTL_DRILL_ROUNDS_MAX) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "--rounds: '%s' is not an integer in [1, %u]", optarg,
                                 KYUFU_CTL_DRILL_ROUNDS_MAX);
            }
        } else {
            int rv = ctl__common_opt(r, ch, optarg);
            if (rv != 0) {
                return rv;
            }
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "drill failover: unexpected argument '%s'",
                         argv[optind]);
    }
    Kyufu__V1__DrillMode mode;
    if (mode_s != NULL && strcmp(mode_s, "planned") == 0) {
        mode = KYUFU__V1__DRILL_MODE__DRILL_PLANNED;
    } else if (mode_s != NULL && strcmp(mode_s, "crash") == 0) {
        mode = KYUFU__V1__DRILL_MODE__DRILL_CRASH;
    } else {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "drill failover: --mode must be planned or crash");
    }

    struct drill d;
    memset(&d, 0, sizeof d);
    d.r = r;
    if (uv_loop_init(&d.loop) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "cannot create a loop");
    }
    int rv = ctl__client_on(r, &d.loop, &d.c);
    if (rv != 0) {
        uv_loop_close(&d.loop);
        return rv;
    }
    uv_timer_init(&d.loop, &d.tick);
    d.tick.data = &d;
    uv_timer_start(&d.tick, on_tick, KYUFU_CTL_DRILL_PROBE_MS, KYUFU_CTL_DRILL_PROBE_MS);

    struct round *rounds = calloc(rounds_n, sizeof *rounds);
    unsigned done = 0;
    if (rv == 0 && rounds == NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    for (unsigned i = 0; rv == 0 && i < rounds_n; i++) {
        rv = one_round(&d, mode, i, &rounds[i]);
        if (rv == 0) {
            done++;
        }
    }
    if (rv == 0 && done > 0) {
        rv = report(&d, mode_s, rounds, done);
    }
    probe_stop(&d);
    uv_close((uv_handle_t *)&d.tick, NULL);
    bool closed = false;
    kyufu_client_close(d.c, closed_cb, &closed);
    while (!closed) {
        uv_run(&d.loop, UV_RUN_ONCE);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    for (unsigned i = 0; rounds != NULL && i < rounds_n; i++) {
        free(rounds[i].lost);
    }
    free(rounds);
    free(d.acked);
    return rv;
}
