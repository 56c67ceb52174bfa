/* kyufuctl's certificate authority work: see ctl_pki.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "ctl_pki.h"

int ctl__errf(char *errmsg, size_t len, int rv, const char *fmt, ...)
{
    if (errmsg != NULL && len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, len, fmt, ap);
        va_end(ap);
    }
    return rv;
}

int ctl__ssl_err(char *errmsg, size_t len, const char *what)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    ERR_clear_error();
    return ctl__errf(errmsg, len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", what, detail);
}

/* ------------------------------------------------------------ files */

int ctl__write_file(const char *path, mode_t mode, const char *data, size_t len,
                    char *errmsg, size_t errmsg_len)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE, "%s: path too long", path);
    }
    unlink(tmp); /* a new inode gets `mode` from open(2) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", tmp,
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
            unlink(tmp);
            return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", tmp,
                             strerror(e));
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s: %s", path,
                         strerror(e));
    }
    return 0;
}

/* PKCS#8 EncryptedPrivateKeyInfo, PBES2: AES-256-CBC with a key from
 * PBKDF2-HMAC-SHA256 over the passphrase, a random salt and
 * KYUFU_CTL_CA_KEY_PBKDF2_ITERATIONS (OpenSSL's PEM_write_PKCS8PrivateKey
 * would use only 2048).  Readable by `openssl pkey` and PEM_read_PrivateKey. */
static int write_encrypted(BIO *b, EVP_PKEY *key, const char *passphrase, unsigned iterations)
{
    int ok = 0;
    X509_ALGOR *pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(),
                                        iterations != 0 ? (int)iterations
                                                        : KYUFU_CTL_CA_KEY_PBKDF2_ITERATIONS,
                                        NULL, 0, NULL, NID_hmacWithSHA256);
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    X509_SIG *p8e = NULL;
    if (pbe != NULL && p8 != NULL) {
        p8e = PKCS8_set0_pbe(passphrase, (int)strlen(passphrase), p8, pbe);
    }
    if (p8e != NULL) {
        pbe = NULL; /* p8e owns it now */
        ok = PEM_write_bio_PKCS8(b, p8e);
    }
    X509_SIG_free(p8e);
    PKCS8_PRIV_KEY_INFO_free(p8);
    X509_ALGOR_free(pbe);
    return ok;
}

int ctl__write_pem(const char *path, mode_t mode, EVP_PKEY *key, const char *passphrase,
                   unsigned iterations, X509 *cert, char *errmsg, size_t errmsg_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) {
        return ctl__ssl_err(errmsg, errmsg_len, "BIO_new");
    }
    int ok;
    if (key != NULL && passphrase != NULL) {
        ok = write_encrypted(b, key, passphrase, iterations);
    } else if (key != NULL) {
        ok = PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    } else {
        ok = PEM_write_bio_X509(b, cert);
    }
    if (ok != 1) {
        BIO_free(b);
        return ctl__ssl_err(errmsg, errmsg_len, path);
    }
    char *data;
    long len = BIO_get_mem_data(b, &data);
    int rv = ctl__write_file(path, mode, data, (size_t)len, errmsg, errmsg_len);
    /* Scrub the key's PEM from memory before releasing it. */
    OPENSSL_cleanse(data, (size_t)len);
    BIO_free(b);
    return rv;
}

int ctl__make_dir(const char *path, char *errmsg, size_t errmsg_len)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "mkdir %s: %s",
                    path, strerror(errno));
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                    "%s exists and is not a folder", path);
    }
    return 0;
}

/* ------------------------------------------------------------ PKI */

EVP_PKEY *ctl__key_new(void)
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



X509 *ctl__cert_issue(const struct ctl__cert_spec *s, EVP_PKEY *key, X509 *issuer,
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
        (s->ou != NULL &&
         X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
                                    (const unsigned char *)s->ou, -1, -1, 0) != 1) ||
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
int ctl__leaf_new(const struct ctl__cert_spec *spec, X509 *ca, EVP_PKEY *ca_key,
                     EVP_PKEY **key, X509 **cert, char *errmsg, size_t errmsg_len)
{
    *key = ctl__key_new();
    if (*key == NULL) {
        return ctl__ssl_err(errmsg, errmsg_len, "key");
    }
    *cert = ctl__cert_issue(spec, *key, ca, ca_key);
    if (*cert == NULL) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return ctl__ssl_err(errmsg, errmsg_len, spec->cn);
    }
    return 0;
}

/* ------------------------------------------------------------ passphrase */

int ctl__ca_passphrase(const char *passphrase_file, bool confirm, char *buf, size_t len,
                       char *errmsg, size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    const char *env = getenv(CTL__CA_PASSPHRASE_ENV);
    buf[0] = '\0';
    if (passphrase_file != NULL) {
        /* ctl_prompt.c's reader: a NUL byte or a line too long for buf is
         * refused, never cut short into another passphrase. */
        char why[PATH_MAX + 64];
        if (ctl__read_secret_file(passphrase_file, buf, len, why, sizeof why) != 0) {
            return ctl__errf(errmsg, errmsg_len, u, "--ca-passphrase-file %s", why);
        }
    } else if (env != NULL) {
        snprintf(buf, len, "%s", env);
    } else {
        int tty = ctl__tty_open();
        if (tty < 0) {
            return ctl__errf(errmsg, errmsg_len, u,
                             "the CA key's passphrase: give --ca-passphrase-file FILE or "
                             "set " CTL__CA_PASSPHRASE_ENV " (no terminal to ask on)");
        }
        char again[KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX + 2];
        int r = ctl__tty_ask(tty, confirm ? "New CA key passphrase: " : "CA key passphrase: ",
                             true, buf, len);
        if (r == 0 && confirm) {
            r = ctl__tty_ask(tty, "Again: ", true, again, sizeof again);
            if (r == 0 && strcmp(again, buf) != 0) {
                r = 1;
            }
            OPENSSL_cleanse(again, sizeof again);
        }
        close(tty);
        if (r != 0) {
            OPENSSL_cleanse(buf, len);
            if (r > 0) {
                return ctl__errf(errmsg, errmsg_len, u, "the two passphrases differ");
            }
            return ctl__errf(errmsg, errmsg_len, u,
                             "no passphrase typed (or one longer than %u bytes)",
                             KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX);
        }
    }
    size_t n = strlen(buf);
    if (n < KYUFU_CTL_CA_PASSPHRASE_BYTES_MIN || n > KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX) {
        OPENSSL_cleanse(buf, len);
        return ctl__errf(errmsg, errmsg_len, u,
                         "the CA key's passphrase must be %u to %u bytes (it has %zu)",
                         KYUFU_CTL_CA_PASSPHRASE_BYTES_MIN, KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX,
                         n);
    }
    return 0;
}

/* ------------------------------------------------------------ the CA */

struct pass_ask
{
    const char *file;
    bool asked;
    int rv;
    char errmsg[256];
};

/* OpenSSL's pem_password_cb: called only for an encrypted key. */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    struct pass_ask *a = u;
    (void)rwflag;
    a->asked = true;
    char pass[KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX + 2];
    a->rv = ctl__ca_passphrase(a->file, false, pass, sizeof pass, a->errmsg, sizeof a->errmsg);
    if (a->rv != 0) {
        return -1;
    }
    size_t n = strlen(pass);
    if (n > (size_t)size) {
        n = (size_t)size;
    }
    memcpy(buf, pass, n);
    OPENSSL_cleanse(pass, sizeof pass);
    return (int)n;
}

int ctl__ca_read(const char *ca_dir, const char *passphrase_file, X509 **ca, EVP_PKEY **ca_key,
                 char *errmsg, size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" CTL__CA_CERT, ca_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return ctl__errf(errmsg, errmsg_len, u, "%s: %s", path, strerror(errno));
    }
    *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (*ca == NULL) {
        return ctl__ssl_err(errmsg, errmsg_len, path);
    }
    snprintf(path, sizeof path, "%s/" CTL__CA_KEY, ca_dir);
    f = fopen(path, "r");
    if (f == NULL) {
        X509_free(*ca);
        return ctl__errf(errmsg, errmsg_len, u, "%s: %s (this needs the cluster CA's key)",
                         path, strerror(errno));
    }
    struct pass_ask ask = { .file = passphrase_file };
    *ca_key = PEM_read_PrivateKey(f, NULL, pass_cb, &ask);
    fclose(f);
    if (*ca_key == NULL) {
        X509_free(*ca);
        if (ask.rv != 0) {
            ERR_clear_error();
            return ctl__errf(errmsg, errmsg_len, ask.rv, "%s", ask.errmsg);
        }
        if (ask.asked) {
            ERR_clear_error();
            return ctl__errf(errmsg, errmsg_len, u,
                             "%s: wrong passphrase (or a damaged key)", path);
        }
        return ctl__ssl_err(errmsg, errmsg_len, path);
    }
    if (X509_check_private_key(*ca, *ca_key) != 1) {
        X509_free(*ca);
        EVP_PKEY_free(*ca_key);
        ERR_clear_error();
        return ctl__errf(errmsg, errmsg_len, u, "%s/" CTL__CA_KEY " is not the key of %s/" CTL__CA_CERT,
                         ca_dir, ca_dir);
    }
    return 0;
}

void ctl__cert_sha256(X509 *cert, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    out[0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
        ERR_clear_error();
        return;
    }
    ctl__hex(md, 32, out);
}

int ctl__crl_write(const char *path, X509 *ca, EVP_PKEY *ca_key, const struct ctl__revoked *r,
                   size_t n, uint64_t number, char *errmsg, size_t errmsg_len)
{
    int rv = KYUFU_CTL_EXIT_LOCAL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    BIGNUM *bn = NULL;
    BIO *b = NULL;
    if (crl == NULL || t == NULL || num == NULL) {
        goto ssl;
    }
    /* thisUpdate an hour back, as certificates' notBefore: a node whose
     * clock is behind must not find the CRL "not yet valid". */
    if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 ||
        X509_gmtime_adj(t, -3600) == NULL || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
        X509_time_adj_ex(t, (int)KYUFU_CTL_CRL_VALID_DAYS, 0, NULL) == NULL ||
        X509_CRL_set1_nextUpdate(crl, t) != 1) {
        goto ssl;
    }
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_INTEGER *serial = NULL;
        bool ok = rev != NULL && BN_hex2bn(&bn, r[i].serial_hex) > 0 &&
                  (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
                  X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
                  ASN1_TIME_set(t, (time_t)r[i].revoked_s) != NULL &&
                  X509_REVOKED_set_revocationDate(rev, t) == 1 && X509_CRL_add0_revoked(crl, rev) == 1;
        ASN1_INTEGER_free(serial);
        if (!ok) {
            X509_REVOKED_free(rev);
            rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                           "registry: '%s' is not a certificate serial (hex)", r[i].serial_hex);
            goto out;
        }
    }
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
    X509_EXTENSION *akid = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    bool ok = akid != NULL && X509_CRL_add_ext(crl, akid, -1) == 1;
    X509_EXTENSION_free(akid);
    if (!ok || ASN1_INTEGER_set_uint64(num, number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 ||
        X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca_key, EVP_sha256()) == 0) {
        goto ssl;
    }
    b = BIO_new(BIO_s_mem());
    if (b == NULL || PEM_write_bio_X509_CRL(b, crl) != 1) {
        goto ssl;
    }
    char *data;
    long len = BIO_get_mem_data(b, &data);
    rv = ctl__write_file(path, 0644, data, (size_t)len, errmsg, errmsg_len);
    goto out;
ssl:
    rv = ctl__ssl_err(errmsg, errmsg_len, "CRL");
out:
    BIO_free(b);
    BN_free(bn);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return rv;
}
