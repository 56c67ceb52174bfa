/* Follower refusals (issue 8 item 7; docs/identity.md "Refusals"): the
 * parts without I/O, apart from the node so that tests/node drives them.
 *
 * A node that is not the leader cannot propose its refusal records
 * (oplog.h).  It queues them (struct kyufu_node_refusal_queue, bounded by
 * KYUFU_NODE_REFUSAL_QUEUE_MAX: a full queue counts what it turns away in
 * `dropped`) and refusal_report.c sends them to the leader in numbered
 * batches (Cluster-internal RPC NodeInternal/ReportRefusals).  A batch is
 * taken from the front of the queue and stays there until acknowledged:
 * taking again before an acknowledgement gives the same batch (same
 * number, same records, same dropped count), so a retry after a lost
 * answer is recognised by the leader and not recorded twice.
 *
 * The leader checks a received batch whole (kyufu_node__refusal_batch_check:
 * one malformed field refuses it all, nothing recorded) and keeps, per
 * reporting node (struct kyufu_node_refusal_sender), the last batch it
 * recorded and its own bound: at most KYUFU_NODE_REFUSAL_PER_NODE_MAX
 * records per KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS; what is over it is
 * counted and becomes one count record when the window ends, so a node
 * that misbehaves cannot grow the chain faster than that.
 *
 * Not thread-safe: the loop thread's. */
#ifndef KYUFU_NODE_REFUSAL_BATCH_H
#define KYUFU_NODE_REFUSAL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kyufu/v1/service.pb-c.h"
#include "limits.h"
#include "storage_limits.h"

/* Text fields of a record: printable ASCII only (the sender cleans them;
 * the leader refuses anything else), cut to what apply takes. */
#define KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX 200u

/* One refusal record, as RecordAccess will carry it (strings NUL-ended,
 * printable ASCII). */
struct kyufu_node_refusal_entry
{
    char method[KYUFU_ACCESS_METHOD_BYTES_MAX + 1];
    uint32_t outcome; /* a ledger Code, not OK */
    char message[KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX];
    char peer[KYUFU_ACCESS_PEER_BYTES_MAX + 1];
    char certificate[KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX];
    bool has_cert;
    uint8_t cert_sha256[32];
    char actor[KYUFU_ACTOR_BYTES_MAX + 1]; /* "" when nobody */
    uint64_t session;
    int64_t time_ms; /* wall clock when refused */
};

struct kyufu_node_refusal_queue
{
    struct kyufu_node_refusal_entry e[KYUFU_NODE_REFUSAL_QUEUE_MAX];
    size_t head;      /* oldest entry */
    size_t count;     /* entries queued, the batch taken included */
    uint64_t dropped; /* turned away (full), the batch's share included */
    uint64_t seq;     /* number of the last batch taken (0: none yet) */
    bool taken;       /* a batch is taken and not acknowledged */
    size_t taken_n;   /* its records (the first taken_n entries) */
    uint64_t taken_dropped;
};

/* Queue e (copied).  false when the queue is full: e is counted in
 * q->dropped instead. */
bool kyufu_node__refusal_queue_push(struct kyufu_node_refusal_queue *q,
                                    const struct kyufu_node_refusal_entry *e);

/* Take the next batch (or the one taken and not acknowledged yet) and pack
 * it as a ReportRefusalsRequest naming boot_id into *buf (malloc'd, the
 * caller frees it) and *len.  Returns 0; 1 when there is nothing to send
 * (*buf NULL); -1 when out of memory (nothing taken). */
int kyufu_node__refusal_queue_pack(struct kyufu_node_refusal_queue *q,
                                   uint64_t boot_id,
                                   uint8_t **buf,
                                   size_t *len);

/* The batch taken was recorded: remove its records and its dropped count.
 * No effect when no batch is taken. */
void kyufu_node__refusal_queue_ack(struct kyufu_node_refusal_queue *q);

/* The i-th queued entry (i < q->count), oldest first. */
const struct kyufu_node_refusal_entry *
kyufu_node__refusal_queue_at(const struct kyufu_node_refusal_queue *q,
                             size_t i);

/* Empty the queue (its records were proposed by this node itself, now
 * the leader): entries, dropped count and the batch taken. */
void kyufu_node__refusal_queue_clear(struct kyufu_node_refusal_queue *q);

/* The entry of a received refusal, one of a batch that
 * kyufu_node__refusal_batch_check passed (the inverse of what
 * kyufu_node__refusal_queue_pack sends). */
void kyufu_node__refusal_entry_of(const Kyufu__V1__RefusalReport *rr,
                                  struct kyufu_node_refusal_entry *e);

/* The Codes a refusal record may carry, the one list of them (oplog.c maps
 * a call's status onto it; a received batch is checked against it):
 * INVALID_ARGUMENT, NOT_FOUND (a Get of personal data that found nothing),
 * PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION. */
bool kyufu_node__refusal_code(uint32_t code);

/* A received batch is well formed: boot_id and batch_seq > 0, at most
 * KYUFU_NODE_REFUSAL_BATCH_MAX refusals, each with a method of 1..128 and
 * a message, peer and certificate within their bounds, all printable
 * ASCII; an outcome that is a refusal Code (not OK); cert_sha256 empty or
 * 32 bytes; an actor empty or a staff id ([a-z0-9._-], 1..64); time_ms >
 * 0.  Returns 0, or -1 with why (naming the refusal and the field) in
 * `why` (len bytes). */
int kyufu_node__refusal_batch_check(const Kyufu__V1__ReportRefusalsRequest *r,
                                    char *why,
                                    size_t len);

/* The leader's state for one reporting node. */
struct kyufu_node_refusal_sender
{
    uint64_t node_id;         /* 0: a free slot */
    uint64_t boot_id;         /* the run of the sender last seen */
    uint64_t last_seq;        /* last batch recorded in that run */
    bool busy;                /* a batch of this node is being recorded */
    uint64_t window_start_ms; /* the bound's window */
    unsigned records;         /* records admitted in it */
    uint64_t bounded;         /* records left out in it */
};

struct kyufu_node_refusal_senders
{
    struct kyufu_node_refusal_sender s[KYUFU_NODE_CLUSTER_SIZE_MAX];
};

/* The slot of node_id: its own, a free one, or the one whose window is
 * oldest among those not busy (a member removed long ago).  NULL when
 * every slot is busy. */
struct kyufu_node_refusal_sender *
kyufu_node__refusal_sender(struct kyufu_node_refusal_senders *ss,
                           uint64_t node_id);

/* Whether batch (boot_id, seq) of this sender was recorded already (a
 * retry).  A new boot_id starts the numbering again. */
bool kyufu_node__refusal_sender_seen(struct kyufu_node_refusal_sender *s,
                                     uint64_t boot_id,
                                     uint64_t seq);

/* How many of `want` records fit this sender's bound at now_ms (the rest
 * are counted in s->bounded).  When the window had ended with records left
 * out, *flush gets their number (the caller proposes one count record,
 * outside the bound: at most one per window) and a new window opens. */
unsigned kyufu_node__refusal_sender_admit(struct kyufu_node_refusal_sender *s,
                                          uint64_t now_ms,
                                          unsigned want,
                                          uint64_t *flush);

#endif /* KYUFU_NODE_REFUSAL_BATCH_H */
