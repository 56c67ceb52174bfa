/* Encryption keys of a cluster's nodes: see ctl_key.h. */
#include "ctl_key.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "storage.h"

int ctl__key_cmk_new(uint8_t cmk[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                     size_t errmsg_len)
{
    if (RAND_bytes(cmk, KYUFU_KEYS_KEY_BYTES) != 1) {
        kyufu_storage_crypto_wipe(cmk, KYUFU_KEYS_KEY_BYTES);
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL,
                         "no randomness for a new cluster key");
    }
    return 0;
}

int ctl__key_node(const char *kek_dir, const char *cmk_path, uint64_t id,
                  const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                  const uint8_t cmk[KYUFU_KEYS_KEY_BYTES], bool replace,
                  FILE *log, char *errmsg, size_t errmsg_len)
{
    char kek[PATH_MAX + 32];
    char why[600];
    snprintf(kek, sizeof kek, "%s/" CTL__KEK_FILE, kek_dir);
    if (replace) {
        const char *old[] = { kek, cmk_path };
        for (size_t i = 0; i < 2; i++) {
            if (unlink(old[i]) != 0 && errno != ENOENT) {
                return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL,
                                 "remove %s: %s", old[i], strerror(errno));
            }
        }
    }
    if (kyufu_keys_kek_create(kek_dir, CTL__KEK_FILE, why, sizeof why) != 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s", why);
    }
    if (log != NULL) {
        fprintf(log, "wrote %s (0600: node %llu's key-encryption key)\n", kek,
                (unsigned long long)id);
    }
    struct kyufu_keys_source src = { .kek_file = kek };
    if (kyufu_keys_cmk_store(&src, cmk_path, id, ca_hash, cmk, why,
                             sizeof why) != 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "%s", why);
    }
    if (log != NULL) {
        fprintf(log, "wrote %s (0600: the cluster key, wrapped for node %llu)\n",
                cmk_path, (unsigned long long)id);
    }
    return 0;
}
