/* Sign-in, sign-out and WhoAmI (issue 8; service.proto "Identity and
 * access"; docs/identity.md).  The shared parts are auth_work.c's.
 *
 * Happy path of SignIn (on the leader; a follower forwards it, with the
 * client's certificate fingerprint, forward.c): the account and its
 * credential are read on the loop -> the password (PBKDF2) and the TOTP
 * code are checked on a libuv work thread -> on the loop again: a random
 * 256-bit token, OpenSession proposed with its SHA-256 and the client
 * certificate's -> once applied, the token is answered (64 hex digits),
 * the only time it exists outside the caller.
 *
 * Every password hash (sign-in, change with the history check, reset,
 * provisioning) runs on a work thread (KYUFU_NODE_AUTH_WORK_MAX admitted
 * at once, as many as the cores running, the rest queued: auth_work.c;
 * more: RESOURCE_EXHAUSTED), never on the loop and never in apply.
 * A TOTP check is one HMAC: ConfirmTotp's runs on the loop, SignIn's with
 * the password on the work thread.
 *
 * Failure modes: every refused sign-in is UNAUTHENTICATED "sign-in
 * failed", whatever the reason (unknown account, wrong password or TOTP
 * code, suspended, disabled, locked, too many sign-ins of the account in
 * flight), and only after the password was hashed (a dummy hash for an
 * unknown account, the same cost) and SignInFailed was applied: neither
 * the answer nor its timing tells an existing account from an unknown
 * one.  The reason is in the audit record (SignInFailed.reason) and the
 * node's log line "sign-in refused", never in the answer.  Sign-ins are
 * bounded (signin_limit.h): per account in flight, per client
 * certificate in failures (RESOURCE_EXHAUSTED before the account is
 * read).  A proposal that fails is UNAVAILABLE (retry: a failed sign-in
 * wrote nothing, a retried one gets a new token).  No password, token,
 * hash or secret reaches a log line, an error message or a command other
 * than as the hash the command stores. */
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

/* ------------------------------------------------------------ SignIn */

#define ROLES_MAX 8 /* more than the Role enum's values */

/* The roles of a stored mask (1 << Role), in enum order; their count. */
static size_t roles_of(uint32_t mask, Kyufu__V1__Role roles[ROLES_MAX])
{
    size_t nr = 0;
    for (int v = KYUFU__V1__ROLE__ROLE_ID_ADMIN;
         v <= KYUFU__V1__ROLE__ROLE_OPERATOR && nr < ROLES_MAX; v++) {
        if ((mask & (1u << v)) != 0) {
            roles[nr++] = (Kyufu__V1__Role)v;
        }
    }
    return nr;
}

struct signin_job
{
    struct kyufu_node_auth_job job;
    /* in */
    char password[KYUFU_PASSWORD_BYTES_MAX + 1];
    size_t password_len;
    char code[8];
    /* job.cred: the account's credential when it has a password */
    bool totp_needed;
    int64_t now_ms;
    const char *refused; /* refused whatever the factors (static) */
    /* out */
    const char *failed; /* SignInFailed.reason, NULL: both factors good */
    uint64_t step;
};

static void signin_answer_failed(struct kyufu_glue_propose *req, int status,
                                 Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (status != 0) {
        kyufu_node__proposal_failed(c, status);
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    struct kyufu_node_auth_ctx *x = c->auth;
    kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                          x != NULL && x->fail_message != NULL
                              ? x->fail_message
                              : "sign-in failed",
                          NULL, 0);
}

/* Propose SignInFailed (the audit record names the reason) and answer
 * "sign-in failed" once it is applied. */
void kyufu_node__auth_signin_fail(struct kyufu_node_call *c, const char *staff_id,
                        const char *reason)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__SignInFailed f = KYUFU__V1__SIGN_IN_FAILED__INIT;
    f.staff_id = (char *)staff_id;
    f.reason = (char *)reason;
    f.lock_after = n->config->auth_lockout_failures;
    f.lock_ms = (int64_t)n->config->auth_lockout_minutes * KYUFU_NODE_AUTH_MS_PER_MINUTE;
    kyufu_log(KYUFU_LOG_INFO, "sign-in refused",
              KYUFU_LOG_S("staff_id", staff_id), KYUFU_LOG_S("reason", reason),
              KYUFU_LOG_S("peer", kyufu_node__auth_client_peer(c->call)));
    /* An unknown account cannot act: the node is the actor then. */
    struct kyufu_node_auth_ctx *x = c->auth;
    bool known = x == NULL || !x->unknown;
    kyufu_node__auth_propose(c, known ? staff_id : NULL, "sign_in_failed", &f,
            signin_answer_failed);
}

static void signin_run(struct kyufu_node_auth_job *jb)
{
    struct signin_job *j = (struct signin_job *)jb;
    const Kyufu__V1__Credential *cred = jb->cred;
    if (cred == NULL) {
        /* The same cost as a real check: no timing hint that the account
         * does not exist or has no password. */
        uint8_t salt[KYUFU_PWHASH_SALT_BYTES], hash[KYUFU_PWHASH_BYTES];
        (void)kyufu_pwhash_new(j->password, j->password_len,
                               kyufu_pwhash_iterations(), salt, hash);
        j->failed = j->refused != NULL ? j->refused : "password";
        return;
    }
    bool right = kyufu_node__password_matches(j->password, j->password_len,
                                              cred->password);
    if (j->refused != NULL) {
        j->failed = j->refused; /* no TOTP check: no oracle for it */
        return;
    }
    if (!right) {
        j->failed = "password";
        return;
    }
    if (j->totp_needed &&
        kyufu_node__totp_check(cred->totp_secret.data, cred->totp_secret.len,
                               j->now_ms / 1000, j->code, &j->step) != 0) {
        j->failed = "totp";
    }
}

static void signin_opened(struct kyufu_glue_propose *req, int status,
                          Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    struct kyufu_node_auth_ctx *x = c->auth;
    if (status != 0) {
        kyufu_node__proposal_failed(c, status);
        return;
    }
    if (result->code != KYUFU__V1__CODE__OK) {
        /* Apply refused it (locked meanwhile, TOTP step replayed, password
         * changed since): it counted the failure and audited why. */
        kyufu_log(KYUFU_LOG_INFO, "sign-in refused",
                  KYUFU_LOG_S("staff_id", x->staff_id),
                  KYUFU_LOG_S("reason", result->message),
                  KYUFU_LOG_S("peer", kyufu_node__auth_client_peer(c->call)));
        kyufu__v1__command_result__free_unpacked(result, NULL);
        x->signin_failed = true; /* its token stays spent */
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                              "sign-in failed", NULL, 0);
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    Kyufu__V1__SignInResponse resp = KYUFU__V1__SIGN_IN_RESPONSE__INIT;
    Kyufu__V1__Role roles[ROLES_MAX];
    size_t nr = roles_of(x->roles_mask, roles);
    resp.token = x->token_hex;
    resp.staff_id = x->staff_id;
    resp.roles = roles;
    resp.n_roles = nr;
    resp.idle_expires_ms = x->now_ms + kyufu_node__auth_idle_ms(c->node);
    resp.expires_ms = x->now_ms + kyufu_node__auth_absolute_ms(c->node);
    resp.setup_only = x->setup_only;
    resp.must_change_password = x->must_change;
    resp.totp_enrollment_required = x->totp_needed;
    resp.password_expires_ms =
        kyufu_node__auth_password_expires_ms(c->node, x->password_set_ms);
    kyufu_log(KYUFU_LOG_INFO, "signed in", KYUFU_LOG_S("staff_id", x->staff_id),
              KYUFU_LOG_S("setup_only", x->setup_only ? "true" : "false"),
              KYUFU_LOG_S("peer", kyufu_node__auth_client_peer(c->call)));
    kyufu_node__call_done_msg(c, &resp.base);
}

static void signin_done(struct kyufu_node_auth_job *jb)
{
    struct signin_job *j = (struct signin_job *)jb;
    struct kyufu_node_call *c = jb->c;
    struct kyufu_node *n = c->node;
    struct kyufu_node_auth_ctx *x = c->auth;
    if (j->failed != NULL) {
        x->signin_failed = true; /* its token stays spent */
        kyufu_node__auth_signin_fail(c, x->staff_id, j->failed);
        return;
    }
    uint8_t token[KYUFU_NODE_TOKEN_BYTES];
    uint8_t cert[32];
    if (RAND_bytes(token, sizeof token) != 1) {
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "no randomness for a session token", NULL, 0);
        return;
    }
    kyufu_node__hex_encode(token, sizeof token, x->token_hex);
    kyufu_node__token_hash(token, x->token_hash);
    OPENSSL_cleanse(token, sizeof token);
    bool has_cert = kyufu_node__auth_client_cert(c->call, cert);
    assert(has_cert); /* checked before the job */
    (void)has_cert;

    Kyufu__V1__OpenSession o = KYUFU__V1__OPEN_SESSION__INIT;
    o.staff_id = x->staff_id;
    o.token_hash.data = x->token_hash;
    o.token_hash.len = sizeof x->token_hash;
    o.cert_sha256.data = cert;
    o.cert_sha256.len = sizeof cert;
    char terminal[128] = "";
    const char *subject =
        kyufu_grpc_metadata_find(c->call->metadata, c->call->n_metadata,
                                 KYUFU_NODE_MD_CLIENT_SUBJECT);
    if (subject == NULL || c->call->peer_node_id == 0) {
        subject = c->call->peer_identity;
    }
    const char *cn = subject != NULL ? strstr(subject, "CN=") : NULL;
    if (cn != NULL) {
        snprintf(terminal, sizeof terminal, "%.*s",
                 (int)strcspn(cn + 3, "/,"), cn + 3);
    }
    o.terminal = terminal;
    o.idle_ms = kyufu_node__auth_idle_ms(n);
    o.absolute_ms = kyufu_node__auth_absolute_ms(n);
    o.setup_only = x->setup_only;
    /* A setup-only session of an account with TOTP carries the checked
     * step too: apply keeps it single-use (cluster version 3). */
    o.totp_step = j->totp_needed ? j->step : 0;
    o.password_set_ms = x->password_set_ms;
    x->now_ms = kyufu_node__auth_now_ms(n);
    kyufu_node__auth_propose(c, x->staff_id, "open_session", &o, signin_opened);
}

void kyufu_node__auth_sign_in(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__SignInRequest *r = c->request;
    if (!kyufu_node__auth_valid_staff_id(r->staff_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "staff_id must be 1..64 bytes of [a-z0-9._-]",
                              NULL, 0);
        return;
    }
    size_t plen = strlen(r->password);
    if (plen == 0 || plen > KYUFU_PASSWORD_BYTES_MAX) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "password must be 1..256 bytes", NULL, 0);
        return;
    }
    if (strlen(r->totp_code) > 6) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "totp_code must be 6 digits (or empty)", NULL,
                              0);
        return;
    }
    uint8_t cert[32];
    if (!kyufu_node__auth_client_cert(c->call, cert)) {
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                              "sign-in needs a client certificate (mutual "
                              "TLS): the session is bound to it",
                              NULL, 0);
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        kyufu_node__forward(c);
        return;
    }
    if (!kyufu_node_signin_peer_ok(&n->auth.signin, cert, uv_now(&n->loop))) {
        OPENSSL_cleanse(r->password, plen);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "too many failed sign-ins from this "
                              "certificate: wait a minute",
                              NULL, 0);
        return;
    }
    struct kyufu_node_auth_ctx *x = kyufu_node__auth_ctx(c);
    if (x == NULL) {
        OPENSSL_cleanse(r->password, plen);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    /* Its token now, not at its failure: sign-ins in flight at once must
     * not all pass the check above on the last one.  Given back when the
     * call ends without failing (kyufu_node__auth_ctx_free). */
    memcpy(x->signin_cert, cert, sizeof x->signin_cert);
    x->signin_charged = true;
    kyufu_node_signin_peer_take(&n->auth.signin, cert, uv_now(&n->loop));
    snprintf(x->staff_id, sizeof x->staff_id, "%s", r->staff_id);
    unsigned inflight = 0;
    x->signin_slot = kyufu_node_signin_begin(&n->auth.signin, r->staff_id,
                                             &inflight);
    if (x->signin_slot == 0) {
        OPENSSL_cleanse(r->password, plen);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "too many sign-ins at once: retry", NULL, 0);
        return;
    }
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cred = NULL;
    if (kyufu_node__auth_read_account(c, r->staff_id, &a, &cred) != 0) {
        return;
    }
    /* Decided now, told only after the hash (the same cost and answer for
     * every refusal: signin_run). */
    int64_t now = kyufu_node__auth_now_ms(n);
    const char *refused = NULL;
    uint32_t failures = cred != NULL ? cred->failures : 0;
    if (a == NULL) {
        refused = "unknown account";
        x->unknown = true;
    } else if (a->status == KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED) {
        refused = "suspended";
    } else if (a->status != KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE) {
        refused = "disabled";
    } else if (cred != NULL && cred->locked_until_ms > now) {
        refused = "locked";
    } else if (inflight > kyufu_node_signin_allowed(
                               n->config->auth_lockout_failures, failures)) {
        refused = "too many sign-ins of the account in flight";
    }
    struct signin_job *j =
        kyufu_node__auth_job_new(c, sizeof *j, signin_run, signin_done);
    if (j == NULL) {
        kyufu_node__auth_account_free(a, cred); /* answered: r is gone */
        return;
    }
    memcpy(j->password, r->password, plen);
    j->password_len = plen;
    OPENSSL_cleanse(r->password, plen);
    snprintf(j->code, sizeof j->code, "%s", r->totp_code);
    j->now_ms = now;
    j->refused = refused;
    if (a != NULL && cred != NULL && cred->password != NULL) {
        x->password_set_ms = cred->password_set_ms;
        int64_t expires = kyufu_node__auth_password_expires_ms(n, cred->password_set_ms);
        x->must_change = cred->must_change || (expires != 0 && now >= expires);
        x->totp_needed = !cred->totp_confirmed;
        x->setup_only = x->must_change || x->totp_needed;
        x->roles_mask = a->roles_mask;
        /* The second factor whenever the account has one, also for a
         * setup-only session (an expired or reset password). */
        j->totp_needed = cred->totp_confirmed;
        j->job.cred = cred; /* the job's from now on */
        cred = NULL;
    }
    kyufu_node__auth_account_free(a, cred);
    /* May answer the call (no work thread): nothing of it is touched after. */
    kyufu_node__auth_job_start(&j->job);
}

/* ------------------------------------------------------------ SignOut */

static void signed_out(struct kyufu_glue_propose *req, int status,
                       Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!kyufu_node__auth_result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    Kyufu__V1__SignOutResponse resp = KYUFU__V1__SIGN_OUT_RESPONSE__INIT;
    kyufu_node__call_done_msg(c, &resp.base);
}

void kyufu_node__auth_sign_out(struct kyufu_node_call *c)
{
    struct kyufu_principal p;
    if (kyufu_node__auth_signed_in(c, &p) != 0) {
        return;
    }
    if (!kyufu_glue_is_leader(c->node->glue)) {
        kyufu_node__forward(c);
        return;
    }
    Kyufu__V1__CloseSession cs = KYUFU__V1__CLOSE_SESSION__INIT;
    cs.token_hash.data = p.token_hash;
    cs.token_hash.len = sizeof p.token_hash;
    cs.reason = (char *)"sign-out";
    kyufu_node__auth_propose(c, p.staff_id, "close_session", &cs, signed_out);
}

/* ------------------------------------------------------------ WhoAmI */

void kyufu_node__auth_who_am_i(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    struct kyufu_principal p;
    if (kyufu_node__auth_signed_in(c, &p) != 0) {
        return;
    }
    /* The session was read and checked by authenticate (service.c): its
     * limits and terminal are in the principal; only the account's name
     * and the password's age are read here. */
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cred = NULL;
    if (kyufu_node__auth_read_account(c, p.staff_id, &a, &cred) != 0) {
        return;
    }
    Kyufu__V1__WhoAmIResponse resp = KYUFU__V1__WHO_AM_IRESPONSE__INIT;
    Kyufu__V1__Role roles[ROLES_MAX];
    size_t nr = roles_of(p.roles_mask, roles);
    resp.staff_id = p.staff_id;
    resp.display_name = a != NULL ? a->display_name : (char *)"";
    resp.roles = roles;
    resp.n_roles = nr;
    resp.setup_only = p.setup_only;
    resp.session = p.session_id;
    resp.idle_expires_ms = p.idle_expires_ms;
    resp.expires_ms = p.expires_ms;
    resp.terminal = p.terminal;
    resp.password_expires_ms =
        cred != NULL ? kyufu_node__auth_password_expires_ms(n, cred->password_set_ms) : 0;
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu_node__auth_account_free(a, cred);
}
