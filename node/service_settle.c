/* SettleWrite: the definite fate of a write whose answer was lost
 * (docs/api.md "Settling an unknown outcome").
 *
 * Happy path (leader): unpack (service.c) -> the request must carry
 * header.key (the key to settle) -> Command{header, SettleWrite{}} proposed
 * through Raft like any write (service_write.c) -> apply answers with the
 * key's first result marked APPLIED, or with the fence it recorded
 * (NOT_APPLIED or EXPIRED) -> OK with SettleWriteResponse{outcome, result},
 * whatever the first result's own code was (a rejection is an outcome too).
 *
 * Failure modes: no header or no key (client id empty, sequence 0) is
 * INVALID_ARGUMENT here, before Raft, so nothing at all is written; a key
 * another account used first is PERMISSION_DENIED before Raft
 * (kyufu_node__propose: only the key's owner learns its fate), and apply
 * checks again; a header naming another actor than the session's is
 * PERMISSION_DENIED likewise; a key
 * apply finds malformed (length, charset) is rejected and audited by apply
 * like any bad header; a settle refused by the actor checks (unknown or
 * inactive actor, no writer role) is that non-OK status and fences nothing.
 * Proposal errors as for writes: UNAVAILABLE means the settle may or may not
 * have been applied, and settling again is safe (it is idempotent).  A
 * follower forwards the original bytes. */
#include <assert.h>

#include "kyufu/v1/service.pb-c.h"
#include "service.h"

static void on_settled(struct kyufu_glue_propose *req,
                       int status,
                       Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (status != 0) {
        assert(result == NULL);
        kyufu_node__proposal_failed(c, status);
        return;
    }
    assert(result != NULL);
    if (result->outcome == KYUFU__V1__WRITE_OUTCOME__WRITE_OUTCOME_UNSPECIFIED) {
        /* The settle itself was refused (header, actor, role). */
        assert(result->code != KYUFU__V1__CODE__OK);
        kyufu_node__call_done(c, (int)result->code, result->message, NULL, 0);
    } else if (kyufu_node__roles_out(result->staff) != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
    } else {
        Kyufu__V1__SettleWriteResponse resp =
            KYUFU__V1__SETTLE_WRITE_RESPONSE__INIT;
        resp.outcome = result->outcome;
        resp.result = result;
        kyufu_node__call_done_msg(c, &resp.base);
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

void kyufu_node__settle(struct kyufu_node_call *c)
{
    static Kyufu__V1__SettleWrite body = KYUFU__V1__SETTLE_WRITE__INIT;
    const Kyufu__V1__SettleWriteRequest *request = c->request;
    const Kyufu__V1__RequestHeader *rh = request->header;
    assert(c->method->kind == KYUFU_NODE_SETTLE);
    if (rh == NULL || rh->key == NULL || rh->key->client_id == NULL ||
        rh->key->client_id[0] == '\0' || rh->key->sequence == 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "SettleWrite needs header.key: the client id "
                              "and sequence of the write to settle",
                              NULL, 0);
        return;
    }
    if (!kyufu_glue_is_leader(c->node->glue)) {
        kyufu_node__forward(c);
        return;
    }
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_SETTLE_WRITE;
    cmd.settle_write = &body;
    kyufu_node__propose(c, rh, &cmd, on_settled);
}
