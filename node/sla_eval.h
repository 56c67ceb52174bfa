/* The SLA evaluator (docs/sla.md "Alerts and incidents").
 *
 * kyufu_sla_evaluate is pure: from the SLO (node/slo.h) and what the node
 * sees now (struct kyufu_sla_inputs) it lists the alerts that hold.  No I/O,
 * no clock: the caller (sla_node.c) gathers the inputs every
 * KYUFU_NODE_SLA_TICK_MS, diffs the list against the alerts already raised,
 * logs each change, runs the hook (sla_hook.c) and, on the leader, opens an
 * incident per raised alert.
 *
 * Rules (severity in brackets):
 *   availability_budget  the month's write-unavailability >= its budget
 *                        [critical]; >= 75% of it [warning]
 *   burn_rate            the last hour burned the budget more than
 *                        burn_rate_max times the even rate [critical]
 *   rto                  the last failover's RTO > [rto] target_ms, for
 *                        KYUFU_SLA_RTO_HOLD_MS after it [critical]
 *   follower_lag         (leader) a peer's applied index more than
 *                        follower_lag_entries behind the commit [warning]
 *   node_unreachable     (leader) a peer not heard from for more than
 *                        follower_contact_ms [warning; critical when fewer
 *                        than a majority are heard]; (follower) no leader
 *                        known for that long [critical], subject "leader"
 *   backup_age           the newest good backup older than interval_hours
 *                        [critical]; skipped while no backup exists
 * The availability rules need the availability ledger (have_ledger); until
 * the node has one they are skipped, not guessed. */
#ifndef KYUFU_NODE_SLA_EVAL_H
#define KYUFU_NODE_SLA_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slo.h"

/* An RTO breach stays an active alert this long after its failover (its
 * incident keeps it for good). */
#define KYUFU_SLA_RTO_HOLD_MS (15u * 60u * 1000u)
/* Peers the evaluator looks at (node/limits.h's cluster size bound). */
#define KYUFU_SLA_PEERS_MAX 16u
/* Alerts held at once: one per rule and peer, with room. */
#define KYUFU_SLA_ALERTS_MAX 48u
/* Share of the budget used that warns, per mille. */
#define KYUFU_SLA_BUDGET_WARN_PERMILLE 750u

#define KYUFU_SLA_ALERT_KINDS(X)                                             \
    X(BUDGET, "availability_budget")                                         \
    X(BURN, "burn_rate")                                                     \
    X(RTO, "rto")                                                            \
    X(LAG, "follower_lag")                                                   \
    X(UNREACHABLE, "node_unreachable")                                       \
    X(BACKUP, "backup_age")

enum kyufu_sla_kind {
#define KYUFU_SLA__KIND(name, text) KYUFU_SLA_##name,
    KYUFU_SLA_ALERT_KINDS(KYUFU_SLA__KIND)
#undef KYUFU_SLA__KIND
    KYUFU_SLA_KIND_COUNT
};

const char *kyufu_sla_kind_name(enum kyufu_sla_kind k);

enum kyufu_sla_severity {
    KYUFU_SLA_OK = 0,       /* Nagios exit codes */
    KYUFU_SLA_WARNING = 1,
    KYUFU_SLA_CRITICAL = 2,
};

const char *kyufu_sla_severity_name(enum kyufu_sla_severity s);

struct kyufu_sla_peer
{
    uint64_t id;
    bool self;
    bool heard;            /* answered at least once (applied is valid) */
    uint64_t silent_ms;    /* since its last answer (or since we started
                              looking, when it never answered) */
    uint64_t applied_index;
};

struct kyufu_sla_inputs
{
    bool leader;
    uint64_t commit_index;
    uint64_t no_leader_ms;  /* follower: how long no leader has been known */
    struct kyufu_sla_peer peers[KYUFU_SLA_PEERS_MAX];
    size_t n_peers;         /* the voters, this node included */

    /* The availability ledger (docs/sla.md), when the node has one. */
    bool have_ledger;
    int64_t month_from_ms, month_to_ms; /* this calendar month, UTC */
    uint64_t month_unavailable_ms;      /* planned maintenance excluded */
    uint64_t hour_unavailable_ms;       /* in the last hour */
    bool have_failover;
    uint64_t last_failover_term;
    uint64_t last_failover_age_ms;
    uint64_t last_rto_ms;

    /* Backups (node/backup_schedule.c's view of [backup] directory;
     * have_backup false, none known, skips the rule). */
    bool have_backup;
    uint64_t newest_backup_age_ms;
};

struct kyufu_sla_alert
{
    enum kyufu_sla_kind kind;
    enum kyufu_sla_severity severity;
    char subject[32];   /* "cluster", "node/2", "term/7", "leader" */
    char summary[200];
    double value;
    double threshold;
};

/* The alerts that hold for `in` under `slo`, written to out[0..cap);
 * returns how many (at most cap; KYUFU_SLA_ALERTS_MAX always suffices).
 * The order is the rules' order above, peers in input order. */
size_t kyufu_sla_evaluate(const struct kyufu_slo *slo,
                          const struct kyufu_sla_inputs *in,
                          struct kyufu_sla_alert *out,
                          size_t cap);

/* The worst severity of alerts[0..n) (OK when n == 0). */
enum kyufu_sla_severity kyufu_sla_worst(const struct kyufu_sla_alert *alerts,
                                        size_t n);

#endif /* KYUFU_NODE_SLA_EVAL_H */
