/* A joining node's cluster key (issue 12; docs/encryption.md "A joining
 * node's cluster key"): kyufud with [keys], [node] join = yes, an empty
 * Raft folder and no CMK file yet asks the members of [cluster] for the
 * cluster master key before Raft starts, so that nothing is applied
 * without it.
 *
 * Happy path: keys_node.c found no CMK file for a fresh joiner -> an
 * ephemeral P-256 key is made (kyufu_keys_handover_begin) -> every
 * KYUFU_NODE_KEY_FETCH_MS one member (round robin over [cluster], not this
 * node) is asked NodeInternal/FetchClusterKey over a client of its own
 * (mutual TLS, this node's certificate; the server's must name a node, but
 * not necessarily the one [cluster] lists there: after replace-node another
 * member may answer at that address, and any member holds the key; the
 * answer is sealed for this exchange and bound to the cluster CA) -> a
 * member that has this node in
 * its Raft configuration (the operator ran cluster add-node or
 * replace-node) answers with the CMK sealed for this exchange -> opened,
 * wrapped under this node's own KEK into <cmk_file> (written durably:
 * small_file.h), handed to the store, wiped -> the rest of the start runs
 * (`then`: Raft, the API, ...).
 *
 * Failure modes: a member refuses (not added yet: PERMISSION_DENIED) or
 * does not answer: logged once, asked again at the next tick, the next
 * member in turn; the wait is unbounded (the node is not serving, its
 * status is in the log).  An answer that does not open (another cluster,
 * tampering) or a CMK file that cannot be written: the node stops with
 * exit 1.  A stop while waiting: the client is closed (its call cancelled,
 * the answer ignored) and then the timer. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kyufu/v1/service.pb-c.h"
#include "limits.h"
#include "log.h"
#include "node.h"

#define METHOD "/kyufu.v1.NodeInternal/FetchClusterKey"

struct kyufu_node_keys_fetch
{
    uv_timer_t timer;
    struct kyufu_grpc_client_req req;
    struct kyufu_keys_handover h;
    struct kyufu_node *n;
    void (*then)(struct kyufu_node *n);
    struct kyufu_grpc_client *client; /* to [cluster] entry `asked`, or NULL */
    size_t next;   /* the [cluster] entry to ask next */
    size_t asked;  /* the one asked now (or last) */
    bool busy;     /* a call in flight */
    bool failing;  /* a failure was logged since the last start */
    bool impostor_logged; /* an answer from our own certificate, logged */
    uint8_t packed[2 + KYUFU_KEYS_HANDOVER_PUB_BYTES];
    size_t packed_len;
};

static void tick(uv_timer_t *t);

static void client_drop(struct kyufu_node_keys_fetch *f,
                        kyufu_grpc_client_close_cb cb)
{
    struct kyufu_grpc_client *client = f->client;
    f->client = NULL;
    kyufu_grpc_client_close(client, cb, f);
}

/* from: the node whose certificate answered (not necessarily the one
 * [cluster] lists at that address). */
static void finish(struct kyufu_node_keys_fetch *f,
                   const Kyufu__V1__FetchClusterKeyResponse *r, uint64_t from)
{
    struct kyufu_node *n = f->n;
    const struct kyufu_config *c = n->config;
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES];
    char errmsg[600];
    struct kyufu_keys_source src = {
        .kek_file = c->keys_kek_file[0] != '\0' ? c->keys_kek_file : NULL,
        .passphrase_file =
            c->keys_passphrase_file[0] != '\0' ? c->keys_passphrase_file
                                               : NULL,
    };
    if (kyufu_keys_handover_finish(
            &f->h, c->id, n->ca_hash, r->public_key.data, r->public_key.len,
            r->nonce.data, r->nonce.len, r->sealed_key.data,
            r->sealed_key.len, cmk, errmsg, sizeof errmsg) != 0 ||
        kyufu_keys_cmk_store(&src, c->keys_cmk_file, c->id, n->ca_hash, cmk,
                             errmsg, sizeof errmsg) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot take the cluster key from a member",
                  KYUFU_LOG_U("member", from),
                  KYUFU_LOG_S("address", c->peers[f->asked].api_address),
                  KYUFU_LOG_S("error", errmsg));
        kyufu_node__stop(n, 1, "cluster key");
        return;
    }
    kyufu_storage_keys_set(n->storage, cmk);
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    kyufu_keys_handover_free(&f->h);
    uv_timer_stop(&f->timer);
    client_drop(f, NULL);
    kyufu_log(KYUFU_LOG_INFO,
              "cluster key received from a member: encryption at rest is on",
              KYUFU_LOG_U("member", from),
              KYUFU_LOG_S("address", c->peers[f->asked].api_address),
              KYUFU_LOG_S("cmk_file", c->keys_cmk_file));
    f->then(n);
}

static void on_answer(struct kyufu_grpc_client_req *req, int status,
                      const char *message, const uint8_t *response,
                      size_t response_len)
{
    struct kyufu_node_keys_fetch *f = req->data;
    struct kyufu_node *n = f->n;
    f->busy = false;
    if (n->stage != KYUFU_NODE_STARTING || n->stop_requested) {
        return; /* stopping: the answer no longer matters */
    }
    Kyufu__V1__FetchClusterKeyResponse *r = NULL;
    uint64_t who = req->server_node_id; /* 0 unless answered */
    if (status == KYUFU_GRPC_OK && (who == 0 || who == n->config->id)) {
        /* This node's own certificate (its key copied elsewhere), or one
         * naming no node (the client refuses those before asking): never
         * a member that holds the cluster key for it.  Said once, as an
         * error: someone holds this node's key. */
        if (!f->impostor_logged) {
            f->impostor_logged = true;
            const char *address = n->config->peers[f->asked].api_address;
            if (who != 0) {
                kyufu_log(KYUFU_LOG_ERROR,
                          "refusing a cluster key answered with this node's "
                          "own certificate; asking the other members",
                          KYUFU_LOG_U("node", who), KYUFU_LOG_S("address", address));
            } else {
                kyufu_log(KYUFU_LOG_ERROR,
                          "refusing a cluster key answered with a certificate "
                          "that names no node; asking the other members",
                          KYUFU_LOG_S("address", address));
            }
        }
        return;
    }
    if (status == KYUFU_GRPC_OK) {
        r = kyufu__v1__fetch_cluster_key_response__unpack(NULL, response_len,
                                                         response);
        if (r == NULL) {
            message = "the answer does not parse";
        }
    }
    if (r == NULL) {
        if (!f->failing) {
            f->failing = true;
            kyufu_log(KYUFU_LOG_WARN,
                      "waiting for the cluster key: a member did not give it "
                      "(is this node added to the cluster yet?); asking "
                      "again",
                      KYUFU_LOG_U("member", who != 0 && who != n->config->id
                                                ? who
                                                : n->config->peers[f->asked].id),
                      KYUFU_LOG_S("address", n->config->peers[f->asked].api_address),
                      KYUFU_LOG_S("status", kyufu_grpc_status_name(status)),
                      KYUFU_LOG_S("detail", message));
        }
        return;
    }
    finish(f, r, req->server_node_id);
    kyufu__v1__fetch_cluster_key_response__free_unpacked(r, NULL);
}

static void tick(uv_timer_t *t)
{
    struct kyufu_node_keys_fetch *f = t->data;
    struct kyufu_node *n = f->n;
    const struct kyufu_config *c = n->config;
    if (f->busy || n->stop_requested) {
        return;
    }
    assert(c->n_peers > 1);
    size_t i = f->next % c->n_peers;
    if (c->peers[i].id == c->id) {
        i = (i + 1) % c->n_peers;
    }
    f->next = i + 1;
    char errmsg[256];
    if (f->client != NULL && f->asked != i) {
        client_drop(f, NULL);
    }
    if (f->client == NULL &&
        (f->client = kyufu_node__peer_client_any(n, i, errmsg, sizeof errmsg)) == NULL) {
        if (!f->failing) {
            f->failing = true;
            kyufu_log(KYUFU_LOG_WARN,
                      "waiting for the cluster key: cannot make a client to "
                      "ask a member; asking again",
                      KYUFU_LOG_U("member", c->peers[i].id),
                      KYUFU_LOG_S("error", errmsg));
        }
        return;
    }
    f->asked = i;
    f->req.data = f;
    if (kyufu_grpc_client_call(f->client, &f->req, METHOD, f->packed,
                               f->packed_len, KYUFU_NODE_KEY_FETCH_TIMEOUT_MS,
                               NULL, 0, on_answer) == 0) {
        f->busy = true;
    }
}

int kyufu_node__keys_fetch_start(struct kyufu_node *n,
                                 void (*then)(struct kyufu_node *n))
{
    char errmsg[200];
    if (n->config->n_peers < 2) {
        kyufu_log(KYUFU_LOG_ERROR, "refusing to start: no cluster key and no "
                  "other member in [cluster] to ask for it",
                  KYUFU_LOG_S("cmk_file", n->config->keys_cmk_file));
        return -1;
    }
    struct kyufu_node_keys_fetch *f = calloc(1, sizeof *f);
    if (f == NULL) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot ask for the cluster key",
                  KYUFU_LOG_S("error", "out of memory"));
        return -1;
    }
    if (kyufu_keys_handover_begin(&f->h, errmsg, sizeof errmsg) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot ask for the cluster key",
                  KYUFU_LOG_S("error", errmsg));
        free(f);
        return -1;
    }
    Kyufu__V1__FetchClusterKeyRequest q =
        KYUFU__V1__FETCH_CLUSTER_KEY_REQUEST__INIT;
    q.public_key.data = f->h.pub;
    q.public_key.len = sizeof f->h.pub;
    f->packed_len = kyufu__v1__fetch_cluster_key_request__get_packed_size(&q);
    assert(f->packed_len <= sizeof f->packed);
    kyufu__v1__fetch_cluster_key_request__pack(&q, f->packed);
    f->n = n;
    f->then = then;
    uv_timer_init(&n->loop, &f->timer);
    f->timer.data = f;
    n->keys_fetch = f;
    uv_timer_start(&f->timer, tick, 0, KYUFU_NODE_KEY_FETCH_MS);
    kyufu_log(KYUFU_LOG_INFO,
              "waiting for the cluster key from a member (a joining node: "
              "add it with kyufuctl cluster add-node or replace-node)",
              KYUFU_LOG_S("cmk_file", n->config->keys_cmk_file));
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct kyufu_node_keys_fetch *f = h->data;
    kyufu_keys_handover_free(&f->h);
    free(f);
}

/* The client closed (its call cancelled and answered): now the timer. */
static void on_client_closed(struct kyufu_grpc_client *client, void *data)
{
    struct kyufu_node_keys_fetch *f = data;
    (void)client;
    assert(!f->busy);
    uv_close((uv_handle_t *)&f->timer, on_closed);
}

void kyufu_node__keys_fetch_close(struct kyufu_node *n)
{
    struct kyufu_node_keys_fetch *f = n->keys_fetch;
    if (f == NULL) {
        return;
    }
    n->keys_fetch = NULL;
    uv_timer_stop(&f->timer);
    if (f->client != NULL) {
        client_drop(f, on_client_closed);
        return;
    }
    assert(!f->busy);
    uv_close((uv_handle_t *)&f->timer, on_closed);
}
