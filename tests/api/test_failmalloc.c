/* Allocation failure at every point of a server connection's life (docs/measured.md,
 * "Conventions", after nghttp2's tests/failmalloc_test.c): for n = 1, 2, ... the n-th
 * allocation made by the server side fails; the run must not crash, every
 * stream must end (answered or reset) or the connection must end, and once
 * the connection is freed nothing allocated by it is left.  malloc is
 * interposed here, so the test is skipped under ASan (which owns malloc). */
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#include "grpc.h"
#include "h2_client.h"

#if defined(__SANITIZE_ADDRESS__)
int main(void)
{
    printf("skipped: malloc interposition is not possible under ASan\n");
    return 77;
}
#else

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static bool inject;      /* only allocations by the server side count */
static long countdown;   /* the allocation that fails when it reaches 0 */
static long failures;
static long live;        /* server-side allocations not yet freed (by count) */

/* Tag server-side blocks so free can tell them apart: 16-byte header. */
#define TAG 0x6b797566u
struct hdr
{
    uint32_t tag;
    uint32_t pad;
    uint64_t size;
};

static void *tagged(void *p, size_t size)
{
    struct hdr *h = p;
    h->tag = TAG;
    h->size = size;
    live++;
    return h + 1;
}

static bool fail_now(void)
{
    if (!inject) {
        return false;
    }
    if (--countdown == 0) {
        failures++;
        return true;
    }
    return false;
}

void *malloc(size_t size)
{
    if (!inject) {
        return __libc_malloc(size);
    }
    if (fail_now()) {
        return NULL;
    }
    void *p = __libc_malloc(size + sizeof(struct hdr));
    return p != NULL ? tagged(p, size) : NULL;
}

void *calloc(size_t n, size_t size)
{
    if (!inject) {
        return __libc_calloc(n, size);
    }
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    if (fail_now()) {
        return NULL;
    }
    void *p = __libc_calloc(1, n * size + sizeof(struct hdr));
    return p != NULL ? tagged(p, n * size) : NULL;
}

static struct hdr *header_of(void *p)
{
    if (p == NULL || ((uintptr_t)p & 15) != 0) {
        return NULL;
    }
    struct hdr *h = (struct hdr *)p - 1;
    return h->tag == TAG ? h : NULL;
}

void free(void *p)
{
    struct hdr *h = header_of(p);
    if (h != NULL) {
        h->tag = 0;
        live--;
        __libc_free(h);
    } else {
        __libc_free(p);
    }
}

void *realloc(void *p, size_t size)
{
    struct hdr *h = header_of(p);
    if (p == NULL) {
        return malloc(size);
    }
    if (h == NULL && !inject) {
        return __libc_realloc(p, size);
    }
    if (inject && fail_now()) {
        return NULL;
    }
    size_t old = h != NULL ? h->size : malloc_usable_size(p);
    void *raw = __libc_malloc(size + sizeof(struct hdr));
    if (raw == NULL) {
        return NULL;
    }
    void *q = tagged(raw, size);
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}

/* ---- the scenario ---- */

static void echo(void *data, struct kyufu_grpc_call *call)
{
    (void)data;
    kyufu_grpc_call_respond(call, KYUFU_GRPC_OK, NULL, call->request, call->request_len);
}

static const struct kyufu_grpc_method methods[] = {{"/kyufu.v1.Ledger/Echo", echo, NULL}};

/* Pump like t_pump, with injection only around server calls. */
static bool pump(struct t_client *c, struct kyufu_grpc_server_conn *conn)
{
    for (int round = 0; round < 1000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->session, &p)) > 0) {
            moved = true;
            inject = true;
            int rv = kyufu_grpc_server_conn_recv(conn, p, (size_t)n);
            inject = false;
            if (rv != 0) {
                return false;
            }
        }
        for (;;) {
            inject = true;
            size_t m = kyufu_grpc_server_conn_pending_output(conn, &p);
            inject = false;
            if (m == 0) {
                break;
            }
            moved = true;
            if (nghttp2_session_mem_recv(c->session, p, m) != (ssize_t)m) {
                return false;
            }
        }
        inject = true;
        bool finished = kyufu_grpc_server_conn_finished(conn);
        inject = false;
        if (finished) {
            return false;
        }
        if (!moved) {
            return true;
        }
    }
    return true;
}

/* Returns true when the run saw no injected failure (the end). */
static bool run(long fail_at)
{
    countdown = fail_at;
    failures = 0;
    live = 0;
    struct kyufu_grpc_server_config cfg = {.methods = methods, .n_methods = 1};
    struct kyufu_grpc_server_conn *conn = NULL;
    inject = true;
    int rv = kyufu_grpc_server_conn_new(&cfg, "127.0.0.1:1", "CN=x", 0, &conn);
    inject = false;
    if (rv != 0) {
        CHECK(rv == KYUFU_API_ENOMEM && failures == 1 && live == 0);
        return false;
    }
    struct t_client c;
    t_client_init(&c, conn);
    uint8_t body[64];
    size_t n = t_frame(body, 0, "payload", 7);
    const char *md[] = {"x-request-id", "r1", "x-kyufu-actor", "a", NULL};
    struct t_stream *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = t_request(&c, "/kyufu.v1.Ledger/Echo", body, n, true, md);
    }
    bool alive = pump(&c, conn);
    if (alive) {
        for (int i = 0; i < 3; i++) {
            /* Every stream ended: answered, or reset by the server. */
            CHECK(s[i]->closed);
            CHECK(s[i]->grpc_status == 0 || s[i]->grpc_status == KYUFU_GRPC_RESOURCE_EXHAUSTED ||
                  s[i]->close_error != 0 || s[i]->grpc_status == -1);
            if (failures == 0) {
                CHECK(s[i]->grpc_status == 0 && s[i]->data_len == 12);
            }
        }
    }
    t_client_free(&c);
    inject = true;
    kyufu_grpc_server_conn_free(conn);
    inject = false;
    CHECK(live == 0); /* nothing the server allocated is left */
    return failures == 0;
}

int main(void)
{
    long n;
    for (n = 1; n < 100000; n++) {
        if (run(n)) {
            break;
        }
    }
    CHECK(n > 10); /* the scenario does allocate; every point was tried */
    printf("ok: %ld allocation points\n", n - 1);
    return 0;
}
#endif
