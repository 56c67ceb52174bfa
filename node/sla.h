/* kyufud's SLA watch (docs/sla.md "Alerts and incidents"): the evaluator's
 * loop side (sla_node.c) and the alert hook (sla_hook.c).
 *
 * Happy path, every KYUFU_NODE_SLA_TICK_MS on the loop thread: gather the
 * inputs (raft status; on the leader, each voter's last Status answer, asked
 * again each tick with a KYUFU_NODE_SLA_PROBE_MS deadline) -> evaluate
 * (sla_eval.h) -> each alert not active before is raised: one log line
 * ("SLA alert raised", warn or error), one hook run (queued), and on the
 * leader an OpenIncident proposal (idempotent in the state machine: one
 * incident per alert and subject while it is open); each active alert no
 * longer found is cleared (a log line, a hook run).  An alert therefore
 * surfaces within one tick plus one probe deadline of its cause being
 * visible (< 1 s).
 *
 * Failure modes: a proposal that fails (not leader, busy) is tried again
 * at the next tick while the alert holds; a hook that cannot start, exits
 * non-zero or outlives its timeout (killed) is logged, never retried; more
 * than KYUFU_NODE_SLA_HOOK_QUEUE_MAX queued runs drop the newest (counted).
 * Without [sla] slo_file nothing runs (NodeStatus.sla_evaluated false). */
#ifndef KYUFU_NODE_SLA_H
#define KYUFU_NODE_SLA_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "glue.h"
#include "grpc.h"
#include "limits.h"
#include "sla_eval.h"

struct kyufu_node;

struct kyufu_node_sla_active
{
    struct kyufu_sla_alert alert;
    int64_t since_ms;        /* wall clock when raised */
    uint64_t incident_id;    /* 0 until the leader's proposal came back;
                                UINT64_MAX: refused, not tried again */
    bool proposing;
    bool seen;               /* scratch of one tick */
};

/* One voter of the Raft configuration this node holds (not [cluster]: a
 * node replaced or added since is watched as it is), by id; id 0 is a free
 * entry (one whose call is still out is not reused until it answers). */
struct kyufu_node_sla_probe
{
    uint64_t id;
    struct kyufu_node *node;
    struct kyufu_grpc_client_req req;
    bool pending;
    bool heard;
    uint64_t last_ms;        /* uv_now of the last answer (or of the start
                                of looking) */
    uint64_t applied;
};

struct kyufu_node_sla_proposal
{
    struct kyufu_node *node;
    struct kyufu_glue_propose req;
    bool busy;
    enum kyufu_sla_kind kind;
    char subject[32];
};

struct kyufu_node_sla_hook_run
{
    char state[8];           /* raised | cleared */
    struct kyufu_sla_alert alert;
    int64_t since_ms;
};

struct kyufu_node_sla_hook
{
    uv_process_t process;
    uv_timer_t timeout;
    bool running;
    bool killed;
    struct kyufu_node_sla_hook_run queue[KYUFU_NODE_SLA_HOOK_QUEUE_MAX];
    unsigned head, n;
    uint64_t dropped;
    uint64_t runs;
};

/* The availability ledger's figures as this node's store holds them
 * (sla_ledger.c): read again only when the store's detail changed, the
 * month turned, or KYUFU_NODE_SLA_LEDGER_REFRESH_MS passed. */
#define KYUFU_NODE_SLA_CAUSES 7u /* FailoverCause: unknown .. drill_planned */
struct kyufu_node_sla_ledger
{
    bool read;               /* read at least once */
    uint64_t changes;        /* kyufu_storage_availability_changes then */
    uint64_t read_at;        /* uv_now of the read */
    char month[8];           /* "YYYY-MM" (UTC) */
    int64_t month_from_ms, month_to_ms;
    bool have;               /* the ledger covers part of this month */
    uint64_t observed_ms;    /* of this month, by the ledger */
    uint64_t unavailable_ms; /* this month, maintenance included */
    uint64_t counted_ms;     /* the same, planned maintenance excluded */
    uint64_t hour_unavailable_ms; /* windows in the hour before read_at */
    uint64_t failovers[KYUFU_NODE_SLA_CAUSES]; /* this month, by cause */
    bool truncated;          /* the month had more detail than one report
                                returns (KYUFU_AVAIL_REPORT_ITEMS_MAX) */
    bool have_failover;      /* the newest failover of the month or the
                                last hour */
    uint64_t last_term, last_rto_ms, last_cause;
    int64_t last_first_commit_ms;
};

/* The ledger's figures now (read again if stale, see above); NULL when the
 * node has no store open or the read failed (logged once per failure
 * streak).  Loop thread. */
const struct kyufu_node_sla_ledger *kyufu_node__sla_ledger(struct kyufu_node *n);
/* The cause's name as the report writes it ("crash", "drill_planned"). */
const char *kyufu_node__sla_cause_name(uint64_t cause);

struct kyufu_node_sla
{
    bool enabled;            /* the config has an SLO */
    bool started;            /* handles initialised */
    uv_timer_t tick;
    bool was_leader;
    uint64_t leader_seen_ms; /* uv_now when a leader was last known */
    struct kyufu_node_sla_probe probes[KYUFU_NODE_CLUSTER_SIZE_MAX];
    struct kyufu_node_sla_active active[KYUFU_SLA_ALERTS_MAX];
    size_t n_active;
    struct kyufu_node_sla_proposal proposals[KYUFU_NODE_SLA_PROPOSALS_MAX];
    uint64_t seq;            /* OpenIncident key sequence counter */
    uint64_t raised_total;   /* alerts raised since start (metrics) */
    struct kyufu_node_sla_hook hook;
    struct kyufu_node_sla_ledger ledger;
    bool ledger_failing;     /* the last read failed (logged once) */
};

/* Initialise the handles and, with an SLO, start the tick.  0 or -1. */
int kyufu_node__sla_start(struct kyufu_node *n, char *errmsg, size_t len);

/* Stop the tick and close every handle (a running hook is killed). */
void kyufu_node__sla_close(struct kyufu_node *n);

/* The alerts active now (read by Status and metrics): *count of them. */
const struct kyufu_node_sla_active *kyufu_node__sla_active(
    const struct kyufu_node *n, size_t *count);

/* Hook (sla_hook.c): queue a run of [sla] alert_command for an alert that
 * was raised or cleared; no-op without a command. */
void kyufu_node__sla_hook(struct kyufu_node *n, const char *state,
                          const struct kyufu_sla_alert *a, int64_t since_ms);
void kyufu_node__sla_hook_init(struct kyufu_node *n);
void kyufu_node__sla_hook_close(struct kyufu_node *n);

#endif /* KYUFU_NODE_SLA_H */
