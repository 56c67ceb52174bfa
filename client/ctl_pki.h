/* kyufuctl's certificate authority work (ctl_pki.c), shared by cluster
 * init, node new and the terminal/operator commands: files written with
 * their mode from creation, P-256 keys, certificates and CRLs signed by
 * the cluster CA, and the CA key's passphrase (docs/identity.md
 * "Certificates").  Internal to kyufuctl and tests/client.
 *
 * Every function returning int returns 0 or a KYUFU_CTL_EXIT_* value with
 * errmsg filled (USAGE for something the operator gave or must fix, LOCAL
 * for I/O and crypto failures). */
#ifndef KYUFU_CTL_PKI_H
#define KYUFU_CTL_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The CA folder `cluster init` writes (DIR/ca): the CA certificate, its
 * key (passphrase-protected), the registry of issued certificates and the
 * CRL.  Nodes never need it: they get ca.pem and crl.pem copies. */
#define CTL__CA_SUBDIR "ca"
#define CTL__CA_CERT "ca.pem"
#define CTL__CA_KEY "ca.key"
#define CTL__CA_CRL "crl.pem"
#define CTL__CA_REGISTRY "registry.json"
/* Environment variable holding the CA key's passphrase (scripts, tests). */
#define CTL__CA_PASSPHRASE_ENV "KYUFU_CA_PASSPHRASE"

int ctl__errf(char *errmsg, size_t len, int rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* errmsg = what: OpenSSL's first queued error (queue cleared); LOCAL. */
int ctl__ssl_err(char *errmsg, size_t len, const char *what);

/* Write a whole file with `mode` from its creation (an old file is
 * replaced: written to PATH.tmp, fsynced, renamed over PATH). */
int ctl__write_file(const char *path, mode_t mode, const char *data, size_t len,
                    char *errmsg, size_t errmsg_len);
/* A key (PKCS#8; encrypted with AES-256-CBC, key from PBKDF2-HMAC-SHA256
 * of `iterations` rounds (0: KYUFU_CTL_CA_KEY_PBKDF2_ITERATIONS), when
 * passphrase is not NULL) or a certificate as PEM, through
 * ctl__write_file. */
int ctl__write_pem(const char *path, mode_t mode, EVP_PKEY *key, const char *passphrase,
                   unsigned iterations, X509 *cert, char *errmsg, size_t errmsg_len);
/* mkdir 0700 unless it exists; USAGE when it exists and is not a folder. */
int ctl__make_dir(const char *path, char *errmsg, size_t errmsg_len);

/* A new NIST P-256 key (CRYPTREC-listed; the curve the TLS policy allows). */
EVP_PKEY *ctl__key_new(void);

struct ctl__cert_spec
{
    const char *cn;
    const char *ou;     /* NULL: none ("terminal", "operator") */
    unsigned days;
    bool ca;
    const char *eku;    /* NULL for the CA */
    const char *san;    /* "IP:1.2.3.4" / "DNS:name" [",URI:..."] or NULL */
};
/* A certificate for `key` signed by issuer_key (self-signed when issuer is
 * NULL): random 159-bit serial, notBefore an hour back; NULL on failure
 * (OpenSSL's error queue says why). */
X509 *ctl__cert_issue(const struct ctl__cert_spec *s, EVP_PKEY *key, X509 *issuer,
                      EVP_PKEY *issuer_key);
/* A new key and its certificate for SPEC from the CA: 0 with *KEY and
 * *CERT the caller's to free, or an error with neither. */
int ctl__leaf_new(const struct ctl__cert_spec *spec, X509 *ca, EVP_PKEY *ca_key,
                  EVP_PKEY **key, X509 **cert, char *errmsg, size_t errmsg_len);

/* The CA key's passphrase, the one way every command gets it: the first
 * line of passphrase_file when given, else $KYUFU_CA_PASSPHRASE, else a
 * prompt on the terminal without echo (twice when `confirm`: a new key).
 * USAGE when none can be had (no file, no variable, no terminal), when the
 * two typed differ, or when it is shorter than
 * KYUFU_CTL_CA_PASSPHRASE_BYTES_MIN. */
int ctl__ca_passphrase(const char *passphrase_file, bool confirm, char *buf, size_t len,
                       char *errmsg, size_t errmsg_len);

/* Read CA_DIR/ca.pem and CA_DIR/ca.key, decrypting the key with the
 * passphrase (asked only when the key is encrypted: a CA from another
 * tool may not be), and check that they match.  USAGE for a missing file,
 * a wrong passphrase or a key of another certificate. */
int ctl__ca_read(const char *ca_dir, const char *passphrase_file, X509 **ca, EVP_PKEY **ca_key,
                 char *errmsg, size_t errmsg_len);

/* The lower-case hex of the SHA-256 of cert's DER (65 bytes with NUL), the
 * fingerprint the registry and the node's session binding use. */
void ctl__cert_sha256(X509 *cert, char out[65]);

struct ctl__revoked
{
    const char *serial_hex;
    int64_t revoked_s; /* seconds since the epoch */
};
/* A CRL (v2, CRL number `number`, thisUpdate an hour back, nextUpdate
 * KYUFU_CTL_CRL_VALID_DAYS ahead) of the serials given, signed by the CA
 * key, written as PEM to path (0644). */
int ctl__crl_write(const char *path, X509 *ca, EVP_PKEY *ca_key, const struct ctl__revoked *r,
                   size_t n, uint64_t number, char *errmsg, size_t errmsg_len);

#endif /* KYUFU_CTL_PKI_H */
