/* Snapshot spacing and slots: see snapshot_spacing.h. */
#include "snapshot_spacing.h"

#include <assert.h>
#include <stdbool.h>

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

static bool is_pow2(unsigned n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

unsigned glue__snapshot_period(unsigned prev, unsigned floor,
                               unsigned threshold)
{
    if (threshold <= floor) {
        return floor;
    }
    if ((is_pow2(prev) || prev == floor) && prev >= floor &&
        prev <= threshold &&
        (uint64_t)threshold * KYUFU_SNAPSHOT_PERIOD_RAISE_DEN <
            (uint64_t)prev * KYUFU_SNAPSHOT_PERIOD_RAISE_NUM) {
        return prev;
    }
    unsigned p = 1;
    while (p <= threshold / 2) {
        p *= 2;
    }
    return p > floor ? p : floor;
}

unsigned glue__snapshot_slot_distance(uint64_t last, unsigned period,
                                      unsigned rank, unsigned voters)
{
    assert(period > 0);
    if (voters == 0 || rank >= voters) {
        rank = 0;
        voters = 1;
    }
    uint64_t phase = (uint64_t)period * rank / voters;
    uint64_t gap = period / KYUFU_SNAPSHOT_SLOT_GAP_DIV;
    uint64_t from = last + (gap > 0 ? gap : 1);
    uint64_t slot = phase;
    if (from > phase) {
        slot += (from - phase + period - 1) / period * period;
    }
    /* slot - last < gap + period <= 1.25 x 2^20: fits. */
    return (unsigned)(slot - last);
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
