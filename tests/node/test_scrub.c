/* Scrub (issue 13; node/scrub_verdict.c, docs/scrub.md): the verdict over
 * the voters' digests at one index (who is the damaged one, when nobody
 * can tell, when to wait), and a peer's ScrubDigests answer: a well-formed
 * one gives its digest at the index asked, and every malformed or
 * oversized one is refused, naming why, and gives nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../client/check.h"
#include "../../node/limits.h"
#include "kyufu/v1/service.pb-c.h"
#include "scrub_verdict.h"

static const uint8_t A[32] = {0xaa};
static const uint8_t B[32] = {0xbb};
static const uint8_t C[32] = {0xcc};

static enum kyufu_node_scrub_verdict verdict(const uint8_t *own,
                                             const uint8_t *const *others,
                                             size_t n, size_t voters,
                                             uint8_t majority[32])
{
    uint8_t o[8][32];
    for (size_t i = 0; i < n; i++) {
        memcpy(o[i], others[i], 32);
    }
    return kyufu_node__scrub_verdict(own, (const uint8_t(*)[32])o, n, voters,
                                     majority);
}

static void test_verdict(void)
{
    uint8_t m[32];
    /* Three voters. */
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){A}, 1, 3, m),
                 KYUFU_NODE_SCRUB_PASS);
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){A, B}, 2, 3, m),
                 KYUFU_NODE_SCRUB_PASS); /* B is the odd one out */
    CHECK_EQ_INT(verdict(B, (const uint8_t *const[]){A, A}, 2, 3, m),
                 KYUFU_NODE_SCRUB_CORRUPT);
    CHECK(memcmp(m, A, 32) == 0);
    CHECK_EQ_INT(verdict(B, (const uint8_t *const[]){A}, 1, 3, m),
                 KYUFU_NODE_SCRUB_WAIT); /* one each: the third decides */
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){B, C}, 2, 3, m),
                 KYUFU_NODE_SCRUB_NO_MAJORITY);
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){0}, 0, 3, m),
                 KYUFU_NODE_SCRUB_WAIT); /* alone: never a verdict */
    /* Five voters: two against two waits for the fifth. */
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){A, B, B}, 3, 5, m),
                 KYUFU_NODE_SCRUB_WAIT);
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){A, B, B, B}, 4, 5, m),
                 KYUFU_NODE_SCRUB_CORRUPT);
    CHECK(memcmp(m, B, 32) == 0);
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){A, A, B, C}, 4, 5, m),
                 KYUFU_NODE_SCRUB_PASS);
    /* Not a voter (a standby): the voters' majority, into m (scrub.c
     * compares it with its own). */
    CHECK_EQ_INT(verdict(NULL, (const uint8_t *const[]){A, A, B}, 3, 3, m),
                 KYUFU_NODE_SCRUB_CORRUPT);
    CHECK(memcmp(m, A, 32) == 0);
    /* One voter: itself. */
    CHECK_EQ_INT(verdict(A, (const uint8_t *const[]){0}, 0, 1, m),
                 KYUFU_NODE_SCRUB_PASS);
}

/* A packed ScrubDigestsResponse of n results, index 10 + i, digest bytes
 * of digest_len (each byte i). */
static size_t answer(uint8_t **out, size_t n, size_t digest_len)
{
    Kyufu__V1__ScrubDigestsResponse r =
        KYUFU__V1__SCRUB_DIGESTS_RESPONSE__INIT;
    Kyufu__V1__ScrubResult *items = calloc(n, sizeof *items);
    Kyufu__V1__ScrubResult **ptrs = calloc(n, sizeof *ptrs);
    uint8_t *digests = calloc(n ? n : 1, digest_len ? digest_len : 1);
    for (size_t i = 0; i < n; i++) {
        kyufu__v1__scrub_result__init(&items[i]);
        items[i].index = 10 + i;
        memset(digests + i * digest_len, (int)i, digest_len);
        items[i].digest.data = digests + i * digest_len;
        items[i].digest.len = digest_len;
        ptrs[i] = &items[i];
    }
    r.node_id = 2;
    r.n_results = n;
    r.results = ptrs;
    size_t len = kyufu__v1__scrub_digests_response__get_packed_size(&r);
    *out = malloc(len ? len : 1);
    kyufu__v1__scrub_digests_response__pack(&r, *out);
    free(items);
    free(ptrs);
    free(digests);
    return len;
}

static void test_answers(void)
{
    uint8_t *buf;
    uint8_t d[32];
    uint8_t want[32];
    char why[120];
    bool found;
    size_t len;

    /* Well formed: the digest at the index asked, or not found. */
    len = answer(&buf, 8, 32);
    CHECK(kyufu_node__scrub_parse_answer(buf, len, 2, 13, &found, d, why,
                                         sizeof why));
    memset(want, 3, 32);
    CHECK(found && memcmp(d, want, 32) == 0);
    CHECK(kyufu_node__scrub_parse_answer(buf, len, 2, 99, &found, d, why,
                                         sizeof why));
    CHECK(!found);
    /* Another node's answer (one certificate answering for two voters). */
    CHECK(!kyufu_node__scrub_parse_answer(buf, len, 3, 13, &found, d, why,
                                          sizeof why));
    CHECK(!found && strstr(why, "node 2's, not node 3's") != NULL);
    /* Truncated: does not parse. */
    memset(d, 0x5a, 32);
    CHECK(!kyufu_node__scrub_parse_answer(buf, len - 3, 2, 13, &found, d, why,
                                          sizeof why));
    CHECK(!found && strstr(why, "does not parse") != NULL);
    free(buf);
    /* An empty answer (a node that has no result yet). */
    CHECK(kyufu_node__scrub_parse_answer((const uint8_t *)"", 0, 2, 13, &found,
                                         d, why, sizeof why));
    CHECK(!found);
    /* Garbage. */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    CHECK(!kyufu_node__scrub_parse_answer(junk, sizeof junk, 2, 13, &found, d,
                                          why, sizeof why));
    CHECK(!found);
    /* Oversized: more results than any node keeps. */
    len = answer(&buf, KYUFU_NODE_SCRUB_RESULTS_MAX + 1, 32);
    CHECK(!kyufu_node__scrub_parse_answer(buf, len, 2, 13, &found, d, why,
                                          sizeof why));
    CHECK(!found && strstr(why, "results") != NULL);
    free(buf);
    /* A digest of the wrong length, short or long, even at another index:
     * the whole answer is refused. */
    for (size_t dl = 0; dl <= 64; dl += 31) {
        if (dl == 32) {
            continue;
        }
        len = answer(&buf, 4, dl);
        memset(d, 0x5a, 32);
        CHECK(!kyufu_node__scrub_parse_answer(buf, len, 2, 13, &found, d, why,
                                              sizeof why));
        CHECK(!found && strstr(why, "not 32") != NULL);
        memset(want, 0x5a, 32);
        CHECK(memcmp(d, want, 32) == 0); /* untouched */
        free(buf);
    }
    len = answer(&buf, 4, 33);
    CHECK(!kyufu_node__scrub_parse_answer(buf, len, 2, 10, &found, d, why,
                                          sizeof why));
    free(buf);
}

int main(void)
{
    test_verdict();
    test_answers();
    return 0;
}
