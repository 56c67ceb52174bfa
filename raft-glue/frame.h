/* Entry and snapshot framing (internal; docs/raft.md "Entry framing").
 *
 * Every RAFT_COMMAND entry kyufu proposes is
 *
 *   offset 0  u32 magic    "KYFE" (0x4546594b, little endian)
 *   offset 4  u32 version  1
 *   offset 8  u64 term     the proposing leader's current term
 *   offset 16 u64 length   bytes of the protobuf CommandBatch that follows
 *   offset 24 ...          CommandBatch, then zero padding to a multiple of 8
 *
 * The FSM gets no index or term from libraft 0.22.1, so the term travels in
 * the entry (the leader's term at raft_apply is the entry's term) and the
 * index is raft_last_applied() + 1.  The padding is required: 0.22.1 fails
 * an entry whose size is not a multiple of 8.
 *
 * Version 2, sealed (encryption at rest, docs/encryption.md; written when
 * the store holds a cluster master key):
 *
 *   offset 0  u32 magic    "KYFE"
 *   offset 4  u32 version  2
 *   offset 8  u64 term
 *   offset 16 u64 length   bytes of the CommandBatch (= of its ciphertext)
 *   offset 24 u32 key      data key version whose stream subkey sealed it
 *   offset 28 12 bytes     nonce, random
 *   offset 40 ...          AES-256-GCM ciphertext, 16-byte tag, then zero
 *                          padding to a multiple of 8
 *
 * The associated data is the header's first 28 bytes, so term, length and
 * key version are authenticated; the nonce is (GCM's IV).  Padding stays
 * outside the seal and is checked to be zero, as in version 1.
 *
 * A snapshot kyufu writes is a header followed by storage's own
 * self-checking stream.  Version 1 (40 bytes, stream in plaintext):
 *
 *   u32 magic "KYFS", u32 version 1, u64 raft index (raft's last applied
 *   when taken), u64 storage applied index, u64 storage applied term,
 *   u64 reserved 0
 *
 * Version 2 (56 bytes, stream in sealed chunks, seal.h):
 *
 *   u32 magic "KYFS", u32 version 2, u64 raft index, u64 storage applied
 *   index, u64 storage applied term, u32 key version (≥ 1), u32 reserved
 *   0, 16 bytes snapshot id (random: two snapshots at one index never
 *   share their chunks' associated data)
 *
 * Version 3: the layout of version 2; its chunks are sealed under a key of
 * the snapshot's own, derived from the CMK, the key version and the id
 * (kyufu_storage_crypto_snapshot_key), not under the stream subkey
 * (docs/encryption.md "Nonces").  Written for a state whose cluster version
 * is KYUFU_STORAGE_SEAL_COUNT_SINCE or later (no older build installs
 * such a state); versions 1 and 2 are still read.
 */
#ifndef KYUFU_GLUE_FRAME_H
#define KYUFU_GLUE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GLUE_FRAME_MAGIC 0x4546594bu    /* "KYFE" */
#define GLUE_SNAPSHOT_MAGIC 0x5346594bu /* "KYFS" */
#define GLUE_FRAME_VERSION 1u
#define GLUE_FRAME_VERSION_SEALED 2u
#define GLUE_SNAPSHOT_VERSION_OWN_KEY 3u
#define GLUE_FRAME_HEADER_BYTES 24u
#define GLUE_FRAME2_AAD_BYTES 28u     /* the sealed header: magic..key */
#define GLUE_FRAME2_NONCE_BYTES 12u
#define GLUE_FRAME2_TAG_BYTES 16u
#define GLUE_FRAME2_CIPHER_OFFSET 40u /* header + nonce */
#define GLUE_SNAPSHOT_HEADER_BYTES 40u
#define GLUE_SNAPSHOT2_HEADER_BYTES 56u
#define GLUE_SNAPSHOT_ID_BYTES 16u

/* Little-endian integers, as every field above (for seal.c's chunks). */
void glue__le_put32(uint8_t *p, uint32_t v);
void glue__le_put64(uint8_t *p, uint64_t v);
uint32_t glue__le_get32(const uint8_t *p);

/* Size of the framed entry for a payload of `len` bytes. */
size_t glue__frame_size(size_t len);

/* Write header, payload and padding into out (glue__frame_size(len) bytes,
 * 8-byte aligned). */
void glue__frame_write(void *out, uint64_t term, const void *payload,
                       size_t len);

/* Write header and padding around a payload of `len` bytes already placed
 * at offset GLUE_FRAME_HEADER_BYTES of `frame` (glue__frame_size(len)). */
void glue__frame_finish(void *frame, uint64_t term, size_t len);

/* Parse a framed entry.  Returns true and sets *term, *payload, *len when
 * the frame is well formed (magic, version, length, zero padding). */
bool glue__frame_read(const void *buf, size_t size, uint64_t *term,
                      const uint8_t **payload, size_t *len);

/* A parsed entry frame of either version (pointers into the buffer). */
struct glue_frame
{
    uint32_t version;     /* 1 plaintext, 2 sealed */
    uint64_t term;
    uint32_t key_version; /* 2: ≥ 1; 1: 0 */
    const uint8_t *aad;   /* 2: the GLUE_FRAME2_AAD_BYTES header */
    const uint8_t *nonce; /* 2: GLUE_FRAME2_NONCE_BYTES */
    /* 1: the CommandBatch; 2: its ciphertext followed by the tag. */
    const uint8_t *payload;
    size_t len;           /* bytes of the CommandBatch (2: without tag) */
};

/* Size of a sealed (version 2) frame for a CommandBatch of `len` bytes. */
size_t glue__frame2_size(size_t len);

/* Write a version-2 header (offsets 0..28) and the zero padding into
 * `frame` (glue__frame2_size(len) bytes); the sealer (seal.h) writes nonce,
 * ciphertext and tag. */
void glue__frame2_header(void *frame, uint64_t term, uint32_t key_version,
                         size_t len);

/* Parse a frame of version 1 (as glue__frame_read) or 2 (magic, version,
 * term > 0, key version > 0, length, zero padding).  Says nothing about
 * the seal: a version-2 frame is authenticated when it is opened. */
bool glue__frame_parse(const void *buf, size_t size, struct glue_frame *f);

struct glue_snapshot_header
{
    uint64_t raft_index;
    uint64_t storage_index;
    uint64_t storage_term;
    uint32_t key_version; /* 0: version 1 (plaintext stream); else 2 or 3 */
    uint8_t id[GLUE_SNAPSHOT_ID_BYTES]; /* versions 2 and 3 */
    bool own_key;         /* version 3: chunks under the snapshot's key */
};

/* Bytes of the header h describes: 40 (key_version 0) or 56. */
size_t glue__snapshot_header_size(const struct glue_snapshot_header *h);
/* Write glue__snapshot_header_size(h) bytes. */
void glue__snapshot_header_write(void *out,
                                 const struct glue_snapshot_header *h);
/* Either version; the size of what was read is
 * glue__snapshot_header_size(h). */
bool glue__snapshot_header_read(const void *buf, size_t size,
                                struct glue_snapshot_header *h);
/* A kyufu snapshot header (magic) of a version above every one this build
 * reads: written by a newer build.  Its version in *version. */
bool glue__snapshot_header_newer(const void *buf, size_t size,
                                 uint32_t *version);

#endif /* KYUFU_GLUE_FRAME_H */
