/* Encryption keys of a cluster's nodes: see ctl_key.h. */
#include "ctl_key.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "storage.h"

int ctl__key_cmk_new(uint8_t cmk[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                     size_t errmsg_len)
{
    if (RAND_bytes(cmk, KYUFU_KEYS_KEY_BYTES) != 1) {
        kyufu_storage_crypto_wipe(cmk, KYUFU_KEYS_KEY_BYTES);
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL,
                         "no randomness for a new cluster key");
    }
    return 0;
}

int ctl__key_node(const char *kek_dir, const char *cmk_path, uint64_t id,
                  const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                  const uint8_t cmk[KYUFU_KEYS_KEY_BYTES], bool replace,
                  FILE *log, char *errmsg, size_t errmsg_len)
{
    char kek[PATH_MAX + 32];
    char why[600];
    snprintf(kek, sizeof kek, "%s/" CTL__KEK_FILE, kek_dir);
    if (replace) {
        const char *old[] = { kek, cmk_path };
        for (size_t i = 0; i < 2; i++) {
            if (unlink(old[i]) != 0 && errno != ENOENT) {
                return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL,
                                 "remove %s: %s", old[i], strerror(errno));
            }
        }
    }
    if (kyufu_keys_kek_create(kek_dir, CTL__KEK_FILE, why, sizeof why) != 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s", why);
    }
    if (log != NULL) {
        fprintf(log, "wrote %s (0600: node %llu's key-encryption key)\n", kek,
                (unsigned long long)id);
    }
    struct kyufu_keys_source src = { .kek_file = kek };
    if (kyufu_keys_cmk_store(&src, cmk_path, id, ca_hash, cmk, why,
                             sizeof why) != 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s", why);
    }
    if (log != NULL) {
        fprintf(log, "wrote %s (0600: the cluster key, wrapped for node %llu)\n",
                cmk_path, (unsigned long long)id);
    }
    return 0;
}

/* ------------------------------------------------------------ key init
 *
 * kyufuctl key init --ca CA.pem --nodes 1,2,3 --out DIR: the keys of an
 * existing cluster that has none (docs/encryption.md "Upgrading a
 * cluster"): one new CMK, and for each node N DIR/nodeN/kek.key and
 * DIR/nodeN/cmk (to install as <data_dir>/keys/cmk), bound to N and the CA.
 * Every argument is checked, and no target may exist, before anything is
 * written; a failure while writing removes what this run wrote. */

enum { OPT_CA = 0x500, OPT_NODES, OPT_OUT, OPT_HELP };

void ctl__key_usage(FILE *out)
{
    fprintf(out,
            "  key init --ca CA.pem --nodes ID[,ID...] --out DIR\n"
            "               encryption keys for a cluster made without them: a new\n"
            "               cluster key, and per node DIR/nodeN/kek.key and DIR/nodeN/cmk\n"
            "               (docs/encryption.md \"Upgrading a cluster\")\n");
}

/* "1,2,3" into ids (distinct, 1..KYUFU_CTL_NODE_ID_MAX); their count, or 0. */
static size_t parse_ids(const char *s, uint64_t ids[KYUFU_CTL_INIT_NODES_MAX])
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        if (*p < '1' || *p > '9' || n == KYUFU_CTL_INIT_NODES_MAX) {
            return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno != 0 || v > KYUFU_CTL_NODE_ID_MAX || (*end != ',' && *end != '\0')) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == v) {
                return 0;
            }
        }
        ids[n++] = v;
        if (*end == '\0') {
            return n;
        }
        p = end + 1;
    }
}

static int key_init(struct ctl__run *r, const char *ca, const char *nodes, const char *out)
{
    uint64_t ids[KYUFU_CTL_INIT_NODES_MAX];
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES], cmk[KYUFU_KEYS_KEY_BYTES];
    char errmsg[700], path[PATH_MAX + 64], cmk_path[PATH_MAX + 128];
    if (ca == NULL || nodes == NULL || out == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "key init: --ca, --nodes and --out are required");
    }
    size_t n = parse_ids(nodes, ids);
    if (n == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "key init: --nodes '%s': give 1 to %u distinct node ids (1..%u) "
                         "separated by commas",
                         nodes, KYUFU_CTL_INIT_NODES_MAX, KYUFU_CTL_NODE_ID_MAX);
    }
    if (strlen(out) > PATH_MAX - 64) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "key init: --out is too long");
    }
    if (kyufu_keys_ca_hash(ca, ca_hash, errmsg, sizeof errmsg) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "key init: --ca: %s", errmsg);
    }
    for (size_t i = 0; i < n; i++) {
        const char *names[] = { CTL__KEK_FILE, CTL__CMK_FILE };
        for (size_t j = 0; j < 2; j++) {
            snprintf(path, sizeof path, "%s/node%llu/%s", out, (unsigned long long)ids[i],
                     names[j]);
            if (access(path, F_OK) == 0) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "key init: %s exists: keys are never overwritten (move it "
                                 "away first)",
                                 path);
            }
        }
    }
    int rv = ctl__key_cmk_new(cmk, errmsg, sizeof errmsg);
    size_t done = 0;
    if (rv == 0) {
        rv = ctl__make_dir(out, errmsg, sizeof errmsg);
    }
    for (; rv == 0 && done < n; done++) {
        snprintf(path, sizeof path, "%s/node%llu", out, (unsigned long long)ids[done]);
        snprintf(cmk_path, sizeof cmk_path, "%s/" CTL__CMK_FILE, path);
        rv = ctl__make_dir(path, errmsg, sizeof errmsg);
        if (rv == 0) {
            rv = ctl__key_node(path, cmk_path, ids[done], ca_hash, cmk, false, r->out, errmsg,
                               sizeof errmsg);
        }
    }
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    if (rv != 0) {
        /* Nothing half made: remove this run's files (the node folders
         * were checked free of them above). */
        for (size_t i = 0; i <= done && i < n; i++) {
            const char *names[] = { CTL__KEK_FILE, CTL__CMK_FILE };
            for (size_t j = 0; j < 2; j++) {
                snprintf(path, sizeof path, "%s/node%llu/%s", out,
                         (unsigned long long)ids[i], names[j]);
                (void)unlink(path);
            }
        }
        return ctl__fail(r, rv, "key init: %s", errmsg);
    }
    fprintf(r->out,
            "install on each node N: DIR/nodeN/kek.key (0600, owner kyufu; better on another\n"
            "volume than the data) and DIR/nodeN/cmk as <data_dir>/keys/cmk (0600), add\n"
            "[keys] kek_file = ... to kyufud.conf, then restart all nodes together\n"
            "(docs/encryption.md \"Upgrading a cluster\")\n");
    return 0;
}

int ctl__key(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "init") != 0) {
        return -1;
    }
    struct option opts[CTL__COMMON_OPTS_N + 5];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    opts[CTL__COMMON_OPTS_N] = (struct option){ "ca", required_argument, NULL, OPT_CA };
    opts[CTL__COMMON_OPTS_N + 1] = (struct option){ "nodes", required_argument, NULL, OPT_NODES };
    opts[CTL__COMMON_OPTS_N + 2] = (struct option){ "out", required_argument, NULL, OPT_OUT };
    opts[CTL__COMMON_OPTS_N + 3] = (struct option){ "help", no_argument, NULL, OPT_HELP };
    opts[CTL__COMMON_OPTS_N + 4] = (struct option){ 0 };
    const char *ca = NULL, *nodes = NULL, *out = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        int rv = 0;
        switch (c) {
        case OPT_HELP:
            ctl__key_usage(r->out);
            return 0;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "key init: unknown option or missing value in '%s'",
                             argv[optind - 1]);
        case OPT_CA:
            ca = optarg;
            break;
        case OPT_NODES:
            nodes = optarg;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "key init: unexpected argument '%s'",
                         argv[optind]);
    }
    return key_init(r, ca, nodes, out);
}
