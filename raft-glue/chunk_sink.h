/* Where a snapshot's stream goes, chunk by chunk (internal).
 *
 * storage's snapshot writer hands out its stream in chunks of at most
 * KYUFU_SNAPSHOT_CHUNK_BYTES_MAX.  A sink takes them in order: plaintext
 * as they come, or, when it has a key, each sealed one chunk behind so
 * that the last carries the last flag (seal.h).  A sealed chunk is sealed
 * where storage wrote it: the sink allocates every chunk with room for the
 * seal's head before it and its tag after it, so a snapshot is never held
 * or faulted in twice.
 *
 * The FSM's inline snapshots keep the chunks as Raft buffers
 * (glue__chunk_sink_buffers); node snapshots and a restored cluster's
 * seeds write them to an unnamed file (stream_file.h), reusing one buffer. */
#ifndef KYUFU_GLUE_CHUNK_SINK_H
#define KYUFU_GLUE_CHUNK_SINK_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "storage.h"

struct glue_chunk_sink
{
    const struct glue_stream_key *key; /* NULL: plaintext */
    const uint8_t *header;             /* the snapshot's header (sealing) */
    size_t header_len;
    /* Takes one finished chunk: len bytes at buf, buf raft_malloc'ed (its
     * allocation's start).  It owns buf from then on, also when it fails;
     * it may leave it in `spare` (when empty) for the next chunk.  0, or a
     * KYUFU_STORAGE_E* code that stops the stream. */
    int (*out)(struct glue_chunk_sink *k, void *buf, size_t len);
    void *arg; /* out's own */
    void *spare;  /* a buffer out gave back, for the next chunk */
    size_t cap;   /* every buffer's chunk capacity (set at the first) */
    uint64_t number; /* sealed chunks handed out */
    void *pending;   /* the chunk behind, not yet sealed */
    size_t pending_len;
};

/* Write the stream of `snap` into k (key, header, out and arg set, the rest
 * zero), the last chunk included.  Returns 0 or the first error (storage's
 * or out's); whatever is pending or spare is freed either way. */
int glue__chunk_sink_write(struct glue_chunk_sink *k,
                           struct kyufu_storage_snapshot *snap);

/* An `out` that appends each chunk to an array of Raft buffers: arg is a
 * struct glue_chunk_buffers. */
struct glue_chunk_buffers
{
    struct raft_buffer *bufs;
    unsigned n;
};
int glue__chunk_sink_buffers(struct glue_chunk_sink *k, void *buf, size_t len);

#endif /* KYUFU_GLUE_CHUNK_SINK_H */
