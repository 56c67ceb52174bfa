/* Whole-store reads off the loop thread: see offload.h.
 *
 * Happy path: offload → uv_queue_work → run (work thread) → after (loop):
 * done answers the call; the node's count drops, and a stop that reached
 * the store's close while this ran finishes now.  Failure modes: libuv
 * refuses the work (the caller answers); the node is stopping (the call
 * was cancelled: the answer is dropped by the API layer, the context
 * freed as usual). */
#include "offload.h"

#include <assert.h>

static void work_cb(uv_work_t *w)
{
    struct kyufu_node_offload *o = w->data;
    o->run(o);
}

static void after_cb(uv_work_t *w, int status)
{
    struct kyufu_node_offload *o = w->data;
    struct kyufu_node *n = o->call->node;
    (void)status; /* UV_ECANCELED never: nothing calls uv_cancel */
    kyufu_storage_snapshot_end(o->snap);
    o->snap = NULL;
    o->done(o); /* answers and frees o */
    assert(n->offloaded > 0);
    n->offloaded--;
    if (n->offloaded == 0 && n->finish_waiting) {
        kyufu_node__finish(n);
    }
}

int kyufu_node__offload(struct kyufu_node_offload *o,
                        struct kyufu_node_call *call,
                        kyufu_node_offload_fn run,
                        kyufu_node_offload_fn done)
{
    struct kyufu_node *n = call->node;
    int rv;
    o->call = call;
    o->run = run;
    o->done = done;
    o->work.data = o;
    rv = kyufu_storage_snapshot_begin(n->storage, &o->snap);
    if (rv != 0) {
        return rv;
    }
    if (uv_queue_work(&n->loop, &o->work, work_cb, after_cb) != 0) {
        kyufu_storage_snapshot_end(o->snap);
        o->snap = NULL;
        return KYUFU_NODE_OFFLOAD_EQUEUE;
    }
    n->offloaded++;
    return 0;
}
