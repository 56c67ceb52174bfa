#include "certs.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *key_new(void)
{
    return EVP_EC_gen("P-256");
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

/* issuer NULL: self-signed CA. */
static X509 *cert_new(const char *cn, long serial, EVP_PKEY *key, X509 *issuer,
                      EVP_PKEY *issuer_key, const char *san, const char *eku)
{
    X509 *c = X509_new();
    if (c == NULL) {
        return NULL;
    }
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    ASN1_TIME_set_string(X509_getm_notBefore(c), "20200101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(c), "20991231000000Z");
    X509_set_pubkey(c, key);
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"kyufu test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509 *iss = issuer != NULL ? issuer : c;
    int bad = 0;
    if (issuer == NULL) {
        bad |= add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        bad |= add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
        bad |= add_ext(c, iss, NID_subject_key_identifier, "hash");
    } else {
        bad |= add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
        bad |= add_ext(c, iss, NID_key_usage, "critical,digitalSignature");
        bad |= add_ext(c, iss, NID_ext_key_usage, eku);
        bad |= add_ext(c, iss, NID_authority_key_identifier, "keyid");
        if (san != NULL) {
            bad |= add_ext(c, iss, NID_subject_alt_name, san);
        }
    }
    if (bad || X509_sign(c, issuer_key != NULL ? issuer_key : key, EVP_sha256()) == 0) {
        X509_free(c);
        return NULL;
    }
    return c;
}

static int write_pem(const char *dir, const char *file, X509 *cert, EVP_PKEY *key)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    /* Keys 0600 from their creation: kyufud refuses any other mode. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, cert != NULL ? 0644 : 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    int ok = cert != NULL ? PEM_write_X509(f, cert)
                          : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

int t_certs_make(const char *dir)
{
    EVP_PKEY *ca_key = key_new(), *srv_key = key_new(), *cli_key = key_new();
    EVP_PKEY *oca_key = key_new(), *ocli_key = key_new(), *cli2_key = key_new();
    X509 *ca = NULL, *srv = NULL, *cli = NULL, *oca = NULL, *ocli = NULL, *cli2 = NULL;
    int rv = -1;
    if (!ca_key || !srv_key || !cli_key || !oca_key || !ocli_key || !cli2_key) {
        goto out;
    }
    ca = cert_new("kyufu test CA", 1, ca_key, NULL, NULL, NULL, NULL);
    oca = cert_new("unrelated CA", 1, oca_key, NULL, NULL, NULL, NULL);
    if (!ca || !oca) {
        goto out;
    }
    srv = cert_new("kyufu-node", 2, srv_key, ca, ca_key, "IP:127.0.0.1,DNS:localhost",
                   "serverAuth");
    cli = cert_new("kyufu-client", 3, cli_key, ca, ca_key, NULL, "clientAuth");
    ocli = cert_new("kyufu-client", 2, ocli_key, oca, oca_key, NULL, "clientAuth");
    cli2 = cert_new("kyufu-client-2", 4, cli2_key, ca, ca_key, NULL, "clientAuth");
    if (!srv || !cli || !ocli || !cli2) {
        goto out;
    }
    if (write_pem(dir, "ca.pem", ca, NULL) || write_pem(dir, "server.pem", srv, NULL) ||
        write_pem(dir, "server.key", NULL, srv_key) || write_pem(dir, "client.pem", cli, NULL) ||
        write_pem(dir, "client.key", NULL, cli_key) || write_pem(dir, "other-ca.pem", oca, NULL) ||
        write_pem(dir, "other-client.pem", ocli, NULL) ||
        write_pem(dir, "other-client.key", NULL, ocli_key) ||
        write_pem(dir, "client2.pem", cli2, NULL) || write_pem(dir, "client2.key", NULL, cli2_key) ||
        write_pem(dir, "ca.key", NULL, ca_key) || write_pem(dir, "other-ca.key", NULL, oca_key)) {
        goto out;
    }
    rv = 0;
out:
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    X509_free(oca);
    X509_free(ocli);
    X509_free(cli2);
    EVP_PKEY_free(cli2_key);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
    EVP_PKEY_free(oca_key);
    EVP_PKEY_free(ocli_key);
    return rv;
}

int t_certs_make_nodes(const char *dir, unsigned n)
{
    EVP_PKEY *ca_key = key_new();
    X509 *ca = NULL;
    int rv = -1;
    if (ca_key == NULL) {
        goto out;
    }
    ca = cert_new("kyufu node CA", 1, ca_key, NULL, NULL, NULL, NULL);
    if (ca == NULL || write_pem(dir, "node-ca.pem", ca, NULL) != 0 ||
        write_pem(dir, "node-ca.key", NULL, ca_key) != 0) {
        goto out;
    }
    for (unsigned i = 1; i <= n; i++) {
        char cn[32], san[96], file[32];
        snprintf(cn, sizeof cn, "kyufu node %u", i);
        snprintf(san, sizeof san, "IP:127.0.0.1,URI:urn:kyufu:node:%u", i);
        EVP_PKEY *key = key_new();
        X509 *c = key != NULL ? cert_new(cn, 10 + (long)i, key, ca, ca_key, san,
                                         "serverAuth,clientAuth")
                              : NULL;
        int bad = c == NULL;
        snprintf(file, sizeof file, "node%u.pem", i);
        bad = bad || write_pem(dir, file, c, NULL) != 0;
        snprintf(file, sizeof file, "node%u.key", i);
        bad = bad || write_pem(dir, file, NULL, key) != 0;
        X509_free(c);
        EVP_PKEY_free(key);
        if (bad) {
            goto out;
        }
    }
    rv = 0;
out:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rv;
}

int t_certs_crl(const char *dir, const char *file, const char *issuer, const long *serials,
                size_t n, const char *next_update)
{
    char path[512];
    int rv = -1;
    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    snprintf(path, sizeof path, "%s/%s.pem", dir, issuer);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        ca = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/%s.key", dir, issuer);
    f = fopen(path, "r");
    if (f != NULL) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (ca == NULL || key == NULL || crl == NULL || t == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 ||
        ASN1_TIME_set_string(t, "20200101000000Z") != 1 || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
        ASN1_TIME_set_string(t, next_update) != 1 || X509_CRL_set1_nextUpdate(crl, t) != 1) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *serial = ASN1_INTEGER_new();
        ASN1_TIME_set_string(t, "20200601000000Z");
        bool ok = r != NULL && serial != NULL && ASN1_INTEGER_set(serial, serials[i]) == 1 &&
                  X509_REVOKED_set_serialNumber(r, serial) == 1 &&
                  X509_REVOKED_set_revocationDate(r, t) == 1 && X509_CRL_add0_revoked(crl, r) == 1;
        ASN1_INTEGER_free(serial);
        if (!ok) {
            X509_REVOKED_free(r);
            goto out;
        }
    }
    if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, key, EVP_sha256()) == 0) {
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "w");
    if (f != NULL) {
        rv = PEM_write_X509_CRL(f, crl) == 1 ? 0 : -1;
        rv = fclose(f) == 0 ? rv : -1;
    }
out:
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    X509_free(ca);
    EVP_PKEY_free(key);
    return rv;
}

int t_node_pki_make(struct t_node_pki *p, const char *dir)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    if (mkdir(p->dir, 0700) != 0 || t_certs_make_nodes(p->dir, 2) != 0) {
        return -1;
    }
    snprintf(p->ca, sizeof p->ca, "%s/node-ca.pem", p->dir);
    for (int i = 1; i <= 2; i++) {
        snprintf(p->cert[i], sizeof p->cert[i], "%s/node%d.pem", p->dir, i);
        snprintf(p->key[i], sizeof p->key[i], "%s/node%d.key", p->dir, i);
    }
    return 0;
}

int t_node_pki_remove(const struct t_node_pki *p)
{
    static const char *const files[] = {"node-ca.pem", "node-ca.key", "node1.pem",
                                        "node1.key", "node2.pem", "node2.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[160];
        snprintf(f, sizeof f, "%s/%s", p->dir, files[i]);
        unlink(f);
    }
    return rmdir(p->dir);
}
