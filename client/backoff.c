/* libkyufu internal: decorrelated-jitter backoff (see backoff.h). */
#include <assert.h>

#include "backoff.h"

uint64_t client__rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void client__backoff_init(struct client__backoff *b,
                          uint32_t initial_ms,
                          uint32_t max_ms)
{
    assert(initial_ms <= max_ms);
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->last_ms = 0;
}

uint32_t client__backoff_next(struct client__backoff *b, uint64_t *rng)
{
    assert(b->initial_ms <= b->max_ms);
    uint64_t lo = b->initial_ms;
    uint64_t prev = b->last_ms > lo ? b->last_ms : lo;
    if (prev == 0) {
        prev = 1; /* initial 0 still grows, unless max is 0 too */
    }
    uint64_t hi = 3 * prev;
    if (hi > b->max_ms) {
        hi = b->max_ms;
    }
    assert(lo <= hi); /* prev >= initial and max >= initial */
    /* Modulo bias is below 2^-40 for spans of a few hundred ms. */
    uint64_t wait = lo + client__rand_next(rng) % (hi - lo + 1);
    assert(wait >= b->initial_ms && wait <= b->max_ms);
    b->last_ms = (uint32_t)wait;
    return (uint32_t)wait;
}
