/* Heap release off the loop thread: see heap_release.h.
 *
 * Happy path: compaction → queue → work (malloc_trim, timed) → after
 * (loop): the histogram, and a stop that waited finishes now.  Failure
 * modes: libuv refusing the work (nothing released this time; the next
 * compaction tries again). */
#include "heap_release.h"

#include "malloc_policy.h"
#include "node.h"

static void work_cb(uv_work_t *w)
{
    struct kyufu_node *n = w->data;
    uint64_t t0 = uv_hrtime();
    kyufu_node_malloc_release();
    n->heap_release.took_ns = uv_hrtime() - t0;
}

static void after_cb(uv_work_t *w, int status)
{
    struct kyufu_node *n = w->data;
    (void)status; /* nothing calls uv_cancel */
    n->heap_release.working = false;
    kyufu_node__metrics_heap_released(n, n->heap_release.took_ns);
    if (n->finish_waiting) {
        kyufu_node__finish(n); /* the stop waited for this release */
    }
}

void kyufu_node__heap_release(struct kyufu_node *n)
{
    struct kyufu_node_heap_release *h = &n->heap_release;
    if (h->working) {
        return; /* the running one frees this compaction's pages too */
    }
    h->work.data = n;
    if (uv_queue_work(&n->loop, &h->work, work_cb, after_cb) == 0) {
        h->working = true;
    }
}
