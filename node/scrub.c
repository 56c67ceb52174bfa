/* Scrub: see scrub.h and docs/scrub.md. */
#include "scrub.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "auth_token.h"
#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "node.h"
#include "service.h"

#define METHOD "/kyufu.v1.NodeInternal/ScrubDigests"

static bool leading(struct kyufu_node *n)
{
    return n->stage == KYUFU_NODE_RUNNING && !n->stop_requested &&
           n->glue != NULL && kyufu_glue_is_leader(n->glue);
}

/* ------------------------------------------------------------ the mark */

static void on_proposed(struct kyufu_glue_propose *req, int status,
                        Kyufu__V1__CommandResult *r)
{
    struct kyufu_node *n = req->data;
    n->scrub.proposing = false;
    if (status == 0 && r->code != KYUFU__V1__CODE__OK) {
        kyufu_log(KYUFU_LOG_WARN, "scrub mark refused",
                  KYUFU_LOG_S("message", r->message));
    }
    if (r != NULL) {
        kyufu__v1__command_result__free_unpacked(r, NULL);
    }
    kyufu_node__check_fatal(n, status);
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    uint32_t version = 0;
    if (!leading(n) || n->scrub.proposing ||
        kyufu_storage_cluster_version(n->storage, &version, NULL) != 0 ||
        version < KYUFU_STORAGE_SCRUB_SINCE) {
        /* A cluster still upgrading: a replica of an older build would
         * take the mark for an unknown command (and audit it). */
        return;
    }
    Kyufu__V1__ScrubMark m = KYUFU__V1__SCRUB_MARK__INIT;
    m.leader_id = n->config->id;
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_SCRUB_MARK;
    cmd.scrub_mark = &m;
    n->scrub.propose.data = n;
    if (kyufu_node__propose_own(n, &n->scrub.propose, &cmd, on_proposed) ==
        0) {
        n->scrub.proposing = true;
    }
}

/* ------------------------------------------------------------ compare */

static void compare_end(struct kyufu_node *n)
{
    n->scrub.comparing = false;
    uv_timer_stop(&n->scrub.ask_timer);
}

static void decide(struct kyufu_node *n, bool final)
{
    struct kyufu_node_scrub *s = &n->scrub;
    uint64_t ids[KYUFU_NODE_CLUSTER_SIZE_MAX];
    uint8_t others[KYUFU_NODE_CLUSTER_SIZE_MAX][32];
    size_t n_others = 0;
    bool own_voter = false;
    size_t n_voters =
        kyufu_glue_voters(n->glue, ids, KYUFU_NODE_CLUSTER_SIZE_MAX);
    if (n_voters > KYUFU_NODE_CLUSTER_SIZE_MAX) {
        n_voters = KYUFU_NODE_CLUSTER_SIZE_MAX;
    }
    bool differs = false;
    size_t agreeing = 0; /* other voters with this node's digest */
    uint64_t odd = 0;    /* a voter whose digest differs */
    for (size_t v = 0; v < n_voters; v++) {
        if (ids[v] == n->config->id) {
            own_voter = true;
            continue;
        }
        for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
            const struct kyufu_node_scrub_peer *p = &s->peers[i];
            if (p->id == ids[v] && p->have) {
                memcpy(others[n_others++], p->digest, 32);
                if (memcmp(p->digest, s->own.digest, 32) != 0) {
                    differs = true;
                    odd = p->id;
                } else {
                    agreeing++;
                }
            }
        }
    }
    uint8_t majority[32];
    enum kyufu_node_scrub_verdict v = kyufu_node__scrub_verdict(
        own_voter ? s->own.digest : NULL, (const uint8_t(*)[32])others,
        n_others, n_voters, majority);
    if (!own_voter && v == KYUFU_NODE_SCRUB_CORRUPT &&
        memcmp(majority, s->own.digest, 32) == 0) {
        v = KYUFU_NODE_SCRUB_PASS; /* a standby that agrees */
    }
    char own_hex[65];
    char maj_hex[65];
    kyufu_node__hex_encode(s->own.digest, 32, own_hex);
    switch (v) {
    case KYUFU_NODE_SCRUB_WAIT:
        if (!final) {
            return;
        }
        s->inconclusive++;
        kyufu_log(KYUFU_LOG_WARN,
                  "scrub inconclusive: too few voters answered their digest "
                  "in time",
                  KYUFU_LOG_U("index", s->own.index),
                  KYUFU_LOG_U("answered", n_others + (own_voter ? 1 : 0)),
                  KYUFU_LOG_U("voters", n_voters));
        break;
    case KYUFU_NODE_SCRUB_PASS:
        if (differs) {
            s->mismatches++;
            kyufu_log(KYUFU_LOG_WARN,
                      "scrub: a voter's state digest differs from the "
                      "majority (that node stops)",
                      KYUFU_LOG_U("node", odd),
                      KYUFU_LOG_U("index", s->own.index),
                      KYUFU_LOG_S("digest", own_hex));
        } else if (n_others + (own_voter ? 1 : 0) < n_voters && !final) {
            return; /* wait a little for the rest, to see a minority */
        }
        s->passed++;
        kyufu_log(KYUFU_LOG_INFO, "scrub passed: the state digest agrees "
                  "with a majority of the voters",
                  KYUFU_LOG_U("index", s->own.index),
                  KYUFU_LOG_S("digest", own_hex),
                  KYUFU_LOG_U("agreeing", agreeing + (own_voter ? 1 : 0)),
                  KYUFU_LOG_U("voters", n_voters));
        break;
    case KYUFU_NODE_SCRUB_CORRUPT:
        kyufu_node__hex_encode(majority, 32, maj_hex);
        s->mismatches++;
        s->corrupt = true;
        kyufu_log(KYUFU_LOG_ERROR,
                  "CORRUPT: this node's state differs from the majority of "
                  "the voters at the same index: its store is damaged; "
                  "repair or replace the node (docs/scrub.md)",
                  KYUFU_LOG_U("index", s->own.index),
                  KYUFU_LOG_S("digest", own_hex),
                  KYUFU_LOG_S("majority_digest", maj_hex));
        kyufu_node__stop(n, KYUFU_NODE_EXIT_REFUSED_DATA,
                         "the store differs from the majority (scrub)");
        break;
    case KYUFU_NODE_SCRUB_NO_MAJORITY:
        s->mismatches++;
        s->no_majority++;
        kyufu_log(KYUFU_LOG_ERROR,
                  "scrub: the voters' state digests differ and no digest "
                  "has a majority; check every node (docs/scrub.md)",
                  KYUFU_LOG_U("index", s->own.index),
                  KYUFU_LOG_S("digest", own_hex),
                  KYUFU_LOG_U("voters", n_voters));
        break;
    }
    compare_end(n);
}

static void on_answer(struct kyufu_grpc_client_req *req, int status,
                      const char *message, const uint8_t *response,
                      size_t response_len)
{
    struct kyufu_node_scrub_peer *p = req->data;
    struct kyufu_node *n = p->node;
    p->busy = false;
    if (n->stop_requested || !n->scrub.comparing) {
        return;
    }
    if (status != KYUFU_GRPC_OK) {
        kyufu_log(KYUFU_LOG_DEBUG, "scrub: a voter did not answer its digest",
                  KYUFU_LOG_U("node", p->id),
                  KYUFU_LOG_S("status", kyufu_grpc_status_name(status)),
                  KYUFU_LOG_S("detail", message));
        return;
    }
    char why[120];
    bool found;
    uint8_t digest[32];
    if (!kyufu_node__scrub_parse_answer(response, response_len, p->id,
                                        n->scrub.own.index, &found, digest,
                                        why, sizeof why)) {
        n->scrub.bad_answers++;
        kyufu_log(KYUFU_LOG_WARN, "scrub: a voter's answer is malformed; "
                  "ignored", KYUFU_LOG_U("node", p->id),
                  KYUFU_LOG_S("detail", why));
        return;
    }
    if (found) {
        memcpy(p->digest, digest, 32);
        p->have = true;
        decide(n, false);
    }
}

static void ask(struct kyufu_node *n)
{
    struct kyufu_node_scrub *s = &n->scrub;
    uint64_t ids[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t n_voters =
        kyufu_glue_voters(n->glue, ids, KYUFU_NODE_CLUSTER_SIZE_MAX);
    if (n_voters > KYUFU_NODE_CLUSTER_SIZE_MAX) {
        n_voters = KYUFU_NODE_CLUSTER_SIZE_MAX;
    }
    for (size_t v = 0; v < n_voters; v++) {
        if (ids[v] == n->config->id) {
            continue;
        }
        struct kyufu_node_scrub_peer *p = NULL;
        for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX && p == NULL; i++) {
            if (s->peers[i].id == ids[v]) {
                p = &s->peers[i];
            }
        }
        for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX && p == NULL; i++) {
            if (s->peers[i].id == 0 && !s->peers[i].busy) {
                p = &s->peers[i];
                p->id = ids[v];
                p->have = false;
            }
        }
        if (p == NULL || p->have || p->busy) {
            continue;
        }
        const char *api;
        char errmsg[200];
        int slot = kyufu_node__peer_slot(n, p->id, &api);
        struct kyufu_grpc_client *client =
            slot < 0 ? NULL
                     : kyufu_node__peer_client(n, (size_t)slot, errmsg,
                                               sizeof errmsg);
        if (client == NULL) {
            continue;
        }
        p->node = n;
        p->req.data = p;
        static const uint8_t empty[1];
        if (kyufu_grpc_client_call(client, &p->req, METHOD, empty, 0,
                                   KYUFU_NODE_SCRUB_ASK_TIMEOUT_MS, NULL, 0,
                                   on_answer) == 0) {
            p->busy = true;
        }
    }
}

static void on_ask(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    if (!n->scrub.comparing || n->stop_requested) {
        compare_end(n);
        return;
    }
    if (uv_now(&n->loop) >= n->scrub.compare_until) {
        decide(n, true);
        return;
    }
    ask(n);
}

static void compare_begin(struct kyufu_node *n)
{
    struct kyufu_node_scrub *s = &n->scrub;
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        /* A call still out for the previous index is left to finish; its
         * slot is taken again only once it has. */
        s->peers[i].have = false;
        if (!s->peers[i].busy) {
            s->peers[i].id = 0;
        }
    }
    s->comparing = true;
    s->compare_until = uv_now(&n->loop) + KYUFU_NODE_SCRUB_COMPARE_MS;
    ask(n);
    uv_timer_start(&s->ask_timer, on_ask, KYUFU_NODE_SCRUB_ASK_MS,
                   KYUFU_NODE_SCRUB_ASK_MS);
}

/* ------------------------------------------------------------ the digest */

static void work_cb(uv_work_t *w)
{
    struct kyufu_node *n = w->data;
    struct kyufu_node_scrub *s = &n->scrub;
    s->work_rv = kyufu_storage_snapshot_digest(s->snap, s->work_digest,
                                               &s->work_applied);
    kyufu_storage_snapshot_end(s->snap);
    s->snap = NULL;
}

static void keep(struct kyufu_node_scrub *s)
{
    if (s->n_kept == KYUFU_NODE_SCRUB_KEEP) {
        memmove(&s->kept[0], &s->kept[1],
                (KYUFU_NODE_SCRUB_KEEP - 1) * sizeof s->kept[0]);
        s->n_kept--;
    }
    s->kept[s->n_kept++] = s->own;
}

static void after_cb(uv_work_t *w, int status)
{
    struct kyufu_node *n = w->data;
    struct kyufu_node_scrub *s = &n->scrub;
    (void)status; /* nothing calls uv_cancel */
    s->working = false;
    if (n->finish_waiting) {
        kyufu_node__finish(n); /* the stop waited for this digest */
        return;
    }
    if (n->stop_requested) {
        return;
    }
    if (s->work_rv != 0) {
        if (s->work_rv == KYUFU_STORAGE_ECORRUPT) {
            s->corrupt = true;
            kyufu_log(KYUFU_LOG_ERROR,
                      "CORRUPT: the store cannot be read to its end for the "
                      "scrub: it is damaged; repair or replace the node "
                      "(docs/scrub.md)",
                      KYUFU_LOG_U("index", s->work_index),
                      KYUFU_LOG_S("error", kyufu_storage_strerror(s->work_rv)));
            kyufu_node__stop(n, KYUFU_NODE_EXIT_REFUSED_DATA,
                             "the store cannot be read (scrub)");
        } else if (kyufu_storage_is_fatal(s->work_rv)) {
            /* An I/O error: a failure (exit 1), as in any other query. */
            kyufu_log(KYUFU_LOG_ERROR, "fatal storage error in a query",
                      KYUFU_LOG_S("what", "scrub digest"),
                      KYUFU_LOG_S("error", kyufu_storage_strerror(s->work_rv)));
            kyufu_node__stop_storage(n, s->work_rv);
        } else {
            s->skipped++;
            kyufu_log(KYUFU_LOG_WARN, "scrub skipped: the digest failed",
                      KYUFU_LOG_U("index", s->work_index),
                      KYUFU_LOG_S("error", kyufu_storage_strerror(s->work_rv)));
        }
        return;
    }
    assert(s->work_applied == s->work_index);
    if (s->comparing) {
        decide(n, true); /* the previous index: what it has by now */
        if (n->stop_requested) {
            return;
        }
    }
    s->own.index = s->work_index;
    memcpy(s->own.digest, s->work_digest, 32);
    keep(s);
    s->done++;
    s->last_index = s->work_index;
    s->last_ms = kyufu_node__wall_ms();
    compare_begin(n);
}

void kyufu_node__scrub_applied(struct kyufu_node *n, uint64_t index)
{
    struct kyufu_node_scrub *s = &n->scrub;
    if (n->storage == NULL ||
        kyufu_storage_take_scrub_mark(n->storage) != index) {
        return;
    }
    if (n->stop_requested || n->stage != KYUFU_NODE_RUNNING) {
        return;
    }
    if (s->working) {
        s->skipped++;
        kyufu_log(KYUFU_LOG_WARN, "scrub skipped: the previous digest still "
                  "runs", KYUFU_LOG_U("index", index));
        return;
    }
    /* Now, on the applying thread right after the entry's commit: the
     * snapshot sees exactly the state at `index`. */
    int rv = kyufu_storage_snapshot_begin(n->storage, &s->snap);
    if (rv != 0) {
        s->skipped++;
        kyufu_log(KYUFU_LOG_WARN, "scrub skipped: the digest failed",
                  KYUFU_LOG_U("index", index),
                  KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
        return;
    }
    s->work_index = index;
    s->work.data = n;
    if (uv_queue_work(&n->loop, &s->work, work_cb, after_cb) != 0) {
        kyufu_storage_snapshot_end(s->snap);
        s->snap = NULL;
        s->skipped++;
        kyufu_log(KYUFU_LOG_WARN, "scrub skipped: the digest failed",
                  KYUFU_LOG_U("index", index),
                  KYUFU_LOG_S("error", "no work thread"));
        return;
    }
    s->working = true;
}

/* ------------------------------------------------------------ answers */

void kyufu_node__scrub_digests(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    struct kyufu_node_scrub *s = &n->scrub;
    /* The permission table lets nothing but a node's own call through. */
    assert(c->principal.kind == KYUFU_PRINCIPAL_NODE);
    uint64_t from = c->principal.node_id;
    if (from == n->config->id || !kyufu_node__is_member(n, from)) {
        kyufu_log(KYUFU_LOG_WARN, "scrub digests request refused",
                  KYUFU_LOG_S("peer", c->call->peer_address),
                  KYUFU_LOG_S("subject", c->call->peer_identity));
        kyufu_node__call_refuse_peer(c, KYUFU_GRPC_PERMISSION_DENIED,
                                     METHOD ": the calling node is not in "
                                     "this cluster's configuration",
                                     true);
        return;
    }
    Kyufu__V1__ScrubResult items[KYUFU_NODE_SCRUB_KEEP];
    Kyufu__V1__ScrubResult *ptrs[KYUFU_NODE_SCRUB_KEEP];
    Kyufu__V1__ScrubDigestsResponse resp =
        KYUFU__V1__SCRUB_DIGESTS_RESPONSE__INIT;
    for (size_t i = 0; i < s->n_kept; i++) {
        kyufu__v1__scrub_result__init(&items[i]);
        items[i].index = s->kept[i].index;
        items[i].digest.data = s->kept[i].digest;
        items[i].digest.len = 32;
        ptrs[i] = &items[i];
    }
    resp.node_id = n->config->id;
    resp.n_results = s->n_kept;
    resp.results = ptrs;
    kyufu_node__call_done_msg(c, &resp.base);
}

/* ------------------------------------------------------------ lifecycle */

void kyufu_node__scrub_start(struct kyufu_node *n)
{
    struct kyufu_node_scrub *s = &n->scrub;
    uv_timer_init(&n->loop, &s->timer);
    uv_timer_init(&n->loop, &s->ask_timer);
    s->timer.data = n;
    s->ask_timer.data = n;
    s->timers_init = true;
    uint64_t ms = (uint64_t)n->config->scrub_interval_s * 1000u;
    if (ms > 0) {
        uv_timer_start(&s->timer, on_tick, ms, ms);
    }
}

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

void kyufu_node__scrub_close(struct kyufu_node *n)
{
    struct kyufu_node_scrub *s = &n->scrub;
    if (s->timers_init) {
        uv_close((uv_handle_t *)&s->timer, close_noop);
        uv_close((uv_handle_t *)&s->ask_timer, close_noop);
        s->timers_init = false;
    }
}
