/* Loaded entries: no shared batch (internal: includes raft.h; called by
 * io_guard's load, before raft_start hands the entries to the log).
 *
 * Why: libraft 0.22.1's in-memory log frees a batch shared by several
 * entries when the last of them *still in the log* is removed
 * (log.c destroyEntry: isBatchReferenced looks at live entries only),
 * even while others of them sit in an AppendEntries being written (taken
 * with logAcquire, out of the log since a snapshot compacted it); when that
 * send completes, logRelease frees the same batch again.  raft_uv loads
 * every segment's entries into one batch (the whole file: uv_segment.c
 * uvDecodeEntriesBatch), so a node restarted with entries on disk, leading,
 * streaming old entries to a follower that lags by more than
 * snapshot_trailing while its next snapshot compacts them, frees a segment
 * buffer in flight (its bytes may go out as garbage meanwhile) and then
 * aborts: "double free or corruption (!prev)" (the thirteenth session's
 * soak, seed 2111580102, docs/chaos-findings.md; docs/raft.md "Loaded
 * entries share a batch").  Every entry raft appends later has no batch:
 * legacy.c copies what it appends (entryCopy: raft_apply's, a barrier's, a
 * configuration's, a follower's received ones) and frees each payload on
 * its own when its count drops, so the in-flight count is exact.
 *
 * What: give each loaded entry a copy of its payload (raft_malloc, as raft
 * frees it) and no batch, like entryCopy, and free the segment buffers.
 * Memory: the loaded log twice, only during the copy.  One cost: if
 * fsm->restore fails inside raft_start, raft's entryBatchesDestroy skips
 * batchless entries (its assert is compiled out in Debian's build) and the
 * copies leak; the node is failing its start then and exits. */
#ifndef KYUFU_GLUE_ENTRY_BATCHES_H
#define KYUFU_GLUE_ENTRY_BATCHES_H

#include <stddef.h>

#include <raft.h>

/* Every entry of entries[0..n) gets a copy of its payload and no batch;
 * the batches they shared are freed (once each).  0, or RAFT_NOMEM with
 * the entries untouched. */
int glue__entry_batches_unshare(struct raft_entry *entries, size_t n);

/* Free what a raft_io load returned (snapshot and entries; either may be
 * NULL; an entry without a batch owns its payload): io_guard's failed
 * copy, and recover.c and seed.c, which read a log and let it go. */
void glue__rio_free_loaded(struct raft_snapshot *snap,
                           struct raft_entry *entries,
                           size_t n);

#endif
