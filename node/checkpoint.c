/* Signed checkpoints: see checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

/* A DER ECDSA P-256 signature is at most 72 bytes; room for larger keys. */
enum { SIG_BYTES_MAX = 512 };

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t kyufu_checkpoint_message(char *buf,
                                size_t len,
                                uint64_t node,
                                uint64_t seq,
                                const uint8_t hash[32],
                                int64_t time_ms)
{
    char h[65];
    hex(hash, 32, h);
    int w = snprintf(buf, len,
                     "kyufu-audit-checkpoint v1 node=%" PRIu64 " seq=%" PRIu64
                     " hash=%s time_ms=%" PRId64,
                     node, seq, h, time_ms);
    return w < 0 || (size_t)w >= len ? 0 : (size_t)w;
}

int kyufu_checkpoint_line(EVP_PKEY *key,
                          uint64_t node,
                          uint64_t seq,
                          const uint8_t hash[32],
                          int64_t time_ms,
                          char *line,
                          size_t len,
                          char *errmsg,
                          size_t errmsg_len)
{
    char msg[256];
    uint8_t sig[SIG_BYTES_MAX];
    size_t sig_len = sizeof sig;
    char sig_hex[2 * SIG_BYTES_MAX + 1];
    char h[65];
    size_t mlen = kyufu_checkpoint_message(msg, sizeof msg, node, seq, hash,
                                           time_ms);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (mlen == 0 || ctx == NULL ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)msg, mlen) != 1) {
        unsigned long e = ERR_get_error();
        snprintf(errmsg, errmsg_len, "cannot sign the checkpoint: %s",
                 e != 0 ? ERR_reason_error_string(e) : "no memory");
        ERR_clear_error();
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    EVP_MD_CTX_free(ctx);
    hex(sig, sig_len, sig_hex);
    hex(hash, 32, h);
    int w = snprintf(line, len,
                     "{\"v\":1,\"node\":%" PRIu64 ",\"seq\":%" PRIu64
                     ",\"hash\":\"%s\",\"time_ms\":%" PRId64
                     ",\"sig\":\"%s\"}\n",
                     node, seq, h, time_ms, sig_hex);
    if (w < 0 || (size_t)w >= len) {
        snprintf(errmsg, errmsg_len, "checkpoint line longer than %zu bytes",
                 len);
        return -1;
    }
    return 0;
}

bool kyufu_checkpoint_verify(EVP_PKEY *pub,
                             uint64_t node,
                             uint64_t seq,
                             const uint8_t hash[32],
                             int64_t time_ms,
                             const uint8_t *sig,
                             size_t sig_len)
{
    char msg[256];
    size_t mlen = kyufu_checkpoint_message(msg, sizeof msg, node, seq, hash,
                                           time_ms);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = mlen > 0 && ctx != NULL &&
              EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)msg,
                               mlen) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

int kyufu_checkpoint_append(const char *path,
                            const char *line,
                            char *errmsg,
                            size_t errmsg_len)
{
    size_t len = strlen(line);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", path,
                 strerror(errno));
        return -1;
    }
    /* One write: O_APPEND puts the whole line at the end at once. */
    ssize_t w = write(fd, line, len);
    if (w != (ssize_t)len) {
        snprintf(errmsg, errmsg_len, "cannot append to %s: %s", path,
                 w < 0 ? strerror(errno) : "short write");
        goto fail;
    }
    if (fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "cannot fsync %s: %s", path,
                 strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        snprintf(errmsg, errmsg_len, "cannot close %s: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
fail:
    close(fd);
    return -1;
}

int kyufu_checkpoint_load_key(const char *path,
                              EVP_PKEY **out,
                              char *errmsg,
                              size_t errmsg_len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", path,
                 strerror(errno));
        return -1;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL) {
        snprintf(errmsg, errmsg_len, "%s holds no PEM private key", path);
        ERR_clear_error();
        return -1;
    }
    *out = k;
    return 0;
}
