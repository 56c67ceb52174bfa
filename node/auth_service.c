/* The Auth service (issue 8; service.proto "Identity and access";
 * docs/identity.md): SignIn, SignOut, WhoAmI, ChangePassword, EnrollTotp,
 * ConfirmTotp, ResetPassword, and the temporary password of CreateStaff.
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
 * provisioning) runs on a work thread (at most KYUFU_NODE_AUTH_WORK_MAX at
 * once; more: RESOURCE_EXHAUSTED), never on the loop and never in apply.
 * A TOTP check is one HMAC: ConfirmTotp's runs on the loop, SignIn's with
 * the password on the work thread.
 *
 * Failure modes: any failed factor of a sign-in is UNAUTHENTICATED
 * "sign-in failed" (which one is in the audit record, SignInFailed.reason,
 * never in the answer); a locked account is "account locked until <UTC
 * time>"; a proposal that fails is UNAVAILABLE (retry: a failed sign-in
 * wrote nothing, a retried one gets a new token).  No password, token,
 * hash or secret reaches a log line, an error message or a command other
 * than as the hash the command stores. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "auth_node.h"
#include "auth_token.h"
#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "password.h"
#include "pwhash.h"
#include "service.h"
#include "totp.h"

#define MS_PER_MINUTE INT64_C(60000)
#define MS_PER_DAY (INT64_C(24) * 60 * MS_PER_MINUTE)

/* ------------------------------------------------------------ policy */

static int64_t idle_ms(const struct kyufu_node *n)
{
    return (int64_t)n->config->auth_session_idle_minutes * MS_PER_MINUTE;
}

static int64_t absolute_ms(const struct kyufu_node *n)
{
    return (int64_t)n->config->auth_session_max_hours * 60 * MS_PER_MINUTE;
}

static int64_t password_expires_ms(const struct kyufu_node *n, int64_t set_ms)
{
    if (n->config->auth_password_max_age_days == 0) {
        return 0;
    }
    return set_ms + (int64_t)n->config->auth_password_max_age_days * MS_PER_DAY;
}

static bool valid_staff_id(const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0 || len > KYUFU_STAFF_ID_BYTES_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

/* "2026-12-05T10:15:00Z" */
static void utc_text(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, len, "%lld ms", (long long)ms);
    }
}

/* ------------------------------------------------------------ work */

/* One hash job: the first member of each job's struct. */
struct job;
typedef void (*job_fn)(struct job *j);
struct job
{
    uv_work_t work;
    struct kyufu_node_call *c;
    job_fn run;  /* work thread: reads only the job */
    job_fn done; /* loop: answers or proposes; the job is freed after */
    size_t size;
};

static void job_free(struct job *j)
{
    OPENSSL_cleanse(j, j->size); /* passwords, secrets */
    free(j);
}

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    j->run(j);
}

static void job_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct kyufu_node *n = j->c->node;
    (void)status; /* nothing calls uv_cancel */
    assert(n->auth.working > 0);
    n->auth.working--;
    if (n->glue == NULL || n->stop_requested) {
        kyufu_node__call_unavailable(j->c, "the node is stopping");
    } else {
        j->done(j);
    }
    job_free(j);
    if (n->finish_waiting && n->auth.working == 0 && n->offloaded == 0) {
        kyufu_node__finish(n);
    }
}

/* A zeroed job of `size` bytes, or NULL with the call answered. */
static void *job_new(struct kyufu_node_call *c, size_t size, job_fn run,
                     job_fn done)
{
    struct kyufu_node *n = c->node;
    if (n->auth.working >= KYUFU_NODE_AUTH_WORK_MAX) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "too many password checks in progress on this "
                              "node; retry in a moment",
                              NULL, 0);
        return NULL;
    }
    struct job *j = calloc(1, size);
    if (j == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return NULL;
    }
    j->c = c;
    j->run = run;
    j->done = done;
    j->size = size;
    j->work.data = j;
    return j;
}

/* Queue it; answers the call when libuv refuses. */
static void job_start(struct job *j)
{
    struct kyufu_node *n = j->c->node;
    if (uv_queue_work(&n->loop, &j->work, job_work, job_after) != 0) {
        kyufu_node__call_done(j->c, KYUFU_GRPC_INTERNAL,
                              "cannot queue the password check", NULL, 0);
        job_free(j);
        return;
    }
    n->auth.working++;
}

/* ------------------------------------------------------------ propose */

/* What a call's proposal answers with, kept until its callback (c->auth,
 * freed with the call: kyufu_node__auth_ctx_free). */
struct ctx
{
    char token_hex[KYUFU_NODE_TOKEN_HEX_BYTES + 1];
    char temporary[KYUFU_NODE_TEMP_PASSWORD_CHARS + 1];
    char base32[KYUFU_NODE_TOTP_BASE32_BYTES];
    char uri[KYUFU_NODE_TOTP_URI_BYTES];
    uint8_t token_hash[32];
    int64_t now_ms;
    int64_t password_set_ms;
    bool setup_only;
    bool must_change;
    bool totp_needed;
    uint32_t roles_mask;
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char locked_text[64]; /* SignInFailed for a locked account */
    bool unknown;         /* SignIn: no such account */
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES]; /* CreateStaff: the hash's */
};

void kyufu_node__auth_ctx_free(struct kyufu_node_call *c)
{
    if (c->auth != NULL) {
        OPENSSL_cleanse(c->auth, sizeof(struct ctx));
        free(c->auth);
        c->auth = NULL;
    }
}

static struct ctx *ctx_of(struct kyufu_node_call *c)
{
    if (c->auth == NULL) {
        c->auth = calloc(1, sizeof(struct ctx));
    }
    return c->auth;
}

/* Propose the Command member `field` = body with the node's header
 * (actor: staff id, or NULL for the node).  Answers the call itself when
 * the proposal cannot start (forwards it when leadership was just lost). */
static void propose(struct kyufu_node_call *c, const char *actor,
                    const char *field, void *body, kyufu_glue_propose_cb cb)
{
    struct kyufu_node *n = c->node;
    char actor_buf[32], client_buf[32];
    Kyufu__V1__IdempotencyKey key;
    Kyufu__V1__CommandHeader header;
    kyufu_node__auth_header(n, actor, actor_buf, client_buf, &key, &header);
    Kyufu__V1__Command cmd = KYUFU__V1__COMMAND__INIT;
    cmd.header = &header;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(
            &kyufu__v1__command__descriptor, field);
    assert(f != NULL && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0);
    *(void **)((char *)&cmd + f->offset) = body;
    *(uint32_t *)((char *)&cmd + f->quantifier_offset) = f->id;

    uint32_t cluster = 0;
    (void)kyufu_storage_cluster_version(n->storage, &cluster, NULL);
    if (kyufu_storage_command_since(cmd.body_case) > cluster) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "sign-in needs every voter to run an identity-"
                              "aware build (docs/operations.md, Upgrades)",
                              NULL, 0);
        return;
    }
    c->req.propose.data = c;
    c->proposed_ns = uv_hrtime();
    int rv = kyufu_glue_propose(n->glue, &c->req.propose, &cmd, cb);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward(c);
    } else if (rv != 0) {
        kyufu_node__proposal_failed(c, rv);
    }
}

/* A write that answers only its status: OK -> `ok` (packed), else the
 * result's code and message. */
static bool result_ok(struct kyufu_node_call *c, int status,
                      Kyufu__V1__CommandResult *result)
{
    if (status != 0) {
        kyufu_node__proposal_failed(c, status);
        return false;
    }
    if (result->code != KYUFU__V1__CODE__OK) {
        kyufu_node__call_done(c, (int)result->code, result->message, NULL, 0);
        kyufu__v1__command_result__free_unpacked(result, NULL);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ reads */

/* The account and credential of `staff_id` from this node's store; NULL
 * credential when it has none.  0, or -1 with the call answered. */
static int read_account(struct kyufu_node_call *c, const char *staff_id,
                        Kyufu__V1__StaffAccount **a,
                        Kyufu__V1__Credential **cred)
{
    struct kyufu_node *n = c->node;
    *a = NULL;
    *cred = NULL;
    int rv = kyufu_storage_get_staff(n->storage, staff_id, a);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "staff");
        return -1;
    }
    rv = kyufu_storage_get_credential(n->storage, staff_id, cred);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        kyufu__v1__staff_account__free_unpacked(*a, NULL);
        *a = NULL;
        kyufu_node__call_storage_error(c, rv, "credential");
        return -1;
    }
    return 0;
}

/* The caller as a signed-in account; -1 with the call answered. */
static int signed_in(struct kyufu_node_call *c, struct kyufu_principal *p)
{
    char msg[200];
    int status = kyufu_node__authenticate(c->node, c->call, p, msg,
                                          sizeof msg);
    if (status != KYUFU_GRPC_OK) {
        kyufu_node__call_done(c, status, msg, NULL, 0);
        return -1;
    }
    if (p->kind != KYUFU_PRINCIPAL_STAFF) {
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                              "sign in first (authorization: Bearer <token>)",
                              NULL, 0);
        return -1;
    }
    return 0;
}

static void copy_hash(Kyufu__V1__PasswordHash *dst, uint32_t iterations,
                      uint8_t *salt, uint8_t *hash)
{
    kyufu__v1__password_hash__init(dst);
    dst->iterations = iterations;
    dst->salt.data = salt;
    dst->salt.len = KYUFU_PWHASH_SALT_BYTES;
    dst->hash.data = hash;
    dst->hash.len = KYUFU_PWHASH_BYTES;
}

/* ------------------------------------------------------------ SignIn */

struct signin_job
{
    struct job job;
    /* in */
    char password[KYUFU_PASSWORD_BYTES_MAX + 1];
    size_t password_len;
    char code[8];
    uint32_t iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t hash[64];
    size_t hash_len;
    bool has_password; /* the account has a credential with a password */
    uint8_t secret[KYUFU_NODE_TOTP_SECRET_BYTES];
    bool totp_needed;
    int64_t now_ms;
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
    struct ctx *x = c->auth;
    if (x != NULL && x->locked_text[0] != '\0') {
        char msg[96];
        snprintf(msg, sizeof msg, "account locked until %s", x->locked_text);
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED, msg, NULL, 0);
        return;
    }
    kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED, "sign-in failed",
                          NULL, 0);
}

/* Propose SignInFailed (the audit record names the reason) and answer
 * "sign-in failed" once it is applied. */
static void signin_fail(struct kyufu_node_call *c, const char *staff_id,
                        const char *reason)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__SignInFailed f = KYUFU__V1__SIGN_IN_FAILED__INIT;
    f.staff_id = (char *)staff_id;
    f.reason = (char *)reason;
    f.lock_after = n->config->auth_lockout_failures;
    f.lock_ms = (int64_t)n->config->auth_lockout_minutes * MS_PER_MINUTE;
    kyufu_log(KYUFU_LOG_INFO, "sign-in refused",
              KYUFU_LOG_S("staff_id", staff_id), KYUFU_LOG_S("reason", reason),
              KYUFU_LOG_S("peer", kyufu_node__auth_client_peer(c->call)));
    /* An unknown account cannot act: the node is the actor then. */
    struct ctx *x = c->auth;
    bool known = x == NULL || !x->unknown;
    propose(c, known ? staff_id : NULL, "sign_in_failed", &f,
            signin_answer_failed);
}

static void signin_run(struct job *jb)
{
    struct signin_job *j = (struct signin_job *)jb;
    if (!j->has_password) {
        /* The same cost as a real check: no timing hint that the account
         * does not exist or has no password. */
        uint8_t salt[KYUFU_PWHASH_SALT_BYTES], hash[KYUFU_PWHASH_BYTES];
        (void)kyufu_pwhash_new(j->password, j->password_len,
                               KYUFU_PWHASH_ITERATIONS, salt, hash);
        j->failed = "password";
        return;
    }
    if (!kyufu_pwhash_check(j->password, j->password_len, j->iterations,
                            j->salt, j->salt_len, j->hash, j->hash_len)) {
        j->failed = "password";
        return;
    }
    if (j->totp_needed &&
        kyufu_node__totp_check(j->secret, sizeof j->secret,
                               j->now_ms / 1000, j->code, &j->step) != 0) {
        j->failed = "totp";
    }
}

static void signin_opened(struct kyufu_glue_propose *req, int status,
                          Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    struct ctx *x = c->auth;
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
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                              "sign-in failed", NULL, 0);
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    Kyufu__V1__SignInResponse resp = KYUFU__V1__SIGN_IN_RESPONSE__INIT;
    Kyufu__V1__Role roles[8];
    size_t nr = 0;
    for (int v = KYUFU__V1__ROLE__ROLE_ID_ADMIN;
         v <= KYUFU__V1__ROLE__ROLE_OPERATOR && nr < 8; v++) {
        if ((x->roles_mask & (1u << v)) != 0) {
            roles[nr++] = (Kyufu__V1__Role)v;
        }
    }
    resp.token = x->token_hex;
    resp.staff_id = x->staff_id;
    resp.roles = roles;
    resp.n_roles = nr;
    resp.idle_expires_ms = x->now_ms + idle_ms(c->node);
    resp.expires_ms = x->now_ms + absolute_ms(c->node);
    resp.setup_only = x->setup_only;
    resp.must_change_password = x->must_change;
    resp.totp_enrollment_required = x->totp_needed;
    resp.password_expires_ms =
        password_expires_ms(c->node, x->password_set_ms);
    kyufu_log(KYUFU_LOG_INFO, "signed in", KYUFU_LOG_S("staff_id", x->staff_id),
              KYUFU_LOG_S("setup_only", x->setup_only ? "true" : "false"),
              KYUFU_LOG_S("peer", kyufu_node__auth_client_peer(c->call)));
    kyufu_node__call_done_msg(c, &resp.base);
}

static void signin_done(struct job *jb)
{
    struct signin_job *j = (struct signin_job *)jb;
    struct kyufu_node_call *c = jb->c;
    struct kyufu_node *n = c->node;
    struct ctx *x = c->auth;
    if (j->failed != NULL) {
        signin_fail(c, x->staff_id, x->unknown ? "unknown account" : j->failed);
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
    o.idle_ms = idle_ms(n);
    o.absolute_ms = absolute_ms(n);
    o.setup_only = x->setup_only;
    o.totp_step = x->setup_only ? 0 : j->step;
    o.password_set_ms = x->password_set_ms;
    x->now_ms = kyufu_node__wall_ms();
    propose(c, x->staff_id, "open_session", &o, signin_opened);
}

static void sign_in(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__SignInRequest *r = c->request;
    if (!valid_staff_id(r->staff_id)) {
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
    struct ctx *x = ctx_of(c);
    if (x == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    snprintf(x->staff_id, sizeof x->staff_id, "%s", r->staff_id);
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cred = NULL;
    if (read_account(c, r->staff_id, &a, &cred) != 0) {
        return;
    }
    int64_t now = kyufu_node__wall_ms();
    const char *refused = NULL;
    if (a == NULL) {
        refused = "unknown account";
        x->unknown = true;
    } else if (a->status == KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED) {
        refused = "suspended";
    } else if (a->status != KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE) {
        refused = "disabled";
    } else if (cred != NULL && cred->locked_until_ms > now) {
        refused = "locked";
        utc_text(cred->locked_until_ms, x->locked_text,
                 sizeof x->locked_text);
    }
    if (refused != NULL && strcmp(refused, "unknown account") != 0) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
        if (cred != NULL) {
            kyufu__v1__credential__free_unpacked(cred, NULL);
        }
        signin_fail(c, x->staff_id, refused);
        return;
    }
    struct signin_job *j =
        job_new(c, sizeof *j, signin_run, signin_done);
    if (j == NULL) {
        goto out;
    }
    memcpy(j->password, r->password, plen);
    j->password_len = plen;
    snprintf(j->code, sizeof j->code, "%s", r->totp_code);
    j->now_ms = now;
    if (a != NULL && cred != NULL && cred->password != NULL &&
        cred->password->salt.len <= sizeof j->salt &&
        cred->password->hash.len <= sizeof j->hash) {
        j->has_password = true;
        j->iterations = cred->password->iterations;
        memcpy(j->salt, cred->password->salt.data, cred->password->salt.len);
        j->salt_len = cred->password->salt.len;
        memcpy(j->hash, cred->password->hash.data, cred->password->hash.len);
        j->hash_len = cred->password->hash.len;
        x->password_set_ms = cred->password_set_ms;
        int64_t expires = password_expires_ms(n, cred->password_set_ms);
        x->must_change = cred->must_change || (expires != 0 && now >= expires);
        x->totp_needed = !cred->totp_confirmed;
        x->setup_only = x->must_change || x->totp_needed;
        x->roles_mask = a->roles_mask;
        j->totp_needed = !x->setup_only;
        if (j->totp_needed &&
            cred->totp_secret.len == KYUFU_NODE_TOTP_SECRET_BYTES) {
            memcpy(j->secret, cred->totp_secret.data, sizeof j->secret);
        }
    }
    job_start(&j->job);
out:
    OPENSSL_cleanse(r->password, plen);
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    if (cred != NULL) {
        kyufu__v1__credential__free_unpacked(cred, NULL);
    }
}

/* ------------------------------------------------------------ SignOut */

static void signed_out(struct kyufu_glue_propose *req, int status,
                       Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    Kyufu__V1__SignOutResponse resp = KYUFU__V1__SIGN_OUT_RESPONSE__INIT;
    kyufu_node__call_done_msg(c, &resp.base);
}

static void sign_out(struct kyufu_node_call *c)
{
    struct kyufu_principal p;
    if (signed_in(c, &p) != 0) {
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
    propose(c, p.staff_id, "close_session", &cs, signed_out);
}

/* ------------------------------------------------------------ WhoAmI */

static void who_am_i(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    struct kyufu_principal p;
    if (signed_in(c, &p) != 0) {
        return;
    }
    Kyufu__V1__AuthSession *s = NULL;
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cred = NULL;
    int rv = kyufu_storage_get_auth_session(n->storage, p.token_hash, &s);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "session");
        return;
    }
    if (read_account(c, p.staff_id, &a, &cred) != 0) {
        kyufu__v1__auth_session__free_unpacked(s, NULL);
        return;
    }
    Kyufu__V1__WhoAmIResponse resp = KYUFU__V1__WHO_AM_IRESPONSE__INIT;
    Kyufu__V1__Role roles[8];
    size_t nr = 0;
    for (int v = KYUFU__V1__ROLE__ROLE_ID_ADMIN;
         v <= KYUFU__V1__ROLE__ROLE_OPERATOR && nr < 8; v++) {
        if ((p.roles_mask & (1u << v)) != 0) {
            roles[nr++] = (Kyufu__V1__Role)v;
        }
    }
    int64_t last = s->last_used_ms;
    int64_t mine = kyufu_node__auth_last_use(n, p.token_hash);
    resp.staff_id = p.staff_id;
    resp.display_name = a != NULL ? a->display_name : (char *)"";
    resp.roles = roles;
    resp.n_roles = nr;
    resp.setup_only = p.setup_only;
    resp.session = p.session_id;
    resp.idle_expires_ms = (mine > last ? mine : last) + s->idle_ms;
    resp.expires_ms = s->created_ms + s->absolute_ms;
    resp.terminal = s->terminal;
    resp.password_expires_ms =
        cred != NULL ? password_expires_ms(n, cred->password_set_ms) : 0;
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu__v1__auth_session__free_unpacked(s, NULL);
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    if (cred != NULL) {
        kyufu__v1__credential__free_unpacked(cred, NULL);
    }
}

/* ------------------------------------------------------------ ChangePassword */

struct change_job
{
    struct job job;
    char old_pw[KYUFU_PASSWORD_BYTES_MAX + 1];
    char new_pw[KYUFU_PASSWORD_BYTES_MAX + 1];
    size_t old_len, new_len;
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char display_name[256];
    unsigned min_length, history;
    Kyufu__V1__Credential *cred; /* freed in done */
    /* out */
    int status;            /* KYUFU_GRPC_*: OK -> propose */
    char why[256];
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES];
    uint8_t hash[KYUFU_PWHASH_BYTES];
};

static void change_run(struct job *jb)
{
    struct change_job *j = (struct change_job *)jb;
    if (!kyufu_node__password_matches(j->old_pw, j->old_len,
                                      j->cred->password)) {
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
    if (kyufu_node__password_reused(j->new_pw, j->new_len, j->cred->password,
                                    j->cred->previous, j->cred->n_previous,
                                    j->history)) {
        j->status = KYUFU_GRPC_INVALID_ARGUMENT;
        snprintf(j->why, sizeof j->why,
                 "the new password is the current one or one of the last "
                 "%u: choose another",
                 j->history);
        return;
    }
    if (kyufu_pwhash_new(j->new_pw, j->new_len, KYUFU_PWHASH_ITERATIONS,
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
    if (!result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    struct ctx *x = c->auth;
    kyufu_log(KYUFU_LOG_INFO, "password changed",
              KYUFU_LOG_S("staff_id", x->staff_id));
    Kyufu__V1__ChangePasswordResponse resp =
        KYUFU__V1__CHANGE_PASSWORD_RESPONSE__INIT;
    resp.password_expires_ms = password_expires_ms(c->node, x->now_ms);
    kyufu_node__call_done_msg(c, &resp.base);
}

static void change_done(struct job *jb)
{
    struct change_job *j = (struct change_job *)jb;
    struct kyufu_node_call *c = jb->c;
    struct kyufu_node *n = c->node;
    kyufu__v1__credential__free_unpacked(j->cred, NULL);
    j->cred = NULL;
    if (j->status == KYUFU_GRPC_UNAUTHENTICATED) {
        /* A wrong old password counts as a failed sign-in (lockout). */
        signin_fail(c, j->staff_id, "password");
        return;
    }
    if (j->status != KYUFU_GRPC_OK) {
        kyufu_node__call_done(c, j->status, j->why, NULL, 0);
        return;
    }
    struct ctx *x = c->auth;
    x->now_ms = kyufu_node__wall_ms();
    Kyufu__V1__PasswordHash h;
    copy_hash(&h, KYUFU_PWHASH_ITERATIONS, j->salt, j->hash);
    Kyufu__V1__SetPassword sp = KYUFU__V1__SET_PASSWORD__INIT;
    sp.staff_id = j->staff_id;
    sp.password = &h;
    sp.temporary = false;
    sp.history = n->config->auth_password_history;
    propose(c, j->staff_id, "set_password", &sp, changed);
}

static void change_password(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    Kyufu__V1__ChangePasswordRequest *r = c->request;
    struct kyufu_principal p;
    if (signed_in(c, &p) != 0) {
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
    struct ctx *x = ctx_of(c);
    Kyufu__V1__StaffAccount *a = NULL;
    Kyufu__V1__Credential *cred = NULL;
    if (x == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    snprintf(x->staff_id, sizeof x->staff_id, "%s", p.staff_id);
    if (read_account(c, p.staff_id, &a, &cred) != 0) {
        return;
    }
    if (a == NULL || cred == NULL || cred->password == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "the account has no password to change", NULL,
                              0);
        goto out;
    }
    struct change_job *j = job_new(c, sizeof *j, change_run, change_done);
    if (j == NULL) {
        goto out;
    }
    memcpy(j->old_pw, r->old_password, olen);
    j->old_len = olen;
    memcpy(j->new_pw, r->new_password, nlen);
    j->new_len = nlen;
    snprintf(j->staff_id, sizeof j->staff_id, "%s", p.staff_id);
    snprintf(j->display_name, sizeof j->display_name, "%s", a->display_name);
    j->min_length = n->config->auth_password_min_length;
    j->history = n->config->auth_password_history;
    j->cred = cred;
    cred = NULL;
    job_start(&j->job);
out:
    OPENSSL_cleanse(r->old_password, olen);
    OPENSSL_cleanse(r->new_password, nlen);
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    if (cred != NULL) {
        kyufu__v1__credential__free_unpacked(cred, NULL);
    }
}

/* ------------------------------------------------------------ TOTP */

static void enrolled(struct kyufu_glue_propose *req, int status,
                     Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!result_ok(c, status, result)) {
        return;
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    struct ctx *x = c->auth;
    Kyufu__V1__EnrollTotpResponse resp = KYUFU__V1__ENROLL_TOTP_RESPONSE__INIT;
    resp.secret_base32 = x->base32;
    resp.otpauth_uri = x->uri;
    kyufu_node__call_done_msg(c, &resp.base);
}

static void enroll_totp(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    struct kyufu_principal p;
    if (signed_in(c, &p) != 0) {
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
    struct ctx *x = ctx_of(c);
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
    propose(c, p.staff_id, "enroll_totp", &e, enrolled);
    OPENSSL_cleanse(secret, sizeof secret); /* packed by the proposal */
}

static void confirmed(struct kyufu_glue_propose *req, int status,
                      Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!result_ok(c, status, result)) {
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
    if (signed_in(c, &p) != 0) {
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
                                    kyufu_node__wall_ms() / 1000,
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
    propose(c, p.staff_id, "confirm_totp", &ct, confirmed);
}

/* ------------------------------------------------------------ temporary passwords */

/* ResetPassword and CreateStaff: a new temporary password hashed on a work
 * thread, then a command carrying the hash. */
struct temp_job
{
    struct job job;
    char password[KYUFU_NODE_TEMP_PASSWORD_CHARS + 1];
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES];
    uint8_t hash[KYUFU_PWHASH_BYTES];
    int rv;
    /* CreateStaff: the request's header and body (owned by the call) */
    const Kyufu__V1__RequestHeader *rh;
    Kyufu__V1__CreateStaff *body;
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char actor[KYUFU_STAFF_ID_BYTES_MAX + 1];
};

static void temp_run(struct job *jb)
{
    struct temp_job *j = (struct temp_job *)jb;
    j->rv = kyufu_pwhash_new(j->password, strlen(j->password),
                             KYUFU_PWHASH_ITERATIONS, j->salt, j->hash);
}

/* Make the password now (RAND_bytes is fine on the loop), hash it later. */
static struct temp_job *temp_new(struct kyufu_node_call *c, job_fn done)
{
    struct ctx *x = ctx_of(c);
    if (x == NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return NULL;
    }
    struct temp_job *j = job_new(c, sizeof *j, temp_run, done);
    if (j == NULL) {
        return NULL;
    }
    if (kyufu_node__password_temporary(j->password, sizeof j->password) !=
        0) {
        job_free(&j->job);
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
    if (!result_ok(c, status, result)) {
        return;
    }
    struct ctx *x = c->auth;
    Kyufu__V1__ResetPasswordResponse resp =
        KYUFU__V1__RESET_PASSWORD_RESPONSE__INIT;
    resp.result = result;
    resp.temporary_password = x->temporary;
    kyufu_node__call_done_msg(c, &resp.base);
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

static void reset_done(struct job *jb)
{
    struct temp_job *j = (struct temp_job *)jb;
    struct kyufu_node_call *c = jb->c;
    if (j->rv != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "no randomness for a salt", NULL, 0);
        return;
    }
    Kyufu__V1__PasswordHash h;
    copy_hash(&h, KYUFU_PWHASH_ITERATIONS, j->salt, j->hash);
    Kyufu__V1__SetPassword sp = KYUFU__V1__SET_PASSWORD__INIT;
    sp.staff_id = j->staff_id;
    sp.password = &h;
    sp.temporary = true;
    sp.history = c->node->config->auth_password_history;
    propose(c, j->actor[0] != '\0' ? j->actor : NULL, "set_password", &sp,
            was_reset);
}

/* An ID administrator's call: signed in (a full session), the header's
 * actor empty or the session's account, on the leader (forwarded
 * otherwise).  0, or -1 with the call answered or forwarded. */
static int admin_call(struct kyufu_node_call *c,
                      const Kyufu__V1__RequestHeader *rh,
                      struct kyufu_principal *p)
{
    if (signed_in(c, p) != 0) {
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
    if (!valid_staff_id(r->staff_id)) {
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
    job_start(&j->job);
}

/* UnlockStaff, ResetTotp: an ID administrator's write, proposed with the
 * node's key (identity commands are the nodes' own), answered as any
 * write: WriteResponse. */
static void admin_written(struct kyufu_glue_propose *req, int status,
                          Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!result_ok(c, status, result)) {
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

static void unlock_staff(struct kyufu_node_call *c)
{
    Kyufu__V1__UnlockStaffRequest *r = c->request;
    struct kyufu_principal p;
    if (r->command == NULL || !valid_staff_id(r->command->staff_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "command.staff_id must be 1..64 bytes of "
                              "[a-z0-9._-]",
                              NULL, 0);
        return;
    }
    if (admin_call(c, r->header, &p) != 0) {
        return;
    }
    propose(c, p.staff_id, "unlock_staff", r->command, admin_written);
}

static void reset_totp(struct kyufu_node_call *c)
{
    Kyufu__V1__ResetTotpRequest *r = c->request;
    struct kyufu_principal p;
    if (r->command == NULL || !valid_staff_id(r->command->staff_id)) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "command.staff_id must be 1..64 bytes of "
                              "[a-z0-9._-]",
                              NULL, 0);
        return;
    }
    if (admin_call(c, r->header, &p) != 0) {
        return;
    }
    propose(c, p.staff_id, "reset_totp", r->command, admin_written);
}

static void created(struct kyufu_glue_propose *req, int status,
                    Kyufu__V1__CommandResult *result)
{
    struct kyufu_node_call *c = req->data;
    if (!result_ok(c, status, result)) {
        return;
    }
    struct ctx *x = c->auth;
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

static void create_done(struct job *jb)
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
    Kyufu__V1__PasswordHash h;
    copy_hash(&h, KYUFU_PWHASH_ITERATIONS, j->salt, j->hash);
    memcpy(((struct ctx *)c->auth)->salt, j->salt, sizeof j->salt);
    j->body->temporary_password = &h;
    kyufu_node__propose(c, j->rh, "create_staff", j->body, created);
    /* Packed by the proposal; the request must not free our stack copy. */
    j->body->temporary_password = NULL;
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
    job_start(&j->job);
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
        {"SignIn", sign_in},
        {"SignOut", sign_out},
        {"WhoAmI", who_am_i},
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
