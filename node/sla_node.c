/* The SLA watch's loop side: tick, peer probes, alert diffing, incident
 * proposals, and the incident list RPC.  sla.h has the happy path and
 * the failure modes. */
#include "sla.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_node.h"
#include "availability.h"
#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "node.h"
#include "service.h"

/* ------------------------------------------------------------ probes */

static void on_probe(struct kyufu_grpc_client_req *req, int status,
                     const char *message, const uint8_t *response,
                     size_t response_len)
{
    struct kyufu_node_sla_probe *p = req->data;
    struct kyufu_node *n = p->node;
    (void)message;
    p->pending = false;
    if (status != KYUFU_GRPC_OK || n->stage != KYUFU_NODE_RUNNING) {
        return;
    }
    Kyufu__V1__NodeStatus *st = kyufu__v1__node_status__unpack(
        NULL, response_len, response_len > 0 ? response : (const uint8_t *)"");
    if (st == NULL) {
        return;
    }
    p->heard = true;
    p->last_ms = uv_now(&n->loop);
    p->applied = st->applied_index;
    kyufu__v1__node_status__free_unpacked(st, NULL);
}

/* The probe of voter id, taken from a free entry (its silence counted from
 * now) when it has none; NULL when every entry is taken. */
static struct kyufu_node_sla_probe *probe_of(struct kyufu_node *n, uint64_t id)
{
    struct kyufu_node_sla_probe *free_entry = NULL;
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        struct kyufu_node_sla_probe *p = &n->sla.probes[i];
        if (p->id == id) {
            return p;
        }
        if (free_entry == NULL && p->id == 0 && !p->pending) {
            free_entry = p;
        }
    }
    if (free_entry != NULL) {
        free_entry->id = id;
        free_entry->heard = false;
        free_entry->applied = 0;
        free_entry->last_ms = uv_now(&n->loop);
    }
    return free_entry;
}

/* The voters this node's Raft configuration holds now; probes of nodes no
 * longer among them are freed. */
static size_t voters(struct kyufu_node *n, uint64_t *ids)
{
    size_t count = kyufu_glue_voters(n->glue, ids, KYUFU_SLA_PEERS_MAX);
    count = count < KYUFU_SLA_PEERS_MAX ? count : KYUFU_SLA_PEERS_MAX;
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        struct kyufu_node_sla_probe *p = &n->sla.probes[i];
        bool member = false;
        for (size_t j = 0; j < count && !member; j++) {
            member = ids[j] == p->id;
        }
        if (!member) {
            p->id = 0;
        }
    }
    return count;
}

static void probe_peers(struct kyufu_node *n, const uint64_t *ids, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct kyufu_node_sla_probe *p =
            ids[i] == n->config->id ? NULL : probe_of(n, ids[i]);
        const char *api = NULL;
        int slot = p != NULL && !p->pending ? kyufu_node__peer_slot(n, ids[i], &api) : -1;
        if (slot < 0) {
            continue;
        }
        p->node = n;
        p->req.data = p;
        if (kyufu_node__ask_status(n, (size_t)slot, &p->req,
                                   KYUFU_NODE_SLA_PROBE_MS, on_probe) == 0) {
            p->pending = true;
        }
    }
}

/* ------------------------------------------------------------ incidents */

static struct kyufu_node_sla_active *find_active(struct kyufu_node *n,
                                                 enum kyufu_sla_kind kind,
                                                 const char *subject)
{
    for (size_t i = 0; i < n->sla.n_active; i++) {
        struct kyufu_node_sla_active *a = &n->sla.active[i];
        if (a->alert.kind == kind && strcmp(a->alert.subject, subject) == 0) {
            return a;
        }
    }
    return NULL;
}

static void on_opened(struct kyufu_glue_propose *req, int status,
                      Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_sla_proposal *p = req->data;
    struct kyufu_node *n = p->node;
    p->busy = false;
    struct kyufu_node_sla_active *a = find_active(n, p->kind, p->subject);
    if (a != NULL) {
        a->proposing = false;
    }
    if (status != 0) {
        kyufu_log(KYUFU_LOG_DEBUG, "SLA incident not opened yet",
                  KYUFU_LOG_S("alert", kyufu_sla_kind_name(p->kind)),
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
        kyufu_node__check_fatal(n, status);
        return;
    }
    if (result->code != KYUFU__V1__CODE__OK || result->incident == NULL) {
        kyufu_log(KYUFU_LOG_ERROR, "SLA incident refused",
                  KYUFU_LOG_S("alert", kyufu_sla_kind_name(p->kind)),
                  KYUFU_LOG_S("message", result->message));
        if (a != NULL) {
            /* A refusal is final (the same command would be refused
             * again): not proposed again while this alert lasts. */
            a->incident_id = UINT64_MAX;
        }
    } else {
        if (a != NULL) {
            a->incident_id = result->incident->id;
        }
        kyufu_log(KYUFU_LOG_INFO, "SLA incident open",
                  KYUFU_LOG_U("incident", result->incident->id),
                  KYUFU_LOG_S("alert", result->incident->alert),
                  KYUFU_LOG_S("subject", result->incident->subject));
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

/* On the leader: an OpenIncident for an active alert without one. */
static void propose_incident(struct kyufu_node *n,
                             struct kyufu_node_sla_active *a)
{
    struct kyufu_node_sla_proposal *p = NULL;
    for (size_t i = 0; i < KYUFU_NODE_SLA_PROPOSALS_MAX && p == NULL; i++) {
        p = n->sla.proposals[i].busy ? NULL : &n->sla.proposals[i];
    }
    if (p == NULL) {
        return; /* the next tick tries again */
    }
    char client_id[32];
    snprintf(client_id, sizeof client_id, "kyufud-sla-%llu",
             (unsigned long long)n->config->id);
    int64_t now = kyufu_node__wall_ms();
    /* Unique per node: the time and a counter (a key is remembered for the
     * session window, and a reused one would answer another alert). */
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    key.client_id = client_id;
    key.sequence = (uint64_t)now * 1024 + (n->sla.seq++ % 1024);
    Kyufu__V1__CommandHeader header = KYUFU__V1__COMMAND_HEADER__INIT;
    char actor[40]; /* a node's own command: apply's check_system */
    snprintf(actor, sizeof actor, "kyufu-node-%llu",
             (unsigned long long)n->config->id);
    header.actor = actor;
    header.terminal = (char *)"sla";
    header.key = &key;
    header.time_ms = kyufu_node__auth_now_ms(n); /* the identity clock */
    Kyufu__V1__OpenIncident body = KYUFU__V1__OPEN_INCIDENT__INIT;
    body.alert = (char *)kyufu_sla_kind_name(a->alert.kind);
    body.subject = a->alert.subject;
    body.severity = (char *)kyufu_sla_severity_name(a->alert.severity);
    body.summary = a->alert.summary;
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.header = &header;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_OPEN_INCIDENT;
    cmd.open_incident = &body;
    p->node = n;
    p->req.data = p;
    p->kind = a->alert.kind;
    snprintf(p->subject, sizeof p->subject, "%s", a->alert.subject);
    if (kyufu_glue_propose(n->glue, &p->req, &cmd, on_opened) == 0) {
        p->busy = true;
        a->proposing = true;
    }
}

/* ------------------------------------------------------------ the tick */

/* The availability rules' inputs: this month's write-unavailability (less
 * planned maintenance, kyufu_slo_maintenance_ms), the last hour's, and the
 * last failover's term, age and RTO, from the availability ledger in the
 * replicated state (node/availability.h, docs/sla.md "Availability
 * ledger").  This branch has no ledger, so have_ledger stays false and the
 * budget, burn-rate and RTO rules are skipped rather than guessed; the
 * merge with the ledger fills these fields here. */
/* The availability rules' inputs from this node's store (sla_ledger.c,
 * cached: a tick reads the store only when the ledger changed). */
static void ledger_inputs(struct kyufu_node *n, struct kyufu_sla_inputs *in)
{
    const struct kyufu_node_sla_ledger *l = kyufu_node__sla_ledger(n);
    in->have_ledger = l != NULL && l->have;
    if (!in->have_ledger) {
        return;
    }
    in->month_from_ms = l->month_from_ms;
    in->month_to_ms = l->month_to_ms;
    in->month_unavailable_ms = l->counted_ms;
    in->hour_unavailable_ms = l->hour_unavailable_ms;
    in->have_failover = l->have_failover;
    if (l->have_failover) {
        /* Against the leaders' stamps: the identity clock they come from. */
        int64_t now_ms = kyufu_node__auth_now_ms(n);
        in->last_failover_term = l->last_term;
        in->last_rto_ms = l->last_rto_ms;
        in->last_failover_age_ms =
            now_ms > l->last_first_commit_ms
                ? (uint64_t)(now_ms - l->last_first_commit_ms)
                : 0;
    }
}

/* The inputs, the peers being the voters ids[0..count). */
static void gather(struct kyufu_node *n, const uint64_t *ids, size_t count,
                   struct kyufu_sla_inputs *in)
{
    const struct kyufu_config *c = n->config;
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    uint64_t now = uv_now(&n->loop);
    memset(in, 0, sizeof *in);
    in->leader = kyufu_glue_is_leader(n->glue);
    in->commit_index = st.commit_index;
    if (st.leader_id != 0) {
        n->sla.leader_seen_ms = now;
    }
    in->no_leader_ms = st.leader_id != 0 || now < n->sla.leader_seen_ms
                           ? 0
                           : now - n->sla.leader_seen_ms;
    if (in->leader && !n->sla.was_leader) {
        /* A new leader gives every peer a fresh bound: silence is counted
         * from now, not from before it led. */
        for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
            /* ...and nothing it heard then counts (an applied index of
             * another term would raise follower_lag at once). */
            n->sla.probes[i].last_ms = now;
            n->sla.probes[i].heard = false;
            n->sla.probes[i].applied = 0;
        }
    }
    n->sla.was_leader = in->leader;
    assert(count <= KYUFU_SLA_PEERS_MAX);
    for (size_t i = 0; i < count; i++) {
        bool self = ids[i] == c->id;
        const struct kyufu_node_sla_probe *pr = self ? NULL : probe_of(n, ids[i]);
        if (!self && pr == NULL) {
            continue; /* more voters than probes: not watched */
        }
        struct kyufu_sla_peer *p = &in->peers[in->n_peers++];
        p->id = ids[i];
        p->self = self;
        p->heard = !self && pr->heard;
        p->silent_ms = self || now < pr->last_ms ? 0 : now - pr->last_ms;
        p->applied_index = self ? 0 : pr->applied;
    }
    ledger_inputs(n, in);
    /* The newest good backup in [backup] directory as this node knows it
     * (backup_schedule.c: its scans and its own backups); none known: the
     * rule is skipped (docs/sla.md), never guessed. */
    if (n->backups.newest_ms > 0) {
        int64_t age = kyufu_node__wall_ms() - n->backups.newest_ms;
        in->have_backup = true;
        in->newest_backup_age_ms = age > 0 ? (uint64_t)age : 0;
    }
}

static void raise_alert(struct kyufu_node *n, const struct kyufu_sla_alert *a)
{
    if (n->sla.n_active == KYUFU_SLA_ALERTS_MAX) {
        return; /* evaluate returns at most this many */
    }
    struct kyufu_node_sla_active *x = &n->sla.active[n->sla.n_active++];
    memset(x, 0, sizeof *x);
    x->alert = *a;
    x->since_ms = kyufu_node__wall_ms();
    x->seen = true;
    n->sla.raised_total++;
    kyufu_log(a->severity == KYUFU_SLA_CRITICAL ? KYUFU_LOG_ERROR : KYUFU_LOG_WARN,
              "SLA alert raised",
              KYUFU_LOG_S("alert", kyufu_sla_kind_name(a->kind)),
              KYUFU_LOG_S("severity", kyufu_sla_severity_name(a->severity)),
              KYUFU_LOG_S("subject", a->subject),
              KYUFU_LOG_S("summary", a->summary));
    kyufu_node__sla_hook(n, "raised", a, x->since_ms);
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    if (n->stage != KYUFU_NODE_RUNNING || n->glue == NULL) {
        return;
    }
    struct kyufu_sla_inputs in;
    uint64_t ids[KYUFU_SLA_PEERS_MAX];
    size_t count = voters(n, ids);
    gather(n, ids, count, &in);
    if (in.leader) {
        probe_peers(n, ids, count);
    }
    struct kyufu_sla_alert now[KYUFU_SLA_ALERTS_MAX];
    size_t k = kyufu_sla_evaluate(&n->config->slo, &in, now,
                                  KYUFU_SLA_ALERTS_MAX);
    for (size_t i = 0; i < n->sla.n_active; i++) {
        n->sla.active[i].seen = false;
    }
    for (size_t j = 0; j < k; j++) {
        struct kyufu_node_sla_active *a =
            find_active(n, now[j].kind, now[j].subject);
        if (a == NULL) {
            raise_alert(n, &now[j]);
            continue;
        }
        /* Same alert: its figures move, its since and incident stay. */
        a->alert.severity = now[j].severity;
        a->alert.value = now[j].value;
        a->alert.threshold = now[j].threshold;
        memcpy(a->alert.summary, now[j].summary, sizeof a->alert.summary);
        a->seen = true;
    }
    size_t w = 0;
    for (size_t i = 0; i < n->sla.n_active; i++) {
        struct kyufu_node_sla_active *a = &n->sla.active[i];
        if (a->seen) {
            n->sla.active[w++] = *a;
            continue;
        }
        kyufu_log(KYUFU_LOG_INFO, "SLA alert cleared",
                  KYUFU_LOG_S("alert", kyufu_sla_kind_name(a->alert.kind)),
                  KYUFU_LOG_S("subject", a->alert.subject),
                  KYUFU_LOG_U("incident", a->incident_id));
        kyufu_node__sla_hook(n, "cleared", &a->alert, a->since_ms);
    }
    n->sla.n_active = w;
    if (in.leader) {
        for (size_t i = 0; i < n->sla.n_active; i++) {
            struct kyufu_node_sla_active *a = &n->sla.active[i];
            if (a->incident_id == 0 && !a->proposing) {
                propose_incident(n, a);
            }
        }
    }
}

int kyufu_node__sla_start(struct kyufu_node *n, char *errmsg, size_t len)
{
    (void)errmsg;
    (void)len;
    uv_timer_init(&n->loop, &n->sla.tick);
    n->sla.tick.data = n;
    kyufu_node__sla_hook_init(n);
    n->sla.started = true;
    n->sla.enabled = n->config->has_slo;
    /* A starting cluster elects within two election timeouts: no "no
     * leader" alert before that. */
    n->sla.leader_seen_ms =
        uv_now(&n->loop) + 2 * (uint64_t)n->config->election_timeout_ms;
    if (!n->sla.enabled) {
        return 0;
    }
    uv_timer_start(&n->sla.tick, on_tick, KYUFU_NODE_SLA_TICK_MS,
                   KYUFU_NODE_SLA_TICK_MS);
    kyufu_log(KYUFU_LOG_INFO, "SLA evaluator started",
              KYUFU_LOG_S("slo_file", n->config->sla_slo_file),
              KYUFU_LOG_U("rto_target_ms", n->config->slo.rto_target_ms),
              KYUFU_LOG_U("follower_contact_ms",
                          n->config->slo.follower_contact_ms));
    return 0;
}

void kyufu_node__sla_close(struct kyufu_node *n)
{
    if (!n->sla.started) {
        return;
    }
    n->sla.started = false;
    uv_timer_stop(&n->sla.tick);
    uv_close((uv_handle_t *)&n->sla.tick, NULL);
    kyufu_node__sla_hook_close(n);
}

const struct kyufu_node_sla_active *kyufu_node__sla_active(
    const struct kyufu_node *n, size_t *count)
{
    *count = n->sla.n_active;
    return n->sla.active;
}

/* ------------------------------------------------------------ ListIncidents */

void kyufu_node__list_incidents(struct kyufu_node_call *c)
{
    const Kyufu__V1__ListIncidentsRequest *r = c->request;
    struct kyufu_storage_page page;
    memset(&page, 0, sizeof page);
    int rv = kyufu_storage_list_incidents(
        c->node->storage, r->page_token,
        r->page_size == 0 ? 100 : r->page_size, &page);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "page");
        return;
    }
    if (r->open_only) {
        size_t w = 0;
        for (size_t i = 0; i < page.n; i++) {
            Kyufu__V1__Incident *x = page.items[i];
            if (x->state == KYUFU__V1__INCIDENT_STATE__INCIDENT_OPEN) {
                page.items[w++] = x;
            } else {
                kyufu__v1__incident__free_unpacked(x, NULL);
            }
        }
        page.n = w;
    }
    Kyufu__V1__ListIncidentsResponse resp =
        KYUFU__V1__LIST_INCIDENTS_RESPONSE__INIT;
    resp.n_incidents = page.n;
    resp.incidents = (Kyufu__V1__Incident **)page.items;
    resp.next_page_token = page.next;
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu_storage_page_free(&page);
}
