/* kyufu storage: the benefit ledger state machine on LMDB.
 *
 * The only module that includes lmdb.h.  It applies commands to one LMDB
 * write transaction and answers queries from short read transactions.  It
 * does no I/O besides LMDB's own: no sockets, no clocks, no randomness, no
 * environment.  Every time it needs comes from the command header, stamped by
 * the Raft leader.
 *
 * Threads: a struct kyufu_storage is used from one thread (the node's loop
 * thread), except snapshots: kyufu_storage_snapshot_begin/_end may be called
 * from any thread, and a snapshot is read by one thread at a time (the
 * environment is opened with MDB_NOTLS for that; begin and end are
 * serialised with the map growth of apply by a mutex inside the store).
 *
 * Errors: functions return 0 or a negative KYUFU_STORAGE_E* code and, when
 * given an errmsg buffer, write a one-line detail into it.  A command that is
 * rejected by the ledger rules is NOT an error: apply returns 0 and the
 * command's CommandResult carries the rejection code.  Errors are reserved
 * for the store itself (full map, I/O failure, corruption); the fatal ones
 * (kyufu_storage_is_fatal) mean the node must stop: a failed LMDB commit is
 * never retried.  READERS_FULL (LMDB's reader table, KYUFU_MAX_READERS
 * slots, is taken) is load, not damage: never fatal, the read may be tried
 * again once another one ended (the node answers RESOURCE_EXHAUSTED).
 */
#ifndef KYUFU_STORAGE_H
#define KYUFU_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kyufu/v1/ledger.pb-c.h"
#include "kyufu/v1/service.pb-c.h"

#define KYUFU_STORAGE_ERRORS(X)                                              \
    X(OK, 0, "ok")                                                           \
    X(NOMEM, -1, "out of memory")                                            \
    X(IO, -2, "I/O error in the store")                                      \
    X(CORRUPT, -3, "store or snapshot is corrupt")                           \
    X(SCHEMA, -4, "store has an unsupported schema version")                 \
    X(MAP_FULL, -5, "store map is full and cannot grow")                     \
    X(LOCKED, -6, "store is in use by another process")                      \
    X(INVALID, -7, "invalid argument")                                       \
    X(NOTFOUND, -8, "not found")                                             \
    X(STALE, -9, "entry index is not after the applied index")            \
    X(READERS_FULL, -10, "too many concurrent reads of the store (LMDB "     \
                         "reader table full); retry later")                \
    X(NEWER, -11, "written by a newer kyufu: this build does not know the "  \
                  "command set it needs; upgrade this node")

enum kyufu_storage_error {
#define KYUFU_STORAGE__ENUM(name, value, text) KYUFU_STORAGE_E##name = value,
    KYUFU_STORAGE_ERRORS(KYUFU_STORAGE__ENUM)
#undef KYUFU_STORAGE__ENUM
};

/* Static string for an error code; never NULL. */
const char *kyufu_storage_strerror(int rv);

/* True when the node must stop after this error (I/O, corruption, a failed
 * commit, a map that is full and cannot grow; never READERS_FULL, never a
 * query's NOTFOUND or INVALID).  A node never answers a full store by rejecting the entry: how full LMDB is differs between replicas
 * (page layout depends on history), so a rejection there would make them
 * diverge.  Instead apply grows the map (see below) and, when it cannot,
 * the node stops with the state intact and the operator raises the limit. */
bool kyufu_storage_is_fatal(int rv);

struct kyufu_storage; /* Opaque. */

struct kyufu_storage_options
{
    const char *path;          /* Directory; created if missing. Borrowed. */
    size_t map_size_bytes;     /* Initial map size; 0 means the default. */
    size_t map_size_bytes_max; /* Growth ceiling; 0 means the default. */
    /* MDB_NOSYNC: commits do not flush; the owner calls kyufu_storage_sync
     * (kyufud: raft-glue/store_sync.c).  Without it every commit flushes
     * its data pages (MDB_NOMETASYNC: one fdatasync per commit). */
    bool no_sync;
    /* Seals under one data-key version after which apply rotates by itself
     * (docs/encryption.md "Nonces"); 0: KYUFU_STORAGE_SEAL_LIMIT.  Part of
     * the replicated rules: every replica must use the same, so kyufud
     * never sets it; tests lower it to reach the limit. */
    uint64_t seal_limit;
};

/* 2^31: half the 2^32 encryptions per key NIST SP 800-38D allows for
 * random (here PRF-derived) 96-bit GCM nonces; the other half is the
 * margin for the seals apply does not count (snapshot chunks, proposals
 * that were sealed and never committed). */
#define KYUFU_STORAGE_SEAL_LIMIT (UINT64_C(1) << 31)

/* Open (creating if new) the store at options->path.  Stamps the schema
 * version in a new store and checks it in an existing one.  On success *out
 * owns the environment until kyufu_storage_close. */
int kyufu_storage_open(const struct kyufu_storage_options *options,
                       struct kyufu_storage **out,
                       char *errmsg,
                       size_t errmsg_len);

/* Every snapshot must have ended (kyufu_storage_snapshot_end) before close;
 * an outstanding one aborts the process (its read txn would dangle). */
void kyufu_storage_close(struct kyufu_storage *s);

/* Index and term of the last applied Raft entry (0, 0 for a new store). */
void kyufu_storage_applied(struct kyufu_storage *s,
                           uint64_t *index,
                           uint64_t *term);

/* ------------------------------------------------------------- durability
 *
 * kyufu_storage_sync flushes the store to disk (mdb_env_sync(env, 1): one
 * fdatasync) and then records `upto` as durable.  `upto` must be an
 * applied index the caller read (kyufu_storage_applied, on the thread that
 * applies) before calling: every commit up to it had returned, so it is on
 * disk when the sync returns.  Safe on any thread, also while the applying
 * thread commits (LMDB's sync takes no lock; storage/sync.c) and while
 * another sync runs.  Errors: EIO (the flush failed: the store must be
 * treated as not durable past the last good sync; the node stops).
 *
 * kyufu_storage_durable: the highest `upto` of a successful sync, or the
 * applied index at open (open syncs a no_sync store once, so what it found
 * is on disk).  Never above the applied index, since restore only ever
 * moves a store forward.  Any thread.  A store opened without no_sync
 * raises it at every apply to the index applied before it (each commit's
 * flush covers the previous commit's meta page, not its own).
 *
 * kyufu_storage_syncs_commits: true when the store was opened without
 * no_sync, so its commits flush by themselves and a periodic
 * kyufu_storage_sync would only repeat them. */
int kyufu_storage_sync(struct kyufu_storage *s,
                       uint64_t upto,
                       char *errmsg,
                       size_t errmsg_len);
uint64_t kyufu_storage_durable(struct kyufu_storage *s);
bool kyufu_storage_syncs_commits(struct kyufu_storage *s);

/* ------------------------------------------------------------------ apply */

/* One command's result as apply encoded it: the packed CommandResult, the
 * very bytes the session entry keeps (docs/design.md "Write path:
 * encodings"), so a caller that only relays it (WriteResponse.result)
 * never unpacks it; with the two fields callers branch on. */
struct kyufu_storage_result
{
    uint8_t *bytes; /* owned by the results; a valid CommandResult */
    size_t len;
    Kyufu__V1__Code code;                         /* = bytes' code */
    Kyufu__V1__CommandResult__RecordCase record;  /* = bytes' record case */
};

/* Results of one applied batch, one per command, in command order.  Owned by
 * the caller after apply returns; free with kyufu_storage_results_free. */
struct kyufu_storage_results
{
    size_t n;
    struct kyufu_storage_result *items;
};

/* `r` unpacked into a new message (free it with
 * kyufu__v1__command_result__free_unpacked); NULL when out of memory. */
Kyufu__V1__CommandResult *kyufu_storage_result_unpack(
    const struct kyufu_storage_result *r);

/* Apply the commands of one Raft entry, at (index, term), in one LMDB write
 * transaction that also records the applied index and term, the audit
 * records and the client-session results.  Preconditions: index is greater
 * than the applied index (else KYUFU_STORAGE_ESTALE and nothing changes).
 *
 * A command that breaks a ledger rule is rejected (its result carries the
 * code) and changes nothing but its audit record and session entry.  A
 * command whose idempotency key was already applied gets a copy of the first
 * result and changes nothing at all.
 *
 * After the transaction commits, the six SPEC invariants are checked on every
 * record the batch touched; a violation aborts the process (a bug, never an
 * input).  On a fatal error the transaction is aborted and the node must
 * stop.
 *
 * A full map (MDB_MAP_FULL) aborts the transaction; when no snapshot is
 * outstanding the map grows (doubling, up to map_size_bytes_max) and the
 * batch is applied again from the start in a new transaction (nothing had
 * been committed, so this is not a retried durable write); otherwise MAP_FULL
 * is returned.  Apply also grows the map ahead of need, when more than three
 * quarters is used and no snapshot is outstanding. */
int kyufu_storage_apply(struct kyufu_storage *s,
                        uint64_t index,
                        uint64_t term,
                        const Kyufu__V1__CommandBatch *batch,
                        struct kyufu_storage_results *results,
                        char *errmsg,
                        size_t errmsg_len);

/* Decode a CommandBatch from protobuf bytes and apply it.  Malformed bytes
 * are not an error of the store: every node sees the same bytes, so the
 * entry is applied as an empty batch (the applied index still advances) and
 * results->n is 0.  This is the entry point for the fuzzer. */
int kyufu_storage_apply_bytes(struct kyufu_storage *s,
                              uint64_t index,
                              uint64_t term,
                              const uint8_t *buf,
                              size_t len,
                              struct kyufu_storage_results *results,
                              char *errmsg,
                              size_t errmsg_len);

void kyufu_storage_results_free(struct kyufu_storage_results *results);

/* Record that the entry at (index, term) carried no command (a barrier, a
 * configuration change): advances the applied index alone. */
int kyufu_storage_apply_noop(struct kyufu_storage *s,
                             uint64_t index,
                             uint64_t term,
                             char *errmsg,
                             size_t errmsg_len);

/* --------------------------------------------------------------- versions
 *
 * Upgrades (docs/operations.md "Upgrades").  A command-set version numbers
 * the command types a build applies (KYUFU_COMMAND_SET_VERSION of
 * kyufu_version.h, one more in the test build kyufud-next); every command
 * type has the version that introduced it.  The cluster version, replicated
 * state, is the lowest command-set version among the voters the leader
 * last recorded (RecordVersions), never lowered; absent, it reads as 1.
 *
 * Apply never treats an entry this build does not fully know as a
 * rejection (an upgraded replica would apply it, so they would diverge):
 * a command type outside this build's command set, a field it does not
 * know anywhere in a command, a RecordVersions or a snapshot that would
 * leave the cluster version above this build's, and a store whose cluster
 * version is already above it (at open) all return KYUFU_STORAGE_ENEWER,
 * fatal, with nothing changed: the node stops and is upgraded.  A command
 * this build knows but that is newer than the cluster version is rejected
 * (FAILED_PRECONDITION) by every replica alike; the leader refuses it
 * before proposing (kyufu_storage_command_since). */

/* This build's command-set version. */
uint32_t kyufu_storage_command_version(void);

/* The command-set version that introduced a command type; 0 when this
 * build does not know it (not in its command set). */
uint32_t kyufu_storage_command_since(Kyufu__V1__Command__BodyCase body);

/* Scrub (docs/scrub.md): the command-set version of ScrubMark; the leader
 * proposes one only once the cluster version has reached it. */
#define KYUFU_STORAGE_SCRUB_SINCE 5u

/* The nonce bound (docs/encryption.md "Nonces"): from this cluster version
 * apply counts seals per data-key version (and rotates at the limit), and
 * sealed snapshots of a state at this version or later are written in
 * format 3 (chunks under a key of each snapshot's own). */
#define KYUFU_STORAGE_SEAL_COUNT_SINCE 6u
/* KeyRotation.rotated_by (and the audit actor) of a rotation apply made at
 * the seal limit: not a valid staff id (':'). */
#define KYUFU_STORAGE_SEAL_LIMIT_ACTOR "kyufu:seal-limit"

/* The raft index of the last ScrubMark applied since the previous call (0:
 * none), and forgets it.  The applying thread only, right after the apply
 * of an entry returned: the store's state is then exactly the state at
 * that index (one entry, one LMDB transaction), so a snapshot begun now
 * digests it. */
uint64_t kyufu_storage_take_scrub_mark(struct kyufu_storage *s);

/* The cluster version (1 when none was recorded yet) and, when `voters` is
 * not NULL, the voters' versions last recorded (NULL when none; free with
 * kyufu__v1__record_versions__free_unpacked).  Kept in memory like the
 * applied index (no transaction): 0, or NOMEM when `voters` cannot be
 * unpacked. */
int kyufu_storage_cluster_version(struct kyufu_storage *s,
                                  uint32_t *version,
                                  Kyufu__V1__RecordVersions **voters);

/* ---------------------------------------------------------------- queries
 *
 * Each query runs in its own short read transaction.  Records come back as
 * protobuf-c messages owned by the caller: free with the matching
 * kyufu__v1__*__free_unpacked(record, NULL).  Return 0, NOTFOUND, or an
 * error. */

int kyufu_storage_get_program(struct kyufu_storage *s,
                              const char *code,
                              Kyufu__V1__Program **out);
int kyufu_storage_get_household(struct kyufu_storage *s,
                                const char *household_no,
                                Kyufu__V1__Household **out);
int kyufu_storage_get_application(struct kyufu_storage *s,
                                  uint64_t id,
                                  Kyufu__V1__Application **out);
int kyufu_storage_get_batch(struct kyufu_storage *s,
                            uint64_t id,
                            Kyufu__V1__PaymentBatch **out);
int kyufu_storage_get_staff(struct kyufu_storage *s,
                            const char *staff_id,
                            Kyufu__V1__StaffAccount **out);

/* A page of a list.  `after` is the key of the last item of the previous
 * page (empty or NULL for the first page); `next` is set to the key to pass
 * for the following page, empty when there is none.  Items are in key order.
 * page_size is clamped to [1, KYUFU_LIST_PAGE_SIZE_MAX]. */
/* Keys for `after`/`next`: the code, household_no or staff_id; the decimal
 * id for applications (whatever the filter: filtered lists also page in id
 * order) and batches; the decimal seq for audit records.  A malformed
 * decimal `after` is INVALID.  KYUFU_LIST_PAGE_SIZE_MAX is in
 * storage/storage_limits.h: include "storage_limits.h" after this header (docs/storage.md
 * explains that file name). */
struct kyufu_storage_page
{
    size_t n;
    void **items;    /* Kyufu__V1__<Record> *, by list kind */
    char next[128];  /* NUL-terminated continuation key */
};

struct kyufu_storage_app_filter
{
    const char *program_code;  /* NULL or "" for any */
    const char *household_no;  /* NULL or "" for any */
    Kyufu__V1__ApplicationStatus status; /* 0 for any */
};

int kyufu_storage_list_programs(struct kyufu_storage *s,
                                const char *after,
                                size_t page_size,
                                struct kyufu_storage_page *page);
int kyufu_storage_list_households(struct kyufu_storage *s,
                                  const char *after,
                                  size_t page_size,
                                  struct kyufu_storage_page *page);
int kyufu_storage_list_applications(
    struct kyufu_storage *s,
    const struct kyufu_storage_app_filter *filter,
    const char *after,
    size_t page_size,
    struct kyufu_storage_page *page);
int kyufu_storage_list_batches(struct kyufu_storage *s,
                               const char *after,
                               size_t page_size,
                               struct kyufu_storage_page *page);
int kyufu_storage_list_staff(struct kyufu_storage *s,
                             const char *after,
                             size_t page_size,
                             struct kyufu_storage_page *page);
/* The decommission this store has applied (apply_decommission.c;
 * docs/decommission.md) into *out, the caller's to free with
 * kyufu__v1__decommission__free_unpacked: 0, ENOTFOUND when there is none
 * (*out NULL), or a store error (ECORRUPT: the record is damaged). */
int kyufu_storage_decommission_get(struct kyufu_storage *s,
                                   Kyufu__V1__Decommission **out);
/* SLA incidents (apply_incident.c) with id > after (decimal), oldest
 * first. */
int kyufu_storage_list_incidents(struct kyufu_storage *s,
                                 const char *after,
                                 size_t page_size,
                                 struct kyufu_storage_page *page);
/* Audit records with seq > after_seq (as decimal string in `after`). */
int kyufu_storage_list_audit(struct kyufu_storage *s,
                             const char *after,
                             size_t page_size,
                             struct kyufu_storage_page *page);

/* Free the items of a page filled by one of the list functions above. */
void kyufu_storage_page_free(struct kyufu_storage_page *page);

/* ------------------------------------------------------------- identity
 *
 * Identity and access (issue 8; docs/identity.md, docs/storage.md
 * "Identity").  Credentials and sign-in sessions are replicated state,
 * changed only by the commands 100-111 of identity.proto, which a node
 * proposes (no client RPC carries their bodies).  Nothing here is ever
 * part of an answer of GetStaff/ListStaff (they return StaffAccount only)
 * nor of an audit record: these reads are for the node's own sign-in,
 * authentication and cleanup code, and their results hold secrets (password
 * hashes, the TOTP secret): never log, answer or export them.
 *
 * From cluster version 2 (KYUFU_COMMAND_SET_VERSION 2, the identity rules):
 * CreateStaff requires temporary_password; an empty staff table is filled
 * only by BootstrapAdmin; nobody grants themselves a role; granting
 * ROLE_ID_ADMIN takes two ID administrators (the first grant is recorded as
 * pending and answered FAILED_PRECONDITION "pending: ..."; the same grant
 * from another ID administrator applies it; with exactly one active ID
 * administrator, that one may grant alone); and idempotency keys are bound
 * to the caller (below).  Below version 2 apply keeps the rules of version
 * 1, so that a cluster in a rolling upgrade does not diverge. */

/* The account's credential (NOTFOUND when it has none: an account made
 * before the identity rules, or purged).  *out is the caller's (free with
 * kyufu__v1__credential__free_unpacked).  staff_id NULL: INVALID. */
int kyufu_storage_get_credential(struct kyufu_storage *s,
                                 const char *staff_id,
                                 Kyufu__V1__Credential **out);
/* The session stored under a token's SHA-256 (32 bytes), NOTFOUND when none
 * (closed, or never opened).  Expiry is not judged here: the caller
 * compares last_used_ms + idle_ms and created_ms + absolute_ms with its
 * clock (and its own record of uses since the last TouchSessions). */
int kyufu_storage_get_auth_session(struct kyufu_storage *s,
                                   const uint8_t token_hash[32],
                                   Kyufu__V1__AuthSession **out);
/* Every open session of an account (at most
 * KYUFU_AUTH_SESSIONS_PER_STAFF_MAX), items Kyufu__V1__AuthSession *, in
 * token-hash order; page->next is empty.  Free with kyufu_storage_page_free. */
int kyufu_storage_list_staff_sessions(struct kyufu_storage *s,
                                      const char *staff_id,
                                      struct kyufu_storage_page *page);
/* Sessions expired at now_ms (last_used_ms + idle_ms <= now_ms, or
 * created_ms + absolute_ms <= now_ms), at most `max` (clamped to
 * 1..KYUFU_IDENTITY_QUERY_MAX), items Kyufu__V1__AuthSession *, for the
 * leader's cleanup (CloseSession reason "idle" or "expired").  Reads every
 * session (one per signed-in person: hundreds). */
int kyufu_storage_list_expired_sessions(struct kyufu_storage *s,
                                        int64_t now_ms,
                                        size_t max,
                                        struct kyufu_storage_page *page);
/* Accounts DISABLED at or before disabled_before_ms (credential
 * disabled_ms), at most `max` (clamped as above), items
 * Kyufu__V1__StaffAccount *, for the leader's PurgeStaff after the
 * retention period. */
int kyufu_storage_list_purgeable_staff(struct kyufu_storage *s,
                                       int64_t disabled_before_ms,
                                       size_t max,
                                       struct kyufu_storage_page *page);
/* *empty = the staff table has no account (BootstrapAdmin is still to
 * come; a node deletes its bootstrap-admin file once this is false). */
int kyufu_storage_staff_empty(struct kyufu_storage *s, bool *empty);

/* Exactly-once bound to the caller.  Under the identity rules the client
 * session entry of an idempotency key records the actor that first used it
 * and the SHA-256 of its command (kyufu_storage_command_digest).  Apply
 * then answers the same key:
 *   - from the same actor with the same command: the stored first result
 *     (as before), nothing written;
 *   - from another actor: PERMISSION_DENIED "idempotency key belongs to
 *     another account", audited, the stored result NOT returned, the
 *     owner's entry unchanged;
 *   - from the same actor with another command: INVALID_ARGUMENT "key
 *     already used for another command", audited, not returned.
 * A SettleWrite matches any command of its owner (it asks about the key),
 * and its fence matches any command of its owner.  Entries written before
 * the identity rules have no owner and answer as before.
 *
 * kyufu_storage_command_digest: SHA-256 of the body case (u32 BE) and the
 * packed body (protobuf-c's encoding, deterministic), CreateStaff's
 * temporary_password left out (each attempt of a key hashes a new salt);
 * 0, INVALID or NOMEM.
 *
 * kyufu_storage_key_use: the node's check before it proposes (or answers a
 * retry), in its own read transaction: NEW (no live entry), OWN (the
 * caller's: apply will return the first result), OTHER_ACTOR,
 * OTHER_COMMAND (refuse as apply would, without the stored result).
 * `settle`: the caller's command is a SettleWrite (any digest matches).
 * now_ms: the caller's clock, for the 24 h retention.  0, INVALID or a
 * store error.  Apply checks again: this is an early answer, not the rule. */
int kyufu_storage_command_digest(const Kyufu__V1__Command *cmd,
                                 uint8_t digest[32]);
enum kyufu_storage_key_use {
    KYUFU_STORAGE_KEY_NEW = 0,
    KYUFU_STORAGE_KEY_OWN = 1,
    KYUFU_STORAGE_KEY_OTHER_ACTOR = 2,
    KYUFU_STORAGE_KEY_OTHER_COMMAND = 3,
};
int kyufu_storage_key_use(struct kyufu_storage *s,
                          const char *client_id,
                          uint64_t seq,
                          const char *actor,
                          const uint8_t digest[32],
                          bool settle,
                          int64_t now_ms,
                          enum kyufu_storage_key_use *use);

/* ------------------------------------------------- availability ledger */

/* The availability report of [from_ms, to_ms) (unix ms) from the local
 * state (docs/sla.md "Availability ledger"): failovers whose first commit
 * under the new leader falls in the range, windows overlapping it, one day
 * summary per UTC day it touches (zeros for a day with none), and the
 * unavailable and observed time inside it.  INVALID (with errmsg) when
 * from_ms < 0, to_ms <= from_ms, or the range is longer than
 * KYUFU_AVAIL_QUERY_DAYS_MAX days.  On 0 *out is the caller's; free it
 * with kyufu_storage_availability_free. */
int kyufu_storage_availability(struct kyufu_storage *s,
                               int64_t from_ms,
                               int64_t to_ms,
                               Kyufu__V1__AvailabilityReport **out,
                               char *errmsg,
                               size_t errmsg_len);
void kyufu_storage_availability_free(Kyufu__V1__AvailabilityReport *r);
/* A number that changes whenever apply writes or removes a failover or
 * window record, or a snapshot is restored: a cache of
 * kyufu_storage_availability's detail (node/sla_ledger.c) is stale when it
 * differs from the value read with it.  O(1); call on the loop thread (the
 * thread that applies). */
uint64_t kyufu_storage_availability_changes(const struct kyufu_storage *s);
/* The newest leader-stamped command time (CommandHeader.time_ms) applied
 * since the store was opened, and the term of its entry; 0 and 0 before
 * any.  The node's identity clock takes it as the word of that term's
 * leader (node/clock_node.c).  O(1); on the loop thread. */
void kyufu_storage_last_stamp(const struct kyufu_storage *s, int64_t *ms,
                              uint64_t *term);
/* Whether s names a drill as apply accepts it: 1..64 bytes [A-Za-z0-9._-]. */
bool kyufu_storage_valid_drill_id(const char *s);

/* ------------------------------------------------------ audit and digest */

/* Walk the whole audit chain and check every link and hash.  Returns 0 when
 * it verifies, CORRUPT (with the first bad seq in errmsg) when it does not.
 * *count receives the number of records checked. */
int kyufu_storage_audit_verify(struct kyufu_storage *s,
                               uint64_t *count,
                               char *errmsg,
                               size_t errmsg_len);

/* The chain's head (operation log checkpoints, node/checkpoint.c): the last
 * seq (0 for an empty chain) and its hash (zeros then).  A short read; 0 or
 * a storage error. */
int kyufu_storage_audit_head(struct kyufu_storage *s,
                             uint64_t *seq,
                             uint8_t hash[32]);

/* SHA-256 over a canonical walk of the whole replicated state (every
 * database, key and value in order, the applied index and term included), so
 * that two replicas at the same applied index compare equal iff their state
 * is identical. */
int kyufu_storage_digest(struct kyufu_storage *s,
                         uint8_t digest[32],
                         uint64_t *applied_index);

/* Walk every program, application and batch and check the six SPEC
 * invariants that can be checked from state alone (1-5; 6 is the caller's).
 * Returns 0, or CORRUPT with the violation in errmsg.  Used by tests and
 * chaos checkers; apply checks the records it touches itself. */
int kyufu_storage_check_invariants(struct kyufu_storage *s,
                                   char *errmsg,
                                   size_t errmsg_len);

/* ------------------------------------------------------------ compaction */

struct kyufu_storage_compact_result
{
    uint64_t bytes_before;  /* data.mdb before */
    uint64_t bytes_after;   /* data.mdb after */
    uint64_t applied_index; /* the store's, unchanged */
    uint8_t digest[32];     /* the state digest, equal before and after */
};

/* Compact the store at `path` offline (compact.c): copy it without free
 * pages (mdb_env_copy2 with MDB_CP_COMPACT) into path/compact.tmp, check
 * that the copy's state digest equals the store's, rename it over
 * path/data.mdb, and check the digest once more.  The store must not be
 * open anywhere (LOCKED otherwise: stop the node first).  On any failure
 * before the rename the store is left as it was (CORRUPT when the digests
 * differ).  Needs free disk space for one compacted copy.  No store at
 * path: INVALID (never creates one). */
int kyufu_storage_compact(const char *path,
                          struct kyufu_storage_compact_result *res,
                          char *errmsg,
                          size_t errmsg_len);

/* ------------------------------------------------------- structural check */

/* Walk the stopped store at `path` (check.c): LMDB's free database, its
 * main database and every named database, every key and value read, keys
 * in order, record counts equal to the databases' headers.  Opens the
 * store read-only without LMDB's lock file and changes nothing on disk;
 * the caller holds the node's lock (no process may have it open for
 * writing).  Returns 0 (also when path holds no data.mdb: a new store),
 * CORRUPT with the damage in errmsg (LMDB's errors MDB_CORRUPTED,
 * MDB_PAGE_NOTFOUND and the like, a truncated file, keys out of order,
 * a count that differs), IO, NOMEM or INVALID (no path).
 *
 * LMDB has no page checksums: a damaged page can make this walk read wild
 * memory and crash the process with SIGSEGV or SIGBUS.  Call it directly
 * only where a crash is acceptable; otherwise use the isolated form. */
int kyufu_storage_check(const char *path, char *errmsg, size_t errmsg_len);

/* kyufu_storage_check in a forked child (check_child.c), so that a crash
 * in LMDB kills only the child.  Same results, plus CORRUPT with "the
 * store check crashed on signal SIGSEGV: a page of data.mdb is damaged"
 * (or SIGBUS, ...) when the child died of a crash signal, and IO when it
 * was killed otherwise or could not be started.  Call it before the
 * process starts any thread: the child runs LMDB, which a fork of a
 * threaded process could find with a lock held by a thread that is not
 * there.  Blocks for the whole walk (docs/storage.md "Structural check":
 * about N s per GB). */
int kyufu_storage_check_isolated(const char *path,
                                 char *errmsg,
                                 size_t errmsg_len);

/* -------------------------------------------------------------- snapshots
 *
 * A snapshot is a consistent view of the whole state at an applied index,
 * serialized to a self-checking byte stream (docs/formats.md; the stream
 * itself is specified in docs/snapshot-format.md).  Taking it
 * does not block apply: begin opens a read transaction (cheap); write may
 * run on another thread; end releases it.  Begin and end may run on any
 * thread (a mutex orders them against map growth); an open snapshot holds
 * one of the KYUFU_MAX_READERS reader slots and keeps the map from growing,
 * so keep it open only while it is read.  Begin returns READERS_FULL when
 * every slot is taken (non-fatal), or another error.
 */

struct kyufu_storage_snapshot; /* Opaque. */

int kyufu_storage_snapshot_begin(struct kyufu_storage *s,
                                 struct kyufu_storage_snapshot **out);

/* The state digest and the audit chain check of the snapshot's view (as
 * kyufu_storage_digest / _audit_verify).  Like snapshot_write they may run
 * on another thread while the loop applies (the map cannot grow while a
 * snapshot is open). */
int kyufu_storage_snapshot_digest(struct kyufu_storage_snapshot *snap,
                                  uint8_t digest[32],
                                  uint64_t *applied_index);
int kyufu_storage_snapshot_audit_verify(struct kyufu_storage_snapshot *snap,
                                        uint64_t *count,
                                        char *errmsg,
                                        size_t errmsg_len);

/* Index and term the snapshot captures. */
void kyufu_storage_snapshot_applied(const struct kyufu_storage_snapshot *snap,
                                    uint64_t *index,
                                    uint64_t *term);

/* Serialize the snapshot as a sequence of chunks, each at most
 * KYUFU_SNAPSHOT_CHUNK_BYTES_MAX, handed to `emit` in order.  `emit` takes
 * ownership of `chunk` (allocated with `alloc(arg, size)`, or malloc when
 * alloc is NULL) and returns 0 to go on or nonzero to stop (returned
 * as-is). */
typedef int (*kyufu_storage_emit_fn)(void *arg, void *chunk, size_t len);
/* On an error return (emit's nonzero included) the stream is incomplete and
 * must be discarded; a chunk not yet emitted is freed with free() when alloc
 * is NULL, else passed to emit so that its owner frees it. */
int kyufu_storage_snapshot_write(struct kyufu_storage_snapshot *snap,
                                 void *(*alloc)(void *arg, size_t size),
                                 kyufu_storage_emit_fn emit,
                                 void *arg);

void kyufu_storage_snapshot_end(struct kyufu_storage_snapshot *snap);

/* Replace the whole state with a snapshot stream, in one write
 * transaction.  The stream is checked (magic, schema version, lengths, key
 * order, record count, the meta records, SHA-256 trailer) and then the
 * ledger it describes (kyufu_storage_check_invariants) before that
 * transaction commits; a bad stream returns CORRUPT with the reason in
 * errmsg and leaves the state unchanged (docs/snapshot-format.md).
 *
 * kyufu_storage_restore_stream reads the stream piece by piece from src,
 * so it never holds the stream (its memory: one piece, one record, LMDB's
 * dirty pages); kyufu_storage_restore takes it in one buffer (a
 * concatenation of the chunks above, as Raft hands it over). */
struct kyufu_storage_source
{
    /* The next piece of the stream in *data, *len bytes (*len 0: the end of
     * the stream); valid until the next call.  0, or nonzero with errmsg
     * said: the restore stops, changes nothing and returns IO, keeping the
     * source's errmsg. */
    int (*read)(void *arg,
                const uint8_t **data,
                size_t *len,
                char *errmsg,
                size_t errmsg_len);
    /* Start again from the first byte: a restore that found the map full
     * grows it and reads the stream again.  NULL: it cannot (a full map
     * is then MAP_FULL).  0, or nonzero with errmsg said (IO). */
    int (*rewind)(void *arg, char *errmsg, size_t errmsg_len);
    void *arg;
};
int kyufu_storage_restore_stream(struct kyufu_storage *s,
                                 const struct kyufu_storage_source *src,
                                 char *errmsg,
                                 size_t errmsg_len);
int kyufu_storage_restore(struct kyufu_storage *s,
                          const uint8_t *buf,
                          size_t len,
                          char *errmsg,
                          size_t errmsg_len);

/* ---------------------------------------------------- encryption at rest
 *
 * docs/encryption.md.  The primitives the store's encrypted codecs use (and
 * node/ uses to wrap keys), OpenSSL EVP only, CRYPTREC-listed: AES-256-GCM,
 * HMAC-SHA256, SP 800-108 counter-mode KDF over HMAC-SHA256.  None reads a
 * random source: nonces and salts are passed in (the leader draws them
 * outside apply).  Any thread.  Key material passed in is borrowed; output
 * key material is the caller's to wipe (kyufu_storage_crypto_wipe).
 *
 * Errors: INVALID (a length out of range), AUTH (the tag did not verify:
 * wrong key, wrong associated data or tampered bytes; nothing is written to
 * `out` that the caller may use: it is wiped), NOMEM (OpenSSL could not
 * allocate), INTERNAL (OpenSSL failed otherwise).  */
#define KYUFU_CRYPTO_KEY_BYTES 32
#define KYUFU_CRYPTO_NONCE_BYTES 12
#define KYUFU_CRYPTO_TAG_BYTES 16
#define KYUFU_CRYPTO_SALT_BYTES 16
#define KYUFU_CRYPTO_HASH_BYTES 32
/* Largest plaintext one seal takes (a snapshot chunk is 4 MiB; a record
 * or Raft entry far less); keeps lengths inside OpenSSL's int. */
#define KYUFU_CRYPTO_TEXT_BYTES_MAX (64u << 20)

#define KYUFU_CRYPTO_ERRORS(X)                                               \
    X(OK, 0, "ok")                                                           \
    X(INVALID, -1, "invalid length or argument")                             \
    X(AUTH, -2, "ciphertext failed authentication (wrong key, wrong "        \
                "associated data, or tampered)")                            \
    X(NOMEM, -3, "out of memory in the crypto library")                      \
    X(INTERNAL, -4, "the crypto library failed")

enum kyufu_crypto_error {
#define KYUFU_CRYPTO__ENUM(name, value, text) KYUFU_CRYPTO_E##name = value,
    KYUFU_CRYPTO_ERRORS(KYUFU_CRYPTO__ENUM)
#undef KYUFU_CRYPTO__ENUM
};

/* Static string for a KYUFU_CRYPTO_E* code; never NULL. */
const char *kyufu_storage_crypto_strerror(int rv);

/* The subkeys of one data key version (docs/encryption.md "Keys"). */
struct kyufu_crypto_subkeys
{
    uint8_t enc[KYUFU_CRYPTO_KEY_BYTES];   /* AES-256-GCM */
    uint8_t nonce[KYUFU_CRYPTO_KEY_BYTES]; /* record nonce derivation */
    uint8_t index[KYUFU_CRYPTO_KEY_BYTES]; /* keyed hashes of identifiers */
    uint8_t stream[KYUFU_CRYPTO_KEY_BYTES]; /* AES-256-GCM with random
                                              * nonces: Raft entry payloads,
                                              * and (format 2) snapshot
                                              * chunks; format 3 snapshots
                                              * derive their own key */
};

/* Derive the subkeys of data key `dek`, version `version` (the version is
 * the KDF's context, so two versions never share a subkey even if their
 * data keys were equal). */
int kyufu_storage_crypto_subkeys(const uint8_t dek[KYUFU_CRYPTO_KEY_BYTES],
                                 uint32_t version,
                                 struct kyufu_crypto_subkeys *out);

/* The key of one sealed snapshot's chunks (snapshot format 3): KBKDF of
 * the data key `dek` (the CMK) with its own label and the version (u32 BE)
 * followed by the snapshot's random 16-byte id as context: a key of its
 * own purpose (never the stream subkey's), so each snapshot seals its few
 * chunks under a fresh key and the stream subkey's 2^32 random nonces are
 * left to Raft entries (docs/encryption.md "Nonces"). */
int kyufu_storage_crypto_snapshot_key(
    const uint8_t dek[KYUFU_CRYPTO_KEY_BYTES],
    uint32_t version,
    const uint8_t id[KYUFU_CRYPTO_SALT_BYTES],
    uint8_t out[KYUFU_CRYPTO_KEY_BYTES]);

/* AES-256-GCM.  seal: out receives len bytes of ciphertext followed by the
 * KYUFU_CRYPTO_TAG_BYTES tag (out must hold len + TAG bytes; may not
 * overlap in).  open: in is ciphertext ‖ tag (in_len ≥ TAG), out receives
 * in_len - TAG bytes of plaintext, only if the tag verifies.  aad may be
 * NULL when aad_len is 0.  len ≤ KYUFU_CRYPTO_TEXT_BYTES_MAX. */
int kyufu_storage_crypto_seal(const uint8_t key[KYUFU_CRYPTO_KEY_BYTES],
                              const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                              const uint8_t *aad,
                              size_t aad_len,
                              const uint8_t *in,
                              size_t len,
                              uint8_t *out);
int kyufu_storage_crypto_open(const uint8_t key[KYUFU_CRYPTO_KEY_BYTES],
                              const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                              const uint8_t *aad,
                              size_t aad_len,
                              const uint8_t *in,
                              size_t in_len,
                              uint8_t *out);

/* Keyed contexts: one key set up once in OpenSSL (AES-256-GCM key
 * schedule, HMAC-SHA256 pads) for any number of seals, opens and nonces,
 * which then skip the per-call set-up that costs more than the cipher on
 * a short record (docs/encryption.md "Cost").  The *_key_* calls are the
 * calls above and below on a key made by key_new.  A key never changes
 * after key_new: any number of threads may use one at once.  key_ref adds
 * a reference, key_free drops one; the last frees the contexts and wipes
 * their key material (NULL: nothing).  key_new copies nothing the caller
 * must keep: it may wipe `key` at once. */
struct kyufu_crypto_key;
int kyufu_storage_crypto_key_new(const uint8_t key[KYUFU_CRYPTO_KEY_BYTES],
                                 struct kyufu_crypto_key **out);
struct kyufu_crypto_key *kyufu_storage_crypto_key_ref(
    struct kyufu_crypto_key *k);
void kyufu_storage_crypto_key_free(struct kyufu_crypto_key *k);
int kyufu_storage_crypto_key_seal(const struct kyufu_crypto_key *k,
                                  const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                                  const uint8_t *aad,
                                  size_t aad_len,
                                  const uint8_t *in,
                                  size_t len,
                                  uint8_t *out);
int kyufu_storage_crypto_key_open(const struct kyufu_crypto_key *k,
                                  const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                                  const uint8_t *aad,
                                  size_t aad_len,
                                  const uint8_t *in,
                                  size_t in_len,
                                  uint8_t *out);
int kyufu_storage_crypto_key_record_nonce(
    const struct kyufu_crypto_key *k_nonce,
    const uint8_t salt[KYUFU_CRYPTO_SALT_BYTES],
    uint64_t index,
    uint32_t db,
    const uint8_t *key,
    size_t key_len,
    uint32_t seq,
    uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES]);

/* A stored record's nonce: HMAC-SHA256(k_nonce, salt ‖ index ‖ db ‖ key ‖
 * seq) cut to 96 bits, every field length-prefixed so that no two inputs
 * encode alike.  salt: the entry's leader-drawn salt; index: its Raft
 * index; db: the database's number; key: the record's key (≤ 511 bytes);
 * seq: the encryption's number inside the entry (docs/encryption.md
 * "Nonces"). */
int kyufu_storage_crypto_record_nonce(
    const uint8_t k_nonce[KYUFU_CRYPTO_KEY_BYTES],
    const uint8_t salt[KYUFU_CRYPTO_SALT_BYTES],
    uint64_t index,
    uint32_t db,
    const uint8_t *key,
    size_t key_len,
    uint32_t seq,
    uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES]);

/* Keyed hash of a personal identifier for use as a lookup key:
 * HMAC-SHA256(k_index, value).  len ≤ KYUFU_CRYPTO_TEXT_BYTES_MAX. */
int kyufu_storage_crypto_keyed_hash(
    const uint8_t k_index[KYUFU_CRYPTO_KEY_BYTES],
    const uint8_t *value,
    size_t len,
    uint8_t out[KYUFU_CRYPTO_HASH_BYTES]);

/* Overwrite key material in a way the compiler keeps (OPENSSL_cleanse). */
void kyufu_storage_crypto_wipe(void *p, size_t len);

/* ------------------------------------------------------------- key ring
 *
 * keyring.c; docs/encryption.md "Keys".  The store holds the cluster
 * master key (CMK) in memory only: its owner unwraps it (node/keys.h) and
 * hands it over once, right after kyufu_storage_open and before any apply,
 * snapshot or other thread uses the store.  The data key of version v
 * (v ≥ 1) is not stored anywhere: its subkeys are
 * kyufu_storage_crypto_subkeys(CMK, v), so every node derives the same keys
 * and replicas' ciphertext stays byte-identical; which version is active is
 * replicated state.  kyufu_storage_close wipes the CMK.
 *
 * keys_set: copies cmk (the caller wipes its own copy); a second call is a
 * programming error.  keys_subkeys: the subkeys of version v, or
 * KYUFU_STORAGE_EINVALID when no CMK was set or v is 0; any thread once set.
 * The caller wipes *out after use. */
void kyufu_storage_keys_set(struct kyufu_storage *s,
                            const uint8_t cmk[KYUFU_CRYPTO_KEY_BYTES]);
bool kyufu_storage_keys_present(const struct kyufu_storage *s);
/* A copy of the CMK, for the one thing that must carry it off the node
 * wrapped under another key: a backup (docs/encryption.md "Backups").
 * KYUFU_STORAGE_EINVALID when none was set.  The caller wipes out. */
int kyufu_storage_keys_export(const struct kyufu_storage *s,
                              uint8_t out[KYUFU_CRYPTO_KEY_BYTES]);
int kyufu_storage_keys_subkeys(const struct kyufu_storage *s,
                               uint32_t version,
                               struct kyufu_crypto_subkeys *out);
/* The active data-key version: the version new sealed values are written
 * under (replicated state in meta; 1 from the moment a store has a CMK, no
 * command needed).  0 when the store has no CMK (nothing is sealed).  The
 * loop thread (a restore may change it). */
uint32_t kyufu_storage_keys_active(const struct kyufu_storage *s);
/* One format-3 snapshot's key (kyufu_storage_crypto_snapshot_key of the
 * CMK, version and id) into out, the caller's to wipe.  EINVALID without
 * a CMK or for version 0, ENOMEM when OpenSSL fails.  Any thread. */
int kyufu_storage_keys_snapshot_key(const struct kyufu_storage *s,
                                    uint32_t version,
                                    const uint8_t id[KYUFU_CRYPTO_SALT_BYTES],
                                    uint8_t out[KYUFU_CRYPTO_KEY_BYTES]);

/* ------------------------------------------------------------- rotation
 *
 * apply_keys.c; docs/encryption.md "Rotation".  key_rotation: the record
 * of the last RotateKeys with the re-encryption cursor into *out (the
 * caller's to free with kyufu__v1__key_rotation__free_unpacked) and the
 * name of its db into *cursor_db (static; may be NULL): 0, ENOTFOUND when
 * the cluster never rotated, or a store error.  The loop thread.
 *
 * key_census: how many stored values of the sealed dbs are under each key
 * version (0: plaintext), by version: a scan of those dbs (about a second
 * per million values); free with census_free.  snapshot_key_census: the
 * same in a snapshot, on any one thread (kyufud runs it on a work thread:
 * node/offload.h). */
int kyufu_storage_key_rotation(struct kyufu_storage *s,
                               Kyufu__V1__KeyRotation **out,
                               const char **cursor_db);
struct kyufu_storage_key_census
{
    struct kyufu_storage_key_count {
        uint32_t version;
        uint64_t values;
    } *items;
    size_t n;
};
int kyufu_storage_key_census(struct kyufu_storage *s,
                             struct kyufu_storage_key_census *out);
/* The seals counted under the active data-key version (from cluster
 * version 6) and the limit at which apply rotates.  counted: the count is
 * the active version's (false before the first entry is counted: version
 * and count 0).  The loop thread. */
struct kyufu_storage_key_seals
{
    bool counted;
    uint32_t version; /* the version counted for (0: none yet) */
    uint64_t count;
    uint64_t limit;
};
int kyufu_storage_key_seals(struct kyufu_storage *s,
                            struct kyufu_storage_key_seals *out);
int kyufu_storage_snapshot_key_census(struct kyufu_storage_snapshot *snap,
                                      struct kyufu_storage_key_census *out);
void kyufu_storage_key_census_free(struct kyufu_storage_key_census *c);

#endif /* KYUFU_STORAGE_H */
