/* A snapshot's stream in an unnamed file, mapped read-only (internal).
 *
 * raft_uv's snapshot_put takes a snapshot as buffers in memory.  Built on
 * the heap, a node's snapshot of a 1 GB ledger is 1 GB of anonymous memory
 * the process faults in (and hands back to the system after) at every
 * snapshot.  Written instead, chunk by chunk through one reused buffer
 * (chunk_sink.h), to an unnamed file (O_TMPFILE) in the Raft directory and
 * handed over as a read-only mapping, it is page cache, not the process's
 * anonymous memory: the kernel may write it back and drop it, and the file
 * vanishes when unmapped (a crash leaves nothing).  Used by the node's own
 * snapshots (snapshot_io.c) and a restored cluster's seeds (seed.c);
 * design and costs in docs/snapshot-file.md. */
#ifndef KYUFU_GLUE_STREAM_FILE_H
#define KYUFU_GLUE_STREAM_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "storage.h"

struct glue_stream_file
{
    int fd;      /* while writing (-1 otherwise: the mapping keeps it) */
    void *map;   /* NULL: none */
    size_t len;  /* the stream's bytes (the mapping's length) */
    int err;     /* errno of the file system's refusal; 0: none */
    const char *what; /* the step refused */
};

/* Write the stream of `snap` (sealed behind `header` when key != NULL) to
 * a new unnamed file in dir and map it, once dir's file system has `room`
 * bytes available (statvfs; the caller's estimate of this file, raft_uv's
 * copy and its log segments: a snapshot must not be what fills the disk
 * raft_uv appends to).  Returns 0 (f->map, f->len set), the store's
 * KYUFU_STORAGE_E* code when the stream failed (f->err 0), or
 * KYUFU_STORAGE_EIO with f->err and f->what set when the file system
 * refused (ENOSPC from the room check included): a full disk is no
 * reason to stop the node.  Nothing is left open or mapped on failure. */
int glue__stream_file_write(struct glue_stream_file *f, const char *dir,
                            uint64_t room,
                            struct kyufu_storage_snapshot *snap,
                            const struct glue_stream_key *key,
                            const uint8_t *header, size_t header_len);

/* Whether dir takes unnamed files: 0, or -1 with errmsg said. */
int glue__stream_file_probe(const char *dir, char *errmsg, size_t errmsg_len);

/* Unmap (the file goes); f is then empty.  Safe on an empty f. */
void glue__stream_file_close(struct glue_stream_file *f);

#endif /* KYUFU_GLUE_STREAM_FILE_H */
