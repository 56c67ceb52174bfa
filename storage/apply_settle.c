/* SettleWrite: the definite fate of the command header's own idempotency
 * key (docs/api.md "Settling an unknown outcome").
 *
 * The pipeline (apply.c) has already answered the case where the key was
 * applied: step 2 found its session entry and returned the first result,
 * marked WRITE_APPLIED.  This handler runs only when session_get read the
 * key as absent, and records a fence: the pipeline stores the result built
 * here as the key's session entry, so the original command, should it
 * arrive later (a client retry, a leader's log), gets this result (ABORTED)
 * as a duplicate and is never applied.  Whether the fence says NOT_APPLIED
 * or EXPIRED depends on what the table can prove (session.c, the floor).
 * The handler writes nothing itself; a settle rejected before it (actor,
 * role) stores no entry at all, so it fences nothing. */
#include "internal.h"

int kyufu_storage__settle_write(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__IdempotencyKey *key = c->cmd->header->key;
    enum kyufu_storage__key_state state;
    KYUFU_ASSERT(c->cmd->body_case == KYUFU__V1__COMMAND__BODY_SETTLE_WRITE);
    KYUFU_ASSERT(c->outcome == KYUFU__V1__WRITE_OUTCOME__WRITE_OUTCOME_UNSPECIFIED);
    int rv = kyufu_storage__session_absent_state(c->s, c->txn, key->client_id,
                                                 key->sequence, &state);
    if (rv != 0) {
        return rv;
    }
    if (state == KYUFU_KEY_NEVER) {
        c->outcome = KYUFU__V1__WRITE_OUTCOME__WRITE_NOT_APPLIED;
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__ABORTED,
                                   "key settled as not applied");
    } else {
        KYUFU_ASSERT(state == KYUFU_KEY_EXPIRED);
        c->outcome = KYUFU__V1__WRITE_OUTCOME__WRITE_EXPIRED;
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__ABORTED,
                                   "key settled after its session window: "
                                   "the cluster cannot tell if it was "
                                   "applied");
    }
    KYUFU_ASSERT(c->code == KYUFU__V1__CODE__ABORTED);
    return rv;
}
