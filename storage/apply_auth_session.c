/* Sign-in sessions (issue 8; identity.proto, docs/identity.md "Sessions"):
 * OpenSession, CloseSession, TouchSessions.
 *
 * OpenSession is proposed after the node verified the password (and the
 * TOTP code) off the loop; apply checks what is deterministic: the account
 * is ACTIVE and not locked, its password is the one that was verified
 * (password_set_ms), the TOTP step was not used before (single use) and
 * the secret is confirmed (unless setup_only).  A replayed TOTP step counts
 * as a failed sign-in (failures + 1, kept although the command is refused:
 * the next SignInFailed locks at the policy's count).  On success the
 * session gets the next number (meta last_auth_session_id) and is stored
 * under the token's SHA-256 with its account index entry.
 */
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define PRECOND KYUFU__V1__CODE__FAILED_PRECONDITION
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define REJECT kyufu_storage__reject
#define SS(x) KYUFU__V1__STAFF_STATUS__STAFF_##x
/* Session lifetimes apply accepts: up to 30 days (the node's policy is
 * 15 min idle, 12 h absolute). */
#define LIFETIME_MS_MAX ((int64_t)30 * 24 * 60 * 60 * 1000)

static void free_both(Kyufu__V1__StaffAccount *a, Kyufu__V1__Credential *cr)
{
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    if (cr != NULL) {
        kyufu__v1__credential__free_unpacked(cr, NULL);
    }
}

static const char *check_open(const Kyufu__V1__OpenSession *b)
{
    if (!kyufu_storage__valid_staff_id(b->staff_id)) {
        return "staff_id must be 1..64 of [a-z0-9._-]";
    }
    if (b->token_hash.len != KYUFU_SHA256_BYTES ||
        b->cert_sha256.len != KYUFU_SHA256_BYTES) {
        return "token_hash and cert_sha256 must be 32 bytes";
    }
    if (!kyufu_storage__valid_text(b->terminal, 0, KYUFU_TERMINAL_BYTES_MAX)) {
        return "terminal must be 0..64 bytes of text";
    }
    if (b->idle_ms <= 0 || b->idle_ms > LIFETIME_MS_MAX ||
        b->absolute_ms <= 0 || b->absolute_ms > LIFETIME_MS_MAX) {
        return "idle_ms and absolute_ms must be 1 ms..30 days";
    }
    if (!b->setup_only && b->totp_step == 0) {
        return "totp_step must be > 0 unless setup_only";
    }
    if (b->password_set_ms <= 0) {
        return "password_set_ms must be > 0";
    }
    return NULL;
}

int kyufu_storage__open_session(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__OpenSession *b = c->cmd->open_session;
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cr = NULL;
    Kyufu__V1__AuthSession *old = NULL;
    const char *why = check_open(b);
    if (why != NULL) {
        return REJECT(c, INVALID, "%s", why);
    }
    int rv = kyufu_storage__id_self(c, b->staff_id, false);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = kyufu_storage__id_load(c, b->staff_id, &a, &cr);
    }
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        goto out;
    }
    if (a->status != SS(ACTIVE)) {
        rv = REJECT(c, PRECOND, "account %s is not active", b->staff_id);
        goto out;
    }
    if (cr == NULL || cr->password == NULL) {
        rv = REJECT(c, PRECOND, "account %s has no password", b->staff_id);
        goto out;
    }
    if (cr->locked_until_ms > c->now_ms) {
        rv = REJECT(c, PRECOND, "account %s is locked until %lld",
                    b->staff_id, (long long)cr->locked_until_ms);
        goto out;
    }
    if (cr->password_set_ms != b->password_set_ms) {
        rv = REJECT(c, PRECOND, "the password changed since it was checked");
        goto out;
    }
    /* From version 3 a setup-only sign-in of an account with TOTP carries
     * its code's step too (an expired or reset password still asks for
     * the second factor), and the step is single-use all the same. */
    bool totp = !b->setup_only || (c->admin_pair && b->totp_step != 0);
    if (totp) {
        if (!cr->totp_confirmed) {
            rv = REJECT(c, PRECOND, "account %s has no confirmed TOTP secret",
                        b->staff_id);
            goto out;
        }
        if (b->totp_step <= cr->totp_last_step) {
            /* A replayed code: a failed sign-in, counted and kept. */
            Kyufu__V1__Credential next = *cr;
            next.failures = cr->failures < UINT32_MAX ? cr->failures + 1
                                                      : UINT32_MAX;
            rv = kyufu_storage__put_credential(c->s, c->txn, &next);
            if (rv == 0) {
                REJECT(c, DENIED, "TOTP code already used (failure %u)",
                       (unsigned)next.failures);
                c->keep_on_reject = true;
            }
            goto out;
        }
    }
    rv = kyufu_storage__get_auth_session(c->s, c->txn, b->token_hash.data,
                                         b->token_hash.len, &old);
    if (rv == 0) {
        rv = REJECT(c, KYUFU__V1__CODE__ALREADY_EXISTS,
                    "a session with that token exists");
        goto out;
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        goto out;
    }
    size_t open = 0;
    rv = kyufu_storage__count_staff_sessions(c->s, c->txn, b->staff_id,
                                             &open);
    if (rv != 0) {
        goto out;
    }
    if (open >= KYUFU_AUTH_SESSIONS_PER_STAFF_MAX) {
        rv = REJECT(c, KYUFU__V1__CODE__RESOURCE_EXHAUSTED,
                    "account %s has %u open sessions: sign out of one",
                    b->staff_id, KYUFU_AUTH_SESSIONS_PER_STAFF_MAX);
        goto out;
    }
    uint64_t last = 0;
    rv = kyufu_storage__meta_get_u64(c->s, c->txn,
                                     KYUFU_META_LAST_AUTH_SESSION_ID, &last);
    if (rv == 0) {
        rv = kyufu_storage__meta_put_u64(c->s, c->txn,
                                         KYUFU_META_LAST_AUTH_SESSION_ID,
                                         last + 1);
    }
    if (rv != 0) {
        goto out;
    }
    Kyufu__V1__AuthSession sess = KYUFU__V1__AUTH_SESSION__INIT;
    sess.token_hash = b->token_hash;
    sess.staff_id = b->staff_id;
    sess.cert_sha256 = b->cert_sha256;
    sess.terminal = b->terminal;
    sess.created_ms = c->now_ms;
    sess.last_used_ms = c->now_ms;
    sess.idle_ms = b->idle_ms;
    sess.absolute_ms = b->absolute_ms;
    sess.setup_only = b->setup_only;
    sess.id = last + 1;
    rv = kyufu_storage__put_auth_session(c->s, c->txn, &sess);
    if (rv != 0) {
        goto out;
    }
    Kyufu__V1__Credential next = *cr;
    next.failures = 0;
    if (totp) {
        next.totp_last_step = b->totp_step;
    }
    rv = kyufu_storage__put_credential(c->s, c->txn, &next);
    kyufu_storage__set_object(c, "session/%llu", (unsigned long long)sess.id);
out:
    if (old != NULL) {
        kyufu__v1__auth_session__free_unpacked(old, NULL);
    }
    free_both(a, cr);
    return rv;
}

int kyufu_storage__close_session(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__CloseSession *b = c->cmd->close_session;
    Kyufu__V1__AuthSession *a = NULL;
    if (b->token_hash.len != KYUFU_SHA256_BYTES) {
        return REJECT(c, INVALID, "token_hash must be 32 bytes");
    }
    if (!kyufu_storage__valid_printable(b->reason, 1,
                                        KYUFU_AUTH_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "reason must be 1..64 printable bytes");
    }
    int rv = kyufu_storage__get_auth_session(c->s, c->txn, b->token_hash.data,
                                             b->token_hash.len, &a);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no such session");
    }
    if (rv != 0) {
        return rv;
    }
    kyufu_storage__set_object(c, "session/%llu", (unsigned long long)a->id);
    rv = kyufu_storage__id_self(c, a->staff_id, true);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = kyufu_storage__del_auth_session(c->s, c->txn, b->token_hash.data);
        c->audit_set = true;
        c->audit_code = KYUFU__V1__CODE__OK;
        kyufu_storage__errmsg(c->audit_message, sizeof c->audit_message,
                              "closed: %s", b->reason);
    }
    kyufu__v1__auth_session__free_unpacked(a, NULL);
    return rv;
}

int kyufu_storage__touch_sessions(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__TouchSessions *b = c->cmd->touch_sessions;
    if (!kyufu_storage__is_node_name(c->actor)) {
        return REJECT(c, DENIED, "TouchSessions is proposed by the leader, "
                                 "not by %s",
                      c->actor);
    }
    if (b->n_token_hash != b->n_used_ms ||
        b->n_token_hash > KYUFU_TOUCH_SESSIONS_MAX) {
        return REJECT(c, INVALID, "token_hash and used_ms must pair up, at "
                                  "most %u",
                      KYUFU_TOUCH_SESSIONS_MAX);
    }
    for (size_t i = 0; i < b->n_token_hash; i++) {
        if (b->token_hash[i].len != KYUFU_SHA256_BYTES ||
            b->used_ms[i] <= 0) {
            return REJECT(c, INVALID, "entry %zu: a 32-byte hash and a time "
                                      "> 0",
                          i);
        }
    }
    int rv = 0;
    for (size_t i = 0; i < b->n_token_hash && rv == 0; i++) {
        Kyufu__V1__AuthSession *a = NULL;
        rv = kyufu_storage__get_auth_session(c->s, c->txn,
                                             b->token_hash[i].data,
                                             KYUFU_SHA256_BYTES, &a);
        if (rv == KYUFU_STORAGE_ENOTFOUND) {
            rv = 0; /* closed since it was used */
            continue;
        }
        if (rv == 0 && b->used_ms[i] > a->last_used_ms) {
            a->last_used_ms = b->used_ms[i]; /* monotonic */
            rv = kyufu_storage__put_auth_session(c->s, c->txn, a);
        }
        if (a != NULL) {
            kyufu__v1__auth_session__free_unpacked(a, NULL);
        }
    }
    return rv;
}
