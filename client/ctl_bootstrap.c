/* The first ID administrator's bootstrap-admin file: see ctl_bootstrap.h. */
#include "ctl_bootstrap.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ctl_pki.h" /* ctl__write_file, ctl__errf */
#include "pwhash.h"

int ctl__bootstrap_new(const char *staff_id, struct ctl__bootstrap *b, char *errmsg,
                       size_t errmsg_len)
{
    memset(b, 0, sizeof *b);
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES], hash[KYUFU_PWHASH_BYTES];
    char salt_hex[2 * sizeof salt + 1], hash_hex[2 * sizeof hash + 1];
    int rv = 0;
    if (kyufu_pwhash_temporary(b->password, sizeof b->password) != 0 ||
        kyufu_pwhash_new(b->password, strlen(b->password), KYUFU_PWHASH_ITERATIONS, salt,
                         hash) != 0) {
        rv = ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL,
                       "the first administrator's temporary password: no randomness");
        goto out;
    }
    ctl__hex(salt, sizeof salt, salt_hex);
    ctl__hex(hash, sizeof hash, hash_hex);
    int n = snprintf(b->text, sizeof b->text,
                     "# The first ID administrator (kyufuctl cluster init): the hash\n"
                     "# of the temporary password it printed once.  The node deletes\n"
                     "# this file once the account exists.\n"
                     "staff_id = %s\n"
                     "display_name = " CTL__BOOTSTRAP_DISPLAY_NAME "\n"
                     "iterations = %u\n"
                     "salt = %s\n"
                     "hash = %s\n",
                     staff_id, KYUFU_PWHASH_ITERATIONS, salt_hex, hash_hex);
    assert(n > 0 && (size_t)n < sizeof b->text); /* staff ids are short */
    b->text_len = (size_t)n;
out:
    OPENSSL_cleanse(salt, sizeof salt);
    OPENSSL_cleanse(hash, sizeof hash);
    OPENSSL_cleanse(hash_hex, sizeof hash_hex);
    if (rv != 0) {
        ctl__bootstrap_wipe(b);
    }
    return rv;
}

int ctl__bootstrap_write(const struct ctl__bootstrap *b, const char *path, char *errmsg,
                         size_t errmsg_len)
{
    assert(b->text_len > 0);
    return ctl__write_file(path, 0600, b->text, b->text_len, errmsg, errmsg_len);
}

void ctl__bootstrap_wipe(struct ctl__bootstrap *b)
{
    OPENSSL_cleanse(b, sizeof *b);
}
