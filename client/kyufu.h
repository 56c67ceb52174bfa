/* libkyufu: the C client of a kyufu cluster.
 *
 * A client holds the list of the cluster's API endpoints (host:port), a TLS
 * configuration and a client session (client id + sequence).  It sends each
 * call to the node it last knew as the leader and follows the cluster when
 * leadership moves:
 *
 *   - every node answer carries the trailer metadata `kyufu-leader:
 *     host:port` (the leader's API address) when the node knows a leader;
 *     the client sends its next calls there, and a call that failed with
 *     UNAVAILABLE on a node naming another goes there at once, with no
 *     wait (unless its redirects went round in a circle);
 *   - UNAVAILABLE without a hint (no leader known: an election), a
 *     connection failure, or an attempt that outlives its per-attempt
 *     timeout (or DEADLINE_EXCEEDED from the server) moves the call to the
 *     next endpoint after a short jittered backoff (decorrelated jitter
 *     between backoff_ms_initial and backoff_ms_max, 10..250 ms by
 *     default), so a client sees a new leader within about one wait of its
 *     election and many clients do not retry in step;
 *   - every attempt of one write carries the SAME idempotency key: the bytes
 *     are encoded once and re-sent, so a write the first node applied before
 *     its answer was lost is not applied twice (the server returns the first
 *     result).  The sequence grows by one per new write, never per retry;
 *   - a call with a session token refused UNAUTHENTICATED by a node that
 *     names another as leader goes to that leader once, at once: a
 *     follower may not yet have applied a session opened a moment ago
 *     (read-your-writes across processes: `kyufuctl login`, then the next
 *     command), the leader that committed it has;
 *   - Auth calls without a key (SignIn, ChangePassword, EnrollTotp, ...)
 *     are not idempotent: their one attempt per node gets the whole
 *     deadline and one that times out or loses its connection is never
 *     sent again (EDEADLINE / EUNAVAILABLE: it may have been done); only a
 *     node's own UNAVAILABLE (nothing done) moves them on;
 *   - an attempt with no answer after hedge_ms (a silent leader: SIGSTOP,
 *     dropped packets) is also sent, same bytes and key, to the next node;
 *     the first final answer wins and the other attempt is cancelled (at
 *     most one hedge at a time, only reads, keyed writes and SettleWrite:
 *     never on pinned, Auth or Cluster calls; docs/failover.md "Client
 *     hedge");
 *   - all of it within the call's overall deadline.
 *
 * Reads are linearizable unless the request's ReadOptions.stale is set, in
 * which case the node that receives the call answers from its own state.
 *
 * Two ways to call:
 *   - asynchronous, on the caller's libuv loop (kyufu_client_create with a
 *     loop, kyufu_client_call_async, kyufu_client_close);
 *   - synchronous, on a private loop the client owns (kyufu_client_create
 *     with loop == NULL, kyufu_client_call, kyufu_client_destroy): for
 *     kyufuctl, tests and batch jobs.
 *
 * Threads: a client is used from one thread.
 *
 * Errors: functions return 0 or a negative KYUFU_CLIENT_E* code and, when
 * given an errmsg buffer, write a one-line detail into it.  A call that
 * reached a server and got a final answer returns 0 whatever the gRPC status
 * (OK or a ledger rejection such as FAILED_PRECONDITION): the status is in
 * the result.  KYUFU_CLIENT_EUNAVAILABLE and KYUFU_CLIENT_EDEADLINE mean the
 * call ran out of time or nodes; a write in that state MAY have been applied
 * (retrying it with the same key is safe, see kyufu_client_key_next; or
 * settle its fate for good with kyufu_client_settle_write).
 */
#ifndef KYUFU_CLIENT_H
#define KYUFU_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "client_limits.h"
#include "grpc.h"
#include "kyufu/v1/service.pb-c.h"

#define KYUFU_CLIENT_ERRORS(X)                                               \
    X(OK, 0, "ok")                                                           \
    X(NOMEM, -1, "out of memory")                                            \
    X(INVALID, -2, "invalid argument")                                       \
    X(CONFIG, -3, "bad client configuration")                                \
    X(TLS, -4, "TLS setup failed")                                           \
    X(UNAVAILABLE, -5, "no node could serve the call before the deadline")   \
    X(DEADLINE, -6, "deadline exceeded")                                     \
    X(PROTOCOL, -7, "malformed or oversized response")                       \
    X(CANCELED, -8, "client closed before the call completed")               \
    X(IO, -9, "file I/O failed")                                             \
    X(UNKNOWN_METHOD, -10, "no such method")                                 \
    X(INSECURE, -11, "file readable or writable by group or others")         \
    X(NO_TOKEN, -12, "no session token: not signed in")

enum kyufu_client_error {
#define KYUFU_CLIENT__ENUM(name, value, text) KYUFU_CLIENT_E##name = value,
    KYUFU_CLIENT_ERRORS(KYUFU_CLIENT__ENUM)
#undef KYUFU_CLIENT__ENUM
};

/* Static string for an error code; never NULL. */
const char *kyufu_client_strerror(int rv);

/* gRPC status codes: enum kyufu_grpc_status and kyufu_grpc_status_name()
 * from api/grpc.h (KYUFU_GRPC_OK, KYUFU_GRPC_UNAVAILABLE, ...). */

/* The trailer metadata key a node sets on UNAVAILABLE to name the leader's
 * API address ("host:port"), agreed with node/. */
#define KYUFU_LEADER_METADATA "kyufu-leader"

/* ------------------------------------------------------------ config */

/* Everything a client needs.  All strings are owned by the config (malloc'd)
 * and released by kyufu_client_config_free; the client copies what it keeps,
 * so a config may be freed right after kyufu_client_create. */
struct kyufu_client_config
{
    char *endpoints[KYUFU_CLIENT_ENDPOINTS_MAX]; /* host:port of each API */
    unsigned n_endpoints;     /* 1..KYUFU_CLIENT_ENDPOINTS_MAX */
    char *ca_file;            /* PEM CA that signed the nodes' certificates */
    char *cert_file;          /* optional client certificate (mutual TLS) */
    char *key_file;           /* its private key; both or neither */
    char *actor;              /* default RequestHeader.actor; may be NULL */
    char *terminal;           /* default RequestHeader.terminal; may be NULL */
    char *client_id;          /* NULL: random per client object */
    char *session_file;       /* NULL: no persistence (see below) */
    char *time_zone;          /* kyufuctl's display zone ("Asia/Tokyo"); NULL: its default */
    char *slo_file;           /* the SLO file (docs/sla.md); kyufuctl sla */
    /* The session token (docs/identity.md "Sessions"): sent as gRPC
     * metadata `authorization: Bearer <token>` on every call but SignIn.
     * `token` (never read from the INI file: a secret does not belong in a
     * config; set by the program, e.g. from KYUFU_TOKEN) wins over
     * `token_file` (INI key token_file: a file as kyufuctl login writes it,
     * read at kyufu_client_create with kyufu_client_token_read's checks).
     * Both NULL: no token until kyufu_client_set_token or _sign_in. */
    char *token;
    char *token_file;
    uint32_t deadline_ms;     /* overall deadline of one call, retries incl. */
    uint32_t attempt_ms;      /* one attempt against one node */
    uint32_t backoff_ms_initial; /* smallest retry wait, <= backoff_ms_max */
    uint32_t backoff_ms_max;     /* largest retry wait */
    /* Hedge: an attempt with no answer after hedge_ms is also sent (same
     * bytes, same idempotency key) to the next node and the first final
     * answer wins, the other attempt is cancelled (docs/failover.md
     * "Client hedge").  0: off; else KYUFU_CLIENT_HEDGE_MS_MIN..
     * KYUFU_CLIENT_DEADLINE_MS_MAX; only useful below attempt_ms. */
    uint32_t hedge_ms;
};

/* Defaults: no endpoints, no TLS files, no token, deadlines and backoff
 * from client_limits.h. */
void kyufu_client_config_init(struct kyufu_client_config *cfg);

/* Parse an INI file (docs/kyufuctl.md "Client configuration") into cfg,
 * which must have been initialised.  An unknown section or key, a duplicate
 * key, or a bad value is an error naming the key and the line:
 * returns KYUFU_CLIENT_ECONFIG (or EIO if the file cannot be read). */
int kyufu_client_config_load(struct kyufu_client_config *cfg,
                             const char *path,
                             char *errmsg,
                             size_t errmsg_len);

/* Same, from a string (tests). */
int kyufu_client_config_parse(struct kyufu_client_config *cfg,
                              const char *text,
                              char *errmsg,
                              size_t errmsg_len);

/* Check the relations between fields (endpoints present and well-formed,
 * cert and key together, deadlines in range). */
int kyufu_client_config_validate(const struct kyufu_client_config *cfg,
                                 char *errmsg,
                                 size_t errmsg_len);

void kyufu_client_config_free(struct kyufu_client_config *cfg);

/* ------------------------------------------------------------ client */

struct kyufu_client; /* Opaque. */

/* Create a client.  loop != NULL: asynchronous use on that loop; the client
 * adds handles to it and must be closed with kyufu_client_close before the
 * loop is closed.  loop == NULL: synchronous use on a private loop; release
 * with kyufu_client_destroy.  No connection is made before the first call.
 *
 * Session: the client id is cfg->client_id, else the id stored in
 * cfg->session_file, else a new random id ("c-" + 32 hex digits from
 * RAND_bytes).  With a session file, the id and the next unused sequence are
 * persisted (written, fsynced, renamed) before a sequence is handed out, in
 * blocks of KYUFU_CLIENT_SEQUENCE_BLOCK, so a restarted process never reuses
 * a key.  Without one, each client object is a new session. */
int kyufu_client_create(const struct kyufu_client_config *cfg,
                        uv_loop_t *loop,
                        struct kyufu_client **out,
                        char *errmsg,
                        size_t errmsg_len);

/* The configured endpoints, in order (owned by the client). */
unsigned kyufu_client_endpoint_count(const struct kyufu_client *c);
const char *kyufu_client_endpoint(const struct kyufu_client *c, unsigned i);

/* The session's client id (owned by the client). */
const char *kyufu_client_id(const struct kyufu_client *c);

/* Hand out the next idempotency key of this session: key->client_id points
 * into the client (valid while the client lives), key->sequence is the next
 * number.  Call it once per NEW write and reuse the key for every retry of
 * that write, including retries the caller makes after EUNAVAILABLE. */
int kyufu_client_key_next(struct kyufu_client *c,
                          Kyufu__V1__IdempotencyKey *key);

/* Fill a RequestHeader: actor (the given one, else the config's), terminal
 * (the config's) and a new key from kyufu_client_key_next.  hdr and key are
 * caller-owned; hdr->key is set to key.  Strings are borrowed from the
 * client and the arguments. */
int kyufu_client_header_init(struct kyufu_client *c,
                             Kyufu__V1__RequestHeader *hdr,
                             Kyufu__V1__IdempotencyKey *key,
                             const char *actor);

/* Options of one call; NULL means all defaults. */
struct kyufu_client_call_opts
{
    uint32_t deadline_ms; /* 0: the config's */
    int endpoint;         /* -1: follow the leader; i >= 0: only endpoint i,
                             no retry elsewhere, no redirect (cluster status) */
    uint32_t attempt_ms;  /* 0: the config's; longer for a call the server
                             answers only when its work is done (AddNode
                             waits for the new node to catch up): a shorter
                             attempt would give up and send it again */
    const char *token;    /* NULL: the client's session token; else this
                             call's (a front end serving several people on
                             one connection, the load bench's clerks and
                             approvers); checked as kyufu_client_set_token,
                             EINVALID if malformed; copied */
};

/* The outcome of a call that reached a server (return value 0). */
struct kyufu_client_result
{
    int grpc_status;                  /* enum kyufu_grpc_status */
    char message[KYUFU_CLIENT_ERRMSG_BYTES]; /* grpc-message or detail */
    ProtobufCMessage *response;       /* set iff grpc_status == OK; owned by
                                         the caller: kyufu_client_response_free */
    unsigned attempts;                /* attempts made (>= 1) */
    int endpoint;                     /* index of the node that answered */
    uint32_t waited_ms;               /* backoff waits between attempts, as
                                         scheduled (0: only redirects) */
};

void kyufu_client_response_free(ProtobufCMessage *response);

/* ---- synchronous (client created with loop == NULL) */

/* Call `method` ("CreateProgram", or the full path
 * "/kyufu.v1.Ledger/CreateProgram", "/kyufu.v1.Cluster/Status") with
 * `request`, whose descriptor must be the method's input type.
 * response_desc, when not NULL, must be the method's output type (a check
 * against mistakes).
 *
 * Writes: if request->header is NULL, the client adds one as by
 * kyufu_client_header_init (actor from the config); if the header has no
 * key, a new key is added.  The request itself is never modified.
 *
 * Returns 0 with *result filled when a server gave a final answer;
 * EUNAVAILABLE/EDEADLINE (result->grpc_status and message hold the last
 * answer seen, if any); EINVAL, EUNKNOWN_METHOD, ENOMEM, EPROTOCOL, ETLS.
 *
 * On a client created with a loop, this runs that loop (UV_RUN_ONCE) until
 * the call ends, so the loop's other handles run meanwhile; never call it
 * from inside one of that loop's callbacks. */
int kyufu_client_call(struct kyufu_client *c,
                      const char *method,
                      const ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *response_desc,
                      const struct kyufu_client_call_opts *opts,
                      struct kyufu_client_result *result);

/* Settle the fate of a write whose outcome is unknown (it ended in
 * EUNAVAILABLE/EDEADLINE, or the process that sent it crashed): calls
 * Ledger.SettleWrite for `key` (the write's own key: same client id, same
 * sequence) acting as `actor` (NULL: the config's).  On 0 with grpc_status
 * OK, result->response is a Kyufu__V1__SettleWriteResponse:
 *   WRITE_APPLIED      the write was applied; result is its first result
 *                      (its code may be a ledger rejection);
 *   WRITE_NOT_APPLIED  it never was, and now never will be: the key is
 *                      fenced, a late copy of the write is refused (ABORTED);
 *   WRITE_EXPIRED      the key is older than the cluster's session window
 *                      (24 h): the cluster cannot tell; check the records.
 * Settling is idempotent: on EUNAVAILABLE/EDEADLINE call it again with the
 * same key.  EINVALID when key is NULL, has no client id or sequence 0.
 * Docs: docs/api.md "Settling an unknown outcome". */
int kyufu_client_settle_write(struct kyufu_client *c,
                              const Kyufu__V1__IdempotencyKey *key,
                              const char *actor,
                              const struct kyufu_client_call_opts *opts,
                              struct kyufu_client_result *result);

/* Call `method`, a read or a Cluster method (never a write: EINVALID), on
 * every endpoint at once, each call pinned to its endpoint (no retry, no
 * redirect) with its own deadline_ms (0: the config's), and wait for all:
 * rvs[i] and results[i] (arrays of kyufu_client_endpoint_count entries)
 * are what kyufu_client_call with opts {deadline_ms, i} would have given,
 * so the whole takes about the slowest answer or deadline_ms, not their
 * sum (kyufuctl cluster status).  Hints in the answers teach the client
 * the leader.  Returns 0, or EINVALID / EUNKNOWN_METHOD / ECANCELED before
 * any call was made. */
int kyufu_client_call_each(struct kyufu_client *c,
                           const char *method,
                           const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *response_desc,
                           uint32_t deadline_ms,
                           int *rvs,
                           struct kyufu_client_result *results);

/* ---- sessions (docs/identity.md; the Auth service in service.proto) */

/* Use `token` (KYUFU_CLIENT_TOKEN_BYTES lower- or upper-case hex digits,
 * as SignInResponse.token) on every later call but SignIn, as the metadata
 * `authorization: Bearer <token>`; NULL forgets it (calls go without).
 * The client keeps a copy, cleansed when replaced or released; it is never
 * logged nor written into an error message.  Returns 0, or EINVALID for a
 * malformed token (the old one stays). */
int kyufu_client_set_token(struct kyufu_client *c, const char *token);
bool kyufu_client_has_token(const struct kyufu_client *c);

/* Auth.SignIn(staff_id, password, totp_code) (totp_code NULL or "" for an
 * account that has no second factor yet: the node answers a setup-only
 * session).  Sent without any token.  On 0 with grpc_status OK,
 * result->response is the Kyufu__V1__SignInResponse (caller frees; its
 * token is secret: the caller may store it, e.g. kyufu_client_token_write,
 * and should not print it) and the client uses the new token from now on.
 * A refusal (UNAUTHENTICATED: wrong password or code, locked, ...) is 0
 * with that status, as any call.  EINVALID without a staff id or password;
 * EPROTOCOL when the answer's token is malformed (then no token is set). */
int kyufu_client_sign_in(struct kyufu_client *c,
                         const char *staff_id,
                         const char *password,
                         const char *totp_code,
                         const struct kyufu_client_call_opts *opts,
                         struct kyufu_client_result *result);

/* Token files (client/token.c): what `kyufuctl login` writes and every
 * kyufuctl run reads; a program may share them.  Text: the token and a
 * newline.
 *
 * 0, or EINVALID: not KYUFU_CLIENT_TOKEN_BYTES hex digits. */
int kyufu_client_token_check(const char *token);

/* Read the token in `path` into out (KYUFU_CLIENT_TOKEN_BYTES + 1 bytes).
 * Refused, as ssh refuses a private key, when the file is readable or
 * writable by group or others (INSECURE, naming the mode and `chmod 600`),
 * is not a regular file or not owned by this user (INSECURE); NO_TOKEN when
 * it does not exist; EIO when it cannot be read; ECONFIG when it does not
 * hold a well-formed token.  The message names the path, never the
 * content. */
int kyufu_client_token_read(const char *path,
                            char *out,
                            char *errmsg,
                            size_t errmsg_len);

/* Write token to `path` as mode 0600 (a temporary file in the same folder,
 * fsynced, renamed over the old one), creating the file's folder (0700)
 * if missing.  EINVALID for a malformed token, EIO with errmsg. */
int kyufu_client_token_write(const char *path,
                             const char *token,
                             char *errmsg,
                             size_t errmsg_len);

/* Delete the token file; a missing file is 0.  EIO with errmsg. */
int kyufu_client_token_remove(const char *path, char *errmsg, size_t errmsg_len);

/* The default token file: $XDG_CONFIG_HOME/kyufu/token, else
 * $HOME/.config/kyufu/token.  EINVALID when neither variable is set (or
 * is not an absolute path), ENOMEM when buf is too small. */
int kyufu_client_token_default_path(char *buf, size_t len);

/* Release a synchronous client (closes its private loop). */
void kyufu_client_destroy(struct kyufu_client *c);

/* ---- asynchronous (client created with a loop) */

struct kyufu_client_req;
typedef void (*kyufu_client_call_cb)(struct kyufu_client_req *req, int status);

/* Caller-allocated; must stay valid until the callback has run. */
struct kyufu_client_req
{
    void *data;                        /* user data, untouched */
    struct kyufu_client_result result; /* filled before the callback */
    /* private */
    void *impl_;
};

/* Start a call; same contract as kyufu_client_call.  On 0 the callback
 * fires exactly once, later, from the loop (never from inside this
 * function), with status as kyufu_client_call would return it, or
 * ECANCELED if the client is closed first.  On an error return the
 * callback never fires.  The request is encoded before this returns, so it
 * may be freed at once. */
int kyufu_client_call_async(struct kyufu_client *c,
                            struct kyufu_client_req *req,
                            const char *method,
                            const ProtobufCMessage *request,
                            const ProtobufCMessageDescriptor *response_desc,
                            const struct kyufu_client_call_opts *opts,
                            kyufu_client_call_cb cb);

/* Close an asynchronous client: calls in flight complete with ECANCELED,
 * then the client's handles are closed and close_cb fires from the loop;
 * the client's memory is freed right after close_cb returns. */
typedef void (*kyufu_client_close_cb)(struct kyufu_client *c, void *arg);
void kyufu_client_close(struct kyufu_client *c,
                        kyufu_client_close_cb close_cb,
                        void *arg);

/* ---- the method table */

enum kyufu_client_method_kind {
    KYUFU_CLIENT_READ = 1,    /* Ledger reads: idempotent, no key */
    KYUFU_CLIENT_WRITE = 2,   /* Ledger writes: RequestHeader with a key */
    KYUFU_CLIENT_ADMIN = 3,   /* Cluster service: node-local operations */
    KYUFU_CLIENT_SETTLE = 4,  /* SettleWrite: a write whose RequestHeader
                                 names an existing key (never a new one) */
    KYUFU_CLIENT_AUTH = 5,    /* Auth service calls without a header
                                 (SignIn, WhoAmI, ChangePassword, ...): no
                                 key; Auth calls with a header
                                 (ResetPassword, UnlockStaff, ResetTotp) are
                                 KYUFU_CLIENT_WRITE */
};

struct kyufu_client_method
{
    const char *name;   /* "CreateProgram" */
    const char *path;   /* "/kyufu.v1.Ledger/CreateProgram" */
    enum kyufu_client_method_kind kind;
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
};

/* Look a method up by short name or full path; NULL if unknown. */
const struct kyufu_client_method *kyufu_client_method_find(const char *name);

#endif
