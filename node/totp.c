/* TOTP through liboath: see totp.h. */
#include "totp.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rv = -1;

static void init(void)
{
    init_rv = oath_init() == OATH_OK ? 0 : -1;
}

int kyufu_node__totp_secret(uint8_t secret[KYUFU_NODE_TOTP_SECRET_BYTES])
{
    return RAND_bytes(secret, (int)KYUFU_NODE_TOTP_SECRET_BYTES) == 1 ? 0
                                                                       : -1;
}

static bool well_formed(const char *code)
{
    if (code == NULL || strlen(code) != KYUFU_NODE_TOTP_DIGITS) {
        return false;
    }
    for (size_t i = 0; i < KYUFU_NODE_TOTP_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return false;
        }
    }
    return true;
}

int kyufu_node__totp_check(const uint8_t *secret,
                           size_t secret_len,
                           int64_t now_s,
                           const char *code,
                           uint64_t *step)
{
    pthread_once(&once, init);
    if (init_rv != 0 || secret == NULL ||
        secret_len != KYUFU_NODE_TOTP_SECRET_BYTES || !well_formed(code) ||
        now_s < (int64_t)KYUFU_NODE_TOTP_STEP_SECONDS) {
        return -1;
    }
    int pos = 0;
    uint64_t counter = 0;
    int rv = oath_totp_validate3((const char *)secret, secret_len,
                                 (time_t)now_s, KYUFU_NODE_TOTP_STEP_SECONDS,
                                 OATH_TOTP_DEFAULT_START_TIME,
                                 KYUFU_NODE_TOTP_WINDOW, &pos, &counter, code);
    if (rv < 0) {
        return -1;
    }
    *step = counter;
    return 0;
}

int kyufu_node__totp_code(const uint8_t *secret,
                          size_t secret_len,
                          int64_t now_s,
                          char *out,
                          size_t out_len)
{
    pthread_once(&once, init);
    if (init_rv != 0 || out_len < KYUFU_NODE_TOTP_DIGITS + 1 || now_s < 0) {
        return -1;
    }
    return oath_totp_generate((const char *)secret, secret_len, (time_t)now_s,
                              KYUFU_NODE_TOTP_STEP_SECONDS,
                              OATH_TOTP_DEFAULT_START_TIME,
                              KYUFU_NODE_TOTP_DIGITS, out) == OATH_OK
               ? 0
               : -1;
}

int kyufu_node__totp_base32(const uint8_t *secret,
                            size_t secret_len,
                            char *out,
                            size_t out_len)
{
    pthread_once(&once, init);
    char *b = NULL;
    size_t blen = 0;
    if (init_rv != 0 ||
        oath_base32_encode((const char *)secret, secret_len, &b, &blen) !=
            OATH_OK) {
        return -1;
    }
    while (blen > 0 && b[blen - 1] == '=') {
        blen--; /* authenticator apps take it unpadded */
    }
    int rv = -1;
    if (blen < out_len) {
        memcpy(out, b, blen);
        out[blen] = '\0';
        rv = 0;
    }
    OPENSSL_cleanse(b, blen);
    free(b);
    return rv;
}

int kyufu_node__totp_uri(const char *staff_id,
                         const char *base32,
                         char *out,
                         size_t out_len)
{
    /* staff ids are [a-z0-9._-]: nothing to percent-encode. */
    int n = snprintf(out, out_len,
                     "otpauth://totp/kyufu:%s?secret=%s&issuer=kyufu"
                     "&algorithm=SHA1&digits=%u&period=%u",
                     staff_id, base32, KYUFU_NODE_TOTP_DIGITS,
                     KYUFU_NODE_TOTP_STEP_SECONDS);
    return n > 0 && (size_t)n < out_len ? 0 : -1;
}
