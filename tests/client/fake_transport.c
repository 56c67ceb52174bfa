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

#define CANCELLED (-2) /* pending_reply of a call the client cancelled */

static void pend(struct fake *f, struct client__tcall *tc, int reply)
{
    assert(f->n_pending < FAKE_MAX);
    f->pending[f->n_pending] = tc;
    f->pending_reply[f->n_pending] = reply;
    f->n_pending++;
}

static void deliver(uv_timer_t *t);

/* Move held call i to the pending ones with `reply`. */
static void unhold(struct fake *f, unsigned i, int reply)
{
    pend(f, f->held[i], reply);
    f->n_held--;
    f->held[i] = f->held[f->n_held];
    f->held_reply[i] = f->held_reply[f->n_held];
    f->held_log[i] = f->held_log[f->n_held];
    uv_timer_start(&f->timer, deliver, 0, 0);
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
        if (f->closing || replies[i] == CANCELLED) {
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
    int reply = f->next_reply < f->n_script ? (int)f->next_reply++ : -1;
    if (reply >= 0 && f->script[reply].held) {
        assert(f->n_held < FAKE_MAX);
        f->held[f->n_held] = tc;
        f->held_reply[f->n_held] = reply;
        f->held_log[f->n_held] = f->n_log - 1;
        f->n_held++;
        return 0;
    }
    pend(f, tc, reply);
    uv_timer_start(&f->timer, deliver, 0, 0);
    return 0;
}

static void f_cancel(struct client__transport *base, struct client__tcall *tc)
{
    struct fake *f = base->impl;
    f->cancels++;
    for (unsigned i = 0; i < f->n_held; i++) {
        if (f->held[i] == tc) {
            f->log[f->held_log[i]].cancelled = true;
            unhold(f, i, CANCELLED);
            return;
        }
    }
    for (unsigned i = 0; i < f->n_pending; i++) {
        if (f->pending[i] == tc) {
            f->pending_reply[i] = CANCELLED;
            return;
        }
    }
    assert(!"cancel of a call not in flight");
}

bool fake_release(struct fake *f, unsigned log_index)
{
    for (unsigned i = 0; i < f->n_held; i++) {
        if (f->held_log[i] == log_index) {
            unhold(f, i, f->held_reply[i]);
            return true;
        }
    }
    return false;
}

static void f_close(struct client__transport *base,
                    client__transport_close_cb cb, void *arg)
{
    struct fake *f = base->impl;
    f->closing = true;
    f->close_cb = cb;
    f->close_arg = arg;
    while (f->n_held > 0) {
        unhold(f, 0, CANCELLED);
    }
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
    f->base.cancel = f_cancel;
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
