/* The backup manifest's signature and the signing certificate's chain:
 * see backup_format.h. */
#include "backup_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static const char *ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    return e != 0 ? ERR_reason_error_string(e) : "unknown reason";
}

static int der_sha256(X509 *cert, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    if (n <= 0) {
        return -1;
    }
    int ok = EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return ok == 1 ? 0 : -1;
}

static X509 *read_cert_file(const char *path, char *errmsg, size_t errmsg_len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(errmsg, errmsg_len, "cannot read certificate %s", path);
        return NULL;
    }
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (cert == NULL) {
        snprintf(errmsg, errmsg_len, "%s holds no PEM certificate: %s", path,
                 ssl_reason());
    }
    return cert;
}

int kyufu_backup_cert_file_sha256(const char *path,
                                  uint8_t out[32],
                                  char *errmsg,
                                  size_t errmsg_len)
{
    X509 *cert = read_cert_file(path, errmsg, errmsg_len);
    if (cert == NULL) {
        return -1;
    }
    int rv = der_sha256(cert, out);
    X509_free(cert);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "cannot encode certificate %s", path);
    }
    return rv;
}

int kyufu_backup_sign(const char *key_path,
                      const uint8_t *msg,
                      size_t len,
                      uint8_t **sig,
                      size_t *sig_len,
                      char *errmsg,
                      size_t errmsg_len)
{
    FILE *f = fopen(key_path, "re");
    if (f == NULL) {
        snprintf(errmsg, errmsg_len, "cannot read the node key %s", key_path);
        return -1;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL) {
        snprintf(errmsg, errmsg_len, "%s holds no PEM private key: %s",
                 key_path, ssl_reason());
        return -1;
    }
    int rv = -1;
    uint8_t *buf = NULL;
    size_t n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, NULL, &n, msg, len) != 1 ||
        (buf = malloc(n)) == NULL ||
        EVP_DigestSign(ctx, buf, &n, msg, len) != 1) {
        snprintf(errmsg, errmsg_len, "cannot sign the manifest: %s",
                 ssl_reason());
        free(buf);
        goto cleanup;
    }
    *sig = buf;
    *sig_len = n;
    rv = 0;
cleanup:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rv;
}

/* The node id a certificate names (SAN URI urn:kyufu:node:N); 0 when none
 * (the same rule as the API's peer check, api/grpc.h
 * KYUFU_TLS_NODE_URI_PREFIX). */
static uint64_t cert_node(X509 *cert)
{
    GENERAL_NAMES *names =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    uint64_t id = 0;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI) {
            continue;
        }
        const char *u = (const char *)ASN1_STRING_get0_data(
            g->d.uniformResourceIdentifier);
        unsigned long long v;
        char extra;
        if (u != NULL &&
            sscanf(u, "urn:kyufu:node:%llu%c", &v, &extra) == 1) {
            id = v;
        }
    }
    GENERAL_NAMES_free(names);
    return id;
}

int kyufu_backup_check_signature(const char *ca_path,
                                 const uint8_t *cert_pem,
                                 size_t cert_len,
                                 const uint8_t *msg,
                                 size_t msg_len,
                                 const uint8_t *sig,
                                 size_t sig_len,
                                 uint64_t *node,
                                 uint8_t cert_sha256[32],
                                 char *errmsg,
                                 size_t errmsg_len)
{
    int rv = -1;
    X509 *ca = NULL, *cert = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *sctx = NULL;
    EVP_MD_CTX *md = NULL;
    BIO *bio = NULL;

    ca = read_cert_file(ca_path, errmsg, errmsg_len);
    if (ca == NULL) {
        goto cleanup;
    }
    bio = BIO_new_mem_buf(cert_pem, (int)cert_len);
    cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if (cert == NULL) {
        ERR_clear_error();
        snprintf(errmsg, errmsg_len, "%s is not a PEM certificate",
                 KYUFU_BACKUP_CERT);
        goto cleanup;
    }
    store = X509_STORE_new();
    sctx = X509_STORE_CTX_new();
    if (store == NULL || sctx == NULL || X509_STORE_add_cert(store, ca) != 1 ||
        X509_STORE_CTX_init(sctx, store, cert, NULL) != 1) {
        snprintf(errmsg, errmsg_len, "cannot check the chain: %s",
                 ssl_reason());
        goto cleanup;
    }
    if (X509_verify_cert(sctx) != 1) {
        snprintf(errmsg, errmsg_len,
                 "%s does not chain to the cluster CA %s: %s",
                 KYUFU_BACKUP_CERT, ca_path,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
        ERR_clear_error();
        goto cleanup;
    }
    *node = cert_node(cert);
    if (*node == 0) {
        snprintf(errmsg, errmsg_len, "%s names no node (urn:kyufu:node:N)",
                 KYUFU_BACKUP_CERT);
        goto cleanup;
    }
    if (der_sha256(cert, cert_sha256) != 0) {
        snprintf(errmsg, errmsg_len, "cannot encode %s", KYUFU_BACKUP_CERT);
        goto cleanup;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL ||
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
                             X509_get0_pubkey(cert)) != 1 ||
        EVP_DigestVerify(md, sig, sig_len, msg, msg_len) != 1) {
        ERR_clear_error();
        snprintf(errmsg, errmsg_len,
                 "manifest signature does not verify (%s or %s altered)",
                 KYUFU_BACKUP_MANIFEST, KYUFU_BACKUP_SIGNATURE);
        goto cleanup;
    }
    rv = 0;
cleanup:
    EVP_MD_CTX_free(md);
    X509_STORE_CTX_free(sctx);
    X509_STORE_free(store);
    BIO_free(bio);
    X509_free(cert);
    X509_free(ca);
    return rv;
}
