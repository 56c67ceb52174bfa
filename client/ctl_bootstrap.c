/* kyufuctl cluster init: the first ID administrator (docs/identity.md
 * "Accounts and their lifecycle").
 *
 * A one-time temporary password (KYUFU_CTL_BOOTSTRAP_PASSWORD_CHARS
 * characters from RAND_bytes, ~119 bits) is hashed with PBKDF2 (api/pwhash.h,
 * the node's iteration count) and written as the bootstrap-admin file
 * (0600, the format of docs/identity.md) into each node's data folder
 * (local clusters: DIR/nodeN/data; --hosts: DIR/nodeN, to be placed in the
 * host's state directory with the rest).  The first leader proposes
 * BootstrapAdmin from it, once; each node deletes its copy when the staff
 * table is no longer empty.  The password itself is printed once, on the
 * operator's terminal, and written nowhere. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ctl.h"
#include "pwhash.h"

/* Unambiguous letters and digits (no 0/O, 1/l/I): read aloud at a
 * counter, typed once. */
static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

int ctl__bootstrap_password(char *out, size_t len)
{
    const size_t n = KYUFU_CTL_BOOTSTRAP_PASSWORD_CHARS;
    const unsigned k = (unsigned)(sizeof alphabet - 1);
    if (len < n + 1) {
        return -1;
    }
    size_t i = 0;
    while (i < n) {
        unsigned char b;
        if (RAND_bytes(&b, 1) != 1) {
            return -1;
        }
        /* Rejection sampling: no bias towards the first letters. */
        if (b < 256 - 256 % k) {
            out[i++] = alphabet[b % k];
        }
    }
    out[n] = '\0';
    return 0;
}

static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    if (close(fd) != 0 || !ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int ctl__bootstrap_admin(const struct kyufu_ctl_init_opts *o, const char *staff_id,
                         char *password, size_t password_len, FILE *log, char *err,
                         size_t errlen)
{
    uint8_t salt[KYUFU_PWHASH_SALT_BYTES], hash[KYUFU_PWHASH_BYTES];
    if (ctl__bootstrap_password(password, password_len) != 0 ||
        kyufu_pwhash_new(password, strlen(password), KYUFU_PWHASH_ITERATIONS, salt, hash) !=
            0) {
        snprintf(err, errlen, "no randomness for the first administrator's password");
        return KYUFU_CTL_EXIT_LOCAL;
    }
    char text[512];
    int n = snprintf(text, sizeof text,
                     "staff_id = %s\ndisplay_name = ID administrator\niterations = %u\nsalt = ",
                     staff_id, KYUFU_PWHASH_ITERATIONS);
    for (size_t i = 0; i < sizeof salt; i++) {
        n += snprintf(text + n, sizeof text - (size_t)n, "%02x", salt[i]);
    }
    n += snprintf(text + n, sizeof text - (size_t)n, "\nhash = ");
    for (size_t i = 0; i < sizeof hash; i++) {
        n += snprintf(text + n, sizeof text - (size_t)n, "%02x", hash[i]);
    }
    snprintf(text + n, sizeof text - (size_t)n, "\n");
    int rv = 0;
    for (unsigned i = 1; i <= o->nodes && rv == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, o->on_hosts ? "%s/node%u/bootstrap-admin"
                                                : "%s/node%u/data/bootstrap-admin",
                 o->dir, i);
        (void)unlink(path); /* --force: a new cluster, a new first password */
        if (write_file(path, text, err, errlen) != 0) {
            rv = KYUFU_CTL_EXIT_LOCAL;
        } else if (log != NULL) {
            fprintf(log, "wrote %s%s\n", path,
                    o->on_hosts ? " (copy it into the node's data_dir, mode 0600)" : "");
        }
    }
    OPENSSL_cleanse(text, sizeof text);
    OPENSSL_cleanse(hash, sizeof hash);
    return rv;
}
