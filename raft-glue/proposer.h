/* Group commit (internal: includes raft.h; works on any struct raft, so the
 * simulation drives it on raft's fixture).
 *
 * Proposed commands queue up; while fewer than `entries_inflight_max` of our
 * entries are in flight, the whole queue is flushed as one entry (at most
 * `commands_per_entry_max` commands and `entry_bytes_max` payload bytes per
 * entry).  A lone command goes out at once: there is no timer, batching
 * comes only from commands arriving while entries are in flight.
 *
 * When an entry is applied locally the FSM hands its results to
 * kyufu_proposer__applied; when raft's apply callback fires the results are
 * split back to the waiting requests in order, and the queue is flushed
 * again.  If raft reports an error (leadership lost) but the entry was
 * applied here, the requests still succeed: applied means committed.
 * Otherwise they fail with LEADERSHIPLOST (or SHUTDOWN when closing): the
 * command may or may not commit later; the client retries with the same
 * idempotency key to learn which.
 *
 * Callbacks never fire from inside kyufu_proposer__submit. */
#ifndef KYUFU_GLUE_PROPOSER_H
#define KYUFU_GLUE_PROPOSER_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "glue.h"
#include "seal.h"

struct kyufu_proposer_limits
{
    unsigned entries_inflight_max;
    unsigned commands_per_entry_max;
    size_t entry_bytes_max;
    size_t command_bytes_max;
    unsigned queue_commands_max;
};

struct glue_pentry; /* One entry in flight (proposer.c). */

struct kyufu_proposer
{
    struct raft *raft;
    struct kyufu_proposer_limits limits;
    /* FIFO of queued requests, linked through req->queue[0]. */
    struct kyufu_glue_propose *head;
    struct kyufu_glue_propose *tail;
    unsigned n_queued;
    /* Entries in flight, linked list. */
    struct glue_pentry *inflight;
    unsigned n_inflight;
    bool flushing;
    bool closing;
    int fatal_status; /* nonzero: refuse everything (node stopping) */
    /* Called once when raft_apply failed in a way that may leave raft's
     * in-memory log and its disk log disagreeing (docs/raft.md, "Raft call
     * failures"); the proposer is fatal (EIO) from then on and the owner
     * must stop the node.  May be NULL.  Called from inside submit or a
     * raft callback: it must not call back into the proposer or raft. */
    void (*fatal_hook)(void *arg, int status, const char *msg);
    void *fatal_arg;
    /* The store whose cluster master key seals entries (seal.h), set by
     * the owner after init; NULL, or a store without a key: entries go out
     * as version-1 frames.  Looked at on every entry, so a key set later
     * takes effect at the next one. */
    const struct kyufu_storage *storage;
    struct glue_stream_key key; /* wiped by kyufu_proposer__close */
    /* Counters. */
    uint64_t n_entries;
    uint64_t n_commands;
    uint64_t n_sealed;          /* entries proposed as version-2 frames */
};

void kyufu_proposer__init(struct kyufu_proposer *p,
                          struct raft *raft,
                          const struct kyufu_proposer_limits *limits);

/* Defaults from limits.h. */
void kyufu_proposer__default_limits(struct kyufu_proposer_limits *l);

/* Queue one command.  Returns 0 (cb fires later) or NOTLEADER, TOOBIG, BUSY,
 * SHUTDOWN, NOMEM, INVALID, STORAGE, IO (cb never fires).  IO: raft_apply
 * failed past its up-front checks; the proposer is now fatal. */
int kyufu_proposer__submit(struct kyufu_proposer *p,
                           struct kyufu_glue_propose *req,
                           const Kyufu__V1__Command *cmd,
                           kyufu_glue_propose_cb cb);
/* Same, the result handed over as apply encoded it (never unpacked). */
int kyufu_proposer__submit_packed(struct kyufu_proposer *p,
                                  struct kyufu_glue_propose *req,
                                  const Kyufu__V1__Command *cmd,
                                  kyufu_glue_propose_packed_cb cb);

/* FSM hook: the entry at (index, term) was applied here; takes ownership of
 * *results. */
void kyufu_proposer__applied(void *arg,
                             uint64_t index,
                             uint64_t term,
                             struct kyufu_storage_results *results);

/* Fail every queued request with `status`; in-flight entries complete
 * through raft's callbacks.  After close, submit returns SHUTDOWN.  Wipes
 * the proposer's copy of the stream key. */
void kyufu_proposer__close(struct kyufu_proposer *p, int status);

/* Stop accepting (fatal storage error): queued requests fail with status. */
void kyufu_proposer__fatal(struct kyufu_proposer *p, int status);

#endif /* KYUFU_GLUE_PROPOSER_H */
