/* Whole-store reads off the loop thread: see offload.h.
 *
 * Happy path: offload (under the limit) → uv_queue_work → work (work
 * thread): snapshot begin, run, snapshot end → after (loop): done answers
 * the call, free; the node's count drops, and a stop that reached the
 * store's close while this ran finishes now.  Failure modes: over
 * KYUFU_NODE_OFFLOAD_MAX, no memory, libuv refusing the work (answered
 * here, nothing queued); the snapshot failing to begin (READERS_FULL or
 * worse: answered from after as a storage error, which stops the node
 * only for a fatal one, through the deferred stop of node.c); the node
 * stopping (the call was cancelled: the API layer drops the answer, the
 * context is freed as usual). */
#include "offload.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "limits.h"

static void work_cb(uv_work_t *w)
{
    struct kyufu_node_offload *o = w->data;
    /* The reader slot is taken now, not when the call was queued. */
    o->begin_rv = kyufu_storage_snapshot_begin(o->storage, &o->snap);
    if (o->begin_rv != 0) {
        o->snap = NULL;
        return;
    }
    o->run(o);
    kyufu_storage_snapshot_end(o->snap);
    o->snap = NULL;
}

static void after_cb(uv_work_t *w, int status)
{
    struct kyufu_node_offload *o = w->data;
    struct kyufu_node *n = o->node;
    (void)status; /* UV_ECANCELED never: nothing calls uv_cancel */
    assert(o->snap == NULL);
    if (o->begin_rv != 0 && o->call != NULL) {
        kyufu_node__call_storage_error(o->call, o->begin_rv, o->what);
    } else {
        o->done(o); /* answers the call, or the node's own sees begin_rv */
    }
    free(o);
    assert(n->offloaded > 0);
    n->offloaded--;
    if (n->offloaded == 0 && n->finish_waiting) {
        kyufu_node__finish(n);
    }
}

struct kyufu_node_offload *kyufu_node__offload_new(struct kyufu_node *n,
                                                   size_t size)
{
    assert(size >= sizeof(struct kyufu_node_offload));
    struct kyufu_node_offload *o = calloc(1, size);
    if (o != NULL) {
        o->node = n;
        o->storage = n->storage;
    }
    return o;
}

int kyufu_node__offload_queue(struct kyufu_node_offload *o,
                              kyufu_node_offload_fn run,
                              kyufu_node_offload_fn done,
                              const char *what)
{
    struct kyufu_node *n = o->node;
    assert(n->offloaded <= KYUFU_NODE_OFFLOAD_MAX);
    o->what = what;
    o->run = run;
    o->done = done;
    o->work.data = o;
    if (n->offloaded >= KYUFU_NODE_OFFLOAD_MAX ||
        uv_queue_work(&n->loop, &o->work, work_cb, after_cb) != 0) {
        free(o);
        return -1;
    }
    n->offloaded++;
    return 0;
}

void kyufu_node__offload(struct kyufu_node_call *call,
                         size_t size,
                         kyufu_node_offload_fn run,
                         kyufu_node_offload_fn done,
                         const char *what)
{
    struct kyufu_node *n = call->node;
    assert(n->offloaded <= KYUFU_NODE_OFFLOAD_MAX);
    if (n->offloaded >= KYUFU_NODE_OFFLOAD_MAX) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "too many whole-store reads (state digest, audit check, key "
                 "census, backup) in progress on this node (limit %u); retry "
                 "later",
                 KYUFU_NODE_OFFLOAD_MAX);
        kyufu_node__call_done(call, KYUFU_GRPC_RESOURCE_EXHAUSTED, msg, NULL,
                              0);
        return;
    }
    struct kyufu_node_offload *o = kyufu_node__offload_new(n, size);
    if (o == NULL) {
        kyufu_node__call_done(call, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    o->call = call;
    if (kyufu_node__offload_queue(o, run, done, what) != 0) {
        kyufu_node__call_done(call, KYUFU_GRPC_INTERNAL,
                              "cannot queue the read on a work thread", NULL,
                              0);
    }
}
