/* Follower refusals (issue 8 item 7; docs/identity.md "Refusals"): a
 * follower sends the refusal records it took to the leader, which
 * proposes them naming the follower.
 *
 * Follower, happy path: oplog.c admits a refusal under its own bound and,
 * not being the leader, queues its record (kyufu_node__refusal_report_push;
 * refusal_batch.h) -> every KYUFU_NODE_REFUSAL_SEND_MS, or at once when a
 * batch is full, the oldest records (at most KYUFU_NODE_REFUSAL_BATCH_MAX)
 * and the count of records the full queue turned away go to the leader as
 * NodeInternal/ReportRefusals over the forwarding client (mutual TLS with
 * this node's certificate) -> OK: they leave the queue.  One report in
 * flight at a time; the loop never waits for it.
 *
 * Follower, failure modes: no leader known, or its address not known: the
 * queue waits for the next tick.  The call fails (leader unreachable,
 * UNAVAILABLE from a node that is no longer the leader, deadline): the
 * batch stays at the queue's front and is sent again, under the same
 * number, at the next tick; the first failure after a success is logged.
 * The queue full: records are counted, and the count reaches the chain as
 * one record.  This node became the leader: it proposes its queue itself.
 *
 * Leader: the permission table lets only a node certificate call the
 * method (service.c authorize; anyone else is refused and recorded there);
 * here the node must also be a member of the Raft configuration this
 * leader knows, not itself (refused and recorded otherwise) -> not the
 * leader: UNAVAILABLE (never forwarded: the sender keeps its batch) -> the
 * batch checked whole (INVALID_ARGUMENT, nothing recorded) -> a batch of
 * this sender's run already recorded (its answer was lost): OK, nothing
 * proposed -> the sender's bound (KYUFU_NODE_REFUSAL_PER_NODE_MAX per
 * window; over it, counted: one count record per window) -> one RecordAccess
 * per record, proposed together (the glue's group commit: the first
 * few go out as entries of their own while fewer than 8 are in flight, the
 * rest share one entry; one RecordAccess is one command, so one entry
 * per batch would need a command that carries many records),
 * each with key client id kyufu-node-<sender> -> answered once every
 * proposal called back: OK if all committed, else UNAVAILABLE (the sender
 * sends the batch again; the records that did commit appear twice, which
 * the auditor can tell by their identical fields). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "oplog.h"
#include "service.h"

#define METHOD "/kyufu.v1.NodeInternal/ReportRefusals"

/* A count record: refusals not recorded one by one, under the method name
 * KYUFU_NODE_OPLOG_SEVERAL and PERMISSION_DENIED, as oplog.c's for a
 * window's rest, taken now; the message (printf's fmt) says how many and
 * why. */
static void count_entry(struct kyufu_node_refusal_entry *e, const char *fmt,
                        ...) __attribute__((format(printf, 2, 3)));
static void count_entry(struct kyufu_node_refusal_entry *e, const char *fmt,
                        ...)
{
    va_list ap;
    memset(e, 0, sizeof *e);
    snprintf(e->method, sizeof e->method, "%s", KYUFU_NODE_OPLOG_SEVERAL);
    e->outcome = KYUFU__V1__CODE__PERMISSION_DENIED;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->time_ms = kyufu_node__wall_ms();
}

/* The leader's count record of `count` records node_id reported over its
 * bound. */
static void bounded_entry(struct kyufu_node_refusal_entry *e,
                          uint64_t node_id, uint64_t count)
{
    count_entry(e,
                "%llu refusals reported by node %llu over the leader's bound "
                "of %u in %u ms, not recorded one by one",
                (unsigned long long)count, (unsigned long long)node_id,
                KYUFU_NODE_REFUSAL_PER_NODE_MAX,
                KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS);
}

/* ---------------------------------------------------------- the follower */

static void send_report(struct kyufu_node *n);

static void on_reported(struct kyufu_grpc_client_req *req,
                        int status,
                        const char *message,
                        const uint8_t *response,
                        size_t response_len)
{
    struct kyufu_node *n = req->data;
    struct kyufu_node_oplog *o = &n->oplog;
    (void)response;
    (void)response_len;
    assert(o->report_in_flight);
    o->report_in_flight = false;
    if (status == KYUFU_GRPC_OK) {
        o->reports_sent++;
        o->refusals_reported += o->queue.taken_n;
        kyufu_node__refusal_queue_ack(&o->queue);
        o->report_failing = false;
        return;
    }
    o->reports_failed++;
    if (status == KYUFU_GRPC_INVALID_ARGUMENT ||
        status == KYUFU_GRPC_PERMISSION_DENIED) {
        /* Final: the leader will never take this batch (a record it does
         * not accept, e.g. from a newer build; this node not a member).
         * Sent again it would stall every later refusal behind it: drop
         * it, its records counted in the next batch's dropped count. */
        uint64_t lost = o->queue.taken_n + o->queue.taken_dropped;
        kyufu_node__refusal_queue_ack(&o->queue);
        o->queue.dropped += lost;
        kyufu_log(KYUFU_LOG_ERROR, "refusal report refused by the leader; "
                  "batch dropped",
                  KYUFU_LOG_S("status", kyufu_grpc_status_name(status)),
                  KYUFU_LOG_S("detail", message), KYUFU_LOG_U("records", lost));
        return;
    }
    if (!o->report_failing) {
        kyufu_log(KYUFU_LOG_WARN, "refusal report not recorded by the leader",
                  KYUFU_LOG_S("status", kyufu_grpc_status_name(status)),
                  KYUFU_LOG_S("detail", message),
                  KYUFU_LOG_U("queued", o->queue.count));
        o->report_failing = true;
    }
}

/* This node is the leader now: its queue is proposed here. */
static void propose_queue(struct kyufu_node *n)
{
    struct kyufu_node_refusal_queue *q = &n->oplog.queue;
    if (n->oplog.report_in_flight) {
        return; /* its answer first: the batch may be recorded already */
    }
    for (size_t i = 0; i < q->count; i++) {
        kyufu_node__oplog_record(n, kyufu_node__refusal_queue_at(q, i),
                                 n->config->id);
    }
    if (q->dropped > 0) {
        struct kyufu_node_refusal_entry e;
        count_entry(&e,
                    "%llu refusals not recorded one by one: the queue for the "
                    "leader was full",
                    (unsigned long long)q->dropped);
        kyufu_node__oplog_record(n, &e, n->config->id);
    }
    kyufu_node__refusal_queue_clear(q);
}

static void send_report(struct kyufu_node *n)
{
    struct kyufu_node_oplog *o = &n->oplog;
    if (n->stage != KYUFU_NODE_RUNNING || n->glue == NULL ||
        o->report_in_flight) {
        return;
    }
    if (kyufu_glue_is_leader(n->glue)) {
        propose_queue(n);
        return;
    }
    if (o->queue.count == 0 && o->queue.dropped == 0) {
        return;
    }
    const char *api = "";
    uint64_t leader = kyufu_node__leader(n, &api);
    if (leader == 0 || leader == n->config->id) {
        return;
    }
    int slot = kyufu_node__peer_slot(n, leader, &api);
    if (slot < 0) {
        return;
    }
    char errmsg[256] = "";
    struct kyufu_grpc_client *client =
        kyufu_node__peer_client(n, (size_t)slot, errmsg, sizeof errmsg);
    if (client == NULL) {
        return;
    }
    uint8_t *buf;
    size_t len;
    if (kyufu_node__refusal_queue_pack(&o->queue, o->boot_id, &buf, &len) !=
        0) {
        return; /* nothing to send, or out of memory: the next tick */
    }
    o->report_req.data = n;
    int rv = kyufu_grpc_client_call(client, &o->report_req, METHOD, buf, len,
                                    KYUFU_NODE_REFUSAL_SEND_TIMEOUT_MS, NULL,
                                    0, on_reported);
    free(buf);
    if (rv == 0) {
        o->report_in_flight = true;
    }
}

static void on_send_tick(uv_timer_t *t)
{
    send_report(t->data);
}

void kyufu_node__refusal_report_push(struct kyufu_node *n,
                                     const struct kyufu_node_refusal_entry *e)
{
    struct kyufu_node_oplog *o = &n->oplog;
    if (!kyufu_node__refusal_queue_push(&o->queue, e)) {
        return; /* counted in queue.dropped, reported with a batch */
    }
    if (o->queue.count >= KYUFU_NODE_REFUSAL_BATCH_MAX) {
        send_report(n);
    }
}

void kyufu_node__refusal_report_start(struct kyufu_node *n)
{
    struct kyufu_node_oplog *o = &n->oplog;
    int64_t now = kyufu_node__wall_ms();
    o->boot_id = now > 0 ? (uint64_t)now : 1;
    uv_timer_init(&n->loop, &o->report_timer);
    o->report_timer.data = n;
    uv_timer_start(&o->report_timer, on_send_tick, KYUFU_NODE_REFUSAL_SEND_MS,
                   KYUFU_NODE_REFUSAL_SEND_MS);
    o->report_started = true;
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

void kyufu_node__refusal_report_close(struct kyufu_node *n)
{
    struct kyufu_node_oplog *o = &n->oplog;
    if (o->report_started) {
        uv_close((uv_handle_t *)&o->report_timer, closed);
        o->report_started = false;
    }
    if (o->queue.count > 0 || o->queue.dropped > 0) {
        /* Their log lines (refusal.c) remain. */
        kyufu_log(KYUFU_LOG_WARN, "refusal records not reported at stop",
                  KYUFU_LOG_U("count", o->queue.count),
                  KYUFU_LOG_U("dropped", o->queue.dropped));
    }
}

/* ------------------------------------------------------------ the leader */

/* A count record of a sender: `count` records over the leader's bound. */
static void propose_bounded(struct kyufu_node *n, uint64_t node_id,
                            uint64_t count)
{
    struct kyufu_node_refusal_entry e;
    bounded_entry(&e, node_id, count);
    kyufu_node__oplog_record(n, &e, node_id);
}

void kyufu_node__refusal_report_tick(struct kyufu_node *n)
{
    uint64_t now = uv_now(&n->loop);
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        struct kyufu_node_refusal_sender *s = &n->oplog.senders.s[i];
        uint64_t flush = 0;
        if (s->node_id == 0 || s->busy || s->bounded == 0) {
            continue;
        }
        (void)kyufu_node__refusal_sender_admit(s, now, 0, &flush);
        if (flush > 0) {
            propose_bounded(n, s->node_id, flush);
        }
    }
}

/* One batch being recorded. */
struct report
{
    struct kyufu_node_call *c;
    struct kyufu_node_refusal_sender *s;
    uint64_t seq;
    size_t pending; /* proposals not called back yet */
    bool failed;
    unsigned proposed;
    unsigned bounded;
    struct proposal
    {
        struct kyufu_glue_propose req;
        struct report *r;
    } p[];
};

static void report_done(struct report *r)
{
    struct kyufu_node_call *c = r->c;
    r->s->busy = false;
    if (r->failed) {
        kyufu_node__call_unavailable(c, "the batch's records were not all "
                                        "committed: send it again");
    } else {
        r->s->last_seq = r->seq;
        c->node->oplog.refusals_received += r->proposed;
        Kyufu__V1__ReportRefusalsResponse resp =
            KYUFU__V1__REPORT_REFUSALS_RESPONSE__INIT;
        resp.proposed = r->proposed;
        resp.bounded = r->bounded;
        kyufu_node__call_done_msg(c, &resp.base);
    }
    free(r);
}

static void on_committed(struct kyufu_glue_propose *req,
                         int status,
                         Kyufu__V1__CommandResult *result)
{
    struct proposal *p = req->data;
    struct report *r = p->r;
    if (status != 0 || result->code != KYUFU__V1__CODE__OK) {
        r->failed = true;
        if (status == 0) {
            kyufu_log(KYUFU_LOG_ERROR, "refusal record refused by apply",
                      KYUFU_LOG_S("detail", result->message));
        }
    }
    if (result != NULL) {
        kyufu__v1__command_result__free_unpacked(result, NULL);
    }
    assert(r->pending > 0);
    if (--r->pending == 0) {
        report_done(r);
    }
}

/* Refuse the call; `record`: and record the refusal, as authorize does
 * (a caller that may not report; a malformed batch of a member is only
 * logged: none of its records is taken). */
static void refuse(struct kyufu_node_call *c, int code, const char *msg,
                   bool record)
{
    /* The message is a literal here, for the log catalogue. */
    kyufu_log(KYUFU_LOG_WARN, "refusal report refused",
              KYUFU_LOG_S("peer", c->call->peer_address),
              KYUFU_LOG_S("subject", c->call->peer_identity),
              KYUFU_LOG_S("detail", msg));
    kyufu_node__call_refuse_peer(c, code, msg, record);
}

void kyufu_node__report_refusals(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__ReportRefusalsRequest *req =
        (const Kyufu__V1__ReportRefusalsRequest *)c->request;
    /* The permission table lets nothing but a node's own call through. */
    assert(c->principal.kind == KYUFU_PRINCIPAL_NODE);
    uint64_t from = c->principal.node_id;
    char msg[200];
    if (n->glue == NULL || from == n->config->id ||
        !kyufu_node__is_member(n, from)) {
        snprintf(msg, sizeof msg,
                 "%s: node %llu is not another member of this cluster", METHOD,
                 (unsigned long long)from);
        refuse(c, KYUFU_GRPC_PERMISSION_DENIED, msg, true);
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__call_unavailable(c, "not the leader");
        return;
    }
    if (kyufu_node__refusal_batch_check(req, msg, sizeof msg) != 0) {
        refuse(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, false);
        return;
    }
    if (!kyufu_node__oplog_access_known(n)) {
        kyufu_node__call_unavailable(c, "the cluster's version does not know "
                                        "RecordAccess yet");
        return;
    }
    struct kyufu_node_refusal_sender *s =
        kyufu_node__refusal_sender(&n->oplog.senders, from);
    if (s == NULL || s->busy) {
        kyufu_node__call_unavailable(c, "a batch of this node is being "
                                        "recorded");
        return;
    }
    if (kyufu_node__refusal_sender_seen(s, req->boot_id, req->batch_seq)) {
        Kyufu__V1__ReportRefusalsResponse resp =
            KYUFU__V1__REPORT_REFUSALS_RESPONSE__INIT;
        kyufu_node__call_done_msg(c, &resp.base);
        return;
    }

    /* What the bound admits: the records, then the queue's dropped count
     * as one record; the window's earlier count, outside the bound. */
    uint64_t flush = 0;
    unsigned want = (unsigned)req->n_refusals + (req->dropped > 0 ? 1u : 0u);
    unsigned take = kyufu_node__refusal_sender_admit(
        s, uv_now(&n->loop), want, &flush);
    unsigned records = take < req->n_refusals ? take
                                              : (unsigned)req->n_refusals;
    bool dropped_record = req->dropped > 0 && take > req->n_refusals;
    if (req->dropped > 0 && !dropped_record) {
        s->bounded += req->dropped - 1; /* admit counted the record */
    }
    size_t total = records + (dropped_record ? 1u : 0u) + (flush > 0 ? 1u : 0u);
    struct report *r = calloc(1, sizeof *r + (total > 0 ? total : 1) *
                                                 sizeof r->p[0]);
    if (r == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    r->c = c;
    r->s = s;
    r->seq = req->batch_seq;
    r->bounded = want - take;
    if (total == 0) {
        s->busy = true;
        report_done(r);
        return;
    }
    struct kyufu_node_refusal_entry e; /* proposing copies it */
    size_t k = 0;
    int rv = 0;
    s->busy = true;
    for (size_t i = 0; i < total && rv == 0; i++) {
        if (i < records) {
            kyufu_node__refusal_entry_of(req->refusals[i], &e);
        } else if (dropped_record && i == records) {
            count_entry(&e,
                        "%llu refusals not recorded one by one: node %llu's "
                        "queue for the leader was full",
                        (unsigned long long)req->dropped,
                        (unsigned long long)from);
        } else {
            bounded_entry(&e, from, flush);
        }
        r->p[i].r = r;
        r->p[i].req.data = &r->p[i];
        r->pending++;
        rv = kyufu_node__oplog_propose(n, &r->p[i].req, &e, from, on_committed);
        if (rv != 0) {
            r->pending--;
            r->failed = true;
        } else {
            k++;
        }
    }
    r->proposed = (unsigned)(k < records ? k : records);
    if (r->pending == 0) {
        /* None started: nothing will call back. */
        report_done(r);
    }
}
