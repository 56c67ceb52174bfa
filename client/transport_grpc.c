/* libkyufu: the real transport, one api/ gRPC client connection per
 * endpoint (kyufu_grpc_client: TLS, HTTP/2, lazy connect, reconnect on the
 * next call after a failure).
 *
 * Mapping to the client__transport contract: a gRPC status from the server
 * is err == 0; a call that failed on our side (req->answered false) with
 * UNAVAILABLE (refused, TLS failure, broken connection, stream refused) is
 * err == EUNAVAILABLE, with DEADLINE_EXCEEDED (the attempt's timer) err ==
 * EDEADLINE, so the retry logic can tell a node that is down from a node
 * that answered "no leader".  CANCELLED while we are closing is ECANCELED;
 * any other local status is passed on as a status.
 *
 * The kyufu-leader hint: the trailer of that name (every node answer
 * carries it when the node knows a leader, OK or error) is copied into
 * tc->leader; client.c matches it against the configured endpoints.  A
 * value too long for the buffer is dropped, never cut (a cut address could
 * name another endpoint).
 *
 * The session token (client.c) is sent as the `authorization: Bearer
 * <token>` metadata of each call when the client has one. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "transport.h"

struct tgrpc
{
    struct client__transport base;
    struct kyufu_grpc_client *conns[KYUFU_CLIENT_ENDPOINTS_MAX];
    unsigned n;
    unsigned closing_conns;
    bool closing;
    client__transport_close_cb close_cb;
    void *close_arg;
};

struct tgrpc_req
{
    struct kyufu_grpc_client_req req;
    struct client__tcall *tc;
    struct tgrpc *t;
    bool cancelled; /* by t_cancel: a CANCELLED completion is ours */
};

static void on_done(struct kyufu_grpc_client_req *greq, int status,
                    const char *message, const uint8_t *response,
                    size_t response_len)
{
    struct tgrpc_req *r = greq->data;
    struct client__tcall *tc = r->tc;
    struct tgrpc *t = r->t;
    /* Borrowed from the api call (valid during this callback), not from r. */
    const char *leader = kyufu_grpc_metadata_find(greq->trailers, greq->n_trailers,
                                                  KYUFU_LEADER_METADATA);
    bool answered = greq->answered; /* greq is inside r */
    bool cancelled = r->cancelled;
    free(r);
    tc->impl_ = NULL;
    if ((t->closing || cancelled) && status == KYUFU_GRPC_CANCELLED) {
        tc->cb_(tc, KYUFU_CLIENT_ECANCELED);
        return;
    }
    if (!answered && (status == KYUFU_GRPC_UNAVAILABLE ||
                      status == KYUFU_GRPC_DEADLINE_EXCEEDED)) {
        snprintf(tc->message, sizeof tc->message, "%s",
                 message != NULL ? message : "");
        tc->leader[0] = '\0';
        tc->cb_(tc, status == KYUFU_GRPC_UNAVAILABLE ? KYUFU_CLIENT_EUNAVAILABLE
                                                    : KYUFU_CLIENT_EDEADLINE);
        return;
    }
    tc->grpc_status = status;
    snprintf(tc->message, sizeof tc->message, "%s", message != NULL ? message : "");
    tc->leader[0] = '\0';
    if (leader != NULL && strlen(leader) < sizeof tc->leader) {
        memcpy(tc->leader, leader, strlen(leader) + 1);
    }
    tc->body = NULL;
    tc->body_len = 0;
    if (status == KYUFU_GRPC_OK && response_len > 0) {
        tc->body = malloc(response_len);
        if (tc->body == NULL) {
            tc->grpc_status = KYUFU_GRPC_RESOURCE_EXHAUSTED;
            snprintf(tc->message, sizeof tc->message, "client out of memory");
        } else {
            memcpy(tc->body, response, response_len);
            tc->body_len = response_len;
        }
    }
    tc->cb_(tc, 0);
}

static int t_call(struct client__transport *base, unsigned endpoint,
                  const char *path, const uint8_t *body, size_t body_len,
                  uint32_t timeout_ms, const char *authorization,
                  struct client__tcall *tc, client__tcall_cb cb)
{
    struct tgrpc *t = base->impl;
    assert(endpoint < t->n && !t->closing);
    struct tgrpc_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return KYUFU_CLIENT_ENOMEM;
    }
    r->req.data = r;
    r->tc = tc;
    r->t = t;
    tc->cb_ = cb;
    tc->impl_ = r;
    /* The bearer token rides as `authorization` metadata (gRPC's standard
     * header, so any stock server-side interceptor sees it); api/ copies
     * it into the HEADERS frame and never logs it. */
    struct kyufu_grpc_metadata md = { "authorization", authorization };
    int rv = kyufu_grpc_client_call(t->conns[endpoint], &r->req, path, body,
                                    body_len, timeout_ms,
                                    authorization != NULL ? &md : NULL,
                                    authorization != NULL ? 1 : 0, on_done);
    if (rv != 0) {
        free(r);
        tc->impl_ = NULL;
        return KYUFU_CLIENT_EUNAVAILABLE;
    }
    return 0;
}

static void t_cancel(struct client__transport *base, struct client__tcall *tc)
{
    (void)base;
    struct tgrpc_req *r = tc->impl_;
    assert(r != NULL); /* in flight: on_done clears impl_ */
    r->cancelled = true;
    kyufu_grpc_client_cancel(&r->req); /* RST_STREAM; on_done from the loop */
}

static void on_conn_closed(struct kyufu_grpc_client *conn, void *data)
{
    struct tgrpc *t = data;
    (void)conn;
    assert(t->closing_conns > 0);
    if (--t->closing_conns == 0) {
        t->close_cb(&t->base, t->close_arg);
        free(t);
    }
}

static void t_close(struct client__transport *base,
                    client__transport_close_cb cb, void *arg)
{
    struct tgrpc *t = base->impl;
    assert(!t->closing && t->n > 0);
    t->closing = true;
    t->close_cb = cb;
    t->close_arg = arg;
    t->closing_conns = t->n;
    for (unsigned i = 0; i < t->n; i++) {
        kyufu_grpc_client_close(t->conns[i], on_conn_closed, t);
    }
}

static void free_now_closed(struct kyufu_grpc_client *conn, void *data)
{
    (void)conn;
    (void)data;
}

int client__transport_grpc_create(void *arg,
                                  uv_loop_t *loop,
                                  const struct kyufu_client_config *cfg,
                                  struct client__transport **out,
                                  char *errmsg,
                                  size_t errmsg_len)
{
    (void)arg;
    struct tgrpc *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return KYUFU_CLIENT_ENOMEM;
    }
    int rv = 0;
    for (unsigned i = 0; i < cfg->n_endpoints; i++) {
        char host[KYUFU_CLIENT_ENDPOINT_BYTES_MAX + 1];
        uint16_t port;
        if (client__endpoint_split(cfg->endpoints[i], host, sizeof host, &port) != 0) {
            rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ECONFIG,
                              "endpoint '%s' is not host:port", cfg->endpoints[i]);
            goto err;
        }
        struct kyufu_grpc_client_config gc = {
            .host = host,
            .port = port,
            .ca_file = cfg->ca_file,
            .cert_file = cfg->cert_file,
            .key_file = cfg->key_file,
            .message_bytes_max = KYUFU_CLIENT_MESSAGE_BYTES_MAX,
        };
        char detail[200] = "";
        int grv = kyufu_grpc_client_new(loop, &gc, &t->conns[i], detail, sizeof detail);
        if (grv != 0) {
            rv = client__errf(errmsg, errmsg_len,
                              grv == KYUFU_API_ENOMEM ? KYUFU_CLIENT_ENOMEM
                                                      : KYUFU_CLIENT_ETLS,
                              "%s: %s", cfg->endpoints[i], detail);
            goto err;
        }
        t->n++;
    }
    t->base.impl = t;
    t->base.call = t_call;
    t->base.close = t_close;
    t->base.cancel = t_cancel;
    *out = &t->base;
    return 0;

err:
    /* No call was made: closing is immediate on the loop; the memory of
     * each connection is freed after its close callback. */
    for (unsigned i = 0; i < t->n; i++) {
        kyufu_grpc_client_close(t->conns[i], free_now_closed, NULL);
    }
    free(t);
    assert(rv != 0);
    return rv;
}
