/* The Auth service's shared parts: see auth_service.h. */
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

/* ------------------------------------------------------------ policy */

int64_t kyufu_node__auth_idle_ms(const struct kyufu_node *n)
{
    if (n->auth.test_idle_ms > 0) {
        return n->auth.test_idle_ms;
    }
    return (int64_t)n->config->auth_session_idle_minutes * KYUFU_NODE_AUTH_MS_PER_MINUTE;
}

int64_t kyufu_node__auth_absolute_ms(const struct kyufu_node *n)
{
    return (int64_t)n->config->auth_session_max_hours * 60 * KYUFU_NODE_AUTH_MS_PER_MINUTE;
}

int64_t kyufu_node__auth_password_expires_ms(const struct kyufu_node *n, int64_t set_ms)
{
    if (n->config->auth_password_max_age_days == 0) {
        return 0;
    }
    return set_ms + (int64_t)n->config->auth_password_max_age_days * KYUFU_NODE_AUTH_MS_PER_DAY;
}

bool kyufu_node__auth_valid_staff_id(const char *s)
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
void kyufu_node__auth_utc_text(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, len, "%lld ms", (long long)ms);
    }
}

/* ------------------------------------------------------------ work */

void kyufu_node__auth_job_free(struct kyufu_node_auth_job *j)
{
    if (j->cred != NULL) {
        kyufu__v1__credential__free_unpacked(j->cred, NULL);
    }
    OPENSSL_cleanse(j, j->size); /* passwords, secrets */
    free(j);
}

static void job_work(uv_work_t *w)
{
    struct kyufu_node_auth_job *j = w->data;
    j->run(j);
}

static void job_after(uv_work_t *w, int status);

/* Hand j to a work thread; answers its call when libuv refuses.  Returns
 * whether it runs. */
static bool job_run(struct kyufu_node_auth_job *j)
{
    struct kyufu_node *n = j->c->node;
    if (uv_queue_work(&n->loop, &j->work, job_work, job_after) != 0) {
        kyufu_node__call_done(j->c, KYUFU_GRPC_INTERNAL,
                              "cannot queue the password check", NULL, 0);
        kyufu_node__auth_job_free(j);
        return false;
    }
    n->auth.running++;
    return true;
}

/* Hashes at once: the machine's cores, within the bounds (limits.h). */
static unsigned run_max(struct kyufu_node *n)
{
    if (n->auth.run_max == 0) {
        unsigned p = uv_available_parallelism();
        n->auth.run_max = p < KYUFU_NODE_AUTH_RUN_MIN   ? KYUFU_NODE_AUTH_RUN_MIN
                          : p > KYUFU_NODE_AUTH_RUN_MAX ? KYUFU_NODE_AUTH_RUN_MAX
                                                        : p;
    }
    return n->auth.run_max;
}

static bool stopping(struct kyufu_node *n)
{
    return n->glue == NULL || !kyufu_node__taking_calls(n);
}

/* A thread is free: the next queued hash runs on it.  Not hashed: a job
 * whose client went away (cancelled; its deadline passing cancels it
 * too), and every queued one once the node is stopping. */
static void job_next(struct kyufu_node *n)
{
    while (n->auth.queued != NULL &&
           (stopping(n) || n->auth.running < run_max(n) ||
            n->auth.queued->c->call->cancelled)) {
        struct kyufu_node_auth_job *j = n->auth.queued;
        n->auth.queued = j->next;
        if (n->auth.queued == NULL) {
            n->auth.queued_tail = NULL;
        }
        j->next = NULL;
        assert(n->auth.working > 0);
        if (stopping(n)) {
            kyufu_node__call_unavailable(j->c, "the node is stopping");
            kyufu_node__auth_job_free(j);
            n->auth.working--;
        } else if (j->c->call->cancelled) {
            kyufu_node__call_done(j->c, KYUFU_GRPC_CANCELLED,
                                  "cancelled while waiting for a password "
                                  "check",
                                  NULL, 0);
            kyufu_node__auth_job_free(j);
            n->auth.working--;
        } else if (!job_run(j)) {
            n->auth.working--;
        }
    }
}

static void job_after(uv_work_t *w, int status)
{
    struct kyufu_node_auth_job *j = w->data;
    struct kyufu_node *n = j->c->node;
    (void)status; /* nothing calls uv_cancel */
    assert(n->auth.working > 0 && n->auth.running > 0);
    n->auth.working--;
    n->auth.running--;
    job_next(n);
    if (stopping(n)) {
        kyufu_node__call_unavailable(j->c, "the node is stopping");
    } else {
        j->done(j);
    }
    kyufu_node__auth_job_free(j);
    if (n->finish_waiting && n->auth.working == 0 && n->offloaded == 0) {
        kyufu_node__finish(n);
    }
}

/* A zeroed job of `size` bytes, or NULL with the call answered. */
void *kyufu_node__auth_job_new(struct kyufu_node_call *c, size_t size, kyufu_node_auth_job_fn run,
                     kyufu_node_auth_job_fn done)
{
    struct kyufu_node *n = c->node;
    if (n->auth.working >= KYUFU_NODE_AUTH_WORK_MAX) {
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "too many password checks in progress on this "
                              "node; retry in a moment",
                              NULL, 0);
        return NULL;
    }
    struct kyufu_node_auth_job *j = calloc(1, size);
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

/* Run it, or queue it behind the running ones (run_max); answers the call
 * when the node is stopping or libuv refuses. */
void kyufu_node__auth_job_start(struct kyufu_node_auth_job *j)
{
    struct kyufu_node *n = j->c->node;
    if (stopping(n)) {
        kyufu_node__call_unavailable(j->c, "the node is stopping");
        kyufu_node__auth_job_free(j);
        return;
    }
    if (n->auth.running < run_max(n)) {
        if (job_run(j)) {
            n->auth.working++;
        }
        return;
    }
    n->auth.n_queued++;
    j->next = NULL;
    if (n->auth.queued_tail != NULL) {
        n->auth.queued_tail->next = j;
    } else {
        n->auth.queued = j;
    }
    n->auth.queued_tail = j;
    n->auth.working++;
}

/* ------------------------------------------------------------ propose */

void kyufu_node__auth_ctx_free(struct kyufu_node_call *c)
{
    if (c->auth != NULL) {
        struct kyufu_node_auth_ctx *x = c->auth;
        kyufu_node_signin_end(&c->node->auth.signin, x->signin_slot);
        if (x->signin_charged && !x->signin_failed) {
            kyufu_node_signin_peer_refund(&c->node->auth.signin,
                                          x->signin_cert,
                                          uv_now(&c->node->loop));
        }
        OPENSSL_cleanse(c->auth, sizeof(struct kyufu_node_auth_ctx));
        free(c->auth);
        c->auth = NULL;
    }
}

struct kyufu_node_auth_ctx *kyufu_node__auth_ctx(struct kyufu_node_call *c)
{
    if (c->auth == NULL) {
        c->auth = calloc(1, sizeof(struct kyufu_node_auth_ctx));
    }
    return c->auth;
}

/* Propose the Command member `field` = body with the node's header
 * (actor: staff id, or NULL for the node).  Answers the call itself when
 * the proposal cannot start (forwards it when leadership was just lost). */
void kyufu_node__auth_propose(struct kyufu_node_call *c, const char *actor,
                    const char *field, void *body, kyufu_glue_propose_cb cb)
{
    struct kyufu_node *n = c->node;
    struct kyufu_node_auth_command ac;
    if (!kyufu_node__auth_command(n, actor, field, body, &ac)) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "sign-in needs every voter to run an identity-"
                              "aware build (docs/operations.md, Upgrades)",
                              NULL, 0);
        return;
    }
    c->req.propose.data = c;
    c->proposed_ns = uv_hrtime();
    int rv = kyufu_glue_propose(n->glue, &c->req.propose, &ac.cmd, cb);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward(c);
    } else if (rv != 0) {
        kyufu_node__proposal_failed(c, rv);
    }
}

/* A write that answers only its status: OK -> `ok` (packed), else the
 * result's code and message. */
bool kyufu_node__auth_result_ok(struct kyufu_node_call *c, int status,
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
int kyufu_node__auth_read_account(struct kyufu_node_call *c, const char *staff_id,
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

void kyufu_node__auth_account_free(Kyufu__V1__StaffAccount *a,
                                   Kyufu__V1__Credential *cred)
{
    if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    if (cred != NULL) {
        kyufu__v1__credential__free_unpacked(cred, NULL);
    }
}

/* The caller as a signed-in account; -1 with the call answered. */
int kyufu_node__auth_signed_in(struct kyufu_node_call *c, struct kyufu_principal *p)
{
    *p = c->principal; /* authenticated once, in service.c authorize */
    if (p->kind != KYUFU_PRINCIPAL_STAFF) {
        kyufu_node__call_done(c, KYUFU_GRPC_UNAUTHENTICATED,
                              "sign in first (authorization: Bearer <token>)",
                              NULL, 0);
        return -1;
    }
    return 0;
}

void kyufu_node__auth_copy_hash(Kyufu__V1__PasswordHash *dst, uint32_t iterations,
                      uint8_t *salt, uint8_t *hash)
{
    kyufu__v1__password_hash__init(dst);
    dst->iterations = iterations;
    dst->salt.data = salt;
    dst->salt.len = KYUFU_PWHASH_SALT_BYTES;
    dst->hash.data = hash;
    dst->hash.len = KYUFU_PWHASH_BYTES;
}

