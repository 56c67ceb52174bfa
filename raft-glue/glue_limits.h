/* kyufu raft-glue limits: every Raft option kyufu sets, with its default and
 * bounds, units last in the name, each with the reason for its value.
 * The one source of these values: kyufu_glue_check_options (glue.h,
 * options.c) checks a configured value against them for kyufu_glue_init and
 * for kyufud's config validation alike, and `kyufud --print-defaults` prints
 * them (docs/operations.md lists them, checked by
 * tests/integration/config_test.sh).  Relations are checked at compile time
 * at the bottom.  docs/raft.md explains each option.  No raft.h here. */
#ifndef KYUFU_GLUE_LIMITS_H
#define KYUFU_GLUE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Election: 1000 ms is kyufud's default: failover median ~2 s on loopback
 * with pre-vote (docs/failover.md); 300 ms fails over in ~0.6 s but risks
 * spurious elections on a loaded 2-vCPU VM, below 100 ms they are likely;
 * above 10 s failover breaks any RTO. */
#define KYUFU_ELECTION_TIMEOUT_MS_DEFAULT 1000u
#define KYUFU_ELECTION_TIMEOUT_MS_MIN 100u
#define KYUFU_ELECTION_TIMEOUT_MS_MAX 10000u

/* Heartbeat: a tenth of the election timeout (Raft thesis 9.3); it is also
 * raft_uv's tick, so it bounds how late the first entry after an election
 * can wait (docs/raft.md).  At least 10 ms (timer granularity under load);
 * at most a third of the election timeout, checked with the other options
 * by kyufu_glue_check_options (glue.h). */
#define KYUFU_HEARTBEAT_TIMEOUT_MS_DEFAULT 100u
#define KYUFU_HEARTBEAT_TIMEOUT_MS_MIN 10u
#define KYUFU_HEARTBEAT_TIMEOUT_MS_MAX 2000u

/* Snapshot every 8192 entries: with group commit one entry carries many
 * commands, and a snapshot serializes the whole store, so they stay rare.
 * At least 4 so tests can exercise installs; at most 1 Mi entries (about
 * 1 Mi x 256 commands replayed at a restart, and all of them in memory). */
#define KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_DEFAULT 8192u
#define KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MIN 4u
#define KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX 1048576u

/* Snapshot spacing by size (docs/raft.md "Snapshot spacing"): the
 * threshold above is a floor; the node raises it so that the log between
 * two snapshots holds an eighth of the last snapshot's bytes, at most
 * 64 MiB.  A snapshot writes the whole ledger, so with a fixed count of
 * entries its cost grew with the ledger while its interval did not: at
 * 300 writes/s a 1 GB ledger was written every 28 s; at 1,500 writes/s
 * the disk wrote 350-420 MB/s for 1.5 MB/s of ledger data (docs/soak.md).
 * An eighth makes the bytes written
 * per byte of log 8 up to a 512 MiB ledger (ledger / 64 MiB beyond: 16 at
 * 1 GiB); 64 MiB bounds the log libraft keeps in memory and replays at a
 * restart.  The mean entry is that of the commands of each block of
 * SIZING_ENTRIES_MIN indexes (aligned on the index, the same on every
 * voter), so entries that grow with load lower it in time. */
#define KYUFU_SNAPSHOT_LOG_SHARE_DIV 8u
#define KYUFU_SNAPSHOT_LOG_BYTES_MAX (64u * 1024u * 1024u)
#define KYUFU_SNAPSHOT_SIZING_ENTRIES_MIN 64u

/* One voter at a time (docs/raft.md "One voter at a time"): each voter
 * takes its snapshots in windows of indexes it owns, so no two write
 * their copy of the ledger from the same index (in the hour soak, a
 * leader and a follower did, and writes waited for one of them: p99
 * 1.8 s).  A slot is at least a GAP_DIV-th of the period past the last
 * snapshot, so the interval after a start or an install is not a handful
 * of entries. */
#define KYUFU_SNAPSHOT_SLOT_GAP_DIV 4u
/* A snapshot whose run of committed entries ends in another voter's window
 * waits for this voter's next slot, but not once DEFER_PERIODS_MAX +
 * rank/voters periods have passed since its last one (runs that keep
 * ending elsewhere must not let its log grow without bound; the rank's
 * share keeps two starved voters from snapshotting together for good). */
#define KYUFU_SNAPSHOT_DEFER_PERIODS_MAX 2u

/* A node's snapshot is written through an unnamed file in the Raft
 * directory (docs/snapshot-file.md) only when its file system has room for
 * twice the last snapshot (that file and raft_uv's copy) and this margin
 * (raft_uv's next log segments, 8 MiB each): a snapshot must not be what
 * fills the disk raft_uv appends to.  Refused (or refused by the file
 * system), it is not taken again before HOLD_DIV-th of a period of
 * entries has been applied, so a full disk is not filled again and again
 * by a node re-serializing its whole ledger after every apply. */
#define KYUFU_SNAPSHOT_FILE_ROOM_MARGIN_BYTES ((uint64_t)64 << 20)
#define KYUFU_SNAPSHOT_FILE_HOLD_DIV 4u

/* Entries kept after a snapshot so a follower a little behind catches up
 * from the log instead of receiving a whole snapshot.  Below the threshold
 * (checked with the other options), hence a maximum below its maximum. */
#define KYUFU_SNAPSHOT_TRAILING_ENTRIES_DEFAULT 2048u
#define KYUFU_SNAPSHOT_TRAILING_ENTRIES_MIN 2u
#define KYUFU_SNAPSHOT_TRAILING_ENTRIES_MAX 524288u

/* Unacknowledged entries per follower: 0.22.1's default 32 caps pipelined
 * throughput at 8-10k/s with 50-230 ms p99; >= 1024 matched 0.15.0. */
#define KYUFU_MAX_INFLIGHT_ENTRIES_DEFAULT 1024u
#define KYUFU_MAX_INFLIGHT_ENTRIES_MIN 1u
#define KYUFU_MAX_INFLIGHT_ENTRIES_MAX 65536u

/* Group commit: commands packed into one entry.  Many commands per entry is
 * where throughput comes from (one fsync, one LMDB txn for all). */
#define KYUFU_GROUP_COMMIT_COMMANDS_MAX_DEFAULT 256u
#define KYUFU_GROUP_COMMIT_COMMANDS_MAX_MIN 1u
#define KYUFU_GROUP_COMMIT_COMMANDS_MAX_MAX 4096u
/* The store's background flush (store_sync.c): at most this long between
 * an applied entry and the fdatasync that makes it durable in LMDB.  It
 * runs off the loop thread, so the interval costs no latency; it bounds
 * what a restart after a power loss replays from the Raft log and how many
 * dirty pages one flush writes (docs/benchmarks.md, "Store sync off the
 * loop").  Under load a flush is every interval, each a few ms on this VM. */
#define KYUFU_STORE_SYNC_INTERVAL_MS 100u
/* Entries of ours in flight before commands queue up: enough to keep disk
 * and network busy at once, few enough that each entry batches well.  2:
 * in the quiet-machine sweep of docs/benchmarks.md "The window with fresh
 * data" (1, 2, 4, 8; every run from the same data) 2 had the highest
 * median writes/s at 16, 64, 256 and 1,024 calls in flight (+28 %, +10 %,
 * +15 %, +10 % over 4, the previous default, winning 9 of 12 same-round
 * pairings) and equal at 1; 1 and 8 lower.  At most raft's own
 * per-follower window (max_inflight_entries, checked with the other
 * options): entries beyond it would only wait in raft instead of in the
 * proposer's queue, unbatched. */
#define KYUFU_GROUP_COMMIT_ENTRIES_INFLIGHT_DEFAULT 2u
#define KYUFU_GROUP_COMMIT_ENTRIES_INFLIGHT_MIN 1u
#define KYUFU_GROUP_COMMIT_ENTRIES_INFLIGHT_MAX 1024u
_Static_assert(KYUFU_GROUP_COMMIT_ENTRIES_INFLIGHT_DEFAULT <=
                   KYUFU_MAX_INFLIGHT_ENTRIES_DEFAULT,
               "the default window fits raft's default per-follower window");
/* One entry's payload: 32 KiB entries already reach 45-65 MB/s; 1 MiB keeps
 * one apply (one LMDB txn) short on the loop thread. */
#define KYUFU_ENTRY_BYTES_MAX ((size_t)1 << 20)
/* One encoded command; no valid ledger command approaches this (the largest
 * is a payment batch of 1000 ids, ~10 KiB). */
#define KYUFU_COMMAND_BYTES_MAX ((size_t)64 << 10)
/* Commands waiting for an entry slot before propose answers BUSY: about one
 * second of peak load; beyond that the client should back off. */
#define KYUFU_PROPOSE_QUEUE_COMMANDS_MAX 16384u

/* InstallSnapshot RPC retry: 0.22.1 sends a whole fresh copy each time it
 * fires, queued behind the copies still on the one TCP stream to the peer,
 * while a lagging follower at city size needs minutes to receive, persist
 * and restore one copy (595 MB took ~50 s, docs/scale.md).  A lost copy is
 * re-sent anyway as soon as the restarted peer rejects a heartbeat at the
 * snapshot index, so this is only a backstop: 10 minutes. */
#define KYUFU_INSTALL_SNAPSHOT_TIMEOUT_MS 600000u
/* InstallSnapshot gate (snapshot_send.h: one copy per peer at a time): a
 * copy written to the stream counts as being received, persisted and
 * restored by the peer for 60 s plus 100 ms per MiB (595 MB took ~50 s
 * here, docs/scale.md) before another may be sent.  Only a copy lost
 * without a reconnect or a term change waits that long.  A copy the stream
 * has not taken after as long (raft_uv has no write timeout) is given up
 * the same way: at least ~10 MiB/s, far below loopback or a LAN. */
#define KYUFU_SNAPSHOT_SEND_SETTLE_MS 60000u
#define KYUFU_SNAPSHOT_SEND_SETTLE_MS_PER_MIB 100u
/* Catch-up of a new spare before promotion (raft_add → raft_assign). */
#define KYUFU_MAX_CATCH_UP_ROUNDS 20u
#define KYUFU_MAX_CATCH_UP_ROUND_DURATION_MS 10000u

/* raft_uv segments: 8 MiB stays well below the 32 MiB capacity wrap
 * (docs/measured.md) so the capacity threshold can stay at its default 0 check. */
#define KYUFU_SEGMENT_SIZE_BYTES ((size_t)8 << 20)
/* Disk retry: 0.22.1 retries a failed write forever every disk_retry ms;
 * kyufu never retries a durable write, so the delay is set to its maximum
 * and the raft_uv tracer reports the failure so the node stops. */
#define KYUFU_DISK_RETRY_MS 0xffffffffu
/* Reconnect to a peer: fast enough for a sub-second failover. */
#define KYUFU_CONNECT_RETRY_DELAY_MS 100u

/* Leadership transfer: attempts before TIMEOUT; each waits up to an election
 * timeout (raft_transfer's own bound). */
#define KYUFU_TRANSFER_ATTEMPTS_MAX 5u
/* Adding a voter: catch-up attempts of raft_assign before giving up. */
#define KYUFU_CHANGE_ATTEMPTS_MAX 3u
/* Peers whose last message time the glue keeps (kyufu_glue_followers):
 * node/limits.h's cluster size (7) and a replacement joining, twice over. */
#define KYUFU_GLUE_CONTACTS_MAX 16u
/* Membership (kyufu_glue_add): a standby is promoted once its match index
 * is within this many entries of the leader's last index.  Under a steady
 * load the leader appends a few group-committed entries per heartbeat; 64
 * is a few heartbeats of them, so libraft's own catch-up round that
 * follows (which must finish within an election timeout) is short. */
#define KYUFU_JOIN_LAG_ENTRIES_MAX 64u
/* How long a standby may take to catch up before the join gives up (it
 * stays a standby): a city-size snapshot install took ~50 s here
 * (docs/scale.md); 10 minutes as for the InstallSnapshot timeout. */
#define KYUFU_JOIN_CATCH_UP_MS_DEFAULT 600000u
#define KYUFU_JOIN_CATCH_UP_MS_MIN 100u
#define KYUFU_JOIN_CATCH_UP_MS_MAX 3600000u
/* RemoveNode never leaves fewer voters than this: with one voter left the
 * cluster could neither survive a loss nor add a node while that one is
 * down; shrinking further is starting a new cluster. */
#define KYUFU_VOTERS_MIN 2u
/* How often the glue polls raft's role and leader to fire the state cb. */
#define KYUFU_STATE_POLL_MS 10u

/* Crash evidence (crash_evidence.h): the surviving voters, ranked by id,
 * start their elections this far apart after their leader's connection
 * closed; the first at once.  Longer than a pre-vote round trip plus the
 * first candidate's synced term and vote (a few ms on loopback when idle;
 * over 40 ms on this 2-core VM at load average ~30, where 40 ms split a
 * vote), so that a second candidate starts only when the first has
 * failed; small against the election timeout (1,000 ms by default), which
 * is what a crash costs without the evidence.  The glue's poll
 * (KYUFU_STATE_POLL_MS) rounds each attempt up to 10 ms. */
#define KYUFU_CRASH_ELECTION_STEP_MS 100u
/* Attempts per piece of evidence: the first, and retries of a pre-vote
 * that did not pass (a survivor whose log is behind is denied; the other
 * one, leaderless by then, passes on its next attempt).  Pre-votes move no
 * term: a retry against a healthy leader is rejected again, harmlessly. */
#define KYUFU_CRASH_ELECTION_TRIES 3u
/* Ranked attempts land in different polls (the poll rounds each up to
 * KYUFU_STATE_POLL_MS), and with three voters the second survivor's
 * attempt comes well before raft's own timeout at the default. */
_Static_assert(KYUFU_CRASH_ELECTION_STEP_MS >= 2 * KYUFU_STATE_POLL_MS,
               "crash-evidence step spans at least two polls");
_Static_assert(KYUFU_CRASH_ELECTION_STEP_MS * 4 <=
                   KYUFU_ELECTION_TIMEOUT_MS_DEFAULT,
               "crash-evidence step small against the default election");

/* Raft over mutual TLS (docs/peer-tls.md). */
/* TCP connect + TLS handshake + raft's preamble must finish in this time or
 * the connection is closed: a loopback handshake takes a few ms and one
 * across a WAN a few round trips; 5 s leaves room for a loaded VM while a
 * silent or trickling unauthenticated connection loses its slot quickly. */
#define KYUFU_PEER_HANDSHAKE_TIMEOUT_MS 5000u
/* Inbound connections not yet authenticated, at once: a cluster has a few
 * peers, each reconnecting one stream at a time every
 * KYUFU_CONNECT_RETRY_DELAY_MS; 32 covers a 7-node cluster reconnecting at
 * once while bounding what an unauthenticated host holds (~50 KiB of
 * OpenSSL state each) and the handshakes it makes us compute. */
#define KYUFU_PEER_HANDSHAKES_PENDING_MAX 32u
/* Kernel accept queue of the Raft port (raft_uv_tcp used 1). */
#define KYUFU_PEER_LISTEN_BACKLOG 64
/* raft's preamble address ("host:port", NUL, zero padding to 8 bytes): a
 * DNS name is at most 253 bytes; raft_uv_tcp allocated any length. */
#define KYUFU_PEER_ADDRESS_BYTES_MAX 272u
/* After raft closes its end, its last bytes and close_notify may take this
 * long to leave before the TCP connection is cut. */
#define KYUFU_PEER_DRAIN_TIMEOUT_MS 5000u
/* Bytes a bridge queues toward one side before it stops reading the other:
 * a few maximal entries in flight, while a 600 MB snapshot copy never sits
 * in memory twice. */
#define KYUFU_PEER_WRITE_QUEUE_BYTES_MAX ((size_t)4 << 20)
/* Refused Raft connections logged: 10 per 10 s show an attack or a
 * misconfigured peer (address, certificate subject, reason); the rest are
 * counted into the next line, so a flood cannot fill the disk. */
#define KYUFU_PEER_REFUSED_LOG_WINDOW_MS 10000u
#define KYUFU_PEER_REFUSED_LOG_PER_WINDOW 10u

/* The rules of kyufu_glue_check_options hold for the defaults, and for
 * every option at its minimum and every option at its maximum at once, so
 * each bound is reachable (tests/integration/config_test.sh starts a node
 * with each). */
_Static_assert(KYUFU_HEARTBEAT_TIMEOUT_MS_DEFAULT * 3 <=
                   KYUFU_ELECTION_TIMEOUT_MS_DEFAULT,
               "default heartbeat at most a third of the election timeout");
_Static_assert(KYUFU_HEARTBEAT_TIMEOUT_MS_MIN * 3 <=
                   KYUFU_ELECTION_TIMEOUT_MS_MIN,
               "minimum heartbeat at most a third of the minimum election");
_Static_assert(KYUFU_HEARTBEAT_TIMEOUT_MS_MAX * 3 <=
                   KYUFU_ELECTION_TIMEOUT_MS_MAX,
               "maximum heartbeat at most a third of the maximum election");
_Static_assert(KYUFU_SNAPSHOT_TRAILING_ENTRIES_DEFAULT <
                   KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_DEFAULT,
               "a snapshot must compact something");
_Static_assert(KYUFU_SNAPSHOT_TRAILING_ENTRIES_MIN <
                   KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MIN,
               "minimum trailing below the minimum threshold");
_Static_assert(KYUFU_SNAPSHOT_TRAILING_ENTRIES_MAX <
                   KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX,
               "maximum trailing below the maximum threshold");
_Static_assert(KYUFU_COMMAND_BYTES_MAX * 4 <= KYUFU_ENTRY_BYTES_MAX,
               "several commands fit one entry");
_Static_assert(KYUFU_SEGMENT_SIZE_BYTES < ((size_t)32 << 20),
               "segments below 32 MiB (0.22.1 capacity wrap)");
_Static_assert(KYUFU_SEGMENT_SIZE_BYTES >= 2 * KYUFU_ENTRY_BYTES_MAX,
               "an entry fits a segment with room");

_Static_assert(KYUFU_PEER_ADDRESS_BYTES_MAX % 8 == 0,
               "raft pads the preamble address to 8 bytes");
_Static_assert(KYUFU_PEER_WRITE_QUEUE_BYTES_MAX >= 2 * KYUFU_ENTRY_BYTES_MAX,
               "a bridge queues at least two whole entries");

/* Peers whose lost-connection time the glue keeps (kyufu_glue_peer_lost_ms):
 * kyufud's cluster size bound (node/limits.h) with headroom. */
#define KYUFU_GLUE_PEERS_TRACKED_MAX 16u

/* Member ids the dial policy remembers (dial_policy.h): every member and
 * removed member of a long-lived node through many replacements (each
 * replacement adds a new id); past it the oldest is forgotten and, if
 * raft_uv still has a client for it, dialled again (noise, not harm). */
#define KYUFU_GLUE_MEMBERS_SEEN_MAX 64u

#endif /* KYUFU_GLUE_LIMITS_H */
