/* Calls held during this node's leadership hand-over: see node.h
 * ("forward_hold.c").
 *
 * Happy path: a write reaches the leader as it hands over (power on
 * battery, a drill, TransferLeadership) -> raft refuses the proposal
 * (NOTLEADER) -> kyufu_node__forward -> kyufu_node__hold queues the call and
 * starts the tick -> raft-glue sees the new leader and ends the transfer ->
 * the next tick sends every held call to it (kyufu_node__forward_now), in
 * arrival order.
 *
 * Failure modes: the hand-over fails and this node still leads, or no
 * leader is known when it ends -> forward_now answers UNAVAILABLE (the
 * client retries, as it did before holds existed); a call outlives its
 * bound -> UNAVAILABLE "leadership hand-over in progress"; the node stops
 * -> kyufu_node__hold_flush answers every held call UNAVAILABLE.  A held
 * call whose client went away stays held (grpc.h: the call stays valid
 * until answered) and is answered CANCELLED when the hand-over ends,
 * never forwarded.
 *
 * Why a tick of its own rather than node.c's on_state: the end of a
 * hand-over is not a state change the glue reports.  The new leader may
 * be seen (on_state) a poll before the glue's transfer ends (it waits for
 * raft's transfer callback); a failed hand-over ends with no change of
 * role or leader; raft's core drops a transferee on its own timeout with
 * no callback at all.  The tick also answers the calls past their bound,
 * and runs only while calls are held. */
#include <assert.h>
#include <stdlib.h>

#include "limits.h"
#include "log.h"
#include "node.h"
#include "service.h"

static void on_tick(uv_timer_t *t);

static bool holding_allowed(struct kyufu_node *n)
{
    return n->glue != NULL &&
           (n->stage == KYUFU_NODE_RUNNING ||
            n->stage == KYUFU_NODE_TRANSFERRING) &&
           kyufu_glue_transferring(n->glue);
}

bool kyufu_node__hold(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    if (!holding_allowed(n)) {
        return false;
    }
    if (!n->hold.timer_init) {
        int rv = uv_timer_init(&n->loop, &n->hold.timer);
        assert(rv == 0); /* cannot fail for a timer */
        (void)rv;
        n->hold.timer.data = n;
        n->hold.timer_init = true;
    }
    uint64_t bound = (uint64_t)KYUFU_NODE_HOLD_ELECTIONS *
                     n->config->election_timeout_ms;
    uint64_t remaining = kyufu_node__call_remaining_ms(c);
    c->hold_until = uv_now(&n->loop) + (remaining < bound ? remaining : bound);
    c->hold_next = NULL;
    if (n->hold.tail != NULL) {
        n->hold.tail->hold_next = c;
    } else {
        n->hold.head = c;
        uv_timer_start(&n->hold.timer, on_tick, KYUFU_NODE_HOLD_TICK_MS,
                       KYUFU_NODE_HOLD_TICK_MS);
    }
    n->hold.tail = c;
    kyufu_log(KYUFU_LOG_DEBUG, "call held during the leadership hand-over",
              KYUFU_LOG_S("method", c->method->path));
    return true;
}

/* Take the whole list; the caller answers or forwards each. */
static struct kyufu_node_call *take_all(struct kyufu_node *n)
{
    struct kyufu_node_call *head = n->hold.head;
    n->hold.head = NULL;
    n->hold.tail = NULL;
    if (n->hold.timer_init) {
        uv_timer_stop(&n->hold.timer);
    }
    return head;
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    if (n->stage >= KYUFU_NODE_CLOSING || n->glue == NULL) {
        kyufu_node__hold_flush(n);
        return;
    }
    if (!kyufu_glue_transferring(n->glue)) {
        /* Over: each goes to the new leader, or is answered as before.
         * Taken first: forward_now may find another hand-over (never here:
         * this node no longer transfers) or answer at once. */
        bool kept = kyufu_glue_is_leader(n->glue);
        struct kyufu_node_call *c = take_all(n);
        while (c != NULL) {
            struct kyufu_node_call *next = c->hold_next;
            c->hold_next = NULL;
            if (c->call != NULL && c->call->cancelled) {
                /* Its client went away (or its connection was closed at a
                 * CRL reload): nothing is sent on its behalf. */
                kyufu_node__call_done(c, KYUFU_GRPC_CANCELLED,
                                      "cancelled during the hand-over", NULL,
                                      0);
            } else if (kept) {
                /* The hand-over failed and this node still leads: the
                 * client's retry is served here. */
                kyufu_node__call_unavailable(c, "leadership hand-over "
                                                "failed; retry");
            } else {
                kyufu_node__forward_now(c);
            }
            c = next;
        }
        return;
    }
    /* Still handing over: answer those past their bound. */
    uint64_t now = uv_now(&n->loop);
    struct kyufu_node_call **link = &n->hold.head;
    struct kyufu_node_call *prev = NULL;
    while (*link != NULL) {
        struct kyufu_node_call *c = *link;
        if (now < c->hold_until) {
            prev = c;
            link = &c->hold_next;
            continue;
        }
        *link = c->hold_next;
        if (n->hold.tail == c) {
            n->hold.tail = prev;
        }
        c->hold_next = NULL;
        kyufu_node__call_unavailable(c, "leadership hand-over in progress");
    }
    if (n->hold.head == NULL) {
        uv_timer_stop(&n->hold.timer);
    }
}

void kyufu_node__hold_flush(struct kyufu_node *n)
{
    struct kyufu_node_call *c = take_all(n);
    while (c != NULL) {
        struct kyufu_node_call *next = c->hold_next;
        c->hold_next = NULL;
        kyufu_node__call_unavailable(c, "node is stopping");
        c = next;
    }
}

void kyufu_node__hold_close(struct kyufu_node *n)
{
    kyufu_node__hold_flush(n);
    if (n->hold.timer_init) {
        uv_close((uv_handle_t *)&n->hold.timer, NULL);
        n->hold.timer_init = false;
    }
}
