/* Config parsing and validation: see config.h.
 *
 * libinih does the INI syntax; we feed it through our own line reader so we
 * know the line of every key (Debian's inih is built without
 * INI_HANDLER_LINENO), can refuse lines longer than inih's buffer (it would
 * split them silently) and can check section names even for empty sections.
 * Values are checked as they arrive; rules that span keys are checked once
 * the whole file is read. */
#include "config.h"
#include "config_values.h"
#include "slo.h"
#include "textconf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glue.h"
#include "keys.h"
#include "storage.h"
#include "pwhash.h"

const char *kyufu_config_strerror(int rv)
{
    switch (rv) {
#define KYUFU_CONFIG__STR(name, value, text)                                 \
    case value:                                                              \
        return text;
        KYUFU_CONFIG_ERRORS(KYUFU_CONFIG__STR)
#undef KYUFU_CONFIG__STR
    }
    return "unknown config error";
}

/* Keys of the fixed sections.  `seen` holds the line a key was set on, so
 * duplicates and missing required keys can be named. */
enum key_id {
    K_NODE_ID,
    K_NODE_DATA_DIR,
    K_NODE_RAFT_ADDRESS,
    K_NODE_API_ADDRESS,
    K_TLS_CA,
    K_TLS_CERT,
    K_TLS_KEY,
    K_RAFT_ELECTION,
    K_RAFT_HEARTBEAT,
    K_RAFT_SNAPSHOT_THRESHOLD,
    K_RAFT_SNAPSHOT_TRAILING,
    K_RAFT_ENTRIES_INFLIGHT, /* issue 9: the proposer's in-flight window */
    K_LOG_LEVEL,
    K_API_CONNECTIONS,
    K_API_PER_ADDRESS,
    K_API_ALLOW,
    K_POWER_UPS,
    K_POWER_DOMAIN,
    K_POWER_POLL,
    K_POWER_COMMAND,
    K_RAFT_ALLOW,
    K_SLA_SLO_FILE,
    K_SLA_ALERT_COMMAND,
    K_SLA_ALERT_TIMEOUT,
    K_METRICS_LISTEN,
    K_METRICS_TLS,
    K_METRICS_CLIENT_CERT,
    K_NODE_JOIN,
    K_SLA_HEARTBEAT, /* SLA: availability ledger (slacore) */
    K_SLA_ALLOW_DRILLS,
    K_AUDIT_CHECKPOINT_FILE, /* operation log (h/oplog; node/oplog.h) */
    K_AUDIT_CHECKPOINT_INTERVAL,
    K_AUDIT_CHECKPOINT_RECORDS,
    K_TLS_CRL, /* certs: revoked terminal/operator/node certificates */
    /* Identity (issue 8): [auth] */
    K_AUTH_PASSWORD_MIN_LENGTH,
    K_AUTH_PASSWORD_MAX_AGE,
    K_AUTH_PASSWORD_HISTORY,
    K_AUTH_LOCKOUT_FAILURES,
    K_AUTH_LOCKOUT_MINUTES,
    K_AUTH_SESSION_IDLE,
    K_AUTH_SESSION_MAX,
    K_AUTH_PURGE_AFTER,
    K_STORAGE_FLUSH, /* issue 9: when the store reaches the disk */
    /* h/suite: the test-only password hash cost (docs/testing.md) */
    K_INSECURE_TEST_PASSWORD_ITERATIONS,
    /* Encryption at rest (issue 12, docs/encryption.md): [keys] */
    K_KEYS_KEK_FILE,
    K_KEYS_PASSPHRASE_FILE,
    K_KEYS_CMK_FILE,
    K_KEYS_REENCRYPT_RATE, /* the leader's re-encryption after a rotation */
    /* Backups (issue 12, h/backup; docs/backup.md): [backup] */
    K_BACKUP_DIRECTORY,
    K_BACKUP_KEK_FILE,
    K_BACKUP_MAX_BYTES,
    /* Scheduled backups (h/schedule) */
    K_BACKUP_IO_PRIORITY,
    K_BACKUP_INTERVAL,
    K_BACKUP_KEEP_LAST,
    K_BACKUP_KEEP_DAILY,
    K_BACKUP_KEEP_MONTHLY,
    K_BACKUP_REQUIRE_MOUNT, /* the backup directory's mount (issue 12) */
    K_SCRUB_INTERVAL,
    K_COUNT
};

struct key_spec
{
    const char *section;
    const char *key;
    bool required;
    /* [raft] keys: the raft-glue option the key sets, whose default and
     * bounds are raft-glue's (glue_limits.h); KYUFU_GLUE_OPTION_COUNT for
     * the others. */
    enum kyufu_glue_option option;
    const char *unit; /* numeric keys with a default: what they count */
};

#define NOT_RAFT KYUFU_GLUE_OPTION_COUNT, NULL
static const struct key_spec keys[K_COUNT] = {
    [K_NODE_ID] = {"node", "id", true, NOT_RAFT},
    [K_NODE_DATA_DIR] = {"node", "data_dir", true, NOT_RAFT},
    [K_NODE_RAFT_ADDRESS] = {"node", "raft_address", true, NOT_RAFT},
    [K_NODE_API_ADDRESS] = {"node", "api_address", true, NOT_RAFT},
    [K_TLS_CA] = {"tls", "ca", true, NOT_RAFT},
    [K_TLS_CERT] = {"tls", "cert", true, NOT_RAFT},
    [K_TLS_KEY] = {"tls", "key", true, NOT_RAFT},
    [K_RAFT_ELECTION] = {"raft", "election_timeout_ms", false,
                         KYUFU_GLUE_OPTION_ELECTION_TIMEOUT_MS,
                         "milliseconds"},
    [K_RAFT_HEARTBEAT] = {"raft", "heartbeat_timeout_ms", false,
                          KYUFU_GLUE_OPTION_HEARTBEAT_TIMEOUT_MS,
                          "milliseconds"},
    [K_RAFT_SNAPSHOT_THRESHOLD] = {"raft", "snapshot_threshold", false,
                                   KYUFU_GLUE_OPTION_SNAPSHOT_THRESHOLD_ENTRIES,
                                   "entries"},
    [K_RAFT_SNAPSHOT_TRAILING] = {"raft", "snapshot_trailing", false,
                                  KYUFU_GLUE_OPTION_SNAPSHOT_TRAILING_ENTRIES,
                                  "entries"},
    [K_RAFT_ENTRIES_INFLIGHT] = {"raft", "group_commit_entries_inflight",
                                 false,
                                 KYUFU_GLUE_OPTION_GROUP_COMMIT_ENTRIES_INFLIGHT,
                                 "entries"},
    [K_LOG_LEVEL] = {"log", "level", false, NOT_RAFT},
    [K_API_CONNECTIONS] = {"api", "connections_max", false,
                           KYUFU_GLUE_OPTION_COUNT, "connections"},
    [K_API_PER_ADDRESS] = {"api", "connections_per_address_max", false,
                           KYUFU_GLUE_OPTION_COUNT, "connections"},
    [K_API_ALLOW] = {"api", "allow", false, NOT_RAFT},
    [K_RAFT_ALLOW] = {"raft", "allow", false, NOT_RAFT},
    [K_POWER_UPS] = {"power", "ups", false, NOT_RAFT},
    [K_POWER_DOMAIN] = {"power", "domain", false, NOT_RAFT},
    [K_POWER_POLL] = {"power", "poll_ms", false, KYUFU_GLUE_OPTION_COUNT,
                      "milliseconds"},
    [K_POWER_COMMAND] = {"power", "shutdown_command", false, NOT_RAFT},
    [K_SLA_SLO_FILE] = {"sla", "slo_file", false, NOT_RAFT},
    [K_SLA_ALERT_COMMAND] = {"sla", "alert_command", false, NOT_RAFT},
    [K_SLA_ALERT_TIMEOUT] = {"sla", "alert_command_timeout_ms", false,
                             KYUFU_GLUE_OPTION_COUNT, "milliseconds"},
    [K_METRICS_LISTEN] = {"node", "metrics_listen", false, NOT_RAFT},
    [K_METRICS_TLS] = {"node", "metrics_tls", false, NOT_RAFT},
    [K_METRICS_CLIENT_CERT] = {"node", "metrics_tls_client_cert", false,
                               NOT_RAFT},
    [K_NODE_JOIN] = {"node", "join", false, NOT_RAFT},
    [K_SLA_HEARTBEAT] = {"sla", "heartbeat_ms", false, KYUFU_GLUE_OPTION_COUNT,
                         "milliseconds"},
    [K_SLA_ALLOW_DRILLS] = {"sla", "allow_drills", false, NOT_RAFT},
    [K_STORAGE_FLUSH] = {"storage", "flush", false, NOT_RAFT},
    /* No default printed: not a setting for production. */
    [K_INSECURE_TEST_PASSWORD_ITERATIONS] = {"insecure_test",
                                             "password_iterations", false,
                                             NOT_RAFT},
    [K_AUDIT_CHECKPOINT_FILE] = {"audit", "checkpoint_file", false, NOT_RAFT},
    [K_AUDIT_CHECKPOINT_INTERVAL] = {"audit", "checkpoint_interval_seconds",
                                     false, KYUFU_GLUE_OPTION_COUNT,
                                     "seconds"},
    [K_AUDIT_CHECKPOINT_RECORDS] = {"audit", "checkpoint_records", false,
                                    KYUFU_GLUE_OPTION_COUNT, "records"},
    [K_TLS_CRL] = {"tls", "crl_file", false, NOT_RAFT},
    /* Identity (issue 8): [auth] */
    [K_AUTH_PASSWORD_MIN_LENGTH] = {"auth", "password_min_length", false,
                                    KYUFU_GLUE_OPTION_COUNT, "characters"},
    [K_AUTH_PASSWORD_MAX_AGE] = {"auth", "password_max_age_days", false,
                                 KYUFU_GLUE_OPTION_COUNT, "days"},
    [K_AUTH_PASSWORD_HISTORY] = {"auth", "password_history", false,
                                 KYUFU_GLUE_OPTION_COUNT, "passwords"},
    [K_AUTH_LOCKOUT_FAILURES] = {"auth", "lockout_failures", false,
                                 KYUFU_GLUE_OPTION_COUNT, "failures"},
    [K_AUTH_LOCKOUT_MINUTES] = {"auth", "lockout_minutes", false,
                                KYUFU_GLUE_OPTION_COUNT, "minutes"},
    [K_AUTH_SESSION_IDLE] = {"auth", "session_idle_minutes", false,
                             KYUFU_GLUE_OPTION_COUNT, "minutes"},
    [K_AUTH_SESSION_MAX] = {"auth", "session_max_hours", false,
                            KYUFU_GLUE_OPTION_COUNT, "hours"},
    [K_AUTH_PURGE_AFTER] = {"auth", "purge_after_days", false,
                            KYUFU_GLUE_OPTION_COUNT, "days"},
    /* Encryption at rest (issue 12): [keys] */
    [K_KEYS_KEK_FILE] = {"keys", "kek_file", false, NOT_RAFT},
    [K_KEYS_PASSPHRASE_FILE] = {"keys", "passphrase_file", false, NOT_RAFT},
    [K_KEYS_CMK_FILE] = {"keys", "cmk_file", false, NOT_RAFT},
    [K_KEYS_REENCRYPT_RATE] = {"keys", "reencrypt_records_per_s", false,
                               KYUFU_GLUE_OPTION_COUNT, "records"},
    /* Backups (issue 12, h/backup) */
    [K_BACKUP_DIRECTORY] = {"backup", "directory", false, NOT_RAFT},
    [K_BACKUP_KEK_FILE] = {"backup", "kek_file", false, NOT_RAFT},
    [K_BACKUP_MAX_BYTES] = {"backup", "max_bytes_per_s", false, NOT_RAFT},
    [K_BACKUP_IO_PRIORITY] = {"backup", "io_priority", false, NOT_RAFT},
    [K_BACKUP_INTERVAL] = {"backup", "interval", false, NOT_RAFT},
    [K_BACKUP_KEEP_LAST] = {"backup", "keep_last", false, NOT_RAFT},
    [K_BACKUP_KEEP_DAILY] = {"backup", "keep_daily", false, NOT_RAFT},
    [K_BACKUP_KEEP_MONTHLY] = {"backup", "keep_monthly", false, NOT_RAFT},
    [K_BACKUP_REQUIRE_MOUNT] = {"backup", "require_mount", false, NOT_RAFT},
    /* Scrub (issue 13; docs/scrub.md): 0 disables. */
    [K_SCRUB_INTERVAL] = {"scrub", "interval_seconds", false,
                          KYUFU_GLUE_OPTION_COUNT, "seconds"},
};
#undef NOT_RAFT

/* A raft address from [cluster] comes back as the leader's in raft-glue's
 * status (the leader hint of forwarded calls): it must fit there whole. */
_Static_assert(KYUFU_NODE_ADDRESS_BYTES_MAX <
                   sizeof(((struct kyufu_glue_status *)0)->leader_address),
               "a configured address fits the glue's leader_address");

/* [log] level when the key is absent. */
#define LOG_LEVEL_DEFAULT KYUFU_LOG_INFO

static bool is_raft(enum key_id k)
{
    return keys[k].option != KYUFU_GLUE_OPTION_COUNT;
}

/* Default and bounds of a numeric key: raft-glue's for [raft] keys
 * (glue_limits.h), the API server's for [api] ones (api/grpc_limits.h),
 * node/limits.h's for [power] poll_ms. */
static struct kyufu_glue_option_bounds bounds_of(enum key_id k)
{
    if (is_raft(k)) {
        return *kyufu_glue_option_bounds(keys[k].option);
    }
    if (k == K_SLA_HEARTBEAT) {
        /* The bounds apply enforces on a heartbeat (storage_limits.h). */
        struct kyufu_glue_option_bounds h = {
            .def = KYUFU_NODE_SLA_HEARTBEAT_MS_DEFAULT,
            .min = KYUFU_AVAIL_INTERVAL_MS_MIN,
            .max = KYUFU_AVAIL_INTERVAL_MS_MAX,
        };
        return h;
    }
    if (k == K_AUDIT_CHECKPOINT_INTERVAL) {
        struct kyufu_glue_option_bounds a = {
            .def = KYUFU_NODE_CHECKPOINT_INTERVAL_S_DEFAULT,
            .min = KYUFU_NODE_CHECKPOINT_INTERVAL_S_MIN,
            .max = KYUFU_NODE_CHECKPOINT_INTERVAL_S_MAX,
        };
        return a;
    }
    if (k == K_SCRUB_INTERVAL) {
        struct kyufu_glue_option_bounds a = {
            .def = KYUFU_NODE_SCRUB_INTERVAL_S_DEFAULT,
            .min = 0,
            .max = KYUFU_NODE_SCRUB_INTERVAL_S_MAX,
        };
        return a;
    }
    if (k == K_AUDIT_CHECKPOINT_RECORDS) {
        struct kyufu_glue_option_bounds a = {
            .def = KYUFU_NODE_CHECKPOINT_RECORDS_DEFAULT,
            .min = KYUFU_NODE_CHECKPOINT_RECORDS_MIN,
            .max = KYUFU_NODE_CHECKPOINT_RECORDS_MAX,
        };
        return a;
    }
    if (k >= K_AUTH_PASSWORD_MIN_LENGTH && k <= K_AUTH_PURGE_AFTER) {
        /* Identity (issue 8): node/limits.h's [auth] block. */
#define AUTH_B(d, lo, hi) {.def = (d), .min = (lo), .max = (hi)}
        static const struct kyufu_glue_option_bounds a[] = {
            AUTH_B(KYUFU_NODE_AUTH_PASSWORD_MIN_LENGTH_DEFAULT,
                   KYUFU_NODE_AUTH_PASSWORD_MIN_LENGTH_MIN,
                   KYUFU_NODE_AUTH_PASSWORD_MIN_LENGTH_MAX),
            AUTH_B(KYUFU_NODE_AUTH_PASSWORD_MAX_AGE_DAYS_DEFAULT, 0,
                   KYUFU_NODE_AUTH_PASSWORD_MAX_AGE_DAYS_MAX),
            AUTH_B(KYUFU_NODE_AUTH_PASSWORD_HISTORY_DEFAULT, 0,
                   KYUFU_NODE_AUTH_PASSWORD_HISTORY_MAX),
            AUTH_B(KYUFU_NODE_AUTH_LOCKOUT_FAILURES_DEFAULT, 1,
                   KYUFU_NODE_AUTH_LOCKOUT_FAILURES_MAX),
            AUTH_B(KYUFU_NODE_AUTH_LOCKOUT_MINUTES_DEFAULT, 1,
                   KYUFU_NODE_AUTH_LOCKOUT_MINUTES_MAX),
            AUTH_B(KYUFU_NODE_AUTH_SESSION_IDLE_MINUTES_DEFAULT, 1,
                   KYUFU_NODE_AUTH_SESSION_IDLE_MINUTES_MAX),
            AUTH_B(KYUFU_NODE_AUTH_SESSION_MAX_HOURS_DEFAULT, 1,
                   KYUFU_NODE_AUTH_SESSION_MAX_HOURS_MAX),
            AUTH_B(KYUFU_NODE_AUTH_PURGE_AFTER_DAYS_DEFAULT, 1,
                   KYUFU_NODE_AUTH_PURGE_AFTER_DAYS_MAX),
        };
        _Static_assert(sizeof a / sizeof a[0] ==
                           K_AUTH_PURGE_AFTER - K_AUTH_PASSWORD_MIN_LENGTH + 1,
                       "one bound per [auth] key");
#undef AUTH_B
        return a[k - K_AUTH_PASSWORD_MIN_LENGTH];
    }
    if (k == K_POWER_POLL) {
        struct kyufu_glue_option_bounds p = {
            .def = KYUFU_NODE_POWER_POLL_MS_DEFAULT,
            .min = KYUFU_NODE_POWER_POLL_MS_MIN,
            .max = KYUFU_NODE_POWER_POLL_MS_MAX,
        };
        return p;
    }
    if (k == K_KEYS_REENCRYPT_RATE) {
        struct kyufu_glue_option_bounds r = {
            .def = KYUFU_NODE_REENCRYPT_PER_S_DEFAULT,
            .min = KYUFU_NODE_REENCRYPT_PER_S_MIN,
            .max = KYUFU_NODE_REENCRYPT_PER_S_MAX,
        };
        return r;
    }
    if (k == K_SLA_ALERT_TIMEOUT) {
        struct kyufu_glue_option_bounds t = {
            .def = KYUFU_NODE_SLA_HOOK_MS_DEFAULT,
            .min = KYUFU_NODE_SLA_HOOK_MS_MIN,
            .max = KYUFU_NODE_SLA_HOOK_MS_MAX,
        };
        return t;
    }
    assert(k == K_API_CONNECTIONS || k == K_API_PER_ADDRESS);
    struct kyufu_glue_option_bounds b = {
        .def = k == K_API_CONNECTIONS
                   ? KYUFU_API_CONNECTIONS_MAX_DEFAULT
                   : KYUFU_API_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT,
        .min = 1,
        .max = KYUFU_API_CONNECTIONS_LIMIT_MAX,
    };
    return b;
}

/* Where a [raft] or [api] number lives in struct kyufu_config. */
static unsigned *raft_value(struct kyufu_config *c, enum key_id k)
{
    switch (k) {
    case K_RAFT_ELECTION:
        return &c->election_timeout_ms;
    case K_RAFT_HEARTBEAT:
        return &c->heartbeat_timeout_ms;
    case K_RAFT_SNAPSHOT_THRESHOLD:
        return &c->snapshot_threshold;
    case K_RAFT_SNAPSHOT_TRAILING:
        return &c->snapshot_trailing;
    case K_RAFT_ENTRIES_INFLIGHT:
        return &c->group_commit_entries_inflight;
    case K_API_CONNECTIONS:
        return &c->api_connections_max;
    case K_API_PER_ADDRESS:
        return &c->api_connections_per_address_max;
    case K_POWER_POLL:
        return &c->power_poll_ms;
    case K_KEYS_REENCRYPT_RATE:
        return &c->keys_reencrypt_per_s;
    case K_SLA_ALERT_TIMEOUT:
        return &c->sla_alert_timeout_ms;
    case K_SLA_HEARTBEAT:
        return &c->sla_heartbeat_ms;
    case K_AUDIT_CHECKPOINT_INTERVAL:
        return &c->audit_checkpoint_interval_s;
    case K_AUDIT_CHECKPOINT_RECORDS:
        return &c->audit_checkpoint_records;
    case K_SCRUB_INTERVAL:
        return &c->scrub_interval_s;
    case K_AUTH_PASSWORD_MIN_LENGTH:
        return &c->auth_password_min_length;
    case K_AUTH_PASSWORD_MAX_AGE:
        return &c->auth_password_max_age_days;
    case K_AUTH_PASSWORD_HISTORY:
        return &c->auth_password_history;
    case K_AUTH_LOCKOUT_FAILURES:
        return &c->auth_lockout_failures;
    case K_AUTH_LOCKOUT_MINUTES:
        return &c->auth_lockout_minutes;
    case K_AUTH_SESSION_IDLE:
        return &c->auth_session_idle_minutes;
    case K_AUTH_SESSION_MAX:
        return &c->auth_session_max_hours;
    case K_AUTH_PURGE_AFTER:
        return &c->auth_purge_after_days;
    default:
        assert(false);
        return NULL;
    }
}

/* The key that sets raft-glue option o; K_COUNT for an option no key
 * sets. */
static enum key_id key_of_option(enum kyufu_glue_option o)
{
    for (int k = 0; k < K_COUNT; k++) {
        if (is_raft((enum key_id)k) && keys[k].option == o) {
            return (enum key_id)k;
        }
    }
    return K_COUNT;
}

static const char *const sections[] = {"node", "cluster", "tls", "raft",
                                       "log",  "api",     "power", "sla",
                                       "audit", "auth", "storage",
                                       "insecure_test", "keys", "backup",
                                       "scrub"};

struct parse
{
    FILE *file;
    unsigned line;
    struct kyufu_config *c;
    unsigned seen[K_COUNT];                          /* line, 0: unset */
    unsigned peer_line[KYUFU_NODE_CLUSTER_SIZE_MAX]; /* line of peers[i] */
    bool raft_bad; /* a [raft] value was refused: rules between them moot */
    bool slo_bad;  /* [sla] slo_file was refused: its content is not read */
};

static void problem(struct kyufu_config *c,
                    unsigned line,
                    const char *section,
                    const char *key,
                    const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

static void problem(struct kyufu_config *c,
                    unsigned line,
                    const char *section,
                    const char *key,
                    const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    kyufu_textconf_report(c->problems, KYUFU_CONFIG_PROBLEMS_MAX, &c->n_problems,
                          &c->n_problems_all, line, section, key, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ value rules */

static bool copy_value(struct parse *ps, const char *section,
                       const char *key, char *dst, size_t dst_len,
                       const char *value)
{
    size_t n = strlen(value);
    if (n + 1 > dst_len) {
        problem(ps->c, ps->line, section, key,
                "value is %zu bytes, at most %zu allowed", n, dst_len - 1);
        return false;
    }
    memcpy(dst, value, n + 1);
    return true;
}

/* An absolute path to a readable regular file. */
static void check_file(struct parse *ps, enum key_id k, const char *value,
                       char *dst, size_t dst_len)
{
    const char *section = keys[k].section, *key = keys[k].key;
    if (!copy_value(ps, section, key, dst, dst_len, value)) {
        return;
    }
    if (value[0] != '/') {
        problem(ps->c, ps->line, section, key,
                "'%s' must be an absolute path", value);
        return;
    }
    struct stat st;
    if (stat(value, &st) != 0) {
        problem(ps->c, ps->line, section, key, "'%s': %s", value,
                strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        problem(ps->c, ps->line, section, key, "'%s' is not a regular file",
                value);
        return;
    }
    if (access(value, R_OK) != 0) {
        problem(ps->c, ps->line, section, key, "'%s' is not readable: %s",
                value, strerror(errno));
    }
}

/* [sla] alert_command: PROGRAM [ARG ...] split at blanks (no shell, no
 * quoting: the alert's fields reach it in its environment, never in a
 * command line); PROGRAM an absolute path to an executable file. */
static void set_alert_command(struct parse *ps, const char *value)
{
    struct kyufu_config *c = ps->c;
    char copy[KYUFU_NODE_SLA_COMMAND_BYTES_MAX + 1];
    if (!copy_value(ps, "sla", "alert_command", copy, sizeof copy, value)) {
        return;
    }
    size_t n = 0;
    bool ok = true;
    for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        if (n == KYUFU_NODE_SLA_COMMAND_ARGS_MAX) {
            problem(c, ps->line, "sla", "alert_command",
                    "more than %u words", KYUFU_NODE_SLA_COMMAND_ARGS_MAX);
            return;
        }
        c->sla_alert_argv[n++] = t - copy; /* offsets into the copy */
    }
    if (n == 0 || copy[0] != '/') {
        problem(c, ps->line, "sla", "alert_command",
                "'%s' must start with an absolute path to a program (run "
                "without a shell)", value);
        return;
    }
    struct stat st;
    if (stat(copy, &st) != 0 || !S_ISREG(st.st_mode) ||
        access(copy, X_OK) != 0) {
        problem(c, ps->line, "sla", "alert_command",
                "'%s' is not an executable file", copy);
        ok = false;
    }
    if (ok) {
        memcpy(c->sla_alert_command, copy, sizeof copy);
        c->sla_alert_argc = n;
    }
}

/* [audit] checkpoint_file: an absolute path in a folder that exists (the
 * file itself is created by the first checkpoint); a file already there
 * must be a regular file the node can append to. */
static void set_checkpoint_file(struct parse *ps, const char *value)
{
    struct kyufu_config *c = ps->c;
    char dir[KYUFU_NODE_PATH_BYTES_MAX + 1];
    struct stat st;
    if (!copy_value(ps, "audit", "checkpoint_file", dir, sizeof dir, value)) {
        return;
    }
    if (value[0] != '/') {
        problem(c, ps->line, "audit", "checkpoint_file",
                "'%s' must be an absolute path", value);
        return;
    }
    char *slash = strrchr(dir, '/');
    if (slash[1] == '\0') {
        problem(c, ps->line, "audit", "checkpoint_file",
                "'%s' names a folder, not a file", value);
        return;
    }
    *(slash == dir ? slash + 1 : slash) = '\0';
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        problem(c, ps->line, "audit", "checkpoint_file",
                "'%s': its folder %s does not exist", value, dir);
        return;
    }
    if (stat(value, &st) == 0 &&
        (!S_ISREG(st.st_mode) || access(value, W_OK) != 0)) {
        problem(c, ps->line, "audit", "checkpoint_file",
                "'%s' is not a regular file this node can append to", value);
        return;
    }
    snprintf(c->audit_checkpoint_file, sizeof c->audit_checkpoint_file, "%s",
             value);
}

/* [keys] kek_file, passphrase_file, cmk_file: absolute paths of files
 * (not folders).  Their contents and modes are checked when kyufud starts
 * (node/keys_load.h): a missing or readable-by-others key file stops the
 * start with exit status 2, like a config error, and --check-config can
 * run where the keys are not installed yet. */
static void set_keys_path(struct parse *ps, enum key_id k, const char *value)
{
    struct kyufu_config *c = ps->c;
    const char *section = keys[k].section, *key = keys[k].key;
    char *dst = k == K_KEYS_KEK_FILE          ? c->keys_kek_file
                : k == K_KEYS_PASSPHRASE_FILE ? c->keys_passphrase_file
                                              : c->keys_cmk_file;
    char copy[KYUFU_NODE_PATH_BYTES_MAX + 1];
    if (!copy_value(ps, section, key, copy, sizeof copy, value)) {
        return;
    }
    size_t n = strlen(value);
    if (value[0] != '/') {
        problem(c, ps->line, section, key, "'%s' must be an absolute path",
                value);
        return;
    }
    if (value[n - 1] == '/') {
        problem(c, ps->line, section, key, "'%s' names a folder, not a file",
                value);
        return;
    }
    struct stat st;
    if (stat(value, &st) == 0 && !S_ISREG(st.st_mode)) {
        problem(c, ps->line, section, key, "'%s' is not a regular file",
                value);
        return;
    }
    memcpy(dst, copy, n + 1);
}

static void set_key(struct parse *ps, enum key_id k, const char *value)
{
    struct kyufu_config *c = ps->c;
    const char *section = keys[k].section, *key = keys[k].key;
    char why[256];
    uint64_t v;

    switch (k) {
    case K_NODE_ID:
        if (!kyufu_textconf_parse_uint(value, 1, KYUFU_NODE_ID_MAX, &v)) {
            problem(c, ps->line, section, key,
                    "'%s' is not a node id (1..%u)", value,
                    KYUFU_NODE_ID_MAX);
            return;
        }
        c->id = v;
        return;
    case K_NODE_DATA_DIR:
        if (!copy_value(ps, section, key, c->data_dir, sizeof c->data_dir,
                        value)) {
            return;
        }
        if (value[0] != '/') {
            problem(c, ps->line, section, key,
                    "'%s' must be an absolute path", value);
        }
        return;
    case K_NODE_JOIN:
        /* Membership (docs/operations.md "Replacing a node"): a node that
         * joins a running cluster must never bootstrap one of its own. */
        if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0) {
            c->join = true;
        } else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0) {
            c->join = false;
        } else {
            problem(c, ps->line, section, key,
                    "'%s' is not yes, no, true or false", value);
        }
        return;
    case K_NODE_RAFT_ADDRESS:
    case K_NODE_API_ADDRESS:
        if (!kyufu_config__check_address(value, why, sizeof why)) {
            problem(c, ps->line, section, key, "%s", why);
            return;
        }
        if (k == K_NODE_RAFT_ADDRESS) {
            copy_value(ps, section, key, c->raft_address,
                       sizeof c->raft_address, value);
        } else {
            copy_value(ps, section, key, c->api_address,
                       sizeof c->api_address, value);
        }
        return;
    case K_TLS_CA:
        check_file(ps, k, value, c->tls_ca, sizeof c->tls_ca);
        return;
    case K_TLS_CERT:
        check_file(ps, k, value, c->tls_cert, sizeof c->tls_cert);
        return;
    case K_TLS_KEY:
        check_file(ps, k, value, c->tls_key, sizeof c->tls_key);
        return;
    case K_TLS_CRL:
        /* Read (and its signature checked) when the API starts. */
        check_file(ps, k, value, c->tls_crl, sizeof c->tls_crl);
        return;
    case K_KEYS_KEK_FILE:
    case K_KEYS_PASSPHRASE_FILE:
    case K_KEYS_CMK_FILE:
        set_keys_path(ps, k, value);
        return;
    case K_RAFT_ELECTION:
    case K_RAFT_HEARTBEAT:
    case K_RAFT_SNAPSHOT_THRESHOLD:
    case K_RAFT_SNAPSHOT_TRAILING:
    case K_RAFT_ENTRIES_INFLIGHT: {
        const struct kyufu_glue_option_bounds *b =
            kyufu_glue_option_bounds(keys[k].option);
        if (!kyufu_textconf_parse_uint(value, b->min, b->max, &v)) {
            problem(c, ps->line, section, key,
                    "'%s' is not a number of %s in %u..%u", value,
                    keys[k].unit, b->min, b->max);
            ps->raft_bad = true;
            return;
        }
        *raft_value(c, k) = (unsigned)v;
        return;
    }
    case K_POWER_UPS:
        if (!kyufu_config__check_ups(value, why, sizeof why)) {
            problem(c, ps->line, section, key, "%s", why);
            return;
        }
        copy_value(ps, section, key, c->power_ups, sizeof c->power_ups,
                   value);
        return;
    case K_POWER_DOMAIN:
        if (!kyufu_config__check_name(value, "@:", why, sizeof why)) {
            problem(c, ps->line, section, key, "%s", why);
            return;
        }
        copy_value(ps, section, key, c->power_domain,
                   sizeof c->power_domain, value);
        return;
    case K_POWER_COMMAND:
        if (value[0] != '/') {
            problem(c, ps->line, section, key,
                    "'%s' must start with an absolute path (it runs with "
                    "/bin/sh -c)",
                    value);
            return;
        }
        copy_value(ps, section, key, c->power_shutdown_command,
                   sizeof c->power_shutdown_command, value);
        return;
    case K_SLA_SLO_FILE: {
        size_t before = c->n_problems_all;
        check_file(ps, k, value, c->sla_slo_file, sizeof c->sla_slo_file);
        ps->slo_bad = c->n_problems_all != before;
        return;
    }
    case K_SLA_ALERT_COMMAND:
        set_alert_command(ps, value);
        return;
    case K_AUDIT_CHECKPOINT_FILE:
        set_checkpoint_file(ps, value);
        return;
    /* Backups (issue 12; docs/backup.md): config_backup.c. */
    case K_BACKUP_DIRECTORY:
    case K_BACKUP_MAX_BYTES:
    case K_BACKUP_IO_PRIORITY:
    case K_BACKUP_INTERVAL:
    case K_BACKUP_KEEP_LAST:
    case K_BACKUP_KEEP_DAILY:
    case K_BACKUP_KEEP_MONTHLY:
    case K_BACKUP_REQUIRE_MOUNT:
        if (kyufu_config__backup_value(c, key, value, why, sizeof why) != 0) {
            problem(c, ps->line, section, key, "%s", why);
        }
        return;
    case K_BACKUP_KEK_FILE: {
        size_t before = c->n_problems_all;
        check_file(ps, k, value, c->backup_kek_file,
                   sizeof c->backup_kek_file);
        uint8_t kek[KYUFU_KEYS_KEY_BYTES];
        if (c->n_problems_all == before &&
            kyufu_keys_kek_read(value, kek, why, sizeof why) != 0) {
            problem(c, ps->line, section, key, "%s", why);
        }
        kyufu_storage_crypto_wipe(kek, sizeof kek);
        return;
    }
    case K_STORAGE_FLUSH:
        if (strcmp(value, "commit") == 0) {
            c->storage_flush_background = false;
        } else if (strcmp(value, "background") == 0) {
            c->storage_flush_background = true;
        } else {
            problem(c, ps->line, section, key,
                    "'%s' is neither commit nor background", value);
        }
        return;
    case K_INSECURE_TEST_PASSWORD_ITERATIONS:
        if (!kyufu_textconf_parse_uint(value, KYUFU_PWHASH_TEST_ITERATIONS_MIN,
                                       KYUFU_PWHASH_TEST_ITERATIONS_MAX, &v)) {
            problem(c, ps->line, section, key,
                    "'%s' is not a number of iterations in %u..%u", value,
                    KYUFU_PWHASH_TEST_ITERATIONS_MIN,
                    KYUFU_PWHASH_TEST_ITERATIONS_MAX);
            return;
        }
        c->insecure_test_password_iterations = (unsigned)v;
        return;
    case K_SLA_ALLOW_DRILLS:
        if (strcmp(value, "true") == 0) {
            c->sla_allow_drills = true;
        } else if (strcmp(value, "false") == 0) {
            c->sla_allow_drills = false;
        } else {
            problem(c, ps->line, section, key,
                    "'%s' is neither true nor false", value);
        }
        return;
    case K_API_CONNECTIONS:
    case K_API_PER_ADDRESS:
    case K_SLA_ALERT_TIMEOUT:
    case K_SLA_HEARTBEAT:
    case K_AUDIT_CHECKPOINT_INTERVAL:
    case K_AUDIT_CHECKPOINT_RECORDS:
    case K_SCRUB_INTERVAL:
    case K_AUTH_PASSWORD_MIN_LENGTH:
    case K_AUTH_PASSWORD_MAX_AGE:
    case K_AUTH_PASSWORD_HISTORY:
    case K_AUTH_LOCKOUT_FAILURES:
    case K_AUTH_LOCKOUT_MINUTES:
    case K_AUTH_SESSION_IDLE:
    case K_AUTH_SESSION_MAX:
    case K_AUTH_PURGE_AFTER:
    case K_KEYS_REENCRYPT_RATE:
    case K_POWER_POLL: {
        struct kyufu_glue_option_bounds b = bounds_of(k);
        if (!kyufu_textconf_parse_uint(value, b.min, b.max, &v)) {
            problem(c, ps->line, section, key,
                    "'%s' is not a number of %s in %u..%u", value,
                    keys[k].unit, b.min, b.max);
            return;
        }
        *raft_value(c, k) = (unsigned)v;
        return;
    }
    case K_API_ALLOW:
    case K_RAFT_ALLOW:
        if (kyufu_allow_parse(value, k == K_API_ALLOW ? &c->api_allow : &c->raft_allow,
                              why, sizeof why) != 0) {
            problem(c, ps->line, section, key, "%s", why);
        }
        return;
    case K_METRICS_LISTEN: {
        /* Numeric: the listener binds it as it is (no name lookup). */
        char host[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
        unsigned char ip[16];
        const char *colon = strrchr(value, ':');
        if (!kyufu_config__check_address(value, why, sizeof why)) {
            problem(c, ps->line, section, key, "%s", why);
            return;
        }
        snprintf(host, sizeof host, "%.*s", (int)(colon - value), value);
        if (inet_pton(AF_INET, host, ip) != 1) {
            problem(c, ps->line, section, key,
                    "'%s': the host must be a numeric IPv4 address "
                    "(127.0.0.1 to scrape from this machine only)",
                    value);
            return;
        }
        copy_value(ps, section, key, c->metrics_listen,
                   sizeof c->metrics_listen, value);
        return;
    }
    case K_METRICS_TLS:
    case K_METRICS_CLIENT_CERT: {
        bool on = strcmp(value, "true") == 0;
        if (!on && strcmp(value, "false") != 0) {
            problem(c, ps->line, section, key,
                    "'%s' is not true or false", value);
            return;
        }
        if (k == K_METRICS_TLS) {
            c->metrics_tls = on;
        } else {
            c->metrics_tls_client_cert = on;
        }
        return;
    }
    case K_LOG_LEVEL: {
        int level = kyufu_log_level_parse(value);
        if (level < 0) {
            problem(c, ps->line, section, key,
                    "'%s' is not one of debug, info, warn, error", value);
            return;
        }
        c->log_level = (enum kyufu_log_level)level;
        return;
    }
    case K_COUNT:
    default:
        assert(false);
    }
}

/* [cluster] <id> = <raft host:port> <api host:port> */
static void set_peer(struct parse *ps, const char *name, const char *value)
{
    struct kyufu_config *c = ps->c;
    uint64_t id;
    char why[256];
    if (!kyufu_textconf_parse_uint(name, 1, KYUFU_NODE_ID_MAX, &id)) {
        problem(c, ps->line, "cluster", name,
                "'%s' is not a node id (1..%u): entries are "
                "'<id> = <raft host:port> <api host:port>'",
                name, KYUFU_NODE_ID_MAX);
        return;
    }
    for (size_t i = 0; i < c->n_peers; i++) {
        if (c->peers[i].id == id) {
            problem(c, ps->line, "cluster", name,
                    "node %s is already listed on line %u", name,
                    ps->peer_line[i]);
            return;
        }
    }
    if (c->n_peers == KYUFU_NODE_CLUSTER_SIZE_MAX) {
        problem(c, ps->line, "cluster", name,
                "more than %u nodes in the cluster",
                KYUFU_NODE_CLUSTER_SIZE_MAX);
        return;
    }
    char raft[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    char api[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    char extra[2];
    /* Widths follow KYUFU_NODE_ADDRESS_BYTES_MAX (127). */
    _Static_assert(KYUFU_NODE_ADDRESS_BYTES_MAX == 127, "scanf widths");
    if (sscanf(value, "%127s %127s %1s", raft, api, extra) != 2) {
        problem(c, ps->line, "cluster", name,
                "expected '<raft host:port> <api host:port>', got '%s'",
                value);
        return;
    }
    bool ok = true;
    if (!kyufu_config__check_address(raft, why, sizeof why)) {
        problem(c, ps->line, "cluster", name, "raft address: %s", why);
        ok = false;
    }
    if (!kyufu_config__check_address(api, why, sizeof why)) {
        problem(c, ps->line, "cluster", name, "api address: %s", why);
        ok = false;
    }
    if (!ok) {
        return;
    }
    struct kyufu_config_peer *p = &c->peers[c->n_peers];
    p->id = id;
    snprintf(p->raft_address, sizeof p->raft_address, "%s", raft);
    snprintf(p->api_address, sizeof p->api_address, "%s", api);
    ps->peer_line[c->n_peers] = ps->line;
    c->n_peers++;
}

static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
    struct parse *ps = user;
    if (strcmp(section, "cluster") == 0) {
        set_peer(ps, name, value);
        return 1;
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (strcmp(keys[k].section, section) != 0 ||
            strcmp(keys[k].key, name) != 0) {
            continue;
        }
        if (ps->seen[k] != 0) {
            problem(ps->c, ps->line, section, name,
                    "set again (first set on line %u)", ps->seen[k]);
            return 1;
        }
        ps->seen[k] = ps->line;
        set_key(ps, (enum key_id)k, value);
        return 1;
    }
    if (section[0] == '\0') {
        problem(ps->c, ps->line, "", name,
                "key '%s' outside any section", name);
    } else {
        /* Unknown sections were reported by the reader already. */
        bool known = false;
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
            known = known || strcmp(sections[i], section) == 0;
        }
        if (known) {
            problem(ps->c, ps->line, section, name,
                    "unknown key '%s' in [%s]", name, section);
        }
    }
    return 1; /* Keep going: every problem is reported. */
}

/* Cut an inline comment: from a ';' or '#' that follows a blank.  inih's
 * own inline comments depend on how it was built (Debian's: ';' only), so
 * we do it here, for both characters, before inih sees the line. */
/* Our line reader for inih: counts lines, refuses over-long ones, cuts
 * inline comments and checks section headers (inih reports a section only
 * through its keys). */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *ps = stream;
    if (fgets(str, num, ps->file) == NULL) {
        return NULL;
    }
    ps->line++;
    size_t n = strlen(str);
    if (n > 0 && str[n - 1] != '\n' && !feof(ps->file)) {
        problem(ps->c, ps->line, "", "",
                "line is longer than %d bytes", num - 2);
        int ch;
        while ((ch = fgetc(ps->file)) != EOF && ch != '\n') {
        }
        str[0] = '\0'; /* inih sees a blank line */
        return str;
    }
    const char *p = str;
    if (ps->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end != NULL) {
            char name[32];
            size_t len = (size_t)(end - p - 1);
            bool known = false;
            if (len < sizeof name) {
                memcpy(name, p + 1, len);
                name[len] = '\0';
                for (size_t i = 0; i < sizeof sections / sizeof sections[0];
                     i++) {
                    known = known || strcmp(sections[i], name) == 0;
                }
            }
            if (!known) {
                char names[128] = "";
                for (size_t i = 0; i < sizeof sections / sizeof *sections;
                     i++) {
                    size_t used = strlen(names);
                    snprintf(names + used, sizeof names - used, "%s%s",
                             i > 0 ? ", " : "", sections[i]);
                }
                problem(ps->c, ps->line, "", "",
                        "unknown section [%.*s] (known: %s)",
                        (int)(len < 64 ? len : 64), p + 1, names);
            }
        }
    }
    kyufu_config__cut_inline_comment(str);
    return str;
}

/* The rules between [raft] keys are raft-glue's, checked by the function
 * kyufu_glue_init applies to them.  Each value is in its bounds (after a
 * refused one these rules are moot and skipped), so only a relation can
 * fail here;
 * it is reported at the line of the key at fault, or of the key it was
 * compared with when the one at fault was left at its default. */
static void check_raft(struct parse *ps)
{
    struct kyufu_config *c = ps->c;
    if (ps->raft_bad) {
        return; /* the user's value is not the one we hold */
    }
    struct kyufu_glue_config gc;
    memset(&gc, 0, sizeof gc);
    kyufu_config_raft_options(c, &gc);
    enum kyufu_glue_option bad, other;
    char why[200];
    if (kyufu_glue_check_options(&gc, &bad, &other, why, sizeof why) == 0) {
        return;
    }
    enum key_id k = key_of_option(bad);
    if (k == K_COUNT) { /* an option no key sets: cannot happen */
        problem(c, 0, "raft", "", "%s", why);
        return;
    }
    enum key_id k_other = other == KYUFU_GLUE_OPTION_COUNT
                              ? K_COUNT
                              : key_of_option(other);
    if (ps->seen[k] == 0 && k_other != K_COUNT) {
        problem(c, ps->seen[k_other], "raft", keys[k_other].key,
                "%s (%s is at its default)", why, keys[k].key);
        return;
    }
    problem(c, ps->seen[k], "raft", keys[k].key, "%s", why);
}

/* [sla] slo_file: the SLO file is validated with the config, its problems
 * reported under the key with their own file and line. */
static void check_slo(struct parse *ps)
{
    struct kyufu_config *c = ps->c;
    if (ps->seen[K_SLA_SLO_FILE] == 0 || ps->slo_bad) {
        return; /* absent, or already refused by check_file */
    }
    int rv = kyufu_slo_load(c->sla_slo_file, &c->slo);
    if (rv == 0) {
        c->has_slo = true;
        return;
    }
    for (size_t i = 0; i < c->slo.n_problems; i++) {
        const struct kyufu_textconf_problem *p = &c->slo.problems[i];
        problem(c, ps->seen[K_SLA_SLO_FILE], "sla", "slo_file",
                "%.80s:%u: %s%s%s%s%s%s", c->sla_slo_file, p->line,
                p->section[0] != '\0' ? "[" : "", p->section,
                p->section[0] != '\0' ? "] " : "", p->key,
                p->key[0] != '\0' ? ": " : "", p->message);
    }
}

/* [insecure_test] makes weak password hashes (api/pwhash.h): refused
 * unless every address of the node and of its cluster is a loopback one,
 * so that no config that serves anything beyond this machine can carry
 * it (docs/testing.md "Password hashing in tests"). */
static void check_insecure_test(struct parse *ps)
{
    struct kyufu_config *c = ps->c;
    if (ps->seen[K_INSECURE_TEST_PASSWORD_ITERATIONS] == 0) {
        return;
    }
    const char *outside = NULL;
    if (c->raft_address[0] != '\0' && !kyufu_config__is_loopback(c->raft_address)) {
        outside = c->raft_address;
    } else if (c->api_address[0] != '\0' && !kyufu_config__is_loopback(c->api_address)) {
        outside = c->api_address;
    } else if (c->metrics_listen[0] != '\0' &&
               !kyufu_config__is_loopback(c->metrics_listen)) {
        outside = c->metrics_listen;
    }
    for (size_t i = 0; outside == NULL && i < c->n_peers; i++) {
        if (!kyufu_config__is_loopback(c->peers[i].raft_address)) {
            outside = c->peers[i].raft_address;
        } else if (!kyufu_config__is_loopback(c->peers[i].api_address)) {
            outside = c->peers[i].api_address;
        }
    }
    if (outside != NULL) {
        problem(c, ps->seen[K_INSECURE_TEST_PASSWORD_ITERATIONS],
                "insecure_test", "password_iterations",
                "weak password hashes are for test clusters on loopback "
                "addresses (127.0.0.0/8) only, and %s is not one: remove "
                "[insecure_test]",
                outside);
    }
}

/* [keys]: exactly one source of the key-encryption key; cmk_file defaults
 * to <data_dir>/keys/cmk.  No [keys] key at all: encryption at rest is
 * off (kyufud warns once at start). */
static void check_keys(struct parse *ps)
{
    struct kyufu_config *c = ps->c;
    unsigned kek = ps->seen[K_KEYS_KEK_FILE];
    unsigned pass = ps->seen[K_KEYS_PASSPHRASE_FILE];
    unsigned cmk = ps->seen[K_KEYS_CMK_FILE];
    if (kek == 0 && pass == 0 && cmk == 0) {
        return;
    }
    if (kek != 0 && pass != 0) {
        problem(c, pass, "keys", "passphrase_file",
                "set together with kek_file (line %u): give exactly one "
                "source of the key-encryption key",
                kek);
        return;
    }
    if (kek == 0 && pass == 0) {
        problem(c, cmk, "keys", "kek_file",
                "[keys] needs kek_file or passphrase_file (the key that "
                "unwraps cmk_file)");
        return;
    }
    c->keys = true;
    if (cmk == 0 && c->data_dir[0] == '/') {
        int n = snprintf(c->keys_cmk_file, sizeof c->keys_cmk_file,
                         "%s/keys/cmk", c->data_dir);
        if (n < 0 || (size_t)n >= sizeof c->keys_cmk_file) {
            problem(c, kek != 0 ? kek : pass, "keys", "cmk_file",
                    "the default <data_dir>/keys/cmk is longer than %zu "
                    "bytes: set cmk_file",
                    sizeof c->keys_cmk_file - 1);
        }
    }
}

/* [backup]: a schedule needs somewhere to write and a key to write with;
 * retention without a schedule would have nothing to prune; require_mount
 * is directory or a parent of it (config_backup.c). */
static void check_backup(struct parse *ps)
{
    struct kyufu_config *c = ps->c;
    if (c->backup_interval_s != 0 &&
        (ps->seen[K_BACKUP_DIRECTORY] == 0 ||
         ps->seen[K_BACKUP_KEK_FILE] == 0)) {
        problem(c, ps->seen[K_BACKUP_INTERVAL], "backup", "interval",
                "a schedule needs [backup] directory and kek_file");
    }
    static const enum key_id keep[] = {K_BACKUP_KEEP_LAST,
                                       K_BACKUP_KEEP_DAILY,
                                       K_BACKUP_KEEP_MONTHLY};
    for (size_t i = 0; i < 3; i++) {
        if (ps->seen[keep[i]] != 0 && c->backup_interval_s == 0) {
            problem(c, ps->seen[keep[i]], "backup", keys[keep[i]].key,
                    "retention applies to scheduled backups: set interval "
                    "too");
            break;
        }
    }
    char why[768];
    if (ps->seen[K_BACKUP_DIRECTORY] != 0 && c->backup_directory[0] == '\0') {
        c->backup_require_mount[0] = '\0'; /* directory refused: moot */
    } else if (kyufu_config__backup_directory(c, why, sizeof why) != 0) {
        problem(c, ps->seen[K_BACKUP_DIRECTORY], "backup", "directory", "%s",
                why);
    } else if (kyufu_config__backup_mount(c, why, sizeof why) != 0) {
        problem(c, ps->seen[K_BACKUP_REQUIRE_MOUNT], "backup",
                "require_mount", "%s", why);
    }
}

/* Rules that span keys, checked once the whole file is read. */
static void check_whole(struct parse *ps)
{
    struct kyufu_config *c = ps->c;
    for (int k = 0; k < K_COUNT; k++) {
        if (keys[k].required && ps->seen[k] == 0) {
            problem(c, 0, keys[k].section, keys[k].key,
                    "required key '%s' is missing from [%s]", keys[k].key,
                    keys[k].section);
        }
    }
    if (c->n_peers == 0) {
        problem(c, 0, "cluster", "",
                "[cluster] lists no node ('<id> = <raft host:port> "
                "<api host:port>')");
    }
    check_raft(ps);
    check_insecure_test(ps);
    check_keys(ps);
    check_backup(ps);
    /* Identity: an idle limit longer than the absolute one means nothing
     * (the absolute one always wins): a typo, most likely. */
    if ((uint64_t)c->auth_session_idle_minutes >
        (uint64_t)c->auth_session_max_hours * 60u) {
        problem(c, ps->seen[K_AUTH_SESSION_IDLE], "auth",
                "session_idle_minutes",
                "%u minutes is longer than session_max_hours (%u hours)",
                c->auth_session_idle_minutes, c->auth_session_max_hours);
    }
    check_slo(ps);
    if (c->power_ups[0] != '\0' && c->power_domain[0] == '\0') {
        /* NAME@HOST: one UPS, one domain, whatever port names it. */
        const char *colon = strchr(strchr(c->power_ups, '@'), ':');
        size_t len = colon != NULL ? (size_t)(colon - c->power_ups)
                                   : strlen(c->power_ups);
        snprintf(c->power_domain, sizeof c->power_domain, "%.*s", (int)len,
                 c->power_ups);
    }
    if (c->metrics_tls && c->metrics_listen[0] == '\0') {
        problem(c, ps->seen[K_METRICS_TLS], "node", "metrics_tls",
                "metrics_tls is set but metrics_listen is not");
    }
    if (c->metrics_tls_client_cert && !c->metrics_tls) {
        problem(c, ps->seen[K_METRICS_CLIENT_CERT], "node",
                "metrics_tls_client_cert",
                "metrics_tls_client_cert needs metrics_tls = true");
    }
    if (c->metrics_listen[0] != '\0') {
        for (size_t i = 0; i < c->n_peers; i++) {
            if (strcmp(c->metrics_listen, c->peers[i].raft_address) == 0 ||
                strcmp(c->metrics_listen, c->peers[i].api_address) == 0) {
                problem(c, ps->seen[K_METRICS_LISTEN], "node",
                        "metrics_listen",
                        "%s is also node %llu's raft or api address",
                        c->metrics_listen,
                        (unsigned long long)c->peers[i].id);
            }
        }
    }
    if (c->api_connections_per_address_max > c->api_connections_max) {
        enum key_id k = ps->seen[K_API_PER_ADDRESS] != 0 ? K_API_PER_ADDRESS
                                                          : K_API_CONNECTIONS;
        problem(c, ps->seen[k], "api", keys[k].key,
                "connections_per_address_max (%u) exceeds connections_max "
                "(%u)",
                c->api_connections_per_address_max, c->api_connections_max);
    }
    for (size_t i = 0; i < c->n_peers; i++) {
        for (size_t j = 0; j < c->n_peers; j++) {
            const struct kyufu_config_peer *a = &c->peers[i], *b = &c->peers[j];
            char key[24], key_b[24];
            snprintf(key, sizeof key, "%llu", (unsigned long long)a->id);
            snprintf(key_b, sizeof key_b, "%llu", (unsigned long long)b->id);
            if (i < j && strcmp(a->raft_address, b->raft_address) == 0) {
                problem(c, ps->peer_line[j], "cluster", key_b,
                        "raft address %s is also node %llu's",
                        b->raft_address, (unsigned long long)a->id);
            }
            if (i < j && strcmp(a->api_address, b->api_address) == 0) {
                problem(c, ps->peer_line[j], "cluster", key_b,
                        "api address %s is also node %llu's", b->api_address,
                        (unsigned long long)a->id);
            }
            if (strcmp(a->raft_address, b->api_address) == 0) {
                problem(c, ps->peer_line[i], "cluster", key,
                        "raft address %s is node %llu's api address",
                        a->raft_address, (unsigned long long)b->id);
            }
        }
    }
    if (ps->seen[K_NODE_ID] != 0 && c->id != 0) {
        const struct kyufu_config_peer *self = kyufu_config_peer(c, c->id);
        if (self == NULL) {
            if (c->n_peers > 0) {
                problem(c, ps->seen[K_NODE_ID], "node", "id",
                        "node %llu is not listed in [cluster]",
                        (unsigned long long)c->id);
            }
        } else {
            if (c->raft_address[0] != '\0' &&
                strcmp(self->raft_address, c->raft_address) != 0) {
                problem(c, ps->seen[K_NODE_RAFT_ADDRESS], "node",
                        "raft_address",
                        "%s differs from [cluster] %llu's raft address %s",
                        c->raft_address, (unsigned long long)c->id,
                        self->raft_address);
            }
            if (c->api_address[0] != '\0' &&
                strcmp(self->api_address, c->api_address) != 0) {
                problem(c, ps->seen[K_NODE_API_ADDRESS], "node",
                        "api_address",
                        "%s differs from [cluster] %llu's api address %s",
                        c->api_address, (unsigned long long)c->id,
                        self->api_address);
            }
        }
    }
    /* The data directory may be missing (created at start) but its parent
     * must exist, and if it exists it must be a directory. */
    if (c->data_dir[0] == '/') {
        struct stat st;
        if (stat(c->data_dir, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                problem(c, ps->seen[K_NODE_DATA_DIR], "node", "data_dir",
                        "'%s' is not a directory", c->data_dir);
            }
        } else {
            char parent[sizeof c->data_dir];
            snprintf(parent, sizeof parent, "%s", c->data_dir);
            char *slash = strrchr(parent, '/');
            if (slash == parent) {
                slash[1] = '\0';
            } else {
                *slash = '\0';
            }
            if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
                problem(c, ps->seen[K_NODE_DATA_DIR], "node", "data_dir",
                        "'%s' does not exist and neither does its parent",
                        c->data_dir);
            }
        }
    }
}

int kyufu_config_load(const char *path, struct kyufu_config *out)
{
    assert(path != NULL);
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    for (int k = 0; k < K_COUNT; k++) {
        if (keys[k].unit != NULL) {
            *raft_value(out, (enum key_id)k) = bounds_of((enum key_id)k).def;
        }
    }
    out->log_level = LOG_LEVEL_DEFAULT;
    /* docs/storage.md "Durability of the store": the Raft log makes a
     * write durable; the store is flushed off the loop thread. */
    out->storage_flush_background = true;
    snprintf(out->path, sizeof out->path, "%s", path);

    struct parse ps;
    memset(&ps, 0, sizeof ps);
    ps.c = out;
    ps.file = fopen(path, "r");
    if (ps.file == NULL) {
        problem(out, 0, "", "", "cannot open: %s", strerror(errno));
        return KYUFU_CONFIG_EIO;
    }
    int rv = ini_parse_stream(read_line, &ps, on_key, &ps);
    bool read_error = ferror(ps.file) != 0;
    fclose(ps.file);
    if (read_error) {
        problem(out, 0, "", "", "read error");
        return KYUFU_CONFIG_EIO;
    }
    if (rv > 0) {
        /* Our handler never fails, so this is inih's own syntax error. */
        problem(out, (unsigned)rv, "", "",
                "syntax error: expected '[section]', 'key = value' or a "
                "comment");
    } else if (rv != 0) {
        problem(out, 0, "", "", "inih failed (%d)", rv);
    }
    check_whole(&ps);
    if (out->n_problems_all > 0) {
        return KYUFU_CONFIG_EINVALID;
    }
    assert(out->id != 0 && out->n_peers > 0);
    assert(kyufu_config_peer(out, out->id) != NULL);
    return 0;
}

const struct kyufu_config_peer *kyufu_config_peer(const struct kyufu_config *c,
                                                  uint64_t id)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        if (c->peers[i].id == id) {
            return &c->peers[i];
        }
    }
    return NULL;
}

const struct kyufu_config_peer *kyufu_config_peer_by_api(
    const struct kyufu_config *c, const char *address)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        if (strcmp(c->peers[i].api_address, address) == 0) {
            return &c->peers[i];
        }
    }
    return NULL;
}

void kyufu_config_raft_options(const struct kyufu_config *c,
                               struct kyufu_glue_config *gc)
{
    gc->election_timeout_ms = c->election_timeout_ms;
    gc->heartbeat_timeout_ms = c->heartbeat_timeout_ms;
    gc->snapshot_threshold_entries = c->snapshot_threshold;
    gc->snapshot_trailing_entries = c->snapshot_trailing;
    gc->group_commit_entries_inflight = c->group_commit_entries_inflight;
}

void kyufu_config_print_defaults(FILE *to)
{
    const char *section = "";
    for (int k = 0; k < K_COUNT; k++) {
        if (keys[k].unit == NULL && k != K_LOG_LEVEL &&
            k != K_STORAGE_FLUSH) {
            continue; /* required keys have no default */
        }
        if (strcmp(section, keys[k].section) != 0) {
            section = keys[k].section;
            fprintf(to, "[%s]\n", section);
        }
        if (k == K_LOG_LEVEL) {
            fprintf(to, "%s = %s ; debug | info | warn | error\n",
                    keys[k].key, kyufu_log_level_name(LOG_LEVEL_DEFAULT));
            continue;
        }
        if (k == K_STORAGE_FLUSH) {
            fprintf(to, "%s = background ; background | commit\n",
                    keys[k].key);
            continue;
        }
        struct kyufu_glue_option_bounds b = bounds_of((enum key_id)k);
        fprintf(to, "%s = %u ; %u..%u %s\n", keys[k].key, b.def, b.min,
                b.max, keys[k].unit);
    }
}
