/* raft_uv TCP transport with TCP_NODELAY on every stream (internal).
 *
 * raft_uv_tcp never sets TCP_NODELAY, and each of its connections carries
 * data one way only, so acknowledgements wait for the peer's delayed ACK
 * (~40 ms tails, FACTS.md).  We wrap the transport's listen (accept
 * callback) and connect (connect callback) to set it on each stream before
 * raft_uv sees the stream.  A failure to set it is counted, not fatal: the
 * stream still works, only slower.  Each new stream is also reported to
 * the owner (the snapshot send gate reopens on a reconnect). */
#ifndef KYUFU_GLUE_TRANSPORT_H
#define KYUFU_GLUE_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

struct glue_transport
{
    struct raft_uv_transport t; /* Handed to raft_uv_init. */
    int (*listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
    int (*connect)(struct raft_uv_transport *t,
                   struct raft_uv_connect *req,
                   raft_id id,
                   const char *address,
                   raft_uv_connect_cb cb);
    raft_uv_accept_cb accept_cb;
    /* Optional: a stream to (connect) or from (accept) peer `id` is up. */
    void (*connected)(struct glue_transport *gt, raft_id id);
    void *data;
    unsigned long n_nodelay;        /* streams set */
    unsigned long n_nodelay_failed; /* uv_tcp_nodelay errors */
};

/* raft_uv_tcp_init (version 1) and install the wrappers. Returns 0 or a
 * RAFT_* error with t.errmsg filled. */
int glue__transport_init(struct glue_transport *gt, uv_loop_t *loop);

/* Free the transport after raft_uv has closed it. */
void glue__transport_close(struct glue_transport *gt);

#endif /* KYUFU_GLUE_TRANSPORT_H */
