/* A node's keys as kyufud and kyufuctl use them: the cluster identity
 * (the CA certificate's hash), the binding of a CMK file, and loading or
 * storing a node's wrapped CMK with the KEK its [keys] section names.  See
 * keys.h.  Every intermediate key (KEK, passphrase) is wiped before
 * return, on every path. */
#include "keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "small_file.h"
#include "storage.h"

int kyufu_keys_ca_hash(const char *path, uint8_t out[KYUFU_KEYS_CA_HASH_BYTES],
                       char *errmsg, size_t errmsg_len)
{
    int rv = -1;
    unsigned char *der = NULL;
    X509 *ca = NULL;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(errmsg, errmsg_len, "CA certificate %s: %s", path,
                 strerror(errno));
        return -1;
    }
    ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (ca == NULL) {
        snprintf(errmsg, errmsg_len,
                 "CA certificate %s: no PEM certificate in it", path);
        goto out;
    }
    int len = i2d_X509(ca, &der);
    unsigned int md_len = 0;
    if (len <= 0 ||
        EVP_Digest(der, (size_t)len, out, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != KYUFU_KEYS_CA_HASH_BYTES) {
        snprintf(errmsg, errmsg_len, "CA certificate %s: cannot hash it",
                 path);
        goto out;
    }
    rv = 0;
out:
    OPENSSL_free(der);
    X509_free(ca);
    return rv;
}

size_t kyufu_keys_bind_node(uint64_t node_id,
                            const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                            uint8_t *out)
{
    /* "node " + at most 20 digits + NUL + hash: well under the bound. */
    _Static_assert(5 + 20 + 1 + KYUFU_KEYS_CA_HASH_BYTES <=
                       KYUFU_KEYS_BIND_BYTES_MAX,
                   "a node binding fits");
    int n = snprintf((char *)out, 5 + 20 + 1, "node %llu",
                     (unsigned long long)node_id);
    size_t len = (size_t)n + 1; /* with its NUL, the separator */
    memcpy(out + len, ca_hash, KYUFU_KEYS_CA_HASH_BYTES);
    return len + KYUFU_KEYS_CA_HASH_BYTES;
}

/* The passphrase of src's file into pass (cap bytes); its length, or -1
 * with errmsg. */
static ssize_t read_passphrase(const char *path, char *pass, size_t cap,
                               char *errmsg, size_t errmsg_len)
{
    ssize_t n = kyufu_small_file_read(path, pass, cap, true);
    if (n < 0) {
        snprintf(errmsg, errmsg_len, "passphrase file %s: %s", path,
                 n == KYUFU_SMALL_FILE_ESHAPE
                     ? "not a regular file, or longer than 1024 bytes"
                 : n == KYUFU_SMALL_FILE_EPRIVATE
                     ? "readable or writable by group or others, or owned "
                       "by another user (it must be 0600, owned by the "
                       "user kyufud runs as)"
                     : strerror(errno));
        return -1;
    }
    if (n > 0 && pass[n - 1] == '\n') {
        n--;
    }
    if (n < (ssize_t)KYUFU_KEYS_PASSPHRASE_BYTES_MIN ||
        n > (ssize_t)KYUFU_KEYS_PASSPHRASE_BYTES_MAX ||
        memchr(pass, '\n', (size_t)n) != NULL) {
        snprintf(errmsg, errmsg_len,
                 "passphrase file %s: the passphrase must be one line of "
                 "%u to %u bytes",
                 path, KYUFU_KEYS_PASSPHRASE_BYTES_MIN,
                 KYUFU_KEYS_PASSPHRASE_BYTES_MAX);
        return -1;
    }
    return n;
}

/* The KEK of src; for a passphrase, derived with salt and rounds.  0, or
 * -1 with errmsg (kek wiped). */
static int kek_of(const struct kyufu_keys_source *src,
                  const uint8_t salt[KYUFU_KEYS_SALT_BYTES], uint32_t rounds,
                  uint8_t kek[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                  size_t errmsg_len)
{
    if ((src->kek_file == NULL) == (src->passphrase_file == NULL)) {
        snprintf(errmsg, errmsg_len,
                 "give exactly one of a key file and a passphrase file");
        return -1;
    }
    if (src->kek_file != NULL) {
        return kyufu_keys_kek_read(src->kek_file, kek, errmsg, errmsg_len);
    }
    static char pass[KYUFU_KEYS_PASSPHRASE_BYTES_MAX + 2];
    int rv = -1;
    ssize_t n = read_passphrase(src->passphrase_file, pass, sizeof pass,
                                errmsg, errmsg_len);
    if (n >= 0) {
        rv = kyufu_keys_kek_from_passphrase(pass, (size_t)n, salt, rounds,
                                            kek, errmsg, errmsg_len);
    }
    kyufu_storage_crypto_wipe(pass, sizeof pass);
    return rv;
}

int kyufu_keys_cmk_load(const struct kyufu_keys_source *src,
                        const char *cmk_path, uint64_t node_id,
                        const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                        uint8_t cmk[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                        size_t errmsg_len)
{
    struct kyufu_keys_cmk_file f;
    uint8_t kek[KYUFU_KEYS_KEY_BYTES];
    uint8_t bind[KYUFU_KEYS_BIND_BYTES_MAX];
    char why[400];
    int rv = -1;
    if (kyufu_keys_cmk_read(cmk_path, &f, errmsg, errmsg_len) != 0) {
        goto out;
    }
    bool file_kind = src->kek_file != NULL;
    if (f.kind != (file_kind ? KYUFU_KEYS_KEK_FILE
                             : KYUFU_KEYS_KEK_PASSPHRASE)) {
        snprintf(errmsg, errmsg_len,
                 "key file %s is wrapped under a %s, but [keys] names a %s",
                 cmk_path,
                 f.kind == KYUFU_KEYS_KEK_FILE ? "key file" : "passphrase",
                 file_kind ? "key file (kek_file)"
                           : "passphrase (passphrase_file)");
        goto out;
    }
    if (kek_of(src, f.salt, f.rounds, kek, errmsg, errmsg_len) != 0) {
        goto out;
    }
    size_t bind_len = kyufu_keys_bind_node(node_id, ca_hash, bind);
    if (kyufu_keys_cmk_unwrap(&f, kek, bind, bind_len, cmk, why,
                              sizeof why) != 0) {
        snprintf(errmsg, errmsg_len, "key file %.400s: %s", cmk_path, why);
        goto out;
    }
    rv = 0;
out:
    kyufu_storage_crypto_wipe(kek, sizeof kek);
    kyufu_storage_crypto_wipe(&f, sizeof f);
    if (rv != 0) {
        kyufu_storage_crypto_wipe(cmk, KYUFU_KEYS_KEY_BYTES);
    }
    return rv;
}

/* Wrap cmk under the KEK of src (a passphrase: a fresh salt) and write it
 * durably as cmk_path (small_file.h: a temporary file, fsync, rename over
 * what was there, folder fsync), creating its folder when missing. */
static int wrap_write(const struct kyufu_keys_source *src,
                      const char *cmk_path, uint64_t node_id,
                      const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                      const uint8_t cmk[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                      size_t errmsg_len)
{
    char dir[KYUFU_SMALL_FILE_PATH_BYTES];
    uint8_t kek[KYUFU_KEYS_KEY_BYTES];
    uint8_t salt[KYUFU_KEYS_SALT_BYTES] = {0};
    uint8_t bind[KYUFU_KEYS_BIND_BYTES_MAX];
    int rv = -1;
    const char *slash = strrchr(cmk_path, '/');
    if (slash == NULL || slash[1] == '\0' ||
        (size_t)(slash - cmk_path) >= sizeof dir) {
        snprintf(errmsg, errmsg_len, "%s: not a path to a file", cmk_path);
        return -1;
    }
    snprintf(dir, sizeof dir, "%.*s",
             (int)(slash == cmk_path ? 1 : slash - cmk_path), cmk_path);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errmsg_len, "create %s: %s", dir, strerror(errno));
        return -1;
    }
    bool pass = src->passphrase_file != NULL;
    if (pass && RAND_bytes(salt, sizeof salt) != 1) {
        snprintf(errmsg, errmsg_len, "no randomness for a salt");
        goto out;
    }
    if (kek_of(src, salt, KYUFU_KEYS_PBKDF2_ROUNDS, kek, errmsg,
               errmsg_len) != 0) {
        goto out;
    }
    size_t bind_len = kyufu_keys_bind_node(node_id, ca_hash, bind);
    rv = kyufu_keys_cmk_write(
        dir, slash + 1, pass ? KYUFU_KEYS_KEK_PASSPHRASE : KYUFU_KEYS_KEK_FILE,
        pass ? KYUFU_KEYS_PBKDF2_ROUNDS : 0, salt, kek, bind, bind_len, cmk,
        errmsg, errmsg_len);
out:
    kyufu_storage_crypto_wipe(kek, sizeof kek);
    return rv;
}

int kyufu_keys_cmk_store(const struct kyufu_keys_source *src,
                         const char *cmk_path, uint64_t node_id,
                         const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                         const uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                         char *errmsg, size_t errmsg_len)
{
    if (access(cmk_path, F_OK) == 0) {
        snprintf(errmsg, errmsg_len,
                 "%s exists: a wrapped cluster key is never overwritten "
                 "(move it away first)",
                 cmk_path);
        return -1;
    }
    if (errno != ENOENT) {
        snprintf(errmsg, errmsg_len, "%s: %s", cmk_path, strerror(errno));
        return -1;
    }
    return wrap_write(src, cmk_path, node_id, ca_hash, cmk, errmsg,
                      errmsg_len);
}

int kyufu_keys_cmk_rewrap(const struct kyufu_keys_source *old_src,
                          const struct kyufu_keys_source *new_src,
                          const char *cmk_path, uint64_t node_id,
                          const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                          char *errmsg, size_t errmsg_len)
{
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES];
    uint8_t again[KYUFU_KEYS_KEY_BYTES];
    char why[600];
    int rv = -1;
    if (kyufu_keys_cmk_load(old_src, cmk_path, node_id, ca_hash, cmk, why,
                            sizeof why) != 0) {
        snprintf(errmsg, errmsg_len, "the old key does not open it: %s", why);
        return -1; /* cmk wiped by load */
    }
    /* The new KEK is read before anything is written: a bad one changes
     * nothing (wrap_write fails before its write). */
    if (wrap_write(new_src, cmk_path, node_id, ca_hash, cmk, why,
                   sizeof why) != 0) {
        snprintf(errmsg, errmsg_len, "%s", why);
        goto changed;
    }
    /* What is on disk now opens with the new key to the same CMK. */
    if (kyufu_keys_cmk_load(new_src, cmk_path, node_id, ca_hash, again, why,
                            sizeof why) != 0 ||
        CRYPTO_memcmp(cmk, again, sizeof cmk) != 0) {
        snprintf(errmsg, errmsg_len,
                 "%s was written but does not read back with the new key "
                 "(%s): restore it from a backup of the node's keys",
                 cmk_path, why);
        goto changed;
    }
    rv = 0;
    goto out;
changed:
    /* Whether the file is still the old one decides whether the new key
     * may be thrown away: a failure after the rename (its folder fsync)
     * leaves the file under the new key only. */
    if (kyufu_keys_cmk_load(old_src, cmk_path, node_id, ca_hash, again, why,
                            sizeof why) != 0) {
        rv = -2;
    }
out:
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    kyufu_storage_crypto_wipe(again, sizeof again);
    return rv;
}
