/* Whole-store reads off the loop thread: see offload.h.
 *
 * Happy path: offload → snapshot begin, uv_queue_work → run (work thread)
 * → after (loop): snapshot end, done answers the call, free; the node's
 * count drops, and a stop that reached the store's close while this ran
 * finishes now.  Failure modes: no memory, no snapshot, libuv refusing the
 * work (answered here, nothing queued); the node stopping (the call was
 * cancelled: the API layer drops the answer, the context is freed as
 * usual). */
#include "offload.h"

#include <assert.h>
#include <stdlib.h>

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
    o->done(o); /* answers the call */
    free(o);
    assert(n->offloaded > 0);
    n->offloaded--;
    if (n->offloaded == 0 && n->finish_waiting) {
        kyufu_node__finish(n);
    }
}

void kyufu_node__offload(struct kyufu_node_call *call,
                         size_t size,
                         kyufu_node_offload_fn run,
                         kyufu_node_offload_fn done,
                         const char *what)
{
    struct kyufu_node *n = call->node;
    struct kyufu_node_offload *o;
    int rv;
    assert(size >= sizeof *o);
    o = calloc(1, size);
    if (o == NULL) {
        kyufu_node__call_done(call, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    o->call = call;
    o->run = run;
    o->done = done;
    o->work.data = o;
    rv = kyufu_storage_snapshot_begin(n->storage, &o->snap);
    if (rv != 0) {
        free(o);
        kyufu_node__call_storage_error(call, rv, what);
        return;
    }
    if (uv_queue_work(&n->loop, &o->work, work_cb, after_cb) != 0) {
        kyufu_storage_snapshot_end(o->snap);
        free(o);
        kyufu_node__call_done(call, KYUFU_GRPC_INTERNAL,
                              "cannot queue the read on a work thread", NULL,
                              0);
        return;
    }
    n->offloaded++;
}
