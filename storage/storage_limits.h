/* kyufu storage limits.  Every bound the state machine enforces, in one
 * place, units last in the name, each with the reason for its value.
 * Relations between them are checked at compile time at the bottom. */
#ifndef KYUFU_STORAGE_LIMITS_H
#define KYUFU_STORAGE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Bumped on any change to a key or value layout (docs/storage.md); a store
 * or snapshot with another version is refused, never guessed at.
 * 2: session_floor (SettleWrite must know which keys were pruned; a store
 * written by 1 pruned sessions without recording it). */
#define KYUFU_STORAGE_SCHEMA_VERSION 2u

/* Initial LMDB map: the whole ceiling.  The map is virtual address space
 * only (the file grows page by page as LMDB writes), so a large map costs
 * nothing, while growing it needs every read txn of the process closed, and a
 * snapshot holds one for as long as it takes to serialize the state (tens of
 * seconds for a city): measured with chaos/bench/scale.c, a store that had to
 * grow during a snapshot of 1M households hit MAP_FULL and stopped the node.
 * Growth remains for operators who configure a smaller initial map. */
#ifndef KYUFU_SMALL_MAP
#define KYUFU_MAP_SIZE_BYTES_DEFAULT ((size_t)64 << 30)
#else
/* A build for valgrind (chaos/bench/callgrind-write: -DKYUFU_SMALL_MAP),
 * whose address space cannot hold a 64 GiB map: LMDB's open fails. */
#define KYUFU_MAP_SIZE_BYTES_DEFAULT ((size_t)1 << 30)
#endif
/* Ceiling of growth: far above a city's ledger (1M households ~ 1-2 GiB). */
#define KYUFU_MAP_SIZE_BYTES_MAX_DEFAULT ((size_t)64 << 30)
/* Named databases we open (18 with identity's), plus headroom. */
#define KYUFU_MAX_DBS 32u
/* Readers: the loop thread, one snapshot writer, tests; headroom. */
#define KYUFU_MAX_READERS 64u

/* One page of a list: bounds the memory and time of one read txn. */
#define KYUFU_LIST_PAGE_SIZE_MAX 1000u
/* Snapshot chunk: large enough to amortise a callback, small enough to be one
 * buffer the raft side copies without pressure. */
#define KYUFU_SNAPSHOT_CHUNK_BYTES_MAX ((size_t)4 << 20)
/* One snapshot key or value; LMDB's own key limit is 511 bytes and no record
 * we store approaches 1 MiB, so anything larger is corruption. */
#define KYUFU_SNAPSHOT_KEY_BYTES_MAX 511u
#define KYUFU_SNAPSHOT_VALUE_BYTES_MAX ((uint32_t)1 << 20)

/* How long the first result of an idempotency key is kept: a client retries
 * for minutes at most, a day covers any failover and operator pause. */
#ifndef KYUFU_SESSION_RETENTION_MS
#define KYUFU_SESSION_RETENTION_MS ((int64_t)24 * 60 * 60 * 1000)
#endif
/* Expired sessions removed per command: bounds apply time; at one command
 * per ms this still outpaces the arrival rate 8 to 1. */
#define KYUFU_SESSION_PRUNE_PER_COMMAND_MAX 8u

/* Header fields (docs/ledger-rules.md, step 1). */
#define KYUFU_ACTOR_BYTES_MAX 64u
#define KYUFU_TERMINAL_BYTES_MAX 64u
#define KYUFU_CLIENT_ID_BYTES_MAX 64u

/* Keys and text (docs/ledger-rules.md, field rules). */
#define KYUFU_PROGRAM_CODE_BYTES_MAX 32u
#define KYUFU_HOUSEHOLD_NO_BYTES_MAX 32u
#define KYUFU_STAFF_ID_BYTES_MAX 64u
#define KYUFU_NAME_BYTES_MAX 200u
#define KYUFU_ADDRESS_BYTES_MAX 400u
#define KYUFU_REASON_BYTES_MAX 400u
#define KYUFU_MEMBER_NAMES_MAX 32u
#define KYUFU_BATCH_APPLICATIONS_MAX 1000u
/* UpdateHousehold.update_mask: each updatable path at most once, so no valid
 * mask is longer than the path table (apply_household.c). */
#define KYUFU_UPDATE_MASK_PATHS_MAX 9u

/* Upgrades (docs/operations.md "Upgrades"): voters one RecordVersions
 * names (a Raft cluster of more than 7 voters gains nothing; 16 leaves
 * room), and the text of the test build's Annotate. */
#define KYUFU_VOTERS_MAX 16u
#define KYUFU_ANNOTATION_BYTES_MAX 200u
/* Nesting depth apply walks looking for fields this build does not know;
 * ledger.proto nests 3 deep (batch, command, body, record). */
#define KYUFU_KNOWN_DEPTH_MAX 8u

/* Money, in yen. */
#define KYUFU_UNIT_AMOUNT_YEN_MAX ((int64_t)10000000000)     /* 10^10 */
#define KYUFU_BUDGET_YEN_MAX ((int64_t)10000000000000)       /* 10^13 */
#define KYUFU_AMOUNT_UNIT_MULTIPLE_MAX 10

#define KYUFU_FISCAL_YEAR_MIN 2000
#define KYUFU_FISCAL_YEAR_MAX 2100

/* Object strings ("application/18446744073709551615") and messages. */
#define KYUFU_OBJECT_BYTES_MAX 96u
#define KYUFU_MESSAGE_BYTES_MAX 160u

_Static_assert(KYUFU_MAP_SIZE_BYTES_DEFAULT <= KYUFU_MAP_SIZE_BYTES_MAX_DEFAULT,
               "initial map must not exceed its ceiling");
_Static_assert(KYUFU_SNAPSHOT_VALUE_BYTES_MAX < KYUFU_SNAPSHOT_CHUNK_BYTES_MAX,
               "a record fits in one chunk");
_Static_assert(KYUFU_OBJECT_BYTES_MAX > 8 + KYUFU_STAFF_ID_BYTES_MAX,
               "object string holds staff/<id>");
_Static_assert(KYUFU_PROGRAM_CODE_BYTES_MAX + KYUFU_HOUSEHOLD_NO_BYTES_MAX +
                       16 <= 511,
               "index keys fit LMDB's key limit");

/* ------------------------------------------------------------ availability
 * The availability ledger (apply_availability.c, docs/sla.md). */
/* Heartbeat interval a leader may stamp: 10 ms is already 100 entries/s of
 * pure overhead; past a minute the windows it can see are too coarse. */
#define KYUFU_AVAIL_INTERVAL_MS_MIN 10u
#define KYUFU_AVAIL_INTERVAL_MS_MAX 60000u
/* A gap between stamped entries longer than this many intervals is a
 * write-unavailability window: one late heartbeat (a busy loop, an fsync)
 * is jitter, two missed ones are not. */
#define KYUFU_AVAIL_GAP_INTERVALS 2u
/* A FailoverIntent names the cause of the next leader change only if that
 * change comes within this time: a transfer that failed long ago says
 * nothing about a crash now (the hand-over itself is bounded far below). */
#define KYUFU_AVAIL_INTENT_MS_MAX 30000
/* Detail (failovers, windows) kept this long, then only the day summaries:
 * a quarter covers a monthly report and the one before it. */
#define KYUFU_AVAIL_DETAIL_DAYS 92
/* Day summaries kept: ten years of ~40-byte records is ~150 KB. */
#define KYUFU_AVAIL_SUMMARY_DAYS 3660
/* Detail records kept whatever their age: a flapping cluster must not grow
 * the ledger without bound (oldest detail goes first, its days remain). */
#define KYUFU_AVAIL_DETAIL_RECORDS_MAX 20000u
/* Records a heartbeat removes at most (bounded work per entry). */
#define KYUFU_AVAIL_COMPACT_PER_ENTRY_MAX 16u
/* A GetAvailability range at most this long (one report reads it all). */
#define KYUFU_AVAIL_QUERY_DAYS_MAX 400
/* Detail records one report returns at most, of each kind. */
#define KYUFU_AVAIL_REPORT_ITEMS_MAX 5000u
/* Drill ids: printable names of a round, in the audit object too. */
#define KYUFU_AVAIL_DRILL_ID_BYTES_MAX 64u
_Static_assert(KYUFU_AVAIL_INTERVAL_MS_MIN * KYUFU_AVAIL_GAP_INTERVALS <
                   KYUFU_AVAIL_INTENT_MS_MAX,
               "an intent outlives a gap of the shortest interval");
_Static_assert(KYUFU_AVAIL_QUERY_DAYS_MAX <= KYUFU_AVAIL_SUMMARY_DAYS,
               "a report range fits the kept summaries");

/* ------------------------------------------------------------ identity
 * Credentials, sign-in sessions, access records (docs/identity.md). */
/* PasswordHash: 16-byte salts are the design (api/pwhash.h); up to 64
 * leaves room for a longer one; PBKDF2-HMAC-SHA256 gives 32 bytes. */
#define KYUFU_PW_SALT_BYTES_MIN 16u
#define KYUFU_PW_SALT_BYTES_MAX 64u
#define KYUFU_PW_HASH_BYTES 32u
/* Iterations apply accepts: the node measures and sets them
 * (600,000 today); above 100M one hash would take minutes. */
#define KYUFU_PW_ITERATIONS_MAX 100000000u
/* Previous hashes kept (policy default 5; a larger policy is capped). */
#define KYUFU_PW_HISTORY_MAX 24u
/* TOTP secrets: RFC 6238 with SHA-1 uses 20 bytes; 16..64 accepted. */
#define KYUFU_TOTP_SECRET_BYTES_MIN 16u
#define KYUFU_TOTP_SECRET_BYTES_MAX 64u
/* SHA-256 of a token or certificate. */
#define KYUFU_SHA256_BYTES 32u
/* Open sessions one account may hold: a person has a few terminals; an
 * absolute expiry of hours keeps honest use far below. */
#define KYUFU_AUTH_SESSIONS_PER_STAFF_MAX 32u
/* Sessions one TouchSessions names (one leader tick's uses). */
#define KYUFU_TOUCH_SESSIONS_MAX 4096u
/* Objects one RecordAccess names (a page of a list, at most 1000). */
#define KYUFU_ACCESS_OBJECTS_MAX 1000u
/* RecordAccess text: the method path, the peer, the certificate subject,
 * the session close reason and the sign-in failure reason. */
#define KYUFU_ACCESS_METHOD_BYTES_MAX 128u
#define KYUFU_ACCESS_PEER_BYTES_MAX 64u
#define KYUFU_ACCESS_CERT_BYTES_MAX 256u
#define KYUFU_AUTH_REASON_BYTES_MAX 64u
/* How long a pending two-administrator request waits for its second ID
 * administrator (cluster version >= 3): a working day and a night, so a
 * colleague confirms it the same or the next morning; older, a request
 * no longer counts, so a forgotten one is not completed weeks later by
 * surprise (the repeat records a new one). */
#define KYUFU_ADMIN_PENDING_MS ((int64_t)24 * 60 * 60 * 1000)
/* How long a pending decommission waits for its second operator
 * (apply_decommission.c): an hour, the length of the meeting in which two
 * operators decommission a cluster together; a request left over from
 * another day must not be approved by surprise. */
#define KYUFU_DECOMMISSION_PENDING_MS ((int64_t)60 * 60 * 1000)
/* Sessions and accounts one cleanup query returns at most. */
#define KYUFU_IDENTITY_QUERY_MAX 1000u
_Static_assert(KYUFU_STAFF_ID_BYTES_MAX + 1 + KYUFU_SHA256_BYTES <= 511,
               "session index keys fit LMDB's key limit");
_Static_assert(KYUFU_ACCESS_OBJECTS_MAX <= KYUFU_LIST_PAGE_SIZE_MAX,
               "an access record names at most a page");
/* Data-key versions whose subkeys the store caches (keyring.c): the active
 * one and the few a rotation still re-encrypts; a miss costs four KBKDF
 * derivations, not an error. */
#define KYUFU_KEYS_CACHED_MAX 4u
/* The most stored values one Reencrypt command looks at (apply_keys.c):
 * bounds the work of one entry as the batch limits bound a write's. */
#define KYUFU_REENCRYPT_COUNT_MAX 2000u

#endif /* KYUFU_STORAGE_LIMITS_H */
