/* What kyufud exposes on /metrics, and the hooks that count it (node.h,
 * "metrics_node.c"; every metric is described in docs/metrics.md).
 *
 * Counting is a few additions on the loop thread at each event (a call
 * answered, a proposal applied, an entry applied, a state change);
 * everything else (raft's indexes, followers, power, refusals) is read
 * when scraped.  Labels carry only fixed names: methods of the node's
 * table, gRPC status names, roles, causes, node ids and refusal reasons:
 * never a request's content, an address or a certificate subject.
 *
 * The SLA's figures (docs/sla.md) come from the availability ledger in
 * this node's store, the SLO file and the evaluator.  Backups: the time
 * and age of the newest good backup in [backup] directory, from the scan
 * at start and the backups since (absent while none is known: no value is
 * made up), and the schedule's counters (backup_schedule.c). */
#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "limits.h"
#include "log.h"
#include "metrics_http.h"
#include "node.h"

/* ------------------------------------------------------------ counting */

void kyufu_node__metrics_applied(void *arg, uint64_t index, uint64_t term,
                                 uint64_t apply_ns)
{
    struct kyufu_node *n = arg;
    struct kyufu_node_metrics *m = &n->metrics;
    (void)index;
    kyufu_metrics_histogram_observe_ns(&m->apply_seconds, apply_ns);
    uint64_t now = uv_now(&n->loop);
    if (term > m->apply_last_term) {
        m->term_first_ms = now;
        m->term_before_ms = m->apply_last_ms;
    }
    if (m->rto_pending && term >= m->rto_term &&
        term > m->apply_last_term) {
        /* The first entry applied under the new leader's term. */
        m->rto_pending = false;
        m->rto_known = true;
        m->rto_last_ms = now > m->rto_from_ms ? now - m->rto_from_ms : 0;
        m->rto_seen_count++;
    }
    /* An entry of an older term applied now was committed by the new
     * leader (with its first entries): no sign of the old one's life. */
    if (n->glue == NULL || kyufu_glue_term(n->glue) <= term) {
        m->apply_last_ms = now;
    }
    m->apply_last_term = term;
}

void kyufu_node__metrics_appended(void *arg, uint64_t append_ns)
{
    struct kyufu_node *n = arg;
    kyufu_metrics_histogram_observe_ns(&n->metrics.append_seconds, append_ns);
}

void kyufu_node__metrics_heap_released(struct kyufu_node *n, uint64_t ns)
{
    kyufu_metrics_histogram_observe_ns(&n->metrics.heap_release_seconds, ns);
}

void kyufu_node__metrics_work_waited(struct kyufu_node *n, uint64_t ns)
{
    kyufu_metrics_histogram_observe_ns(&n->metrics.work_wait_seconds, ns);
}

void kyufu_node__metrics_init(struct kyufu_node *n)
{
    struct kyufu_node_metrics *m = &n->metrics;
    for (size_t i = 0; i < KYUFU_NODE_METRICS_METHODS_MAX; i++) {
        kyufu_metrics_histogram_init(&m->rpc_seconds[i],
                                     kyufu_metrics_buckets_latency,
                                     kyufu_metrics_buckets_latency_n);
    }
    kyufu_metrics_histogram_init(&m->commit_seconds,
                                 kyufu_metrics_buckets_latency,
                                 kyufu_metrics_buckets_latency_n);
    kyufu_metrics_histogram_init(&m->apply_seconds,
                                 kyufu_metrics_buckets_latency,
                                 kyufu_metrics_buckets_latency_n);
    kyufu_metrics_histogram_init(&m->append_seconds,
                                 kyufu_metrics_buckets_latency,
                                 kyufu_metrics_buckets_latency_n);
    kyufu_metrics_histogram_init(&m->heap_release_seconds,
                                 kyufu_metrics_buckets_latency,
                                 kyufu_metrics_buckets_latency_n);
    kyufu_metrics_histogram_init(&m->work_wait_seconds,
                                 kyufu_metrics_buckets_latency,
                                 kyufu_metrics_buckets_latency_n);
}

void kyufu_node__metrics_rpc(struct kyufu_node *n, const char *path,
                             int method_index, int status,
                             uint64_t started_ns)
{
    struct kyufu_node_metrics *m = &n->metrics;
    if (method_index < 0) {
        method_index = kyufu_node__method_index(path);
    }
    if (method_index < 0 || status < 0 ||
        status >= (int)KYUFU_NODE_GRPC_STATUS_COUNT) {
        return; /* not one of ours (the API server answers those) */
    }
    assert((size_t)method_index < KYUFU_NODE_METRICS_METHODS_MAX);
    m->rpc[method_index][status]++;
    uint64_t now = uv_hrtime();
    kyufu_metrics_histogram_observe_ns(
        &m->rpc_seconds[method_index],
        started_ns != 0 && now > started_ns ? now - started_ns : 0);
}

void kyufu_node__metrics_committed(struct kyufu_node *n, uint64_t proposed_ns)
{
    uint64_t now = uv_hrtime();
    kyufu_metrics_histogram_observe_ns(
        &n->metrics.commit_seconds, now > proposed_ns ? now - proposed_ns : 0);
}

void kyufu_node__metrics_transfer(struct kyufu_node *n,
                                  enum kyufu_node_failover_cause cause)
{
    /* A change seen within two election timeouts of the hand-over is the
     * hand-over's (raft_transfer itself gives up after one). */
    n->metrics.transfer_cause = cause;
    n->metrics.transfer_until_ms =
        uv_now(&n->loop) + 2u * (uint64_t)n->config->election_timeout_ms;
}

void kyufu_node__metrics_state(struct kyufu_node *n,
                               const struct kyufu_glue_status *st)
{
    struct kyufu_node_metrics *m = &n->metrics;
    if (st->leader_id == 0) {
        return;
    }
    bool changed = m->leader != 0 && (st->leader_id != m->leader ||
                                      st->term > m->leader_term);
    if (changed) {
        enum kyufu_node_failover_cause cause = KYUFU_NODE_CAUSE_UNKNOWN;
        if (uv_now(&n->loop) <= m->transfer_until_ms) {
            cause = m->transfer_cause;
        }
        m->failovers[cause]++;
        if (!m->rto_pending) {
            /* From the old leader's last sign of life here: the last entry
             * this node applied, or the last message the old leader sent
             * it, whichever came later (now, if neither is known). */
            /* If the new term's entries were applied before this poll saw
             * the change, the old leader's last sign is from before them. */
            bool early = m->apply_last_term >= st->term &&
                         m->term_first_ms != 0;
            uint64_t now = uv_now(&n->loop), age = 0;
            uint64_t from = early ? m->term_before_ms : m->apply_last_ms;
            if (m->leader != n->config->id && n->glue != NULL &&
                kyufu_glue_last_contact(n->glue, m->leader, &age) &&
                now - age > from) {
                from = now - age;
            }
            m->rto_pending = true;
            m->rto_from_ms = from != 0 ? from : now;
            if (early) {
                /* The new term's first entries were applied before this
                 * poll saw the change: that first apply ends it. */
                m->rto_pending = false;
                m->rto_known = true;
                m->rto_last_ms = m->term_first_ms > m->rto_from_ms
                                     ? m->term_first_ms - m->rto_from_ms
                                     : 0;
                m->rto_seen_count++;
            }
        }
        m->rto_term = st->term;
    }
    if (m->leader == 0 || changed) {
        m->leader = st->leader_id;
        m->leader_term = st->term;
    }
}

/* ------------------------------------------------------------ listener */

static int metrics_address(const char *address, char *host, size_t host_len,
                           uint16_t *port)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL || (size_t)(colon - address) >= host_len) {
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    *port = (uint16_t)strtoul(colon + 1, NULL, 10);
    return 0;
}

/* The listener's config from the node's ([node] metrics_*, [tls]); host
 * is the caller's buffer. */
static int http_config(struct kyufu_node *n, struct kyufu_metrics_http_config *hc,
                       char *host, size_t host_len, char *errmsg,
                       size_t errmsg_len)
{
    const struct kyufu_config *c = n->config;
    memset(hc, 0, sizeof *hc);
    if (metrics_address(c->metrics_listen, host, host_len, &hc->port) != 0) {
        snprintf(errmsg, errmsg_len, "bad metrics_listen '%s'",
                 c->metrics_listen);
        return -1;
    }
    hc->host = host;
    if (c->metrics_tls) {
        /* The node's own certificate, the one its API presents. */
        hc->cert_file = c->tls_cert;
        hc->key_file = c->tls_key;
        hc->ca_file = c->tls_ca;
        hc->require_client_cert = c->metrics_tls_client_cert;
    }
    hc->render = kyufu_node__metrics_render;
    hc->render_data = n;
    return 0;
}

int kyufu_node__metrics_reload_tls(struct kyufu_node *n, char *errmsg,
                                   size_t errmsg_len)
{
    char host[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    struct kyufu_metrics_http_config hc;
    if (n->metrics.http == NULL) {
        return 0;
    }
    if (http_config(n, &hc, host, sizeof host, errmsg, errmsg_len) != 0) {
        return -1;
    }
    return kyufu_metrics_http_reload_tls(n->metrics.http, &hc, errmsg,
                                         errmsg_len);
}

int kyufu_node__metrics_start(struct kyufu_node *n, char *errmsg,
                              size_t errmsg_len)
{
    const struct kyufu_config *c = n->config;
    if (c->metrics_listen[0] == '\0') {
        return 0;
    }
    char host[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    struct kyufu_metrics_http_config hc;
    if (http_config(n, &hc, host, sizeof host, errmsg, errmsg_len) != 0) {
        return -1;
    }
    if (kyufu_metrics_http_start(&n->loop, &hc, &n->metrics.http, errmsg,
                                 errmsg_len) != 0) {
        n->metrics.http = NULL;
        return -1;
    }
    kyufu_log(KYUFU_LOG_INFO, "metrics listening",
              KYUFU_LOG_S("address", c->metrics_listen),
              KYUFU_LOG_S("tls", c->metrics_tls
                                     ? (c->metrics_tls_client_cert
                                            ? "client-cert"
                                            : "on")
                                     : "off"));
    return 0;
}

static void on_http_closed(void *data)
{
    struct kyufu_node *n = data;
    n->metrics.http = NULL;
    n->metrics.close_done(n);
}

void kyufu_node__metrics_close(struct kyufu_node *n,
                               void (*done)(struct kyufu_node *n))
{
    if (n->metrics.http == NULL) {
        done(n);
        return;
    }
    n->metrics.close_done = done;
    kyufu_metrics_http_close(n->metrics.http, on_http_closed, n);
}

/* ------------------------------------------------------------ exposition */

#define L1(a, b) ((const struct kyufu_metrics_label[]){{a, b}})
#define L2(a, b, c, d) ((const struct kyufu_metrics_label[]){{a, b}, {c, d}})

static const char *const roles[] = {"leader",      "follower", "candidate",
                                    "unavailable", "stopped",  "fatal"};

static const char *const causes[] = {
#define KYUFU_NODE__CAUSE_STR(name, text) text,
    KYUFU_NODE_FAILOVER_CAUSES(KYUFU_NODE__CAUSE_STR)
#undef KYUFU_NODE__CAUSE_STR
};

/* The API server's refusal kinds as label values ("per_address"). */
static const char *const api_refusals[] = {
#define KYUFU_NODE__REFUSAL_STR(name, text) #name,
    KYUFU_API_REFUSALS(KYUFU_NODE__REFUSAL_STR)
#undef KYUFU_NODE__REFUSAL_STR
};
_Static_assert(sizeof api_refusals / sizeof api_refusals[0] ==
                   KYUFU_API_REFUSAL_KINDS,
               "one name per refusal kind");

static void lower(char *out, size_t len, const char *in)
{
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < len; i++) {
        out[i] = (char)tolower((unsigned char)in[i]);
    }
    out[i] = '\0';
}

/* "/kyufu.v1.Ledger/CreateProgram" -> "Ledger/CreateProgram". */
static const char *method_label(const char *path)
{
    static const char prefix[] = "/kyufu.v1.";
    if (strncmp(path, prefix, sizeof prefix - 1) == 0) {
        return path + sizeof prefix - 1;
    }
    return path;
}

static void raft_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    struct kyufu_glue_status st;
    memset(&st, 0, sizeof st);
    st.role = "stopped";
    if (n->glue != NULL) {
        kyufu_glue_status(n->glue, &st);
    }
    kyufu_metrics_family(b, "kyufu_raft_role", KYUFU_METRICS_GAUGE,
                         "1 for this node's current Raft role, 0 for the "
                         "others");
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        kyufu_metrics_sample_u(b, "kyufu_raft_role", L1("role", roles[i]), 1,
                               strcmp(st.role, roles[i]) == 0 ? 1 : 0);
    }
    kyufu_metrics_family(b, "kyufu_raft_term", KYUFU_METRICS_GAUGE,
                         "Current Raft term");
    kyufu_metrics_sample_u(b, "kyufu_raft_term", NULL, 0, st.term);
    kyufu_metrics_family(b, "kyufu_raft_leader_id", KYUFU_METRICS_GAUGE,
                         "Raft id of the leader this node knows (0: none)");
    kyufu_metrics_sample_u(b, "kyufu_raft_leader_id", NULL, 0, st.leader_id);
    kyufu_metrics_family(b, "kyufu_raft_commit_index", KYUFU_METRICS_GAUGE,
                         "Highest log index known committed");
    kyufu_metrics_sample_u(b, "kyufu_raft_commit_index", NULL, 0,
                           st.commit_index);
    kyufu_metrics_family(b, "kyufu_raft_applied_index", KYUFU_METRICS_GAUGE,
                         "Highest log index applied to the ledger");
    kyufu_metrics_sample_u(b, "kyufu_raft_applied_index", NULL, 0,
                           st.applied_index);
    kyufu_metrics_family(b, "kyufu_storage_durable_index",
                         KYUFU_METRICS_GAUGE,
                         "Highest applied index flushed to disk in the "
                         "ledger (LMDB); a power loss reopens it there");
    kyufu_metrics_sample_u(b, "kyufu_storage_durable_index", NULL, 0,
                           n->storage != NULL
                               ? kyufu_storage_durable(n->storage)
                               : 0);
    kyufu_metrics_family(b, "kyufu_raft_last_log_index", KYUFU_METRICS_GAUGE,
                         "Highest index in this node's Raft log");
    kyufu_metrics_sample_u(b, "kyufu_raft_last_log_index", NULL, 0,
                           st.last_log_index);

    struct kyufu_glue_follower f[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t nf = n->glue != NULL
                    ? kyufu_glue_followers(n->glue, f, KYUFU_NODE_CLUSTER_SIZE_MAX)
                    : 0;
    kyufu_metrics_family(b, "kyufu_raft_follower_lag_entries",
                         KYUFU_METRICS_GAUGE,
                         "On the leader: entries of its log a follower has "
                         "not yet acknowledged");
    for (size_t i = 0; i < nf; i++) {
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)f[i].id);
        kyufu_metrics_sample_u(b, "kyufu_raft_follower_lag_entries",
                               L1("follower", id), 1,
                               st.last_log_index > f[i].match_index
                                   ? st.last_log_index - f[i].match_index
                                   : 0);
    }
    kyufu_metrics_family(b, "kyufu_raft_follower_last_contact_seconds",
                         KYUFU_METRICS_GAUGE,
                         "On the leader: seconds since the last message "
                         "from a follower");
    for (size_t i = 0; i < nf; i++) {
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)f[i].id);
        if (f[i].contacted) {
            kyufu_metrics_sample(b, "kyufu_raft_follower_last_contact_seconds",
                                 L1("follower", id), 1,
                                 (double)f[i].contact_age_ms / 1000.0);
        }
    }
    kyufu_metrics_family(b, "kyufu_snapshot_copies_sent_total",
                         KYUFU_METRICS_COUNTER,
                         "Snapshot copies this leader started sending to a "
                         "lagging follower");
    kyufu_metrics_sample_u(b, "kyufu_snapshot_copies_sent_total", NULL, 0,
                           st.snapshot_copies_sent);
    kyufu_metrics_family(b, "kyufu_snapshot_copies_refused_total",
                         KYUFU_METRICS_COUNTER,
                         "Snapshot re-sends refused while a copy was out");
    kyufu_metrics_sample_u(b, "kyufu_snapshot_copies_refused_total", NULL, 0,
                           st.snapshot_copies_refused);
    kyufu_metrics_family(b, "kyufu_raft_apply_runs_total",
                         KYUFU_METRICS_COUNTER,
                         "Runs of committed entries applied in one go "
                         "(entries per run: kyufu_storage_commit_seconds "
                         "count over this)");
    kyufu_metrics_sample_u(b, "kyufu_raft_apply_runs_total", NULL, 0,
                           st.apply_runs);
    kyufu_metrics_family(b, "kyufu_snapshots_taken_total",
                         KYUFU_METRICS_COUNTER,
                         "Snapshots of the ledger taken by this node");
    kyufu_metrics_sample_u(b, "kyufu_snapshots_taken_total", NULL, 0,
                           st.snapshots_taken);
    kyufu_metrics_family(b, "kyufu_snapshots_failed_total",
                         KYUFU_METRICS_COUNTER,
                         "Snapshots taken but never written, by cause: the "
                         "store's stream, or the file system refusing the "
                         "stream's temporary file in the Raft directory "
                         "(full, read-only, no O_TMPFILE)");
    kyufu_metrics_sample_u(b, "kyufu_snapshots_failed_total",
                           L1("cause", "file"), 1, st.snapshots_file_refused);
    kyufu_metrics_sample_u(b, "kyufu_snapshots_failed_total",
                           L1("cause", "store"), 1,
                           st.snapshots_failed - st.snapshots_file_refused);
    kyufu_metrics_family(b, "kyufu_snapshots_in_flight", KYUFU_METRICS_GAUGE,
                         "Snapshots taken but not yet written (serializing "
                         "or being put to disk)");
    kyufu_metrics_sample_u(b, "kyufu_snapshots_in_flight", NULL, 0,
                           st.snapshots_in_flight);
    kyufu_metrics_family(b, "kyufu_raft_snapshot_threshold_entries",
                         KYUFU_METRICS_GAUGE,
                         "Entries between two of this node's snapshots now "
                         "(the period of its slots): the configured "
                         "snapshot_threshold, or more for a large ledger");
    kyufu_metrics_sample_u(b, "kyufu_raft_snapshot_threshold_entries", NULL, 0,
                           st.snapshot_threshold_entries);
    kyufu_metrics_family(b, "kyufu_snapshots_restored_total",
                         KYUFU_METRICS_COUNTER,
                         "Snapshots restored into the ledger (at start or "
                         "installed from the leader)");
    kyufu_metrics_sample_u(b, "kyufu_snapshots_restored_total", NULL, 0,
                           st.snapshots_restored);

    kyufu_metrics_family(b, "kyufu_raft_peer_refused_total",
                         KYUFU_METRICS_COUNTER,
                         "Raft peer connections refused or given up during "
                         "their TLS handshake");
    kyufu_metrics_sample_u(b, "kyufu_raft_peer_refused_total", NULL, 0,
                           st.peer_connections_refused);
}

static void latency_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    struct kyufu_node_metrics *m = &n->metrics;
    kyufu_metrics_family(b, "kyufu_commit_latency_seconds",
                         KYUFU_METRICS_HISTOGRAM,
                         "On the leader: a write's proposal to its "
                         "application to the ledger");
    kyufu_metrics_histogram_write(b, "kyufu_commit_latency_seconds", NULL, 0,
                                  &m->commit_seconds);
    kyufu_metrics_family(b, "kyufu_storage_commit_seconds",
                         KYUFU_METRICS_HISTOGRAM,
                         "One applied entry's LMDB write transaction "
                         "on the loop thread, its flush included with "
                         "[storage] flush = commit (the default); with "
                         "background the store is flushed off the loop");
    kyufu_metrics_histogram_write(b, "kyufu_storage_commit_seconds", NULL, 0,
                                  &m->apply_seconds);
    kyufu_metrics_family(b, "kyufu_raft_append_seconds",
                         KYUFU_METRICS_HISTOGRAM,
                         "One durable append of entries to this node's Raft "
                         "log (kernel AIO, or libuv's work pool when the "
                         "kernel would block)");
    kyufu_metrics_histogram_write(b, "kyufu_raft_append_seconds", NULL, 0,
                                  &m->append_seconds);
    kyufu_metrics_family(b, "kyufu_heap_release_seconds",
                         KYUFU_METRICS_HISTOGRAM,
                         "Handing the heap's free pages back to the system "
                         "after each compaction of the Raft log or snapshot "
                         "install (malloc_trim, on a work thread)");
    kyufu_metrics_histogram_write(b, "kyufu_heap_release_seconds", NULL, 0,
                                  &m->heap_release_seconds);
    kyufu_metrics_family(b, "kyufu_work_queue_wait_seconds",
                         KYUFU_METRICS_HISTOGRAM,
                         "How long an empty work item queued every 100 ms "
                         "waited for a thread of libuv's pool, which Raft "
                         "log writes share with kyufu's long work");
    kyufu_metrics_histogram_write(b, "kyufu_work_queue_wait_seconds", NULL, 0,
                                  &m->work_wait_seconds);

    size_t nm = kyufu_node__methods_count();
    kyufu_metrics_family(b, "kyufu_rpc_requests_total", KYUFU_METRICS_COUNTER,
                         "Calls answered by this node, by method and gRPC "
                         "status (forwarded calls count on both nodes)");
    for (size_t i = 0; i < nm; i++) {
        const char *method = method_label(kyufu_node__method_path(i));
        for (int s = 0; s < (int)KYUFU_NODE_GRPC_STATUS_COUNT; s++) {
            if (m->rpc[i][s] > 0) {
                kyufu_metrics_sample_u(
                    b, "kyufu_rpc_requests_total",
                    L2("method", method, "code", kyufu_grpc_status_name(s)),
                    2, m->rpc[i][s]);
            }
        }
    }
    kyufu_metrics_family(b, "kyufu_rpc_duration_seconds",
                         KYUFU_METRICS_HISTOGRAM,
                         "Arrival to answer of a call, by method");
    for (size_t i = 0; i < nm; i++) {
        if (m->rpc_seconds[i].count > 0) {
            kyufu_metrics_histogram_write(
                b, "kyufu_rpc_duration_seconds",
                L1("method", method_label(kyufu_node__method_path(i))), 1,
                &m->rpc_seconds[i]);
        }
    }
}

static void failover_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    struct kyufu_node_metrics *m = &n->metrics;
    kyufu_metrics_family(b, "kyufu_failovers_total", KYUFU_METRICS_COUNTER,
                         "Leader changes this node has seen since it "
                         "started, by cause where this node knows it");
    for (size_t i = 0; i < KYUFU_NODE_CAUSE_COUNT; i++) {
        kyufu_metrics_sample_u(b, "kyufu_failovers_total",
                               L1("cause", causes[i]), 1, m->failovers[i]);
    }
    if (m->rto_known) {
        kyufu_metrics_family(
            b, "kyufu_failover_last_rto_seconds", KYUFU_METRICS_GAUGE,
            "This node's own view of the last failover's RTO: its last "
            "entry applied under the old leader to its first under the new "
            "one (the cluster's figure: kyufu_sla_last_failover_rto_seconds)");
        kyufu_metrics_sample(b, "kyufu_failover_last_rto_seconds", NULL, 0,
                             (double)m->rto_last_ms / 1000.0);
    }
}

static void node_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    kyufu_metrics_family(b, "kyufu_node_id", KYUFU_METRICS_GAUGE,
                         "This node's Raft id");
    kyufu_metrics_sample_u(b, "kyufu_node_id", NULL, 0, n->config->id);
    kyufu_metrics_family(b, "kyufu_power_state", KYUFU_METRICS_GAUGE,
                         "1 for the power state the UPS reports (none: no "
                         "UPS configured or nothing known), 0 for the others");
    for (int s = KYUFU_POWER_NONE; s <= KYUFU_POWER_LOW_BATTERY; s++) {
        kyufu_metrics_sample_u(
            b, "kyufu_power_state",
            L1("state", kyufu_power_state_name((enum kyufu_power_state)s)), 1,
            n->power.state == (enum kyufu_power_state)s ? 1 : 0);
    }
    /* The identity clock (steady_clock.h): the step ignored now, and the
     * steps seen (docs/chaos.md "Clock steps and sessions"). */
    kyufu_metrics_family(b, "kyufu_clock_step_seconds", KYUFU_METRICS_GAUGE,
                         "How far the wall clock is from the time sessions "
                         "and lockouts run on (a step being ignored; 0 when "
                         "they agree)");
    kyufu_metrics_sample(b, "kyufu_clock_step_seconds", NULL, 0,
                         (double)n->auth.clock.step_ms / 1000.0);
    kyufu_metrics_family(b, "kyufu_clock_steps_total", KYUFU_METRICS_COUNTER,
                         "Wall clock steps seen since start (each ignored "
                         "for sessions and lockouts)");
    kyufu_metrics_sample_u(b, "kyufu_clock_steps_total", NULL, 0,
                           n->auth.clock.steps);
    kyufu_metrics_family(b, "kyufu_calls_inflight", KYUFU_METRICS_GAUGE,
                         "Calls being handled by this node now");
    kyufu_metrics_sample_u(b, "kyufu_calls_inflight", NULL, 0,
                           n->calls_inflight);
    kyufu_metrics_family(b, "kyufu_forwarded_calls_total",
                         KYUFU_METRICS_COUNTER,
                         "Calls this follower sent on to the leader");
    kyufu_metrics_sample_u(b, "kyufu_forwarded_calls_total", NULL, 0,
                           n->forwarded_calls);
    kyufu_metrics_family(b, "kyufu_loop_stalls_total", KYUFU_METRICS_COUNTER,
                         "Times the event loop was late by 300 ms or more");
    kyufu_metrics_sample_u(b, "kyufu_loop_stalls_total", NULL, 0, n->stalls);
    kyufu_metrics_family(b, "kyufu_auth_hashes_queued_total",
                         KYUFU_METRICS_COUNTER,
                         "Password hashes that waited in the node's queue "
                         "for one of the running ones to end");
    kyufu_metrics_sample_u(b, "kyufu_auth_hashes_queued_total", NULL, 0,
                           n->auth.n_queued);

    kyufu_metrics_family(b, "kyufu_connections_refused_total",
                         KYUFU_METRICS_COUNTER,
                         "Connections turned away, by port and reason");
    char reason[32];
    for (size_t k = 0; k < sizeof api_refusals / sizeof api_refusals[0]; k++) {
        lower(reason, sizeof reason, api_refusals[k]);
        kyufu_metrics_sample_u(b, "kyufu_connections_refused_total",
                               L2("port", "api", "reason", reason), 2,
                               n->refusals.kind[k].total);
    }
    if (n->metrics.http != NULL) {
        struct kyufu_metrics_http_stats hs;
        kyufu_metrics_http_stats(n->metrics.http, &hs);
        for (int r = 0; r < KYUFU_METRICS_HTTP_REFUSED_COUNT; r++) {
            kyufu_metrics_sample_u(
                b, "kyufu_connections_refused_total",
                L2("port", "metrics", "reason",
                   kyufu_metrics_http_refusal_name(
                       (enum kyufu_metrics_http_refusal)r)),
                2, hs.refused[r]);
        }
        kyufu_metrics_family(b, "kyufu_metrics_scrapes_total",
                             KYUFU_METRICS_COUNTER,
                             "Scrapes answered before this one");
        kyufu_metrics_sample_u(b, "kyufu_metrics_scrapes_total", NULL, 0,
                               hs.scrapes);
        kyufu_metrics_family(b, "kyufu_metrics_scrape_loop_seconds",
                             KYUFU_METRICS_GAUGE,
                             "Loop time the previous scrape took: parse, "
                             "render, encrypt (TLS) and queue the answer");
        kyufu_metrics_sample(b, "kyufu_metrics_scrape_loop_seconds", NULL, 0,
                             (double)hs.serve_ns_last / 1e9);
        kyufu_metrics_family(b, "kyufu_metrics_scrape_cpu_seconds",
                             KYUFU_METRICS_GAUGE,
                             "The same in the loop thread's CPU time");
        kyufu_metrics_sample(b, "kyufu_metrics_scrape_cpu_seconds", NULL, 0,
                             (double)hs.serve_cpu_ns_last / 1e9);
        kyufu_metrics_family(b, "kyufu_metrics_body_bytes",
                             KYUFU_METRICS_GAUGE,
                             "Size of the previous scrape's exposition");
        kyufu_metrics_sample_u(b, "kyufu_metrics_body_bytes", NULL, 0,
                               hs.body_bytes_last);
    }
}

/* ---------------------------------------------- the SLA (docs/sla.md)
 * From the availability ledger in this node's store (sla_ledger.c: the
 * replicated state, so every node says the same once it has applied the
 * same entries), the SLO file and the evaluator.  Nothing when the source
 * is missing (no store read, no SLO, no evaluator): never a made-up
 * value. */

/* The month's failovers by cause, the newest failover's RTO, and the
 * month's availability, as the ledger records them. */
static void availability_metrics(struct kyufu_node *n,
                                 struct kyufu_metrics_buf *b)
{
    const struct kyufu_node_sla_ledger *l = kyufu_node__sla_ledger(n);
    if (l == NULL) {
        return;
    }
    kyufu_metrics_family(b, "kyufu_sla_failovers", KYUFU_METRICS_GAUGE,
                         "Failovers the availability ledger records this "
                         "month (UTC), by cause; the same on every node");
    for (uint64_t c = 0; c < KYUFU_NODE_SLA_CAUSES; c++) {
        kyufu_metrics_sample_u(
            b, "kyufu_sla_failovers",
            L2("cause", kyufu_node__sla_cause_name(c), "month", l->month), 2,
            l->failovers[c]);
    }
    if (l->have_failover) {
        kyufu_metrics_family(b, "kyufu_sla_last_failover_rto_seconds",
                             KYUFU_METRICS_GAUGE,
                             "The ledger's RTO of the newest failover this "
                             "month: last commit under the old leader to "
                             "first commit under the new one");
        kyufu_metrics_sample(b, "kyufu_sla_last_failover_rto_seconds",
                             NULL, 0, (double)l->last_rto_ms / 1000.0);
        kyufu_metrics_family(b, "kyufu_sla_last_failover_timestamp_seconds",
                             KYUFU_METRICS_GAUGE,
                             "When that failover's first commit under the "
                             "new leader happened (unix time)");
        kyufu_metrics_sample(b, "kyufu_sla_last_failover_timestamp_seconds",
                             NULL, 0,
                             (double)l->last_first_commit_ms / 1000.0);
        kyufu_metrics_family(b, "kyufu_sla_last_failover_term",
                             KYUFU_METRICS_GAUGE,
                             "The Raft term that failover began");
        kyufu_metrics_sample_u(b, "kyufu_sla_last_failover_term", NULL, 0,
                               l->last_term);
    }
    if (l->have) {
        kyufu_metrics_family(b, "kyufu_availability_ratio",
                             KYUFU_METRICS_GAUGE,
                             "Share of this month the ledger observed during "
                             "which writes were accepted, planned "
                             "maintenance excluded (0..1)");
        kyufu_metrics_sample(
            b, "kyufu_availability_ratio", L1("month", l->month), 1,
            1.0 - (double)l->counted_ms / (double)l->observed_ms);
        kyufu_metrics_family(b, "kyufu_sla_unavailable_seconds",
                             KYUFU_METRICS_GAUGE,
                             "Write-unavailability this month that counts "
                             "against the budget (maintenance excluded)");
        kyufu_metrics_sample(b, "kyufu_sla_unavailable_seconds",
                             L1("month", l->month), 1,
                             (double)l->counted_ms / 1000.0);
    }
}

/* The SLO's targets and whether this month met them. */
static void slo_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    if (!n->config->has_slo) {
        return;
    }
    const struct kyufu_slo *slo = &n->config->slo;
    kyufu_metrics_family(b, "kyufu_slo_target_ratio", KYUFU_METRICS_GAUGE,
                         "The SLO file's monthly availability target (0..1)");
    kyufu_metrics_sample(b, "kyufu_slo_target_ratio", NULL, 0,
                         (double)slo->target_ppm / 1e6);
    kyufu_metrics_family(b, "kyufu_slo_rto_target_seconds",
                         KYUFU_METRICS_GAUGE, "The SLO file's RTO target");
    kyufu_metrics_sample(b, "kyufu_slo_rto_target_seconds", NULL, 0,
                         (double)slo->rto_target_ms / 1000.0);
    const struct kyufu_node_sla_ledger *l = kyufu_node__sla_ledger(n);
    if (l == NULL || !l->have) {
        return;
    }
    kyufu_metrics_family(b, "kyufu_slo_compliant", KYUFU_METRICS_GAUGE,
                         "1 when this month meets the objective so far, 0 "
                         "when not (availability: the ratio against its "
                         "target; rto: the newest failover's RTO against "
                         "its target, 1 without a failover)");
    uint64_t up = l->observed_ms - l->counted_ms;
    kyufu_metrics_sample_u(
        b, "kyufu_slo_compliant", L1("objective", "availability"), 1,
        (double)up * 1e6 >= (double)slo->target_ppm * (double)l->observed_ms);
    kyufu_metrics_sample_u(
        b, "kyufu_slo_compliant", L1("objective", "rto"), 1,
        !l->have_failover || l->last_rto_ms <= slo->rto_target_ms);
}

/* The evaluator's active alerts (sla_node.c), by rule and severity. */
static void alert_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    if (!n->sla.enabled) {
        return;
    }
    size_t count;
    const struct kyufu_node_sla_active *a = kyufu_node__sla_active(n, &count);
    kyufu_metrics_family(b, "kyufu_alerts_open", KYUFU_METRICS_GAUGE,
                         "SLA alerts active on this node now, by rule and "
                         "severity");
    for (int k = 0; k < KYUFU_SLA_KIND_COUNT; k++) {
        for (int sev = KYUFU_SLA_WARNING; sev <= KYUFU_SLA_CRITICAL; sev++) {
            uint64_t c = 0;
            for (size_t i = 0; i < count; i++) {
                c += a[i].alert.kind == (enum kyufu_sla_kind)k &&
                     a[i].alert.severity == (enum kyufu_sla_severity)sev;
            }
            kyufu_metrics_sample_u(
                b, "kyufu_alerts_open",
                L2("alert", kyufu_sla_kind_name((enum kyufu_sla_kind)k),
                   "severity",
                   kyufu_sla_severity_name((enum kyufu_sla_severity)sev)),
                2, c);
        }
    }
    kyufu_metrics_family(b, "kyufu_alerts_raised_total",
                         KYUFU_METRICS_COUNTER,
                         "SLA alerts this node raised since it started");
    kyufu_metrics_sample_u(b, "kyufu_alerts_raised_total", NULL, 0,
                           n->sla.raised_total);
}

/* The [backup] directory as this node last saw it (backup_schedule.c). */
static void backup_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    const struct kyufu_node_backups *k = &n->backups;
    if (n->config->backup_directory[0] == '\0') {
        return;
    }
    if (n->config->backup_interval_s != 0) {
        static const struct {
            const char *name, *help;
            size_t off;
        } counters[] = {
            {"kyufu_backup_scheduled_total",
             "Scheduled backups this node wrote since it started",
             offsetof(struct kyufu_node_backups, taken)},
            {"kyufu_backup_scheduled_failures_total",
             "Scheduled backups this node tried and failed since it started "
             "(each retried after a bounded backoff)",
             offsetof(struct kyufu_node_backups, failed)},
            {"kyufu_backup_pruned_total",
             "Scheduled backups retention removed since start",
             offsetof(struct kyufu_node_backups, pruned)},
            {"kyufu_backup_prune_failures_total",
             "Directory scans and backup removals that failed since start",
             offsetof(struct kyufu_node_backups, prune_failed)},
        };
        for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
            kyufu_metrics_family(b, counters[i].name, KYUFU_METRICS_COUNTER,
                                 counters[i].help);
            kyufu_metrics_sample_u(
                b, counters[i].name, NULL, 0,
                *(const uint64_t *)((const char *)k + counters[i].off));
        }
    }
    if (k->scanned) {
        kyufu_metrics_family(b, "kyufu_backup_good", KYUFU_METRICS_GAUGE,
                             "Good backups (signature, chain and manifest "
                             "valid) in [backup] directory at the last scan");
        kyufu_metrics_sample_u(b, "kyufu_backup_good", NULL, 0, k->good);
    }
    int64_t ms = k->newest_ms;
    if (ms <= 0) {
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    kyufu_metrics_family(b, "kyufu_backup_last_success_timestamp_seconds",
                         KYUFU_METRICS_GAUGE,
                         "Unix time (manifest) of the newest good backup in "
                         "[backup] directory: scanned at start and after "
                         "each scheduled backup, or written by this node");
    kyufu_metrics_sample(b, "kyufu_backup_last_success_timestamp_seconds",
                         NULL, 0, (double)ms / 1000.0);
    kyufu_metrics_family(b, "kyufu_backup_newest_good_age_seconds",
                         KYUFU_METRICS_GAUGE,
                         "Age of the newest good backup in [backup] "
                         "directory");
    kyufu_metrics_sample(b, "kyufu_backup_newest_good_age_seconds", NULL, 0,
                         now_ms > ms ? (double)(now_ms - ms) / 1000.0 : 0.0);
}

/* The scrub (scrub.h, docs/scrub.md). */
static void scrub_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    const struct kyufu_node_scrub *s = &n->scrub;
    static const struct {
        const char *name;
        const char *help;
        size_t offset;
    } counters[] = {
        {"kyufu_scrubs_total", "State digests computed at a ScrubMark",
         offsetof(struct kyufu_node_scrub, done)},
        {"kyufu_scrub_passed_total",
         "Scrubs whose digest a majority of the voters shared",
         offsetof(struct kyufu_node_scrub, passed)},
        {"kyufu_scrub_mismatches_total",
         "Scrubs where some voter's digest differed",
         offsetof(struct kyufu_node_scrub, mismatches)},
        {"kyufu_scrub_no_majority_total",
         "Scrubs where no digest had a majority of the voters",
         offsetof(struct kyufu_node_scrub, no_majority)},
        {"kyufu_scrub_inconclusive_total",
         "Scrubs with too few voters' digests in time",
         offsetof(struct kyufu_node_scrub, inconclusive)},
        {"kyufu_scrub_skipped_total",
         "ScrubMarks applied without a digest (one still ran, or it failed)",
         offsetof(struct kyufu_node_scrub, skipped)},
        {"kyufu_scrub_bad_answers_total",
         "Peers' digest answers ignored as malformed",
         offsetof(struct kyufu_node_scrub, bad_answers)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)s + counters[i].offset, sizeof v);
        kyufu_metrics_family(b, counters[i].name, KYUFU_METRICS_COUNTER,
                             counters[i].help);
        kyufu_metrics_sample_u(b, counters[i].name, NULL, 0, v);
    }
    kyufu_metrics_family(b, "kyufu_scrub_corrupt", KYUFU_METRICS_GAUGE,
                         "1 when this node found its store differs from the "
                         "majority (it stops)");
    kyufu_metrics_sample_u(b, "kyufu_scrub_corrupt", NULL, 0,
                           s->corrupt ? 1 : 0);
    kyufu_metrics_family(b, "kyufu_scrub_last_index", KYUFU_METRICS_GAUGE,
                         "Raft index of the newest scrub digest (0: none)");
    kyufu_metrics_sample_u(b, "kyufu_scrub_last_index", NULL, 0,
                           s->last_index);
    if (s->last_ms > 0) {
        kyufu_metrics_family(b, "kyufu_scrub_last_timestamp_seconds",
                             KYUFU_METRICS_GAUGE,
                             "Unix time of the newest scrub digest");
        kyufu_metrics_sample(b, "kyufu_scrub_last_timestamp_seconds", NULL,
                             0, (double)s->last_ms / 1000.0);
    }
}

/* Encryption at rest (docs/encryption.md "Rotation"): the active data-key
 * version and the re-encryption of the last rotation, as this node's
 * rotation task last read them (keys_rotate.c). */
static void key_metrics(struct kyufu_node *n, struct kyufu_metrics_buf *b)
{
    if (n->storage == NULL || !kyufu_storage_keys_present(n->storage)) {
        return;
    }
    kyufu_metrics_family(b, "kyufu_keys_active_version", KYUFU_METRICS_GAUGE,
                         "The data-key version new sealed values, entries, "
                         "snapshots and backups use");
    kyufu_metrics_sample(b, "kyufu_keys_active_version", NULL, 0,
                         (double)kyufu_storage_keys_active(n->storage));
    struct kyufu_storage_key_seals seals;
    if (kyufu_storage_key_seals(n->storage, &seals) == 0 && seals.counted) {
        kyufu_metrics_family(b, "kyufu_keys_active_version_seals",
                             KYUFU_METRICS_GAUGE,
                             "Seals under the active data-key version, "
                             "counted by apply (cluster version 6 on)");
        kyufu_metrics_sample(b, "kyufu_keys_active_version_seals", NULL, 0,
                             (double)seals.count);
        kyufu_metrics_family(b, "kyufu_keys_seal_limit", KYUFU_METRICS_GAUGE,
                             "Seals under one data-key version at which "
                             "apply rotates to the next by itself");
        kyufu_metrics_sample(b, "kyufu_keys_seal_limit", NULL, 0,
                             (double)seals.limit);
    }
    if (n->rotate.version == 0) {
        return;
    }
    kyufu_metrics_family(b, "kyufu_keys_reencrypt_done", KYUFU_METRICS_GAUGE,
                         "1 when every stored value is re-sealed under the "
                         "last rotation's version, else 0");
    kyufu_metrics_sample(b, "kyufu_keys_reencrypt_done", NULL, 0,
                         n->rotate.done ? 1.0 : 0.0);
    kyufu_metrics_family(b, "kyufu_keys_reencrypted_values", KYUFU_METRICS_GAUGE,
                         "Stored values re-sealed since the last rotation");
    kyufu_metrics_sample(b, "kyufu_keys_reencrypted_values", NULL, 0,
                         (double)n->rotate.resealed);
}

int kyufu_node__metrics_render(void *node, struct kyufu_metrics_buf *b)
{
    struct kyufu_node *n = node;
    node_metrics(n, b);
    raft_metrics(n, b);
    latency_metrics(n, b);
    failover_metrics(n, b);
    availability_metrics(n, b);
    slo_metrics(n, b);
    alert_metrics(n, b);
    backup_metrics(n, b);
    scrub_metrics(n, b);
    key_metrics(n, b);
    return kyufu_metrics_buf_failed(b) ? -1 : 0;
}
