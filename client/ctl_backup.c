/* kyufuctl backup create | verify | list (issue 12; docs/backup.md,
 * docs/kyufuctl.md "Backups").
 *
 *   create --out DIR [--node N] [--timeout-ms N]
 *       asks one node (Cluster.CreateBackup) to write a backup as DIR,
 *       which must be a new folder directly under that node's [backup]
 *       directory; the node is the lowest-numbered follower that answers
 *       Status, or N (the leader too); the leader only when no follower
 *       answers.
 *   verify DIR --kek FILE [--ca FILE]
 *       checks everything (node/backup_format.h kyufu_backup_verify);
 *       exit 5 (CHECK) naming the first failure.
 *   list DIR... [--ca FILE]
 *       one line per backup (DIR is a backup or a folder of backups):
 *       signature and chain checked, no key needed.
 *
 * The CA is --ca, else the client configuration's `ca`. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backup_format.h"
#include "ctl.h"
#include "keys.h"
#include "kyufu.h"
#include "kyufu/v1/service.pb-c.h"

enum { OPT_OUT = 0x500, OPT_NODE, OPT_TIMEOUT, OPT_KEK, OPT_CA, OPT_HELP };

/* A backup can take minutes on a large store; the node answers when done. */
#define CREATE_TIMEOUT_MS_DEFAULT 3600000u
#define CREATE_TIMEOUT_MS_MAX 86400000u
#define STATUS_TIMEOUT_MS 3000u
#define LIST_BACKUPS_MAX 10000u
/* How long a follower may take to apply the leader's commit index. */
#define CATCH_UP_S 10

void ctl__backup_usage(FILE *out)
{
    fprintf(out,
            "  backup create --out DIR [--node N] [--timeout-ms N]   (DIR: a new "
            "folder directly\n"
            "                 under the node's [backup] directory; a follower "
            "unless --node)\n"
            "  backup verify DIR --kek FILE [--ca FILE]   (decrypts and checks "
            "everything)\n"
            "  backup list DIR... [--ca FILE]             (signature and chain "
            "only)\n");
}

struct backup_opts
{
    const char *out;
    uint64_t node; /* 0: choose */
    uint32_t timeout_ms;
    const char *kek;
    const char *ca;
};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v == 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Options of `backup VERB`; returns 0, -2 after --help, or an exit code. */
static int getopts(struct ctl__run *r, const char *verb, int argc, char **argv,
                   struct backup_opts *o)
{
    static const struct option extra[] = {
        {"out", required_argument, NULL, OPT_OUT},
        {"node", required_argument, NULL, OPT_NODE},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"kek", required_argument, NULL, OPT_KEK},
        {"ca", required_argument, NULL, OPT_CA},
        {"help", no_argument, NULL, OPT_HELP},
    };
    enum { N_EXTRA = sizeof extra / sizeof extra[0] };
    struct option opts[CTL__COMMON_OPTS_N + N_EXTRA + 1];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    memcpy(opts + CTL__COMMON_OPTS_N, extra, sizeof extra);
    opts[CTL__COMMON_OPTS_N + N_EXTRA] = (struct option){0};
    bool create = strcmp(verb, "create") == 0;
    bool verify = strcmp(verb, "verify") == 0;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint64_t v = 0;
        switch (ch) {
        case OPT_HELP:
            ctl__backup_usage(r->out);
            return -2;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "backup %s: unknown option or missing value in '%s'",
                             verb, argv[optind - 1]);
        case OPT_OUT:
        case OPT_NODE:
        case OPT_TIMEOUT:
            if (!create) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "backup %s: '%s' is an option of backup create",
                                 verb, argv[optind - 1]);
            }
            if (ch == OPT_OUT) {
                if (optarg[0] != '/') {
                    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                     "--out: '%s' is not an absolute path "
                                     "(the node resolves it on its own host)",
                                     optarg);
                }
                o->out = optarg;
            } else if (ch == OPT_NODE) {
                if (parse_u64(optarg, UINT32_MAX, &o->node) != 0) {
                    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                     "--node: '%s' is not a node id", optarg);
                }
            } else {
                if (parse_u64(optarg, CREATE_TIMEOUT_MS_MAX, &v) != 0) {
                    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                     "--timeout-ms: '%s' is not an integer in "
                                     "[1, %u]",
                                     optarg, CREATE_TIMEOUT_MS_MAX);
                }
                o->timeout_ms = (uint32_t)v;
            }
            break;
        case OPT_KEK:
            if (!verify) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "backup %s: --kek is an option of backup verify",
                                 verb);
            }
            o->kek = optarg;
            break;
        case OPT_CA:
            if (create) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "backup create: --ca is not an option of it");
            }
            o->ca = optarg;
            break;
        default: {
            int rv = ctl__common_opt(r, ch, optarg);
            if (rv != 0) {
                return rv;
            }
        }
        }
    }
    return 0;
}

/* --ca, else the client configuration's `ca` (into buf). */
static int ca_path(struct ctl__run *r, const struct backup_opts *o, char *buf,
                   size_t len)
{
    if (o->ca != NULL) {
        snprintf(buf, len, "%s", o->ca);
        return 0;
    }
    const char *path = r->config_path != NULL ? r->config_path
                                              : getenv("KYUFUCTL_CONFIG");
    if (path == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "no CA: use --ca FILE (the cluster CA certificate) or "
                         "--config FILE");
    }
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    char err[512];
    if (kyufu_client_config_load(&cfg, path, err, sizeof err) != 0 ||
        cfg.ca_file == NULL) {
        kyufu_client_config_free(&cfg);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s", path,
                         cfg.ca_file == NULL ? "no ca" : err);
    }
    int n = snprintf(buf, len, "%s", cfg.ca_file);
    kyufu_client_config_free(&cfg);
    if (n < 0 || (size_t)n >= len) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "CA path too long");
    }
    return 0;
}

static void format_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, len, "?");
    }
}

/* ------------------------------------------------------------- create */

/* Poll endpoint ep's Status until it has applied `index`. */
static int wait_applied(struct ctl__run *r, struct kyufu_client *c, int ep,
                        uint64_t index)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        Kyufu__V1__StatusRequest req = KYUFU__V1__STATUS_REQUEST__INIT;
        struct kyufu_client_call_opts opts = {.deadline_ms = STATUS_TIMEOUT_MS,
                                              .endpoint = ep};
        struct kyufu_client_result res;
        int crv = kyufu_client_call(c, "Status", &req.base,
                                    &kyufu__v1__node_status__descriptor, &opts,
                                    &res);
        uint64_t applied = 0;
        if (crv == 0 && res.grpc_status == KYUFU_GRPC_OK) {
            applied = ((const Kyufu__V1__NodeStatus *)res.response)->applied_index;
        }
        kyufu_client_response_free(res.response);
        if (applied >= index) {
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > CATCH_UP_S) {
            return ctl__fail(r, KYUFU_CTL_EXIT_UNAVAILABLE,
                             "backup create: the chosen node has applied up "
                             "to %" PRIu64 ", not the leader's commit index %"
                             PRIu64 " after %d s; use --node",
                             applied, index, CATCH_UP_S);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int cmd_create(struct ctl__run *r, const struct backup_opts *o)
{
    if (o->out == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "backup create: --out DIR is required");
    }
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    /* Which node: every node's Status at once. */
    unsigned n_ep = kyufu_client_endpoint_count(c);
    Kyufu__V1__StatusRequest sreq = KYUFU__V1__STATUS_REQUEST__INIT;
    int crvs[KYUFU_CLIENT_ENDPOINTS_MAX];
    struct kyufu_client_result results[KYUFU_CLIENT_ENDPOINTS_MAX];
    rv = kyufu_client_call_each(c, "Status", &sreq.base,
                                &kyufu__v1__node_status__descriptor,
                                STATUS_TIMEOUT_MS, crvs, results);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "backup create: %s",
                         kyufu_client_strerror(rv));
    }
    int pick = -1, leader = -1;
    uint64_t pick_id = 0, commit = 0;
    for (unsigned i = 0; i < n_ep; i++) {
        if (crvs[i] != 0 || results[i].grpc_status != KYUFU_GRPC_OK) {
            continue;
        }
        const Kyufu__V1__NodeStatus *st =
            (const Kyufu__V1__NodeStatus *)results[i].response;
        bool is_leader = strcmp(st->role, "leader") == 0;
        if (is_leader) {
            commit = st->commit_index;
        }
        if (o->node != 0) {
            if (st->id == o->node) {
                pick = (int)i;
                pick_id = st->id;
            }
        } else if (is_leader) {
            leader = (int)i;
        } else if (strcmp(st->role, "follower") == 0 &&
                   (pick < 0 || st->id < pick_id)) {
            pick = (int)i;
            pick_id = st->id;
        }
    }
    bool allow_leader = o->node != 0;
    if (pick < 0 && o->node == 0 && leader >= 0) {
        fprintf(r->err, "kyufuctl: no follower answered: the backup is taken "
                        "on the leader\n");
        pick = leader;
        allow_leader = true;
    }
    for (unsigned i = 0; i < n_ep; i++) {
        kyufu_client_response_free(results[i].response);
    }
    if (pick < 0) {
        if (o->node != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_UNAVAILABLE,
                             "backup create: node %" PRIu64
                             " did not answer Status",
                             o->node);
        }
        return ctl__fail(r, KYUFU_CTL_EXIT_UNAVAILABLE,
                         "backup create: no node answered Status");
    }
    /* Every write acknowledged before now is at or below the leader's
     * commit index: wait until the chosen node has applied it. */
    if (commit == 0) {
        fprintf(r->err, "kyufuctl: no leader answered: the backup holds what "
                        "the node has applied, maybe not every acknowledged "
                        "write\n");
    }
    rv = wait_applied(r, c, pick, commit);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__CreateBackupRequest req = KYUFU__V1__CREATE_BACKUP_REQUEST__INIT;
    req.out = (char *)o->out;
    req.allow_leader = allow_leader;
    req.min_applied_index = commit;
    uint32_t t = o->timeout_ms != 0 ? o->timeout_ms : CREATE_TIMEOUT_MS_DEFAULT;
    /* One attempt for the whole time: the node answers when done, and a
     * second attempt would be refused while the first runs. */
    struct kyufu_client_call_opts opts = {.deadline_ms = t, .endpoint = pick,
                                          .attempt_ms = t};
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "CreateBackup", &req.base,
                                &kyufu__v1__create_backup_response__descriptor,
                                &opts, &res);
    rv = ctl__call_exit(r, crv, &res);
    if (rv != 0) {
        kyufu_client_response_free(res.response);
        return rv;
    }
    const Kyufu__V1__CreateBackupResponse *b =
        (const Kyufu__V1__CreateBackupResponse *)res.response;
    char digest[65] = "";
    if (b->state_digest.len == 32) {
        kyufu_backup_hex(b->state_digest.data, 32, digest);
    }
    if (r->json) {
        json_t *doc = json_pack(
            "{s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:b}", "path", b->path,
            "node", (json_int_t)b->node_id, "applied_index",
            (json_int_t)b->applied_index, "applied_term",
            (json_int_t)b->applied_term, "state_digest", digest, "chunks",
            (json_int_t)b->chunks, "bytes", (json_int_t)b->bytes,
            "elapsed_ms", (json_int_t)b->elapsed_ms, "encrypted_at_rest",
            b->encrypted_at_rest);
        rv = ctl__emit_json(r, doc);
    } else {
        fprintf(r->out,
                "backup %s written by node %" PRIu64 ": index %" PRIu64
                " term %" PRIu64 ", %" PRIu32 " chunks, %" PRIu64
                " bytes, %" PRIu64 " ms\nstate digest %s\n",
                b->path, b->node_id, b->applied_index, b->applied_term,
                b->chunks, b->bytes, b->elapsed_ms, digest);
    }
    kyufu_client_response_free(res.response);
    return rv;
}

/* ------------------------------------------------------------- verify */

static int cmd_verify(struct ctl__run *r, const struct backup_opts *o,
                      int argc, char **argv)
{
    if (argc != 1) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "backup verify: exactly one backup folder, got %d", argc);
    }
    if (o->kek == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "backup verify: --kek FILE (the backup KEK) is required");
    }
    char ca[4096], err[512];
    int rv = ca_path(r, o, ca, sizeof ca);
    if (rv != 0) {
        return rv;
    }
    uint8_t kek[KYUFU_KEYS_KEY_BYTES];
    if (kyufu_keys_kek_read(o->kek, kek, err, sizeof err) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--kek: %s", err);
    }
    struct kyufu_backup_verify_result res;
    rv = kyufu_backup_verify(argv[0], ca, kek, NULL, &res, err, sizeof err);
    kyufu_storage_crypto_wipe(kek, sizeof kek);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_CHECK, "backup %s does not verify: %s",
                         argv[0], err);
    }
    char digest[65], when[32];
    kyufu_backup_hex(res.m.state_digest, 32, digest);
    format_time(res.m.created_ms, when, sizeof when);
    if (r->json) {
        json_t *doc = json_pack("{s:s, s:b, s:I, s:I, s:I, s:s, s:I, s:I, s:s, s:b}",
                                "backup", argv[0], "verified", 1, "node",
                                (json_int_t)res.m.node, "applied_index",
                                (json_int_t)res.m.applied_index, "applied_term",
                                (json_int_t)res.m.applied_term, "created", when,
                                "chunks", (json_int_t)res.m.n_chunks, "bytes",
                                (json_int_t)res.bytes, "state_digest", digest,
                                "has_cmk", res.m.has_cmk);
        rv = ctl__emit_json(r, doc);
    } else {
        fprintf(r->out,
                "backup %s verified: node %" PRIu64 ", index %" PRIu64
                " term %" PRIu64 ", taken %s, %" PRIu32 " chunks, %" PRIu64
                " bytes, cluster key %s\nstate digest %s (recomputed from the "
                "decrypted stream)\n",
                argv[0], res.m.node, res.m.applied_index, res.m.applied_term,
                when, res.m.n_chunks, res.bytes,
                res.m.has_cmk ? "included" : "none (no encryption at rest)",
                digest);
    }
    kyufu_backup_manifest_free(&res.m);
    return rv;
}

/* --------------------------------------------------------------- list */

struct listing
{
    struct ctl__run *r;
    const char *ca;
    json_t *rows;
    unsigned n;
    unsigned bad;
};

static void list_one(struct listing *l, const char *dir)
{
    char mpath[4096], err[512], when[32] = "-";
    struct stat st;
    struct kyufu_backup_verify_result res;
    const char *status = "signed";
    snprintf(mpath, sizeof mpath, "%s/%s", dir, KYUFU_BACKUP_MANIFEST);
    bool ok = false;
    if (stat(mpath, &st) != 0) {
        status = "incomplete (no manifest)";
        memset(&res, 0, sizeof res);
    } else if (kyufu_backup_verify(dir, l->ca, NULL, NULL, &res, err,
                                   sizeof err) != 0) {
        status = err;
    } else {
        ok = true;
        format_time(res.m.created_ms, when, sizeof when);
    }
    l->n++;
    l->bad += ok ? 0 : 1;
    if (l->r->json) {
        json_t *row = ok ? json_pack("{s:s, s:b, s:s, s:I, s:s, s:I, s:I}", "backup",
                                     dir, "good", 1, "status", status,
                                     "applied_index", (json_int_t)res.m.applied_index,
                                     "created", when, "bytes", (json_int_t)res.bytes,
                                     "node", (json_int_t)res.m.node)
                         : json_pack("{s:s, s:b, s:s}", "backup", dir, "good", 0,
                                     "status", status);
        json_array_append_new(l->rows, row);
    } else if (ok) {
        fprintf(l->r->out, "%-40s %10" PRIu64 "  %-20s %12" PRIu64 "  %4" PRIu64 "  %s\n",
                dir, res.m.applied_index, when, res.bytes, res.m.node, status);
    } else {
        fprintf(l->r->out, "%-40s %10s  %-20s %12s  %4s  NOT GOOD: %s\n", dir, "-",
                "-", "-", "-", status);
    }
    if (ok) {
        kyufu_backup_manifest_free(&res.m);
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR: a backup (it has a manifest or is a plain-named leaf) or a folder
 * of backups (every entry not starting with '.'). */
static int list_arg(struct listing *l, const char *arg)
{
    char mpath[4096];
    struct stat st;
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return ctl__fail(l->r, KYUFU_CTL_EXIT_USAGE, "backup list: %s is not a folder",
                         arg);
    }
    snprintf(mpath, sizeof mpath, "%s/%s", arg, KYUFU_BACKUP_MANIFEST);
    if (lstat(mpath, &st) == 0) {
        list_one(l, arg);
        return 0;
    }
    DIR *d = opendir(arg);
    if (d == NULL) {
        return ctl__fail(l->r, KYUFU_CTL_EXIT_LOCAL, "backup list: %s: %s", arg,
                         strerror(errno));
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    int rv = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue; /* temporaries of backups being written, . and .. */
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        char **more = n < LIST_BACKUPS_MAX ? realloc(names, (n + 1) * sizeof *names)
                                           : NULL;
        if (more == NULL || (more[n] = strdup(path)) == NULL) {
            names = more != NULL ? more : names;
            rv = ctl__fail(l->r, KYUFU_CTL_EXIT_LOCAL,
                           "backup list: too many entries in %s", arg);
            break;
        }
        names = more;
        n++;
    }
    closedir(d);
    if (rv == 0) {
        qsort(names, n, sizeof *names, name_cmp);
        for (size_t i = 0; i < n; i++) {
            list_one(l, names[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return rv;
}

static int cmd_list(struct ctl__run *r, const struct backup_opts *o, int argc,
                    char **argv)
{
    if (argc < 1) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "backup list: name at least one folder");
    }
    char ca[4096];
    int rv = ca_path(r, o, ca, sizeof ca);
    if (rv != 0) {
        return rv;
    }
    struct listing l = {.r = r, .ca = ca, .rows = json_array()};
    if (!r->json) {
        fprintf(r->out, "%-40s %10s  %-20s %12s  %4s  %s\n", "BACKUP", "INDEX",
                "TAKEN (UTC)", "BYTES", "NODE", "STATUS");
    }
    for (int i = 0; i < argc && rv == 0; i++) {
        rv = list_arg(&l, argv[i]);
    }
    if (rv == 0 && r->json) {
        rv = ctl__emit_json(r, json_pack("{s:O, s:I, s:I}", "backups", l.rows,
                                         "count", (json_int_t)l.n, "not_good",
                                         (json_int_t)l.bad));
    }
    json_decref(l.rows);
    return rv;
}

int ctl__backup(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "create") != 0 && strcmp(verb, "verify") != 0 &&
        strcmp(verb, "list") != 0) {
        return -1;
    }
    struct backup_opts o = {0};
    int rv = getopts(r, verb, argc, argv, &o);
    if (rv != 0) {
        return rv == -2 ? 0 : rv;
    }
    int rest = argc - optind;
    char **args = argv + optind;
    if (strcmp(verb, "create") == 0) {
        if (rest != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "backup create: unexpected argument '%s'", args[0]);
        }
        return cmd_create(r, &o);
    }
    if (strcmp(verb, "verify") == 0) {
        return cmd_verify(r, &o, rest, args);
    }
    return cmd_list(r, &o, rest, args);
}
