/* raft_uv transport over mutual TLS: contract in transport.h, design in
 * docs/peer-tls.md; each connection is a peer_link (peer_link.c).
 *
 * Happy path: init reads the certificate, key and CA into a server and a
 * client context (api/tls.c's policy, ALPN kyufu-raft/1) → raft_uv calls
 * init (our id and address), listen (bind, accept into peer links) and
 * connect (one outbound peer link per request) → close stops the listener
 * and closes every link; raft_uv's close callback fires once the last
 * handle is closed.
 *
 * Failure modes: a bad file at init (RAFT_INVALID, nothing allocated);
 * a listen address that does not resolve or bind (RAFT_IOERR); refused
 * connections reported through gt->refused at most
 * KYUFU_PEER_REFUSED_LOG_PER_WINDOW per window, the rest counted. */
#include "transport.h"

#include <assert.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "peer_link.h"
#include "tls.h"

static struct glue_transport *of(struct raft_uv_transport *t)
{
    return t->impl;
}

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct glue_transport *gt = of(t);
    uint64_t cert_id = 0;
    assert(id > 0);
    assert(address != NULL);
    /* Peers would refuse us: say so at start, not in their logs. */
    if (api__tls_cert_node_id(SSL_CTX_get0_certificate(gt->server_ctx), &cert_id) != 0 ||
        cert_id != id) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "the TLS certificate does not name this node: it needs the SAN URI "
                 KYUFU_TLS_NODE_URI_PREFIX "%llu (it names %llu; 0: none)",
                 (unsigned long long)id, (unsigned long long)cert_id);
        return RAFT_INVALID;
    }
    /* The preamble carries it, padded, within KYUFU_PEER_ADDRESS_BYTES_MAX. */
    if (strlen(address) + 8 > sizeof gt->address) {
        snprintf(t->errmsg, sizeof t->errmsg, "address too long: %.100s", address);
        return RAFT_INVALID;
    }
    gt->id = id;
    snprintf(gt->address, sizeof gt->address, "%s", address);
    return 0;
}

static void maybe_closed(struct glue_transport *gt)
{
    if (!gt->closing || gt->listener_open || gt->n_links > 0 || gt->close_cb == NULL) {
        return;
    }
    raft_uv_transport_close_cb cb = gt->close_cb;
    gt->close_cb = NULL;
    cb(&gt->t);
}

static void listener_close_cb(uv_handle_t *h)
{
    struct glue_transport *gt = h->data;
    gt->listener_open = false;
    maybe_closed(gt);
}

static void listen_cb(uv_stream_t *s, int status)
{
    struct glue_transport *gt = s->data;
    if (status < 0 || gt->closing) {
        return;
    }
    glue__link_accept(gt);
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct glue_transport *gt = of(t);
    char host[KYUFU_PEER_ADDRESS_BYTES_MAX];
    const char *colon = strrchr(gt->address, ':');
    struct addrinfo hints, *res = NULL;
    int rv;

    assert(!gt->listener_open);
    if (colon == NULL || colon == gt->address) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %.200s", gt->address);
        return RAFT_INVALID;
    }
    memcpy(host, gt->address, (size_t)(colon - gt->address));
    host[colon - gt->address] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET; /* as raft_uv_tcp */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rv = getaddrinfo(host, colon + 1, &hints, &res);
    if (rv != 0 || res == NULL) {
        snprintf(t->errmsg, sizeof t->errmsg, "resolve %.200s: %s", gt->address,
                 gai_strerror(rv));
        return RAFT_IOERR;
    }
    gt->accept_cb = cb;
    rv = uv_tcp_init(gt->loop, &gt->listener);
    assert(rv == 0);
    gt->listener.data = gt;
    gt->listener_open = true;
    rv = uv_tcp_bind(&gt->listener, res->ai_addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&gt->listener, KYUFU_PEER_LISTEN_BACKLOG, listen_cb);
    }
    freeaddrinfo(res);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %.200s: %s", gt->address,
                 uv_strerror(rv));
        uv_close((uv_handle_t *)&gt->listener, listener_close_cb);
        return RAFT_IOERR;
    }
    return 0;
}

static int tr_connect(struct raft_uv_transport *t,
                      struct raft_uv_connect *req,
                      raft_id id,
                      const char *address,
                      raft_uv_connect_cb cb)
{
    struct glue_transport *gt = of(t);
    assert(!gt->closing);
    if (gt->dial_ok != NULL && !gt->dial_ok(gt, id)) {
        return RAFT_NOCONNECTION; /* req untouched: raft_uv retries */
    }
    req->cb = cb;
    return glue__link_connect(gt, req, id, address);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct glue_transport *gt = of(t);
    assert(!gt->closing);
    gt->closing = true;
    gt->close_cb = cb;
    if (gt->listener_open && !uv_is_closing((uv_handle_t *)&gt->listener)) {
        uv_close((uv_handle_t *)&gt->listener, listener_close_cb);
    }
    glue__link_close_all(gt);
    maybe_closed(gt);
}

void glue__transport_link_freed(struct glue_transport *gt)
{
    maybe_closed(gt);
}

void glue__transport_refused(struct glue_transport *gt, struct glue_peer_refusal *r)
{
    uint64_t now = uv_now(gt->loop);
    if (now - gt->refused_window_start_ms >= KYUFU_PEER_REFUSED_LOG_WINDOW_MS) {
        gt->refused_window_start_ms = now;
        gt->refused_in_window = 0;
    }
    if (gt->refused_in_window >= KYUFU_PEER_REFUSED_LOG_PER_WINDOW) {
        gt->refused_suppressed++;
        return;
    }
    gt->refused_in_window++;
    r->suppressed = gt->refused_suppressed;
    gt->refused_suppressed = 0;
    if (gt->refused != NULL) {
        gt->refused(gt, r);
    }
}

/* The Raft port's server context from gt's files, with the CRL's checks
 * when there is one (an expired CRL is still enforced: api/tls.h). */
static int server_ctx_new(struct glue_transport *gt, SSL_CTX **out, char *errmsg,
                          size_t errmsg_len)
{
    SSL_CTX *ctx;
    bool expired;
    if (api__tls_server_ctx_new(gt->cert_file, gt->key_file, gt->ca_file, true,
                                api__tls_alpn_raft, &ctx, errmsg, errmsg_len) != 0) {
        return -1;
    }
    if (gt->crl_file[0] != '\0' &&
        api__tls_ctx_set_crl(ctx, gt->crl_file, &expired, errmsg, errmsg_len) != 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    *out = ctx;
    return 0;
}

int glue__transport_init(struct glue_transport *gt,
                         uv_loop_t *loop,
                         const char *cert_file,
                         const char *key_file,
                         const char *ca_file,
                         const char *crl_file,
                         char *errmsg,
                         size_t errmsg_len)
{
    int rv;
    memset(gt, 0, sizeof *gt);
    gt->loop = loop;
    gt->t.version = 1; /* 0.22.1 refuses an unset version */
    gt->t.impl = gt;
    gt->t.init = tr_init;
    gt->t.listen = tr_listen;
    gt->t.connect = tr_connect;
    gt->t.close = tr_close;
    if (cert_file == NULL || key_file == NULL || ca_file == NULL) {
        snprintf(errmsg, errmsg_len,
                 "raft peers need a node certificate, its key and the cluster CA");
        rv = RAFT_INVALID;
        goto err;
    }
    if (crl_file == NULL) {
        crl_file = "";
    }
    size_t lc = strlen(cert_file) + 1, lk = strlen(key_file) + 1, la = strlen(ca_file) + 1;
    size_t lr = strlen(crl_file) + 1;
    gt->cert_file = malloc(lc + lk + la + lr);
    if (gt->cert_file == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        rv = RAFT_NOMEM;
        goto err;
    }
    gt->key_file = (char *)memcpy(gt->cert_file, cert_file, lc) + lc;
    gt->ca_file = (char *)memcpy(gt->key_file, key_file, lk) + lk;
    gt->crl_file = (char *)memcpy(gt->ca_file, ca_file, la) + la;
    memcpy(gt->crl_file, crl_file, lr);
    if (server_ctx_new(gt, &gt->server_ctx, errmsg, errmsg_len) != 0) {
        rv = RAFT_INVALID;
        goto err_after_files;
    }
    if (api__tls_client_ctx_new(ca_file, cert_file, key_file, api__tls_alpn_raft,
                                &gt->client_ctx, errmsg, errmsg_len) != 0) {
        rv = RAFT_INVALID;
        goto err_after_server;
    }
    return 0;

err_after_server:
    SSL_CTX_free(gt->server_ctx);
    gt->server_ctx = NULL;
err_after_files:
    free(gt->cert_file);
    gt->cert_file = NULL;
err:
    assert(rv != 0);
    return rv;
}

int glue__transport_reload_tls(struct glue_transport *gt,
                               char *errmsg,
                               size_t errmsg_len)
{
    SSL_CTX *server = NULL, *client = NULL;
    uint64_t cert_id = 0;
    if (server_ctx_new(gt, &server, errmsg, errmsg_len) != 0) {
        return RAFT_INVALID;
    }
    if (api__tls_client_ctx_new(gt->ca_file, gt->cert_file, gt->key_file,
                                api__tls_alpn_raft, &client, errmsg, errmsg_len) != 0) {
        SSL_CTX_free(server);
        return RAFT_INVALID;
    }
    /* Peers would refuse a certificate that names another node.  Both
     * contexts read the files: check both (a file replaced between the two
     * reads must not slip through). */
    uint64_t client_id = 0;
    if (gt->id != 0 &&
        (api__tls_cert_node_id(SSL_CTX_get0_certificate(server), &cert_id) != 0 ||
         cert_id != gt->id ||
         api__tls_cert_node_id(SSL_CTX_get0_certificate(client), &client_id) != 0 ||
         client_id != gt->id)) {
        snprintf(errmsg, errmsg_len,
                 "the new certificate does not name this node (it names %llu; 0: none)",
                 (unsigned long long)cert_id);
        SSL_CTX_free(server);
        SSL_CTX_free(client);
        return RAFT_INVALID;
    }
    /* Links hold their own reference to the contexts they were made with. */
    SSL_CTX_free(gt->server_ctx);
    SSL_CTX_free(gt->client_ctx);
    gt->server_ctx = server;
    gt->client_ctx = client;
    if (gt->crl_file[0] != '\0') {
        glue__link_close_revoked(gt, gt->server_ctx);
    }
    return 0;
}

void glue__transport_close(struct glue_transport *gt)
{
    assert(gt->n_links == 0);
    assert(!gt->listener_open);
    SSL_CTX_free(gt->server_ctx);
    SSL_CTX_free(gt->client_ctx);
    gt->server_ctx = NULL;
    gt->client_ctx = NULL;
    free(gt->cert_file);
    gt->cert_file = NULL;
}
