/* kyufud's encryption keys at start (docs/encryption.md "Keys"): with a
 * [keys] section, read the KEK (key file or passphrase file), read and
 * unwrap <cmk_file> bound to this node's id and the cluster identity (the
 * SHA-256 of the [tls] ca certificate), and hand the CMK to the store
 * before anything is applied.  Any failure refuses the start with one
 * logged line naming the file at fault and exit status 2 (as a config
 * error: a restart would fail the same way).  Without [keys], one warning
 * and the node runs as before (encryption at rest off). */
#include <string.h>

#include "keys.h"
#include "log.h"
#include "node.h"

int kyufu_node__keys_load(const struct kyufu_config *c,
                          uint8_t cmk[KYUFU_KEYS_KEY_BYTES], bool *have)
{
    char errmsg[600];
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES];
    *have = false;
    if (!c->keys) {
        kyufu_log(KYUFU_LOG_WARN,
                  "encryption at rest is off: the config has no [keys] "
                  "section (docs/encryption.md \"Upgrading a cluster\")",
                  KYUFU_LOG_S("config", c->path));
        return 0;
    }
    struct kyufu_keys_source src = {
        .kek_file = c->keys_kek_file[0] != '\0' ? c->keys_kek_file : NULL,
        .passphrase_file =
            c->keys_passphrase_file[0] != '\0' ? c->keys_passphrase_file
                                               : NULL,
    };
    if (kyufu_keys_ca_hash(c->tls_ca, ca_hash, errmsg, sizeof errmsg) != 0 ||
        kyufu_keys_cmk_load(&src, c->keys_cmk_file, c->id, ca_hash, cmk,
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
