/* The first ID administrator (issue 8; docs/identity.md "Accounts and
 * their lifecycle"): kyufuctl cluster init makes a temporary password,
 * prints it once, and writes only its PBKDF2 hash into each node's folder
 * as `bootstrap-admin` (0600 from creation).  The text is what
 * node/bootstrap_file.c parses.  kyufuctl node new never writes one: a
 * joining node never bootstraps. */
#ifndef KYUFU_CTL_BOOTSTRAP_H
#define KYUFU_CTL_BOOTSTRAP_H

#include <stddef.h>

#include "ctl.h" /* KYUFU_CTL_TEMP_PASSWORD_CHARS */

/* The file's name in a node's data folder (node/auth_timer.c reads it). */
#define CTL__BOOTSTRAP_FILE "bootstrap-admin"
#define CTL__BOOTSTRAP_DISPLAY_NAME "ID administrator"

/* The first administrator's bootstrap: the temporary password and the
 * bootstrap-admin text that holds its hash (never the password). */
struct ctl__bootstrap
{
    char password[KYUFU_CTL_TEMP_PASSWORD_CHARS + 1];
    char text[512];
    size_t text_len;
};

/* A new temporary password for `staff_id` (RAND_bytes, letters and digits
 * without look-alikes) and its bootstrap-admin text (PBKDF2-HMAC-SHA256,
 * KYUFU_PWHASH_ITERATIONS, a random salt).  0, or a KYUFU_CTL_EXIT_LOCAL
 * with errmsg when OpenSSL fails.  The caller wipes *b with
 * ctl__bootstrap_wipe. */
int ctl__bootstrap_new(const char *staff_id, struct ctl__bootstrap *b,
                       char *errmsg, size_t errmsg_len);

/* Writes b's text to PATH, created 0600 (never wider) and renamed into
 * place.  0, or KYUFU_CTL_EXIT_* with errmsg. */
int ctl__bootstrap_write(const struct ctl__bootstrap *b, const char *path,
                         char *errmsg, size_t errmsg_len);

void ctl__bootstrap_wipe(struct ctl__bootstrap *b);

#endif /* KYUFU_CTL_BOOTSTRAP_H */
