/* Scrub's pure parts (scrub.h, docs/scrub.md): the verdict over the
 * voters' digests and the check of a peer's ScrubDigests answer.  No loop,
 * no node: tests/node/test_scrub.c compiles them in. */
#ifndef KYUFU_NODE_SCRUB_VERDICT_H
#define KYUFU_NODE_SCRUB_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A peer's ScrubDigests answer: its digest at `index` into digest (true
 * with *found), or false with why (malformed, or results from a node
 * other than `from`, the voter asked: nothing taken).  Exposed for
 * tests/node/test_scrub.c. */
bool kyufu_node__scrub_parse_answer(const uint8_t *bytes, size_t len,
                                    uint64_t from,
                                    uint64_t index, bool *found,
                                    uint8_t digest[32], char *why,
                                    size_t why_len);

/* The verdict over the voters' digests at one index: own (NULL when this
 * node is no voter) and the others', n_voters in all.  PASS: own has a
 * majority; CORRUPT: another digest has one (into majority); NO_MAJORITY:
 * every voter answered and none has; WAIT: not decided yet. */
enum kyufu_node_scrub_verdict {
    KYUFU_NODE_SCRUB_WAIT = 0,
    KYUFU_NODE_SCRUB_PASS,
    KYUFU_NODE_SCRUB_CORRUPT,
    KYUFU_NODE_SCRUB_NO_MAJORITY,
};
enum kyufu_node_scrub_verdict kyufu_node__scrub_verdict(
    const uint8_t own[32], const uint8_t (*others)[32], size_t n_others,
    size_t n_voters, uint8_t majority[32]);

#endif /* KYUFU_NODE_SCRUB_VERDICT_H */
