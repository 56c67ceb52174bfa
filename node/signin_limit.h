/* Sign-in limits on the leader (docs/identity.md "Sign-in limits"):
 *
 *   - in flight per account: a sign-in reads the account's failure count
 *     when it starts and its failure is counted only once SignInFailed is
 *     applied, so many at once would all pass the lockout check.  At most
 *     (lock_after - failures) sign-ins of one account run at once (at
 *     least 1: after a lock ends, one attempt, whose failure locks again);
 *     the others are refused as if locked, with the same answer.
 *   - failed sign-ins per client certificate: each failed sign-in is a
 *     Raft entry (its audit record), also for an unknown account, so a
 *     token bucket per certificate (KYUFU_NODE_SIGNIN_FAIL_BURST, one more
 *     every KYUFU_NODE_SIGNIN_FAIL_REFILL_MS) bounds them; with none left
 *     a sign-in from that certificate is answered RESOURCE_EXHAUSTED
 *     before the account is read (so the answer tells nothing of it).
 *     A sign-in takes its token when it starts (its outcome is known only
 *     after the hash and a commit: charged then, many sign-ins at once
 *     would all pass on the last token) and gives it back when it ends
 *     without failing.
 *
 * Pure bookkeeping on the loop thread, the caller's clock (uv_now): no
 * allocation, fixed tables (node/limits.h). */
#ifndef KYUFU_NODE_SIGNIN_LIMIT_H
#define KYUFU_NODE_SIGNIN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "limits.h"
#include "storage_limits.h"

struct kyufu_node_signin_account
{
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1]; /* "" when free */
    unsigned n;                                  /* sign-ins in flight */
};

struct kyufu_node_signin_peer
{
    uint8_t cert[32]; /* SHA-256 of the client certificate */
    bool used;
    unsigned tokens;  /* failures it may still have */
    uint64_t at_ms;   /* when tokens was last refilled */
};

struct kyufu_node_signin_limit
{
    struct kyufu_node_signin_account accounts[KYUFU_NODE_SIGNIN_ACCOUNTS_MAX];
    struct kyufu_node_signin_peer peers[KYUFU_NODE_SIGNIN_PEERS_MAX];
};

/* A sign-in of staff_id begins: its slot (1-based, for _end), or 0 when
 * the table is full (answer RESOURCE_EXHAUSTED).  *n: the account's
 * sign-ins in flight, this one included. */
unsigned kyufu_node_signin_begin(struct kyufu_node_signin_limit *l,
                                 const char *staff_id, unsigned *n);
/* It ended (answered); slot 0 is ignored. */
void kyufu_node_signin_end(struct kyufu_node_signin_limit *l, unsigned slot);
/* How many sign-ins of an account may run at once: lock_after - failures,
 * at least 1. */
unsigned kyufu_node_signin_allowed(unsigned lock_after, uint32_t failures);
/* Whether the certificate may sign in now (a failure left to spend). */
bool kyufu_node_signin_peer_ok(struct kyufu_node_signin_limit *l,
                               const uint8_t cert[32], uint64_t now_ms);
/* One token of the certificate spent: a sign-in from it starts (it may
 * fail).  Call kyufu_node_signin_peer_ok first. */
void kyufu_node_signin_peer_take(struct kyufu_node_signin_limit *l,
                                 const uint8_t cert[32], uint64_t now_ms);
/* The sign-in that spent a token ended without failing: the token back
 * (nothing when the certificate's bucket was forgotten meanwhile). */
void kyufu_node_signin_peer_refund(struct kyufu_node_signin_limit *l,
                                   const uint8_t cert[32], uint64_t now_ms);

#endif /* KYUFU_NODE_SIGNIN_LIMIT_H */
