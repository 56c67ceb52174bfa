/* Sign-in limits (signin_limit.h). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "signin_limit.h"

unsigned kyufu_node_signin_begin(struct kyufu_node_signin_limit *l,
                                 const char *staff_id, unsigned *n)
{
    unsigned free_slot = 0;
    *n = 0;
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_ACCOUNTS_MAX; i++) {
        struct kyufu_node_signin_account *a = &l->accounts[i];
        if (a->n > 0 && strcmp(a->staff_id, staff_id) == 0) {
            a->n++;
            *n = a->n;
            return i + 1;
        }
        if (a->n == 0 && free_slot == 0) {
            free_slot = i + 1;
        }
    }
    if (free_slot == 0) {
        return 0;
    }
    struct kyufu_node_signin_account *a = &l->accounts[free_slot - 1];
    snprintf(a->staff_id, sizeof a->staff_id, "%s", staff_id);
    a->n = 1;
    *n = 1;
    return free_slot;
}

void kyufu_node_signin_end(struct kyufu_node_signin_limit *l, unsigned slot)
{
    if (slot == 0) {
        return;
    }
    assert(slot <= KYUFU_NODE_SIGNIN_ACCOUNTS_MAX);
    struct kyufu_node_signin_account *a = &l->accounts[slot - 1];
    assert(a->n > 0);
    if (--a->n == 0) {
        a->staff_id[0] = '\0';
    }
}

unsigned kyufu_node_signin_allowed(unsigned lock_after, uint32_t failures)
{
    return failures < lock_after ? lock_after - failures : 1u;
}

/* The bucket of cert refilled to now; NULL when it has none (full). */
static struct kyufu_node_signin_peer *
peer_find(struct kyufu_node_signin_limit *l, const uint8_t cert[32],
          uint64_t now_ms)
{
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_PEERS_MAX; i++) {
        struct kyufu_node_signin_peer *p = &l->peers[i];
        if (!p->used) {
            continue;
        }
        if (now_ms > p->at_ms) {
            uint64_t add = (now_ms - p->at_ms) / KYUFU_NODE_SIGNIN_FAIL_REFILL_MS;
            if (p->tokens + add >= KYUFU_NODE_SIGNIN_FAIL_BURST) {
                p->used = false; /* full again: nothing to remember */
                continue;
            }
            p->tokens += (unsigned)add;
            p->at_ms += add * KYUFU_NODE_SIGNIN_FAIL_REFILL_MS;
        }
        if (memcmp(p->cert, cert, 32) == 0) {
            return p;
        }
    }
    return NULL;
}

bool kyufu_node_signin_peer_ok(struct kyufu_node_signin_limit *l,
                               const uint8_t cert[32], uint64_t now_ms)
{
    struct kyufu_node_signin_peer *p = peer_find(l, cert, now_ms);
    return p == NULL || p->tokens > 0;
}

void kyufu_node_signin_peer_take(struct kyufu_node_signin_limit *l,
                                 const uint8_t cert[32], uint64_t now_ms)
{
    struct kyufu_node_signin_peer *p = peer_find(l, cert, now_ms);
    if (p == NULL) {
        /* A free slot, else the one nearest to full (most tokens). */
        for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_PEERS_MAX; i++) {
            struct kyufu_node_signin_peer *q = &l->peers[i];
            if (!q->used) {
                p = q;
                break;
            }
            if (p == NULL || q->tokens > p->tokens) {
                p = q;
            }
        }
        memcpy(p->cert, cert, 32);
        p->used = true;
        p->tokens = KYUFU_NODE_SIGNIN_FAIL_BURST;
        p->at_ms = now_ms;
    }
    if (p->tokens > 0) {
        p->tokens--;
    }
}

void kyufu_node_signin_peer_refund(struct kyufu_node_signin_limit *l,
                                   const uint8_t cert[32], uint64_t now_ms)
{
    struct kyufu_node_signin_peer *p = peer_find(l, cert, now_ms);
    if (p == NULL) {
        return; /* forgotten: a full bucket again */
    }
    assert(p->tokens < KYUFU_NODE_SIGNIN_FAIL_BURST); /* peer_find */
    if (++p->tokens == KYUFU_NODE_SIGNIN_FAIL_BURST) {
        p->used = false; /* full again: nothing to remember */
    }
}
