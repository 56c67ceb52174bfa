/* Scrub's pure parts (scrub_verdict.h): no loop, no node. */
#include "scrub_verdict.h"

#include <stdio.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "limits.h"

enum kyufu_node_scrub_verdict kyufu_node__scrub_verdict(
    const uint8_t own[32], const uint8_t (*others)[32], size_t n_others,
    size_t n_voters, uint8_t majority[32])
{
    size_t need = n_voters / 2 + 1;
    size_t answered = n_others + (own != NULL ? 1 : 0);
    size_t best = 0;
    /* Each distinct digest among the others, counted with own's votes. */
    for (size_t i = 0; i < n_others; i++) {
        size_t votes = own != NULL && memcmp(own, others[i], 32) == 0;
        for (size_t j = 0; j < n_others; j++) {
            votes += memcmp(others[i], others[j], 32) == 0;
        }
        if (votes > best) {
            best = votes;
            memcpy(majority, others[i], 32);
        }
    }
    if (own != NULL && n_others == 0) {
        best = 1;
        memcpy(majority, own, 32);
    }
    if (best >= need) {
        return own != NULL && memcmp(own, majority, 32) == 0
                   ? KYUFU_NODE_SCRUB_PASS
                   : KYUFU_NODE_SCRUB_CORRUPT;
    }
    return answered >= n_voters ? KYUFU_NODE_SCRUB_NO_MAJORITY
                                : KYUFU_NODE_SCRUB_WAIT;
}

bool kyufu_node__scrub_parse_answer(const uint8_t *bytes, size_t len,
                                    uint64_t from, uint64_t index, bool *found,
                                    uint8_t digest[32], char *why,
                                    size_t why_len)
{
    *found = false;
    Kyufu__V1__ScrubDigestsResponse *r =
        kyufu__v1__scrub_digests_response__unpack(NULL, len, bytes);
    if (r == NULL) {
        snprintf(why, why_len, "the answer does not parse");
        return false;
    }
    bool ok = true;
    if (r->n_results > 0 && r->node_id != from) {
        /* A digest counts for the voter it came from only: one node's
         * certificate answering for two voters would make a majority. */
        snprintf(why, why_len, "the answer is node %llu's, not node %llu's",
                 (unsigned long long)r->node_id, (unsigned long long)from);
        ok = false;
    }
    if (ok && r->n_results > KYUFU_NODE_SCRUB_RESULTS_MAX) {
        snprintf(why, why_len, "the answer names %zu results (at most %u)",
                 r->n_results, KYUFU_NODE_SCRUB_RESULTS_MAX);
        ok = false;
    }
    for (size_t i = 0; ok && i < r->n_results; i++) {
        const Kyufu__V1__ScrubResult *x = r->results[i];
        if (x->digest.len != 32) {
            snprintf(why, why_len,
                     "result %zu has a digest of %zu bytes (not 32)", i,
                     x->digest.len);
            ok = false;
        }
    }
    for (size_t i = 0; ok && i < r->n_results; i++) {
        if (r->results[i]->index == index) {
            memcpy(digest, r->results[i]->digest.data, 32);
            *found = true;
        }
    }
    kyufu__v1__scrub_digests_response__free_unpacked(r, NULL);
    return ok;
}
