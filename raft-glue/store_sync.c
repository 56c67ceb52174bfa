/* The store's background sync: see store_sync.h. */
#include "store_sync.h"

#include <assert.h>
#include <string.h>

#include "glue_limits.h"

static void maybe_closed(struct glue_store_sync *ss)
{
    if (ss->closing && !ss->busy && !ss->timer_open && ss->closed != NULL) {
        void (*cb)(struct glue_store_sync *) = ss->closed;
        ss->closed = NULL;
        cb(ss);
    }
}

static void work_cb(uv_work_t *w)
{
    struct glue_store_sync *ss = w->data;
    ss->errmsg[0] = '\0';
    ss->rv = kyufu_storage_sync(ss->storage, ss->upto, ss->errmsg,
                                sizeof ss->errmsg);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct glue_store_sync *ss = w->data;
    uint64_t dt = uv_hrtime() - ss->started_ns;
    assert(ss->busy);
    ss->busy = false;
    ss->sync_ns_last = dt;
    if (dt > ss->sync_ns_max) {
        ss->sync_ns_max = dt;
    }
    if (status == 0 && ss->rv == 0) {
        ss->n_syncs++;
    } else if (!ss->failed_once) {
        /* status != 0 only for a cancelled request, which we never make. */
        ss->failed_once = true;
        if (ss->failed != NULL) {
            ss->failed(ss->arg, ss->errmsg[0] != '\0' ? ss->errmsg
                                                      : "store sync failed");
        }
    }
    maybe_closed(ss);
}

static void tick_cb(uv_timer_t *t)
{
    struct glue_store_sync *ss = t->data;
    uint64_t applied;
    if (ss->busy || ss->closing || ss->failed_once) {
        return;
    }
    kyufu_storage_applied(ss->storage, &applied, NULL);
    if (applied <= kyufu_storage_durable(ss->storage)) {
        return; /* nothing applied since the last flush */
    }
    /* Read before the sync starts: every commit up to here has returned. */
    ss->upto = applied;
    ss->started_ns = uv_hrtime();
    ss->work.data = ss;
    if (uv_queue_work(ss->loop, &ss->work, work_cb, after_work_cb) != 0) {
        return; /* cannot happen with valid arguments; the next tick retries */
    }
    ss->busy = true;
}

void glue__store_sync_init(struct glue_store_sync *ss,
                           uv_loop_t *loop,
                           struct kyufu_storage *storage,
                           void (*failed)(void *arg, const char *errmsg),
                           void *arg)
{
    int rv;
    memset(ss, 0, sizeof *ss);
    ss->loop = loop;
    ss->storage = storage;
    ss->failed = failed;
    ss->arg = arg;
    rv = uv_timer_init(loop, &ss->timer);
    assert(rv == 0);
    ss->timer.data = ss;
    ss->timer_open = true;
    if (kyufu_storage_syncs_commits(storage)) {
        return; /* every commit flushes: a flush here would repeat them */
    }
    rv = uv_timer_start(&ss->timer, tick_cb, KYUFU_STORE_SYNC_INTERVAL_MS,
                        KYUFU_STORE_SYNC_INTERVAL_MS);
    assert(rv == 0);
    (void)rv;
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct glue_store_sync *ss = h->data;
    ss->timer_open = false;
    maybe_closed(ss);
}

void glue__store_sync_close(struct glue_store_sync *ss,
                            void (*closed)(struct glue_store_sync *ss))
{
    assert(!ss->closing);
    ss->closing = true;
    ss->closed = closed;
    uv_timer_stop(&ss->timer);
    uv_close((uv_handle_t *)&ss->timer, timer_closed_cb);
}
