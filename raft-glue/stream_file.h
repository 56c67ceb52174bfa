/* A snapshot's stream in an unnamed file, mapped read-only (internal).
 *
 * raft_uv's snapshot_put takes a snapshot as buffers in memory.  Built on
 * the heap, a node's snapshot of a 1 GB ledger is 1 GB of anonymous memory
 * the process faults in (and hands back to the system after) at every
 * snapshot.  Written instead, chunk by chunk through one reused buffer
 * (chunk_sink.h), to an unnamed file (O_TMPFILE) in the Raft directory and
 * handed over as a read-only mapping, it is page cache: the kernel may
 * write it back and drop it, the process never holds it, and the file
 * vanishes when closed (a crash leaves nothing).  Unsynced and closed
 * within seconds, its pages are normally dropped before writeback.  Used
 * by the node's own snapshots (snapshot_io.c) and a restored cluster's
 * seeds (seed.c); docs/raft.md "Snapshots in a file". */
#ifndef KYUFU_GLUE_STREAM_FILE_H
#define KYUFU_GLUE_STREAM_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "storage.h"

struct glue_stream_file
{
    int fd;      /* -1: none */
    void *map;   /* NULL: none */
    size_t len;  /* the stream's bytes (the mapping's length) */
    int err;     /* errno of a failed open, write or mmap; 0: none */
    const char *what; /* the step that failed */
};

/* Write the stream of `snap` (sealed behind `header` when key != NULL) to
 * a new unnamed file in dir and map it.  Returns 0 (f->map, f->len set),
 * the store's KYUFU_STORAGE_E* code when the stream failed, or
 * KYUFU_STORAGE_EIO with f->err and f->what set when the file system
 * refused (a full disk is no reason to stop the node: retried at the next
 * snapshot).  Nothing is left open on failure. */
int glue__stream_file_write(struct glue_stream_file *f, const char *dir,
                            struct kyufu_storage_snapshot *snap,
                            const struct glue_stream_key *key,
                            const uint8_t *header, size_t header_len);

/* Whether dir takes unnamed files: 0, or -1 with errmsg said. */
int glue__stream_file_probe(const char *dir, char *errmsg, size_t errmsg_len);

/* Unmap and close (the file goes); f is then empty.  Safe on an empty f. */
void glue__stream_file_close(struct glue_stream_file *f);

#endif /* KYUFU_GLUE_STREAM_FILE_H */
