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
 * A snapshot kyufu writes is a 40-byte header followed by storage's own
 * self-checking stream:
 *
 *   u32 magic "KYFS", u32 version 1, u64 raft index (raft's last applied
 *   when taken), u64 storage applied index, u64 storage applied term,
 *   u64 reserved 0
 */
#ifndef KYUFU_GLUE_FRAME_H
#define KYUFU_GLUE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GLUE_FRAME_MAGIC 0x4546594bu    /* "KYFE" */
#define GLUE_SNAPSHOT_MAGIC 0x5346594bu /* "KYFS" */
#define GLUE_FRAME_VERSION 1u
#define GLUE_FRAME_HEADER_BYTES 24u
#define GLUE_SNAPSHOT_HEADER_BYTES 40u

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

struct glue_snapshot_header
{
    uint64_t raft_index;
    uint64_t storage_index;
    uint64_t storage_term;
};

void glue__snapshot_header_write(void *out,
                                 const struct glue_snapshot_header *h);
bool glue__snapshot_header_read(const void *buf, size_t size,
                                struct glue_snapshot_header *h);

#endif /* KYUFU_GLUE_FRAME_H */
