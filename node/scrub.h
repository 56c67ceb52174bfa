/* Scrub (issue 13; docs/scrub.md): every replica digests its state at the
 * same raft index and compares the digest with the other voters', so a
 * store that silently differs (a flipped bit in data.mdb: LMDB keeps no
 * checksums) stops its node instead of answering reads and deciding
 * writes from damaged state.
 *
 * Happy path: the leader proposes a ScrubMark every [scrub]
 * interval_seconds (once the cluster version allows it) -> every replica
 * applies it (nothing changes but the applied index) -> the node's apply
 * callback sees the mark (kyufu_storage_take_scrub_mark) and begins a
 * storage snapshot right there, so it sees exactly the state at the
 * mark's index -> a libuv work thread digests it (storage/digest.c, full
 * scan) while the loop keeps applying and serving -> the result (index,
 * digest) is kept (the last KYUFU_NODE_SCRUB_KEEP) and answered to peers
 * by NodeInternal.ScrubDigests -> the node asks every other voter for its
 * digest at that index, every KYUFU_NODE_SCRUB_ASK_MS until it can decide
 * or KYUFU_NODE_SCRUB_COMPARE_MS passed.
 *
 * Verdicts: a majority of the voters (this node counted when it is one)
 * agrees with this node's digest: passed.  A majority agrees on another
 * digest: this node's store is damaged: one CORRUPT line (index, own and
 * majority digest), kyufu_scrub_corrupt 1, stop with exit 4 (the node
 * must be repaired or replaced; a leader stops too, another is elected).
 * Every voter answered and no digest has a majority: logged and counted
 * (kyufu_scrub_no_majority_total), the node goes on.  Too few answers in
 * time: logged, counted as inconclusive.  The digest's scan failing on a
 * damaged store (MDB_CORRUPTED, a page LMDB trips over) stops the node
 * the same way.
 *
 * Failure modes: a mark applied while the previous digest still runs is
 * skipped (counted); a snapshot that cannot begin (reader table full) is
 * skipped; an answer that does not parse, names more than
 * KYUFU_NODE_SCRUB_RESULTS_MAX results or a digest that is not 32 bytes is
 * ignored (logged) and changes nothing.  The node's stop waits for a
 * running digest (node.c finish). */
#ifndef KYUFU_NODE_SCRUB_H
#define KYUFU_NODE_SCRUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "glue.h"
#include "grpc.h"
#include "limits.h"
#include "scrub_verdict.h"
#include "storage.h"

struct kyufu_node;
struct kyufu_node_call;

struct kyufu_node_scrub_result
{
    uint64_t index;
    uint8_t digest[32];
};

/* One other voter asked for its digest at the index being compared. */
struct kyufu_node_scrub_peer
{
    struct kyufu_node *node;
    struct kyufu_grpc_client_req req;
    uint64_t id;       /* 0: slot unused */
    bool busy;         /* a call in flight */
    bool have;         /* digest holds its digest at the compared index */
    uint8_t digest[32];
};

struct kyufu_node_scrub
{
    uv_timer_t timer;      /* the leader's marks, every interval */
    uv_timer_t ask_timer;  /* asks the peers while comparing */
    bool timers_init;
    bool proposing;        /* a ScrubMark is in flight */
    struct kyufu_glue_propose propose;
    /* The digest on a work thread. */
    uv_work_t work;
    bool working;
    struct kyufu_storage_snapshot *snap;
    uint64_t work_index;
    uint64_t work_applied; /* the applied index the snapshot saw */
    uint8_t work_digest[32];
    int work_rv;
    /* The last results, oldest first. */
    struct kyufu_node_scrub_result kept[KYUFU_NODE_SCRUB_KEEP];
    size_t n_kept;
    /* The comparison of the newest result. */
    bool comparing;
    struct kyufu_node_scrub_result own;
    uint64_t compare_until;  /* uv_now bound */
    struct kyufu_node_scrub_peer peers[KYUFU_NODE_CLUSTER_SIZE_MAX];
    /* Metrics (docs/metrics.md). */
    uint64_t done;           /* digests computed */
    uint64_t passed;
    uint64_t mismatches;     /* comparisons where some voter differed */
    uint64_t no_majority;
    uint64_t inconclusive;
    uint64_t skipped;
    uint64_t bad_answers;    /* peers' answers ignored as malformed */
    uint64_t last_index;
    int64_t last_ms;         /* wall clock of the last digest (unix ms) */
    bool corrupt;            /* this node found its store damaged */
};

/* Timers ready (after the glue started); close in the node's last step. */
void kyufu_node__scrub_start(struct kyufu_node *n);
void kyufu_node__scrub_close(struct kyufu_node *n);
/* After every applied entry (node.c's apply callback). */
void kyufu_node__scrub_applied(struct kyufu_node *n, uint64_t index);
/* NodeInternal/ScrubDigests (service.c). */
void kyufu_node__scrub_digests(struct kyufu_node_call *c);

#endif /* KYUFU_NODE_SCRUB_H */
