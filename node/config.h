/* kyufud configuration: the INI file written by `kyufuctl cluster init`,
 * parsed with libinih and validated in full before the node touches
 * anything.
 *
 *   [node]     id, data_dir, raft_address, api_address      (all required)
 *              metrics_listen = IP:PORT, metrics_tls = true|false,
 *              metrics_tls_client_cert = true|false (optional;
 *              docs/metrics.md)
 *              join = yes | no   (optional, no: docs/operations.md
 *              "Replacing a node")
 *   [cluster]  <id> = <raft host:port> <api host:port>       (one per voter)
 *   [tls]      ca, cert, key  (all required; API and Raft: the cert must
 *              name [node] id as SAN URI urn:kyufu:node:ID, docs/peer-tls.md;
 *              key readable by its owner only), crl_file (optional: revoked
 *              certificates, refused on the API and Raft ports; reloaded on
 *              SIGHUP and when it changes: docs/identity.md "Certificates")
 *   [raft]     election_timeout_ms, heartbeat_timeout_ms,
 *              snapshot_threshold, snapshot_trailing,
 *              group_commit_entries_inflight (the proposer's window),
 *              allow = NET[/BITS], ...  (peers' networks)    (optional)
 *   [log]      level = debug | info | warn | error           (optional)
 *   [api]      connections_max, connections_per_address_max,
 *              allow = NET[/BITS], ...  (API clients' networks) (optional)
 *   [power]    ups = NAME@HOST[:PORT] (the UPS as NUT names it), domain,
 *              poll_ms, shutdown_command        (optional; docs/power.md)
 *   [sla]      slo_file (the SLO file, node/slo.h, validated here too),
 *              alert_command = /PROGRAM [ARG ...] (run without a shell),
 *              alert_command_timeout_ms        (optional; docs/sla.md)
 *   [sla]      heartbeat_ms, allow_drills = true|false
 *                                               (optional; docs/sla.md)
 *   [auth]     password_min_length, password_max_age_days,
 *              password_history, lockout_failures, lockout_minutes,
 *              session_idle_minutes, session_max_hours, purge_after_days
 *                                       (optional; docs/identity.md)
 *   [keys]     kek_file = PATH | passphrase_file = PATH (exactly one),
 *              cmk_file = PATH (default <data_dir>/keys/cmk); absolute
 *              paths, contents checked at start (optional: without it
 *              encryption at rest is off; docs/encryption.md),
 *              reencrypt_records_per_s (after a rotation; default 500)
 *   [backup]   directory (existing folder backups are written into),
 *              kek_file (the backup KEK), max_bytes_per_s (0: no limit),
 *              io_priority (normal | idle), interval (0 | N s|m|h|d: the
 *              schedule), keep_last, keep_daily, keep_monthly (retention),
 *              require_mount (directory or a parent: must be mounted)
 *                                          (optional; docs/backup.md)
 *
 * Comments: a line whose first non-blank character is ';' or '#', and the
 * rest of a line from a ';' or '#' that follows a blank (so a value cannot
 * contain " #" or " ;").
 *
 * Every problem found is reported, not just the first: unknown sections and
 * keys, duplicate keys, values that do not parse or are out of bounds,
 * missing required keys, files that cannot be read, and cross-key rules
 * (this node must be in [cluster] with the same addresses, addresses are
 * unique).  The bounds of [node] values are node/limits.h's; the defaults,
 * bounds and rules of [raft] values are raft-glue's (glue_limits.h,
 * kyufu_glue_check_options: heartbeat at most a third of the election
 * timeout, trailing below threshold), the very checks kyufu_glue_init
 * applies, so a file this accepts is one the node starts with.  Each error
 * names the file, the line (0 when the key is missing), the section and the
 * key. */
#ifndef KYUFU_NODE_CONFIG_H
#define KYUFU_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grpc.h"
#include "limits.h"
#include "log.h"
#include "slo.h"
#include "textconf.h"

#define KYUFU_CONFIG_ERRORS(X)                                               \
    X(OK, 0, "ok")                                                           \
    X(IO, -1, "cannot read the config file")                                 \
    X(INVALID, -2, "the config file has errors")

enum kyufu_config_error {
#define KYUFU_CONFIG__ENUM(name, value, text) KYUFU_CONFIG_E##name = value,
    KYUFU_CONFIG_ERRORS(KYUFU_CONFIG__ENUM)
#undef KYUFU_CONFIG__ENUM
};

const char *kyufu_config_strerror(int rv);

/* Errors kept per load; more are counted but not described. */
#define KYUFU_CONFIG_PROBLEMS_MAX 16u

struct kyufu_config_peer
{
    uint64_t id;
    char raft_address[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    char api_address[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
};

struct kyufu_config
{
    char path[KYUFU_NODE_PATH_BYTES_MAX + 1]; /* the file it came from */

    uint64_t id;
    char data_dir[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char raft_address[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    char api_address[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    /* [node] join = yes: this node joins a running cluster (kyufuctl node
     * new, cluster add-node): with an empty data folder it waits for the
     * leader instead of bootstrapping [cluster] as a new cluster. */
    bool join;

    /* [node] metrics_listen ("" when off, else a numeric IP:port), and
     * TLS on it with the node's certificate (client_cert: a client
     * certificate from [tls] ca is required). */
    char metrics_listen[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    bool metrics_tls;
    bool metrics_tls_client_cert;

    struct kyufu_config_peer peers[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t n_peers; /* in file order */

    char tls_ca[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char tls_cert[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char tls_key[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char tls_crl[KYUFU_NODE_PATH_BYTES_MAX + 1]; /* "": no CRL check */

    /* [keys] (encryption at rest, docs/encryption.md): keys is true when
     * the section names a key-encryption key: exactly one of kek_file and
     * passphrase_file is set ("" for the other), and cmk_file is the
     * wrapped cluster key (default <data_dir>/keys/cmk).  false: no [keys],
     * encryption at rest is off. */
    bool keys;
    char keys_kek_file[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char keys_passphrase_file[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char keys_cmk_file[KYUFU_NODE_PATH_BYTES_MAX + 1];
    /* reencrypt_records_per_s: the most stored values a leader re-seals
     * per second after a rotation (node/keys_rotate.c). */
    unsigned keys_reencrypt_per_s;

    /* [api]: bounds of the API server (api/grpc_limits.h); an empty allow
     * list (n == 0) lets every address in. */
    unsigned api_connections_max;
    unsigned api_connections_per_address_max;
    struct kyufu_allow api_allow;
    /* [raft] allow: the networks Raft peers may connect from (every peer's
     * address must be in it); empty: any address. */
    struct kyufu_allow raft_allow;

    /* [raft]: the value set, or raft-glue's default (glue_limits.h). */
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold; /* entries */
    unsigned snapshot_trailing;  /* entries */
    unsigned group_commit_entries_inflight; /* entries (issue 9) */

    enum kyufu_log_level log_level;

    /* [storage] flush (docs/storage.md "Durability of the store"):
     * "commit" (default, false): every commit flushes its data pages;
     * "background": commits do not flush, the glue flushes off the loop
     * thread — faster, but an OS crash or power loss can tear the store
     * (LMDB needs ordered writes then), so after one the store is rebuilt
     * from the Raft snapshot and log (store_mark.h). */
    bool storage_flush_background;

    /* [power] (docs/power.md): "" when not set.  domain defaults to ups's
     * NAME@HOST (nodes on one UPS share a domain). */
    char power_ups[KYUFU_NODE_POWER_NAME_BYTES_MAX + 1];
    char power_domain[KYUFU_NODE_POWER_NAME_BYTES_MAX + 1];
    unsigned power_poll_ms;
    char power_shutdown_command[KYUFU_NODE_POWER_COMMAND_BYTES_MAX + 1];

    /* [sla] (docs/sla.md): slo_file "" when not set (no evaluator); the
     * SLO it holds, loaded and validated with the config (has_slo).  The
     * alert command as words: sla_alert_argv[i] is the offset of word i in
     * sla_alert_command (words NUL-terminated); argc 0 when none. */
    char sla_slo_file[KYUFU_NODE_PATH_BYTES_MAX + 1];
    bool has_slo;
    struct kyufu_slo slo;
    char sla_alert_command[KYUFU_NODE_SLA_COMMAND_BYTES_MAX + 1];
    size_t sla_alert_argv[KYUFU_NODE_SLA_COMMAND_ARGS_MAX];
    size_t sla_alert_argc;
    unsigned sla_alert_timeout_ms;
    /* [sla] (docs/sla.md): the leader's availability heartbeat, and whether
     * this node honours Cluster.Drill (off unless set to true). */
    unsigned sla_heartbeat_ms;
    bool sla_allow_drills;

    /* [audit] (docs/identity.md "Checkpoints"): "" when no checkpoints are
     * written; else every node appends signed lines there. */
    char audit_checkpoint_file[KYUFU_NODE_PATH_BYTES_MAX + 1];
    unsigned audit_checkpoint_interval_s;
    unsigned audit_checkpoint_records;
    /* [scrub] (docs/scrub.md): the leader's ScrubMark period; 0: none. */
    unsigned scrub_interval_s;
    /* [auth] (docs/identity.md): the password, lockout, session and
     * retention policy (defaults and bounds in node/limits.h). */
    unsigned auth_password_min_length;
    unsigned auth_password_max_age_days; /* 0: passwords do not expire */
    unsigned auth_password_history;
    unsigned auth_lockout_failures;
    unsigned auth_lockout_minutes;
    unsigned auth_session_idle_minutes;
    unsigned auth_session_max_hours;
    unsigned auth_purge_after_days;
    /* [insecure_test] password_iterations (docs/testing.md "Password
     * hashing in tests"): 0 (absent, every production node), else the
     * PBKDF2 count of new hashes, below api/pwhash.h's production floor;
     * accepted only when every address is a loopback one. */
    unsigned insecure_test_password_iterations;

    /* [backup] (issue 12, h/backup; docs/backup.md): "" when not set.
     * directory: the only parent of backups this node writes; kek_file:
     * the backup KEK (without it the node takes no backup). */
    char backup_directory[KYUFU_NODE_PATH_BYTES_MAX + 1];
    char backup_kek_file[KYUFU_NODE_PATH_BYTES_MAX + 1];
    /* max_bytes_per_s: the backup's write rate (0: no limit). */
    uint64_t backup_max_bytes_per_s;
    /* io_priority = idle: the backup thread's I/O at the idle class. */
    bool backup_io_idle;
    /* Scheduled backups (h/schedule; docs/backup.md "Scheduled backups"):
     * interval in seconds (0: no schedule), and retention of the
     * schedule's backups (all 0: keep every one). */
    uint64_t backup_interval_s;
    uint32_t backup_keep_last;
    uint32_t backup_keep_daily;
    uint32_t backup_keep_monthly;
    /* require_mount (docs/backup.md "Mount check"): "" or the mount point
     * [backup] directory lives on, resolved (realpath) when loaded; no
     * backup is written while it is not a mount point. */
    char backup_require_mount[KYUFU_NODE_PATH_BYTES_MAX + 1];

    /* Filled when load returns INVALID. */
    struct kyufu_textconf_problem problems[KYUFU_CONFIG_PROBLEMS_MAX];
    size_t n_problems;      /* described, <= KYUFU_CONFIG_PROBLEMS_MAX */
    size_t n_problems_all;  /* found */
};

/* Parse and validate `path` into *out (caller-allocated; filled even on
 * error, with the problems).  Returns 0, IO (problems[0] says why) or
 * INVALID. */
int kyufu_config_load(const char *path, struct kyufu_config *out);

struct kyufu_glue_config;
/* Copy the [raft] values into raft-glue's config (the fields the config
 * file sets; the others are left as they are): what the node starts raft
 * with, and what load checked with kyufu_glue_check_options. */
void kyufu_config_raft_options(const struct kyufu_config *c,
                               struct kyufu_glue_config *gc);

/* Write every optional key with its default and bounds to `to`, as an INI
 * file a config can start from: "key = default ; min..max unit" lines under
 * their section headers (`kyufud --print-defaults`; docs/operations.md's
 * table is checked against it). */
void kyufu_config_print_defaults(FILE *to);

/* The peer with this id, or NULL. */
const struct kyufu_config_peer *kyufu_config_peer(const struct kyufu_config *c,
                                                  uint64_t id);

/* The peer whose API address is `address`, or NULL. */
const struct kyufu_config_peer *kyufu_config_peer_by_api(
    const struct kyufu_config *c, const char *address);

#endif /* KYUFU_NODE_CONFIG_H */
