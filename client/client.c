/* libkyufu: calls, leader following and retries.
 *
 * Happy path: kyufu_client_call_async encodes the request once (adding the
 * RequestHeader and its idempotency key to a write that lacks them), sends
 * the bytes to the last known leader through the transport, decodes the
 * response and fires the callback.
 *
 * Failure modes, per attempt (see kyufu.h for the policy):
 *   - UNAVAILABLE or DEADLINE_EXCEEDED naming another endpoint as leader
 *     (kyufu-leader): go there at once, without waiting, unless this chain
 *     of redirects (the attempts since the last wait) has already been
 *     there: then wait a backoff first, so nodes with crossed, stale views
 *     cannot make us spin;
 *   - connection failure or attempt timeout (the node is down or hung: it
 *     says nothing about the election): the next endpoint at once, unless
 *     it was tried since the last wait;
 *   - UNAVAILABLE without a usable hint (no leader known: an election in
 *     progress), DEADLINE_EXCEEDED from the server, or every node failed
 *     since the last wait: the next endpoint in turn, after a backoff with
 *     decorrelated jitter (backoff.h: 10..30 ms first, capped at 250 ms by
 *     default), so retries are spread over the nodes and over time;
 *   - UNAUTHENTICATED from a node that names another as leader, on a call
 *     carrying a token: once, to that leader at once (a follower may not
 *     have applied a session opened a moment ago; the leader has);
 *   - any other status (OK or a ledger rejection): final.
 * Every answer that names a leader, final or not, pinned call or not,
 * makes that endpoint the client's leader for its next calls.
 * The same encoded bytes are re-sent on every attempt, so a write keeps its
 * key.  The overall deadline bounds everything: each attempt gets at most
 * the time left, and no backoff is started that would end past it.  A call
 * pinned to one endpoint (opts->endpoint >= 0) is never retried: its one
 * attempt gets the whole deadline.
 *
 * Hedge (docs/failover.md "Client hedge"): an attempt that has had no answer
 * for hedge_ms (client option, 1.5 x the 1000 ms election timeout by
 * default) is left running and the same bytes go to the next node at once:
 * a silent leader (SIGSTOP, dropped packets) otherwise holds the call for
 * the whole attempt timeout although the others elect a new leader within
 * ~1.4 s.  The new attempt carries on with the rules above (redirects,
 * backoff) but never goes to the node of the attempt still running; the
 * first FINAL answer of either wins and the other attempt is cancelled
 * (RST_STREAM).  A retryable answer of the older attempt is dropped.
 * At most one hedge runs per call at a time (two attempts in flight), at
 * most n_endpoints - 1 per call, never on a pinned call, an Auth call
 * (not idempotent, see attempt()) nor a Cluster call (AddNode, drills,
 * TransferLeadership: not idempotent either).  Why sending twice is safe: a write's
 * two copies carry the same idempotency key, and the ledger applies a key
 * once and answers every later command with that key with the stored first
 * result (docs/api.md "Retries, idempotency keys and deadlines",
 * docs/storage.md: the Duplicate step of kyufu_storage_apply; both copies
 * may even be committed, the second is then a no-op that answers the first
 * result); SettleWrite and reads change nothing.
 *
 * Every call owns one uv_timer_t (backoff, hedge and deferred completion);
 * the call is freed in the timer's close callback, after the user callback
 * ran and once no attempt of it is in flight. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "backoff.h"
#include "kyufu.h"
#include "session.h"
#include "transport.h"

struct call;

struct kyufu_client
{
    uv_loop_t *loop;
    uv_loop_t private_loop;
    bool owns_loop;
    char *endpoints[KYUFU_CLIENT_ENDPOINTS_MAX];
    unsigned n_endpoints;
    char *actor;
    char *terminal;
    /* "Bearer <token>": the session token's `authorization` metadata, or
     * NULL (not signed in).  Secret: cleansed when replaced or freed,
     * never logged nor put into a message. */
    char *authorization;
    uint32_t deadline_ms;
    uint32_t attempt_ms;
    uint32_t backoff_ms_initial;
    uint32_t backoff_ms_max;
    uint32_t hedge_ms;       /* 0: no hedge */
    struct client__session session;
    struct client__transport *transport;
    unsigned leader;         /* endpoint index of the last known leader */
    uint64_t rng;            /* jitter source of every call's backoff */
    client__retry_trace_cb trace; /* tests: each retry decision */
    void *trace_arg;
    struct call *calls;      /* in flight or waiting, doubly linked */
    unsigned timers_open;    /* call timers not yet closed */
    bool closing;
    bool transport_closed;
    kyufu_client_close_cb close_cb;
    void *close_arg;
};

enum timer_action { T_ATTEMPT, T_FAIL, T_HEDGE };

/* One attempt in flight.  tc is first: on_attempt finds the leg from it. */
struct leg
{
    struct client__tcall tc;
    unsigned endpoint;
    bool in_flight;          /* a transport call is outstanding */
};

struct call
{
    struct kyufu_client *c;
    struct kyufu_client_req *req;
    kyufu_client_call_cb cb;
    const struct kyufu_client_method *m;
    uint8_t *body;
    size_t body_len;
    uint64_t deadline_at;    /* loop time, ms */
    int fixed;               /* -1, or the only endpoint allowed */
    uint32_t attempt_ms;     /* 0: the client's */
    char *authorization;     /* the call's own (opts->token), or NULL:
                                the client's at each attempt */
    unsigned endpoint;       /* of the current / next attempt */
    uint32_t chain;          /* endpoints tried since the last wait (bits) */
    struct client__backoff backoff;
    /* legs[cur]: the attempt the retry rules drive; legs[cur ^ 1]: the
     * attempt a hedge left running (in flight or idle). */
    struct leg legs[2];
    unsigned cur;
    unsigned hedges;         /* hedges sent so far, < n_endpoints */
    bool done;               /* the user callback ran; freed once no leg
                                is in flight */
    enum timer_action action;
    int fail_err;            /* for T_FAIL */
    bool auth_redirected;    /* an UNAUTHENTICATED follower sent us to the
                                leader once already */
    int last_err;            /* EUNAVAILABLE or EDEADLINE so far */
    uv_timer_t timer;
    struct call *prev;
    struct call *next;
};

static void maybe_closed(struct kyufu_client *c);

/* ------------------------------------------------------------ create */

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0') {
        return 0;
    }
    *dst = strdup(src);
    return *dst == NULL ? KYUFU_CLIENT_ENOMEM : 0;
}

static void free_fields(struct kyufu_client *c)
{
    for (unsigned i = 0; i < c->n_endpoints; i++) {
        free(c->endpoints[i]);
    }
    free(c->actor);
    free(c->terminal);
    client__secret_free(c->authorization);
    c->authorization = NULL;
    client__session_close(&c->session);
}

/* "Bearer " + token, or NULL with *rv set (EINVALID: not a token). */
static char *bearer(const char *token, int *rv)
{
    *rv = kyufu_client_token_check(token);
    if (*rv != 0) {
        return NULL;
    }
    char *v = malloc(sizeof "Bearer " + KYUFU_CLIENT_TOKEN_BYTES);
    if (v == NULL) {
        *rv = KYUFU_CLIENT_ENOMEM;
        return NULL;
    }
    memcpy(v, "Bearer ", 7);
    memcpy(v + 7, token, KYUFU_CLIENT_TOKEN_BYTES + 1);
    return v;
}

int kyufu_client_set_token(struct kyufu_client *c, const char *token)
{
    assert(c != NULL);
    char *v = NULL;
    if (token != NULL) {
        int rv;
        v = bearer(token, &rv);
        if (v == NULL) {
            return rv;
        }
    }
    client__secret_free(c->authorization);
    c->authorization = v;
    return 0;
}

bool kyufu_client_has_token(const struct kyufu_client *c)
{
    return c->authorization != NULL;
}

int client__create_with(const struct kyufu_client_config *cfg,
                        uv_loop_t *loop,
                        client__transport_factory factory,
                        void *factory_arg,
                        struct kyufu_client **out,
                        char *errmsg,
                        size_t errmsg_len)
{
    assert(cfg != NULL && factory != NULL && out != NULL);
    int rv = kyufu_client_config_validate(cfg, errmsg, errmsg_len);
    if (rv != 0) {
        goto err;
    }
    struct kyufu_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        rv = KYUFU_CLIENT_ENOMEM;
        goto err;
    }
    for (unsigned i = 0; i < cfg->n_endpoints; i++) {
        rv = dup_str(&c->endpoints[i], cfg->endpoints[i]);
        if (rv != 0) {
            goto err_fields;
        }
        c->n_endpoints++;
    }
    rv = dup_str(&c->actor, cfg->actor);
    if (rv == 0) {
        rv = dup_str(&c->terminal, cfg->terminal);
    }
    if (rv != 0) {
        goto err_fields;
    }
    if (cfg->token != NULL) {
        rv = kyufu_client_set_token(c, cfg->token);
        if (rv != 0) {
            rv = client__errf(errmsg, errmsg_len, rv == KYUFU_CLIENT_EINVALID
                                                      ? KYUFU_CLIENT_ECONFIG : rv,
                              "the session token is not %u hex digits",
                              KYUFU_CLIENT_TOKEN_BYTES);
            goto err_fields;
        }
    } else if (cfg->token_file != NULL) {
        char token[KYUFU_CLIENT_TOKEN_BYTES + 1];
        rv = kyufu_client_token_read(cfg->token_file, token, errmsg, errmsg_len);
        if (rv == 0) {
            rv = kyufu_client_set_token(c, token);
        }
        OPENSSL_cleanse(token, sizeof token);
        if (rv != 0) {
            goto err_fields;
        }
    }
    c->deadline_ms = cfg->deadline_ms;
    c->attempt_ms = cfg->attempt_ms;
    c->backoff_ms_initial = cfg->backoff_ms_initial;
    c->backoff_ms_max = cfg->backoff_ms_max;
    c->hedge_ms = cfg->hedge_ms;
    /* Jitter only has to differ between clients, not be secret; if the
     * CSPRNG fails, the monotonic clock still differs between processes. */
    if (RAND_bytes((unsigned char *)&c->rng, sizeof c->rng) != 1) {
        c->rng = uv_hrtime();
    }
    rv = client__session_open(&c->session, cfg->client_id, cfg->session_file,
                              errmsg, errmsg_len);
    if (rv != 0) {
        goto err_fields;
    }
    if (loop == NULL) {
        if (uv_loop_init(&c->private_loop) != 0) {
            rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ENOMEM,
                              "uv_loop_init failed");
            goto err_fields;
        }
        c->owns_loop = true;
        loop = &c->private_loop;
    }
    c->loop = loop;
    rv = factory(factory_arg, loop, cfg, &c->transport, errmsg, errmsg_len);
    if (rv != 0) {
        goto err_loop;
    }
    *out = c;
    return 0;

err_loop:
    if (c->owns_loop) {
        uv_run(&c->private_loop, UV_RUN_DEFAULT); /* a factory's closes */
        int lrv = uv_loop_close(&c->private_loop);
        assert(lrv == 0);
        (void)lrv;
    }
err_fields:
    free_fields(c);
    free(c);
err:
    assert(rv != 0);
    return rv;
}

int kyufu_client_create(const struct kyufu_client_config *cfg,
                        uv_loop_t *loop,
                        struct kyufu_client **out,
                        char *errmsg,
                        size_t errmsg_len)
{
    return client__create_with(cfg, loop, client__transport_grpc_create, NULL,
                               out, errmsg, errmsg_len);
}

unsigned kyufu_client_endpoint_count(const struct kyufu_client *c)
{
    return c->n_endpoints;
}

const char *kyufu_client_endpoint(const struct kyufu_client *c, unsigned i)
{
    assert(i < c->n_endpoints);
    return c->endpoints[i];
}

const char *kyufu_client_id(const struct kyufu_client *c)
{
    return c->session.id;
}

int kyufu_client_key_next(struct kyufu_client *c, Kyufu__V1__IdempotencyKey *key)
{
    uint64_t seq;
    int rv = client__session_next(&c->session, &seq, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    kyufu__v1__idempotency_key__init(key);
    key->client_id = c->session.id;
    key->sequence = seq;
    assert(key->sequence > 0);
    return 0;
}

int kyufu_client_header_init(struct kyufu_client *c,
                             Kyufu__V1__RequestHeader *hdr,
                             Kyufu__V1__IdempotencyKey *key,
                             const char *actor)
{
    kyufu__v1__request_header__init(hdr);
    int rv = kyufu_client_key_next(c, key);
    if (rv != 0) {
        return rv;
    }
    if (actor != NULL && actor[0] != '\0') {
        hdr->actor = (char *)actor;
    } else if (c->actor != NULL) {
        hdr->actor = c->actor;
    }
    if (c->terminal != NULL) {
        hdr->terminal = c->terminal;
    }
    hdr->key = key;
    return 0;
}

void kyufu_client_response_free(ProtobufCMessage *response)
{
    if (response != NULL) {
        protobuf_c_message_free_unpacked(response, NULL);
    }
}

/* ------------------------------------------------------------ encode */

static bool str_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* Encode request; a write lacking its header, key or actor gets them in a
 * shallow copy (the caller's message is never touched).  A SettleWrite must
 * name its key (a new one would settle nothing): EINVALID without one. */
static int encode(struct kyufu_client *c,
                  const struct kyufu_client_method *m,
                  const ProtobufCMessage *request,
                  uint8_t **body,
                  size_t *body_len)
{
    const ProtobufCMessage *msg = request;
    void *copy = NULL;
    Kyufu__V1__RequestHeader hdr;
    Kyufu__V1__IdempotencyKey key;
    if (m->kind == KYUFU_CLIENT_WRITE || m->kind == KYUFU_CLIENT_SETTLE) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(m->input, "header");
        assert(f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE);
        Kyufu__V1__RequestHeader *const *slot =
            (void *)((const char *)request + f->offset);
        const Kyufu__V1__RequestHeader *given = *slot;
        if (m->kind == KYUFU_CLIENT_SETTLE &&
            (given == NULL || given->key == NULL ||
             str_empty(given->key->client_id) || given->key->sequence == 0)) {
            return KYUFU_CLIENT_EINVALID;
        }
        if (given == NULL || given->key == NULL ||
            str_empty(given->key->client_id) || given->key->sequence == 0 ||
            (str_empty(given->actor) && c->actor != NULL) ||
            (str_empty(given->terminal) && c->terminal != NULL)) {
            if (given != NULL) {
                hdr = *given;
            } else {
                kyufu__v1__request_header__init(&hdr);
            }
            if (hdr.key == NULL || str_empty(hdr.key->client_id) ||
                hdr.key->sequence == 0) {
                int rv = kyufu_client_key_next(c, &key);
                if (rv != 0) {
                    return rv;
                }
                hdr.key = &key;
            }
            if (str_empty(hdr.actor) && c->actor != NULL) {
                hdr.actor = c->actor;
            }
            if (str_empty(hdr.terminal) && c->terminal != NULL) {
                hdr.terminal = c->terminal;
            }
            copy = malloc(m->input->sizeof_message);
            if (copy == NULL) {
                return KYUFU_CLIENT_ENOMEM;
            }
            memcpy(copy, request, m->input->sizeof_message);
            *(Kyufu__V1__RequestHeader **)(void *)((char *)copy + f->offset) = &hdr;
            msg = copy;
        }
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        free(copy);
        return KYUFU_CLIENT_ENOMEM;
    }
    size_t packed = protobuf_c_message_pack(msg, buf);
    assert(packed == n);
    (void)packed;
    free(copy);
    *body = buf;
    *body_len = n;
    return 0;
}

/* ------------------------------------------------------------ calls */

static void link_call(struct kyufu_client *c, struct call *call)
{
    call->prev = NULL;
    call->next = c->calls;
    if (c->calls != NULL) {
        c->calls->prev = call;
    }
    c->calls = call;
}

static void unlink_call(struct kyufu_client *c, struct call *call)
{
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        assert(c->calls == call);
        c->calls = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct call *call = h->data;
    struct kyufu_client *c = call->c;
    free(call);
    assert(c->timers_open > 0);
    c->timers_open--;
    maybe_closed(c);
}

static struct leg *cur_leg(struct call *call)
{
    return &call->legs[call->cur];
}

static struct leg *other_leg(struct call *call)
{
    return &call->legs[call->cur ^ 1];
}

static bool any_in_flight(const struct call *call)
{
    return call->legs[0].in_flight || call->legs[1].in_flight;
}

/* Free the call's memory (the body is borrowed by the transport until
 * every leg's callback ran). */
static void release(struct call *call)
{
    assert(call->done && !any_in_flight(call));
    free(call->body);
    call->body = NULL;
    uv_close((uv_handle_t *)&call->timer, on_timer_closed);
}

/* The call's answer is rv: cancel any attempt still in flight (the
 * loser of a hedge; on close the transport cancels it), run the user
 * callback, free the call once its legs completed. */
static void finish(struct call *call, int rv)
{
    struct kyufu_client *c = call->c;
    assert(!call->done);
    uv_timer_stop(&call->timer);
    unlink_call(c, call);
    client__secret_free(call->authorization);
    call->authorization = NULL;
    for (unsigned i = 0; i < 2; i++) {
        if (call->legs[i].in_flight && !c->closing) {
            c->transport->cancel(c->transport, &call->legs[i].tc);
        }
    }
    call->done = true;
    struct kyufu_client_req *req = call->req;
    req->impl_ = NULL;
    if (!any_in_flight(call)) {
        release(call);
    }
    call->cb(req, rv); /* may start new calls or close the client */
}

static void result_set(struct kyufu_client_result *r, int status,
                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void result_set(struct kyufu_client_result *r, int status,
                       const char *fmt, ...)
{
    r->grpc_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static void on_attempt(struct client__tcall *tc, int err);

static uint64_t time_left(const struct call *call)
{
    uint64_t now = uv_now(call->c->loop);
    return now >= call->deadline_at ? 0 : call->deadline_at - now;
}

static void on_timer(uv_timer_t *t);

/* What a call sends as `authorization`: its own token, else the client's;
 * never anything on a SignIn (a sign-in proves itself, and an old
 * session's token has no business travelling with a new password). */
static const char *call_authorization(const struct call *call)
{
    if (call->m->output == &kyufu__v1__sign_in_response__descriptor) {
        return NULL;
    }
    return call->authorization != NULL ? call->authorization : call->c->authorization;
}

static void attempt(struct call *call);

/* Arm the hedge of the attempt just sent with `timeout` (see the top of
 * this file): only one at a time, fewer than the nodes per call, only
 * where it can fire before the attempt times out. */
static void hedge_arm(struct call *call, bool once, uint32_t timeout)
{
    struct kyufu_client *c = call->c;
    /* Only what the ledger makes safe to send twice: reads, and writes
     * (and SettleWrite) under an idempotency key.  Never a Cluster call
     * (AddNode, TransferLeadership, drills: a second copy forwarded to the
     * leader starts a second change, or is refused as one). */
    bool idempotent = call->m->kind == KYUFU_CLIENT_READ ||
                      call->m->kind == KYUFU_CLIENT_WRITE ||
                      call->m->kind == KYUFU_CLIENT_SETTLE;
    if (once || !idempotent || c->hedge_ms == 0 || c->n_endpoints < 2 ||
        call->hedges + 1 >= c->n_endpoints || other_leg(call)->in_flight ||
        c->hedge_ms >= timeout) {
        return;
    }
    call->action = T_HEDGE;
    uv_timer_start(&call->timer, on_timer, c->hedge_ms, 0);
}

/* hedge_ms without an answer: leave that attempt running and send the same
 * bytes (same idempotency key) to the next node. */
static void hedge(struct call *call)
{
    struct kyufu_client *c = call->c;
    struct leg *old = cur_leg(call);
    assert(old->in_flight && !other_leg(call)->in_flight);
    assert(call->hedges + 1 < c->n_endpoints && c->n_endpoints <= 32);
    call->hedges++;
    call->chain |= UINT32_C(1) << old->endpoint;
    call->cur ^= 1;
    call->endpoint = (old->endpoint + 1) % c->n_endpoints;
    if (c->trace != NULL) {
        c->trace(c->trace_arg, call->endpoint, 0);
    }
    attempt(call);
}

static void attempt(struct call *call)
{
    struct kyufu_client *c = call->c;
    struct leg *leg = cur_leg(call);
    assert(!leg->in_flight);
    uint64_t left = time_left(call);
    if (left == 0) {
        call->action = T_FAIL;
        call->fail_err = call->last_err != 0 ? call->last_err
                                             : KYUFU_CLIENT_EDEADLINE;
        uv_timer_start(&call->timer, on_timer, 0, 0);
        return;
    }
    /* A call pinned to one endpoint is never retried, so its one attempt
     * gets the whole deadline (a Status with a digest of a 1M-household
     * store takes longer than an attempt). */
    /* Auth calls (sign-in, password change, TOTP) are not idempotent and
     * hash passwords off the node's loop (0.1 s to 1 s of PBKDF2 each): an
     * attempt that times out may have been applied, so it is never sent
     * again elsewhere; its one attempt gets the whole deadline.  A node
     * that answers UNAVAILABLE naming the leader (it did nothing) still
     * redirects. */
    bool once = call->fixed >= 0 || call->m->kind == KYUFU_CLIENT_AUTH;
    uint32_t timeout = once                    ? UINT32_MAX
                       : call->attempt_ms != 0 ? call->attempt_ms
                                               : c->attempt_ms;
    if (left < timeout) {
        timeout = (uint32_t)left;
    }
    call->req->result.attempts++;
    memset(&leg->tc, 0, sizeof leg->tc);
    leg->tc.data = call;
    leg->endpoint = call->endpoint;
    leg->in_flight = true;
    int rv = c->transport->call(c->transport, call->endpoint, call->m->path,
                                call->body, call->body_len, timeout,
                                call_authorization(call),
                                &leg->tc, on_attempt);
    if (rv == 0) {
        hedge_arm(call, once, timeout);
    } else {
        /* Counts as a failed attempt; handled from the loop, never from
         * inside kyufu_client_call_async. */
        leg->in_flight = false;
        result_set(&call->req->result, KYUFU_GRPC_UNAVAILABLE,
                   "%s: cannot start a call: %s", c->endpoints[call->endpoint],
                   kyufu_client_strerror(rv));
        call->last_err = KYUFU_CLIENT_EUNAVAILABLE;
        call->action = T_FAIL;
        call->fail_err = 0; /* 0: retryable failure, see on_timer */
        uv_timer_start(&call->timer, on_timer, 0, 0);
    }
}

/* A retryable failure of the attempt on call->endpoint: pick the next
 * endpoint and wait, or give up. `hint` is the endpoint named as leader, or
 * -1; `reached` is false when the node could not be reached or did not
 * answer in time (no word about the leader from it). */
static void retry(struct call *call, int hint, bool reached)
{
    struct kyufu_client *c = call->c;
    if (call->fixed >= 0 ||
        call->req->result.attempts >= KYUFU_CLIENT_ATTEMPTS_MAX) {
        finish(call, call->last_err);
        return;
    }
    if (call->m->kind == KYUFU_CLIENT_AUTH && !reached) {
        /* Sent and maybe done (see attempt()): never twice. */
        finish(call, call->last_err);
        return;
    }
    unsigned tried = call->endpoint;
    assert(tried < c->n_endpoints && c->n_endpoints <= 32);
    call->chain |= UINT32_C(1) << tried;
    bool named_other = hint >= 0 && (unsigned)hint != tried;
    uint32_t delay;
    unsigned next = (tried + 1) % c->n_endpoints;
    if (named_other && (call->chain & (UINT32_C(1) << hint)) == 0) {
        /* A leader exists and we know where: waiting would only add to the
         * failover the caller sees. */
        call->endpoint = (unsigned)hint;
        delay = 0;
    } else if (!reached && hint < 0 && (call->chain & (UINT32_C(1) << next)) == 0) {
        /* A dead node (the killed leader) tells nothing about the
         * election: ask the next one now; the wait comes once every node
         * has failed since the last one. */
        call->endpoint = next;
        delay = 0;
    } else {
        /* No leader known (election), the node that failed us named
         * itself, or the redirects went round in a circle: the hinted node
         * or the next one in turn, after a jittered wait. */
        call->endpoint = named_other ? (unsigned)hint : next;
        delay = client__backoff_next(&call->backoff, &c->rng);
        call->chain = 0;
    }
    const struct leg *other = other_leg(call);
    if (other->in_flight && call->endpoint == other->endpoint) {
        /* The hedged attempt still waits on that node: not a second one
         * there; the next node, at once unless tried since the last wait. */
        call->chain |= UINT32_C(1) << other->endpoint;
        call->endpoint = (other->endpoint + 1) % c->n_endpoints;
        if (call->endpoint == tried && c->n_endpoints > 2) {
            call->endpoint = (call->endpoint + 1) % c->n_endpoints;
        }
        if (delay == 0 && (call->chain & (UINT32_C(1) << call->endpoint)) != 0) {
            delay = client__backoff_next(&call->backoff, &c->rng);
            call->chain = 0;
        }
    }
    c->leader = call->endpoint; /* the best guess for the next call too */
    if (time_left(call) <= delay) {
        /* The wait would end at or past the deadline: the deadline wins. */
        finish(call, call->last_err);
        return;
    }
    call->req->result.waited_ms += delay;
    if (c->trace != NULL) {
        c->trace(c->trace_arg, call->endpoint, delay);
    }
    call->action = T_ATTEMPT;
    uv_timer_start(&call->timer, on_timer, delay, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct call *call = t->data;
    if (call->c->closing) {
        finish(call, KYUFU_CLIENT_ECANCELED);
        return;
    }
    if (call->action == T_ATTEMPT) {
        attempt(call);
    } else if (call->action == T_HEDGE) {
        hedge(call);
    } else if (call->fail_err != 0) {
        finish(call, call->fail_err);
    } else {
        retry(call, -1, false); /* the transport could not start the call */
    }
}

static int endpoint_index(const struct kyufu_client *c, const char *ep)
{
    for (unsigned i = 0; i < c->n_endpoints; i++) {
        if (strcmp(c->endpoints[i], ep) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* The answer of a hedged attempt (not the current leg): true when it is
 * final and wins (it becomes the current leg), false when it was dropped
 * (cancelled, failed, or retryable: the current leg goes on). */
static bool straggler_wins(struct call *call, struct leg *leg, int err)
{
    struct client__tcall *tc = &leg->tc;
    if (call->c->closing || err != 0 ||
        tc->grpc_status == KYUFU_GRPC_UNAVAILABLE ||
        tc->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED ||
        tc->grpc_status == KYUFU_GRPC_UNAUTHENTICATED) {
        return false;
    }
    call->cur ^= 1;
    assert(cur_leg(call) == leg);
    call->endpoint = leg->endpoint;
    return true; /* on_attempt stops the other leg's hedge or backoff */
}

static void on_attempt(struct client__tcall *tc, int err)
{
    struct call *call = tc->data;
    struct leg *leg = (struct leg *)(void *)tc;
    struct kyufu_client *c = call->c;
    struct kyufu_client_result *r = &call->req->result;
    assert(leg == &call->legs[0] || leg == &call->legs[1]);
    assert(leg->in_flight);
    leg->in_flight = false;
    uint8_t *body = tc->body;
    size_t body_len = tc->body_len;
    tc->body = NULL;
    if (call->done) {
        free(body); /* the loser of a hedge, or cancelled by close */
        if (!any_in_flight(call)) {
            release(call);
        }
        return;
    }
    if (leg != cur_leg(call) && !straggler_wins(call, leg, err)) {
        free(body);
        return;
    }
    uv_timer_stop(&call->timer); /* this attempt's hedge; after a
                                    straggler won, the other's backoff */
    const char *ep = c->endpoints[call->endpoint];

    if (c->closing || err == KYUFU_CLIENT_ECANCELED) {
        free(body);
        finish(call, KYUFU_CLIENT_ECANCELED);
        return;
    }
    r->endpoint = (int)call->endpoint;
    if (err != 0) {
        free(body);
        if (err == KYUFU_CLIENT_EDEADLINE) {
            call->last_err = KYUFU_CLIENT_EDEADLINE;
            result_set(r, KYUFU_GRPC_DEADLINE_EXCEEDED,
                       "%s: no answer within the attempt timeout", ep);
        } else {
            call->last_err = KYUFU_CLIENT_EUNAVAILABLE;
            result_set(r, KYUFU_GRPC_UNAVAILABLE, "%s: %s", ep,
                       tc->message[0] != '\0' ? tc->message
                                              : "connection failed");
        }
        retry(call, -1, false);
        return;
    }
    int hint = tc->leader[0] != '\0' ? endpoint_index(c, tc->leader) : -1;
    if (hint >= 0) {
        c->leader = (unsigned)hint; /* from any answer, pinned calls too */
    }
    if (tc->grpc_status == KYUFU_GRPC_UNAUTHENTICATED && call->fixed < 0 &&
        !call->auth_redirected && hint >= 0 && (unsigned)hint != call->endpoint &&
        call_authorization(call) != NULL) {
        /* A follower that does not know the session yet (it was opened a
         * moment ago and this node has not applied it) while the leader,
         * which committed it, does: ask the leader once, at once.  Nothing
         * was done by the refused attempt. */
        free(body);
        call->auth_redirected = true;
        call->endpoint = (unsigned)hint;
        const struct leg *other = other_leg(call);
        if (other->in_flight && other->endpoint == (unsigned)hint) {
            /* The hedged attempt already asks that leader (the silent one
             * a lagging follower still names): never a second copy there;
             * the call is left to that attempt, as if this one had not
             * been sent. */
            call->cur ^= 1;
            return;
        }
        call->action = T_ATTEMPT;
        if (c->trace != NULL) {
            c->trace(c->trace_arg, call->endpoint, 0);
        }
        uv_timer_start(&call->timer, on_timer, 0, 0);
        return;
    }
    if (tc->grpc_status == KYUFU_GRPC_UNAVAILABLE ||
        tc->grpc_status == KYUFU_GRPC_DEADLINE_EXCEEDED) {
        free(body);
        call->last_err = tc->grpc_status == KYUFU_GRPC_UNAVAILABLE
                             ? KYUFU_CLIENT_EUNAVAILABLE
                             : KYUFU_CLIENT_EDEADLINE;
        result_set(r, tc->grpc_status, "%s: %s", ep, tc->message);
        retry(call, hint, true);
        return;
    }
    /* Final answer. */
    if (call->fixed < 0 && hint < 0) {
        c->leader = call->endpoint; /* it served the call */
    }
    result_set(r, tc->grpc_status, "%s", tc->message);
    if (tc->grpc_status == KYUFU_GRPC_OK) {
        if (body_len > KYUFU_CLIENT_MESSAGE_BYTES_MAX) {
            free(body);
            result_set(r, KYUFU_GRPC_INTERNAL, "%s: response too large", ep);
            finish(call, KYUFU_CLIENT_EPROTOCOL);
            return;
        }
        r->response = protobuf_c_message_unpack(call->m->output, NULL, body_len,
                                                body != NULL ? body
                                                             : (const uint8_t *)"");
        if (r->response == NULL) {
            free(body);
            result_set(r, KYUFU_GRPC_INTERNAL, "%s: undecodable %s", ep,
                       call->m->output->name);
            finish(call, KYUFU_CLIENT_EPROTOCOL);
            return;
        }
    }
    free(body);
    finish(call, 0);
}

int kyufu_client_call_async(struct kyufu_client *c,
                            struct kyufu_client_req *req,
                            const char *method,
                            const ProtobufCMessage *request,
                            const ProtobufCMessageDescriptor *response_desc,
                            const struct kyufu_client_call_opts *opts,
                            kyufu_client_call_cb cb)
{
    assert(c != NULL && req != NULL && cb != NULL);
    if (c->closing) {
        return KYUFU_CLIENT_ECANCELED;
    }
    const struct kyufu_client_method *m = kyufu_client_method_find(method);
    if (m == NULL) {
        return KYUFU_CLIENT_EUNKNOWN_METHOD;
    }
    if (request == NULL || request->descriptor != m->input ||
        (response_desc != NULL && response_desc != m->output)) {
        return KYUFU_CLIENT_EINVALID;
    }
    if (opts != NULL && opts->endpoint >= (int)c->n_endpoints) {
        return KYUFU_CLIENT_EINVALID;
    }
    struct call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        return KYUFU_CLIENT_ENOMEM;
    }
    int rv = 0;
    if (opts != NULL && opts->token != NULL) {
        call->authorization = bearer(opts->token, &rv);
        if (call->authorization == NULL) {
            free(call);
            return rv;
        }
    }
    rv = encode(c, m, request, &call->body, &call->body_len);
    if (rv != 0) {
        client__secret_free(call->authorization);
        free(call);
        return rv;
    }
    memset(&req->result, 0, sizeof req->result);
    req->result.endpoint = -1;
    req->impl_ = call;
    call->c = c;
    call->req = req;
    call->cb = cb;
    call->m = m;
    uint32_t deadline = opts != NULL && opts->deadline_ms > 0 ? opts->deadline_ms
                                                              : c->deadline_ms;
    uv_update_time(c->loop);
    call->deadline_at = uv_now(c->loop) + deadline;
    call->fixed = opts != NULL && opts->endpoint >= 0 ? opts->endpoint : -1;
    call->attempt_ms = opts != NULL ? opts->attempt_ms : 0;
    call->endpoint = call->fixed >= 0 ? (unsigned)call->fixed : c->leader;
    client__backoff_init(&call->backoff, c->backoff_ms_initial,
                         c->backoff_ms_max);
    int trv = uv_timer_init(c->loop, &call->timer);
    assert(trv == 0);
    (void)trv;
    call->timer.data = call;
    c->timers_open++;
    link_call(c, call);
    attempt(call);
    return 0;
}

/* ------------------------------------------------------------ close */

static void maybe_closed(struct kyufu_client *c)
{
    if (!c->closing || !c->transport_closed || c->calls != NULL ||
        c->timers_open > 0 || c->close_cb == NULL) {
        return;
    }
    kyufu_client_close_cb cb = c->close_cb;
    c->close_cb = NULL;
    cb(c, c->close_arg);
    if (!c->owns_loop) {
        free_fields(c);
        free(c);
    }
}

static void on_transport_closed(struct client__transport *t, void *arg)
{
    struct kyufu_client *c = arg;
    (void)t;
    c->transport = NULL;
    c->transport_closed = true;
    maybe_closed(c);
}

void kyufu_client_close(struct kyufu_client *c,
                        kyufu_client_close_cb close_cb,
                        void *arg)
{
    assert(c != NULL && !c->closing && close_cb != NULL);
    c->closing = true;
    c->close_cb = close_cb;
    c->close_arg = arg;
    /* Calls waiting on their timer complete from it with ECANCELED; calls in
     * flight complete when the transport cancels them. */
    for (struct call *call = c->calls; call != NULL; call = call->next) {
        if (!cur_leg(call)->in_flight) {
            uv_timer_start(&call->timer, on_timer, 0, 0);
        }
    }
    c->transport->close(c->transport, on_transport_closed, c);
}

/* ------------------------------------------------------------ sync */

struct sync_state
{
    bool done;
    int rv;
};

static void on_sync_done(struct kyufu_client_req *req, int status)
{
    struct sync_state *st = req->data;
    st->done = true;
    st->rv = status;
}

int kyufu_client_call(struct kyufu_client *c,
                      const char *method,
                      const ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *response_desc,
                      const struct kyufu_client_call_opts *opts,
                      struct kyufu_client_result *result)
{
    assert(c != NULL && result != NULL);
    struct sync_state st = { false, 0 };
    struct kyufu_client_req req = { .data = &st };
    memset(result, 0, sizeof *result);
    result->endpoint = -1;
    int rv = kyufu_client_call_async(c, &req, method, request, response_desc,
                                     opts, on_sync_done);
    if (rv != 0) {
        return rv;
    }
    while (!st.done) {
        uv_run(c->loop, UV_RUN_ONCE);
    }
    *result = req.result;
    return st.rv;
}

struct each_slot
{
    unsigned *pending;
    int *rv;
    struct kyufu_client_result *result;
};

static void on_each_done(struct kyufu_client_req *req, int status)
{
    struct each_slot *slot = req->data;
    *slot->rv = status;
    *slot->result = req->result;
    assert(*slot->pending > 0);
    (*slot->pending)--;
}

int kyufu_client_call_each(struct kyufu_client *c,
                           const char *method,
                           const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *response_desc,
                           uint32_t deadline_ms,
                           int *rvs,
                           struct kyufu_client_result *results)
{
    assert(c != NULL && c->owns_loop && rvs != NULL && results != NULL);
    const struct kyufu_client_method *m = kyufu_client_method_find(method);
    if (m == NULL) {
        return KYUFU_CLIENT_EUNKNOWN_METHOD;
    }
    if (m->kind == KYUFU_CLIENT_WRITE || request == NULL ||
        request->descriptor != m->input ||
        (response_desc != NULL && response_desc != m->output)) {
        return KYUFU_CLIENT_EINVALID; /* a write: one leader, one key */
    }
    if (c->closing) {
        return KYUFU_CLIENT_ECANCELED;
    }
    struct kyufu_client_req reqs[KYUFU_CLIENT_ENDPOINTS_MAX];
    struct each_slot slots[KYUFU_CLIENT_ENDPOINTS_MAX];
    unsigned pending = 0;
    for (unsigned i = 0; i < c->n_endpoints; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].endpoint = -1;
        slots[i] = (struct each_slot){ &pending, &rvs[i], &results[i] };
        reqs[i] = (struct kyufu_client_req){ .data = &slots[i] };
        struct kyufu_client_call_opts opts = { .deadline_ms = deadline_ms,
                                               .endpoint = (int)i,
                                               .token = NULL };
        rvs[i] = kyufu_client_call_async(c, &reqs[i], method, request,
                                         response_desc, &opts, on_each_done);
        if (rvs[i] == 0) { /* else ENOMEM: that endpoint's answer */
            pending++;
        }
    }
    while (pending > 0) {
        uv_run(c->loop, UV_RUN_ONCE);
    }
    return 0;
}

void client__testing(struct kyufu_client *c,
                     uint64_t seed,
                     client__retry_trace_cb trace,
                     void *arg)
{
    c->rng = seed;
    c->trace = trace;
    c->trace_arg = arg;
}

static void on_sync_closed(struct kyufu_client *c, void *arg)
{
    (void)c;
    *(bool *)arg = true;
}

void kyufu_client_destroy(struct kyufu_client *c)
{
    if (c == NULL) {
        return;
    }
    assert(c->owns_loop);
    bool closed = false;
    kyufu_client_close(c, on_sync_closed, &closed);
    while (!closed) {
        uv_run(c->loop, UV_RUN_ONCE);
    }
    uv_run(c->loop, UV_RUN_NOWAIT);
    int rv = uv_loop_close(&c->private_loop);
    assert(rv == 0); /* every handle of the client and transport closed */
    (void)rv;
    free_fields(c);
    free(c);
}

int kyufu_client_settle_write(struct kyufu_client *c,
                              const Kyufu__V1__IdempotencyKey *key,
                              const char *actor,
                              const struct kyufu_client_call_opts *opts,
                              struct kyufu_client_result *result)
{
    Kyufu__V1__SettleWriteRequest req = KYUFU__V1__SETTLE_WRITE_REQUEST__INIT;
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    assert(c != NULL && result != NULL);
    if (key == NULL || str_empty(key->client_id) || key->sequence == 0) {
        return KYUFU_CLIENT_EINVALID;
    }
    hdr.key = (Kyufu__V1__IdempotencyKey *)key;
    hdr.actor = (char *)actor; /* NULL or empty: encode uses the config's */
    req.header = &hdr;
    return kyufu_client_call(c, "SettleWrite", &req.base,
                             &kyufu__v1__settle_write_response__descriptor,
                             opts, result);
}

int kyufu_client_sign_in(struct kyufu_client *c,
                         const char *staff_id,
                         const char *password,
                         const char *totp_code,
                         const struct kyufu_client_call_opts *opts,
                         struct kyufu_client_result *result)
{
    assert(c != NULL && result != NULL);
    if (str_empty(staff_id) || password == NULL) {
        return KYUFU_CLIENT_EINVALID;
    }
    Kyufu__V1__SignInRequest req = KYUFU__V1__SIGN_IN_REQUEST__INIT;
    req.staff_id = (char *)staff_id;
    req.password = (char *)password;
    req.totp_code = (char *)(totp_code != NULL ? totp_code : "");
    int rv = kyufu_client_call(c, "SignIn", &req.base,
                               &kyufu__v1__sign_in_response__descriptor, opts, result);
    if (rv != 0 || result->grpc_status != KYUFU_GRPC_OK) {
        return rv;
    }
    const Kyufu__V1__SignInResponse *resp = (const void *)result->response;
    int trv = kyufu_client_set_token(c, resp->token);
    if (trv != 0) {
        kyufu_client_response_free(result->response);
        result->response = NULL;
        result->grpc_status = KYUFU_GRPC_INTERNAL;
        snprintf(result->message, sizeof result->message,
                 "the server's session token is not %u hex digits",
                 KYUFU_CLIENT_TOKEN_BYTES);
        return KYUFU_CLIENT_EPROTOCOL;
    }
    return 0;
}
