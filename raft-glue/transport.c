/* TCP_NODELAY wrapper around raft_uv_tcp: see transport.h.
 *
 * Happy path: raft_uv calls connect → we pass our own request to the real
 * connect → its callback sets NODELAY and calls raft_uv's callback with the
 * stream.  Accepts likewise.  Failure modes: the real connect refusing
 * (returned as-is, no callback, our request freed); the connection failing
 * or being cancelled by close (status passed through, request freed). */
#include "transport.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct nodelay_connect
{
    struct raft_uv_connect req; /* Ours, handed to the real connect. */
    struct raft_uv_connect *orig;
    struct glue_transport *gt;
    raft_id id;
};

static struct glue_transport *of(struct raft_uv_transport *t)
{
    return (struct glue_transport *)(void *)((char *)t -
                                            offsetof(struct glue_transport, t));
}

static void nodelay(struct glue_transport *gt, struct uv_stream_s *stream)
{
    /* raft_uv_tcp only hands out TCP streams. */
    assert(stream->type == UV_TCP);
    if (uv_tcp_nodelay((uv_tcp_t *)stream, 1) == 0) {
        gt->n_nodelay++;
    } else {
        gt->n_nodelay_failed++;
    }
}

static void accept_cb(struct raft_uv_transport *t,
                      raft_id id,
                      const char *address,
                      struct uv_stream_s *stream)
{
    struct glue_transport *gt = of(t);
    nodelay(gt, stream);
    if (gt->connected != NULL) {
        gt->connected(gt, id);
    }
    gt->accept_cb(t, id, address, stream);
}

static int listen_wrap(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct glue_transport *gt = of(t);
    gt->accept_cb = cb;
    return gt->listen(t, accept_cb);
}

static void connect_cb(struct raft_uv_connect *req,
                       struct uv_stream_s *stream,
                       int status)
{
    struct nodelay_connect *c = req->data;
    struct raft_uv_connect *orig = c->orig;
    struct glue_transport *gt = c->gt;
    raft_id id = c->id;
    if (status == 0 && stream != NULL) {
        nodelay(gt, stream);
    }
    free(c);
    if (status == 0 && stream != NULL && gt->connected != NULL) {
        gt->connected(gt, id);
    }
    orig->cb(orig, stream, status);
}

static int connect_wrap(struct raft_uv_transport *t,
                        struct raft_uv_connect *req,
                        raft_id id,
                        const char *address,
                        raft_uv_connect_cb cb)
{
    struct glue_transport *gt = of(t);
    struct nodelay_connect *c;
    int rv;

    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    c->orig = req;
    c->gt = gt;
    c->id = id;
    c->req.data = c;
    req->cb = cb;
    rv = gt->connect(t, &c->req, id, address, connect_cb);
    if (rv != 0) {
        free(c);
        return rv;
    }
    return 0;
}

int glue__transport_init(struct glue_transport *gt, uv_loop_t *loop)
{
    int rv;
    memset(gt, 0, sizeof *gt);
    gt->t.version = 1; /* 0.22.1 refuses an unset version (FACTS.md). */
    rv = raft_uv_tcp_init(&gt->t, loop);
    if (rv != 0) {
        return rv;
    }
    gt->listen = gt->t.listen;
    gt->connect = gt->t.connect;
    gt->t.listen = listen_wrap;
    gt->t.connect = connect_wrap;
    return 0;
}

void glue__transport_close(struct glue_transport *gt)
{
    raft_uv_tcp_close(&gt->t);
}
