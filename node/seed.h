/* kyufud --seed FILE STREAM [DIGEST]: make a new, stopped node of a restored cluster
 * hold a backup's state (docs/restore.md "Restore").
 *
 * STREAM is a storage snapshot stream (docs/snapshot-format.md), already
 * decrypted: a file, or a pipe that kyufuctl restore fills chunk by chunk
 * from a backup.  The node's data folder must hold no store and no Raft
 * log.  The folder is locked, the stream read piece by piece and restored
 * into a new store at <data_dir>/ledger (kyufu_storage_restore_stream
 * commits only a stream it checked whole), and raft-glue's
 * kyufu_glue_seed_store writes a Raft snapshot of that store at the
 * stream's applied index and term with every [cluster] member a voter.
 * Neither step holds the stream in memory (docs/restore.md "Memory").  With `digest` (64 lowercase hex digits: the backup's state
 * digest), a restored store whose digest differs is removed and nothing is
 * seeded (exit 4).  One line on `out`: the applied index, term and state digest
 * (hex) of the store now, which equal the backup's.
 *
 * Encryption at rest: with `cmk_path` (after a digest; kyufuctl restore
 * passes a pipe, so the key never touches the disk) the store gets those
 * 32 bytes (the backup's cluster master key) as its CMK before the sealed
 * stream is restored, and once the digest matched the node's CMK file
 * ([keys] cmk_file, the fresh one cluster init wrote) is replaced by it
 * wrapped under the node's KEK and bound to this node and its CA.  Without
 * it a node with [keys] restores under its own CMK file's key.
 *
 * Returns kyufud's exit status: 0 seeded; 1 refused with nothing changed
 * (locked, a store or log already there, unreadable STREAM) or a write
 * failed (delete the data folder and seed again); 4 a stream the store
 * refuses (corrupt, another schema). */
#ifndef KYUFU_NODE_SEED_H
#define KYUFU_NODE_SEED_H

#include <stdio.h>

#include "config.h"

int kyufu_node_seed(const struct kyufu_config *c, const char *stream_path,
                    const char *digest, const char *cmk_path, FILE *out);

#endif /* KYUFU_NODE_SEED_H */
