/* OpenSSL 3 contexts under kyufu's CRYPTREC policy, and TLS sessions over
 * memory BIOs.
 *
 * Policy (docs/api.md explains each choice against the CRYPTREC
 * e-Government Recommended Ciphers List): TLS 1.2 and 1.3 only; TLS 1.3
 * suites AES-128-GCM and AES-256-GCM; TLS 1.2 suites ECDHE with ECDSA or
 * RSA authentication and AES-GCM; key exchange groups P-256 and P-384;
 * signature schemes ECDSA / RSA-PSS / RSA PKCS#1 with SHA-2; no
 * compression, no renegotiation, no session tickets or resumption (so no
 * 0-RTT); one ALPN protocol per context, required on both sides ("h2" for
 * the API, "kyufu-raft/1" for Raft peers, docs/peer-tls.md; "http/1.1" for
 * the metrics port, where a client offering none is taken to speak it).  Everything is
 * set explicitly: no OpenSSL or distribution default is relied on
 * (docs/measured.md, "Conventions").  Built as its own library (kyufu_tls, OpenSSL only) so raft-glue
 * shares this one policy.
 *
 * Failure modes: a handshake that breaks the policy fails inside OpenSSL
 * (no shared cipher / group / version: the peer gets an alert); a peer
 * without the context's ALPN protocol is refused by the ALPN callback
 * (server) or after the handshake (both sides); certificate verification failures are reported
 * with OpenSSL's verify string in t->error.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "grpc.h"
#include "tls.h"

#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
#define TLS12_CIPHERS                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define GROUPS "P-256:P-384"
#define SIGALGS                                                             \
    "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:"                               \
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"          \
    "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"             \
    "RSA+SHA256:RSA+SHA384:RSA+SHA512"
/* Chains are root -> (intermediate) -> leaf in a city's own PKI. */
#define VERIFY_DEPTH_MAX 4

static const struct kyufu_tls_policy policy = {
    .min_version = TLS1_2_VERSION,
    .max_version = TLS1_3_VERSION,
    .tls13_ciphersuites = TLS13_SUITES,
    .tls12_cipher_list = TLS12_CIPHERS,
    .groups = GROUPS,
    .alpn = "h2",
};

const unsigned char api__tls_alpn_h2[] = {2, 'h', '2'};
const unsigned char api__tls_alpn_raft[] = {12, 'k', 'y', 'u', 'f', 'u', '-',
                                            'r', 'a', 'f', 't', '/', '1'};
const unsigned char api__tls_alpn_http1[] = {8, 'h', 't', 't', 'p', '/',
                                             '1', '.', '1'};

/* The context's one ALPN protocol (wire format, static) is its app data. */
static const unsigned char *ctx_alpn(const SSL_CTX *ctx)
{
    const unsigned char *alpn = SSL_CTX_get_app_data(ctx);
    assert(alpn != NULL);
    return alpn;
}

static bool alpn_known(const unsigned char *alpn)
{
    return alpn == api__tls_alpn_h2 || alpn == api__tls_alpn_raft ||
           alpn == api__tls_alpn_http1;
}

const struct kyufu_tls_policy *kyufu_tls_policy(void)
{
    return &policy;
}

/* errmsg = what + OpenSSL's first queued error; clears the queue. */
static int ssl_fail(char *errmsg, size_t len, const char *what, const char *arg)
{
    unsigned long e = ERR_get_error();
    char detail[256] = "";
    if (e != 0) {
        ERR_error_string_n(e, detail, sizeof detail);
    }
    if (errmsg != NULL && len > 0) {
        snprintf(errmsg, len, "%s%s%s%s%s", what, arg != NULL ? " " : "",
                 arg != NULL ? arg : "", e != 0 ? ": " : "", detail);
    }
    ERR_clear_error();
    return KYUFU_API_ETLS;
}

int api__tls_policy_apply(SSL_CTX *ctx, char *errmsg, size_t errmsg_len)
{
    if (SSL_CTX_set_min_proto_version(ctx, policy.min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, policy.max_version) != 1) {
        return ssl_fail(errmsg, errmsg_len, "cannot set TLS versions", NULL);
    }
    if (SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        return ssl_fail(errmsg, errmsg_len, "cannot set cipher suites", NULL);
    }
    if (SSL_CTX_set1_groups_list(ctx, GROUPS) != 1) {
        return ssl_fail(errmsg, errmsg_len, "cannot set groups", NULL);
    }
    if (SSL_CTX_set1_sigalgs_list(ctx, SIGALGS) != 1 ||
        SSL_CTX_set1_client_sigalgs_list(ctx, SIGALGS) != 1) {
        return ssl_fail(errmsg, errmsg_len, "cannot set signature algorithms", NULL);
    }
    SSL_CTX_set_security_level(ctx, 2); /* >= 112-bit keys: RSA >= 2048 */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_ANTI_REPLAY);
    SSL_CTX_clear_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT |
                                   SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_max_early_data(ctx, 0);
    SSL_CTX_set_verify_depth(ctx, VERIFY_DEPTH_MAX);
    return 0;
}

static int alpn_select(SSL *ssl,
                       const unsigned char **out,
                       unsigned char *outlen,
                       const unsigned char *in,
                       unsigned int inlen,
                       void *arg)
{
    (void)ssl;
    const unsigned char *alpn = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, alpn, (unsigned)alpn[0] + 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Open key_file for reading; with `private_only`, refuse it unless the
 * opened file (fstat on its descriptor, so the file checked is the file
 * read, whatever a symlink or a rename does in between) has no group or
 * other bits and is owned by the effective user or root.  NULL with errmsg set on failure. */
static FILE *key_open(const char *key_file, bool private_only, char *errmsg, size_t errmsg_len)
{
    FILE *f = fopen(key_file, "re");
    if (f == NULL) {
        snprintf(errmsg, errmsg_len, "cannot load key %s: %s", key_file, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (private_only && fstat(fileno(f), &st) != 0) {
        snprintf(errmsg, errmsg_len, "cannot load key %s: %s", key_file, strerror(errno));
        fclose(f);
        return NULL;
    }
    if (private_only && (st.st_mode & 077) != 0) {
        snprintf(errmsg, errmsg_len,
                 "private key %s is readable or writable by group or others (mode %04o); "
                 "refusing it: chmod 600 it (owned by the user kyufud runs as)",
                 key_file, (unsigned)(st.st_mode & 07777));
        fclose(f);
        return NULL;
    }
    /* Owned by us or root: a key another user owns can be changed (chmod,
     * or rewritten) by that user, whatever its mode says today. */
    if (private_only && st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(errmsg, errmsg_len,
                 "private key %s is owned by uid %u, not by the user kyufud runs as "
                 "(uid %u) or root; refusing it: chown it to that user",
                 key_file, (unsigned)st.st_uid, (unsigned)geteuid());
        fclose(f);
        return NULL;
    }
    return f;
}

int api__tls_key_file_private(const char *key_file, char *errmsg, size_t errmsg_len)
{
    FILE *f = key_open(key_file, true, errmsg, errmsg_len);
    if (f == NULL) {
        return KYUFU_API_ETLS;
    }
    fclose(f);
    return 0;
}

/* The certificate chain and the private key; with `private_only` the key
 * is read from the one open file whose mode was checked (key_open). */
static int load_identity(SSL_CTX *ctx, const char *cert_file, const char *key_file,
                         bool private_only, char *errmsg, size_t errmsg_len)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        return ssl_fail(errmsg, errmsg_len, "cannot load certificate", cert_file);
    }
    FILE *f = key_open(key_file, private_only, errmsg, errmsg_len);
    if (f == NULL) {
        return KYUFU_API_ETLS;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, SSL_CTX_get_default_passwd_cb(ctx),
                                        SSL_CTX_get_default_passwd_cb_userdata(ctx));
    fclose(f);
    if (key == NULL) {
        return ssl_fail(errmsg, errmsg_len, "cannot load key", key_file);
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (ok != 1) {
        return ssl_fail(errmsg, errmsg_len, "cannot load key", key_file);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return ssl_fail(errmsg, errmsg_len, "key does not match certificate", key_file);
    }
    return 0;
}

/* Remember the subject of a peer certificate that fails verification,
 * which OpenSSL does not keep as the session's peer, so the refusal can be
 * logged with who it was (api__tls_peer_subject).  Decides one thing only:
 * a CRL past its nextUpdate is still enforced rather than failing every
 * handshake (api__tls_ctx_set_crl). */
static int verify_cb(int ok, X509_STORE_CTX *store)
{
    if (!ok && X509_STORE_CTX_get_error(store) == X509_V_ERR_CRL_HAS_EXPIRED) {
        /* Cleared, or it would stay the chain's verify result, and every
         * reader of the peer's identity (node id, subject, fingerprint)
         * would take the certificate for unverified: an expired CRL would
         * make every terminal anonymous and refuse every Raft peer. */
        X509_STORE_CTX_set_error(store, X509_V_OK);
        return 1;
    }
    if (!ok) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
        struct api__tls *t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
        X509 *cert = X509_STORE_CTX_get0_cert(store);
        if (t != NULL && cert != NULL && t->presented[0] == '\0') {
            X509_NAME_oneline(X509_get_subject_name(cert), t->presented,
                              (int)sizeof t->presented);
        }
    }
    return ok;
}

/* The CA certificate of ctx's store that signed crl, or NULL. */
static X509 *crl_signer(SSL_CTX *ctx, X509_CRL *crl)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (ca != NULL && X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
            return ca;
        }
    }
    ERR_clear_error();
    return NULL;
}

int api__tls_ctx_set_crl(SSL_CTX *ctx, const char *crl_file, bool *expired,
                         char *errmsg, size_t errmsg_len)
{
    int rv = 0;
    *expired = false;
    ERR_clear_error();
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    BIO *in = BIO_new_file(crl_file, "r");
    if (crls == NULL || in == NULL) {
        rv = ssl_fail(errmsg, errmsg_len, "cannot read CRL", crl_file);
        goto out;
    }
    for (;;) {
        X509_CRL *crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL);
        if (crl == NULL) {
            break;
        }
        if (sk_X509_CRL_push(crls, crl) <= 0) {
            X509_CRL_free(crl);
            rv = ssl_fail(errmsg, errmsg_len, "out of memory reading CRL", crl_file);
            goto out;
        }
    }
    /* The loop ends at the end of the file (PEM "no start line") or at a
     * damaged block. */
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        rv = ssl_fail(errmsg, errmsg_len, "cannot parse CRL", crl_file);
        goto out;
    }
    if (sk_X509_CRL_num(crls) == 0) {
        ERR_clear_error();
        snprintf(errmsg, errmsg_len, "no CRL (PEM \"X509 CRL\") in %s", crl_file);
        rv = KYUFU_API_ETLS;
        goto out;
    }
    ERR_clear_error();
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, i);
        if (crl_signer(ctx, crl) == NULL) {
            char issuer[256];
            X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, (int)sizeof issuer);
            snprintf(errmsg, errmsg_len,
                     "CRL %s (issuer %s) is not signed by the cluster CA", crl_file, issuer);
            rv = KYUFU_API_ETLS;
            goto out;
        }
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        if (next != NULL && X509_cmp_current_time(next) < 0) {
            *expired = true;
        }
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
        if (X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i)) != 1) {
            rv = ssl_fail(errmsg, errmsg_len, "cannot use CRL", crl_file);
            goto out;
        }
    }
    if (X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK) != 1 ||
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1) {
        rv = ssl_fail(errmsg, errmsg_len, "cannot turn on CRL checks for", crl_file);
    }
out:
    BIO_free(in);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return rv;
}

int api__tls_server_ctx_new(const char *cert_file,
                            const char *key_file,
                            const char *ca_file,
                            bool require_client_cert,
                            const unsigned char *alpn,
                            SSL_CTX **out,
                            char *errmsg,
                            size_t errmsg_len)
{
    int rv;
    assert(alpn_known(alpn));
    if (cert_file == NULL || key_file == NULL || (require_client_cert && ca_file == NULL)) {
        snprintf(errmsg, errmsg_len, "server needs cert and key%s",
                 require_client_cert ? ", and a CA for client certificates" : "");
        return KYUFU_API_EINVALID;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        rv = ssl_fail(errmsg, errmsg_len, "SSL_CTX_new", NULL);
        goto err;
    }
    if ((rv = api__tls_policy_apply(ctx, errmsg, errmsg_len)) != 0 ||
        (rv = load_identity(ctx, cert_file, key_file, true, errmsg, errmsg_len)) != 0) {
        goto err_after_ctx;
    }
    SSL_CTX_set_app_data(ctx, (void *)alpn);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)alpn);
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            rv = ssl_fail(errmsg, errmsg_len, "cannot load CA", ca_file);
            goto err_after_ctx;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (names == NULL) {
            rv = ssl_fail(errmsg, errmsg_len, "no CA names in", ca_file);
            goto err_after_ctx;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER |
                               (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           verify_cb);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *out = ctx;
    return 0;

err_after_ctx:
    SSL_CTX_free(ctx);
err:
    assert(rv != 0);
    return rv;
}

int api__tls_client_ctx_new(const char *ca_file,
                            const char *cert_file,
                            const char *key_file,
                            const unsigned char *alpn,
                            SSL_CTX **out,
                            char *errmsg,
                            size_t errmsg_len)
{
    int rv;
    assert(alpn_known(alpn));
    if (ca_file == NULL || (cert_file == NULL) != (key_file == NULL)) {
        snprintf(errmsg, errmsg_len, "client needs a CA file, and cert with key or neither");
        return KYUFU_API_EINVALID;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        rv = ssl_fail(errmsg, errmsg_len, "SSL_CTX_new", NULL);
        goto err;
    }
    if ((rv = api__tls_policy_apply(ctx, errmsg, errmsg_len)) != 0) {
        goto err_after_ctx;
    }
    if (cert_file != NULL &&
        (rv = load_identity(ctx, cert_file, key_file, false, errmsg, errmsg_len)) != 0) {
        goto err_after_ctx;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        rv = ssl_fail(errmsg, errmsg_len, "cannot load CA", ca_file);
        goto err_after_ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    SSL_CTX_set_app_data(ctx, (void *)alpn);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alpn[0] + 1) != 0) {
        rv = ssl_fail(errmsg, errmsg_len, "cannot set ALPN", NULL);
        goto err_after_ctx;
    }
    *out = ctx;
    return 0;

err_after_ctx:
    SSL_CTX_free(ctx);
err:
    assert(rv != 0);
    return rv;
}

int api__tls_init(struct api__tls *t, SSL_CTX *ctx, bool server, const char *server_name)
{
    memset(t, 0, sizeof *t);
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
        goto err;
    }
    /* Reading an empty memory BIO is "retry", not EOF. */
    BIO_set_mem_eof_return(t->in, -1);
    BIO_set_mem_eof_return(t->out, -1);
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs now */
    SSL_set_app_data(t->ssl, t);         /* for verify_cb; t does not move */
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        ASN1_OCTET_STRING *ip =
            server_name != NULL ? a2i_IPADDRESS(server_name) : NULL;
        if (server_name == NULL) {
            /* The caller checks the peer's identity itself. */
        } else if (ip != NULL) {
            ASN1_OCTET_STRING_free(ip);
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name) != 1) {
                goto err_after_set;
            }
        } else if (SSL_set1_host(t->ssl, server_name) != 1 ||
                   SSL_set_tlsext_host_name(t->ssl, server_name) != 1) {
            goto err_after_set;
        }
        SSL_set_connect_state(t->ssl);
    }
    return 0;

err_after_set:
    SSL_free(t->ssl);
    memset(t, 0, sizeof *t);
    ERR_clear_error();
    return KYUFU_API_ENOMEM;
err:
    SSL_free(t->ssl);
    BIO_free(t->in);
    BIO_free(t->out);
    memset(t, 0, sizeof *t);
    return KYUFU_API_ENOMEM;
}

void api__tls_close(struct api__tls *t)
{
    SSL_free(t->ssl); /* frees the BIOs */
    t->ssl = NULL;
}

int api__tls_feed(struct api__tls *t, const uint8_t *data, size_t len)
{
    assert(len <= INT32_MAX);
    int n = BIO_write(t->in, data, (int)len);
    return n == (int)len ? 0 : KYUFU_API_ENOMEM;
}

static void set_error(struct api__tls *t, const char *what)
{
    unsigned long e = ERR_peek_error();
    char detail[160] = "";
    if (e != 0) {
        ERR_error_string_n(e, detail, sizeof detail);
    }
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        snprintf(t->error, sizeof t->error, "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(v));
    } else {
        snprintf(t->error, sizeof t->error, "%s%s%s", what, e != 0 ? ": " : "", detail);
    }
    ERR_clear_error();
}

int api__tls_handshake(struct api__tls *t)
{
    if (t->handshake_done) {
        return 1;
    }
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return 0;
        }
        set_error(t, "TLS handshake failed");
        return KYUFU_API_ETLS;
    }
    const unsigned char *proto = NULL;
    unsigned int len = 0;
    const unsigned char *want = ctx_alpn(SSL_get_SSL_CTX(t->ssl));
    SSL_get0_alpn_selected(t->ssl, &proto, &len);
    /* HTTP/1.1 clients (Prometheus among them) may offer no ALPN at all:
     * HTTP/1.1 is then what they speak (RFC 7301 leaves it optional). */
    bool http1_implied = want == api__tls_alpn_http1 && len == 0;
    if (!http1_implied && (len != want[0] || memcmp(proto, want + 1, len) != 0)) {
        snprintf(t->error, sizeof t->error, "TLS peer did not negotiate ALPN %.*s",
                 (int)want[0], (const char *)want + 1);
        return KYUFU_API_ETLS;
    }
    t->handshake_done = true;
    return 1;
}

int api__tls_read(struct api__tls *t, uint8_t *buf, size_t cap)
{
    assert(t->handshake_done);
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, buf, cap, &n);
    if (r == 1) {
        assert(n > 0);
        return (int)n;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        return KYUFU_API_ECLOSED;
    }
    set_error(t, "TLS read failed");
    return KYUFU_API_ETLS;
}

int api__tls_write(struct api__tls *t, const uint8_t *data, size_t len)
{
    assert(t->handshake_done);
    size_t n = 0;
    if (len == 0) {
        return 0;
    }
    if (SSL_write_ex(t->ssl, data, len, &n) != 1 || n != len) {
        set_error(t, "TLS write failed");
        return KYUFU_API_ETLS;
    }
    return 0;
}

void api__tls_shutdown(struct api__tls *t)
{
    if (t->handshake_done) {
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}

size_t api__tls_pending(const struct api__tls *t)
{
    return BIO_ctrl_pending(t->out);
}

size_t api__tls_take(struct api__tls *t, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    if (cap > 0 && BIO_read_ex(t->out, buf, cap, &n) != 1) {
        n = 0;
    }
    return n;
}

void api__tls_peer_identity(struct api__tls *t, char *buf, size_t len)
{
    assert(len > 0);
    buf[0] = '\0';
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert != NULL && SSL_get_verify_result(t->ssl) == X509_V_OK) {
        X509_NAME_oneline(X509_get_subject_name(cert), buf, (int)len);
    }
}

void api__tls_peer_subject(struct api__tls *t, char *buf, size_t len)
{
    assert(len > 0);
    buf[0] = '\0';
    X509 *cert = t->ssl != NULL ? SSL_get0_peer_certificate(t->ssl) : NULL;
    if (cert != NULL) {
        X509_NAME_oneline(X509_get_subject_name(cert), buf, (int)len);
    } else {
        snprintf(buf, len, "%s", t->presented);
    }
}

/* "N" after the prefix: decimal, 1..UINT64_MAX, no sign, no leading zero. */
static int parse_node_id(const unsigned char *s, int len, uint64_t *out)
{
    uint64_t v = 0;
    if (len < 1 || len > 20 || s[0] == '0') {
        return -1;
    }
    for (int i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int api__tls_cert_node_id(const X509 *cert, uint64_t *id)
{
    static const char prefix[] = KYUFU_TLS_NODE_URI_PREFIX;
    const int prefix_len = (int)sizeof prefix - 1;
    int found = 0;
    if (cert == NULL) {
        return -1;
    }
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
        if (n->type != GEN_URI) {
            continue;
        }
        const unsigned char *s = ASN1_STRING_get0_data(n->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(n->d.uniformResourceIdentifier);
        if (len < prefix_len || memcmp(s, prefix, (size_t)prefix_len) != 0) {
            continue;
        }
        found++;
        if (parse_node_id(s + prefix_len, len - prefix_len, id) != 0) {
            found = 2; /* a malformed node URI is as bad as two */
        }
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return found == 1 ? 0 : -1;
}

int api__tls_peer_node_id(struct api__tls *t, uint64_t *id)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK) {
        return -1;
    }
    return api__tls_cert_node_id(cert, id);
}

int api__tls_peer_cert_sha256(struct api__tls *t, uint8_t out[32])
{
    unsigned int len = 0;
    X509 *cert = t->ssl != NULL ? SSL_get0_peer_certificate(t->ssl) : NULL;
    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK ||
        X509_digest(cert, EVP_sha256(), out, &len) != 1 || len != 32) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int api__tls_peer_revoked(struct api__tls *t, SSL_CTX *ctx, char *serial, size_t serial_len)
{
    if (serial_len > 0) {
        serial[0] = '\0';
    }
    X509 *cert = t->ssl != NULL && t->handshake_done ? SSL_get0_peer_certificate(t->ssl)
                                                      : NULL;
    if (cert == NULL) {
        return 0;
    }
    /* The CRLs in ctx's store were checked against the CA when they were
     * loaded (api__tls_ctx_set_crl); an entry of the issuer's CRL that
     * names this serial revokes it (removeFromCRL, 2, does not). */
    int revoked = 0;
    const X509_NAME *issuer = X509_get_issuer_name(cert);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_OBJECT) *objs = store != NULL ? X509_STORE_get0_objects(store) : NULL;
    for (int i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs) && !revoked; i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
        X509_REVOKED *entry = NULL;
        if (crl != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl), issuer) == 0 &&
            X509_CRL_get0_by_cert(crl, &entry, cert) == 1) {
            revoked = 1;
        }
    }
    if (revoked && serial_len > 0) {
        api__tls_cert_serial(cert, serial, serial_len);
        if (serial[0] == '\0') {
            snprintf(serial, serial_len, "?");
        }
    }
    ERR_clear_error();
    return revoked;
}

void api__tls_cert_serial(const X509 *cert, char *out, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    snprintf(out, len, "%s", hex != NULL ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
}
