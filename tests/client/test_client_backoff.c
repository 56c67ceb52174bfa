/* The retry backoff (client/backoff.c), alone: what callers rely on is that
 * every wait lies in [initial, max], that the first waits are short
 * (initial..3 x initial), that waits never grow faster than x3, that a seed
 * replays the same waits, and that different seeds spread (clients that
 * failed together do not retry together).  Pure: no clock, no loop. */
#include <string.h>

#include "backoff.h"
#include "check.h"
#include "client_limits.h"

#define DRAWS 2000

static void test_bounds(uint32_t initial, uint32_t max)
{
    for (uint64_t seed = 0; seed < 200; seed++) {
        uint64_t rng = seed;
        struct client__backoff b;
        client__backoff_init(&b, initial, max);
        uint32_t prev = 0;
        for (int i = 0; i < 50; i++) {
            uint32_t w = client__backoff_next(&b, &rng);
            CHECK(w >= initial && w <= max);
            uint32_t base = prev > initial ? prev : initial;
            base = base > 0 ? base : 1;
            CHECK((uint64_t)w <= 3 * (uint64_t)base);
            prev = w;
        }
    }
}

static void test_defaults_and_spread(void)
{
    const uint32_t lo = KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT;
    const uint32_t hi = KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT;
    CHECK(lo >= 10 && lo <= 25); /* the "start small" */
    CHECK(hi <= 250);
    /* First wait of many clients (one seed each): all in [lo, 3 lo], and
     * not all the same. */
    uint32_t first_min = UINT32_MAX, first_max = 0;
    for (uint64_t seed = 1; seed <= DRAWS; seed++) {
        uint64_t rng = seed * 7919;
        struct client__backoff b;
        client__backoff_init(&b, lo, hi);
        uint32_t w = client__backoff_next(&b, &rng);
        CHECK(w >= lo && w <= 3 * lo);
        first_min = w < first_min ? w : first_min;
        first_max = w > first_max ? w : first_max;
    }
    CHECK(first_min <= lo + 2 && first_max >= 3 * lo - 2);
    /* A long election: the waits reach the cap region but keep spreading
     * over the whole range instead of sticking to the cap. */
    uint64_t rng = 42;
    struct client__backoff b;
    client__backoff_init(&b, lo, hi);
    unsigned low = 0, high = 0, at_cap = 0;
    for (int i = 0; i < DRAWS; i++) {
        uint32_t w = client__backoff_next(&b, &rng);
        low += w < lo + (hi - lo) / 4;
        high += w > hi - (hi - lo) / 4;
        at_cap += w == hi;
    }
    CHECK(low > DRAWS / 20 && high > DRAWS / 20);
    CHECK(at_cap < DRAWS / 10);
}

static void test_replay(void)
{
    uint32_t a[64], b2[64];
    for (int round = 0; round < 2; round++) {
        uint64_t rng = 0xfeedface;
        struct client__backoff b;
        client__backoff_init(&b, 10, 250);
        for (int i = 0; i < 64; i++) {
            (round == 0 ? a : b2)[i] = client__backoff_next(&b, &rng);
        }
    }
    CHECK(memcmp(a, b2, sizeof a) == 0);
    uint64_t rng = 0xfeedfacf;
    struct client__backoff b;
    client__backoff_init(&b, 10, 250);
    int same = 0;
    for (int i = 0; i < 64; i++) {
        same += client__backoff_next(&b, &rng) == a[i];
    }
    CHECK(same < 16);
}

static void test_degenerate(void)
{
    uint64_t rng = 3;
    struct client__backoff b;
    client__backoff_init(&b, 0, 0); /* tests that must not sleep */
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(client__backoff_next(&b, &rng), 0);
    }
    client__backoff_init(&b, 40, 40);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(client__backoff_next(&b, &rng), 40);
    }
}

int main(void)
{
    test_bounds(10, 250);
    test_bounds(0, 250);
    {
        /* initial 0 (allowed by the config) must not mean "never wait" */
        uint64_t rng = 9;
        struct client__backoff b;
        client__backoff_init(&b, 0, 250);
        uint32_t last = 0;
        for (int i = 0; i < 40; i++) {
            last = client__backoff_next(&b, &rng) > last ? b.last_ms : last;
        }
        CHECK(last > 50);
    }
    test_bounds(25, 30);
    test_bounds(1, 1000);
    test_defaults_and_spread();
    test_replay();
    test_degenerate();
    printf("ok\n");
    return 0;
}
