/* kyufud internals shared by the files of node/ (not a library: the daemon
 * is the only user).
 *
 * A struct kyufu_node owns the loop's handles, the data-directory lock, the
 * store, the raft glue, the API server and the forwarding clients.
 * Everything runs on the loop thread.
 *
 * Lifecycle (node.c):
 *   start: lock DATA/LOCK -> open DATA/ledger -> glue init on DATA/raft,
 *          bootstrap from [cluster] when DATA/raft is pristine -> glue start
 *          -> API server listening.
 *   stop (SIGTERM/SIGINT, or a fatal storage/raft error), requested by
 *          kyufu_node__stop from any callback and run from the node's own
 *          zero timer (stop_defer), never inside the requester's callback:
 *          leader and a clean stop? hand leadership over (bounded by
 *          KYUFU_NODE_STOP_TRANSFER_MS_MAX) -> close the API server -> close
 *          the forwarding clients -> close the glue (proposals in flight fail
 *          with SHUTDOWN and their calls are answered) -> close the store ->
 *          close signals and timers; the loop then holds no handle and
 *          uv_loop_close returns 0 -> unlock.
 *
 * Calls (service_*.c, forward.c): each call the API server hands us gets a
 * struct kyufu_node_call; it lives until the call is answered and every
 * request it started (proposal, barrier, forward) has called back.
 */
#ifndef KYUFU_NODE_NODE_H
#define KYUFU_NODE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <sys/stat.h>
#include <uv.h>

#include "auth_node.h"
#include "auth.h"
#include "availability.h"
#include "config.h"
#include "glue.h"
#include "grpc.h"
#include "metrics.h"
#include "oplog.h"
#include "power.h"
#include "refusal.h"
#include "scrub.h"
#include "heap_release.h"
#include "work_pool.h"
#include "sla.h"
#include "storage.h"
#include "store_mark.h"

/* What a leader on battery learned of a peer (power.c's survey). */
struct kyufu_node_power_peer
{
    uint64_t id;                  /* a voter other than this node */
    struct kyufu_node *node;
    struct kyufu_grpc_client_req req;
    bool answered;                /* the last survey got its Status */
    enum kyufu_power_state state;
    char domain[KYUFU_NODE_POWER_NAME_BYTES_MAX + 1];
    uint64_t applied;
};

/* Power state and policy (power.c). */
struct kyufu_node_power
{
    enum kyufu_power_state state;
    bool contact_lost;            /* upsd cannot be reached right now */
    bool stop_ordered;            /* the stop was the UPS's: exit status 3 */
    struct kyufu_power_watch *watch; /* NULL without [power] ups */
    uv_timer_t resurvey;          /* a leader on battery asks again */
    unsigned survey_pending;      /* Status calls out */
    bool surveyed;                /* a survey has completed */
    bool transfer_pending;        /* its intent or transfer is out */
    uint64_t transfer_target;
    struct kyufu_glue_transfer transfer;
    /* The last survey: the voters of the Raft configuration then, not
     * [cluster] (nodes replaced or added since count as they are). */
    struct kyufu_node_power_peer peers[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t n_surveyed;
    bool alerted;
    uint64_t alert_last_ms;       /* uv_now of the last lost-contact line */
    uint64_t alerts_suppressed;
};

/* Why this node saw a leader change, where it knows (docs/metrics.md);
 * the names follow FailoverCause of the availability ledger (docs/sla.md).
 * Only the node that handed leadership over knows a planned or power
 * transfer; every other change is UNKNOWN in this node's metrics. */
#define KYUFU_NODE_FAILOVER_CAUSES(X)                                        \
    X(UNKNOWN, "unknown")                                                    \
    X(PLANNED, "planned")                                                    \
    X(POWER, "power")
enum kyufu_node_failover_cause {
#define KYUFU_NODE__CAUSE_ENUM(name, text) KYUFU_NODE_CAUSE_##name,
    KYUFU_NODE_FAILOVER_CAUSES(KYUFU_NODE__CAUSE_ENUM)
#undef KYUFU_NODE__CAUSE_ENUM
    KYUFU_NODE_CAUSE_COUNT
};

/* gRPC status codes 0..16 (OK .. UNAUTHENTICATED). */
#define KYUFU_NODE_GRPC_STATUS_COUNT 17u

/* What the node counts and times for /metrics (metrics_node.c).  Loop
 * thread only. */
struct kyufu_node_metrics
{
    struct kyufu_metrics_http *http; /* NULL without metrics_listen */
    void (*close_done)(struct kyufu_node *n);
    /* Calls by method (index in service.c's table) and gRPC status. */
    uint64_t rpc[KYUFU_NODE_METRICS_METHODS_MAX][KYUFU_NODE_GRPC_STATUS_COUNT];
    struct kyufu_metrics_histogram rpc_seconds[KYUFU_NODE_METRICS_METHODS_MAX];
    struct kyufu_metrics_histogram commit_seconds; /* propose -> applied */
    struct kyufu_metrics_histogram apply_seconds;  /* LMDB txn + fsync */
    struct kyufu_metrics_histogram append_seconds; /* raft log write+fsync */
    struct kyufu_metrics_histogram heap_release_seconds; /* after compaction */
    struct kyufu_metrics_histogram work_wait_seconds; /* work_pool.h */
    /* Leader changes seen. */
    uint64_t leader;      /* last leader seen (0: none yet) */
    uint64_t leader_term; /* the term it was seen in */
    uint64_t failovers[KYUFU_NODE_CAUSE_COUNT];
    enum kyufu_node_failover_cause transfer_cause;
    uint64_t transfer_until_ms; /* uv_now bound of a hand-over from here */
    /* RTO as this node sees it: last apply under the old term -> first
     * apply under a newer one, once a leader change was seen. */
    uint64_t apply_last_ms;   /* uv_now of the last entry applied in the
                               * term it was written in (a sign of life of
                               * that term's leader) */
    uint64_t apply_last_term;
    uint64_t term_first_ms;   /* uv_now of the first entry applied of
                               * apply_last_term */
    uint64_t term_before_ms;  /* apply_last_ms as that first entry came */
    bool rto_pending;         /* a change seen, no apply in the new term */
    uint64_t rto_from_ms;
    uint64_t rto_term;        /* the term it was seen in */
    bool rto_known;
    uint64_t rto_last_ms;
    uint64_t rto_seen_count;
};

/* Backups (backup_schedule.c; docs/backup.md "Scheduled backups"): the
 * schedule and what the metrics say of the [backup] directory.  Loop
 * thread only (the work threads fill their own structs). */
struct kyufu_node_backups
{
    uv_timer_t timer;  /* KYUFU_NODE_BACKUP_TICK_MS while a schedule is set */
    bool scanning;     /* a scan (with pruning) runs on a work thread */
    bool taking;       /* a scheduled backup runs */
    bool scanned;      /* the scan at start has finished */
    int rank;          /* this node's place in the duty, last tick (-1 none) */
    int64_t rank_since_mono; /* uv_now when it got that rank */
    /* Manifest time (Unix ms) of the newest good backup in the directory,
     * never one in the future when learned: from the scans (the newest
     * time not in the future, or when a future head was first seen) and
     * the backups written here; 0: none known.  The future head last
     * seen (head_created_ms 0: none) and when. */
    int64_t newest_ms;
    uint64_t head_term;
    uint64_t head_index;
    int64_t head_created_ms;
    int64_t head_seen_ms;
    /* The schedule counts on the loop's monotonic clock (uv_now), so that
     * a wall clock set back or forward moves no due time: base_mono is
     * when the newest good backup was taken (its age when learned,
     * subtracted from uv_now); retry_mono, after a failure, the earliest next try. */
    int64_t base_mono;
    int64_t retry_mono;
    int64_t last_scan_mono; /* when the last scan finished */
    unsigned failures_row;  /* scheduled failures in a row (the backoff) */
    uint64_t taken;         /* scheduled backups written since start */
    uint64_t failed;        /* scheduled backups that failed */
    uint64_t pruned;        /* backups retention removed */
    uint64_t prune_failed;  /* scans and removals that failed */
    uint64_t good;          /* good backups at the last scan */
};

/* Upgrades (version_watch.c): what the leader learned of one peer. */
struct kyufu_node_version_peer
{
    struct kyufu_node *node;
    struct kyufu_grpc_client_req req;
    uint64_t id;      /* the voter asked (0: slot unused this term) */
    uint32_t version; /* NodeStatus.command_version; 0: not known */
};

struct kyufu_node_versions
{
    uv_timer_t timer;        /* KYUFU_NODE_VERSION_POLL_MS while running */
    uint64_t term;           /* what was learned holds for this term */
    unsigned quiet_ticks;    /* ticks left before the term's first round */
    unsigned pending;        /* Status calls out */
    bool proposing;          /* a RecordVersions is in flight */
    uint64_t seq_last;       /* the last RecordVersions key's sequence */
    struct kyufu_glue_propose propose;
    struct kyufu_node_version_peer peers[KYUFU_NODE_CLUSTER_SIZE_MAX];
};

/* Data-key rotation (keys_rotate.c): the leader's re-encryption task and
 * the rotation record as last read (for the metrics). */
struct kyufu_node_rotate
{
    uv_timer_t timer;     /* KYUFU_NODE_REENCRYPT_TICK_MS while running */
    uint64_t term;        /* the term this leader settled in; 0: follower */
    unsigned quiet_ticks; /* ticks left before the term's first step */
    bool proposing;       /* a Reencrypt is in flight */
    uint64_t seq_last;    /* the last Reencrypt key's sequence */
    struct kyufu_glue_propose propose;
    uint32_t version;     /* of the record last read (0: none) */
    bool done;
    uint64_t resealed;
    bool read_once;       /* a tick has read the record (or its absence) */
};

enum kyufu_node_stage {
    KYUFU_NODE_STARTING = 0,
    KYUFU_NODE_RUNNING,
    KYUFU_NODE_TRANSFERRING, /* stopping: handing leadership over */
    KYUFU_NODE_CLOSING,      /* stopping: closing server, clients, glue */
    KYUFU_NODE_CLOSED,
};

struct kyufu_node
{
    uv_loop_t loop;
    const struct kyufu_config *config;
    int lock_fd;
    /* Encryption at rest (keys_node.c): the cluster identity, SHA-256 of
     * the [tls] ca certificate as it was at start (valid when [keys] is
     * set), and a joining node's wait for its cluster key (keys_fetch.c). */
    uint8_t ca_hash[32];
    struct kyufu_node_keys_fetch *keys_fetch;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup; /* reload TLS files (certificate rotation) */
    struct kyufu_node_refusals refusals;
    uv_timer_t stop_timer; /* bounds the hand-over */
    /* A stop is requested from anywhere (kyufu_node__stop) but runs from
     * this zero timer's own callback: never inside the callback that asked
     * (a connection's receive, raft, a work completion). */
    uv_timer_t stop_defer;
    bool stop_requested;     /* set once, by the first request */
    bool stop_hurry;         /* a later request: skip the hand-over */
    const char *stop_reason; /* the first request's (static string) */

    struct kyufu_storage *storage;
    /* The store's flush mark (store_mark.h, store_mark_node.c): this
     * boot's id ("" unknown) and whether this session wrote it "open". */
    char boot_id[KYUFU_STORE_MARK_BOOT_BYTES_MAX];
    bool store_mark_open;
    struct kyufu_glue *glue;
    struct kyufu_api_server *api;
    /* Lazily created client to each peer's API: slots below
     * KYUFU_NODE_CLUSTER_SIZE_MAX as config->peers, the others for members
     * added later (learned[], whose API address the Raft configuration
     * records: docs/raft.md "Membership"). */
    struct kyufu_grpc_client *forward[KYUFU_NODE_PEER_SLOTS];
    size_t forward_closing;
    /* Made before the last TLS reload: replaced once idle (forward.c). */
    bool forward_stale[KYUFU_NODE_PEER_SLOTS];
    struct {
        uint64_t id; /* 0: free */
        char api_address[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    } learned[KYUFU_NODE_CLUSTER_SIZE_MAX];
    void (*forward_done)(struct kyufu_node *n);

    /* Method table handed to the API server (lives as long as the node). */
    struct kyufu_grpc_method *methods;
    size_t n_methods;

    enum kyufu_node_stage stage;
    int exit_code;
    bool api_closed;
    bool glue_closed;
    struct kyufu_glue_transfer stop_transfer;
    bool stop_transfer_pending;
    uint64_t stop_target; /* the hand-over's (after its intent commits) */

    uint64_t leader_id; /* last seen, for logs and health */
    size_t calls_inflight;
    uint64_t forwarded_calls; /* calls sent on to the leader since start
                                 (NodeStatus.forwarded_calls) */
    unsigned offloaded;  /* whole-store reads on work threads (offload.h) */
    uv_timer_t stall_timer; /* loop stall detector (stall.h) */
    uint64_t stall_last_ns;
    uv_timer_t watchdog_timer; /* systemd WATCHDOG=1 pings (notify.h) */
    uint64_t stalls;
    bool finish_waiting; /* the store's close waits for them */
    /* Decommissioning (decommission.c): set by EraseNode; the stop then
     * keeps the API server open until the node is erased and answered. */
    struct kyufu_node_decom *decom;
    uint64_t stop_drain_until; /* uv_now bound of the drain (node.c) */
    struct kyufu_node_power power;
    struct kyufu_node_sla sla; /* SLA evaluator and alert hook (sla.h) */
    struct kyufu_node_metrics metrics;
    struct kyufu_node_avail avail; /* availability ledger (availability.c) */
    struct kyufu_node_versions versions;
    struct kyufu_node_rotate rotate; /* data-key rotation (keys_rotate.c) */
    struct kyufu_node_backups backups; /* backup_schedule.c */
    struct kyufu_node_scrub scrub; /* state digest checks (scrub.h) */
    struct kyufu_node_heap_release heap_release; /* heap_release.h */
    struct kyufu_node_work_probe work_probe;     /* work_pool.h */
    struct kyufu_node_oplog oplog; /* access records (oplog.h) */
    /* [tls] crl_file watch (tls_watch.c): polled, reloaded on change. */
    uv_timer_t crl_timer;
    struct stat crl_seen; /* as last looked at (zeroes: missing) */
    struct kyufu_node_auth auth; /* identity (auth_node.h) */
    /* Calls held during this node's leadership hand-over (forward_hold.c),
     * oldest first. */
    struct {
        uv_timer_t timer;
        bool timer_init;
        struct kyufu_node_call *head;
        struct kyufu_node_call *tail;
    } hold;
};

/* One call in progress. */
struct kyufu_node_call
{
    struct kyufu_node *node;
    struct kyufu_grpc_call *call; /* NULL once answered */
    const struct kyufu_node_method *method;
    int method_index;             /* in service.c's table; -1 before */
    uint64_t started_ns;          /* uv_hrtime at arrival (metrics) */
    uint64_t proposed_ns;         /* uv_hrtime of the proposal (metrics) */
    kyufu_glue_propose_cb proposed_cb; /* the caller's, wrapped */
    void *request;                /* unpacked request, or NULL */
    void *auth;                   /* auth_service.c's, freed with the call */
    /* Who is calling (auth.h), resolved by service.c's handle before the
     * permission table and any handler; KIND_NONE only for the methods
     * that need no session (permissions.h PUBLIC, LOCAL). */
    struct kyufu_principal principal;
    /* Held while this node hands leadership over (forward_hold.c). */
    struct kyufu_node_call *hold_next;
    uint64_t hold_until; /* uv_now bound of the hold */
    union {
        struct kyufu_glue_propose propose;
        struct kyufu_glue_barrier barrier;
        struct kyufu_glue_transfer transfer;
        struct kyufu_glue_change change;
        struct kyufu_grpc_client_req forward;
    } req;
};

/* Run the node described by `config` on a fresh loop until it stops.
 * Returns the process exit status (0 clean stop, 1 failure,
 * KYUFU_NODE_EXIT_POWER a clean stop ordered by the UPS). */
int kyufu_node_run(const struct kyufu_config *config);

/* Request the stop; safe from any loop callback, and idempotent.
 * exit_code 0 for a requested stop (a signal), 1 for a failure (a fatal
 * storage or raft error, a failed start: then no hand-over is attempted);
 * `why` is a static string.  The first request wins: it sets the reason,
 * logs the one "stopping" line and arms stop_defer; the stop sequence
 * itself starts from that timer's callback, once the caller's callback
 * has returned.  A later request only raises the exit status (a failure
 * during a clean stop still exits 1) and, during the hand-over, ends the
 * hand-over early (also deferred).  New calls are refused (UNAVAILABLE)
 * from the first request on. */
void kyufu_node__stop(struct kyufu_node *n, int exit_code, const char *why);

/* The store's flush mark (store_mark_node.c, docs/storage.md "After an OS
 * crash: rebuild").  Before the store opens (store_dir = the store's
 * folder): judge the mark, discard the store's files when it cannot be
 * trusted (logged), and in background-flush mode write the mark "open".
 * Returns 0, or -1 after logging why (the node must not open the store).
 * After it opened (its open flushed everything earlier): in commit mode,
 * remove a mark an earlier background session left. */
int kyufu_node__store_mark_before_open(struct kyufu_node *n,
                                       const char *store_dir);
void kyufu_node__store_mark_after_open(struct kyufu_node *n,
                                       const char *store_dir);
/* After the final flush of a clean stop (exit code 0) succeeded: the mark
 * says "clean" (no-op unless this session wrote it "open"). */
void kyufu_node__store_mark_clean(struct kyufu_node *n);

/* The store's structural check before it opens (store_check_node.c,
 * docs/storage.md "Structural check"): when STORE_DIR/clean.stop exists
 * (the last stop was clean) it is removed durably and the check skipped;
 * otherwise kyufu_storage_check_isolated runs.  Call before any thread
 * exists.  Returns 0 or a storage error with errmsg (CORRUPT: the store
 * is damaged; IO: the marker could not be removed, or the check did not
 * finish). */
int kyufu_node__store_check(struct kyufu_node *n,
                            const char *store_dir,
                            char *errmsg,
                            size_t errmsg_len);
/* After the final flush of a clean stop (exit code 0), with
 * kyufu_node__store_mark_clean: write STORE_DIR/clean.stop (logged when it
 * cannot be: the next start checks). */
void kyufu_node__store_check_clean(struct kyufu_node *n);

/* Build the method table (service.c). Returns 0 or -1 (out of memory). */
int kyufu_node__methods(struct kyufu_node *n);
void kyufu_node__methods_free(struct kyufu_node *n);

/* ---------------------------------------------------------- call helpers
 * (call.c) */

/* True while the node takes new calls: it runs and no stop was asked, or
 * a stop was asked and this node, the leader, is handing leadership over
 * before it closes (stage TRANSFERRING, hand-over pending, not hurried).
 * During that hand-over a call is served as on any leader: a proposal
 * refused by raft (the transfer has begun) is held (forward_hold.c) and
 * forwarded to the new leader once it is known, and the drain waits for
 * it, so a client of the stopping leader sees a slower answer instead of
 * an error followed by retries over the other nodes (which forward to the
 * same stopping leader until the new one is elected).  Once the hand-over
 * has ended, new calls are refused with the new leader named. */
bool kyufu_node__taking_calls(const struct kyufu_node *n);

/* Allocate the context of a call; NULL when the node is at
 * KYUFU_NODE_CALLS_INFLIGHT_MAX (the call was then answered
 * RESOURCE_EXHAUSTED) or stopping and not taking calls
 * (kyufu_node__taking_calls; answered UNAVAILABLE). */
struct kyufu_node_call *kyufu_node__call_new(struct kyufu_node *n,
                                            struct kyufu_grpc_call *call);
/* Answer the call (status, message, response bytes) and free the context.
 * Every answer carries the trailer `kyufu-leader: <leader's api_address>`
 * when this node knows a leader (docs/api.md "Leader hint"). */
void kyufu_node__call_done(struct kyufu_node_call *c,
                           int status,
                           const char *message,
                           const uint8_t *response,
                           size_t len);
/* Same, naming `leader_api` in the trailer instead of this node's view (a
 * forwarded answer relays the leader's own hint); NULL: our view; "": no
 * trailer. */
void kyufu_node__call_done_hint(struct kyufu_node_call *c,
                                int status,
                                const char *message,
                                const uint8_t *response,
                                size_t len,
                                const char *leader_api);
/* Answer a call that has no context (kyufu_node__call_new refused it),
 * with the same trailer. */
void kyufu_node__respond(struct kyufu_node *n,
                         struct kyufu_grpc_call *call,
                         int status,
                         const char *message);
/* Pack `msg` (a protobuf-c message) as the OK response and finish. */
void kyufu_node__call_done_msg(struct kyufu_node_call *c,
                               const ProtobufCMessage *msg);
/* UNAVAILABLE, naming the leader's API address in the message and in the
 * kyufu-leader trailer when known; without a leader, no trailer. */
void kyufu_node__call_unavailable(struct kyufu_node_call *c, const char *why);
/* Refuse a node-to-node call (NodeInternal), after the caller logged it
 * (its own literal message, for the log catalogue): when `record`, record
 * the refusal in the operations log as authorize does
 * (kyufu_node__oplog_refused: a caller that may not make the call, not a
 * member's malformed request); answer code and msg. */
void kyufu_node__call_refuse_peer(struct kyufu_node_call *c, int code,
                                  const char *msg, bool record);

/* Answer a failed storage call: NOTFOUND → NOT_FOUND ("<what> not
 * found"), INVALID → INVALID_ARGUMENT, READERS_FULL → RESOURCE_EXHAUSTED
 * (logged as a warning, never a stop), anything else INTERNAL, logged; a
 * fatal storage error also requests the node's stop (deferred: see
 * kyufu_node__stop). */
void kyufu_node__call_storage_error(struct kyufu_node_call *c,
                                    int rv,
                                    const char *what);

/* Milliseconds left before the caller's deadline (default when none);
 * 0 when it has passed. */
uint64_t kyufu_node__call_remaining_ms(const struct kyufu_node_call *c);

/* The peer slot of member `id` (see forward[]) and its API address: the
 * address the Raft configuration holds for it, through its [cluster] slot
 * when [cluster] lists it there too, else a learned slot (freed again once
 * the node leaves the configuration); [cluster] alone before Raft runs.
 * -1 when unknown. */
int kyufu_node__peer_slot(struct kyufu_node *n, uint64_t id,
                          const char **api_address);

/* The leader's API address ("" when unknown) and id (0 when unknown). */
uint64_t kyufu_node__leader(struct kyufu_node *n, const char **api_address);

/* The last step of a stop: close the store (once no whole-store read runs
 * on a work thread) and the node's own handles. */
void kyufu_node__finish(struct kyufu_node *n);

/* A fatal storage error (kyufu_storage_is_fatal) met outside apply, in a
 * query, a digest or a scan, after the caller logged it: stop.  A damaged
 * store (ECORRUPT: a page LMDB refuses, a sealed value whose tag does not
 * verify) with KYUFU_NODE_EXIT_REFUSED_DATA, as refused data found in
 * apply or at start (a restart would meet it again: docs/scrub.md
 * "Repair"); anything else (I/O) with 1. */
void kyufu_node__stop_storage(struct kyufu_node *n, int rv);

/* Fatal glue/storage error codes stop the node. */
void kyufu_node__check_fatal(struct kyufu_node *n, int glue_status);

/* After kyufu_node_run returned KYUFU_NODE_EXIT_POWER: run [power]
 * shutdown_command (if any) with /bin/sh -c and wait for it (power.c).
 * 0 when there is none or it exited 0. */
int kyufu_node__power_command(const struct kyufu_config *c);

/* ---------------------------------------------------- metrics_node.c
 * docs/metrics.md.  Every function runs on the loop thread and is cheap:
 * counters and a histogram bucket; the exposition is made only when
 * scraped. */

/* Histograms ready (before anything can be counted). */
void kyufu_node__metrics_init(struct kyufu_node *n);
/* The glue's apply callback (kyufu_glue_set_apply_cb, arg: the node). */
void kyufu_node__metrics_applied(void *arg, uint64_t index, uint64_t term,
                                 uint64_t apply_ns);
/* The glue's append callback (kyufu_glue_set_append_cb, arg: the node). */
void kyufu_node__metrics_appended(void *arg, uint64_t append_ns);
/* The heap's free pages handed back after a compaction of the Raft log
 * (kyufu_node_malloc_release, on the loop thread), took `ns`. */
void kyufu_node__metrics_heap_released(struct kyufu_node *n, uint64_t ns);
void kyufu_node__metrics_work_waited(struct kyufu_node *n, uint64_t ns);
/* Start the listener of [node] metrics_listen (nothing when unset). */
int kyufu_node__metrics_start(struct kyufu_node *n, char *errmsg,
                              size_t errmsg_len);
/* SIGHUP: the TLS files again for the metrics port (nothing without
 * metrics_tls); 0, or -1 with errmsg and the current files kept. */
int kyufu_node__metrics_reload_tls(struct kyufu_node *n, char *errmsg,
                                   size_t errmsg_len);
/* Close it; `done` runs once closed (maybe at once). */
void kyufu_node__metrics_close(struct kyufu_node *n,
                               void (*done)(struct kyufu_node *n));
/* A call answered with `status`: method `path` (its index in service.c's
 * table when known, else -1), arrived at `started_ns` (0: now). */
void kyufu_node__metrics_rpc(struct kyufu_node *n, const char *path,
                             int method_index, int status,
                             uint64_t started_ns);
/* A proposal of this leader applied, proposed at `proposed_ns`. */
void kyufu_node__metrics_committed(struct kyufu_node *n,
                                   uint64_t proposed_ns);
/* Raft's view changed (node.c's on_state). */
void kyufu_node__metrics_state(struct kyufu_node *n,
                               const struct kyufu_glue_status *st);
/* This node starts handing leadership over, for `cause`. */
void kyufu_node__metrics_transfer(struct kyufu_node *n,
                                  enum kyufu_node_failover_cause cause);
/* Render the whole exposition (the listener's render callback). */
int kyufu_node__metrics_render(void *node, struct kyufu_metrics_buf *b);

/* service.c's table, for the metrics: rows, and row i's path; the index of
 * `path` (-1 when not in the table). */
size_t kyufu_node__methods_count(void);
const char *kyufu_node__method_path(size_t i);
int kyufu_node__method_index(const char *path);
/* ------------------------------------------------------ version_watch.c
 * Upgrades (docs/operations.md "Upgrades"): as leader, learn every voter's
 * command-set version (Cluster.Status) and record them (RecordVersions)
 * whenever they differ from what the replicated state holds. */

/* Start the poll timer (after the glue started; the tick does nothing
 * unless this node leads); close it in the node's last step. */
void kyufu_node__versions_start(struct kyufu_node *n);
void kyufu_node__versions_close(struct kyufu_node *n);

/* ------------------------------------------------------ keys_rotate.c
 * Data-key rotation (docs/encryption.md "Rotation"): the leader proposes
 * Reencrypt steps at the replicated cursor at [keys]
 * reencrypt_records_per_s; Cluster.GetKeyStatus answers from this node's
 * store.  Start after the glue started; close in the node's last step. */
void kyufu_node__rotate_start(struct kyufu_node *n);
void kyufu_node__rotate_close(struct kyufu_node *n);
void kyufu_node__get_key_status(struct kyufu_node_call *c);

/* ------------------------------------------------------ forward.c */

/* True when the call came from another node's forwarding (it is never
 * forwarded again, which rules out forwarding loops). */
bool kyufu_node__call_was_forwarded(const struct kyufu_node_call *c);

/* The leader kyufu_node__forward would send the call to (its API address
 * in *api_address), or 0 when it would not: no leader known, this node
 * leads, or the call was forwarded already.  The one statement of that
 * rule (service.c asks it before forwarding a session this follower does
 * not hold yet). */
uint64_t kyufu_node__forward_leader(const struct kyufu_node_call *c,
                                    const char **api_address);

/* Send the call's original request bytes to the leader and relay its
 * answer.  Answers UNAVAILABLE itself when there is no leader.  While this
 * node hands its own leadership over, the call is held first and sent on
 * to the new leader once it is known (forward_hold.c). */
void kyufu_node__forward(struct kyufu_node_call *c);
/* The same without the hold: for the calls that must not be replayed on
 * the new leader once a hand-over ends (TransferLeadership, DrillFailover:
 * they would start another hand-over there). */
void kyufu_node__forward_now(struct kyufu_node_call *c);

/* ------------------------------------------------- forward_hold.c
 *
 * During this node's own leadership hand-over (kyufu_glue_transferring)
 * raft refuses proposals and barriers, and the new leader is not known
 * yet: a call that would be forwarded then is held, and sent on
 * (kyufu_node__forward_now) as soon as the hand-over has ended -- to the
 * new leader, or answered UNAVAILABLE as before when this node kept its
 * leadership, knows no leader, or the call was forwarded to it already
 * (its answer then names the new leader in the kyufu-leader trailer).  A
 * client calling the old leader therefore sees a slower answer, not an
 * error, and does not spin over the nodes meanwhile.  Bounded by
 * KYUFU_NODE_HOLD_ELECTIONS election timeouts and the caller's deadline
 * (then UNAVAILABLE), and by KYUFU_NODE_CALLS_INFLIGHT_MAX in count.
 *
 * kyufu_node__hold: true when the call was held (it is answered later);
 * false when there is no hand-over here (the caller goes on at once).
 * kyufu_node__hold_flush: answer every held call UNAVAILABLE (the node is
 * stopping).  kyufu_node__hold_close: the node's last step. */
bool kyufu_node__hold(struct kyufu_node_call *c);
void kyufu_node__hold_flush(struct kyufu_node *n);
void kyufu_node__hold_close(struct kyufu_node *n);

/* The (lazily created, then kept) client to peer slot i's API (below
 * KYUFU_NODE_CLUSTER_SIZE_MAX: index as config->peers; above: learned[]);
 * NULL with errmsg when it cannot be created. */
struct kyufu_grpc_client *kyufu_node__peer_client(struct kyufu_node *n,
                                                  size_t i,
                                                  char *errmsg,
                                                  size_t errmsg_len);

/* A new client (the caller closes it) to the API address of peer slot i
 * that believes any node certificate there, not only slot i's node: a
 * joining node asking for the cluster key (keys_fetch.c), whose [cluster]
 * may name addresses since taken over by other members (replace-node). */
struct kyufu_grpc_client *kyufu_node__peer_client_any(struct kyufu_node *n,
                                                      size_t i,
                                                      char *errmsg,
                                                      size_t errmsg_len);

/* Ask the peer in forwarding slot i (kyufu_node__peer_slot of a voter) for
 * its Cluster.Status, answered through cb with req.  0 when the call is
 * out; -1 when there is no client for that slot or the call could not
 * start (cb is then not called).  The power survey, the SLA probes and the
 * version round share it, each over the voters of the Raft configuration. */
int kyufu_node__ask_status(struct kyufu_node *n,
                           size_t i,
                           struct kyufu_grpc_client_req *req,
                           uint64_t timeout_ms,
                           kyufu_grpc_client_cb cb);

/* Certificate rotation (SIGHUP): every forwarding client is replaced by one
 * made from the current files, at once when it has no call in flight, else
 * at its first use after its calls have finished (calls in flight are never
 * cut short). */
void kyufu_node__forward_rotate(struct kyufu_node *n);

/* TLS files (tls_watch.c).  Reload the certificate, key, CA and CRL of
 * the Raft, API and metrics ports for connections accepted from now on;
 * a file that does not load keeps the current ones and logs why.  `why`
 * ("SIGHUP", "crl_file changed") goes into the log line. */
void kyufu_node__tls_reload(struct kyufu_node *n, const char *why);
/* Refuse a private key readable by group or others, before anything
 * starts: 0, or -1 after logging which file and why. */
int kyufu_node__tls_check_keys(struct kyufu_node *n);
/* Encryption at rest (keys_node.c): this node's cluster key from its
 * [keys] files, before the store opens.  0 with *have true and cmk filled
 * (the caller hands it to the store and wipes it), 0 with *have false when
 * the config has no [keys] (one warning logged), 1 when fresh_join (join =
 * yes, Raft folder empty) and the CMK file does not exist yet: the key is
 * to be fetched from a member (keys_fetch.c); or -1 after logging why (a
 * start refused with exit status 2). */
int kyufu_node__keys_load(struct kyufu_node *n, bool fresh_join,
                          uint8_t cmk[32], bool *have);
/* A joining node's wait for its cluster key (keys_fetch.c): asks members
 * until one hands it over, stores it, then calls then(n) (the rest of the
 * start).  0, or -1 after logging why.  close: in the node's finish (a
 * no-op when no fetch was started). */
int kyufu_node__keys_fetch_start(struct kyufu_node *n,
                                 void (*then)(struct kyufu_node *n));
void kyufu_node__keys_fetch_close(struct kyufu_node *n);
/* Watch [tls] crl_file (if set): init before the ports start (the timer
 * handle, and the file as they will read it), start once they run; every
 * KYUFU_NODE_CRL_POLL_MS a changed mtime, size or inode reloads the TLS
 * files.  close in the node's finish, after init in every case. */
void kyufu_node__crl_watch_init(struct kyufu_node *n);
void kyufu_node__crl_watch_start(struct kyufu_node *n);
void kyufu_node__crl_watch_close(struct kyufu_node *n);

/* Close every forwarding client; `done` runs once all are closed (maybe
 * immediately when there are none). */
void kyufu_node__forward_close(struct kyufu_node *n,
                               void (*done)(struct kyufu_node *n));

#endif /* KYUFU_NODE_NODE_H */
