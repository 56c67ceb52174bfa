/* kyufu.v1.Cluster AddNode / RemoveNode, and the member list of Status
 * (docs/operations.md "Replacing a node").
 *
 * Happy path: the call reaches the leader (a follower forwards it, as a
 * write) -> the request is checked here (ids, HOST:PORT addresses, bounds)
 * -> raft-glue runs the change (a join: spare -> standby -> caught up ->
 * voter, never in the quorum before it has the log) -> the answer lists
 * the configuration after it.
 *
 * Failure modes: every refusal before the glue starts changes nothing
 * (INVALID_ARGUMENT, ALREADY_EXISTS, NOT_FOUND, FAILED_PRECONDITION).  A
 * join that does not catch up in time answers DEADLINE_EXCEEDED and leaves
 * the node a standby (it does not vote: the quorum is as before); the same
 * AddNode again resumes it.  Leadership lost during a change: UNAVAILABLE
 * (the change may or may not have been made: read Status.members, or call
 * again, which is idempotent for a join). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "glue_limits.h"
#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "service.h"

void kyufu_node__members(struct kyufu_node *n, struct kyufu_node_members *out)
{
    memset(out, 0, sizeof *out);
    out->own_role = "";
    if (n->glue == NULL) {
        return;
    }
    size_t all = kyufu_glue_members(n->glue, out->g, KYUFU_NODE_CLUSTER_SIZE_MAX);
    out->n = all < KYUFU_NODE_CLUSTER_SIZE_MAX ? all : KYUFU_NODE_CLUSTER_SIZE_MAX;
    for (size_t i = 0; i < out->n; i++) {
        struct kyufu_glue_member *g = &out->g[i];
        Kyufu__V1__Member *m = &out->m[i];
        kyufu__v1__member__init(m);
        m->id = g->id;
        m->role = (char *)kyufu_glue_role_name(g->role);
        m->raft_address = g->raft_address;
        const char *api = g->api_address;
        if (api[0] == '\0') {
            const struct kyufu_config_peer *p = kyufu_config_peer(n->config, g->id);
            api = p != NULL ? p->api_address : "";
        }
        m->api_address = (char *)api;
        m->match_index = g->match_index;
        out->p[i] = m;
        if (g->id == n->config->id) {
            out->own_role = m->role;
        }
    }
}

bool kyufu_node__is_member(struct kyufu_node *n, uint64_t id)
{
    if (n->glue == NULL) {
        return false;
    }
    struct kyufu_glue_member m[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t nm = kyufu_glue_members(n->glue, m, KYUFU_NODE_CLUSTER_SIZE_MAX);
    for (size_t i = 0; i < nm && i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        if (m[i].id == id) {
            return true;
        }
    }
    return false;
}

bool kyufu_node__is_voter(struct kyufu_node *n, uint64_t id)
{
    struct kyufu_node_members ms;
    kyufu_node__members(n, &ms);
    for (size_t i = 0; i < ms.n; i++) {
        if (ms.g[i].id == id) {
            return ms.g[i].role == KYUFU_GLUE_ROLE_VOTER;
        }
    }
    return false;
}

static void answer_members(struct kyufu_node_call *c)
{
    struct kyufu_node_members ms;
    kyufu_node__members(c->node, &ms);
    Kyufu__V1__MembershipResponse resp = KYUFU__V1__MEMBERSHIP_RESPONSE__INIT;
    resp.n_members = ms.n;
    resp.members = ms.p;
    kyufu_node__call_done_msg(c, &resp.base);
}

/* An address a node's config would accept, as raft-glue dials it. */
static bool address_ok(const char *s)
{
    return s != NULL && strlen(s) <= KYUFU_NODE_ADDRESS_BYTES_MAX &&
           kyufu_glue_address_ok(s);
}

static void change_failed(struct kyufu_node_call *c, int status, uint64_t id,
                          bool join)
{
    char msg[256];
    struct kyufu_node *n = c->node;
    switch (status) {
    case KYUFU_GLUE_ENOTCAUGHTUP:
        snprintf(msg, sizeof msg,
                 "node %llu did not catch up in time: it stays a standby (not "
                 "in the quorum); run add-node again to resume, or "
                 "remove-node it",
                 (unsigned long long)id);
        kyufu_node__call_done(c, KYUFU_GRPC_DEADLINE_EXCEEDED, msg, NULL, 0);
        return;
    case KYUFU_GLUE_ENOTFOUND:
        snprintf(msg, sizeof msg, "node %llu %s", (unsigned long long)id,
                 join ? "was removed while it joined" : "is not a member");
        kyufu_node__call_done(c, join ? KYUFU_GRPC_FAILED_PRECONDITION
                                      : KYUFU_GRPC_NOT_FOUND,
                              msg, NULL, 0);
        return;
    case KYUFU_GLUE_EUNREACHABLE:
        snprintf(msg, sizeof msg,
                 "removing node %llu would leave voters of which too few "
                 "answer to commit anything (the cluster would stop): bring "
                 "the others back first, or remove a node that is down",
                 (unsigned long long)id);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, msg, NULL, 0);
        return;
    case KYUFU_GLUE_EBUSY:
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "another membership change is running; try "
                              "again once it has finished",
                              NULL, 0);
        return;
    default:
        snprintf(msg, sizeof msg, "membership change of node %llu: %s (it "
                 "may or may not have been made: see cluster status)",
                 (unsigned long long)id, kyufu_glue_strerror(status));
        kyufu_node__call_unavailable(c, msg);
        kyufu_node__check_fatal(n, status);
        return;
    }
}

/* ------------------------------------------------------------ AddNode */


static void on_added(struct kyufu_glue_change *req, int status)
{
    struct kyufu_node_call *c = req->data;
    const Kyufu__V1__AddNodeRequest *r = c->request;
    uint64_t id = r->id;
    if (status != 0) {
        kyufu_log(KYUFU_LOG_WARN, "node not added", KYUFU_LOG_U("node", id),
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
        change_failed(c, status, id, true);
        return;
    }
    kyufu_log(KYUFU_LOG_INFO, "node added as a voter", KYUFU_LOG_U("node", id),
              KYUFU_LOG_S("raft_address", r->raft_address),
              KYUFU_LOG_S("api_address", r->api_address));
    answer_members(c);
}

void kyufu_node__add_node(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__AddNodeRequest *r = c->request;
    char msg[512];
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    if (r->id == 0 || r->id > KYUFU_NODE_ID_MAX) {
        snprintf(msg, sizeof msg, "id must be 1..%u", KYUFU_NODE_ID_MAX);
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        return;
    }
    if (!address_ok(r->raft_address) || !address_ok(r->api_address)) {
        snprintf(msg, sizeof msg,
                 "raft_address and api_address must be HOST:PORT (an IPv4 "
                 "address or a DNS name, port 1..65535, at most %u bytes)",
                 KYUFU_NODE_ADDRESS_BYTES_MAX);
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        return;
    }
    if (strcmp(r->raft_address, r->api_address) == 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "raft_address and api_address must differ", NULL,
                              0);
        return;
    }
    if (r->catch_up_timeout_ms != 0 &&
        (r->catch_up_timeout_ms < KYUFU_JOIN_CATCH_UP_MS_MIN ||
         r->catch_up_timeout_ms > KYUFU_JOIN_CATCH_UP_MS_MAX)) {
        snprintf(msg, sizeof msg, "catch_up_timeout_ms must be 0 or %u..%u",
                 KYUFU_JOIN_CATCH_UP_MS_MIN, KYUFU_JOIN_CATCH_UP_MS_MAX);
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        return;
    }
    /* The precise refusal, said in the operator's terms (the glue checks
     * the same again). */
    struct kyufu_node_members ms;
    kyufu_node__members(n, &ms);
    bool present = false;
    for (size_t i = 0; i < ms.n; i++) {
        const Kyufu__V1__Member *m = &ms.m[i];
        if (m->id == r->id) {
            present = true;
            if (ms.g[i].role == KYUFU_GLUE_ROLE_VOTER) {
                snprintf(msg, sizeof msg, "node %llu is already a voter",
                         (unsigned long long)r->id);
            } else if (strcmp(m->raft_address, r->raft_address) != 0) {
                snprintf(msg, sizeof msg,
                         "node %llu is already a %s at %s (remove it first to "
                         "move it)",
                         (unsigned long long)r->id, m->role, m->raft_address);
            } else {
                continue; /* a standby or spare at the same address: resume */
            }
        } else if (strcmp(m->raft_address, r->raft_address) == 0 ||
                   strcmp(m->api_address, r->api_address) == 0 ||
                   strcmp(m->raft_address, r->api_address) == 0 ||
                   strcmp(m->api_address, r->raft_address) == 0) {
            snprintf(msg, sizeof msg, "an address of node %llu is node %llu's",
                     (unsigned long long)r->id, (unsigned long long)m->id);
        } else {
            continue;
        }
        kyufu_node__call_done(c, KYUFU_GRPC_ALREADY_EXISTS, msg, NULL, 0);
        return;
    }
    if (!present && ms.n >= KYUFU_NODE_CLUSTER_SIZE_MAX) {
        snprintf(msg, sizeof msg, "the cluster has %zu members, the most "
                 "kyufu supports", ms.n);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, msg, NULL, 0);
        return;
    }
    struct kyufu_glue_peer peer = {
        .id = r->id,
        .address = r->raft_address,
        .api_address = r->api_address,
    };
    c->req.change.data = c;
    int rv = kyufu_glue_add(n->glue, &c->req.change, &peer,
                            r->catch_up_timeout_ms, on_added);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward(c);
        return;
    }
    if (rv == KYUFU_GLUE_EEXISTS) {
        kyufu_node__call_done(c, KYUFU_GRPC_ALREADY_EXISTS,
                              kyufu_glue_strerror(rv), NULL, 0);
        return;
    }
    if (rv == KYUFU_GLUE_EINVALID) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              kyufu_glue_strerror(rv), NULL, 0);
        return;
    }
    if (rv != 0) {
        change_failed(c, rv, r->id, true);
        return;
    }
    kyufu_log(KYUFU_LOG_INFO, "adding a node", KYUFU_LOG_U("node", r->id),
              KYUFU_LOG_S("raft_address", r->raft_address),
              KYUFU_LOG_S("api_address", r->api_address));
}

/* --------------------------------------------------------- RemoveNode */

static void on_removed(struct kyufu_glue_change *req, int status)
{
    struct kyufu_node_call *c = req->data;
    const Kyufu__V1__RemoveNodeRequest *r = c->request;
    if (status != 0) {
        change_failed(c, status, r->id, false);
        return;
    }
    kyufu_log(KYUFU_LOG_INFO, "node removed", KYUFU_LOG_U("node", r->id));
    answer_members(c);
}

void kyufu_node__remove_node(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__RemoveNodeRequest *r = c->request;
    char msg[256];
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    if (r->id == 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "id must be a member's id (> 0)", NULL, 0);
        return;
    }
    c->req.change.data = c;
    int rv = kyufu_glue_remove(n->glue, &c->req.change, r->id, on_removed);
    switch (rv) {
    case 0:
        kyufu_log(KYUFU_LOG_INFO, "removing a node", KYUFU_LOG_U("node", r->id));
        return;
    case KYUFU_GLUE_ENOTLEADER:
        kyufu_node__forward(c);
        return;
    case KYUFU_GLUE_EINVALID:
        snprintf(msg, sizeof msg,
                 "node %llu is the leader: transfer leadership first "
                 "(kyufuctl cluster transfer-leadership)",
                 (unsigned long long)r->id);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, msg, NULL, 0);
        return;
    case KYUFU_GLUE_EQUORUM:
        snprintf(msg, sizeof msg,
                 "removing voter %llu would leave fewer than %u voters",
                 (unsigned long long)r->id, KYUFU_VOTERS_MIN);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, msg, NULL, 0);
        return;
    default:
        change_failed(c, rv, r->id, false);
        return;
    }
}
