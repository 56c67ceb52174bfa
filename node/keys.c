/* Key files of encryption at rest: see keys.h. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "small_file.h"
#include "storage.h"

#define CMK_MAGIC "KYUFUCMK"
#define CMK_FORMAT 1u
#define CMK_HEADER_BYTES 44u /* magic 8, format, kind, 0 (2), rounds, salt, nonce */
#define CMK_NONCE_OFF 32u
#define KEK_HEX_DIGITS 64u

_Static_assert(CMK_HEADER_BYTES + KYUFU_KEYS_KEY_BYTES +
                       KYUFU_CRYPTO_TAG_BYTES ==
                   KYUFU_KEYS_CMK_FILE_BYTES,
               "CMK file layout");
_Static_assert(KYUFU_KEYS_KEY_BYTES == KYUFU_CRYPTO_KEY_BYTES, "key size");
_Static_assert(KYUFU_KEYS_SALT_BYTES == KYUFU_CRYPTO_SALT_BYTES, "salt");

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char *read_error(ssize_t n)
{
    switch (n) {
    case KYUFU_SMALL_FILE_ESHAPE:
        return "not a regular file of the expected size";
    case KYUFU_SMALL_FILE_EPRIVATE:
        return "readable or writable by group or others, or owned by "
               "another user (it must be 0600, owned by the user kyufud "
               "runs as: chmod 600 and chown it)";
    default:
        return strerror(errno);
    }
}

int kyufu_keys_kek_read(const char *path, uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                        char *errmsg, size_t errmsg_len)
{
    char text[KEK_HEX_DIGITS + 3];
    int rv = -1;
    ssize_t n = kyufu_small_file_read(path, text, sizeof text, true);
    if (n < 0) {
        snprintf(errmsg, errmsg_len, "key file %s: %s", path, read_error(n));
        goto out;
    }
    size_t len = (size_t)n;
    if (len == KEK_HEX_DIGITS + 1 && text[KEK_HEX_DIGITS] == '\n')
        len--;
    if (len != KEK_HEX_DIGITS) {
        snprintf(errmsg, errmsg_len,
                 "key file %s: not a key (64 hexadecimal digits and an "
                 "optional newline expected)",
                 path);
        goto out;
    }
    for (size_t i = 0; i < KYUFU_KEYS_KEY_BYTES; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(errmsg, errmsg_len,
                     "key file %s: not a key (a character that is not a "
                     "hexadecimal digit)",
                     path);
            goto out;
        }
        kek[i] = (uint8_t)(hi << 4 | lo);
    }
    rv = 0;
out:
    kyufu_storage_crypto_wipe(text, sizeof text);
    if (rv != 0)
        kyufu_storage_crypto_wipe(kek, KYUFU_KEYS_KEY_BYTES);
    return rv;
}

int kyufu_keys_kek_create(const char *dir, const char *name, char *errmsg,
                          size_t errmsg_len)
{
    static const char digits[] = "0123456789abcdef";
    char path[KYUFU_SMALL_FILE_PATH_BYTES];
    uint8_t key[KYUFU_KEYS_KEY_BYTES];
    char text[KEK_HEX_DIGITS + 1];
    int rv = -1, fd = -1;
    bool created = false;
    if (kyufu_small_file_join(path, dir, name, errmsg, errmsg_len) != 0)
        return -1;
    if (RAND_bytes(key, sizeof key) != 1) {
        snprintf(errmsg, errmsg_len, "no randomness for a new key");
        goto out;
    }
    for (size_t i = 0; i < sizeof key; i++) {
        text[2 * i] = digits[key[i] >> 4];
        text[2 * i + 1] = digits[key[i] & 15];
    }
    text[KEK_HEX_DIGITS] = '\n';
    /* Never over an existing key: O_EXCL.  A crash before the fsync may
     * leave a short file, which kyufu_keys_kek_read refuses (an error
     * here removes it). */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "create %s: %s", path, strerror(errno));
        goto out;
    }
    created = true;
    errno = 0;
    if (write(fd, text, sizeof text) != (ssize_t)sizeof text ||
        fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "write %s: %s", path,
                 errno != 0 ? strerror(errno) : "short write");
        goto out;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        snprintf(errmsg, errmsg_len, "close %s: %s", path, strerror(errno));
        goto out;
    }
    rv = kyufu_small_file_sync_dir(dir, errmsg, errmsg_len);
out:
    if (fd >= 0)
        close(fd);
    /* A file this call created but could not finish is no key: removed,
     * so that the next create can succeed. */
    if (rv != 0 && created)
        unlink(path);
    kyufu_storage_crypto_wipe(key, sizeof key);
    kyufu_storage_crypto_wipe(text, sizeof text);
    return rv;
}

int kyufu_keys_kek_from_passphrase(const char *passphrase, size_t len,
                                   const uint8_t salt[KYUFU_KEYS_SALT_BYTES],
                                   uint32_t rounds,
                                   uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                                   char *errmsg, size_t errmsg_len)
{
    if (len < KYUFU_KEYS_PASSPHRASE_BYTES_MIN ||
        len > KYUFU_KEYS_PASSPHRASE_BYTES_MAX) {
        snprintf(errmsg, errmsg_len,
                 "the passphrase must be %u to %u bytes long",
                 KYUFU_KEYS_PASSPHRASE_BYTES_MIN,
                 KYUFU_KEYS_PASSPHRASE_BYTES_MAX);
        return -1;
    }
    if (rounds < KYUFU_KEYS_PBKDF2_ROUNDS_MIN ||
        rounds > KYUFU_KEYS_PBKDF2_ROUNDS_MAX) {
        snprintf(errmsg, errmsg_len, "PBKDF2 rounds %u outside %u..%u",
                 (unsigned)rounds, KYUFU_KEYS_PBKDF2_ROUNDS_MIN,
                 KYUFU_KEYS_PBKDF2_ROUNDS_MAX);
        return -1;
    }
    if (PKCS5_PBKDF2_HMAC(passphrase, (int)len, salt, KYUFU_KEYS_SALT_BYTES,
                          (int)rounds, EVP_sha256(), KYUFU_KEYS_KEY_BYTES,
                          kek) != 1) {
        kyufu_storage_crypto_wipe(kek, KYUFU_KEYS_KEY_BYTES);
        snprintf(errmsg, errmsg_len, "PBKDF2 failed in OpenSSL");
        return -1;
    }
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* AAD = header ‖ binding, into aad (CMK_HEADER_BYTES + bind_len). */
static int make_aad(const uint8_t *header, const uint8_t *bind,
                    size_t bind_len, uint8_t *aad, char *errmsg,
                    size_t errmsg_len)
{
    if (bind_len > KYUFU_KEYS_BIND_BYTES_MAX || (bind == NULL && bind_len)) {
        snprintf(errmsg, errmsg_len, "key binding longer than %u bytes",
                 KYUFU_KEYS_BIND_BYTES_MAX);
        return -1;
    }
    memcpy(aad, header, CMK_HEADER_BYTES);
    if (bind_len > 0)
        memcpy(aad + CMK_HEADER_BYTES, bind, bind_len);
    return 0;
}

int kyufu_keys_cmk_write(const char *dir, const char *name,
                         enum kyufu_keys_kek_kind kind, uint32_t rounds,
                         const uint8_t salt[KYUFU_KEYS_SALT_BYTES],
                         const uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                         const uint8_t *bind, size_t bind_len,
                         const uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                         char *errmsg, size_t errmsg_len)
{
    uint8_t file[KYUFU_KEYS_CMK_FILE_BYTES];
    uint8_t aad[CMK_HEADER_BYTES + KYUFU_KEYS_BIND_BYTES_MAX];
    if (kind != KYUFU_KEYS_KEK_FILE && kind != KYUFU_KEYS_KEK_PASSPHRASE) {
        snprintf(errmsg, errmsg_len, "unknown key-encryption key kind");
        return -1;
    }
    if (kind == KYUFU_KEYS_KEK_PASSPHRASE &&
        (rounds < KYUFU_KEYS_PBKDF2_ROUNDS_MIN ||
         rounds > KYUFU_KEYS_PBKDF2_ROUNDS_MAX)) {
        snprintf(errmsg, errmsg_len, "PBKDF2 rounds %u outside %u..%u",
                 (unsigned)rounds, KYUFU_KEYS_PBKDF2_ROUNDS_MIN,
                 KYUFU_KEYS_PBKDF2_ROUNDS_MAX);
        return -1;
    }
    memset(file, 0, sizeof file);
    memcpy(file, CMK_MAGIC, 8);
    file[8] = CMK_FORMAT;
    file[9] = (uint8_t)kind;
    if (kind == KYUFU_KEYS_KEK_PASSPHRASE) {
        put_u32(file + 12, rounds);
        memcpy(file + 16, salt, KYUFU_KEYS_SALT_BYTES);
    }
    if (RAND_bytes(file + CMK_NONCE_OFF, KYUFU_CRYPTO_NONCE_BYTES) != 1) {
        snprintf(errmsg, errmsg_len, "no randomness for a nonce");
        return -1;
    }
    if (make_aad(file, bind, bind_len, aad, errmsg, errmsg_len) != 0)
        return -1;
    int rv = kyufu_storage_crypto_seal(kek, file + CMK_NONCE_OFF, aad,
                                       CMK_HEADER_BYTES + bind_len, cmk,
                                       KYUFU_KEYS_KEY_BYTES,
                                       file + CMK_HEADER_BYTES);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "sealing the key: %s",
                 kyufu_storage_crypto_strerror(rv));
        return -1;
    }
    return kyufu_small_file_write(dir, name, file, sizeof file, errmsg,
                                  errmsg_len);
}

int kyufu_keys_cmk_read(const char *path, struct kyufu_keys_cmk_file *out,
                        char *errmsg, size_t errmsg_len)
{
    uint8_t buf[KYUFU_KEYS_CMK_FILE_BYTES + 1];
    ssize_t n = kyufu_small_file_read(path, buf, sizeof buf, true);
    if (n < 0) {
        snprintf(errmsg, errmsg_len, "key file %s: %s", path, read_error(n));
        return -1;
    }
    const char *why = NULL;
    if ((size_t)n != KYUFU_KEYS_CMK_FILE_BYTES ||
        memcmp(buf, CMK_MAGIC, 8) != 0) {
        why = "not a kyufu cluster key file";
    } else if (buf[8] != CMK_FORMAT) {
        why = "written in an unknown format (a newer kyufu?)";
    } else if (buf[9] != KYUFU_KEYS_KEK_FILE &&
               buf[9] != KYUFU_KEYS_KEK_PASSPHRASE) {
        why = "names an unknown key-encryption key kind";
    } else if (buf[10] != 0 || buf[11] != 0) {
        why = "has reserved bytes set";
    }
    if (why == NULL) {
        out->kind = (enum kyufu_keys_kek_kind)buf[9];
        out->rounds = (uint32_t)buf[12] << 24 | (uint32_t)buf[13] << 16 |
                      (uint32_t)buf[14] << 8 | buf[15];
        if (out->kind == KYUFU_KEYS_KEK_PASSPHRASE &&
            (out->rounds < KYUFU_KEYS_PBKDF2_ROUNDS_MIN ||
             out->rounds > KYUFU_KEYS_PBKDF2_ROUNDS_MAX)) {
            why = "names a PBKDF2 round count out of bounds";
        }
    }
    if (why != NULL) {
        snprintf(errmsg, errmsg_len, "key file %s: %s", path, why);
        return -1;
    }
    memcpy(out->salt, buf + 16, KYUFU_KEYS_SALT_BYTES);
    memcpy(out->raw, buf, KYUFU_KEYS_CMK_FILE_BYTES);
    return 0;
}

int kyufu_keys_cmk_unwrap(const struct kyufu_keys_cmk_file *f,
                          const uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                          const uint8_t *bind, size_t bind_len,
                          uint8_t cmk[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                          size_t errmsg_len)
{
    uint8_t aad[CMK_HEADER_BYTES + KYUFU_KEYS_BIND_BYTES_MAX];
    if (make_aad(f->raw, bind, bind_len, aad, errmsg, errmsg_len) != 0)
        return -1;
    int rv = kyufu_storage_crypto_open(
        kek, f->raw + CMK_NONCE_OFF, aad, CMK_HEADER_BYTES + bind_len,
        f->raw + CMK_HEADER_BYTES,
        KYUFU_KEYS_KEY_BYTES + KYUFU_CRYPTO_TAG_BYTES, cmk);
    if (rv == KYUFU_CRYPTO_EAUTH) {
        snprintf(errmsg, errmsg_len,
                 "the cluster key does not unwrap: wrong key-encryption key "
                 "or passphrase, a file of another node or cluster, or a "
                 "damaged file");
        return -1;
    }
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "unwrapping the cluster key: %s",
                 kyufu_storage_crypto_strerror(rv));
        return -1;
    }
    return 0;
}
