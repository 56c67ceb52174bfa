/* The pool's queue wait: see work_probe.h.
 *
 * Happy path: stall tick → queue → work (stamps its start) → after (loop):
 * the histogram, and a stop that waited finishes now.  Failure modes:
 * libuv refusing the work (nothing measured this tick). */
#include "work_probe.h"

#include "node.h"

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
