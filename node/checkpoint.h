/* Signed checkpoints of the audit chain (issue 8; docs/identity.md
 * "Checkpoints"): the chain anchored outside the store.
 *
 * A checkpoint is one line of JSON in an append-only file:
 *
 *   {"v":1,"node":1,"seq":812,"hash":"<64 hex>","time_ms":1764950400000,
 *    "sig":"<hex of a DER ECDSA signature>"}
 *
 * signed (EVP_DigestSign, SHA-256; ECDSA P-256 with the node keys kyufuctl
 * cluster init makes) by the node's TLS private key over the message
 * kyufu_checkpoint_message writes:
 *
 *   "kyufu-audit-checkpoint v1 node=1 seq=812 hash=<64 hex> time_ms=..."
 *
 * so a line can be checked with the node's certificate alone (kyufuctl
 * audit verify --checkpoints FILE --cert NODE_CERT...).  A store whose
 * record `seq` no longer hashes to `hash` was rewritten; one that ends
 * before `seq` was truncated.
 *
 * These functions are pure (no loop, no node): kyufud's timer
 * (checkpoint_node.c) and kyufuctl share them. */
#ifndef KYUFU_NODE_CHECKPOINT_H
#define KYUFU_NODE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

/* The message a checkpoint signs, into buf.  Returns its length, or 0
 * when buf is too small. */
size_t kyufu_checkpoint_message(char *buf,
                                size_t len,
                                uint64_t node,
                                uint64_t seq,
                                const uint8_t hash[32],
                                int64_t time_ms);

/* The whole JSON line (with its '\n') signed by `key`.  0, or -1 with
 * errmsg (a key that cannot sign, a line longer than len). */
int kyufu_checkpoint_line(EVP_PKEY *key,
                          uint64_t node,
                          uint64_t seq,
                          const uint8_t hash[32],
                          int64_t time_ms,
                          char *line,
                          size_t len,
                          char *errmsg,
                          size_t errmsg_len);

/* Whether sig[0..sig_len) is `pub`'s signature of that checkpoint. */
bool kyufu_checkpoint_verify(EVP_PKEY *pub,
                             uint64_t node,
                             uint64_t seq,
                             const uint8_t hash[32],
                             int64_t time_ms,
                             const uint8_t *sig,
                             size_t sig_len);

/* Append `line` to `path` (created 0640 if missing; opened O_APPEND, so
 * lines of several writers never overwrite each other) and fsync it.  0,
 * or -1 with errmsg.  Blocking: never on the loop thread. */
int kyufu_checkpoint_append(const char *path,
                            const char *line,
                            char *errmsg,
                            size_t errmsg_len);

/* Read a PEM private key (0, *out the caller's) or -1 with errmsg. */
int kyufu_checkpoint_load_key(const char *path,
                              EVP_PKEY **out,
                              char *errmsg,
                              size_t errmsg_len);

#endif /* KYUFU_NODE_CHECKPOINT_H */
