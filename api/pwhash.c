/* PBKDF2-HMAC-SHA256 password hashes (pwhash.h). */
#include "pwhash.h"

#include <assert.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* 0: production cost.  Written once before other threads start
 * (kyufu_pwhash_insecure_test_cost), read by the work threads: atomic so
 * that no reader can see a torn or stale value. */
static _Atomic uint32_t test_iterations;

int kyufu_pwhash_insecure_test_cost(uint32_t iterations)
{
    if (iterations < KYUFU_PWHASH_TEST_ITERATIONS_MIN ||
        iterations > KYUFU_PWHASH_TEST_ITERATIONS_MAX ||
        test_iterations != 0) {
        return -1;
    }
    test_iterations = iterations;
    return 0;
}

uint32_t kyufu_pwhash_iterations(void)
{
    uint32_t t = test_iterations;
    return t != 0 ? t : KYUFU_PWHASH_ITERATIONS;
}

uint32_t kyufu_pwhash_iterations_min(void)
{
    uint32_t t = test_iterations;
    return t != 0 ? t : KYUFU_PWHASH_ITERATIONS_MIN;
}

static int derive(const char *password,
                  size_t len,
                  uint32_t iterations,
                  const uint8_t *salt,
                  size_t salt_len,
                  uint8_t out[KYUFU_PWHASH_BYTES])
{
    if (len > KYUFU_PASSWORD_BYTES_MAX ||
        iterations < kyufu_pwhash_iterations_min() ||
        iterations > KYUFU_PWHASH_ITERATIONS_MAX) {
        return -1;
    }
    return PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len,
                             (int)iterations, EVP_sha256(),
                             KYUFU_PWHASH_BYTES, out) == 1
               ? 0
               : -1;
}

int kyufu_pwhash_new(const char *password,
                     size_t len,
                     uint32_t iterations,
                     uint8_t salt[KYUFU_PWHASH_SALT_BYTES],
                     uint8_t hash[KYUFU_PWHASH_BYTES])
{
    if (RAND_bytes(salt, KYUFU_PWHASH_SALT_BYTES) != 1) {
        return -1;
    }
    return derive(password, len, iterations, salt, KYUFU_PWHASH_SALT_BYTES,
                  hash);
}

bool kyufu_pwhash_check(const char *password,
                        size_t len,
                        uint32_t iterations,
                        const uint8_t *salt,
                        size_t salt_len,
                        const uint8_t *hash,
                        size_t hash_len)
{
    uint8_t got[KYUFU_PWHASH_BYTES];
    if (salt_len != KYUFU_PWHASH_SALT_BYTES || hash_len != KYUFU_PWHASH_BYTES ||
        derive(password, len, iterations, salt, salt_len, got) != 0) {
        return false;
    }
    bool ok = CRYPTO_memcmp(got, hash, KYUFU_PWHASH_BYTES) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

int kyufu_pwhash_temporary(char *out, size_t out_len)
{
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyz"
                                   "ABCDEFGHJKLMNPQRSTUVWXYZ"
                                   "23456789";
    const unsigned n = sizeof alphabet - 1; /* 56 */
    assert(out_len > KYUFU_PWHASH_TEMPORARY_CHARS);
    size_t got = 0;
    while (got < KYUFU_PWHASH_TEMPORARY_CHARS) {
        unsigned char r[32];
        if (RAND_bytes(r, sizeof r) != 1) {
            OPENSSL_cleanse(out, out_len);
            return -1;
        }
        for (size_t i = 0; i < sizeof r && got < KYUFU_PWHASH_TEMPORARY_CHARS;
             i++) {
            if (r[i] < 256 - 256 % n) { /* rejection sampling: no bias */
                out[got++] = alphabet[r[i] % n];
            }
        }
        OPENSSL_cleanse(r, sizeof r);
    }
    out[got] = '\0';
    return 0;
}
