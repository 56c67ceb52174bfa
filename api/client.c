/* The async gRPC client: one endpoint, one libuv loop, calls multiplexed on
 * one HTTP/2 connection over TLS.
 *
 * Happy path: the first call finds no connection and starts one (resolve
 * with uv_getaddrinfo -> TCP connect with TCP_NODELAY -> TLS handshake with
 * ALPN h2, server certificate verified against the CA and the server name,
 * and, for a client bound to a node, its node URN) while the call waits;
 * once ready, every waiting call is submitted as a stream (HEADERS :method
 * POST, :scheme https, :path, :authority, content-type application/grpc,
 * te trailers, grpc-timeout, metadata; one DATA message with END_STREAM);
 * the response's HEADERS, DATA and trailers are parsed (custom metadata
 * kept for the callback: req->headers and req->trailers); at stream close
 * the call completes.
 *
 * Completions are queued and delivered from a zero-delay timer, so a
 * callback never runs inside kyufu_grpc_client_call, _cancel or _close.
 *
 * Failure modes: resolve, connect, handshake failure (a server certificate
 * that does not name server_node_id, or that crl_file revokes, included), connect timeout, a
 * socket error, EOF or an HTTP/2 protocol error fail every call on the
 * connection (and the calls waiting for it) with UNAVAILABLE and the reason;
 * the next call starts a new connection.  A GOAWAY makes nghttp2 close the
 * streams the server did not process (REFUSED_STREAM -> UNAVAILABLE, safe
 * to retry) while processed ones finish; new calls go to a new connection.
 * A deadline resets the stream (RST_STREAM CANCEL) and completes with
 * DEADLINE_EXCEEDED.  A response over message_bytes_max resets the stream
 * and completes with RESOURCE_EXHAUSTED; a malformed response (no
 * grpc-status, bad framing, two messages) completes with INTERNAL or the
 * status mapped from the HTTP status (http-grpc-status-mapping.md).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "grpc.h"
#include "grpc_limits.h"
#include "internal.h"
#include "nv.h"
#include "tls.h"

enum cstate { C_RESOLVING, C_CONNECTING, C_HANDSHAKING, C_READY, C_DEAD };

struct cconn;

struct ccall
{
    struct kyufu_grpc_client *client;
    struct kyufu_grpc_client_req *req;
    kyufu_grpc_client_cb cb;
    struct ccall *prev, *next; /* client->calls, or client->done (next only) */
    struct cconn *conn;        /* NULL while waiting for a connection */
    uint64_t server_node_id;   /* of conn's certificate, kept at completion */
    int32_t stream_id;
    /* Request. */
    char *method;
    uint8_t *body; /* prefix + message */
    size_t body_len;
    size_t body_off;
    struct kyufu_grpc_metadata *metadata;
    size_t n_metadata;
    uint64_t timeout_ms;
    uint64_t deadline_ms; /* UINT64_MAX if none */
    /* Response. */
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_message[KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX];
    uint8_t prefix[5];
    size_t prefix_got;
    uint8_t *msg;
    uint32_t msg_len;
    uint32_t msg_got;
    unsigned n_msgs;
    /* Custom metadata received: [0] initial headers, [1] trailers; names
     * and values malloc'd.  md_bytes counts what was kept (RFC 9113
     * accounting) against KYUFU_GRPC_HEADER_LIST_BYTES_MAX. */
    struct kyufu_grpc_metadata *md[2];
    size_t n_md[2];
    size_t md_bytes;
    int bad_status; /* a framing problem found while reading, 0 if none */
    const char *bad_message;
    /* Completion. */
    int final_status;
    bool answered; /* final_status is the server's grpc-status */
    char final_message[KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX + 64];
};

struct cconn
{
    struct kyufu_grpc_client *client;
    struct cconn *prev, *next;
    enum cstate state;
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    uv_tcp_t tcp;
    bool gai_pending;
    bool tcp_open;
    struct api__tls tls;
    bool tls_open;
    nghttp2_session *session;
    uint64_t connect_deadline_ms;
    uint64_t last_rx_ms; /* last bytes from the server (keepalive) */
    bool ping_sent;
    bool goaway;
    size_t streams;
};

struct write_req
{
    uv_write_t req;
    size_t len;
    uint8_t data[];
};

struct kyufu_grpc_client
{
    uv_loop_t *loop;
    char *host;
    char *server_name;
    char authority[300];
    uint16_t port;
    uint64_t connect_timeout_ms;
    uint64_t keepalive_ms;
    uint32_t message_bytes_max;
    uint64_t server_node_id; /* 0: not checked */
    bool server_any_node;    /* with 0: any one valid node URN */
    SSL_CTX *ctx;
    struct cconn *current; /* the connection new calls go to, or NULL */
    struct cconn *conns;   /* all connections, current or draining */
    struct ccall *calls;   /* pending */
    size_t n_calls;
    struct ccall *done_head, *done_tail;
    uv_timer_t timer; /* deadlines and connect timeouts */
    uv_timer_t defer; /* delivers completions */
    int handles_open;
    bool closing;
    kyufu_grpc_client_close_cb close_cb;
    void *close_data;
};

static void conn_fail(struct cconn *conn, const char *why);
static void conn_flush(struct cconn *conn);
static void arm_timer(struct kyufu_grpc_client *client);
static void start_connection(struct kyufu_grpc_client *client);
static void maybe_closed(struct kyufu_grpc_client *client);

/* ---- calls ---- */

static void md_free(struct kyufu_grpc_metadata *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)md[i].name);
        free((char *)md[i].value);
    }
    free(md);
}

static void call_free(struct ccall *call)
{
    free(call->method);
    free(call->body);
    free(call->msg);
    md_free(call->metadata, call->n_metadata);
    md_free(call->md[0], call->n_md[0]);
    md_free(call->md[1], call->n_md[1]);
    free(call);
}

/* Keep one received metadata entry (which: 0 headers, 1 trailers).  Beyond
 * the entry or byte bounds, or out of memory, it is dropped: metadata is
 * advice (a leader hint), never worth failing an answer for. */
static void md_keep(struct ccall *call, int which, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen)
{
    size_t cost = namelen + valuelen + 32;
    if (call->n_md[which] >= KYUFU_GRPC_METADATA_ENTRIES_MAX ||
        call->md_bytes + cost > KYUFU_GRPC_HEADER_LIST_BYTES_MAX) {
        return;
    }
    struct kyufu_grpc_metadata *md =
        realloc(call->md[which], (call->n_md[which] + 1) * sizeof *md);
    if (md == NULL) {
        return;
    }
    call->md[which] = md;
    char *n = malloc(namelen + 1);
    char *v = malloc(valuelen + 1);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return;
    }
    memcpy(n, name, namelen);
    n[namelen] = '\0';
    memcpy(v, value, valuelen);
    v[valuelen] = '\0';
    md[call->n_md[which]].name = n;
    md[call->n_md[which]].value = v;
    call->n_md[which]++;
    call->md_bytes += cost;
}

static void on_defer(uv_timer_t *t)
{
    struct kyufu_grpc_client *client = t->data;
    while (client->done_head != NULL) {
        struct ccall *call = client->done_head;
        client->done_head = call->next;
        if (client->done_head == NULL) {
            client->done_tail = NULL;
        }
        bool ok = call->final_status == KYUFU_GRPC_OK;
        struct kyufu_grpc_client_req *req = call->req;
        req->internal = NULL;
        req->headers = call->md[0];
        req->n_headers = call->n_md[0];
        req->trailers = call->md[1];
        req->n_trailers = call->n_md[1];
        req->answered = call->answered;
        req->server_node_id = call->answered ? call->server_node_id : 0;
        call->cb(req, call->final_status, call->final_message, ok ? call->msg : NULL,
                 ok ? call->msg_len : 0);
        call_free(call);
    }
    maybe_closed(client);
}

/* Take a call out of the pending list and queue its completion. */
static void complete(struct ccall *call, int status, const char *message)
{
    struct kyufu_grpc_client *client = call->client;
    if (call->conn != NULL && call->stream_id > 0) {
        nghttp2_session_set_stream_user_data(call->conn->session, call->stream_id, NULL);
    }
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        client->calls = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    client->n_calls--;
    call->prev = call->next = NULL;
    if (call->conn == NULL || !call->conn->tls.handshake_done ||
        api__tls_peer_node_id(&call->conn->tls, &call->server_node_id) != 0) {
        call->server_node_id = 0;
    }
    call->conn = NULL;
    call->final_status = status;
    snprintf(call->final_message, sizeof call->final_message, "%s", message != NULL ? message : "");
    if (client->done_tail != NULL) {
        client->done_tail->next = call;
    } else {
        client->done_head = call;
    }
    client->done_tail = call;
    uv_timer_start(&client->defer, on_defer, 0, 0);
}

static ssize_t body_read(nghttp2_session *session,
                         int32_t stream_id,
                         uint8_t *buf,
                         size_t length,
                         uint32_t *data_flags,
                         nghttp2_data_source *source,
                         void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct ccall *call = source->ptr;
    size_t n = call->body_len - call->body_off;
    if (n > length) {
        n = length;
    }
    memcpy(buf, call->body + call->body_off, n);
    call->body_off += n;
    if (call->body_off == call->body_len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

nghttp2_nv api__client_nv(const char *name, const char *value)
{
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                     api__metadata_name_secret(name) ? NGHTTP2_NV_FLAG_NO_INDEX
                                                     : NGHTTP2_NV_FLAG_NONE};
    return nv;
}

static void submit(struct cconn *conn, struct ccall *call)
{
    struct kyufu_grpc_client *client = conn->client;
    assert(conn->state == C_READY && call->conn == NULL);
    char timeout[16];
    nghttp2_nv nva[8 + KYUFU_GRPC_METADATA_ENTRIES_MAX];
    size_t n = 0;
    nva[n++] = api__client_nv(":method", "POST");
    nva[n++] = api__client_nv(":scheme", "https");
    nva[n++] = api__client_nv(":path", call->method);
    nva[n++] = api__client_nv(":authority", client->authority);
    nva[n++] = api__client_nv("content-type", API__CONTENT_TYPE);
    nva[n++] = api__client_nv("te", "trailers");
    nva[n++] = api__client_nv("user-agent", "kyufu-grpc-c/0.1");
    if (call->timeout_ms > 0) {
        kyufu_grpc_timeout_format(call->timeout_ms, timeout, sizeof timeout);
        nva[n++] = api__client_nv("grpc-timeout", timeout);
    }
    for (size_t i = 0; i < call->n_metadata; i++) {
        nva[n++] = api__client_nv(call->metadata[i].name, call->metadata[i].value);
    }
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = body_read};
    int32_t id = nghttp2_submit_request(conn->session, NULL, nva, n, &prd, call);
    call->conn = conn;
    if (id < 0) {
        call->conn = NULL;
        complete(call, KYUFU_GRPC_UNAVAILABLE,
                 id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? "connection out of stream ids"
                                                          : "cannot start stream");
        return;
    }
    call->stream_id = id;
    if (conn->streams++ == 0) {
        /* The keepalive clock starts when there is something to wait for. */
        conn->last_rx_ms = uv_now(client->loop);
        conn->ping_sent = false;
    }
}

/* ---- nghttp2 client callbacks ---- */

static int on_header(nghttp2_session *session,
                     const nghttp2_frame *frame,
                     const uint8_t *name,
                     size_t namelen,
                     const uint8_t *value,
                     size_t valuelen,
                     uint8_t flags,
                     void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    struct ccall *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    if (!api__metadata_name_reserved((const char *)name, namelen)) {
        /* Trailers, or a Trailers-Only response (its one HEADERS frame ends
         * the stream): gRPC reports both as trailing metadata. */
        bool trailer = frame->headers.cat == NGHTTP2_HCAT_HEADERS ||
                       (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        md_keep(call, trailer ? 1 : 0, name, namelen, value, valuelen);
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        call->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++) {
            call->http_status = call->http_status * 10 + (value[i] - '0');
        }
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int st = 0;
        bool ok = valuelen > 0 && valuelen <= 2;
        for (size_t i = 0; ok && i < valuelen; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            st = st * 10 + (value[i] - '0');
        }
        call->grpc_status = ok ? st : KYUFU_GRPC_UNKNOWN;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        api__percent_decode((const char *)value, valuelen, call->grpc_message,
                            sizeof call->grpc_message);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session,
                         uint8_t flags,
                         int32_t stream_id,
                         const uint8_t *data,
                         size_t len,
                         void *user_data)
{
    (void)flags;
    (void)user_data;
    struct ccall *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL || call->bad_status != 0) {
        return 0;
    }
    while (len > 0) {
        if (call->prefix_got < 5) {
            if (call->prefix_got == 0 && call->n_msgs == 1) {
                call->bad_status = KYUFU_GRPC_INTERNAL;
                call->bad_message = "more than one response message on a unary call";
                return 0;
            }
            size_t n = 5 - call->prefix_got < len ? 5 - call->prefix_got : len;
            memcpy(call->prefix + call->prefix_got, data, n);
            call->prefix_got += n;
            data += n;
            len -= n;
            if (call->prefix_got < 5) {
                break;
            }
            if (call->prefix[0] != 0) {
                call->bad_status = KYUFU_GRPC_INTERNAL;
                call->bad_message = "compressed response without an accepted encoding";
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                return 0;
            }
            call->msg_len = api__prefix_length(call->prefix);
            if (call->msg_len > call->client->message_bytes_max) {
                call->bad_status = KYUFU_GRPC_RESOURCE_EXHAUSTED;
                call->bad_message = "response message exceeds the limit";
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                return 0;
            }
            call->msg = malloc(call->msg_len > 0 ? call->msg_len : 1);
            if (call->msg == NULL) {
                call->bad_status = KYUFU_GRPC_RESOURCE_EXHAUSTED;
                call->bad_message = "client out of memory";
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                return 0;
            }
            call->msg_got = 0;
        }
        size_t n = call->msg_len - call->msg_got < len ? call->msg_len - call->msg_got : len;
        memcpy(call->msg + call->msg_got, data, n);
        call->msg_got += (uint32_t)n;
        data += n;
        len -= n;
        if (call->msg_got == call->msg_len) {
            call->n_msgs++;
            call->prefix_got = 0;
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session,
                           int32_t stream_id,
                           uint32_t error_code,
                           void *user_data)
{
    struct cconn *conn = user_data;
    assert(conn->streams > 0);
    conn->streams--;
    struct ccall *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL) {
        return 0; /* already completed (deadline, cancel) */
    }
    char msg[KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX + 64];
    if (call->bad_status != 0) {
        complete(call, call->bad_status, call->bad_message);
    } else if (call->grpc_status >= 0) {
        if (call->grpc_status == KYUFU_GRPC_OK &&
            (call->n_msgs != 1 || call->prefix_got != 0)) {
            complete(call, KYUFU_GRPC_INTERNAL,
                     call->n_msgs == 0 ? "OK response without a message"
                                       : "incomplete response message");
        } else {
            call->answered = true;
            complete(call, call->grpc_status, call->grpc_message);
        }
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        complete(call, KYUFU_GRPC_UNAVAILABLE, "stream refused by the server (not processed)");
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(msg, sizeof msg, "stream reset by the server: %s",
                 nghttp2_http2_strerror(error_code));
        complete(call, error_code == NGHTTP2_CANCEL ? KYUFU_GRPC_CANCELLED : KYUFU_GRPC_INTERNAL,
                 msg);
    } else if (call->http_status != 200) {
        snprintf(msg, sizeof msg, "HTTP status %d without grpc-status", call->http_status);
        complete(call, api__http_to_grpc_status(call->http_status), msg);
    } else {
        complete(call, KYUFU_GRPC_INTERNAL, "response without grpc-status");
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    struct cconn *conn = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        conn->goaway = true;
        if (conn->client->current == conn) {
            conn->client->current = NULL; /* new calls get a new connection */
        }
    }
    return 0;
}

static int session_new(struct cconn *conn)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rv = KYUFU_API_ENOMEM;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        goto err;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    if (nghttp2_option_new(&opt) != 0) {
        goto err_after_cbs;
    }
    nghttp2_option_set_no_auto_window_update(opt, 0);
    nghttp2_option_set_no_http_messaging(opt, 0);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    nghttp2_option_set_max_send_header_block_length(opt, KYUFU_GRPC_SEND_HEADER_BLOCK_BYTES_MAX);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, KYUFU_GRPC_DEFLATE_TABLE_BYTES_MAX);
    nghttp2_option_set_max_outbound_ack(opt, KYUFU_GRPC_OUTBOUND_ACK_MAX);
    nghttp2_option_set_max_settings(opt, KYUFU_GRPC_SETTINGS_ENTRIES_MAX);
    nghttp2_option_set_max_continuations(opt, KYUFU_GRPC_CONTINUATIONS_MAX);
    if (nghttp2_session_client_new2(&conn->session, cbs, conn, opt) != 0) {
        goto err_after_opt;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, KYUFU_GRPC_STREAM_WINDOW_BYTES},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, KYUFU_GRPC_HEADER_LIST_BYTES_MAX},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, KYUFU_GRPC_DEFLATE_TABLE_BYTES_MAX},
    };
    if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0,
                                              KYUFU_GRPC_CONNECTION_WINDOW_BYTES) != 0) {
        goto err_after_session;
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return 0;

err_after_session:
    nghttp2_session_del(conn->session);
    conn->session = NULL;
err_after_opt:
    nghttp2_option_del(opt);
err_after_cbs:
    nghttp2_session_callbacks_del(cbs);
err:
    assert(rv != 0);
    return rv;
}

/* ---- connection ---- */

static void conn_maybe_free(struct cconn *conn)
{
    if (conn->gai_pending || conn->tcp_open) {
        return;
    }
    struct kyufu_grpc_client *client = conn->client;
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        client->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    if (conn->session != NULL) {
        nghttp2_session_del(conn->session);
    }
    if (conn->tls_open) {
        api__tls_close(&conn->tls);
    }
    free(conn);
    maybe_closed(client);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct cconn *conn = h->data;
    conn->tcp_open = false;
    conn_maybe_free(conn);
}

/* Fail every call on this connection (and, if it is the current one, every
 * call waiting for it), then close it. */
static void conn_fail(struct cconn *conn, const char *why)
{
    struct kyufu_grpc_client *client = conn->client;
    if (conn->state == C_DEAD) {
        return;
    }
    conn->state = C_DEAD;
    bool current = client->current == conn;
    if (current) {
        client->current = NULL;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "connection to %s failed: %s", client->authority, why);
    struct ccall *call = client->calls;
    while (call != NULL) {
        struct ccall *next = call->next;
        if (call->conn == conn || (current && call->conn == NULL)) {
            complete(call, KYUFU_GRPC_UNAVAILABLE, msg);
        }
        call = next;
    }
    if (conn->gai_pending) {
        uv_cancel((uv_req_t *)&conn->gai);
    }
    if (conn->tcp_open && !uv_is_closing((uv_handle_t *)&conn->tcp)) {
        uv_close((uv_handle_t *)&conn->tcp, on_tcp_closed);
    }
    conn_maybe_free(conn);
}

static void on_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error / EOF */
    free(req);
}

static void conn_flush(struct cconn *conn)
{
    if (conn->state == C_DEAD) {
        return;
    }
    if (conn->session != NULL && conn->tls.handshake_done) {
        for (;;) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(conn->session, &p);
            if (n < 0) {
                conn_fail(conn, nghttp2_strerror((int)n));
                return;
            }
            if (n == 0) {
                break;
            }
            if (api__tls_write(&conn->tls, p, (size_t)n) != 0) {
                conn_fail(conn, conn->tls.error);
                return;
            }
        }
    }
    size_t pending;
    while ((pending = api__tls_pending(&conn->tls)) > 0) {
        struct write_req *w = malloc(sizeof *w + pending);
        if (w == NULL) {
            conn_fail(conn, "out of memory");
            return;
        }
        w->len = api__tls_take(&conn->tls, w->data, pending);
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
        if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write) != 0) {
            free(w);
            conn_fail(conn, "write failed");
            return;
        }
    }
    /* A session nghttp2 has finished with (GOAWAY both ways, all streams
     * done) is closed here; a drained GOAWAY'd connection likewise. */
    if (conn->session != NULL && conn->state == C_READY &&
        ((nghttp2_session_want_read(conn->session) == 0 &&
          nghttp2_session_want_write(conn->session) == 0) ||
         (conn->goaway && conn->streams == 0))) {
        conn_fail(conn, "connection closed by the server");
    }
}

static void submit_waiting(struct kyufu_grpc_client *client, struct cconn *conn)
{
    struct ccall *call = client->calls;
    while (call != NULL) {
        struct ccall *next = call->next;
        if (call->conn == NULL) {
            submit(conn, call);
        }
        call = next;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* Consumed synchronously by the read callback, so one buffer per thread
     * (each loop runs on one thread) is enough. */
    static _Thread_local char storage[KYUFU_API_READ_BUFFER_BYTES];
    *buf = uv_buf_init(storage, sizeof storage);
}

/* The handshake finished: a client bound to a node believes only a server
 * certificate that names that node (the Raft transport's check on its
 * connecting side, raft-glue/peer_link.c authenticate), so a certificate
 * of node 3 at node 2's address is never taken for node 2; one bound to
 * any node, only a certificate that names one.  0 to go on;
 * else the connection has failed, before anything was sent on it. */
static int check_server_node(struct cconn *conn)
{
    uint64_t want = conn->client->server_node_id;
    uint64_t got;
    char expected[32], why[160];
    if (want == 0 && !conn->client->server_any_node) {
        return 0;
    }
    if (want == 0) {
        snprintf(expected, sizeof expected, "a node");
    } else {
        snprintf(expected, sizeof expected, "node %llu", (unsigned long long)want);
    }
    if (api__tls_peer_node_id(&conn->tls, &got) != 0) {
        snprintf(why, sizeof why, "server certificate names no single valid node URN, expected %s",
                 expected);
    } else if (want != 0 && got != want) {
        snprintf(why, sizeof why, "server certificate names node %llu, expected %s",
                 (unsigned long long)got, expected);
    } else {
        return 0;
    }
    conn_fail(conn, why);
    return -1;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct cconn *conn = stream->data;
    if (nread == 0 || conn->state == C_DEAD) {
        return;
    }
    if (nread < 0) {
        conn_fail(conn, nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    conn->last_rx_ms = uv_now(conn->client->loop);
    conn->ping_sent = false;
    if (api__tls_feed(&conn->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        conn_fail(conn, "out of memory");
        return;
    }
    if (conn->state == C_HANDSHAKING) {
        int r = api__tls_handshake(&conn->tls);
        if (r < 0) {
            conn_fail(conn, conn->tls.error);
            return;
        }
        if (r == 0) {
            conn_flush(conn);
            return;
        }
        if (check_server_node(conn) != 0) {
            return;
        }
        if (session_new(conn) != 0) {
            conn_fail(conn, "out of memory");
            return;
        }
        conn->state = C_READY;
        submit_waiting(conn->client, conn);
    }
    uint8_t plain[16384];
    for (;;) {
        int n = api__tls_read(&conn->tls, plain, sizeof plain);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            conn_fail(conn, n == KYUFU_API_ECLOSED ? "closed by the server" : conn->tls.error);
            return;
        }
        ssize_t r = nghttp2_session_mem_recv(conn->session, plain, (size_t)n);
        if (r < 0) {
            conn_fail(conn, nghttp2_strerror((int)r));
            return;
        }
    }
    struct kyufu_grpc_client *client = conn->client;
    conn_flush(conn);
    arm_timer(client);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct cconn *conn = req->data;
    if (status == UV_ECANCELED || conn->state == C_DEAD) {
        return;
    }
    if (status != 0) {
        conn_fail(conn, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    const char *name = conn->client->server_name;
    if (api__tls_init(&conn->tls, conn->client->ctx, false, name) != 0) {
        conn_fail(conn, "cannot start TLS");
        return;
    }
    conn->tls_open = true;
    conn->state = C_HANDSHAKING;
    if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, on_read) != 0) {
        conn_fail(conn, "cannot read");
        return;
    }
    if (api__tls_handshake(&conn->tls) < 0) { /* writes the ClientHello */
        conn_fail(conn, conn->tls.error);
        return;
    }
    conn_flush(conn);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct cconn *conn = req->data;
    conn->gai_pending = false;
    if (conn->state == C_DEAD || status != 0) {
        if (conn->state != C_DEAD) {
            conn_fail(conn, uv_strerror(status));
        }
        uv_freeaddrinfo(res);
        conn_maybe_free(conn);
        return;
    }
    int r = uv_tcp_init(conn->client->loop, &conn->tcp);
    if (r == 0) {
        conn->tcp.data = conn;
        conn->tcp_open = true;
        conn->connect_req.data = conn;
        r = uv_tcp_connect(&conn->connect_req, &conn->tcp, res->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (r != 0) {
        conn_fail(conn, uv_strerror(r));
        return;
    }
    conn->state = C_CONNECTING;
}

static void start_connection(struct kyufu_grpc_client *client)
{
    assert(client->current == NULL);
    struct cconn *conn = calloc(1, sizeof *conn);
    char port[8];
    if (conn == NULL) {
        goto fail;
    }
    conn->client = client;
    conn->state = C_RESOLVING;
    conn->connect_deadline_ms = uv_now(client->loop) + client->connect_timeout_ms;
    conn->gai.data = conn;
    conn->next = client->conns;
    if (client->conns != NULL) {
        client->conns->prev = conn;
    }
    client->conns = conn;
    client->current = conn;
    snprintf(port, sizeof port, "%u", (unsigned)client->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int r = uv_getaddrinfo(client->loop, &conn->gai, on_resolved, client->host, port, &hints);
    if (r != 0) {
        conn_fail(conn, uv_strerror(r));
        return;
    }
    conn->gai_pending = true;
    arm_timer(client);
    return;

fail:
    /* No connection object: fail the waiting calls directly. */
    for (struct ccall *call = client->calls, *next; call != NULL; call = next) {
        next = call->next;
        if (call->conn == NULL) {
            complete(call, KYUFU_GRPC_UNAVAILABLE, "out of memory");
        }
    }
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    struct kyufu_grpc_client *client = t->data;
    uint64_t now = uv_now(client->loop);
    for (struct ccall *call = client->calls, *next; call != NULL; call = next) {
        next = call->next;
        if (call->deadline_ms > now) {
            continue;
        }
        struct cconn *conn = call->conn;
        if (conn != NULL && call->stream_id > 0) {
            nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                      NGHTTP2_CANCEL);
        }
        complete(call, KYUFU_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        if (conn != NULL) {
            conn_flush(conn);
        }
    }
    for (struct cconn *conn = client->conns, *next; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->state < C_READY && now >= conn->connect_deadline_ms) {
            conn_fail(conn, "connect timeout");
        } else if (conn->state == C_READY && conn->streams > 0) {
            if (now >= conn->last_rx_ms + 2 * client->keepalive_ms) {
                conn_fail(conn, "no answer from the server (keepalive timeout)");
            } else if (now >= conn->last_rx_ms + client->keepalive_ms &&
                       !conn->ping_sent) {
                conn->ping_sent = true;
                nghttp2_submit_ping(conn->session, NGHTTP2_FLAG_NONE, NULL);
                conn_flush(conn);
            }
        }
    }
    arm_timer(client);
}

static void arm_timer(struct kyufu_grpc_client *client)
{
    uint64_t at = UINT64_MAX;
    for (struct ccall *call = client->calls; call != NULL; call = call->next) {
        if (call->deadline_ms < at) {
            at = call->deadline_ms;
        }
    }
    for (struct cconn *conn = client->conns; conn != NULL; conn = conn->next) {
        if (conn->state < C_READY && conn->connect_deadline_ms < at) {
            at = conn->connect_deadline_ms;
        }
        if (conn->state == C_READY && conn->streams > 0) {
            uint64_t k = conn->last_rx_ms + (conn->ping_sent ? 2 * client->keepalive_ms
                                                             : client->keepalive_ms);
            if (k < at) {
                at = k;
            }
        }
    }
    if (at == UINT64_MAX) {
        uv_timer_stop(&client->timer);
        return;
    }
    uint64_t now = uv_now(client->loop);
    uv_timer_start(&client->timer, on_timer, at > now ? at - now : 0, 0);
}

/* ---- public ---- */

int kyufu_grpc_client_new(uv_loop_t *loop,
                          const struct kyufu_grpc_client_config *config,
                          struct kyufu_grpc_client **out,
                          char *errmsg,
                          size_t errmsg_len)
{
    int rv;
    assert(loop != NULL && config != NULL && out != NULL);
    if (config->host == NULL || config->port == 0 ||
        config->message_bytes_max > KYUFU_GRPC_MESSAGE_BYTES_MAX ||
        config->keepalive_ms > KYUFU_GRPC_TIMEOUT_MS_MAX || strlen(config->host) > 255) {
        snprintf(errmsg, errmsg_len, "client needs host and port; message limit <= %u",
                 KYUFU_GRPC_MESSAGE_BYTES_MAX);
        rv = KYUFU_API_EINVALID;
        goto err;
    }
    struct kyufu_grpc_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        rv = KYUFU_API_ENOMEM;
        goto err;
    }
    c->loop = loop;
    c->port = config->port;
    c->host = strdup(config->host);
    c->server_name = strdup(config->server_name != NULL ? config->server_name : config->host);
    if (c->host == NULL || c->server_name == NULL) {
        rv = KYUFU_API_ENOMEM;
        goto err_after_alloc;
    }
    bool v6 = strchr(c->host, ':') != NULL;
    snprintf(c->authority, sizeof c->authority, "%s%s%s:%u", v6 ? "[" : "", c->host,
             v6 ? "]" : "", (unsigned)c->port);
    c->connect_timeout_ms = config->connect_timeout_ms
                                ? config->connect_timeout_ms
                                : KYUFU_GRPC_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    c->keepalive_ms = config->keepalive_ms ? config->keepalive_ms : KYUFU_GRPC_CLIENT_KEEPALIVE_MS;
    c->message_bytes_max = config->message_bytes_max ? config->message_bytes_max
                                                     : KYUFU_GRPC_MESSAGE_BYTES_MAX;
    c->server_node_id = config->server_node_id;
    c->server_any_node = config->server_any_node;
    rv = api__tls_client_ctx_new(config->ca_file, config->cert_file, config->key_file,
                                 api__tls_alpn_h2, &c->ctx,
                                 errmsg, errmsg_len);
    if (rv != 0) {
        goto err_after_alloc;
    }
    bool crl_expired; /* enforced all the same; the node warns (tls_watch.c) */
    if (config->crl_file != NULL &&
        (rv = api__tls_ctx_set_crl(c->ctx, config->crl_file, &crl_expired, errmsg,
                                   errmsg_len)) != 0) {
        SSL_CTX_free(c->ctx);
        goto err_after_alloc;
    }
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->timer.data = c;
    c->defer.data = c;
    c->handles_open = 2;
    *out = c;
    return 0;

err_after_alloc:
    free(c->host);
    free(c->server_name);
    free(c);
err:
    assert(rv != 0);
    return rv;
}

int kyufu_grpc_client_call(struct kyufu_grpc_client *client,
                           struct kyufu_grpc_client_req *req,
                           const char *method,
                           const uint8_t *request,
                           size_t request_len,
                           uint64_t timeout_ms,
                           const struct kyufu_grpc_metadata *metadata,
                           size_t n_metadata,
                           kyufu_grpc_client_cb cb)
{
    assert(client != NULL);
    if (client->closing) {
        return KYUFU_API_ECLOSED;
    }
    if (req == NULL || cb == NULL || method == NULL || method[0] != '/' ||
        (request == NULL && request_len > 0) || request_len > client->message_bytes_max ||
        n_metadata > KYUFU_GRPC_METADATA_ENTRIES_MAX || (n_metadata > 0 && metadata == NULL) ||
        timeout_ms > KYUFU_GRPC_TIMEOUT_MS_MAX) {
        return KYUFU_API_EINVALID;
    }
    struct ccall *call = calloc(1, sizeof *call);
    if (call == NULL) {
        return KYUFU_API_ENOMEM;
    }
    call->client = client;
    call->req = req;
    call->cb = cb;
    call->grpc_status = -1;
    call->timeout_ms = timeout_ms;
    call->deadline_ms = timeout_ms > 0 ? uv_now(client->loop) + timeout_ms : UINT64_MAX;
    call->method = strdup(method);
    call->body_len = request_len + 5;
    call->body = malloc(call->body_len);
    call->metadata = n_metadata > 0 ? calloc(n_metadata, sizeof *call->metadata) : NULL;
    if (call->method == NULL || call->body == NULL || (n_metadata > 0 && call->metadata == NULL)) {
        call_free(call);
        return KYUFU_API_ENOMEM;
    }
    api__prefix_encode(call->body, false, (uint32_t)request_len);
    if (request_len > 0) {
        memcpy(call->body + 5, request, request_len);
    }
    for (size_t i = 0; i < n_metadata; i++) {
        call->n_metadata++;
        call->metadata[i].name = strdup(metadata[i].name);
        call->metadata[i].value = strdup(metadata[i].value);
        if (call->metadata[i].name == NULL || call->metadata[i].value == NULL) {
            call_free(call);
            return KYUFU_API_ENOMEM;
        }
    }
    req->internal = call;
    call->next = client->calls;
    if (client->calls != NULL) {
        client->calls->prev = call;
    }
    client->calls = call;
    client->n_calls++;
    if (client->current == NULL) {
        start_connection(client); /* may complete the call (deferred) */
    } else if (client->current->state == C_READY) {
        struct cconn *conn = client->current;
        submit(conn, call);
        conn_flush(conn);
    }
    arm_timer(client);
    return 0;
}

void kyufu_grpc_client_cancel(struct kyufu_grpc_client_req *req)
{
    struct ccall *call = req->internal;
    if (call == NULL) {
        return;
    }
    /* A call in the done queue has req->internal set until delivery; it is
     * recognisable by not being in the pending list. */
    bool pending = false;
    for (struct ccall *c = call->client->calls; c != NULL; c = c->next) {
        if (c == call) {
            pending = true;
            break;
        }
    }
    if (!pending) {
        return;
    }
    struct cconn *conn = call->conn;
    if (conn != NULL && call->stream_id > 0) {
        nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_CANCEL);
    }
    complete(call, KYUFU_GRPC_CANCELLED, "cancelled by the caller");
    if (conn != NULL) {
        conn_flush(conn);
    }
}

size_t kyufu_grpc_client_pending(const struct kyufu_grpc_client *client)
{
    return client->n_calls;
}

static void on_client_handle_closed(uv_handle_t *h)
{
    struct kyufu_grpc_client *client = h->data;
    if (--client->handles_open > 0) {
        return;
    }
    if (client->close_cb != NULL) {
        client->close_cb(client, client->close_data);
    }
    SSL_CTX_free(client->ctx);
    free(client->host);
    free(client->server_name);
    free(client);
}

static void maybe_closed(struct kyufu_grpc_client *client)
{
    if (!client->closing || client->conns != NULL || client->done_head != NULL ||
        uv_is_closing((uv_handle_t *)&client->timer)) {
        return;
    }
    assert(client->calls == NULL);
    uv_close((uv_handle_t *)&client->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&client->defer, on_client_handle_closed);
}

void kyufu_grpc_client_close(struct kyufu_grpc_client *client,
                             kyufu_grpc_client_close_cb close_cb,
                             void *data)
{
    assert(client != NULL && !client->closing);
    client->closing = true;
    client->close_cb = close_cb;
    client->close_data = data;
    while (client->calls != NULL) {
        complete(client->calls, KYUFU_GRPC_CANCELLED, "client closed");
    }
    for (struct cconn *conn = client->conns, *next; conn != NULL; conn = next) {
        next = conn->next;
        conn_fail(conn, "client closed");
    }
    /* Completions are delivered by the defer timer, which then closes the
     * handles (maybe_closed); with nothing queued, start that now. */
    uv_timer_start(&client->defer, on_defer, 0, 0);
}
