/* The node's side of identity (issue 8; docs/identity.md): what auth.c,
 * auth_service.c and auth_timer.c share inside kyufud.  The contract with
 * the permission code is node/auth.h.
 *
 * State (struct kyufu_node_auth, loop thread only):
 *   - uses: the sessions this node authenticated a call for since the
 *     last TouchSessions, with the time of the last use.  Idle expiry
 *     counts from max(the replicated last_used_ms, this node's last use);
 *     the leader proposes TouchSessions for them at most once a minute.
 *   - work: password hashes on libuv work threads (never on the loop,
 *     never in apply): KYUFU_NODE_AUTH_WORK_MAX admitted, of which as
 *     many as the cores (2 to 4) run and the others wait in a FIFO here.
 *   - the leader's minute timer (touches, expiry, purge) and the
 *     bootstrap-admin file read at start. */
#ifndef KYUFU_NODE_AUTH_NODE_H
#define KYUFU_NODE_AUTH_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "glue.h"
#include "limits.h"
#include "signin_limit.h"
#include "steady_clock.h"
#include "storage_limits.h"
#include "kyufu/v1/identity.pb-c.h"

/* Metadata a follower adds when it forwards a call to the leader
 * (forward.c); accepted only on a connection with a node certificate. */
#define KYUFU_NODE_MD_PRINCIPAL "kyufu-principal"
#define KYUFU_NODE_MD_SESSION "kyufu-session"
#define KYUFU_NODE_MD_CLIENT_CERT "kyufu-client-cert"
#define KYUFU_NODE_MD_CLIENT_PEER "kyufu-client-peer"
#define KYUFU_NODE_MD_CLIENT_SUBJECT "kyufu-client-subject"
/* The subject forwarded (printable, no blanks; longer ones are cut). */
#define KYUFU_NODE_FORWARD_SUBJECT_BYTES 256u

struct kyufu_node_auth_use
{
    uint8_t token_hash[32];
    int64_t used_ms;
    bool dirty; /* not yet in a TouchSessions */
};

/* Expired sessions found by one scan of the session table, closed one
 * per tick before the table is read again: a scan reads every session, so
 * one scan per close would read the table once for each expired session.
 * 64 hashes (2 KiB) cover a shift's end in a few scans. */
#define KYUFU_NODE_AUTH_EXPIRED_MAX 64u

struct kyufu_node_auth
{
    struct kyufu_node_auth_use uses[KYUFU_NODE_AUTH_TOUCH_MAX];
    size_t n_uses;
    unsigned working;        /* hashes admitted: running or queued */
    unsigned running;        /* of them, on work threads */
    unsigned run_max;        /* 0 until the first hash (auth_work.c) */
    uint64_t n_queued;       /* hashes that waited their turn, ever */
    struct kyufu_node_auth_job *queued;      /* FIFO: waiting their turn */
    struct kyufu_node_auth_job *queued_tail;
    uv_timer_t timer;        /* KYUFU_NODE_AUTH_TICK_MS */
    bool timer_started;
    bool proposing;          /* a timer command is in flight */
    uint64_t sweep_last_ms;  /* uv_now of the last complete sweep */
    bool sweep_touched;      /* this sweep's TouchSessions went out */
    /* The leader's expired sessions still to close (auth_timer.c),
     * emptied when this node is not the leader. */
    uint8_t expired[KYUFU_NODE_AUTH_EXPIRED_MAX][32];
    size_t n_expired;
    /* Sign-ins in flight per account, failed ones per certificate. */
    struct kyufu_node_signin_limit signin;
    struct kyufu_glue_propose propose;
    uint64_t seq_last;       /* the node's own keys: increasing */
    /* A leader's session checks (auth.c): in term known_term, the
     * store answers for a session (found or not, signed out, touched,
     * its account's status and roles) only once it has applied
     * known_index, this leader's last log index when it first looked in
     * that term (every entry acknowledged before is at or below it);
     * until then the caller is told to retry. */
    uint64_t known_term;
    uint64_t known_index;
    /* bootstrap-admin (docs/identity.md), read at start; has_bootstrap
     * until the staff table is seen non-empty (then the file is gone). */
    bool has_bootstrap;
    char bootstrap_path[KYUFU_NODE_PATH_BYTES_MAX + 32];
    char bootstrap_staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char bootstrap_display_name[128];
    uint32_t bootstrap_iterations;
    uint8_t bootstrap_salt[16];
    uint8_t bootstrap_hash[32];
    /* The clock of every session time, lockout and TOTP step this node
     * decides or stamps (kyufu_node__auth_now_ms): wall clock steps do
     * not move it (steady_clock.h). */
    struct kyufu_steady_clock clock;
    /* The newest leader stamp applied here and the monotonic time of its
     * apply (kyufu_node__clock_applied): the leader's clock is estimated
     * from them while a step is ignored. */
    int64_t leader_stamp_ms;
    uint64_t leader_stamp_term;
    int64_t leader_stamp_seen_ms;
    /* The sweep's interval and the idle limit of new sessions, when the
     * test knobs KYUFU_TEST_AUTH_TICK_MS / KYUFU_TEST_SESSION_IDLE_MS set
     * them (docs/testing.md "Test knobs"); 0: the defaults. */
    uint64_t tick_ms;
    int64_t test_idle_ms;
};

struct kyufu_node;
struct kyufu_node_call;
struct kyufu_grpc_call;

/* Now, in unix ms, for identity: the wall clock with its steps ignored
 * (steady_clock.h); a new step is logged once and counted
 * (node/clock_node.c). */
int64_t kyufu_node__auth_now_ms(struct kyufu_node *n);
/* After every applied entry: notes when a new leader stamp arrived
 * (clock_node.c: the second opinion on a wall clock step). */
void kyufu_node__clock_applied(struct kyufu_node *n);

/* This node's last use of a session (0 when none remembered). */
int64_t kyufu_node__auth_last_use(const struct kyufu_node *n,
                                  const uint8_t token_hash[32]);
/* Remember a use of a session at now_ms. */
void kyufu_node__auth_remember(struct kyufu_node *n,
                               const uint8_t token_hash[32],
                               int64_t now_ms);

/* The original client of a call: its certificate's SHA-256 (false when
 * none) and address.  For a call forwarded by a node, the values the
 * follower sent (kyufu-client-cert, kyufu-client-peer); else the
 * connection's own. */
bool kyufu_node__auth_client_cert(const struct kyufu_grpc_call *call,
                                  uint8_t out[32]);
const char *kyufu_node__auth_client_peer(const struct kyufu_grpc_call *call);

/* An identity command the node proposes itself: the Command member
 * `field` = body, with the node's own header: actor (a staff id, or NULL
 * for the node's "kyufu-node-N"), a fresh key of client id
 * "kyufud-auth-N", the leader's time.  The strings and the header live in
 * the struct, which must outlive the proposal call (not the proposal). */
struct kyufu_node_auth_command
{
    char actor[32];
    char client[32];
    Kyufu__V1__IdempotencyKey key;
    Kyufu__V1__CommandHeader header;
    Kyufu__V1__Command cmd;
};

/* Fill *out (field must name a member of Command's oneof).  True, or false
 * when not every voter runs a build that knows the command yet (the
 * cluster version is below the command's): then propose nothing. */
bool kyufu_node__auth_command(struct kyufu_node *n,
                              const char *actor,
                              const char *field,
                              void *body,
                              struct kyufu_node_auth_command *out);

/* Start (after the glue) and close (the node's last step) the leader's
 * timer; read the bootstrap-admin file at start: 0, or -1 when it is
 * present but refused (too open, malformed: logged). */
int kyufu_node__auth_start(struct kyufu_node *n);
void kyufu_node__auth_close(struct kyufu_node *n);

/* Free a call's c->auth (call.c, when the call is answered). */
void kyufu_node__auth_ctx_free(struct kyufu_node_call *c);

/* The Auth service's handlers (auth_service.c), by method name. */
void kyufu_node__auth_call(struct kyufu_node_call *c);

/* CreateStaff (service_write.c): make the temporary password, hash it on a
 * work thread, put the hash in the command, propose, and answer the
 * password once in WriteResponse.temporary_password.  A client-set
 * temporary_password is INVALID_ARGUMENT. */
void kyufu_node__auth_create_staff(struct kyufu_node_call *c,
                                   const Kyufu__V1__RequestHeader *rh,
                                   Kyufu__V1__CreateStaff *body);

#endif /* KYUFU_NODE_AUTH_NODE_H */
