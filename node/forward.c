/* Forwarding: a follower sends a call it cannot serve (a write, a
 * linearizable read, a transfer) to the leader and relays the answer.
 *
 * Happy path: leader id from the glue -> its API address from [cluster] ->
 * the (lazily created, then kept) client connection to it -> the ORIGINAL
 * request bytes, same method, the caller's remaining deadline, and the
 * metadata `kyufu-forwarded-by: <our id>` -> the leader's status, message
 * and response bytes relayed as they are, with the leader's kyufu-leader
 * trailer (or, if it sent none, our own view: call.c).  Each forward
 * counts in NodeStatus.forwarded_calls.
 *
 * Identity (issue 8): the caller is authenticated here first and the
 * leader is told who it is: `kyufu-principal` (staff id) and
 * `kyufu-session` (the token's SHA-256 in hex) for a signed-in caller,
 * and for every call the original client's certificate fingerprint
 * (`kyufu-client-cert`), address (`kyufu-client-peer`) and subject
 * (`kyufu-client-subject`), so the leader binds a new session to the
 * client's certificate, not ours.  The caller's own `authorization`
 * metadata is never sent on; the leader reads the session again.
 *
 * Failure modes: no leader known -> UNAVAILABLE at once (the client retries
 * with the same idempotency key).  A call that already was forwarded is
 * never forwarded again (the sender's view of the leader was stale, or
 * ours is): UNAVAILABLE, so two nodes with crossed views cannot bounce a
 * call between them.  The caller's deadline already passed ->
 * DEADLINE_EXCEEDED.  Connection failures come back from the client as
 * UNAVAILABLE and are relayed.  The connection authenticates with this
 * node's own certificate (mutual TLS), and every peer client believes only
 * a server certificate naming the node of its slot (server_node_id), so a
 * certificate of another node at that address fails the connection. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_node.h"
#include "auth_token.h"
#include "log.h"
#include "service.h"

#define FORWARDED_BY "kyufu-forwarded-by"

bool kyufu_node__call_was_forwarded(const struct kyufu_node_call *c)
{
    for (size_t i = 0; i < c->call->n_metadata; i++) {
        if (strcmp(c->call->metadata[i].name, FORWARDED_BY) == 0) {
            return true;
        }
    }
    return false;
}

static void on_forwarded(struct kyufu_grpc_client_req *req,
                         int status,
                         const char *message,
                         const uint8_t *response,
                         size_t response_len)
{
    struct kyufu_node_call *c = req->data;
    /* Borrowed from req for this callback; call_done copies it. */
    const char *hint = kyufu_grpc_metadata_find(req->trailers, req->n_trailers,
                                                "kyufu-leader");
    if (hint == NULL && (status == KYUFU_GRPC_UNAVAILABLE ||
                         status == KYUFU_GRPC_DEADLINE_EXCEEDED)) {
        /* No word from the leader (unreachable, or it lost leadership and
         * knows no other): our view would send the client to the node that
         * just failed us, so name none and let it try the next. */
        hint = "";
    }
    kyufu_log(KYUFU_LOG_DEBUG, "forwarded call answered",
              KYUFU_LOG_S("method", c->method->path),
              KYUFU_LOG_S("status", kyufu_grpc_status_name(status)),
              KYUFU_LOG_S("leader_hint", hint != NULL ? hint : ""));
    kyufu_node__call_done_hint(c, status, message, response, response_len,
                               hint);
}

static void on_stale_closed(struct kyufu_grpc_client *client, void *data)
{
    (void)client;
    (void)data;
}

/* Close peer i's client if it predates the last TLS reload and has no call
 * in flight (a new one is made on the next use). */
static void drop_if_stale(struct kyufu_node *n, size_t i)
{
    struct kyufu_grpc_client *client = n->forward[i];
    if (client == NULL || !n->forward_stale[i] ||
        kyufu_grpc_client_pending(client) > 0) {
        return;
    }
    n->forward[i] = NULL;
    n->forward_stale[i] = false;
    kyufu_grpc_client_close(client, on_stale_closed, NULL);
}

void kyufu_node__forward_rotate(struct kyufu_node *n)
{
    for (size_t i = 0; i < KYUFU_NODE_PEER_SLOTS; i++) {
        n->forward_stale[i] = n->forward[i] != NULL;
        drop_if_stale(n, i);
    }
}

/* A new client to peer slot i's API address: bound to that slot's node,
 * or (any_node) to whichever node answers there. */
static struct kyufu_grpc_client *peer_client_new(struct kyufu_node *n, size_t i,
                                                 bool any_node, char *errmsg,
                                                 size_t errmsg_len)
{
    assert(i < KYUFU_NODE_PEER_SLOTS);
    const char *api = i < KYUFU_NODE_CLUSTER_SIZE_MAX
                          ? n->config->peers[i].api_address
                          : n->learned[i - KYUFU_NODE_CLUSTER_SIZE_MAX]
                                .api_address;
    /* The node this slot is for: a slot never changes node (config peers
     * are fixed, a learned slot keeps its id once taken). */
    uint64_t id = i < KYUFU_NODE_CLUSTER_SIZE_MAX
                      ? n->config->peers[i].id
                      : n->learned[i - KYUFU_NODE_CLUSTER_SIZE_MAX].id;
    assert(id != 0);
    char host[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    const char *colon = strrchr(api, ':');
    if (colon == NULL || (size_t)(colon - api) >= sizeof host) {
        snprintf(errmsg, errmsg_len, "bad API address '%s'", api);
        return NULL;
    }
    size_t len = (size_t)(colon - api);
    memcpy(host, api, len);
    host[len] = '\0';

    struct kyufu_grpc_client_config cc;
    memset(&cc, 0, sizeof cc);
    cc.host = host;
    cc.port = (uint16_t)strtoul(colon + 1, NULL, 10);
    cc.ca_file = n->config->tls_ca;
    cc.cert_file = n->config->tls_cert;
    cc.key_file = n->config->tls_key;
    /* Only that node's certificate is believed at that address
     * (docs/peer-tls.md "API calls between nodes"), or only a node's. */
    cc.server_node_id = any_node ? 0 : id;
    cc.server_any_node = any_node;
    /* ... and not once the CRL revokes it (a leaked node key). */
    cc.crl_file = n->config->tls_crl[0] != '\0' ? n->config->tls_crl : NULL;
    struct kyufu_grpc_client *client;
    if (kyufu_grpc_client_new(&n->loop, &cc, &client, errmsg, errmsg_len) != 0) {
        return NULL;
    }
    return client;
}

/* The client to peer i, created on first use. */
struct kyufu_grpc_client *kyufu_node__peer_client(struct kyufu_node *n,
                                                  size_t i,
                                                  char *errmsg,
                                                  size_t errmsg_len)
{
    drop_if_stale(n, i);
    if (n->forward[i] == NULL) {
        n->forward[i] = peer_client_new(n, i, false, errmsg, errmsg_len);
    }
    return n->forward[i];
}

struct kyufu_grpc_client *kyufu_node__peer_client_any(struct kyufu_node *n,
                                                      size_t i,
                                                      char *errmsg,
                                                      size_t errmsg_len)
{
    return peer_client_new(n, i, true, errmsg, errmsg_len);
}

/* src as a metadata value into dst (len > 0): its printable ASCII
 * (0x20-0x7e; other bytes dropped) without leading or trailing blanks, as
 * RFC 9113 and api/wire.c's check want it, so that "CN=Counter 1" reaches
 * the leader as the node itself saw it.  Returns the value's length. */
static size_t metadata_value(const char *src, char *dst, size_t len)
{
    size_t k = 0;
    assert(len > 0);
    for (; src != NULL && *src != '\0' && k + 1 < len; src++) {
        if (*src >= 0x20 && *src <= 0x7e && (k > 0 || *src != ' ')) {
            dst[k++] = *src;
        }
    }
    while (k > 0 && dst[k - 1] == ' ') {
        k--;
    }
    dst[k] = '\0';
    return k;
}

uint64_t kyufu_node__forward_leader(const struct kyufu_node_call *c,
                                    const char **api_address)
{
    *api_address = "";
    if (kyufu_node__call_was_forwarded(c)) {
        return 0;
    }
    uint64_t leader = kyufu_node__leader(c->node, api_address);
    return leader != c->node->config->id ? leader : 0;
}

void kyufu_node__forward(struct kyufu_node_call *c)
{
    if (kyufu_node__hold(c)) {
        return; /* this leader hands over: forwarded once that ends */
    }
    kyufu_node__forward_now(c);
}

void kyufu_node__forward_now(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const char *api = "";
    uint64_t leader = kyufu_node__forward_leader(c, &api);
    if (leader == 0) {
        kyufu_node__call_unavailable(
            c, kyufu_node__call_was_forwarded(c)
                   ? "not the leader (call was already forwarded once)"
                   : "not the leader");
        return;
    }
    int slot = kyufu_node__peer_slot(n, leader, &api);
    if (slot < 0) {
        kyufu_node__call_unavailable(c, "the leader's API address is not "
                                        "known here");
        return;
    }
    size_t i = (size_t)slot;
    uint64_t timeout_ms = kyufu_node__call_remaining_ms(c);
    if (timeout_ms == 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_DEADLINE_EXCEEDED,
                              "deadline passed before forwarding", NULL, 0);
        return;
    }
    char errmsg[256] = "";
    struct kyufu_grpc_client *client = kyufu_node__peer_client(n, i, errmsg, sizeof errmsg);
    if (client == NULL) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot create a forwarding client",
                  KYUFU_LOG_S("leader_api", api), KYUFU_LOG_S("error", errmsg));
        kyufu_node__call_unavailable(c, "cannot reach the leader");
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)n->config->id);
    struct kyufu_grpc_metadata md[6] = {{FORWARDED_BY, id}};
    size_t n_md = 1;
    /* Identity (issue 8): who the caller is as this node authenticated it,
     * and the original client's certificate and address; never the
     * caller's own authorization bytes. */
    const struct kyufu_principal *p = &c->principal; /* service.c authorize */
    char cert_hex[65], session_hex[65];
    char subject[KYUFU_NODE_FORWARD_SUBJECT_BYTES];
    uint8_t cert[32];
    if (kyufu_node__auth_client_cert(c->call, cert)) {
        kyufu_node__hex_encode(cert, sizeof cert, cert_hex);
        md[n_md++] = (struct kyufu_grpc_metadata){KYUFU_NODE_MD_CLIENT_CERT,
                                                  cert_hex};
    }
    const char *peer = kyufu_node__auth_client_peer(c->call);
    if (peer[0] != '\0') {
        md[n_md++] =
            (struct kyufu_grpc_metadata){KYUFU_NODE_MD_CLIENT_PEER, peer};
    }
    if (metadata_value(c->call->peer_identity, subject, sizeof subject) > 0) {
        md[n_md++] = (struct kyufu_grpc_metadata){KYUFU_NODE_MD_CLIENT_SUBJECT,
                                                  subject};
    }
    if (p->kind == KYUFU_PRINCIPAL_STAFF) {
        kyufu_node__hex_encode(p->token_hash, sizeof p->token_hash,
                               session_hex);
        md[n_md++] =
            (struct kyufu_grpc_metadata){KYUFU_NODE_MD_PRINCIPAL, p->staff_id};
        md[n_md++] =
            (struct kyufu_grpc_metadata){KYUFU_NODE_MD_SESSION, session_hex};
    } else if (p->unknown_here) {
        /* A session this node does not hold yet: the leader checks it. */
        kyufu_node__hex_encode(p->token_hash, sizeof p->token_hash,
                               session_hex);
        md[n_md++] =
            (struct kyufu_grpc_metadata){KYUFU_NODE_MD_SESSION, session_hex};
    }
    c->req.forward.data = c;
    int rv = kyufu_grpc_client_call(client, &c->req.forward, c->call->method,
                                    c->call->request, c->call->request_len,
                                    timeout_ms, md, n_md, on_forwarded);
    if (rv != 0) {
        kyufu_node__call_unavailable(c, kyufu_api_strerror(rv));
        return;
    }
    n->forwarded_calls++;
    kyufu_log(KYUFU_LOG_DEBUG, "forwarded",
              KYUFU_LOG_S("method", c->method->path),
              KYUFU_LOG_U("leader", leader));
}

static void on_client_closed(struct kyufu_grpc_client *client, void *data)
{
    struct kyufu_node *n = data;
    (void)client;
    assert(n->forward_closing > 0);
    if (--n->forward_closing == 0) {
        n->forward_done(n);
    }
}

void kyufu_node__forward_close(struct kyufu_node *n,
                               void (*done)(struct kyufu_node *n))
{
    n->forward_done = done;
    n->forward_closing = 0;
    for (size_t i = 0; i < KYUFU_NODE_PEER_SLOTS; i++) {
        if (n->forward[i] != NULL) {
            n->forward_closing++;
        }
    }
    if (n->forward_closing == 0) {
        done(n);
        return;
    }
    for (size_t i = 0; i < KYUFU_NODE_PEER_SLOTS; i++) {
        if (n->forward[i] != NULL) {
            struct kyufu_grpc_client *client = n->forward[i];
            n->forward[i] = NULL;
            kyufu_grpc_client_close(client, on_client_closed, n);
        }
    }
}

int kyufu_node__ask_status(struct kyufu_node *n,
                           size_t i,
                           struct kyufu_grpc_client_req *req,
                           uint64_t timeout_ms,
                           kyufu_grpc_client_cb cb)
{
    char errmsg[256] = "";
    struct kyufu_grpc_client *client =
        kyufu_node__peer_client(n, i, errmsg, sizeof errmsg);
    if (client == NULL) {
        return -1;
    }
    return kyufu_grpc_client_call(client, req, "/kyufu.v1.Cluster/Status",
                                  NULL, 0, timeout_ms, NULL, 0, cb) == 0
               ? 0
               : -1;
}

/* Free learned slot k, its client closed, unless a call is in flight on it
 * (then a later pass frees it). */
static void learned_free(struct kyufu_node *n, size_t k)
{
    size_t slot = KYUFU_NODE_CLUSTER_SIZE_MAX + k;
    if (n->forward[slot] != NULL && kyufu_grpc_client_pending(n->forward[slot]) > 0) {
        return;
    }
    n->forward_stale[slot] = n->forward[slot] != NULL;
    drop_if_stale(n, slot);
    n->learned[k].id = 0;
    n->learned[k].api_address[0] = '\0';
}

/* Free the learned slots of nodes no longer in the configuration m (their
 * clients closed; one with a call in flight waits for a later pass), so
 * that replacements over a leader's life never run out of slots. */
static void learned_reclaim(struct kyufu_node *n, const struct kyufu_glue_member *m,
                            size_t nm)
{
    for (size_t k = 0; k < KYUFU_NODE_CLUSTER_SIZE_MAX; k++) {
        bool member = false;
        for (size_t j = 0; j < nm && !member; j++) {
            member = m[j].id == n->learned[k].id;
        }
        if (n->learned[k].id != 0 && !member) {
            learned_free(n, k);
        }
    }
}

static int learned_slot(struct kyufu_node *n, uint64_t id, const char *api,
                        bool listed, const char **api_address);

int kyufu_node__peer_slot(struct kyufu_node *n, uint64_t id,
                          const char **api_address)
{
    *api_address = "";
    if (id == 0) {
        return -1;
    }
    int listed = -1;
    for (size_t i = 0; i < n->config->n_peers; i++) {
        if (n->config->peers[i].id == id) {
            listed = (int)i;
        }
    }
    /* The Raft configuration's address is the one that holds (docs/raft.md
     * "Membership"): a member added after this node's config was written,
     * or one re-added at another address, which [cluster] (never edited
     * after a replacement) still lists at its old one. */
    struct kyufu_glue_member m[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t nm = n->glue != NULL
                    ? kyufu_glue_members(n->glue, m, KYUFU_NODE_CLUSTER_SIZE_MAX)
                    : 0;
    nm = nm < KYUFU_NODE_CLUSTER_SIZE_MAX ? nm : KYUFU_NODE_CLUSTER_SIZE_MAX;
    const char *api = NULL;
    for (size_t j = 0; j < nm; j++) {
        if (m[j].id == id && m[j].api_address[0] != '\0' &&
            strlen(m[j].api_address) <= KYUFU_NODE_ADDRESS_BYTES_MAX) {
            api = m[j].api_address;
        }
    }
    if (nm > 0) {
        learned_reclaim(n, m, nm);
    }
    if (listed >= 0 &&
        (api == NULL || strcmp(api, n->config->peers[listed].api_address) == 0)) {
        /* Back at its [cluster] address: a learned slot it had goes. */
        for (size_t k = 0; api != NULL && k < KYUFU_NODE_CLUSTER_SIZE_MAX; k++) {
            if (n->learned[k].id == id) {
                learned_free(n, k);
            }
        }
        *api_address = n->config->peers[listed].api_address;
        return listed;
    }
    if (api == NULL) {
        return -1;
    }
    if (listed >= 0) {
        /* Moved: the client to its old address goes once idle. */
        n->forward_stale[listed] = n->forward[listed] != NULL;
        drop_if_stale(n, (size_t)listed);
    }
    int slot = learned_slot(n, id, api, listed >= 0, api_address);
    if (slot < 0 && listed >= 0) {
        /* No learned slot free right now: its [cluster] address, as before. */
        *api_address = n->config->peers[listed].api_address;
        return listed;
    }
    return slot;
}

/* The learned slot of id at api (taken, or moved there, when it has none
 * or another address); -1 when none is free or its client is busy. */
static int learned_slot(struct kyufu_node *n, uint64_t id, const char *api,
                        bool listed, const char **api_address)
{
    size_t free_k = KYUFU_NODE_CLUSTER_SIZE_MAX;
    for (size_t k = 0; k < KYUFU_NODE_CLUSTER_SIZE_MAX; k++) {
        if (n->learned[k].id == id) {
            size_t slot = KYUFU_NODE_CLUSTER_SIZE_MAX + k;
            if (strcmp(n->learned[k].api_address, api) != 0) {
                /* Re-added elsewhere: a new client once the old is idle. */
                if (n->forward[slot] != NULL &&
                    kyufu_grpc_client_pending(n->forward[slot]) > 0) {
                    return -1;
                }
                n->forward_stale[slot] = n->forward[slot] != NULL;
                drop_if_stale(n, slot);
                snprintf(n->learned[k].api_address,
                         sizeof n->learned[k].api_address, "%s", api);
            }
            *api_address = n->learned[k].api_address;
            return (int)slot;
        }
        if (n->learned[k].id == 0 && free_k == KYUFU_NODE_CLUSTER_SIZE_MAX) {
            free_k = k;
        }
    }
    if (free_k == KYUFU_NODE_CLUSTER_SIZE_MAX) {
        return -1;
    }
    n->learned[free_k].id = id;
    snprintf(n->learned[free_k].api_address,
             sizeof n->learned[free_k].api_address, "%s", api);
    if (listed) {
        /* Once per move (the slot is kept while the node is a member). */
        kyufu_log(KYUFU_LOG_WARN,
                  "a member's API address differs from [cluster]: using the "
                  "Raft configuration's",
                  KYUFU_LOG_U("node", id), KYUFU_LOG_S("api_address", api));
    }
    *api_address = n->learned[free_k].api_address;
    return (int)(KYUFU_NODE_CLUSTER_SIZE_MAX + free_k);
}
