/* Snapshot spacing and slots: see snapshot_spacing.h. */
#include "snapshot_spacing.h"

#include <assert.h>
#include <limits.h>

#include "glue_limits.h"

unsigned glue__snapshot_threshold(unsigned floor,
                                  uint64_t snapshot_bytes,
                                  uint64_t mean_entry_bytes)
{
    if (mean_entry_bytes == 0) {
        return floor;
    }
    uint64_t log = snapshot_bytes / KYUFU_SNAPSHOT_LOG_SHARE_DIV;
    if (log > KYUFU_SNAPSHOT_LOG_BYTES_MAX) {
        log = KYUFU_SNAPSHOT_LOG_BYTES_MAX;
    }
    uint64_t n = log / mean_entry_bytes;
    if (n > KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX) {
        n = KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX;
    }
    return n > floor ? (unsigned)n : floor;
}

unsigned glue__snapshot_period(unsigned floor, unsigned threshold)
{
    unsigned p = 1;
    while (p <= threshold / 2) {
        p *= 2;
    }
    return p > floor ? p : floor;
}

/* This voter's k-th slot: the start of its own window nearest to its
 * k-th aim, k x period + rank/voters of a period (window j is voter
 * j mod voters's).  A set fixed by (period, rank, voters, window), so the
 * slots do not drift with where the last snapshot happened to fall. */
static uint64_t slot_of(uint64_t k, unsigned period, unsigned rank,
                        unsigned voters, unsigned window)
{
    uint64_t aim = k * period + (uint64_t)period * rank / voters;
    uint64_t round = (uint64_t)window * voters;
    uint64_t first = (uint64_t)window * rank;
    uint64_t m = aim > first ? (aim - first + round / 2) / round : 0;
    return first + m * round;
}

/* This voter's first slot at or after `from`.  Slots grow by a period
 * give or take a round of windows, and a round is at most the floor, so
 * at most the period: a few steps. */
static uint64_t first_slot(uint64_t from, unsigned period, unsigned rank,
                           unsigned voters, unsigned window)
{
    uint64_t k = from / period;
    k = k > 0 ? k - 1 : 0;
    uint64_t slot;
    while ((slot = slot_of(k, period, rank, voters, window)) < from) {
        k++;
    }
    return slot;
}

unsigned glue__snapshot_slot_distance(uint64_t last, uint64_t commit,
                                      unsigned period, unsigned rank,
                                      unsigned voters, unsigned window)
{
    assert(period > 0 && window > 0);
    if (voters == 0 || rank >= voters) {
        rank = 0;
        voters = 1;
    }
    uint64_t gap = period / KYUFU_SNAPSHOT_SLOT_GAP_DIV;
    uint64_t slot = first_slot(last + (gap > 0 ? gap : 1), period, rank,
                               voters, window);
    uint64_t cap = (uint64_t)KYUFU_SNAPSHOT_DEFER_PERIODS_MAX * period +
                   (uint64_t)period * rank / voters;
    /* (slot > last, so slot <= commit implies commit > last.) */
    if (slot <= commit && commit / window % voters != rank &&
        commit - last < cap) {
        /* libraft would take it at `commit`, in another voter's window.
         * Not past the cap since the last one: runs that keep ending in
         * other voters' windows (a steady run length of a round of
         * windows) must not starve this voter of snapshots; the rank's
         * share keeps two starved voters apart. */
        slot = first_slot(commit + 1, period, rank, voters, window);
    }
    /* slot - last < max(gap, commit + 1 - last) + period + round: fits
     * unless the commit index is billions of entries on. */
    return slot - last < UINT_MAX ? (unsigned)(slot - last) : UINT_MAX;
}

void glue__snapshot_voter_rank(const struct raft *r, unsigned *rank,
                               unsigned *voters)
{
    unsigned below = 0;
    unsigned n = 0;
    bool voter = false;
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        if (s->role != RAFT_VOTER) {
            continue;
        }
        n++;
        if (s->id < r->id) {
            below++;
        } else if (s->id == r->id) {
            voter = true;
        }
    }
    *rank = voter ? below : 0;
    *voters = voter ? n : 1;
}
