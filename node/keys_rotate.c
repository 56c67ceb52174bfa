/* Data-key rotation on the node (docs/encryption.md "Rotation"): the
 * leader's background re-encryption, Cluster.GetKeyStatus, and what the
 * metrics show.  The rotation itself is an operator's write
 * (Cluster.RotateKeys, service.c's table; applied by storage/apply_keys.c).
 *
 * Happy path: every KYUFU_NODE_REENCRYPT_TICK_MS each node reads the
 * replicated rotation record (its cursor) into n->rotate for the metrics;
 * a leader whose record is not done proposes one Reencrypt step at the
 * cursor for the rate's share of the tick ([keys] reencrypt_records_per_s),
 * as the node itself (actor and key client id kyufu-node-<id>), one step
 * in flight at a time.  The cursor is replicated, so a new leader goes on
 * where the old one stopped, after KYUFU_NODE_REENCRYPT_QUIET_TICKS.
 *
 * Failure modes: a step refused as stale (a leader change raced it) is
 * logged at debug and the next tick reads the cursor again; a proposal
 * that fails is logged and tried again at a later tick; a fatal glue error
 * stops the node as for any write; a storage error reading the record is
 * logged and the tick skipped (nothing proposed on a guess). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "availability.h"
#include "limits.h"
#include "log.h"
#include "node.h"
#include "offload.h"
#include "storage_limits.h"

/* One step's share of the rate: count per tick, at least one. */
static uint32_t step_count(const struct kyufu_config *c)
{
    uint64_t n = (uint64_t)c->keys_reencrypt_per_s *
                 KYUFU_NODE_REENCRYPT_TICK_MS / 1000u;
    if (n == 0) {
        n = 1;
    }
    return n > KYUFU_REENCRYPT_COUNT_MAX ? KYUFU_REENCRYPT_COUNT_MAX
                                         : (uint32_t)n;
}

static void on_step(struct kyufu_glue_propose *req,
                    int status,
                    Kyufu__V1__CommandResult *result)
{
    struct kyufu_node *n = req->data;
    n->rotate.proposing = false;
    if (status != 0) {
        kyufu_log(KYUFU_LOG_WARN, "re-encryption step not applied",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
        kyufu_node__check_fatal(n, status);
        return;
    }
    if (result->code != KYUFU__V1__CODE__OK) {
        /* A leader change raced the cursor: the next tick reads it. */
        kyufu_log(KYUFU_LOG_DEBUG, "re-encryption step refused",
                  KYUFU_LOG_S("error", result->message));
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

static void propose_step(struct kyufu_node *n, const Kyufu__V1__KeyRotation *r)
{
    struct kyufu_node_rotate *x = &n->rotate;
    Kyufu__V1__Reencrypt body = KYUFU__V1__REENCRYPT__INIT;
    body.version = r->version;
    body.db = r->db;
    body.from_key = r->next_key;
    body.count = step_count(n->config);
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_REENCRYPT;
    cmd.reencrypt = &body;
    x->propose.data = n;
    int rv = kyufu_node__propose_system(n, &x->propose, &cmd, &x->seq_last,
                                        on_step);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_WARN, "re-encryption step not applied",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(rv)));
        kyufu_node__check_fatal(n, rv);
        return;
    }
    x->proposing = true;
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    struct kyufu_node_rotate *x = &n->rotate;
    if (n->stage != KYUFU_NODE_RUNNING || n->stop_requested ||
        n->glue == NULL || !kyufu_storage_keys_present(n->storage)) {
        return;
    }
    Kyufu__V1__KeyRotation *r = NULL;
    int rv = kyufu_storage_key_rotation(n->storage, &r, NULL);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        x->read_once = true;
        return;
    }
    if (rv != 0) {
        if (kyufu_storage_is_fatal(rv)) {
            /* A damaged record stops the node, as it does in a query,
             * instead of a warning every tick. */
            kyufu_log(KYUFU_LOG_ERROR, "cannot read the key rotation",
                      KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
            kyufu_node__stop_storage(n, rv);
            return;
        }
        kyufu_log(KYUFU_LOG_WARN, "cannot read the key rotation",
                  KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
        return;
    }
    bool finished = r->done && x->version == r->version && !x->done;
    if (x->read_once && x->version != r->version &&
        strcmp(r->rotated_by, KYUFU_STORAGE_SEAL_LIMIT_ACTOR) == 0) {
        /* Not at start: a rotation read then happened before. */
        kyufu_log(KYUFU_LOG_WARN, "data keys rotated at the seal limit",
                  KYUFU_LOG_U("key_version", r->version),
                  KYUFU_LOG_U("raft_index", r->rotated_index));
    }
    x->read_once = true;
    x->version = r->version;
    x->done = r->done;
    x->resealed = r->resealed;
    if (finished && kyufu_glue_is_leader(n->glue)) {
        kyufu_log(KYUFU_LOG_INFO, "re-encryption done",
                  KYUFU_LOG_U("key_version", r->version),
                  KYUFU_LOG_U("resealed", r->resealed),
                  KYUFU_LOG_U("raft_index", r->done_index));
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (!kyufu_glue_is_leader(n->glue)) {
        x->term = 0;
    } else if (st.term != x->term) {
        /* A new leader settles in first, as for the voters' versions. */
        x->term = st.term;
        x->quiet_ticks = KYUFU_NODE_REENCRYPT_QUIET_TICKS;
    } else if (x->quiet_ticks > 0) {
        x->quiet_ticks--;
    } else if (!r->done && !x->proposing) {
        propose_step(n, r);
    }
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
}

void kyufu_node__rotate_start(struct kyufu_node *n)
{
    n->rotate.timer.data = n;
    int rv = uv_timer_start(&n->rotate.timer, on_tick,
                            KYUFU_NODE_REENCRYPT_TICK_MS,
                            KYUFU_NODE_REENCRYPT_TICK_MS);
    assert(rv == 0);
    (void)rv;
}

void kyufu_node__rotate_close(struct kyufu_node *n)
{
    uv_close((uv_handle_t *)&n->rotate.timer, NULL);
}

/* Answer GetKeyStatus from this node's store: the census when given (of
 * the state at applied_index, its snapshot's), else none. */
static void answer_key_status(struct kyufu_node_call *c,
                              const struct kyufu_storage_key_census *census,
                              uint64_t census_index)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__KeyStatus out = KYUFU__V1__KEY_STATUS__INIT;
    Kyufu__V1__KeyRotation *r = NULL;
    Kyufu__V1__KeyVersionCount *items = NULL;
    Kyufu__V1__KeyVersionCount **ptrs = NULL;
    const char *cursor_db = "";
    out.encrypted = kyufu_storage_keys_present(n->storage);
    out.active_version = kyufu_storage_keys_active(n->storage);
    if (out.encrypted) {
        struct kyufu_storage_key_seals seals;
        int srv = kyufu_storage_key_seals(n->storage, &seals);
        if (srv != 0) {
            kyufu_node__call_storage_error(c, srv, "seal count");
            return;
        }
        out.seals_counted = seals.counted;
        out.seals = seals.count;
        out.seal_limit = seals.limit;
    }
    uint64_t term = 0;
    kyufu_storage_applied(n->storage, &out.applied_index, &term);
    int rv = kyufu_storage_key_rotation(n->storage, &r, &cursor_db);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        kyufu_node__call_storage_error(c, rv, "key rotation");
        return;
    }
    out.rotation = r;
    out.cursor_db = (char *)cursor_db;
    if (census != NULL) {
        out.applied_index = census_index;
        items = calloc(census->n > 0 ? census->n : 1, sizeof *items);
        ptrs = calloc(census->n > 0 ? census->n : 1, sizeof *ptrs);
        if (items == NULL || ptrs == NULL) {
            kyufu_node__call_storage_error(c, KYUFU_STORAGE_ENOMEM,
                                           "key census");
            goto out;
        }
        for (size_t i = 0; i < census->n; i++) {
            kyufu__v1__key_version_count__init(&items[i]);
            items[i].version = census->items[i].version;
            items[i].values = census->items[i].values;
            ptrs[i] = &items[i];
        }
        out.census = ptrs;
        out.n_census = census->n;
    }
    kyufu_node__call_done_msg(c, &out.base);
out:
    free(items);
    free(ptrs);
    if (r != NULL) {
        kyufu__v1__key_rotation__free_unpacked(r, NULL);
    }
}

/* The census walks every sealed value (about a second per million): off
 * the loop thread, in a snapshot (offload.h), as the digest and the audit
 * check are; called on every node at once by `kyufuctl key status
 * --census`, on the loop it would stall Raft on all of them. */
struct census_work
{
    struct kyufu_node_offload o; /* first */
    struct kyufu_storage_key_census census;
    uint64_t index;
    int rv;
};

static void census_run(struct kyufu_node_offload *o)
{
    struct census_work *w = (struct census_work *)o;
    uint64_t term;
    kyufu_storage_snapshot_applied(o->snap, &w->index, &term);
    w->rv = kyufu_storage_snapshot_key_census(o->snap, &w->census);
}

static void census_done(struct kyufu_node_offload *o)
{
    struct census_work *w = (struct census_work *)o;
    if (w->rv != 0) {
        kyufu_node__call_storage_error(o->call, w->rv, "key census");
    } else {
        answer_key_status(o->call, &w->census, w->index);
    }
    kyufu_storage_key_census_free(&w->census);
}

void kyufu_node__get_key_status(struct kyufu_node_call *c)
{
    const Kyufu__V1__GetKeyStatusRequest *req = c->request;
    if (!req->census) {
        answer_key_status(c, NULL, 0);
        return;
    }
    kyufu_node__offload(c, sizeof(struct census_work), census_run,
                        census_done, "key census");
}
