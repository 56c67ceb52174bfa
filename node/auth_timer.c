/* The leader's identity housekeeping and the first administrator (issue 8;
 * docs/identity.md "Sessions", "Accounts and their lifecycle").
 *
 * A one-second timer on every node:
 *   - bootstrap: a node that read a bootstrap-admin file at start deletes
 *     it once its store has an account; the leader proposes BootstrapAdmin
 *     from it while the staff table is empty (apply accepts it only then,
 *     so it happens once whichever node's file is used);
 *   - every KYUFU_NODE_AUTH_TICK_MS (a test knob may shorten it, to no
 *     less than the timer's second), on the leader: one TouchSessions for
 *     the sessions used since the last one, CloseSession ("expired") for
 *     sessions past their idle or absolute limit, PurgeStaff for accounts
 *     disabled longer than [auth] purge_after_days.
 * One proposal at a time; a failed one is tried again at the next tick.
 * Every time here is kyufu_node__auth_now_ms's: a step of this node's wall
 * clock neither closes every session nor stamps them (docs/chaos.md
 * "Clock steps and sessions").
 *
 * The bootstrap-admin file (DATA/bootstrap-admin, written by kyufuctl
 * cluster init): `key = value` lines staff_id, display_name, iterations,
 * salt (32 hex), hash (64 hex), each once, nothing else; refused (logged,
 * ignored) when group or others may read it, or malformed. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth_node.h"
#include "auth_service.h"
#include "bootstrap_file.h"
#include "log.h"
#include "node.h"
#include "pwhash.h"
#include "storage_limits.h"

#define BOOTSTRAP_FILE "bootstrap-admin"
#define TIMER_MS 1000u

/* --------------------------------------------------------- bootstrap file */

static void bootstrap_take(struct kyufu_node_auth *a,
                           const struct kyufu_node_bootstrap *b)
{
    snprintf(a->bootstrap_staff_id, sizeof a->bootstrap_staff_id, "%s",
             b->staff_id);
    snprintf(a->bootstrap_display_name, sizeof a->bootstrap_display_name,
             "%s", b->display_name);
    a->bootstrap_iterations = b->iterations;
    memcpy(a->bootstrap_salt, b->salt, sizeof a->bootstrap_salt);
    memcpy(a->bootstrap_hash, b->hash, sizeof a->bootstrap_hash);
}

/* Read DATA/bootstrap-admin if it is there: 0 (read, or absent), -1
 * refused (logged). */
static int read_bootstrap(struct kyufu_node *n)
{
    struct kyufu_node_auth *a = &n->auth;
    snprintf(a->bootstrap_path, sizeof a->bootstrap_path, "%s/%s",
             n->config->data_dir, BOOTSTRAP_FILE);
    FILE *f = fopen(a->bootstrap_path, "r");
    if (f == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        kyufu_log(KYUFU_LOG_ERROR, "bootstrap-admin file refused",
                  KYUFU_LOG_S("path", a->bootstrap_path),
                  KYUFU_LOG_S("reason", strerror(errno)));
        return -1;
    }
    char text[KYUFU_NODE_BOOTSTRAP_BYTES_MAX + 1];
    struct kyufu_node_bootstrap b;
    const char *why = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        why = "not a regular file";
    } else if ((st.st_mode & 077) != 0) {
        why = "readable or writable by group or others (it must be 0600: "
              "chmod 600 it)";
    } else {
        size_t len = fread(text, 1, KYUFU_NODE_BOOTSTRAP_BYTES_MAX + 1, f);
        if (len > KYUFU_NODE_BOOTSTRAP_BYTES_MAX) {
            why = "larger than 4096 bytes";
        } else if (memchr(text, '\0', len) != NULL) {
            why = "contains a NUL byte";
        } else {
            text[len] = '\0';
            why = kyufu_node__bootstrap_parse(text, &b);
            if (why == NULL) {
                bootstrap_take(a, &b);
            }
            OPENSSL_cleanse(&b, sizeof b);
        }
        OPENSSL_cleanse(text, sizeof text);
    }
    fclose(f);
    if (why != NULL) {
        OPENSSL_cleanse(a->bootstrap_hash, sizeof a->bootstrap_hash);
        kyufu_log(KYUFU_LOG_ERROR, "bootstrap-admin file refused",
                  KYUFU_LOG_S("path", a->bootstrap_path),
                  KYUFU_LOG_S("reason", why));
        return -1;
    }
    a->has_bootstrap = true;
    kyufu_log(KYUFU_LOG_INFO, "bootstrap-admin file read",
              KYUFU_LOG_S("path", a->bootstrap_path),
              KYUFU_LOG_S("staff_id", a->bootstrap_staff_id));
    return 0;
}

/* --------------------------------------------------------- proposals */

static void on_proposed(struct kyufu_glue_propose *req, int status,
                        Kyufu__V1__CommandResult *result)
{
    struct kyufu_node *n = req->data;
    n->auth.proposing = false;
    if (status != 0) {
        kyufu_node__check_fatal(n, status);
        return;
    }
    if (result->code != KYUFU__V1__CODE__OK &&
        result->code != KYUFU__V1__CODE__NOT_FOUND) {
        kyufu_log(KYUFU_LOG_WARN, "identity housekeeping refused",
                  KYUFU_LOG_S("message", result->message));
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

static void propose(struct kyufu_node *n, const char *field, void *body)
{
    struct kyufu_node_auth_command ac;
    if (!kyufu_node__auth_command(n, NULL, field, body, &ac)) {
        return; /* not every voter knows it yet: the next tick */
    }
    n->auth.propose.data = n;
    int rv = kyufu_glue_propose(n->glue, &n->auth.propose, &ac.cmd, on_proposed);
    if (rv != 0) {
        kyufu_node__check_fatal(n, rv);
        return;
    }
    n->auth.proposing = true;
}

static bool store_ok(struct kyufu_node *n, int rv)
{
    if (rv != 0 && kyufu_storage_is_fatal(rv)) {
        kyufu_log(KYUFU_LOG_ERROR, "fatal storage error in a query",
                  KYUFU_LOG_S("error", kyufu_storage_strerror(rv)));
        kyufu_node__stop_storage(n, rv);
    }
    return rv == 0;
}

/* The file's account while the staff table is empty; its deletion once
 * it is not.  True when a proposal went out. */
static bool tick_bootstrap(struct kyufu_node *n)
{
    struct kyufu_node_auth *a = &n->auth;
    bool empty = false;
    if (!a->has_bootstrap ||
        !store_ok(n, kyufu_storage_staff_empty(n->storage, &empty))) {
        return false;
    }
    if (!empty) {
        a->has_bootstrap = false;
        OPENSSL_cleanse(a->bootstrap_hash, sizeof a->bootstrap_hash);
        if (unlink(a->bootstrap_path) != 0 && errno != ENOENT) {
            kyufu_log(KYUFU_LOG_WARN, "bootstrap-admin file not deleted",
                      KYUFU_LOG_S("path", a->bootstrap_path),
                      KYUFU_LOG_S("error", strerror(errno)));
        } else {
            kyufu_log(KYUFU_LOG_INFO, "bootstrap-admin file deleted",
                      KYUFU_LOG_S("path", a->bootstrap_path));
        }
        return false;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        return false;
    }
    Kyufu__V1__PasswordHash h = KYUFU__V1__PASSWORD_HASH__INIT;
    h.iterations = a->bootstrap_iterations;
    h.salt.data = a->bootstrap_salt;
    h.salt.len = sizeof a->bootstrap_salt;
    h.hash.data = a->bootstrap_hash;
    h.hash.len = sizeof a->bootstrap_hash;
    Kyufu__V1__BootstrapAdmin b = KYUFU__V1__BOOTSTRAP_ADMIN__INIT;
    b.staff_id = a->bootstrap_staff_id;
    b.display_name = a->bootstrap_display_name;
    b.password = &h;
    propose(n, "bootstrap_admin", &b);
    if (n->auth.proposing) {
        kyufu_log(KYUFU_LOG_INFO, "bootstrap administrator proposed",
                  KYUFU_LOG_S("staff_id", a->bootstrap_staff_id));
    }
    return n->auth.proposing;
}

/* TouchSessions for the uses not sent yet. */
static bool tick_touch(struct kyufu_node *n)
{
    struct kyufu_node_auth *a = &n->auth;
    size_t k = 0;
    for (size_t i = 0; i < a->n_uses; i++) {
        k += a->uses[i].dirty ? 1 : 0;
    }
    if (k == 0) {
        return false;
    }
    ProtobufCBinaryData *hashes = calloc(k, sizeof *hashes);
    int64_t *used = calloc(k, sizeof *used);
    if (hashes == NULL || used == NULL) {
        free(hashes);
        free(used);
        return false;
    }
    k = 0;
    for (size_t i = 0; i < a->n_uses; i++) {
        if (a->uses[i].dirty) {
            hashes[k].data = a->uses[i].token_hash;
            hashes[k].len = sizeof a->uses[i].token_hash;
            used[k++] = a->uses[i].used_ms;
            a->uses[i].dirty = false;
        }
    }
    Kyufu__V1__TouchSessions t = KYUFU__V1__TOUCH_SESSIONS__INIT;
    t.n_token_hash = k;
    t.token_hash = hashes;
    t.n_used_ms = k;
    t.used_ms = used;
    propose(n, "touch_sessions", &t);
    free(hashes);
    free(used);
    return n->auth.proposing;
}

/* Fill the queue of expired sessions from one scan of the table: those
 * this node has not seen used since either (it may have seen a use the
 * store has not yet).  False on a store error. */
static bool scan_expired(struct kyufu_node *n, int64_t now)
{
    struct kyufu_node_auth *a = &n->auth;
    struct kyufu_storage_page page = {0};
    if (!store_ok(n, kyufu_storage_list_expired_sessions(
                         n->storage, now, KYUFU_NODE_AUTH_EXPIRED_MAX,
                         &page))) {
        return false;
    }
    assert(page.n <= KYUFU_NODE_AUTH_EXPIRED_MAX);
    for (size_t i = 0; i < page.n; i++) {
        Kyufu__V1__AuthSession *s = page.items[i];
        if (s->token_hash.len != sizeof a->expired[0]) {
            continue; /* not a key this node could close */
        }
        if (now < s->created_ms + s->absolute_ms &&
            now < kyufu_node__auth_last_use(n, s->token_hash.data) +
                      s->idle_ms) {
            continue;
        }
        memcpy(a->expired[a->n_expired++], s->token_hash.data,
               sizeof a->expired[0]);
    }
    kyufu_storage_page_free(&page);
    return true;
}

/* CloseSession for the next expired session (one per tick); the table is
 * read again only once the last scan's sessions are all closed. */
static bool tick_expire(struct kyufu_node *n, int64_t now)
{
    struct kyufu_node_auth *a = &n->auth;
    if (a->n_expired == 0 && !scan_expired(n, now)) {
        return false;
    }
    if (a->n_expired == 0) {
        return false;
    }
    a->n_expired--;
    Kyufu__V1__CloseSession cs = KYUFU__V1__CLOSE_SESSION__INIT;
    cs.token_hash.data = a->expired[a->n_expired];
    cs.token_hash.len = sizeof a->expired[0];
    cs.reason = (char *)"expired";
    propose(n, "close_session", &cs);
    return n->auth.proposing;
}

/* PurgeStaff for the first account disabled longer than the retention. */
static bool tick_purge(struct kyufu_node *n, int64_t now)
{
    struct kyufu_storage_page page = {0};
    int64_t before =
        now - (int64_t)n->config->auth_purge_after_days * 24 * 3600 * 1000;
    if (!store_ok(n, kyufu_storage_list_purgeable_staff(n->storage, before, 1,
                                                        &page))) {
        return false;
    }
    if (page.n > 0) {
        Kyufu__V1__StaffAccount *acc = page.items[0];
        Kyufu__V1__PurgeStaff ps = KYUFU__V1__PURGE_STAFF__INIT;
        ps.staff_id = acc->staff_id;
        kyufu_log(KYUFU_LOG_INFO, "purging a disabled account",
                  KYUFU_LOG_S("staff_id", acc->staff_id));
        propose(n, "purge_staff", &ps);
    }
    kyufu_storage_page_free(&page);
    return n->auth.proposing;
}

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    struct kyufu_node_auth *a = &n->auth;
    /* Read every second on every node: a step is logged when it happens,
     * not at the next call, and an agreeing clock keeps the anchor fresh. */
    int64_t now = kyufu_node__auth_now_ms(n);
    if (n->stop_requested || n->glue == NULL || a->proposing) {
        return;
    }
    if (!kyufu_glue_is_leader(n->glue)) {
        a->n_expired = 0; /* another leader may have seen uses since */
        a->sweep_touched = false;
    }
    if (tick_bootstrap(n) || !kyufu_glue_is_leader(n->glue)) {
        return;
    }
    uint64_t mono = uv_now(&n->loop);
    if (a->sweep_last_ms != 0 &&
        mono - a->sweep_last_ms < a->tick_ms) {
        return;
    }
    /* One TouchSessions per sweep: with a session used every second there
     * is always a use to send, and touching first at every tick kept the
     * expiry and the purge from ever running. */
    if (!a->sweep_touched) {
        a->sweep_touched = true;
        if (tick_touch(n)) {
            return; /* the rest at the next tick */
        }
    }
    if (tick_expire(n, now) || tick_purge(n, now)) {
        return;
    }
    a->sweep_touched = false;
    a->sweep_last_ms = mono;
}

/* A test knob (docs/testing.md "Test knobs"): the environment variable's
 * value if it is set and a whole number of milliseconds in [1, max], else
 * 0 (a malformed one is logged and ignored: a test that set it fails on
 * its own timing, production never sets it). */
static uint64_t test_knob(const char *name, uint64_t max)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long ms = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || ms == 0 ||
        ms > max) {
        kyufu_log(KYUFU_LOG_ERROR, "test knob ignored",
                  KYUFU_LOG_S("name", name), KYUFU_LOG_S("value", v));
        return 0;
    }
    kyufu_log(KYUFU_LOG_WARN, "test knob in effect",
              KYUFU_LOG_S("name", name), KYUFU_LOG_U("ms", ms));
    return ms;
}

int kyufu_node__auth_start(struct kyufu_node *n)
{
    int rv = read_bootstrap(n);
    uint64_t tick = test_knob("KYUFU_TEST_AUTH_TICK_MS", KYUFU_NODE_AUTH_TICK_MS);
    n->auth.tick_ms = tick != 0 ? tick : KYUFU_NODE_AUTH_TICK_MS;
    n->auth.test_idle_ms = (int64_t)test_knob(
        "KYUFU_TEST_SESSION_IDLE_MS", KYUFU_NODE_AUTH_SESSION_IDLE_MINUTES_MAX *
                                          (uint64_t)KYUFU_NODE_AUTH_MS_PER_MINUTE);
    (void)kyufu_node__auth_now_ms(n); /* the anchor: the clock at start */
    uv_timer_init(&n->loop, &n->auth.timer);
    n->auth.timer.data = n;
    uv_timer_start(&n->auth.timer, on_tick, TIMER_MS, TIMER_MS);
    n->auth.timer_started = true;
    return rv;
}

void kyufu_node__auth_close(struct kyufu_node *n)
{
    OPENSSL_cleanse(n->auth.bootstrap_hash, sizeof n->auth.bootstrap_hash);
    if (n->auth.timer_started) {
        uv_close((uv_handle_t *)&n->auth.timer, NULL);
        n->auth.timer_started = false;
    }
}
