/* kyufuctl cluster init: what operators rely on — the certificates chain to
 * the generated CA (verified with OpenSSL, time checks off so the test does
 * not read the clock), carry the right SANs and key usages, private keys are
 * 0600 and match their certificates, the CA key is encrypted (unreadable
 * without its passphrase) in a CA folder apart from the nodes', the first
 * administrator gets an operator certificate (no shared client
 * certificate), the config files are exactly in the agreed format and
 * parse, and existing content is never overwritten by accident. */
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bootstrap_file.h"
#include "check.h"
#include "ctl.h"
#include "ctl_bootstrap.h"
#include "ctl_key.h"
#include "ctl_run.h"
#include "ctl_pki.h"
#include "pwhash.h"
#include "slo.h"
#include "kyufu.h"
#include "keys.h"

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(x != NULL);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(k != NULL);
    return k;
}

#define PASSPHRASE "test CA passphrase"

static void check_mode(const char *path, unsigned mode);

/* An encrypted key read with `pass` (NULL: none given, never a prompt). */
static int give_pass(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    if (u == NULL) {
        return -1;
    }
    int n = (int)strlen(u);
    CHECK(n <= size);
    memcpy(buf, u, (size_t)n);
    return n;
}

static EVP_PKEY *load_key_with(const char *path, const char *pass)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, give_pass, (void *)pass);
    fclose(f);
    ERR_clear_error();
    return k;
}

/* The PBKDF2 iteration count of an encrypted PKCS#8 key (PBES2). */
static long kdf_iterations(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    X509_SIG *sig = PEM_read_PKCS8(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(sig != NULL);
    const X509_ALGOR *alg;
    X509_SIG_get0(sig, &alg, NULL);
    CHECK(OBJ_obj2nid(alg->algorithm) == NID_pbes2);
    PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    CHECK(pbe2 != NULL && OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_pbkdf2);
    CHECK(EVP_CIPHER_get_nid(EVP_get_cipherbyobj(pbe2->encryption->algorithm)) ==
          NID_aes_256_cbc);
    PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                                 pbe2->keyfunc->parameter);
    CHECK(kdf != NULL);
    CHECK(kdf->prf != NULL && OBJ_obj2nid(kdf->prf->algorithm) == NID_hmacWithSHA256);
    long n = ASN1_INTEGER_get(kdf->iter);
    PBKDF2PARAM_free(kdf);
    PBE2PARAM_free(pbe2);
    X509_SIG_free(sig);
    return n;
}

/* A CRL signed by ca, revoking nothing, valid for 30 days. */
static void check_crl(const char *path, X509 *ca)
{
    check_mode(path, 0644);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(crl != NULL);
    CHECK(X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1);
    CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0);
    CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
    int days, secs;
    CHECK(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
                         X509_CRL_get0_nextUpdate(crl)) == 1);
    CHECK(days == 30 && secs == 3600); /* an hour back, 30 days ahead */
    X509_CRL_free(crl);
}

/* The URI SANs of x joined by ' ' into out (docs/peer-tls.md: a node
 * certificate names its Raft id as urn:kyufu:node:N). */
static void uris(X509 *x, char *out, size_t len)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    out[0] = '\0';
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
        if (n->type == GEN_URI) {
            snprintf(out + strlen(out), len - strlen(out), "%s%.*s", out[0] ? " " : "",
                     ASN1_STRING_length(n->d.uniformResourceIdentifier),
                     (const char *)ASN1_STRING_get0_data(n->d.uniformResourceIdentifier));
        }
    }
    GENERAL_NAMES_free(names);
}

static void check_mode(const char *path, unsigned mode)
{
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    if ((sb.st_mode & 0777) != mode) {
        fprintf(stderr, "%s: mode %o, want %o\n", path, sb.st_mode & 0777, mode);
        exit(1);
    }
}

static bool verifies(X509 *ca, X509 *leaf, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_purpose(p, purpose);
    int ok = X509_verify_cert(ctx);
    if (ok != 1) {
        fprintf(stderr, "verify: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Where the configs of a cluster made for real hosts point (NULL: a local
 * cluster, everything under its folder). */
struct host_paths
{
    const char *etc;
    const char *state;
};

static const char *secret_sought; /* for no_secret_in */

static int no_secret_in(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && S_ISREG(sb->st_mode)) {
        char *text = slurp(path);
        CHECK(strstr(text, secret_sought) == NULL);
    }
    return 0;
}

/* Encryption at rest: node i's KEK file (0600) unwraps its CMK file
 * (0600) with node i's binding to this CA, never with another node's;
 * every node holds the same CMK; the CMK (hex or raw) is in no file. */
static void check_keys(const char *dir, unsigned i, const char *kek, const char *cmk_file)
{
    static uint8_t first[KYUFU_KEYS_KEY_BYTES];
    char path[1024], err[600];
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES], cmk[KYUFU_KEYS_KEY_BYTES];
    check_mode(kek, 0600);
    check_mode(cmk_file, 0600);
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    CHECK_EQ_INT(kyufu_keys_ca_hash(path, ca_hash, err, sizeof err), 0);
    struct kyufu_keys_source src = { .kek_file = kek };
    CHECK_EQ_INT(kyufu_keys_cmk_load(&src, cmk_file, i, ca_hash, cmk, err, sizeof err), 0);
    if (i == 1) {
        memcpy(first, cmk, sizeof cmk);
    } else {
        CHECK(memcmp(first, cmk, sizeof cmk) == 0);
    }
    CHECK_EQ_INT(kyufu_keys_cmk_load(&src, cmk_file, i % 3 + 1, ca_hash, cmk, err, sizeof err),
                 -1);
    CHECK(strstr(err, "does not unwrap") != NULL);
    ca_hash[0] ^= 1; /* another cluster's CA */
    CHECK_EQ_INT(kyufu_keys_cmk_load(&src, cmk_file, i, ca_hash, cmk, err, sizeof err), -1);
    if (i == 3) {
        static char hex[2 * KYUFU_KEYS_KEY_BYTES + 1];
        for (size_t j = 0; j < KYUFU_KEYS_KEY_BYTES; j++) {
            snprintf(hex + 2 * j, 3, "%02x", first[j]);
        }
        secret_sought = hex;
        CHECK(nftw(dir, no_secret_in, 16, FTW_PHYS) == 0);
    }
}

static void check_cluster_at(const char *dir, const char *const *hosts, bool ip, bool v6,
                             const struct host_paths *hp, const char *admin)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    X509 *ca = load_cert(path);
    /* The CA folder: the key encrypted, readable with the passphrase
     * only; no CA key outside it. */
    snprintf(path, sizeof path, "%s/ca.key", dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/ca/ca.key", dir);
    check_mode(path, 0600);
    CHECK(strncmp(slurp(path), "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0);
    CHECK(load_key_with(path, NULL) == NULL);
    /* Each decryption costs 600,000 PBKDF2 rounds (~0.13 s): the full
     * check on the first cluster only. */
    static bool decrypted;
    if (!decrypted) {
        decrypted = true;
        /* AES-256-CBC, PBKDF2-HMAC-SHA256, the documented count. */
        CHECK_EQ_INT(kdf_iterations(path), KYUFU_CTL_CA_KEY_PBKDF2_ITERATIONS);
        CHECK(load_key_with(path, "not the passphrase") == NULL);
        EVP_PKEY *cak = load_key_with(path, PASSPHRASE);
        CHECK(cak != NULL);
        CHECK(X509_check_private_key(ca, cak) == 1);
        EVP_PKEY_free(cak);
        snprintf(path, sizeof path, "%s/ca", dir);
        X509 *ca2;
        EVP_PKEY *cak2;
        char err[512];
        CHECK_EQ_INT(ctl__ca_read(path, NULL, &ca2, &cak2, err, sizeof err), 0);
        CHECK(X509_cmp(ca, ca2) == 0);
        X509_free(ca2);
        EVP_PKEY_free(cak2);
    }
    snprintf(path, sizeof path, "%s/ca", dir);
    check_mode(path, 0700);
    CHECK(X509_check_ca(ca) >= 1);
    CHECK(X509_get_signature_nid(ca) == NID_ecdsa_with_SHA256);
    for (unsigned i = 1; i <= 3; i++) {
        snprintf(path, sizeof path, "%s/node%u/node.pem", dir, i);
        X509 *x = load_cert(path);
        CHECK(verifies(ca, x, X509_PURPOSE_SSL_SERVER));
        CHECK(verifies(ca, x, X509_PURPOSE_SSL_CLIENT)); /* nodes dial each other */
        CHECK(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256);
        EVP_PKEY *pub = X509_get0_pubkey(x);
        char group[64];
        size_t gl;
        CHECK(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &gl) == 1);
        CHECK(strcmp(group, "prime256v1") == 0);
        char uri[128], want_uri[64];
        uris(x, uri, sizeof uri);
        snprintf(want_uri, sizeof want_uri, "urn:kyufu:node:%u", i);
        CHECK(strcmp(uri, want_uri) == 0); /* exactly one, its own id */
        const char *h = hosts[i - 1];
        if (ip) {
            CHECK(X509_check_ip_asc(x, h, 0) == 1);
        } else {
            CHECK(X509_check_host(x, h, 0, 0, NULL) == 1);
        }
        /* Not valid for another node's name. */
        if (strcmp(hosts[i % 3], h) != 0) {
            CHECK(ip ? X509_check_ip_asc(x, hosts[i % 3], 0) != 1
                     : X509_check_host(x, hosts[i % 3], 0, 0, NULL) != 1);
        }
        snprintf(path, sizeof path, "%s/node%u/node.key", dir, i);
        check_mode(path, 0600);
        EVP_PKEY *k = load_key(path);
        CHECK(X509_check_private_key(x, k) == 1);
        EVP_PKEY_free(k);
        X509_free(x);
        snprintf(path, sizeof path, "%s/node%u/data", dir, i);
        struct stat sb;
        if (hp == NULL) {
            check_mode(path, 0700);
        } else {
            /* No data folder to copy; the CA certificate travels along. */
            CHECK(stat(path, &sb) != 0 && errno == ENOENT);
            char ca_copy[1024], ca_main[1024];
            snprintf(path, sizeof path, "%s/node%u/ca.pem", dir, i);
            check_mode(path, 0644);
            snprintf(ca_copy, sizeof ca_copy, "%s", slurp(path));
            snprintf(path, sizeof path, "%s/ca.pem", dir);
            snprintf(ca_main, sizeof ca_main, "%s", slurp(path));
            CHECK(strcmp(ca_copy, ca_main) == 0);
            snprintf(path, sizeof path, "%s/node%u/crl.pem", dir, i);
            check_crl(path, ca);
        }
        /* The node config, exactly as agreed with node/.  Node j's ports:
         * the base plus the nodes before it on the same host. */
        char want[8192], raft[3][80], api[3][80];
        for (unsigned j = 0; j < 3; j++) {
            unsigned before = 0;
            for (unsigned e = 0; e < j; e++) {
                before += strcmp(hosts[e], hosts[j]) == 0;
            }
            snprintf(raft[j], sizeof raft[j], v6 ? "[%s]:%u" : "%s:%u", hosts[j], 7001 + before);
            snprintf(api[j], sizeof api[j], v6 ? "[%s]:%u" : "%s:%u", hosts[j], 8001 + before);
        }
        char data[600], ca_p[600], cert_p[600], key_p[600], slo_p[600], crl_p[600];
        char kek_p[600], cmk_p[700], kek_f[600], cmk_f[600];
        snprintf(kek_f, sizeof kek_f, "%s/node%u/kek.key", dir, i);
        if (hp == NULL) {
            snprintf(data, sizeof data, "%s/node%u/data", dir, i);
            snprintf(ca_p, sizeof ca_p, "%s/ca.pem", dir);
            snprintf(cert_p, sizeof cert_p, "%s/node%u/node.pem", dir, i);
            snprintf(key_p, sizeof key_p, "%s/node%u/node.key", dir, i);
            snprintf(slo_p, sizeof slo_p, "%s/slo.conf", dir);
            snprintf(crl_p, sizeof crl_p, "%s/crl.pem", dir);
            snprintf(kek_p, sizeof kek_p, "%s", kek_f);
            snprintf(cmk_f, sizeof cmk_f, "%s/node%u/data/keys/cmk", dir, i);
        } else {
            snprintf(data, sizeof data, "%s", hp->state);
            snprintf(ca_p, sizeof ca_p, "%s/ca.pem", hp->etc);
            snprintf(cert_p, sizeof cert_p, "%s/node.pem", hp->etc);
            snprintf(key_p, sizeof key_p, "%s/node.key", hp->etc);
            snprintf(slo_p, sizeof slo_p, "%s/slo.conf", hp->etc);
            snprintf(crl_p, sizeof crl_p, "%s/crl.pem", hp->etc);
            snprintf(kek_p, sizeof kek_p, "%s/kek.key", hp->etc);
            snprintf(cmk_f, sizeof cmk_f, "%s/node%u/cmk", dir, i);
        }
        snprintf(cmk_p, sizeof cmk_p, "%s/keys/cmk", data);
        check_keys(dir, i, kek_f, cmk_f);
        snprintf(want, sizeof want,
                 "# kyufud configuration, written by kyufuctl cluster init.\n"
                 "[node]\nid = %u\ndata_dir = %s\nraft_address = %s\n"
                 "api_address = %s\n[cluster]\n"
                 "# one line per member: id = raft_address api_address\n"
                 "1 = %s %s\n2 = %s %s\n3 = %s %s\n"
                 "[tls]\nca = %s\ncert = %s\nkey = %s\ncrl_file = %s\n"
                 "[raft]\nelection_timeout_ms = 1000\nheartbeat_timeout_ms = 100\n"
                 "[log]\nlevel = info\n"
                 "[sla]\nslo_file = %s\n"
                 "[keys]\nkek_file = %s\ncmk_file = %s\n",
                 i, data, raft[i - 1], api[i - 1], raft[0], api[0], raft[1], api[1],
                 raft[2], api[2], ca_p, cert_p, key_p, crl_p, slo_p, kek_p, cmk_p);
        snprintf(path, sizeof path, "%s/node%u/kyufud.conf", dir, i);
        char *got = slurp(path);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "node config differs:\n--- got\n%s--- want\n%s", got, want);
            exit(1);
        }
    }
    /* No shared client certificate: the first administrator's own. */
    snprintf(path, sizeof path, "%s/kyufuctl.pem", dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/%s.pem", dir, admin);
    X509 *cl = load_cert(path);
    CHECK(verifies(ca, cl, X509_PURPOSE_SSL_CLIENT));
    CHECK(!verifies(ca, cl, X509_PURPOSE_SSL_SERVER)); /* clientAuth only */
    char cl_uri[128], want_cl[128], cn[80];
    uris(cl, cl_uri, sizeof cl_uri);
    snprintf(want_cl, sizeof want_cl, "urn:kyufu:operator:%s", admin);
    CHECK(strcmp(cl_uri, want_cl) == 0); /* names no node: refused on the Raft port */
    X509_NAME_get_text_by_NID(X509_get_subject_name(cl), NID_commonName, cn, sizeof cn);
    CHECK(strcmp(cn, admin) == 0);
    snprintf(path, sizeof path, "%s/%s.key", dir, admin);
    check_mode(path, 0600);
    EVP_PKEY *clk = load_key(path);
    CHECK(X509_check_private_key(cl, clk) == 1);
    EVP_PKEY_free(clk);
    /* Registered, and the CRL (empty) signed by the CA, copied for the
     * nodes. */
    char sha[65];
    ctl__cert_sha256(cl, sha);
    snprintf(path, sizeof path, "%s/ca/registry.json", dir);
    check_mode(path, 0600);
    json_t *reg = json_load_file(path, 0, NULL);
    CHECK(reg != NULL && json_array_size(reg) == 1);
    json_t *e = json_array_get(reg, 0);
    CHECK(strcmp(json_string_value(json_object_get(e, "name")), admin) == 0);
    CHECK(strcmp(json_string_value(json_object_get(e, "kind")), "operator") == 0);
    CHECK(strcmp(json_string_value(json_object_get(e, "status")), "active") == 0);
    CHECK(strcmp(json_string_value(json_object_get(e, "sha256")), sha) == 0);
    json_decref(reg);
    X509_free(cl);
    snprintf(path, sizeof path, "%s/ca/crl.pem", dir);
    check_crl(path, ca);
    if (hp == NULL) {
        snprintf(path, sizeof path, "%s/crl.pem", dir);
        check_crl(path, ca);
    }
    X509_free(ca);

    /* The client config parses and names every node's API. */
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    char err[256];
    snprintf(path, sizeof path, "%s/kyufuctl.conf", dir);
    CHECK(kyufu_client_config_load(&cfg, path, err, sizeof err) == 0);
    CHECK(kyufu_client_config_validate(&cfg, err, sizeof err) == 0);
    CHECK_EQ_INT(cfg.n_endpoints, 3);
    for (unsigned j = 0; j < 3; j++) {
        unsigned before = 0;
        for (unsigned k = 0; k < j; k++) {
            before += strcmp(hosts[k], hosts[j]) == 0;
        }
        char api[80];
        snprintf(api, sizeof api, v6 ? "[%s]:%u" : "%s:%u", hosts[j], 8001 + before);
        CHECK(strcmp(cfg.endpoints[j], api) == 0);
    }
    CHECK(cfg.actor == NULL && cfg.deadline_ms == 5000);
    CHECK(cfg.cert_file != NULL && cfg.key_file != NULL && cfg.ca_file != NULL);
    /* The SLO file both configs name: the default, valid. */
    snprintf(path, sizeof path, "%s/slo.conf", dir);
    CHECK(cfg.slo_file != NULL && strcmp(cfg.slo_file, path) == 0);
    kyufu_client_config_free(&cfg);
    struct kyufu_slo *slo = malloc(sizeof *slo);
    CHECK(slo != NULL && kyufu_slo_load(path, slo) == 0);
    CHECK_EQ_INT(slo->target_ppm, 999000);
    CHECK_EQ_INT(slo->rpo_ack_ms, 0);
    free(slo);
}

static void check_cluster(const char *dir, const char *const *hosts, bool ip, bool v6)
{
    check_cluster_at(dir, hosts, ip, v6, NULL, "admin");
}

/* ------------------------------------------------ the first administrator */


/* Each node folder of the cluster in DIR has a bootstrap-admin (in data/
 * for a local cluster, beside the config for hosts): 0600, parsed by the
 * node's own parser, for ADMIN, whose hash the printed PASSWORD verifies;
 * no file under DIR holds the password. */
static void check_bootstrap(const char *dir, bool on_hosts, const char *admin,
                            const char *password)
{
    CHECK_EQ_INT(strlen(password), KYUFU_PWHASH_TEMPORARY_CHARS);
    CHECK(strspn(password, "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") ==
          strlen(password));
    for (unsigned i = 1; i <= 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/node%u/%s" CTL__BOOTSTRAP_FILE, dir, i,
                 on_hosts ? "" : "data/");
        check_mode(path, 0600);
        struct kyufu_node_bootstrap b;
        CHECK(kyufu_node__bootstrap_parse(slurp(path), &b) == NULL);
        CHECK(strcmp(b.staff_id, admin) == 0);
        CHECK(strcmp(b.display_name, CTL__BOOTSTRAP_DISPLAY_NAME) == 0);
        CHECK_EQ_INT(b.iterations, KYUFU_PWHASH_ITERATIONS);
        CHECK(kyufu_pwhash_check(password, strlen(password), b.iterations, b.salt,
                                 sizeof b.salt, b.hash, sizeof b.hash));
        char wrong[KYUFU_PWHASH_TEMPORARY_CHARS + 1];
        memcpy(wrong, password, sizeof wrong);
        wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
        CHECK(!kyufu_pwhash_check(wrong, strlen(wrong), b.iterations, b.salt,
                                  sizeof b.salt, b.hash, sizeof b.hash));
    }
    secret_sought = password;
    CHECK(nftw(dir, no_secret_in, 16, FTW_PHYS) == 0);
}

/* kyufuctl key init (an existing cluster's keys, docs/encryption.md
 * "Upgrading a cluster"): per node a 0600 KEK and its wrapped CMK, one CMK
 * for all, bound to each node and the CA; malformed input or an existing
 * key: refused, nothing written. */
static void test_key_init(const char *tmp)
{
    char out[8192], err[2048], ca[600], dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/keys-out", tmp);
    snprintf(ca, sizeof ca, "%s/c1/ca.pem", tmp);
    static const char *const bad[] = { "", "0", "1,1", "1,,2", "x", "1,2,3,4,5,6,7,8,9,10",
                                       "1000001", "2," };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "init", "--ca", ca,
                             "--nodes", bad[i], "--out", dir, NULL),
                     KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, "--nodes") != NULL);
    }
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "init", "--ca",
                         "/nonexistent.pem", "--nodes", "1", "--out", dir, NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "init", "--nodes", "1",
                         "--out", dir, NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(access(dir, F_OK) != 0); /* nothing written */
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "init", "--ca", ca,
                         "--nodes", "1,2,12", "--out", dir, NULL),
                 0);
    static uint8_t first[KYUFU_KEYS_KEY_BYTES];
    uint8_t hash[KYUFU_KEYS_CA_HASH_BYTES], cmk[KYUFU_KEYS_KEY_BYTES];
    CHECK_EQ_INT(kyufu_keys_ca_hash(ca, hash, err, sizeof err), 0);
    const unsigned ids[] = { 1, 2, 12 };
    for (size_t i = 0; i < 3; i++) {
        char kek[700], cmk_file[700];
        snprintf(kek, sizeof kek, "%s/node%u/" CTL__KEK_FILE, dir, ids[i]);
        snprintf(cmk_file, sizeof cmk_file, "%s/node%u/" CTL__CMK_FILE, dir, ids[i]);
        check_mode(kek, 0600);
        check_mode(cmk_file, 0600);
        struct kyufu_keys_source src = { .kek_file = kek };
        CHECK_EQ_INT(kyufu_keys_cmk_load(&src, cmk_file, ids[i], hash, cmk, err, sizeof err), 0);
        if (i == 0) {
            memcpy(first, cmk, sizeof cmk);
        } else {
            CHECK(memcmp(first, cmk, sizeof cmk) == 0);
        }
        CHECK_EQ_INT(kyufu_keys_cmk_load(&src, cmk_file, ids[i] + 1, hash, cmk, err, sizeof err),
                     -1);
    }
    /* Never over an existing key: refused before anything is written. */
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "init", "--ca", ca,
                         "--nodes", "3,12", "--out", dir, NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "never overwritten") != NULL);
    snprintf(path, sizeof path, "%s/node3", dir);
    CHECK(access(path, F_OK) != 0);
}

/* kyufuctl key rewrap on the files key init made (tmp/keys-out/node2):
 * to a new passphrase, then to a new key file; a wrong or missing old key,
 * another node id, a bad new key change nothing and leave no new file. */
static void test_key_rewrap(const char *tmp)
{
    char out[8192], err[2048], ca[600], kek[700], cmk_file[700], pass[700], kek2[700];
    snprintf(ca, sizeof ca, "%s/c1/ca.pem", tmp);
    snprintf(kek, sizeof kek, "%s/keys-out/node2/" CTL__KEK_FILE, tmp);
    snprintf(cmk_file, sizeof cmk_file, "%s/keys-out/node2/" CTL__CMK_FILE, tmp);
    snprintf(pass, sizeof pass, "%s/keys-out/node2/passphrase", tmp);
    snprintf(kek2, sizeof kek2, "%s/keys-out/node2/kek2.key", tmp);
    char wrong[700];
    snprintf(wrong, sizeof wrong, "%s/keys-out/node1/" CTL__KEK_FILE, tmp);
    uint8_t hash[KYUFU_KEYS_CA_HASH_BYTES], before[KYUFU_KEYS_KEY_BYTES],
        after[KYUFU_KEYS_KEY_BYTES];
    CHECK_EQ_INT(kyufu_keys_ca_hash(ca, hash, err, sizeof err), 0);
    struct kyufu_keys_source old_src = { .kek_file = kek };
    CHECK_EQ_INT(kyufu_keys_cmk_load(&old_src, cmk_file, 2, hash, before, err, sizeof err), 0);
    int fd = open(pass, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "correct horse battery staple\n", 29) == 29);
    close(fd);
    struct stat st0, st1;
    CHECK(stat(cmk_file, &st0) == 0);
    /* Refusals: nothing changes, no new key file is left. */
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap", "--node-id",
                         "2", "--ca", ca, "--cmk", cmk_file, "--kek-file", wrong,
                         "--new-kek-file", kek2, NULL),
                 KYUFU_CTL_EXIT_LOCAL);
    CHECK(strstr(err, "old key does not open it") != NULL && strstr(err, "nothing changed"));
    CHECK(access(kek2, F_OK) != 0);
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap", "--node-id",
                         "1", "--ca", ca, "--cmk", cmk_file, "--kek-file", kek,
                         "--new-passphrase-file", pass, NULL),
                 KYUFU_CTL_EXIT_LOCAL);
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap", "--node-id",
                         "2", "--ca", ca, "--cmk", cmk_file, "--kek-file", kek,
                         "--new-passphrase-file", "/nonexistent/pass", NULL),
                 KYUFU_CTL_EXIT_LOCAL);
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap", "--node-id",
                         "2", "--ca", ca, "--cmk", "", "--kek-file", kek,
                         "--new-kek-file", kek2, NULL),
                 KYUFU_CTL_EXIT_LOCAL);
    CHECK(access(kek2, F_OK) != 0);
    static const char *const usage[][2] = { { "--node-id", "0" }, { "--node-id", "" },
                                            { "--ca", "/nonexistent.pem" } };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        const char *id = strcmp(usage[i][0], "--node-id") == 0 ? usage[i][1] : "2";
        const char *cap = strcmp(usage[i][0], "--ca") == 0 ? usage[i][1] : ca;
        CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap",
                             "--node-id", id, "--ca", cap, "--cmk", cmk_file, "--kek-file", kek,
                             "--new-kek-file", kek2, NULL),
                     KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, usage[i][0]) != NULL);
    }
    CHECK(stat(cmk_file, &st1) == 0);
    CHECK(st0.st_ino == st1.st_ino && st0.st_mtime == st1.st_mtime); /* untouched */
    /* To a passphrase, then to a new key file: the same CMK each time, and
     * only the newest key opens it. */
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap", "--node-id",
                         "2", "--ca", ca, "--cmk", cmk_file, "--kek-file", kek,
                         "--new-passphrase-file", pass, NULL),
                 0);
    struct kyufu_keys_source pass_src = { .passphrase_file = pass };
    CHECK_EQ_INT(kyufu_keys_cmk_load(&pass_src, cmk_file, 2, hash, after, err, sizeof err), 0);
    CHECK(memcmp(before, after, sizeof before) == 0);
    CHECK_EQ_INT(kyufu_keys_cmk_load(&old_src, cmk_file, 2, hash, after, err, sizeof err), -1);
    check_mode(cmk_file, 0600);
    CHECK_EQ_INT(ctl_run(out, sizeof out, err, sizeof err, NULL, "key", "rewrap", "--node-id",
                         "2", "--ca", ca, "--cmk", cmk_file, "--passphrase-file", pass,
                         "--new-kek-file", kek2, NULL),
                 0);
    check_mode(kek2, 0600);
    struct kyufu_keys_source new_src = { .kek_file = kek2 };
    CHECK_EQ_INT(kyufu_keys_cmk_load(&new_src, cmk_file, 2, hash, after, err, sizeof err), 0);
    CHECK(memcmp(before, after, sizeof before) == 0);
    CHECK_EQ_INT(kyufu_keys_cmk_load(&pass_src, cmk_file, 2, hash, after, err, sizeof err), -1);
}

int main(void)
{
    char tmp[] = "/tmp/kyufu-ctl-init-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    CHECK(setenv("KYUFU_CA_PASSPHRASE", PASSPHRASE, 1) == 0);
    char dir[512], err[512];
    snprintf(dir, sizeof dir, "%s/c1", tmp);

    /* Defaults: three nodes on 127.0.0.1. */
    char pw1[KYUFU_PWHASH_TEMPORARY_CHARS + 1], pw2[sizeof pw1];
    struct kyufu_ctl_init_opts o = { .dir = dir, .nodes = 3, .raft_port_base = 7001,
                                     .api_port_base = 8001, .admin_password = pw1 };
    CHECK_EQ_INT(kyufu_ctl_init(&o, NULL, err, sizeof err), 0);
    static const char *const local[] = { "127.0.0.1", "127.0.0.1", "127.0.0.1" };
    check_cluster(dir, local, true, false);
    check_bootstrap(dir, false, "admin", pw1);
    /* The CA key of the first cluster has the real cost (checked above);
     * the others a token one, so this test stays cheap (sanitizers make
     * each PBKDF2 round an allocation). */
    o.ca_key_iterations = 1000;

    /* Existing content: refused; --force replaces; node data: always refused. */
    CHECK_EQ_INT(kyufu_ctl_init(&o, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "not empty") != NULL);
    o.force = true;
    o.admin_password = pw2;
    CHECK_EQ_INT(kyufu_ctl_init(&o, NULL, err, sizeof err), 0);
    check_cluster(dir, local, true, false);
    /* A new password each time, the old one replaced on every node. */
    check_bootstrap(dir, false, "admin", pw2);
    CHECK(strcmp(pw1, pw2) != 0);
    secret_sought = pw1;
    CHECK(nftw(dir, no_secret_in, 16, FTW_PHYS) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/node2/data/raft.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ_INT(kyufu_ctl_init(&o, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "node2/data") != NULL);

    /* node new from the CA folder: the passphrase-protected key read, the
     * node key 0600, the CRL copied and named by its config. */
    {
        char pki[600], out4[600];
        snprintf(pki, sizeof pki, "%s/ca", dir);
        snprintf(out4, sizeof out4, "%s/node4", tmp);
        struct kyufu_ctl_member members[] = { { 1, "127.0.0.1:7001", "127.0.0.1:8001" } };
        struct kyufu_ctl_node_new_opts nn = { .pki_dir = pki, .out = out4, .id = 4,
                                              .raft = "127.0.0.1:7004",
                                              .api = "127.0.0.1:8004", .members = members,
                                              .n_members = 1 };
        CHECK_EQ_INT(kyufu_ctl_node_new(&nn, NULL, err, sizeof err), 0);
        snprintf(path, sizeof path, "%s/node.key", out4);
        check_mode(path, 0600);
        /* A joining node never bootstraps: no bootstrap-admin anywhere. */
        snprintf(path, sizeof path, "%s/data/" CTL__BOOTSTRAP_FILE, out4);
        CHECK(access(path, F_OK) != 0);
        snprintf(path, sizeof path, "%s/" CTL__BOOTSTRAP_FILE, out4);
        CHECK(access(path, F_OK) != 0);
        snprintf(path, sizeof path, "%s/crl.pem", out4);
        check_mode(path, 0644);
        snprintf(path, sizeof path, "%s/kyufud.conf", out4);
        char want[800];
        snprintf(want, sizeof want, "\ncrl_file = %s/crl.pem\n", out4);
        CHECK(strstr(slurp(path), want) != NULL);
        /* A wrong passphrase: refused, no certificate written. */
        snprintf(path, sizeof path, "%s/wrong-pass", tmp);
        FILE *wf = fopen(path, "w");
        CHECK(wf != NULL);
        fputs("not the CA passphrase\n", wf);
        fclose(wf);
        snprintf(out4, sizeof out4, "%s/node5", tmp);
        nn.out = out4;
        nn.id = 5;
        nn.raft = "127.0.0.1:7005";
        nn.api = "127.0.0.1:8005";
        nn.ca_passphrase_file = path;
        CHECK_EQ_INT(kyufu_ctl_node_new(&nn, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, "wrong passphrase") != NULL);
        snprintf(path, sizeof path, "%s/node.pem", out4);
        CHECK(access(path, F_OK) != 0);
    }

    /* One DNS name per node. */
    snprintf(dir, sizeof dir, "%s/c2", tmp);
    static const char *const names[] = { "kyufu-a.city.example", "kyufu-b.city.example",
                                         "kyufu-c.city.example" };
    struct kyufu_ctl_init_opts o2 = { .dir = dir, .nodes = 3, .hosts = { names[0], names[1], names[2] },
                                      .n_hosts = 3, .raft_port_base = 7001, .api_port_base = 8001,
                                      .ca_key_iterations = 1000 };
    CHECK_EQ_INT(kyufu_ctl_init(&o2, NULL, err, sizeof err), 0);
    check_cluster(dir, names, false, false);

    /* For real hosts: one folder per host, the same two ports on every
     * host, paths as they will be there (defaults, then given). */
    snprintf(dir, sizeof dir, "%s/h1", tmp);
    struct kyufu_ctl_init_opts oh = o2;
    oh.dir = dir;
    oh.on_hosts = true;
    oh.admin_password = pw1;
    CHECK_EQ_INT(kyufu_ctl_init(&oh, NULL, err, sizeof err), 0);
    struct host_paths hp_default = { "/etc/kyufu", "/var/lib/kyufu" };
    check_cluster_at(dir, names, false, false, &hp_default, "admin");
    check_bootstrap(dir, true, "admin", pw1);
    oh.admin_password = NULL;
    snprintf(dir, sizeof dir, "%s/h2", tmp);
    oh.dir = dir;
    oh.etc_dir = "/srv/kyufu-etc";
    oh.state_dir = "/srv/kyufu/state.d";
    CHECK_EQ_INT(kyufu_ctl_init(&oh, NULL, err, sizeof err), 0);
    struct host_paths hp_given = { "/srv/kyufu-etc", "/srv/kyufu/state.d" };
    check_cluster_at(dir, names, false, false, &hp_given, "admin");
    /* Hostile host paths and shapes: usage errors that write nothing. */
    static const char *const bad_paths[] = {
        "etc/kyufu", "/etc/kyu fu", "/etc/kyufu#x", "/etc/kyufu;x", "/etc/../root",
        "/etc/..", "//etc", "/", "/etc/kyufu/", "/etc/$HOME", "/etc/ky\nfu",
        "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    for (size_t b = 0; b < sizeof bad_paths / sizeof bad_paths[0]; b++) {
        snprintf(dir, sizeof dir, "%s/hbad", tmp);
        struct kyufu_ctl_init_opts ob = oh;
        ob.dir = dir;
        ob.etc_dir = b % 2 == 0 ? bad_paths[b] : NULL;
        ob.state_dir = b % 2 == 1 ? bad_paths[b] : NULL;
        CHECK_EQ_INT(kyufu_ctl_init(&ob, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, "absolute path") != NULL);
        struct stat sb;
        CHECK(stat(dir, &sb) != 0 && errno == ENOENT);
    }
    {
        struct kyufu_ctl_init_opts ob = oh;
        snprintf(dir, sizeof dir, "%s/hbad", tmp);
        ob.dir = dir;
        ob.n_hosts = 1; /* one host for three nodes: not for real hosts */
        CHECK_EQ_INT(kyufu_ctl_init(&ob, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, "one host per node") != NULL);
        ob = o2;
        ob.dir = dir;
        ob.etc_dir = "/etc/kyufu"; /* a local cluster has no host paths */
        CHECK_EQ_INT(kyufu_ctl_init(&ob, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, "--hosts only") != NULL);
        struct stat sb;
        CHECK(stat(dir, &sb) != 0 && errno == ENOENT);
    }

    /* IPv6 addresses get brackets in host:port and an IP SAN. */
    snprintf(dir, sizeof dir, "%s/c3", tmp);
    static const char *const v6[] = { "::1", "::1", "::1" };
    struct kyufu_ctl_init_opts o3 = { .dir = dir, .nodes = 3, .hosts = { "::1" }, .n_hosts = 1,
                                      .raft_port_base = 7001, .api_port_base = 8001,
                                      .ca_key_iterations = 1000 };
    CHECK_EQ_INT(kyufu_ctl_init(&o3, NULL, err, sizeof err), 0);
    check_cluster(dir, v6, true, true);

    /* A metrics port per node, on loopback, in [node] (docs/metrics.md). */
    snprintf(dir, sizeof dir, "%s/c5", tmp);
    struct kyufu_ctl_init_opts o5 = o2;
    o5.dir = dir;
    o5.metrics_port_base = 9101;
    CHECK_EQ_INT(kyufu_ctl_init(&o5, NULL, err, sizeof err), 0);
    for (unsigned i = 1; i <= 3; i++) {
        char want[128];
        snprintf(path, sizeof path, "%s/node%u/kyufud.conf", dir, i);
        snprintf(want, sizeof want,
                 "api_address = kyufu-%c.city.example:%u\n"
                 "metrics_listen = 127.0.0.1:%u\n[cluster]\n",
                 'a' + (int)i - 1, 8001u, 9100 + i);
        char *got = slurp(path);
        CHECK(strstr(got, want) != NULL);
    }

    /* Bad options are usage errors and write nothing. */
    snprintf(dir, sizeof dir, "%s/c4", tmp);
    struct kyufu_ctl_init_opts bad = o3;
    bad.dir = dir;
    bad.hosts[1] = "x";
    bad.n_hosts = 2; /* two hosts for three nodes */
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    bad.n_hosts = 1;
    bad.hosts[0] = "bad host!";
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    bad.hosts[0] = "127.0.0.1";
    bad.api_port_base = 7002; /* overlaps 7001-7003 */
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "overlap") != NULL);
    bad.api_port_base = 65534; /* 65534..65536 */
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    bad.api_port_base = 8001;
    bad.metrics_port_base = 8002; /* overlaps the API ports */
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "metrics ports") != NULL);
    bad.metrics_port_base = 65534;
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    bad.metrics_port_base = 0;
    bad.nodes = 0;
    CHECK_EQ_INT(kyufu_ctl_init(&bad, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(access(dir, F_OK) != 0);

    /* The first administrator's id; the passphrase from a file. */
    snprintf(dir, sizeof dir, "%s/c6", tmp);
    snprintf(path, sizeof path, "%s/pass", tmp);
    FILE *pf = fopen(path, "w");
    CHECK(pf != NULL);
    fputs(PASSPHRASE "\n", pf);
    fclose(pf);
    CHECK(unsetenv("KYUFU_CA_PASSPHRASE") == 0);
    struct kyufu_ctl_init_opts o6 = o;
    o6.dir = dir;
    o6.force = false;
    o6.admin_id = "tanaka.h";
    o6.ca_passphrase_file = path;
    o6.admin_password = pw1;
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), 0);
    CHECK(setenv("KYUFU_CA_PASSPHRASE", PASSPHRASE, 1) == 0);
    check_cluster_at(dir, local, true, false, NULL, "tanaka.h");
    check_bootstrap(dir, false, "tanaka.h", pw1);
    o6.admin_password = NULL;
    CHECK(unsetenv("KYUFU_CA_PASSPHRASE") == 0);
    /* Refused, writing nothing: a bad admin id, a short passphrase, a
     * passphrase file that is missing, no passphrase at all. */
    snprintf(dir, sizeof dir, "%s/c7", tmp);
    o6.dir = dir;
    o6.admin_id = "../x";
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "--admin-id") != NULL);
    o6.admin_id = "Tanaka"; /* the node's staff ids are lowercase */
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "lowercase") != NULL);
    o6.admin_id = NULL;
    pf = fopen(path, "w");
    CHECK(pf != NULL);
    fputs("elevenbytes\n", pf);
    fclose(pf);
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "12 to 1023 bytes (it has 11)") != NULL);
    /* A NUL byte would cut the passphrase short to "test CA pa" + ...:
     * refused, never used as a shorter passphrase. */
    pf = fopen(path, "w");
    CHECK(pf != NULL);
    CHECK(fwrite("twelve bytes\0and more\n", 1, 23, pf) == 23);
    fclose(pf);
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "NUL byte") != NULL);
    CHECK(strstr(err, "twelve") == NULL); /* the content is never printed */
    /* A first line far longer than the limit: refused, not cut to fit. */
    pf = fopen(path, "w");
    CHECK(pf != NULL);
    for (int i = 0; i < 5000; i++) {
        fputc('p', pf);
    }
    fputc('\n', pf);
    fclose(pf);
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "--ca-passphrase-file") != NULL);
    CHECK(strstr(err, "pppp") == NULL);
    o6.ca_passphrase_file = "/nonexistent/pass";
    CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err, "/nonexistent/pass") != NULL);
    int tty = open("/dev/tty", O_RDWR);
    if (tty < 0) { /* no terminal to ask on (CI): a clear refusal */
        o6.ca_passphrase_file = NULL;
        CHECK_EQ_INT(kyufu_ctl_init(&o6, NULL, err, sizeof err), KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err, "KYUFU_CA_PASSPHRASE") != NULL);
    } else {
        close(tty);
    }
    CHECK(access(dir, F_OK) != 0);
    CHECK(setenv("KYUFU_CA_PASSPHRASE", PASSPHRASE, 1) == 0);

    test_key_init(tmp);
    test_key_rewrap(tmp);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
