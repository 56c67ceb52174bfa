/* The metrics listener: HTTP/1.1 `GET /metrics` on its own port, plain or
 * TLS (api/tls.c's context and policy, ALPN http/1.1), on the node's loop
 * (docs/metrics.md).
 *
 * One request per connection: the answer carries `Connection: close` and
 * the connection is shut down once it is written.  The body is produced
 * by the owner's render callback, on the loop thread, when a complete
 * request has arrived; nothing else the listener does blocks (reads and
 * writes are libuv's, TLS runs over memory BIOs).
 *
 * Hostile input: a request line and headers over
 * KYUFU_NODE_METRICS_REQUEST_BYTES_MAX get 431; not complete within
 * KYUFU_NODE_METRICS_HEADER_MS: closed; a method other than GET: 405; a
 * path other than /metrics: 404; anything that is not HTTP/1.x, or a GET
 * with a body: 400; over KYUFU_NODE_METRICS_CONNECTIONS_MAX connections:
 * closed at accept; a failed TLS handshake: closed.  Each is counted by
 * reason (kyufu_metrics_http_stats) and changes nothing else. */
#ifndef KYUFU_NODE_METRICS_HTTP_H
#define KYUFU_NODE_METRICS_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "metrics.h"

#define KYUFU_METRICS_HTTP_REFUSALS(X)                                       \
    X(CONNECTIONS, "connections")   /* over the connection cap */           \
    X(TOO_LARGE, "too_large")       /* request over the size bound (431) */ \
    X(TIMEOUT, "timeout")           /* request not complete in time */      \
    X(METHOD, "method")             /* not GET (405) */                     \
    X(NOT_FOUND, "not_found")       /* not /metrics (404) */                \
    X(BAD_REQUEST, "bad_request")   /* not HTTP/1.x, or a body (400) */     \
    X(TLS, "tls")                   /* TLS handshake failed */

enum kyufu_metrics_http_refusal {
#define KYUFU_METRICS_HTTP__ENUM(name, text) KYUFU_METRICS_HTTP_REFUSED_##name,
    KYUFU_METRICS_HTTP_REFUSALS(KYUFU_METRICS_HTTP__ENUM)
#undef KYUFU_METRICS_HTTP__ENUM
    KYUFU_METRICS_HTTP_REFUSED_COUNT
};

/* The label value of a reason (static). */
const char *kyufu_metrics_http_refusal_name(enum kyufu_metrics_http_refusal r);

/* Fill `out` (initialised, empty) with the exposition; 0, or -1 when it
 * could not be made (answered 500). */
typedef int (*kyufu_metrics_http_render_fn)(void *data,
                                            struct kyufu_metrics_buf *out);

struct kyufu_metrics_http_config
{
    const char *host; /* numeric IPv4 or IPv6 literal */
    uint16_t port;    /* 0: any free port (kyufu_metrics_http_port) */
    /* TLS: all three set, or cert_file NULL for plain HTTP.  Read now; the
     * listener keeps the context it made (borrowed strings). */
    const char *cert_file;
    const char *key_file;
    const char *ca_file;
    bool require_client_cert; /* TLS only: a certificate from ca_file */
    kyufu_metrics_http_render_fn render;
    void *render_data;
};

struct kyufu_metrics_http_stats
{
    uint64_t scrapes;        /* 200 answers */
    uint64_t refused[KYUFU_METRICS_HTTP_REFUSED_COUNT];
    uint64_t serve_ns_last;  /* loop time of the last 200: parse, render,
                                encrypt (TLS), queue (wall clock) */
    uint64_t serve_cpu_ns_last; /* the same in the loop thread's CPU time
                                   (what it cost, preemption left out) */
    uint64_t body_bytes_last;
};

struct kyufu_metrics_http; /* Opaque. */

/* Listen on host:port.  0, or -1 with errmsg (address, bind, TLS files). */
int kyufu_metrics_http_start(uv_loop_t *loop,
                             const struct kyufu_metrics_http_config *config,
                             struct kyufu_metrics_http **out,
                             char *errmsg,
                             size_t errmsg_len);
uint16_t kyufu_metrics_http_port(const struct kyufu_metrics_http *h);
void kyufu_metrics_http_stats(const struct kyufu_metrics_http *h,
                              struct kyufu_metrics_http_stats *out);
/* Certificate rotation (SIGHUP): read the TLS files again for every
 * connection accepted from now on (open ones keep theirs).  0, or -1 with
 * errmsg and the current files kept; 0 and nothing done without TLS. */
int kyufu_metrics_http_reload_tls(struct kyufu_metrics_http *h,
                                  const struct kyufu_metrics_http_config *config,
                                  char *errmsg,
                                  size_t errmsg_len);
/* Close the listener and every connection; `cb` runs (from a close
 * callback) once every handle is closed and h is freed. */
void kyufu_metrics_http_close(struct kyufu_metrics_http *h,
                              void (*cb)(void *data),
                              void *data);

#endif /* KYUFU_NODE_METRICS_HTTP_H */
