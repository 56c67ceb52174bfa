#include "h2_client.h"

#include <string.h>

struct body
{
    const uint8_t *p;
    size_t len;
    size_t off;
    bool end;
};

static struct t_stream *find(struct t_client *c, int32_t id)
{
    for (size_t i = 0; i < c->n_streams; i++) {
        if (c->streams[i].id == id) {
            return &c->streams[i];
        }
    }
    return NULL;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    (void)session;
    (void)flags;
    struct t_client *c = user_data;
    struct t_stream *s = find(c, frame->hd.stream_id);
    if (s == NULL) {
        return 0;
    }
    char v[1100];
    snprintf(v, sizeof v, "%.*s", (int)valuelen, value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        s->http_status = atoi(v);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        s->grpc_status = atoi(v);
        s->status_in_headers = s->headers_frames == 0;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        snprintf(s->grpc_message, sizeof s->grpc_message, "%s", v);
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        snprintf(s->content_type, sizeof s->content_type, "%.63s", v);
    } else if (!(namelen >= 5 && memcmp(name, "grpc-", 5) == 0) &&
               s->n_md < (int)(sizeof s->md / sizeof s->md[0])) {
        snprintf(s->md[s->n_md].name, sizeof s->md[s->n_md].name, "%.*s", (int)namelen,
                 (const char *)name);
        snprintf(s->md[s->n_md].value, sizeof s->md[s->n_md].value, "%.255s", v);
        s->md[s->n_md].frame = s->headers_frames;
        s->n_md++;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    struct t_client *c = user_data;
    struct t_stream *s = find(c, frame->hd.stream_id);
    if (s != NULL && frame->hd.type == NGHTTP2_HEADERS) {
        s->headers_frames++;
    }
    return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *user_data)
{
    (void)session;
    (void)flags;
    struct t_stream *s = find(user_data, id);
    if (s != NULL && s->data_len + len <= sizeof s->data) {
        memcpy(s->data + s->data_len, data, len);
        s->data_len += len;
    }
    return 0;
}

static int on_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user_data)
{
    struct t_stream *s = find(user_data, id);
    struct body *b = nghttp2_session_get_stream_user_data(session, id);
    free(b);
    if (s != NULL) {
        s->closed = true;
        s->close_error = error_code;
    }
    return 0;
}

void t_client_init(struct t_client *c, struct kyufu_grpc_server_conn *server)
{
    memset(c, 0, sizeof *c);
    c->server = server;
    nghttp2_session_callbacks *cbs;
    CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    CHECK(nghttp2_session_client_new(&c->session, cbs, c) == 0);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    CHECK(nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1) == 0);
}

void t_client_free(struct t_client *c)
{
    for (size_t i = 0; i < c->n_streams; i++) {
        free(nghttp2_session_get_stream_user_data(c->session, c->streams[i].id));
    }
    nghttp2_session_del(c->session);
}

void t_pump(struct t_client *c)
{
    for (int round = 0; round < 1000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->session, &p)) > 0) {
            moved = true;
            int rv = kyufu_grpc_server_conn_recv(c->server, p, (size_t)n);
            if (rv != 0) {
                c->server_recv_rv = rv;
            }
        }
        size_t m;
        while ((m = kyufu_grpc_server_conn_pending_output(c->server, &p)) > 0) {
            moved = true;
            CHECK(nghttp2_session_mem_recv(c->session, p, m) == (ssize_t)m);
        }
        if (!moved) {
            return;
        }
    }
    CHECK(!"pump did not settle");
}

static ssize_t body_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)id;
    (void)user_data;
    struct body *b = source->ptr;
    size_t n = b->len - b->off;
    if (n > length) {
        n = length;
    }
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->len) {
        if (b->end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

size_t t_frame(uint8_t *buf, uint8_t flag, const void *msg, uint32_t len)
{
    buf[0] = flag;
    buf[1] = (uint8_t)(len >> 24);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 8);
    buf[4] = (uint8_t)len;
    if (len > 0 && msg != NULL) {
        memcpy(buf + 5, msg, len);
    }
    return (size_t)len + 5;
}

#define MKNV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

struct t_stream *t_request(struct t_client *c, const char *path, const uint8_t *body,
                           size_t body_len, bool end, const char *const *extra)
{
    const char *method = "POST", *ctype = "application/grpc", *te = "trailers";
    nghttp2_nv nva[48];
    size_t n = 0;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2) {
        if (strcmp(extra[i], "!method") == 0) {
            method = extra[i + 1];
        } else if (strcmp(extra[i], "!content-type") == 0) {
            ctype = extra[i + 1];
        } else if (strcmp(extra[i], "!te") == 0) {
            te = extra[i + 1];
        }
    }
    nva[n++] = (nghttp2_nv)MKNV(":method", method);
    nva[n++] = (nghttp2_nv)MKNV(":scheme", "https");
    nva[n++] = (nghttp2_nv)MKNV(":path", path);
    nva[n++] = (nghttp2_nv)MKNV(":authority", "kyufu.test");
    if (ctype[0] != '\0') {
        nva[n++] = (nghttp2_nv)MKNV("content-type", ctype);
    }
    if (te[0] != '\0') {
        nva[n++] = (nghttp2_nv)MKNV("te", te);
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2) {
        CHECK(n < sizeof nva / sizeof nva[0]);
        if (extra[i][0] != '!') {
            nva[n++] = (nghttp2_nv)MKNV(extra[i], extra[i + 1]);
        }
    }
    CHECK(c->n_streams < T_STREAMS_MAX);
    struct t_stream *s = &c->streams[c->n_streams++];
    memset(s, 0, sizeof *s);
    s->grpc_status = -1;
    struct body *b = calloc(1, sizeof *b);
    CHECK(b != NULL);
    b->p = body;
    b->len = body_len;
    b->end = end;
    nghttp2_data_provider prd = {.source.ptr = b, .read_callback = body_read};
    s->id = nghttp2_submit_request(c->session, NULL, nva, n,
                                   body == NULL && end ? NULL : &prd, b);
    CHECK(s->id > 0);
    return s;
}

void t_send_more(struct t_client *c, struct t_stream *s, const uint8_t *body, size_t len, bool end)
{
    struct body *b = nghttp2_session_get_stream_user_data(c->session, s->id);
    CHECK(b != NULL);
    b->p = body;
    b->len = len;
    b->off = 0;
    b->end = end;
    CHECK(nghttp2_session_resume_data(c->session, s->id) == 0);
}
