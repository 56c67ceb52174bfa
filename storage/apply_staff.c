/* Staff commands: CreateStaff, SetStaffRoles, SetStaffStatus.  Nobody
 * changes their own roles or status (invariant 4); the bootstrap rule (the
 * first ID administrator creates itself) is checked in apply.c. */
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject
#define SS(x) KYUFU__V1__STAFF_STATUS__STAFF_##x

static int store(struct kyufu_storage__cmd *c,
                 const Kyufu__V1__StaffAccount *old,
                 const Kyufu__V1__StaffAccount *a)
{
    if (old != NULL) {
        KYUFU_ASSERT(strcmp(a->staff_id, c->actor) != 0);
        KYUFU_ASSERT(kyufu_storage__staff_transition_ok(old->status,
                                                        a->status));
    }
    int rv = kyufu_storage__put_staff(c->s, c->txn, a);
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 14, &a->base);
    }
    return rv;
}

int kyufu_storage__create_staff(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__CreateStaff *b = c->cmd->create_staff;
    Kyufu__V1__StaffAccount *old = NULL;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (!kyufu_storage__valid_text(b->display_name, 1, KYUFU_NAME_BYTES_MAX)) {
        return REJECT(c, INVALID, "display_name must be 1..200 bytes of text");
    }
    if (!kyufu_storage__valid_roles(b->roles_mask)) {
        return REJECT(c, INVALID, "invalid role set 0x%x", b->roles_mask);
    }
    int rv = kyufu_storage__get_staff(c->s, c->txn, b->staff_id, &old);
    if (rv == 0) {
        kyufu__v1__staff_account__free_unpacked(old, NULL);
        return REJECT(c, KYUFU__V1__CODE__ALREADY_EXISTS, "staff %s exists",
                      b->staff_id);
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    Kyufu__V1__StaffAccount a = KYUFU__V1__STAFF_ACCOUNT__INIT;
    a.staff_id = b->staff_id;
    a.display_name = b->display_name;
    a.roles_mask = b->roles_mask;
    a.status = SS(ACTIVE);
    a.created_ms = c->now_ms;
    a.created_by = (char *)c->actor;
    a.updated_ms = c->now_ms;
    return store(c, NULL, &a);
}

/* The role step's extra rule (target ≠ actor) comes before the fields. */
static int not_self(struct kyufu_storage__cmd *c, const char *id)
{
    if (id != NULL && strcmp(id, c->actor) == 0) {
        return REJECT(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                      "no one changes their own roles or status");
    }
    return 0;
}

static int load_other(struct kyufu_storage__cmd *c,
                      const char *id,
                      Kyufu__V1__StaffAccount **out)
{
    *out = NULL;
    int rv = kyufu_storage__get_staff(c->s, c->txn, id, out);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no staff %s", id);
    }
    return rv;
}

int kyufu_storage__set_staff_roles(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__SetStaffRoles *b = c->cmd->set_staff_roles;
    Kyufu__V1__StaffAccount *old;
    not_self(c, b->staff_id);
    if (c->code != KYUFU__V1__CODE__OK) {
        return 0;
    }
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (!kyufu_storage__valid_roles(b->roles_mask)) {
        return REJECT(c, INVALID, "invalid role set 0x%x", b->roles_mask);
    }
    int rv = load_other(c, b->staff_id, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    Kyufu__V1__StaffAccount a = *old;
    a.roles_mask = b->roles_mask;
    a.updated_ms = c->now_ms;
    rv = store(c, old, &a);
    kyufu__v1__staff_account__free_unpacked(old, NULL);
    return rv;
}

int kyufu_storage__set_staff_status(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__SetStaffStatus *b = c->cmd->set_staff_status;
    Kyufu__V1__StaffAccount *old;
    not_self(c, b->staff_id);
    if (c->code != KYUFU__V1__CODE__OK) {
        return 0;
    }
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (b->status != SS(ACTIVE) && b->status != SS(SUSPENDED) &&
        b->status != SS(DISABLED)) {
        return REJECT(c, INVALID, "status must be ACTIVE, SUSPENDED or "
                                  "DISABLED");
    }
    int rv = load_other(c, b->staff_id, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    if (old->status == SS(DISABLED)) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "staff %s is disabled (final)", b->staff_id);
    } else {
        Kyufu__V1__StaffAccount a = *old;
        a.status = b->status;
        a.updated_ms = c->now_ms;
        rv = store(c, old, &a);
    }
    kyufu__v1__staff_account__free_unpacked(old, NULL);
    return rv;
}
