/* libuv's work pool, its size and its queue's wait: see work_pool.h.
 *
 * The probe's happy path: stall tick → queue → work (stamps its start) →
 * after (loop): the histogram, and a stop that waited finishes now.
 * Failure modes: libuv refusing the work (nothing measured this tick). */
#include "work_pool.h"

#include <stdio.h>
#include <stdlib.h>

#include "limits.h"
#include "node.h"

unsigned kyufu_node_work_pool_size(void)
{
    const char *v = getenv("UV_THREADPOOL_SIZE");
    if (v != NULL) {
        /* The operator's, read as libuv 1.44 reads it (threadpool.c:
         * atoi into an unsigned, 0 meaning 1, at most its cap). */
        unsigned set = (unsigned)atoi(v);
        if (set == 0) {
            set = 1u;
        }
        return set > KYUFU_NODE_WORK_THREADS_LIBUV_MAX
                   ? KYUFU_NODE_WORK_THREADS_LIBUV_MAX
                   : set;
    }
    char buf[16];
    snprintf(buf, sizeof buf, "%u", KYUFU_NODE_WORK_THREADS);
    if (setenv("UV_THREADPOOL_SIZE", buf, 1) != 0) {
        return 4u; /* out of memory for the environment: libuv's default */
    }
    return KYUFU_NODE_WORK_THREADS;
}

static void work_cb(uv_work_t *w)
{
    struct kyufu_node *n = w->data;
    n->work_probe.started_ns = uv_hrtime();
}

static void after_cb(uv_work_t *w, int status)
{
    struct kyufu_node *n = w->data;
    struct kyufu_node_work_probe *p = &n->work_probe;
    (void)status; /* nothing calls uv_cancel */
    p->working = false;
    kyufu_node__metrics_work_waited(
        n, p->started_ns > p->queued_ns ? p->started_ns - p->queued_ns : 0);
    if (n->finish_waiting) {
        kyufu_node__finish(n); /* the stop waited for this probe */
    }
}

void kyufu_node__work_probe(struct kyufu_node *n)
{
    struct kyufu_node_work_probe *p = &n->work_probe;
    if (p->working || n->stage != KYUFU_NODE_RUNNING) {
        return;
    }
    p->work.data = n;
    p->queued_ns = uv_hrtime();
    p->started_ns = 0;
    if (uv_queue_work(&n->loop, &p->work, work_cb, after_cb) == 0) {
        p->working = true;
    }
}
