/* NodeInternal/FetchClusterKey (issue 12; docs/encryption.md "A joining
 * node's cluster key"): a member hands a joining node the cluster master
 * key, sealed for that one exchange (node/keys.h, kyufu_keys_handover_*).
 *
 * Happy path: the permission table lets only a node certificate of this
 * cluster's CA through (service.c authorize) -> here the node id its
 * certificate names must be in the Raft configuration this node knows
 * (voter, standby or spare: being added) and not this node -> this node
 * holds the CMK -> the joiner's ephemeral P-256 key checked -> the CMK
 * exported from the store, sealed under the ECDH-derived key, wiped ->
 * answered, and the hand-over logged (never the key).
 *
 * Failure modes: a node certificate whose id is not in the configuration
 * (a node not added yet, one removed, a stray): PERMISSION_DENIED, logged
 * and recorded as a refusal (the joiner retries until it is added).  No
 * CMK here (encryption at rest off on this node): FAILED_PRECONDITION.  A
 * malformed public key: INVALID_ARGUMENT.  Nothing changes on any of
 * them.  Any member answers (not only the leader): the key is the same on
 * every node, and a joiner must not depend on one node. */
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "oplog.h"
#include "service.h"

#define METHOD "/kyufu.v1.NodeInternal/FetchClusterKey"

static void refuse(struct kyufu_node_call *c, int code, const char *msg,
                   bool record)
{
    /* The message is a literal here, for the log catalogue. */
    kyufu_log(KYUFU_LOG_WARN, "cluster key request refused",
              KYUFU_LOG_S("peer", c->call->peer_address),
              KYUFU_LOG_S("subject", c->call->peer_identity),
              KYUFU_LOG_S("detail", msg));
    kyufu_node__call_refuse_peer(c, code, msg, record);
}

void kyufu_node__fetch_cluster_key(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__FetchClusterKeyRequest *req =
        (const Kyufu__V1__FetchClusterKeyRequest *)c->request;
    /* The permission table lets nothing but a node's own call through. */
    assert(c->principal.kind == KYUFU_PRINCIPAL_NODE);
    uint64_t from = c->principal.node_id;
    char msg[300];
    if (from == n->config->id || !kyufu_node__is_member(n, from)) {
        snprintf(msg, sizeof msg,
                 "%s: node %llu is not in this cluster's configuration "
                 "(add it first: kyufuctl cluster add-node or replace-node)",
                 METHOD, (unsigned long long)from);
        refuse(c, KYUFU_GRPC_PERMISSION_DENIED, msg, true);
        return;
    }
    if (n->storage == NULL || !kyufu_storage_keys_present(n->storage)) {
        refuse(c, KYUFU_GRPC_FAILED_PRECONDITION,
               METHOD ": this node has no cluster key (no [keys])", false);
        return;
    }
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES];
    uint8_t pub[KYUFU_KEYS_HANDOVER_PUB_BYTES];
    uint8_t nonce[KYUFU_KEYS_HANDOVER_NONCE_BYTES];
    uint8_t sealed[KYUFU_KEYS_HANDOVER_SEALED_BYTES];
    char why[200];
    int rv = kyufu_storage_keys_export(n->storage, cmk);
    if (rv == 0) {
        rv = kyufu_keys_handover_seal(from, n->ca_hash,
                                      req->public_key.data,
                                      req->public_key.len, cmk, pub, nonce,
                                      sealed, why, sizeof why);
        if (rv != 0) {
            snprintf(msg, sizeof msg, "%s: %s", METHOD, why);
        }
    } else {
        snprintf(msg, sizeof msg, "%s: the store's key cannot be read",
                 METHOD);
    }
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    if (rv != 0) {
        refuse(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, false);
        return;
    }
    Kyufu__V1__FetchClusterKeyResponse resp =
        KYUFU__V1__FETCH_CLUSTER_KEY_RESPONSE__INIT;
    resp.public_key.data = pub;
    resp.public_key.len = sizeof pub;
    resp.nonce.data = nonce;
    resp.nonce.len = sizeof nonce;
    resp.sealed_key.data = sealed;
    resp.sealed_key.len = sizeof sealed;
    kyufu_log(KYUFU_LOG_INFO, "cluster key handed over to a joining node",
              KYUFU_LOG_U("node", from),
              KYUFU_LOG_S("peer", c->call->peer_address));
    kyufu_node__call_done_msg(c, &resp.base);
}
