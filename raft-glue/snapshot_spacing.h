/* When a node takes its snapshots: how many entries apart (by the
 * snapshot's size) and at which indexes (a slot per voter, so that no two
 * voters write their copy of the ledger at once).  Pure functions; the FSM
 * (fsm.c retune) feeds them and sets raft's threshold.  Design and the
 * rejected alternatives: docs/raft.md "Snapshot spacing" and "One voter
 * at a time". */
#ifndef KYUFU_RAFT_GLUE_SNAPSHOT_SPACING_H
#define KYUFU_RAFT_GLUE_SNAPSHOT_SPACING_H

#include <raft.h>
#include <stdint.h>

/* Entries between snapshots for a snapshot of `snapshot_bytes` when
 * entries average `mean_entry_bytes`: as many as make up a
 * KYUFU_SNAPSHOT_LOG_SHARE_DIV-th of the snapshot's bytes, at most
 * KYUFU_SNAPSHOT_LOG_BYTES_MAX of them, never fewer than `floor` nor more
 * than KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX (glue_limits.h).  `floor` when
 * the mean or the size is unknown (0). */
unsigned glue__snapshot_threshold(unsigned floor,
                                  uint64_t snapshot_bytes,
                                  uint64_t mean_entry_bytes);

/* The period of the slots: the largest power of two at most `threshold`
 * (the value above), or `floor` when that is smaller.  Every voter
 * computes it from its own last snapshot and the mean entry of the last
 * index-aligned block; once the log's bytes are at their cap the
 * snapshot's size drops out and voters agree at every index; below it
 * powers of two make them agree but near one. */
unsigned glue__snapshot_period(unsigned floor, unsigned threshold);

/* Raft's threshold for voter `rank` of `voters` whose last snapshot
 * (taken or restored) is at index `last`: the entries from there to its
 * first slot at least a KYUFU_SNAPSHOT_SLOT_GAP_DIV-th of the period on;
 * but when that slot is at or below `commit` (raft's commit index: libraft
 * takes a snapshot once it applied up to it, at that index) and `commit`
 * lies in another voter's window, its first slot after `commit`.  Indexes are cut into windows of `window` entries (every voter
 * must use the same: the FSM gives floor / voters), window j belonging
 * to voter j mod voters; a voter's slots are the starts of its own
 * windows nearest to k x period + rank/voters of a period.  libraft takes
 * a snapshot at the end of a run of committed entries, at or after the
 * slot; the FSM keeps that end in this voter's window, so two voters'
 * snapshots never share an index.  Voters that agree on the period start
 * theirs about 1/voters of a period apart (less a round of windows).  In
 * steady state the distance is the period give or take a round; after a
 * start, an install, a new period or a deferral one interval differs.
 * UINT_MAX at most. */
unsigned glue__snapshot_slot_distance(uint64_t last, uint64_t commit,
                                      unsigned period, unsigned rank,
                                      unsigned voters, unsigned window);

/* This node's place among the voters of r's configuration (by id, lowest
 * first) and their number; 0 of 1 when it is not a voter. */
void glue__snapshot_voter_rank(const struct raft *r, unsigned *rank,
                               unsigned *voters);

#endif /* KYUFU_RAFT_GLUE_SNAPSHOT_SPACING_H */
