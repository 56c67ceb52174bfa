/* kyufud limits: every bound the daemon enforces on its configuration and
 * its own work, in one place, units last in the name, each with its reason.
 * Relations between them are checked at compile time at the bottom.
 *
 * Included as "limits.h" from node/ only (the node build turns off meson's
 * implicit include directories, so <limits.h> stays the system header). */
#ifndef KYUFU_NODE_LIMITS_H
#define KYUFU_NODE_LIMITS_H

/* A cluster is three voters; up to seven allows a five-node deployment and
 * a spare while a member is replaced, and no more is ever sensible for Raft. */
#define KYUFU_NODE_CLUSTER_SIZE_MAX 7u

/* Raft ids are small positive numbers an operator types into a config file. */
#define KYUFU_NODE_ID_MAX 1000000u

/* Paths in the config: far above any sane path, below PATH_MAX.  (In
 * practice a config line, key included, is bounded by libinih's INI_MAX_LINE,
 * 200 bytes in Debian's build; config.c refuses longer lines by name.) */
#define KYUFU_NODE_PATH_BYTES_MAX 512u
/* "host:port" strings; the glue's status carries 128 bytes. */
#define KYUFU_NODE_ADDRESS_BYTES_MAX 127u

/* Election timeout bounds: below 100 ms a loaded 2-core machine has spurious
 * elections; above 60 s failover would break any RTO worth promising. */
#define KYUFU_NODE_ELECTION_TIMEOUT_MS_MIN 100u
#define KYUFU_NODE_ELECTION_TIMEOUT_MS_MAX 60000u
#define KYUFU_NODE_ELECTION_TIMEOUT_MS_DEFAULT 1000u
/* Heartbeat: at least 10 ms (timer granularity under load); must be well
 * below the election timeout (checked at load: at most a third of it). */
#define KYUFU_NODE_HEARTBEAT_TIMEOUT_MS_MIN 10u
#define KYUFU_NODE_HEARTBEAT_TIMEOUT_MS_DEFAULT 100u
/* Snapshot threshold and trailing (entries): absent means raft-glue's
 * default; their bounds are raft-glue's own (glue_limits.h
 * KYUFU_SNAPSHOT_{THRESHOLD,TRAILING}_ENTRIES_{MIN,MAX}, used by config.c),
 * so --check-config refuses exactly what kyufu_glue_init would refuse at
 * start. */

/* A clean stop as leader hands leadership over first, for at most this long;
 * after it the node stops anyway (the others elect a leader on their own). */
#define KYUFU_NODE_STOP_TRANSFER_MS_MAX 5000u
/* The whole clean stop (transfer, then closing the API server, raft and the
 * store); a second signal or this deadline makes the stop forceful. */
#define KYUFU_NODE_STOP_MS_MAX 15000u

/* Calls handled at once by one node (in raft, in forwarding, in reads):
 * bounds memory; above it the node answers RESOURCE_EXHAUSTED. */
#define KYUFU_NODE_CALLS_INFLIGHT_MAX 4096u
/* A forwarded call without a caller deadline gets this one, so a dead leader
 * never pins a call forever. */
#define KYUFU_NODE_FORWARD_TIMEOUT_MS_DEFAULT 10000u
/* A call waiting for the barrier of a linearizable read, or for a commit,
 * without a caller deadline is bounded the same way. */
#define KYUFU_NODE_CALL_TIMEOUT_MS_DEFAULT 10000u

/* Loop stall detector (stall.c): a timer every 100 ms; a tick this late
 * means the loop thread did nothing else for that long (Raft's heartbeats
 * and contact checks included: a leader steps down after an election
 * timeout, 1,000 ms by default, without them), so it is logged. */
#define KYUFU_NODE_STALL_TICK_MS 100u
#define KYUFU_NODE_STALL_WARN_MS 300u

/* One log line: longer messages are cut (marked with "..."). */
#define KYUFU_NODE_LOG_LINE_BYTES_MAX 4096u

/* ------------------------------------------------------------- relations */
_Static_assert(KYUFU_NODE_HEARTBEAT_TIMEOUT_MS_MIN * 3u <=
                   KYUFU_NODE_ELECTION_TIMEOUT_MS_MIN,
               "the smallest election timeout must admit a heartbeat");
_Static_assert(KYUFU_NODE_ELECTION_TIMEOUT_MS_DEFAULT >=
                   3u * KYUFU_NODE_HEARTBEAT_TIMEOUT_MS_DEFAULT,
               "defaults must satisfy the heartbeat rule");
_Static_assert(KYUFU_NODE_STOP_TRANSFER_MS_MAX < KYUFU_NODE_STOP_MS_MAX,
               "the hand-over must fit inside the whole stop");

#endif /* KYUFU_NODE_LIMITS_H */
