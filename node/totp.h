/* TOTP (RFC 6238) through Debian's liboath (issue 8; docs/identity.md
 * "Second factor"): HMAC-SHA1, 30-second steps from the Unix epoch, 6
 * digits, as every authenticator app defaults to.
 *
 * A code is accepted for the step of `now` and one step either side; the
 * step that matched is returned so that apply can refuse a step already
 * used (single use).  Nothing here reads a clock: the caller passes the
 * time, so tests run at fixed times.  Thread-safe (liboath is initialised
 * once). */
#ifndef KYUFU_NODE_TOTP_H
#define KYUFU_NODE_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define KYUFU_NODE_TOTP_SECRET_BYTES 20u
#define KYUFU_NODE_TOTP_STEP_SECONDS 30u
#define KYUFU_NODE_TOTP_DIGITS 6u
/* Steps accepted either side of now's (clock drift, typing time). */
#define KYUFU_NODE_TOTP_WINDOW 1u
/* Base32 of the secret: 32 characters, no padding, and its NUL. */
#define KYUFU_NODE_TOTP_BASE32_BYTES 33u
/* otpauth://totp/kyufu:ID?secret=...&issuer=kyufu */
#define KYUFU_NODE_TOTP_URI_BYTES 192u

/* A new secret from RAND_bytes.  0, or -1 without randomness. */
int kyufu_node__totp_secret(uint8_t secret[KYUFU_NODE_TOTP_SECRET_BYTES]);

/* Whether `code` (exactly KYUFU_NODE_TOTP_DIGITS digits) is the code of
 * `secret` at unix time now_s or within KYUFU_NODE_TOTP_WINDOW steps:
 * 0 and the matching step (floor(t / 30)) in *step; -1 when it is not,
 * or is malformed (not 6 digits, a secret of the wrong length). */
int kyufu_node__totp_check(const uint8_t *secret,
                           size_t secret_len,
                           int64_t now_s,
                           const char *code,
                           uint64_t *step);

/* The code of `secret` at unix time now_s into out (at least 7 bytes):
 * for tests and tools.  0 or -1. */
int kyufu_node__totp_code(const uint8_t *secret,
                          size_t secret_len,
                          int64_t now_s,
                          char *out,
                          size_t out_len);

/* RFC 4648 base32 of the secret, and the otpauth:// URI authenticator apps
 * read (issuer "kyufu", account staff_id).  0 or -1 (too small a buffer,
 * out of memory). */
int kyufu_node__totp_base32(const uint8_t *secret,
                            size_t secret_len,
                            char *out,
                            size_t out_len);
int kyufu_node__totp_uri(const char *staff_id,
                         const char *base32,
                         char *out,
                         size_t out_len);

#endif /* KYUFU_NODE_TOTP_H */
