/* kyufu api: the gRPC wire protocol over HTTP/2 (nghttp2) and TLS (OpenSSL).
 *
 * The only module that includes nghttp2.h.  It has four layers; the node and
 * the client library use the last three, tests use all four:
 *
 *   1. kyufu_grpc_server_conn: a sans-I/O gRPC server connection.  Bytes go
 *      in (plaintext that came out of TLS), bytes come out (plaintext to hand
 *      to TLS); complete unary calls are handed to a handler, which answers
 *      now or later with kyufu_grpc_call_respond.  No sockets, no clock
 *      (time is passed in), so tests drive it from memory.
 *   2. kyufu_grpc_health: the standard grpc.health.v1.Health service, served
 *      by the connection itself from a table the node sets.
 *   3. kyufu_api_server: a libuv TCP + TLS listener feeding layer 1.
 *   4. kyufu_grpc_client: an async gRPC client on a libuv loop (TLS, HTTP/2,
 *      calls multiplexed on one connection, deadlines).
 *
 * Threads: every object here belongs to one thread (the loop's).
 *
 * Signals: the process must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before
 * starting a server or client: libuv writes with write(2), and a peer that
 * resets mid-write would otherwise kill the process.  A library does not
 * change signal dispositions behind the program's back, so the node does it.
 *
 * Errors: functions return 0 or a negative KYUFU_API_E* code; those taking
 * an errmsg buffer write a one-line detail into it.  gRPC outcomes of calls
 * are not errors of this module: they are enum kyufu_grpc_status values.
 *
 * The wire format and the TLS policy are documented in docs/api.md.
 */
#ifndef KYUFU_API_GRPC_H
#define KYUFU_API_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "grpc_limits.h"

#define KYUFU_API_ERRORS(X)                                                  \
    X(OK, 0, "ok")                                                           \
    X(NOMEM, -1, "out of memory")                                            \
    X(INVALID, -2, "invalid argument")                                       \
    X(PROTO, -3, "HTTP/2 protocol error from the peer")                      \
    X(TLS, -4, "TLS configuration or handshake error")                       \
    X(IO, -5, "socket error")                                                \
    X(CLOSED, -6, "connection or server is closing")                         \
    X(LIMIT, -7, "a configured limit was reached")

enum kyufu_api_error {
#define KYUFU_API__ENUM(name, value, text) KYUFU_API_E##name = value,
    KYUFU_API_ERRORS(KYUFU_API__ENUM)
#undef KYUFU_API__ENUM
};

/* Static string for an error code; never NULL. */
const char *kyufu_api_strerror(int rv);

/* Unknown protobuf fields (pb_strict.c).  Returns 0 when every field in
 * `buf` (the wire bytes of a `descriptor` message, `len` bytes) and in every
 * nested message is one the schema declares, within
 * KYUFU_PB_NESTING_DEPTH_MAX levels; else KYUFU_API_EINVALID with a
 * one-line reason ("unknown field 99 in kyufu.v1.X", or a malformed
 * encoding) in errmsg.  Run before protobuf_c_message_unpack, which keeps
 * unknown fields at a large memory cost; allocates nothing. */
int kyufu_pb_check_known(const ProtobufCMessageDescriptor *descriptor,
                         const uint8_t *buf,
                         size_t len,
                         char *errmsg,
                         size_t errlen);

/* The canonical gRPC status codes (grpc/grpc doc/statuscodes.md). */
#define KYUFU_GRPC_STATUSES(X)                                               \
    X(OK, 0)                                                                 \
    X(CANCELLED, 1)                                                          \
    X(UNKNOWN, 2)                                                            \
    X(INVALID_ARGUMENT, 3)                                                   \
    X(DEADLINE_EXCEEDED, 4)                                                  \
    X(NOT_FOUND, 5)                                                          \
    X(ALREADY_EXISTS, 6)                                                     \
    X(PERMISSION_DENIED, 7)                                                  \
    X(RESOURCE_EXHAUSTED, 8)                                                 \
    X(FAILED_PRECONDITION, 9)                                                \
    X(ABORTED, 10)                                                           \
    X(OUT_OF_RANGE, 11)                                                      \
    X(UNIMPLEMENTED, 12)                                                     \
    X(INTERNAL, 13)                                                          \
    X(UNAVAILABLE, 14)                                                       \
    X(DATA_LOSS, 15)                                                         \
    X(UNAUTHENTICATED, 16)

enum kyufu_grpc_status {
#define KYUFU_GRPC__STATUS_ENUM(name, value) KYUFU_GRPC_##name = value,
    KYUFU_GRPC_STATUSES(KYUFU_GRPC__STATUS_ENUM)
#undef KYUFU_GRPC__STATUS_ENUM
};

/* "OK", "CANCELLED", ... ; "UNKNOWN_STATUS" for values outside 0..16. */
const char *kyufu_grpc_status_name(int status);

/* One metadata entry (a custom HTTP/2 header).  Names are lower case ASCII;
 * values of "-bin" headers are left base64-encoded as on the wire. */
struct kyufu_grpc_metadata
{
    const char *name;
    const char *value;
};

/* Check metadata we are about to send as trailers (kyufu_grpc_call_respond_md):
 *   - names: 1 or more of [0-9a-z_.-] (gRPC's Header-Name, lower case);
 *     not reserved: pseudo-headers, "grpc-*", te, content-type,
 *     content-length, user-agent, host, accept-encoding, content-encoding
 *     and the HTTP/2 connection fields (connection, keep-alive, ...);
 *   - values: printable ASCII 0x20..0x7E, not empty, no leading or trailing
 *     space; a name ending in "-bin" takes base64 characters only;
 *   - at most KYUFU_GRPC_TRAILER_ENTRIES_MAX entries and
 *     KYUFU_GRPC_TRAILER_BYTES_MAX bytes (name + value + 32 each).
 * Returns 0, KYUFU_API_EINVALID (a bad or reserved name, a bad value, NULL)
 * or KYUFU_API_ELIMIT (too many or too large).  n == 0 is valid. */
int kyufu_grpc_metadata_check(const struct kyufu_grpc_metadata *md, size_t n);

/* The value of the first entry named `name` (exact, lower case), or NULL. */
const char *kyufu_grpc_metadata_find(const struct kyufu_grpc_metadata *md,
                                     size_t n,
                                     const char *name);

/* Parse a grpc-timeout header value ("1S", "250m", "100000u", ...: 1 to 8
 * digits and a unit H M S m u n).  On success *timeout_ms is the timeout in
 * milliseconds, rounded UP (a 1n timeout is 1 ms, never 0) and capped at
 * KYUFU_GRPC_TIMEOUT_MS_MAX.  Returns 0 or KYUFU_API_EINVALID. */
int kyufu_grpc_timeout_parse(const char *value, size_t len, uint64_t *timeout_ms);

/* Format a timeout in milliseconds as a grpc-timeout value into buf (at least
 * 16 bytes); picks the finest unit that fits 8 digits. */
void kyufu_grpc_timeout_format(uint64_t timeout_ms, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * 1. Server connection (sans-I/O)
 * --------------------------------------------------------------------- */

struct kyufu_grpc_server_conn; /* Opaque. */
struct kyufu_grpc_health;      /* Opaque, see section 2. */

/* One unary call handed to a handler.  Fields are read-only for the
 * handler, except user_data and on_cancel, which are the handler's.
 *
 * Lifetime (the rule every handler must follow):
 *  - The call is valid from the handler invocation until the handler calls
 *    kyufu_grpc_call_respond(call, ...) (or _respond_md) exactly once.
 *    Respond releases it:
 *    after respond returns, the handler must not touch the call again.
 *  - Every call handed to a handler MUST eventually be responded to, even
 *    when it was cancelled; otherwise it leaks.
 *  - If the client resets the stream, the deadline passes, or the
 *    connection is freed before respond, the call is cancelled: on_cancel
 *    (if the handler set it) is called once, synchronously, from inside
 *    kyufu_grpc_server_conn_recv / _advance / _free, and `cancelled` becomes
 *    true.  The call stays valid after on_cancel; the later respond sends
 *    nothing and just frees it.  on_cancel must not call respond itself
 *    (respond later, e.g. when the operation it started completes).
 *  - The call does not keep the connection alive: a call may outlive its
 *    connection (it is detached and cancelled when the connection is freed).
 */
struct kyufu_grpc_call
{
    /* Borrowed from the call, valid until respond. */
    const char *method;          /* "/kyufu.v1.Ledger/CreateProgram" */
    const uint8_t *request;      /* the one request message (may be NULL if 0 bytes) */
    size_t request_len;
    bool has_deadline;           /* the client sent grpc-timeout */
    uint64_t timeout_ms;         /* its value (0 if none) */
    uint64_t deadline_ms;        /* now_ms at arrival + timeout_ms (UINT64_MAX if none) */
    const char *peer_address;    /* "127.0.0.1:53412" or "" (from conn_new) */
    const char *peer_identity;   /* verified client cert subject, "" if none */
    /* Identity (issue 8): the verified client certificate's SHA-256 over
     * its DER encoding (has_cert false and zeros when the client sent none
     * or it did not verify), and the node id it names as SAN URI
     * KYUFU_TLS_NODE_URI_PREFIX "N" (0: not a node's certificate).  Set by
     * the connection (kyufu_grpc_server_conn_set_peer_cert). */
    bool has_cert;
    uint8_t cert_sha256[32];
    uint64_t peer_node_id;
    const char *authority;       /* :authority, "" if absent */
    const char *request_id;      /* x-request-id metadata, "" if absent */
    const struct kyufu_grpc_metadata *metadata; /* custom headers */
    size_t n_metadata;
    bool cancelled;              /* set before on_cancel is called */

    /* The handler's. */
    void *user_data;
    void (*on_cancel)(struct kyufu_grpc_call *call);

    void *internal;              /* Private. */
};

/* A method handler: invoked once per complete call, from inside
 * kyufu_grpc_server_conn_recv.  It may respond before returning or later. */
typedef void (*kyufu_grpc_handler_fn)(void *data, struct kyufu_grpc_call *call);

/* One entry of a method table: full path -> handler.  A path not in the
 * table (and not a health method) is answered UNIMPLEMENTED by the
 * connection without reaching any handler. */
struct kyufu_grpc_method
{
    const char *path;            /* "/kyufu.v1.Ledger/CreateProgram" */
    kyufu_grpc_handler_fn handler;
    void *data;                  /* passed to handler */
};

struct kyufu_grpc_server_config
{
    const struct kyufu_grpc_method *methods; /* borrowed; must outlive conns */
    size_t n_methods;
    /* Health table served at /grpc.health.v1.Health/{Check,Watch}; NULL
     * means those paths are UNIMPLEMENTED.  Borrowed; must outlive conns. */
    struct kyufu_grpc_health *health;
    /* 0 means the KYUFU_GRPC_* default from api/grpc_limits.h; larger values than
     * the defaults are refused (EINVALID). */
    uint32_t message_bytes_max;
    uint32_t concurrent_streams_max;
    /* Called when a respond from OUTSIDE kyufu_grpc_server_conn_recv (an
     * async answer) has queued output: the I/O layer should drain
     * kyufu_grpc_server_conn_pending_output soon.  Never called from inside
     * recv (the caller drains after recv anyway) and never from
     * conn_free.  May be NULL for callers that drain after every call. */
    void (*on_output)(struct kyufu_grpc_server_conn *conn, void *data);
    void *data;
};

/* Create a connection for one accepted client.  peer_address and
 * peer_identity are copied (either may be NULL); now_ms is the caller's
 * monotonic clock (e.g. uv_now).  Queues our SETTINGS frame.  The config is
 * copied; the method table and health object it points to are borrowed. */
int kyufu_grpc_server_conn_new(const struct kyufu_grpc_server_config *config,
                               const char *peer_address,
                               const char *peer_identity,
                               uint64_t now_ms,
                               struct kyufu_grpc_server_conn **out);

/* Identity (issue 8): the verified client certificate of this connection,
 * its DER SHA-256 and the node id it names (0: none), copied into every
 * call handed to a handler from now on (kyufu_grpc_call.has_cert etc.).
 * The libuv server sets it right after conn_new; tests may set any. */
void kyufu_grpc_server_conn_set_peer_cert(struct kyufu_grpc_server_conn *conn,
                                          const uint8_t sha256[32],
                                          uint64_t node_id);

/* Feed bytes received from the client.  May invoke handlers and on_cancel
 * callbacks.  A call's deadline is the connection's clock + grpc-timeout, so
 * the caller moves the clock to now (kyufu_grpc_server_conn_advance) before
 * every recv; the clock never moves by itself.  Returns 0, or KYUFU_API_EPROTO when the bytes are not HTTP/2
 * (e.g. an HTTP/1.1 request, garbage) or break the protocol: the connection
 * is then finished; the caller drains the output (which may hold a GOAWAY)
 * and closes.  A stream-level error (bad headers, oversized message...)
 * only ends that stream; recv still returns 0. */
int kyufu_grpc_server_conn_recv(struct kyufu_grpc_server_conn *conn,
                                const uint8_t *data,
                                size_t len);

/* Next chunk of bytes to send; returns its length (0 when nothing is
 * pending) and sets *data to a buffer owned by the connection, valid until
 * the next call on this connection.  Call in a loop until it returns 0. */
size_t kyufu_grpc_server_conn_pending_output(struct kyufu_grpc_server_conn *conn,
                                             const uint8_t **data);

/* Move the connection's clock to now_ms (monotonic, never backwards).
 * Calls whose deadline is <= now_ms are answered DEADLINE_EXCEEDED and
 * cancelled (on_cancel). */
void kyufu_grpc_server_conn_advance(struct kyufu_grpc_server_conn *conn,
                                    uint64_t now_ms);

/* Earliest deadline of a call in flight, UINT64_MAX if none: when to call
 * advance next. */
uint64_t kyufu_grpc_server_conn_next_deadline(const struct kyufu_grpc_server_conn *conn);

/* Graceful shutdown: GOAWAY naming the last stream accepted; calls in
 * flight complete, new streams are refused.  Drain output afterwards. */
void kyufu_grpc_server_conn_shutdown(struct kyufu_grpc_server_conn *conn);

/* True when the connection has nothing more to do: the peer or we ended the
 * session and all output has been drained.  The caller then closes. */
bool kyufu_grpc_server_conn_finished(const struct kyufu_grpc_server_conn *conn);

/* Number of open streams (requests received or being answered). */
size_t kyufu_grpc_server_conn_streams(const struct kyufu_grpc_server_conn *conn);

/* Free the connection.  Calls not yet responded to are cancelled (on_cancel
 * fires) and detached: their later respond frees them.  No output. */
/* Request bytes received and held, not yet credited back to the peer's flow
 * control window (at most KYUFU_GRPC_CONNECTION_WINDOW_BYTES). */
size_t kyufu_grpc_server_conn_buffered(const struct kyufu_grpc_server_conn *conn);

void kyufu_grpc_server_conn_free(struct kyufu_grpc_server_conn *conn);

/* Answer a call.  status is a kyufu_grpc_status; message is a human-readable
 * text (may be NULL), sent percent-encoded as grpc-message and cut at
 * KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX.  With status OK, the response bytes
 * (len may be 0) are sent as one message; with any other status they are
 * ignored and a Trailers-Only response is sent.  The bytes are copied.
 * Always consumes the call (see the lifetime rule above); on a cancelled or
 * detached call it sends nothing.  A response larger than
 * KYUFU_GRPC_MESSAGE_BYTES_MAX is replaced by RESOURCE_EXHAUSTED. */
void kyufu_grpc_call_respond(struct kyufu_grpc_call *call,
                             int status,
                             const char *message,
                             const uint8_t *response,
                             size_t response_len);

/* Same, with trailer metadata: the entries (copied) are sent in the
 * response's trailers, after grpc-status and grpc-message, whatever the
 * status (with a non-OK status they go in the one HEADERS frame of the
 * Trailers-Only response, which gRPC clients report as trailing metadata).
 * The entries are validated first (kyufu_grpc_metadata_check); if they fail,
 * the call is STILL answered with status, message and response, but without
 * any trailer, and the check's error is returned, so a handler's mistake
 * never loses an answer.  Returns 0 otherwise (also on a cancelled call, and
 * when the response was replaced by RESOURCE_EXHAUSTED: the trailers go with
 * that answer).  kyufu_grpc_call_respond is this with no trailers. */
int kyufu_grpc_call_respond_md(struct kyufu_grpc_call *call,
                               int status,
                               const char *message,
                               const uint8_t *response,
                               size_t response_len,
                               const struct kyufu_grpc_metadata *trailers,
                               size_t n_trailers);

/* ------------------------------------------------------------------------
 * 2. Health service (grpc.health.v1)
 * --------------------------------------------------------------------- */

/* Values of grpc.health.v1.HealthCheckResponse.ServingStatus. */
enum kyufu_grpc_health_status {
    KYUFU_GRPC_HEALTH_UNKNOWN = 0,
    KYUFU_GRPC_HEALTH_SERVING = 1,
    KYUFU_GRPC_HEALTH_NOT_SERVING = 2,
};

/* A table service name -> status.  The empty name "" is the whole server;
 * it starts NOT_SERVING until the node sets it.  Check on a name never set
 * answers NOT_FOUND (as the gRPC health spec says); a request that does not
 * parse answers INVALID_ARGUMENT.  Watch is answered with one message (the
 * current status) and OK: a single-response Watch, documented in
 * docs/api.md. */
int kyufu_grpc_health_new(struct kyufu_grpc_health **out);
void kyufu_grpc_health_free(struct kyufu_grpc_health *health);
/* Set (or add) a service's status.  Returns KYUFU_API_EINVALID for a name
 * longer than KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX, ELIMIT when the table is
 * full. */
int kyufu_grpc_health_set(struct kyufu_grpc_health *health,
                          const char *service,
                          enum kyufu_grpc_health_status status);
enum kyufu_grpc_health_status kyufu_grpc_health_get(const struct kyufu_grpc_health *health,
                                                    const char *service);

/* ------------------------------------------------------------------------
 * 3. TLS policy
 * --------------------------------------------------------------------- */

/* The CRYPTREC-derived TLS policy every context of this module enforces.
 * Static strings in OpenSSL syntax; tests compare them and the negotiated
 * parameters against it. */
struct kyufu_tls_policy
{
    int min_version;             /* TLS1_2_VERSION */
    int max_version;             /* TLS1_3_VERSION */
    const char *tls13_ciphersuites; /* "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384" */
    const char *tls12_cipher_list;  /* ECDHE-{ECDSA,RSA}-AES{128,256}-GCM-SHA{256,384} */
    const char *groups;          /* "P-256:P-384" */
    const char *alpn;            /* "h2" */
};
const struct kyufu_tls_policy *kyufu_tls_policy(void);

/* A node certificate names its Raft node id N as the subject alternative
 * name URI KYUFU_TLS_NODE_URI_PREFIX "N" (decimal, exactly one such URI):
 * the Raft port accepts only such certificates, and only for the id they
 * name (docs/peer-tls.md).  kyufuctl cluster init writes it. */
#define KYUFU_TLS_NODE_URI_PREFIX "urn:kyufu:node:"

/* ------------------------------------------------------------------------
 * 4. libuv server
 * --------------------------------------------------------------------- */

/* Address allow-list (allow.c): up to KYUFU_ALLOW_NETS_MAX networks.
 * Addresses are kept as IPv6, IPv4 ones mapped (::ffff:a.b.c.d). */
struct kyufu_allow_net
{
    uint8_t addr[16];
    uint8_t bits; /* prefix length over the 128-bit form */
};
struct kyufu_allow
{
    struct kyufu_allow_net nets[KYUFU_ALLOW_NETS_MAX];
    size_t n; /* 0: no list, everyone allowed */
};

/* Parse "NET, NET ..." (commas and/or blanks), each NET an IPv4 or IPv6
 * address with an optional /BITS.  Returns 0, or KYUFU_API_EINVALID with
 * the offending item in errmsg (out untouched). */
int kyufu_allow_parse(const char *text,
                      struct kyufu_allow *out,
                      char *errmsg,
                      size_t errlen);

/* Whether an AF_INET/AF_INET6 address is in the list (true for a NULL or
 * empty list). */
bool kyufu_allow_match(const struct kyufu_allow *allow,
                       const struct sockaddr *addr);

/* Why the server turned a connection away, for the owner's log.  REVOKED:
 * an open connection closed because a CRL reload revoked the certificate it
 * was made with (kyufu_api_server_reload_tls); the others at accept or
 * during the handshake. */
#define KYUFU_API_REFUSALS(X)                                                \
    X(CONNECTIONS, "too many connections")                                  \
    X(PER_ADDRESS, "too many connections from this address")                \
    X(NOT_ALLOWED, "address not in the allow-list")                         \
    X(HANDSHAKE, "TLS handshake failed")                                     \
    X(HANDSHAKE_TIMEOUT, "TLS handshake not finished in time")              \
    X(REVOKED, "certificate revoked")

enum kyufu_api_refusal_kind {
#define KYUFU_API__REFUSAL_ENUM(name, text) KYUFU_API_REFUSED_##name,
    KYUFU_API_REFUSALS(KYUFU_API__REFUSAL_ENUM)
#undef KYUFU_API__REFUSAL_ENUM
};
/* How many kinds (arrays indexed by kind), counted from the list itself
 * so that a kind added to it can never index past such an array. */
#define KYUFU_API__REFUSAL_ONE(name, text) +1
#define KYUFU_API_REFUSAL_KINDS (0 KYUFU_API_REFUSALS(KYUFU_API__REFUSAL_ONE))
const char *kyufu_api_refusal_name(enum kyufu_api_refusal_kind kind);

struct kyufu_api_refusal
{
    enum kyufu_api_refusal_kind kind;
    const char *peer;    /* "ip:port" */
    const char *subject; /* certificate subject the peer presented, verified
                            or not ("" if none) */
    const char *detail;  /* OpenSSL's reason etc. ("" if none) */
};

struct kyufu_api_server; /* Opaque. */

struct kyufu_api_server_config
{
    const char *host;            /* listen address, numeric ("127.0.0.1", "::") */
    uint16_t port;               /* 0: pick a free port (see kyufu_api_server_port) */
    const char *cert_file;       /* PEM server certificate chain */
    const char *key_file;        /* PEM private key */
    const char *ca_file;         /* PEM CA for client certs; NULL: no client auth */
    bool require_client_cert;    /* mutual TLS: refuse clients without a cert
                                    from ca_file (needs ca_file) */
    const char *crl_file;        /* PEM CRL(s) signed by ca_file's CA; NULL: no
                                    revocation check (api__tls_ctx_set_crl) */
    const struct kyufu_grpc_method *methods; /* borrowed; outlives the server */
    size_t n_methods;
    /* 0 means the default from api/grpc_limits.h. */
    uint32_t connections_max;
    uint64_t handshake_timeout_ms;
    uint64_t idle_timeout_ms;
    uint32_t message_bytes_max;
    uint32_t connections_per_address_max;
    /* Borrowed, outlives the server; NULL or empty: every address. */
    const struct kyufu_allow *allow;
    /* Called on the loop thread for each connection turned away (strings
     * valid during the call); NULL: nothing reported.  The owner rate-limits
     * what it logs. */
    void (*on_refusal)(void *data, const struct kyufu_api_refusal *refusal);
    void *refusal_data;
};

/* Bind, listen and start accepting.  All files are read now; a bad
 * certificate, key or CA is an error here (ETLS with errmsg), never at the
 * first connection.  On error nothing is left open and *out is untouched.
 * The server owns a health table (see kyufu_api_server_set_health). */
int kyufu_api_server_start(uv_loop_t *loop,
                           const struct kyufu_api_server_config *config,
                           struct kyufu_api_server **out,
                           char *errmsg,
                           size_t errmsg_len);

/* The bound port (useful with port 0). */
uint16_t kyufu_api_server_port(const struct kyufu_api_server *server);

/* Certificate rotation: read the config's cert, key, CA and CRL files again and
 * use them for every connection accepted from now on; connections open now
 * keep the identity they were made with.  On error (ETLS with errmsg) the
 * server keeps its current files, so a half-copied rotation never takes a
 * node off the network.
 *
 * Revocation: on success, every open connection whose client certificate
 * (the one it presented at its handshake) the new CRL revokes is closed
 * now, each reported to on_refusal as KYUFU_API_REFUSED_REVOKED with the
 * peer, the subject and the serial in `detail`; its calls in flight are
 * cancelled (their on_cancel runs; the client sees the connection end, a
 * gRPC client UNAVAILABLE) as on any connection loss.  A handshake that
 * was under way at the reload is checked against the new CRL when it
 * finishes. */
int kyufu_api_server_reload_tls(struct kyufu_api_server *server,
                                char *errmsg,
                                size_t errmsg_len);

/* True when the CRL in use (crl_file, as last loaded) is past its
 * nextUpdate: still enforced, but the operator should issue a fresh one
 * (docs/operations.md "Terminals and revocation"). */
bool kyufu_api_server_crl_expired(const struct kyufu_api_server *server);

/* Set the health status served for a service name ("" = whole server). */
int kyufu_api_server_set_health(struct kyufu_api_server *server,
                                const char *service,
                                enum kyufu_grpc_health_status status);

/* Open connections now. */
size_t kyufu_api_server_connections(const struct kyufu_api_server *server);

/* Stop listening, cancel calls in flight (their handlers get on_cancel and
 * must still respond), close every connection and handle; close_cb fires
 * after the last handle is closed, from the loop, never synchronously.
 * The server's memory is freed after close_cb returns.  Not from inside a
 * method handler or anything it calls synchronously: a handler runs inside
 * its connection's receive, whose session this would free (it asserts);
 * defer the close to a callback of its own (node.c does). */
typedef void (*kyufu_api_server_close_cb)(struct kyufu_api_server *server, void *data);
void kyufu_api_server_close(struct kyufu_api_server *server,
                            kyufu_api_server_close_cb close_cb,
                            void *data);

/* ------------------------------------------------------------------------
 * 5. Client
 * --------------------------------------------------------------------- */

/* One connection to one endpoint, on one libuv loop.  It connects lazily on
 * the first call and again on the first call after a failure; calls made
 * while connecting wait for the handshake.  All calls multiplex on one
 * HTTP/2 connection.  Failure of the connection (refused, TLS failure,
 * reset, GOAWAY for streams not processed, connect timeout) fails every
 * pending call with UNAVAILABLE and a message saying why. */
struct kyufu_grpc_client; /* Opaque. */

struct kyufu_grpc_client_config
{
    const char *host;            /* numeric address or name (resolved with getaddrinfo) */
    uint16_t port;
    const char *ca_file;         /* PEM CA the server cert must chain to (required) */
    const char *cert_file;       /* PEM client cert for mutual TLS, or NULL */
    const char *key_file;        /* its key, or NULL */
    /* Name the server certificate must match (SAN DNS or IP) and SNI;
     * NULL means host. */
    const char *server_name;
    /* The node this client calls (node to node: node/forward.c), or 0.
     * When set, the server certificate must also name exactly this node
     * (SAN URI KYUFU_TLS_NODE_URI_PREFIX "N", as on the Raft port: docs/
     * peer-tls.md "API calls between nodes"); otherwise the connection
     * fails after its handshake, before any request is sent, and its calls
     * end UNAVAILABLE ("... server certificate names node 3, expected node
     * 2", or "... names no single valid node URN, expected node 2").  0: any server
     * certificate that chains to ca_file and matches server_name. */
    uint64_t server_node_id;
    /* With server_node_id 0: the server certificate must still name exactly
     * one valid node, whichever it is (a joining node asking the addresses
     * it was given for the cluster key: any member will do, but only a
     * member; "... names no single valid node URN, expected a node"). */
    bool server_any_node;
    /* PEM CRL(s) signed by ca_file's CA (as the server's crl_file), or
     * NULL.  A server certificate it revokes fails the handshake ("...
     * certificate revoked"); one past its nextUpdate is still enforced.
     * Read once, here: a new CRL needs a new client (node/forward.c makes
     * one after every TLS reload). */
    const char *crl_file;
    uint64_t connect_timeout_ms; /* 0: KYUFU_GRPC_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT */
    uint32_t message_bytes_max;  /* largest response accepted; 0: default */
    /* With calls in flight and nothing received for keepalive_ms, send a
     * PING; with nothing received for twice that, fail the connection
     * (UNAVAILABLE).  0: KYUFU_GRPC_CLIENT_KEEPALIVE_MS. */
    uint64_t keepalive_ms;
};

/* Create a client.  Reads the certificate files now (errors: ETLS with
 * errmsg).  Does not connect yet.  All strings are copied. */
int kyufu_grpc_client_new(uv_loop_t *loop,
                          const struct kyufu_grpc_client_config *config,
                          struct kyufu_grpc_client **out,
                          char *errmsg,
                          size_t errmsg_len);

struct kyufu_grpc_client_req;

/* Completion of a call, called exactly once per successful
 * kyufu_grpc_client_call, always from the loop (never synchronously inside
 * kyufu_grpc_client_call).  status is a kyufu_grpc_status; message is the
 * server's decoded grpc-message or a local reason, never NULL; response and
 * response_len are the response message (status OK only; NULL/0
 * otherwise).  All three are borrowed for the duration of the callback.
 * The response's metadata is in req->headers and req->trailers (below).
 * The req may be reused or freed inside the callback. */
typedef void (*kyufu_grpc_client_cb)(struct kyufu_grpc_client_req *req,
                                     int status,
                                     const char *message,
                                     const uint8_t *response,
                                     size_t response_len);

/* A caller-allocated request: set data, leave the rest to the library.  It
 * must stay valid until its callback runs. */
struct kyufu_grpc_client_req
{
    void *data;                  /* the caller's */
    /* Set by the library right before the callback, borrowed from the call
     * and valid only during the callback: the custom metadata the server
     * sent in the response's headers and in its trailers (of a Trailers-Only
     * response every entry counts as a trailer, as in gRPC).  Pseudo-headers,
     * grpc-* and the other reserved names of kyufu_grpc_metadata_check are
     * left out; at most KYUFU_GRPC_METADATA_ENTRIES_MAX of each are kept and
     * values are not validated (the server may be anyone).  Empty (NULL, 0)
     * when the call failed locally (no answer, deadline, cancel). */
    const struct kyufu_grpc_metadata *headers;
    size_t n_headers;
    const struct kyufu_grpc_metadata *trailers;
    size_t n_trailers;
    /* Set like the metadata: true when status is the server's own
     * grpc-status; false when the call failed on this side (resolve,
     * connect, TLS, broken connection, stream refused or reset, deadline,
     * cancel).  Lets a caller tell "this node is down" from "this node
     * answered UNAVAILABLE". */
    bool answered;
    /* Set like answered: the node the server certificate named
     * (urn:kyufu:node:N, api/tls.h) when the call was answered; 0 when it
     * names none or the call was not answered. */
    uint64_t server_node_id;
    void *internal;              /* Private. */
};

/* Start a unary call.  method is the full path ("/kyufu.v1.Ledger/GetProgram");
 * request bytes and metadata are copied.  timeout_ms 0 means no deadline;
 * otherwise grpc-timeout is sent and, if the answer has not come in time,
 * the stream is reset (RST_STREAM CANCEL) and cb gets DEADLINE_EXCEEDED.
 * Returns 0 (cb will be called) or an error (EINVALID, ENOMEM, ECLOSED
 * after kyufu_grpc_client_close; cb will NOT be called). */
int kyufu_grpc_client_call(struct kyufu_grpc_client *client,
                           struct kyufu_grpc_client_req *req,
                           const char *method,
                           const uint8_t *request,
                           size_t request_len,
                           uint64_t timeout_ms,
                           const struct kyufu_grpc_metadata *metadata,
                           size_t n_metadata,
                           kyufu_grpc_client_cb cb);

/* Cancel a pending call: its callback fires from the loop with CANCELLED
 * (the stream is reset).  No effect if it already completed. */
void kyufu_grpc_client_cancel(struct kyufu_grpc_client_req *req);

/* Calls pending (sent or waiting for the connection). */
size_t kyufu_grpc_client_pending(const struct kyufu_grpc_client *client);

/* Close: pending calls complete with CANCELLED ("client closed"), the
 * connection is closed; close_cb fires from the loop after every handle is
 * closed and every callback has run.  Memory is freed after close_cb. */
typedef void (*kyufu_grpc_client_close_cb)(struct kyufu_grpc_client *client, void *data);
void kyufu_grpc_client_close(struct kyufu_grpc_client *client,
                             kyufu_grpc_client_close_cb close_cb,
                             void *data);

#endif /* KYUFU_API_GRPC_H */
