/* Decommissioning (issue 12 Deliver 4; docs/decommission.md): the two
 * operators' commands RequestDecommission and ApproveDecommission, and the
 * query kyufud answers EraseNode from.
 *
 * One operator (ROLE_OPERATOR, checked by the pipeline's command_def row)
 * asks with a statement; the request is recorded as pending with its Raft
 * index as id.  Another active operator approves it by id within
 * KYUFU_DECOMMISSION_PENDING_MS of the request (the leader's clocks of both
 * commands, so every replica decides the same).  The requester cannot
 * approve their own; an expired request cannot be approved (a new request
 * replaces it).  Once approved, the decommission is final: no new request,
 * no second approval.  Nothing is erased here: apply does no I/O; each node
 * erases itself when kyufuctl calls EraseNode with the approved id
 * (node/decommission.c).
 *
 * Record: meta key "decommission", the packed Decommission (ledger.proto),
 * at most one; it travels in snapshots like every meta record. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "storage_limits.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define PRECONDITION KYUFU__V1__CODE__FAILED_PRECONDITION
#define REJECT kyufu_storage__reject
#define META_KEY "decommission"
#define OPERATOR (1u << KYUFU__V1__ROLE__ROLE_OPERATOR)

/* The decommission recorded in `txn` into *out (NULL when there is none):
 * 0, or a store error (ECORRUPT for a record that does not decode or
 * breaks the record's own rules). */
static int load(MDB_txn *txn, const struct kyufu_storage *s,
                Kyufu__V1__Decommission **out)
{
    *out = NULL;
    MDB_val v;
    int rv = kyufu_storage__meta_get(s, txn, META_KEY, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__Decommission *d =
        kyufu__v1__decommission__unpack(NULL, v.mv_size, v.mv_data);
    if (d == NULL || d->id == 0 ||
        !kyufu_storage__valid_text(d->statement, 1, KYUFU_REASON_BYTES_MAX) ||
        !kyufu_storage__valid_staff_id(d->requested_by) ||
        (d->approved_by[0] != '\0' &&
         (!kyufu_storage__valid_staff_id(d->approved_by) ||
          strcmp(d->approved_by, d->requested_by) == 0))) {
        if (d != NULL) {
            kyufu__v1__decommission__free_unpacked(d, NULL);
        }
        return KYUFU_STORAGE_ECORRUPT;
    }
    *out = d;
    return 0;
}

static int store(struct kyufu_storage__cmd *c, const Kyufu__V1__Decommission *d)
{
    KYUFU_ASSERT(d->id != 0 && d->requested_by[0] != '\0');
    KYUFU_ASSERT(strcmp(d->approved_by, d->requested_by) != 0);
    size_t len = kyufu__v1__decommission__get_packed_size(d);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    size_t packed = kyufu__v1__decommission__pack(d, buf);
    KYUFU_ASSERT(packed == len);
    MDB_val k = {sizeof META_KEY - 1, (void *)META_KEY};
    MDB_val v = {len, buf};
    int rv = kyufu_storage__mdb_error(
        mdb_put(c->txn, c->s->dbi[KYUFU_DB_META], &k, &v, 0));
    free(buf);
    if (rv != 0) {
        return rv;
    }
    return kyufu_storage__set_record(c, KYUFU_RESULT_DECOMMISSION, &d->base);
}

static bool fresh(const Kyufu__V1__Decommission *d, int64_t now_ms)
{
    return now_ms >= d->requested_ms &&
           now_ms - d->requested_ms <= KYUFU_DECOMMISSION_PENDING_MS;
}

int kyufu_storage__request_decommission(struct kyufu_storage__cmd *c)
{
    KYUFU_ASSERT(c->cmd->body_case ==
                 KYUFU__V1__COMMAND__BODY_REQUEST_DECOMMISSION);
    const Kyufu__V1__RequestDecommission *b = c->cmd->request_decommission;
    kyufu_storage__set_object(c, "decommission/%llu",
                              (unsigned long long)c->index);
    if (!kyufu_storage__valid_text(b->statement, 1, KYUFU_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "statement must be 1..400 bytes of text");
    }
    Kyufu__V1__Decommission *old = NULL;
    int rv = load(c->txn, c->s, &old);
    if (rv != 0) {
        return rv;
    }
    if (old != NULL) {
        bool approved = old->approved_by[0] != '\0';
        bool other = strcmp(old->requested_by, c->actor) != 0;
        uint64_t id = old->id;
        bool live = fresh(old, c->now_ms);
        kyufu__v1__decommission__free_unpacked(old, NULL);
        if (approved) {
            return REJECT(c, PRECONDITION,
                          "decommission %llu is already approved",
                          (unsigned long long)id);
        }
        if (live && other) {
            return REJECT(c, PRECONDITION,
                          "decommission %llu is pending another operator's "
                          "approval: approve it or let it expire",
                          (unsigned long long)id);
        }
    }
    Kyufu__V1__Decommission d = KYUFU__V1__DECOMMISSION__INIT;
    d.id = c->index;
    d.statement = b->statement;
    d.requested_by = (char *)c->actor;
    d.requested_ms = c->now_ms;
    return store(c, &d);
}

int kyufu_storage__approve_decommission(struct kyufu_storage__cmd *c)
{
    KYUFU_ASSERT(c->cmd->body_case ==
                 KYUFU__V1__COMMAND__BODY_APPROVE_DECOMMISSION);
    const Kyufu__V1__ApproveDecommission *b = c->cmd->approve_decommission;
    if (b->id == 0) {
        return REJECT(c, INVALID, "id must be > 0");
    }
    kyufu_storage__set_object(c, "decommission/%llu",
                              (unsigned long long)b->id);
    Kyufu__V1__Decommission *d = NULL;
    int rv = load(c->txn, c->s, &d);
    if (rv != 0) {
        return rv;
    }
    if (d == NULL || d->id != b->id) {
        if (d != NULL) {
            kyufu__v1__decommission__free_unpacked(d, NULL);
        }
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND,
                      "decommission %llu not found",
                      (unsigned long long)b->id);
    }
    const char *why = NULL;
    if (d->approved_by[0] != '\0') {
        why = "is already approved";
    } else if (strcmp(d->requested_by, c->actor) == 0) {
        why = "was requested by you: another operator must approve it";
    } else if (!fresh(d, c->now_ms)) {
        why = "has expired: request it again";
    }
    if (why != NULL) {
        kyufu__v1__decommission__free_unpacked(d, NULL);
        return REJECT(c, PRECONDITION, "decommission %llu %s",
                      (unsigned long long)b->id, why);
    }
    /* The requester must still be an active operator: an account
     * suspended or stripped since does not count as the first of two. */
    Kyufu__V1__StaffAccount *first = NULL;
    rv = kyufu_storage__get_staff(c->s, c->txn, d->requested_by, &first);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        kyufu__v1__decommission__free_unpacked(d, NULL);
        return rv;
    }
    bool counts = rv == 0 &&
                  first->status == KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE &&
                  (first->roles_mask & OPERATOR) != 0;
    if (first != NULL) {
        kyufu__v1__staff_account__free_unpacked(first, NULL);
    }
    if (!counts) {
        kyufu__v1__decommission__free_unpacked(d, NULL);
        return REJECT(c, PRECONDITION,
                      "decommission %llu: its requester is no longer an "
                      "active operator: request it again",
                      (unsigned long long)b->id);
    }
    Kyufu__V1__Decommission n = *d;
    n.approved_by = (char *)c->actor;
    n.approved_ms = c->now_ms;
    rv = store(c, &n);
    kyufu__v1__decommission__free_unpacked(d, NULL);
    return rv;
}

int kyufu_storage_decommission_get(struct kyufu_storage *s,
                                   Kyufu__V1__Decommission **out)
{
    MDB_txn *txn;
    *out = NULL;
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = load(txn, s, out);
    kyufu_storage__read_end(s, txn);
    if (rv == 0 && *out == NULL) {
        return KYUFU_STORAGE_ENOTFOUND;
    }
    return rv;
}
