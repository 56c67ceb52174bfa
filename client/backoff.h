/* libkyufu internal: the retry backoff of one call, with jitter.
 *
 * Decorrelated jitter (the "Exponential Backoff And Jitter" rule of the AWS
 * architecture blog, 2015): each wait is drawn uniformly from
 * [initial, 3 x the previous wait], capped at max:
 *
 *     wait_0 = uniform[initial, 3 * initial]   (capped)
 *     wait_k = min(max, uniform[initial, 3 * wait_(k-1)])
 *
 * so waits grow about geometrically while no leader is known, never fall
 * below `initial`, never exceed `max`, and many clients that failed at the
 * same instant (a leader's death) spread their retries instead of arriving
 * together.  With initial == 0 the waits start at 0..3 ms and grow the same
 * way; with max == 0 they are all 0 (tests that must not sleep).
 *
 * Pure: no clock, no I/O.  The randomness comes from a caller-held
 * splitmix64 state (client__rand_next), seeded once per client
 * (from RAND_bytes, or by a test with a fixed seed), so a test replays the
 * exact same waits. */
#ifndef KYUFU_CLIENT_BACKOFF_H
#define KYUFU_CLIENT_BACKOFF_H

#include <stdint.h>

struct client__backoff
{
    uint32_t initial_ms;
    uint32_t max_ms;
    uint32_t last_ms; /* previous wait; 0 before the first */
};

/* Start a new sequence of waits; initial_ms <= max_ms. */
void client__backoff_init(struct client__backoff *b,
                          uint32_t initial_ms,
                          uint32_t max_ms);

/* The next wait in ms, in [initial_ms, max_ms]; advances *rng. */
uint32_t client__backoff_next(struct client__backoff *b, uint64_t *rng);

/* splitmix64: the next 64 random bits from *state (any seed, 0 included). */
uint64_t client__rand_next(uint64_t *state);

#endif
