/* Encryption keys of a cluster's nodes as kyufuctl makes them (issue 12;
 * docs/encryption.md "Keys", docs/kyufuctl.md "Encryption keys"): a fresh
 * cluster master key (CMK), and for each node a key-encryption key file
 * (KEK, 64 hex digits, 0600 from creation) and the CMK wrapped under it,
 * bound to the node's id and the cluster identity (the SHA-256 of the CA
 * certificate, node/keys.h).  The CMK is only ever in memory, wiped after
 * use; no unwrapped key is written. */
#ifndef KYUFU_CTL_KEY_H
#define KYUFU_CTL_KEY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "keys.h"

/* The KEK file's name in a node's folder (cluster init, node new, key
 * init) and the wrapped CMK's name in a --hosts node folder (installed as
 * <state>/keys/cmk). */
#define CTL__KEK_FILE "kek.key"
#define CTL__CMK_FILE "cmk"

/* A fresh CMK from the CSPRNG into cmk.  0, or KYUFU_CTL_EXIT_LOCAL with
 * errmsg.  The caller wipes it (kyufu_storage_crypto_wipe). */
int ctl__key_cmk_new(uint8_t cmk[KYUFU_KEYS_KEY_BYTES], char *errmsg,
                     size_t errmsg_len);

/* Node `id`'s keys: a new KEK file kek_dir/kek.key and cmk wrapped under
 * it as cmk_path (its folder created 0700).  replace: remove what an
 * earlier run left at those two paths first (cluster init --force, whose
 * data folders hold no node data); otherwise an existing file is refused.
 * "wrote PATH" lines on log (may be NULL).  0, or KYUFU_CTL_EXIT_* with
 * errmsg. */
int ctl__key_node(const char *kek_dir, const char *cmk_path, uint64_t id,
                  const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                  const uint8_t cmk[KYUFU_KEYS_KEY_BYTES], bool replace,
                  FILE *log, char *errmsg, size_t errmsg_len);

#endif /* KYUFU_CTL_KEY_H */
