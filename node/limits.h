/* kyufud limits: every bound the daemon enforces on its configuration and
 * its own work, in one place, units last in the name, each with its reason.
 * Relations between them are checked at compile time at the bottom.
 *
 * Included as "limits.h" from node/ only (the node build turns off meson's
 * implicit include directories, so <limits.h> stays the system header). */
#ifndef KYUFU_NODE_LIMITS_H
#define KYUFU_NODE_LIMITS_H

#include "storage_limits.h" /* KYUFU_MAX_READERS, for the relations */

/* A cluster is three voters; up to seven allows a five-node deployment and
 * a spare while a member is replaced, and no more is ever sensible for Raft. */
#define KYUFU_NODE_CLUSTER_SIZE_MAX 7u
/* Forwarding clients a node may hold: one per [cluster] member, one per
 * member added later (whose API address the Raft configuration records). */
#define KYUFU_NODE_PEER_SLOTS (2u * KYUFU_NODE_CLUSTER_SIZE_MAX)

/* Raft ids are small positive numbers an operator types into a config file. */
#define KYUFU_NODE_ID_MAX 1000000u

/* Paths in the config: far above any sane path, below PATH_MAX.  (In
 * practice a config line, key included, is bounded by libinih's INI_MAX_LINE,
 * 200 bytes in Debian's build; config.c refuses longer lines by name.) */
#define KYUFU_NODE_PATH_BYTES_MAX 512u
/* "host:port" strings; the glue's status carries 128 bytes (asserted in
 * config.c). */
#define KYUFU_NODE_ADDRESS_BYTES_MAX 127u

/* The [raft] options (election and heartbeat timeouts, snapshot threshold
 * and trailing) are raft-glue's: their defaults, bounds and rules live in
 * raft-glue/glue_limits.h and config.c checks them with
 * kyufu_glue_check_options, the function kyufu_glue_init applies. */

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
/* A call this leader cannot serve because it is handing its leadership
 * over waits for the new leader, then is forwarded to it (forward_hold.c):
 * looked at every KYUFU_NODE_HOLD_TICK_MS (raft-glue polls raft's state
 * every 10 ms), for at most KYUFU_NODE_HOLD_ELECTIONS election timeouts
 * (a hand-over takes one round trip and one vote; one that takes longer
 * has failed, and the client is better told so) or the caller's deadline.
 * Held calls count among KYUFU_NODE_CALLS_INFLIGHT_MAX, their bound. */
#define KYUFU_NODE_HOLD_TICK_MS 5u
#define KYUFU_NODE_HOLD_ELECTIONS 2u
/* A call waiting for the barrier of a linearizable read, or for a commit,
 * without a caller deadline is bounded the same way. */
#define KYUFU_NODE_CALL_TIMEOUT_MS_DEFAULT 10000u

/* Whole-store reads (the state digest of Cluster.Status with_digest,
 * Ledger.VerifyAudit, backups) running at once on work threads
 * (offload.h).  Each walks every record (seconds at a million households)
 * holding an LMDB reader slot and a thread of libuv's pool.  Two let an
 * operator's digest and an auditor's check run side by side; a call above
 * the limit is answered RESOURCE_EXHAUSTED at once (never queued: a queue
 * would hold memory and, before, a reader slot per waiting call). */
#define KYUFU_NODE_OFFLOAD_MAX 2u
/* Password hashes running at once on work threads (auth_work.c): the
 * machine's cores (uv_available_parallelism) within these bounds; the
 * others admitted (KYUFU_NODE_AUTH_WORK_MAX) wait in the node's own queue.
 * Each is ~0.13 s of one core: more at once than the cores would only
 * take CPU from the loop thread (two here: two at a time). */
#define KYUFU_NODE_AUTH_RUN_MIN 2u
#define KYUFU_NODE_AUTH_RUN_MAX 4u
/* kyufu's long work on libuv's pool at once, at most (work_pool.h): the
 * hashes, the whole-store reads, and one each of the scrub's digest, the
 * audit checkpoint, a backup directory scan, the heap release, the
 * store's background sync, the snapshot's serialisation and the pool
 * probe. */
#define KYUFU_NODE_WORK_LONG_MAX                                             \
    (KYUFU_NODE_AUTH_RUN_MAX + KYUFU_NODE_OFFLOAD_MAX + 7u)
/* raft_uv's own work at once, with room: a snapshot's write, a snapshot
 * read per peer being sent one (snapshot_send.h: one per peer), a segment
 * being created, one being closed, one removed, log writes the kernel
 * would not take without blocking (one per append in flight). */
#define KYUFU_NODE_WORK_RAFT_RESERVE 12u
/* The pool's size (UV_THREADPOOL_SIZE, set by kyufud at start): no Raft
 * work waits behind kyufu's long work.  Twice that: libuv lets "slow I/O"
 * (DNS lookups: peer links and forwarding clients to peers given by host
 * name, up to two per peer) take (size + 1) / 2 threads at most
 * (threadpool.c), so the other half is what the rest is sure of. */
#define KYUFU_NODE_WORK_THREADS                                              \
    (2u * (KYUFU_NODE_WORK_LONG_MAX + KYUFU_NODE_WORK_RAFT_RESERVE))
/* libuv's own cap on UV_THREADPOOL_SIZE (1.44: MAX_THREADPOOL_SIZE). */
#define KYUFU_NODE_WORK_THREADS_LIBUV_MAX 1024u
/* LMDB read transactions the node can hold at once: the loop thread's
 * reserved one (queries, apply's checks), raft-glue's one snapshot (fsm.c
 * takes one at a time), the offloaded reads.  LMDB's reader table must
 * hold them all: a full table is only answered RESOURCE_EXHAUSTED now
 * (docs/reader-limit.md), but should never happen. */
#define KYUFU_NODE_STORE_READERS_MAX (1u + 1u + KYUFU_NODE_OFFLOAD_MAX + 1u)
/* ... and the scrub's one digest (scrub.c), the + 1u above. */

/* Loop stall detector (stall.c): a timer every 100 ms; a tick this late
 * means the loop thread did nothing else for that long (Raft's heartbeats
 * and contact checks included: a leader steps down after an election
 * timeout, 1,000 ms by default, without them), so it is logged. */
#define KYUFU_NODE_STALL_TICK_MS 100u
#define KYUFU_NODE_STALL_WARN_MS 300u

/* systemd watchdog (notify.c): pings every half of WatchdogSec=, never
 * more often than this (a WatchdogSec= below 200 ms would only load the
 * loop; the unit sets 30 s). */
#define KYUFU_NODE_WATCHDOG_PING_MS_MIN 100u

/* One log line: longer messages are cut (marked with "..."). */
#define KYUFU_NODE_LOG_LINE_BYTES_MAX 4096u

/* ----------------------------------------------------------- metrics
 * (metrics_http.c, metrics_node.c; docs/metrics.md) */

/* A scrape request: Prometheus sends ~250 bytes of request line and
 * headers; 4 KiB leaves room for proxies' headers and refuses anything
 * else with 431 (a request body is refused outright: GET has none). */
#define KYUFU_NODE_METRICS_REQUEST_BYTES_MAX 4096u
/* The whole request (and, with TLS, the handshake) must arrive within
 * this: a scraper sends it at once; a slow-headers client is cut off. */
#define KYUFU_NODE_METRICS_HEADER_MS 2000u
/* Whole life of a connection, answer included: bounds a client that
 * never reads its answer (Prometheus' default scrape timeout is 10 s). */
#define KYUFU_NODE_METRICS_CONNECTION_MS 10000u
/* Connections at once: one Prometheus (or two, in HA) scrapes one at a
 * time; more are refused at accept (closed at once, counted). */
#define KYUFU_NODE_METRICS_CONNECTIONS_MAX 8u
/* Methods of the node's table the metrics count calls of (service.c's
 * table must fit: asserted there).  Other methods are not counted. */
#define KYUFU_NODE_METRICS_METHODS_MAX 64u

/* ------------------------------------------------------------ [auth]
 * Identity (issue 8; docs/identity.md): the password, lockout, session and
 * retention policy, default and bounds of each [auth] key.  The defaults
 * meet the city's provisions (length 12, change every 90 days, no reuse of
 * the last 5, lockout after 5 failures). */
#define KYUFU_NODE_AUTH_PASSWORD_MIN_LENGTH_DEFAULT 12u
#define KYUFU_NODE_AUTH_PASSWORD_MIN_LENGTH_MIN 8u   /* NIST SP 800-63B-4's floor */
#define KYUFU_NODE_AUTH_PASSWORD_MIN_LENGTH_MAX 64u  /* well below the 256-byte cap */
#define KYUFU_NODE_AUTH_PASSWORD_MAX_AGE_DAYS_DEFAULT 90u
#define KYUFU_NODE_AUTH_PASSWORD_MAX_AGE_DAYS_MAX 3650u /* 0: no expiry */
#define KYUFU_NODE_AUTH_PASSWORD_HISTORY_DEFAULT 5u
/* Each kept hash costs one PBKDF2 (0.13 s) at every password change. */
#define KYUFU_NODE_AUTH_PASSWORD_HISTORY_MAX 24u
#define KYUFU_NODE_AUTH_LOCKOUT_FAILURES_DEFAULT 5u
#define KYUFU_NODE_AUTH_LOCKOUT_FAILURES_MAX 100u
#define KYUFU_NODE_AUTH_LOCKOUT_MINUTES_DEFAULT 15u
#define KYUFU_NODE_AUTH_LOCKOUT_MINUTES_MAX 10080u   /* a week */
#define KYUFU_NODE_AUTH_SESSION_IDLE_MINUTES_DEFAULT 15u
#define KYUFU_NODE_AUTH_SESSION_IDLE_MINUTES_MAX 1440u
#define KYUFU_NODE_AUTH_SESSION_MAX_HOURS_DEFAULT 12u
#define KYUFU_NODE_AUTH_SESSION_MAX_HOURS_MAX 168u
#define KYUFU_NODE_AUTH_PURGE_AFTER_DAYS_DEFAULT 365u
#define KYUFU_NODE_AUTH_PURGE_AFTER_DAYS_MAX 36500u
/* Password hashes (sign-in, change, reset, provisioning) admitted at once,
 * running (KYUFU_NODE_AUTH_RUN_MAX) or waiting their turn; more are
 * answered RESOURCE_EXHAUSTED.  Each is about 0.13 s of one core
 * (docs/identity.md "Iteration count"). */
#define KYUFU_NODE_AUTH_WORK_MAX 16u
/* Sessions whose use this node remembers for the leader's TouchSessions
 * (at most once a minute); beyond it the oldest use is dropped (the
 * session then idles out a minute early at worst). */
#define KYUFU_NODE_AUTH_TOUCH_MAX 1024u
#define KYUFU_NODE_AUTH_TICK_MS 60000u /* touches, expiry, purge */
/* Sign-in limits (signin_limit.h).  Accounts with a sign-in in flight at
 * once on the leader: 16 hash at a time and each then waits one commit,
 * so 64 is beyond an office's morning burst; more are answered
 * RESOURCE_EXHAUSTED (retry), before the account is read. */
#define KYUFU_NODE_SIGNIN_ACCOUNTS_MAX 64u
/* Failed sign-ins per client certificate: a burst of 30 (a person who
 * mistypes a few times, an administrator's script that locks and checks
 * a few accounts), then one every 2 s: each is a Raft entry and an audit
 * record, so one certificate adds at most 30 a minute however it varies
 * the staff id.  Certificates
 * remembered at once (one per terminal or person that failed lately; a
 * full table forgets the one nearest to a full bucket). */
#define KYUFU_NODE_SIGNIN_FAIL_BURST 30u
#define KYUFU_NODE_SIGNIN_FAIL_REFILL_MS 2000u
#define KYUFU_NODE_SIGNIN_PEERS_MAX 256u

/* ------------------------------------------------------------- relations */
_Static_assert(KYUFU_NODE_STOP_TRANSFER_MS_MAX < KYUFU_NODE_STOP_MS_MAX,
               "the hand-over must fit inside the whole stop");
_Static_assert(KYUFU_NODE_WORK_THREADS - (KYUFU_NODE_WORK_THREADS + 1u) / 2u >=
                   KYUFU_NODE_WORK_LONG_MAX + KYUFU_NODE_WORK_RAFT_RESERVE &&
                   KYUFU_NODE_WORK_RAFT_RESERVE >= 1u,
               "beside libuv's slow-I/O half, kyufu's long work must leave "
               "raft_uv work threads");
_Static_assert(KYUFU_NODE_WORK_THREADS <= KYUFU_NODE_WORK_THREADS_LIBUV_MAX,
               "libuv would cut the pool short");
_Static_assert(KYUFU_NODE_AUTH_RUN_MIN >= 1u &&
                   KYUFU_NODE_AUTH_RUN_MIN <= KYUFU_NODE_AUTH_RUN_MAX &&
                   KYUFU_NODE_AUTH_RUN_MAX <= KYUFU_NODE_AUTH_WORK_MAX,
               "hashes run from the admitted ones");
_Static_assert(KYUFU_NODE_STORE_READERS_MAX <= KYUFU_MAX_READERS,
               "LMDB's reader table must hold every read the node can open");

/* Refused connections logged per kind (refusal.c): a burst of lines per
 * window, then a count.  10 per 10 s shows an operator every new source
 * of trouble while a flood of thousands per second costs one line per
 * window. */
#define KYUFU_NODE_REFUSAL_LOG_BURST 10u
#define KYUFU_NODE_REFUSAL_LOG_WINDOW_MS 10000u

/* ------------------------------------------------------------ power
 * (power.c, power_nut.c; docs/power.md) */

/* ups.status is read every poll_ms ([power] poll_ms): the default notices
 * OL->OB within half a second, 10x upsmon's own 5 s POLLFREQ, for one
 * small request per poll on a loopback or server-room link.  Below 100 ms
 * is load on upsd for nothing (drivers update every 2 s by default). */
#define KYUFU_NODE_POWER_POLL_MS_DEFAULT 500u
#define KYUFU_NODE_POWER_POLL_MS_MIN 100u
#define KYUFU_NODE_POWER_POLL_MS_MAX 10000u

/* [keys] reencrypt_records_per_s (node/keys_rotate.c): the leader
 * proposes a Reencrypt step every KYUFU_NODE_REENCRYPT_TICK_MS for the
 * rate's share (the upper bound keeps one step at KYUFU_REENCRYPT_COUNT_MAX
 * values, storage_limits.h). */
#define KYUFU_NODE_REENCRYPT_PER_S_DEFAULT 500u
#define KYUFU_NODE_REENCRYPT_PER_S_MIN 1u
#define KYUFU_NODE_REENCRYPT_PER_S_MAX 10000u
#define KYUFU_NODE_REENCRYPT_TICK_MS 200u
#define KYUFU_NODE_REENCRYPT_QUIET_TICKS 5u
/* Reconnecting to upsd: first wait, doubled per failure up to the max (a
 * restarted upsd is seen again within 5 s, a dead one costs 1 try per 5 s). */
#define KYUFU_NODE_POWER_BACKOFF_MS_MIN 250u
#define KYUFU_NODE_POWER_BACKOFF_MS_MAX 5000u
/* One connect attempt to upsd; reads are bounded by libupsclient's own
 * 5 s network timeout. */
#define KYUFU_NODE_POWER_CONNECT_MS 2000u
/* Lost contact with upsd is an error line at most this often (an alert
 * an operator sees, not a flood). */
#define KYUFU_NODE_POWER_ALERT_MS 60000u
/* A leader on battery asks its peers' power (Cluster.Status) with this
 * deadline per peer, and, when no peer on mains is found, asks again this
 * often while it stays on battery. */
#define KYUFU_NODE_POWER_SURVEY_MS 500u

/* Upgrades: a leader asks each peer's command-set version (Cluster.Status)
 * this often, with this deadline, so that a node restarted on a new build
 * is recorded within about a second (docs/operations.md "Upgrades"). */
#define KYUFU_NODE_VERSION_POLL_MS 1000u
#define KYUFU_NODE_VERSION_ASK_MS 800u
/* Ticks a new leader lets pass before its first round: the hand-over's
 * writes come first.  Measured with test_power's planned hand-over (its
 * largest write gap, bound 100 ms), one loaded 2-core machine: before this
 * feature 35/60/55 ms; with a round at once 32-202 ms over 6 runs (median
 * about 100: probably its new TLS connections to the peers, not
 * confirmed); with 2 quiet ticks 48/67/51 ms. */
#define KYUFU_NODE_VERSION_QUIET_TICKS 2u
_Static_assert(KYUFU_NODE_VERSION_ASK_MS < KYUFU_NODE_VERSION_POLL_MS,
               "a round of questions ends before the next one starts");
#define KYUFU_NODE_POWER_RESURVEY_MS 2000u
/* A clean stop waits at most this long for the calls in flight once the
 * hand-over is done (commits acknowledged to their clients rather than cut
 * by the close): a commit takes milliseconds, so 1 s is ample and still
 * small against a UPS's minutes. */
#define KYUFU_NODE_STOP_DRAIN_MS_MAX 1000u
#define KYUFU_NODE_STOP_DRAIN_TICK_MS 10u
/* Decommissioning (decommission*.c, docs/decommission.md).  The files one
 * node's inventory lists at most: a data folder holds a few dozen (LMDB,
 * Raft segments, snapshots, marks); a million is far beyond any real one
 * and still bounds the report's memory (about 200 bytes a file). */
#define KYUFU_NODE_DECOM_FILES_MAX 1000000u
/* Folder depth the inventory descends (the data folder is 2 deep). */
#define KYUFU_NODE_DECOM_DEPTH_MAX 16u
/* Bytes hashed or overwritten per read/write. */
#define KYUFU_NODE_DECOM_CHUNK_BYTES (64u * 1024u)
/* After the EraseNode answer is handed to the connection, the node waits
 * this long before it closes its API server and exits, so the answer
 * (a few KiB) leaves the socket: loopback or a LAN takes milliseconds. */
#define KYUFU_NODE_DECOM_LINGER_MS 500u
/* The node's TLS certificate as PEM, sent with its report: one P-256
 * certificate is under 1 KiB; a chain of a few still fits. */
#define KYUFU_NODE_DECOM_CERT_BYTES_MAX (16u * 1024u)
/* [power] ups and domain values. */
#define KYUFU_NODE_POWER_NAME_BYTES_MAX 127u
/* [power] shutdown_command, run with /bin/sh -c. */
#define KYUFU_NODE_POWER_COMMAND_BYTES_MAX 180u

/* [sla] alert_command (docs/sla.md): the program and its fixed arguments,
 * split at blanks and run without a shell. */
#define KYUFU_NODE_SLA_COMMAND_BYTES_MAX 255u
#define KYUFU_NODE_SLA_COMMAND_ARGS_MAX 8u
/* How long the alert command may run before it is killed (SIGKILL): a hook
 * that pages someone returns in well under a second; one that hangs must
 * not pile up.  At most one runs at a time (alerts meanwhile are queued,
 * KYUFU_NODE_SLA_HOOK_QUEUE_MAX, then dropped and counted). */
#define KYUFU_NODE_SLA_HOOK_MS_DEFAULT 5000u
#define KYUFU_NODE_SLA_HOOK_MS_MIN 100u
#define KYUFU_NODE_SLA_HOOK_MS_MAX 60000u
#define KYUFU_NODE_SLA_HOOK_QUEUE_MAX 32u
/* The SLA evaluator runs this often: an alert is raised within one second
 * of its cause being visible, so well below 1 s. */
#define KYUFU_NODE_SLA_TICK_MS 250u
/* The leader asks each peer's Status with this deadline: a peer that does
 * not answer in time is not heard from (it adds to its silence). */
#define KYUFU_NODE_SLA_PROBE_MS 400u
/* Incidents the leader is still proposing at once (one per breach). */
#define KYUFU_NODE_SLA_PROPOSALS_MAX 8u
/* The ledger's figures (sla_ledger.c) are read again from the store when a
 * failover or window record changed, the month turned, or this long after
 * the last read: the last hour's burn slides with time alone, and a
 * minute-old edge only delays a burn alert's clearing, never its raising
 * (a new window is a change and read at once).  Each read walks the kept
 * detail, so not every tick. */
#define KYUFU_NODE_SLA_LEDGER_REFRESH_MS 10000u

/* kyufud's exit status after a clean stop ordered by the UPS (LB, FSD):
 * systemd's RestartPreventExitStatus keeps it down (docs/power.md). */
#define KYUFU_NODE_EXIT_POWER 3

/* Scrub (scrub.c, docs/scrub.md).  [scrub] interval_seconds: the leader's
 * ScrubMark period; 0 disables.  Ten minutes: a digest of a 100k-household
 * store is a few seconds of one work thread (docs/scrub.md "Cost"), so a
 * damaged replica serves at most ~10 min (plus the digest) before it
 * stops, for well under 1 % of one core. */
#define KYUFU_NODE_SCRUB_INTERVAL_S_DEFAULT 600u
#define KYUFU_NODE_SCRUB_INTERVAL_S_MAX 86400u
/* Results kept and answered to peers: a peer that digests later than this
 * node (a slow follower) still finds the index it asks for. */
#define KYUFU_NODE_SCRUB_KEEP 8u
/* A peer's answer naming more results than this is refused as malformed. */
#define KYUFU_NODE_SCRUB_RESULTS_MAX 16u
/* Ask the other voters every ASK_MS, each call bounded by ASK_TIMEOUT_MS,
 * until a verdict or COMPARE_MS after the own digest (a follower that
 * lags, or restarts, answers later or never). */
#define KYUFU_NODE_SCRUB_ASK_MS 1000u
#define KYUFU_NODE_SCRUB_ASK_TIMEOUT_MS 3000u
#define KYUFU_NODE_SCRUB_COMPARE_MS 60000u

/* kyufud's exit status when it stops on data it refuses: an entry or a
 * snapshot the state machine will not apply, or a damaged store
 * (KYUFU_GLUE_ECORRUPT).  A restart would meet the same data and stop again,
 * so systemd must not restart it (RestartPreventExitStatus): an operator
 * replaces the node's data (docs/operations.md, "Exit status"). */
#define KYUFU_NODE_EXIT_REFUSED_DATA 4

_Static_assert(KYUFU_NODE_POWER_BACKOFF_MS_MIN < KYUFU_NODE_POWER_BACKOFF_MS_MAX,
               "backoff grows");
_Static_assert(KYUFU_NODE_STOP_TRANSFER_MS_MAX + KYUFU_NODE_STOP_DRAIN_MS_MAX <
                   KYUFU_NODE_STOP_MS_MAX,
               "hand-over and drain fit inside the whole stop");

/* [sla] heartbeat_ms default: measured in docs/sla.md ("Heartbeat cost"),
 * one small entry a second costs well under 1% of a core and bounds the
 * error of a window to a second when no client writes. */
#define KYUFU_NODE_SLA_HEARTBEAT_MS_DEFAULT 1000u

/* The identity clock's second opinion (node/clock_node.c leader_time):
 * not taken while this node applies more than this many entries behind
 * the commit index (its stamps would be old), nor from a leader stamp
 * past this time (year 3000: a broken stamp, and no overflow). */
#define KYUFU_NODE_CLOCK_LAG_ENTRIES_MAX 256u
#define KYUFU_NODE_CLOCK_STAMP_MS_MAX INT64_C(32503680000000)

/* A new leader calls the old one crashed when its Raft connection to it
 * ended (EOF, reset, refused) within this many election timeouts before
 * (the election follows the loss by about one timeout; docs/sla.md). */
#define KYUFU_NODE_CRASH_EVIDENCE_ELECTIONS 5u
/* A crash drill answers its caller, then dies this much later: long enough
 * for the answer to leave over loopback or a LAN, short against an RTO. */
#define KYUFU_NODE_DRILL_CRASH_DELAY_MS 50u

/* ---- The operation log (issue 8, h/oplog; node/oplog.h, checkpoint.h).
 * Refusal records per reason per window, then one count record: a flood of
 * bad handshakes must not grow the replicated chain without bound (20 a
 * window keeps an honest mistake's records whole; a flood costs one count
 * record per 10 s per reason). */
#define KYUFU_NODE_OPLOG_REFUSALS_BURST 20u
#define KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS 10000u
/* All reasons together per window (the methods of the table times two
 * codes would otherwise allow thousands). */
#define KYUFU_NODE_OPLOG_REFUSALS_TOTAL 100u
/* [audit] checkpoint_interval_seconds: default and bounds (a minute keeps
 * the unanchored tail short; a day at most, or the anchor is no anchor). */
#define KYUFU_NODE_CHECKPOINT_INTERVAL_S_DEFAULT 60u
#define KYUFU_NODE_CHECKPOINT_INTERVAL_S_MIN 1u
#define KYUFU_NODE_CHECKPOINT_INTERVAL_S_MAX 86400u
/* [audit] checkpoint_records: a checkpoint once this many records were
 * appended since the last one, before the interval ends. */
#define KYUFU_NODE_CHECKPOINT_RECORDS_DEFAULT 1000u
#define KYUFU_NODE_CHECKPOINT_RECORDS_MIN 1u
#define KYUFU_NODE_CHECKPOINT_RECORDS_MAX 1000000u
/* How often the node looks at the chain's head for a checkpoint. */
#define KYUFU_NODE_CHECKPOINT_TICK_MS 1000u
/* One checkpoint line (JSON, signature included). */
#define KYUFU_NODE_CHECKPOINT_LINE_BYTES_MAX 512u
/* ---- end operation log */
/* ---- Follower refusals (issue 8 item 7; node/refusal_batch.h).  A
 * follower's refusal records (already bounded by the two limits above)
 * wait in a queue for the leader.  Its bound holds two windows of the
 * follower's own worst case (TOTAL + one count record per reason slot +
 * one for the rest = 125 records per window), so a leader election of a
 * few seconds loses nothing; beyond it refusals are counted, and the count
 * becomes a record. */
#define KYUFU_NODE_REFUSAL_QUEUE_MAX 256u
/* Records per ReportRefusals call: proposed together (the glue's group
 * commit packs most of them into one Raft entry), a request far below the
 * API's message bound (64 x ~1 KiB). */
#define KYUFU_NODE_REFUSAL_BATCH_MAX 64u
/* A follower sends its queue this often, or at once when a batch is full:
 * a refusal reaches the chain within a fraction of a second. */
#define KYUFU_NODE_REFUSAL_SEND_MS 200u

/* Encryption keys (keys_fetch.c): a joining node without its cluster key
 * asks one member every KEY_FETCH_MS (round robin over [cluster]) until
 * one answers: an operator adds the node with kyufuctl within seconds of
 * starting it, and a refused ask costs a member one ECDH.  Each ask may
 * take KEY_FETCH_TIMEOUT_MS (a TLS handshake to a loaded member). */
#define KYUFU_NODE_KEY_FETCH_MS 500u
#define KYUFU_NODE_KEY_FETCH_TIMEOUT_MS 3000u
/* One report's deadline: the leader answers after the records commit
 * (an fsync or two); longer than any healthy commit, short enough that a
 * dead leader holds the queue only briefly. */
#define KYUFU_NODE_REFUSAL_SEND_TIMEOUT_MS 5000u
/* The leader's bound per reporting node and window (the oplog window):
 * twice the follower's own worst case (its windows and the leader's are
 * not aligned, and a retried batch is sent again); what is over it is
 * counted, one record per node per window. */
#define KYUFU_NODE_REFUSAL_PER_NODE_MAX 256u
/* (Their relations to oplog.h's reason slots: refusal_batch.c.) */
/* ---- end Follower refusals */
/* [tls] crl_file (node/tls_watch.c): how often its mtime, size and inode
 * are looked at; a change reloads the TLS files as SIGHUP does.  2 s: a
 * revoked terminal is refused within seconds of the new CRL's copy, for
 * one stat(2) per poll. */
#define KYUFU_NODE_CRL_POLL_MS 2000u

/* A follower asked about itself (Status, availability) with a session it
 * has not applied yet (the sign-in was answered by the leader a moment
 * ago): it looks again every KYUFU_NODE_AUTH_LAG_WAIT_MS, at most
 * KYUFU_NODE_AUTH_LAG_WAITS times (1 s: ten heartbeats at the default
 * 100 ms), before refusing the session as unknown (service.c). */
#define KYUFU_NODE_AUTH_LAG_WAIT_MS 50u
#define KYUFU_NODE_AUTH_LAG_WAITS 20u

/* [backup] max_bytes_per_s (docs/backup.md "Throttle"): at least 64 KiB/s
 * (a 4 MiB chunk then takes a minute; slower is a mistake, not a
 * setting), at most 10 GB/s (beyond any disk: no limit, write 0). */
#define KYUFU_NODE_BACKUP_RATE_MIN ((uint64_t)64 << 10)
#define KYUFU_NODE_BACKUP_RATE_MAX ((uint64_t)10000000000)

/* [backup] interval (docs/backup.md "Scheduled backups"): 1 s (tests;
 * a backup takes longer than that on any real store, and the next one
 * waits for it) to 366 days. */
#define KYUFU_NODE_BACKUP_INTERVAL_S_MIN 1u
#define KYUFU_NODE_BACKUP_INTERVAL_S_MAX ((uint64_t)366 * 86400)
/* keep_last, keep_daily, keep_monthly: at most the scan's bound
 * (KYUFU_BACKUP_SCAN_MAX, backup_retention.h). */
#define KYUFU_NODE_BACKUP_KEEP_MAX 10000u
/* A failed scheduled backup is retried after min(interval, this * 2^k)
 * for its k-th failure in a row, at most min(interval, ..._MAX_S). */
#define KYUFU_NODE_BACKUP_RETRY_S_MIN 10u
#define KYUFU_NODE_BACKUP_RETRY_S_MAX 3600u
/* How often the schedule looks whether a backup is due (and whether this
 * node is the one to take it). */
#define KYUFU_NODE_BACKUP_TICK_MS 1000u

/* glibc's mmap threshold, fixed (malloc_policy.c): a block of 3 MiB or
 * more (a snapshot's or a backup's 4 MiB chunks, an installed snapshot)
 * that the free heap cannot serve is mapped, and unmapped whole when
 * freed.  Left dynamic, glibc raises the threshold to the size of each
 * mapped block freed, and every later chunk comes from a heap that keeps
 * it: the resident floor between snapshots grew with the ledger, 28-145 MB
 * per node instead of 9-11 (docs/soak.md "Memory: what holds it", runs C
 * at 1 MiB and D at 2 MiB).  Above 2 MiB: every applied command opens a
 * nested LMDB transaction, which allocates a 2 MiB dirty list
 * (MDB_IDL_UM_SIZE x 16 bytes, mdb.c) and a 1 MiB free-page list; at
 * 2 MiB or less each command mapped and unmapped them (docs/benchmarks.md
 * "A map and an unmap per command").  A Raft entry at its cap (1 MiB,
 * plain or sealed) stays below it (asserted in main.c). */
#define KYUFU_NODE_MMAP_THRESHOLD_BYTES (3u << 20)
/* LMDB's largest per-command block (the dirty list) and a page of
 * malloc's own: the mmap threshold must be above it. */
#define KYUFU_NODE_LMDB_NESTED_LIST_BYTES ((2u << 20) + 4096u)
/* glibc's trim threshold, fixed with it: free memory at the top of an
 * arena is given back to the system only once it passes this.  At glibc's
 * default (128 KiB) the lists a command frees at the top were given back
 * and taken again for the next command; 8 MiB is above what one command
 * frees (tests/node/test_malloc_policy.c; 4 MiB still gave it back now
 * and then in a micro-benchmark).  The cost: each arena's top may keep up
 * to this much free (free holes below live blocks are not given back by
 * trimming, at any threshold: kyufu_node_malloc_release does that after
 * each snapshot put), and a 4 MiB chunk is served from a top that holds
 * that much instead of being mapped; what this does to the floor is
 * measured by the soak (docs/soak.md "One hour after the map fix"). */
#define KYUFU_NODE_TRIM_THRESHOLD_BYTES (8u << 20)
/* glibc's arenas at most (M_ARENA_MAX), the main one included.  Each
 * thread's first malloc makes it an arena of its own until glibc's limit
 * (8 per core), and an arena keeps up to the trim threshold free at its
 * top after a release: with the pool of work_pool.h (50 threads) that
 * could be 16 arenas, 128 MiB kept.  Five is what libuv's former four
 * threads and the loop made; more threads share them. */
#define KYUFU_NODE_MALLOC_ARENAS_MAX 5u

#endif /* KYUFU_NODE_LIMITS_H */
