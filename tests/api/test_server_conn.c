/* The sans-I/O gRPC server connection, driven by an in-memory nghttp2
 * client: what a stock gRPC client relies on (framing, status trailers,
 * Trailers-Only errors), limits, deadlines and cancellation. */
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc.h"
#include "grpc_limits.h"
#include "h2_client.h"
#include "nv.h"

/* ---- handlers ---- */

struct app
{
    int calls;
    int cancels;
    struct kyufu_grpc_call *held; /* async handler keeps the call here */
    char last_request_id[64];
    char last_md[64];
    char last_identity[64];
    bool last_has_deadline;
    uint64_t last_deadline_ms;
    int outputs;
    size_t last_len;
    size_t last_n_md;
};

static void on_cancel(struct kyufu_grpc_call *call)
{
    struct app *a = call->user_data;
    CHECK(call->cancelled);
    a->cancels++;
}

/* Echo the request reversed, synchronously. */
static void echo(void *data, struct kyufu_grpc_call *call)
{
    struct app *a = data;
    a->calls++;
    snprintf(a->last_request_id, sizeof a->last_request_id, "%s", call->request_id);
    snprintf(a->last_identity, sizeof a->last_identity, "%s", call->peer_identity);
    a->last_md[0] = '\0';
    for (size_t i = 0; i < call->n_metadata; i++) {
        if (strcmp(call->metadata[i].name, "x-kyufu-actor") == 0) {
            snprintf(a->last_md, sizeof a->last_md, "%s", call->metadata[i].value);
        }
    }
    uint8_t out[256];
    CHECK(call->request_len <= sizeof out);
    for (size_t i = 0; i < call->request_len; i++) {
        out[i] = call->request[call->request_len - 1 - i];
    }
    kyufu_grpc_call_respond(call, KYUFU_GRPC_OK, NULL, out, call->request_len);
}

/* Keep the call for a later answer. */
static void hold(void *data, struct kyufu_grpc_call *call)
{
    struct app *a = data;
    a->calls++;
    a->last_has_deadline = call->has_deadline;
    a->last_deadline_ms = call->deadline_ms;
    call->user_data = a;
    call->on_cancel = on_cancel;
    CHECK(a->held == NULL);
    a->held = call;
}

static void fail(void *data, struct kyufu_grpc_call *call)
{
    (void)data;
    kyufu_grpc_call_respond(call, KYUFU_GRPC_FAILED_PRECONDITION, "caf\xc3\xa9 100% done\n", NULL, 0);
}

/* Answer with the status and trailers the test chose (hint_*). */
static int hint_status;
static const struct kyufu_grpc_metadata *hint_md;
static size_t hint_n;
static int hint_rv;
static void hint(void *data, struct kyufu_grpc_call *call)
{
    struct app *a = data;
    a->calls++;
    hint_rv = kyufu_grpc_call_respond_md(call, hint_status,
                                         hint_status == KYUFU_GRPC_OK ? NULL : "not the leader",
                                         (const uint8_t *)"ok", 2, hint_md, hint_n);
}

/* Record the request's size and metadata; answer with an empty message. */
static void size_handler(void *data, struct kyufu_grpc_call *call)
{
    struct app *a = data;
    a->calls++;
    a->last_len = call->request_len;
    a->last_n_md = call->n_metadata;
    a->last_md[0] = '\0';
    if (call->n_metadata > 0) {
        snprintf(a->last_md, sizeof a->last_md, "%s",
                 call->metadata[call->n_metadata - 1].name);
    }
    kyufu_grpc_call_respond(call, KYUFU_GRPC_OK, NULL, NULL, 0);
}

static void on_output(struct kyufu_grpc_server_conn *conn, void *data)
{
    (void)conn;
    ((struct app *)data)->outputs++;
}

static struct app app;
static const struct kyufu_grpc_method methods[] = {
    {"/kyufu.v1.Ledger/Echo", echo, &app},
    {"/kyufu.v1.Ledger/Hold", hold, &app},
    {"/kyufu.v1.Ledger/Fail", fail, &app},
    {"/kyufu.v1.Ledger/Hint", hint, &app},
    {"/kyufu.v1.Ledger/Size", size_handler, &app},
};

static struct kyufu_grpc_health *health;

static struct kyufu_grpc_server_conn *server(uint64_t now_ms)
{
    struct kyufu_grpc_server_config cfg = {
        .methods = methods,
        .n_methods = sizeof methods / sizeof methods[0],
        .health = health,
        .on_output = on_output,
        .data = &app,
    };
    struct kyufu_grpc_server_conn *conn;
    CHECK(kyufu_grpc_server_conn_new(&cfg, "127.0.0.1:5000", "CN=terminal-7", now_ms, &conn) == 0);
    memset(&app, 0, sizeof app);
    return conn;
}

/* ---- tests ---- */

static void test_round_trip(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[64];
    size_t n = t_frame(body, 0, "abc", 3);
    const char *extra[] = {"x-request-id", "req-42", "x-kyufu-actor", "clerk1", NULL};
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, extra);
    t_pump(&c);
    CHECK(app.calls == 1);
    CHECK(strcmp(app.last_request_id, "req-42") == 0);
    CHECK(strcmp(app.last_md, "clerk1") == 0);
    CHECK(strcmp(app.last_identity, "CN=terminal-7") == 0);
    CHECK(s->closed && s->close_error == 0);
    CHECK(s->http_status == 200);
    CHECK(strcmp(s->content_type, "application/grpc") == 0);
    CHECK(s->grpc_status == 0 && !s->status_in_headers); /* in trailers */
    CHECK(s->headers_frames == 2);
    CHECK(s->data_len == 8);
    CHECK(memcmp(s->data, "\0\0\0\0\3cba", 8) == 0);
    /* An empty request and an empty response are still one framed message. */
    n = t_frame(body, 0, NULL, 0);
    s = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, NULL);
    t_pump(&c);
    CHECK(s->grpc_status == 0 && s->data_len == 5);
    CHECK(kyufu_grpc_server_conn_streams(conn) == 0);
    CHECK(app.outputs == 0); /* synchronous answers need no wake-up */
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

static void test_timeout_parse(void)
{
    uint64_t ms;
    struct { const char *v; uint64_t ms; } ok[] = {
        {"1H", 3600000}, {"2M", 120000}, {"3S", 3000}, {"250m", 250},
        {"1500u", 2}, {"1000u", 1}, {"1u", 1}, {"1n", 1}, {"1000001n", 2},
        {"0m", 0}, {"86400000m", 86400000}, {"99999999m", KYUFU_GRPC_TIMEOUT_MS_MAX}, {"99999999H", KYUFU_GRPC_TIMEOUT_MS_MAX},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK(kyufu_grpc_timeout_parse(ok[i].v, strlen(ok[i].v), &ms) == 0);
        if (ms != ok[i].ms) {
            fprintf(stderr, "%s -> %llu\n", ok[i].v, (unsigned long long)ms);
        }
        CHECK(ms == ok[i].ms);
    }
    const char *bad[] = {"", "S", "1", "123456789S", "1s", "1x", "-1S", "1 S", "1.5S"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(kyufu_grpc_timeout_parse(bad[i], strlen(bad[i]), &ms) == KYUFU_API_EINVALID);
    }
    char buf[16];
    kyufu_grpc_timeout_format(1500, buf, sizeof buf);
    CHECK(strcmp(buf, "1500m") == 0);
    kyufu_grpc_timeout_format(100000000, buf, sizeof buf); /* > 8 digits of ms */
    CHECK(strcmp(buf, "100000S") == 0);
}

static void test_deadline(void)
{
    struct kyufu_grpc_server_conn *conn = server(1000);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[16];
    size_t n = t_frame(body, 0, "x", 1);
    const char *extra[] = {"grpc-timeout", "2S", NULL};
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, extra);
    t_pump(&c);
    CHECK(app.calls == 1 && app.held != NULL);
    CHECK(app.last_has_deadline && app.last_deadline_ms == 3000);
    CHECK(kyufu_grpc_server_conn_next_deadline(conn) == 3000);
    kyufu_grpc_server_conn_advance(conn, 2999);
    t_pump(&c);
    CHECK(!s->closed && app.cancels == 0);
    kyufu_grpc_server_conn_advance(conn, 3000);
    t_pump(&c);
    CHECK(app.cancels == 1 && app.held->cancelled);
    CHECK(s->closed && s->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED && s->status_in_headers);
    /* The late answer is a no-op that frees the call (ASan checks it). */
    kyufu_grpc_call_respond(app.held, KYUFU_GRPC_OK, NULL, (const uint8_t *)"late", 4);
    app.held = NULL;
    t_pump(&c);
    CHECK(kyufu_grpc_server_conn_next_deadline(conn) == UINT64_MAX);
    /* A malformed grpc-timeout is refused before the handler. */
    const char *bad[] = {"grpc-timeout", "10seconds", NULL};
    s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, bad);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_INVALID_ARGUMENT && app.calls == 1);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

/* A stream that never ends its request (slowloris) is answered
 * DEADLINE_EXCEEDED and reset after KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX,
 * with or without grpc-timeout; a shorter grpc-timeout comes first; the
 * connection keeps serving a well-behaved call meanwhile. */
static void test_receive_deadline(void)
{
    struct kyufu_grpc_server_conn *conn = server(1000);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t part[5];
    t_frame(part, 0, NULL, 100); /* announces 100 bytes, sends none */
    const char *long_timeout[] = {"grpc-timeout", "60S", NULL};
    const char *short_timeout[] = {"grpc-timeout", "2S", NULL};
    struct t_stream *plain = t_request(&c, "/kyufu.v1.Ledger/Echo", part, 5, false, NULL);
    struct t_stream *lng = t_request(&c, "/kyufu.v1.Ledger/Echo", part, 5, false, long_timeout);
    struct t_stream *shrt = t_request(&c, "/kyufu.v1.Ledger/Echo", part, 5, false, short_timeout);
    t_pump(&c);
    CHECK(kyufu_grpc_server_conn_next_deadline(conn) == 3000);
    kyufu_grpc_server_conn_advance(conn, 3000);
    t_pump(&c);
    CHECK(shrt->closed && shrt->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED);
    CHECK(!plain->closed && !lng->closed);
    const uint32_t due = 1000 + KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX;
    CHECK(kyufu_grpc_server_conn_next_deadline(conn) == due);
    kyufu_grpc_server_conn_advance(conn, due - 1);
    t_pump(&c);
    CHECK(!plain->closed && !lng->closed);
    /* Meanwhile a complete call is served at once. */
    uint8_t body[16];
    size_t n = t_frame(body, 0, "hi", 2);
    struct t_stream *ok = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, NULL);
    t_pump(&c);
    CHECK(ok->closed && ok->grpc_status == 0 && app.calls == 1);
    kyufu_grpc_server_conn_advance(conn, due);
    t_pump(&c);
    CHECK(plain->closed && plain->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED &&
          plain->status_in_headers);
    CHECK(strstr(plain->grpc_message, "not received") != NULL);
    CHECK(lng->closed && lng->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED);
    CHECK(app.calls == 1 && c.server_recv_rv == 0);
    CHECK(kyufu_grpc_server_conn_next_deadline(conn) == UINT64_MAX);
    CHECK(kyufu_grpc_server_conn_streams(conn) == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

/* Flow control follows what the server has finished with: request bytes
 * held for unfinished streams never exceed the connection window, however
 * many streams send, and are credited back when a stream is answered, so
 * a connection keeps working across far more bytes than its window. */
static void test_flow_control(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    const uint32_t big = 4u << 20; /* the message limit */
    uint8_t *body = calloc(1, (size_t)big + 5);
    CHECK(body != NULL);
    if (body == NULL) {
        return;
    }
    /* Six whole 4 MiB messages without END_STREAM: 24 MiB asked for. */
    size_t n = t_frame(body, 0, body + 5, big);
    struct t_stream *st[6];
    for (int i = 0; i < 6; i++) {
        st[i] = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, false, NULL);
    }
    t_pump(&c);
    size_t held = kyufu_grpc_server_conn_buffered(conn);
    CHECK(held <= KYUFU_GRPC_CONNECTION_WINDOW_BYTES);
    CHECK(held + big > KYUFU_GRPC_CONNECTION_WINDOW_BYTES); /* window used */
    CHECK(app.calls == 0);
    /* The receive deadline answers them: everything is credited back and
     * what the client still had to send is discarded as it arrives. */
    kyufu_grpc_server_conn_advance(conn, KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX);
    t_pump(&c);
    for (int i = 0; i < 6; i++) {
        CHECK(st[i]->closed && st[i]->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED);
    }
    CHECK(kyufu_grpc_server_conn_buffered(conn) == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
    /* On a new connection, 7 answered 4 MiB calls in a row: 28 MiB through
     * a 20 MiB window. */
    conn = server(0);
    t_client_init(&c, conn);
    for (int i = 0; i < 7; i++) {
        struct t_stream *f = t_request(&c, "/kyufu.v1.Ledger/Fail", body, n, true, NULL);
        t_pump(&c);
        CHECK(f->closed && f->grpc_status == KYUFU_GRPC_FAILED_PRECONDITION);
    }
    CHECK(kyufu_grpc_server_conn_buffered(conn) == 0 && c.server_recv_rv == 0);
    free(body);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

static void test_async_and_cancel(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[16];
    size_t n = t_frame(body, 0, "x", 1);
    /* Answered later: on_output tells the I/O layer to drain. */
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, NULL);
    t_pump(&c);
    CHECK(app.held != NULL && !s->closed);
    CHECK(!app.last_has_deadline && app.last_deadline_ms == UINT64_MAX);
    kyufu_grpc_call_respond(app.held, KYUFU_GRPC_OK, NULL, (const uint8_t *)"ok", 2);
    app.held = NULL;
    CHECK(app.outputs == 1);
    t_pump(&c);
    CHECK(s->closed && s->grpc_status == 0 && s->data_len == 7);
    /* Client resets the stream before the answer: cancel, then no-op. */
    s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, NULL);
    t_pump(&c);
    CHECK(app.held != NULL);
    CHECK(nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL) == 0);
    t_pump(&c);
    CHECK(app.cancels == 1);
    kyufu_grpc_call_respond(app.held, KYUFU_GRPC_OK, NULL, NULL, 0);
    app.held = NULL;
    /* Connection freed with a call outstanding: cancel, detach, no-op. */
    s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, NULL);
    t_pump(&c);
    CHECK(app.held != NULL);
    t_client_free(&c);
    int outputs = app.outputs;
    kyufu_grpc_server_conn_free(conn);
    CHECK(app.cancels == 2);
    kyufu_grpc_call_respond(app.held, KYUFU_GRPC_OK, NULL, NULL, 0);
    CHECK(app.outputs == outputs);
    app.held = NULL;
}

static void test_oversized(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    /* Only the prefix announces the size: refused before any body arrives,
     * and the request is cut short with RST_STREAM(NO_ERROR). */
    uint8_t big[5];
    t_frame(big, 0, NULL, KYUFU_GRPC_MESSAGE_BYTES_MAX + 1);
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Echo", big, 5, false, NULL);
    /* Another call in flight on the same connection. */
    uint8_t body[16];
    size_t n = t_frame(body, 0, "hi", 2);
    struct t_stream *s2 = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, NULL);
    t_pump(&c);
    CHECK(s->closed && s->grpc_status == KYUFU_GRPC_RESOURCE_EXHAUSTED && s->status_in_headers);
    CHECK(strstr(s->grpc_message, "exceeds") != NULL);
    CHECK(s2->closed && s2->grpc_status == 0 && s2->data_len == 7);
    CHECK(app.calls == 1);
    /* And the connection keeps serving afterwards. */
    struct t_stream *s3 = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, NULL);
    t_pump(&c);
    CHECK(s3->grpc_status == 0 && app.calls == 2);
    CHECK(c.server_recv_rv == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

static void test_framing_errors(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[64];
    /* Truncated: prefix says 10 bytes, 3 arrive, then END_STREAM. */
    t_frame(body, 0, "abcdefghij", 10);
    struct t_stream *s1 = t_request(&c, "/kyufu.v1.Ledger/Echo", body, 8, true, NULL);
    /* Truncated inside the prefix. */
    struct t_stream *s2 = t_request(&c, "/kyufu.v1.Ledger/Echo", body, 3, true, NULL);
    /* No message at all. */
    struct t_stream *s3 = t_request(&c, "/kyufu.v1.Ledger/Echo", NULL, 0, true, NULL);
    /* Compressed flag without any accepted encoding. */
    uint8_t zbody[16];
    size_t zn = t_frame(zbody, 1, "zz", 2);
    struct t_stream *s4 = t_request(&c, "/kyufu.v1.Ledger/Echo", zbody, zn, true, NULL);
    /* Two messages on a unary call. */
    uint8_t two[32];
    size_t tn = t_frame(two, 0, "a", 1);
    tn += t_frame(two + tn, 0, "b", 1);
    struct t_stream *s5 = t_request(&c, "/kyufu.v1.Ledger/Echo", two, tn, true, NULL);
    t_pump(&c);
    CHECK(s1->grpc_status == KYUFU_GRPC_INTERNAL && strstr(s1->grpc_message, "incomplete"));
    CHECK(s2->grpc_status == KYUFU_GRPC_INTERNAL && strstr(s2->grpc_message, "incomplete"));
    CHECK(s3->grpc_status == KYUFU_GRPC_INTERNAL);
    CHECK(s4->grpc_status == KYUFU_GRPC_UNIMPLEMENTED && strstr(s4->grpc_message, "compress"));
    CHECK(s5->grpc_status == KYUFU_GRPC_INTERNAL && strstr(s5->grpc_message, "more than one"));
    CHECK(app.calls == 0);
    CHECK(s1->closed && s2->closed && s3->closed && s4->closed && s5->closed);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

/* A message's 5-byte prefix alone in one DATA frame, its bytes in later
 * ones (grpc clients may write the prefix separately): nothing to store
 * yet, so no buffer, and no memcpy to NULL (found by fuzz_h2 and, through
 * a real kyufud under UBSan, by test_api_abuse.py's partial bodies). */
static void test_prefix_alone(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[16];
    t_frame(body, 0, "abc", 3);
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Echo", body, 5, false, NULL);
    t_pump(&c);
    CHECK(app.calls == 0 && !s->closed);
    CHECK(kyufu_grpc_server_conn_buffered(conn) == 5);
    t_send_more(&c, s, body + 5, 1, false);
    t_pump(&c);
    t_send_more(&c, s, body + 6, 2, true);
    t_pump(&c);
    CHECK(app.calls == 1);
    CHECK(s->closed && s->grpc_status == 0);
    CHECK(s->data_len == 8 && memcmp(s->data, "\0\0\0\0\3cba", 8) == 0);
    CHECK(kyufu_grpc_server_conn_buffered(conn) == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

static void test_header_errors(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[16];
    size_t n = t_frame(body, 0, "x", 1);
    struct t_stream *unknown = t_request(&c, "/kyufu.v1.Ledger/Nope", body, n, true, NULL);
    const char *gzip[] = {"grpc-encoding", "gzip", NULL};
    struct t_stream *enc = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, gzip);
    const char *json[] = {"!content-type", "application/json", NULL};
    struct t_stream *ct = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, json);
    const char *plus[] = {"!content-type", "application/grpc+proto", NULL};
    struct t_stream *ok = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, plus);
    const char *get[] = {"!method", "GET", NULL};
    struct t_stream *g = t_request(&c, "/kyufu.v1.Ledger/Echo", NULL, 0, true, get);
    const char *note[] = {"!te", "", NULL};
    struct t_stream *te = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, note);
    t_pump(&c);
    CHECK(unknown->grpc_status == KYUFU_GRPC_UNIMPLEMENTED && unknown->status_in_headers);
    CHECK(strstr(unknown->grpc_message, "/kyufu.v1.Ledger/Nope") != NULL);
    CHECK(enc->grpc_status == KYUFU_GRPC_UNIMPLEMENTED);
    CHECK(ct->http_status == 415);
    CHECK(ok->grpc_status == 0);
    CHECK(g->http_status == 405);
    CHECK(te->grpc_status == KYUFU_GRPC_INVALID_ARGUMENT);
    CHECK(app.calls == 1);
    /* Error text is percent-encoded on the wire (UTF-8 bytes, '%', '\n'). */
    struct t_stream *f = t_request(&c, "/kyufu.v1.Ledger/Fail", body, n, true, NULL);
    t_pump(&c);
    CHECK(f->grpc_status == KYUFU_GRPC_FAILED_PRECONDITION && f->status_in_headers);
    CHECK(strcmp(f->grpc_message, "caf%C3%A9 100%25 done%0A") == 0);
    CHECK(f->data_len == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

static void drain_and_check_finished(struct kyufu_grpc_server_conn *conn)
{
    const uint8_t *p;
    size_t total = 0, n;
    while ((n = kyufu_grpc_server_conn_pending_output(conn, &p)) > 0) {
        total += n;
    }
    CHECK(total > 0); /* at least our SETTINGS and a GOAWAY */
    CHECK(kyufu_grpc_server_conn_finished(conn));
}

static void test_not_http2(void)
{
    static const char http1[] = "GET / HTTP/1.1\r\nHost: kyufu\r\n\r\n";
    struct kyufu_grpc_server_conn *conn = server(0);
    CHECK(kyufu_grpc_server_conn_recv(conn, (const uint8_t *)http1, sizeof http1 - 1) ==
          KYUFU_API_EPROTO);
    drain_and_check_finished(conn);
    /* Further bytes are refused, never parsed. */
    CHECK(kyufu_grpc_server_conn_recv(conn, (const uint8_t *)"x", 1) == KYUFU_API_EPROTO);
    kyufu_grpc_server_conn_free(conn);

    /* Seeded garbage after a valid preface: a protocol error, no crash. */
    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        conn = server(0);
        static const char preface[] = NGHTTP2_CLIENT_MAGIC;
        int rv = kyufu_grpc_server_conn_recv(conn, (const uint8_t *)preface, sizeof preface - 1);
        CHECK(rv == 0);
        uint8_t junk[256];
        for (size_t i = 0; i < sizeof junk; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (uint8_t)(seed >> 16);
        }
        rv = kyufu_grpc_server_conn_recv(conn, junk, sizeof junk);
        const uint8_t *p;
        while (kyufu_grpc_server_conn_pending_output(conn, &p) > 0) {
        }
        /* Either recv reports the violation, or nghttp2 has ended the
         * session itself (GOAWAY queued): either way the I/O layer closes. */
        CHECK(rv == KYUFU_API_EPROTO || rv == 0);
        CHECK(kyufu_grpc_server_conn_finished(conn));
        kyufu_grpc_server_conn_free(conn);
    }
}

static void health_call(struct t_client *c, const char *path, const char *service,
                        int want_status, int want_serving)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    uint8_t msg[256], body[300];
    size_t len = grpc__health__v1__health_check_request__pack(&req, msg);
    size_t n = t_frame(body, 0, msg, (uint32_t)len);
    struct t_stream *s = t_request(c, path, body, n, true, NULL);
    t_pump(c);
    CHECK(s->closed && s->grpc_status == want_status);
    if (want_status == 0) {
        CHECK(s->data_len >= 5);
        Grpc__Health__V1__HealthCheckResponse *r =
            grpc__health__v1__health_check_response__unpack(NULL, s->data_len - 5, s->data + 5);
        CHECK(r != NULL);
        CHECK((int)r->status == want_serving);
        grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    }
}

static void test_health(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    health_call(&c, "/grpc.health.v1.Health/Check", "", 0, KYUFU_GRPC_HEALTH_NOT_SERVING);
    CHECK(kyufu_grpc_health_set(health, "", KYUFU_GRPC_HEALTH_SERVING) == 0);
    CHECK(kyufu_grpc_health_set(health, "kyufu.v1.Ledger", KYUFU_GRPC_HEALTH_NOT_SERVING) == 0);
    health_call(&c, "/grpc.health.v1.Health/Check", "", 0, KYUFU_GRPC_HEALTH_SERVING);
    health_call(&c, "/grpc.health.v1.Health/Check", "kyufu.v1.Ledger", 0,
                KYUFU_GRPC_HEALTH_NOT_SERVING);
    health_call(&c, "/grpc.health.v1.Health/Check", "nope", KYUFU_GRPC_NOT_FOUND, 0);
    health_call(&c, "/grpc.health.v1.Health/Watch", "", 0, KYUFU_GRPC_HEALTH_SERVING);
    health_call(&c, "/grpc.health.v1.Health/Watch", "nope", 0, 3 /* SERVICE_UNKNOWN */);
    /* Bytes that are not a HealthCheckRequest. */
    uint8_t body[16];
    size_t n = t_frame(body, 0, "\xff\xff\xff", 3);
    struct t_stream *s = t_request(&c, "/grpc.health.v1.Health/Check", body, n, true, NULL);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_INVALID_ARGUMENT);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

static void test_config_limits(void)
{
    struct kyufu_grpc_server_config cfg = {.message_bytes_max = KYUFU_GRPC_MESSAGE_BYTES_MAX + 1};
    struct kyufu_grpc_server_conn *conn = NULL;
    CHECK(kyufu_grpc_server_conn_new(&cfg, NULL, NULL, 0, &conn) == KYUFU_API_EINVALID);
    CHECK(conn == NULL);
    /* A smaller limit is honoured, and an over-limit response is refused. */
    cfg.message_bytes_max = 4;
    cfg.methods = methods;
    cfg.n_methods = 3;
    CHECK(kyufu_grpc_server_conn_new(&cfg, NULL, NULL, 0, &conn) == 0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[32];
    size_t n = t_frame(body, 0, "abcde", 5);
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, NULL);
    n = t_frame(body + 10, 0, "abcd", 4);
    struct t_stream *s2 = t_request(&c, "/kyufu.v1.Ledger/Echo", body + 10, n, true, NULL);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_RESOURCE_EXHAUSTED);
    CHECK(s2->grpc_status == KYUFU_GRPC_OK);
    /* Health methods are UNIMPLEMENTED without a health table. */
    n = t_frame(body, 0, NULL, 0);
    s = t_request(&c, "/grpc.health.v1.Health/Check", body, n, true, NULL);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_UNIMPLEMENTED);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
    CHECK(strcmp(kyufu_grpc_status_name(KYUFU_GRPC_UNAUTHENTICATED), "UNAUTHENTICATED") == 0);
    CHECK(strcmp(kyufu_api_strerror(KYUFU_API_EPROTO), "HTTP/2 protocol error from the peer") == 0);
}

/* The entry named `name` of a stream's received fields, or NULL. */
static const char *md_of(const struct t_stream *s, const char *name, int *frame)
{
    for (int i = 0; i < s->n_md; i++) {
        if (strcmp(s->md[i].name, name) == 0) {
            *frame = s->md[i].frame;
            return s->md[i].value;
        }
    }
    return NULL;
}

static void test_metadata_check(void)
{
    typedef struct kyufu_grpc_metadata M;
    const M ok[] = {{"kyufu-leader", "127.0.0.1:8003"}, {"x_a.b-9", "a b"},
                    {"trace-bin", "AAEC/+8="}};
    CHECK(kyufu_grpc_metadata_check(ok, 3) == 0);
    CHECK(kyufu_grpc_metadata_check(NULL, 0) == 0);
    CHECK(kyufu_grpc_metadata_check(NULL, 1) == KYUFU_API_EINVALID);
    const M bad[] = {
        {"Kyufu-Leader", "x"},   /* upper case */
        {"kyufu leader", "x"},   /* not a token */
        {"", "x"},               /* empty name */
        {"grpc-status", "0"},    /* gRPC's own */
        {"grpc-x", "1"},         /* the reserved prefix */
        {":status", "200"},      /* pseudo-header */
        {"te", "trailers"},
        {"content-type", "text/plain"},
        {"connection", "close"},
        {"user-agent", "x"},
        {"kyufu-leader", ""},    /* empty value */
        {"kyufu-leader", " x"},  /* leading space */
        {"kyufu-leader", "x "},  /* trailing space */
        {"kyufu-leader", "a\nb"},/* control character */
        {"kyufu-leader", "caf\xc3\xa9"}, /* not ASCII */
        {"trace-bin", "a b"},    /* not base64 */
        {NULL, "x"},
        {"kyufu-leader", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        M two[2] = {ok[0], bad[i]};
        if (kyufu_grpc_metadata_check(two, 2) != KYUFU_API_EINVALID) {
            fprintf(stderr, "accepted bad metadata #%zu\n", i);
            CHECK(false);
        }
    }
    M many[KYUFU_GRPC_TRAILER_ENTRIES_MAX + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) {
        many[i] = ok[0];
    }
    CHECK(kyufu_grpc_metadata_check(many, KYUFU_GRPC_TRAILER_ENTRIES_MAX) == 0);
    CHECK(kyufu_grpc_metadata_check(many, KYUFU_GRPC_TRAILER_ENTRIES_MAX + 1) == KYUFU_API_ELIMIT);
    static char big[KYUFU_GRPC_TRAILER_BYTES_MAX];
    memset(big, 'v', sizeof big - 1);
    const M large[] = {{"kyufu-leader", big}};
    CHECK(kyufu_grpc_metadata_check(large, 1) == KYUFU_API_ELIMIT);
    CHECK(strcmp(kyufu_grpc_metadata_find(ok, 3, "x_a.b-9"), "a b") == 0);
    CHECK(kyufu_grpc_metadata_find(ok, 3, "kyufu") == NULL);
    CHECK(kyufu_grpc_metadata_find(NULL, 0, "kyufu-leader") == NULL);
}

static void test_trailers(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[16];
    size_t n = t_frame(body, 0, "x", 1);
    const struct kyufu_grpc_metadata md[] = {{"kyufu-leader", "127.0.0.1:8003"},
                                             {"kyufu-node", "2"}};
    int frame = -1;

    /* OK: the message, then grpc-status and our entries in the trailers. */
    hint_status = KYUFU_GRPC_OK;
    hint_md = md;
    hint_n = 2;
    struct t_stream *s = t_request(&c, "/kyufu.v1.Ledger/Hint", body, n, true, NULL);
    t_pump(&c);
    CHECK(hint_rv == 0);
    CHECK(s->grpc_status == 0 && !s->status_in_headers && s->headers_frames == 2);
    CHECK(s->data_len == 7 && memcmp(s->data + 5, "ok", 2) == 0);
    CHECK(strcmp(md_of(s, "kyufu-leader", &frame), "127.0.0.1:8003") == 0 && frame == 1);
    CHECK(strcmp(md_of(s, "kyufu-node", &frame), "2") == 0 && frame == 1);

    /* An error: Trailers-Only, the entries in the one HEADERS frame. */
    hint_status = KYUFU_GRPC_UNAVAILABLE;
    hint_n = 1;
    s = t_request(&c, "/kyufu.v1.Ledger/Hint", body, n, true, NULL);
    t_pump(&c);
    CHECK(hint_rv == 0);
    CHECK(s->grpc_status == KYUFU_GRPC_UNAVAILABLE && s->status_in_headers);
    CHECK(s->headers_frames == 1 && s->data_len == 0);
    CHECK(strcmp(md_of(s, "kyufu-leader", &frame), "127.0.0.1:8003") == 0 && frame == 0);
    CHECK(md_of(s, "kyufu-node", &frame) == NULL);

    /* Invalid trailers: the answer still goes out, without any of them. */
    const struct kyufu_grpc_metadata bad[] = {{"kyufu-leader", "127.0.0.1:8003"},
                                              {"grpc-status", "0"}};
    hint_status = KYUFU_GRPC_OK;
    hint_md = bad;
    hint_n = 2;
    s = t_request(&c, "/kyufu.v1.Ledger/Hint", body, n, true, NULL);
    t_pump(&c);
    CHECK(hint_rv == KYUFU_API_EINVALID);
    CHECK(s->grpc_status == 0 && s->data_len == 7 && s->n_md == 0);

    /* An async answer with trailers; and a cancelled call's respond_md
     * frees it and sends nothing. */
    s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, NULL);
    t_pump(&c);
    CHECK(app.held != NULL);
    CHECK(kyufu_grpc_call_respond_md(app.held, KYUFU_GRPC_NOT_FOUND, "no such thing", NULL, 0,
                                     md, 1) == 0);
    app.held = NULL;
    CHECK(app.outputs == 1);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_NOT_FOUND && s->status_in_headers);
    CHECK(strcmp(md_of(s, "kyufu-leader", &frame), "127.0.0.1:8003") == 0 && frame == 0);
    s = t_request(&c, "/kyufu.v1.Ledger/Hold", body, n, true, NULL);
    t_pump(&c);
    CHECK(app.held != NULL);
    struct kyufu_grpc_call *held = app.held;
    app.held = NULL;
    CHECK(nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL) == 0);
    t_pump(&c);
    CHECK(held->cancelled);
    CHECK(kyufu_grpc_call_respond_md(held, KYUFU_GRPC_OK, NULL, NULL, 0, md, 2) == 0);
    CHECK(kyufu_grpc_server_conn_streams(conn) == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

/* The transport's limits at their edges, through the bytes a client
 * sends: exactly at the limit works, one over is refused. */
static size_t field_cost(const char *name, const char *value)
{
    return strlen(name) + strlen(value) + 32; /* RFC 9113 6.5.2 */
}

static void test_limits_at_edges(void)
{
    struct kyufu_grpc_server_conn *conn = server(0);
    struct t_client c;
    t_client_init(&c, conn);
    const char *path = "/kyufu.v1.Ledger/Size";

    /* A message of exactly KYUFU_GRPC_MESSAGE_BYTES_MAX bytes, all of it
     * sent, is accepted; one byte more (also all sent) is refused. */
    const size_t max = KYUFU_GRPC_MESSAGE_BYTES_MAX;
    uint8_t *big = malloc(max + 6);
    CHECK(big != NULL);
    memset(big, 'm', max + 6);
    t_frame(big, 0, NULL, (uint32_t)max);
    struct t_stream *s = t_request(&c, path, big, max + 5, true, NULL);
    t_pump(&c);
    CHECK(s->closed && s->grpc_status == KYUFU_GRPC_OK);
    CHECK(app.calls == 1 && app.last_len == max);
    t_frame(big, 0, NULL, (uint32_t)max + 1);
    s = t_request(&c, path, big, max + 6, true, NULL);
    t_pump(&c);
    CHECK(s->closed && s->grpc_status == KYUFU_GRPC_RESOURCE_EXHAUSTED);
    CHECK(app.calls == 1);
    free(big);

    /* grpc-timeout: the cap exactly, and one over it (capped, not
     * refused). */
    uint64_t ms;
    char v[32];
    snprintf(v, sizeof v, "%llum", (unsigned long long)KYUFU_GRPC_TIMEOUT_MS_MAX);
    CHECK(kyufu_grpc_timeout_parse(v, strlen(v), &ms) == 0 &&
          ms == KYUFU_GRPC_TIMEOUT_MS_MAX);
    snprintf(v, sizeof v, "%llum",
             (unsigned long long)KYUFU_GRPC_TIMEOUT_MS_MAX + 1);
    CHECK(kyufu_grpc_timeout_parse(v, strlen(v), &ms) == 0 &&
          ms == KYUFU_GRPC_TIMEOUT_MS_MAX);
    snprintf(v, sizeof v, "%llum",
             (unsigned long long)KYUFU_GRPC_TIMEOUT_MS_MAX - 1);
    CHECK(kyufu_grpc_timeout_parse(v, strlen(v), &ms) == 0 &&
          ms == KYUFU_GRPC_TIMEOUT_MS_MAX - 1);

    /* Header list: the fields t_request sends plus one x-pad whose value
     * makes the total exactly KYUFU_GRPC_HEADER_LIST_BYTES_MAX; then one
     * byte more. */
    size_t used = field_cost(":method", "POST") + field_cost(":scheme", "https") +
                  field_cost(":path", path) + field_cost(":authority", "kyufu.test") +
                  field_cost("content-type", "application/grpc") +
                  field_cost("te", "trailers") + field_cost("x-pad", "");
    static char pad[KYUFU_GRPC_HEADER_LIST_BYTES_MAX + 2];
    CHECK(used < KYUFU_GRPC_HEADER_LIST_BYTES_MAX);
    memset(pad, 'p', KYUFU_GRPC_HEADER_LIST_BYTES_MAX - used);
    pad[KYUFU_GRPC_HEADER_LIST_BYTES_MAX - used] = '\0';
    uint8_t body[16];
    size_t n = t_frame(body, 0, "x", 1);
    const char *at[] = {"x-pad", pad, NULL};
    s = t_request(&c, path, body, n, true, at);
    t_pump(&c);
    CHECK(s->closed && s->grpc_status == KYUFU_GRPC_OK && app.calls == 2);
    CHECK(app.last_n_md == 1 && strcmp(app.last_md, "x-pad") == 0);
    pad[KYUFU_GRPC_HEADER_LIST_BYTES_MAX - used] = 'p';
    pad[KYUFU_GRPC_HEADER_LIST_BYTES_MAX - used + 1] = '\0';
    s = t_request(&c, path, body, n, true, at);
    t_pump(&c);
    CHECK(s->closed && s->grpc_status != KYUFU_GRPC_OK && app.calls == 2);

    /* Metadata entries: exactly KYUFU_GRPC_METADATA_ENTRIES_MAX are all
     * handed to the handler; one more is dropped (the last one). */
    static char names[KYUFU_GRPC_METADATA_ENTRIES_MAX + 1][16];
    const char *md[2 * (KYUFU_GRPC_METADATA_ENTRIES_MAX + 1) + 1];
    for (size_t k = 0; k <= KYUFU_GRPC_METADATA_ENTRIES_MAX; k++) {
        snprintf(names[k], sizeof names[k], "x-m-%02zu", k);
        md[2 * k] = names[k];
        md[2 * k + 1] = "v";
    }
    md[2 * KYUFU_GRPC_METADATA_ENTRIES_MAX] = NULL;
    s = t_request(&c, path, body, n, true, md);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_OK && app.calls == 3);
    CHECK(app.last_n_md == KYUFU_GRPC_METADATA_ENTRIES_MAX);
    CHECK(strcmp(app.last_md, names[KYUFU_GRPC_METADATA_ENTRIES_MAX - 1]) == 0);
    md[2 * KYUFU_GRPC_METADATA_ENTRIES_MAX] = names[KYUFU_GRPC_METADATA_ENTRIES_MAX];
    md[2 * KYUFU_GRPC_METADATA_ENTRIES_MAX + 2] = NULL;
    s = t_request(&c, path, body, n, true, md);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_OK && app.calls == 4);
    CHECK(app.last_n_md == KYUFU_GRPC_METADATA_ENTRIES_MAX);
    CHECK(strcmp(app.last_md, names[KYUFU_GRPC_METADATA_ENTRIES_MAX - 1]) == 0);

    /* Trailer metadata: exactly KYUFU_GRPC_TRAILER_BYTES_MAX (name +
     * value + 32) is accepted, one byte more is ELIMIT. */
    static char tv[KYUFU_GRPC_TRAILER_BYTES_MAX];
    size_t vlen = KYUFU_GRPC_TRAILER_BYTES_MAX - strlen("kyufu-leader") - 32;
    memset(tv, 'v', vlen);
    tv[vlen] = '\0';
    const struct kyufu_grpc_metadata tmd[] = {{"kyufu-leader", tv}};
    CHECK(kyufu_grpc_metadata_check(tmd, 1) == 0);
    tv[vlen] = 'v';
    tv[vlen + 1] = '\0';
    CHECK(kyufu_grpc_metadata_check(tmd, 1) == KYUFU_API_ELIMIT);

    /* Health service names: 128 bytes accepted, 129 refused; at most 16
     * services (the table already holds some: fill it up). */
    static char svc[KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX + 2];
    memset(svc, 'h', KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX + 1);
    svc[KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX + 1] = '\0';
    CHECK(kyufu_grpc_health_set(health, svc, KYUFU_GRPC_HEALTH_SERVING) ==
          KYUFU_API_EINVALID);
    svc[KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX] = '\0';
    CHECK(kyufu_grpc_health_set(health, svc, KYUFU_GRPC_HEALTH_SERVING) == 0);

    /* Server config: the maxima themselves are accepted, one over is not. */
    struct kyufu_grpc_server_config cfg = {
        .message_bytes_max = KYUFU_GRPC_MESSAGE_BYTES_MAX,
        .concurrent_streams_max = KYUFU_GRPC_CONCURRENT_STREAMS_MAX,
    };
    struct kyufu_grpc_server_conn *other = NULL;
    CHECK(kyufu_grpc_server_conn_new(&cfg, NULL, NULL, 0, &other) == 0);
    kyufu_grpc_server_conn_free(other);
    other = NULL;
    cfg.concurrent_streams_max = KYUFU_GRPC_CONCURRENT_STREAMS_MAX + 1;
    CHECK(kyufu_grpc_server_conn_new(&cfg, NULL, NULL, 0, &other) == KYUFU_API_EINVALID);
    CHECK(other == NULL);

    /* The connection still serves. */
    s = t_request(&c, path, body, n, true, NULL);
    t_pump(&c);
    CHECK(s->grpc_status == KYUFU_GRPC_OK && app.calls == 5 && app.last_len == 1);
    CHECK(c.server_recv_rv == 0);
    t_client_free(&c);
    kyufu_grpc_server_conn_free(conn);
}

/* Credentials never enter an HPACK table (issue 8): the client's header
 * for `authorization` and `kyufu-session` carries NGHTTP2_NV_FLAG_NO_INDEX,
 * and on the wire that is the never-indexed literal (0001xxxx, RFC 7541
 * §6.2.3) every time, where an ordinary header is indexed the second time. */
static void test_secret_never_indexed(void)
{
    nghttp2_nv secret[] = {api__client_nv("authorization", "Bearer c2VjcmV0"),
                           api__client_nv("kyufu-session", "00ff00ff")};
    nghttp2_nv plain = api__client_nv("x-kyufu-actor", "approver-3");
    CHECK(secret[0].flags == NGHTTP2_NV_FLAG_NO_INDEX);
    CHECK(secret[1].flags == NGHTTP2_NV_FLAG_NO_INDEX);
    CHECK(plain.flags == NGHTTP2_NV_FLAG_NONE);
    CHECK(api__client_nv(":path", "/kyufu.v1.Ledger/Echo").flags == NGHTTP2_NV_FLAG_NONE);
    nghttp2_hd_deflater *d;
    CHECK(nghttp2_hd_deflate_new(&d, 4096) == 0);
    uint8_t buf[256];
    size_t entries = nghttp2_hd_deflate_get_num_table_entries(d);
    for (size_t i = 0; i < 2; i++) {
        for (int round = 0; round < 2; round++) {
            ssize_t n = nghttp2_hd_deflate_hd(d, buf, sizeof buf, &secret[i], 1);
            CHECK(n > 2 && (buf[0] & 0xf0) == 0x10); /* literal, never indexed */
        }
    }
    CHECK(nghttp2_hd_deflate_get_num_table_entries(d) == entries);
    ssize_t first = nghttp2_hd_deflate_hd(d, buf, sizeof buf, &plain, 1);
    ssize_t second = nghttp2_hd_deflate_hd(d, buf, sizeof buf, &plain, 1);
    CHECK(first > 1 && second == 1 && (buf[0] & 0x80) != 0); /* the contrast */
    nghttp2_hd_deflate_del(d);
}

int main(void)
{
    CHECK(kyufu_grpc_health_new(&health) == 0);
    test_round_trip();
    test_metadata_check();
    test_trailers();
    test_timeout_parse();
    test_deadline();
    test_receive_deadline();
    test_flow_control();
    test_async_and_cancel();
    test_oversized();
    test_framing_errors();
    test_prefix_alone();
    test_header_errors();
    test_not_http2();
    test_health();
    test_config_limits();
    test_limits_at_edges();
    test_secret_never_indexed();
    kyufu_grpc_health_free(health);
    printf("ok\n");
    return 0;
}
