/* The sans-I/O gRPC server connection: nghttp2 server session fed from
 * memory, unary calls only.
 *
 * Happy path: the client's preface and SETTINGS arrive through recv; a
 * request's HEADERS are checked as they arrive (POST, content-type
 * application/grpc[+...], te: trailers, a known :path, grpc-timeout,
 * grpc-encoding identity or absent); its DATA is parsed as length-prefixed
 * messages; at END_STREAM the one message is handed to the method's handler
 * as a struct kyufu_grpc_call; the handler's respond queues HEADERS (:status
 * 200, content-type), one DATA message and the trailers (grpc-status,
 * grpc-message, then the handler's trailer metadata, checked and copied).
 *
 * Failure modes, each answered on its stream only (Trailers-Only response;
 * if the request is still arriving, followed by RST_STREAM(NO_ERROR) so the
 * client stops sending):
 *   - not POST -> HTTP 405; content-type not gRPC -> HTTP 415 (both with a
 *     grpc-status too, so a gRPC client reports something readable);
 *   - unknown path -> UNIMPLEMENTED; grpc-encoding other than identity or a
 *     message with the compressed flag -> UNIMPLEMENTED (we accept no
 *     compression, and say so in grpc-accept-encoding);
 *   - bad grpc-timeout -> INVALID_ARGUMENT (missing te: trailers too);
 *   - message longer than the limit -> RESOURCE_EXHAUSTED, detected from
 *     the 5-byte prefix before the body is buffered;
 *   - a second message -> INTERNAL; no message or a truncated one at
 *     END_STREAM -> INTERNAL ("incomplete message", as grpc does);
 *   - deadline passed before respond -> DEADLINE_EXCEEDED, call cancelled;
 *   - request not complete (END_STREAM) within
 *     KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX, grpc-timeout or not ->
 *     DEADLINE_EXCEEDED and RST_STREAM(NO_ERROR) (slowloris);
 *   - header list over the limit -> RST_STREAM (nghttp2 callback failure).
 * Connection-level failures (not HTTP/2 at all, protocol violations,
 * floods) make recv return EPROTO after nghttp2 queued a GOAWAY.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "grpc.h"
#include "grpc_limits.h"
#include "internal.h"

struct stream;

/* The private side of a call.  Owned by the stream until dispatch, then by
 * the handler until respond. */
struct call
{
    struct kyufu_grpc_call pub;
    struct stream *stream; /* NULL once detached (stream closed) */
    char *method;
    char *authority;
    char *request_id;
    char *peer_address;
    char *peer_identity;
    uint8_t *request;
    struct kyufu_grpc_metadata *metadata; /* names/values malloc'd */
    size_t n_metadata;
};

struct stream
{
    struct kyufu_grpc_server_conn *conn;
    struct stream *prev, *next;
    int32_t id;
    /* Request headers. */
    size_t header_bytes;
    bool is_post;
    bool content_type_ok;
    bool te_trailers;
    bool bad_encoding;
    bool bad_timeout;
    bool has_timeout;
    uint64_t timeout_ms;
    uint64_t deadline_ms;         /* the caller's grpc-timeout, or none */
    uint64_t receive_deadline_ms; /* the whole request by then */
    const struct kyufu_grpc_method *method; /* NULL for health or unknown */
    bool health;
    char *path;
    char *authority;
    char *request_id;
    struct kyufu_grpc_metadata *metadata;
    size_t n_metadata;
    /* Request body. */
    uint8_t prefix[5];
    size_t prefix_got;
    uint8_t *msg;
    uint32_t msg_len;
    uint32_t msg_got;
    uint32_t msg_cap;  /* grown as bytes arrive, never from the prefix */
    size_t unconsumed; /* DATA bytes held, not yet credited back */
    unsigned n_msgs;
    bool request_done; /* END_STREAM received */
    /* Handling. */
    struct call *call; /* handed to the handler, not yet responded */
    bool answered;     /* a response has been submitted */
    /* Response body: prefix + message. */
    uint8_t *out;
    size_t out_len;
    size_t out_off;
    int status;
    char grpc_message[KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX];
    /* The handler's trailer metadata: one allocation holding the array and
     * its strings (NULL when none). */
    struct kyufu_grpc_metadata *trailers;
    size_t n_trailers;
};

struct kyufu_grpc_server_conn
{
    struct kyufu_grpc_server_config config;
    nghttp2_session *session;
    char *peer_address;
    char *peer_identity;
    bool has_cert; /* the verified client certificate (set_peer_cert) */
    uint8_t cert_sha256[32];
    uint64_t peer_node_id;
    uint64_t now_ms;
    bool in_recv;
    bool failed; /* nghttp2 returned a fatal error: nothing more to send */
    bool broken; /* the peer broke the protocol: read nothing more */
    struct stream *streams;
    size_t n_streams;
    size_t buffered; /* sum of the streams' unconsumed bytes */
};

static char *dupn(const uint8_t *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *dups(const char *s)
{
    return dupn((const uint8_t *)(s != NULL ? s : ""), s != NULL ? strlen(s) : 0);
}

static void metadata_free(struct kyufu_grpc_metadata *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)md[i].name);
        free((char *)md[i].value);
    }
    free(md);
}

static void call_free(struct call *c)
{
    assert(c->stream == NULL);
    free(c->method);
    free(c->authority);
    free(c->request_id);
    free(c->peer_address);
    free(c->peer_identity);
    free(c->request);
    metadata_free(c->metadata, c->n_metadata);
    free(c);
}

/* Detach a call still held by its handler and tell the handler. */
static void call_cancel(struct stream *s)
{
    struct call *c = s->call;
    assert(c != NULL && c->stream == s);
    s->call = NULL;
    c->stream = NULL;
    c->pub.cancelled = true;
    if (c->pub.on_cancel != NULL) {
        c->pub.on_cancel(&c->pub);
    }
}

/* Flow control is driven by what the server has finished with, not by
 * arrival (nghttp2's automatic WINDOW_UPDATE is off): a stream's request
 * bytes are credited back when it is answered or closed, so the bytes one
 * connection can make the server hold are bounded by the connection
 * window (KYUFU_GRPC_CONNECTION_WINDOW_BYTES), whatever the number of
 * streams.  Data the server discards is credited at once. */
static void credit(struct stream *s)
{
    struct kyufu_grpc_server_conn *conn = s->conn;
    if (s->unconsumed == 0) {
        return;
    }
    assert(conn->buffered >= s->unconsumed);
    conn->buffered -= s->unconsumed;
    if (nghttp2_session_consume(conn->session, s->id, s->unconsumed) != 0) {
        conn->failed = true; /* only NOMEM: nothing more can be sent */
    }
    s->unconsumed = 0;
}

static void stream_free(struct stream *s)
{
    struct kyufu_grpc_server_conn *conn = s->conn;
    if (s->call != NULL) {
        call_cancel(s);
    }
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        conn->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    assert(conn->n_streams > 0);
    conn->n_streams--;
    free(s->path);
    free(s->authority);
    free(s->request_id);
    metadata_free(s->metadata, s->n_metadata);
    free(s->msg);
    free(s->out);
    free(s->trailers);
    free(s);
}

/* ---- responses ---- */

#define NV(n, v)                                                          \
    {                                                                     \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),         \
            NGHTTP2_NV_FLAG_NONE                                          \
    }

/* Append the handler's trailer metadata to nva[0..n); returns the new n.
 * nghttp2 copies the fields when the frame is submitted. */
static size_t add_trailers(const struct stream *s, nghttp2_nv *nva, size_t n)
{
    assert(s->n_trailers <= KYUFU_GRPC_TRAILER_ENTRIES_MAX);
    for (size_t i = 0; i < s->n_trailers; i++) {
        nva[n++] = (nghttp2_nv){(uint8_t *)s->trailers[i].name, (uint8_t *)s->trailers[i].value,
                                strlen(s->trailers[i].name), strlen(s->trailers[i].value),
                                NGHTTP2_NV_FLAG_NONE};
    }
    return n;
}

static ssize_t body_read(nghttp2_session *session,
                         int32_t stream_id,
                         uint8_t *buf,
                         size_t length,
                         uint32_t *data_flags,
                         nghttp2_data_source *source,
                         void *user_data)
{
    (void)user_data;
    struct stream *s = source->ptr;
    assert(s != NULL && s->id == stream_id);
    size_t n = s->out_len - s->out_off;
    if (n > length) {
        n = length;
    }
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    if (s->out_off == s->out_len) {
        char st[12];
        snprintf(st, sizeof st, "%d", s->status);
        nghttp2_nv trailers[2 + KYUFU_GRPC_TRAILER_ENTRIES_MAX] = {
            NV("grpc-status", st), NV("grpc-message", s->grpc_message)};
        size_t nt = s->grpc_message[0] != '\0' ? 2 : 1;
        nt = add_trailers(s, trailers, nt);
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(session, stream_id, trailers, nt) == 0) {
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        } /* else: end the stream without trailers; the client sees INTERNAL */
    }
    return (ssize_t)n;
}

/* Submit the response of a stream.  http_status is 200 except for requests
 * that are not gRPC at all.  For OK, body (copied) is sent as one message;
 * otherwise a Trailers-Only response. */
static void stream_answer(struct stream *s,
                          int http_status,
                          int status,
                          const char *message,
                          const uint8_t *body,
                          size_t body_len)
{
    struct kyufu_grpc_server_conn *conn = s->conn;
    assert(!s->answered);
    s->answered = true;
    s->status = status;
    credit(s);
    api__percent_encode(message, s->grpc_message, sizeof s->grpc_message);

    char hs[8], st[12];
    snprintf(hs, sizeof hs, "%d", http_status);
    snprintf(st, sizeof st, "%d", status);
    if (status == KYUFU_GRPC_OK && http_status == 200) {
        s->out_len = 5 + body_len;
        s->out = malloc(s->out_len);
        if (s->out == NULL) {
            s->status = status = KYUFU_GRPC_RESOURCE_EXHAUSTED;
            snprintf(st, sizeof st, "%d", status);
            snprintf(s->grpc_message, sizeof s->grpc_message, "server out of memory");
        } else {
            api__prefix_encode(s->out, false, (uint32_t)body_len);
            if (body_len > 0) {
                memcpy(s->out + 5, body, body_len);
            }
            nghttp2_nv nva[] = {NV(":status", hs), NV("content-type", API__CONTENT_TYPE),
                                NV("grpc-accept-encoding", "identity")};
            nghttp2_data_provider prd = {.source.ptr = s, .read_callback = body_read};
            if (nghttp2_submit_response(conn->session, s->id, nva, 3, &prd) != 0) {
                nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, s->id,
                                          NGHTTP2_INTERNAL_ERROR);
            }
            return;
        }
    }
    nghttp2_nv nva[5 + KYUFU_GRPC_TRAILER_ENTRIES_MAX] = {
        NV(":status", hs), NV("content-type", API__CONTENT_TYPE),
        NV("grpc-accept-encoding", "identity"), NV("grpc-status", st),
        NV("grpc-message", s->grpc_message)};
    size_t n = s->grpc_message[0] != '\0' ? 5 : 4;
    n = add_trailers(s, nva, n); /* Trailers-Only: one HEADERS frame */
    if (nghttp2_submit_response(conn->session, s->id, nva, n, NULL) != 0) {
        nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, s->id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
}

static void stream_fail(struct stream *s, int status, const char *message)
{
    if (!s->answered) {
        stream_answer(s, 200, status, message, NULL, 0);
    }
}

/* Copy checked trailers into one allocation owned by the stream.  Returns
 * false when out of memory (the answer then goes without them). */
static bool trailers_copy(struct stream *s, const struct kyufu_grpc_metadata *md, size_t n)
{
    assert(s->trailers == NULL && n <= KYUFU_GRPC_TRAILER_ENTRIES_MAX);
    if (n == 0) {
        return true;
    }
    size_t bytes = n * sizeof *md;
    for (size_t i = 0; i < n; i++) {
        bytes += strlen(md[i].name) + 1 + strlen(md[i].value) + 1;
    }
    struct kyufu_grpc_metadata *copy = malloc(bytes);
    if (copy == NULL) {
        return false;
    }
    char *p = (char *)(copy + n);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(md[i].name) + 1, vl = strlen(md[i].value) + 1;
        copy[i].name = memcpy(p, md[i].name, nl);
        p += nl;
        copy[i].value = memcpy(p, md[i].value, vl);
        p += vl;
    }
    assert(p == (char *)copy + bytes);
    s->trailers = copy;
    s->n_trailers = n;
    return true;
}

void kyufu_grpc_call_respond(struct kyufu_grpc_call *pub,
                             int status,
                             const char *message,
                             const uint8_t *response,
                             size_t response_len)
{
    int rv = kyufu_grpc_call_respond_md(pub, status, message, response, response_len, NULL, 0);
    assert(rv == 0);
    (void)rv;
}

int kyufu_grpc_call_respond_md(struct kyufu_grpc_call *pub,
                               int status,
                               const char *message,
                               const uint8_t *response,
                               size_t response_len,
                               const struct kyufu_grpc_metadata *trailers,
                               size_t n_trailers)
{
    assert(pub != NULL);
    struct call *c = pub->internal;
    assert(c != NULL && &c->pub == pub);
    int rv = kyufu_grpc_metadata_check(trailers, n_trailers);
    if (rv != 0) {
        n_trailers = 0; /* answer anyway, without them (see grpc.h) */
    }
    struct stream *s = c->stream;
    if (s == NULL) {
        /* Cancelled or detached: nothing to send, just release. */
        call_free(c);
        return rv;
    }
    assert(s->call == c && !s->answered);
    struct kyufu_grpc_server_conn *conn = s->conn;
    s->call = NULL;
    c->stream = NULL;
    if (!trailers_copy(s, trailers, n_trailers)) {
        /* Out of memory for a hint: the answer itself matters more. */
        assert(s->trailers == NULL && s->n_trailers == 0);
    }
    if (status < 0 || status > KYUFU_GRPC_UNAUTHENTICATED) {
        status = KYUFU_GRPC_UNKNOWN;
    }
    if (status == KYUFU_GRPC_OK && response_len > conn->config.message_bytes_max) {
        stream_answer(s, 200, KYUFU_GRPC_RESOURCE_EXHAUSTED, "response message too large",
                      NULL, 0);
    } else {
        stream_answer(s, 200, status, message, response, response_len);
    }
    call_free(c);
    if (!conn->in_recv && conn->config.on_output != NULL) {
        conn->config.on_output(conn, conn->config.data);
    }
    return rv;
}

/* ---- dispatch ---- */

static void dispatch(struct stream *s)
{
    struct kyufu_grpc_server_conn *conn = s->conn;
    assert(s->request_done && !s->answered && s->call == NULL);
    if (s->n_msgs == 0 || s->prefix_got != 0) {
        /* prefix_got != 0: a prefix started but did not finish. */
        stream_fail(s, KYUFU_GRPC_INTERNAL,
                    s->n_msgs == 0 && s->prefix_got == 0 ? "no request message"
                                                         : "incomplete message");
        return;
    }
    if (s->msg_got != s->msg_len) {
        stream_fail(s, KYUFU_GRPC_INTERNAL, "incomplete message");
        return;
    }
    struct call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        stream_fail(s, KYUFU_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    c->peer_address = dups(conn->peer_address);
    c->peer_identity = dups(conn->peer_identity);
    if (c->peer_address == NULL || c->peer_identity == NULL) {
        free(c->peer_address);
        free(c->peer_identity);
        free(c);
        stream_fail(s, KYUFU_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    /* Move the request's pieces from the stream into the call. */
    c->method = s->path;
    s->path = NULL;
    c->authority = s->authority;
    s->authority = NULL;
    c->request_id = s->request_id;
    s->request_id = NULL;
    c->request = s->msg;
    s->msg = NULL;
    c->metadata = s->metadata;
    c->n_metadata = s->n_metadata;
    s->metadata = NULL;
    s->n_metadata = 0;

    c->pub.method = c->method;
    c->pub.request = c->request;
    c->pub.request_len = s->msg_len;
    c->pub.has_deadline = s->has_timeout;
    c->pub.timeout_ms = s->timeout_ms;
    c->pub.deadline_ms = s->deadline_ms;
    c->pub.peer_address = c->peer_address;
    c->pub.peer_identity = c->peer_identity;
    c->pub.has_cert = conn->has_cert;
    memcpy(c->pub.cert_sha256, conn->cert_sha256, sizeof c->pub.cert_sha256);
    c->pub.peer_node_id = conn->peer_node_id;
    c->pub.authority = c->authority != NULL ? c->authority : "";
    c->pub.request_id = c->request_id != NULL ? c->request_id : "";
    c->pub.metadata = c->metadata;
    c->pub.n_metadata = c->n_metadata;
    c->pub.internal = c;
    c->stream = s;
    s->call = c;

    if (s->health) {
        api__health_serve(conn->config.health, &c->pub);
    } else {
        assert(s->method != NULL);
        s->method->handler(s->method->data, &c->pub);
    }
}

/* Check a request's headers once they are complete; answer at once if
 * they are not a call we will serve. */
static void check_headers(struct stream *s)
{
    struct kyufu_grpc_server_conn *conn = s->conn;
    if (!s->is_post) {
        stream_answer(s, 405, KYUFU_GRPC_UNIMPLEMENTED, "gRPC requires POST", NULL, 0);
        return;
    }
    if (!s->content_type_ok) {
        stream_answer(s, 415, KYUFU_GRPC_INTERNAL, "content-type is not application/grpc",
                      NULL, 0);
        return;
    }
    if (!s->te_trailers) {
        stream_fail(s, KYUFU_GRPC_INVALID_ARGUMENT, "missing te: trailers");
        return;
    }
    if (s->bad_timeout) {
        stream_fail(s, KYUFU_GRPC_INVALID_ARGUMENT, "malformed grpc-timeout");
        return;
    }
    if (s->bad_encoding) {
        stream_fail(s, KYUFU_GRPC_UNIMPLEMENTED,
                    "grpc-encoding not supported (accepted: identity)");
        return;
    }
    const char *path = s->path != NULL ? s->path : "";
    if (conn->config.health != NULL &&
        (strcmp(path, API__HEALTH_CHECK) == 0 || strcmp(path, API__HEALTH_WATCH) == 0)) {
        s->health = true;
    } else {
        for (size_t i = 0; i < conn->config.n_methods; i++) {
            if (strcmp(conn->config.methods[i].path, path) == 0) {
                s->method = &conn->config.methods[i];
                break;
            }
        }
        if (s->method == NULL) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown method %.200s", path);
            stream_fail(s, KYUFU_GRPC_UNIMPLEMENTED, msg);
            return;
        }
    }
    if (s->has_timeout) {
        s->deadline_ms = conn->now_ms + s->timeout_ms;
        if (s->timeout_ms == 0) {
            stream_fail(s, KYUFU_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        }
    }
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct kyufu_grpc_server_conn *conn = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    s->conn = conn;
    s->id = frame->hd.stream_id;
    s->deadline_ms = UINT64_MAX;
    s->receive_deadline_ms = conn->now_ms + KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX;
    s->next = conn->streams;
    if (conn->streams != NULL) {
        conn->streams->prev = s;
    }
    conn->streams = s;
    conn->n_streams++;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static bool is_reserved_header(const uint8_t *name, size_t len)
{
    static const char *const reserved[] = {"content-type", "te", "user-agent",
                                           "grpc-timeout", "grpc-encoding",
                                           "grpc-accept-encoding", "x-request-id",
                                           "content-length", "accept-encoding"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strlen(reserved[i]) == len && memcmp(reserved[i], name, len) == 0) {
            return true;
        }
    }
    return false;
}

#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)

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
    struct stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* request trailers: gRPC clients send none; ignored */
    }
    /* RFC 9113 §6.5.2 size: name + value + 32 per field. */
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > KYUFU_GRPC_HEADER_LIST_BYTES_MAX) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (IS(":method")) {
        s->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (IS(":path")) {
        free(s->path);
        if ((s->path = dupn(value, valuelen)) == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    } else if (IS(":authority")) {
        free(s->authority);
        if ((s->authority = dupn(value, valuelen)) == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    } else if (IS("content-type")) {
        /* "application/grpc" alone or followed by "+proto", ";params"... */
        size_t n = sizeof API__CONTENT_TYPE - 1;
        s->content_type_ok = valuelen >= n && memcmp(value, API__CONTENT_TYPE, n) == 0 &&
                             (valuelen == n || value[n] == '+' || value[n] == ';');
    } else if (IS("te")) {
        s->te_trailers = valuelen == 8 && memcmp(value, "trailers", 8) == 0;
    } else if (IS("grpc-timeout")) {
        s->has_timeout = true;
        if (kyufu_grpc_timeout_parse((const char *)value, valuelen, &s->timeout_ms) != 0) {
            s->bad_timeout = true;
        }
    } else if (IS("grpc-encoding")) {
        s->bad_encoding = !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
    } else if (IS("x-request-id")) {
        free(s->request_id);
        if ((s->request_id = dupn(value, valuelen)) == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    } else if (namelen > 0 && name[0] != ':' && !is_reserved_header(name, namelen) &&
               s->n_metadata < KYUFU_GRPC_METADATA_ENTRIES_MAX) {
        struct kyufu_grpc_metadata *md =
            realloc(s->metadata, (s->n_metadata + 1) * sizeof *md);
        if (md == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        s->metadata = md;
        md[s->n_metadata].name = dupn(name, namelen);
        md[s->n_metadata].value = dupn(value, valuelen);
        s->n_metadata++;
        if (md[s->n_metadata - 1].name == NULL || md[s->n_metadata - 1].value == NULL) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* freed with the stream */
        }
    }
    return 0;
}

#undef IS

static int on_data_chunk(nghttp2_session *session,
                         uint8_t flags,
                         int32_t stream_id,
                         const uint8_t *data,
                         size_t len,
                         void *user_data)
{
    (void)flags;
    struct kyufu_grpc_server_conn *conn = user_data;
    struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL || s->answered || s->call != NULL) {
        /* Discarded: credit it back now (credit()). */
        if (nghttp2_session_consume(session, stream_id, len) != 0) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
    }
    s->unconsumed += len;
    conn->buffered += len;
    while (len > 0 && !s->answered) {
        if (s->prefix_got < 5) {
            if (s->prefix_got == 0 && s->n_msgs == 1) {
                stream_fail(s, KYUFU_GRPC_INTERNAL, "more than one request message on a unary call");
                return 0;
            }
            size_t n = 5 - s->prefix_got;
            if (n > len) {
                n = len;
            }
            memcpy(s->prefix + s->prefix_got, data, n);
            s->prefix_got += n;
            data += n;
            len -= n;
            if (s->prefix_got < 5) {
                break;
            }
            if (s->prefix[0] != 0) {
                stream_fail(s, KYUFU_GRPC_UNIMPLEMENTED,
                            s->prefix[0] == 1 ? "compressed messages are not supported"
                                              : "invalid compressed flag");
                return 0;
            }
            s->msg_len = api__prefix_length(s->prefix);
            if (s->msg_len > conn->config.message_bytes_max) {
                char msg[128];
                snprintf(msg, sizeof msg, "request message of %u bytes exceeds the limit of %u",
                         s->msg_len, conn->config.message_bytes_max);
                stream_fail(s, KYUFU_GRPC_RESOURCE_EXHAUSTED, msg);
                return 0;
            }
            s->msg_got = 0;
            s->msg_cap = 0;
            if (s->msg_len == 0) {
                s->msg = malloc(1);
                if (s->msg == NULL) {
                    stream_fail(s, KYUFU_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
                    return 0;
                }
            }
        }
        size_t n = s->msg_len - s->msg_got;
        if (n > len) {
            n = len;
        }
        if (n == 0 && s->msg_len > 0) {
            break; /* the prefix ended this chunk: nothing to copy yet
                      (and s->msg may still be NULL; found by fuzz_h2) */
        }
        if (s->msg_got + n > s->msg_cap) {
            /* Grow by doubling, to what has arrived at least, to the
             * announced length at most: a prefix alone reserves nothing. */
            size_t cap = (size_t)s->msg_cap * 2;
            if (cap < KYUFU_GRPC_RECEIVE_CHUNK_BYTES) {
                cap = KYUFU_GRPC_RECEIVE_CHUNK_BYTES;
            }
            if (cap < s->msg_got + n) {
                cap = s->msg_got + n;
            }
            if (cap > s->msg_len) {
                cap = s->msg_len;
            }
            uint8_t *grown = realloc(s->msg, cap);
            if (grown == NULL) {
                stream_fail(s, KYUFU_GRPC_RESOURCE_EXHAUSTED, "server out of memory");
                return 0;
            }
            s->msg = grown;
            s->msg_cap = (uint32_t)cap;
        }
        memcpy(s->msg + s->msg_got, data, n);
        s->msg_got += (uint32_t)n;
        data += n;
        len -= n;
        if (s->msg_got == s->msg_len) {
            s->n_msgs++;
            s->prefix_got = 0; /* ready for (the forbidden) next message */
        }
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    struct stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL) {
        return 0;
    }
    /* Not when already answered: the receive deadline may fire while a
     * HEADERS block is still arriving (found by the h2 fuzz target). */
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        !s->answered) {
        check_headers(s);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        s->request_done = true;
        if (!s->answered && s->call == NULL) {
            dispatch(s);
        }
    }
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    struct stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s != NULL && !s->request_done) {
        /* We answered before the request ended (an early error): tell the
         * client to stop sending (RFC 9113 §8.1). */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session,
                           int32_t stream_id,
                           uint32_t error_code,
                           void *user_data)
{
    (void)error_code;
    (void)user_data;
    struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s != NULL) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        credit(s);
        stream_free(s);
    }
    return 0;
}

/* ---- connection ---- */

static int session_new(struct kyufu_grpc_server_conn *conn)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rv = KYUFU_API_ENOMEM;

    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        goto err;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        goto err_after_cbs;
    }
    /* Every option set explicitly (docs/measured.md, "Conventions"),
     * values in grpc_limits.h. */
    nghttp2_option_set_no_auto_window_update(opt, 1); /* credit() */
    nghttp2_option_set_no_http_messaging(opt, 0); /* keep nghttp2's RFC checks */
    nghttp2_option_set_no_recv_client_magic(opt, 0);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0); /* no push */
    nghttp2_option_set_max_send_header_block_length(opt, KYUFU_GRPC_SEND_HEADER_BLOCK_BYTES_MAX);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, KYUFU_GRPC_DEFLATE_TABLE_BYTES_MAX);
    nghttp2_option_set_max_outbound_ack(opt, KYUFU_GRPC_OUTBOUND_ACK_MAX);
    nghttp2_option_set_max_settings(opt, KYUFU_GRPC_SETTINGS_ENTRIES_MAX);
    nghttp2_option_set_max_continuations(opt, KYUFU_GRPC_CONTINUATIONS_MAX);
    nghttp2_option_set_stream_reset_rate_limit(opt, KYUFU_GRPC_STREAM_RESET_BURST,
                                               KYUFU_GRPC_STREAM_RESET_PER_SECOND);
    if (nghttp2_session_server_new2(&conn->session, cbs, conn, opt) != 0) {
        goto err_after_opt;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, conn->config.concurrent_streams_max},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, KYUFU_GRPC_STREAM_WINDOW_BYTES},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, KYUFU_GRPC_HEADER_LIST_BYTES_MAX},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, KYUFU_GRPC_DEFLATE_TABLE_BYTES_MAX},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
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

void kyufu_grpc_server_conn_set_peer_cert(struct kyufu_grpc_server_conn *conn,
                                          const uint8_t sha256[32],
                                          uint64_t node_id)
{
    assert(conn != NULL && sha256 != NULL);
    conn->has_cert = true;
    memcpy(conn->cert_sha256, sha256, sizeof conn->cert_sha256);
    conn->peer_node_id = node_id;
}

int kyufu_grpc_server_conn_new(const struct kyufu_grpc_server_config *config,
                               const char *peer_address,
                               const char *peer_identity,
                               uint64_t now_ms,
                               struct kyufu_grpc_server_conn **out)
{
    int rv;
    assert(config != NULL && out != NULL);
    if (config->message_bytes_max > KYUFU_GRPC_MESSAGE_BYTES_MAX ||
        config->concurrent_streams_max > KYUFU_GRPC_CONCURRENT_STREAMS_MAX ||
        (config->n_methods > 0 && config->methods == NULL)) {
        rv = KYUFU_API_EINVALID;
        goto err;
    }
    struct kyufu_grpc_server_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        rv = KYUFU_API_ENOMEM;
        goto err;
    }
    conn->config = *config;
    if (conn->config.message_bytes_max == 0) {
        conn->config.message_bytes_max = KYUFU_GRPC_MESSAGE_BYTES_MAX;
    }
    if (conn->config.concurrent_streams_max == 0) {
        conn->config.concurrent_streams_max = KYUFU_GRPC_CONCURRENT_STREAMS_MAX;
    }
    conn->now_ms = now_ms;
    conn->peer_address = dups(peer_address);
    conn->peer_identity = dups(peer_identity);
    if (conn->peer_address == NULL || conn->peer_identity == NULL) {
        rv = KYUFU_API_ENOMEM;
        goto err_after_alloc;
    }
    rv = session_new(conn);
    if (rv != 0) {
        goto err_after_alloc;
    }
    *out = conn;
    return 0;

err_after_alloc:
    free(conn->peer_address);
    free(conn->peer_identity);
    free(conn);
err:
    assert(rv != 0);
    return rv;
}

int kyufu_grpc_server_conn_recv(struct kyufu_grpc_server_conn *conn,
                                const uint8_t *data,
                                size_t len)
{
    assert(conn != NULL && !conn->in_recv);
    if (conn->failed || conn->broken) {
        return KYUFU_API_EPROTO;
    }
    conn->in_recv = true;
    ssize_t n = nghttp2_session_mem_recv(conn->session, data, len);
    conn->in_recv = false;
    if (n < 0) {
        /* Not HTTP/2 or a protocol violation.  nghttp2 has queued a GOAWAY
         * for most violations; for a bad preface it has not, so ask for one
         * (harmless if it is already terminating). */
        conn->broken = true;
        nghttp2_session_terminate_session(conn->session, NGHTTP2_PROTOCOL_ERROR);
        return KYUFU_API_EPROTO;
    }
    assert((size_t)n == len);
    return 0;
}

size_t kyufu_grpc_server_conn_pending_output(struct kyufu_grpc_server_conn *conn,
                                             const uint8_t **data)
{
    assert(conn != NULL && data != NULL && !conn->in_recv);
    *data = NULL;
    if (conn->failed) {
        return 0;
    }
    ssize_t n = nghttp2_session_mem_send(conn->session, data);
    if (n < 0) {
        conn->failed = true; /* fatal: out of memory or callback failure */
        *data = NULL;
        return 0;
    }
    return (size_t)n;
}

/* When the stream is due: its caller's deadline, and until END_STREAM
 * arrives, the receive deadline, which holds whether or not the caller sent
 * grpc-timeout (a stream that never ends its request is a slowloris). */
static uint64_t stream_due_ms(const struct stream *s)
{
    if (s->request_done || s->receive_deadline_ms > s->deadline_ms) {
        return s->deadline_ms;
    }
    return s->receive_deadline_ms;
}

void kyufu_grpc_server_conn_advance(struct kyufu_grpc_server_conn *conn, uint64_t now_ms)
{
    assert(conn != NULL && !conn->in_recv);
    if (now_ms > conn->now_ms) {
        conn->now_ms = now_ms;
    }
    for (struct stream *s = conn->streams; s != NULL; s = s->next) {
        if (s->answered || stream_due_ms(s) > conn->now_ms) {
            continue;
        }
        if (!s->request_done && s->receive_deadline_ms <= conn->now_ms &&
            s->receive_deadline_ms <= s->deadline_ms) {
            /* Not yet dispatched: no call to cancel.  The answer is
             * followed by RST_STREAM(NO_ERROR) (on_frame_send). */
            assert(s->call == NULL);
            char msg[96];
            snprintf(msg, sizeof msg, "request not received within %u ms",
                     (unsigned)KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX);
            stream_answer(s, 200, KYUFU_GRPC_DEADLINE_EXCEEDED, msg, NULL, 0);
            continue;
        }
        /* Answer first (the call is still attached), then cancel it. */
        struct call *c = s->call;
        s->call = NULL;
        stream_answer(s, 200, KYUFU_GRPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
        if (c != NULL) {
            s->call = c;
            call_cancel(s);
        }
    }
}

uint64_t kyufu_grpc_server_conn_next_deadline(const struct kyufu_grpc_server_conn *conn)
{
    uint64_t next = UINT64_MAX;
    for (const struct stream *s = conn->streams; s != NULL; s = s->next) {
        if (!s->answered && stream_due_ms(s) < next) {
            next = stream_due_ms(s);
        }
    }
    return next;
}

void kyufu_grpc_server_conn_shutdown(struct kyufu_grpc_server_conn *conn)
{
    assert(conn != NULL && !conn->in_recv);
    int32_t last = nghttp2_session_get_last_proc_stream_id(conn->session);
    nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}

bool kyufu_grpc_server_conn_finished(const struct kyufu_grpc_server_conn *conn)
{
    if (conn->failed) {
        return true;
    }
    nghttp2_session *session = conn->session;
    return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0;
}

size_t kyufu_grpc_server_conn_buffered(const struct kyufu_grpc_server_conn *conn)
{
    return conn->buffered;
}

size_t kyufu_grpc_server_conn_streams(const struct kyufu_grpc_server_conn *conn)
{
    return conn->n_streams;
}

void kyufu_grpc_server_conn_free(struct kyufu_grpc_server_conn *conn)
{
    if (conn == NULL) {
        return;
    }
    assert(!conn->in_recv);
    /* Deleting the session does not call on_stream_close, so release the
     * streams (cancelling their calls) ourselves first. */
    while (conn->streams != NULL) {
        stream_free(conn->streams);
    }
    nghttp2_session_del(conn->session);
    free(conn->peer_address);
    free(conn->peer_identity);
    free(conn);
}
