/* One Raft connection through TLS: contract in peer_link.h, design in
 * docs/peer-tls.md.
 *
 * Happy path, outbound: getaddrinfo → TCP connect (NODELAY) → TLS handshake
 * (client) → the server certificate names the id raft asked for → raft's
 * preamble written through TLS → socketpair, raft gets one end (its connect
 * callback) → OPEN: pump both ways.
 * Inbound: accept (NODELAY) → TLS handshake (server, client certificate
 * required) → the certificate names a node id → raft's preamble read from
 * the decrypted stream, its id equal to the certificate's → socketpair,
 * raft gets one end (its accept callback) → OPEN.
 *
 * Failure modes: an error, EOF or the handshake deadline before OPEN closes
 * the link (refusals reported through the transport, rate-limited); an
 * outbound request's callback fires with RAFT_NOCONNECTION (RAFT_CANCELED
 * when the transport closes) once the link's handles are closed.  After
 * OPEN, EOF or an error on the TCP or TLS side closes the link and raft
 * sees EOF on its end (as after a TCP reset) and reconnects; raft closing
 * its end makes the link send close_notify and shut TCP down after the
 * bytes already queued (bounded by KYUFU_PEER_DRAIN_TIMEOUT_MS).
 *
 * Back-pressure: each direction stops reading when the stream it writes to
 * queues more than KYUFU_PEER_WRITE_QUEUE_BYTES_MAX and resumes when that
 * falls below half. */
#include "peer_link.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc.h"
#include "member_address.h"
#include "tls.h"

enum link_state {
    L_RESOLVING,  /* outbound: getaddrinfo */
    L_CONNECTING, /* outbound: TCP connect */
    L_HANDSHAKE,  /* TLS handshake */
    L_PREAMBLE,   /* inbound: reading raft's preamble */
    L_OPEN,       /* raft has its end: pumping */
    L_DRAINING,   /* raft closed its end: close_notify and shutdown queued */
    L_CLOSING,    /* handles closing; freed when the last one is */
};

/* Checked transitions: outbound RESOLVING → CONNECTING → HANDSHAKE → OPEN,
 * inbound HANDSHAKE → PREAMBLE → OPEN; OPEN → DRAINING; any → CLOSING. */
static const bool transitions[L_CLOSING + 1][L_CLOSING + 1] = {
    [L_RESOLVING] = {[L_CONNECTING] = true, [L_CLOSING] = true},
    [L_CONNECTING] = {[L_HANDSHAKE] = true, [L_CLOSING] = true},
    [L_HANDSHAKE] = {[L_PREAMBLE] = true, [L_OPEN] = true, [L_CLOSING] = true},
    [L_PREAMBLE] = {[L_OPEN] = true, [L_CLOSING] = true},
    [L_OPEN] = {[L_DRAINING] = true, [L_CLOSING] = true},
    [L_DRAINING] = {[L_CLOSING] = true},
};

/* raft_uv_tcp's handshake (src/uv_tcp_connect.c): protocol, server id and
 * the address's padded length as little-endian uint64, then the address,
 * NUL-terminated and zero-padded to a multiple of 8. */
#define PREAMBLE_BYTES 24u
#define RAFT_TCP_PROTOCOL 1u

struct peer_link
{
    struct glue_transport *gt;
    struct peer_link *prev;
    struct peer_link *next;
    enum link_state state;
    bool inbound;
    bool pending;                /* inbound, counted in gt->n_pending_in */
    raft_id id;                  /* outbound: expected; inbound: the cert's */
    struct raft_uv_connect *req; /* outbound, until its callback */
    int status;                  /* for req's callback */
    uv_getaddrinfo_t gai;
    bool resolving;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    uv_tcp_t tcp;
    uv_pipe_t pipe;              /* our end of the socketpair */
    uv_timer_t timer;            /* handshake deadline, then drain deadline */
    bool tcp_init;
    bool pipe_init;
    unsigned n_handles;          /* initialized and not yet closed */
    bool tcp_reading;
    bool pipe_reading;
    bool tls_init;
    struct api__tls tls;
    uint8_t preamble[PREAMBLE_BYTES];
    size_t preamble_n;
    char *address; /* inbound: the preamble's address */
    size_t address_len;
    size_t address_n;
    char remote[80];
};

struct wbuf
{
    uv_write_t req;
    struct peer_link *l;
    char data[];
};

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void pipe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void read_pipe(struct peer_link *l, bool on);

/* ------------------------------------------------------------ lifetime */

static void set_state(struct peer_link *l, enum link_state next)
{
    assert(transitions[l->state][next]);
    /* Only the accepting side reads a preamble; only it counts pending. */
    assert(next != L_PREAMBLE || l->inbound);
    assert(!l->pending || l->inbound);
    /* Raft holds its end exactly from OPEN on. */
    assert(next != L_OPEN || (l->req == NULL && l->pipe_init && l->tls_init));
    l->state = next;
}

static void maybe_free(struct peer_link *l)
{
    struct glue_transport *gt = l->gt;
    if (l->n_handles > 0 || l->resolving) {
        return;
    }
    assert(l->state == L_CLOSING);
    assert(!l->pending);
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        assert(gt->links == l);
        gt->links = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    assert(gt->n_links > 0);
    gt->n_links--;
    if (l->tls_init) {
        api__tls_close(&l->tls);
    }
    struct raft_uv_connect *req = l->req;
    int status = l->status;
    free(l->address);
    free(l);
    if (req != NULL) {
        assert(status != 0);
        req->cb(req, NULL, status);
    }
    glue__transport_link_freed(gt);
}

static void handle_close_cb(uv_handle_t *h)
{
    struct peer_link *l = h->data;
    assert(l->n_handles > 0);
    l->n_handles--;
    maybe_free(l);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        uv_close(h, handle_close_cb);
    }
}

/* status: for an outbound request still waiting for its callback. */
static void link_close(struct peer_link *l, int status)
{
    if (l->state == L_CLOSING) {
        return;
    }
    if (l->pending) {
        assert(l->gt->n_pending_in > 0);
        l->gt->n_pending_in--;
        l->pending = false;
    }
    set_state(l, L_CLOSING);
    l->status = status != 0 ? status : RAFT_NOCONNECTION;
    if (l->resolving) {
        (void)uv_cancel((uv_req_t *)&l->gai); /* its callback still runs */
    }
    close_handle((uv_handle_t *)&l->timer);
    if (l->tcp_init) {
        close_handle((uv_handle_t *)&l->tcp);
    }
    if (l->pipe_init) {
        close_handle((uv_handle_t *)&l->pipe);
    }
}

static int tls_start(struct peer_link *l, SSL_CTX *ctx, bool server)
{
    if (api__tls_init(&l->tls, ctx, server, NULL) != 0) {
        return -1;
    }
    l->tls_init = true;
    return 0;
}

static void refuse_as(struct peer_link *l, raft_id claimed, const char *reason,
                      bool revoked)
{
    char subject[256] = "";
    if (l->tls_init) {
        /* Also the subject of a certificate that failed verification. */
        api__tls_peer_subject(&l->tls, subject, sizeof subject);
    }
    struct glue_peer_refusal r = {
        .remote = l->remote,
        .subject = subject,
        .reason = reason,
        .claimed_id = claimed,
        .inbound = l->inbound,
        .revoked = revoked,
    };
    l->gt->n_refused++;
    glue__transport_refused(l->gt, &r);
    link_close(l, RAFT_NOCONNECTION);
}

static void refuse(struct peer_link *l, raft_id claimed, const char *reason)
{
    refuse_as(l, claimed, reason, false);
}

/* Whether the CRL of ctx revokes l's peer certificate: if so, reported and
 * closed (true).  open: a link past its handshake (else one finishing it). */
static bool close_if_revoked(struct peer_link *l, SSL_CTX *ctx, bool open)
{
    char serial[80], why[160];
    if (l->state == L_CLOSING || !l->tls_init ||
        api__tls_peer_revoked(&l->tls, ctx, serial, sizeof serial) != 1) {
        return false;
    }
    snprintf(why, sizeof why, "certificate serial %s revoked by the CRL in force%s", serial,
             open ? ": open link closed" : "");
    refuse_as(l, l->id, why, open);
    return true;
}

void glue__link_close_revoked(struct glue_transport *gt, SSL_CTX *ctx)
{
    /* link_close frees nothing synchronously: the walk is safe. */
    for (struct peer_link *l = gt->links; l != NULL; l = l->next) {
        if (l->state == L_PREAMBLE || l->state == L_OPEN || l->state == L_DRAINING) {
            close_if_revoked(l, ctx, true);
        }
    }
}

static struct peer_link *link_new(struct glue_transport *gt, bool inbound)
{
    struct peer_link *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return NULL;
    }
    l->gt = gt;
    l->inbound = inbound;
    l->state = inbound ? L_HANDSHAKE : L_RESOLVING;
    l->status = RAFT_NOCONNECTION;
    l->gai.data = l;
    l->connect.data = l;
    l->shutdown.data = l;
    l->tcp.data = l;
    l->pipe.data = l;
    l->timer.data = l;
    int rv = uv_timer_init(gt->loop, &l->timer);
    assert(rv == 0);
    (void)rv;
    l->n_handles = 1;
    l->next = gt->links;
    if (gt->links != NULL) {
        gt->links->prev = l;
    }
    gt->links = l;
    gt->n_links++;
    return l;
}

static void timer_cb(uv_timer_t *t)
{
    struct peer_link *l = t->data;
    if (l->state == L_DRAINING) {
        link_close(l, 0);
    } else if (l->inbound || l->state >= L_HANDSHAKE) {
        refuse(l, l->inbound ? 0 : l->id, "handshake deadline passed");
    } else {
        link_close(l, RAFT_NOCONNECTION); /* resolve or connect too slow */
    }
}

static void start_deadline(struct peer_link *l, uint64_t ms)
{
    int rv = uv_timer_start(&l->timer, timer_cb, ms, 0);
    assert(rv == 0);
    (void)rv;
}

/* ------------------------------------------------------------- writes */

static void set_remote(struct peer_link *l)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(l->remote, sizeof l->remote, "%s:%d", ip, port);
}

static void nodelay(struct peer_link *l)
{
    if (uv_tcp_nodelay(&l->tcp, 1) == 0) {
        l->gt->n_nodelay++;
    } else {
        l->gt->n_nodelay_failed++;
    }
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    struct wbuf *w = req->data;
    struct peer_link *l = w->l;
    free(w);
    if (l->state == L_CLOSING) {
        return;
    }
    if (status < 0) {
        link_close(l, RAFT_NOCONNECTION);
        return;
    }
    if (l->state == L_OPEN &&
        l->tcp.write_queue_size < KYUFU_PEER_WRITE_QUEUE_BYTES_MAX / 2) {
        read_pipe(l, true);
    }
}

static void pipe_write_cb(uv_write_t *req, int status);

/* Ciphertext the SSL produced, to TCP.  0 or a libuv error. */
static int flush_tls(struct peer_link *l)
{
    size_t n;
    while ((n = api__tls_pending(&l->tls)) > 0) {
        struct wbuf *w = malloc(sizeof *w + n);
        if (w == NULL) {
            return UV_ENOMEM;
        }
        w->l = l;
        w->req.data = w;
        size_t got = api__tls_take(&l->tls, (uint8_t *)w->data, n);
        uv_buf_t b = uv_buf_init(w->data, (unsigned)got);
        int rv = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, tcp_write_cb);
        if (rv != 0) {
            free(w);
            return rv;
        }
    }
    return 0;
}

/* Plaintext from the peer, to raft's end. */
static int to_raft(struct peer_link *l, const char *data, size_t len)
{
    struct wbuf *w = malloc(sizeof *w + len);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    w->l = l;
    w->req.data = w;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rv = uv_write(&w->req, (uv_stream_t *)&l->pipe, &b, 1, pipe_write_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct peer_link *l = h->data;
    (void)suggested;
    buf->base = l->gt->read_buf;
    buf->len = sizeof l->gt->read_buf;
}

/* Start or stop reading one side of the bridge; *reading tracks it. */
static void set_reading(uv_stream_t *stream, bool *reading, bool on, uv_read_cb cb)
{
    if (on && !*reading) {
        int rv = uv_read_start(stream, alloc_cb, cb);
        assert(rv == 0);
        (void)rv;
    } else if (!on && *reading) {
        uv_read_stop(stream);
    }
    *reading = on;
}

static void read_tcp(struct peer_link *l, bool on)
{
    set_reading((uv_stream_t *)&l->tcp, &l->tcp_reading, on, tcp_read_cb);
}

static void read_pipe(struct peer_link *l, bool on)
{
    set_reading((uv_stream_t *)&l->pipe, &l->pipe_reading, on, pipe_read_cb);
}

static void pipe_write_cb(uv_write_t *req, int status)
{
    struct wbuf *w = req->data;
    struct peer_link *l = w->l;
    free(w);
    if (l->state == L_CLOSING) {
        return;
    }
    if (status < 0) {
        link_close(l, 0);
        return;
    }
    if (l->state == L_OPEN &&
        l->pipe.write_queue_size < KYUFU_PEER_WRITE_QUEUE_BYTES_MAX / 2) {
        read_tcp(l, true);
    }
}

/* ------------------------------------------------------- raft's stream */

/* The socketpair: raft's end as a uv_pipe_t it owns and frees with
 * raft_free (as raft_uv does with every stream), ours reading at once. */
static int open_raft_stream(struct peer_link *l, uv_stream_t **out)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        return -1;
    }
    uv_pipe_t *rs = raft_malloc(sizeof *rs);
    if (rs == NULL) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    int rv = uv_pipe_init(l->gt->loop, rs, 0);
    assert(rv == 0);
    rv = uv_pipe_init(l->gt->loop, &l->pipe, 0);
    assert(rv == 0);
    l->pipe_init = true;
    l->n_handles++;
    l->pipe.data = l;
    if (uv_pipe_open(rs, fds[0]) != 0) {
        close(fds[0]);
        close(fds[1]);
        uv_close((uv_handle_t *)rs, (uv_close_cb)raft_free);
        return -1;
    }
    if (uv_pipe_open(&l->pipe, fds[1]) != 0) {
        close(fds[1]);
        uv_close((uv_handle_t *)rs, (uv_close_cb)raft_free); /* closes fds[0] */
        return -1;
    }
    read_pipe(l, true);
    *out = (uv_stream_t *)rs;
    return 0;
}

/* Authenticated: give raft its stream. */
static void open_link(struct peer_link *l)
{
    struct glue_transport *gt = l->gt;
    struct raft_uv_connect *req = l->req;
    uv_stream_t *rs;
    assert(l->inbound == (req == NULL));
    if (open_raft_stream(l, &rs) != 0) {
        link_close(l, RAFT_NOCONNECTION);
        return;
    }
    if (l->pending) {
        assert(gt->n_pending_in > 0);
        gt->n_pending_in--;
        l->pending = false;
    }
    l->req = NULL; /* outbound: its callback fires below */
    set_state(l, L_OPEN);
    uv_timer_stop(&l->timer);
    gt->n_opened++;
    if (gt->connected != NULL) {
        gt->connected(gt, l->id);
    }
    if (l->inbound) {
        assert(!gt->closing);
        gt->accept_cb(&gt->t, l->id, l->address, rs);
        free(l->address);
        l->address = NULL;
    } else {
        req->cb(req, rs, 0);
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Outbound, after the handshake: our preamble through TLS. */
static int write_preamble(struct peer_link *l)
{
    assert(!l->inbound && l->gt->id > 0);
    uint8_t buf[PREAMBLE_BYTES + KYUFU_PEER_ADDRESS_BYTES_MAX];
    size_t alen = strlen(l->gt->address) + 1;
    size_t padded = (alen + 7) & ~(size_t)7;
    assert(padded <= KYUFU_PEER_ADDRESS_BYTES_MAX);
    memset(buf, 0, sizeof buf);
    put_le64(buf, RAFT_TCP_PROTOCOL);
    put_le64(buf + 8, l->gt->id);
    put_le64(buf + 16, padded);
    memcpy(buf + PREAMBLE_BYTES, l->gt->address, alen);
    if (api__tls_write(&l->tls, buf, PREAMBLE_BYTES + padded) != 0) {
        return -1;
    }
    return flush_tls(l) == 0 ? 0 : -1;
}

/* Inbound: consume preamble bytes; returns how many.  May open or refuse
 * the link. */
static size_t feed_preamble(struct peer_link *l, const char *p, size_t len)
{
    size_t used = 0;
    char why[160];
    assert(l->state == L_PREAMBLE && l->inbound && l->id > 0);
    assert(l->preamble_n <= PREAMBLE_BYTES && l->address_n <= l->address_len);
    if (l->preamble_n < PREAMBLE_BYTES) {
        size_t n = PREAMBLE_BYTES - l->preamble_n;
        n = n < len ? n : len;
        memcpy(l->preamble + l->preamble_n, p, n);
        l->preamble_n += n;
        used += n;
        if (l->preamble_n < PREAMBLE_BYTES) {
            return used;
        }
        uint64_t protocol = get_le64(l->preamble);
        uint64_t claimed = get_le64(l->preamble + 8);
        uint64_t alen = get_le64(l->preamble + 16);
        if (protocol != RAFT_TCP_PROTOCOL) {
            snprintf(why, sizeof why, "raft handshake protocol %llu, not %u",
                     (unsigned long long)protocol, RAFT_TCP_PROTOCOL);
            refuse(l, claimed, why);
            return used;
        }
        if (claimed != l->id) {
            snprintf(why, sizeof why,
                     "claims node id %llu, certificate names node %llu",
                     (unsigned long long)claimed, (unsigned long long)l->id);
            refuse(l, claimed, why);
            return used;
        }
        if (alen == 0 || alen % 8 != 0 || alen > KYUFU_PEER_ADDRESS_BYTES_MAX) {
            refuse(l, claimed, "raft handshake address length out of bounds");
            return used;
        }
        l->address = malloc((size_t)alen);
        if (l->address == NULL) {
            link_close(l, 0);
            return used;
        }
        l->address_len = (size_t)alen;
    }
    size_t n = l->address_len - l->address_n;
    n = n < len - used ? n : len - used;
    memcpy(l->address + l->address_n, p + used, n);
    l->address_n += n;
    used += n;
    if (l->address_n == l->address_len) {
        if (memchr(l->address, '\0', l->address_len) == NULL) {
            refuse(l, l->id, "raft handshake address not terminated");
            return used;
        }
        open_link(l);
    }
    return used;
}

/* ---------------------------------------------------------------- TLS */

/* The handshake finished: check the peer's node id. 0 to go on. */
static int authenticate(struct peer_link *l)
{
    uint64_t cert_id;
    char why[160];
    assert(l->state == L_HANDSHAKE && l->tls.handshake_done);
    /* The CRL in force: the connecting side's context has none, and a
     * reload during an inbound handshake brings a newer one. */
    if (l->gt->crl_file[0] != '\0' && close_if_revoked(l, l->gt->server_ctx, false)) {
        return -1;
    }
    if (api__tls_peer_node_id(&l->tls, &cert_id) != 0) {
        refuse(l, l->inbound ? 0 : l->id, "certificate names no node id");
        return -1;
    }
    if (l->inbound) {
        l->id = cert_id;
        set_state(l, L_PREAMBLE);
        return 0;
    }
    if (cert_id != l->id) {
        snprintf(why, sizeof why, "certificate names node %llu, expected %llu",
                 (unsigned long long)cert_id, (unsigned long long)l->id);
        refuse(l, l->id, why);
        return -1;
    }
    if (write_preamble(l) != 0) {
        link_close(l, RAFT_NOCONNECTION);
        return -1;
    }
    open_link(l);
    return l->state == L_OPEN ? 0 : -1;
}

/* Drive the TLS session after ciphertext arrived (or to start it). */
static void advance(struct peer_link *l)
{
    if (l->state == L_HANDSHAKE) {
        int r = api__tls_handshake(&l->tls);
        if (flush_tls(l) != 0) {
            link_close(l, RAFT_NOCONNECTION);
            return;
        }
        if (r < 0) {
            refuse(l, l->inbound ? 0 : l->id, l->tls.error);
            return;
        }
        if (r == 0 || authenticate(l) != 0) {
            return;
        }
    }
    while (l->state == L_PREAMBLE || l->state == L_OPEN || l->state == L_DRAINING) {
        char *plain = l->gt->plain_buf;
        int n = api__tls_read(&l->tls, (uint8_t *)plain, sizeof l->gt->plain_buf);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (l->state == L_PREAMBLE) {
                refuse(l, 0, n == KYUFU_API_ECLOSED ? "closed during the raft handshake"
                                                    : l->tls.error);
            } else {
                link_close(l, 0);
            }
            return;
        }
        size_t used = 0;
        if (l->state == L_PREAMBLE) {
            used = feed_preamble(l, plain, (size_t)n);
        }
        if (l->state == L_OPEN && used < (size_t)n &&
            to_raft(l, plain + used, (size_t)n - used) != 0) {
            link_close(l, 0);
            return;
        }
        /* DRAINING: raft closed its end; the rest is dropped. */
    }
    if (l->state == L_CLOSING) {
        return;
    }
    if (flush_tls(l) != 0) { /* e.g. an answer to a KeyUpdate */
        link_close(l, 0);
        return;
    }
    if (l->state == L_OPEN &&
        l->pipe.write_queue_size > KYUFU_PEER_WRITE_QUEUE_BYTES_MAX) {
        read_tcp(l, false);
    }
}

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct peer_link *l = s->data;
    if (nread == 0 || l->state == L_CLOSING) {
        return;
    }
    if (nread < 0) {
        if (l->state < L_OPEN) {
            refuse(l, l->inbound ? 0 : l->id,
                   nread == UV_EOF ? "closed during the handshake"
                                   : uv_strerror((int)nread));
        } else {
            if (l->gt->lost != NULL && l->id != 0) {
                l->gt->lost(l->gt, l->id);
            }
            link_close(l, 0);
        }
        return;
    }
    if (api__tls_feed(&l->tls, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        link_close(l, RAFT_NOCONNECTION);
        return;
    }
    advance(l);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct peer_link *l = req->data;
    (void)status;
    link_close(l, 0);
}

/* Raft closed its end: say close_notify, send what is queued, shut down. */
static void drain(struct peer_link *l)
{
    set_state(l, L_DRAINING);
    read_pipe(l, false);
    api__tls_shutdown(&l->tls);
    if (flush_tls(l) != 0 ||
        uv_shutdown(&l->shutdown, (uv_stream_t *)&l->tcp, shutdown_cb) != 0) {
        link_close(l, 0);
        return;
    }
    start_deadline(l, KYUFU_PEER_DRAIN_TIMEOUT_MS);
}

static void pipe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct peer_link *l = s->data;
    if (nread == 0 || l->state != L_OPEN) {
        return;
    }
    if (nread < 0) {
        drain(l);
        return;
    }
    if (api__tls_write(&l->tls, (const uint8_t *)buf->base, (size_t)nread) != 0 ||
        flush_tls(l) != 0) {
        link_close(l, 0);
        return;
    }
    if (l->tcp.write_queue_size > KYUFU_PEER_WRITE_QUEUE_BYTES_MAX) {
        read_pipe(l, false);
    }
}

/* ------------------------------------------------------------ outbound */

static void connect_cb(uv_connect_t *req, int status)
{
    struct peer_link *l = req->data;
    if (l->state == L_CLOSING) {
        return;
    }
    if (status < 0) {
        if (status == UV_ECONNREFUSED && l->gt->lost != NULL) {
            l->gt->lost(l->gt, l->id);
        }
        link_close(l, RAFT_NOCONNECTION);
        return;
    }
    nodelay(l);
    set_remote(l);
    if (tls_start(l, l->gt->client_ctx, false) != 0) {
        link_close(l, RAFT_NOCONNECTION);
        return;
    }
    set_state(l, L_HANDSHAKE);
    read_tcp(l, true);
    advance(l); /* the ClientHello */
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct peer_link *l = req->data;
    l->resolving = false;
    if (l->state == L_CLOSING || status < 0) {
        uv_freeaddrinfo(res);
        if (l->state == L_CLOSING) {
            maybe_free(l);
        } else {
            link_close(l, RAFT_NOCONNECTION);
        }
        return;
    }
    int rv = uv_tcp_init(l->gt->loop, &l->tcp);
    assert(rv == 0);
    l->tcp_init = true;
    l->n_handles++;
    l->tcp.data = l;
    set_state(l, L_CONNECTING);
    rv = uv_tcp_connect(&l->connect, &l->tcp, res->ai_addr, connect_cb);
    uv_freeaddrinfo(res);
    if (rv != 0) {
        link_close(l, RAFT_NOCONNECTION);
    }
}

int glue__link_connect(struct glue_transport *gt,
                       struct raft_uv_connect *req,
                       raft_id id,
                       const char *address)
{
    char host[KYUFU_PEER_ADDRESS_BYTES_MAX];
    char port[8];
    /* Only the Raft part of a recorded "RAFT API" address is dialled
     * (member_address.h). */
    size_t rlen = glue__address_raft_len(address);
    const char *colon = memrchr(address, ':', rlen);
    size_t hlen = colon != NULL ? (size_t)(colon - address) : 0;
    size_t plen = colon != NULL ? rlen - hlen - 1 : 0;
    struct addrinfo hints;
    if (colon == NULL || hlen == 0 || hlen >= sizeof host || plen == 0 ||
        plen >= sizeof port) {
        snprintf(gt->t.errmsg, sizeof gt->t.errmsg, "bad peer address %.200s",
                 address);
        return RAFT_NOCONNECTION;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    struct peer_link *l = link_new(gt, false);
    if (l == NULL) {
        return RAFT_NOMEM;
    }
    l->id = id;
    l->req = req;
    snprintf(l->remote, sizeof l->remote, "%.*s", (int)(rlen < 79 ? rlen : 79),
             address);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET; /* as raft_uv_tcp */
    hints.ai_socktype = SOCK_STREAM;
    int rv = uv_getaddrinfo(gt->loop, &l->gai, gai_cb, host, port, &hints);
    if (rv != 0) {
        l->req = NULL; /* no callback: the error is returned */
        link_close(l, 0);
        snprintf(gt->t.errmsg, sizeof gt->t.errmsg, "getaddrinfo: %s",
                 uv_strerror(rv));
        return RAFT_NOCONNECTION;
    }
    l->resolving = true;
    start_deadline(l, KYUFU_PEER_HANDSHAKE_TIMEOUT_MS);
    return 0;
}

/* ------------------------------------------------------------- inbound */

static void free_tcp(uv_handle_t *h)
{
    free(h);
}

void glue__link_accept(struct glue_transport *gt)
{
    struct peer_link *l = link_new(gt, true);
    if (l == NULL) {
        /* Out of memory: accept and close at once, or libuv would stop
         * polling the listener until this connection is taken. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (t != NULL && uv_tcp_init(gt->loop, t) == 0) {
            (void)uv_accept((uv_stream_t *)&gt->listener, (uv_stream_t *)t);
            uv_close((uv_handle_t *)t, free_tcp);
        } else {
            free(t);
        }
        return;
    }
    int rv = uv_tcp_init(gt->loop, &l->tcp);
    assert(rv == 0);
    l->tcp_init = true;
    l->n_handles++;
    l->tcp.data = l;
    if (uv_accept((uv_stream_t *)&gt->listener, (uv_stream_t *)&l->tcp) != 0) {
        link_close(l, 0);
        return;
    }
    set_remote(l);
    if (gt->allowed != NULL) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) != 0 ||
            !gt->allowed(gt->allowed_arg, (const struct sockaddr *)&ss)) {
            refuse(l, 0, "address not in the allow-list");
            return;
        }
    }
    if (gt->n_pending_in >= KYUFU_PEER_HANDSHAKES_PENDING_MAX) {
        /* Evict the oldest pending handshake, not the newest: silent
         * connections that keep every slot cannot lock a real peer out,
         * since its handshake completes in milliseconds while a flood
         * would have to open KYUFU_PEER_HANDSHAKES_PENDING_MAX new ones in
         * that time (links are prepended: the last pending is the oldest). */
        struct peer_link *oldest = NULL;
        for (struct peer_link *p = gt->links; p != NULL; p = p->next) {
            if (p->pending && p != l) {
                oldest = p;
            }
        }
        assert(oldest != NULL);
        refuse(oldest, 0, "too many pending handshakes (oldest evicted)");
    }
    l->pending = true;
    gt->n_pending_in++;
    nodelay(l);
    if (tls_start(l, gt->server_ctx, true) != 0) {
        link_close(l, 0);
        return;
    }
    start_deadline(l, KYUFU_PEER_HANDSHAKE_TIMEOUT_MS);
    read_tcp(l, true);
}

void glue__link_close_all(struct glue_transport *gt)
{
    for (struct peer_link *l = gt->links; l != NULL; l = l->next) {
        link_close(l, RAFT_CANCELED);
    }
}
