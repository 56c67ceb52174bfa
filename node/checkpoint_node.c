/* kyufud's checkpoint timer: see oplog.h and checkpoint.h. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "availability.h"
#include "checkpoint.h"
#include "limits.h"
#include "log.h"
#include "node.h"

struct cp_work
{
    uv_work_t w;
    struct kyufu_node *n;
    uint64_t node_id;
    uint64_t seq;
    uint8_t hash[32];
    int64_t time_ms;
    const char *key_path;   /* the config's: lives as long as the node */
    const char *file;
    int rv;
    char errmsg[256];
};

static void cp_run(uv_work_t *w)
{
    struct cp_work *cw = w->data;
    char line[KYUFU_NODE_CHECKPOINT_LINE_BYTES_MAX];
    EVP_PKEY *key = NULL;
    cw->rv = kyufu_checkpoint_load_key(cw->key_path, &key, cw->errmsg,
                                       sizeof cw->errmsg);
    if (cw->rv == 0) {
        cw->rv = kyufu_checkpoint_line(key, cw->node_id, cw->seq, cw->hash,
                                       cw->time_ms, line, sizeof line,
                                       cw->errmsg, sizeof cw->errmsg);
    }
    EVP_PKEY_free(key);
    if (cw->rv == 0) {
        cw->rv = kyufu_checkpoint_append(cw->file, line, cw->errmsg,
                                         sizeof cw->errmsg);
    }
}

static void cp_done(uv_work_t *w, int status)
{
    struct cp_work *cw = w->data;
    struct kyufu_node *n = cw->n;
    n->oplog.cp_busy = false;
    if (status == 0 && cw->rv == 0) {
        n->oplog.cp_seq = cw->seq;
        n->oplog.checkpoints_written++;
        kyufu_log(KYUFU_LOG_DEBUG, "audit checkpoint written",
                  KYUFU_LOG_U("seq", cw->seq));
    } else {
        n->oplog.checkpoints_failed++;
        kyufu_log(KYUFU_LOG_ERROR, "audit checkpoint not written",
                  KYUFU_LOG_S("file", cw->file),
                  KYUFU_LOG_S("error", status != 0 ? uv_strerror(status)
                                                   : cw->errmsg));
    }
    free(cw);
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    const struct kyufu_config *c = n->config;
    uint64_t seq = 0;
    uint8_t hash[32];
    uint64_t now = uv_now(&n->loop);
    if (n->oplog.cp_busy || n->storage == NULL ||
        n->stage != KYUFU_NODE_RUNNING ||
        kyufu_storage_audit_head(n->storage, &seq, hash) != 0 ||
        seq == n->oplog.cp_seq) {
        return;
    }
    bool due = seq - n->oplog.cp_seq >= c->audit_checkpoint_records ||
               now - n->oplog.cp_ms >=
                   (uint64_t)c->audit_checkpoint_interval_s * 1000u;
    if (!due) {
        return;
    }
    struct cp_work *cw = calloc(1, sizeof *cw);
    if (cw == NULL) {
        return;
    }
    cw->w.data = cw;
    cw->n = n;
    cw->node_id = c->id;
    cw->seq = seq;
    memcpy(cw->hash, hash, 32);
    cw->time_ms = kyufu_node__wall_ms();
    cw->key_path = c->tls_key;
    cw->file = c->audit_checkpoint_file;
    if (uv_queue_work(&n->loop, &cw->w, cp_run, cp_done) != 0) {
        free(cw);
        return;
    }
    n->oplog.cp_busy = true;
    n->oplog.cp_ms = now;
}

void kyufu_node__checkpoint_start(struct kyufu_node *n)
{
    if (n->config->audit_checkpoint_file[0] == '\0') {
        return;
    }
    uv_timer_init(&n->loop, &n->oplog.cp_timer);
    n->oplog.cp_timer.data = n;
    n->oplog.cp_ms = uv_now(&n->loop);
    uv_timer_start(&n->oplog.cp_timer, on_tick, KYUFU_NODE_CHECKPOINT_TICK_MS,
                   KYUFU_NODE_CHECKPOINT_TICK_MS);
    n->oplog.cp_started = true;
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

void kyufu_node__checkpoint_close(struct kyufu_node *n)
{
    /* A line being written finishes on its thread; the loop runs until its
     * cp_done (uv_run waits for active requests). */
    if (n->oplog.cp_started) {
        uv_close((uv_handle_t *)&n->oplog.cp_timer, closed);
        n->oplog.cp_started = false;
    }
}
