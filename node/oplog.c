/* The operation log's access records: see oplog.h. */
#include "oplog.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu/v1/ledger.pb-c.h"
#include "auth_node.h"
#include "availability.h"
#include "limits.h"
#include "log.h"
#include "service.h"

/* Text fields of a record: printable ASCII only, cut to what apply takes
 * (refusal_batch.c checks the bounds against storage_limits.h; a
 * certificate subject or OpenSSL's reason comes from the peer). */
enum { FIELD_BYTES_MAX = KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX };

_Static_assert((int)KYUFU_GRPC_INVALID_ARGUMENT ==
                       (int)KYUFU__V1__CODE__INVALID_ARGUMENT &&
                   (int)KYUFU_GRPC_NOT_FOUND == (int)KYUFU__V1__CODE__NOT_FOUND &&
                   (int)KYUFU_GRPC_PERMISSION_DENIED ==
                       (int)KYUFU__V1__CODE__PERMISSION_DENIED &&
                   (int)KYUFU_GRPC_RESOURCE_EXHAUSTED ==
                       (int)KYUFU__V1__CODE__RESOURCE_EXHAUSTED &&
                   (int)KYUFU_GRPC_FAILED_PRECONDITION ==
                       (int)KYUFU__V1__CODE__FAILED_PRECONDITION,
               "the ledger's Code numbers refusals as gRPC does");

/* The ledger's Code of a refusal (RecordAccess.outcome is a Code, and Code
 * has no UNAUTHENTICATED): authentication failures are PERMISSION_DENIED
 * with the message saying "unauthenticated". */
static int outcome_code(int grpc_code, const char **prefix)
{
    *prefix = "";
    /* The ledger's Code numbers these as gRPC does. */
    if (grpc_code == KYUFU_GRPC_OK ||
        (grpc_code > 0 && kyufu_node__refusal_code((uint32_t)grpc_code))) {
        return grpc_code;
    }
    if (grpc_code == KYUFU_GRPC_UNAUTHENTICATED) {
        *prefix = "unauthenticated: ";
        return KYUFU_GRPC_PERMISSION_DENIED;
    }
    *prefix = "refused: ";
    return KYUFU_GRPC_PERMISSION_DENIED;
}

static void clean(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    assert(len > 0);
    for (; src != NULL && src[i] != '\0' && i + 1 < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[i] = '\0';
}

static void actor_of(const struct kyufu_principal *p, char *out, size_t len)
{
    out[0] = '\0';
    if (p == NULL) {
        return;
    }
    if (p->kind == KYUFU_PRINCIPAL_STAFF) {
        snprintf(out, len, "%s", p->staff_id);
    } else if (p->kind == KYUFU_PRINCIPAL_NODE) {
        snprintf(out, len, "kyufu-node-%llu", (unsigned long long)p->node_id);
    }
}

struct access
{
    const struct kyufu_principal *p;
    const char *method;
    const char *const *objects;
    size_t n_objects;
    int outcome;
    const char *message;
    const char *peer;
    const char *certificate;
    /* The call, when there is one: its original client's address,
     * certificate subject and SHA-256 (a forwarded call's from the
     * follower's metadata) replace peer and certificate. */
    const struct kyufu_grpc_call *call;
};

/* The certificate subject of a call's original client. */
static const char *client_subject(const struct kyufu_grpc_call *call)
{
    if (call->peer_node_id != 0) {
        const char *fwd = kyufu_grpc_metadata_find(
            call->metadata, call->n_metadata, KYUFU_NODE_MD_CLIENT_SUBJECT);
        if (fwd != NULL) {
            return fwd;
        }
    }
    return call->peer_identity != NULL ? call->peer_identity : "";
}

/* Whether the cluster's version knows RecordAccess (an upgrade not
 * finished yet does not): asked before anything is built or packed. */
static bool access_known(struct kyufu_node *n)
{
    uint32_t since = kyufu_storage_command_since(
        KYUFU__V1__COMMAND__BODY_RECORD_ACCESS);
    uint32_t cluster = 0;
    return since != 0 &&
           kyufu_storage_cluster_version(n->storage, &cluster, NULL) == 0 &&
           since <= cluster;
}

/* The record of access `a`, its fields cleaned and cut, its outcome a
 * ledger Code. */
static void entry_of(const struct access *a, struct kyufu_node_refusal_entry *e)
{
    char why[FIELD_BYTES_MAX];
    const char *prefix;
    memset(e, 0, sizeof *e);
    clean(e->method, sizeof e->method, a->method);
    e->outcome = (uint32_t)outcome_code(a->outcome, &prefix);
    snprintf(why, sizeof why, "%s%s", prefix,
             a->message != NULL ? a->message : "");
    clean(e->message, sizeof e->message, why);
    actor_of(a->p, e->actor, sizeof e->actor);
    if (a->call != NULL) {
        clean(e->peer, sizeof e->peer, kyufu_node__auth_client_peer(a->call));
        clean(e->certificate, sizeof e->certificate, client_subject(a->call));
        e->has_cert = kyufu_node__auth_client_cert(a->call, e->cert_sha256);
    } else {
        clean(e->peer, sizeof e->peer, a->peer);
        clean(e->certificate, sizeof e->certificate, a->certificate);
    }
    if (a->p != NULL && a->p->kind == KYUFU_PRINCIPAL_STAFF) {
        e->session = a->p->session_id;
    }
    e->time_ms = kyufu_node__wall_ms();
}

/* Propose the RecordAccess of e (naming objects[0..n_objects)) through
 * req, its key's client id the node that took it (seen_by).  The caller
 * checked access_known.  0, or a KYUFU_GLUE_E* code (NOTLEADER on a
 * follower). */
static int propose_entry(struct kyufu_node *n,
                         struct kyufu_glue_propose *req,
                         const struct kyufu_node_refusal_entry *e,
                         const char *const *objects,
                         size_t n_objects,
                         uint64_t seen_by,
                         kyufu_glue_propose_cb cb)
{
    char client_id[KYUFU_CLIENT_ID_BYTES_MAX + 1];
    Kyufu__V1__RecordAccess ra = KYUFU__V1__RECORD_ACCESS__INIT;
    ra.method = (char *)e->method;
    ra.objects = (char **)objects;
    ra.n_objects = n_objects;
    ra.outcome = e->outcome;
    ra.message = (char *)e->message;
    ra.peer = (char *)e->peer;
    ra.certificate = (char *)e->certificate;
    if (e->has_cert) {
        ra.cert_sha256.data = (uint8_t *)e->cert_sha256;
        ra.cert_sha256.len = sizeof e->cert_sha256;
    }
    ra.session = e->session;
    /* A node's key (apply: identity commands are proposed by a node; no
     * duplicate lookup, so the sequence only has to be above 0).  Its
     * client id names the node that took the record: this one, or the
     * follower that reported it (refusal_report.c). */
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    snprintf(client_id, sizeof client_id, "kyufu-node-%llu",
             (unsigned long long)seen_by);
    key.client_id = client_id;
    key.sequence = ++n->oplog.key_seq;
    Kyufu__V1__CommandHeader header = KYUFU__V1__COMMAND_HEADER__INIT;
    header.actor = (char *)e->actor;
    header.key = &key;
    header.time_ms = kyufu_node__auth_now_ms(n); /* the identity clock */
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.header = &header;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_RECORD_ACCESS;
    cmd.record_access = &ra;
    return kyufu_glue_propose(n->glue, req, &cmd, cb);
}

int kyufu_node__oplog_propose(struct kyufu_node *n,
                              struct kyufu_glue_propose *req,
                              const struct kyufu_node_refusal_entry *e,
                              uint64_t seen_by,
                              kyufu_glue_propose_cb cb)
{
    return propose_entry(n, req, e, NULL, 0, seen_by, cb);
}

bool kyufu_node__oplog_access_known(struct kyufu_node *n)
{
    return access_known(n);
}

/* ------------------------------------------------------------------ reads */

struct answer
{
    struct kyufu_glue_propose req;
    struct kyufu_node_call *c;
    uint8_t *buf;
    size_t len;
};

static void on_answer_committed(struct kyufu_glue_propose *req,
                                int status,
                                Kyufu__V1__CommandResult *result)
{
    struct answer *a = req->data;
    struct kyufu_node_call *c = a->c;
    struct kyufu_node *n = c->node;
    if (status == 0 && result->code == KYUFU__V1__CODE__OK) {
        n->oplog.reads_recorded++;
        kyufu_node__call_done(c, KYUFU_GRPC_OK, NULL, a->buf, a->len);
    } else {
        char msg[256];
        n->oplog.reads_withheld++;
        snprintf(msg, sizeof msg,
                 "the access record of this read was not committed (%s): "
                 "the answer is withheld",
                 status != 0 ? kyufu_glue_strerror(status) : result->message);
        if (status == 0) {
            kyufu_log(KYUFU_LOG_ERROR, "access record refused by apply",
                      KYUFU_LOG_S("method", c->method->path),
                      KYUFU_LOG_S("detail", result->message));
            kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL, msg, NULL, 0);
        } else {
            kyufu_node__call_unavailable(c, msg);
            kyufu_node__check_fatal(n, status);
        }
    }
    if (result != NULL) {
        kyufu__v1__command_result__free_unpacked(result, NULL);
    }
    free(a->buf);
    free(a);
}

void kyufu_node__oplog_answer(struct kyufu_node_call *c,
                              const struct kyufu_principal *p,
                              const ProtobufCMessage *msg,
                              const char *const *objects,
                              size_t n_objects)
{
    struct kyufu_node *n = c->node;
    assert(n_objects <= KYUFU_LIST_PAGE_SIZE_MAX);
    if (!access_known(n)) {
        /* Retryable: a new cluster records its version within seconds; an
         * upgrade once the last voter runs a build that knows it. */
        n->oplog.reads_withheld++;
        kyufu_node__call_unavailable(
            c, "reads of personal data need RecordAccess, which the "
               "cluster's version does not know yet (docs/operations.md, "
               "Upgrades): the answer is withheld");
        return;
    }
    struct answer *a = calloc(1, sizeof *a);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (a == NULL || buf == NULL) {
        free(a);
        free(buf);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    a->c = c;
    a->buf = buf;
    a->len = len;
    a->req.data = a;
    struct access acc = {
        .p = p,
        .method = c->method->path,
        .objects = objects,
        .n_objects = n_objects,
        .outcome = KYUFU_GRPC_OK,
        .message = "",
        .peer = "",
        .certificate = "",
        .call = c->call,
    };
    struct kyufu_node_refusal_entry e;
    entry_of(&acc, &e);
    c->proposed_ns = uv_hrtime();
    int rv = propose_entry(n, &a->req, &e, objects, n_objects,
                           n->config->id, on_answer_committed);
    if (rv == 0) {
        return;
    }
    free(buf);
    free(a);
    n->oplog.reads_withheld++;
    kyufu_node__proposal_failed(c, rv);
}

/* -------------------------------------------------------------- refusals */

struct refusal
{
    struct kyufu_glue_propose req;
    struct kyufu_node *n;
};

static void on_refusal_committed(struct kyufu_glue_propose *req,
                                 int status,
                                 Kyufu__V1__CommandResult *result)
{
    struct refusal *r = req->data;
    if (status != 0) {
        r->n->oplog.refusals_lost++;
        kyufu_log(KYUFU_LOG_WARN, "refusal record not committed",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
    } else if (result->code != KYUFU__V1__CODE__OK) {
        r->n->oplog.refusals_lost++;
        kyufu_log(KYUFU_LOG_ERROR, "refusal record refused by apply",
                  KYUFU_LOG_S("detail", result->message));
    }
    if (result != NULL) {
        kyufu__v1__command_result__free_unpacked(result, NULL);
    }
    free(r);
}

void kyufu_node__oplog_record(struct kyufu_node *n,
                              const struct kyufu_node_refusal_entry *e,
                              uint64_t seen_by)
{
    if (n->glue == NULL || n->stage != KYUFU_NODE_RUNNING ||
        !kyufu_glue_is_leader(n->glue) || !access_known(n)) {
        n->oplog.refusals_lost++;
        return;
    }
    struct refusal *r = calloc(1, sizeof *r);
    if (r == NULL) {
        n->oplog.refusals_lost++;
        return;
    }
    r->n = n;
    r->req.data = r;
    int rv = propose_entry(n, &r->req, e, NULL, 0, seen_by,
                           on_refusal_committed);
    if (rv != 0) {
        free(r);
        n->oplog.refusals_lost++;
        return;
    }
    n->oplog.refusals_proposed++;
}

/* One refusal record (no call waits for it): proposed on the leader,
 * queued for the leader on a follower (refusal_report.c). */
static void propose_refusal(struct kyufu_node *n, const struct access *a)
{
    struct kyufu_node_refusal_entry e;
    entry_of(a, &e);
    if (n->glue != NULL && n->stage == KYUFU_NODE_RUNNING &&
        !kyufu_glue_is_leader(n->glue)) {
        kyufu_node__refusal_report_push(n, &e);
        return;
    }
    kyufu_node__oplog_record(n, &e, n->config->id);
}

static void propose_count(struct kyufu_node *n,
                          const char *method,
                          int code,
                          uint64_t count)
{
    char msg[128];
    snprintf(msg, sizeof msg,
             "%llu more refusals of this kind in %u ms, not recorded one "
             "by one",
             (unsigned long long)count,
             KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS);
    struct access a = {
        .method = method, .outcome = code, .message = msg,
        .peer = "", .certificate = "",
    };
    propose_refusal(n, &a);
}

static void refused(struct kyufu_node *n, const struct access *a)
{
    uint64_t flush = 0;
    bool own = kyufu_node__oplog_admit(&n->oplog, a->method, a->outcome,
                                       uv_now(&n->loop), &flush);
    if (flush > 0) {
        propose_count(n, a->method, a->outcome, flush);
    }
    if (own) {
        propose_refusal(n, a);
    }
}

void kyufu_node__oplog_refused(struct kyufu_node *n,
                               const struct kyufu_grpc_call *call,
                               const struct kyufu_principal *p,
                               int grpc_code,
                               const char *msg)
{
    struct access a = {
        .p = p,
        .method = call->method,
        .outcome = grpc_code,
        .message = msg,
        .call = call,
    };
    refused(n, &a);
}

void kyufu_node__oplog_connection(struct kyufu_node *n,
                                  const char *reason,
                                  const char *peer,
                                  const char *subject,
                                  const char *detail)
{
    char method[80];
    char msg[FIELD_BYTES_MAX];
    snprintf(method, sizeof method, "connection: %s", reason);
    snprintf(msg, sizeof msg, "%s", detail != NULL ? detail : "");
    struct access a = {
        .method = method,
        .outcome = KYUFU_GRPC_UNAUTHENTICATED,
        .message = msg,
        .peer = peer,
        .certificate = subject,
    };
    refused(n, &a);
}

/* Every window: the counts of reasons whose window ended, and the rest. */
static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    uint64_t now = uv_now(&n->loop);
    for (size_t i = 0; i < KYUFU_NODE_OPLOG_REASONS; i++) {
        struct kyufu_node_oplog_reason *r = &n->oplog.reason[i];
        if (r->method[0] == '\0' || r->suppressed == 0 ||
            now - r->window_start_ms < KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS) {
            continue;
        }
        propose_count(n, r->method, r->code, r->suppressed);
        r->suppressed = 0;
        r->recorded = 0;
        r->window_start_ms = now;
    }
    if (n->oplog.overflow > 0) {
        propose_count(n, KYUFU_NODE_OPLOG_SEVERAL,
                      KYUFU_GRPC_PERMISSION_DENIED, n->oplog.overflow);
        n->oplog.overflow = 0;
    }
    kyufu_node__refusal_report_tick(n);
}

void kyufu_node__oplog_start(struct kyufu_node *n)
{
    uv_timer_init(&n->loop, &n->oplog.timer);
    n->oplog.timer.data = n;
    uv_timer_start(&n->oplog.timer, on_tick,
                   KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS,
                   KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS);
    n->oplog.started = true;
    kyufu_node__checkpoint_start(n);
    kyufu_node__refusal_report_start(n);
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

void kyufu_node__oplog_close(struct kyufu_node *n)
{
    if (n->oplog.started) {
        uv_close((uv_handle_t *)&n->oplog.timer, closed);
        n->oplog.started = false;
    }
    kyufu_node__checkpoint_close(n);
    kyufu_node__refusal_report_close(n);
}
