/* Two ID administrators (docs/identity.md "Two ID administrators"): the
 * pending requests of db admin_grant and the rule that completes them.
 *
 * Granting ROLE_ID_ADMIN (cluster version >= 2), and from cluster version
 * 3 every change an ID administrator makes to another account that holds
 * ROLE_ID_ADMIN (a password reset, a TOTP reset, an unlock, a status or a
 * roles change), takes two ID administrators: the first call records a
 * pending request and is answered FAILED_PRECONDITION "pending: ..."; the
 * same request (same target, same kind, same parameter) from another
 * active ID administrator completes it.  Nobody completes their own (their
 * repeat only renews the request).  From version 3 a request older than
 * KYUFU_ADMIN_PENDING_MS no longer counts (a repeat replaces it).  When
 * exactly one ID administrator is active, that one acts alone (there is
 * nobody to confirm), and the audit record says so; reaching that state
 * from two or more active ones itself took two (suspending, disabling or
 * stripping an ID administrator is such a change).
 *
 * Keys: the grant's is the target alone (as written by version 2); the
 * others' are target || 0x00 || kind.  Value: parameter u32 (the roles of
 * a grant or roles change, the status of a status change, else 0) || time
 * u64 (the command header's) || the requesting administrator's staff_id.
 * The grant's messages keep version 2's words exactly: they are part of
 * the audit chain, and a replica of either build must write the same. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ID_ADMIN (1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN)
#define KEY_MAX (KYUFU_STAFF_ID_BYTES_MAX + 2)
#define VAL_HEAD 12u
/* `what` of a kind other than the grant ("password reset", "status
 * change"), and what names it with its account in the messages. */
#define WHAT_BYTES_MAX 16u
#define OF_ADMIN " of ID administrator "
#define FULL_BYTES_MAX (WHAT_BYTES_MAX + sizeof OF_ADMIN - 1 + KYUFU_STAFF_ID_BYTES_MAX)
/* The longest message, the pending one, holds the whole account id. */
_Static_assert(sizeof "pending: a second ID administrator must confirm the " - 1 +
                       FULL_BYTES_MAX <
                   KYUFU_MESSAGE_BYTES_MAX,
               "a pending request's message names its account whole");
_Static_assert(WHAT_BYTES_MAX + sizeof " confirmed (first by )" - 1 +
                       KYUFU_STAFF_ID_BYTES_MAX <
                   KYUFU_MESSAGE_BYTES_MAX,
               "a completion's message names the first administrator whole");

static size_t pair_key(uint8_t out[KEY_MAX], const char *target, int kind)
{
    size_t n = strlen(target);
    KYUFU_ASSERT(n >= 1 && n <= KYUFU_STAFF_ID_BYTES_MAX);
    memcpy(out, target, n);
    if (kind == KYUFU_PAIR_GRANT) {
        return n;
    }
    out[n] = 0;
    out[n + 1] = (uint8_t)kind;
    return n + 2;
}

static bool known_kind(int kind)
{
    return kind == KYUFU_PAIR_PASSWORD || kind == KYUFU_PAIR_TOTP ||
           kind == KYUFU_PAIR_UNLOCK || kind == KYUFU_PAIR_STATUS ||
           kind == KYUFU_PAIR_ROLES;
}

bool kyufu_storage__pending_valid(const void *key, size_t key_len,
                                  const void *val, size_t val_len)
{
    const uint8_t *k = key;
    const uint8_t *nul = memchr(k, 0, key_len);
    int kind = KYUFU_PAIR_GRANT;
    size_t id_len = key_len;
    if (nul != NULL) {
        id_len = (size_t)(nul - k);
        if (key_len != id_len + 2 || !known_kind(k[key_len - 1])) {
            return false;
        }
        kind = k[key_len - 1];
    }
    if (id_len == 0 || id_len > KYUFU_STAFF_ID_BYTES_MAX ||
        val_len < VAL_HEAD + 1 || val_len > VAL_HEAD + KYUFU_STAFF_ID_BYTES_MAX) {
        return false;
    }
    uint32_t param = kyufu_storage__get_u32(val);
    switch (kind) {
    case KYUFU_PAIR_GRANT:
    case KYUFU_PAIR_ROLES:
        return kyufu_storage__valid_roles(param);
    case KYUFU_PAIR_STATUS:
        return param == KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE ||
               param == KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED ||
               param == KYUFU__V1__STAFF_STATUS__STAFF_DISABLED;
    default:
        return param == 0;
    }
}

/* Whether the pending request `v` is one that c completes: same
 * parameter, still fresh (version 3), made by another administrator who
 * still is an active one (*yes), or a store error. */
static int completes(struct kyufu_storage__cmd *c, const MDB_val *v,
                     uint32_t param, bool *yes)
{
    *yes = false;
    const char *by = (const char *)v->mv_data + VAL_HEAD;
    size_t by_len = v->mv_size - VAL_HEAD;
    int64_t at = (int64_t)kyufu_storage__get_u64((const uint8_t *)v->mv_data + 4);
    bool other = by_len != strlen(c->actor) || memcmp(by, c->actor, by_len) != 0;
    bool fresh = !c->admin_pair ||
                 (c->now_ms >= at && c->now_ms - at <= KYUFU_ADMIN_PENDING_MS);
    if (kyufu_storage__get_u32(v->mv_data) != param || !other || !fresh) {
        return 0;
    }
    char by_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    Kyufu__V1__StaffAccount *g = NULL;
    memcpy(by_id, by, by_len);
    by_id[by_len] = '\0';
    int rv = kyufu_storage__get_staff(c->s, c->txn, by_id, &g);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    *yes = rv == 0 && g->status == KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE &&
           (g->roles_mask & ID_ADMIN) != 0;
    if (g != NULL) {
        kyufu__v1__staff_account__free_unpacked(g, NULL);
    }
    return 0;
}

int kyufu_storage__two_admins(struct kyufu_storage__cmd *c, const char *target,
                              int kind, uint32_t param, const char *what,
                              bool *go)
{
    size_t admins = 0;
    uint8_t kb[KEY_MAX];
    *go = false;
    int rv = kyufu_storage__count_id_admins(c->s, c->txn, &admins);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {pair_key(kb, target, kind), kb};
    MDB_val v;
    /* The grant's words are version 2's; the others name the account (the
     * confirmation needs not: the audit record's object names it). */
    char full[FULL_BYTES_MAX + 1];
    KYUFU_ASSERT(kind == KYUFU_PAIR_GRANT || strlen(what) <= WHAT_BYTES_MAX);
    snprintf(full, sizeof full, "%s%s%s", what,
             kind == KYUFU_PAIR_GRANT ? "" : OF_ADMIN,
             kind == KYUFU_PAIR_GRANT ? "" : target);
    if (admins <= 1) {
        *go = true;
        c->audit_set = true;
        c->audit_code = KYUFU__V1__CODE__OK;
        if (kind == KYUFU_PAIR_GRANT) { /* version 2's words, kept */
            snprintf(c->audit_message, sizeof c->audit_message,
                     "ID administrator granted by the only ID "
                     "administrator");
        } else {
            snprintf(c->audit_message, sizeof c->audit_message,
                     "%s by the only ID administrator", full);
        }
        int mrv = mdb_del(c->txn, c->s->dbi[KYUFU_DB_ADMIN_GRANT], &k, NULL);
        return mrv == MDB_NOTFOUND ? 0 : kyufu_storage__mdb_error(mrv);
    }
    int mrv = mdb_get(c->txn, c->s->dbi[KYUFU_DB_ADMIN_GRANT], &k, &v);
    if (mrv != 0 && mrv != MDB_NOTFOUND) {
        return kyufu_storage__mdb_error(mrv);
    }
    if (mrv == 0) {
        if (!kyufu_storage__pending_valid(k.mv_data, k.mv_size, v.mv_data,
                                          v.mv_size)) {
            return KYUFU_STORAGE_ECORRUPT;
        }
        bool yes = false;
        rv = completes(c, &v, param, &yes);
        if (rv != 0) {
            return rv;
        }
        if (yes) {
            *go = true;
            c->audit_set = true;
            c->audit_code = KYUFU__V1__CODE__OK;
            snprintf(c->audit_message, sizeof c->audit_message,
                     "%s confirmed (first by %.*s)",
                     kind == KYUFU_PAIR_GRANT ? "ID administrator grant" : what,
                     (int)(v.mv_size - VAL_HEAD),
                     (const char *)v.mv_data + VAL_HEAD);
            return kyufu_storage__mdb_error(
                mdb_del(c->txn, c->s->dbi[KYUFU_DB_ADMIN_GRANT], &k, NULL));
        }
    }
    uint8_t val[VAL_HEAD + KYUFU_STAFF_ID_BYTES_MAX];
    size_t alen = strlen(c->actor);
    KYUFU_ASSERT(alen >= 1 && alen <= KYUFU_STAFF_ID_BYTES_MAX);
    kyufu_storage__put_u32(val, param);
    kyufu_storage__put_u64(val + 4, (uint64_t)c->now_ms);
    memcpy(val + VAL_HEAD, c->actor, alen);
    MDB_val nv = {VAL_HEAD + alen, val};
    rv = kyufu_storage__mdb_error(
        mdb_put(c->txn, c->s->dbi[KYUFU_DB_ADMIN_GRANT], &k, &nv, 0));
    if (rv != 0) {
        return rv;
    }
    c->keep_on_reject = true;
    return kyufu_storage__reject(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                                 "pending: a second ID administrator must "
                                 "confirm the %s",
                                 full);
}

int kyufu_storage__admin_pair(struct kyufu_storage__cmd *c,
                              const Kyufu__V1__StaffAccount *target, int kind,
                              uint32_t param, const char *what, bool *go)
{
    KYUFU_ASSERT(kind != KYUFU_PAIR_GRANT && known_kind(kind));
    *go = true;
    if (!c->admin_pair || (target->roles_mask & ID_ADMIN) == 0) {
        return 0;
    }
    return kyufu_storage__two_admins(c, target->staff_id, kind, param, what,
                                     go);
}

int kyufu_storage__pending_drop(struct kyufu_storage__cmd *c,
                                const char *target)
{
    static const int kinds[] = {KYUFU_PAIR_GRANT,  KYUFU_PAIR_PASSWORD,
                                KYUFU_PAIR_TOTP,   KYUFU_PAIR_UNLOCK,
                                KYUFU_PAIR_STATUS, KYUFU_PAIR_ROLES};
    uint8_t kb[KEY_MAX];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        MDB_val k = {pair_key(kb, target, kinds[i]), kb};
        int mrv = mdb_del(c->txn, c->s->dbi[KYUFU_DB_ADMIN_GRANT], &k, NULL);
        if (mrv != 0 && mrv != MDB_NOTFOUND) {
            return kyufu_storage__mdb_error(mrv);
        }
    }
    return 0;
}
