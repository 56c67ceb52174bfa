/* Who is calling: kyufu_node__authenticate (node/auth.h), and the memory of
 * session uses for idle expiry (auth_node.h).
 *
 * Happy path, a client: `authorization: Bearer <64 hex>` -> SHA-256 of the
 * 32 token bytes -> the session in this node's store -> the connection's
 * client certificate is the session's -> not past its absolute limit, not
 * idle for longer than its idle limit (from max(replicated last use, this
 * node's last use)) -> its account is ACTIVE -> STAFF principal; the use
 * is remembered.
 *
 * A call forwarded by a follower (forward.c): the connection's certificate
 * is a node's, and `kyufu-principal` + `kyufu-session` (the token hash in
 * hex) + `kyufu-client-cert` name what the follower authenticated; the
 * session is read again here (it may have closed since) and checked the
 * same way against the ORIGINAL client's certificate.  Those metadata from
 * any other connection are refused.  A node's call without them is a NODE
 * principal; a forwarded call without a principal or session is nobody's.
 * A forwarded session without a principal is one the follower did not hold
 * yet (it lags the sign-in): checked here the same way, any account.
 *
 * Failure modes: every refusal is UNAUTHENTICATED with a message that never
 * names the token or its hash; a store error is UNAVAILABLE (the caller
 * retries), a fatal one also stops the node. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "auth_node.h"
#include "auth_token.h"
#include "log.h"
#include "node.h"

#define FORWARDED_BY "kyufu-forwarded-by"

int64_t kyufu_node__auth_last_use(const struct kyufu_node *n,
                                  const uint8_t token_hash[32])
{
    for (size_t i = 0; i < n->auth.n_uses; i++) {
        if (memcmp(n->auth.uses[i].token_hash, token_hash, 32) == 0) {
            return n->auth.uses[i].used_ms;
        }
    }
    return 0;
}

void kyufu_node__auth_remember(struct kyufu_node *n,
                               const uint8_t token_hash[32],
                               int64_t now_ms)
{
    struct kyufu_node_auth *a = &n->auth;
    size_t oldest = 0;
    for (size_t i = 0; i < a->n_uses; i++) {
        if (memcmp(a->uses[i].token_hash, token_hash, 32) == 0) {
            if (now_ms > a->uses[i].used_ms) {
                a->uses[i].used_ms = now_ms;
                a->uses[i].dirty = true;
            }
            return;
        }
        if (a->uses[i].used_ms < a->uses[oldest].used_ms) {
            oldest = i;
        }
    }
    size_t slot = a->n_uses < KYUFU_NODE_AUTH_TOUCH_MAX ? a->n_uses++ : oldest;
    memcpy(a->uses[slot].token_hash, token_hash, 32);
    a->uses[slot].used_ms = now_ms;
    a->uses[slot].dirty = true;
}

static const char *md_find(const struct kyufu_grpc_call *call,
                           const char *name)
{
    return kyufu_grpc_metadata_find(call->metadata, call->n_metadata, name);
}

bool kyufu_node__auth_client_cert(const struct kyufu_grpc_call *call,
                                  uint8_t out[32])
{
    if (call->peer_node_id != 0 && md_find(call, FORWARDED_BY) != NULL) {
        const char *hex = md_find(call, KYUFU_NODE_MD_CLIENT_CERT);
        return hex != NULL && kyufu_node__hex_decode(hex, out, 32) == 0;
    }
    if (!call->has_cert) {
        return false;
    }
    memcpy(out, call->cert_sha256, 32);
    return true;
}

const char *kyufu_node__auth_client_peer(const struct kyufu_grpc_call *call)
{
    if (call->peer_node_id != 0 && md_find(call, FORWARDED_BY) != NULL) {
        const char *peer = md_find(call, KYUFU_NODE_MD_CLIENT_PEER);
        if (peer != NULL) {
            return peer;
        }
    }
    return call->peer_address != NULL ? call->peer_address : "";
}

bool kyufu_node__auth_command(struct kyufu_node *n,
                              const char *actor,
                              const char *field,
                              void *body,
                              struct kyufu_node_auth_command *out)
{
    int64_t now = kyufu_node__auth_now_ms(n);
    /* Increasing even if the clock steps back; microsecond-ish room for
     * many commands in one millisecond. */
    uint64_t seq = now > 0 && (uint64_t)now * 1000u > n->auth.seq_last
                       ? (uint64_t)now * 1000u
                       : n->auth.seq_last + 1;
    n->auth.seq_last = seq;
    snprintf(out->client, sizeof out->client, "kyufud-auth-%llu",
             (unsigned long long)n->config->id);
    if (actor == NULL) {
        snprintf(out->actor, sizeof out->actor, "kyufu-node-%llu",
                 (unsigned long long)n->config->id);
        actor = out->actor;
    }
    kyufu__v1__idempotency_key__init(&out->key);
    out->key.client_id = out->client;
    out->key.sequence = seq;
    kyufu__v1__command_header__init(&out->header);
    out->header.actor = (char *)actor;
    out->header.terminal = (char *)"";
    out->header.key = &out->key;
    out->header.time_ms = now;
    kyufu__v1__command__init(&out->cmd);
    out->cmd.header = &out->header;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(
            &kyufu__v1__command__descriptor, field);
    assert(f != NULL && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0);
    *(void **)((char *)&out->cmd + f->offset) = body;
    *(uint32_t *)((char *)&out->cmd + f->quantifier_offset) = f->id;
    uint32_t cluster = 0;
    (void)kyufu_storage_cluster_version(n->storage, &cluster, NULL);
    return kyufu_storage_command_since(out->cmd.body_case) <= cluster;
}

static int refuse(char *msg, size_t len, const char *why)
{
    snprintf(msg, len, "%s", why);
    return KYUFU_GRPC_UNAUTHENTICATED;
}

static int store_error(struct kyufu_node *n, int rv, char *msg, size_t len)
{
    if (kyufu_storage_is_fatal(rv)) {
        kyufu_log(KYUFU_LOG_ERROR, "fatal storage error in a query",
                  KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
        kyufu_node__stop_storage(n, rv);
    }
    snprintf(msg, len, "the session cannot be read now; retry");
    return KYUFU_GRPC_UNAVAILABLE;
}

/* Whether this node's store may answer for sessions: not on a leader
 * that has not yet applied what its log held when it first looked in this
 * term (after an election, or a restart that replays the log, its store
 * lags entries that were acknowledged: a sign-in, a sign-out, a session
 * touched, an account disabled), else yes.  Found by the chaos harness's
 * power-all fault (docs/chaos.md): a new leader replaying its log refused
 * valid sessions with "no such session: sign in"; the same lag would let
 * it accept a session closed in the tail of its log. */
static bool leader_caught_up(struct kyufu_node *n)
{
    if (!kyufu_glue_is_leader(n->glue)) {
        return true;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (st.term != n->auth.known_term) {
        n->auth.known_term = st.term;
        n->auth.known_index = st.last_log_index;
    }
    return st.applied_index >= n->auth.known_index;
}

/* Whether a session this node's store does not hold surely does not
 * exist (auth.h): on a leader (caught up: check_session); on a follower
 * that knows a leader (it forwards the call there, service.c, or has
 * waited for its own apply); never on a node that knows no leader. */
static bool surely_unknown(struct kyufu_node *n)
{
    if (kyufu_glue_is_leader(n->glue)) {
        return true;
    }
    const char *api = "";
    return kyufu_node__leader(n, &api) != 0;
}

/* The session keyed `hash`, checked against the client certificate and
 * the clock, and its account: fills *p (STAFF) or refuses. */
static int check_session(struct kyufu_node *n,
                         const uint8_t hash[32],
                         const uint8_t *client_cert, /* NULL: none */
                         const char *want_staff,     /* NULL: any */
                         struct kyufu_principal *p,
                         char *msg,
                         size_t len)
{
    Kyufu__V1__AuthSession *s = NULL;
    Kyufu__V1__StaffAccount *a = NULL;
    int status;
    if (!leader_caught_up(n)) {
        p->unknown_here = true; /* service.c waits for the apply */
        memcpy(p->token_hash, hash, 32);
        snprintf(msg, len, "this node cannot check the session yet (it is "
                           "applying its log); retry");
        return KYUFU_GRPC_UNAVAILABLE;
    }
    int rv = kyufu_storage_get_auth_session(n->storage, hash, &s);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        p->unknown_here = true;
        memcpy(p->token_hash, hash, 32);
        if (!surely_unknown(n)) {
            snprintf(msg, len, "this node cannot check the session yet (it "
                               "is applying its log, or knows no leader); "
                               "retry");
            return KYUFU_GRPC_UNAVAILABLE;
        }
        return refuse(msg, len, "no such session (signed out, expired or "
                                "never issued): sign in");
    }
    if (rv != 0) {
        return store_error(n, rv, msg, len);
    }
    int64_t now = kyufu_node__auth_now_ms(n);
    int64_t last = s->last_used_ms;
    int64_t mine = kyufu_node__auth_last_use(n, hash);
    if (mine > last) {
        last = mine;
    }
    if (want_staff != NULL && strcmp(want_staff, s->staff_id) != 0) {
        status = refuse(msg, len, "the forwarded principal is not the "
                                  "session's account");
        goto out;
    }
    if (client_cert == NULL || s->cert_sha256.len != 32 ||
        CRYPTO_memcmp(client_cert, s->cert_sha256.data, 32) != 0) {
        status = refuse(msg, len, "the session was issued on another client "
                                  "certificate: sign in from this terminal");
        goto out;
    }
    if (now >= s->created_ms + s->absolute_ms) {
        status = refuse(msg, len, "the session has expired: sign in again");
        goto out;
    }
    if (now >= last + s->idle_ms) {
        status = refuse(msg, len, "the session was idle too long: sign in "
                                  "again");
        goto out;
    }
    rv = kyufu_storage_get_staff(n->storage, s->staff_id, &a);
    if (rv == KYUFU_STORAGE_ENOTFOUND ||
        (rv == 0 && a->status != KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE)) {
        status = refuse(msg, len, "the account is not active");
        goto out;
    }
    if (rv != 0) {
        status = store_error(n, rv, msg, len);
        goto out;
    }
    p->kind = KYUFU_PRINCIPAL_STAFF;
    snprintf(p->staff_id, sizeof p->staff_id, "%s", s->staff_id);
    p->roles_mask = a->roles_mask;
    p->setup_only = s->setup_only;
    p->session_id = s->id;
    snprintf(p->terminal, sizeof p->terminal, "%s", s->terminal);
    memcpy(p->token_hash, hash, 32);
    p->idle_expires_ms = (now > last ? now : last) + s->idle_ms;
    p->expires_ms = s->created_ms + s->absolute_ms;
    kyufu_node__auth_remember(n, hash, now);
    status = KYUFU_GRPC_OK;
out:
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    kyufu__v1__auth_session__free_unpacked(s, NULL);
    return status;
}

int kyufu_node__authenticate(struct kyufu_node *n,
                             const struct kyufu_grpc_call *call,
                             struct kyufu_principal *p,
                             char *msg,
                             size_t len)
{
    memset(p, 0, sizeof *p);
    msg[0] = '\0';
    const char *principal = md_find(call, KYUFU_NODE_MD_PRINCIPAL);
    const char *session = md_find(call, KYUFU_NODE_MD_SESSION);
    bool forwarded = md_find(call, FORWARDED_BY) != NULL;
    if (principal != NULL || session != NULL ||
        md_find(call, KYUFU_NODE_MD_CLIENT_CERT) != NULL ||
        md_find(call, KYUFU_NODE_MD_CLIENT_PEER) != NULL ||
        md_find(call, KYUFU_NODE_MD_CLIENT_SUBJECT) != NULL) {
        if (call->peer_node_id == 0 || !forwarded) {
            return refuse(msg, len, "forwarded-identity metadata is accepted "
                                    "only from a node that forwards a call");
        }
    }
    if (call->peer_node_id != 0 && forwarded) {
        /* A follower forwarded this call: the principal it authenticated,
         * checked again here, or nobody. */
        if (principal == NULL && session == NULL) {
            p->node_id = call->peer_node_id;
            return KYUFU_GRPC_OK; /* KIND_NONE */
        }
        /* A session without a principal: the follower did not hold it
         * yet (a sign-in it has not applied) and asks this node to check
         * it against the original client's certificate. */
        uint8_t hash[32], cert[32];
        if (session == NULL || kyufu_node__hex_decode(session, hash, 32) != 0) {
            return refuse(msg, len, "malformed forwarded identity");
        }
        /* Forwarded to the leader, which this node no longer is (a
         * transfer or an election in between): its store may lag the
         * session, and the call may not be forwarded again.  Not a
         * refusal of the session: the client retries. */
        if (!kyufu_glue_is_leader(n->glue)) {
            snprintf(msg, len, "the call was forwarded to a node that no "
                               "longer leads; retry");
            return KYUFU_GRPC_UNAVAILABLE;
        }
        bool has_cert = kyufu_node__auth_client_cert(call, cert);
        int status = check_session(n, hash, has_cert ? cert : NULL,
                                   principal, p, msg, len);
        p->node_id = call->peer_node_id;
        p->unknown_here = false; /* forwarded once: never again */
        return status;
    }
    uint8_t token[KYUFU_NODE_TOKEN_BYTES];
    switch (kyufu_node__bearer_parse(call->metadata, call->n_metadata,
                                     token)) {
    case KYUFU_NODE_BEARER_NONE:
        if (call->peer_node_id != 0) {
            p->kind = KYUFU_PRINCIPAL_NODE;
            p->node_id = call->peer_node_id;
        }
        return KYUFU_GRPC_OK;
    case KYUFU_NODE_BEARER_BAD:
        return refuse(msg, len, "malformed authorization metadata (want "
                                "'Bearer' and 64 lowercase hex digits)");
    case KYUFU_NODE_BEARER_OK:
        break;
    }
    uint8_t hash[32];
    kyufu_node__token_hash(token, hash);
    OPENSSL_cleanse(token, sizeof token);
    int status = check_session(n, hash, call->has_cert ? call->cert_sha256
                                                       : NULL,
                               NULL, p, msg, len);
    p->node_id = call->peer_node_id;
    return status;
}
