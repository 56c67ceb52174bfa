/* libkyufu internal: the transport under the client's retry logic.
 *
 * The leader-following and retry logic (client.c) sees the network only
 * through this small interface: "send these request bytes to endpoint i,
 * with this per-attempt timeout, and tell me the gRPC status, the
 * kyufu-leader hint and the response bytes, or that the attempt failed".
 * The real implementation (transport_grpc.c) sits on api/'s gRPC client;
 * tests plug in a scripted one, so retries, redirects and key reuse are
 * tested without sockets.
 *
 * Contract of an implementation (libuv rules):
 *   - call() returns 0 and later fires cb exactly once from the loop, or
 *     returns non-zero and never fires cb;
 *   - cb's err is 0 when a gRPC status arrived (then grpc_status, message,
 *     leader and, on OK, body are set; body is malloc'd and the callee hands
 *     it over: the owner frees it), KYUFU_CLIENT_EUNAVAILABLE when the node
 *     could not be reached or the connection broke, KYUFU_CLIENT_EDEADLINE
 *     when timeout_ms elapsed first, KYUFU_CLIENT_ECANCELED when the
 *     transport is being closed;
 *   - cancel() of a call in flight completes it from the loop, usually
 *     with ECANCELED;
 *   - close() completes every call in flight with ECANCELED, closes its
 *     handles, then fires close_cb; the transport is freed after close_cb.
 */
#ifndef KYUFU_CLIENT_TRANSPORT_H
#define KYUFU_CLIENT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kyufu.h"

struct client__tcall;
typedef void (*client__tcall_cb)(struct client__tcall *tc, int err);

/* One attempt, owned by the caller; valid until cb has run. */
struct client__tcall
{
    void *data; /* the owner's */
    /* Results, set before cb with err == 0. */
    int grpc_status;
    char message[KYUFU_CLIENT_ERRMSG_BYTES];
    char leader[KYUFU_CLIENT_ENDPOINT_BYTES_MAX + 1]; /* "" when absent */
    uint8_t *body;                                     /* owner frees */
    size_t body_len;
    /* Private to the transport. */
    client__tcall_cb cb_;
    void *impl_;
};

struct client__transport;
typedef void (*client__transport_close_cb)(struct client__transport *t,
                                           void *arg);

struct client__transport
{
    void *impl;
    /* endpoint < number of endpoints the transport was created with; path
     * is the gRPC path ("/kyufu.v1.Ledger/GetProgram"); body is borrowed
     * until cb (a transport may keep a pointer to it).  authorization, when
     * not NULL, is the value of the `authorization` metadata to send
     * ("Bearer <token>"), copied before call returns; a transport never
     * logs it nor puts it into tc->message. */
    int (*call)(struct client__transport *t,
                unsigned endpoint,
                const char *path,
                const uint8_t *body,
                size_t body_len,
                uint32_t timeout_ms,
                const char *authorization,
                struct client__tcall *tc,
                client__tcall_cb cb);
    void (*close)(struct client__transport *t,
                  client__transport_close_cb cb,
                  void *arg);
    /* Abandon tc, a call in flight (its cb has not fired): the request is
     * reset on the wire (HTTP/2 RST_STREAM CANCEL) and cb fires later from
     * the loop, never from inside cancel, with ECANCELED (or with the
     * answer, if it was already on its way).  The client's hedge uses it on
     * the losing attempt. */
    void (*cancel)(struct client__transport *t, struct client__tcall *tc);
};

/* How the client obtains its transport: the gRPC one by default, a fake one
 * in tests.  Returns 0 or a KYUFU_CLIENT_E* code with errmsg filled. */
typedef int (*client__transport_factory)(void *arg,
                                         uv_loop_t *loop,
                                         const struct kyufu_client_config *cfg,
                                         struct client__transport **out,
                                         char *errmsg,
                                         size_t errmsg_len);

/* The real transport (transport_grpc.c). */
int client__transport_grpc_create(void *arg,
                                  uv_loop_t *loop,
                                  const struct kyufu_client_config *cfg,
                                  struct client__transport **out,
                                  char *errmsg,
                                  size_t errmsg_len);

/* kyufu_client_create with a chosen transport (tests). */
int client__create_with(const struct kyufu_client_config *cfg,
                        uv_loop_t *loop,
                        client__transport_factory factory,
                        void *factory_arg,
                        struct kyufu_client **out,
                        char *errmsg,
                        size_t errmsg_len);

/* Tests: replace the client's jitter seed (RAND_bytes at create) with
 * `seed`, so the backoff waits replay exactly, and observe every retry
 * decision: trace(arg, endpoint of the next attempt, wait before it in ms,
 * 0 = at once) fires as the wait is scheduled.  trace may be NULL. */
struct kyufu_client;
typedef void (*client__retry_trace_cb)(void *arg, unsigned endpoint,
                                       uint32_t wait_ms);
void client__testing(struct kyufu_client *c,
                     uint64_t seed,
                     client__retry_trace_cb trace,
                     void *arg);

/* Fill errmsg (if any) printf-style; returns rv for `return errf(...)`. */
int client__errf(char *errmsg, size_t errmsg_len, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Free a secret string (a token, "Bearer ..."), cleansed first; NULL is
 * a no-op. */
void client__secret_free(char *s);

/* Split "host:port" / "[v6]:port": host into host (without brackets), port
 * into *port.  Returns 0 or KYUFU_CLIENT_EINVALID. */
int client__endpoint_split(const char *endpoint,
                           char *host,
                           size_t host_len,
                           uint16_t *port);

#endif
