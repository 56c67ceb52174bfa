/* Password policy (issue 8; docs/identity.md "Passwords"): what a new
 * password must be, checked by the node before it proposes SetPassword.
 *
 * The checks, in order: length (bytes) between the configured minimum and
 * KYUFU_PASSWORD_BYTES_MAX; printable UTF-8 without control characters;
 * Debian's libpwquality (cracklib dictionary, sequences, repeats, the
 * staff id as user name and the words of the display name as forbidden
 * words); not equal to the current hash nor to any kept previous one.
 * Each failure has a message that names the rule, never the password.
 *
 * The hash comparisons cost one PBKDF2 each (tens of milliseconds by
 * design): every function here that hashes runs on a work thread, never on
 * the event loop.  Thread-safe: libpwquality's dictionary lookups are
 * serialized inside (cracklib keeps static state). */
#ifndef KYUFU_NODE_PASSWORD_H
#define KYUFU_NODE_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kyufu/v1/identity.pb-c.h"


/* Policy-only checks (no hash): length, characters, libpwquality with the
 * account's id and display name.  0, or -1 with a message in why. */
int kyufu_node__password_policy(const char *password,
                                size_t len,
                                unsigned min_length,
                                const char *staff_id,
                                const char *display_name,
                                char *why,
                                size_t why_len);

/* Whether the checker works on this host: 0, or -1 with a message in
 * why (its cracklib dictionary missing, say).  kyufud refuses to start
 * without it rather than refuse every new password as if it were weak. */
int kyufu_node__password_checker_ready(char *why, size_t why_len);

/* Whether `password` matches `current` or one of previous[0..n) (at most
 * `history` of them are looked at): PBKDF2 each, work thread only. */
bool kyufu_node__password_reused(const char *password,
                                 size_t len,
                                 const Kyufu__V1__PasswordHash *current,
                                 Kyufu__V1__PasswordHash *const *previous,
                                 size_t n_previous,
                                 unsigned history);

/* Whether `password` matches `h` (NULL or malformed: false).  Work thread
 * only (one PBKDF2). */
bool kyufu_node__password_matches(const char *password,
                                  size_t len,
                                  const Kyufu__V1__PasswordHash *h);


#endif /* KYUFU_NODE_PASSWORD_H */
