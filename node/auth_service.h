/* The Auth service's shared parts (issue 8; docs/identity.md), internal
 * to auth_work.c (work threads, proposals, reads), auth_signin.c (SignIn,
 * SignOut, WhoAmI) and auth_account.c (ChangePassword, TOTP, the ID
 * administrator's calls, CreateStaff's temporary password).
 *
 * Every password hash runs in a job on a libuv work thread
 * (KYUFU_NODE_AUTH_WORK_MAX admitted at once, as many as the cores
 * running, the rest queued: auth_work.c), never on the loop and never in
 * apply;
 * a job's memory is wiped when it is freed.  Identity commands are
 * proposed with the node's own key (apply takes them from nodes only),
 * the account as actor. */
#ifndef KYUFU_NODE_AUTH_SERVICE_H
#define KYUFU_NODE_AUTH_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "auth_node.h"
#include "auth_token.h"
#include "kyufu/v1/service.pb-c.h"
#include "password.h"
#include "pwhash.h"
#include "service.h"
#include "totp.h"

#define KYUFU_NODE_AUTH_MS_PER_MINUTE INT64_C(60000)
#define KYUFU_NODE_AUTH_MS_PER_DAY (INT64_C(24) * 60 * KYUFU_NODE_AUTH_MS_PER_MINUTE)

/* Policy from [auth], in milliseconds; password expiry 0 when off. */
int64_t kyufu_node__auth_idle_ms(const struct kyufu_node *n);
int64_t kyufu_node__auth_absolute_ms(const struct kyufu_node *n);
int64_t kyufu_node__auth_password_expires_ms(const struct kyufu_node *n,
                                             int64_t set_ms);
/* 1..64 bytes of [a-z0-9._-] */
bool kyufu_node__auth_valid_staff_id(const char *s);
/* "2026-12-05T10:15:00Z" */
void kyufu_node__auth_utc_text(int64_t ms, char *out, size_t len);

/* One hash job: the first member of each job's struct. */
struct kyufu_node_auth_job;
typedef void (*kyufu_node_auth_job_fn)(struct kyufu_node_auth_job *j);
struct kyufu_node_auth_job
{
    uv_work_t work;
    struct kyufu_node_call *c;
    kyufu_node_auth_job_fn run;  /* work thread: reads only the job */
    kyufu_node_auth_job_fn done; /* loop: answers or proposes; freed after */
    size_t size;
    /* The account's credential the job checks against (NULL: none),
     * owned by the job: freed with it, however it ends. */
    Kyufu__V1__Credential *cred;
    struct kyufu_node_auth_job *next; /* in the node's queue */
};

/* A zeroed job of `size` bytes (a struct starting with struct
 * kyufu_node_auth_job), or NULL with the call answered (over the limit,
 * out of memory).  Start it (which answers the call when
 * libuv refuses), or free it (its memory and its cred are wiped/freed). */
void *kyufu_node__auth_job_new(struct kyufu_node_call *c, size_t size,
                               kyufu_node_auth_job_fn run,
                               kyufu_node_auth_job_fn done);
void kyufu_node__auth_job_start(struct kyufu_node_auth_job *j);
void kyufu_node__auth_job_free(struct kyufu_node_auth_job *j);

/* What a call's proposal answers with, kept until its callback (c->auth,
 * freed with the call: kyufu_node__auth_ctx_free). */
struct kyufu_node_auth_ctx
{
    char token_hex[KYUFU_NODE_TOKEN_HEX_BYTES + 1];
    char temporary[KYUFU_PWHASH_TEMPORARY_CHARS + 1];
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
    bool unknown;         /* SignIn: no such account */
    unsigned signin_slot; /* SignIn: its in-flight slot (signin_limit.h),
                             released when the call ends */
    bool signin_charged;  /* SignIn: a token of its client certificate
                             (signin_cert) was taken when it started */
    bool signin_failed;   /* SignIn: it failed (the token stays spent;
                             else it is given back when the call ends) */
    uint8_t signin_cert[32];
    const char *fail_message; /* static; signin_fail's answer, if not
                                 "sign-in failed" */
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES]; /* CreateStaff: the hash's */
};

/* The call's context (allocated on first use); NULL when out of memory. */
struct kyufu_node_auth_ctx *kyufu_node__auth_ctx(struct kyufu_node_call *c);

/* Propose the Command member `field` = body with the node's header
 * (actor: a staff id, or NULL for the node).  Answers the call itself when
 * the proposal cannot start (forwards it when leadership was just lost). */
void kyufu_node__auth_propose(struct kyufu_node_call *c, const char *actor,
                              const char *field, void *body,
                              kyufu_glue_propose_cb cb);
/* A proposal's outcome: true when applied OK (the caller frees result);
 * else the call is answered (and result freed). */
bool kyufu_node__auth_result_ok(struct kyufu_node_call *c, int status,
                                Kyufu__V1__CommandResult *result);
/* The account (NULL when unknown) and its credential (NULL when none) from
 * this node's store.  0, or -1 with the call answered. */
int kyufu_node__auth_read_account(struct kyufu_node_call *c,
                                  const char *staff_id,
                                  Kyufu__V1__StaffAccount **a,
                                  Kyufu__V1__Credential **cred);
/* Frees what kyufu_node__auth_read_account gave (either may be NULL). */
void kyufu_node__auth_account_free(Kyufu__V1__StaffAccount *a,
                                   Kyufu__V1__Credential *cred);
/* The caller as a signed-in account (setup-only too); -1 with the call
 * answered. */
int kyufu_node__auth_signed_in(struct kyufu_node_call *c,
                               struct kyufu_principal *p);
/* dst = {iterations, salt, hash} (borrowed). */
void kyufu_node__auth_copy_hash(Kyufu__V1__PasswordHash *dst,
                                uint32_t iterations, uint8_t *salt,
                                uint8_t *hash);
/* Propose SignInFailed (lockout policy from [auth]; the audit record names
 * the reason) and answer "sign-in failed" (ChangePassword: its
 * fail_message) once applied (auth_signin.c). */
void kyufu_node__auth_signin_fail(struct kyufu_node_call *c,
                                  const char *staff_id, const char *reason);

/* The handlers of auth_signin.c (dispatched by auth_account.c). */
void kyufu_node__auth_sign_in(struct kyufu_node_call *c);
void kyufu_node__auth_sign_out(struct kyufu_node_call *c);
void kyufu_node__auth_who_am_i(struct kyufu_node_call *c);

#endif /* KYUFU_NODE_AUTH_SERVICE_H */
