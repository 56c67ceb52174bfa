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

enum {
    OPT_CA = 0x500,
    OPT_NODES,
    OPT_OUT,
    OPT_HELP,
    OPT_NODE_ID,
    OPT_CMK,
    OPT_KEK,
    OPT_PASS,
    OPT_NEW_KEK,
    OPT_NEW_PASS,
};

void ctl__key_usage(FILE *out)
{
    fprintf(out,
            "  key init --ca CA.pem --nodes ID[,ID...] --out DIR\n"
            "               encryption keys for a cluster made without them: a new\n"
            "               cluster key, and per node DIR/nodeN/kek.key and DIR/nodeN/cmk\n"
            "               (docs/encryption.md \"Upgrading a cluster\")\n"
            "  key rewrap --node-id N --ca CA.pem --cmk PATH\n"
            "             (--kek-file OLD | --passphrase-file OLD)\n"
            "             (--new-kek-file NEW | --new-passphrase-file NEW)\n"
            "               on node N: its wrapped cluster key under a new key-encryption\n"
            "               key (a missing NEW key file is made); the file is replaced\n"
            "               whole, nothing changes when OLD does not open it\n");
    ctl__key_rotate_usage(out);
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

/* ------------------------------------------------------------ key rewrap
 *
 * kyufuctl key rewrap: a node's CMK file re-wrapped under a new KEK
 * (docs/encryption.md "Rotation").  Every argument is checked first; a new
 * KEK file that does not exist is made (0600) and removed again when the
 * rewrap fails, so a failure leaves the node's files as they were. */

struct key_args
{
    const char *ca, *nodes, *out;
    const char *node_id, *cmk, *kek, *pass, *new_kek, *new_pass;
};

static int key_rewrap(struct ctl__run *r, const struct key_args *a)
{
    const char *cmd = "key rewrap";
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES];
    char errmsg[900];
    if (a->node_id == NULL || a->ca == NULL || a->cmk == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --node-id, --ca and --cmk are required",
                         cmd);
    }
    if ((a->kek == NULL) == (a->pass == NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: give exactly one of --kek-file and --passphrase-file (the key "
                         "that opens --cmk now)", cmd);
    }
    if ((a->new_kek == NULL) == (a->new_pass == NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: give exactly one of --new-kek-file and --new-passphrase-file",
                         cmd);
    }
    uint64_t ids[KYUFU_CTL_INIT_NODES_MAX];
    if (parse_ids(a->node_id, ids) != 1) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --node-id '%s' is not a node id (1..%u)",
                         cmd, a->node_id, KYUFU_CTL_NODE_ID_MAX);
    }
    const char *old_path = a->kek != NULL ? a->kek : a->pass;
    const char *new_path = a->new_kek != NULL ? a->new_kek : a->new_pass;
    if (strcmp(old_path, new_path) == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: the new key is the old one (%s)", cmd,
                         new_path);
    }
    if (kyufu_keys_ca_hash(a->ca, ca_hash, errmsg, sizeof errmsg) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --ca: %s", cmd, errmsg);
    }
    bool made = false;
    if (a->new_kek != NULL && access(a->new_kek, F_OK) != 0) {
        char dir[PATH_MAX];
        const char *slash = strrchr(a->new_kek, '/');
        if (slash == NULL || slash[1] == '\0' || (size_t)(slash - a->new_kek) >= sizeof dir) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "%s: --new-kek-file '%s' must be a path with a folder", cmd,
                             a->new_kek);
        }
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == a->new_kek ? 1 : slash - a->new_kek),
                 a->new_kek);
        if (kyufu_keys_kek_create(dir, slash + 1, errmsg, sizeof errmsg) != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", cmd, errmsg);
        }
        made = true;
        fprintf(r->out, "wrote %s (0600: node %llu's new key-encryption key)\n", a->new_kek,
                (unsigned long long)ids[0]);
    }
    struct kyufu_keys_source old_src = { .kek_file = a->kek, .passphrase_file = a->pass };
    struct kyufu_keys_source new_src = { .kek_file = a->new_kek,
                                         .passphrase_file = a->new_pass };
    int rw = kyufu_keys_cmk_rewrap(&old_src, &new_src, a->cmk, ids[0], ca_hash, errmsg,
                                   sizeof errmsg);
    if (rw == -2) {
        /* The old key no longer opens the file: the new one must stay. */
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL,
                         "%s: %s; %s may now be wrapped under %s only: keep that key "
                         "and the old one until the node has started with the new "
                         "one", cmd, errmsg, a->cmk, new_path);
    }
    if (rw != 0) {
        if (made) {
            (void)unlink(a->new_kek);
        }
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s: nothing changed", cmd, errmsg);
    }
    fprintf(r->out,
            "rewrapped %s for node %llu under %s; set [keys] %s = %s in kyufud.conf and\n"
            "restart the node (the old key no longer opens it: destroy it)\n",
            a->cmk, (unsigned long long)ids[0], new_path,
            a->new_kek != NULL ? "kek_file" : "passphrase_file", new_path);
    return 0;
}

int ctl__key(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    bool init = strcmp(verb, "init") == 0;
    if (!init && strcmp(verb, "rewrap") != 0) {
        return ctl__key_rotate(r, verb, argc, argv);
    }
    static const struct option extra[] = {
        { "ca", required_argument, NULL, OPT_CA },
        { "nodes", required_argument, NULL, OPT_NODES },
        { "out", required_argument, NULL, OPT_OUT },
        { "help", no_argument, NULL, OPT_HELP },
        { "node-id", required_argument, NULL, OPT_NODE_ID },
        { "cmk", required_argument, NULL, OPT_CMK },
        { "kek-file", required_argument, NULL, OPT_KEK },
        { "passphrase-file", required_argument, NULL, OPT_PASS },
        { "new-kek-file", required_argument, NULL, OPT_NEW_KEK },
        { "new-passphrase-file", required_argument, NULL, OPT_NEW_PASS },
    };
    enum { N_EXTRA = sizeof extra / sizeof extra[0] };
    struct option opts[CTL__COMMON_OPTS_N + N_EXTRA + 1];
    ctl__opts_join(opts, extra, N_EXTRA);
    struct key_args a = { 0 };
    const char *cmd = init ? "key init" : "key rewrap";
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        int rv = 0;
        const char **slot = NULL;
        bool for_init = c == OPT_CA || c == OPT_NODES || c == OPT_OUT;
        bool for_rewrap = c == OPT_CA || (c >= OPT_NODE_ID && c <= OPT_NEW_PASS);
        if ((for_init || for_rewrap) && !(init ? for_init : for_rewrap)) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: '%s' is not an option of %s", cmd,
                             argv[optind - 1], cmd);
        }
        switch (c) {
        case OPT_HELP:
            ctl__key_usage(r->out);
            return 0;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "%s: unknown option or missing value in '%s'", cmd,
                             argv[optind - 1]);
        case OPT_CA: slot = &a.ca; break;
        case OPT_NODES: slot = &a.nodes; break;
        case OPT_OUT: slot = &a.out; break;
        case OPT_NODE_ID: slot = &a.node_id; break;
        case OPT_CMK: slot = &a.cmk; break;
        case OPT_KEK: slot = &a.kek; break;
        case OPT_PASS: slot = &a.pass; break;
        case OPT_NEW_KEK: slot = &a.new_kek; break;
        case OPT_NEW_PASS: slot = &a.new_pass; break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
        if (slot != NULL) {
            *slot = optarg; /* an empty value fails its own check below */
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: unexpected argument '%s'", cmd,
                         argv[optind]);
    }
    return init ? key_init(r, a.ca, a.nodes, a.out) : key_rewrap(r, &a);
}
