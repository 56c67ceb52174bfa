/* Staff commands: CreateStaff, SetStaffRoles, SetStaffStatus.  Nobody
 * changes their own roles or status (invariant 4); the bootstrap rule of
 * version 1 (the first ID administrator creates itself) is checked in
 * apply.c.
 *
 * Identity rules (cluster version >= 2; docs/identity.md): CreateStaff
 * carries the temporary password's hash (made by the node) and creates the
 * credential with must_change; nobody creates or grants roles to their own
 * account; granting ROLE_ID_ADMIN takes two ID administrators: the first
 * grant is recorded as pending in db admin_grant (key: the target,
 * value roles u32 || time u64 || granting admin) and answered
 * FAILED_PRECONDITION, and the same grant (same target, same roles) from
 * another ID administrator applies it; when exactly one ID administrator
 * is active, that one grants alone (the audit record says so).
 * From cluster version 3 a roles or status change of an account that
 * holds ROLE_ID_ADMIN takes two ID administrators the same way
 * (apply_admin_pair.c holds the rule and the pending requests).
 * SetStaffStatus SUSPENDED or DISABLED closes the account's sign-in
 * sessions; DISABLED starts the purge clock (credential disabled_ms);
 * nothing leaves PURGED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject
#define SS(x) KYUFU__V1__STAFF_STATUS__STAFF_##x
#define ID_ADMIN (1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN)

/* The two-administrator rule for a grant that adds ROLE_ID_ADMIN to
 * `target` (roles: the whole new set; apply_admin_pair.c). */
static int admin_grant(struct kyufu_storage__cmd *c, const char *target,
                       uint32_t roles, bool *go)
{
    return kyufu_storage__two_admins(c, target, KYUFU_PAIR_GRANT, roles,
                                     "ID-administrator grant", go);
}

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
    bool identity = c->identity;
    if (identity) {
        const char *why =
            kyufu_storage__check_password_hash(b->temporary_password);
        if (strcmp(b->staff_id, c->actor) == 0) {
            return REJECT(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                          "no one creates their own account");
        }
        /* The nodes' own actors: a person named so could pass for one. */
        if (kyufu_storage__is_node_name(b->staff_id)) {
            return REJECT(c, INVALID,
                          "staff_id: the prefixes kyufu-node- and kyufud- "
                          "are reserved for the nodes");
        }
        if (why != NULL) {
            return REJECT(c, INVALID, "temporary_password: %s", why);
        }
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
    if (identity && (b->roles_mask & ID_ADMIN) != 0) {
        bool go = false;
        rv = admin_grant(c, b->staff_id, b->roles_mask, &go);
        if (rv != 0 || !go) {
            return rv;
        }
    }
    Kyufu__V1__StaffAccount a = KYUFU__V1__STAFF_ACCOUNT__INIT;
    a.staff_id = b->staff_id;
    a.display_name = b->display_name;
    a.roles_mask = b->roles_mask;
    a.status = SS(ACTIVE);
    a.created_ms = c->now_ms;
    a.created_by = (char *)c->actor;
    a.updated_ms = c->now_ms;
    if (identity) {
        rv = kyufu_storage__new_credential(c, b->staff_id,
                                           b->temporary_password);
        if (rv != 0) {
            return rv;
        }
    }
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
    if (old->status == SS(PURGED)) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "staff %s is purged", b->staff_id);
        goto out;
    }
    if (c->identity && (b->roles_mask & ID_ADMIN) != 0 &&
        (old->roles_mask & ID_ADMIN) == 0) {
        bool go = false;
        rv = admin_grant(c, b->staff_id, b->roles_mask, &go);
        if (rv != 0 || !go) {
            goto out;
        }
    }
    if (b->roles_mask != old->roles_mask) {
        bool go = false;
        rv = kyufu_storage__admin_pair(c, old, KYUFU_PAIR_ROLES, b->roles_mask,
                                      "roles change", &go);
        if (rv != 0 || !go) {
            goto out;
        }
    }
    if (rv == 0) {
        Kyufu__V1__StaffAccount a = *old;
        a.roles_mask = b->roles_mask;
        a.updated_ms = c->now_ms;
        rv = store(c, old, &a);
    }
out:
    kyufu__v1__staff_account__free_unpacked(old, NULL);
    return rv;
}

/* The purge clock starts (an account without a credential has none). */
static int disable_credential(struct kyufu_storage__cmd *c, const char *id)
{
    Kyufu__V1__Credential *cr = NULL;
    int rv = kyufu_storage__get_credential(c->s, c->txn, id, &cr);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__Credential next = *cr;
    next.disabled_ms = c->now_ms;
    rv = kyufu_storage__put_credential(c->s, c->txn, &next);
    kyufu__v1__credential__free_unpacked(cr, NULL);
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
    if (old->status == SS(DISABLED) || old->status == SS(PURGED)) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "staff %s is %s (final)", b->staff_id,
                    old->status == SS(DISABLED) ? "disabled" : "purged");
        goto out;
    }
    bool go = b->status == old->status;
    if (!go) {
        rv = kyufu_storage__admin_pair(c, old, KYUFU_PAIR_STATUS,
                                       (uint32_t)b->status, "status change",
                                       &go);
    }
    if (rv == 0 && go) {
        Kyufu__V1__StaffAccount a = *old;
        a.status = b->status;
        a.updated_ms = c->now_ms;
        rv = store(c, old, &a);
        /* Suspended or disabled: signed out everywhere. */
        if (rv == 0 && b->status != SS(ACTIVE)) {
            rv = kyufu_storage__close_staff_sessions(c->s, c->txn,
                                                     b->staff_id, NULL);
        }
        if (rv == 0 && b->status == SS(DISABLED)) {
            rv = disable_credential(c, b->staff_id);
        }
    }
out:
    kyufu__v1__staff_account__free_unpacked(old, NULL);
    return rv;
}
