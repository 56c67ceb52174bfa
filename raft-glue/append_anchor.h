/* Follower side: anchor an AppendEntries that reaches back into this node's
 * snapshot at the snapshot itself (internal: includes raft.h; hosted by
 * io_guard, which sees every received message and every snapshot put).
 *
 * Why: libraft 0.22.1's follower cannot take an AppendEntries whose entries
 * start inside the part of its log compacted by its own snapshot.  With
 * prev_log_index compacted it rejects ("missing previous entry"), the
 * leader steps back one index per round trip, and when it reaches
 * prev_log_index 0 the follower appends the leader's entries from index 1
 * on top of a log that starts after its snapshot, corrupting its in-memory
 * log (use after free in the next apply; simulation seed 123, docs/raft.md
 * "Compacted probes").  A leader probes that low when its view of the
 * follower is stale: acknowledgements lost for longer than the follower
 * took to apply `snapshot_trailing` entries and snapshot.
 *
 * What: every entry up to the follower's snapshot index S is committed, and
 * every leader of the same or a later term holds the committed entries
 * with the same terms (Raft's Log Matching and Leader Completeness).  So a
 * received AppendEntries with prev_log_index < S is rewritten, before raft
 * sees it, to start at S:
 *   - it carries entries past S: the entries up to S are dropped and
 *     prev_log_index/prev_log_term become S and the entry's term at S;
 *   - it ends before S: it becomes a heartbeat at S (prev_log_term is the
 *     snapshot's term); raft answers success with last_log_index S, which
 *     is true, and the leader moves its next index past S.
 * If the message's term at S differs from the snapshot's, something is
 * deeply wrong: the message is left alone for raft's own checks.
 *
 * S is the newest snapshot this node's raft_io has loaded at start or
 * written (a local snapshot or an installed one): raft's own snapshot
 * index, whose term 0.22.1 keeps after compaction (TrailTermOf). */
#ifndef KYUFU_GLUE_APPEND_ANCHOR_H
#define KYUFU_GLUE_APPEND_ANCHOR_H

#include <raft.h>

struct glue_append_anchor
{
    raft_index index; /* newest snapshot on disk, 0 when none */
    raft_term term;
    unsigned long n_trimmed;  /* entries up to S dropped from a message */
    unsigned long n_anchored; /* a message turned into a heartbeat at S */
    unsigned long n_conflict; /* term at S differed: left alone */
};

void glue__append_anchor_init(struct glue_append_anchor *a);

/* A snapshot at (index, term) is on disk (loaded or written). */
void glue__append_anchor_snapshot(struct glue_append_anchor *a,
                                  raft_index index,
                                  raft_term term);

/* Rewrite `m` in place if it is an AppendEntries reaching below S. */
void glue__append_anchor_recv(struct glue_append_anchor *a,
                              struct raft_message *m);

#endif /* KYUFU_GLUE_APPEND_ANCHOR_H */
