/* The key files of encryption at rest (docs/encryption.md "Keys"): a
 * node's key-encryption key (KEK) and its wrapped copy of the cluster
 * master key (CMK).  Shared by kyufud and kyufuctl (a library of its own,
 * like slo.h).  No function logs; errors come back as one line in errmsg.
 * Thread-safe.  Key material returned is the caller's to wipe
 * (kyufu_storage_crypto_wipe).
 *
 * KEK file: exactly 64 hexadecimal digits and an optional newline, mode
 * 0600 (no group or other bit), owned by the user kyufud runs as or root;
 * anything else is refused and no key is returned.  A passphrase KEK is
 * PBKDF2-HMAC-SHA256 of the passphrase (16..1024 bytes) with the salt and
 * round count kept in the CMK file.
 *
 * CMK file (binary, KYUFU_KEYS_CMK_FILE_BYTES, written whole and durably,
 * mode 0600):
 *
 *     "KYUFUCMK" | format 1 (u8) | KEK kind (u8) | 0 (u16) |
 *     PBKDF2 rounds (u32 BE; 0 for a key file) | salt (16) | nonce (12) |
 *     AES-256-GCM(KEK, nonce, CMK) (32) | tag (16)
 *
 * The associated data is the 44 header bytes followed by the caller's
 * binding (the node id and the cluster's identity): a file copied to
 * another node or cluster, or with any header byte changed (a weaker round
 * count, another kind), does not unwrap. */
#ifndef KYUFU_NODE_KEYS_H
#define KYUFU_NODE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KYUFU_KEYS_KEY_BYTES 32u
#define KYUFU_KEYS_SALT_BYTES 16u
#define KYUFU_KEYS_CMK_FILE_BYTES 92u
#define KYUFU_KEYS_PASSPHRASE_BYTES_MIN 16u
#define KYUFU_KEYS_PASSPHRASE_BYTES_MAX 1024u
/* New passphrase KEKs: the password hashes' count (api/pwhash.h), about
 * 0.13 s of one core here.  Files with fewer rounds than the minimum, or
 * more than the maximum (a hostile file must not make a start spin for
 * minutes), are refused. */
#define KYUFU_KEYS_PBKDF2_ROUNDS 600000u
#define KYUFU_KEYS_PBKDF2_ROUNDS_MIN 100000u
#define KYUFU_KEYS_PBKDF2_ROUNDS_MAX 10000000u
/* The binding's longest length (AAD after the header). */
#define KYUFU_KEYS_BIND_BYTES_MAX 256u

enum kyufu_keys_kek_kind {
    KYUFU_KEYS_KEK_FILE = 1,
    KYUFU_KEYS_KEK_PASSPHRASE = 2,
};

/* Read the KEK file at path into kek.  0, or -1 with errmsg (kek wiped). */
int kyufu_keys_kek_read(const char *path,
                        uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                        char *errmsg,
                        size_t errmsg_len);

/* Create a new KEK file at dir/name from the CSPRNG (fails if the file
 * exists: a key is never overwritten).  0, or -1 with errmsg. */
int kyufu_keys_kek_create(const char *dir,
                          const char *name,
                          char *errmsg,
                          size_t errmsg_len);

/* The KEK of a passphrase.  0, or -1 with errmsg (a passphrase outside
 * 16..1024 bytes, rounds outside the bounds, OpenSSL failure). */
int kyufu_keys_kek_from_passphrase(const char *passphrase,
                                   size_t len,
                                   const uint8_t salt[KYUFU_KEYS_SALT_BYTES],
                                   uint32_t rounds,
                                   uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                                   char *errmsg,
                                   size_t errmsg_len);

/* A CMK file's header, read before the KEK is known (a passphrase KEK
 * needs its salt and rounds). */
struct kyufu_keys_cmk_file
{
    enum kyufu_keys_kek_kind kind;
    uint32_t rounds;
    uint8_t salt[KYUFU_KEYS_SALT_BYTES];
    uint8_t raw[KYUFU_KEYS_CMK_FILE_BYTES];
};

/* Seal cmk under kek and write it as dir/name.  kind and rounds/salt say
 * how the KEK was obtained (rounds 0 and salt ignored for a key file; for
 * a passphrase, the salt and rounds it was derived with).  The nonce comes
 * from the CSPRNG (a CMK is wrapped a handful of times per KEK).  0, or -1
 * with errmsg. */
int kyufu_keys_cmk_write(const char *dir,
                         const char *name,
                         enum kyufu_keys_kek_kind kind,
                         uint32_t rounds,
                         const uint8_t salt[KYUFU_KEYS_SALT_BYTES],
                         const uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                         const uint8_t *bind,
                         size_t bind_len,
                         const uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                         char *errmsg,
                         size_t errmsg_len);

/* Read and check the shape of a CMK file (private, exact size, magic,
 * format, kind, rounds within bounds).  0, or -1 with errmsg. */
int kyufu_keys_cmk_read(const char *path,
                        struct kyufu_keys_cmk_file *out,
                        char *errmsg,
                        size_t errmsg_len);

/* Unwrap the CMK of a file read above.  0, or -1 with errmsg: "wrong key,
 * wrong node or cluster, or a damaged file" when the tag does not verify
 * (cmk wiped). */
int kyufu_keys_cmk_unwrap(const struct kyufu_keys_cmk_file *f,
                          const uint8_t kek[KYUFU_KEYS_KEY_BYTES],
                          const uint8_t *bind,
                          size_t bind_len,
                          uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                          char *errmsg,
                          size_t errmsg_len);

/* ---- A node's keys as kyufud and kyufuctl use them (keys_load.c) ----
 *
 * Cluster identity (docs/encryption.md "Keys"): the SHA-256 of the DER of
 * the cluster CA certificate (the first certificate of the [tls] ca file).
 * The binding of node N's CMK file is "node " <decimal N> 0x00 <that
 * hash>: a file copied to another node or another cluster (a restored
 * cluster has a new CA) does not unwrap. */
#define KYUFU_KEYS_CA_HASH_BYTES 32u

/* The SHA-256 of the first certificate's DER in the PEM file at path.
 * 0, or -1 with errmsg. */
int kyufu_keys_ca_hash(const char *path,
                       uint8_t out[KYUFU_KEYS_CA_HASH_BYTES],
                       char *errmsg,
                       size_t errmsg_len);

/* Node node_id's binding into out (at least KYUFU_KEYS_BIND_BYTES_MAX
 * bytes); returns its length. */
size_t kyufu_keys_bind_node(uint64_t node_id,
                            const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                            uint8_t *out);

/* Where a node's KEK comes from: exactly one of the two is a path, the
 * other NULL ([keys] kek_file / passphrase_file).  A passphrase file is
 * read whole, must be private (as a key file), and holds the passphrase
 * (16..1024 bytes) with at most one newline at its end, removed. */
struct kyufu_keys_source
{
    const char *kek_file;
    const char *passphrase_file;
};

/* Read the CMK of node node_id from the CMK file at cmk_path with the KEK
 * of src, bound to ca_hash.  0, or -1 with errmsg naming the file at
 * fault (cmk wiped).  Every intermediate key is wiped. */
int kyufu_keys_cmk_load(const struct kyufu_keys_source *src,
                        const char *cmk_path,
                        uint64_t node_id,
                        const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                        uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                        char *errmsg,
                        size_t errmsg_len);

/* Wrap cmk for node node_id under the KEK of src (a passphrase: a fresh
 * salt and KYUFU_KEYS_PBKDF2_ROUNDS) and write it durably as cmk_path,
 * creating its folder (0700) when missing.  Refuses (-1, errmsg) when
 * cmk_path exists: a wrapped key is never overwritten here.  0, or -1. */
int kyufu_keys_cmk_store(const struct kyufu_keys_source *src,
                         const char *cmk_path,
                         uint64_t node_id,
                         const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                         const uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                         char *errmsg,
                         size_t errmsg_len);

/* Re-wrap node node_id's CMK file at cmk_path under a new KEK (docs/
 * encryption.md "Rotation", `kyufuctl key rewrap`): unwrap it with
 * old_src, wrap it under new_src (a passphrase: a fresh salt) and replace
 * the file durably (a temporary file, fsync, rename, folder fsync), then
 * check that it opens with new_src.  Refuses (-1, errmsg), with the file
 * unchanged, when old_src does not open it or new_src cannot be read.
 * -2 when it failed after the file may have been replaced (a failed
 * folder fsync after the rename, a failed read-back): old_src no longer
 * opens it, so new_src's key must be kept.  Every key is wiped.  0, -1 or
 * -2. */
int kyufu_keys_cmk_rewrap(const struct kyufu_keys_source *old_src,
                          const struct kyufu_keys_source *new_src,
                          const char *cmk_path,
                          uint64_t node_id,
                          const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                          char *errmsg,
                          size_t errmsg_len);

/* ---- A joining node's CMK, handed over by a member (keys_handover.c;
 * api/kyufu/v1/service.proto FetchClusterKey).  Both sides make an
 * ephemeral ECDH P-256 key; K = HKDF-SHA256(ECDH secret, salt = CA hash,
 * info); info = "kyufu cmk handover v1" | joiner id (u64 BE) | joiner's
 * public key | member's public key; the CMK is sealed with AES-256-GCM
 * under K with a random nonce and info as associated data.  So the CMK
 * is never in plaintext on the wire, in TLS buffers or a capture, and a
 * sealed key is bound to one joiner id, one cluster and one exchange. */
#define KYUFU_KEYS_HANDOVER_PUB_BYTES 65u /* uncompressed P-256 point */
#define KYUFU_KEYS_HANDOVER_NONCE_BYTES 12u
#define KYUFU_KEYS_HANDOVER_SEALED_BYTES 48u /* CMK + GCM tag */

/* The joiner's side: begin makes its ephemeral key (pub filled); finish
 * opens a member's answer into cmk; free releases the ephemeral key
 * (always, after begin returned 0). */
struct kyufu_keys_handover
{
    void *eph; /* EVP_PKEY */
    uint8_t pub[KYUFU_KEYS_HANDOVER_PUB_BYTES];
};
int kyufu_keys_handover_begin(struct kyufu_keys_handover *h,
                              char *errmsg,
                              size_t errmsg_len);
/* 0, or -1 with errmsg (a malformed public key, a sealed key that does
 * not open: cmk wiped). */
int kyufu_keys_handover_finish(
    const struct kyufu_keys_handover *h,
    uint64_t joiner_id,
    const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
    const uint8_t *member_pub,
    size_t member_pub_len,
    const uint8_t *nonce,
    size_t nonce_len,
    const uint8_t *sealed,
    size_t sealed_len,
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
    char *errmsg,
    size_t errmsg_len);
void kyufu_keys_handover_free(struct kyufu_keys_handover *h);

/* The member's side: seal cmk for joiner joiner_id whose public key is
 * joiner_pub (checked: a point on P-256).  0, or -1 with errmsg. */
int kyufu_keys_handover_seal(
    uint64_t joiner_id,
    const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
    const uint8_t *joiner_pub,
    size_t joiner_pub_len,
    const uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
    uint8_t member_pub[KYUFU_KEYS_HANDOVER_PUB_BYTES],
    uint8_t nonce[KYUFU_KEYS_HANDOVER_NONCE_BYTES],
    uint8_t sealed[KYUFU_KEYS_HANDOVER_SEALED_BYTES],
    char *errmsg,
    size_t errmsg_len);

#endif /* KYUFU_NODE_KEYS_H */
