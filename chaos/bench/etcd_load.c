/* kyufu-bench-etcd: load an etcd 3.4 cluster through its own gRPC API
 * (etcdserverpb.KV/Put, 64-byte values) with the same C gRPC client that
 * libkyufu, and so kyufu-bench-load, sits on (api/'s kyufu_grpc_client:
 * OpenSSL TLS, nghttp2 HTTP/2, gRPC framing), so both sides of the
 * side-by-side benchmark (chaos/bench/side_by_side.py, docs/benchmarks.md)
 * pay the same client cost for bytes on the wire.
 *
 * Load mode (default): for each K of --inflight, K calls in flight for
 * --duration-s seconds, each call a Put of a new key ("PREFIX/K/n") with a
 * --value-bytes value, spread over ceil(K / --per-connection) HTTP/2
 * connections to the FIRST endpoint (the side-by-side script puts etcd's
 * leader first, as libkyufu sends kyufu's writes to kyufu's leader).  After
 * the time is up no new call starts; the phase ends when the last answer is
 * in.  Per K: puts/s, latency p50/p99/max (send to answer).  JSON on
 * stdout, the same field names as kyufu-bench-load (etcd has no
 * group-commit field in its answer: one revision per put).  The in-flight
 * loop, the latency statistics and the argument checks are
 * kyufu-bench-load's (bench_driver.h, bench_latency.h, bench_args.h).
 *
 * Probe mode (--probe FILE): one Put in flight until SIGTERM/SIGINT; one
 * line per acknowledged put, "unix_ms latency_us grpc_status revision
 * endpoint".  A put that fails (connection refused or broken, UNAVAILABLE,
 * any non-OK status, or no answer within --attempt-ms) is sent again to the
 * NEXT endpoint after a decorrelated-jitter wait, with libkyufu's defaults
 * and code (client/backoff.h: 10..250 ms; attempt 2,000 ms), so a failover
 * of either system is seen through the same retry rule.
 *
 * Exit: 0 when every put was answered OK, 1 otherwise, 2 on a usage or
 * setup error.  A benchmark, run by hand; not in any test suite. */
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

#include <openssl/rand.h>
#include <uv.h>

#include "backoff.h"
#include "bench_args.h"
#include "bench_driver.h"
#include "bench_latency.h"
#include "client_limits.h"
#include "etcdserverpb/rpc.pb-c.h"
#include "grpc.h"

#define ETCD_ENDPOINTS_MAX 8u
#define ETCD_VALUE_BYTES_MAX 4096u
#define ETCD_KEY_BYTES 64u
#define ETCD_PUT_PATH "/etcdserverpb.KV/Put"
/* Encoded PutRequest: key + value + a few tag/length bytes. */
#define ETCD_REQ_BYTES (ETCD_KEY_BYTES + ETCD_VALUE_BYTES_MAX + 16u)

struct opts
{
    char *hosts[ETCD_ENDPOINTS_MAX];
    uint16_t ports[ETCD_ENDPOINTS_MAX];
    unsigned n_endpoints;
    const char *ca_file;
    unsigned ks[KYUFU_BENCH_INFLIGHT_STEPS_MAX];
    unsigned n_ks;
    double duration_s;
    unsigned value_bytes;
    unsigned per_conn;
    uint32_t attempt_ms;
    const char *probe_file;
    char prefix[24];
};

struct bench;

struct slot
{
    struct bench *b;
    struct kyufu_grpc_client_req req;
    unsigned client;     /* load: index into clients[]; probe: endpoint */
    uint64_t n;          /* key number */
    uint64_t t0_ns;      /* first send of the current put */
    uint8_t body[ETCD_REQ_BYTES];
    size_t body_len;
    struct client__backoff backoff;
    uv_timer_t retry;
    bool busy;
};

struct phase
{
    unsigned k;
    unsigned clients;
    uint64_t next;
    uint64_t ok, errors;
    struct kyufu_bench_latency lat;  /* one per answered put, tag: its revision */
    uint64_t t_start_ns, t_end_ns;
};

struct bench
{
    struct opts o;
    uv_loop_t loop;
    struct kyufu_bench_driver drv;
    struct kyufu_grpc_client *clients[KYUFU_BENCH_CONNECTIONS_MAX > ETCD_ENDPOINTS_MAX
                                          ? KYUFU_BENCH_CONNECTIONS_MAX
                                          : ETCD_ENDPOINTS_MAX];
    unsigned n_clients;
    unsigned n_closed;
    struct slot *slots;
    struct phase *ph;
    FILE *probe;
    uint8_t value[ETCD_VALUE_BYTES_MAX];
    uint64_t rng;
};

const char kyufu_bench_program[] = "kyufu-bench-etcd";

/* ------------------------------------------------------------ one put */

static void put_cb(struct kyufu_grpc_client_req *req, int status, const char *message,
                   const uint8_t *response, size_t response_len);

/* Encode the slot's put (key PREFIX/K/n, the shared value). */
static void encode_put(struct bench *b, struct slot *s)
{
    char key[ETCD_KEY_BYTES];
    int len = snprintf(key, sizeof key, "%s/%u/%" PRIu64, b->o.prefix, b->ph->k, s->n);
    if (len < 0 || len >= (int)sizeof key) {
        kyufu_bench_die("key too long");
    }
    Etcdserverpb__PutRequest pr = ETCDSERVERPB__PUT_REQUEST__INIT;
    pr.key.data = (uint8_t *)key;
    pr.key.len = (size_t)len;
    pr.value.data = b->value;
    pr.value.len = b->o.value_bytes;
    size_t need = etcdserverpb__put_request__get_packed_size(&pr);
    assert(need <= sizeof s->body);
    s->body_len = etcdserverpb__put_request__pack(&pr, s->body);
}

static void send_put(struct slot *s)
{
    struct bench *b = s->b;
    struct kyufu_grpc_client *c = b->clients[s->client];
    uint64_t timeout_ms = b->o.probe_file != NULL ? b->o.attempt_ms
                                                  : (uint64_t)KYUFU_CLIENT_DEADLINE_MS_MAX;
    int rv = kyufu_grpc_client_call(c, &s->req, ETCD_PUT_PATH, s->body, s->body_len,
                                    timeout_ms, NULL, 0, put_cb);
    if (rv != 0) {
        kyufu_bench_die("call: %s", kyufu_api_strerror(rv));
    }
    s->busy = true;
    b->drv.in_flight++;
}

static void next_put(struct slot *s)
{
    struct bench *b = s->b;
    struct phase *ph = b->ph;
    if (!kyufu_bench_driver_may_start(&b->drv)) {
        return;
    }
    s->n = ph->next++;
    s->t0_ns = uv_hrtime();
    client__backoff_init(&s->backoff, KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT,
                         KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT);
    encode_put(b, s);
    send_put(s);
}

static void retry_cb(uv_timer_t *t)
{
    struct slot *s = t->data;
    if (s->b->drv.stop) {
        return;
    }
    send_put(s);
}

static void put_cb(struct kyufu_grpc_client_req *req, int status, const char *message,
                   const uint8_t *response, size_t response_len)
{
    struct slot *s = req->data;
    struct bench *b = s->b;
    struct phase *ph = b->ph;
    s->busy = false;
    b->drv.in_flight--;
    if (status == KYUFU_GRPC_CANCELLED && b->drv.stop) {
        return;
    }
    if (status != KYUFU_GRPC_OK && b->probe != NULL) {
        /* Probe: the next endpoint, after a jittered wait (libkyufu's rule). */
        s->client = (s->client + 1) % b->o.n_endpoints;
        uv_timer_start(&s->retry, retry_cb, client__backoff_next(&s->backoff, &b->rng), 0);
        return;
    }
    uint32_t lat_us = kyufu_bench_latency_us_since(s->t0_ns);
    int64_t rev = 0;
    if (status == KYUFU_GRPC_OK) {
        Etcdserverpb__PutResponse *pr =
            etcdserverpb__put_response__unpack(NULL, response_len, response);
        if (pr == NULL) {
            kyufu_bench_die("malformed PutResponse (%zu bytes)", response_len);
        }
        rev = pr->header != NULL ? pr->header->revision : 0;
        etcdserverpb__put_response__free_unpacked(pr, NULL);
        ph->ok++;
    } else {
        if (ph->errors++ < 3) {
            fprintf(stderr, "kyufu-bench-etcd: Put: %s: %s\n", kyufu_grpc_status_name(status),
                    message);
        }
    }
    kyufu_bench_latency_add(&ph->lat, lat_us, rev > 0 ? (uint64_t)rev : 0);
    if (b->probe != NULL) {
        fprintf(b->probe, "%" PRId64 " %" PRIu32 " %d %" PRId64 " %u\n",
                kyufu_bench_latency_unix_ms(), lat_us,
                status, rev, s->client);
    }
    next_put(s);
}

/* ------------------------------------------------------------ phases */

static void run_phase(struct bench *b, struct phase *ph, bool probe)
{
    b->ph = ph;
    ph->clients = probe ? 1 : kyufu_bench_driver_connections(ph->k, b->o.per_conn);
    ph->t_start_ns = kyufu_bench_driver_begin(&b->drv);
    for (unsigned i = 0; i < ph->k; i++) {
        struct slot *s = &b->slots[i];
        s->b = b;
        s->req.data = s;
        s->client = probe ? 0 : i % ph->clients;
        next_put(s);
    }
    ph->t_end_ns = kyufu_bench_driver_drain(&b->drv, ph->t_start_ns, b->o.duration_s, probe);
}

/* ------------------------------------------------------------ report */

static void report(struct bench *b, struct phase *phs, unsigned n)
{
    printf("{\n  \"system\": \"etcd\", \"prefix\": \"%s\", \"value_bytes\": %u,\n"
           "  \"calls_per_connection_max\": %u, \"duration_s\": %.1f,\n  \"runs\": [\n",
           b->o.prefix, b->o.value_bytes, b->o.per_conn, b->o.duration_s);
    for (unsigned i = 0; i < n; i++) {
        struct phase *ph = &phs[i];
        struct kyufu_bench_latency_summary s =
            kyufu_bench_latency_summarize(&ph->lat, ph->t_start_ns, ph->t_end_ns);
        printf("    {\"k\": %u, \"connections\": %u, \"writes\": %" PRIu64 ", \"ok\": %" PRIu64
               ", \"errors\": %" PRIu64 ",\n     ",
               ph->k, ph->clients, ph->lat.n, ph->ok, ph->errors);
        kyufu_bench_latency_print(&s);
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ]\n}\n");
}

/* ------------------------------------------------------------ options */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kyufu-bench-etcd --endpoints H:P[,H:P...] --ca FILE --duration-s S\n"
            "         [--inflight 1,16,64,256,1024] [--value-bytes 64] [--per-connection 64]\n"
            "         [--prefix P]\n"
            "       kyufu-bench-etcd --endpoints ... --ca FILE --probe FILE [--attempt-ms MS]\n"
            "load: every connection goes to the first endpoint (put the leader first)\n");
}

/* "127.0.0.1:2379,127.0.0.1:2479": numeric hosts and ports. */
static void parse_endpoints(struct opts *o, const char *s)
{
    static char buf[512];
    if (strlen(s) >= sizeof buf) {
        kyufu_bench_die("--endpoints: too long");
    }
    strcpy(buf, s);
    o->n_endpoints = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (o->n_endpoints == ETCD_ENDPOINTS_MAX || colon == NULL || colon == tok) {
            kyufu_bench_die("--endpoints: '%s' is not host:port (at most %u)", tok, ETCD_ENDPOINTS_MAX);
        }
        *colon = '\0';
        o->hosts[o->n_endpoints] = tok;
        o->ports[o->n_endpoints] = (uint16_t)kyufu_bench_args_u64("endpoints", colon + 1, 1, 65535);
        o->n_endpoints++;
    }
    if (o->n_endpoints == 0) {
        kyufu_bench_die("--endpoints: empty");
    }
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    enum { O_ENDPOINTS = 0x100, O_CA, O_INFLIGHT, O_DURATION, O_VALUE, O_PERCONN, O_ATTEMPT,
           O_PROBE, O_PREFIX, O_HELP };
    static const struct option lo[] = {
        {"endpoints", required_argument, NULL, O_ENDPOINTS},
        {"ca", required_argument, NULL, O_CA},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"duration-s", required_argument, NULL, O_DURATION},
        {"value-bytes", required_argument, NULL, O_VALUE},
        {"per-connection", required_argument, NULL, O_PERCONN},
        {"attempt-ms", required_argument, NULL, O_ATTEMPT},
        {"probe", required_argument, NULL, O_PROBE},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"help", no_argument, NULL, O_HELP},
        {0},
    };
    *o = (struct opts){.value_bytes = 64, .per_conn = KYUFU_BENCH_CALLS_PER_CONNECTION_MAX,
                       .attempt_ms = KYUFU_CLIENT_ATTEMPT_MS_DEFAULT};
    kyufu_bench_args_ks("1,16,64,256,1024", o->ks, &o->n_ks);
    snprintf(o->prefix, sizeof o->prefix, "b%" PRIx64, (uint64_t)time(NULL));
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_ENDPOINTS: parse_endpoints(o, optarg); break;
        case O_CA: o->ca_file = optarg; break;
        case O_INFLIGHT: kyufu_bench_args_ks(optarg, o->ks, &o->n_ks); break;
        case O_DURATION: o->duration_s = kyufu_bench_args_seconds("duration-s", optarg); break;
        case O_VALUE:
            o->value_bytes = (unsigned)kyufu_bench_args_u64("value-bytes", optarg, 1, ETCD_VALUE_BYTES_MAX);
            break;
        case O_PERCONN:
            o->per_conn = (unsigned)kyufu_bench_args_u64("per-connection", optarg, 1,
                                                         KYUFU_BENCH_CALLS_PER_CONNECTION_MAX);
            break;
        case O_ATTEMPT:
            o->attempt_ms = (uint32_t)kyufu_bench_args_u64("attempt-ms", optarg, 10,
                                                KYUFU_CLIENT_DEADLINE_MS_MAX);
            break;
        case O_PROBE: o->probe_file = optarg; break;
        case O_PREFIX:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof o->prefix ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
                    != strlen(optarg)) {
                kyufu_bench_die("--prefix: 1..%zu letters, digits or '-'", sizeof o->prefix - 1);
            }
            strcpy(o->prefix, optarg);
            break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc || o->n_endpoints == 0 || o->ca_file == NULL) {
        usage(stderr);
        exit(2);
    }
    if (o->probe_file == NULL && o->duration_s == 0) {
        kyufu_bench_die("load mode needs --duration-s");
    }
}

static void close_cb(struct kyufu_grpc_client *c, void *arg)
{
    struct bench *b = arg;
    (void)c;
    b->n_closed++;
}

int main(int argc, char **argv)
{
    static struct bench bench;
    static struct slot slots[KYUFU_BENCH_INFLIGHT_MAX];
    struct bench *b = &bench;
    char err[256];
    parse_args(&b->o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    b->slots = slots;
    memset(b->value, 'v', sizeof b->value);
    if (RAND_bytes((unsigned char *)&b->rng, sizeof b->rng) != 1) {
        kyufu_bench_die("RAND_bytes failed");
    }
    if (uv_loop_init(&b->loop) != 0) {
        kyufu_bench_die("uv_loop_init failed");
    }
    bool probe = b->o.probe_file != NULL;
    /* Probe: one connection per endpoint; load: ceil(kmax / per_conn) to
     * the first. */
    b->n_clients = probe ? b->o.n_endpoints
                         : kyufu_bench_driver_connections(
                               kyufu_bench_args_ks_max(b->o.ks, b->o.n_ks), b->o.per_conn);
    for (unsigned i = 0; i < b->n_clients; i++) {
        unsigned e = probe ? i : 0;
        struct kyufu_grpc_client_config gc = {.host = b->o.hosts[e], .port = b->o.ports[e],
                                              .ca_file = b->o.ca_file};
        if (kyufu_grpc_client_new(&b->loop, &gc, &b->clients[i], err, sizeof err) != 0) {
            kyufu_bench_die("client: %s", err);
        }
    }
    for (unsigned i = 0; i < KYUFU_BENCH_INFLIGHT_MAX; i++) {
        uv_timer_init(&b->loop, &slots[i].retry);
        slots[i].retry.data = &slots[i];
    }
    kyufu_bench_driver_init(&b->drv, &b->loop);

    int rc = 0;
    struct phase phs[KYUFU_BENCH_INFLIGHT_STEPS_MAX];
    memset(phs, 0, sizeof phs);
    unsigned n_phases = 0;
    if (probe) {
        b->probe = fopen(b->o.probe_file, "w");
        if (b->probe == NULL) {
            kyufu_bench_die("%s: %s", b->o.probe_file, strerror(errno));
        }
        setvbuf(b->probe, NULL, _IOLBF, 0);
        phs[0].k = 1;
        run_phase(b, &phs[0], true);
        fclose(b->probe);
        b->probe = NULL;
        n_phases = 1;
    } else {
        for (unsigned i = 0; i < b->o.n_ks && !b->drv.stop; i++) {
            phs[i].k = b->o.ks[i];
            run_phase(b, &phs[i], false);
            fprintf(stderr, "kyufu-bench-etcd: K=%u done: %" PRIu64 " puts in %.1f s\n",
                    phs[i].k, phs[i].lat.n,
                    (double)(phs[i].t_end_ns - phs[i].t_start_ns) / 1e9);
            n_phases++;
        }
    }
    report(b, phs, n_phases);
    for (unsigned i = 0; i < n_phases; i++) {
        if (phs[i].errors != 0 || phs[i].ok != phs[i].lat.n) {
            rc = 1;
        }
        kyufu_bench_latency_free(&phs[i].lat);
    }

    kyufu_bench_driver_close(&b->drv);
    for (unsigned i = 0; i < KYUFU_BENCH_INFLIGHT_MAX; i++) {
        uv_close((uv_handle_t *)&slots[i].retry, NULL);
    }
    for (unsigned i = 0; i < b->n_clients; i++) {
        kyufu_grpc_client_close(b->clients[i], close_cb, b);
    }
    uv_run(&b->loop, UV_RUN_DEFAULT);
    assert(b->n_closed == b->n_clients);
    if (uv_loop_close(&b->loop) != 0) {
        kyufu_bench_die("the loop did not close cleanly");
    }
    return rc;
}
