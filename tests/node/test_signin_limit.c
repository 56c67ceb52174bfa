/* Sign-in limits (node/signin_limit.c): sign-ins in flight per account
 * against the failures left before the lock, and failed sign-ins per
 * client certificate (a token bucket), with the test's own clock. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/check.h"
#include "signin_limit.h"

static struct kyufu_node_signin_limit lim; /* zeroed: empty tables */

/* lock_after 5: five at once with no failure, fewer as failures grow,
 * never none (one attempt after a lock ends). */
static void test_allowed(void)
{
    CHECK_EQ_INT(kyufu_node_signin_allowed(5, 0), 5);
    CHECK_EQ_INT(kyufu_node_signin_allowed(5, 3), 2);
    CHECK_EQ_INT(kyufu_node_signin_allowed(5, 4), 1);
    CHECK_EQ_INT(kyufu_node_signin_allowed(5, 5), 1);
    CHECK_EQ_INT(kyufu_node_signin_allowed(5, 4000000000u), 1);
}

/* 16 sign-ins of one account at once: the count the handler compares
 * with `allowed` grows with each and falls as they end; another account
 * counts apart; a freed slot is reused. */
static void test_in_flight(void)
{
    memset(&lim, 0, sizeof lim);
    unsigned slots[16], n = 0, passed = 0;
    for (unsigned i = 0; i < 16; i++) {
        slots[i] = kyufu_node_signin_begin(&lim, "taro", &n);
        CHECK(slots[i] != 0);
        CHECK_EQ_INT(n, i + 1);
        passed += n <= kyufu_node_signin_allowed(5, 0);
    }
    CHECK_EQ_INT(passed, 5); /* the other 11 are refused as if locked */
    unsigned other = kyufu_node_signin_begin(&lim, "hana", &n);
    CHECK(other != 0 && other != slots[0]);
    CHECK_EQ_INT(n, 1);
    for (unsigned i = 0; i < 16; i++) {
        kyufu_node_signin_end(&lim, slots[i]);
    }
    CHECK(kyufu_node_signin_begin(&lim, "taro", &n) != 0);
    CHECK_EQ_INT(n, 1);
    kyufu_node_signin_end(&lim, 0); /* no slot: nothing */
    /* A full table refuses (0) until one ends. */
    memset(&lim, 0, sizeof lim);
    char id[16];
    unsigned last = 0;
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_ACCOUNTS_MAX; i++) {
        snprintf(id, sizeof id, "u%u", i);
        last = kyufu_node_signin_begin(&lim, id, &n);
        CHECK(last != 0);
    }
    CHECK_EQ_INT(kyufu_node_signin_begin(&lim, "late", &n), 0);
    CHECK(kyufu_node_signin_begin(&lim, "u0", &n) != 0); /* its own: ok */
    CHECK_EQ_INT(n, 2);
    kyufu_node_signin_end(&lim, last);
    CHECK(kyufu_node_signin_begin(&lim, "late", &n) != 0);
}

/* A burst of failures per certificate, then one per refill period;
 * another certificate is not affected; a quiet certificate is forgotten. */
static void test_peer_bucket(void)
{
    memset(&lim, 0, sizeof lim);
    uint8_t a[32], b[32];
    memset(a, 0xaa, sizeof a);
    memset(b, 0xbb, sizeof b);
    uint64_t t = 1000000;
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_FAIL_BURST; i++) {
        CHECK(kyufu_node_signin_peer_ok(&lim, a, t));
        kyufu_node_signin_peer_take(&lim, a, t);
    }
    CHECK(!kyufu_node_signin_peer_ok(&lim, a, t));
    CHECK(kyufu_node_signin_peer_ok(&lim, b, t));
    CHECK(!kyufu_node_signin_peer_ok(&lim, a,
                                     t + KYUFU_NODE_SIGNIN_FAIL_REFILL_MS - 1));
    t += KYUFU_NODE_SIGNIN_FAIL_REFILL_MS;
    CHECK(kyufu_node_signin_peer_ok(&lim, a, t));
    kyufu_node_signin_peer_take(&lim, a, t);
    CHECK(!kyufu_node_signin_peer_ok(&lim, a, t));
    /* Sustained: one failure per refill period, no more. */
    unsigned failed = 0;
    for (uint64_t u = t; u <= t + 60000; u += 100) {
        if (kyufu_node_signin_peer_ok(&lim, a, u)) {
            kyufu_node_signin_peer_take(&lim, a, u);
            failed++;
        }
    }
    CHECK_EQ_INT(failed, 60000 / KYUFU_NODE_SIGNIN_FAIL_REFILL_MS);
    /* Quiet long enough: a whole burst again. */
    t += 60000 + KYUFU_NODE_SIGNIN_FAIL_BURST * KYUFU_NODE_SIGNIN_FAIL_REFILL_MS;
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_FAIL_BURST; i++) {
        CHECK(kyufu_node_signin_peer_ok(&lim, a, t));
        kyufu_node_signin_peer_take(&lim, a, t);
    }
    CHECK(!kyufu_node_signin_peer_ok(&lim, a, t));
    /* A full table of other certificates does not free `a`'s empty
     * bucket: it forgets the one nearest to full. */
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_PEERS_MAX + 10; i++) {
        uint8_t c[32] = {0};
        memcpy(c, &i, sizeof i);
        c[31] = 1;
        kyufu_node_signin_peer_take(&lim, c, t);
    }
    CHECK(!kyufu_node_signin_peer_ok(&lim, a, t));
}

/* A sign-in takes its token when it starts and gives it back when it does
 * not fail: many successful sign-ins never empty the bucket, and with the
 * last token taken by one in flight the next is refused until it ends. */
static void test_peer_refund(void)
{
    memset(&lim, 0, sizeof lim);
    uint8_t a[32];
    memset(a, 0xaa, sizeof a);
    uint64_t t = 5000000;
    for (unsigned i = 0; i < 10 * KYUFU_NODE_SIGNIN_FAIL_BURST; i++) {
        CHECK(kyufu_node_signin_peer_ok(&lim, a, t));
        kyufu_node_signin_peer_take(&lim, a, t);
        kyufu_node_signin_peer_refund(&lim, a, t);
    }
    /* All but one spent by failures, the last one taken by a sign-in in
     * flight: refused until it ends. */
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_FAIL_BURST; i++) {
        CHECK(kyufu_node_signin_peer_ok(&lim, a, t));
        kyufu_node_signin_peer_take(&lim, a, t);
    }
    CHECK(!kyufu_node_signin_peer_ok(&lim, a, t));
    kyufu_node_signin_peer_refund(&lim, a, t); /* the last one succeeded */
    CHECK(kyufu_node_signin_peer_ok(&lim, a, t));
    kyufu_node_signin_peer_take(&lim, a, t);
    CHECK(!kyufu_node_signin_peer_ok(&lim, a, t));
    /* A refund for a certificate never charged (forgotten) is a no-op. */
    uint8_t b[32];
    memset(b, 0xbb, sizeof b);
    kyufu_node_signin_peer_refund(&lim, b, t);
    for (unsigned i = 0; i < KYUFU_NODE_SIGNIN_FAIL_BURST; i++) {
        CHECK(kyufu_node_signin_peer_ok(&lim, b, t));
        kyufu_node_signin_peer_take(&lim, b, t);
    }
    CHECK(!kyufu_node_signin_peer_ok(&lim, b, t));
}

int main(void)
{
    test_allowed();
    test_in_flight();
    test_peer_bucket();
    test_peer_refund();
    printf("ok\n");
    return 0;
}
