/* kyufuctl cluster init: a new cluster's PKI and config files.
 *
 * What it makes for a local cluster (all paths absolute in the configs, so
 * nodes may be started from anywhere):
 *   DIR/ca.pem, DIR/ca.key            the cluster CA (EC P-256, self-signed)
 *   DIR/nodeN/node.pem, node.key      node N: SAN = its host and the URI
 *                                     urn:kyufu:node:N (its Raft id, checked
 *                                     on the Raft port: docs/peer-tls.md),
 *                                     EKU serverAuth + clientAuth (nodes dial
 *                                     each other)
 *   DIR/nodeN/kyufud.conf             the node's config (docs/kyufuctl.md)
 *   DIR/nodeN/data/                   empty data folder, 0700
 *   DIR/kyufuctl.pem, kyufuctl.key    client certificate (EKU clientAuth)
 *   DIR/kyufuctl.conf                 the client config
 * For real hosts (opts->on_hosts), DIR/nodeN is the folder to copy to host
 * N instead: kyufud.conf, ca.pem, node.pem, node.key, no data folder, and
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
#include "slo.h"
#include "glue_limits.h"
#include "grpc.h" /* KYUFU_TLS_NODE_URI_PREFIX */

static int errf(char *errmsg, size_t len, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int errf(char *errmsg, size_t len, int rv, const char *fmt, ...)
{
    if (errmsg != NULL && len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, len, fmt, ap);
        va_end(ap);
    }
    return rv;
}

static int ssl_err(char *errmsg, size_t len, const char *what)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    ERR_clear_error();
    return errf(errmsg, len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", what, detail);
}

/* ------------------------------------------------------------ files */

/* Write a whole file with the given mode, replacing any old one. */
static int write_file(const char *path, mode_t mode, const char *data,
                      size_t len, char *errmsg, size_t errmsg_len)
{
    unlink(path); /* a new inode gets `mode` from open(2) */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", path,
                    strerror(errno));
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = errno;
            close(fd);
            return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s",
                        path, strerror(e));
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", path,
                    strerror(errno));
    }
    return 0;
}

/* PEM of a key or certificate through a memory BIO, then write_file. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert,
                     char *errmsg, size_t errmsg_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) {
        return ssl_err(errmsg, errmsg_len, "BIO_new");
    }
    int ok = key != NULL ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_X509(b, cert);
    if (ok != 1) {
        BIO_free(b);
        return ssl_err(errmsg, errmsg_len, path);
    }
    char *data;
    long len = BIO_get_mem_data(b, &data);
    int rv = write_file(path, mode, data, (size_t)len, errmsg, errmsg_len);
    /* Scrub the key's PEM from memory before releasing it. */
    OPENSSL_cleanse(data, (size_t)len);
    BIO_free(b);
    return rv;
}

static int make_dir(const char *path, char *errmsg, size_t errmsg_len)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "mkdir %s: %s",
                    path, strerror(errno));
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                    "%s exists and is not a folder", path);
    }
    return 0;
}

/* 1: has entries other than . and ..; 0: empty or missing; -1: error. */
static int dir_nonempty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

/* ------------------------------------------------------------ PKI */

static EVP_PKEY *new_key(void)
{
    /* NIST P-256: CRYPTREC-listed, and the curve the TLS policy allows. */
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return -1;
    }
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

struct cert_spec
{
    const char *cn;
    unsigned days;
    bool ca;
    const char *eku;    /* NULL for the CA */
    const char *san;    /* "IP:1.2.3.4" / "DNS:name" [",URI:..."] or NULL */
};

/* Issue a certificate for `key`, signed by issuer_key (self-signed when
 * issuer is NULL). */
static X509 *issue(const struct cert_spec *s, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    if (x == NULL || bn == NULL) {
        goto err;
    }
    /* 159-bit random serial: unique and positive (RFC 5280 4.1.2.2). */
    if (X509_set_version(x, X509_VERSION_3) != 1 || !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        goto err;
    }
    /* An hour of clock skew between the machine that made the certificates
     * and the nodes must not make them "not yet valid". */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)s->days, 0, NULL) == NULL) {
        goto err;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)"kyufu", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)s->cn, -1, -1, 0) != 1) {
        goto err;
    }
    X509 *signer = issuer != NULL ? issuer : x;
    if (X509_set_issuer_name(x, X509_get_subject_name(signer)) != 1 ||
        X509_set_pubkey(x, key) != 1) {
        goto err;
    }
    if (s->ca) {
        if (add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
            add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign")) {
            goto err;
        }
    } else {
        if (add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE") ||
            add_ext(x, signer, NID_key_usage, "critical,digitalSignature") ||
            add_ext(x, signer, NID_ext_key_usage, s->eku)) {
            goto err;
        }
        if (s->san != NULL && add_ext(x, signer, NID_subject_alt_name, s->san)) {
            goto err;
        }
    }
    if (add_ext(x, signer, NID_subject_key_identifier, "hash") ||
        add_ext(x, signer, NID_authority_key_identifier, "keyid:always")) {
        goto err;
    }
    if (X509_sign(x, issuer_key, EVP_sha256()) == 0) {
        goto err;
    }
    BN_free(bn);
    return x;

err:
    BN_free(bn);
    X509_free(x);
    return NULL;
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
        return;
    }
    snprintf(p->data, sizeof p->data, "%s/node%u/data", dir, id);
    snprintf(p->ca, sizeof p->ca, "%s/ca.pem", dir);
    snprintf(p->cert, sizeof p->cert, "%s/node%u/node.pem", dir, id);
    snprintf(p->key, sizeof p->key, "%s/node%u/node.key", dir, id);
    snprintf(p->slo, sizeof p->slo, "%s/slo.conf", dir);
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
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    char path[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    int rv = write_file(path, 0644, t->buf, t->len, errmsg, errmsg_len);
    free(t->buf);
    return rv;
}

/* A node's [tls], [raft] and [log] sections: the same for a node of
 * `cluster init` and one of `node new`. */
static void node_sections(FILE *f, const char *ca, const char *cert,
                          const char *key)
{
    fprintf(f,
            "[tls]\n"
            "ca = %s\n"
            "cert = %s\n"
            "key = %s\n"
            "[raft]\n"
            "election_timeout_ms = %u\n"
            "heartbeat_timeout_ms = %u\n"
            "[log]\n"
            "level = info\n",
            ca, cert, key, KYUFU_ELECTION_TIMEOUT_MS_DEFAULT,
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
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
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
    node_sections(f, p.ca, p.cert, p.key);
    fprintf(f, "[sla]\nslo_file = %s\n", p.slo);
    return text_write(&t, errmsg, errmsg_len, "%s/node%u/kyufud.conf", dir,
                      id);
}

/* The default SLO file (node/slo.h), before the configs that name it. */
static int slo_conf(const char *dir, char *errmsg, size_t errmsg_len)
{
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    kyufu_slo_write_default(f);
    return text_write(&t, errmsg, errmsg_len, "%s/slo.conf", dir);
}

static int client_conf(const char *dir, const struct member *m, unsigned n,
                       char *errmsg, size_t errmsg_len)
{
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    fprintf(f, "# kyufuctl configuration, written by kyufuctl cluster init.\n"
               "[client]\nendpoints = ");
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "%s%s", i > 0 ? "," : "", m[i].api);
    }
    fprintf(f,
            "\nca = %s/ca.pem\n"
            "cert = %s/kyufuctl.pem\n"
            "key = %s/kyufuctl.key\n"
            "actor = \n"
            "deadline_ms = %u\n"
            "slo_file = %s/slo.conf\n",
            dir, dir, dir, KYUFU_CLIENT_DEADLINE_MS_DEFAULT, dir);
    return text_write(&t, errmsg, errmsg_len, "%s/kyufuctl.conf", dir);
}

static int check_opts(const struct kyufu_ctl_init_opts *o, char *errmsg,
                      size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    if (o->dir == NULL || o->dir[0] == '\0') {
        return errf(errmsg, errmsg_len, u, "--dir is required");
    }
    if (o->nodes < 1 || o->nodes > KYUFU_CTL_INIT_NODES_MAX) {
        return errf(errmsg, errmsg_len, u, "--nodes must be 1..%u",
                    KYUFU_CTL_INIT_NODES_MAX);
    }
    if (o->n_hosts > 1 && o->n_hosts != o->nodes) {
        return errf(errmsg, errmsg_len, u,
                    "%u hosts for %u nodes: give one host or one per node",
                    o->n_hosts, o->nodes);
    }
    if (o->on_hosts && o->n_hosts != o->nodes) {
        return errf(errmsg, errmsg_len, u,
                    "--hosts: %u hosts for %u nodes: give one host per node",
                    o->n_hosts, o->nodes);
    }
    const char *host_paths[2][2] = { { "--etc-dir", o->etc_dir },
                                     { "--state-dir", o->state_dir } };
    for (unsigned i = 0; i < 2; i++) {
        const char *p = host_paths[i][1];
        if (p != NULL && !o->on_hosts) {
            return errf(errmsg, errmsg_len, u, "%s applies to --hosts only",
                        host_paths[i][0]);
        }
        if (p != NULL && !host_path_ok(p)) {
            return errf(errmsg, errmsg_len, u,
                        "%s '%s': give an absolute path (no trailing '/') of at most %u bytes "
                        "of letters, digits, '.', '_', '-' and '/'",
                        host_paths[i][0], p, KYUFU_CTL_INIT_HOST_PATH_BYTES_MAX);
        }
    }
    for (unsigned i = 0; i < o->n_hosts; i++) {
        if (!host_ok(o->hosts[i])) {
            return errf(errmsg, errmsg_len, u,
                        "host '%s' is not an IP address or DNS name",
                        o->hosts[i]);
        }
    }
    if (o->raft_port_base == 0 || o->api_port_base == 0 ||
        (unsigned)o->raft_port_base + o->nodes - 1 > 65535 ||
        (unsigned)o->api_port_base + o->nodes - 1 > 65535) {
        return errf(errmsg, errmsg_len, u, "port bases must leave %u ports "
                    "below 65536", o->nodes);
    }
    unsigned r0 = o->raft_port_base, r1 = r0 + o->nodes - 1;
    unsigned a0 = o->api_port_base, a1 = a0 + o->nodes - 1;
    if (!(r1 < a0 || a1 < r0)) {
        return errf(errmsg, errmsg_len, u,
                    "raft ports %u-%u and API ports %u-%u overlap", r0, r1,
                    a0, a1);
    }
    unsigned m0 = o->metrics_port_base, m1 = m0 + o->nodes - 1;
    if (m0 != 0 && (m1 > 65535 || !(m1 < r0 || r1 < m0) ||
                    !(m1 < a0 || a1 < m0))) {
        return errf(errmsg, errmsg_len, u,
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

/* write_pem to the path FMT names, and "wrote PATH" on LOG. */
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
    int rv = write_pem(path, mode, key, cert, errmsg, errmsg_len);
    if (rv == 0) {
        note(log, "wrote %s", path);
    }
    return rv;
}

/* A new key and its leaf certificate for SPEC from the CA: 0 with *KEY and
 * *CERT the caller's to free, or an error with neither. */
static int make_leaf(const struct cert_spec *spec, X509 *ca, EVP_PKEY *ca_key,
                     EVP_PKEY **key, X509 **cert, char *errmsg, size_t errmsg_len)
{
    *key = new_key();
    if (*key == NULL) {
        return ssl_err(errmsg, errmsg_len, "key");
    }
    *cert = issue(spec, *key, ca, ca_key);
    if (*cert == NULL) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return ssl_err(errmsg, errmsg_len, spec->cn);
    }
    return 0;
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
    int ne = dir_nonempty(o->dir);
    if (ne < 0) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", o->dir,
                    strerror(errno));
    }
    if (ne > 0 && !o->force) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                    "%s is not empty; refusing to overwrite (use --force to "
                    "replace certificates and configs)", o->dir);
    }
    rv = make_dir(o->dir, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char dir[PATH_MAX];
    if (realpath(o->dir, dir) == NULL) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", o->dir,
                    strerror(errno));
    }
    char path[PATH_MAX + 128];
    for (unsigned i = 1; i <= o->nodes && !o->on_hosts; i++) {
        snprintf(path, sizeof path, "%s/node%u/data", dir, i);
        if (dir_nonempty(path) != 0) {
            return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                        "%s holds node data; a new cluster must start from "
                        "empty data folders (move it away first)", path);
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
        return rv;
    }
    note(log, "wrote %s/slo.conf", dir);
    EVP_PKEY *ca_key = new_key();
    if (ca_key == NULL) {
        return ssl_err(errmsg, errmsg_len, "CA key");
    }
    struct cert_spec ca_spec = { .cn = "kyufu cluster CA",
                                 .days = KYUFU_CTL_CA_VALID_DAYS, .ca = true };
    X509 *ca = issue(&ca_spec, ca_key, NULL, ca_key);
    if (ca == NULL) {
        rv = ssl_err(errmsg, errmsg_len, "CA certificate");
        goto out_ca_key;
    }
    snprintf(path, sizeof path, "%s/ca", dir);
    rv = put_leaf(log, path, ca_key, ca, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_ca;
    }

    /* Node i and, as i == nodes, the client. */
    for (unsigned i = 0; i <= o->nodes; i++) {
        bool client = i == o->nodes;
        char cn[64], san[340], base[PATH_MAX + 32];
        if (client) {
            snprintf(cn, sizeof cn, "kyufuctl");
            snprintf(base, sizeof base, "%s/kyufuctl", dir);
        } else {
            snprintf(cn, sizeof cn, "kyufu node %u", i + 1);
            snprintf(san, sizeof san, "%s:%s,URI:%s%u",
                     host_is_ip(m[i].host) ? "IP" : "DNS", m[i].host,
                     KYUFU_TLS_NODE_URI_PREFIX, i + 1);
            snprintf(base, sizeof base, "%s/node%u", dir, i + 1);
            rv = make_dir(base, errmsg, errmsg_len);
            if (rv == 0 && o->on_hosts) {
                /* The CA certificate and the SLO file travel with the
                 * node's folder. */
                rv = put_pem(log, 0644, NULL, ca, errmsg, errmsg_len, "%s/ca.pem", base);
                if (rv == 0) {
                    rv = slo_conf(base, errmsg, errmsg_len);
                }
                if (rv == 0) {
                    note(log, "wrote %s/slo.conf", base);
                }
            } else if (rv == 0) {
                snprintf(path, sizeof path, "%s/data", base);
                rv = make_dir(path, errmsg, errmsg_len);
            }
            if (rv != 0) {
                goto out_ca;
            }
            snprintf(base + strlen(base), sizeof base - strlen(base), "/node");
        }
        struct cert_spec spec = {
            .cn = cn,
            .days = KYUFU_CTL_LEAF_VALID_DAYS,
            .eku = client ? "clientAuth" : "serverAuth,clientAuth",
            .san = client ? NULL : san,
        };
        EVP_PKEY *key;
        X509 *cert;
        rv = make_leaf(&spec, ca, ca_key, &key, &cert, errmsg, errmsg_len);
        if (rv != 0) {
            goto out_ca;
        }
        rv = put_leaf(log, base, key, cert, errmsg, errmsg_len);
        X509_free(cert);
        EVP_PKEY_free(key);
        if (rv != 0) {
            goto out_ca;
        }
        if (!client) {
            rv = node_conf(o, dir, i + 1, m, o->nodes, errmsg, errmsg_len);
            if (rv != 0) {
                goto out_ca;
            }
            note(log, "wrote %s/node%u/kyufud.conf", dir, i + 1);
        }
    }
    rv = client_conf(dir, m, o->nodes, errmsg, errmsg_len);
    if (rv == 0) {
        note(log, "wrote %s/kyufuctl.conf", dir);
    }

out_ca:
    X509_free(ca);
out_ca_key:
    EVP_PKEY_free(ca_key);
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

static int read_ca(const char *pki, X509 **ca, EVP_PKEY **ca_key,
                   char *errmsg, size_t errmsg_len)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/ca.pem", pki);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE, "%s: %s", path,
                    strerror(errno));
    }
    *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (*ca == NULL) {
        return ssl_err(errmsg, errmsg_len, path);
    }
    snprintf(path, sizeof path, "%s/ca.key", pki);
    f = fopen(path, "r");
    if (f == NULL) {
        X509_free(*ca);
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                    "%s: %s (node new needs the cluster CA's key)", path,
                    strerror(errno));
    }
    *ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (*ca_key == NULL) {
        X509_free(*ca);
        return ssl_err(errmsg, errmsg_len, path);
    }
    if (X509_check_private_key(*ca, *ca_key) != 1) {
        X509_free(*ca);
        EVP_PKEY_free(*ca_key);
        ERR_clear_error();
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                    "%s/ca.key is not the key of %s/ca.pem", pki, pki);
    }
    return 0;
}

static int join_conf(const char *out, const struct kyufu_ctl_node_new_opts *o,
                     char *errmsg, size_t errmsg_len)
{
    struct text t;
    FILE *f = text_open(&t);
    if (f == NULL) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
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
    snprintf(ca, sizeof ca, "%s/ca.pem", out);
    snprintf(cert, sizeof cert, "%s/node.pem", out);
    snprintf(key, sizeof key, "%s/node.key", out);
    node_sections(f, ca, cert, key);
    return text_write(&t, errmsg, errmsg_len, "%s/kyufud.conf", out);
}

int kyufu_ctl_node_new(const struct kyufu_ctl_node_new_opts *o, FILE *log,
                       char *errmsg, size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    char raft_host[256], api_host[256];
    if (o->id == 0 || o->id > KYUFU_CTL_NODE_ID_MAX) {
        return errf(errmsg, errmsg_len, u, "--id must be 1..%u",
                    KYUFU_CTL_NODE_ID_MAX);
    }
    if (o->raft == NULL || o->api == NULL || !split_host(o->raft, raft_host, sizeof raft_host) ||
        !split_host(o->api, api_host, sizeof api_host) || strcmp(o->raft, o->api) == 0) {
        return errf(errmsg, errmsg_len, u,
                    "--raft and --api must be two different HOST:PORT (an IPv4 "
                    "address or a DNS name)");
    }
    for (const char *const *a = (const char *const[]){ o->raft, o->api, NULL }; *a; a++) {
        const char *port = strrchr(*a, ':') + 1;
        char *end;
        unsigned long v = strtoul(port, &end, 10);
        if (port[0] < '0' || port[0] > '9' || *end != '\0' || v < 1 || v > 65535) {
            return errf(errmsg, errmsg_len, u, "'%s': the port must be 1..65535", *a);
        }
    }
    for (size_t i = 0; i < o->n_members; i++) {
        const struct kyufu_ctl_member *m = &o->members[i];
        if (m->id == o->id) {
            return errf(errmsg, errmsg_len, u,
                        "node %llu is already a member of the cluster (pick "
                        "another id, or remove-node it first)",
                        (unsigned long long)o->id);
        }
        if (strcmp(m->raft, o->raft) == 0 || strcmp(m->api, o->api) == 0 ||
            strcmp(m->raft, o->api) == 0 || strcmp(m->api, o->raft) == 0) {
            return errf(errmsg, errmsg_len, u, "an address of node %llu is "
                        "node %llu's", (unsigned long long)o->id,
                        (unsigned long long)m->id);
        }
    }
    int rv = make_dir(o->out, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char out[PATH_MAX], path[PATH_MAX + 64];
    if (realpath(o->out, out) == NULL) {
        return errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", o->out,
                    strerror(errno));
    }
    snprintf(path, sizeof path, "%s/data", out);
    if (dir_nonempty(path) != 0) {
        return errf(errmsg, errmsg_len, u,
                    "%s holds node data; a joining node starts from an empty "
                    "data folder (move it away first)", path);
    }
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    rv = read_ca(o->pki_dir, &ca, &ca_key, errmsg, errmsg_len);
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
    struct cert_spec spec = { .cn = cn, .days = KYUFU_CTL_LEAF_VALID_DAYS,
                              .eku = "serverAuth,clientAuth", .san = san };
    rv = make_leaf(&spec, ca, ca_key, &key, &cert, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_ca;
    }
    snprintf(path, sizeof path, "%s/data", out);
    rv = make_dir(path, errmsg, errmsg_len);
    if (rv != 0) {
        goto out_cert;
    }
    snprintf(path, sizeof path, "%s/node", out);
    rv = put_leaf(log, path, key, cert, errmsg, errmsg_len);
    if (rv == 0) {
        rv = put_pem(log, 0644, NULL, ca, errmsg, errmsg_len, "%s/ca.pem", out);
    }
    if (rv != 0) {
        goto out_cert;
    }
    rv = join_conf(out, o, errmsg, errmsg_len);
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
