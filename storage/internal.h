/* kyufu storage internals shared between the files of storage/.  Nothing here
 * is visible outside the library (-fvisibility=hidden; names are
 * kyufu_storage__x).  See docs/storage.md for the databases and key formats.
 */
#ifndef KYUFU_STORAGE_INTERNAL_H
#define KYUFU_STORAGE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage_limits.h"
#include "storage.h"
#include "kyufu/v1/service.pb-c.h"

/* Safety checks that stay on in release builds (not compiled out by NDEBUG):
 * a failed one is a bug in this library, never an input, and continuing
 * would replicate a broken ledger. */
#define KYUFU_ASSERT(cond)                                                   \
    ((cond) ? (void)0 : kyufu_storage__panic(__FILE__, __LINE__, "%s", #cond))

_Noreturn void kyufu_storage__panic(const char *file,
                                    int line,
                                    const char *fmt,
                                    ...) __attribute__((format(printf, 3, 4)));

/* Named databases, in the fixed order of the digest and the snapshot stream.
 * The numbers are part of the snapshot format: never renumber, only append. */
enum kyufu_storage__db {
    KYUFU_DB_META = 0,
    KYUFU_DB_PROGRAMS = 1,
    KYUFU_DB_HOUSEHOLDS = 2,
    KYUFU_DB_APPLICATIONS = 3,
    KYUFU_DB_APP_LIVE = 4,
    KYUFU_DB_APP_INDEX = 5,
    KYUFU_DB_BATCHES = 6,
    KYUFU_DB_STAFF = 7,
    KYUFU_DB_SESSIONS = 8,
    KYUFU_DB_SESSION_EXPIRY = 9,
    KYUFU_DB_AUDIT = 10,
    KYUFU_DB_SESSION_FLOOR = 11, /* schema 2 */
    KYUFU_DB_INCIDENTS = 12,     /* SLA incidents (apply_incident.c); an
                                    empty db in older stores: no schema bump */
    KYUFU_DB_AVAILABILITY = 13,  /* availability ledger (apply_availability.c) */
    /* Identity (issue 8; identity.c, docs/identity.md): empty dbs in older
     * stores, no schema bump (as incidents). */
    KYUFU_DB_CREDENTIAL = 14,    /* staff_id → Credential */
    KYUFU_DB_AUTH_SESSION = 15,  /* token_hash (32) → AuthSession */
    KYUFU_DB_AUTH_BY_STAFF = 16, /* staff_id 0x00 token_hash → "" */
    KYUFU_DB_ADMIN_GRANT = 17,   /* staff_id → pending ID-admin grant */
    KYUFU_DB_COUNT = 18,
};
_Static_assert(KYUFU_DB_COUNT <= KYUFU_MAX_DBS, "maxdbs covers every db");

extern const char *const kyufu_storage__db_names[KYUFU_DB_COUNT];

/* Meta keys (values are 8-byte big-endian unsigned unless noted). */
#define KYUFU_META_SCHEMA "schema_version"
#define KYUFU_META_APPLIED_INDEX "applied_index"
#define KYUFU_META_APPLIED_TERM "applied_term"
#define KYUFU_META_NEXT_APP_ID "next_application_id"
#define KYUFU_META_NEXT_BATCH_ID "next_batch_id"
#define KYUFU_META_AUDIT_SEQ "audit_seq"
#define KYUFU_META_AUDIT_HASH "audit_hash" /* 32 bytes */
#define KYUFU_META_NEXT_INCIDENT_ID "next_incident_id"
/* Identity: the last AuthSession.id given (absent: 0). */
#define KYUFU_META_LAST_AUTH_SESSION_ID "last_auth_session_id"
/* Upgrades (apply_version.c): absent in a store no RecordVersions reached. */
#define KYUFU_META_CLUSTER_VERSION "cluster_version"
#define KYUFU_META_VOTER_VERSIONS "voter_versions" /* packed RecordVersions */
/* Encryption at rest: the active data-key version (absent: 1; keyring.c). */
#define KYUFU_META_KEYS_ACTIVE "keys_active"
/* Data-key rotation (apply_keys.c): the packed KeyRotation of the last
 * RotateKeys, with the re-encryption cursor (absent: never rotated). */
#define KYUFU_META_KEY_ROTATION "key_rotation"
/* Seals under the active data-key version (apply_keys.c, from cluster
 * version KYUFU_SEAL_COUNT_SINCE): that version, then the count, 8 bytes
 * each (absent: none counted yet). */
#define KYUFU_META_KEYS_SEALS "keys_seals"

/* Application index kinds (first key byte of KYUFU_DB_APP_INDEX). */
#define KYUFU_IDX_PROGRAM 'p'        /* 'p' code 0 id */
#define KYUFU_IDX_HOUSEHOLD 'h'      /* 'h' no 0 id */
#define KYUFU_IDX_STATUS 's'         /* 's' status id */
#define KYUFU_IDX_PROGRAM_STATUS 'q' /* 'q' code 0 status id */

/* The versions of the replicated state (apply_version.c), cached in
 * memory like the applied index, so that the write path and Status never
 * open a transaction for them: read at open, after a restore, and after an
 * entry holding a RecordVersions commits. */
struct kyufu_storage__versions
{
    uint32_t cluster;    /* 1 when none was recorded */
    uint8_t *voters;     /* packed RecordVersions (malloc); NULL when none */
    size_t voters_len;
};

/* One data-key version's keys for stored records (keyring.c): `enc` seals
 * and opens values, `nonce` derives their nonces. */
struct kyufu_storage__keys
{
    struct kyufu_crypto_key *enc;
    struct kyufu_crypto_key *nonce;
};

struct kyufu_storage
{
    MDB_env *env;
    MDB_dbi dbi[KYUFU_DB_COUNT];
    size_t map_size_bytes;     /* current map size */
    size_t map_size_bytes_max; /* growth ceiling */
    /* Snapshots may begin and end on any thread (storage.h): `snapshots`
     * and mdb_env_set_mapsize (legal only with no txn open in the process)
     * are used under snap_lock, so a snapshot never begins while the map
     * grows. */
    pthread_mutex_t snap_lock;
    unsigned snapshots;        /* outstanding snapshot read txns */
    MDB_txn *loop_txn;         /* reserved reader slot (read_begin) */
    bool loop_txn_busy;
    /* The environment is closed and opened again after a restore
     * (kyufu_storage__env_renew): path and flags to open it with, and a
     * lock that keeps a sync on a work thread (the only use of env off the
     * loop thread besides snapshots) off a closed environment: sync holds
     * it shared, renew exclusive. */
    char *path;
    unsigned env_flags;
    pthread_rwlock_t env_lock;
    bool renew_pending;        /* a snapshot was open: renew at next apply */
    unsigned renew_count;      /* times renewed (tests observe it) */
    uint64_t applied_index;    /* cache of meta, updated after commit */
    uint64_t applied_term;
    /* Highest applied index known to be on disk (sync.c): written by
     * kyufu_storage_sync on any thread and, in a store whose commits flush
     * (!no_sync), by apply after each commit; read by the loop thread. */
    _Atomic uint64_t durable_index;
    bool no_sync;              /* opened MDB_NOSYNC: the owner flushes */
    struct kyufu_storage__versions versions; /* cache of meta, as above */
    unsigned grow_count;       /* times the map grew (tests observe it) */
    size_t snapshot_chunk_bytes; /* KYUFU_SNAPSHOT_CHUNK_BYTES_MAX; tests
                                  * lower it to see many chunks */
    uint64_t avail_detail_changes; /* kyufu_storage_availability_changes */
    /* kyufu_storage_last_stamp: the newest leader-stamped command time
     * applied since the store was opened, and the entry's term (0, 0:
     * none yet).  In memory only. */
    int64_t stamp_last_ms;
    uint64_t stamp_last_term;
    /* Encryption at rest (keyring.c): the CMK, set once after open. */
    uint8_t cmk[KYUFU_CRYPTO_KEY_BYTES];
    bool has_cmk;
    uint64_t seal_limit;  /* seals under one version before apply rotates
                           * (options.seal_limit; every replica the same) */
    uint32_t keys_active; /* cache of meta keys_active (read at open and
                           * restore; 1 when absent) */
    /* The keyed record keys of the versions in use; any thread (apply on
     * the loop, reads on offload workers and snapshots), so under
     * keys_lock; freed and wiped at close. */
    pthread_mutex_t keys_lock;
    struct kyufu_storage__cached_keys {
        uint32_t version; /* 0: empty */
        struct kyufu_storage__keys k;
    } keys_cache[KYUFU_KEYS_CACHED_MAX];
    size_t keys_next;
    /* The entry apply is writing (seal.c): its salt and index make the
     * nonce of every value it seals, seq counts those seals. */
    struct {
        bool active;
        uint8_t salt[KYUFU_CRYPTO_SALT_BYTES];
        uint64_t index;
        uint32_t seq;
    } seal;
    /* The index of the last ScrubMark applied and not yet taken
     * (kyufu_storage_take_scrub_mark; apply_scrub.c); 0: none. */
    uint64_t scrub_mark;
};

/* Calls fn for every (db, key, value) of the replicated state in the fixed
 * order of the digest and the snapshot stream (db number, then key). */
typedef int (*kyufu_storage__walk_fn)(void *arg, unsigned db,
                                      const MDB_val *k, const MDB_val *v);
/* The read transaction of a snapshot (snapshot.c), for whole-store reads
 * that may run on another thread. */
MDB_txn *kyufu_storage__snapshot_txn(struct kyufu_storage_snapshot *snap,
                                    struct kyufu_storage **s);

int kyufu_storage__walk(struct kyufu_storage *s, MDB_txn *txn,
                        kyufu_storage__walk_fn fn, void *arg);

/* ------------------------------------------------------------ byte helpers */
void kyufu_storage__put_u64(uint8_t out[8], uint64_t v);
uint64_t kyufu_storage__get_u64(const uint8_t in[8]);
void kyufu_storage__put_u32(uint8_t out[4], uint32_t v);
uint32_t kyufu_storage__get_u32(const uint8_t in[4]);

/* Map an LMDB return code to a storage error. */
int kyufu_storage__mdb_error(int mrv);

/* CORRUPT (with errmsg) when env's data.mdb is shorter than the pages its
 * meta page counts; EIO when it cannot be stat'ed; 0 otherwise.  Reads only
 * the meta pages mdb_env_open already checked (env.c). */
int kyufu_storage__check_file_size(MDB_env *env,
                                   const MDB_envinfo *info,
                                   char *errmsg,
                                   size_t len);
void kyufu_storage__errmsg(char *errmsg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ meta */
/* The meta value of `key` into *v (valid until txn writes or ends): 0,
 * NOTFOUND when absent, or the mapped LMDB error. */
int kyufu_storage__meta_get(const struct kyufu_storage *s,
                            MDB_txn *txn,
                            const char *key,
                            MDB_val *v);
int kyufu_storage__meta_get_u64(struct kyufu_storage *s,
                                MDB_txn *txn,
                                const char *key,
                                uint64_t *out); /* absent reads as 0 */
int kyufu_storage__meta_put_u64(struct kyufu_storage *s,
                                MDB_txn *txn,
                                const char *key,
                                uint64_t v);

/* ------------------------------------------------------------ records
 * Typed get/put of the records.  get returns 0, NOTFOUND, or CORRUPT (a
 * value that does not decode, or fails its record check); *out is owned by
 * the caller (free_unpacked).  put checks the record before writing it and
 * returns 0 or an LMDB-mapped error (MAP_FULL among them). */
int kyufu_storage__get_program(struct kyufu_storage *s, MDB_txn *txn,
                               const char *code, Kyufu__V1__Program **out);
int kyufu_storage__put_program(struct kyufu_storage *s, MDB_txn *txn,
                               const Kyufu__V1__Program *p);
int kyufu_storage__get_household(struct kyufu_storage *s, MDB_txn *txn,
                                 const char *no, Kyufu__V1__Household **out);
int kyufu_storage__put_household(struct kyufu_storage *s, MDB_txn *txn,
                                 const Kyufu__V1__Household *h);
int kyufu_storage__get_application(struct kyufu_storage *s, MDB_txn *txn,
                                   uint64_t id, Kyufu__V1__Application **out);
/* Writes the application and keeps every index in step (live index, list
 * indexes); old is the record as it was (NULL when new).  Checks the status
 * transition against the table and invariant 2 (one live app per pair). */
int kyufu_storage__put_application(struct kyufu_storage *s, MDB_txn *txn,
                                   const Kyufu__V1__Application *old,
                                   const Kyufu__V1__Application *app);
int kyufu_storage__get_batch(struct kyufu_storage *s, MDB_txn *txn,
                             uint64_t id, Kyufu__V1__PaymentBatch **out);
int kyufu_storage__put_batch(struct kyufu_storage *s, MDB_txn *txn,
                             const Kyufu__V1__PaymentBatch *b);
int kyufu_storage__get_staff(struct kyufu_storage *s, MDB_txn *txn,
                             const char *id, Kyufu__V1__StaffAccount **out);
int kyufu_storage__put_staff(struct kyufu_storage *s, MDB_txn *txn,
                             const Kyufu__V1__StaffAccount *a);
/* Live application id for (program, household), 0 when none. */
int kyufu_storage__get_live(struct kyufu_storage *s, MDB_txn *txn,
                            const char *program, const char *household,
                            uint64_t *id);
size_t kyufu_storage__live_key(uint8_t *key, size_t cap, const char *program,
                               const char *household);

/* The household codec (personal data): sealed when the store has a CMK
 * (seal.c).  decode reads sealed and legacy plaintext values; CORRUPT when
 * the value does not authenticate or decode.  `no` is the record's key. */
int kyufu_storage__household_encode(struct kyufu_storage *s,
                                    const Kyufu__V1__Household *h,
                                    uint8_t **out,
                                    size_t *len);
int kyufu_storage__household_decode(struct kyufu_storage *s,
                                    const char *no,
                                    const uint8_t *buf,
                                    size_t len,
                                    Kyufu__V1__Household **out);

/* ------------------------------------------------------------ sealed values
 * (seal.c; format in docs/storage.md "Sealed values") */
/* Whether db holds personal data (its values are sealed when the store has
 * a CMK), and whether this store seals it. */
bool kyufu_storage__sealed_db(enum kyufu_storage__db db);
bool kyufu_storage__seal_on(const struct kyufu_storage *s,
                            enum kyufu_storage__db db);
/* Seal plain as the value of (db, key) under the active key version, with
 * the nonce of the current entry's next seal; *out is malloc'ed.  Only while
 * apply writes an entry (seal_begin..seal_end) and only when seal_on. */
int kyufu_storage__seal(struct kyufu_storage *s,
                        enum kyufu_storage__db db,
                        const void *key,
                        size_t klen,
                        const uint8_t *plain,
                        size_t plen,
                        uint8_t **out,
                        size_t *out_len);
bool kyufu_storage__is_sealed(const uint8_t *stored, size_t len);
/* The key version a sealed value names; 0 for a legacy plaintext value
 * (or one too short to be sealed: unseal calls it corrupt). */
uint32_t kyufu_storage__sealed_version(const uint8_t *stored, size_t len);
/* The plaintext of a stored value of (db, key): a legacy value as it is
 * (*owned NULL, *plain borrowed from stored), a sealed one opened into
 * *owned (malloc; the caller wipes and frees it).  CORRUPT (logged with db
 * and key) when it fails authentication, has an unknown format, or the
 * store has no CMK. */
int kyufu_storage__unseal(struct kyufu_storage *s,
                          enum kyufu_storage__db db,
                          const void *key,
                          size_t klen,
                          const uint8_t *stored,
                          size_t len,
                          const uint8_t **plain,
                          size_t *plen,
                          uint8_t **owned);
/* unseal + unpack with desc: 0, CORRUPT, or NOMEM. */
int kyufu_storage__unpack(struct kyufu_storage *s,
                          enum kyufu_storage__db db,
                          const MDB_val *k,
                          const MDB_val *v,
                          const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **out);
/* As unpack, NULL for any failure (the scans that call a value they
 * cannot read "undecodable"). */
ProtobufCMessage *kyufu_storage__unpack_or_null(
    struct kyufu_storage *s,
    enum kyufu_storage__db db,
    const MDB_val *k,
    const MDB_val *v,
    const ProtobufCMessageDescriptor *desc);
/* pack m, sealed when seal_on(db): the bytes to store under (db, key). */
int kyufu_storage__encode(struct kyufu_storage *s,
                          enum kyufu_storage__db db,
                          const void *key,
                          size_t klen,
                          const ProtobufCMessage *m,
                          uint8_t **out,
                          size_t *len);
/* Around each attempt at an entry (apply.c); salt empty or not 16 bytes:
 * 16 zero bytes (entries from before encryption at rest). */
void kyufu_storage__seal_begin(struct kyufu_storage *s,
                               uint64_t index,
                               const uint8_t *salt,
                               size_t salt_len);
void kyufu_storage__seal_end(struct kyufu_storage *s);

/* ------------------------------------------------------------ key ring
 * (keyring.c) */
/* The record keys of version (≥ 1; the store has a CMK), keyed once and
 * cached (a round-robin miss derives the version again); any thread.
 * *out holds references: release them with kyufu_storage__keys_put, which
 * keeps them valid however the cache changes meanwhile. */
int kyufu_storage__keys_get(struct kyufu_storage *s,
                            uint32_t version,
                            struct kyufu_storage__keys *out);
void kyufu_storage__keys_put(struct kyufu_storage__keys *k);
/* The active key version in txn (absent: 1). */
int kyufu_storage__keys_active_read(struct kyufu_storage *s,
                                    MDB_txn *txn,
                                    uint32_t *version);
/* Wipe the CMK and the cached subkeys (close). */
void kyufu_storage__keys_wipe(struct kyufu_storage *s);
/* SHA-256 of parts[0] ‖ … ‖ parts[n - 1] (an empty part may be NULL) into
 * out: 0, or KYUFU_STORAGE_ENOMEM when OpenSSL fails.  The algorithm is
 * fetched once per process (sha256.c); thread-safe. */
int kyufu_storage__sha256(const uint8_t *const parts[], const size_t lens[],
                          size_t n, uint8_t out[32]);

/* Pack any message into a malloc'ed buffer. */
int kyufu_storage__pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);
/* Pack M and put it under KEY in DB: 0 or an LMDB-mapped error. */
int kyufu_storage__put_msg(struct kyufu_storage *s, MDB_txn *txn,
                           enum kyufu_storage__db db, const void *key,
                           size_t klen, const ProtobufCMessage *m);

/* ------------------------------------------------------------ record checks
 * Invariants of one record, checked right before a write and right after a
 * read.  Return NULL when it holds, else a static description. */
const char *kyufu_storage__check_program(const Kyufu__V1__Program *p);
const char *kyufu_storage__check_application(const Kyufu__V1__Application *a);
const char *kyufu_storage__check_batch(const Kyufu__V1__PaymentBatch *b);
const char *kyufu_storage__check_staff(const Kyufu__V1__StaffAccount *a);

/* ------------------------------------------------------------ transitions */
bool kyufu_storage__app_transition_ok(Kyufu__V1__ApplicationStatus from,
                                      Kyufu__V1__ApplicationStatus to);
bool kyufu_storage__program_transition_ok(Kyufu__V1__ProgramStatus from,
                                          Kyufu__V1__ProgramStatus to);
bool kyufu_storage__batch_transition_ok(Kyufu__V1__BatchStatus from,
                                        Kyufu__V1__BatchStatus to);
bool kyufu_storage__staff_transition_ok(Kyufu__V1__StaffStatus from,
                                        Kyufu__V1__StaffStatus to);
bool kyufu_storage__app_is_live(Kyufu__V1__ApplicationStatus st);

/* ------------------------------------------------------------ validation */
bool kyufu_storage__valid_program_code(const char *s);
bool kyufu_storage__valid_household_no(const char *s);
bool kyufu_storage__valid_staff_id(const char *s);
bool kyufu_storage__valid_text(const char *s, size_t min, size_t max);
bool kyufu_storage__valid_printable(const char *s, size_t min, size_t max);
bool kyufu_storage__valid_date(int32_t yyyymmdd);
bool kyufu_storage__valid_roles(uint32_t roles);
const char *kyufu_storage__check_household_fields(const Kyufu__V1__Household *h);
bool kyufu_storage__add_ok(int64_t a, int64_t b, int64_t *out);

/* ------------------------------------------------------------ apply */

/* What one batch touched; apply checks the invariants on these after commit. */
struct kyufu_storage__touched
{
    char **programs;
    size_t n_programs, cap_programs;
    uint64_t *apps;
    size_t n_apps, cap_apps;
    uint64_t *batches;
    size_t n_batches, cap_batches;
};

/* The state of one command while it is applied. */
struct kyufu_storage__cmd
{
    struct kyufu_storage *s;
    MDB_txn *txn; /* the command's nested txn */
    uint64_t index;
    const Kyufu__V1__Command *cmd;
    const char *actor;
    int64_t now_ms;
    struct kyufu_storage__touched *touched;

    /* The result being built. */
    Kyufu__V1__Code code;
    char message[KYUFU_MESSAGE_BYTES_MAX];
    char object[KYUFU_OBJECT_BYTES_MAX];
    int record_field; /* CommandResult field number 10..14, 90 or
                       * KYUFU_RESULT_DECOMMISSION, 0 for none */
    Kyufu__V1__WriteOutcome outcome; /* SettleWrite's fence, else unset */
    uint8_t *record;  /* packed record (malloc), set on OK */
    size_t record_len;

    /* Identity (apply_identity.c and friends). */
    uint32_t cluster;    /* the cluster version, read once per command by
                          * apply_command before any check or handler (0
                          * in a system command's) */
    bool identity;       /* cluster >= KYUFU_IDENTITY_SINCE: the identity
                          * rules (docs/identity.md) */
    bool admin_pair;     /* cluster >= KYUFU_ADMIN_PAIR_SINCE: the
                          * two-administrator rule for changes to an ID
                          * administrator (apply_admin_pair.c) */
    bool keep_on_reject; /* commit the nested txn although code != OK (a
                          * refused sign-in still counts a failure; a
                          * pending ID-admin grant is recorded) */
    bool audit_set;      /* the audit record's outcome and message are
                          * audit_code / audit_message, not the result's
                          * (RecordAccess, SignInFailed) */
    Kyufu__V1__Code audit_code;
    char audit_message[KYUFU_MESSAGE_BYTES_MAX];
    char *const *audit_objects; /* AuditRecord.objects (borrowed) */
    size_t n_audit_objects;
};

/* Reject the command with `code` and a one-line message; returns 0 so a
 * handler can `return kyufu_storage__reject(...)`. */
int kyufu_storage__reject(struct kyufu_storage__cmd *c,
                          Kyufu__V1__Code code,
                          const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));
void kyufu_storage__set_object(struct kyufu_storage__cmd *c,
                               const char *fmt,
                               ...) __attribute__((format(printf, 2, 3)));
/* Record the result's record (the message as it stands after the command). */
int kyufu_storage__set_record(struct kyufu_storage__cmd *c,
                              int field,
                              const ProtobufCMessage *m);

int kyufu_storage__touch_program(struct kyufu_storage__cmd *c, const char *code);
int kyufu_storage__touch_app(struct kyufu_storage__cmd *c, uint64_t id);
int kyufu_storage__touch_batch(struct kyufu_storage__cmd *c, uint64_t id);

/* Command handlers: return 0 with c->code set (OK or the rejection) or a
 * negative storage error (the batch is then abandoned).  Steps 1-5 of the
 * rules (header, duplicate, body, actor, role) are done by the caller. */
typedef int (*kyufu_storage__handler)(struct kyufu_storage__cmd *c);
int kyufu_storage__create_program(struct kyufu_storage__cmd *c);
int kyufu_storage__open_program(struct kyufu_storage__cmd *c);
int kyufu_storage__close_program(struct kyufu_storage__cmd *c);
int kyufu_storage__adjust_budget(struct kyufu_storage__cmd *c);
int kyufu_storage__register_household(struct kyufu_storage__cmd *c);
int kyufu_storage__update_household(struct kyufu_storage__cmd *c);
int kyufu_storage__update_household_fields(struct kyufu_storage__cmd *c);
int kyufu_storage__submit_application(struct kyufu_storage__cmd *c);
int kyufu_storage__approve_application(struct kyufu_storage__cmd *c);
int kyufu_storage__reject_application(struct kyufu_storage__cmd *c);
int kyufu_storage__cancel_application(struct kyufu_storage__cmd *c);
int kyufu_storage__create_payment_batch(struct kyufu_storage__cmd *c);
int kyufu_storage__confirm_payment_batch(struct kyufu_storage__cmd *c);
int kyufu_storage__return_payment(struct kyufu_storage__cmd *c);
int kyufu_storage__create_staff(struct kyufu_storage__cmd *c);
int kyufu_storage__set_staff_roles(struct kyufu_storage__cmd *c);
int kyufu_storage__set_staff_status(struct kyufu_storage__cmd *c);
int kyufu_storage__settle_write(struct kyufu_storage__cmd *c);
/* Decommissioning (apply_decommission.c). */
int kyufu_storage__request_decommission(struct kyufu_storage__cmd *c);
int kyufu_storage__approve_decommission(struct kyufu_storage__cmd *c);
/* Data-key rotation (apply_keys.c).  seals_count: at the end of an entry
 * of a store with a CMK, in its txn: count the entry's seals under the
 * active version and rotate when they reach s->seal_limit (now_ms: the
 * entry's newest command time, for the rotation record and its audit). */
int kyufu_storage__rotate_keys(struct kyufu_storage__cmd *c);
int kyufu_storage__reencrypt(struct kyufu_storage__cmd *c);
int kyufu_storage__seals_count(struct kyufu_storage *s,
                               MDB_txn *txn,
                               uint64_t index,
                               int64_t now_ms);
int kyufu_storage__open_incident(struct kyufu_storage__cmd *c);
int kyufu_storage__close_incident(struct kyufu_storage__cmd *c);
/* The availability ledger (apply_availability.c, docs/sla.md). */
int kyufu_storage__availability_heartbeat(struct kyufu_storage__cmd *c);
int kyufu_storage__scrub_mark(struct kyufu_storage__cmd *c);
int kyufu_storage__leader_change(struct kyufu_storage__cmd *c);
int kyufu_storage__failover_intent(struct kyufu_storage__cmd *c);
int kyufu_storage__drill_probe(struct kyufu_storage__cmd *c);
int kyufu_storage__drill_result(struct kyufu_storage__cmd *c);
#define KYUFU_AVAIL_STATE_KEY "state"
/* Days since 1970-01-01 (UTC) of a unix ms time, rounding down. */
int64_t kyufu_storage__avail_day(int64_t ms);
/* "YYYY-MM-DD" of a day number ("0000-00-00" outside years 0..9999). */
void kyufu_storage__avail_day_name(int64_t day, char out[11]);
/* min..KYUFU_AVAIL_DRILL_ID_BYTES_MAX bytes of [A-Za-z0-9._-]. */
bool kyufu_storage__valid_drill_id(const char *s, size_t min);
/* The state record (absent reads as all zero); the caller frees it with
 * kyufu__v1__availability_state__free_unpacked. */
int kyufu_storage__avail_state_get(struct kyufu_storage *s,
                                   MDB_txn *txn,
                                   Kyufu__V1__AvailabilityState **out);
/* Before the commands of an entry of `term`: note its leader-stamped times
 * (the first and last valid header time_ms of the batch; nothing when the
 * batch has none).  A gap longer than the heartbeat tolerance becomes an
 * unavailability window; the first entry of a higher term opens the
 * failover record of that term (RTO = first stamp of the new term - last
 * stamp of the old).  0 or a storage error. */
int kyufu_storage__availability_observe(struct kyufu_storage *s,
                                        MDB_txn *txn,
                                        uint64_t term,
                                        int64_t first_ms,
                                        int64_t last_ms);
/* Identity (issue 8): apply_identity.c, apply_auth_session.c,
 * apply_access.c.  Their actor rules are the handlers' own
 * (command_def.identity). */
int kyufu_storage__set_password(struct kyufu_storage__cmd *c);
int kyufu_storage__sign_in_failed(struct kyufu_storage__cmd *c);
int kyufu_storage__enroll_totp(struct kyufu_storage__cmd *c);
int kyufu_storage__confirm_totp(struct kyufu_storage__cmd *c);
int kyufu_storage__unlock_staff(struct kyufu_storage__cmd *c);
int kyufu_storage__reset_totp(struct kyufu_storage__cmd *c);
int kyufu_storage__purge_staff(struct kyufu_storage__cmd *c);
int kyufu_storage__bootstrap_admin(struct kyufu_storage__cmd *c);
int kyufu_storage__open_session(struct kyufu_storage__cmd *c);
int kyufu_storage__close_session(struct kyufu_storage__cmd *c);
int kyufu_storage__touch_sessions(struct kyufu_storage__cmd *c);
int kyufu_storage__record_access(struct kyufu_storage__cmd *c);

/* ------------------------------------------------------------ identity
 * (identity.c: records and helpers shared by the identity handlers and
 * apply_staff.c) */
/* The command-set version from which the identity rules hold (storage.h
 * "identity"); below it apply keeps the rules of version 1 so that a
 * cluster in a rolling upgrade does not diverge. */
#define KYUFU_IDENTITY_SINCE 2u
/* Decommissioning (apply_decommission.c): command-set version 4. */
#define KYUFU_DECOMMISSION_SINCE 4u
/* Scrub (apply_scrub.c): command-set version 5 (storage.h). */
#define KYUFU_SCRUB_SINCE KYUFU_STORAGE_SCRUB_SINCE
/* Data-key rotation (apply_keys.c): command-set version 5. */
#define KYUFU_KEY_ROTATION_SINCE 5u
/* Apply counts seals per data-key version and rotates at the limit
 * (apply_keys.c); no new command type, a rule, as KYUFU_ADMIN_PAIR_SINCE. */
#define KYUFU_SEAL_COUNT_SINCE KYUFU_STORAGE_SEAL_COUNT_SINCE
#define KYUFU_SEAL_LIMIT_ACTOR KYUFU_STORAGE_SEAL_LIMIT_ACTOR
/* CommandResult.decommission (ledger.proto). */
#define KYUFU_RESULT_DECOMMISSION 151
/* A node's own actor or key client id ("kyufu-node-N", "kyufud-..."). */
bool kyufu_storage__is_node_name(const char *s);
const char *kyufu_storage__check_password_hash(const Kyufu__V1__PasswordHash *h);
const char *kyufu_storage__check_credential(const Kyufu__V1__Credential *cr);
const char *kyufu_storage__check_auth_session(const Kyufu__V1__AuthSession *a);
int kyufu_storage__get_credential(struct kyufu_storage *s, MDB_txn *txn,
                                  const char *staff_id,
                                  Kyufu__V1__Credential **out);
int kyufu_storage__put_credential(struct kyufu_storage *s, MDB_txn *txn,
                                  const Kyufu__V1__Credential *cr);
int kyufu_storage__del_credential(struct kyufu_storage *s, MDB_txn *txn,
                                  const char *staff_id);
int kyufu_storage__get_auth_session(struct kyufu_storage *s, MDB_txn *txn,
                                    const uint8_t *token_hash, size_t len,
                                    Kyufu__V1__AuthSession **out);
/* Writes the session and its by-staff index entry. */
int kyufu_storage__put_auth_session(struct kyufu_storage *s, MDB_txn *txn,
                                    const Kyufu__V1__AuthSession *a);
/* Deletes the session and its index entry (NOTFOUND when absent). */
int kyufu_storage__del_auth_session(struct kyufu_storage *s, MDB_txn *txn,
                                    const uint8_t token_hash[32]);
/* Deletes every session of the account; *n (may be NULL) the count. */
int kyufu_storage__close_staff_sessions(struct kyufu_storage *s,
                                        MDB_txn *txn, const char *staff_id,
                                        size_t *n);
/* Sessions of the account (index scan). */
int kyufu_storage__count_staff_sessions(struct kyufu_storage *s,
                                        MDB_txn *txn, const char *staff_id,
                                        size_t *n);
/* A new credential for an account just created: the temporary password. */
int kyufu_storage__new_credential(struct kyufu_storage__cmd *c,
                                  const char *staff_id,
                                  const Kyufu__V1__PasswordHash *temporary);
/* Handler helpers (identity.c).  Each returns 0 with c->code set (a
 * rejection) or a store error.
 * id_load: the account (and its credential when cr != NULL; NULL when it
 * has none); NOT_FOUND "no staff X" when there is no account.
 * id_admin_actor: the actor is an ACTIVE account with ROLE_ID_ADMIN, and
 * not `target` (nobody acts on their own account).
 * id_self: the actor is `staff_id` (the account's own command), or a node
 * when node_ok. */
int kyufu_storage__id_load(struct kyufu_storage__cmd *c, const char *staff_id,
                           Kyufu__V1__StaffAccount **a,
                           Kyufu__V1__Credential **cr);
int kyufu_storage__id_admin_actor(struct kyufu_storage__cmd *c,
                                  const char *target);
int kyufu_storage__id_self(struct kyufu_storage__cmd *c, const char *staff_id,
                           bool node_ok);
/* Count the active ID administrators (a scan of the staff table: a city
 * has hundreds of accounts; used only for a change that takes two ID
 * administrators, apply_admin_pair.c). */
/* durable_index = max(durable_index, upto) (sync.c); any thread. */
void kyufu_storage__durable_raise(struct kyufu_storage *s, uint64_t upto);
int kyufu_storage__count_id_admins(struct kyufu_storage *s, MDB_txn *txn,
                                   size_t *n);
/* Two ID administrators (apply_admin_pair.c).  Kinds of pending request
 * in db admin_grant; the grant's key is the target alone. */
#define KYUFU_ADMIN_PAIR_SINCE 3u
enum {
    KYUFU_PAIR_GRANT = 0,      /* ROLE_ID_ADMIN added (param: the roles) */
    KYUFU_PAIR_PASSWORD = 'P', /* SetPassword reset (param 0) */
    KYUFU_PAIR_TOTP = 'T',     /* ResetTotp (param 0) */
    KYUFU_PAIR_UNLOCK = 'U',   /* UnlockStaff (param 0) */
    KYUFU_PAIR_STATUS = 'S',   /* SetStaffStatus (param: the status) */
    KYUFU_PAIR_ROLES = 'R',    /* SetStaffRoles of an ID administrator */
};
/* The rule for a request of `kind` on `target` (`what` names it in the
 * messages: the grant's "ID-administrator grant", the others' at most 16
 * bytes, "password reset", to which the messages add the account).  0 with *go set when it applies now (the only active ID
 * administrator, or the completion of another one's pending request: the
 * audit message says which); 0 with c->code FAILED_PRECONDITION
 * "pending: ..." and the request written (keep_on_reject); or a store
 * error. */
int kyufu_storage__two_admins(struct kyufu_storage__cmd *c,
                              const char *target, int kind, uint32_t param,
                              const char *what, bool *go);
/* two_admins when the cluster has the version-3 rule and `target` holds
 * ROLE_ID_ADMIN; otherwise *go = true at once. */
int kyufu_storage__admin_pair(struct kyufu_storage__cmd *c,
                              const Kyufu__V1__StaffAccount *target,
                              int kind, uint32_t param, const char *what,
                              bool *go);
/* Delete every pending request on `target` (PurgeStaff). */
int kyufu_storage__pending_drop(struct kyufu_storage__cmd *c,
                                const char *target);
/* Whether a db admin_grant entry is well-formed (the state check). */
bool kyufu_storage__pending_valid(const void *key, size_t key_len,
                                  const void *val, size_t val_len);
/* The whole-state check of the identity dbs (kyufu_storage__check_state):
 * every credential, session and index entry decodes, is keyed by its own
 * id and names an existing account in the right state; the index and the
 * sessions agree both ways. 0 or CORRUPT with the violation in errmsg. */
int kyufu_storage__check_identity(struct kyufu_storage *s, MDB_txn *txn,
                                  char *errmsg, size_t errmsg_len);

/* apply_version.c */
int kyufu_storage__record_versions(struct kyufu_storage__cmd *c);
int kyufu_storage__annotate(struct kyufu_storage__cmd *c);

/* ------------------------------------------------------------ versions
 * (apply_version.c; contract in storage.h "versions") */
/* The cluster version in txn: 1 when none is recorded. */
int kyufu_storage__cluster_version_get(struct kyufu_storage *s, MDB_txn *txn,
                                       uint32_t *version);
/* 0 when this build knows every command of the batch and every field in
 * them; NEWER with the first unknown one in errmsg. */
int kyufu_storage__check_known(const Kyufu__V1__CommandBatch *batch,
                               uint64_t index,
                               char *errmsg,
                               size_t errmsg_len);
/* The versions in txn into *out (out->voters malloc'ed); 0 or an error. */
int kyufu_storage__versions_read(struct kyufu_storage *s, MDB_txn *txn,
                                 struct kyufu_storage__versions *out);
/* Replace the cache with *v (taking its buffer). */
void kyufu_storage__versions_set(struct kyufu_storage *s,
                                 struct kyufu_storage__versions *v);
/* 0 when the cluster version in txn is one this build runs; NEWER with the
 * versions in errmsg (open, restore). */
int kyufu_storage__check_cluster_version(struct kyufu_storage *s,
                                         MDB_txn *txn,
                                         char *errmsg,
                                         size_t errmsg_len);

/* ------------------------------------------------------------ audit */
struct kyufu_storage__audit_in
{
    uint64_t raft_index;
    int64_t time_ms;
    const char *actor;
    const char *terminal;
    const char *command;
    const char *object;
    Kyufu__V1__Code outcome;
    const char *message;
    const char *client_id;
    uint64_t client_seq;
    char *const *objects; /* AuditRecord.objects (RecordAccess) */
    size_t n_objects;
};
int kyufu_storage__audit_append(struct kyufu_storage *s,
                                MDB_txn *txn,
                                const struct kyufu_storage__audit_in *in,
                                uint64_t *seq);
/* Check records (from, to] link and hash correctly; to is the head. */
/* The whole-state check of kyufu_storage_check_invariants (invariants 1-5
 * and the audit chain) over `txn`, read-only or write: restore runs it on
 * its own write transaction before committing a peer's snapshot.  Returns
 * 0, or CORRUPT with the violation in errmsg. */
int kyufu_storage__check_state(struct kyufu_storage *s,
                               MDB_txn *txn,
                               char *errmsg,
                               size_t errmsg_len);

int kyufu_storage__audit_verify_range(struct kyufu_storage *s,
                                      MDB_txn *txn,
                                      uint64_t after,
                                      uint64_t *count,
                                      char *errmsg,
                                      size_t errmsg_len);

/* ------------------------------------------------------------ sessions */
/* The owner of an entry (identity rules, storage.h "exactly-once bound to
 * the caller"): the actor that first used the key and the digest of its
 * command (all zero: any command, a SettleWrite's fence).  Entries written
 * before the identity rules have none (has_owner false). */
struct kyufu_storage__key_owner
{
    bool has_owner;
    char actor[KYUFU_ACTOR_BYTES_MAX + 1];
    uint8_t digest[32];
};
/* Who may reuse a stored key under the identity rules: OWN (the same
 * actor with the same command digest, or any command of a SettleWrite's
 * fence or when settle is set, or an entry without owner), OTHER_ACTOR or
 * OTHER_COMMAND.  The one judge for apply and kyufu_storage_key_use. */
enum kyufu_storage_key_use
kyufu_storage__owner_verdict(const struct kyufu_storage__key_owner *owner,
                             const char *actor, const uint8_t digest[32],
                             bool settle);
/* Looks up (client_id, seq): 0 with *result (the first CommandResult,
 * valid until the txn writes again) and its owner (owner may be NULL), or
 * NOTFOUND.  An entry older than the retention (judged by now_ms) reads as
 * NOTFOUND even before it is pruned, so the outcome does not depend on
 * pruning progress.  owned NULL: *result is the stored CommandResult part,
 * maybe sealed; else it is opened (seal.c) and *owned, when not NULL, is
 * the buffer *result points into (the caller frees it).  CORRUPT when it
 * fails authentication. */
int kyufu_storage__session_get_owned(struct kyufu_storage *s,
                                     MDB_txn *txn,
                                     const char *client_id,
                                     uint64_t seq,
                                     int64_t now_ms,
                                     MDB_val *result,
                                     struct kyufu_storage__key_owner *owner,
                                     uint8_t **owned);
/* Where the CommandResult part (the sealed part, with a CMK) of a stored
 * sessions value starts: 0 with *offset, or CORRUPT when it does not
 * parse (re-encryption rewrites only that part, apply_keys.c). */
int kyufu_storage__session_result_offset(const MDB_val *v, size_t *offset);
/* owner NULL: an entry without owner (the rules of version 1). */
int kyufu_storage__session_put(struct kyufu_storage *s, MDB_txn *txn,
                               const char *client_id, uint64_t seq,
                               int64_t time_ms,
                               const struct kyufu_storage__key_owner *owner,
                               const uint8_t *result, size_t len);
/* Remove at most KYUFU_SESSION_PRUNE_PER_COMMAND_MAX entries whose time is
 * at or before now_ms - KYUFU_SESSION_RETENTION_MS, raising the client's
 * floor (the highest sequence of it ever pruned) to each one removed. */
int kyufu_storage__session_prune(struct kyufu_storage *s, MDB_txn *txn,
                                 int64_t now_ms);
/* What the table knows of a key that session_get reads as absent:
 * NEVER: no entry and above the client's floor, so never applied (an
 * applied key keeps its entry until pruned, and pruning raises the floor);
 * EXPIRED: an entry past retention not yet pruned, or at/below the floor
 * (maybe applied, maybe not: the table cannot tell). */
enum kyufu_storage__key_state {
    KYUFU_KEY_NEVER = 1,
    KYUFU_KEY_EXPIRED = 2,
};
int kyufu_storage__session_absent_state(struct kyufu_storage *s,
                                        MDB_txn *txn,
                                        const char *client_id, uint64_t seq,
                                        enum kyufu_storage__key_state *state);

/* ------------------------------------------------------------ env */
/* A short read txn for the loop thread (queries, checks, the store's own
 * digest and audit walk).  It takes the store's reserved reader slot
 * (s->loop_txn, kept reset between uses: a reset txn pins no page and does
 * not count as open for map growth), so a reader table filled by snapshots
 * never fails the loop thread's reads, the post-commit checks of apply
 * included.  Nested use falls back to a txn of its own, which can then get
 * READERS_FULL.  End with kyufu_storage__read_end. */
int kyufu_storage__read_begin(struct kyufu_storage *s, MDB_txn **txn);
void kyufu_storage__read_end(struct kyufu_storage *s, MDB_txn *txn);
/* Grow the map (doubling, capped); MAP_FULL at the ceiling or when a
 * snapshot is outstanding.  No txn of this process may be open. */
int kyufu_storage__grow(struct kyufu_storage *s);
/* Grow ahead of need when more than 3/4 of the map is used. */
int kyufu_storage__grow_if_needed(struct kyufu_storage *s);
/* Close the environment and open it again (env.c), to give back the page
 * buffers LMDB keeps until close: every page a write transaction dirtied
 * stays in its heap for reuse (mdb.c mdb_page_free, the list me_dpages),
 * so after a restore, which rewrites the whole store in one transaction,
 * the process holds up to the store's size (LMDB's dirty-page limit,
 * 512 MiB) for nothing.  On the loop thread, with no txn of the loop
 * thread open.  With a snapshot open (any thread) it is deferred: 0, and
 * kyufu_storage_apply renews first once none is.  Waits for a sync in
 * progress on another thread.  An error leaves no environment: fatal
 * (IO, NOMEM; errmsg says which step), the node must stop. */
int kyufu_storage__env_renew(struct kyufu_storage *s, char *errmsg, size_t len);
/* IO with a message when a failed renew left no environment (the node is
 * stopping), else 0: checked first by the entry points that touch it
 * (apply, restore; read_begin, snapshot_begin and sync check it too). */
int kyufu_storage__env_gone(const struct kyufu_storage *s,
                            char *errmsg,
                            size_t len);
/* Invariant checks on the records a committed batch touched. */
void kyufu_storage__check_touched(struct kyufu_storage *s,
                                  const struct kyufu_storage__touched *t,
                                  uint64_t audit_seq_before);

#endif /* KYUFU_STORAGE_INTERNAL_H */
