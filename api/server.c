/* The libuv gRPC server: TCP listener, TLS over memory BIOs, the sans-I/O
 * HTTP/2 core (server_conn.c).
 *
 * Happy path: accept -> TCP_NODELAY -> TLS handshake (timer: handshake
 * timeout) -> ALPN h2 checked -> a kyufu_grpc_server_conn is created with
 * the peer address and the verified client certificate subject -> every
 * read is decrypted and fed to it -> its output is encrypted and written
 * (HTTP/2 frames gathered into TLS writes of up to 16 KiB; answers given
 * outside a read wait for the next loop turn's timer phase, so the answers
 * of one applied Raft entry leave in one socket write per connection).
 * One timer per connection is armed to the earliest of: handshake timeout,
 * idle timeout, the earliest call deadline.
 *
 * Failure modes: a connection over connections_max, over
 * connections_per_address_max from its source address, or from an address
 * outside the allow-list is accepted and closed at once; a handshake
 * failure or timeout closes it (the TLS alert, if any, is flushed first);
 * each of these is reported to the owner's on_refusal with the peer, the
 * certificate subject it presented and OpenSSL's reason; a TLS reload whose
 * CRL revokes an open connection's certificate closes it (reported too); an
 * HTTP/2 error drains the GOAWAY and closes; a peer
 * that does not read its responses stops being read from once
 * KYUFU_API_WRITE_QUEUE_BYTES_MAX are queued; an idle connection gets a
 * GOAWAY and is closed.  Closing: uv_shutdown (so queued bytes leave) then
 * uv_close of the socket and the timer; the connection's memory is freed in
 * the last close callback.  kyufu_api_server_close closes the listener and
 * every connection; its callback runs after the last handle closed.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "grpc_limits.h"
#include "tls.h"

struct conn
{
    struct kyufu_api_server *server;
    struct conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    struct api__tls tls;
    struct kyufu_grpc_server_conn *grpc;
    char peer[64];
    char ip[INET6_ADDRSTRLEN]; /* the peer's address, for the log */
    uint8_t source[16]; /* the cap's key: IPv4 mapped, IPv6 cut to its /64 */
    uint64_t handshake_deadline_ms;
    uint64_t last_activity_ms;
    size_t write_queue_bytes;
    bool reading_stopped;
    /* Output from a call answered outside a read (a committed write's
     * answer): flushed by the connection's timer, started at 0 ms, so that
     * every answer of one loop turn leaves in one socket write. */
    bool flush_due;
    bool closing;
    bool idle_goaway;
    bool refused_at_accept; /* closing since accept: holds no slot */
    int handles_open;
};

struct write_req
{
    uv_write_t req;
    struct conn *conn;
    size_t len;
    uint8_t data[];
};

struct kyufu_api_server
{
    uv_loop_t *loop;
    uv_tcp_t *listener; /* own allocation: freed in its close callback */
    SSL_CTX *ctx;
    struct kyufu_grpc_health *health;
    struct kyufu_grpc_server_config grpc_config;
    struct conn *conns;
    size_t n_conns;
    /* Of n_conns, those refused at accept whose handles are still closing
     * (freed in this loop iteration's close phase).  They hold no slot: a
     * burst refused per address must not spill into "too many
     * connections" for everyone else while its closes are pending. */
    size_t n_dropping;
    uint32_t connections_max;
    uint32_t connections_per_address_max;
    const struct kyufu_allow *allow;
    void (*on_refusal)(void *data, const struct kyufu_api_refusal *refusal);
    void *refusal_data;
    /* Files read again by kyufu_api_server_reload_tls (one allocation). */
    char *cert_file, *key_file, *ca_file, *crl_file;
    bool require_client_cert;
    bool crl_expired; /* the CRL in use is past its nextUpdate */
    unsigned long n_refused[KYUFU_API_REFUSAL_KINDS];
    uint64_t handshake_timeout_ms;
    uint64_t idle_timeout_ms;
    uint16_t port;
    bool closing;
    bool listener_open;
    kyufu_api_server_close_cb close_cb;
    void *close_data;
};

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);

static void refuse(struct kyufu_api_server *s, enum kyufu_api_refusal_kind kind,
                   const char *peer, const char *subject, const char *detail)
{
    s->n_refused[kind]++;
    if (s->on_refusal != NULL) {
        struct kyufu_api_refusal r = {kind, peer, subject, detail};
        s->on_refusal(s->refusal_data, &r);
    }
}

/* A failed or timed-out handshake: who it was (the certificate it showed,
 * verified or not) and OpenSSL's reason. */
static void refuse_handshake(struct conn *c, enum kyufu_api_refusal_kind kind)
{
    char subject[256];
    api__tls_peer_subject(&c->tls, subject, sizeof subject);
    refuse(c->server, kind, c->peer, subject,
           kind == KYUFU_API_REFUSED_HANDSHAKE ? c->tls.error : "");
}

static void maybe_server_closed(struct kyufu_api_server *s)
{
    if (!s->closing || s->listener_open || s->n_conns > 0) {
        return;
    }
    /* Every handle is closed: report, then free. */
    if (s->close_cb != NULL) {
        s->close_cb(s, s->close_data);
    }
    SSL_CTX_free(s->ctx);
    kyufu_grpc_health_free(s->health);
    free(s->cert_file);
    free(s);
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    assert(c->handles_open > 0);
    if (--c->handles_open > 0) {
        return;
    }
    struct kyufu_api_server *s = c->server;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->n_conns--;
    if (c->refused_at_accept) {
        s->n_dropping--;
    }
    api__tls_close(&c->tls);
    free(c);
    maybe_server_closed(s);
}

static void conn_close_handles(struct conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close_handles(req->data);
}

/* Close: free the gRPC session (cancelling calls), flush what TLS still has
 * (an alert, close_notify), shut the socket down after queued writes, then
 * close the handles. */
static void conn_close(struct conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    conn_flush(c); /* a GOAWAY the session queued leaves first */
    if (c->grpc != NULL) {
        kyufu_grpc_server_conn_free(c->grpc);
        c->grpc = NULL;
    }
    api__tls_shutdown(&c->tls);
    conn_flush(c);
    uv_timer_stop(&c->timer);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close_handles(c);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* Consumed synchronously by the read callback, so one buffer per thread
     * (each loop runs on one thread) is enough. */
    static _Thread_local char storage[KYUFU_API_READ_BUFFER_BYTES];
    *buf = uv_buf_init(storage, sizeof storage);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    assert(c->write_queue_bytes >= w->len);
    c->write_queue_bytes -= w->len;
    free(w);
    if (status != 0) {
        conn_close(c);
        return;
    }
    if (c->reading_stopped && !c->closing &&
        c->write_queue_bytes < KYUFU_API_WRITE_QUEUE_BYTES_MAX / 2) {
        c->reading_stopped = false;
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    }
}

/* Move everything pending out: HTTP/2 output into TLS, TLS ciphertext onto
 * the socket. */
static void conn_flush(struct conn *c)
{
    c->flush_due = false;
    if (c->grpc != NULL) {
        /* Frames gathered, so that TLS makes one record per 16 KiB, not one
         * per frame. */
        uint8_t buf[KYUFU_API_TLS_COALESCE_BYTES];
        size_t used = 0;
        const uint8_t *p;
        size_t n;
        bool failed = false;
        while (!failed &&
               (n = kyufu_grpc_server_conn_pending_output(c->grpc, &p)) > 0) {
            if (used > 0 && used + n > sizeof buf) {
                failed = api__tls_write(&c->tls, buf, used) != 0;
                used = 0;
            }
            if (failed) {
                break;
            }
            if (n >= sizeof buf) {
                failed = api__tls_write(&c->tls, p, n) != 0;
            } else {
                memcpy(buf + used, p, n);
                used += n;
            }
        }
        if (!failed && used > 0) {
            (void)api__tls_write(&c->tls, buf, used);
        }
    }
    size_t pending;
    while ((pending = api__tls_pending(&c->tls)) > 0) {
        struct write_req *w = malloc(sizeof *w + pending);
        if (w == NULL) {
            break;
        }
        w->conn = c;
        w->len = api__tls_take(&c->tls, w->data, pending);
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
        if (uv_is_closing((uv_handle_t *)&c->tcp) ||
            uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            free(w);
            break;
        }
        c->write_queue_bytes += w->len;
    }
    if (!c->closing && c->write_queue_bytes > KYUFU_API_WRITE_QUEUE_BYTES_MAX &&
        !c->reading_stopped) {
        c->reading_stopped = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void conn_arm_timer(struct conn *c);
static void on_timer(uv_timer_t *t);

/* After any event: flush, close if the HTTP/2 session is over, re-arm. */
static void conn_settle(struct conn *c)
{
    if (c->closing) {
        return;
    }
    conn_flush(c);
    if (c->grpc != NULL && kyufu_grpc_server_conn_finished(c->grpc)) {
        conn_close(c);
        return;
    }
    conn_arm_timer(c);
}

/* A call answered outside a read: the flush waits for the timer phase of
 * the next loop turn (the poll does not block while a timer is due), so
 * the answers of one applied entry leave together (docs/benchmarks.md,
 * "What limits the plateau"). */
static void on_conn_output(struct kyufu_grpc_server_conn *grpc, void *data)
{
    struct conn *c = data;
    assert(c->grpc == grpc);
    if (c->closing || c->flush_due) {
        return;
    }
    c->flush_due = true;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    uint64_t now = uv_now(c->server->loop);
    if (c->grpc == NULL) {
        if (now >= c->handshake_deadline_ms) {
            refuse_handshake(c, KYUFU_API_REFUSED_HANDSHAKE_TIMEOUT);
            conn_close(c); /* handshake timeout */
        } else {
            conn_arm_timer(c);
        }
        return;
    }
    kyufu_grpc_server_conn_advance(c->grpc, now);
    if (!c->idle_goaway && kyufu_grpc_server_conn_streams(c->grpc) == 0 &&
        now >= c->last_activity_ms + c->server->idle_timeout_ms) {
        c->idle_goaway = true;
        kyufu_grpc_server_conn_shutdown(c->grpc);
        conn_flush(c);
        conn_close(c);
        return;
    }
    conn_settle(c);
}

static void conn_arm_timer(struct conn *c)
{
    uint64_t now = uv_now(c->server->loop);
    uint64_t at;
    if (c->flush_due) {
        at = now;
    } else if (c->grpc == NULL) {
        at = c->handshake_deadline_ms;
    } else {
        at = c->last_activity_ms + c->server->idle_timeout_ms;
        uint64_t d = kyufu_grpc_server_conn_next_deadline(c->grpc);
        if (d < at) {
            at = d;
        }
    }
    uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

/* Whether the CRL in force (s->ctx, perhaps newer than the context c's
 * session was made with) revokes the certificate c presented; if so it is
 * reported with its serial and c is closed: true. */
static bool close_if_revoked(struct conn *c)
{
    char serial[80], subject[256], detail[200];
    if (c->closing || api__tls_peer_revoked(&c->tls, c->server->ctx, serial,
                                            sizeof serial) != 1) {
        return false;
    }
    api__tls_peer_subject(&c->tls, subject, sizeof subject);
    snprintf(detail, sizeof detail,
             "serial %s revoked by the CRL in force: open connection closed", serial);
    refuse(c->server, KYUFU_API_REFUSED_REVOKED, c->peer, subject, detail);
    conn_close(c); /* calls in flight cancelled, as on a connection loss */
    return true;
}

static int conn_start_grpc(struct conn *c)
{
    /* A CRL reload during this handshake: the session verified against the
     * CRL before it. */
    if (SSL_get_SSL_CTX(c->tls.ssl) != c->server->ctx && close_if_revoked(c)) {
        return -1;
    }
    char identity[512];
    api__tls_peer_identity(&c->tls, identity, sizeof identity);
    struct kyufu_grpc_server_config cfg = c->server->grpc_config;
    cfg.on_output = on_conn_output;
    cfg.data = c;
    int rv = kyufu_grpc_server_conn_new(&cfg, c->peer, identity,
                                        uv_now(c->server->loop), &c->grpc);
    uint8_t sha[32];
    if (rv == 0 && api__tls_peer_cert_sha256(&c->tls, sha) == 0) {
        uint64_t node_id = 0;
        if (api__tls_peer_node_id(&c->tls, &node_id) != 0) {
            node_id = 0; /* a client's certificate, not a node's */
        }
        kyufu_grpc_server_conn_set_peer_cert(c->grpc, sha, node_id);
    }
    return rv;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    if (nread == 0 || c->closing) {
        return;
    }
    if (nread < 0) {
        conn_close(c); /* EOF or reset: calls in flight are cancelled */
        return;
    }
    c->last_activity_ms = uv_now(c->server->loop);
    if (api__tls_feed(&c->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        conn_close(c);
        return;
    }
    if (c->grpc == NULL) {
        int r = api__tls_handshake(&c->tls);
        if (r < 0) {
            refuse_handshake(c, KYUFU_API_REFUSED_HANDSHAKE);
            conn_close(c); /* the alert is flushed by conn_close */
            return;
        }
        if (r == 0) {
            conn_flush(c);
            return;
        }
        if (conn_start_grpc(c) != 0) {
            conn_close(c);
            return;
        }
    }
    /* The connection's clock moves only when we move it: bring it to now
     * before a request arrives, or a call's deadline (arrival + grpc-timeout)
     * would be counted from the last timer event, possibly seconds ago, and
     * calls on a long-lived connection would fail DEADLINE_EXCEEDED at once
     * (the failover flake of scripts/run, docs/api.md "Deadlines"). */
    kyufu_grpc_server_conn_advance(c->grpc, uv_now(c->server->loop));
    uint8_t plain[16384];
    for (;;) {
        int n = api__tls_read(&c->tls, plain, sizeof plain);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            conn_close(c);
            return;
        }
        if (kyufu_grpc_server_conn_recv(c->grpc, plain, (size_t)n) != 0) {
            conn_flush(c); /* the GOAWAY */
            conn_close(c);
            return;
        }
    }
    conn_settle(c);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* "ip:port" of a connected socket into peer (and the ip alone into ip);
 * the address itself into ss (AF_UNSPEC when unknown). */
static void peer_name(uv_tcp_t *tcp, struct sockaddr_storage *ss, char *ip,
                      size_t iplen, char *peer, size_t peerlen)
{
    int len = sizeof *ss;
    int port = 0;
    snprintf(ip, iplen, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)ss, &len) == 0) {
        if (ss->ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)ss, ip, iplen);
            port = ntohs(((struct sockaddr_in6 *)ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)ss, ip, iplen);
            port = ntohs(((struct sockaddr_in *)ss)->sin_port);
        }
    } else {
        ss->ss_family = AF_UNSPEC;
    }
    snprintf(peer, peerlen, "%s:%d", ip, port);
}

/* Over the total: accept and close at once (the peer learns at once, the
 * backlog drains) and report who it was. */
static void accept_and_close(uv_stream_t *listener)
{
    struct kyufu_api_server *s = listener->data;
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(s->loop, t) != 0) {
        free(t);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)t) == 0) {
        struct sockaddr_storage ss;
        char ip[INET6_ADDRSTRLEN], peer[64];
        peer_name(t, &ss, ip, sizeof ip, peer, sizeof peer);
        refuse(s, KYUFU_API_REFUSED_CONNECTIONS, peer, "", "");
    }
    uv_close((uv_handle_t *)t, free_handle);
}

/* The per-address cap's key of an address: an IPv4 address whole (as
 * IPv4-mapped IPv6, so a dual-stack listener counts it the same), an IPv6
 * address by its /64, the smallest block one host or site is given: one
 * host with a /64 cannot take every slot by rotating its addresses. */
static void source_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
    memset(key, 0, 16);
    if (ss->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
    }
}

static size_t conns_from(const struct kyufu_api_server *s, const uint8_t key[16])
{
    size_t n = 0;
    for (const struct conn *c = s->conns; c != NULL; c = c->next) {
        n += !c->closing && memcmp(c->source, key, 16) == 0;
    }
    return n;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct kyufu_api_server *s = listener->data;
    if (status != 0 || s->closing) {
        return;
    }
    assert(s->n_dropping <= s->n_conns);
    struct conn *c = s->n_conns - s->n_dropping < s->connections_max
                         ? calloc(1, sizeof *c)
                         : NULL;
    if (c == NULL) {
        accept_and_close(listener);
        return;
    }
    c->server = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->handles_open = 1;
    uv_timer_init(s->loop, &c->timer); /* cannot fail for a valid loop */
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->n_conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->refused_at_accept = true;
        s->n_dropping++;
        c->closing = true;
        conn_close_handles(c);
        return;
    }
    struct sockaddr_storage ss;
    peer_name(&c->tcp, &ss, c->ip, sizeof c->ip, c->peer, sizeof c->peer);
    source_key(&ss, c->source);
    enum kyufu_api_refusal_kind why;
    bool refused = true;
    if (!kyufu_allow_match(s->allow, (struct sockaddr *)&ss)) {
        why = KYUFU_API_REFUSED_NOT_ALLOWED;
    } else if (conns_from(s, c->source) > s->connections_per_address_max) {
        why = KYUFU_API_REFUSED_PER_ADDRESS; /* counting this one */
    } else {
        refused = false;
    }
    if (refused || api__tls_init(&c->tls, s->ctx, true, NULL) != 0) {
        if (refused) {
            refuse(s, why, c->peer, "", "");
        }
        c->refused_at_accept = true;
        s->n_dropping++;
        c->closing = true;
        conn_close_handles(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* gRPC frames are small and latency-bound */
    uint64_t now = uv_now(s->loop);
    c->handshake_deadline_ms = now + s->handshake_timeout_ms;
    c->last_activity_ms = now;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    conn_arm_timer(c);
}

/* The server's TLS context from its files (the CRL's checks turned on when
 * it has one); s->crl_expired says whether that CRL is past nextUpdate.
 * cert and key are the config's at start, s's copies on reload. */
static int server_ctx_new(struct kyufu_api_server *s, const char *cert_file,
                          const char *key_file, SSL_CTX **out, char *errmsg,
                          size_t errmsg_len)
{
    SSL_CTX *ctx;
    const char *ca = s->ca_file[0] != '\0' ? s->ca_file : NULL;
    int rv = api__tls_server_ctx_new(cert_file, key_file, ca, s->require_client_cert,
                                     api__tls_alpn_h2, &ctx, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    bool expired = false;
    if (s->crl_file[0] != '\0' &&
        (rv = api__tls_ctx_set_crl(ctx, s->crl_file, &expired, errmsg, errmsg_len)) != 0) {
        SSL_CTX_free(ctx);
        return rv;
    }
    s->crl_expired = expired;
    *out = ctx;
    return 0;
}

int kyufu_api_server_start(uv_loop_t *loop,
                           const struct kyufu_api_server_config *config,
                           struct kyufu_api_server **out,
                           char *errmsg,
                           size_t errmsg_len)
{
    int rv;
    struct sockaddr_storage addr;
    assert(loop != NULL && config != NULL && out != NULL);
    if (config->host == NULL ||
        (uv_ip4_addr(config->host, config->port, (struct sockaddr_in *)&addr) != 0 &&
         uv_ip6_addr(config->host, config->port, (struct sockaddr_in6 *)&addr) != 0) ||
        config->message_bytes_max > KYUFU_GRPC_MESSAGE_BYTES_MAX) {
        snprintf(errmsg, errmsg_len, "listen address must be a numeric IP, message limit <= %u",
                 KYUFU_GRPC_MESSAGE_BYTES_MAX);
        rv = KYUFU_API_EINVALID;
        goto err;
    }
    struct kyufu_api_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        rv = KYUFU_API_ENOMEM;
        goto err;
    }
    s->loop = loop;
    s->connections_max = config->connections_max ? config->connections_max
                                                 : KYUFU_API_CONNECTIONS_MAX_DEFAULT;
    s->handshake_timeout_ms = config->handshake_timeout_ms
                                  ? config->handshake_timeout_ms
                                  : KYUFU_API_HANDSHAKE_TIMEOUT_MS_DEFAULT;
    s->idle_timeout_ms = config->idle_timeout_ms ? config->idle_timeout_ms
                                                 : KYUFU_API_IDLE_TIMEOUT_MS_DEFAULT;
    s->connections_per_address_max = config->connections_per_address_max
                                         ? config->connections_per_address_max
                                         : KYUFU_API_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT;
    s->allow = config->allow;
    s->on_refusal = config->on_refusal;
    s->refusal_data = config->refusal_data;
    s->require_client_cert = config->require_client_cert;
    {
        /* One allocation for the four paths ("" for a missing CA or CRL). */
        const char *cf = config->cert_file != NULL ? config->cert_file : "";
        const char *kf = config->key_file != NULL ? config->key_file : "";
        const char *af = config->ca_file != NULL ? config->ca_file : "";
        const char *rf = config->crl_file != NULL ? config->crl_file : "";
        size_t lc = strlen(cf) + 1, lk = strlen(kf) + 1, la = strlen(af) + 1;
        size_t lr = strlen(rf) + 1;
        s->cert_file = malloc(lc + lk + la + lr);
        if (s->cert_file == NULL) {
            rv = KYUFU_API_ENOMEM;
            goto err_after_alloc;
        }
        s->key_file = (char *)memcpy(s->cert_file, cf, lc) + lc;
        s->ca_file = (char *)memcpy(s->key_file, kf, lk) + lk;
        s->crl_file = (char *)memcpy(s->ca_file, af, la) + la;
        memcpy(s->crl_file, rf, lr);
    }
    if (config->crl_file != NULL && config->ca_file == NULL) {
        snprintf(errmsg, errmsg_len, "a CRL needs the CA that signed it (ca_file)");
        rv = KYUFU_API_EINVALID;
        goto err_after_alloc;
    }
    rv = server_ctx_new(s, config->cert_file, config->key_file, &s->ctx, errmsg, errmsg_len);
    if (rv != 0) {
        goto err_after_alloc;
    }
    rv = kyufu_grpc_health_new(&s->health);
    if (rv != 0) {
        goto err_after_ctx;
    }
    s->grpc_config.methods = config->methods;
    s->grpc_config.n_methods = config->n_methods;
    s->grpc_config.health = s->health;
    s->grpc_config.message_bytes_max = config->message_bytes_max;
    s->listener = malloc(sizeof *s->listener);
    if (s->listener == NULL) {
        rv = KYUFU_API_ENOMEM;
        goto err_after_health;
    }
    if (uv_tcp_init(loop, s->listener) != 0) {
        free(s->listener);
        rv = KYUFU_API_EIO;
        goto err_after_health;
    }
    s->listener->data = s;
    s->listener_open = true;
    int r = uv_tcp_bind(s->listener, (const struct sockaddr *)&addr, 0);
    if (r == 0) {
        r = uv_listen((uv_stream_t *)s->listener, KYUFU_API_LISTEN_BACKLOG, on_connection);
    }
    if (r != 0) {
        snprintf(errmsg, errmsg_len, "cannot listen on %s:%u: %s", config->host,
                 (unsigned)config->port, uv_strerror(r));
        rv = KYUFU_API_EIO;
        goto err_after_listener;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(s->listener, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;

err_after_listener:
    /* The handle's memory goes in its close callback, on the next loop
     * turn; nothing else refers to it. */
    uv_close((uv_handle_t *)s->listener, free_handle);
err_after_health:
    kyufu_grpc_health_free(s->health);
err_after_ctx:
    SSL_CTX_free(s->ctx);
err_after_alloc:
    free(s->cert_file);
    free(s);
err:
    assert(rv != 0);
    return rv;
}

uint16_t kyufu_api_server_port(const struct kyufu_api_server *server)
{
    return server->port;
}

int kyufu_api_server_set_health(struct kyufu_api_server *server,
                                const char *service,
                                enum kyufu_grpc_health_status status)
{
    return kyufu_grpc_health_set(server->health, service, status);
}

int kyufu_api_server_reload_tls(struct kyufu_api_server *server,
                                char *errmsg,
                                size_t errmsg_len)
{
    SSL_CTX *ctx;
    int rv = server_ctx_new(server, server->cert_file, server->key_file, &ctx, errmsg,
                            errmsg_len);
    if (rv != 0) {
        return rv;
    }
    /* Open sessions hold their own reference to the old context. */
    SSL_CTX_free(server->ctx);
    server->ctx = ctx;
    /* Open connections of a certificate the new CRL revokes end now (not
     * at their next handshake: a terminal may keep one open for hours).
     * conn_close frees nothing synchronously, so the walk is safe. */
    if (server->crl_file[0] != '\0') {
        for (struct conn *c = server->conns; c != NULL; c = c->next) {
            if (c->grpc != NULL) {
                close_if_revoked(c);
            }
        }
    }
    return 0;
}

bool kyufu_api_server_crl_expired(const struct kyufu_api_server *server)
{
    return server->crl_expired;
}

const char *kyufu_api_refusal_name(enum kyufu_api_refusal_kind kind)
{
    switch (kind) {
#define KYUFU_API__REFUSAL_STR(name, text) \
    case KYUFU_API_REFUSED_##name:          \
        return text;
        KYUFU_API_REFUSALS(KYUFU_API__REFUSAL_STR)
#undef KYUFU_API__REFUSAL_STR
    }
    return "refused";
}

size_t kyufu_api_server_connections(const struct kyufu_api_server *server)
{
    return server->n_conns;
}

static void listener_closed(uv_handle_t *h)
{
    struct kyufu_api_server *s = h->data;
    free(h);
    s->listener = NULL;
    s->listener_open = false;
    maybe_server_closed(s);
}

void kyufu_api_server_close(struct kyufu_api_server *server,
                            kyufu_api_server_close_cb close_cb,
                            void *data)
{
    assert(server != NULL && !server->closing);
    server->closing = true;
    server->close_cb = close_cb;
    server->close_data = data;
    uv_close((uv_handle_t *)server->listener, listener_closed);
    for (struct conn *c = server->conns; c != NULL; c = c->next) {
        if (c->grpc != NULL) {
            kyufu_grpc_server_conn_shutdown(c->grpc);
        }
        conn_close(c);
    }
}
