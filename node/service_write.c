/* Writes: a request becomes one Command proposed through Raft.
 *
 * Happy path (leader): unpack (service.c) -> Command{actor = the signed-in
 * account of the call (service.c put it in c->principal; a forwarded call
 * carries the follower's), terminal and key from the request's
 * RequestHeader, time_ms from this leader's clock, body = the request's
 * command, through the method's typed row (service.c WRITE_DEF)} -> the
 * key's owner checked -> kyufu_glue_propose_packed -> the CommandResult as
 * apply encoded it -> gRPC status with the same number (ledger Code shares
 * gRPC's numbering); OK carries WriteResponse{result}, made from those
 * bytes without unpacking them (docs/design.md "Write path: encodings").
 *
 * Failure modes: a header naming another actor, or a key another account
 * used first, is PERMISSION_DENIED, a key used for another command
 * INVALID_ARGUMENT, all before Raft; a follower forwards the original bytes
 * (forward.c) with the caller's principal; a
 * request without its command body, or with a refused role list
 * (service_roles.c), is INVALID_ARGUMENT before Raft (nothing is written); a missing RequestHeader is proposed with an empty
 * header so apply rejects and audits it like any other bad header.
 * Proposal errors: NOTLEADER/LEADERSHIPLOST/SHUTDOWN/BUSY -> UNAVAILABLE
 * (retry with the same idempotency key is safe: apply deduplicates); TOOBIG
 * -> RESOURCE_EXHAUSTED; IO/STORAGE -> UNAVAILABLE and the node stops. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "pb_varint.h"
#include "service.h"

void kyufu_node__proposal_failed(struct kyufu_node_call *c, int status)
{
    struct kyufu_node *n = c->node;
    assert(status != 0);
    kyufu_log(KYUFU_LOG_DEBUG, "proposal failed",
              KYUFU_LOG_S("method", c->method->path),
              KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
    if (status == KYUFU_GLUE_ETOOBIG) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              kyufu_glue_strerror(status), NULL, 0);
    } else {
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(status));
    }
    kyufu_node__check_fatal(n, status);
}

/* WriteResponse{result = 1} made from the result as apply encoded it: the
 * field's tag and length, then those bytes, which are exactly what
 * protobuf-c would pack for the unpacked result (docs/design.md "Write
 * path: encodings"). */
static void answer_packed(struct kyufu_node_call *c,
                          const struct kyufu_storage_result *r)
{
    uint8_t *buf = malloc(1 + KYUFU_PB_VARINT_BYTES_MAX + r->len);
    if (buf == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    size_t n = 0;
    buf[n++] = 0x0a; /* field 1, length-delimited */
    n += kyufu_pb_varint_put(buf + n, r->len);
    memcpy(buf + n, r->bytes, r->len);
    kyufu_node__call_done(c, KYUFU_GRPC_OK, NULL, buf, n + r->len);
    free(buf);
}

/* The answer to a write.  An applied command whose record needs no change
 * on the way out is relayed as apply encoded it; a rejection (its message
 * is the gRPC status message) and a StaffAccount (its role mask becomes the
 * role list, service_roles.c) are unpacked first. */
static void on_proposed(struct kyufu_glue_propose *req,
                        int status,
                        const struct kyufu_storage_result *r)
{
    struct kyufu_node_call *c = req->data;
    if (status != 0) {
        assert(r == NULL);
        kyufu_node__proposal_failed(c, status);
        return;
    }
    assert(r != NULL);
    kyufu_node__metrics_committed(c->node, c->proposed_ns);
    if (r->code == KYUFU__V1__CODE__OK &&
        r->record != KYUFU__V1__COMMAND_RESULT__RECORD_STAFF) {
        answer_packed(c, r);
        return;
    }
    Kyufu__V1__CommandResult *result = kyufu_storage_result_unpack(r);
    if (result == NULL) {
        /* Applied: the client learns it by retrying with the same key. */
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    if (result->code == KYUFU__V1__CODE__OK &&
        kyufu_node__roles_out(result->staff) != 0) {
        /* Applied: the client learns it by retrying with the same key. */
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
    } else if (result->code == KYUFU__V1__CODE__OK) {
        Kyufu__V1__WriteResponse resp = KYUFU__V1__WRITE_RESPONSE__INIT;
        resp.result = result;
        kyufu_node__call_done_msg(c, &resp.base);
    } else {
        kyufu_node__call_done(c, (int)result->code, result->message, NULL, 0);
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

/* The caller's callback, after the commit latency is recorded (only a
 * proposal applied on this leader has one). */
static void on_proposed_timed(struct kyufu_glue_propose *req,
                              int status,
                              Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (status == 0) {
        kyufu_node__metrics_committed(c->node, c->proposed_ns);
    }
    c->proposed_cb(req, status, result);
}

/* The client ids of kyufud's own commands (sla_node.c "kyufud-sla-N",
 * version_watch.c "kyufu-node-N", availability.c "kyufud-N"): a client
 * writing under one first would own the session entry of a node's later
 * command, which would then get the client's result and not apply. */
static bool client_id_reserved(const char *id)
{
    return id != NULL && (strncmp(id, "kyufud-", 7) == 0 ||
                          strncmp(id, "kyufu-node-", 11) == 0);
}

/* The actor of a client's command: the signed-in account (issue 8), never
 * what the request says.  RequestHeader.actor empty means the session's;
 * any other name is refused.  NULL with `msg` (PERMISSION_DENIED) when the
 * call has no account (the permission table lets no other caller write) or
 * names another. */
static const char *actor_of(const struct kyufu_node_call *c,
                            const Kyufu__V1__RequestHeader *rh,
                            char *msg,
                            size_t len)
{
    const struct kyufu_principal *p = &c->principal;
    if (p->kind != KYUFU_PRINCIPAL_STAFF || p->staff_id[0] == '\0') {
        snprintf(msg, len, "%s needs a signed-in account", c->method->path);
        return NULL;
    }
    const char *named = rh != NULL ? rh->actor : NULL;
    if (named != NULL && named[0] != '\0' &&
        strcmp(named, p->staff_id) != 0) {
        /* Echo what was sent, printable and bounded. */
        char shown[KYUFU_ACTOR_BYTES_MAX + 1];
        size_t i = 0;
        for (; named[i] != '\0' && i < sizeof shown - 1; i++) {
            unsigned char ch = (unsigned char)named[i];
            shown[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        shown[i] = '\0';
        snprintf(msg, len, "actor %s is not the signed-in account (%s); "
                 "leave header.actor empty",
                 shown, p->staff_id);
        return NULL;
    }
    return p->staff_id;
}

/* Answer a refused replay of a key, leaving a record of it in the
 * operation log (issue 8 item 7: refusals are recorded) without naming
 * the key's owner or its stored result. */
static void refuse(struct kyufu_node_call *c, int code, const char *why)
{
    kyufu_node__oplog_refused(c->node, c->call, &c->principal, code, why);
    kyufu_node__call_done(c, code, why, NULL, 0);
}

/* Exactly-once bound to the caller (issue 8 item 6): a key already in the
 * store is answered from it (by apply) only to the account that first used
 * it, and only for the same command.  Checked here, before Raft, so that a
 * refused replay costs no log entry; apply checks again.  0 to propose; -1
 * when the call was answered. */
static int key_check(struct kyufu_node_call *c, const Kyufu__V1__Command *cmd)
{
    const Kyufu__V1__CommandHeader *h = cmd->header;
    if (h->key == NULL || h->key->client_id == NULL ||
        h->key->client_id[0] == '\0' || h->key->sequence == 0) {
        return 0; /* apply rejects and audits the header */
    }
    uint8_t digest[32];
    enum kyufu_storage_key_use use = KYUFU_STORAGE_KEY_NEW;
    int rv = kyufu_storage_command_digest(cmd, digest);
    if (rv == 0) {
        rv = kyufu_storage_key_use(
            c->node->storage, h->key->client_id, h->key->sequence, h->actor,
            digest, cmd->body_case == KYUFU__V1__COMMAND__BODY_SETTLE_WRITE,
            h->time_ms, &use);
    }
    if (rv == KYUFU_STORAGE_EINVALID) {
        return 0; /* a malformed key: apply rejects and audits it */
    }
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "idempotency key");
        return -1;
    }
    switch (use) {
    case KYUFU_STORAGE_KEY_NEW:
    case KYUFU_STORAGE_KEY_OWN:
        return 0;
    case KYUFU_STORAGE_KEY_OTHER_ACTOR:
        refuse(c, KYUFU_GRPC_PERMISSION_DENIED,
               "header.key belongs to another account: use a key of your "
               "own");
        return -1;
    case KYUFU_STORAGE_KEY_OTHER_COMMAND:
        refuse(c, KYUFU_GRPC_INVALID_ARGUMENT,
               "header.key was used for another command: a new write needs "
               "a new key");
        return -1;
    }
    assert(false);
    return -1;
}

/* kyufu_node__propose, the result unpacked for `cb` or packed for
 * `packed_cb` (one of the two). */
static void propose(struct kyufu_node_call *c,
                    const Kyufu__V1__RequestHeader *rh,
                    const Kyufu__V1__Command *cmd,
                    kyufu_glue_propose_cb cb,
                    kyufu_glue_propose_packed_cb packed_cb)
{
    struct kyufu_node *n = c->node;
    assert(cmd->body_case != KYUFU__V1__COMMAND__BODY__NOT_SET &&
           cmd->create_program != NULL); /* any member: the oneof's one */
    if (rh != NULL && rh->key != NULL &&
        client_id_reserved(rh->key->client_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "header.key.client_id: the prefixes kyufud- "
                              "and kyufu-node- are reserved for the nodes' "
                              "own commands",
                              NULL, 0);
        return;
    }
    char why[256];
    const char *actor = actor_of(c, rh, why, sizeof why);
    if (actor == NULL) {
        /* A refusal leaves a record (issue 8 item 7), as the table's do. */
        kyufu_node__oplog_refused(n, c->call, &c->principal,
                                  KYUFU_GRPC_PERMISSION_DENIED, why);
        kyufu_node__call_done(c, KYUFU_GRPC_PERMISSION_DENIED, why, NULL, 0);
        return;
    }
    Kyufu__V1__CommandHeader header = KYUFU__V1__COMMAND_HEADER__INIT;
    header.actor = (char *)actor;
    if (rh != NULL) {
        header.terminal = rh->terminal;
        header.key = rh->key;
    }
    if (c->principal.kind == KYUFU_PRINCIPAL_STAFF) {
        /* The terminal is the one the session was opened on (its client
         * certificate's name), never what the request says. */
        header.terminal = c->principal.terminal;
    }
    /* Apply reads no clock.  The identity clock, not the wall clock: a
     * step of the leader's clock must not make a pending decommission
     * look expired, nor date the audit hours away (steady_clock.h). */
    header.time_ms = kyufu_node__auth_now_ms(n);

    Kyufu__V1__Command full = *cmd; /* the caller's, with this header */
    full.header = &header;
    cmd = &full;

    if (key_check(c, cmd) != 0) {
        return; /* answered */
    }

    /* Upgrades: a command type is proposed only once every voter knows it
     * (docs/operations.md "Upgrades"); apply would reject it alike on
     * every replica that knows it, and stop one that does not. */
    uint32_t since = kyufu_storage_command_since(cmd->body_case);
    uint32_t cluster = 0;
    int srv = kyufu_storage_cluster_version(n->storage, &cluster, NULL);
    assert(srv == 0 && since >= 1); /* in memory without the voters */
    (void)srv;
    if (since > cluster) {
        /* The member's name, as before ("annotate"): refusals only. */
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(
                &kyufu__v1__command__descriptor, (unsigned)cmd->body_case);
        assert(f != NULL);
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%s needs cluster version %u; the cluster runs version %u "
                 "(every voter must run a build of command-set version %u "
                 "or later: docs/operations.md, Upgrades)",
                 f->name, (unsigned)since, (unsigned)cluster, (unsigned)since);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, msg, NULL,
                              0);
        return;
    }

    c->req.propose.data = c;
    c->proposed_cb = cb;
    c->proposed_ns = uv_hrtime();
    int rv = cb != NULL ? kyufu_glue_propose(n->glue, &c->req.propose, cmd,
                                             on_proposed_timed)
                        : kyufu_glue_propose_packed(n->glue, &c->req.propose,
                                                    cmd, packed_cb);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward(c); /* lost leadership just now */
        return;
    }
    if (rv == KYUFU_GLUE_ETOOBIG) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "command too large", NULL, 0);
        return;
    }
    if (rv != 0) {
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(rv));
        kyufu_node__check_fatal(n, rv);
    }
}

void kyufu_node__propose(struct kyufu_node_call *c,
                         const Kyufu__V1__RequestHeader *rh,
                         const Kyufu__V1__Command *cmd,
                         kyufu_glue_propose_cb cb)
{
    assert(cb != NULL);
    propose(c, rh, cmd, cb, NULL);
}

void kyufu_node__write(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    const struct kyufu_node_write_def *w = c->method->write;
    assert(c->method->kind == KYUFU_NODE_WRITE && w != NULL);
    const Kyufu__V1__RequestHeader *rh = w->header(c->request);
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    if (!w->body(c->request, &cmd)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "request has no command", NULL, 0);
        return;
    }
    char why[192];
    if (kyufu_node__roles_in(&cmd, why, sizeof why) != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, why, NULL, 0);
        return;
    }
    if (cmd.body_case == KYUFU__V1__COMMAND__BODY_CREATE_STAFF) {
        /* Identity: the node makes the temporary password (auth_service.c). */
        kyufu_node__auth_create_staff(c, rh, cmd.create_staff);
        return;
    }
    propose(c, rh, &cmd, NULL, on_proposed);
}
