/* kyufu.v1.Cluster: Status answers for this node (never forwarded: an
 * operator asks each node in turn); TransferLeadership runs on the leader
 * (a follower forwards it); PowerEvent is for this node (upsmon's
 * NOTIFYCMD on its host: docs/power.md; only from this host, by the
 * permission table). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "offload.h"
#include "service.h"

/* The status fields every answer carries; `digest` NULL for none. */
static void status_answer(struct kyufu_node_call *c,
                          const uint8_t *digest,
                          uint64_t digest_at)
{
    struct kyufu_node *n = c->node;
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);

    Kyufu__V1__NodeStatus resp = KYUFU__V1__NODE_STATUS__INIT;
    resp.id = n->config->id;
    resp.role = (char *)(st.role != NULL ? st.role : "unavailable");
    resp.term = st.term;
    resp.commit_index = st.commit_index;
    resp.applied_index = st.applied_index;
    resp.last_log_index = st.last_log_index;
    resp.leader_id = st.leader_id;
    const char *api = "";
    if (st.leader_id != 0) {
        (void)kyufu_node__peer_slot(n, st.leader_id, &api);
    }
    resp.leader_api_address = (char *)api;
    struct kyufu_node_members members;
    kyufu_node__members(n, &members);
    resp.n_members = members.n;
    resp.members = members.p;
    resp.member_role = (char *)members.own_role;
    resp.forwarded_calls = n->forwarded_calls;
    resp.snapshot_copies_sent = st.snapshot_copies_sent;
    resp.snapshot_copies_refused = st.snapshot_copies_refused;
    resp.snapshot_trailing_entries = st.snapshot_trailing_entries;
    resp.power = (char *)kyufu_power_state_name(n->power.state);
    resp.power_domain = (char *)n->config->power_domain;
    resp.ups_contact_lost = n->power.contact_lost;
    /* SLA alerts active now (sla.h). */
    size_t n_active = 0;
    const struct kyufu_node_sla_active *active =
        kyufu_node__sla_active(n, &n_active);
    Kyufu__V1__SlaAlert alerts[KYUFU_SLA_ALERTS_MAX];
    Kyufu__V1__SlaAlert *alert_ptrs[KYUFU_SLA_ALERTS_MAX];
    for (size_t i = 0; i < n_active; i++) {
        const struct kyufu_sla_alert *a = &active[i].alert;
        kyufu__v1__sla_alert__init(&alerts[i]);
        alerts[i].alert = (char *)kyufu_sla_kind_name(a->kind);
        alerts[i].subject = (char *)a->subject;
        alerts[i].severity = (char *)kyufu_sla_severity_name(a->severity);
        alerts[i].summary = (char *)a->summary;
        alerts[i].since_ms = active[i].since_ms;
        alerts[i].value = a->value;
        alerts[i].threshold = a->threshold;
        alert_ptrs[i] = &alerts[i];
    }
    resp.n_sla_alerts = n_active;
    resp.sla_alerts = alert_ptrs;
    resp.sla_evaluated = n->sla.enabled;
    /* Upgrades: this build's command set and the replicated cluster
     * version (docs/operations.md "Upgrades"). */
    Kyufu__V1__RecordVersions *voters = NULL;
    uint32_t cluster = 0;
    int rv = kyufu_storage_cluster_version(n->storage, &cluster, &voters);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "cluster version");
        return;
    }
    resp.command_version = kyufu_storage_command_version();
    resp.cluster_version = cluster;
    if (voters != NULL) {
        resp.n_voter_versions = voters->n_voters;
        resp.voter_versions = voters->voters;
    }
    if (digest != NULL) {
        /* The digest is of the state at `digest_at`, read in one
         * transaction: the applied index reported must be that one, not
         * the glue's. */
        resp.applied_index = digest_at;
        resp.state_digest.data = (uint8_t *)digest;
        resp.state_digest.len = 32;
    }
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu__v1__record_versions__free_unpacked(voters, NULL);
}

struct status_digest
{
    struct kyufu_node_offload o; /* first: offload.c allocates and frees */
    uint8_t digest[32];
    uint64_t at;
    int rv;
};

static void digest_run(struct kyufu_node_offload *o)
{
    struct status_digest *d = (struct status_digest *)o;
    d->rv = kyufu_storage_snapshot_digest(o->snap, d->digest, &d->at);
}

static void digest_done(struct kyufu_node_offload *o)
{
    struct status_digest *d = (struct status_digest *)o;
    if (d->rv != 0) {
        kyufu_node__call_storage_error(o->call, d->rv, "state digest");
        return;
    }
    status_answer(o->call, d->digest, d->at);
}

void kyufu_node__status(struct kyufu_node_call *c)
{
    const Kyufu__V1__StatusRequest *r = c->request;
    if (!r->with_digest) {
        status_answer(c, NULL, 0);
        return;
    }
    /* A walk of the whole store: off the loop thread (offload.h). */
    kyufu_node__offload(c, sizeof(struct status_digest), digest_run,
                        digest_done, "state digest");
}

static void on_transferred(struct kyufu_glue_transfer *req, int status)
{
    struct kyufu_node_call *c = req->data;
    struct kyufu_node *n = c->node;
    if (status == KYUFU_GLUE_ETIMEOUT) {
        kyufu_node__call_done(c, KYUFU_GRPC_DEADLINE_EXCEEDED,
                              "no other node took leadership in time", NULL,
                              0);
        return;
    }
    if (status != 0) {
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(status));
        kyufu_node__check_fatal(n, status);
        return;
    }
    const char *api = "";
    Kyufu__V1__TransferLeadershipResponse resp =
        KYUFU__V1__TRANSFER_LEADERSHIP_RESPONSE__INIT;
    resp.new_leader_id = kyufu_node__leader(n, &api);
    kyufu_log(KYUFU_LOG_INFO, "leadership transferred on request",
              KYUFU_LOG_U("new_leader", resp.new_leader_id));
    kyufu_node__call_done_msg(c, &resp.base);
}

static void on_transfer_intent(struct kyufu_node *n, int status, void *arg)
{
    struct kyufu_node_call *c = arg;
    const Kyufu__V1__TransferLeadershipRequest *r = c->request;
    if (status != 0) {
        kyufu_log(KYUFU_LOG_WARN, "transfer intent not recorded; handing "
                  "over anyway",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
    }
    c->req.transfer.data = c;
    int rv = kyufu_glue_transfer(n->glue, &c->req.transfer, r->target_id,
                                 on_transferred);
    if (rv == 0) {
        kyufu_node__metrics_transfer(n, KYUFU_NODE_CAUSE_PLANNED);
    }
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward_now(c); /* never held: no replay */
        return;
    }
    if (rv != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              kyufu_glue_strerror(rv), NULL, 0);
    }
}

void kyufu_node__transfer(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__TransferLeadershipRequest *r = c->request;
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward_now(c); /* never held: no replay */
        return;
    }
    if (r->target_id != 0 && !kyufu_node__is_voter(n, r->target_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "target_id is not a voter of the cluster", NULL,
                              0);
        return;
    }
    if (r->target_id == n->config->id) {
        Kyufu__V1__TransferLeadershipResponse resp =
            KYUFU__V1__TRANSFER_LEADERSHIP_RESPONSE__INIT;
        resp.new_leader_id = n->config->id; /* already there */
        kyufu_node__call_done_msg(c, &resp.base);
        return;
    }
    /* First the intent (availability ledger: cause PLANNED), then the
     * transfer, whatever became of the intent. */
    int rv = kyufu_node__avail_intent(n,
                                      KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED,
                                      "", on_transfer_intent, c);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward_now(c); /* never held: no replay */
    } else if (rv != 0) {
        on_transfer_intent(n, rv, c);
    }
}

void kyufu_node__power_event_call(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__PowerEventRequest *r = c->request;
    enum kyufu_power_state st = KYUFU_POWER_NONE;
    /* Only from this node's own host, where upsmon's NOTIFYCMD runs: the
     * permission table's LOCAL row (permissions.c), checked in service.c
     * before this runs. */
    enum kyufu_power_event_kind kind = kyufu_power_parse(r->event, &st);
    if (kind == KYUFU_POWER_EVENT_BAD) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "event is neither a upsmon NOTIFYTYPE (ONLINE, "
                              "ONBATT, LOWBATT, FSD, SHUTDOWN, COMMOK, "
                              "COMMBAD, NOCOMM) nor an ups.status with OL, OB "
                              "or FSD",
                              NULL, 0);
        return;
    }
    /* Answer first: a low battery stops the node (deferred: the answer
     * goes out before the API server closes).  call_done frees the request,
     * so the event text is copied for the log first. */
    char event[64];
    snprintf(event, sizeof event, "%s", r->event);
    Kyufu__V1__PowerEventResponse resp = KYUFU__V1__POWER_EVENT_RESPONSE__INIT;
    enum kyufu_power_state after =
        kind == KYUFU_POWER_EVENT_STATE ? st : n->power.state;
    resp.power = (char *)kyufu_power_state_name(after);
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu_node__power_event(n, kind, st, "power-event", event);
}
