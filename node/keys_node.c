/* kyufud's encryption keys at start (docs/encryption.md "Keys"): with a
 * [keys] section, read the KEK (key file or passphrase file), read and
 * unwrap <cmk_file> bound to this node's id and the cluster identity (the
 * SHA-256 of the [tls] ca certificate), and hand the CMK to the store
 * before anything is applied.  Any failure refuses the start with one
 * logged line naming the file at fault and exit status 2 (as a config
 * error: a restart would fail the same way).  A node that joins a running
 * cluster (join = yes, no Raft log yet) and has no CMK file yet gets the
 * CMK from a member instead (keys_fetch.c).  Without [keys], one warning
 * and the node runs as before (encryption at rest off). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "log.h"
#include "node.h"

_Static_assert(sizeof(((struct kyufu_node *)0)->ca_hash) ==
                   KYUFU_KEYS_CA_HASH_BYTES,
               "the node keeps the cluster identity whole");

int kyufu_node__keys_load(struct kyufu_node *n, bool fresh_join,
                          uint8_t cmk[KYUFU_KEYS_KEY_BYTES], bool *have)
{
    const struct kyufu_config *c = n->config;
    char errmsg[600];
    uint8_t *ca_hash = n->ca_hash;
    *have = false;
    if (!c->keys) {
        kyufu_log(KYUFU_LOG_WARN,
                  "encryption at rest is off: the config has no [keys] "
                  "section",
                  KYUFU_LOG_S("config", c->path));
        return 0;
    }
    struct kyufu_keys_source src = {
        .kek_file = c->keys_kek_file[0] != '\0' ? c->keys_kek_file : NULL,
        .passphrase_file =
            c->keys_passphrase_file[0] != '\0' ? c->keys_passphrase_file
                                               : NULL,
    };
    if (kyufu_keys_ca_hash(c->tls_ca, ca_hash, errmsg, sizeof errmsg) != 0) {
        kyufu_log(KYUFU_LOG_ERROR,
                  "refusing to start: the cluster key does not load",
                  KYUFU_LOG_S("error", errmsg));
        return -1;
    }
    if (fresh_join && access(c->keys_cmk_file, F_OK) != 0 &&
        errno == ENOENT) {
        /* A node added later: its KEK must work now, the CMK comes from
         * a member (keys_fetch.c).  A passphrase is checked when the CMK
         * is wrapped under it. */
        uint8_t kek[KYUFU_KEYS_KEY_BYTES];
        if (src.kek_file != NULL &&
            kyufu_keys_kek_read(src.kek_file, kek, errmsg, sizeof errmsg) !=
                0) {
            kyufu_log(KYUFU_LOG_ERROR,
                      "refusing to start: the key-encryption key does not "
                      "load",
                      KYUFU_LOG_S("error", errmsg));
            return -1;
        }
        kyufu_storage_crypto_wipe(kek, sizeof kek);
        return 1;
    }
    if (kyufu_keys_cmk_load(&src, c->keys_cmk_file, c->id, ca_hash, cmk,
                            errmsg, sizeof errmsg) != 0) {
        kyufu_log(KYUFU_LOG_ERROR,
                  "refusing to start: the cluster key does not load",
                  KYUFU_LOG_S("error", errmsg));
        return -1;
    }
    *have = true;
    kyufu_log(KYUFU_LOG_INFO, "cluster key loaded: encryption at rest is on",
              KYUFU_LOG_S("cmk_file", c->keys_cmk_file),
              KYUFU_LOG_S("kek", src.kek_file != NULL ? "key file"
                                                      : "passphrase"));
    return 0;
}
