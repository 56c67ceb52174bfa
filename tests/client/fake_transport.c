#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_transport.h"

static void on_closed(uv_handle_t *h)
{
    struct fake *f = h->data;
    f->freed = true;
    f->close_cb(&f->base, f->close_arg);
}

static void deliver(uv_timer_t *t)
{
    struct fake *f = t->data;
    /* Deliver everything pending now; callbacks may add more calls, which
     * wait for the next turn. */
    unsigned n = f->n_pending;
    struct client__tcall *calls[FAKE_MAX];
    int replies[FAKE_MAX];
    memcpy(calls, f->pending, n * sizeof calls[0]);
    memcpy(replies, f->pending_reply, n * sizeof replies[0]);
    memmove(f->pending, f->pending + n, (f->n_pending - n) * sizeof f->pending[0]);
    f->n_pending -= n;
    for (unsigned i = 0; i < n; i++) {
        struct client__tcall *tc = calls[i];
        client__tcall_cb cb = tc->cb_;
        if (f->closing) {
            cb(tc, KYUFU_CLIENT_ECANCELED);
            continue;
        }
        if (replies[i] < 0) {
            snprintf(tc->message, sizeof tc->message, "script exhausted");
            cb(tc, KYUFU_CLIENT_EUNAVAILABLE);
            continue;
        }
        const struct fake_reply *r = &f->script[replies[i]];
        if (r->err != 0) {
            snprintf(tc->message, sizeof tc->message, "%s",
                     r->message != NULL ? r->message : "scripted failure");
            cb(tc, r->err);
            continue;
        }
        tc->grpc_status = r->status;
        snprintf(tc->message, sizeof tc->message, "%s",
                 r->message != NULL ? r->message : "");
        snprintf(tc->leader, sizeof tc->leader, "%s",
                 r->leader != NULL ? r->leader : "");
        if (r->status == 0 && r->response != NULL) {
            tc->body_len = protobuf_c_message_get_packed_size(r->response);
            tc->body = malloc(tc->body_len + 1);
            assert(tc->body != NULL);
            protobuf_c_message_pack(r->response, tc->body);
        }
        cb(tc, 0);
    }
    if (f->closing) {
        assert(f->n_pending == 0);
        uv_close((uv_handle_t *)&f->timer, on_closed);
    } else if (f->n_pending > 0) {
        uv_timer_start(&f->timer, deliver, 0, 0);
    }
}

static int f_call(struct client__transport *base, unsigned endpoint,
                  const char *path, const uint8_t *body, size_t body_len,
                  uint32_t timeout_ms, const char *authorization,
                  struct client__tcall *tc, client__tcall_cb cb)
{
    struct fake *f = base->impl;
    assert(!f->closing);
    assert(f->n_log < FAKE_MAX && f->n_pending < FAKE_MAX);
    struct fake_log *l = &f->log[f->n_log++];
    l->endpoint = endpoint;
    snprintf(l->authorization, sizeof l->authorization, "%s",
             authorization != NULL ? authorization : "");
    snprintf(l->path, sizeof l->path, "%s", path);
    l->body = malloc(body_len + 1);
    assert(l->body != NULL);
    memcpy(l->body, body, body_len);
    l->len = body_len;
    l->timeout_ms = timeout_ms;
    tc->cb_ = cb;
    f->pending[f->n_pending] = tc;
    f->pending_reply[f->n_pending] =
        f->next_reply < f->n_script ? (int)f->next_reply++ : -1;
    f->n_pending++;
    uv_timer_start(&f->timer, deliver, 0, 0);
    return 0;
}

static void f_close(struct client__transport *base,
                    client__transport_close_cb cb, void *arg)
{
    struct fake *f = base->impl;
    f->closing = true;
    f->close_cb = cb;
    f->close_arg = arg;
    /* Pending calls are cancelled from the loop, like the real transport. */
    uv_timer_start(&f->timer, deliver, 0, 0);
}

int fake_factory(void *arg, uv_loop_t *loop,
                 const struct kyufu_client_config *cfg,
                 struct client__transport **out, char *errmsg,
                 size_t errmsg_len)
{
    (void)cfg;
    (void)errmsg;
    (void)errmsg_len;
    struct fake *f = arg;
    f->loop = loop;
    f->base.impl = f;
    f->base.call = f_call;
    f->base.close = f_close;
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    *out = &f->base;
    return 0;
}

void fake_push(struct fake *f, struct fake_reply r)
{
    assert(f->n_script < FAKE_MAX);
    f->script[f->n_script++] = r;
}

void fake_reset_log(struct fake *f)
{
    for (unsigned i = 0; i < f->n_log; i++) {
        free(f->log[i].body);
    }
    f->n_log = 0;
}
