/* Identity in the state machine (issue 8; docs/identity.md, storage.h
 * "identity"): accounts from bootstrap to purge, credentials, sign-in
 * sessions, lockout, single-use TOTP steps, password history, the role
 * rules (no self-grant, two ID administrators), idempotency keys bound to
 * their caller, the new databases in digests and snapshots, and no secret
 * in the audit trail.  Written from storage.h and docs/identity.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "storage_limits.h"

#define OK KYUFU__V1__CODE__OK
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define NOT_FOUND KYUFU__V1__CODE__NOT_FOUND
#define EXISTS KYUFU__V1__CODE__ALREADY_EXISTS
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define PRECOND KYUFU__V1__CODE__FAILED_PRECONDITION
#define SS(x) KYUFU__V1__STAFF_STATUS__STAFF_##x

/* ------------------------------------------------------------ helpers */

/* Apply c and free it; the result is the caller's. */
static Kyufu__V1__CommandResult *apply_take(struct fx *f,
                                            Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    kyufu__v1__command__free_unpacked(c, NULL);
    return r;
}

static Kyufu__V1__Code apply_code(struct fx *f, Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    Kyufu__V1__Code code = r->code;
    if (code != OK && (r->message == NULL || r->message[0] == '\0')) {
        t_fail(__FILE__, __LINE__, "rejection without a message");
    }
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
    fx_invariants(f);
    return code;
}
#define APPLY(f, c, want) CHECK_EQ(apply_code((f), (c)), (want))

static Kyufu__V1__Credential *cred(struct fx *f, const char *id)
{
    Kyufu__V1__Credential *cr = NULL;
    CHECK_EQ(kyufu_storage_get_credential(f->s, id, &cr), 0);
    return cr;
}

static size_t sessions_of(struct fx *f, const char *id)
{
    struct kyufu_storage_page p = {0};
    CHECK_EQ(kyufu_storage_list_staff_sessions(f->s, id, &p), 0);
    size_t n = p.n;
    kyufu_storage_page_free(&p);
    return n;
}

static bool has_session(struct fx *f, unsigned tok)
{
    uint8_t h[32];
    Kyufu__V1__AuthSession *a = NULL;
    fx_secret_bytes(tok, 'T', h, 32);
    int rv = kyufu_storage_get_auth_session(f->s, h, &a);
    CHECK(rv == 0 || rv == KYUFU_STORAGE_ENOTFOUND);
    if (a != NULL) {
        kyufu__v1__auth_session__free_unpacked(a, NULL);
    }
    return rv == 0;
}

static Kyufu__V1__AuditRecord *last_audit(struct fx *f)
{
    return fx_audit(f, fx_audit_count(f));
}

/* An account with a permanent password and a confirmed TOTP secret, as a
 * person has after their first sign-in (TOTP step 10 used). */
static void enrolled(struct fx *f, const char *id, uint32_t roles)
{
    fx_do(f, c_create_staff(f, "admin", id, roles));
    APPLY(f, c_open(f, id, 900, 0), OK);
    APPLY(f, c_set_password(f, id, id, 100, false), OK);
    APPLY(f, c_enroll(f, id, 1), OK);
    APPLY(f, c_confirm_totp(f, id, 10), OK);
}

/* ------------------------------------------------------------ bootstrap */

static void bootstrap_once(void)
{
    struct fx f;
    bool empty = false;
    fx_open(&f);
    /* At cluster version 1 the identity commands are not yet on. */
    APPLY(&f, c_bootstrap(&f, "admin", "admin"), PRECOND);
    fx_identity(&f);
    CHECK_EQ(kyufu_storage_staff_empty(f.s, &empty), 0);
    CHECK(empty);
    /* Nobody makes the first ID administrator with CreateStaff now. */
    fx_reject(&f, c_create_staff(&f, "root", "root", R_ADMIN), DENIED);
    /* BootstrapAdmin comes from a node (a node's key), well-formed. */
    Kyufu__V1__Command *c = c_bootstrap(&f, "admin", "admin");
    c_str(&c->header->key->client_id, "test-client");
    APPLY(&f, c, DENIED);
    c = c_bootstrap(&f, "kyufu-node-1", "admin");
    c->bootstrap_admin->password->hash.len = 31;
    APPLY(&f, c, INVALID);
    c = c_bootstrap(&f, "clerk", "admin"); /* neither node nor the account */
    APPLY(&f, c, DENIED);
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_bootstrap(&f, "kyufu-node-1", "admin"));
    CHECK_STR(r->object, "staff/admin");
    CHECK_EQ(r->staff->roles_mask, R_ADMIN);
    CHECK_EQ(r->staff->status, SS(ACTIVE));
    fx_free(r);
    CHECK_EQ(kyufu_storage_staff_empty(f.s, &empty), 0);
    CHECK(!empty);
    Kyufu__V1__Credential *cr = cred(&f, "admin");
    CHECK(cr->must_change);
    CHECK(cr->password != NULL && cr->password->hash.len == 32);
    CHECK(cr->password_set_ms > 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    /* Once. */
    APPLY(&f, c_bootstrap(&f, "kyufu-node-1", "admin"), PRECOND);
    APPLY(&f, c_bootstrap(&f, "kyufu-node-2", "other"), PRECOND);
    CHECK_EQ(kyufu_storage_get_staff(f.s, "other", &(Kyufu__V1__StaffAccount *){NULL}),
             KYUFU_STORAGE_ENOTFOUND);
    fx_close(&f);
}

static void create_staff_needs_temporary_password(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_create_staff(&f, "admin", "taro", R_CLERK);
    kyufu__v1__password_hash__free_unpacked(
        c->create_staff->temporary_password, NULL);
    c->create_staff->temporary_password = NULL;
    fx_reject(&f, c, INVALID);
    c = c_create_staff(&f, "admin", "taro", R_CLERK);
    c->create_staff->temporary_password->salt.len = 4;
    fx_reject(&f, c, INVALID);
    /* Nobody creates their own account. */
    fx_reject(&f, c_create_staff(&f, "admin", "admin", R_CLERK), DENIED);
    /* Nor takes a name the nodes act under. */
    fx_reject(&f, c_create_staff(&f, "admin", "kyufu-node-1", R_CLERK),
              INVALID);
    fx_reject(&f, c_create_staff(&f, "admin", "kyufud-2", R_CLERK), INVALID);
    fx_do(&f, c_create_staff(&f, "admin", "taro", R_CLERK));
    Kyufu__V1__Credential *cr = cred(&f, "taro");
    CHECK(cr->must_change);
    CHECK_EQ(cr->failures, 0);
    CHECK_EQ(cr->totp_secret.len, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    fx_close(&f);
}

/* ------------------------------------------------------------ lifecycle */

static void lifecycle(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* Provisioned: a temporary password; first sign-in is setup-only. */
    fx_do(&f, c_create_staff(&f, "admin", "hana", R_CLERK));
    APPLY(&f, c_open(&f, "hana", 1, 7), PRECOND); /* no TOTP yet */
    APPLY(&f, c_open(&f, "hana", 1, 0), OK);
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK_STR(a->command, "OpenSession");
    CHECK_STR(a->actor, "hana");
    CHECK(strncmp(a->object, "session/", 8) == 0);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    CHECK(has_session(&f, 1));
    /* Changes it: every session closes, the temporary flag goes. */
    APPLY(&f, c_set_password(&f, "hana", "hana", 100, false), OK);
    CHECK(!has_session(&f, 1));
    Kyufu__V1__Credential *cr = cred(&f, "hana");
    CHECK(!cr->must_change);
    CHECK_EQ(cr->n_previous, 1);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    /* TOTP: enrolled, confirmed; then a full sign-in. */
    APPLY(&f, c_open(&f, "hana", 2, 0), OK);
    APPLY(&f, c_enroll(&f, "hana", 1), OK);
    APPLY(&f, c_confirm_totp(&f, "hana", 10), OK);
    APPLY(&f, c_open(&f, "hana", 3, 11), OK);
    CHECK_EQ(sessions_of(&f, "hana"), 2);
    /* Suspended: signed out everywhere, no sign-in. */
    fx_do(&f, c_set_status(&f, "admin", "hana", SS(SUSPENDED)));
    CHECK_EQ(sessions_of(&f, "hana"), 0);
    APPLY(&f, c_open(&f, "hana", 4, 12), PRECOND);
    APPLY(&f, c_enroll(&f, "hana", 2), PRECOND);
    /* Reinstated. */
    fx_do(&f, c_set_status(&f, "admin", "hana", SS(ACTIVE)));
    APPLY(&f, c_open(&f, "hana", 4, 12), OK);
    /* Disabled: sessions closed, the purge clock starts, final. */
    int64_t t = f.now_ms;
    fx_do(&f, c_set_status(&f, "admin", "hana", SS(DISABLED)));
    CHECK_EQ(sessions_of(&f, "hana"), 0);
    cr = cred(&f, "hana");
    CHECK_EQ(cr->disabled_ms, t);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    fx_reject(&f, c_set_status(&f, "admin", "hana", SS(ACTIVE)), PRECOND);
    APPLY(&f, c_open(&f, "hana", 5, 13), PRECOND);
    APPLY(&f, c_set_password(&f, "admin", "hana", 101, true), PRECOND);
    /* Purge: by the leader only, of a disabled account. */
    struct kyufu_storage_page p = {0};
    CHECK_EQ(kyufu_storage_list_purgeable_staff(f.s, t - 1, 10, &p), 0);
    CHECK_EQ(p.n, 0);
    kyufu_storage_page_free(&p);
    CHECK_EQ(kyufu_storage_list_purgeable_staff(f.s, t, 10, &p), 0);
    CHECK_EQ(p.n, 1);
    CHECK_STR(((Kyufu__V1__StaffAccount *)p.items[0])->staff_id, "hana");
    kyufu_storage_page_free(&p);
    uint64_t history = fx_audit_count(&f);
    APPLY(&f, c_purge(&f, "admin", "hana"), DENIED);
    APPLY(&f, c_purge(&f, "kyufu-node-1", "clerk"), PRECOND); /* active */
    APPLY(&f, c_purge(&f, "kyufu-node-1", "nobody"), NOT_FOUND);
    APPLY(&f, c_purge(&f, "kyufu-node-1", "hana"), OK);
    Kyufu__V1__StaffAccount *s = fx_staff(&f, "hana");
    CHECK_EQ(s->status, SS(PURGED));
    CHECK_STR(s->display_name, "");
    CHECK_EQ(s->roles_mask, 0);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    Kyufu__V1__Credential *none = NULL;
    CHECK_EQ(kyufu_storage_get_credential(f.s, "hana", &none),
             KYUFU_STORAGE_ENOTFOUND);
    /* Nothing leaves PURGED; the id is never reused. */
    fx_reject(&f, c_set_status(&f, "admin", "hana", SS(ACTIVE)), PRECOND);
    fx_reject(&f, c_set_roles(&f, "admin", "hana", R_CLERK), PRECOND);
    fx_reject(&f, c_create_staff(&f, "admin", "hana", R_CLERK), EXISTS);
    APPLY(&f, c_purge(&f, "kyufu-node-1", "hana"), PRECOND);
    /* Its audit history stays. */
    size_t mentions = 0;
    for (uint64_t i = 1; i <= history; i++) {
        a = fx_audit(&f, i);
        mentions += strcmp(a->object, "staff/hana") == 0 ||
                    strcmp(a->actor, "hana") == 0;
        kyufu__v1__audit_record__free_unpacked(a, NULL);
    }
    CHECK(mentions >= 10);
    fx_close(&f);
}

/* ------------------------------------------------------------ lockout */

static void lockout(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    enrolled(&f, "ken", R_CLERK);
    for (int i = 1; i <= 4; i++) {
        APPLY(&f, c_failed(&f, "ken", "ken", "password"), OK);
        Kyufu__V1__Credential *cr = cred(&f, "ken");
        CHECK_EQ(cr->failures, (unsigned)i);
        CHECK_EQ(cr->locked_until_ms, 0);
        kyufu__v1__credential__free_unpacked(cr, NULL);
    }
    /* The audit record says refused, with the reason only. */
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK_STR(a->command, "SignInFailed");
    CHECK_EQ(a->outcome, DENIED);
    CHECK(strstr(a->message, "password") != NULL);
    CHECK_STR(a->object, "staff/ken");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    int64_t t = f.now_ms;
    APPLY(&f, c_failed(&f, "kyufu-node-1", "ken", "password"), OK);
    Kyufu__V1__Credential *cr = cred(&f, "ken");
    CHECK_EQ(cr->failures, 5);
    CHECK_EQ(cr->locked_until_ms, t + 15 * 60 * 1000);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    /* Locked: no sign-in even with the right password and code. */
    APPLY(&f, c_open(&f, "ken", 1, 20), PRECOND);
    /* Someone else's failure is not recorded by a third account; unknown
     * accounts are audited without state. */
    APPLY(&f, c_failed(&f, "clerk", "ken", "password"), DENIED);
    APPLY(&f, c_failed(&f, "kyufu-node-1", "nobody", "unknown account"), OK);
    /* Unlock: an ID administrator, not the account, not another role. */
    APPLY(&f, c_unlock(&f, "clerk", "ken"), DENIED);
    APPLY(&f, c_unlock(&f, "ken", "ken"), DENIED);
    APPLY(&f, c_unlock(&f, "admin", "nobody"), NOT_FOUND);
    APPLY(&f, c_unlock(&f, "admin", "ken"), OK);
    cr = cred(&f, "ken");
    CHECK_EQ(cr->failures, 0);
    CHECK_EQ(cr->locked_until_ms, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    APPLY(&f, c_open(&f, "ken", 1, 20), OK);
    /* A lock also ends by itself, judged by the stamped time. */
    for (int i = 0; i < 5; i++) {
        APPLY(&f, c_failed(&f, "ken", "ken", "totp"), OK);
    }
    APPLY(&f, c_open(&f, "ken", 2, 21), PRECOND);
    f.now_ms += 15 * 60 * 1000;
    APPLY(&f, c_open(&f, "ken", 2, 21), OK);
    cr = cred(&f, "ken");
    CHECK_EQ(cr->failures, 0); /* a sign-in clears the count */
    kyufu__v1__credential__free_unpacked(cr, NULL);
    fx_close(&f);
}

/* ------------------------------------------------------------ TOTP */

static void totp_step_single_use(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    enrolled(&f, "ken", R_CLERK); /* step 10 used */
    APPLY(&f, c_open(&f, "ken", 1, 10), DENIED);
    Kyufu__V1__Credential *cr = cred(&f, "ken");
    CHECK_EQ(cr->failures, 1); /* a replay counts, although refused */
    kyufu__v1__credential__free_unpacked(cr, NULL);
    CHECK(!has_session(&f, 1));
    APPLY(&f, c_open(&f, "ken", 1, 100), OK);
    APPLY(&f, c_open(&f, "ken", 2, 100), DENIED);
    APPLY(&f, c_open(&f, "ken", 2, 99), DENIED);
    APPLY(&f, c_open(&f, "ken", 2, 101), OK);
    cr = cred(&f, "ken");
    CHECK_EQ(cr->totp_last_step, 101);
    CHECK_EQ(cr->failures, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    /* The same token twice is refused. */
    APPLY(&f, c_open(&f, "ken", 2, 102), EXISTS);
    /* A confirmed secret is not replaced by its owner... */
    APPLY(&f, c_enroll(&f, "ken", 9), PRECOND);
    APPLY(&f, c_confirm_totp(&f, "ken", 200), PRECOND);
    /* ...but reset by an ID administrator (a lost phone), never by
     * another role or themselves. */
    APPLY(&f, c_reset_totp(&f, "clerk", "ken"), DENIED);
    APPLY(&f, c_reset_totp(&f, "ken", "ken"), DENIED);
    APPLY(&f, c_reset_totp(&f, "admin", "ken"), OK);
    cr = cred(&f, "ken");
    CHECK_EQ(cr->totp_secret.len, 0);
    CHECK(!cr->totp_confirmed);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    APPLY(&f, c_open(&f, "ken", 3, 103), PRECOND); /* setup only now */
    APPLY(&f, c_enroll(&f, "ken", 9), OK);
    /* Steps stay monotonic across the new secret. */
    APPLY(&f, c_confirm_totp(&f, "ken", 50), DENIED);
    APPLY(&f, c_confirm_totp(&f, "ken", 0), INVALID);
    Kyufu__V1__Command *c = c_confirm_totp(&f, "ken", 150);
    c_str(&c->header->actor, "clerk");
    APPLY(&f, c, DENIED);
    APPLY(&f, c_confirm_totp(&f, "ken", 150), OK);
    APPLY(&f, c_open(&f, "ken", 3, 151), OK);
    fx_close(&f);
}

/* ------------------------------------------------------------ passwords */

static void password_history_and_resets(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    enrolled(&f, "ken", R_CLERK); /* temporary, then 100 */
    for (unsigned seed = 101; seed <= 108; seed++) {
        APPLY(&f, c_set_password(&f, "ken", "ken", seed, false), OK);
    }
    Kyufu__V1__Credential *cr = cred(&f, "ken");
    CHECK_EQ(cr->n_previous, 5); /* the policy's history, no more */
    uint8_t want[32];
    for (size_t i = 0; i < 5; i++) { /* newest first: 107, 106, ... */
        fx_secret_bytes(107 - (unsigned)i, 'H', want, 32);
        CHECK(memcmp(cr->previous[i]->hash.data, want, 32) == 0);
    }
    int64_t set_ms = cr->password_set_ms;
    kyufu__v1__credential__free_unpacked(cr, NULL);
    /* A retried proposal that was applied changes nothing. */
    APPLY(&f, c_set_password(&f, "ken", "ken", 108, false), OK);
    CHECK_EQ(fx_password_set_ms(&f, "ken"), set_ms);
    /* Bounds. */
    Kyufu__V1__Command *c = c_set_password(&f, "ken", "ken", 109, false);
    c->set_password->history = KYUFU_PW_HISTORY_MAX + 1;
    APPLY(&f, c, INVALID);
    c = c_set_password(&f, "ken", "ken", 109, false);
    c->set_password->password->iterations = 0;
    APPLY(&f, c, INVALID);
    /* A sign-in checked against an older password is refused. */
    c = c_open(&f, "ken", 1, 20);
    c->open_session->password_set_ms -= 1;
    APPLY(&f, c, PRECOND);
    /* Resets: only an ID administrator, only as a temporary password. */
    APPLY(&f, c_set_password(&f, "clerk", "ken", 110, true), DENIED);
    APPLY(&f, c_set_password(&f, "admin", "ken", 110, false), DENIED);
    APPLY(&f, c_open(&f, "ken", 2, 21), OK);
    for (int i = 0; i < 5; i++) {
        APPLY(&f, c_failed(&f, "ken", "ken", "password"), OK);
    }
    APPLY(&f, c_set_password(&f, "admin", "ken", 110, true), OK);
    cr = cred(&f, "ken");
    CHECK(cr->must_change);
    CHECK_EQ(cr->failures, 0); /* and the lockout cleared */
    CHECK_EQ(cr->locked_until_ms, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    CHECK_EQ(sessions_of(&f, "ken"), 0); /* closed on the change */
    fx_close(&f);
}

/* ------------------------------------------------ two ID administrators */

/* The pending message and audit of the first administrator's request. */
static void pending(struct fx *f, Kyufu__V1__Command *c)
{
    uint64_t before = fx_audit_count(f);
    Kyufu__V1__CommandResult *r = apply_take(f, c);
    CHECK_CODE(r, PRECOND);
    CHECK(strncmp(r->message, "pending:", 8) == 0);
    fx_free(r);
    fx_invariants(f);
    CHECK_EQ(fx_audit_count(f), before + 1);
}

/* The completing request: applied, its audit names the first one. */
static void confirmed(struct fx *f, Kyufu__V1__Command *c, const char *first)
{
    Kyufu__V1__CommandResult *r = apply_take(f, c);
    CHECK_CODE(r, OK);
    fx_free(r);
    fx_invariants(f);
    Kyufu__V1__AuditRecord *a = last_audit(f);
    CHECK_EQ(a->outcome, OK);
    CHECK(strstr(a->message, "confirmed (first by ") != NULL);
    CHECK(strstr(a->message, first) != NULL);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
}

/* From cluster version 3 a reset, unlock, status or roles change of an
 * account that holds ID administrator takes two ID administrators (the
 * takeover: reset another administrator's password and TOTP, then sign in
 * as them).  Before it, the old rule holds (replay stays the same). */
static void admin_changes_need_two_admins(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f); /* admin, admin2: ID administrators */
    /* Version 2: one resets another alone, and its sessions stay. */
    APPLY(&f, c_open(&f, "admin2", 1, 0), OK);
    APPLY(&f, c_reset_totp(&f, "admin", "admin2"), OK);
    CHECK(has_session(&f, 1));
    fx_version(&f, FX_ADMIN_PAIR_VERSION);
    /* A third ID administrator, granted by two. */
    pending(&f, c_create_staff(&f, "admin", "admin3", R_ADMIN));
    confirmed(&f, c_create_staff(&f, "admin2", "admin3", R_ADMIN), "admin");
    /* A clerk's reset still takes one administrator. */
    enrolled(&f, "ken", R_CLERK);
    APPLY(&f, c_set_password(&f, "admin", "ken", 110, true), OK);

    /* Password reset of an ID administrator: pending, nothing changes. */
    int64_t set_ms = fx_password_set_ms(&f, "admin2");
    pending(&f, c_set_password(&f, "admin", "admin2", 111, true));
    CHECK_EQ(fx_password_set_ms(&f, "admin2"), set_ms);
    CHECK(has_session(&f, 1));
    /* Nobody completes their own (the repeat only renews it)... */
    pending(&f, c_set_password(&f, "admin", "admin2", 112, true));
    CHECK_EQ(fx_password_set_ms(&f, "admin2"), set_ms);
    /* ...nor acts on their own account... */
    APPLY(&f, c_reset_totp(&f, "admin2", "admin2"), DENIED);
    /* ...a non-administrator does not confirm... */
    APPLY(&f, c_set_password(&f, "clerk", "admin2", 113, true), DENIED);
    CHECK_EQ(fx_password_set_ms(&f, "admin2"), set_ms);
    /* ...another administrator does: signed out, a temporary password. */
    confirmed(&f, c_set_password(&f, "admin3", "admin2", 114, true), "admin");
    Kyufu__V1__Credential *cr = cred(&f, "admin2");
    uint8_t want[32];
    fx_secret_bytes(114, 'H', want, 32);
    CHECK(memcmp(cr->password->hash.data, want, 32) == 0);
    CHECK(cr->must_change);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    CHECK(!has_session(&f, 1));
    /* A retry of the completing proposal changes nothing and asks for
     * nothing. */
    APPLY(&f, c_set_password(&f, "admin3", "admin2", 114, true), OK);

    /* admin2 sets a password and enrolls TOTP; signs in fully. */
    APPLY(&f, c_open(&f, "admin2", 2, 0), OK);
    APPLY(&f, c_set_password(&f, "admin2", "admin2", 115, false), OK);
    APPLY(&f, c_open(&f, "admin2", 3, 0), OK);
    APPLY(&f, c_enroll(&f, "admin2", 2), OK);
    APPLY(&f, c_confirm_totp(&f, "admin2", 30), OK);
    APPLY(&f, c_open(&f, "admin2", 4, 31), OK);

    /* TOTP reset: pending; a request of another kind does not complete
     * it; then done, and the account is signed out. */
    pending(&f, c_reset_totp(&f, "admin", "admin2"));
    pending(&f, c_unlock(&f, "admin3", "admin2"));
    cr = cred(&f, "admin2");
    CHECK(cr->totp_confirmed);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    CHECK(has_session(&f, 4));
    confirmed(&f, c_reset_totp(&f, "admin3", "admin2"), "admin");
    cr = cred(&f, "admin2");
    CHECK(!cr->totp_confirmed);
    CHECK_EQ(cr->totp_secret.len, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    CHECK(!has_session(&f, 4));
    CHECK_EQ(sessions_of(&f, "admin2"), 0);

    /* Unlock: admin3's request above is pending; admin completes it. */
    for (int i = 0; i < 5; i++) {
        APPLY(&f, c_failed(&f, "kyufu-node-1", "admin2", "password"), OK);
    }
    cr = cred(&f, "admin2");
    CHECK(cr->locked_until_ms > 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    confirmed(&f, c_unlock(&f, "admin", "admin2"), "admin3");
    cr = cred(&f, "admin2");
    CHECK_EQ(cr->locked_until_ms, 0);
    CHECK_EQ(cr->failures, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);

    /* A pending request expires: past KYUFU_ADMIN_PENDING_MS the second
     * call is a new first one. */
    pending(&f, c_unlock(&f, "admin", "admin2"));
    f.now_ms += KYUFU_ADMIN_PENDING_MS + 1;
    pending(&f, c_unlock(&f, "admin3", "admin2"));
    confirmed(&f, c_unlock(&f, "admin", "admin2"), "admin3");

    /* A first request counts only while its administrator still is one. */
    pending(&f, c_reset_totp(&f, "admin3", "admin2"));
    pending(&f, c_set_roles(&f, "admin", "admin3", R_CLERK));
    confirmed(&f, c_set_roles(&f, "admin2", "admin3", R_CLERK), "admin");
    pending(&f, c_reset_totp(&f, "admin", "admin2")); /* admin3's is void */

    /* Status: suspending an ID administrator takes two (so one cannot
     * become the only active one, who acts alone); another status does
     * not complete it. */
    pending(&f, c_set_status(&f, "admin", "admin2", SS(SUSPENDED)));
    Kyufu__V1__StaffAccount *st = fx_staff(&f, "admin2");
    CHECK_EQ(st->status, SS(ACTIVE));
    kyufu__v1__staff_account__free_unpacked(st, NULL);
    /* Only two active ID administrators are left (admin, admin2), and
     * admin2 may not confirm its own suspension. */
    APPLY(&f, c_set_status(&f, "admin2", "admin2", SS(SUSPENDED)), DENIED);
    /* A clerk's status still takes one. */
    fx_do(&f, c_set_status(&f, "admin", "clerk", SS(SUSPENDED)));
    fx_close(&f);

    /* One active ID administrator acts alone on another (suspended) one;
     * the audit record says so. */
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_set_status(&f, "admin", "admin2", SS(SUSPENDED))); /* v2 */
    fx_version(&f, FX_ADMIN_PAIR_VERSION);
    Kyufu__V1__CommandResult *r =
        apply_take(&f, c_set_password(&f, "admin", "admin2", 120, true));
    CHECK_CODE(r, OK);
    fx_free(r);
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK(strstr(a->message, "only ID administrator") != NULL);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    fx_close(&f);
}

/* From cluster version 3: a setup-only sign-in of an account with TOTP
 * (an expired or reset password) carries its code's step, single-use as
 * any; and ResetTotp signs the account out everywhere. */
static void setup_only_totp_and_reset_totp_sign_out(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_version(&f, FX_ADMIN_PAIR_VERSION);
    enrolled(&f, "ken", R_CLERK); /* step 10 used */
    APPLY(&f, c_set_password(&f, "admin", "ken", 110, true), OK);
    Kyufu__V1__Command *c = c_open(&f, "ken", 1, 10);
    c->open_session->setup_only = true;
    APPLY(&f, c, DENIED); /* step 10 again: a replay, counted */
    Kyufu__V1__Credential *cr = cred(&f, "ken");
    CHECK_EQ(cr->failures, 1);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    c = c_open(&f, "ken", 2, 12);
    c->open_session->setup_only = true;
    APPLY(&f, c, OK);
    cr = cred(&f, "ken");
    CHECK_EQ(cr->totp_last_step, 12);
    CHECK_EQ(cr->failures, 0);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    c = c_open(&f, "ken", 3, 12);
    c->open_session->setup_only = true;
    APPLY(&f, c, DENIED);
    /* ResetTotp: the TOTP goes and so do the account's sessions. */
    CHECK(has_session(&f, 2));
    APPLY(&f, c_reset_totp(&f, "admin", "ken"), OK);
    CHECK(!has_session(&f, 2));
    CHECK_EQ(sessions_of(&f, "ken"), 0);
    fx_close(&f);
}

/* Account ids of the longest kind (KYUFU_STAFF_ID_BYTES_MAX) are named
 * whole: the pending message names its account, the completion its first
 * administrator (the messages were cut at 96 and 160 bytes). */
static void admin_pair_long_ids(void)
{
    char l1[KYUFU_STAFF_ID_BYTES_MAX + 1], l2[KYUFU_STAFF_ID_BYTES_MAX + 1];
    memset(l1, 'x', KYUFU_STAFF_ID_BYTES_MAX);
    l1[KYUFU_STAFF_ID_BYTES_MAX] = '\0';
    memcpy(l2, l1, sizeof l1);
    l1[KYUFU_STAFF_ID_BYTES_MAX - 1] = '1';
    l2[KYUFU_STAFF_ID_BYTES_MAX - 1] = '2';
    struct fx f;
    fx_open(&f);
    fx_world(&f); /* admin, admin2: ID administrators */
    fx_version(&f, FX_ADMIN_PAIR_VERSION);
    pending(&f, c_create_staff(&f, "admin", l1, R_ADMIN));
    confirmed(&f, c_create_staff(&f, "admin2", l1, R_ADMIN), "admin");
    pending(&f, c_create_staff(&f, "admin", l2, R_ADMIN));
    confirmed(&f, c_create_staff(&f, "admin2", l2, R_ADMIN), "admin");
    Kyufu__V1__CommandResult *r =
        apply_take(&f, c_set_status(&f, l1, l2, SS(SUSPENDED)));
    CHECK_CODE(r, PRECOND);
    CHECK(strstr(r->message, "status change of ID administrator ") != NULL);
    CHECK(strstr(r->message, l2) != NULL);
    fx_free(r);
    confirmed(&f, c_set_status(&f, "admin", l2, SS(SUSPENDED)), l1);
    fx_close(&f);
}

/* ------------------------------------------------------------ roles */

static void self_grant_and_two_admins(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f); /* admin, admin2 */
    fx_reject(&f, c_set_roles(&f, "admin", "admin", R_ADMIN | R_AUDITOR),
              DENIED);
    fx_reject(&f, c_set_roles(&f, "clerk", "clerk", R_ADMIN), DENIED);
    /* A grant of ID administrator: pending after the first... */
    uint64_t before = fx_audit_count(&f);
    Kyufu__V1__CommandResult *r =
        apply_take(&f, c_set_roles(&f, "admin", "clerk", R_ADMIN | R_AUDITOR));
    CHECK_CODE(r, PRECOND);
    CHECK(strncmp(r->message, "pending:", 8) == 0);
    fx_free(r);
    CHECK_EQ(fx_audit_count(&f), before + 1);
    Kyufu__V1__StaffAccount *s = fx_staff(&f, "clerk");
    CHECK_EQ(s->roles_mask, R_CLERK);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    /* ...the same administrator again is still one... */
    fx_reject(&f, c_set_roles(&f, "admin", "clerk", R_ADMIN | R_AUDITOR),
              PRECOND);
    /* ...another set of roles does not confirm it... */
    fx_reject(&f, c_set_roles(&f, "admin2", "clerk", R_ADMIN), PRECOND);
    /* ...so the first grant is replaced by admin2's: admin confirms. */
    r = apply_take(&f, c_set_roles(&f, "admin", "clerk", R_ADMIN));
    CHECK_CODE(r, OK);
    CHECK_EQ(r->staff->roles_mask, R_ADMIN);
    fx_free(r);
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK_EQ(a->outcome, OK);
    /* The exact words of version 2 (part of the audit chain: a replica
     * of an older build writes the same). */
    CHECK_STR(a->message, "ID administrator grant confirmed (first by admin2)");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    /* Other roles need one administrator. */
    fx_do(&f, c_set_roles(&f, "admin", "clerk2", R_CLERK | R_AUDITOR));
    /* A first grant counts only while its administrator still is one:
     * admin asks, is suspended, admin2's same grant is a new first one. */
    fx_reject(&f, c_set_roles(&f, "admin", "aud", R_ADMIN), PRECOND);
    fx_do(&f, c_set_status(&f, "admin2", "admin", SS(SUSPENDED)));
    fx_reject(&f, c_set_roles(&f, "admin2", "aud", R_ADMIN), PRECOND);
    r = apply_take(&f, c_set_roles(&f, "clerk", "aud", R_ADMIN));
    CHECK_CODE(r, OK); /* clerk is an ID administrator now (above) */
    fx_free(r);
    fx_close(&f);

    /* One ID administrator: it grants alone, and says so. */
    fx_open(&f);
    fx_identity(&f);
    fx_do(&f, c_bootstrap(&f, "kyufu-node-1", "root"));
    fx_do(&f, c_create_staff(&f, "root", "kim", R_CLERK));
    r = apply_take(&f, c_set_roles(&f, "root", "kim", R_ADMIN));
    CHECK_CODE(r, OK);
    fx_free(r);
    a = last_audit(&f);
    CHECK_STR(a->message,
              "ID administrator granted by the only ID administrator");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    /* Now there are two: the next grant needs both. */
    fx_reject(&f, c_create_staff(&f, "root", "lee", R_ADMIN), PRECOND);
    CHECK_EQ(kyufu_storage_get_staff(f.s, "lee",
                                     &(Kyufu__V1__StaffAccount *){NULL}),
             KYUFU_STORAGE_ENOTFOUND);
    r = apply_take(&f, c_create_staff(&f, "kim", "lee", R_ADMIN));
    CHECK_CODE(r, OK);
    fx_free(r);
    fx_close(&f);
}

static void actor_must_be_active(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_set_status(&f, "admin2", "admin", SS(SUSPENDED)));
    fx_reject(&f, c_create_staff(&f, "admin", "x1", R_CLERK), DENIED);
    APPLY(&f, c_unlock(&f, "admin", "clerk"), DENIED);
    fx_do(&f, c_set_status(&f, "admin2", "admin", SS(ACTIVE)));
    fx_do(&f, c_create_staff(&f, "admin", "x1", R_CLERK));
    fx_close(&f);
}

/* ------------------------------------------------------------ sessions */

static void sessions_touch_close_expire(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    enrolled(&f, "ken", R_CLERK);
    enrolled(&f, "ann", R_CLERK);
    int64_t t0 = f.now_ms;
    APPLY(&f, c_open(&f, "ken", 1, 20), OK);
    APPLY(&f, c_open(&f, "ken", 2, 21), OK);
    APPLY(&f, c_open(&f, "ann", 3, 20), OK);
    CHECK_EQ(sessions_of(&f, "ken"), 2);
    /* Touch: the leader only, monotonic, unknown tokens skipped. */
    APPLY(&f, c_touch(&f, "ken", 1, t0 + 60000), DENIED);
    APPLY(&f, c_touch(&f, "kyufu-node-1", 1, t0 + 600000), OK);
    APPLY(&f, c_touch(&f, "kyufu-node-1", 1, t0 + 1000), OK);
    APPLY(&f, c_touch(&f, "kyufu-node-1", 77, t0 + 1000), OK);
    uint8_t h[32];
    Kyufu__V1__AuthSession *s = NULL;
    fx_secret_bytes(1, 'T', h, 32);
    CHECK_EQ(kyufu_storage_get_auth_session(f.s, h, &s), 0);
    CHECK_EQ(s->last_used_ms, t0 + 600000);
    CHECK_STR(s->staff_id, "ken");
    CHECK(s->id > 0);
    kyufu__v1__auth_session__free_unpacked(s, NULL);
    Kyufu__V1__Command *c = c_touch(&f, "kyufu-node-1", 1, t0);
    c->touch_sessions->n_used_ms = 0;
    APPLY(&f, c, INVALID);
    /* Expired at a time: idle from the last use, or absolute. */
    struct kyufu_storage_page p = {0};
    CHECK_EQ(kyufu_storage_list_expired_sessions(f.s, t0 + 16 * 60 * 1000,
                                                 100, &p),
             0);
    CHECK_EQ(p.n, 2); /* sessions 2 and 3; 1 was used later */
    kyufu_storage_page_free(&p);
    CHECK_EQ(kyufu_storage_list_expired_sessions(
                 f.s, t0 + 13 * 60 * 60 * 1000, 1, &p),
             0);
    CHECK_EQ(p.n, 1); /* bounded */
    kyufu_storage_page_free(&p);
    /* Close: the account itself or a node; nobody else. */
    APPLY(&f, c_close(&f, "ann", 1), DENIED);
    APPLY(&f, c_close(&f, "ken", 1), OK);
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK(strncmp(a->object, "session/", 8) == 0);
    CHECK(strstr(a->message, "sign-out") != NULL);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    APPLY(&f, c_close(&f, "ken", 1), NOT_FOUND);
    APPLY(&f, c_close(&f, "kyufu-node-2", 2), OK);
    CHECK_EQ(sessions_of(&f, "ken"), 0);
    CHECK_EQ(sessions_of(&f, "ann"), 1);
    /* The identity commands come from a node's key. */
    c = c_open(&f, "ken", 4, 30);
    c_str(&c->header->key->client_id, "test-client");
    APPLY(&f, c, DENIED);
    /* A session only for its own account. */
    c = c_open(&f, "ken", 4, 30);
    c_str(&c->header->actor, "ann");
    APPLY(&f, c, DENIED);
    fx_close(&f);
}

static void session_bound(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    enrolled(&f, "ken", R_CLERK);
    for (unsigned i = 0; i < KYUFU_AUTH_SESSIONS_PER_STAFF_MAX; i++) {
        APPLY(&f, c_open(&f, "ken", 1000 + i, 20 + i), OK);
    }
    APPLY(&f, c_open(&f, "ken", 999, 100), KYUFU__V1__CODE__RESOURCE_EXHAUSTED);
    CHECK_EQ(sessions_of(&f, "ken"), KYUFU_AUTH_SESSIONS_PER_STAFF_MAX);
    fx_do(&f, c_set_status(&f, "admin", "ken", SS(SUSPENDED)));
    CHECK_EQ(sessions_of(&f, "ken"), 0);
    fx_close(&f);
}

/* ------------------------------------------------------------ access log */

static void record_access(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__CommandResult *r = apply_take(&f, c_access(&f, "clerk", 3));
    CHECK_CODE(r, OK);
    fx_free(r);
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK_STR(a->command, "RecordAccess");
    CHECK_STR(a->actor, "clerk");
    CHECK_STR(a->object, "household/H-1");
    CHECK_EQ(a->n_objects, 3);
    CHECK_STR(a->objects[2], "household/H-3");
    CHECK(strstr(a->message, "ListHouseholds") != NULL);
    CHECK(strstr(a->message, "127.0.0.1:53412") != NULL);
    CHECK(strstr(a->message, "session/7") != NULL);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    /* A refused, unauthenticated call: no actor, its code kept. */
    Kyufu__V1__Command *c = c_access(&f, "", 0);
    c->record_access->outcome = DENIED;
    c_str(&c->record_access->message, "no session");
    APPLY(&f, c, OK);
    a = last_audit(&f);
    CHECK_STR(a->actor, "");
    CHECK_EQ(a->outcome, DENIED);
    CHECK_STR(a->object, "/kyufu.v1.Ledger/ListHouseholds");
    CHECK(strstr(a->message, "no session") != NULL);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    /* Malformed. */
    c = c_access(&f, "clerk", 1);
    c->record_access->outcome = 99;
    APPLY(&f, c, INVALID);
    APPLY(&f, c_access(&f, "clerk", KYUFU_ACCESS_OBJECTS_MAX + 1), INVALID);
    c = c_access(&f, "clerk", 0);
    c_str(&c->record_access->method, "");
    APPLY(&f, c, INVALID);
    /* Only RecordAccess may name no actor. */
    c = c_open(&f, "clerk", 1, 0);
    c_str(&c->header->actor, "");
    APPLY(&f, c, INVALID);
    /* The largest record is kept whole. */
    APPLY(&f, c_access(&f, "clerk", KYUFU_ACCESS_OBJECTS_MAX), OK);
    a = last_audit(&f);
    CHECK_EQ(a->n_objects, KYUFU_ACCESS_OBJECTS_MAX);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    fx_close(&f);
}

/* ------------------------------------------------------------ exactly-once */

static void key_bound_to_caller(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_register_household(&f, "clerk", "H-9");
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, OK);
    uint8_t d[32], other_d[32];
    CHECK_EQ(kyufu_storage_command_digest(c, d), 0);
    enum kyufu_storage_key_use use;
    const char *cid = c->header->key->client_id;
    uint64_t seq = c->header->key->sequence;
    int64_t now = f.now_ms;
    CHECK_EQ(kyufu_storage_key_use(f.s, cid, seq, "clerk", d, false, now,
                                   &use),
             0);
    CHECK_EQ(use, KYUFU_STORAGE_KEY_OWN);
    CHECK_EQ(kyufu_storage_key_use(f.s, cid, seq, "clerk2", d, false, now,
                                   &use),
             0);
    CHECK_EQ(use, KYUFU_STORAGE_KEY_OTHER_ACTOR);
    Kyufu__V1__Command *o = c_register_household(&f, "clerk", "H-10");
    CHECK_EQ(kyufu_storage_command_digest(o, other_d), 0);
    CHECK(memcmp(d, other_d, 32) != 0);
    CHECK_EQ(kyufu_storage_key_use(f.s, cid, seq, "clerk", other_d, false,
                                   now, &use),
             0);
    CHECK_EQ(use, KYUFU_STORAGE_KEY_OTHER_COMMAND);
    CHECK_EQ(kyufu_storage_key_use(f.s, cid, seq, "clerk", other_d, true,
                                   now, &use),
             0);
    CHECK_EQ(use, KYUFU_STORAGE_KEY_OWN); /* a settle asks about it */
    CHECK_EQ(kyufu_storage_key_use(f.s, cid, seq + 1000, "clerk", d, false,
                                   now, &use),
             0);
    CHECK_EQ(use, KYUFU_STORAGE_KEY_NEW);
    CHECK_EQ(kyufu_storage_key_use(f.s, cid, 0, "clerk", d, false, now,
                                   &use),
             KYUFU_STORAGE_EINVALID);

    /* Apply: another actor replaying the key gets no household back. */
    c_str(&c->header->actor, "clerk2");
    uint64_t count = fx_audit_count(&f);
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK_CODE(r2, DENIED);
    CHECK(r2->record_case == KYUFU__V1__COMMAND_RESULT__RECORD__NOT_SET);
    CHECK(strstr(r2->message, "another account") != NULL);
    CHECK_EQ(fx_audit_count(&f), count + 1);
    Kyufu__V1__AuditRecord *a = last_audit(&f);
    CHECK_STR(a->actor, "clerk2");
    CHECK_EQ(a->outcome, DENIED);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    fx_free(r2);
    /* The owner still gets its first result: the entry is unchanged. */
    c_str(&c->header->actor, "clerk");
    r2 = fx_apply(&f, c);
    CHECK_CODE(r2, OK);
    CHECK(r2->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_HOUSEHOLD);
    CHECK_EQ(r2->audit_seq, r1->audit_seq);
    fx_free(r2);
    /* A SettleWrite of the key: its owner only. */
    Kyufu__V1__Command *st = c_settle(&f, "clerk2", seq);
    c_str(&st->header->key->client_id, cid);
    r2 = fx_apply(&f, st);
    CHECK_CODE(r2, DENIED);
    fx_free(r2);
    c_str(&st->header->actor, "clerk");
    r2 = fx_apply(&f, st);
    CHECK_EQ(r2->outcome, KYUFU__V1__WRITE_OUTCOME__WRITE_APPLIED);
    CHECK(r2->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_HOUSEHOLD);
    fx_free(r2);
    /* A fence belongs to its settler too. */
    Kyufu__V1__Command *fence = c_settle(&f, "clerk", seq + 50);
    c_str(&fence->header->key->client_id, cid);
    r2 = fx_apply(&f, fence);
    CHECK_CODE(r2, KYUFU__V1__CODE__ABORTED);
    fx_free(r2);
    Kyufu__V1__Command *late = c_register_household(&f, "clerk2", "H-11");
    c_str(&late->header->key->client_id, cid);
    late->header->key->sequence = seq + 50;
    r2 = fx_apply(&f, late);
    CHECK_CODE(r2, DENIED);
    fx_free(r2);
    c_str(&late->header->actor, "clerk");
    r2 = fx_apply(&f, late);
    CHECK_CODE(r2, KYUFU__V1__CODE__ABORTED); /* the fence, for any command */
    fx_free(r2);
    fx_free(r1);
    kyufu__v1__command__free_unpacked(c, NULL);
    kyufu__v1__command__free_unpacked(o, NULL);
    kyufu__v1__command__free_unpacked(st, NULL);
    kyufu__v1__command__free_unpacked(fence, NULL);
    kyufu__v1__command__free_unpacked(late, NULL);
    fx_invariants(&f);
    fx_close(&f);
}

/* --------------------------------------------------- digest and snapshot */

/* Every identity db holds something: credentials, sessions, a pending
 * grant, a purged account. */
static void identity_world(struct fx *f)
{
    fx_world(f);
    enrolled(f, "ken", R_CLERK);
    APPLY(f, c_open(f, "ken", 1, 20), OK);
    APPLY(f, c_open(f, "ken", 2, 21), OK);
    APPLY(f, c_failed(f, "ken", "ken", "password"), OK);
    fx_reject(f, c_set_roles(f, "admin", "clerk", R_ADMIN), PRECOND);
    fx_do(f, c_create_staff(f, "admin", "gone", R_CLERK));
    fx_do(f, c_set_status(f, "admin", "gone", SS(DISABLED)));
    APPLY(f, c_purge(f, "kyufu-node-1", "gone"), OK);
    APPLY(f, c_access(f, "clerk", 2), OK);
}

static void digest_and_snapshot(void)
{
    struct fx a, b;
    uint8_t da[32], db[32];
    fx_open(&a);
    identity_world(&a);
    fx_digest(&a, da);
    /* The same commands on another store: the same digest. */
    fx_open(&b);
    identity_world(&b);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    /* One more session: the digest sees it. */
    APPLY(&b, c_open(&b, "ken", 3, 22), OK);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) != 0);
    fx_close(&b);
    /* A snapshot carries every identity db. */
    struct fx c;
    fx_open(&c);
    fx_restore_from(&c, &a);
    fx_digest(&c, db);
    CHECK(memcmp(da, db, 32) == 0);
    CHECK_EQ(sessions_of(&c, "ken"), 2);
    Kyufu__V1__Credential *cr = cred(&c, "ken");
    CHECK_EQ(cr->failures, 1);
    CHECK(cr->totp_confirmed);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    CHECK(has_session(&c, 1));
    /* The restored store goes on alike: the pending grant is there. */
    Kyufu__V1__CommandResult *r =
        apply_take(&c, c_set_roles(&c, "admin2", "clerk", R_ADMIN));
    CHECK_CODE(r, OK);
    fx_free(r);
    fx_reopen(&c);
    CHECK(has_session(&c, 2));
    fx_close(&c);
    fx_close(&a);
}

/* --------------------------------------------------------- no secrets */

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle,
                     size_t m)
{
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return true;
        }
    }
    return false;
}

static void no_secret_in_audit(void)
{
    struct fx f;
    fx_open(&f);
    identity_world(&f);
    /* More of everything that handles a secret, accepted and refused. */
    APPLY(&f, c_set_password(&f, "ken", "ken", 120, false), OK);
    APPLY(&f, c_set_password(&f, "admin", "ken", 121, true), OK);
    APPLY(&f, c_open(&f, "ken", 5, 0), OK);
    APPLY(&f, c_open(&f, "ken", 5, 0), EXISTS);
    APPLY(&f, c_close(&f, "ken", 5), OK);
    APPLY(&f, c_reset_totp(&f, "admin", "ken"), OK);
    APPLY(&f, c_enroll(&f, "ken", 3), OK);
    APPLY(&f, c_confirm_totp(&f, "ken", 40), OK);
    APPLY(&f, c_open(&f, "ken", 6, 40), DENIED);
    APPLY(&f, c_touch(&f, "kyufu-node-1", 6, f.now_ms), OK);
    /* The secrets used: password salts and hashes (seeds 7, 100, 120,
     * 121), token and certificate hashes (tokens 1, 2, 5, 6, 900), TOTP
     * secrets (seeds 1, 3). */
    struct
    {
        unsigned seed;
        char kind;
        size_t len;
    } secrets[] = {
        {FX_TEMP_PW_SEED, 'S', 16}, {FX_TEMP_PW_SEED, 'H', 32},
        {100, 'S', 16}, {100, 'H', 32}, {120, 'S', 16}, {120, 'H', 32},
        {121, 'S', 16}, {121, 'H', 32}, {1, 'T', 32}, {2, 'T', 32},
        {5, 'T', 32}, {6, 'T', 32}, {900, 'T', 32}, {1, 'C', 32},
        {5, 'C', 32}, {1, 'O', 20}, {3, 'O', 20},
    };
    uint64_t n = fx_audit_count(&f);
    CHECK(n > 30);
    for (uint64_t seq = 1; seq <= n; seq++) {
        Kyufu__V1__AuditRecord *a = fx_audit(&f, seq);
        /* Every field but the chain's own hashes. */
        a->hash.len = 0;
        a->prev_hash.len = 0;
        size_t len = kyufu__v1__audit_record__get_packed_size(a);
        uint8_t *buf = malloc(len + 1);
        CHECK(buf != NULL);
        kyufu__v1__audit_record__pack(a, buf);
        for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
            uint8_t s[32];
            fx_secret_bytes(secrets[i].seed, secrets[i].kind, s,
                            secrets[i].len);
            /* Any 8 consecutive bytes of a secret would be a leak, raw or
             * as hex (either case). */
            for (size_t off = 0; off + 8 <= secrets[i].len; off += 4) {
                char lo[17], up[17];
                for (size_t j = 0; j < 8; j++) {
                    snprintf(lo + 2 * j, 3, "%02x", s[off + j]);
                    snprintf(up + 2 * j, 3, "%02X", s[off + j]);
                }
                if (contains(buf, len, s + off, 8) ||
                    contains(buf, len, (const uint8_t *)lo, 16) ||
                    contains(buf, len, (const uint8_t *)up, 16)) {
                    t_fail(__FILE__, __LINE__,
                           "audit record %llu (%s) holds secret %zu",
                           (unsigned long long)seq, a->command, i);
                }
            }
        }
        free(buf);
        kyufu__v1__audit_record__free_unpacked(a, NULL);
    }
    fx_close(&f);
}

/* A command's time is only checked > 0 and TouchSessions' used_ms too: at
 * the far end of int64 a lockout saturates and the expiry query still
 * answers (both sums overflowed before: UBSan stops the ASan build). */
static void far_times_do_not_overflow(void)
{
    struct fx f;
    struct kyufu_storage_page p = {0};
    fx_open(&f);
    fx_world(&f);
    enrolled(&f, "ken", R_CLERK);
    APPLY(&f, c_open(&f, "ken", 1, 20), OK);
    APPLY(&f, c_touch(&f, "kyufu-node-1", 1, INT64_MAX - 1), OK);
    /* Touched at the end of time: idle never reached, absolute is. */
    CHECK_EQ(kyufu_storage_list_expired_sessions(f.s, INT64_MAX, 10, &p), 0);
    CHECK_EQ(p.n, 1);
    kyufu_storage_page_free(&p);
    CHECK_EQ(kyufu_storage_list_expired_sessions(f.s, f.now_ms, 10, &p), 0);
    CHECK_EQ(p.n, 0);
    kyufu_storage_page_free(&p);
    /* Five failures 100 s before the end of time: locked until the end. */
    f.now_ms = INT64_MAX - 100000;
    for (int i = 0; i < 5; i++) {
        APPLY(&f, c_failed(&f, "kyufu-node-1", "ken", "password"), OK);
    }
    Kyufu__V1__Credential *cr = cred(&f, "ken");
    CHECK_EQ(cr->failures, 5);
    CHECK_EQ(cr->locked_until_ms, INT64_MAX);
    kyufu__v1__credential__free_unpacked(cr, NULL);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(bootstrap_once),
        T_CASE(create_staff_needs_temporary_password),
        T_CASE(lifecycle),
        T_CASE(lockout),
        T_CASE(totp_step_single_use),
        T_CASE(password_history_and_resets),
        T_CASE(self_grant_and_two_admins),
        T_CASE(admin_changes_need_two_admins),
        T_CASE(admin_pair_long_ids),
        T_CASE(setup_only_totp_and_reset_totp_sign_out),
        T_CASE(actor_must_be_active),
        T_CASE(sessions_touch_close_expire),
        T_CASE(session_bound),
        T_CASE(far_times_do_not_overflow),
        T_CASE(record_access),
        T_CASE(key_bound_to_caller),
        T_CASE(digest_and_snapshot),
        T_CASE(no_secret_in_audit),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
