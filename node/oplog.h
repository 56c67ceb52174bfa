/* The operation log (操作ログ) of what is not a write (issue 8;
 * docs/identity.md "The operation log"): access records of reads that
 * return personal data, and of refused calls and connections, proposed as
 * RecordAccess commands into the replicated audit chain.
 *
 * Reads.  A read of personal data (service_read.c) does not answer with
 * kyufu_node__call_done_msg but with kyufu_node__oplog_answer: the answer
 * is packed at once, a RecordAccess naming the objects it holds is
 * proposed, and the packed bytes leave the node only from the proposal's
 * callback, once the record is committed and applied.  If the record does
 * not commit (no leader any more, shutdown, a cluster whose version does
 * not know RecordAccess yet, apply refused it), the answer is withheld and
 * the call gets UNAVAILABLE (INTERNAL if apply refused it): no personal data
 * ever leaves unrecorded.  Raft-glue's group committer packs the records of
 * concurrent reads into one Raft entry (one fsync for many).  Only the
 * leader can propose, so only the leader answers such reads: a follower
 * forwards them, ReadOptions.stale ones included (service_read.c).
 *
 * Refusals.  kyufu_node__oplog_refused (a call refused by authentication
 * or the permission table) and kyufu_node__oplog_connection (a connection
 * refused by TLS, the allow-list or the connection limits: refusal.c)
 * propose a RecordAccess with the refusal's code, rate-limited: at most
 * KYUFU_NODE_OPLOG_REFUSALS_BURST records per reason (method or connection
 * refusal kind, and code) and KYUFU_NODE_OPLOG_REFUSALS_TOTAL for all
 * reasons per KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS; what is left out is
 * counted, and the counts become records when the windows end (at most one
 * per reason slot and one for the rest, "several kinds", per window), so an
 * attacker, even one varying the method, cannot grow the chain faster than
 * TOTAL + REASONS + 1 records per window.  Only the leader can propose:
 * a follower queues its records, bounded alike, and sends them to the
 * leader (refusal_report.c, refusal_batch.h), which proposes them naming
 * the follower (docs/identity.md "Refusals").
 *
 * Loop thread only. */
#ifndef KYUFU_NODE_OPLOG_H
#define KYUFU_NODE_OPLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "auth.h"
#include "glue.h"
#include "grpc.h"
#include "refusal_batch.h"

struct kyufu_node;
struct kyufu_node_call;

/* The method name of a count record of refusals of more than one reason
 * (PERMISSION_DENIED): the window's rest here, a follower's full queue
 * and a reporting node's excess on the leader (refusal_report.c). */
#define KYUFU_NODE_OPLOG_SEVERAL "refusals of several kinds"

/* Reasons a refusal is counted under (one window each). */
#define KYUFU_NODE_OPLOG_REASONS 24u

struct kyufu_node_oplog_reason
{
    uint64_t window_start_ms; /* uv_now when its window opened */
    unsigned recorded;        /* records proposed in this window */
    uint64_t suppressed;      /* left out in this window */
    char method[80];          /* what the count record names */
    int code;
};

struct kyufu_node_oplog
{
    uv_timer_t timer; /* proposes the count records of ended windows */
    bool started;
    struct kyufu_node_oplog_reason reason[KYUFU_NODE_OPLOG_REASONS];
    /* All reasons together: records proposed in the current window, and
     * refusals counted but not yet in a count record (a reason that lost
     * its slot, or a count over the total bound). */
    uint64_t window_start_ms;
    unsigned window_records;
    uint64_t overflow;
    /* Counters for the metrics and the tests. */
    uint64_t reads_recorded;   /* read records committed */
    uint64_t reads_withheld;   /* answers withheld: record not committed */
    uint64_t refusals_proposed;
    uint64_t refusals_suppressed;
    uint64_t refusals_lost;    /* could not be proposed (follower, no leader) */
    uint64_t key_seq;          /* the records' keys, kyufu-node-ID:key_seq */
    /* Checkpoints (checkpoint_node.c; [audit] checkpoint_file). */
    uv_timer_t cp_timer;
    bool cp_started;
    bool cp_busy;              /* one line being signed and written */
    uint64_t cp_seq;           /* seq of the last line written */
    uint64_t cp_ms;            /* uv_now of the last line (or the start) */
    uint64_t checkpoints_written;
    uint64_t checkpoints_failed;
    /* Follower refusals (refusal_report.c).  On a follower: the records
     * waiting for the leader and the one report in flight; on the
     * leader: its state per reporting node. */
    struct kyufu_node_refusal_queue queue;
    struct kyufu_node_refusal_senders senders;
    uv_timer_t report_timer;
    bool report_started;
    bool report_in_flight;
    bool report_failing;       /* the last report failed (logged once) */
    struct kyufu_grpc_client_req report_req;
    uint64_t boot_id;          /* this run's, in every report */
    uint64_t reports_sent;     /* batches the leader recorded */
    uint64_t reports_failed;
    uint64_t refusals_reported; /* records in those batches */
    uint64_t refusals_received; /* on the leader: from other nodes */
};

/* Start the flush timer (after the glue started) / close it (the node's
 * last step). */
void kyufu_node__oplog_start(struct kyufu_node *n);
void kyufu_node__oplog_close(struct kyufu_node *n);

/* Answer call c with `msg` once a RecordAccess naming objects[0..n) (each
 * "kind/id", borrowed for the call only) with outcome OK is committed.
 * `p` is the caller (NULL: nobody known).  The call must be on the leader
 * (after its barrier, or a stale read that reached the leader). */
void kyufu_node__oplog_answer(struct kyufu_node_call *c,
                              const struct kyufu_principal *p,
                              const ProtobufCMessage *msg,
                              const char *const *objects,
                              size_t n_objects);

/* Record a refused call: grpc_code UNAUTHENTICATED or PERMISSION_DENIED
 * (or another refusal code), msg why (never a secret).  p may be NULL.
 * Never answers the call: the caller does. */
void kyufu_node__oplog_refused(struct kyufu_node *n,
                               const struct kyufu_grpc_call *call,
                               const struct kyufu_principal *p,
                               int grpc_code,
                               const char *msg);

/* Record a refused connection (refusal.c): `reason` the refusal kind's
 * name, peer "ip:port", subject the certificate subject presented ("" if
 * none), detail OpenSSL's reason. */
void kyufu_node__oplog_connection(struct kyufu_node *n,
                                  const char *reason,
                                  const char *peer,
                                  const char *subject,
                                  const char *detail);

/* The rate bound alone (the tests drive it with their own clock): whether
 * the refusal of `method`/`code` at `now_ms` gets its own record (true) or
 * is counted (false).  When this reason's window had ended with refusals
 * left out, *flush is set to their number (the caller proposes the count
 * record: it counts against the total) and its window restarts.  Counts
 * that cannot be recorded now go to o->overflow (the timer's). */
bool kyufu_node__oplog_admit(struct kyufu_node_oplog *o,
                             const char *method,
                             int code,
                             uint64_t now_ms,
                             uint64_t *flush);

/* The refusal record e, taken by node seen_by: proposed if this node is
 * the leader (no call waits for it), else counted in refusals_lost. */
void kyufu_node__oplog_record(struct kyufu_node *n,
                              const struct kyufu_node_refusal_entry *e,
                              uint64_t seen_by);
/* The same through the caller's req and cb (kyufu_glue_propose's
 * contract: 0, or an error and cb never called).  The caller checked
 * kyufu_node__oplog_access_known. */
int kyufu_node__oplog_propose(struct kyufu_node *n,
                              struct kyufu_glue_propose *req,
                              const struct kyufu_node_refusal_entry *e,
                              uint64_t seen_by,
                              kyufu_glue_propose_cb cb);
/* Whether the cluster's version knows RecordAccess. */
bool kyufu_node__oplog_access_known(struct kyufu_node *n);

/* Follower refusals (refusal_report.c; docs/identity.md "Refusals").
 * start/close: the send timer (every KYUFU_NODE_REFUSAL_SEND_MS), from
 * kyufu_node__oplog_start/close.  push: queue a record this follower took
 * (full: counted, the count is reported); a full batch is sent at once.
 * tick: on every oplog window, the leader's count records of reporting
 * nodes whose window ended with records over its bound. */
void kyufu_node__refusal_report_start(struct kyufu_node *n);
void kyufu_node__refusal_report_close(struct kyufu_node *n);
void kyufu_node__refusal_report_push(struct kyufu_node *n,
                                     const struct kyufu_node_refusal_entry *e);
void kyufu_node__refusal_report_tick(struct kyufu_node *n);

/* Checkpoints (checkpoint_node.c): every KYUFU_NODE_CHECKPOINT_TICK_MS,
 * when [audit] checkpoint_file is set, look at the chain's head; once
 * checkpoint_records records were added since the last line, or
 * checkpoint_interval_seconds passed with any added, sign a line with the
 * node's TLS key (read again each time: rotation needs no restart) and
 * append it, on a libuv work thread (a mount on another machine may be
 * slow; the loop never waits).  A failure is logged and tried again at the
 * next tick; it never stops the node.  Every node writes its own view. */
void kyufu_node__checkpoint_start(struct kyufu_node *n);
void kyufu_node__checkpoint_close(struct kyufu_node *n);

#endif /* KYUFU_NODE_OPLOG_H */
