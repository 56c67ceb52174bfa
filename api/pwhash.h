/* Password hashing (issue 8; docs/identity.md "Passwords"): PBKDF2-HMAC-
 * SHA256 (CRYPTREC-listed) through OpenSSL, one random 16-byte salt per
 * hash.  Shared by kyufud (sign-in, password change, on a worker thread:
 * each call costs tens of milliseconds by design) and kyufuctl (the first
 * administrator's temporary password at cluster init).
 *
 * Thread-safe; never logs.  The caller wipes its plaintext copies with
 * OPENSSL_cleanse. */
#ifndef KYUFU_API_PWHASH_H
#define KYUFU_API_PWHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The iteration count of new hashes, measured on the project's 2-vCPU
 * machine (docs/identity.md "Iteration count"): about 0.13 s of one core. */
#define KYUFU_PWHASH_ITERATIONS 600000u
/* Stored hashes outside these bounds are refused (a corrupt or hostile
 * record must not make a node spin for minutes per sign-in). */
#define KYUFU_PWHASH_ITERATIONS_MIN 100000u
#define KYUFU_PWHASH_ITERATIONS_MAX 10000000u
/* Insecure test cost (docs/testing.md "Password hashing in tests"): a
 * kyufud whose config has [insecure_test] password_iterations (loopback
 * addresses only, node/config.c) makes new hashes with that many
 * iterations, and its checks accept stored hashes from that count up.
 * Without it (every production node) new hashes have
 * KYUFU_PWHASH_ITERATIONS and a stored hash below
 * KYUFU_PWHASH_ITERATIONS_MIN never matches: a weak hash made by a test
 * node cannot be used for a sign-in on a production node.  1,000 still
 * exercises the same code path (PBKDF2 with a recorded count); it costs
 * ~0.2 ms instead of ~0.13 s. */
#define KYUFU_PWHASH_TEST_ITERATIONS_MIN 1000u
#define KYUFU_PWHASH_TEST_ITERATIONS_MAX (KYUFU_PWHASH_ITERATIONS_MIN - 1u)
_Static_assert(KYUFU_PWHASH_TEST_ITERATIONS_MIN <=
                   KYUFU_PWHASH_TEST_ITERATIONS_MAX,
               "a test cost below the production floor exists");
_Static_assert(KYUFU_PWHASH_ITERATIONS_MIN <= KYUFU_PWHASH_ITERATIONS &&
                   KYUFU_PWHASH_ITERATIONS <= KYUFU_PWHASH_ITERATIONS_MAX,
               "new hashes are within the bounds checks accept");
#define KYUFU_PWHASH_SALT_BYTES 16u
#define KYUFU_PWHASH_BYTES 32u
/* Longest password accepted anywhere (bytes): bounds the work and the
 * request; the policy's minimum is configured ([auth]). */
#define KYUFU_PASSWORD_BYTES_MAX 256u

/* Temporary passwords (a new account's, an administrator's reset, the
 * first ID administrator's at cluster init): this many characters of a
 * 56-letter alphabet without look-alikes (no 0/O, 1/l/I), ~116 bits:
 * never guessed, read from a screen, typed once, changed at the first
 * sign-in. */
#define KYUFU_PWHASH_TEMPORARY_CHARS 20u

/* A new temporary password into out (at least KYUFU_PWHASH_TEMPORARY_CHARS
 * + 1 bytes), from RAND_bytes with rejection sampling (no bias).  0, or -1
 * without randomness (out wiped). */
int kyufu_pwhash_temporary(char *out, size_t out_len);

/* Switch this process to the insecure test cost (see above): new hashes
 * get `iterations` and checks accept stored counts from `iterations` up.
 * Called once by kyufud at start, before any other thread runs, only for a
 * config that has [insecure_test] (kyufud logs it at every start).  0, or
 * -1 (nothing changed) for a count outside KYUFU_PWHASH_TEST_ITERATIONS_*
 * or a second call. */
int kyufu_pwhash_insecure_test_cost(uint32_t iterations);

/* The iteration count of new hashes: KYUFU_PWHASH_ITERATIONS, or the
 * insecure test cost once set. */
uint32_t kyufu_pwhash_iterations(void);

/* The lowest stored count a check accepts: KYUFU_PWHASH_ITERATIONS_MIN, or
 * the insecure test cost once set. */
uint32_t kyufu_pwhash_iterations_min(void);

/* A new salt (RAND_bytes) and the hash of `password` (len bytes) with
 * `iterations`.  0, or -1 when OpenSSL fails (no randomness) or for
 * iterations outside [kyufu_pwhash_iterations_min(),
 * KYUFU_PWHASH_ITERATIONS_MAX]. */
int kyufu_pwhash_new(const char *password,
                     size_t len,
                     uint32_t iterations,
                     uint8_t salt[KYUFU_PWHASH_SALT_BYTES],
                     uint8_t hash[KYUFU_PWHASH_BYTES]);

/* Whether `password` hashes to `hash` under salt and iterations (constant-
 * time comparison).  False for iterations outside
 * [kyufu_pwhash_iterations_min(), KYUFU_PWHASH_ITERATIONS_MAX] or a
 * salt/hash of the wrong length. */
bool kyufu_pwhash_check(const char *password,
                        size_t len,
                        uint32_t iterations,
                        const uint8_t *salt,
                        size_t salt_len,
                        const uint8_t *hash,
                        size_t hash_len);

#endif /* KYUFU_API_PWHASH_H */
