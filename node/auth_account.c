/* The account side of the Auth service (issue 8; docs/identity.md):
 * ChangePassword (old verified, policy, history, new hash: on a work
 * thread), EnrollTotp / ConfirmTotp (liboath; single use of a step is
 * checked again in apply), the ID administrator's ResetPassword,
 * UnlockStaff, ResetTotp, and CreateStaff's temporary password (made by
 * the node, hashed on a work thread, answered once).  The dispatch of the
 * Auth service's methods is at the end.
 *
 * Failure modes: a wrong old password counts as a failed sign-in; a
 * policy refusal is INVALID_ARGUMENT naming the rule; an ID
 * administrator's call needs a full session and a header actor that is
 * empty or the session's; apply's refusals come back with their code and
 * message.  No password, secret or hash is logged or answered, except the
 * temporary password and the TOTP secret, each in its one answer. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth_service.h"
#include "auth_token.h"
#include "log.h"
#include "password.h"
#include "pwhash.h"
#include "totp.h"

/* ------------------------------------------------------------ ChangePassword */

struct change_job
{
    struct kyufu_node_auth_job job;
    char old_pw[KYUFU_PASSWORD_BYTES_MAX + 1];
    char new_pw[KYUFU_PASSWORD_BYTES_MAX + 1];
    size_t old_len, new_len;
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char display_name[256];
    unsigned min_length, history;
    /* out */
    int status;            /* KYUFU_GRPC_*: OK -> propose */
    char why[256];
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES];
    uint8_t hash[KYUFU_PWHASH_BYTES];
};

static void change_run(struct kyufu_node_auth_job *jb)
{
    struct change_job *j = (struct change_job *)jb;
    const Kyufu__V1__Credential *cred = jb->cred;
    if (!kyufu_node__password_matches(j->old_pw, j->old_len,
                                      cred->password)) {
        j->status = KYUFU_GRPC_UNAUTHENTICATED;
        snprintf(j->why, sizeof j->why, "the old password is wrong");
        return;
    }
    if (kyufu_node__password_policy(j->new_pw, j->new_len, j->min_length,
                                    j->staff_id, j->display_name, j->why,
                                    sizeof j->why) != 0) {
        j->status = KYUFU_GRPC_INVALID_ARGUMENT;
        return;
    }
    if (kyufu_node__password_reused(j->new_pw, j->new_len, cred->password,
                                    cred->previous, cred->n_previous,
                                    j->history)) {
        j->status = KYUFU_GRPC_INVALID_ARGUMENT;
        snprintf(j->why, sizeof j->why,
                 "the new password is the current one or one of the last "
                 "%u: choose another",
                 j->history);
        return;
    }
    if (kyufu_pwhash_new(j->new_pw, j->new_len, kyufu_pwhash_iterations(),
                         j->salt, j->hash) != 0) {
        j->status = KYUFU_GRPC_INTERNAL;
        snprintf(j->why, sizeof j->why, "no randomness for a salt");
        return;
    }
    j->status = KYUFU_GRPC_OK;
}

static void changed(struct kyufu_glue_propose *req, int status,
                    Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    struct kyufu_node_auth_ctx *x = c->auth;
    kyufu_log(KYUFU_LOG_INFO, "password changed",
              KYUFU_LOG_S("staff_id", x->staff_id));
    Kyufu__V1__ChangePasswordResponse resp =
        KYUFU__V1__CHANGE_PASSWORD_RESPONSE__INIT;
    resp.password_expires_ms = kyufu_node__auth_password_expires_ms(c->node, x->now_ms);
    kyufu_node__call_done_msg(c, &resp.base);
}

static void change_done(struct kyufu_node_auth_job *jb)
{
    struct change_job *j = (struct change_job *)jb;
    struct kyufu_node_call *c = jb->c;
    struct kyufu_node *n = c->node;
    if (j->status == KYUFU_GRPC_UNAUTHENTICATED) {
        /* A wrong old password counts as a failed sign-in (lockout). */
        struct kyufu_node_auth_ctx *x = c->auth;
        x->fail_message = "the old password is wrong";
        kyufu_node__auth_signin_fail(c, j->staff_id, "password");
        return;
    }
    if (j->status != KYUFU_GRPC_OK) {
        kyufu_node__call_done(c, j->status, j->why, NULL, 0);
        return;
    }
    struct kyufu_node_auth_ctx *x = c->auth;
    x->now_ms = kyufu_node__auth_now_ms(n);
    Kyufu__V1__PasswordHash h;
    kyufu_node__auth_copy_hash(&h, kyufu_pwhash_iterations(), j->salt, j->hash);
    Kyufu__V1__SetPassword sp = KYUFU__V1__SET_PASSWORD__INIT;
    sp.staff_id = j->staff_id;
    sp.password = &h;
    sp.temporary = false;
    sp.history = n->config->auth_password_history;
    kyufu_node__auth_propose(c, j->staff_id, "set_password", &sp, changed);
}

static void change_password(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__ChangePasswordRequest *r = c->request;
    struct kyufu_principal p;
    if (kyufu_node__auth_signed_in(c, &p) != 0) {
        return;
    }
    size_t olen = strlen(r->old_password), nlen = strlen(r->new_password);
    if (olen == 0 || olen > KYUFU_PASSWORD_BYTES_MAX || nlen == 0 ||
        nlen > KYUFU_PASSWORD_BYTES_MAX) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "old_password and new_password must be 1..256 "
                              "bytes",
                              NULL, 0);
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    struct kyufu_node_auth_ctx *x = kyufu_node__auth_ctx(c);
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cred = NULL;
    if (x == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    snprintf(x->staff_id, sizeof x->staff_id, "%s", p.staff_id);
    if (kyufu_node__auth_read_account(c, p.staff_id, &a, &cred) != 0) {
        return;
    }
    const char *refused = NULL;
    if (a == NULL || cred == NULL || cred->password == NULL) {
        refused = "the account has no password to change";
    } else if (cred->locked_until_ms > kyufu_node__auth_now_ms(n)) {
        /* A locked account takes no more password guesses, not even as
         * the old password of a change (its answer would tell right from
         * wrong, and SetPassword would clear the lock). */
        refused = "the account is locked: an ID administrator unlocks it "
                  "(kyufuctl staff unlock)";
    }
    if (refused != NULL) {
        /* The request dies with the answer: wipe it first. */
        OPENSSL_cleanse(r->old_password, olen);
        OPENSSL_cleanse(r->new_password, nlen);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, refused,
                              NULL, 0);
        kyufu_node__auth_account_free(a, cred);
        return;
    }
    struct change_job *j = kyufu_node__auth_job_new(c, sizeof *j, change_run, change_done);
    if (j == NULL) {
        kyufu_node__auth_account_free(a, cred); /* answered: r is gone */
        return;
    }
    memcpy(j->old_pw, r->old_password, olen);
    j->old_len = olen;
    memcpy(j->new_pw, r->new_password, nlen);
    j->new_len = nlen;
    OPENSSL_cleanse(r->old_password, olen);
    OPENSSL_cleanse(r->new_password, nlen);
    snprintf(j->staff_id, sizeof j->staff_id, "%s", p.staff_id);
    snprintf(j->display_name, sizeof j->display_name, "%s", a->display_name);
    j->min_length = n->config->auth_password_min_length;
    j->history = n->config->auth_password_history;
    j->job.cred = cred;
    kyufu_node__auth_account_free(a, NULL);
    /* May answer the call (no work thread): nothing of it is touched after. */
    kyufu_node__auth_job_start(&j->job);
}

/* ------------------------------------------------------------ TOTP */

static void enrolled(struct kyufu_glue_propose *req, int status,
                     Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    struct kyufu_node_auth_ctx *x = c->auth;
    Kyufu__V1__EnrollTotpResponse resp = KYUFU__V1__ENROLL_TOTP_RESPONSE__INIT;
    resp.secret_base32 = x->base32;
    resp.otpauth_uri = x->uri;
    kyufu_node__call_done_msg(c, &resp.base);
}

static void enroll_totp(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    struct kyufu_principal p;
    if (kyufu_node__auth_signed_in(c, &p) != 0) {
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    Kyufu__V1__Credential *cred = NULL;
    int rv = kyufu_storage_get_credential(n->storage, p.staff_id, &cred);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        kyufu_node__call_storage_error(c, rv, "credential");
        return;
    }
    bool confirmed = cred != NULL && cred->totp_confirmed;
    if (cred != NULL) {
        kyufu__v1__credential__free_unpacked(cred, NULL);
    }
    if (confirmed) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "a TOTP secret is already confirmed for this "
                              "account; an ID administrator must reset it "
                              "(Auth.ResetTotp) before a new enrollment",
                              NULL, 0);
        return;
    }
    struct kyufu_node_auth_ctx *x = kyufu_node__auth_ctx(c);
    uint8_t secret[KYUFU_NODE_TOTP_SECRET_BYTES];
    if (x == NULL || kyufu_node__totp_secret(secret) != 0 ||
        kyufu_node__totp_base32(secret, sizeof secret, x->base32,
                                sizeof x->base32) != 0 ||
        kyufu_node__totp_uri(p.staff_id, x->base32, x->uri, sizeof x->uri) !=
            0) {
        OPENSSL_cleanse(secret, sizeof secret);
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "cannot make a TOTP secret", NULL, 0);
        return;
    }
    Kyufu__V1__EnrollTotp e = KYUFU__V1__ENROLL_TOTP__INIT;
    e.staff_id = p.staff_id;
    e.secret.data = secret;
    e.secret.len = sizeof secret;
    kyufu_node__auth_propose(c, p.staff_id, "enroll_totp", &e, enrolled);
    OPENSSL_cleanse(secret, sizeof secret); /* packed by the proposal */
}

static void confirmed(struct kyufu_glue_propose *req, int status,
                      Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    Kyufu__V1__ConfirmTotpResponse resp =
        KYUFU__V1__CONFIRM_TOTP_RESPONSE__INIT;
    kyufu_node__call_done_msg(c, &resp.base);
}

static void confirm_totp(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__ConfirmTotpRequest *r = c->request;
    struct kyufu_principal p;
    if (kyufu_node__auth_signed_in(c, &p) != 0) {
        return;
    }
    if (strlen(r->totp_code) != KYUFU_NODE_TOTP_DIGITS) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "totp_code must be 6 digits", NULL, 0);
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    Kyufu__V1__Credential *cred = NULL;
    int rv = kyufu_storage_get_credential(n->storage, p.staff_id, &cred);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        kyufu_node__call_storage_error(c, rv, "credential");
        return;
    }
    if (cred == NULL || cred->totp_secret.len == 0 || cred->totp_confirmed) {
        if (cred != NULL) {
            kyufu__v1__credential__free_unpacked(cred, NULL);
        }
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "no unconfirmed TOTP enrollment: call "
                              "EnrollTotp first",
                              NULL, 0);
        return;
    }
    uint64_t step = 0;
    /* One HMAC-SHA1 per accepted step: cheap enough for the loop. */
    int ok = kyufu_node__totp_check(cred->totp_secret.data,
                                    cred->totp_secret.len,
                                    kyufu_node__auth_now_ms(n) / 1000,
                                    r->totp_code, &step);
    bool replayed = ok == 0 && step <= cred->totp_last_step;
    kyufu__v1__credential__free_unpacked(cred, NULL);
    if (ok != 0 || replayed) {
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                              "the code does not match (or was used "
                              "already): check the device's clock and try "
                              "the next code",
                              NULL, 0);
        return;
    }
    Kyufu__V1__ConfirmTotp ct = KYUFU__V1__CONFIRM_TOTP__INIT;
    ct.staff_id = p.staff_id;
    ct.step = step;
    kyufu_node__auth_propose(c, p.staff_id, "confirm_totp", &ct, confirmed);
}

/* ------------------------------------------------------------ temporary passwords */

/* ResetPassword and CreateStaff: a new temporary password hashed on a work
 * thread, then a command carrying the hash. */
struct temp_job
{
    struct kyufu_node_auth_job job;
    char password[KYUFU_PWHASH_TEMPORARY_CHARS + 1];
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES];
    uint8_t hash[KYUFU_PWHASH_BYTES];
    int rv;
    /* CreateStaff: the request's header and body (owned by the call) */
    const Kyufu__V1__RequestHeader *rh;
    Kyufu__V1__CreateStaff *body;
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char actor[KYUFU_STAFF_ID_BYTES_MAX + 1];
};

static void temp_run(struct kyufu_node_auth_job *jb)
{
    struct temp_job *j = (struct temp_job *)jb;
    j->rv = kyufu_pwhash_new(j->password, strlen(j->password),
                             kyufu_pwhash_iterations(), j->salt, j->hash);
}

/* Make the password now (RAND_bytes is fine on the loop), hash it later. */
static struct temp_job *temp_new(struct kyufu_node_call *c, kyufu_node_auth_job_fn done)
{
    struct kyufu_node_auth_ctx *x = kyufu_node__auth_ctx(c);
    if (x == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return NULL;
    }
    struct temp_job *j = kyufu_node__auth_job_new(c, sizeof *j, temp_run, done);
    if (j == NULL) {
        return NULL;
    }
    if (kyufu_pwhash_temporary(j->password, sizeof j->password) !=
        0) {
        kyufu_node__auth_job_free(&j->job);
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "no randomness for a temporary password", NULL,
                              0);
        return NULL;
    }
    memcpy(x->temporary, j->password, sizeof x->temporary);
    return j;
}

static void was_reset(struct kyufu_glue_propose *req, int status,
                      Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    struct kyufu_node_auth_ctx *x = c->auth;
    Kyufu__V1__ResetPasswordResponse resp =
        KYUFU__V1__RESET_PASSWORD_RESPONSE__INIT;
    resp.result = result;
    resp.temporary_password = x->temporary;
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

static void reset_done(struct kyufu_node_auth_job *jb)
{
    struct temp_job *j = (struct temp_job *)jb;
    struct kyufu_node_call *c = jb->c;
    if (j->rv != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "no randomness for a salt", NULL, 0);
        return;
    }
    Kyufu__V1__PasswordHash h;
    kyufu_node__auth_copy_hash(&h, kyufu_pwhash_iterations(), j->salt, j->hash);
    Kyufu__V1__SetPassword sp = KYUFU__V1__SET_PASSWORD__INIT;
    sp.staff_id = j->staff_id;
    sp.password = &h;
    sp.temporary = true;
    sp.history = c->node->config->auth_password_history;
    kyufu_node__auth_propose(c, j->actor[0] != '\0' ? j->actor : NULL, "set_password", &sp,
            was_reset);
}

/* An ID administrator's call: signed in (a full session), the header's
 * actor empty or the session's account, on the leader (forwarded
 * otherwise).  0, or -1 with the call answered or forwarded. */
static int admin_call(struct kyufu_node_call *c,
                      const Kyufu__V1__RequestHeader *rh,
                      struct kyufu_principal *p)
{
    if (kyufu_node__auth_signed_in(c, p) != 0) {
        return -1;
    }
    if (p->setup_only) {
        kyufu_node__call_done(c, KYUFU_GRPC_PERMISSION_DENIED,
                              "a setup-only session may not do this: change "
                              "the password and enroll TOTP first",
                              NULL, 0);
        return -1;
    }
    if (rh != NULL && rh->actor != NULL && rh->actor[0] != '\0' &&
        strcmp(rh->actor, p->staff_id) != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_PERMISSION_DENIED,
                              "header.actor names another account than the "
                              "session's",
                              NULL, 0);
        return -1;
    }
    if (!kyufu_glue_is_leader(c->node->glue)) {
        kyufu_node__forward(c);
        return -1;
    }
    return 0;
}

static void reset_password(struct kyufu_node_call *c)
{
    Kyufu__V1__ResetPasswordRequest *r = c->request;
    if (!kyufu_node__auth_valid_staff_id(r->staff_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "staff_id must be 1..64 bytes of [a-z0-9._-]",
                              NULL, 0);
        return;
    }
    /* The actor is the session's account (apply checks it is an ID
     * administrator); RequestHeader.actor must be it or empty. */
    struct kyufu_principal p;
    if (admin_call(c, r->header, &p) != 0) {
        return;
    }
    struct temp_job *j = temp_new(c, reset_done);
    if (j == NULL) {
        return;
    }
    snprintf(j->staff_id, sizeof j->staff_id, "%s", r->staff_id);
    snprintf(j->actor, sizeof j->actor, "%s", p.staff_id);
    kyufu_node__auth_job_start(&j->job);
}

/* UnlockStaff, ResetTotp: an ID administrator's write, proposed with the
 * node's key (identity commands are the nodes' own), answered as any
 * write: WriteResponse. */
static void admin_written(struct kyufu_glue_propose *req, int status,
                          Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    if (kyufu_node__roles_out(result->staff) != 0) {
        kyufu__v1__command_result__free_unpacked(result, NULL);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    Kyufu__V1__WriteResponse resp = KYUFU__V1__WRITE_RESPONSE__INIT;
    resp.result = result;
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

/* An admin command naming one account (UnlockStaff, ResetTotp): checks
 * command.staff_id, then admin_call, then proposes `command` as `field`. */
static void admin_staff_command(struct kyufu_node_call *c,
                                const Kyufu__V1__RequestHeader *header,
                                const char *field, void *command,
                                const char *staff_id)
{
    struct kyufu_principal p;
    if (command == NULL || !kyufu_node__auth_valid_staff_id(staff_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "command.staff_id must be 1..64 bytes of "
                              "[a-z0-9._-]",
                              NULL, 0);
        return;
    }
    if (admin_call(c, header, &p) != 0) {
        return;
    }
    kyufu_node__auth_propose(c, p.staff_id, field, command, admin_written);
}

static void unlock_staff(struct kyufu_node_call *c)
{
    Kyufu__V1__UnlockStaffRequest *r = c->request;
    admin_staff_command(c, r->header, "unlock_staff", r->command,
                        r->command != NULL ? r->command->staff_id : NULL);
}

static void reset_totp(struct kyufu_node_call *c)
{
    Kyufu__V1__ResetTotpRequest *r = c->request;
    admin_staff_command(c, r->header, "reset_totp", r->command,
                        r->command != NULL ? r->command->staff_id : NULL);
}

static void created(struct kyufu_glue_propose *req, int status,
                    Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    struct kyufu_node_auth_ctx *x = c->auth;
    if (kyufu_node__roles_out(result->staff) != 0) {
        kyufu__v1__command_result__free_unpacked(result, NULL);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    /* Only the first answer of the key: a retry of an applied key gets its
     * stored result, and the stored hash is then not this proposal's (the
     * salts differ): no password (an ID administrator resets it). */
    bool first = false;
    Kyufu__V1__Credential *cred = NULL;
    if (result->staff != NULL &&
        kyufu_storage_get_credential(c->node->storage,
                                     result->staff->staff_id, &cred) == 0) {
        first = cred->password != NULL &&
                cred->password->salt.len == sizeof x->salt &&
                memcmp(cred->password->salt.data, x->salt, sizeof x->salt) ==
                    0;
        kyufu__v1__credential__free_unpacked(cred, NULL);
    }
    Kyufu__V1__WriteResponse resp = KYUFU__V1__WRITE_RESPONSE__INIT;
    resp.result = result;
    resp.temporary_password = first ? x->temporary : (char *)"";
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

static void create_done(struct kyufu_node_auth_job *jb)
{
    struct temp_job *j = (struct temp_job *)jb;
    struct kyufu_node_call *c = jb->c;
    if (j->rv != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "no randomness for a salt", NULL, 0);
        return;
    }
    if (!kyufu_glue_is_leader(c->node->glue)) {
        kyufu_node__forward(c); /* leadership moved while hashing */
        return;
    }
    /* On the heap, owned by the request from now on: however the proposal
     * ends (even answered at once, which frees the request), the request's
     * free releases it. */
    Kyufu__V1__PasswordHash *h = malloc(sizeof *h);
    uint8_t *salt = malloc(sizeof j->salt);
    uint8_t *hash = malloc(sizeof j->hash);
    if (h == NULL || salt == NULL || hash == NULL) {
        free(h);
        free(salt);
        free(hash);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    memcpy(salt, j->salt, sizeof j->salt);
    memcpy(hash, j->hash, sizeof j->hash);
    kyufu_node__auth_copy_hash(h, kyufu_pwhash_iterations(), salt, hash);
    memcpy(((struct kyufu_node_auth_ctx *)c->auth)->salt, j->salt,
           sizeof j->salt);
    assert(j->body->temporary_password == NULL); /* refused before */
    j->body->temporary_password = h;
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    cmd.create_staff = j->body;
    kyufu_node__propose(c, j->rh, &cmd, created);
}

void kyufu_node__auth_create_staff(struct kyufu_node_call *c,
                                   const Kyufu__V1__RequestHeader *rh,
                                   Kyufu__V1__CreateStaff *body)
{
    if (body->temporary_password != NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "temporary_password is made by the node and is "
                              "not accepted from clients (the answer carries "
                              "it once: WriteResponse.temporary_password)",
                              NULL, 0);
        return;
    }
    struct temp_job *j = temp_new(c, create_done);
    if (j == NULL) {
        return;
    }
    j->rh = rh;
    j->body = body;
    kyufu_node__auth_job_start(&j->job);
}

/* ------------------------------------------------------------ dispatch */

void kyufu_node__auth_call(struct kyufu_node_call *c)
{
    const char *path = c->method->path;
    const char *name = strrchr(path, '/') + 1;
    static const struct
    {
        const char *name;
        void (*fn)(struct kyufu_node_call *c);
    } rpcs[] = {
        {"SignIn", kyufu_node__auth_sign_in},
        {"SignOut", kyufu_node__auth_sign_out},
        {"WhoAmI", kyufu_node__auth_who_am_i},
        {"ChangePassword", change_password},
        {"EnrollTotp", enroll_totp},
        {"ConfirmTotp", confirm_totp},
        {"ResetPassword", reset_password},
        {"UnlockStaff", unlock_staff},
        {"ResetTotp", reset_totp},
    };
    for (size_t i = 0; i < sizeof rpcs / sizeof rpcs[0]; i++) {
        if (strcmp(rpcs[i].name, name) == 0) {
            rpcs[i].fn(c);
            return;
        }
    }
    assert(false); /* service.c's table names only these */
    kyufu_node__call_done(c, KYUFU_GRPC_UNIMPLEMENTED, "no such method",
                          NULL, 0);
}
