/* Open Raft segments checked before raft_uv loads them (internal;
 * docs/raft.md "Damaged open segments").
 *
 * raft_uv 0.22.1 reads an open segment (`open-N`, preallocated to the
 * segment size and filled batch by batch) as a sequence of batches
 *
 *   u32 header CRC | u32 data CRC | u64 n | n × (u64 term, u8 type,
 *   3 unused, u32 length) | the n entries' data
 *
 * after a u64 format word (1), all little endian, the CRCs libiberty's
 * crc32 (MSB first, polynomial 0x04c11db7, initial value 0, no final xor)
 * over the header from `n` on and over the data.  Two of its reactions to
 * damage are wrong for kyufu:
 *
 *  - A batch that fails its checksum is taken for a write torn by a crash,
 *    and it and everything after it are dropped in silence, although a
 *    torn write can only be the last batch written: a damaged batch
 *    followed by an intact one is a damaged file, and dropping it loses
 *    entries this node stored and acknowledged.
 *  - A batch that runs past the end of the file (a cut file: raft_uv never
 *    writes one, its open segments are preallocated) takes an error path
 *    that frees the segment's buffer twice: SIGABRT at every start.
 *
 * glue__segments_check reads every `open-*` file of dir the way raft_uv
 * will and refuses both (the node then stops with "the raft log holds
 * data this node refuses", exit 4, and the operator replaces it:
 * docs/operations.md "Replacing a node").  A batch that fails its checksum
 * with nothing intact after it, an empty or all-zero file, a format word
 * other than 1 (raft_uv refuses it itself, cleanly) pass: raft_uv's own
 * handling of them is right.
 *
 * Returns 0, or -1 with a one-line reason in errmsg (file, batch number,
 * byte offset).  Reads whole files; called once at start. */
#ifndef KYUFU_GLUE_SEGMENT_CHECK_H
#define KYUFU_GLUE_SEGMENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

int glue__segments_check(const char *dir, char *errmsg, size_t errmsg_len);

/* One segment's bytes (the file read whole); name for messages. */
int glue__segment_check(const char *name,
                        const uint8_t *buf,
                        size_t len,
                        char *errmsg,
                        size_t errmsg_len);

/* raft_uv's checksum (above), for tests that build segments. */
uint32_t glue__segment_crc(const void *buf, size_t len, uint32_t init);

#endif /* KYUFU_GLUE_SEGMENT_CHECK_H */
