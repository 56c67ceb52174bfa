/* Identity commands on accounts (issue 8; identity.proto, docs/identity.md):
 * SetPassword, SignInFailed, EnrollTotp, ConfirmTotp, UnlockStaff,
 * ResetTotp, PurgeStaff, BootstrapAdmin.
 *
 * All are proposed by a node after the work that needs a secret or a clock
 * (hashing, code checks) was done off the loop; these handlers check only
 * what is deterministic: the account's state, the actor, single use of a
 * TOTP step, the credential not having changed.  Their actor rules are
 * their own (command_def.identity): the account itself for its password
 * and TOTP, an ID administrator for a reset, unlock or TOTP reset (two of
 * them when the account is an ID administrator itself, from cluster
 * version 3: apply_admin_pair.c), a node for the leader's purge.  Messages name fields and states, never a secret
 * (no hash, salt or TOTP secret is ever formatted).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define PRECOND KYUFU__V1__CODE__FAILED_PRECONDITION
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define REJECT kyufu_storage__reject
#define SS(x) KYUFU__V1__STAFF_STATUS__STAFF_##x
#define ID_ADMIN (1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN)
/* Lockout policy bounds apply accepts (the node's [auth] config). */
#define LOCK_AFTER_MAX 1000u
#define LOCK_MS_MAX ((int64_t)30 * 24 * 60 * 60 * 1000)

static const char *status_name(Kyufu__V1__StaffStatus st)
{
    switch (st) {
    case SS(ACTIVE):
        return "active";
    case SS(SUSPENDED):
        return "suspended";
    case SS(DISABLED):
        return "disabled";
    case SS(PURGED):
        return "purged";
    default:
        return "in no known state";
    }
}

static void free_both(Kyufu__V1__StaffAccount *a, Kyufu__V1__Credential *cr)
{
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    if (cr != NULL) {
        kyufu__v1__credential__free_unpacked(cr, NULL);
    }
}

static bool same_hash(const Kyufu__V1__PasswordHash *a,
                      const Kyufu__V1__PasswordHash *b)
{
    return a != NULL && b != NULL && a->iterations == b->iterations &&
           a->salt.len == b->salt.len && a->hash.len == b->hash.len &&
           memcmp(a->salt.data, b->salt.data, a->salt.len) == 0 &&
           memcmp(a->hash.data, b->hash.data, a->hash.len) == 0;
}

/* The account, which must be ACTIVE, and its credential, which must
 * exist: for the commands of a signed-in (or signing-in) person. */
static int load_active(struct kyufu_storage__cmd *c, const char *staff_id,
                       Kyufu__V1__StaffAccount **a, Kyufu__V1__Credential **cr)
{
    int rv = kyufu_storage__id_load(c, staff_id, a, cr);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    if ((*a)->status != SS(ACTIVE)) {
        return REJECT(c, PRECOND, "account %s is %s", staff_id,
                      status_name((*a)->status));
    }
    if (*cr == NULL) {
        return REJECT(c, PRECOND, "account %s has no credential", staff_id);
    }
    return 0;
}

/* ------------------------------------------------------------ SetPassword */

int kyufu_storage__set_password(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__SetPassword *b = c->cmd->set_password;
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cr = NULL;
    Kyufu__V1__PasswordHash **prev = NULL;
    const char *why;
    int rv;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if ((why = kyufu_storage__check_password_hash(b->password)) != NULL) {
        return REJECT(c, INVALID, "%s", why);
    }
    if (b->history > KYUFU_PW_HISTORY_MAX) {
        return REJECT(c, INVALID, "history must be 0..%u",
                      KYUFU_PW_HISTORY_MAX);
    }
    /* Its owner's change, or an ID administrator's reset (temporary). */
    bool own = strcmp(c->actor, b->staff_id) == 0;
    if (!own) {
        if (!b->temporary) {
            return REJECT(c, DENIED, "another account's password is only "
                                     "reset as a temporary one");
        }
        rv = kyufu_storage__id_admin_actor(c, b->staff_id);
        if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
            return rv;
        }
    }
    rv = kyufu_storage__id_load(c, b->staff_id, &a, &cr);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        goto out;
    }
    if (a->status == SS(DISABLED) || a->status == SS(PURGED) ||
        (own && a->status != SS(ACTIVE))) {
        rv = REJECT(c, PRECOND, "account %s is %s", b->staff_id,
                    status_name(a->status));
        goto out;
    }
    /* An account made before the identity rules has no credential yet. */
    Kyufu__V1__Credential none = KYUFU__V1__CREDENTIAL__INIT;
    none.staff_id = b->staff_id;
    const Kyufu__V1__Credential *cur = cr != NULL ? cr : &none;
    if (same_hash(cur->password, b->password) &&
        cur->must_change == b->temporary) {
        goto out; /* a retried proposal that was applied: nothing to do */
    }
    if (!own) {
        bool go = false;
        rv = kyufu_storage__admin_pair(c, a, KYUFU_PAIR_PASSWORD, 0,
                                          "password reset", &go);
        if (rv != 0 || !go) {
            goto out;
        }
    }
    /* previous: the old hash first, then the old history, at most
     * `history` in all (borrowed pointers; the record owns them). */
    size_t keep = 0;
    prev = calloc(KYUFU_PW_HISTORY_MAX + 1, sizeof *prev);
    if (prev == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto out;
    }
    if (cur->password != NULL && keep < b->history) {
        prev[keep++] = cur->password;
    }
    for (size_t i = 0; i < cur->n_previous && keep < b->history; i++) {
        prev[keep++] = cur->previous[i];
    }
    Kyufu__V1__Credential next = *cur;
    next.password = b->password;
    next.previous = prev;
    next.n_previous = keep;
    next.password_set_ms = c->now_ms;
    next.must_change = b->temporary;
    next.failures = 0;
    next.locked_until_ms = 0;
    rv = kyufu_storage__put_credential(c->s, c->txn, &next);
    if (rv == 0) {
        rv = kyufu_storage__close_staff_sessions(c->s, c->txn, b->staff_id,
                                                 NULL);
    }
out:
    free(prev);
    free_both(a, cr);
    return rv;
}

/* ------------------------------------------------------------ SignInFailed */

int kyufu_storage__sign_in_failed(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__SignInFailed *b = c->cmd->sign_in_failed;
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cr = NULL;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (!kyufu_storage__valid_printable(b->reason, 1,
                                        KYUFU_AUTH_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "reason must be 1..64 printable bytes");
    }
    if (b->lock_after == 0 || b->lock_after > LOCK_AFTER_MAX ||
        b->lock_ms < 0 || b->lock_ms > LOCK_MS_MAX) {
        return REJECT(c, INVALID, "lock_after must be 1..1000 and lock_ms "
                                  "0..30 days");
    }
    int rv = kyufu_storage__id_self(c, b->staff_id, true);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    /* The record of a refused sign-in: the command is applied (OK), its
     * audit record says refused, with the reason (never the secret). */
    c->audit_set = true;
    c->audit_code = KYUFU__V1__CODE__PERMISSION_DENIED;
    rv = kyufu_storage__get_staff(c->s, c->txn, b->staff_id, &a);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        kyufu_storage__errmsg(c->audit_message, sizeof c->audit_message,
                              "sign-in refused: %s (no such account)",
                              b->reason);
        return 0;
    }
    if (rv == 0) {
        rv = kyufu_storage__get_credential(c->s, c->txn, b->staff_id, &cr);
    }
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        kyufu_storage__errmsg(c->audit_message, sizeof c->audit_message,
                              "sign-in refused: %s", b->reason);
        rv = 0;
        goto out;
    }
    if (rv != 0) {
        goto out;
    }
    Kyufu__V1__Credential next = *cr;
    next.failures = cr->failures < UINT32_MAX ? cr->failures + 1 : UINT32_MAX;
    bool lock = next.failures >= b->lock_after;
    if (lock) {
        /* The header's time is only > 0: saturate, never overflow. */
        next.locked_until_ms = c->now_ms > INT64_MAX - b->lock_ms
                                   ? INT64_MAX
                                   : c->now_ms + b->lock_ms;
        kyufu_storage__errmsg(c->audit_message, sizeof c->audit_message,
                              "sign-in refused: %s; failure %u, locked "
                              "until %lld",
                              b->reason, (unsigned)next.failures,
                              (long long)next.locked_until_ms);
    } else {
        kyufu_storage__errmsg(c->audit_message, sizeof c->audit_message,
                              "sign-in refused: %s; failure %u", b->reason,
                              (unsigned)next.failures);
    }
    rv = kyufu_storage__put_credential(c->s, c->txn, &next);
out:
    free_both(a, cr);
    return rv;
}

/* ------------------------------------------------------------ TOTP */

int kyufu_storage__enroll_totp(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__EnrollTotp *b = c->cmd->enroll_totp;
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cr = NULL;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (b->secret.len < KYUFU_TOTP_SECRET_BYTES_MIN ||
        b->secret.len > KYUFU_TOTP_SECRET_BYTES_MAX) {
        return REJECT(c, INVALID, "TOTP secret must be 16..64 bytes");
    }
    int rv = kyufu_storage__id_self(c, b->staff_id, false);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = load_active(c, b->staff_id, &a, &cr);
    }
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        goto out;
    }
    if (cr->totp_confirmed) {
        rv = REJECT(c, PRECOND, "account %s has a confirmed TOTP secret (an "
                                "ID administrator resets it)",
                    b->staff_id);
        goto out;
    }
    Kyufu__V1__Credential next = *cr;
    next.totp_secret = b->secret;
    next.totp_confirmed = false;
    rv = kyufu_storage__put_credential(c->s, c->txn, &next);
out:
    free_both(a, cr);
    return rv;
}

int kyufu_storage__confirm_totp(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__ConfirmTotp *b = c->cmd->confirm_totp;
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cr = NULL;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (b->step == 0) {
        return REJECT(c, INVALID, "step must be > 0");
    }
    int rv = kyufu_storage__id_self(c, b->staff_id, false);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = load_active(c, b->staff_id, &a, &cr);
    }
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        goto out;
    }
    if (cr->totp_secret.len == 0 || cr->totp_confirmed) {
        rv = REJECT(c, PRECOND, "account %s has no TOTP secret to confirm",
                    b->staff_id);
        goto out;
    }
    if (b->step <= cr->totp_last_step) {
        rv = REJECT(c, DENIED, "TOTP code already used");
        goto out;
    }
    Kyufu__V1__Credential next = *cr;
    next.totp_confirmed = true;
    next.totp_last_step = b->step;
    rv = kyufu_storage__put_credential(c->s, c->txn, &next);
out:
    free_both(a, cr);
    return rv;
}

/* ------------------------------------------------------ ID administrator */

/* UnlockStaff and ResetTotp: an ID administrator on another account that
 * has a credential. */
static int admin_load(struct kyufu_storage__cmd *c, const char *staff_id,
                      Kyufu__V1__StaffAccount **a, Kyufu__V1__Credential **cr)
{
    *a = NULL;
    *cr = NULL;
    if (!kyufu_storage__valid_staff_id(staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    int rv = kyufu_storage__id_admin_actor(c, staff_id);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    rv = kyufu_storage__id_load(c, staff_id, a, cr);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    if ((*a)->status == SS(PURGED) || (*a)->status == SS(DISABLED)) {
        return REJECT(c, PRECOND, "account %s is %s", staff_id,
                      status_name((*a)->status));
    }
    if (*cr == NULL) {
        return REJECT(c, PRECOND, "account %s has no credential", staff_id);
    }
    return 0;
}

int kyufu_storage__unlock_staff(struct kyufu_storage__cmd *c)
{
    Kyufu__V1__StaffAccount *a;
    Kyufu__V1__Credential *cr;
    bool go = false;
    int rv = admin_load(c, c->cmd->unlock_staff->staff_id, &a, &cr);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = kyufu_storage__admin_pair(c, a, KYUFU_PAIR_UNLOCK, 0, "unlock",
                                      &go);
    }
    if (rv == 0 && go) {
        Kyufu__V1__Credential next = *cr;
        next.failures = 0;
        next.locked_until_ms = 0;
        rv = kyufu_storage__put_credential(c->s, c->txn, &next);
    }
    free_both(a, cr);
    return rv;
}

int kyufu_storage__reset_totp(struct kyufu_storage__cmd *c)
{
    Kyufu__V1__StaffAccount *a;
    Kyufu__V1__Credential *cr;
    bool go = false;
    int rv = admin_load(c, c->cmd->reset_totp->staff_id, &a, &cr);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = kyufu_storage__admin_pair(c, a, KYUFU_PAIR_TOTP, 0, "TOTP reset",
                                      &go);
    }
    if (rv == 0 && go) {
        Kyufu__V1__Credential next = *cr;
        next.totp_secret.data = NULL;
        next.totp_secret.len = 0;
        next.totp_confirmed = false;
        /* totp_last_step stays: steps only grow. */
        rv = kyufu_storage__put_credential(c->s, c->txn, &next);
        /* From version 3 the account is signed out everywhere, as by a
         * password reset: a session opened with the old factor ends. */
        if (rv == 0 && c->admin_pair) {
            rv = kyufu_storage__close_staff_sessions(c->s, c->txn,
                                                     a->staff_id, NULL);
        }
    }
    free_both(a, cr);
    return rv;
}

/* ------------------------------------------------------------ PurgeStaff */

int kyufu_storage__purge_staff(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__PurgeStaff *b = c->cmd->purge_staff;
    Kyufu__V1__StaffAccount *a = NULL;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (!kyufu_storage__is_node_name(c->actor)) {
        return REJECT(c, DENIED, "PurgeStaff is proposed by the leader, not "
                                 "by %s",
                      c->actor);
    }
    int rv = kyufu_storage__id_load(c, b->staff_id, &a, NULL);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        goto out;
    }
    /* The node judges the retention period; apply the state. */
    if (a->status != SS(DISABLED)) {
        rv = REJECT(c, PRECOND, "account %s is %s, not disabled", b->staff_id,
                    status_name(a->status));
        goto out;
    }
    rv = kyufu_storage__del_credential(c->s, c->txn, b->staff_id);
    if (rv == 0) {
        rv = kyufu_storage__close_staff_sessions(c->s, c->txn, b->staff_id,
                                                 NULL);
    }
    if (rv == 0) {
        rv = kyufu_storage__pending_drop(c, b->staff_id);
    }
    if (rv == 0) {
        /* Only the id (never reused: the record stays) and the state. */
        Kyufu__V1__StaffAccount p = KYUFU__V1__STAFF_ACCOUNT__INIT;
        p.staff_id = a->staff_id;
        p.status = SS(PURGED);
        p.updated_ms = c->now_ms;
        KYUFU_ASSERT(kyufu_storage__staff_transition_ok(a->status, p.status));
        rv = kyufu_storage__put_staff(c->s, c->txn, &p);
    }
out:
    free_both(a, NULL);
    return rv;
}

/* ------------------------------------------------------------ BootstrapAdmin */

int kyufu_storage__bootstrap_admin(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__BootstrapAdmin *b = c->cmd->bootstrap_admin;
    const char *why;
    MDB_stat st;
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return REJECT(c, INVALID, "staff_id must be 1..64 of [a-z0-9._-]");
    }
    if (!kyufu_storage__valid_text(b->display_name, 1, KYUFU_NAME_BYTES_MAX)) {
        return REJECT(c, INVALID, "display_name must be 1..200 bytes of text");
    }
    if ((why = kyufu_storage__check_password_hash(b->password)) != NULL) {
        return REJECT(c, INVALID, "%s", why);
    }
    /* Proposed by a node from its bootstrap-admin file; the actor is that
     * node or the new account itself. */
    if (!kyufu_storage__is_node_name(c->actor) &&
        strcmp(c->actor, b->staff_id) != 0) {
        return REJECT(c, DENIED, "BootstrapAdmin is proposed by a node");
    }
    int mrv = mdb_stat(c->txn, c->s->dbi[KYUFU_DB_STAFF], &st);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    if (st.ms_entries != 0) {
        return REJECT(c, PRECOND, "staff accounts exist: the first ID "
                                  "administrator was made already");
    }
    Kyufu__V1__StaffAccount a = KYUFU__V1__STAFF_ACCOUNT__INIT;
    a.staff_id = b->staff_id;
    a.display_name = b->display_name;
    a.roles_mask = ID_ADMIN;
    a.status = SS(ACTIVE);
    a.created_ms = c->now_ms;
    a.created_by = (char *)c->actor;
    a.updated_ms = c->now_ms;
    int rv = kyufu_storage__put_staff(c->s, c->txn, &a);
    if (rv == 0) {
        rv = kyufu_storage__new_credential(c, b->staff_id, b->password);
    }
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 14, &a.base);
    }
    return rv;
}
