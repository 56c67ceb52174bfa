/* The node's side of the availability ledger (docs/sla.md): the leader's
 * heartbeat timer, the LeaderChange a new leader proposes, the
 * FailoverIntent a leader records before it hands leadership over on
 * purpose, and the Cluster.GetAvailability / Cluster.Drill calls.
 *
 * Everything runs on the loop thread.  The proposals use requests held in
 * struct kyufu_node_avail (one of each kind in flight at a time); they fail
 * with SHUTDOWN when the glue closes, so they never outlive the node. */
#ifndef KYUFU_NODE_AVAILABILITY_H
#define KYUFU_NODE_AVAILABILITY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "glue.h"

struct kyufu_node;
struct kyufu_node_call;

/* Called once the intent committed (status 0) or failed (a glue error:
 * the hand-over goes ahead anyway, its cause then unrecorded). */
typedef void (*kyufu_node_intent_cb)(struct kyufu_node *n, int status,
                                     void *arg);

struct kyufu_node_avail
{
    uv_timer_t timer;             /* every [sla] heartbeat_ms */
    bool timer_init;
    uint64_t seq;                 /* key sequence of our own commands */
    uint64_t known_leader;        /* last leader seen (not 0) */
    uint64_t old_leader;          /* the leader before we took over */
    uint64_t lc_term_done;        /* term whose LeaderChange committed */
    uint64_t lc_term;             /* term of the one in flight */
    bool hb_pending;
    struct kyufu_glue_propose hb;
    bool lc_pending;
    struct kyufu_glue_propose lc;
    bool intent_pending;
    struct kyufu_glue_propose intent;
    kyufu_node_intent_cb intent_cb;
    void *intent_arg;
    int intent_status;
    uv_timer_t intent_timer;      /* runs intent_cb outside raft's callback */
    uv_timer_t crash_timer;       /* a crash drill's SIGKILL */
    bool crash_timer_init;
};

/* The wall clock in unix ms (idempotency key sequences, local records);
 * headers are stamped from the identity clock, kyufu_node__auth_now_ms. */
int64_t kyufu_node__wall_ms(void);

/* Propose one of kyufud's own commands (body already in cmd; the header,
 * "kyufud-<id>" key with the next of avail.seq, is made here): the
 * availability ledger's and the scrub's (scrub.c).  kyufu_glue_propose's
 * result. */
int kyufu_node__propose_own(struct kyufu_node *n,
                            struct kyufu_glue_propose *req,
                            Kyufu__V1__Command *cmd,
                            kyufu_glue_propose_cb cb);

/* Propose one of the node's system commands (RecordVersions, Reencrypt:
 * apply checks their actor "kyufu-node-<id>"), body already in cmd; the
 * header is made here, its key's sequence the wall clock in ms, or one
 * more than *seq_last when the clock stepped back (a retried round must
 * not meet the first result).  kyufu_glue_propose's result. */
int kyufu_node__propose_system(struct kyufu_node *n,
                               struct kyufu_glue_propose *req,
                               Kyufu__V1__Command *cmd,
                               uint64_t *seq_last,
                               kyufu_glue_propose_cb cb);

/* Start the heartbeat timer (after the loop is initialized). */
void kyufu_node__avail_start(struct kyufu_node *n);
/* Role or leader changed (node.c's state callback): a new leader proposes
 * its LeaderChange. */
void kyufu_node__avail_on_state(struct kyufu_node *n);
/* Close the timer (the node's last step). */
void kyufu_node__avail_close(struct kyufu_node *n);

/* On the leader: record that leadership is about to move on purpose
 * (`cause` a kyufu.v1.FailoverCause: PLANNED, POWER, DRILL_*), then call
 * cb.  Returns 0 (cb will fire, never from inside this call) or a glue
 * error (NOTLEADER, BUSY: one intent at a time; cb will not fire).  cb may
 * be NULL: the stop and power hand-overs propose the intent and start the
 * transfer at once (the intent is in raft's log before the transfer, whose
 * target must catch up with it; under a full proposer queue it may miss,
 * and the change is then recorded with the cause the new leader saw). */
int kyufu_node__avail_intent(struct kyufu_node *n,
                             uint64_t cause,
                             const char *drill_id,
                             kyufu_node_intent_cb cb,
                             void *arg);

/* Cluster.GetAvailability (from this node's store, never forwarded) and
 * Cluster.Drill (on the leader; followers forward). */
void kyufu_node__get_availability(struct kyufu_node_call *c);
void kyufu_node__drill(struct kyufu_node_call *c);

#endif /* KYUFU_NODE_AVAILABILITY_H */
