/* The metrics listener: see metrics_http.h.
 *
 * Happy path: accept -> (TLS handshake over memory BIOs) -> read until the
 * blank line that ends the headers -> parse the request line -> render ->
 * one write of status line, headers and body (encrypted first with TLS)
 * -> close_notify (TLS) -> uv_shutdown so the bytes leave -> uv_close.
 *
 * Failure modes: see the header; every refusal ends the connection, after
 * its short answer (or the TLS alert) is flushed, and is counted.  One
 * timer per connection: the request deadline until it is answered, then
 * the connection's whole-life deadline (a client that never reads its
 * answer is closed at it).  Memory: one struct conn (with its request
 * buffer) per connection, at most KYUFU_NODE_METRICS_CONNECTIONS_MAX, and
 * the answer while it is written. */
#include "metrics_http.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "grpc.h" /* KYUFU_API_E* of api__tls_* */
#include "limits.h"
#include "tls.h"

struct conn
{
    struct kyufu_metrics_http *h;
    struct conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    bool tls_on;
    struct api__tls tls;
    uint64_t close_deadline_ms;
    bool answered; /* the answer is queued: nothing more is read */
    bool closing;
    int handles_open;
    size_t req_len;
    char req[KYUFU_NODE_METRICS_REQUEST_BYTES_MAX + 1];
};

struct write_req
{
    uv_write_t req;
    size_t len;
    char data[];
};

struct kyufu_metrics_http
{
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    SSL_CTX *ctx; /* NULL: plain HTTP */
    struct conn *conns;
    size_t n_conns;
    size_t n_dropping; /* refused at accept, still closing (own handles) */
    struct kyufu_metrics_http_stats stats;
    kyufu_metrics_http_render_fn render;
    void *render_data;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

const char *kyufu_metrics_http_refusal_name(enum kyufu_metrics_http_refusal r)
{
    switch (r) {
#define KYUFU_METRICS_HTTP__STR(name, text)                                  \
    case KYUFU_METRICS_HTTP_REFUSED_##name:                                  \
        return text;
        KYUFU_METRICS_HTTP_REFUSALS(KYUFU_METRICS_HTTP__STR)
#undef KYUFU_METRICS_HTTP__STR
    case KYUFU_METRICS_HTTP_REFUSED_COUNT:
        break;
    }
    return "unknown";
}

static void maybe_closed(struct kyufu_metrics_http *h)
{
    if (!h->closing || h->listener_open || h->n_conns > 0 ||
        h->n_dropping > 0) {
        return;
    }
    if (h->ctx != NULL) {
        SSL_CTX_free(h->ctx);
    }
    void (*cb)(void *) = h->close_cb;
    void *data = h->close_data;
    free(h);
    if (cb != NULL) {
        cb(data);
    }
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    assert(c->handles_open > 0);
    if (--c->handles_open > 0) {
        return;
    }
    struct kyufu_metrics_http *h = c->h;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->tls_on) {
        api__tls_close(&c->tls);
    }
    free(c);
    assert(h->n_conns > 0);
    h->n_conns--;
    maybe_closed(h);
}

static void conn_close(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write ends with the connection anyway */
    free(req);
}

/* Queue `len` bytes as they are (ciphertext or plain). */
static int write_raw(struct conn *c, const char *data, size_t len)
{
    struct write_req *w = malloc(sizeof *w + len);
    if (w == NULL) {
        return -1;
    }
    memcpy(w->data, data, len);
    w->len = len;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(w);
        return -1;
    }
    return 0;
}

/* With TLS: move the ciphertext SSL produced to the socket. */
static int flush_tls(struct conn *c)
{
    char chunk[16384];
    while (api__tls_pending(&c->tls) > 0) {
        size_t n = api__tls_take(&c->tls, (uint8_t *)chunk, sizeof chunk);
        if (n == 0 || write_raw(c, chunk, n) != 0) {
            return -1;
        }
    }
    return 0;
}

static int write_out(struct conn *c, const char *data, size_t len)
{
    if (!c->tls_on) {
        return write_raw(c, data, len);
    }
    if (api__tls_write(&c->tls, (const uint8_t *)data, len) != 0) {
        return -1;
    }
    return flush_tls(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (!c->answered) {
        /* Request (or handshake) not complete in time: slow headers. */
        c->h->stats.refused[KYUFU_METRICS_HTTP_REFUSED_TIMEOUT]++;
    }
    /* Answered but never read by the client: its time is up. */
    conn_close(c);
}

/* Queue the answer, then end the connection once it has left. */
static void answer(struct conn *c, const char *status, const char *extra,
                   const char *body, size_t body_len)
{
    assert(!c->answered && !c->closing);
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, extra, body_len);
    assert(n > 0 && (size_t)n < sizeof head);
    bool ok = write_out(c, head, (size_t)n) == 0 &&
              (body_len == 0 || write_out(c, body, body_len) == 0);
    if (ok && c->tls_on) {
        api__tls_shutdown(&c->tls);
        ok = flush_tls(c) == 0;
    }
    if (!ok) {
        conn_close(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) !=
        0) {
        conn_close(c);
        return;
    }
    uint64_t now = uv_now(c->h->loop);
    uv_timer_start(&c->timer, on_timer,
                   c->close_deadline_ms > now ? c->close_deadline_ms - now : 0,
                   0);
}

static void refuse(struct conn *c, enum kyufu_metrics_http_refusal why,
                   const char *status, const char *extra)
{
    c->h->stats.refused[why]++;
    answer(c, status, extra, "", 0);
}

/* The value of header `name` in the request's header lines (NULL if
 * absent); `len` gets its length. */
static const char *header(const char *headers, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *p = headers; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol == p) {
            return NULL;
        }
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            *len = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* CPU time of the calling thread (the loop's), nanoseconds. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Render and answer; times the whole of it (from the complete request: t0
 * on the loop's clock, cpu0 in its CPU time) as the cost of a scrape. */
static void serve(struct conn *c, uint64_t t0, uint64_t cpu0)
{
    struct kyufu_metrics_http *h = c->h;
    struct kyufu_metrics_buf b;
    kyufu_metrics_buf_init(&b);
    int rv = h->render(h->render_data, &b);
    if (rv != 0 || kyufu_metrics_buf_failed(&b)) {
        kyufu_metrics_buf_free(&b);
        answer(c, "500 Internal Server Error", "", "", 0);
        return;
    }
    h->stats.body_bytes_last = b.len;
    answer(c, "200 OK",
           "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
           b.data, b.len);
    kyufu_metrics_buf_free(&b);
    h->stats.scrapes++;
    h->stats.serve_ns_last = uv_hrtime() - t0;
    h->stats.serve_cpu_ns_last = thread_cpu_ns() - cpu0;
}

/* A complete request line and headers are in c->req (NUL-terminated). */
static void handle(struct conn *c)
{
    uint64_t t0 = uv_hrtime(), cpu0 = thread_cpu_ns();
    char *line_end = strstr(c->req, "\r\n");
    assert(line_end != NULL);
    *line_end = '\0';
    const char *headers = line_end + 2;
    /* METHOD SP TARGET SP HTTP/1.x, nothing else (RFC 9112 3). */
    char *sp1 = strchr(c->req, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == c->req || sp2 == sp1 + 1 ||
        strchr(sp2 + 1, ' ') != NULL ||
        (strcmp(sp2 + 1, "HTTP/1.1") != 0 &&
         strcmp(sp2 + 1, "HTTP/1.0") != 0)) {
        refuse(c, KYUFU_METRICS_HTTP_REFUSED_BAD_REQUEST, "400 Bad Request",
               "");
        return;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    const char *method = c->req, *target = sp1 + 1;
    if (strcmp(method, "GET") != 0) {
        refuse(c, KYUFU_METRICS_HTTP_REFUSED_METHOD, "405 Method Not Allowed",
               "Allow: GET\r\n");
        return;
    }
    size_t path_len = strcspn(target, "?");
    if (path_len != strlen("/metrics") ||
        strncmp(target, "/metrics", path_len) != 0) {
        refuse(c, KYUFU_METRICS_HTTP_REFUSED_NOT_FOUND, "404 Not Found", "");
        return;
    }
    size_t len = 0;
    const char *cl = header(headers, "Content-Length", &len);
    if (header(headers, "Transfer-Encoding", &len) != NULL ||
        (cl != NULL && !(len == 1 && cl[0] == '0'))) {
        refuse(c, KYUFU_METRICS_HTTP_REFUSED_BAD_REQUEST, "400 Bad Request",
               "");
        return;
    }
    serve(c, t0, cpu0);
}

/* Plaintext of the request: append, answer once the headers are whole. */
static void take(struct conn *c, const char *data, size_t len)
{
    if (c->answered || c->closing) {
        return; /* what follows the request is not read */
    }
    if (len > KYUFU_NODE_METRICS_REQUEST_BYTES_MAX - c->req_len) {
        refuse(c, KYUFU_METRICS_HTTP_REFUSED_TOO_LARGE,
               "431 Request Header Fields Too Large", "");
        return;
    }
    /* The terminator may straddle two reads: search from 3 bytes back. */
    size_t from = c->req_len >= 3 ? c->req_len - 3 : 0;
    memcpy(c->req + c->req_len, data, len);
    c->req_len += len;
    c->req[c->req_len] = '\0';
    if (memchr(c->req + from, '\0', c->req_len - from) != NULL) {
        refuse(c, KYUFU_METRICS_HTTP_REFUSED_BAD_REQUEST, "400 Bad Request",
               "");
        return;
    }
    if (strstr(c->req + from, "\r\n\r\n") != NULL) {
        handle(c);
    }
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    static char slab[16384]; /* loop thread only; consumed in on_read */
    (void)handle;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        conn_close(c); /* EOF before an answer, or an error */
        return;
    }
    if (!c->tls_on) {
        take(c, buf->base, (size_t)nread);
        return;
    }
    if (api__tls_feed(&c->tls, (const uint8_t *)buf->base, (size_t)nread) !=
        0) {
        c->h->stats.refused[KYUFU_METRICS_HTTP_REFUSED_TLS]++;
        conn_close(c);
        return;
    }
    if (!c->tls.handshake_done) {
        int r = api__tls_handshake(&c->tls);
        if (flush_tls(c) != 0 || r < 0) {
            c->h->stats.refused[KYUFU_METRICS_HTTP_REFUSED_TLS]++;
            /* The alert (if any) was queued before the close. */
            c->answered = true;
            c->shutdown_req.data = c;
            uv_read_stop(stream);
            if (uv_shutdown(&c->shutdown_req, stream, on_shutdown) != 0) {
                conn_close(c);
            }
            return;
        }
        if (r == 0) {
            return;
        }
    }
    uint8_t plain[4096];
    for (;;) {
        int n = api__tls_read(&c->tls, plain, sizeof plain);
        if (n <= 0) {
            if (n < 0 && !c->answered) {
                conn_close(c); /* close_notify or a TLS error */
            }
            return;
        }
        take(c, (const char *)plain, (size_t)n);
        if (c->answered || c->closing) {
            return;
        }
    }
}

static void free_handle(uv_handle_t *handle)
{
    struct kyufu_metrics_http *h = handle->data;
    assert(h->n_dropping > 0);
    h->n_dropping--;
    free(handle);
    maybe_closed(h);
}

/* Over the cap: accept (so the kernel's queue does not fill) and close at
 * once; the closing handle holds no slot. */
static void accept_and_close(struct kyufu_metrics_http *h)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL) {
        return;
    }
    uv_tcp_init(h->loop, t);
    t->data = h;
    h->n_dropping++;
    (void)uv_accept((uv_stream_t *)&h->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, free_handle);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct kyufu_metrics_http *h = listener->data;
    if (status != 0 || h->closing) {
        return;
    }
    if (h->n_conns >= KYUFU_NODE_METRICS_CONNECTIONS_MAX) {
        h->stats.refused[KYUFU_METRICS_HTTP_REFUSED_CONNECTIONS]++;
        accept_and_close(h);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        accept_and_close(h);
        return;
    }
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = h->conns;
    if (h->conns != NULL) {
        h->conns->prev = c;
    }
    h->conns = c;
    h->n_conns++;
    c->close_deadline_ms = uv_now(h->loop) + KYUFU_NODE_METRICS_CONNECTION_MS;
    uv_timer_start(&c->timer, on_timer, KYUFU_NODE_METRICS_HEADER_MS, 0);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (h->ctx != NULL) {
        if (api__tls_init(&c->tls, h->ctx, true, NULL) != 0) {
            conn_close(c);
            return;
        }
        c->tls_on = true;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) != 0) {
        conn_close(c);
    }
}

int kyufu_metrics_http_start(uv_loop_t *loop,
                             const struct kyufu_metrics_http_config *config,
                             struct kyufu_metrics_http **out,
                             char *errmsg,
                             size_t errmsg_len)
{
    int rv;
    struct sockaddr_storage ss;
    assert(config->render != NULL);
    if (uv_ip4_addr(config->host, config->port, (struct sockaddr_in *)&ss) !=
            0 &&
        uv_ip6_addr(config->host, config->port, (struct sockaddr_in6 *)&ss) !=
            0) {
        snprintf(errmsg, errmsg_len, "'%s' is not a numeric IP address",
                 config->host);
        return -1;
    }
    struct kyufu_metrics_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    h->loop = loop;
    h->render = config->render;
    h->render_data = config->render_data;
    if (config->cert_file != NULL) {
        rv = api__tls_server_ctx_new(config->cert_file, config->key_file,
                                     config->ca_file,
                                     config->require_client_cert,
                                     api__tls_alpn_http1, &h->ctx, errmsg,
                                     errmsg_len);
        if (rv != 0) {
            goto err_alloc;
        }
    }
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listener_open = true;
    rv = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&h->listener,
                       (int)KYUFU_NODE_METRICS_CONNECTIONS_MAX * 2,
                       on_connection);
    }
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "cannot listen on %s:%u: %s",
                 config->host, (unsigned)config->port, uv_strerror(rv));
        goto err_listener;
    }
    *out = h;
    return 0;

err_listener:
    /* The handle is closed; h is freed by maybe_closed from its close. */
    kyufu_metrics_http_close(h, NULL, NULL);
    return -1;
err_alloc:
    free(h);
    assert(rv != 0);
    return -1;
}

uint16_t kyufu_metrics_http_port(const struct kyufu_metrics_http *h)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void kyufu_metrics_http_stats(const struct kyufu_metrics_http *h,
                              struct kyufu_metrics_http_stats *out)
{
    *out = h->stats;
}

int kyufu_metrics_http_reload_tls(struct kyufu_metrics_http *h,
                                  const struct kyufu_metrics_http_config *config,
                                  char *errmsg,
                                  size_t errmsg_len)
{
    if (h->ctx == NULL || config->cert_file == NULL) {
        return 0;
    }
    SSL_CTX *ctx = NULL;
    if (api__tls_server_ctx_new(config->cert_file, config->key_file,
                                config->ca_file, config->require_client_cert,
                                api__tls_alpn_http1, &ctx, errmsg,
                                errmsg_len) != 0) {
        return -1;
    }
    /* Sessions of open connections hold their own reference (SSL_new). */
    SSL_CTX_free(h->ctx);
    h->ctx = ctx;
    return 0;
}

static void listener_closed(uv_handle_t *handle)
{
    struct kyufu_metrics_http *h = handle->data;
    h->listener_open = false;
    maybe_closed(h);
}

void kyufu_metrics_http_close(struct kyufu_metrics_http *h,
                              void (*cb)(void *data),
                              void *data)
{
    assert(!h->closing);
    h->closing = true;
    h->close_cb = cb;
    h->close_data = data;
    for (struct conn *c = h->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    uv_close((uv_handle_t *)&h->listener, listener_closed);
}
