/* Sealing what kyufu hands to Raft (internal; docs/encryption.md "What is
 * ciphertext on disk", docs/raft.md "Entry framing", "Sealed snapshots").
 *
 * When the store holds a cluster master key, every command entry the
 * proposer writes is a version-2 frame (frame.h) and every snapshot the FSM
 * writes is a version-2 header followed by sealed chunks, all under
 * AES-256-GCM with the `stream` subkey of a data key version and a random
 * 96-bit nonce drawn here (OpenSSL RAND_bytes; only the leader's proposer
 * and the snapshot writer seal, never apply).  Opening never reads a random
 * source.  A node without a key reads and writes version 1 (plaintext) as
 * before, and every node still reads version 1 (old logs and snapshots).
 *
 * Sealed snapshot stream, after the 56-byte header, chunk after chunk
 * (little endian):
 *
 *   u32 length n (≤ KYUFU_SNAPSHOT_CHUNK_BYTES_MAX), u32 flags (bit 0:
 *   last chunk; other bits 0), 12 bytes nonce, n bytes ciphertext, 16
 *   bytes tag
 *
 * with associated data = u64 chunk number (0, 1, ...) ‖ the chunk's length
 * and flags ‖ the whole snapshot header (its random id included).  So a
 * chunk moved to another place, a stream cut after any chunk but the last,
 * bytes after the last chunk, and chunks spliced in from another snapshot
 * are all refused, besides any flipped byte.
 *
 * Keys: a struct glue_stream_key holds one version's stream subkey, derived
 * once from the store's CMK, or one snapshot's key (format 3, frame.h: each
 * snapshot's chunks under a key of their own, derived from the CMK, so
 * they take none of the stream subkey's nonce budget), and is wiped by its
 * owner (glue__stream_key_wipe) when it is dropped.  Functions are safe on any thread for distinct keys. */
#ifndef KYUFU_GLUE_SEAL_H
#define KYUFU_GLUE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "storage.h"

#define GLUE_CHUNK_HEAD_BYTES 20u /* length, flags, nonce */
#define GLUE_CHUNK_FLAG_LAST 1u

/* Zero-initialise before the first load; glue__stream_key_wipe frees. */
struct glue_stream_key
{
    uint32_t version;             /* 0: none loaded */
    struct kyufu_crypto_key *key; /* the stream subkey, keyed; NULL: none */
    bool snapshot;                /* one snapshot's key, not the subkey */
};

/* Make *k hold the stream subkey of `version` (a no-op when it already
 * does).  Returns 0, KYUFU_STORAGE_EINVALID (the store has no CMK, or
 * version 0) or KYUFU_STORAGE_ENOMEM; *k is empty after a failure. */
int glue__stream_key_load(const struct kyufu_storage *s, uint32_t version,
                          struct glue_stream_key *k);

/* Make *k hold the key of one format-3 snapshot's chunks: derived from the
 * store's CMK, `version` and the snapshot's id (frame.h;
 * kyufu_storage_keys_snapshot_key; a fresh key each call, k->version =
 * version).  Errors as glue__stream_key_load. */
int glue__snapshot_key_load(const struct kyufu_storage *s, uint32_t version,
                            const uint8_t id[GLUE_SNAPSHOT_ID_BYTES],
                            struct glue_stream_key *k);

/* The key a sealed snapshot's chunks were sealed under, from its header:
 * the stream subkey (format 2) or the snapshot's own (format 3). */
int glue__snapshot_header_key(const struct kyufu_storage *s,
                              const struct glue_snapshot_header *h,
                              struct glue_stream_key *k);

/* Whether a snapshot of the store's state now is written in format 3: its
 * cluster version is KYUFU_STORAGE_SEAL_COUNT_SINCE or later (the loop
 * thread, as kyufu_storage_cluster_version). */
bool glue__snapshot_own_key(struct kyufu_storage *s);

void glue__stream_key_wipe(struct glue_stream_key *k);

/* Seal the CommandBatch `plain` (len bytes, not overlapping frame) into
 * `frame`, glue__frame2_size(len) bytes, 8-byte aligned: header, a fresh
 * nonce, ciphertext, tag, padding.  Returns 0 or a KYUFU_CRYPTO_E* code
 * (also when the random source fails); the frame is then unusable. */
int glue__entry_seal(const struct glue_stream_key *k, void *frame,
                     uint64_t term, const uint8_t *plain, size_t len);

/* Open a parsed version-2 frame (k holds f->key_version's key) into `out`
 * (f->len bytes).  Returns 0, or KYUFU_CRYPTO_EAUTH when the tag does not
 * verify (tampered bytes or another key): out is then wiped. */
int glue__entry_open(const struct glue_stream_key *k,
                     const struct glue_frame *f, uint8_t *out);

/* Bytes a chunk of `len` plaintext bytes takes sealed. */
size_t glue__chunk_sealed_size(size_t len);

/* Seal chunk `number` of a snapshot whose header is `header` (its
 * glue__snapshot_header_size bytes) into `out` (glue__chunk_sealed_size(len)
 * bytes).  `plain` is either disjoint from out or exactly out +
 * GLUE_CHUNK_HEAD_BYTES (sealed in place: GCM encrypts in place).  len ≤
 * KYUFU_SNAPSHOT_CHUNK_BYTES_MAX.  Returns 0 or a KYUFU_CRYPTO_E* code. */
int glue__chunk_seal(const struct glue_stream_key *k, const uint8_t *header,
                     size_t header_len, uint64_t number, bool last,
                     const uint8_t *plain, size_t len, uint8_t *out);

/* Open the sealed chunks that follow a version-2 header in buf (size
 * bytes; header_len the header's size) in place: on success the plaintext
 * stream is at buf + header_len, *plain_len bytes.  Every chunk is
 * authenticated before this returns 0; on failure buf's contents are
 * undefined (partly overwritten) and errmsg says which chunk and why.
 * Returns 0, KYUFU_STORAGE_ECORRUPT (malformed, failed authentication,
 * truncated, trailing bytes) or KYUFU_STORAGE_ENOMEM. */
int glue__snapshot_open(const struct glue_stream_key *k, uint8_t *buf,
                        size_t size, size_t header_len, size_t *plain_len,
                        char *errmsg, size_t errmsg_len);

#endif /* KYUFU_GLUE_SEAL_H */
