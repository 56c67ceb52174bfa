/* Upgrades: the leader records every voter's command-set version in the
 * replicated state, from which apply derives the cluster version
 * (storage.h "versions"; the operator's side in docs/operations.md
 * "Upgrades").
 *
 * Happy path: every KYUFU_NODE_VERSION_POLL_MS (after the first
 * KYUFU_NODE_VERSION_QUIET_TICKS of its term), a leader asks each other
 * voter of the Raft configuration (its API address from [cluster], or from
 * the configuration for a node added later: kyufu_node__peer_slot) for its
 * Cluster.Status (NodeStatus.command_version); once the
 * round is answered and every voter of the Raft configuration has a known
 * version (its own from this build), it compares them with the voters'
 * versions in the state and, when they differ, proposes
 * RecordVersions{voters} as the node itself (actor and client id
 * kyufu-node-<id>).  So a node restarted on a new build is recorded about
 * a second after it answers, and the cluster version rises once the last
 * voter runs the new build.
 *
 * Failure modes: a peer that does not answer (down, restarting, a build
 * older than versioning that has no command_version) leaves its version
 * unknown and nothing is recorded in that round: the cluster version never
 * rises on a guess.  A new term forgets what was learned.  A proposal that
 * fails is logged and tried again at a later round (its key is new each
 * time); a fatal glue error stops the node as for any write. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "availability.h"
#include "kyufu/v1/service.pb-c.h"
#include "limits.h"
#include "log.h"
#include "node.h"
#include "storage_limits.h"

_Static_assert(KYUFU_NODE_CLUSTER_SIZE_MAX <= KYUFU_VOTERS_MAX,
               "a RecordVersions can name every node [cluster] allows");

static void forget(struct kyufu_node_versions *v)
{
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        v->peers[i].version = 0;
        v->peers[i].id = 0;
    }
}

/* What this term's rounds learned of voter `id`: 0 when not known. */
static uint32_t learned(const struct kyufu_node_versions *v, uint64_t id)
{
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        if (v->peers[i].id == id) {
            return v->peers[i].version;
        }
    }
    return 0;
}

/* The voters' versions as this leader knows them: false when one is not
 * known. */
static bool voters_known(struct kyufu_node *n,
                         Kyufu__V1__NodeVersion *items,
                         size_t *n_items)
{
    uint64_t ids[KYUFU_VOTERS_MAX];
    size_t count = kyufu_glue_voters(n->glue, ids, KYUFU_VOTERS_MAX);
    if (count == 0 || count > KYUFU_VOTERS_MAX) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t version = 0;
        if (ids[i] == n->config->id) {
            version = kyufu_storage_command_version();
        } else {
            version = learned(&n->versions, ids[i]);
        }
        if (version == 0) {
            return false;
        }
        kyufu__v1__node_version__init(&items[i]);
        items[i].node_id = ids[i];
        items[i].command_version = version;
    }
    *n_items = count;
    return true;
}

static bool same_as_recorded(const Kyufu__V1__RecordVersions *rec,
                             const Kyufu__V1__NodeVersion *items,
                             size_t n_items)
{
    if (rec == NULL || rec->n_voters != n_items) {
        return false;
    }
    for (size_t i = 0; i < n_items; i++) {
        if (rec->voters[i]->node_id != items[i].node_id ||
            rec->voters[i]->command_version != items[i].command_version) {
            return false;
        }
    }
    return true;
}

static void on_recorded(struct kyufu_glue_propose *req,
                        int status,
                        Kyufu__V1__CommandResult *result)
{
    struct kyufu_node *n = req->data;
    n->versions.proposing = false;
    if (status != 0) {
        kyufu_log(KYUFU_LOG_WARN, "voter versions not recorded",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
        kyufu_node__check_fatal(n, status);
        return;
    }
    if (result->code != KYUFU__V1__CODE__OK) {
        kyufu_log(KYUFU_LOG_WARN, "voter versions not recorded",
                  KYUFU_LOG_S("error", result->message));
    } else {
        uint32_t cluster = 0;
        (void)kyufu_storage_cluster_version(n->storage, &cluster, NULL);
        kyufu_log(KYUFU_LOG_INFO, "voter versions recorded",
                  KYUFU_LOG_U("raft_index", result->raft_index),
                  KYUFU_LOG_U("cluster_version", cluster),
                  KYUFU_LOG_U("command_version",
                              kyufu_storage_command_version()));
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

static void maybe_record(struct kyufu_node *n)
{
    struct kyufu_node_versions *v = &n->versions;
    Kyufu__V1__NodeVersion items[KYUFU_VOTERS_MAX];
    Kyufu__V1__NodeVersion *ptrs[KYUFU_VOTERS_MAX];
    Kyufu__V1__RecordVersions *rec = NULL;
    size_t n_items = 0;
    uint32_t cluster = 0;

    if (v->proposing || n->stop_requested || !kyufu_glue_is_leader(n->glue) ||
        !voters_known(n, items, &n_items)) {
        return;
    }
    int rv = kyufu_storage_cluster_version(n->storage, &cluster, &rec);
    if (rv != 0) {
        if (kyufu_storage_is_fatal(rv)) {
            kyufu_log(KYUFU_LOG_ERROR, "fatal storage error in a query",
                      KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
            kyufu_node__stop_storage(n, rv);
        }
        return;
    }
    bool same = same_as_recorded(rec, items, n_items);
    kyufu__v1__record_versions__free_unpacked(rec, NULL);
    if (same) {
        return;
    }

    Kyufu__V1__RecordVersions body = KYUFU__V1__RECORD_VERSIONS__INIT;
    for (size_t i = 0; i < n_items; i++) {
        ptrs[i] = &items[i];
    }
    body.n_voters = n_items;
    body.voters = ptrs;
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS;
    cmd.record_versions = &body;

    v->propose.data = n;
    rv = kyufu_node__propose_system(n, &v->propose, &cmd, &v->seq_last,
                                    on_recorded);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_WARN, "voter versions not recorded",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(rv)));
        kyufu_node__check_fatal(n, rv);
        return;
    }
    v->proposing = true;
}

static void on_peer_status(struct kyufu_grpc_client_req *req,
                           int status,
                           const char *message,
                           const uint8_t *response,
                           size_t response_len)
{
    struct kyufu_node_version_peer *p = req->data;
    struct kyufu_node *n = p->node;
    (void)message;
    p->version = 0;
    if (status == KYUFU_GRPC_OK) {
        Kyufu__V1__NodeStatus *st = kyufu__v1__node_status__unpack(
            NULL, response_len,
            response_len > 0 ? response : (const uint8_t *)"");
        if (st != NULL) {
            p->version = st->command_version;
            kyufu__v1__node_status__free_unpacked(st, NULL);
        }
    }
    assert(n->versions.pending > 0);
    if (--n->versions.pending == 0 && n->stage == KYUFU_NODE_RUNNING) {
        maybe_record(n);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    struct kyufu_node_versions *v = &n->versions;
    const struct kyufu_config *c = n->config;
    if (n->stage != KYUFU_NODE_RUNNING || n->stop_requested ||
        n->glue == NULL || !kyufu_glue_is_leader(n->glue)) {
        forget(v);
        return;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (st.term != v->term) {
        /* A new leader first settles in (the hand-over's writes, new
         * connections to its peers): the first round waits a few ticks. */
        forget(v);
        v->term = st.term;
        v->quiet_ticks = KYUFU_NODE_VERSION_QUIET_TICKS;
    }
    if (v->quiet_ticks > 0) {
        v->quiet_ticks--;
        return;
    }
    if (v->pending > 0) {
        return; /* the last round is still out */
    }
    /* Count first: a call that fails to start must not end the round while
     * others are still to be sent. */
    v->pending = 1;
    uint64_t ids[KYUFU_VOTERS_MAX];
    size_t count = kyufu_glue_voters(n->glue, ids, KYUFU_VOTERS_MAX);
    size_t next = 0;
    forget(v);
    for (size_t i = 0; i < count && i < KYUFU_VOTERS_MAX; i++) {
        if (ids[i] == c->id || next == KYUFU_NODE_CLUSTER_SIZE_MAX) {
            continue;
        }
        struct kyufu_node_version_peer *p = &v->peers[next++];
        p->id = ids[i];
        const char *api = NULL;
        int slot = kyufu_node__peer_slot(n, ids[i], &api);
        p->node = n;
        p->req.data = p;
        /* No API address known, or no call: its version stays unknown. */
        if (slot >= 0 &&
            kyufu_node__ask_status(n, (size_t)slot, &p->req,
                                   KYUFU_NODE_VERSION_ASK_MS,
                                   on_peer_status) == 0) {
            v->pending++;
        }
    }
    if (--v->pending == 0) {
        maybe_record(n); /* a cluster of one, or no peer reachable */
    }
}

void kyufu_node__versions_start(struct kyufu_node *n)
{
    n->versions.timer.data = n;
    int rv = uv_timer_start(&n->versions.timer, on_tick,
                            KYUFU_NODE_VERSION_POLL_MS,
                            KYUFU_NODE_VERSION_POLL_MS);
    assert(rv == 0);
    (void)rv;
}

void kyufu_node__versions_close(struct kyufu_node *n)
{
    uv_close((uv_handle_t *)&n->versions.timer, NULL);
}
