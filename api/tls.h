/* api internals: OpenSSL contexts under the CRYPTREC policy, and a TLS
 * session over memory BIOs (so sockets stay in server.c / client.c and the
 * TLS engine knows nothing of libuv).  Not part of the public contract. */
#ifndef KYUFU_API_TLS_H
#define KYUFU_API_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* ALPN protocol of a context (wire format: length byte, then the name):
 * the API speaks "h2", Raft peers "kyufu-raft/1" (docs/peer-tls.md).  A
 * context offers (client) or accepts (server) exactly its one protocol and
 * api__tls_handshake fails unless it was negotiated. */
extern const unsigned char api__tls_alpn_h2[];
extern const unsigned char api__tls_alpn_raft[];
/* "http/1.1": the metrics port (node/metrics_http.c); a client that offers
 * no ALPN is accepted on it too. */
extern const unsigned char api__tls_alpn_http1[];

/* Contexts.  Every file is read here: a bad certificate, key or CA is an
 * error now (KYUFU_API_ETLS with errmsg).  alpn is one of the two arrays
 * above.  The caller frees with SSL_CTX_free. */
int api__tls_server_ctx_new(const char *cert_file,
                            const char *key_file,
                            const char *ca_file,
                            bool require_client_cert,
                            const unsigned char *alpn,
                            SSL_CTX **out,
                            char *errmsg,
                            size_t errmsg_len);
int api__tls_client_ctx_new(const char *ca_file,
                            const char *cert_file,
                            const char *key_file,
                            const unsigned char *alpn,
                            SSL_CTX **out,
                            char *errmsg,
                            size_t errmsg_len);

/* Private key files (certificates: docs/identity.md "Certificates").  0
 * when `key_file` is a file that only its owner may read or write (no
 * group or other bits, mode & 077 == 0) and that the user kyufud runs as
 * (effective uid) or root owns; else KYUFU_API_ETLS with errmsg naming the
 * file, its mode or owner, and the fix.  The mode is that of the opened
 * file (fstat), and api__tls_server_ctx_new reads its key from the same
 * open file it checked, so kyufud refuses such a key at start and on
 * reload and never loads a key other than the one checked. */
int api__tls_key_file_private(const char *key_file, char *errmsg, size_t errmsg_len);

/* Certificate revocation (docs/identity.md "Certificates"): read every CRL
 * in crl_file (PEM, at least one), check that each is signed by a CA
 * certificate already in ctx's trust store (load the CA first) and add
 * them to it, and turn on CRL checking of the peer's (leaf) certificate:
 * a revoked one then fails its handshake with OpenSSL's "certificate
 * revoked".  A CRL past its nextUpdate is still enforced (the list of
 * revoked certificates stays true; refusing every client because a file
 * was not refreshed in time would be an outage): *expired is set so the
 * caller can warn.  On error (KYUFU_API_ETLS with errmsg) ctx is
 * unchanged. */
int api__tls_ctx_set_crl(SSL_CTX *ctx, const char *crl_file, bool *expired,
                         char *errmsg, size_t errmsg_len);

/* Apply the policy of kyufu_tls_policy() to a context (exposed so tests can
 * build a context like ours and then weaken one knob). */
int api__tls_policy_apply(SSL_CTX *ctx, char *errmsg, size_t errmsg_len);

/* One TLS session whose network side is a pair of memory BIOs. */
struct api__tls
{
    SSL *ssl;
    BIO *in;  /* ciphertext from the network, written by us, read by SSL */
    BIO *out; /* ciphertext to the network, written by SSL, read by us */
    bool handshake_done;
    char error[256];
    char presented[256]; /* subject of a peer certificate that failed
                            verification (server side), else "" */
};

/* server_name: client side only, the name the certificate must match (DNS
 * or IP SAN) and the SNI sent (not for IP literals); NULL: no name check
 * (the caller checks the identity itself, as raft-glue checks node ids). */
int api__tls_init(struct api__tls *t, SSL_CTX *ctx, bool server, const char *server_name);
void api__tls_close(struct api__tls *t);

/* Ciphertext from the socket. */
int api__tls_feed(struct api__tls *t, const uint8_t *data, size_t len);
/* Advance the handshake: 1 done (and ALPN is h2), 0 needs more bytes, <0
 * failed (t->error says why). */
int api__tls_handshake(struct api__tls *t);
/* Decrypted bytes: >0 count, 0 none yet, KYUFU_API_ECLOSED on close_notify,
 * KYUFU_API_ETLS on a TLS error. */
int api__tls_read(struct api__tls *t, uint8_t *buf, size_t cap);
/* Encrypt plaintext (whole buffer; memory BIOs never block). */
int api__tls_write(struct api__tls *t, const uint8_t *data, size_t len);
/* Queue a close_notify. */
void api__tls_shutdown(struct api__tls *t);
/* Bytes waiting to go out (ciphertext). */
size_t api__tls_pending(const struct api__tls *t);
/* Move up to cap bytes of ciphertext to buf; returns the count. */
size_t api__tls_take(struct api__tls *t, uint8_t *buf, size_t cap);
/* Subject of the verified peer certificate ("" if none) into buf. */
void api__tls_peer_identity(struct api__tls *t, char *buf, size_t len);
/* Subject of whatever certificate the peer presented, verified or not ("" if
 * none): for logging a refused peer, never for a decision. */
void api__tls_peer_subject(struct api__tls *t, char *buf, size_t len);
/* The Raft node id a verified peer certificate names: 0 and *id when it has
 * exactly one SAN URI KYUFU_TLS_NODE_URI_PREFIX "N" (N decimal > 0, no
 * leading zero); -1 otherwise (no certificate, not verified, no node URI,
 * two of them, or a malformed one). */
int api__tls_peer_node_id(struct api__tls *t, uint64_t *id);
/* Identity (issue 8): SHA-256 of the verified peer certificate's DER
 * encoding into out; 0, or -1 when there is none or it did not verify. */
int api__tls_peer_cert_sha256(struct api__tls *t, uint8_t out[32]);
/* The same for any certificate (e.g. our own, checked at start). */
int api__tls_cert_node_id(const X509 *cert, uint64_t *id);
/* cert's serial number in upper-case hex (BN_bn2hex; at most 40 digits
 * for RFC 5280's 20 octets) into out, "" when it cannot be read: the one
 * form of a serial, so the serial a node logs at a revocation
 * (api__tls_peer_revoked) is the one kyufuctl's registry keeps
 * (client/ctl_registry.c). */
void api__tls_cert_serial(const X509 *cert, char *out, size_t len);
/* Revocation of an open session (docs/identity.md "Certificates"): 1 when
 * the certificate this peer presented at its handshake (the SSL session
 * keeps it for the connection's life) is revoked by a CRL in ctx's trust
 * store (api__tls_ctx_set_crl: the context a CRL reload made, not
 * necessarily the one the session was made with), with its serial in hex
 * in `serial`; 0 otherwise (not revoked, no CRL of its issuer, no peer
 * certificate, handshake not done). */
int api__tls_peer_revoked(struct api__tls *t, SSL_CTX *ctx, char *serial, size_t serial_len);

#endif /* KYUFU_API_TLS_H */
