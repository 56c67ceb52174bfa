/* kyufud: one kyufu node in the foreground.
 *
 *   kyufud --config FILE          run the node until SIGTERM/SIGINT
 *   kyufud --check-config FILE    validate FILE and exit
 *   kyufud --print-defaults       the optional keys: defaults and bounds
 *   kyufud --compact FILE         compact the node's LMDB file, node stopped
 *                                 (docs/operations.md "Compacting the store")
 *   kyufud --recover FILE [--yes] make this stopped node the one voter of a
 *                                 new configuration after two of three were
 *                                 lost (docs/restore.md, recover.h)
 *   kyufud --seed FILE STREAM [DIGEST [CMK]]  a new node of a restored cluster: its store
 *                                 and Raft log from a snapshot stream
 *                                 (docs/restore.md, seed.h)
 *   kyufud --version              release, store schema, command set
 *
 * Exit status: 0 after a clean stop (or a valid config), 1 when the node
 * failed at run time (a fatal storage or raft error, a port in use, a
 * locked data directory), 2 for a usage or configuration error (also a
 * TLS certificate that does not name this node, found at start), 3 after a
 * clean stop ordered by the UPS (low battery, forced shutdown: after
 * [power] shutdown_command, if set, has run), 4 after a stop on data it
 * refuses (an entry or snapshot the state machine will not apply, a
 * damaged store, data of a cluster whose command set is newer than this
 * build's: docs/operations.md "Upgrades"); never a signal of its own
 * making (docs/operations.md
 * "Exit status", docs/power.md). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kyufu_version.h"
#include "glue_limits.h"
#include "limits.h"
#include "lock.h"
#include "log.h"
#include "malloc_policy.h"
#include "node.h"
#include "password.h"
#include "recover.h"
#include "seed.h"
#include "pwhash.h"
#include "storage.h"
#include "storage_limits.h"
#include "work_pool.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: kyufud --config FILE\n"
            "       kyufud --check-config FILE\n"
            "       kyufud --print-defaults\n"
            "       kyufud --compact FILE   (the node stopped: compact its store)\n"
            "       kyufud --recover FILE [--yes]   (the node stopped: make it the\n"
            "                              one voter after a loss of quorum)\n"
            "       kyufud --seed FILE STREAM [DIGEST [CMK]]   (a new node of a restored\n"
            "                              cluster; DIGEST: the backup's, in hex;\n"
            "                              CMK: a file of its 32-byte cluster key)\n"
            "       kyufud --version\n"
            "Runs one kyufu node in the foreground (logs: JSON lines on "
            "stderr).\n");
}

/* Plain text for --check-config (a person reads it), JSON lines when the
 * node itself fails to start (a log collector reads it). */
static void report(const struct kyufu_config *c, int rv, bool as_log)
{
    for (size_t i = 0; i < c->n_problems; i++) {
        const struct kyufu_textconf_problem *p = &c->problems[i];
        if (as_log) {
            kyufu_log(KYUFU_LOG_ERROR, "config error",
                      KYUFU_LOG_S("file", c->path),
                      KYUFU_LOG_U("line", p->line),
                      KYUFU_LOG_S("section", p->section),
                      KYUFU_LOG_S("key", p->key),
                      KYUFU_LOG_S("error", p->message));
            continue;
        }
        char where[64] = "";
        if (p->line > 0) {
            snprintf(where, sizeof where, ":%u", p->line);
        }
        char what[64] = "";
        if (p->key[0] != '\0') {
            snprintf(what, sizeof what, " [%s] %s:", p->section, p->key);
        } else if (p->section[0] != '\0') {
            snprintf(what, sizeof what, " [%s]:", p->section);
        }
        fprintf(stderr, "kyufud: %s%s:%s %s\n", c->path, where, what,
                p->message);
    }
    if (c->n_problems_all > c->n_problems) {
        fprintf(stderr, "kyufud: %s: ... and %zu more\n", c->path,
                c->n_problems_all - c->n_problems);
    }
    if (!as_log && rv != 0) {
        fprintf(stderr, "kyufud: %s: %s\n", c->path,
                kyufu_config_strerror(rv));
    }
}

/* kyufud --compact: the node's data folder locked (a running node holds it:
 * refused), the store compacted and verified (storage.h
 * kyufu_storage_compact); one line on stdout with the sizes and the time.
 * Exit 0, 1 (locked, I/O, no space), 4 (the digests differed or the store
 * is damaged: left as it was). */
static int compact(const struct kyufu_config *c)
{
    char errmsg[512];
    char path[4096];
    snprintf(path, sizeof path, "%s/ledger/data.mdb", c->data_dir);
    if (access(path, F_OK) != 0) {
        /* Checked before the lock, which would create the data folder. */
        fprintf(stderr, "kyufud: --compact: no store at %s\n", path);
        return 1;
    }
    int lock = kyufu_node_lock(c->data_dir, errmsg, sizeof errmsg);
    if (lock < 0) {
        /* The lock says "in use by another kyufud (pid N); stop it first". */
        fprintf(stderr, "kyufud: --compact: %s\n", errmsg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/ledger", c->data_dir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct kyufu_storage_compact_result res;
    int rv = kyufu_storage_compact(path, &res, errmsg, sizeof errmsg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kyufu_node_unlock(lock);
    if (rv != 0) {
        fprintf(stderr, "kyufud: --compact %s: %s: %s\n", path, kyufu_storage_strerror(rv),
                errmsg);
        return rv == KYUFU_STORAGE_ECORRUPT ? KYUFU_NODE_EXIT_REFUSED_DATA : 1;
    }
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    char hex[17];
    for (int i = 0; i < 8; i++) {
        snprintf(hex + 2 * i, 3, "%02x", res.digest[i]);
    }
    printf("%s/data.mdb: compacted %llu -> %llu bytes in %.0f ms; applied index %llu, "
           "state digest %s... unchanged\n",
           path, (unsigned long long)res.bytes_before, (unsigned long long)res.bytes_after, ms,
           (unsigned long long)res.applied_index, hex);
    return fflush(stdout) == 0 ? 0 : 1;
}

_Static_assert(KYUFU_ENTRY_BYTES_MAX + 4096 < KYUFU_NODE_MMAP_THRESHOLD_BYTES,
               "a Raft entry at its cap, sealed, is allocated from the heap");
_Static_assert(KYUFU_NODE_MMAP_THRESHOLD_BYTES <= KYUFU_SNAPSHOT_CHUNK_BYTES_MAX,
               "snapshot chunks are mapped and unmapped whole");

int main(int argc, char **argv)
{
    kyufu_log_detect_journal();
    /* Fixed thresholds (malloc_policy.h); before the first snapshot and
     * any thread.  If glibc refused, the node would only keep more memory
     * between snapshots or map more often: said, not fatal. */
    if (kyufu_node_malloc_policy() != 0) {
        fprintf(stderr, "kyufud: glibc refused the malloc thresholds; going on without them\n");
    }
    /* Before any work is queued (work_pool.h). */
    (void)kyufu_node_work_pool_size();
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        /* The command set is this build's (kyufud-next: one more); the
         * cluster version is in each node's Cluster.Status. */
        printf("kyufud %s\nstore schema %u\ncommand set %u\n", KYUFU_VERSION,
               KYUFU_STORAGE_SCHEMA_VERSION,
               (unsigned)kyufu_storage_command_version());
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 2 && strcmp(argv[1], "--print-defaults") == 0) {
        kyufu_config_print_defaults(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* --recover FILE [--yes]: the one mode with an optional flag. */
    bool recover_yes = argc == 4 && strcmp(argv[1], "--recover") == 0 &&
                       strcmp(argv[3], "--yes") == 0;
    /* --seed FILE STREAM: the other one with a second operand. */
    const char *seed_stream = NULL;
    const char *seed_digest = NULL;
    const char *seed_cmk = NULL;
    if (argc >= 4 && argc <= 6 && strcmp(argv[1], "--seed") == 0) {
        seed_stream = argv[3];
        seed_digest = argc >= 5 ? argv[4] : NULL;
        seed_cmk = argc == 6 ? argv[5] : NULL;
    }
    if (recover_yes || seed_stream != NULL) {
        argc = 3;
    }
    if (argc != 3 || (strcmp(argv[1], "--config") != 0 &&
                      strcmp(argv[1], "--recover") != 0 &&
                      (strcmp(argv[1], "--seed") != 0 || seed_stream == NULL) &&
                      strcmp(argv[1], "--check-config") != 0 &&
                      strcmp(argv[1], "--compact") != 0)) {
        /* Say what was wrong before the usage: at 3 a.m. "usage" alone
         * does not tell a typo from a missing FILE. */
        if (argc < 2) {
            fprintf(stderr, "kyufud: no option given\n");
        } else if (strcmp(argv[1], "--seed") == 0) {
            fprintf(stderr, "kyufud: --seed takes FILE and STREAM, then "
                    "optionally DIGEST and CMK\n");
        } else if (strcmp(argv[1], "--recover") == 0) {
            fprintf(stderr, "kyufud: --recover takes one FILE, then "
                    "optionally --yes\n");
        } else if (strcmp(argv[1], "--config") == 0 ||
                   strcmp(argv[1], "--check-config") == 0 ||
                   strcmp(argv[1], "--compact") == 0) {
            fprintf(stderr, "kyufud: %s takes exactly one FILE\n", argv[1]);
        } else if (strcmp(argv[1], "--version") == 0 ||
                   strcmp(argv[1], "--print-defaults") == 0 ||
                   strcmp(argv[1], "--help") == 0 ||
                   strcmp(argv[1], "-h") == 0) {
            fprintf(stderr, "kyufud: %s takes no argument\n", argv[1]);
        } else {
            fprintf(stderr, "kyufud: unknown option '%s'\n", argv[1]);
        }
        usage(stderr);
        return 2;
    }
    bool check_only = strcmp(argv[1], "--check-config") == 0;
    bool compact_only = strcmp(argv[1], "--compact") == 0;
    bool recover_only = strcmp(argv[1], "--recover") == 0;
    bool seed_only = seed_stream != NULL;

    /* Large (paths, problems): not on the stack of every frame below. */
    static struct kyufu_config config;
    int rv = kyufu_config_load(argv[2], &config);
    if (check_only) {
        report(&config, rv, false);
        if (rv != 0) {
            return 2;
        }
        printf("%s: ok (node %llu; %zu members in [cluster])\n", argv[2],
               (unsigned long long)config.id, config.n_peers);
        if (config.insecure_test_password_iterations != 0) {
            printf("%s: INSECURE TEST config: new password hashes get %u "
                   "PBKDF2 iterations, not %u ([insecure_test])\n",
                   argv[2], config.insecure_test_password_iterations,
                   KYUFU_PWHASH_ITERATIONS);
        }
        return 0;
    }
    if (rv != 0) {
        report(&config, rv, !compact_only && !recover_only && !seed_only);
        return 2;
    }
    if (compact_only) {
        return compact(&config);
    }
    if (recover_only) {
        return kyufu_node_recover(&config, recover_yes, stdin, stdout);
    }
    if (seed_only) {
        return kyufu_node_seed(&config, seed_stream, seed_digest, seed_cmk, stdout);
    }
    kyufu_log_set_level(config.log_level);
    char why[512];
    if (kyufu_node__password_checker_ready(why, sizeof why) != 0) {
        /* Otherwise every new password would be refused as if weak. */
        fprintf(stderr, "kyufud: %s\n", why);
        return 2;
    }
    if (config.insecure_test_password_iterations != 0) {
        /* Before any thread starts (api/pwhash.h).  Logged at every start,
         * whatever the log level, so that no log of such a node lacks it. */
        if (kyufu_pwhash_insecure_test_cost(
                config.insecure_test_password_iterations) != 0) {
            fprintf(stderr, "kyufud: cannot set the test password cost\n");
            return 2;
        }
        kyufu_log(KYUFU_LOG_ERROR,
                  "INSECURE TEST MODE: weak password hashes "
                  "([insecure_test] password_iterations); never in "
                  "production",
                  KYUFU_LOG_U("iterations",
                              config.insecure_test_password_iterations),
                  KYUFU_LOG_U("production_iterations",
                              KYUFU_PWHASH_ITERATIONS),
                  KYUFU_LOG_S("config", config.path));
    }
    rv = kyufu_node_run(&config);
    if (rv == KYUFU_NODE_EXIT_POWER) {
        (void)kyufu_node__power_command(&config);
    }
    return rv;
}
