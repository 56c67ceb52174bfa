/* Follower refusals, the parts without I/O: see refusal_batch.h. */
#include "refusal_batch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oplog.h"

/* Limits' relations to the operation log's own bound (oplog.h): a
 * follower's worst case per window is TOTAL records, one count record per
 * reason slot and one for the rest. */
#define FOLLOWER_WINDOW_RECORDS_MAX                                          \
    (KYUFU_NODE_OPLOG_REFUSALS_TOTAL + KYUFU_NODE_OPLOG_REASONS + 1u)
_Static_assert(KYUFU_NODE_REFUSAL_BATCH_MAX <= KYUFU_NODE_REFUSAL_QUEUE_MAX,
               "a batch is taken from the queue");
_Static_assert(KYUFU_NODE_REFUSAL_QUEUE_MAX >= 2u * FOLLOWER_WINDOW_RECORDS_MAX,
               "the queue holds two windows of a follower's records");
_Static_assert(KYUFU_NODE_REFUSAL_PER_NODE_MAX >=
                   2u * FOLLOWER_WINDOW_RECORDS_MAX,
               "the leader's bound never cuts an honest follower");
_Static_assert(KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX <= KYUFU_REASON_BYTES_MAX &&
                   KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX <=
                       KYUFU_ACCESS_CERT_BYTES_MAX,
               "a record's message and certificate fit apply's bounds");

/* ------------------------------------------------------------ the queue */

bool kyufu_node__refusal_queue_push(struct kyufu_node_refusal_queue *q,
                                    const struct kyufu_node_refusal_entry *e)
{
    if (q->count == KYUFU_NODE_REFUSAL_QUEUE_MAX) {
        q->dropped++;
        return false;
    }
    size_t i = (q->head + q->count) % KYUFU_NODE_REFUSAL_QUEUE_MAX;
    q->e[i] = *e;
    q->count++;
    return true;
}

const struct kyufu_node_refusal_entry *
kyufu_node__refusal_queue_at(const struct kyufu_node_refusal_queue *q,
                             size_t i)
{
    assert(i < q->count);
    return &q->e[(q->head + i) % KYUFU_NODE_REFUSAL_QUEUE_MAX];
}

int kyufu_node__refusal_queue_pack(struct kyufu_node_refusal_queue *q,
                                   uint64_t boot_id,
                                   uint8_t **buf,
                                   size_t *len)
{
    *buf = NULL;
    *len = 0;
    size_t n = q->taken ? q->taken_n
                        : (q->count < KYUFU_NODE_REFUSAL_BATCH_MAX
                               ? q->count
                               : KYUFU_NODE_REFUSAL_BATCH_MAX);
    uint64_t dropped = q->taken ? q->taken_dropped : q->dropped;
    if (n == 0 && dropped == 0) {
        assert(!q->taken);
        return 1;
    }
    Kyufu__V1__RefusalReport rr[KYUFU_NODE_REFUSAL_BATCH_MAX];
    Kyufu__V1__RefusalReport *p[KYUFU_NODE_REFUSAL_BATCH_MAX];
    assert(n <= KYUFU_NODE_REFUSAL_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        /* The entry lives in the queue: the pointers only borrow it. */
        struct kyufu_node_refusal_entry *e =
            (struct kyufu_node_refusal_entry *)kyufu_node__refusal_queue_at(q,
                                                                            i);
        kyufu__v1__refusal_report__init(&rr[i]);
        rr[i].method = e->method;
        rr[i].outcome = e->outcome;
        rr[i].message = e->message;
        rr[i].peer = e->peer;
        rr[i].certificate = e->certificate;
        if (e->has_cert) {
            rr[i].cert_sha256.data = e->cert_sha256;
            rr[i].cert_sha256.len = sizeof e->cert_sha256;
        }
        rr[i].actor = e->actor;
        rr[i].session = e->session;
        rr[i].time_ms = e->time_ms;
        p[i] = &rr[i];
    }
    Kyufu__V1__ReportRefusalsRequest req =
        KYUFU__V1__REPORT_REFUSALS_REQUEST__INIT;
    req.boot_id = boot_id;
    req.batch_seq = q->taken ? q->seq : q->seq + 1;
    req.n_refusals = n;
    req.refusals = p;
    req.dropped = dropped;
    size_t size = kyufu__v1__report_refusals_request__get_packed_size(&req);
    uint8_t *out = malloc(size > 0 ? size : 1);
    if (out == NULL) {
        return -1;
    }
    kyufu__v1__report_refusals_request__pack(&req, out);
    if (!q->taken) {
        q->taken = true;
        q->seq++;
        q->taken_n = n;
        q->taken_dropped = dropped;
    }
    *buf = out;
    *len = size;
    return 0;
}

void kyufu_node__refusal_queue_ack(struct kyufu_node_refusal_queue *q)
{
    if (!q->taken) {
        return;
    }
    assert(q->taken_n <= q->count && q->taken_dropped <= q->dropped);
    q->head = (q->head + q->taken_n) % KYUFU_NODE_REFUSAL_QUEUE_MAX;
    q->count -= q->taken_n;
    q->dropped -= q->taken_dropped;
    q->taken = false;
    q->taken_n = 0;
    q->taken_dropped = 0;
}

void kyufu_node__refusal_queue_clear(struct kyufu_node_refusal_queue *q)
{
    q->head = 0;
    q->count = 0;
    q->dropped = 0;
    q->taken = false;
    q->taken_n = 0;
    q->taken_dropped = 0;
}

/* ------------------------------------------------------ the leader's side */

static bool printable(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    if (s == NULL) {
        return min == 0;
    }
    for (; s[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (n >= max || ch < 0x20 || ch > 0x7e) {
            return false;
        }
    }
    return n >= min;
}

static bool staff_id_or_empty(const char *s)
{
    size_t n = 0;
    if (s == NULL) {
        return true;
    }
    for (; s[n] != '\0'; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-';
        if (!ok || n >= KYUFU_ACTOR_BYTES_MAX) {
            return false;
        }
    }
    return true;
}

bool kyufu_node__refusal_code(uint32_t code)
{
    switch (code) {
    case KYUFU__V1__CODE__INVALID_ARGUMENT:
    case KYUFU__V1__CODE__PERMISSION_DENIED:
    case KYUFU__V1__CODE__RESOURCE_EXHAUSTED:
    case KYUFU__V1__CODE__FAILED_PRECONDITION:
    case KYUFU__V1__CODE__NOT_FOUND: /* a Get of personal data found nothing */
        return true;
    default:
        return false;
    }
}

int kyufu_node__refusal_batch_check(const Kyufu__V1__ReportRefusalsRequest *r,
                                    char *why,
                                    size_t len)
{
    assert(len > 0);
    why[0] = '\0';
    if (r->boot_id == 0 || r->batch_seq == 0) {
        snprintf(why, len, "boot_id and batch_seq must be > 0");
        return -1;
    }
    if (r->n_refusals > KYUFU_NODE_REFUSAL_BATCH_MAX) {
        snprintf(why, len, "%zu refusals in one batch: at most %u",
                 r->n_refusals, KYUFU_NODE_REFUSAL_BATCH_MAX);
        return -1;
    }
    for (size_t i = 0; i < r->n_refusals; i++) {
        const Kyufu__V1__RefusalReport *x = r->refusals[i];
        const char *field = NULL;
        if (!printable(x->method, 1, KYUFU_ACCESS_METHOD_BYTES_MAX)) {
            field = "method (1..128 printable ASCII)";
        } else if (!kyufu_node__refusal_code(x->outcome)) {
            field = "outcome (a refusal Code)";
        } else if (!printable(x->message, 0,
                              KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX - 1)) {
            field = "message (0..199 printable ASCII)";
        } else if (!printable(x->peer, 0, KYUFU_ACCESS_PEER_BYTES_MAX)) {
            field = "peer (0..64 printable ASCII)";
        } else if (!printable(x->certificate, 0,
                              KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX - 1)) {
            field = "certificate (0..199 printable ASCII)";
        } else if (x->cert_sha256.len != 0 && x->cert_sha256.len != 32) {
            field = "cert_sha256 (empty or 32 bytes)";
        } else if (!staff_id_or_empty(x->actor)) {
            field = "actor (empty or a staff id)";
        } else if (x->time_ms <= 0) {
            field = "time_ms (> 0)";
        }
        if (field != NULL) {
            snprintf(why, len, "refusal %zu: bad %s", i, field);
            return -1;
        }
    }
    return 0;
}

void kyufu_node__refusal_entry_of(const Kyufu__V1__RefusalReport *rr,
                                  struct kyufu_node_refusal_entry *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->method, sizeof e->method, "%s", rr->method);
    e->outcome = rr->outcome;
    snprintf(e->message, sizeof e->message, "%s", rr->message);
    snprintf(e->peer, sizeof e->peer, "%s", rr->peer);
    snprintf(e->certificate, sizeof e->certificate, "%s", rr->certificate);
    if (rr->cert_sha256.len == sizeof e->cert_sha256) {
        e->has_cert = true;
        memcpy(e->cert_sha256, rr->cert_sha256.data, sizeof e->cert_sha256);
    }
    snprintf(e->actor, sizeof e->actor, "%s", rr->actor);
    e->session = rr->session;
    e->time_ms = rr->time_ms;
}

struct kyufu_node_refusal_sender *
kyufu_node__refusal_sender(struct kyufu_node_refusal_senders *ss,
                           uint64_t node_id)
{
    struct kyufu_node_refusal_sender *free_slot = NULL;
    struct kyufu_node_refusal_sender *oldest = NULL;
    assert(node_id != 0);
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        struct kyufu_node_refusal_sender *s = &ss->s[i];
        if (s->node_id == node_id) {
            return s;
        }
        if (s->busy) {
            continue;
        }
        if (s->node_id == 0) {
            free_slot = free_slot != NULL ? free_slot : s;
        } else if (oldest == NULL ||
                   s->window_start_ms < oldest->window_start_ms) {
            oldest = s;
        }
    }
    struct kyufu_node_refusal_sender *pick =
        free_slot != NULL ? free_slot : oldest;
    if (pick != NULL) {
        memset(pick, 0, sizeof *pick);
        pick->node_id = node_id;
    }
    return pick;
}

bool kyufu_node__refusal_sender_seen(struct kyufu_node_refusal_sender *s,
                                     uint64_t boot_id,
                                     uint64_t seq)
{
    if (boot_id != s->boot_id) {
        s->boot_id = boot_id;
        s->last_seq = 0;
        return false;
    }
    return seq <= s->last_seq;
}

unsigned kyufu_node__refusal_sender_admit(struct kyufu_node_refusal_sender *s,
                                          uint64_t now_ms,
                                          unsigned want,
                                          uint64_t *flush)
{
    *flush = 0;
    if (s->window_start_ms == 0 ||
        now_ms - s->window_start_ms >= KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS) {
        *flush = s->bounded;
        s->window_start_ms = now_ms > 0 ? now_ms : 1;
        s->records = 0;
        s->bounded = 0;
    }
    unsigned room = KYUFU_NODE_REFUSAL_PER_NODE_MAX - s->records;
    unsigned take = want < room ? want : room;
    s->records += take;
    s->bounded += want - take;
    return take;
}
