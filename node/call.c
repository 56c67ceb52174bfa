/* Call contexts and the ways a call is answered (see node.h).
 *
 * The leader hint: every answer goes out with the trailer
 * `kyufu-leader: host:port` (the api_address of the leader in [cluster])
 * when a leader is known, so libkyufu sends its next calls straight there;
 * a forwarded answer carries the leader's own hint through.  No leader
 * known: no trailer (the client then tries the next node).  A stopping
 * node never names itself. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "node.h"
#include "oplog.h"
#include "service.h"

#define LEADER_MD "kyufu-leader" /* = KYUFU_LEADER_METADATA of client/kyufu.h */

/* The api_address to name in the trailer: `given` if not NULL, else this
 * node's view of the leader; "" when none (or when it would be this node
 * while it stops). */
static const char *hint_for(struct kyufu_node *n, const char *given)
{
    if (given != NULL) {
        return given;
    }
    const char *api = "";
    uint64_t leader = kyufu_node__leader(n, &api);
    if (leader == n->config->id &&
        (n->stage != KYUFU_NODE_RUNNING || n->stop_requested)) {
        return "";
    }
    return api;
}

static void respond(struct kyufu_node *n,
                    struct kyufu_grpc_call *call,
                    int status,
                    const char *message,
                    const uint8_t *response,
                    size_t len,
                    const char *leader_api)
{
    const char *hint = hint_for(n, leader_api);
    const struct kyufu_grpc_metadata md[] = {{LEADER_MD, hint}};
    int rv = kyufu_grpc_call_respond_md(call, status, message, response, len,
                                        md, hint[0] != '\0' ? 1 : 0);
    if (rv != 0) {
        /* Answered anyway, without the hint; config.c validated our own
         * addresses, so this is a relayed hint the check refused. */
        kyufu_log(KYUFU_LOG_WARN, "leader hint not sent",
                  KYUFU_LOG_S("hint", hint),
                  KYUFU_LOG_S("error", kyufu_api_strerror(rv)));
    }
}

void kyufu_node__respond(struct kyufu_node *n,
                         struct kyufu_grpc_call *call,
                         int status,
                         const char *message)
{
    kyufu_node__metrics_rpc(n, call->method, -1, status, 0);
    respond(n, call, status, message, NULL, 0, NULL);
}

bool kyufu_node__taking_calls(const struct kyufu_node *n)
{
    if (n->stage == KYUFU_NODE_RUNNING && !n->stop_requested) {
        return true;
    }
    return n->stage == KYUFU_NODE_TRANSFERRING && n->stop_transfer_pending &&
           !n->stop_hurry && n->exit_code == 0;
}

struct kyufu_node_call *kyufu_node__call_new(struct kyufu_node *n,
                                            struct kyufu_grpc_call *call)
{
    if (!kyufu_node__taking_calls(n)) {
        /* Stopping: the client should go to another node now. */
        const char *api = hint_for(n, NULL);
        char msg[256];
        snprintf(msg, sizeof msg, "node is stopping (%s)%s%s",
                 n->stop_reason != NULL ? n->stop_reason : "starting",
                 api[0] != '\0' ? "; leader at " : "", api);
        kyufu_node__respond(n, call, KYUFU_GRPC_UNAVAILABLE, msg);
        return NULL;
    }
    if (n->calls_inflight >= KYUFU_NODE_CALLS_INFLIGHT_MAX) {
        kyufu_node__respond(n, call, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                            "too many calls in progress on this node");
        return NULL;
    }
    struct kyufu_node_call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        kyufu_node__respond(n, call, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                            "out of memory");
        return NULL;
    }
    c->node = n;
    c->call = call;
    c->method_index = -1;
    c->started_ns = uv_hrtime();
    n->calls_inflight++;
    return c;
}

void kyufu_node__call_done(struct kyufu_node_call *c,
                           int status,
                           const char *message,
                           const uint8_t *response,
                           size_t len)
{
    kyufu_node__call_done_hint(c, status, message, response, len, NULL);
}

void kyufu_node__call_done_hint(struct kyufu_node_call *c,
                                int status,
                                const char *message,
                                const uint8_t *response,
                                size_t len,
                                const char *leader_api)
{
    assert(c->call != NULL);
    kyufu_node__metrics_rpc(c->node, c->call->method, c->method_index, status,
                            c->started_ns);
    respond(c->node, c->call, status, message, response, len, leader_api);
    c->call = NULL;
    kyufu_node__auth_ctx_free(c);
    if (c->request != NULL) {
        protobuf_c_message_free_unpacked(c->request, NULL);
    }
    assert(c->node->calls_inflight > 0);
    c->node->calls_inflight--;
    free(c);
}

void kyufu_node__call_done_msg(struct kyufu_node_call *c,
                               const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    size_t packed = protobuf_c_message_pack(msg, buf);
    assert(packed == len);
    kyufu_node__call_done(c, KYUFU_GRPC_OK, NULL, buf, len);
    free(buf);
}

void kyufu_node__call_refuse_peer(struct kyufu_node_call *c, int code,
                                  const char *msg, bool record)
{
    if (record) {
        kyufu_node__oplog_refused(c->node, c->call, &c->principal, code,
                                  msg);
    }
    kyufu_node__call_done(c, code, msg, NULL, 0);
}

void kyufu_node__call_unavailable(struct kyufu_node_call *c, const char *why)
{
    const char *api = "";
    uint64_t leader = kyufu_node__leader(c->node, &api);
    char msg[384];
    if (leader != 0 && api[0] != '\0') {
        snprintf(msg, sizeof msg, "%s; leader is node %llu at %s", why,
                 (unsigned long long)leader, api);
    } else {
        snprintf(msg, sizeof msg, "%s; no leader known yet, retry", why);
    }
    kyufu_node__call_done(c, KYUFU_GRPC_UNAVAILABLE, msg, NULL, 0);
}

uint64_t kyufu_node__call_remaining_ms(const struct kyufu_node_call *c)
{
    assert(c->call != NULL);
    if (!c->call->has_deadline) {
        return KYUFU_NODE_FORWARD_TIMEOUT_MS_DEFAULT;
    }
    uint64_t now = uv_now(&c->node->loop);
    if (c->call->deadline_ms <= now) {
        return 0;
    }
    return c->call->deadline_ms - now;
}

void kyufu_node__call_storage_error(struct kyufu_node_call *c,
                                    int rv,
                                    const char *what)
{
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s not found", what);
        kyufu_node__call_done(c, KYUFU_GRPC_NOT_FOUND, msg, NULL, 0);
        return;
    }
    if (rv == KYUFU_STORAGE_EINVALID) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              kyufu_storage_strerror(rv), NULL, 0);
        return;
    }
    struct kyufu_node *n = c->node;
    if (rv == KYUFU_STORAGE_EREADERS_FULL) {
        /* Load, not damage (storage.h): the caller retries later. */
        kyufu_log(KYUFU_LOG_WARN, "store busy: LMDB reader table full",
                  KYUFU_LOG_S("method", c->method->path));
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              kyufu_storage_strerror(rv), NULL, 0);
        return;
    }
    kyufu_log(KYUFU_LOG_ERROR, "storage query failed",
              KYUFU_LOG_S("method", c->method->path),
              KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
    kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL, kyufu_storage_strerror(rv),
                          NULL, 0);
    if (kyufu_storage_is_fatal(rv)) {
        kyufu_node__stop_storage(n, rv);
    }
}
