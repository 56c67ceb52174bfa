/* A tiny in-memory HTTP/2 client (nghttp2) for driving the sans-I/O gRPC
 * server connection in tests: no sockets, no clock. */
#ifndef KYUFU_TESTS_API_H2_CLIENT_H
#define KYUFU_TESTS_API_H2_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <nghttp2/nghttp2.h>

#include "grpc.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define T_STREAMS_MAX 8

struct t_stream
{
    int32_t id;
    int http_status;            /* :status, 0 if none */
    int grpc_status;            /* -1 if none */
    bool status_in_headers;     /* grpc-status came in the first HEADERS (Trailers-Only) */
    char grpc_message[1100];
    char content_type[64];
    uint8_t data[1 << 16];
    size_t data_len;
    bool closed;
    uint32_t close_error;
    int headers_frames;
    /* Other fields (not :status, content-type, grpc-*), in arrival order,
     * with the HEADERS frame they came in (0: the first). */
    struct
    {
        char name[64];
        char value[256];
        int frame;
    } md[8];
    int n_md;
};

struct t_client
{
    nghttp2_session *session;
    struct kyufu_grpc_server_conn *server;
    struct t_stream streams[T_STREAMS_MAX];
    size_t n_streams;
    int server_recv_rv;          /* last non-zero server recv rv */
};

void t_client_init(struct t_client *c, struct kyufu_grpc_server_conn *server);
void t_client_free(struct t_client *c);
/* Move bytes both ways until quiet. */
void t_pump(struct t_client *c);
/* Submit a request; body (raw, already length-prefixed by the caller) sent
 * with END_STREAM iff end.  extra: NULL-terminated name,value pairs which
 * replace/extend the defaults; method/content-type/te overridable via
 * "!method" etc. Returns the t_stream. */
struct t_stream *t_request(struct t_client *c,
                           const char *path,
                           const uint8_t *body,
                           size_t body_len,
                           bool end,
                           const char *const *extra);
/* A 5-byte prefixed message in buf (buf must hold len + 5). */
size_t t_frame(uint8_t *buf, uint8_t flag, const void *msg, uint32_t len);
/* More body for an open request stream. */
void t_send_more(struct t_client *c, struct t_stream *s, const uint8_t *body, size_t len, bool end);

#endif
