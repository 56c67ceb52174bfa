/* kyufu raft-glue: replicates ledger commands through Raft into storage/.
 *
 * The only module that includes raft.h (its internal headers fsm.h and
 * proposer.h do; this public header does not, so node/ never sees raft).
 *
 * A struct kyufu_glue owns one raft instance with libraft's raft_uv I/O and
 * a mutual-TLS transport (docs/peer-tls.md) on the caller's libuv loop, the FSM adapter over a
 * struct kyufu_storage (borrowed: it must outlive the glue), and the group
 * committer that packs many proposed commands into one Raft entry.
 *
 * Async rules (libuv's): a call that takes a callback and returns nonzero
 * never calls the callback; otherwise the callback fires exactly once, on
 * the loop thread, and never from inside the call that started it.
 * Requests are caller-allocated and must stay valid until their callback.
 */
#ifndef KYUFU_GLUE_H
#define KYUFU_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kyufu/v1/ledger.pb-c.h"
#include "storage.h"

#define KYUFU_GLUE_ERRORS(X)                                                 \
    X(OK, 0, "ok")                                                           \
    X(NOMEM, -1, "out of memory")                                            \
    X(NOTLEADER, -2, "this node is not the leader")                          \
    X(LEADERSHIPLOST, -3, "leadership lost before the command committed")    \
    X(SHUTDOWN, -4, "the node is shutting down")                             \
    X(TOOBIG, -5, "command too large")                                       \
    X(BUSY, -6, "too many commands in flight")                               \
    X(INVALID, -7, "invalid argument")                                       \
    X(IO, -8, "raft I/O error")                                              \
    X(STORAGE, -9, "storage error")                                          \
    X(CONFIG, -10, "bad raft configuration")                                 \
    X(NOTFOUND, -11, "no such node")                                         \
    X(TIMEOUT, -12, "timed out")                                             \
    X(CORRUPT, -13, "the raft log or a snapshot holds data this node refuses") \
    X(EXISTS, -14, "already a member")                                       \
    X(QUORUM, -15, "the change would leave too few voters")                  \
    X(NOTCAUGHTUP, -16, "the new node did not catch up in time")             \
    X(UNREACHABLE, -17, "too few of the remaining voters answer")            \
    X(NEWER, -18, "the cluster runs a newer command set than this build: "   \
                  "upgrade this node")                                     \
    X(STALE, -19, "the Raft log changed since it was read")

enum kyufu_glue_error {
#define KYUFU_GLUE__ENUM(name, value, text) KYUFU_GLUE_E##name = value,
    KYUFU_GLUE_ERRORS(KYUFU_GLUE__ENUM)
#undef KYUFU_GLUE__ENUM
};

const char *kyufu_glue_strerror(int rv);

struct kyufu_glue; /* Opaque. */

/* A member's address as kyufu_glue_members copies it ("host:port"). */
#define KYUFU_GLUE_MEMBER_ADDRESS_BYTES 264

struct kyufu_glue_peer
{
    uint64_t id;          /* Raft server id, > 0 */
    const char *address;  /* "host:port" of its Raft transport. Borrowed. */
    /* kyufu_glue_add only: "host:port" of its gRPC API, or NULL.  Recorded
     * in the Raft configuration with the address (docs/raft.md,
     * "Membership"), so every member learns where a node added later
     * serves its API. */
    const char *api_address;
};

struct kyufu_glue_config
{
    uint64_t id;               /* This node's Raft id. */
    const char *address;       /* This node's Raft "host:port". Borrowed. */
    const char *raft_dir;      /* raft_uv data directory. Borrowed. */
    /* Raft peers speak TLS only (docs/peer-tls.md): this node's certificate
     * (it must name `id` as SAN URI urn:kyufu:node:ID), its key and the
     * cluster CA, PEM files read during kyufu_glue_init (CONFIG when one is
     * missing or bad).  Borrowed for the call. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_ca_file;
    /* Optional ([tls] crl_file): revoked certificates (PEM CRL signed by
     * the CA); a revoked peer's handshake is refused.  NULL: none.
     * Read again by kyufu_glue_reload_tls. */
    const char *tls_crl_file;
    /* Optional ([raft] allow): whether a peer connecting from this address
     * may start a TLS handshake; NULL lets every address in.  Called on the
     * loop thread; `peer_allowed_arg` must outlive the glue. */
    bool (*peer_allowed)(void *arg, const struct sockaddr *addr);
    void *peer_allowed_arg;
    /* 0 in any field below means the default of raft-glue/glue_limits.h;
     * a value outside the bounds there, or breaking a relation of
     * kyufu_glue_check_options, makes kyufu_glue_init fail with CONFIG
     * naming the field. */
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold_entries;
    unsigned snapshot_trailing_entries;
    unsigned max_inflight_entries;
    unsigned group_commit_commands_max;
    /* Entries of ours in flight before commands queue (proposer.h). */
    unsigned group_commit_entries_inflight;
    bool pre_vote_disabled;    /* pre-vote is on unless this is set */
    /* A follower whose connection with its leader closes (no TLS
     * close_notify: a crash) starts an election at once
     * (raft-glue/crash_evidence.h), unless this is set; needs pre-vote. */
    bool crash_election_disabled;
};

/* ---------------------------------------------------------------- options
 *
 * The tunable fields of struct kyufu_glue_config, their defaults and bounds
 * (the constants of glue_limits.h), and the rules between them.  kyufu_glue_init
 * applies exactly these checks, and kyufud's config validation calls the
 * same functions, so a config file that `kyufud --check-config` accepts is
 * one that kyufu_glue_init accepts.  No I/O, no raft: callable anywhere. */
#define KYUFU_GLUE_OPTIONS(X)                                                \
    X(ELECTION_TIMEOUT_MS, election_timeout_ms)                              \
    X(HEARTBEAT_TIMEOUT_MS, heartbeat_timeout_ms)                            \
    X(SNAPSHOT_THRESHOLD_ENTRIES, snapshot_threshold_entries)                \
    X(SNAPSHOT_TRAILING_ENTRIES, snapshot_trailing_entries)                  \
    X(MAX_INFLIGHT_ENTRIES, max_inflight_entries)                            \
    X(GROUP_COMMIT_COMMANDS_MAX, group_commit_commands_max)                  \
    X(GROUP_COMMIT_ENTRIES_INFLIGHT, group_commit_entries_inflight)

enum kyufu_glue_option {
#define KYUFU_GLUE__OPTION_ENUM(NAME, field) KYUFU_GLUE_OPTION_##NAME,
    KYUFU_GLUE_OPTIONS(KYUFU_GLUE__OPTION_ENUM)
#undef KYUFU_GLUE__OPTION_ENUM
    KYUFU_GLUE_OPTION_COUNT
};

struct kyufu_glue_option_bounds
{
    const char *field; /* the field's name in struct kyufu_glue_config */
    unsigned def;      /* used when the field is 0 */
    unsigned min;      /* inclusive */
    unsigned max;      /* inclusive */
};

/* The default and bounds of option `o` (< KYUFU_GLUE_OPTION_COUNT); a
 * pointer to static data. */
const struct kyufu_glue_option_bounds *kyufu_glue_option_bounds(
    enum kyufu_glue_option o);

/* Check the tunable fields of *c, in place: a 0 field is set to its
 * default, then every field must lie in its bounds and the relations must
 * hold:
 *   heartbeat_timeout_ms * 3 <= election_timeout_ms   (several heartbeats
 *       reach a follower before it starts an election);
 *   snapshot_trailing_entries < snapshot_threshold_entries   (a snapshot
 *       lets go of some log: libraft keeps the whole log since the last
 *       snapshot in memory).
 * Returns 0, or CONFIG with errmsg saying why without naming the field
 * (callers name it in their own terms: the field, a config key); then
 * *bad (if not NULL) is the
 * option at fault (for a relation the second one above: heartbeat,
 * trailing) and *other (if not NULL) the option it was compared with, or
 * KYUFU_GLUE_OPTION_COUNT for a bound.  id, address and raft_dir are not
 * looked at. */
int kyufu_glue_check_options(struct kyufu_glue_config *c,
                             enum kyufu_glue_option *bad,
                             enum kyufu_glue_option *other,
                             char *errmsg,
                             size_t errmsg_len);

/* Called when this node's role or the known leader changes. */
typedef void (*kyufu_glue_state_cb)(struct kyufu_glue *g, void *arg);

/* Something an operator should see in the log, that is not a state change:
 * the life of a snapshot copy sent to a lagging peer (docs/raft.md,
 * "Snapshot installs"), and Raft connections refused during their TLS or
 * raft handshake (docs/peer-tls.md; at most KYUFU_PEER_REFUSED_LOG_PER_WINDOW
 * per window).  Strings are borrowed for the call. */
struct kyufu_glue_event
{
    const char *what;   /* "snapshot send started" | "snapshot sent" |
                           "snapshot installed by peer" |
                           "snapshot send failed" | "snapshot send reopened" |
                           "raft peer refused" |
                           "raft peer closed: certificate revoked" (an open
                           link, at a CRL reload) |
                           "raft configuration repaired" (index: the entry
                           marked committed; conf_track.h) */
    uint64_t peer;      /* the peer's Raft id (refused: claimed or
                           expected, 0 when unknown) */
    uint64_t index;     /* the snapshot's index (0: not loaded yet) */
    uint64_t term;
    uint64_t bytes;
    uint64_t ms;        /* since the copy's load started */
    const char *reason; /* failed / reopened / refused: why; else NULL */
    /* refused only (else NULL / 0): */
    const char *remote;  /* "ip:port" of the TCP peer */
    const char *subject; /* certificate subject it presented ("" if none) */
    bool inbound;        /* it connected to us */
    uint64_t suppressed; /* refusals not reported since the previous one */
};
typedef void (*kyufu_glue_event_cb)(void *arg, const struct kyufu_glue_event *e);

/* Set (or clear with NULL) the event callback; called on the loop thread. */
void kyufu_glue_set_event_cb(struct kyufu_glue *g,
                             kyufu_glue_event_cb cb,
                             void *arg);

/* Create the glue on `loop`.  Nothing starts until kyufu_glue_start. */
int kyufu_glue_init(uv_loop_t *loop,
                    const struct kyufu_glue_config *config,
                    struct kyufu_storage *storage,
                    struct kyufu_glue **out,
                    char *errmsg,
                    size_t errmsg_len);

/* Write the initial configuration (all voters) into a pristine raft_dir.
 * Call once per node of a new cluster, before start.  Returns CONFIG when
 * the directory already holds a cluster. */
int kyufu_glue_bootstrap(struct kyufu_glue *g,
                         const struct kyufu_glue_peer *peers,
                         size_t n_peers,
                         char *errmsg,
                         size_t errmsg_len);

/* Load the log, restore state and join the cluster.  Fails with STORAGE when
 * the store has applied entries the Raft log no longer holds (see
 * docs/raft.md, "auto-recovery"). */
int kyufu_glue_start(struct kyufu_glue *g,
                     kyufu_glue_state_cb state_cb,
                     void *state_arg,
                     char *errmsg,
                     size_t errmsg_len);

/* ---------------------------------------------------------------- propose */

struct kyufu_glue_propose;
/* status is 0 or a KYUFU_GLUE_E* code.  On 0, `result` is the command's
 * result (which may itself be a ledger rejection) and the callback owns it
 * (free with kyufu__v1__command_result__free_unpacked).  On error it is
 * NULL and the command may or may not have been applied: retry with the same
 * idempotency key to learn which (ENOMEM also when it was applied but its
 * result could not be unpacked here). */
typedef void (*kyufu_glue_propose_cb)(struct kyufu_glue_propose *req,
                                      int status,
                                      Kyufu__V1__CommandResult *result);
/* The same, for a caller that relays the result as apply encoded it
 * (WriteResponse.result): on 0, `result` is borrowed for the callback only
 * and was never unpacked (kyufu_storage_result_unpack when it must be
 * read); on error it is NULL. */
typedef void (*kyufu_glue_propose_packed_cb)(
    struct kyufu_glue_propose *req,
    int status,
    const struct kyufu_storage_result *result);
struct kyufu_glue_propose
{
    void *data;                 /* For the caller. */
    /* Private below. */
    void *queue[2];
    uint8_t *encoded;
    size_t encoded_len;
    kyufu_glue_propose_cb cb;               /* one of these two */
    kyufu_glue_propose_packed_cb packed_cb;
};

/* Propose one command (its header fully filled, including the leader-stamped
 * time) on the leader.  The command is encoded before this returns; the
 * caller keeps ownership of `cmd`. Returns NOTLEADER on a follower
 * and while this node hands leadership over (kyufu_glue_transferring). */
int kyufu_glue_propose(struct kyufu_glue *g,
                       struct kyufu_glue_propose *req,
                       const Kyufu__V1__Command *cmd,
                       kyufu_glue_propose_cb cb);
/* Same, with the result packed (kyufu_glue_propose_packed_cb). */
int kyufu_glue_propose_packed(struct kyufu_glue *g,
                              struct kyufu_glue_propose *req,
                              const Kyufu__V1__Command *cmd,
                              kyufu_glue_propose_packed_cb cb);

/* ---------------------------------------------------------- linearizable */

struct kyufu_glue_barrier;
typedef void (*kyufu_glue_barrier_cb)(struct kyufu_glue_barrier *req,
                                      int status);
struct kyufu_glue_barrier
{
    void *data;
    void *impl; /* Private. */
    kyufu_glue_barrier_cb cb;
};

/* On the leader: fire cb once every entry committed before this call is
 * applied locally, and leadership was confirmed by a quorum after the call
 * (a Raft barrier entry), so a read done in the callback is linearizable. */
int kyufu_glue_barrier(struct kyufu_glue *g,
                       struct kyufu_glue_barrier *req,
                       kyufu_glue_barrier_cb cb);

/* -------------------------------------------------------------- cluster */

struct kyufu_glue_status
{
    uint64_t id;
    const char *role;        /* "leader" | "follower" | "candidate" | ... */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_log_index;
    uint64_t leader_id;      /* 0 when unknown */
    char leader_address[128];
    /* Snapshots (docs/raft.md, "Snapshots"): taken here since start,
     * restored into storage (at start or installed from the leader), taken
     * but not yet written (serializing or being put), and of those the ones
     * serializing on a work thread right now. */
    uint64_t apply_runs;      /* runs of committed entries applied (fsm.h) */
    uint64_t snapshots_taken;
    uint64_t snapshots_restored;
    /* libraft's committed configuration (conf_track.h): snapshot requests
     * refused while a configuration entry was uncommitted (legacy asks
     * again after every event), repairs of one marked uncommitted below
     * the applied index, and received batches cut before one. */
    uint64_t snapshots_deferred_conf;
    uint64_t config_repairs;
    uint64_t config_cuts; /* AppendEntries cut before one (glue__conf_cut) */
    unsigned snapshots_in_flight;
    unsigned snapshots_serializing;
    /* Snapshots taken but never written: the store's stream failed, or
     * the file system refused the stream's unnamed file (of those:
     * snapshots_file_refused, the last refusal's errno; the next one is
     * held back for a quarter period, and the log grows meanwhile). */
    uint64_t snapshots_failed;
    uint64_t snapshots_file_refused;
    int snapshot_file_errno;
    /* Leader side of InstallSnapshot (one copy per peer at a time): copies
     * loaded and sent, and re-sends raft asked for while one was out. */
    uint64_t snapshot_copies_sent;
    uint64_t snapshot_copies_refused;
    /* Log entries kept after a snapshot right now: the configured trailing,
     * or more while a peer catches up after an install (docs/raft.md). */
    uint64_t snapshot_trailing_entries;
    /* Entries between this node's snapshots right now (the period of its
     * slots): the configured threshold, or more for a large ledger
     * (docs/raft.md "Snapshot spacing", "One voter at a time"). */
    uint64_t snapshot_threshold_entries;
    /* The raft index of this node's last snapshot: taken and on disk, or
     * restored (0: none since start).  Its log starts at most the
     * trailing entries before it. */
    uint64_t snapshot_last_index;
    /* Raft transport (docs/peer-tls.md): streams handed to raft since start
     * (both directions), connections refused or given up during their
     * handshake, and inbound connections not yet authenticated now. */
    uint64_t peer_streams_opened;
    uint64_t peer_connections_refused;
    unsigned peer_handshakes_pending;
    /* raft_transfer calls of the current or last leadership transfer
     * (kyufu_glue_transfer): 1 when raft's first TimeoutNow was taken; one
     * more for each retry after raft's transfer timeout. */
    unsigned transfer_attempts;
};

void kyufu_glue_status(struct kyufu_glue *g, struct kyufu_glue_status *out);

/* uv_now (loop ms) of the last time an open Raft stream with peer `id`
 * ended from the TCP side (EOF, reset) or a connect to it was refused; 0
 * when never.  A process that dies has its sockets closed by the kernel, a
 * partitioned or frozen one does not: the availability ledger tells a
 * crash from a partition by this (docs/sla.md, "Causes"). */
uint64_t kyufu_glue_peer_lost_ms(struct kyufu_glue *g, uint64_t id);

/* The slowest apply of a committed entry (one LMDB transaction, run on the
 * loop thread) since the previous call, in milliseconds; resets it. */
uint64_t kyufu_glue_take_apply_max_ms(struct kyufu_glue *g);
bool kyufu_glue_is_leader(struct kyufu_glue *g);
/* After a successful kyufu_glue_start: by how many entries the store was
 * ahead of the Raft log (entries applied before this node's own copy was on
 * disk, then lost by a kill or a power cut; docs/raft.md "Store ahead of
 * the log"), 0 normally. */
uint64_t kyufu_glue_store_ahead(struct kyufu_glue *g);
/* raft's current term (kyufu_glue_status's term, without the rest of the
 * status: cheap enough for every applied entry). */
uint64_t kyufu_glue_term(struct kyufu_glue *g);
/* True while this node hands its leadership over: from
 * kyufu_glue_transfer until its callback (the new leader known, or the
 * attempt failed), and while raft's core holds a transferee.  Proposals and
 * barriers then fail NOTLEADER (from kyufu_glue_transfer on: the glue waits
 * for the target to store the leader's last entry before raft's transfer
 * starts, glue.c transfer_caught_up). */
bool kyufu_glue_transferring(struct kyufu_glue *g);

/* Every applied command entry, after its LMDB transaction committed and
 * before its proposer (if here) is answered: the entry, and how long the
 * storage apply took (one LMDB write transaction with its fsync, on the
 * loop thread).  For the node's metrics; NULL clears it. */
typedef void (*kyufu_glue_apply_cb)(void *arg,
                                    uint64_t index,
                                    uint64_t term,
                                    uint64_t apply_ns);
void kyufu_glue_set_apply_cb(struct kyufu_glue *g,
                             kyufu_glue_apply_cb cb,
                             void *arg);

/* Every durable append of entries to this node's Raft log (raft_uv's write
 * and fsync) that succeeded, with its duration; NULL clears it. */
typedef void (*kyufu_glue_append_cb)(void *arg, uint64_t append_ns);
void kyufu_glue_set_append_cb(struct kyufu_glue *g,
                              kyufu_glue_append_cb cb,
                              void *arg);

/* Every snapshot put that succeeded, once raft's callback returned: a
 * snapshot of this node's own (raft freed its buffers and compacted its
 * in-memory log, the entries before the trailing ones) or an installed
 * one (raft freed the received data); NULL clears it. */
typedef void (*kyufu_glue_compacted_cb)(void *arg);
void kyufu_glue_set_compacted_cb(struct kyufu_glue *g,
                                 kyufu_glue_compacted_cb cb,
                                 void *arg);

/* Replication of one other voter, seen by the leader. */
struct kyufu_glue_follower
{
    uint64_t id;
    uint64_t match_index;     /* highest entry known replicated there */
    bool contacted;           /* a message came from it since start */
    uint64_t contact_age_ms;  /* since its last message (if contacted) */
};
/* Milliseconds since the last message from peer `id` (any role) into
 * *age_ms; false when none came since start. */
bool kyufu_glue_last_contact(struct kyufu_glue *g, uint64_t id,
                             uint64_t *age_ms);

/* On the leader, the other voters of the current configuration, up to
 * `max`; returns how many were written (0 on a follower). */
size_t kyufu_glue_followers(struct kyufu_glue *g,
                            struct kyufu_glue_follower *out,
                            size_t max);
/* Upgrades: the ids of the voters in the configuration this node holds now
 * (as leader, the one it replicates), ascending, at most `cap` of them;
 * returns how many there are (more than cap: only cap were written). */
size_t kyufu_glue_voters(struct kyufu_glue *g, uint64_t *ids, size_t cap);

/* 0 while healthy; otherwise the error (STORAGE: a fatal storage error or
 * a store ahead of the log; IO: a failed raft_uv disk write) that made the
 * glue stop applying and proposing, with the detail in errmsg.  The state
 * callback fires once when this becomes nonzero: the node must then close
 * the glue and exit (a durable write is never retried). */
int kyufu_glue_fatal(struct kyufu_glue *g, char *errmsg, size_t errmsg_len);

/* Certificate rotation for the Raft port: read tls_cert_file, tls_key_file,
 * tls_ca_file and tls_crl_file again for every peer connection made or accepted from now
 * on (open ones keep theirs).  The new certificate must still name this
 * node's id.  0, or CONFIG with errmsg, the current files staying in force
 * (a half-copied rotation never cuts the node off its peers). */
int kyufu_glue_reload_tls(struct kyufu_glue *g, char *errmsg, size_t errmsg_len);

struct kyufu_glue_transfer;
typedef void (*kyufu_glue_transfer_cb)(struct kyufu_glue_transfer *req,
                                       int status);
struct kyufu_glue_transfer
{
    void *data;
    void *impl; /* Private. */
    kyufu_glue_transfer_cb cb;
};

/* Hand leadership to `target_id` (0: the most up-to-date voter).  From
 * this call on, proposals and barriers fail NOTLEADER; the Raft transfer
 * (TimeoutNow) starts once the target has stored the leader's last entry,
 * or after one election timeout if it has not.
 * The callback fires with 0 once another node is seen as leader, after
 * retrying the Raft transfer up to KYUFU_TRANSFER_ATTEMPTS_MAX times;
 * TIMEOUT when it never happened (also when the target did not catch up
 * within the transfer's deadline). */
int kyufu_glue_transfer(struct kyufu_glue *g,
                        struct kyufu_glue_transfer *req,
                        uint64_t target_id,
                        kyufu_glue_transfer_cb cb);

struct kyufu_glue_change;
typedef void (*kyufu_glue_change_cb)(struct kyufu_glue_change *req,
                                     int status);
struct kyufu_glue_change
{
    void *data;
    void *impl; /* Private. */
    kyufu_glue_change_cb cb;
};

/* ------------------------------------------------------------ membership
 * (docs/operations.md "Replacing a node").  One change at a time, leader
 * only; a second one while one runs is BUSY.  Every refusal returned by the
 * call itself changes nothing. */

/* Add a node as a voter without ever counting it in the quorum before it
 * has the log: raft_add (RAFT_SPARE) -> raft_assign(RAFT_STANDBY) (it now
 * receives the log but does not vote) -> wait, polling its match index,
 * until it is within KYUFU_JOIN_LAG_ENTRIES_MAX entries of the leader's
 * last index -> raft_assign(RAFT_VOTER) (libraft's own catch-up round, then
 * the promotion).  When it does not catch up within `catch_up_ms` (0:
 * KYUFU_JOIN_CATCH_UP_MS_DEFAULT) the callback fires with NOTCAUGHTUP and
 * the node stays a standby (not in the quorum): call again to resume, or
 * remove it.
 *   Refused up front: INVALID (id 0, a malformed address), EXISTS (the id
 *   is already a voter, or a member with another address, or another
 *   member has this Raft address), NOTLEADER, BUSY.
 *   A standby or spare with the same id and address is resumed, not
 *   refused: re-running a failed join is safe.
 * Callback: 0 once it is a voter; NOTCAUGHTUP; LEADERSHIPLOST; SHUTDOWN. */
int kyufu_glue_add(struct kyufu_glue *g,
                   struct kyufu_glue_change *req,
                   const struct kyufu_glue_peer *peer,
                   unsigned catch_up_ms,
                   kyufu_glue_change_cb cb);
/* Remove a member.  Refused up front: NOTFOUND (not a member), INVALID
 * (this node, the leader: transfer leadership first), QUORUM (a voter when
 * fewer than KYUFU_VOTERS_MIN voters would remain), NOTLEADER, BUSY.
 * Removing a voter first commits a barrier and counts the remaining voters
 * that have it (waiting up to an election timeout for slow ones): unless
 * they are a majority of the voters that remain, the callback fires with
 * UNREACHABLE and nothing is removed (the new configuration could never
 * commit: the cluster would stop).  Callback: 0 once the configuration
 * without it is committed; UNREACHABLE; LEADERSHIPLOST; SHUTDOWN. */
int kyufu_glue_remove(struct kyufu_glue *g,
                      struct kyufu_glue_change *req,
                      uint64_t id,
                      kyufu_glue_change_cb cb);

enum kyufu_glue_role {
    KYUFU_GLUE_ROLE_VOTER = 0,   /* replicates and votes */
    KYUFU_GLUE_ROLE_STANDBY = 1, /* replicates, does not vote (a learner) */
    KYUFU_GLUE_ROLE_SPARE = 2    /* neither */
};
const char *kyufu_glue_role_name(enum kyufu_glue_role role);

struct kyufu_glue_member
{
    uint64_t id;
    enum kyufu_glue_role role;
    char raft_address[KYUFU_GLUE_MEMBER_ADDRESS_BYTES];
    char api_address[KYUFU_GLUE_MEMBER_ADDRESS_BYTES]; /* "" unrecorded */
    uint64_t match_index; /* on the leader; else 0 */
};

/* The Raft configuration as this node knows it (the latest, committed or
 * not), at most `max` members into out; returns how many there are. */
size_t kyufu_glue_members(struct kyufu_glue *g,
                          struct kyufu_glue_member *out,
                          size_t max);

/* Whether "host:port" is an address kyufu_glue_add accepts (host: an IPv4
 * address, a [bracketed] IPv6 one or a DNS name; port 1..65535). */
bool kyufu_glue_address_ok(const char *address);

/* Stop: pending proposals fail with SHUTDOWN, raft and raft_uv close; cb
 * fires when every handle is closed (the glue's memory then waits for
 * kyufu_glue_free_closed).  The storage is
 * not closed (the caller owns it).  cb's `fatal` is what kyufu_glue_fatal
 * would have answered last (0, or a fatal error met before or during the
 * close, e.g. a final store flush or a raft_uv write that failed), with
 * its one-line `detail` (borrowed for the call only). */
typedef void (*kyufu_glue_close_cb)(void *arg, int fatal, const char *detail);
void kyufu_glue_close(struct kyufu_glue *g, kyufu_glue_close_cb cb, void *arg);

/* Frees every glue whose close callback has fired, with its raft_uv.  Call
 * on the loop's thread once uv_run has returned (nothing left to run):
 * libraft 0.22.1's raft_uv can finish a truncate after it reported itself
 * closed, on its own memory and the glue's (docs/raft.md "raft_uv reports
 * closed twice"), so neither is freed before the loop is idle. */
void kyufu_glue_free_closed(void);

/* ------------------------------------------------- quorum-loss recovery
 * (raft-glue/recover.c; docs/restore.md "Quorum-loss recovery").  For a
 * node whose kyufud is stopped (the caller holds its data-folder lock):
 * synchronous, each on a private libuv loop, no network.  Everything the
 * log holds stays; only a new configuration is appended. */

#define KYUFU_GLUE_RECOVER_MEMBERS_MAX 16u

/* What a node's Raft directory holds (kyufu_glue_log_inspect). */
struct kyufu_glue_log_info
{
    uint64_t term;           /* the current term (metadata) */
    uint64_t voted_for;      /* 0: none */
    uint64_t snapshot_index; /* 0: no snapshot */
    uint64_t snapshot_term;
    uint64_t last_index;     /* the last entry (or the snapshot's index) */
    uint64_t last_term;      /* its term */
    /* The latest configuration in the log (committed or not), at most
     * KYUFU_GLUE_RECOVER_MEMBERS_MAX members (n_members counts all). */
    uint64_t configuration_index;
    size_t n_members;
    struct kyufu_glue_member members[KYUFU_GLUE_RECOVER_MEMBERS_MAX];
};

/* Read raft_dir (of node `id`, Raft address `address`) without changing
 * it.  0, or INVALID (id 0, NULL), CONFIG (no log: a pristine or missing
 * directory), CORRUPT (a log raft_uv refuses), NOMEM, IO; errmsg says
 * why.  match_index of every member is 0. */
int kyufu_glue_log_inspect(const char *raft_dir,
                           uint64_t id,
                           const char *address,
                           struct kyufu_glue_log_info *out,
                           char *errmsg,
                           size_t errmsg_len);

/* Make node `id` the one voter of a new configuration: raft_recover (a
 * closed segment holding that configuration, appended after the last
 * entry).  `seen` is what the operator confirmed (kyufu_glue_log_inspect):
 * the log is read again and nothing is written unless its last index,
 * last term and term are still those (STALE otherwise, e.g. the node ran
 * in between).  Refused, with nothing written: INVALID (id 0, NULL),
 * NOTFOUND (`id` is not a voter of the latest configuration: a standby or
 * spare may lack committed entries), EXISTS (already the one voter:
 * recovery ran before), plus the errors of kyufu_glue_log_inspect.  The
 * member keeps the address recorded for it (member_address.h).  Then the
 * node starts as a one-voter cluster and elects itself. */
int kyufu_glue_recover(const char *raft_dir,
                       uint64_t id,
                       const char *address,
                       const struct kyufu_glue_log_info *seen,
                       char *errmsg,
                       size_t errmsg_len);

/* ------------------------------------------------- seeding a restored node
 * (raft-glue/seed.c; docs/restore.md "Restore").  For a node of a new
 * cluster built from a backup, kyufud stopped, its Raft directory pristine,
 * its store restored from the backup's stream (which checked it): write a
 * Raft snapshot at the store's applied (index, term) whose content is the
 * glue's snapshot header and the store's own snapshot stream, with every
 * peer a voter of its configuration (at index), then set the current term
 * to term.  At start raft loads that snapshot and the FSM keeps the store
 * already at index (or restores it from the snapshot when it is not); the
 * first entry of the new log is index + 1, so nothing the store applied is
 * ever applied again, and a node added later receives this snapshot (or a
 * later one) as any joiner does.  When the store holds a cluster master
 * key the snapshot is written sealed (version 2, seal.h) under its active
 * stream key, as the FSM writes them, so the stream is never in a Raft
 * file in plaintext and a node with a key can load it.  The stream goes
 * through an unnamed file in raft_dir that is mapped for raft_uv, never
 * into this process's anonymous memory.  Synchronous, private loop, no
 * network.  Refused with nothing written: INVALID (id 0, no peers, `id`
 * not among them, NULL, a store at index or term 0), CONFIG (raft_dir
 * already holds a Raft log or term).  IO: a write failed (delete the
 * directory and seed again). */
int kyufu_glue_seed_store(const char *raft_dir,
                          uint64_t id,
                          const char *address,
                          const struct kyufu_glue_peer *peers,
                          size_t n_peers,
                          struct kyufu_storage *store,
                          char *errmsg,
                          size_t errmsg_len);

#endif /* KYUFU_GLUE_H */
