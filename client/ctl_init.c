/* kyufuctl cluster init: a new cluster's PKI and config files.
 *
 * What it makes for a local cluster (all paths absolute in the configs, so
 * nodes may be started from anywhere):
 *   DIR/ca/ca.pem, DIR/ca/ca.key      the cluster CA (EC P-256, self-signed);
 *                                     the key PKCS#8, encrypted (AES-256-CBC,
 *                                     PBKDF2) with the CA passphrase
 *   DIR/ca/registry.json, crl.pem     the registry of client certificates
 *                                     and the CRL (ctl_registry.h); DIR/ca
 *                                     is what the nodes never need
 *   DIR/ca.pem, DIR/crl.pem           copies the configs name
 *   DIR/nodeN/node.pem, node.key      node N: SAN = its host and the URI
 *                                     urn:kyufu:node:N (its Raft id, checked
 *                                     on the Raft port: docs/peer-tls.md),
 *                                     EKU serverAuth + clientAuth (nodes dial
 *                                     each other)
 *   DIR/nodeN/kyufud.conf             the node's config (docs/kyufuctl.md)
 *   DIR/nodeN/data/                   data folder, 0700, holding only
 *   DIR/nodeN/data/bootstrap-admin    the first ID administrator: the hash
 *                                     of the temporary password init
 *                                     returns once (0600; ctl_bootstrap.h)
 *   DIR/ADMIN.pem, ADMIN.key          the first administrator's operator
 *                                     certificate (registered; no shared
 *                                     client certificate)
 *   DIR/kyufuctl.conf                 the client config (ADMIN's certificate)
 * For real hosts (opts->on_hosts), DIR/nodeN is the folder to copy to host
 * N instead: kyufud.conf, ca.pem, crl.pem, node.pem, node.key, bootstrap-admin
 * (0600, to install in the host's data folder), no data folder, and
 * the config names the files as the operator installs them there
 * (ETC/ca.pem ..., data_dir = STATE; docs/operations.md "Three hosts from
 * empty").  Every node listens on the same two ports on its own host.
 *   DIR/slo.conf                      the SLO file (docs/sla.md), named by
 *                                     every kyufud.conf and kyufuctl.conf
 * Private keys are 0600 from their creation (open(2) with the mode, never
 * chmod after writing).  Signatures are ECDSA with SHA-256 (CRYPTREC).
 *
 * Safety: a non-empty DIR is refused unless --force; even with --force a
 * node data folder that holds anything is refused, because new certificates
 * and member lists over an existing Raft log would be a different cluster
 * wearing the old one's data. */
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "ctl_bootstrap.h"
#include "ctl_key.h"
#include "ctl_pki.h"
#include "ctl_registry.h"
#include "slo.h"
#include "storage.h" /* kyufu_storage_crypto_wipe */
#include "glue_limits.h"
#include "grpc.h" /* KYUFU_TLS_NODE_URI_PREFIX */

/* 1: has entries other than . and .. (and `ignore`, `ignore2`, if not
 * NULL); 0: empty or missing; -1: error. */
static int dir_holds2(const char *path, const char *ignore,
                      const char *ignore2)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            (ignore == NULL || strcmp(e->d_name, ignore) != 0) &&
            (ignore2 == NULL || strcmp(e->d_name, ignore2) != 0)) {
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

static int dir_holds(const char *path, const char *ignore)
{
    return dir_holds2(path, ignore, NULL);
}

static int dir_nonempty(const char *path)
{
    return dir_holds(path, NULL);
}


/* ------------------------------------------------------------ options */

static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':')) {
            return false;
        }
    }
    return true;
}

/* A path for a host's config: absolute, and nothing the config parser
 * would read differently (blanks, '#', ';') or a shell would expand. */
static bool host_path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n < 2 || n > KYUFU_CTL_INIT_HOST_PATH_BYTES_MAX || p[0] != '/' ||
        p[n - 1] == '/' || strstr(p, "//") != NULL || strstr(p, "/../") != NULL ||
        (n >= 3 && strcmp(p + n - 3, "/..") == 0)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              c == '/')) {
            return false;
        }
    }
    return true;
}

static bool host_is_v6(const char *h)
{
    unsigned char buf[16];
    return inet_pton(AF_INET6, h, buf) == 1;
}

static bool host_is_ip(const char *h)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, h, buf) == 1 || host_is_v6(h);
}

static void addr(char *out, size_t len, const char *host, unsigned port)
{
    if (host_is_v6(host)) {
        snprintf(out, len, "[%s]:%u", host, port);
    } else {
        snprintf(out, len, "%s:%u", host, port);
    }
}

/* ------------------------------------------------------------ init */

struct member
{
    const char *host;
    char raft[300];
    char api[300];
};

/* Where node `id`'s files are named in its config. */
struct node_paths
{
    char data[PATH_MAX + 32];
    char ca[PATH_MAX + 32];
    char cert[PATH_MAX + 32];
    char key[PATH_MAX + 32];
    char slo[PATH_MAX + 32];
    char crl[PATH_MAX + 32];
    char kek[PATH_MAX + 32]; /* [keys] kek_file */
    char cmk[PATH_MAX + 64]; /* [keys] cmk_file */
};

static void paths_for(const struct kyufu_ctl_init_opts *o, const char *dir,
                      unsigned id, struct node_paths *p)
{
    if (o->on_hosts) {
        const char *etc = o->etc_dir != NULL ? o->etc_dir : KYUFU_CTL_INIT_ETC_DIR;
        snprintf(p->data, sizeof p->data, "%s",
                 o->state_dir != NULL ? o->state_dir : KYUFU_CTL_INIT_STATE_DIR);
        snprintf(p->ca, sizeof p->ca, "%s/ca.pem", etc);
        snprintf(p->cert, sizeof p->cert, "%s/node.pem", etc);
        snprintf(p->key, sizeof p->key, "%s/node.key", etc);
        snprintf(p->slo, sizeof p->slo, "%s/slo.conf", etc);
        snprintf(p->crl, sizeof p->crl, "%s/" CTL__CA_CRL, etc);
        snprintf(p->kek, sizeof p->kek, "%s/" CTL__KEK_FILE, etc);
        snprintf(p->cmk, sizeof p->cmk, "%s/keys/cmk", p->data);
        return;
    }
    snprintf(p->data, sizeof p->data, "%s/node%u/data", dir, id);
    snprintf(p->ca, sizeof p->ca, "%s/ca.pem", dir);
    snprintf(p->cert, sizeof p->cert, "%s/node%u/node.pem", dir, id);
    snprintf(p->key, sizeof p->key, "%s/node%u/node.key", dir, id);
    snprintf(p->slo, sizeof p->slo, "%s/slo.conf", dir);
    snprintf(p->crl, sizeof p->crl, "%s/" CTL__CA_CRL, dir);
    snprintf(p->kek, sizeof p->kek, "%s/node%u/" CTL__KEK_FILE, dir, id);
    snprintf(p->cmk, sizeof p->cmk, "%s/keys/cmk", p->data);
}

/* A file's text, built with fprintf in memory and then written at once. */
struct text
{
    FILE *f;
    char *buf;
    size_t len;
};

/* The stream to print T's text to; NULL when out of memory. */
static FILE *text_open(struct text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    return t->f;
}

/* Ends T and writes its text to the path FMT names (0644); T is released
 * either way. */
static int text_write(struct text *t, char *errmsg, size_t errmsg_len,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int text_write(struct text *t, char *errmsg, size_t errmsg_len,
                      const char *fmt, ...)
{
    if (fclose(t->f) != 0) {
        free(t->buf);
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    char path[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    int rv = ctl__write_file(path, 0644, t->buf, t->len, errmsg, errmsg_len);
    free(t->buf);
    return rv;
}

/* A node's [tls], [raft] and [log] sections: the same for a node of
 * `cluster init` and one of `node new`. */
static void node_sections(FILE *f, const char *ca, const char *cert,
                          const char *key, const char *crl)
{
    fprintf(f,
            "[tls]\n"
            "ca = %s\n"
            "cert = %s\n"
            "key = %s\n",
            ca, cert, key);
    if (crl != NULL) {
        /* Revoked terminals and operators (docs/operations.md "Terminals
         * and revocation"): replace this file, no restart needed. */
        fprintf(f, "crl_file = %s\n", crl);
    }
    fprintf(f,
            "[raft]\n"
            "election_timeout_ms = %u\n"
            "heartbeat_timeout_ms = %u\n"
            "[log]\n"
            "level = info\n",
            KYUFU_ELECTION_TIMEOUT_MS_DEFAULT,
            KYUFU_HEARTBEAT_TIMEOUT_MS_DEFAULT);
}

static int node_conf(const struct kyufu_ctl_init_opts *o, const char *dir,
                     unsigned id, const struct member *m, unsigned n,
                     char *errmsg, size_t errmsg_len)
{
    static struct node_paths p; /* large; kyufuctl is single-threaded */
    paths_for(o, dir, id, &p);
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    fprintf(f,
            "# kyufud configuration, written by kyufuctl cluster init.\n"
            "[node]\n"
            "id = %u\n"
            "data_dir = %s\n"
            "raft_address = %s\n"
            "api_address = %s\n",
            id, p.data, m[id - 1].raft, m[id - 1].api);
    /* Loopback: a remote scraper needs metrics_tls (docs/metrics.md).  On
     * real hosts the same port everywhere, like the others. */
    unsigned metrics_port = o->metrics_port_base == 0 ? 0
                            : o->on_hosts             ? o->metrics_port_base
                                                      : o->metrics_port_base + id - 1;
    if (metrics_port != 0) {
        fprintf(f, "metrics_listen = 127.0.0.1:%u\n", metrics_port);
    }
    fprintf(f, "[cluster]\n"
               "# one line per member: id = raft_address api_address\n");
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "%u = %s %s\n", i + 1, m[i].raft, m[i].api);
    }
    node_sections(f, p.ca, p.cert, p.key, p.crl);
    fprintf(f, "[sla]\nslo_file = %s\n", p.slo);
    /* Encryption at rest (docs/encryption.md): the node's KEK file (on
     * hosts, better on another volume than the data, or a passphrase:
     * docs/operations.md) and its wrapped copy of the cluster key. */
    fprintf(f, "[keys]\nkek_file = %s\ncmk_file = %s\n", p.kek, p.cmk);
    return text_write(&t, errmsg, errmsg_len, "%s/node%u/kyufud.conf", dir,
                      id);
}

/* The default SLO file (node/slo.h), before the configs that name it. */
static int slo_conf(const char *dir, char *errmsg, size_t errmsg_len)
{
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    kyufu_slo_write_default(f);
    return text_write(&t, errmsg, errmsg_len, "%s/slo.conf", dir);
}

static int client_conf(const char *dir, const char *admin, const struct member *m,
                       unsigned n, char *errmsg, size_t errmsg_len)
{
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    fprintf(f, "# kyufuctl configuration, written by kyufuctl cluster init.\n"
               "[client]\nendpoints = ");
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "%s%s", i > 0 ? "," : "", m[i].api);
    }
    fprintf(f,
            "\nca = %s/ca.pem\n"
            "# the first administrator's own operator certificate\n"
            "cert = %s/%s.pem\n"
            "key = %s/%s.key\n"
            "actor = \n"
            "deadline_ms = %u\n"
            "slo_file = %s/slo.conf\n",
            dir, dir, admin, dir, admin, KYUFU_CLIENT_DEADLINE_MS_DEFAULT, dir);
    return text_write(&t, errmsg, errmsg_len, "%s/kyufuctl.conf", dir);
}

static int check_opts(const struct kyufu_ctl_init_opts *o, char *errmsg,
                      size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    if (o->dir == NULL || o->dir[0] == '\0') {
        return ctl__errf(errmsg, errmsg_len, u, "--dir is required");
    }
    if (o->nodes < 1 || o->nodes > KYUFU_CTL_INIT_NODES_MAX) {
        return ctl__errf(errmsg, errmsg_len, u, "--nodes must be 1..%u",
                    KYUFU_CTL_INIT_NODES_MAX);
    }
    if (o->n_hosts > 1 && o->n_hosts != o->nodes) {
        return ctl__errf(errmsg, errmsg_len, u,
                    "%u hosts for %u nodes: give one host or one per node",
                    o->n_hosts, o->nodes);
    }
    if (o->on_hosts && o->n_hosts != o->nodes) {
        return ctl__errf(errmsg, errmsg_len, u,
                    "--hosts: %u hosts for %u nodes: give one host per node",
                    o->n_hosts, o->nodes);
    }
    const char *host_paths[2][2] = { { "--etc-dir", o->etc_dir },
                                     { "--state-dir", o->state_dir } };
    for (unsigned i = 0; i < 2; i++) {
        const char *p = host_paths[i][1];
        if (p != NULL && !o->on_hosts) {
            return ctl__errf(errmsg, errmsg_len, u, "%s applies to --hosts only",
                        host_paths[i][0]);
        }
        if (p != NULL && !host_path_ok(p)) {
            return ctl__errf(errmsg, errmsg_len, u,
                        "%s '%s': give an absolute path (no trailing '/') of at most %u bytes "
                        "of letters, digits, '.', '_', '-' and '/'",
                        host_paths[i][0], p, KYUFU_CTL_INIT_HOST_PATH_BYTES_MAX);
        }
    }
    for (unsigned i = 0; i < o->n_hosts; i++) {
        if (!host_ok(o->hosts[i])) {
            return ctl__errf(errmsg, errmsg_len, u,
                        "host '%s' is not an IP address or DNS name",
                        o->hosts[i]);
        }
    }
    if (o->raft_port_base == 0 || o->api_port_base == 0 ||
        (unsigned)o->raft_port_base + o->nodes - 1 > 65535 ||
        (unsigned)o->api_port_base + o->nodes - 1 > 65535) {
        return ctl__errf(errmsg, errmsg_len, u, "port bases must leave %u ports "
                    "below 65536", o->nodes);
    }
    unsigned r0 = o->raft_port_base, r1 = r0 + o->nodes - 1;
    unsigned a0 = o->api_port_base, a1 = a0 + o->nodes - 1;
    if (!(r1 < a0 || a1 < r0)) {
        return ctl__errf(errmsg, errmsg_len, u,
                    "raft ports %u-%u and API ports %u-%u overlap", r0, r1,
                    a0, a1);
    }
    unsigned m0 = o->metrics_port_base, m1 = m0 + o->nodes - 1;
    if (m0 != 0 && (m1 > 65535 || !(m1 < r0 || r1 < m0) ||
                    !(m1 < a0 || a1 < m0))) {
        return ctl__errf(errmsg, errmsg_len, u,
                    "metrics ports %u-%u must be below 65536 and overlap "
                    "neither raft ports %u-%u nor API ports %u-%u",
                    m0, m1, r0, r1, a0, a1);
    }
    return 0;
}

static void note(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(FILE *log, const char *fmt, ...)
{
    if (log != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(log, fmt, ap);
        va_end(ap);
        fputc('\n', log);
    }
}

/* ctl__write_pem (no passphrase) to the path FMT names, and "wrote PATH" on LOG. */
static int put_pem(FILE *log, mode_t mode, EVP_PKEY *key, X509 *cert,
                   char *errmsg, size_t errmsg_len, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static int put_pem(FILE *log, mode_t mode, EVP_PKEY *key, X509 *cert,
                   char *errmsg, size_t errmsg_len, const char *fmt, ...)
{
    char path[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    int rv = ctl__write_pem(path, mode, key, NULL, 0, cert, errmsg, errmsg_len);
    if (rv == 0) {
        note(log, "wrote %s", path);
    }
    return rv;
}

/* The CRL at SRC copied to DIR/crl.pem (0644), noted on LOG. */
static int copy_crl(FILE *log, const char *src, const char *dir, char *errmsg,
                    size_t errmsg_len)
{
    FILE *f = fopen(src, "r");
    if (f == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", src,
                         strerror(errno));
    }
    char buf[KYUFU_CTL_CRL_BYTES_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool bad = ferror(f) != 0 || n == sizeof buf;
    fclose(f);
    if (bad) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL,
                         "%s: unreadable or larger than %u bytes", src, KYUFU_CTL_CRL_BYTES_MAX);
    }
    char dst[PATH_MAX + 32];
    snprintf(dst, sizeof dst, "%s/" CTL__CA_CRL, dir);
    int rv = ctl__write_file(dst, 0644, buf, n, errmsg, errmsg_len);
    if (rv == 0) {
        note(log, "wrote %s", dst);
    }
    return rv;
}

/* A leaf's BASE.key (0600) and BASE.pem, noted on LOG. */
static int put_leaf(FILE *log, const char *base, EVP_PKEY *key, X509 *cert,
                    char *errmsg, size_t errmsg_len)
{
    int rv = put_pem(log, 0600, key, NULL, errmsg, errmsg_len, "%s.key", base);
    if (rv == 0) {
        rv = put_pem(log, 0644, NULL, cert, errmsg, errmsg_len, "%s.pem", base);
    }
    return rv;
}

int kyufu_ctl_init(const struct kyufu_ctl_init_opts *o, FILE *log,
                   char *errmsg, size_t errmsg_len)
{
    int rv = check_opts(o, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    const char *admin = o->admin_id != NULL ? o->admin_id : KYUFU_CTL_INIT_ADMIN_DEFAULT;
    if (!ctl__registry_name_ok(admin)) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                         "--admin-id '%s': 1..%u letters, digits, '.', '_', '-' (first a "
                         "letter or digit)", admin, KYUFU_CTL_TERMINAL_NAME_BYTES_MAX);
    }
    if (strspn(admin, "abcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(admin)) {
        /* The node's staff ids (node/bootstrap_file.h): lowercase only. */
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                         "--admin-id '%s': a staff id is lowercase letters, digits, '.', "
                         "'_', '-'", admin);
    }
    int ne = dir_nonempty(o->dir);
    if (ne < 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", o->dir,
                         strerror(errno));
    }
    if (ne > 0 && !o->force) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                         "%s is not empty; refusing to overwrite (use --force to "
                         "replace certificates and configs)", o->dir);
    }
    char pass[KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX + 2];
    rv = ctl__ca_passphrase(o->ca_passphrase_file, true, pass, sizeof pass, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char dir[PATH_MAX];
    char path[PATH_MAX + 128];
    rv = ctl__make_dir(o->dir, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_pass;
    }
    if (realpath(o->dir, dir) == NULL) {
        rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", o->dir,
                       strerror(errno));
        goto out_pass;
    }
    for (unsigned i = 1; i <= o->nodes && !o->on_hosts; i++) {
        snprintf(path, sizeof path, "%s/node%u/data", dir, i);
        /* A bootstrap-admin and keys/cmk alone are a previous init's, not
         * node data: a --force init replaces them. */
        char keys_dir[PATH_MAX + 160];
        snprintf(keys_dir, sizeof keys_dir, "%s/keys", path);
        if (dir_holds2(path, CTL__BOOTSTRAP_FILE, "keys") != 0 ||
            dir_holds(keys_dir, CTL__CMK_FILE) != 0) {
            rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                           "%s holds node data; a new cluster must start from "
                           "empty data folders (move it away first)", path);
            goto out_pass;
        }
    }

    struct member m[KYUFU_CTL_INIT_NODES_MAX];
    for (unsigned i = 0; i < o->nodes; i++) {
        m[i].host = o->n_hosts == 0 ? "127.0.0.1"
                    : o->n_hosts == 1 ? o->hosts[0]
                                      : o->hosts[i];
        unsigned before = 0; /* nodes before this one on the same host */
        for (unsigned j = 0; j < i; j++) {
            before += strcasecmp(m[j].host, m[i].host) == 0;
        }
        addr(m[i].raft, sizeof m[i].raft, m[i].host, o->raft_port_base + before);
        addr(m[i].api, sizeof m[i].api, m[i].host, o->api_port_base + before);
    }

    rv = slo_conf(dir, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_pass;
    }
    note(log, "wrote %s/slo.conf", dir);
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES] = { 0 };
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES];
    EVP_PKEY *ca_key = ctl__key_new();
    if (ca_key == NULL) {
        rv = ctl__ssl_err(errmsg, errmsg_len, "CA key");
        goto out_pass;
    }
    struct ctl__cert_spec ca_spec = { .cn = "kyufu cluster CA",
                                      .days = KYUFU_CTL_CA_VALID_DAYS, .ca = true };
    X509 *ca = ctl__cert_issue(&ca_spec, ca_key, NULL, ca_key);
    json_t *reg = json_array();
    if (ca == NULL || reg == NULL) {
        rv = ctl__ssl_err(errmsg, errmsg_len, "CA certificate");
        goto out_ca;
    }
    /* Large; kyufuctl is single-threaded.  Wiped at out_ca. */
    static struct ctl__bootstrap boot;
    rv = ctl__bootstrap_new(admin, &boot, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_ca;
    }
    /* The CA folder: its key (passphrase-protected), the registry and the
     * CRL; nothing a node needs but copies of ca.pem and crl.pem. */
    char ca_dir[PATH_MAX + 8];
    snprintf(ca_dir, sizeof ca_dir, "%s/" CTL__CA_SUBDIR, dir);
    rv = ctl__make_dir(ca_dir, errmsg, errmsg_len);
    if (rv == 0) {
        snprintf(path, sizeof path, "%s/" CTL__CA_KEY, ca_dir);
        rv = ctl__write_pem(path, 0600, ca_key, pass, o->ca_key_iterations, NULL, errmsg,
                            errmsg_len);
        if (rv == 0) {
            note(log, "wrote %s (encrypted: AES-256-CBC, key from the passphrase by PBKDF2)",
                 path);
        }
    }
    if (rv == 0) {
        rv = put_pem(log, 0644, NULL, ca, errmsg, errmsg_len, "%s/" CTL__CA_CERT, ca_dir);
    }
    if (rv == 0) {
        rv = put_pem(log, 0644, NULL, ca, errmsg, errmsg_len, "%s/ca.pem", dir);
    }
    /* The first administrator's operator certificate (no shared client
     * certificate), registered like any other. */
    if (rv == 0) {
        struct ctl__issue is = { .kind = "operator", .name = admin, .by = "cluster init",
                                 .out_dir = dir };
        rv = ctl__registry_issue(reg, &is, ca, ca_key, log, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = ctl__registry_save(ca_dir, reg, errmsg, errmsg_len);
    }
    if (rv == 0) {
        note(log, "wrote %s/" CTL__CA_REGISTRY, ca_dir);
        rv = ctl__registry_crl(ca_dir, reg, ca, ca_key, errmsg, errmsg_len);
    }
    if (rv == 0) {
        note(log, "wrote %s/" CTL__CA_CRL, ca_dir);
        snprintf(path, sizeof path, "%s/" CTL__CA_CRL, ca_dir);
        rv = copy_crl(log, path, dir, errmsg, errmsg_len);
    }
    /* Encryption at rest: one new cluster key, wrapped for each node
     * below, bound to this CA (the cluster's identity). */
    if (rv == 0) {
        /* Not `path`: it names the CRL the node folders copy below. */
        char ca_path[PATH_MAX + 16];
        snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
        char why[600];
        if (kyufu_keys_ca_hash(ca_path, ca_hash, why, sizeof why) != 0) {
            rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s", why);
        }
    }
    if (rv == 0) {
        rv = ctl__key_cmk_new(cmk, errmsg, errmsg_len);
    }
    if (rv != 0) {
        goto out_ca;
    }

    for (unsigned i = 0; i < o->nodes; i++) {
        char cn[64], san[340], base[PATH_MAX + 32];
        snprintf(cn, sizeof cn, "kyufu node %u", i + 1);
        snprintf(san, sizeof san, "%s:%s,URI:%s%u",
                 host_is_ip(m[i].host) ? "IP" : "DNS", m[i].host,
                 KYUFU_TLS_NODE_URI_PREFIX, i + 1);
        snprintf(base, sizeof base, "%s/node%u", dir, i + 1);
        rv = ctl__make_dir(base, errmsg, errmsg_len);
        if (rv == 0 && o->on_hosts) {
            /* The CA certificate, the CRL and the SLO file travel with the
             * node's folder. */
            rv = put_pem(log, 0644, NULL, ca, errmsg, errmsg_len, "%s/ca.pem", base);
            if (rv == 0) {
                rv = copy_crl(log, path, base, errmsg, errmsg_len);
            }
            if (rv == 0) {
                rv = slo_conf(base, errmsg, errmsg_len);
            }
            if (rv == 0) {
                note(log, "wrote %s/slo.conf", base);
            }
        } else if (rv == 0) {
            char data[PATH_MAX + 64];
            snprintf(data, sizeof data, "%s/data", base);
            rv = ctl__make_dir(data, errmsg, errmsg_len);
        }
        /* Every node gets the first administrator (whichever is leader
         * first proposes it); local: in its data folder, hosts: beside
         * the config, installed into the state folder. */
        if (rv == 0) {
            char bpath[PATH_MAX + 96];
            snprintf(bpath, sizeof bpath, "%s/%s" CTL__BOOTSTRAP_FILE, base,
                     o->on_hosts ? "" : "data/");
            rv = ctl__bootstrap_write(&boot, bpath, errmsg, errmsg_len);
            if (rv == 0) {
                note(log, "wrote %s (0600: the first ID administrator's password hash)",
                     bpath);
            }
        }
        /* Its KEK beside its config; the wrapped cluster key in its data
         * folder (local) or beside the config, to install as
         * <state>/keys/cmk (hosts). */
        if (rv == 0) {
            char cmk_path[PATH_MAX + 96];
            snprintf(cmk_path, sizeof cmk_path, "%s/%s", base,
                     o->on_hosts ? CTL__CMK_FILE : "data/keys/" CTL__CMK_FILE);
            rv = ctl__key_node(base, cmk_path, i + 1, ca_hash, cmk, o->force,
                               log, errmsg, errmsg_len);
        }
        if (rv != 0) {
            goto out_ca;
        }
        snprintf(base + strlen(base), sizeof base - strlen(base), "/node");
        struct ctl__cert_spec spec = {
            .cn = cn,
            .days = KYUFU_CTL_LEAF_VALID_DAYS,
            .eku = "serverAuth,clientAuth",
            .san = san,
        };
        EVP_PKEY *key;
        X509 *cert;
        rv = ctl__leaf_new(&spec, ca, ca_key, &key, &cert, errmsg, errmsg_len);
        if (rv != 0) {
            goto out_ca;
        }
        rv = put_leaf(log, base, key, cert, errmsg, errmsg_len);
        X509_free(cert);
        EVP_PKEY_free(key);
        if (rv != 0) {
            goto out_ca;
        }
        rv = node_conf(o, dir, i + 1, m, o->nodes, errmsg, errmsg_len);
        if (rv != 0) {
            goto out_ca;
        }
        note(log, "wrote %s/node%u/kyufud.conf", dir, i + 1);
    }
    rv = client_conf(dir, admin, m, o->nodes, errmsg, errmsg_len);
    if (rv == 0) {
        note(log, "wrote %s/kyufuctl.conf", dir);
        if (o->admin_password != NULL) {
            memcpy(o->admin_password, boot.password, sizeof boot.password);
        }
    }

out_ca:
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    ctl__bootstrap_wipe(&boot);
    json_decref(reg);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
out_pass:
    OPENSSL_cleanse(pass, sizeof pass);
    return rv;
}

/* ------------------------------------------------------------ node new
 *
 * kyufuctl node new: one more node's certificate, from the CA that
 * `cluster init` made, and its kyufud.conf with [node] join = yes (it waits
 * for `cluster add-node` instead of bootstrapping a cluster of its own).
 * OUT gets node.pem, node.key (0600), a copy of ca.pem, kyufud.conf and an
 * empty data/ (0700): the folder to move to the new host as a whole. */

/* "host:port" -> host (IPv4 or DNS name, as raft-glue dials). */
static bool split_host(const char *a, char *host, size_t len)
{
    const char *colon = strrchr(a, ':');
    if (colon == NULL || colon == a || (size_t)(colon - a) >= len) {
        return false;
    }
    memcpy(host, a, (size_t)(colon - a));
    host[colon - a] = '\0';
    return host_ok(host) && strchr(host, ':') == NULL;
}

static int join_conf(const char *out, const struct kyufu_ctl_node_new_opts *o,
                     bool crl, char *errmsg, size_t errmsg_len)
{
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    fprintf(f,
            "# kyufud configuration, written by kyufuctl node new: a node that\n"
            "# joins a running cluster (kyufuctl cluster add-node or\n"
            "# replace-node); it never bootstraps a cluster of its own.\n"
            "[node]\n"
            "id = %llu\n"
            "data_dir = %s/data\n"
            "raft_address = %s\n"
            "api_address = %s\n"
            "join = yes\n"
            "[cluster]\n"
            "# the members when it was written, and this node\n",
            (unsigned long long)o->id, out, o->raft, o->api);
    for (size_t i = 0; i < o->n_members; i++) {
        fprintf(f, "%llu = %s %s\n", (unsigned long long)o->members[i].id,
                o->members[i].raft, o->members[i].api);
    }
    fprintf(f, "%llu = %s %s\n", (unsigned long long)o->id, o->raft, o->api);
    char ca[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16];
    char crl_path[PATH_MAX + 16];
    snprintf(crl_path, sizeof crl_path, "%s/" CTL__CA_CRL, out);
    snprintf(ca, sizeof ca, "%s/ca.pem", out);
    snprintf(cert, sizeof cert, "%s/node.pem", out);
    snprintf(key, sizeof key, "%s/node.key", out);
    node_sections(f, ca, cert, key, crl ? crl_path : NULL);
    /* Encryption at rest: its own KEK; the cluster key comes from a member
     * once the node is added (docs/encryption.md "A joining node's
     * cluster key"). */
    fprintf(f, "[keys]\nkek_file = %s/" CTL__KEK_FILE "\ncmk_file = %s/data/keys/cmk\n",
            out, out);
    return text_write(&t, errmsg, errmsg_len, "%s/kyufud.conf", out);
}

int kyufu_ctl_node_new(const struct kyufu_ctl_node_new_opts *o, FILE *log,
                       char *errmsg, size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    char raft_host[256], api_host[256];
    if (o->id == 0 || o->id > KYUFU_CTL_NODE_ID_MAX) {
        return ctl__errf(errmsg, errmsg_len, u, "--id must be 1..%u",
                    KYUFU_CTL_NODE_ID_MAX);
    }
    if (o->raft == NULL || o->api == NULL || !split_host(o->raft, raft_host, sizeof raft_host) ||
        !split_host(o->api, api_host, sizeof api_host) || strcmp(o->raft, o->api) == 0) {
        return ctl__errf(errmsg, errmsg_len, u,
                    "--raft and --api must be two different HOST:PORT (an IPv4 "
                    "address or a DNS name)");
    }
    for (const char *const *a = (const char *const[]){ o->raft, o->api, NULL }; *a; a++) {
        const char *port = strrchr(*a, ':') + 1;
        char *end;
        unsigned long v = strtoul(port, &end, 10);
        if (port[0] < '0' || port[0] > '9' || *end != '\0' || v < 1 || v > 65535) {
            return ctl__errf(errmsg, errmsg_len, u, "'%s': the port must be 1..65535", *a);
        }
    }
    for (size_t i = 0; i < o->n_members; i++) {
        const struct kyufu_ctl_member *m = &o->members[i];
        if (m->id == o->id) {
            return ctl__errf(errmsg, errmsg_len, u,
                        "node %llu is already a member of the cluster (pick "
                        "another id, or remove-node it first)",
                        (unsigned long long)o->id);
        }
        if (strcmp(m->raft, o->raft) == 0 || strcmp(m->api, o->api) == 0 ||
            strcmp(m->raft, o->api) == 0 || strcmp(m->api, o->raft) == 0) {
            return ctl__errf(errmsg, errmsg_len, u, "an address of node %llu is "
                        "node %llu's", (unsigned long long)o->id,
                        (unsigned long long)m->id);
        }
    }
    int rv = ctl__make_dir(o->out, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char out[PATH_MAX], path[PATH_MAX + 64];
    if (realpath(o->out, out) == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", o->out,
                    strerror(errno));
    }
    snprintf(path, sizeof path, "%s/data", out);
    if (dir_nonempty(path) != 0) {
        return ctl__errf(errmsg, errmsg_len, u,
                    "%s holds node data; a joining node starts from an empty "
                    "data folder (move it away first)", path);
    }
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    rv = ctl__ca_read(o->pki_dir, o->ca_passphrase_file, &ca, &ca_key, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char cn[64], san[700];
    snprintf(cn, sizeof cn, "kyufu node %llu", (unsigned long long)o->id);
    int n = snprintf(san, sizeof san, "%s:%s", host_is_ip(raft_host) ? "IP" : "DNS",
                     raft_host);
    if (strcmp(api_host, raft_host) != 0) {
        n += snprintf(san + n, sizeof san - (size_t)n, ",%s:%s",
                      host_is_ip(api_host) ? "IP" : "DNS", api_host);
    }
    snprintf(san + n, sizeof san - (size_t)n, ",URI:%s%llu", KYUFU_TLS_NODE_URI_PREFIX,
             (unsigned long long)o->id);
    struct ctl__cert_spec spec = { .cn = cn, .days = KYUFU_CTL_LEAF_VALID_DAYS,
                              .eku = "serverAuth,clientAuth", .san = san };
    rv = ctl__leaf_new(&spec, ca, ca_key, &key, &cert, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_ca;
    }
    snprintf(path, sizeof path, "%s/data", out);
    rv = ctl__make_dir(path, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_cert;
    }
    snprintf(path, sizeof path, "%s/node", out);
    rv = put_leaf(log, path, key, cert, errmsg, errmsg_len);
    if (rv == 0) {
        rv = put_pem(log, 0644, NULL, ca, errmsg, errmsg_len, "%s/ca.pem", out);
    }
    /* The CA folder's CRL, when it has one (cluster init's does). */
    snprintf(path, sizeof path, "%s/" CTL__CA_CRL, o->pki_dir);
    bool crl = access(path, F_OK) == 0;
    if (rv == 0 && crl) {
        rv = copy_crl(log, path, out, errmsg, errmsg_len);
    }
    if (rv != 0) {
        goto out_cert;
    }
    /* Its KEK: a new one (the data folder is empty, so no key was ever
     * wrapped under an older one left here). */
    if (rv == 0) {
        char why[600];
        snprintf(path, sizeof path, "%s/" CTL__KEK_FILE, out);
        if (unlink(path) != 0 && errno != ENOENT) {
            rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "remove %s: %s", path,
                           strerror(errno));
        } else if (kyufu_keys_kek_create(out, CTL__KEK_FILE, why, sizeof why) != 0) {
            rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s", why);
        } else {
            note(log, "wrote %s (0600: the node's key-encryption key)", path);
        }
    }
    if (rv != 0) {
        goto out_cert;
    }
    rv = join_conf(out, o, crl, errmsg, errmsg_len);
    if (rv == 0) {
        note(log, "wrote %s/kyufud.conf", out);
    }
out_cert:
    X509_free(cert);
    EVP_PKEY_free(key);
out_ca:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rv;
}
