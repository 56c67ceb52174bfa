/* The password hash cost (api/pwhash.h; docs/testing.md "Password hashing
 * in tests"), what an auditor relies on: a process that never switched to
 * the insecure test cost (every production kyufud, kyufuctl) makes hashes
 * at KYUFU_PWHASH_ITERATIONS and refuses to match a stored hash below
 * KYUFU_PWHASH_ITERATIONS_MIN, even with the right password, so a weak
 * hash made by a test node is useless on a production node; the switch
 * takes only a count inside the test range, only once; after it, new
 * hashes record the test count and both weak and strong hashes check.
 * One process, in order: the production half runs before the switch. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "pwhash.h"

#include "../count_check.h"

static const char pw[] = "Kq7#a1b2c3d4e5f6g7h8%9";
static const uint8_t salt[KYUFU_PWHASH_SALT_BYTES] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* The hash of pw at `iterations`, computed here with OpenSSL directly
 * (as a test node, or an attacker writing the store, would have made it). */
static void made_elsewhere(uint32_t iterations, uint8_t out[KYUFU_PWHASH_BYTES])
{
    int ok = PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sizeof salt,
                               (int)iterations, EVP_sha256(),
                               KYUFU_PWHASH_BYTES, out);
    CHECK(ok == 1);
}

static bool matches(uint32_t iterations, const uint8_t *hash)
{
    return kyufu_pwhash_check(pw, strlen(pw), iterations, salt, sizeof salt,
                              hash, KYUFU_PWHASH_BYTES);
}

static void test_production(void)
{
    CHECK(kyufu_pwhash_iterations() == KYUFU_PWHASH_ITERATIONS);
    CHECK(kyufu_pwhash_iterations() == 600000u);
    CHECK(kyufu_pwhash_iterations_min() == KYUFU_PWHASH_ITERATIONS_MIN);
    uint8_t weak[KYUFU_PWHASH_BYTES], floor[KYUFU_PWHASH_BYTES];
    made_elsewhere(KYUFU_PWHASH_TEST_ITERATIONS_MIN, weak);
    made_elsewhere(KYUFU_PWHASH_ITERATIONS_MIN, floor);
    /* The right password against a weak hash: no match. */
    CHECK(!matches(KYUFU_PWHASH_TEST_ITERATIONS_MIN, weak));
    CHECK(!matches(KYUFU_PWHASH_ITERATIONS_MIN - 1, weak));
    /* At the floor it matches (the check itself works). */
    CHECK(matches(KYUFU_PWHASH_ITERATIONS_MIN, floor));
    /* No weak hash is made either. */
    uint8_t s[KYUFU_PWHASH_SALT_BYTES], h[KYUFU_PWHASH_BYTES];
    CHECK(kyufu_pwhash_new(pw, strlen(pw), KYUFU_PWHASH_TEST_ITERATIONS_MIN,
                           s, h) == -1);
}

static void test_switch_refused(void)
{
    static const uint32_t bad[] = {0, 1, KYUFU_PWHASH_TEST_ITERATIONS_MIN - 1,
                                   KYUFU_PWHASH_TEST_ITERATIONS_MAX + 1,
                                   KYUFU_PWHASH_ITERATIONS, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(kyufu_pwhash_insecure_test_cost(bad[i]) == -1);
        /* Nothing changed. */
        CHECK(kyufu_pwhash_iterations() == KYUFU_PWHASH_ITERATIONS);
        CHECK(kyufu_pwhash_iterations_min() == KYUFU_PWHASH_ITERATIONS_MIN);
    }
}

static void test_insecure(void)
{
    CHECK(kyufu_pwhash_insecure_test_cost(KYUFU_PWHASH_TEST_ITERATIONS_MIN) ==
          0);
    CHECK(kyufu_pwhash_iterations() == KYUFU_PWHASH_TEST_ITERATIONS_MIN);
    CHECK(kyufu_pwhash_iterations_min() == KYUFU_PWHASH_TEST_ITERATIONS_MIN);
    /* Once only, even to the same or a higher count. */
    CHECK(kyufu_pwhash_insecure_test_cost(KYUFU_PWHASH_TEST_ITERATIONS_MIN) ==
          -1);
    CHECK(kyufu_pwhash_insecure_test_cost(KYUFU_PWHASH_TEST_ITERATIONS_MAX) ==
          -1);
    CHECK(kyufu_pwhash_iterations() == KYUFU_PWHASH_TEST_ITERATIONS_MIN);
    /* New hashes at the test count check, the right password only. */
    uint8_t s[KYUFU_PWHASH_SALT_BYTES], h[KYUFU_PWHASH_BYTES];
    CHECK(kyufu_pwhash_new(pw, strlen(pw), kyufu_pwhash_iterations(), s, h) ==
          0);
    CHECK(kyufu_pwhash_check(pw, strlen(pw), kyufu_pwhash_iterations(), s,
                             sizeof s, h, sizeof h));
    CHECK(!kyufu_pwhash_check("Kq7#a1b2c3d4e5f6g7h8%8", strlen(pw),
                              kyufu_pwhash_iterations(), s, sizeof s, h,
                              sizeof h));
    /* The count is part of the hash: the same bytes under another count
     * do not match. */
    CHECK(!kyufu_pwhash_check(pw, strlen(pw), kyufu_pwhash_iterations() + 1,
                              s, sizeof s, h, sizeof h));
    /* Below the test count: refused as before. */
    uint8_t below[KYUFU_PWHASH_BYTES];
    made_elsewhere(KYUFU_PWHASH_TEST_ITERATIONS_MIN - 1, below);
    CHECK(!matches(KYUFU_PWHASH_TEST_ITERATIONS_MIN - 1, below));
    /* A production hash (kyufuctl cluster init's) still checks. */
    uint8_t floor[KYUFU_PWHASH_BYTES];
    made_elsewhere(KYUFU_PWHASH_ITERATIONS_MIN, floor);
    CHECK(matches(KYUFU_PWHASH_ITERATIONS_MIN, floor));
}

int main(void)
{
    test_production();
    test_switch_refused();
    test_insecure();
    return count_check_end("pwhash_cost");
}
