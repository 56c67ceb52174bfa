/* The node's side of the availability ledger and of drills (availability.h,
 * docs/sla.md).
 *
 * Happy path: every [sla] heartbeat_ms the leader proposes an
 * AvailabilityHeartbeat (one in flight at most; apply counts it and
 * compacts old detail).  When this node becomes leader of a term whose
 * LeaderChange has not committed yet, it proposes one with what it observed
 * of the old leader: CRASH when its Raft connection to that node ended from
 * the TCP side or was refused shortly before (the kernel closes a dead
 * process's sockets), PARTITION when the old leader was known but nothing
 * closed (it went silent), UNKNOWN when no old leader was known (this node
 * restarted).  A planned hand-over or a drill first commits a
 * FailoverIntent, which apply prefers over the observation.
 *
 * Failure modes: a proposal that fails (leadership lost, shutdown, busy) is
 * dropped; the heartbeat timer retries the LeaderChange while this node
 * still leads that term.  A heartbeat lost is a (short) gap, which is what
 * the ledger is meant to see.  Drills are refused with PERMISSION_DENIED
 * unless [sla] allow_drills = true; a crash drill answers its caller, then
 * kills this process with SIGKILL after KYUFU_NODE_DRILL_CRASH_DELAY_MS
 * (the answer must leave first); the operator or systemd restarts it. */
#include "availability.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth_node.h"
#include "kyufu/v1/service.pb-c.h"
#include "limits.h"
#include "log.h"
#include "node.h"
#include "service.h"
#include "storage_limits.h"

int64_t kyufu_node__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kyufu_node__propose_own(struct kyufu_node *n,
                            struct kyufu_glue_propose *req,
                            Kyufu__V1__Command *cmd,
                            kyufu_glue_propose_cb cb)
{
    char client[32];
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    snprintf(client, sizeof client, "kyufud-%llu",
             (unsigned long long)n->config->id);
    key.client_id = client;
    key.sequence = ++n->avail.seq;
    h.actor = (char *)"kyufud";
    h.terminal = (char *)"";
    h.key = &key;
    h.time_ms = kyufu_node__auth_now_ms(n); /* the identity clock */
    cmd->header = &h;
    return kyufu_glue_propose(n->glue, req, cmd, cb);
}

int kyufu_node__propose_system(struct kyufu_node *n,
                               struct kyufu_glue_propose *req,
                               Kyufu__V1__Command *cmd,
                               uint64_t *seq_last,
                               kyufu_glue_propose_cb cb)
{
    char actor[32];
    snprintf(actor, sizeof actor, "kyufu-node-%llu",
             (unsigned long long)n->config->id);
    int64_t now = kyufu_node__wall_ms();
    uint64_t seq = now > 0 && (uint64_t)now > *seq_last ? (uint64_t)now
                                                       : *seq_last + 1;
    *seq_last = seq;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    key.client_id = actor;
    key.sequence = seq;
    Kyufu__V1__CommandHeader header = KYUFU__V1__COMMAND_HEADER__INIT;
    header.actor = actor;
    header.terminal = (char *)"";
    header.key = &key;
    header.time_ms = kyufu_node__auth_now_ms(n); /* not `now`: a wall step */
    cmd->header = &header;
    return kyufu_glue_propose(n->glue, req, cmd, cb);
}

static void result_free(Kyufu__V1__CommandResult *r)
{
    if (r != NULL) {
        kyufu__v1__command_result__free_unpacked(r, NULL);
    }
}

/* ------------------------------------------------------------ heartbeat */

static void on_heartbeat(struct kyufu_glue_propose *req, int status,
                         Kyufu__V1__CommandResult *r)
{
    struct kyufu_node *n = req->data;
    n->avail.hb_pending = false;
    if (status == 0 && r->code != KYUFU__V1__CODE__OK) {
        kyufu_log(KYUFU_LOG_WARN, "availability heartbeat refused",
                  KYUFU_LOG_S("message", r->message));
    }
    result_free(r);
    kyufu_node__check_fatal(n, status);
}

static void on_leader_change(struct kyufu_glue_propose *req, int status,
                             Kyufu__V1__CommandResult *r)
{
    struct kyufu_node *n = req->data;
    n->avail.lc_pending = false;
    if (status == 0) {
        /* Committed (or refused as of an ended term): done either way. */
        if (r->code == KYUFU__V1__CODE__OK) {
            kyufu_log(KYUFU_LOG_INFO, "leader change recorded",
                      KYUFU_LOG_S("object", r->object),
                      KYUFU_LOG_U("old_leader", n->avail.old_leader));
        }
        n->avail.lc_term_done = n->avail.lc_term;
    }
    result_free(r);
    kyufu_node__check_fatal(n, status);
}

static bool leading(struct kyufu_node *n)
{
    return n->stage == KYUFU_NODE_RUNNING && n->glue != NULL &&
           kyufu_glue_is_leader(n->glue);
}

/* What this node saw of the old leader's end (see the file comment). */
static uint64_t observed_cause(struct kyufu_node *n)
{
    uint64_t old = n->avail.old_leader;
    if (old == 0) {
        return KYUFU__V1__FAILOVER_CAUSE__CAUSE_UNKNOWN;
    }
    uint64_t lost = kyufu_glue_peer_lost_ms(n->glue, old);
    uint64_t now = uv_now(&n->loop);
    if (lost != 0 && now - lost <= (uint64_t)n->config->election_timeout_ms *
                                       KYUFU_NODE_CRASH_EVIDENCE_ELECTIONS) {
        return KYUFU__V1__FAILOVER_CAUSE__CAUSE_CRASH;
    }
    return KYUFU__V1__FAILOVER_CAUSE__CAUSE_PARTITION;
}

/* Follow the leader this node knows; when it becomes the leader itself,
 * the one it knew before is the old leader.  Called from the state
 * callback and from the tick, whichever sees the new leadership first:
 * the tick can run after raft made this node leader and before the glue
 * reported it (a failover then recorded with no old leader and an
 * unknown cause: cluster-availability, clean-clone CI). */
static void track_leader(struct kyufu_node *n,
                         const struct kyufu_glue_status *st)
{
    if (st->leader_id != 0 && st->leader_id != n->avail.known_leader) {
        if (st->leader_id == n->config->id) {
            n->avail.old_leader = n->avail.known_leader;
        }
        n->avail.known_leader = st->leader_id;
    }
}

static void propose_leader_change(struct kyufu_node *n)
{
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    track_leader(n, &st);
    if (!leading(n) || n->avail.lc_pending) {
        return;
    }
    if (st.term == n->avail.lc_term_done) {
        return;
    }
    Kyufu__V1__LeaderChange lc = KYUFU__V1__LEADER_CHANGE__INIT;
    lc.new_leader_id = n->config->id;
    lc.term = st.term;
    lc.observed_cause = observed_cause(n);
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_LEADER_CHANGE;
    cmd.leader_change = &lc;
    n->avail.lc.data = n;
    if (kyufu_node__propose_own(n, &n->avail.lc, &cmd,
                                on_leader_change) == 0) {
        n->avail.lc_pending = true;
        n->avail.lc_term = st.term;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    if (!leading(n)) {
        return;
    }
    propose_leader_change(n);
    if (n->avail.hb_pending) {
        return;
    }
    Kyufu__V1__AvailabilityHeartbeat hb = KYUFU__V1__AVAILABILITY_HEARTBEAT__INIT;
    hb.leader_id = n->config->id;
    hb.interval_ms = n->config->sla_heartbeat_ms;
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_AVAILABILITY_HEARTBEAT;
    cmd.availability_heartbeat = &hb;
    n->avail.hb.data = n;
    if (kyufu_node__propose_own(n, &n->avail.hb, &cmd, on_heartbeat) == 0) {
        n->avail.hb_pending = true;
    }
}

void kyufu_node__avail_start(struct kyufu_node *n)
{
    uv_timer_init(&n->loop, &n->avail.timer);
    n->avail.timer.data = n;
    n->avail.timer_init = true;
    uv_timer_start(&n->avail.timer, on_tick, n->config->sla_heartbeat_ms,
                   n->config->sla_heartbeat_ms);
    uv_timer_init(&n->loop, &n->avail.intent_timer);
    n->avail.intent_timer.data = n;
}

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

void kyufu_node__avail_close(struct kyufu_node *n)
{
    if (n->avail.timer_init) {
        uv_close((uv_handle_t *)&n->avail.timer, close_noop);
        uv_close((uv_handle_t *)&n->avail.intent_timer, close_noop);
        n->avail.timer_init = false;
    }
    if (n->avail.crash_timer_init) {
        uv_close((uv_handle_t *)&n->avail.crash_timer, close_noop);
        n->avail.crash_timer_init = false;
    }
}

void kyufu_node__avail_on_state(struct kyufu_node *n)
{
    if (n->glue == NULL) {
        return;
    }
    /* Inside raft's callback: proposing here is legal (the glue defers). */
    propose_leader_change(n);
}

/* ------------------------------------------------------------ intent */

static void on_intent_defer(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    kyufu_node_intent_cb cb = n->avail.intent_cb;
    void *arg = n->avail.intent_arg;
    int status = n->avail.intent_status;
    n->avail.intent_pending = false;
    n->avail.intent_cb = NULL;
    if (cb != NULL) {
        cb(n, status, arg);
    }
}

/* The intent committed (or failed): its caller's callback runs from a
 * zero timer, outside raft's apply callback.  A transfer started from
 * inside that callback sat for a whole election timeout in libraft 0.22.1
 * (measured with tests/integration/test_power.py: a write gap of ~1.1 s
 * instead of under 100 ms); from the timer it goes at once. */
static void on_intent(struct kyufu_glue_propose *req, int status,
                      Kyufu__V1__CommandResult *r)
{
    struct kyufu_node *n = req->data;
    if (status == 0 && r->code != KYUFU__V1__CODE__OK) {
        kyufu_log(KYUFU_LOG_WARN, "failover intent refused",
                  KYUFU_LOG_S("message", r->message));
        status = KYUFU_GLUE_EINVALID;
    }
    result_free(r);
    n->avail.intent_status = status;
    uv_timer_start(&n->avail.intent_timer, on_intent_defer, 0, 0);
}

int kyufu_node__avail_intent(struct kyufu_node *n,
                             uint64_t cause,
                             const char *drill_id,
                             kyufu_node_intent_cb cb,
                             void *arg)
{
    if (n->avail.intent_pending) {
        return KYUFU_GLUE_EBUSY;
    }
    Kyufu__V1__FailoverIntent in = KYUFU__V1__FAILOVER_INTENT__INIT;
    in.cause = cause;
    in.drill_id = (char *)(drill_id != NULL ? drill_id : "");
    in.leader_id = n->config->id;
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_FAILOVER_INTENT;
    cmd.failover_intent = &in;
    n->avail.intent_cb = cb;
    n->avail.intent_arg = arg;
    n->avail.intent.data = n;
    int rv = kyufu_node__propose_own(n, &n->avail.intent, &cmd, on_intent);
    if (rv != 0) {
        n->avail.intent_cb = NULL;
        return rv;
    }
    n->avail.intent_pending = true;
    return 0;
}

/* ------------------------------------------------------------ calls */

void kyufu_node__get_availability(struct kyufu_node_call *c)
{
    const Kyufu__V1__GetAvailabilityRequest *r = c->request;
    Kyufu__V1__AvailabilityReport *rep = NULL;
    char err[256] = "";
    int rv = kyufu_storage_availability(c->node->storage, r->from_ms, r->to_ms,
                                        &rep, err, sizeof err);
    if (rv == KYUFU_STORAGE_EINVALID) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, err, NULL, 0);
        return;
    }
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "availability ledger");
        return;
    }
    kyufu_node__call_done_msg(c, &rep->base);
    kyufu_storage_availability_free(rep);
}

static void on_crash_timer(uv_timer_t *t)
{
    (void)t;
    /* The drill's whole point: no hand-over, no clean close, like a crash
     * (systemd's Restart=on-failure brings it back). */
    kyufu_log0(KYUFU_LOG_WARN, "crash drill: killing this process now");
    raise(SIGKILL);
}

static void on_drill_transfer(struct kyufu_glue_transfer *req, int status)
{
    struct kyufu_node_call *c = req->data;
    struct kyufu_node *n = c->node;
    if (status != 0) {
        kyufu_node__call_done(c, status == KYUFU_GLUE_ETIMEOUT
                                     ? KYUFU_GRPC_DEADLINE_EXCEEDED
                                     : KYUFU_GRPC_UNAVAILABLE,
                              kyufu_glue_strerror(status), NULL, 0);
        kyufu_node__check_fatal(n, status);
        return;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    Kyufu__V1__DrillResponse resp = KYUFU__V1__DRILL_RESPONSE__INIT;
    resp.leader_id = n->config->id;
    resp.term = st.term;
    resp.new_leader_id = st.leader_id;
    kyufu_node__call_done_msg(c, &resp.base);
}

static void on_drill_intent(struct kyufu_node *n, int status, void *arg)
{
    struct kyufu_node_call *c = arg;
    const Kyufu__V1__DrillRequest *r = c->request;
    if (status != 0) {
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(status));
        kyufu_node__check_fatal(n, status);
        return;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (r->mode == KYUFU__V1__DRILL_MODE__DRILL_CRASH) {
        kyufu_log(KYUFU_LOG_WARN, "crash drill: intent recorded, stopping "
                  "abruptly",
                  KYUFU_LOG_S("drill_id", r->drill_id),
                  KYUFU_LOG_U("term", st.term));
        Kyufu__V1__DrillResponse resp = KYUFU__V1__DRILL_RESPONSE__INIT;
        resp.leader_id = n->config->id;
        resp.term = st.term;
        kyufu_node__call_done_msg(c, &resp.base);
        if (!n->avail.crash_timer_init) {
            uv_timer_init(&n->loop, &n->avail.crash_timer);
            n->avail.crash_timer_init = true;
        }
        uv_timer_start(&n->avail.crash_timer, on_crash_timer,
                       KYUFU_NODE_DRILL_CRASH_DELAY_MS, 0);
        return;
    }
    kyufu_log(KYUFU_LOG_INFO, "planned drill: intent recorded, handing "
              "leadership over",
              KYUFU_LOG_S("drill_id", r->drill_id));
    c->req.transfer.data = c;
    int rv = kyufu_glue_transfer(n->glue, &c->req.transfer, 0,
                                 on_drill_transfer);
    if (rv == 0) {
        /* This node's kyufu_failovers_total counts the hand-over as
         * planned, as for TransferLeadership (docs/metrics.md). */
        kyufu_node__metrics_transfer(n, KYUFU_NODE_CAUSE_PLANNED);
    }
    if (rv != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              kyufu_glue_strerror(rv), NULL, 0);
    }
}

static void on_drill_result(struct kyufu_glue_propose *req, int status,
                            Kyufu__V1__CommandResult *r)
{
    struct kyufu_node_call *c = req->data;
    struct kyufu_node *n = c->node;
    if (status != 0) {
        kyufu_node__proposal_failed(c, status);
        return;
    }
    if (r->code != KYUFU__V1__CODE__OK) {
        kyufu_node__call_done(c, (int)r->code, r->message, NULL, 0);
    } else {
        Kyufu__V1__DrillResponse resp = KYUFU__V1__DRILL_RESPONSE__INIT;
        resp.leader_id = n->config->id;
        kyufu_node__call_done_msg(c, &resp.base);
    }
    result_free(r);
}

void kyufu_node__drill(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__DrillRequest *r = c->request;
    if (!n->config->sla_allow_drills) {
        kyufu_log(KYUFU_LOG_WARN, "drill refused: [sla] allow_drills is not "
                  "true on this node",
                  KYUFU_LOG_S("peer", c->call->peer_address));
        kyufu_node__call_done(c, KYUFU_GRPC_PERMISSION_DENIED,
                              "drills are disabled on this node: set [sla] "
                              "allow_drills = true in its kyufud.conf to "
                              "allow them",
                              NULL, 0);
        return;
    }
    if (!kyufu_storage_valid_drill_id(r->drill_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "drill_id must be 1..64 bytes of "
                              "[A-Za-z0-9._-]",
                              NULL, 0);
        return;
    }
    if (r->mode != KYUFU__V1__DRILL_MODE__DRILL_PLANNED &&
        r->mode != KYUFU__V1__DRILL_MODE__DRILL_CRASH &&
        r->mode != KYUFU__V1__DRILL_MODE__DRILL_RESULT) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "mode must be DRILL_PLANNED, DRILL_CRASH or "
                              "DRILL_RESULT",
                              NULL, 0);
        return;
    }
    if (r->mode == KYUFU__V1__DRILL_MODE__DRILL_RESULT &&
        r->writes_lost > r->writes_acknowledged) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "writes_lost exceeds writes_acknowledged",
                              NULL, 0);
        return;
    }
    if (r->mode != KYUFU__V1__DRILL_MODE__DRILL_RESULT &&
        n->config->n_peers < 2) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "a failover drill needs another node to take "
                              "over",
                              NULL, 0);
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward_now(c); /* never held: no replay */
        return;
    }
    if (r->mode == KYUFU__V1__DRILL_MODE__DRILL_RESULT) {
        Kyufu__V1__DrillResult dr = KYUFU__V1__DRILL_RESULT__INIT;
        dr.drill_id = r->drill_id;
        dr.writes_acknowledged = r->writes_acknowledged;
        dr.writes_lost = r->writes_lost;
        Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
        cmd.body_case = KYUFU__V1__COMMAND__BODY_DRILL_RESULT;
        cmd.drill_result = &dr;
        c->req.propose.data = c;
        int rv = kyufu_node__propose_own(n, &c->req.propose, &cmd,
                                         on_drill_result);
        if (rv != 0) {
            kyufu_node__call_unavailable(c, kyufu_glue_strerror(rv));
        }
        return;
    }
    uint64_t cause = r->mode == KYUFU__V1__DRILL_MODE__DRILL_CRASH
                         ? KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_CRASH
                         : KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_PLANNED;
    int rv = kyufu_node__avail_intent(n, cause, r->drill_id, on_drill_intent,
                                      c);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward_now(c); /* never held: no replay */
    } else if (rv != 0) {
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(rv));
    }
}
