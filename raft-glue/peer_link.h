/* One Raft connection through TLS: TCP <-> OpenSSL <-> socketpair <-> raft_uv
 * (internal to the transport; docs/peer-tls.md). */
#ifndef KYUFU_GLUE_PEER_LINK_H
#define KYUFU_GLUE_PEER_LINK_H

#include "transport.h"

/* Start an outbound link for raft's connect request: resolve, connect,
 * handshake, check the server's node id == id, write the preamble, then
 * req->cb(req, stream, 0).  Returns 0 (the callback fires exactly once,
 * later: RAFT_NOCONNECTION on any failure, RAFT_CANCELED when the transport
 * closes first) or a RAFT_* error (no callback). */
int glue__link_connect(struct glue_transport *gt,
                       struct raft_uv_connect *req,
                       raft_id id,
                       const char *address);

/* Accept one pending connection from gt->listener and start its handshake
 * (or close it at once when KYUFU_PEER_HANDSHAKES_PENDING_MAX are pending). */
void glue__link_accept(struct glue_transport *gt);

/* Close every link (the transport is closing); each is freed after its
 * handles close, and then glue__transport_link_freed runs. */
void glue__link_close_all(struct glue_transport *gt);

/* Revocation: close every link past its TLS handshake whose peer
 * certificate a CRL in ctx's store revokes (ctx: the new server context of
 * a reload), each reported through `refused` with `revoked` set and the
 * serial in its reason; raft sees the stream end, as on any connection
 * loss, and connects again (to be refused at the handshake). */
void glue__link_close_revoked(struct glue_transport *gt, SSL_CTX *ctx);

/* transport.c: a link was freed (the close may now complete). */
void glue__transport_link_freed(struct glue_transport *gt);

/* transport.c: report a refusal, rate-limited. */
void glue__transport_refused(struct glue_transport *gt,
                             struct glue_peer_refusal *r);

#endif /* KYUFU_GLUE_PEER_LINK_H */
