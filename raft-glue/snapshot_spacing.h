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

/* The period of the slots: a power of two at most `threshold` (the value
 * above), or `floor` when no power of two lies between them.  Every voter
 * computes it from its own snapshot and its own run of entries, which
 * differ a little; powers of two make them agree, and `prev` (this node's
 * last period, 0 for none) is kept while `threshold` stays within
 * [prev, KYUFU_SNAPSHOT_PERIOD_RAISE_NUM/DEN x prev), so a mean entry that
 * wanders across a power of two does not move the slots back and forth.
 * Never above `threshold`: the log's bytes stay within their bound. */
unsigned glue__snapshot_period(unsigned prev, unsigned floor,
                               unsigned threshold);

/* Raft's threshold for voter `rank` of `voters` whose last snapshot
 * (taken or restored) is at index `last`: the entries from there to its
 * next slot at least a KYUFU_SNAPSHOT_SLOT_GAP_DIV-th of the period on.
 * Indexes are cut into windows of `window` entries (every voter must use
 * the same: the glue gives floor / voters), window j belonging to voter
 * j mod voters; a voter's slots are the starts of its own windows
 * nearest to k x period + rank/voters of a period.  So voters that agree
 * on the period take their snapshots about 1/voters of a period apart
 * (less a round of windows), and voters that do not (one just restarted,
 * spacings either side of a power of two) still never at the same index,
 * and at least a window apart.  In steady state the distance is the
 * period give or take a round of windows (at most the floor); after a
 * start, an install or a new period one interval is between a quarter and
 * one and a quarter periods, and a round. */
unsigned glue__snapshot_slot_distance(uint64_t last, unsigned period,
                                      unsigned rank, unsigned voters,
                                      unsigned window);

/* This node's place among the voters of r's configuration (by id, lowest
 * first) and their number; 0 of 1 when it is not a voter. */
void glue__snapshot_voter_rank(const struct raft *r, unsigned *rank,
                               unsigned *voters);

#endif /* KYUFU_RAFT_GLUE_SNAPSHOT_SPACING_H */
