/* raft_uv transport: Raft over mutual TLS (internal; docs/peer-tls.md).
 *
 * A struct raft_uv_transport of our own in place of raft_uv_tcp.  Every
 * connection to or from a peer is TCP (TCP_NODELAY on) carrying TLS under
 * the CRYPTREC policy of api/tls.c with ALPN "kyufu-raft/1"; both ends
 * present a certificate from the cluster CA that names their node id
 * (SAN URI KYUFU_TLS_NODE_URI_PREFIX "N").  raft_uv gets one end of an
 * AF_UNIX socketpair (a uv_pipe_t it owns and frees, as it did raft_uv_tcp's
 * socket); the bridge (peer_link.c) pumps the other end through OpenSSL to
 * the TCP socket.
 *
 * Accepting side: after the TLS handshake it reads raft's preamble
 * (protocol 1, id, address: raft_uv_tcp's format) from the decrypted stream
 * and hands raft the stream only if the id equals the certificate's node
 * id.  Connecting side: the server certificate must name the id raft asked
 * for; then it writes the preamble and hands raft the stream.  Any other
 * outcome closes the connection; refusals are reported through `refused`
 * (rate-limited, KYUFU_PEER_REFUSED_LOG_* in glue_limits.h).
 *
 * The peer's certificate is checked against the CRL (when there is one)
 * at every handshake, both directions (the accepting side by OpenSSL's
 * CRL check; both sides again once the handshake is done, against the CRL
 * in force: the connecting side's context has none), and for every open
 * link when the CRL is reloaded (glue__link_close_revoked).
 *
 * Each new stream is also reported through `connected` (the snapshot send
 * gate reopens on a reconnect). */
#ifndef KYUFU_GLUE_TRANSPORT_H
#define KYUFU_GLUE_TRANSPORT_H

#include <openssl/ssl.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "glue_limits.h"

struct glue_transport;
struct peer_link;

/* A connection refused (or given up) during its handshake.  Strings are
 * borrowed for the call. */
struct glue_peer_refusal
{
    const char *remote;    /* "ip:port" of the TCP peer ("" if unknown) */
    const char *subject;   /* the certificate it presented ("" if none) */
    const char *reason;    /* why */
    uint64_t claimed_id;   /* id in raft's preamble / expected id; 0 */
    uint64_t suppressed;   /* refusals not reported since the last one */
    bool inbound;
    bool revoked;          /* an open link closed: a CRL reload revoked the
                              peer's certificate (reason names the serial) */
};

struct glue_transport
{
    struct raft_uv_transport t; /* Handed to raft_uv_init. */
    uv_loop_t *loop;
    SSL_CTX *server_ctx;        /* owned */
    SSL_CTX *client_ctx;        /* owned */
    /* The PEM files, read again by glue__transport_reload_tls (one
     * allocation: cert, key and CA paths, each NUL-terminated). */
    char *cert_file, *key_file, *ca_file, *crl_file; /* crl "": none */
    raft_id id;                 /* ours, from raft_uv's init */
    char address[KYUFU_PEER_ADDRESS_BYTES_MAX];
    uv_tcp_t listener;
    bool listener_open;
    raft_uv_accept_cb accept_cb;
    struct peer_link *links;    /* every link, doubly linked (peer_link.c) */
    unsigned n_links;
    unsigned n_pending_in;      /* inbound links not yet authenticated */
    bool closing;
    raft_uv_transport_close_cb close_cb;
    /* Optional: a stream to (connect) or from (accept) peer `id` is up. */
    void (*connected)(struct glue_transport *gt, raft_id id);
    /* Optional: an open stream with peer `id` ended from the TCP side
     * (EOF or an error), or a connect to it was refused (ECONNREFUSED): the
     * peer's process is gone, not merely unreachable. */
    void (*lost)(struct glue_transport *gt, raft_id id);
    /* Optional: a refused connection, at most KYUFU_PEER_REFUSED_LOG_PER_WINDOW
     * per KYUFU_PEER_REFUSED_LOG_WINDOW_MS; the rest are counted. */
    void (*refused)(struct glue_transport *gt, const struct glue_peer_refusal *r);
    /* Optional: whether an inbound connection from this address may start
     * a handshake (the [raft] allow-list); NULL lets every address in.  A
     * refused one is closed before TLS and reported through `refused`. */
    bool (*allowed)(void *arg, const struct sockaddr *addr);
    void *allowed_arg;
    /* Optional: whether raft's connect to peer `id` may dial now (the
     * glue's dial policy, dial_policy.h); NULL dials every id.  A refused
     * connect fails at once with RAFT_NOCONNECTION: raft_uv retries it
     * after its connect retry delay, without a packet sent. */
    bool (*dial_ok)(struct glue_transport *gt, raft_id id);
    void *data;
    /* Rate limit of `refused`, on loop time. */
    uint64_t refused_window_start_ms;
    unsigned refused_in_window;
    uint64_t refused_suppressed;
    /* Counters. */
    unsigned long n_nodelay;        /* TCP streams set */
    unsigned long n_nodelay_failed; /* uv_tcp_nodelay errors */
    unsigned long n_refused;        /* connections refused, all reasons */
    unsigned long n_opened;         /* streams handed to raft */
    /* Shared read buffers: every read is consumed inside its callback. */
    char read_buf[64 << 10];
    char plain_buf[16 << 10];
};

/* Set up the transport and read the PEM files (node certificate with its
 * key, cluster CA): 0, or RAFT_INVALID with errmsg (a missing file or
 * argument, a bad certificate or key).  Nothing runs until raft_uv calls
 * listen / connect. */
int glue__transport_init(struct glue_transport *gt,
                         uv_loop_t *loop,
                         const char *cert_file,
                         const char *key_file,
                         const char *ca_file,
                         const char *crl_file,
                         char *errmsg,
                         size_t errmsg_len);

/* Certificate rotation: read the PEM files again and use them for every
 * connection made or accepted from now on (open ones keep theirs).  The new
 * certificate must still name this node's id.  0, or RAFT_INVALID with
 * errmsg, the current files staying in force.  On success every link, in
 * either direction, whose peer certificate the new CRL revokes is closed
 * (glue__link_close_revoked), reported through `refused` with `revoked`. */
int glue__transport_reload_tls(struct glue_transport *gt,
                               char *errmsg,
                               size_t errmsg_len);

/* Free the contexts, after raft_uv has closed the transport (or when it was
 * never handed to raft_uv). */
void glue__transport_close(struct glue_transport *gt);

#endif /* KYUFU_GLUE_TRANSPORT_H */
