/* Household commands: RegisterHousehold, UpdateHousehold (legacy whole
 * record replace) and UpdateHouseholdFields (field mask and expected
 * version: the API's UpdateHousehold since issue 14).  Personal data: stored
 * only through the household seam in records.c. */
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject

static int check(struct kyufu_storage__cmd *c, const Kyufu__V1__Household *h)
{
    const char *why;
    if (h == NULL) {
        return REJECT(c, INVALID, "household is required");
    }
    why = kyufu_storage__check_household_fields(h);
    if (why != NULL) {
        return REJECT(c, INVALID, "%s", why);
    }
    return 0;
}

static int store(struct kyufu_storage__cmd *c, const Kyufu__V1__Household *h)
{
    int rv = kyufu_storage__put_household(c->s, c->txn, h);
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 11, &h->base);
    }
    return rv;
}

int kyufu_storage__register_household(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Household *in = c->cmd->register_household->household;
    Kyufu__V1__Household *old = NULL;
    int rv = check(c, in);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    rv = kyufu_storage__get_household(c->s, c->txn, in->household_no, &old);
    if (rv == 0) {
        kyufu__v1__household__free_unpacked(old, NULL);
        return REJECT(c, KYUFU__V1__CODE__ALREADY_EXISTS,
                      "household %s exists", in->household_no);
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    Kyufu__V1__Household h = *in; /* shallow: borrowed from the command */
    h.registered_ms = c->now_ms;
    h.updated_ms = c->now_ms;
    h.version = 1;
    return store(c, &h);
}

/* Applied only for entries proposed by a version before the field mask;
 * this version never proposes one (node/service.c maps the RPC to
 * update_household_fields).  Kept as it was so that such an entry applies
 * the same on every replica. */
int kyufu_storage__update_household(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Household *in = c->cmd->update_household->household;
    Kyufu__V1__Household *old = NULL;
    int rv = check(c, in);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    rv = kyufu_storage__get_household(c->s, c->txn, in->household_no, &old);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no household %s",
                      in->household_no);
    }
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__Household h = *in;
    h.registered_ms = old->registered_ms;
    h.updated_ms = c->now_ms;
    h.version = old->version + 1;
    rv = store(c, &h);
    kyufu__v1__household__free_unpacked(old, NULL);
    return rv;
}

/* ------------------------------------------------- masked, versioned update */

enum path_id
{
    P_HEAD_NAME,
    P_MEMBER_NAMES,
    P_ADDRESS,
    P_BANK,
    P_BANK_CODE,
    P_BRANCH_CODE,
    P_ACCOUNT_TYPE,
    P_ACCOUNT_NO,
    P_HOLDER_KANA,
    N_PATHS
};

static const char *const paths[N_PATHS] = {
    [P_HEAD_NAME] = "head_name",
    [P_MEMBER_NAMES] = "member_names",
    [P_ADDRESS] = "address",
    [P_BANK] = "bank",
    [P_BANK_CODE] = "bank.bank_code",
    [P_BRANCH_CODE] = "bank.branch_code",
    [P_ACCOUNT_TYPE] = "bank.account_type",
    [P_ACCOUNT_NO] = "bank.account_no",
    [P_HOLDER_KANA] = "bank.holder_kana",
};
_Static_assert(N_PATHS == KYUFU_UPDATE_MASK_PATHS_MAX,
               "the mask limit is the number of updatable paths");

/* A refused path as the refusal quotes it (and the audit record keeps it):
 * at most len - 1 bytes, printable ASCII only, others as '?', so a cut never
 * splits a UTF-8 character (readers that check UTF-8 would refuse the
 * whole result or audit page). */
static void echo_path(const char *p, char *out, size_t len)
{
    size_t n = 0;
    KYUFU_ASSERT(len > 0);
    for (; p != NULL && p[n] != '\0' && n + 1 < len; n++) {
        unsigned char ch = (unsigned char)p[n];
        out[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
}

/* The mask as a set of path ids; 0 with c->code set on a bad mask. */
static int parse_mask(struct kyufu_storage__cmd *c,
                      const Kyufu__V1__UpdateHousehold *u,
                      unsigned *set)
{
    *set = 0;
    if (u->n_update_mask == 0) {
        return REJECT(c, INVALID, "update_mask is required: name the fields "
                                  "to change (e.g. \"address\")");
    }
    if (u->n_update_mask > KYUFU_UPDATE_MASK_PATHS_MAX) {
        return REJECT(c, INVALID, "update_mask has %zu paths, at most %u",
                      u->n_update_mask, KYUFU_UPDATE_MASK_PATHS_MAX);
    }
    for (size_t i = 0; i < u->n_update_mask; i++) {
        const char *p = u->update_mask[i];
        unsigned k = 0;
        while (k < N_PATHS && (p == NULL || strcmp(p, paths[k]) != 0)) {
            k++;
        }
        if (k == N_PATHS) {
            char echo[41];
            echo_path(p, echo, sizeof echo);
            return REJECT(c, INVALID, "update_mask path \"%s\" is not an "
                          "updatable field", echo);
        }
        if ((*set & (1u << k)) != 0) {
            return REJECT(c, INVALID, "update_mask names \"%s\" twice",
                          paths[k]);
        }
        *set |= 1u << k;
    }
    const unsigned bank_parts = (1u << P_BANK_CODE) | (1u << P_BRANCH_CODE) |
                                (1u << P_ACCOUNT_TYPE) | (1u << P_ACCOUNT_NO) |
                                (1u << P_HOLDER_KANA);
    if ((*set & (1u << P_BANK)) != 0 && (*set & bank_parts) != 0) {
        return REJECT(c, INVALID, "update_mask names \"bank\" and a field "
                                  "of it");
    }
    KYUFU_ASSERT(*set != 0);
    return 0;
}

#define TAKE(id, dst, src)                                                   \
    do {                                                                     \
        if ((set & (1u << (id))) != 0) {                                     \
            (dst) = (src);                                                   \
        }                                                                    \
    } while (0)

int kyufu_storage__update_household_fields(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__UpdateHousehold *u = c->cmd->update_household_fields;
    const Kyufu__V1__Household *in = u->household;
    Kyufu__V1__Household *old = NULL;
    unsigned set;
    if (in == NULL) {
        return REJECT(c, INVALID, "household is required");
    }
    if (!kyufu_storage__valid_household_no(in->household_no)) {
        return REJECT(c, INVALID, "household_no must be 1..32 of [A-Za-z0-9-]");
    }
    int rv = parse_mask(c, u, &set);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    if (u->expected_version == 0) {
        return REJECT(c, INVALID, "expected_version is required: the version "
                                  "of the household as you read it");
    }
    rv = kyufu_storage__get_household(c->s, c->txn, in->household_no, &old);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no household %s",
                      in->household_no);
    }
    if (rv != 0) {
        return rv;
    }
    KYUFU_ASSERT(old->version > 0);
    if (old->version != u->expected_version) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "household %s is at version %llu, not %llu: read it "
                    "again", in->household_no,
                    (unsigned long long)old->version,
                    (unsigned long long)u->expected_version);
        goto out_old;
    }
    /* Shallow merge: pointers borrowed from old and from the command, both
     * alive until store() has packed the result. */
    Kyufu__V1__Household h = *old;
    Kyufu__V1__BankAccount b = KYUFU__V1__BANK_ACCOUNT__INIT;
    Kyufu__V1__BankAccount none = KYUFU__V1__BANK_ACCOUNT__INIT;
    const Kyufu__V1__BankAccount *ib = in->bank != NULL ? in->bank : &none;
    if (old->bank != NULL) {
        b = *old->bank;
    }
    TAKE(P_HEAD_NAME, h.head_name, in->head_name);
    if ((set & (1u << P_MEMBER_NAMES)) != 0) {
        h.n_member_names = in->n_member_names;
        h.member_names = in->member_names;
    }
    TAKE(P_ADDRESS, h.address, in->address);
    TAKE(P_BANK_CODE, b.bank_code, ib->bank_code);
    TAKE(P_BRANCH_CODE, b.branch_code, ib->branch_code);
    TAKE(P_ACCOUNT_TYPE, b.account_type, ib->account_type);
    TAKE(P_ACCOUNT_NO, b.account_no, ib->account_no);
    TAKE(P_HOLDER_KANA, b.holder_kana, ib->holder_kana);
    h.bank = &b;
    if ((set & (1u << P_BANK)) != 0) {
        h.bank = in->bank; /* NULL: refused by the field check below */
    }
    const char *why = kyufu_storage__check_household_fields(&h);
    if (why != NULL) {
        rv = REJECT(c, INVALID, "%s", why);
        goto out_old;
    }
    h.updated_ms = c->now_ms;
    h.version = old->version + 1;
    rv = store(c, &h);
out_old:
    kyufu__v1__household__free_unpacked(old, NULL);
    return rv;
}
#undef TAKE
