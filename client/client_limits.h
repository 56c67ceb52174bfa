/* libkyufu and kyufuctl limits: every bound of the client, units last in the
 * name, each with its reason.  (Named client_limits.h, not limits.h, so this
 * folder on an include path never shadows the system <limits.h>.) */
#ifndef KYUFU_CLIENT_LIMITS_H
#define KYUFU_CLIENT_LIMITS_H

/* A cluster has three voters; room for growth and for a spare seed list. */
#define KYUFU_CLIENT_ENDPOINTS_MAX 16u
/* host:port, with a DNS name of at most 253 bytes plus port and brackets. */
#define KYUFU_CLIENT_ENDPOINT_BYTES_MAX 270u
/* IdempotencyKey.client_id is 1..64 bytes on the server. */
#define KYUFU_CLIENT_ID_BYTES_MAX 64u
/* Random part of a generated client id: 128 bits, hex-encoded (32 chars). */
#define KYUFU_CLIENT_ID_RANDOM_BYTES 16u
/* RequestHeader.actor is a staff_id, [a-z0-9._-] 1..64 on the server. */
#define KYUFU_CLIENT_ACTOR_BYTES_MAX 64u
/* RequestHeader.terminal is 0..64 bytes on the server. */
#define KYUFU_CLIENT_TERMINAL_BYTES_MAX 64u

/* Default overall deadline of one call, retries included: covers one
 * election (about 2 s with a 1000 ms election timeout, FACTS.md) twice. */
#define KYUFU_CLIENT_DEADLINE_MS_DEFAULT 5000u
/* No call may wait longer than this: an operator's command returns. */
#define KYUFU_CLIENT_DEADLINE_MS_MAX 600000u
/* One attempt against one node: long enough for a commit during a slow
 * fsync stall (~200 ms seen), short enough that a hung node leaves time to
 * try the others inside the default deadline. */
#define KYUFU_CLIENT_ATTEMPT_MS_DEFAULT 2000u
/* First retry backoff after a failed attempt; doubles up to the max.  A
 * redirect to a named leader is retried at once, without backoff. */
#define KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT 50u
/* Backoff cap: about one heartbeat-and-a-half of an election in progress. */
#define KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT 1000u
/* Attempts of one call: a guard against a loop, not the real bound (the
 * deadline is); 3 nodes x a few rounds of an election. */
#define KYUFU_CLIENT_ATTEMPTS_MAX 64u

/* The persisted session file reserves sequence numbers in blocks, so a write
 * costs one fsync per block, not per call; a crash skips the rest of the
 * block (gaps are harmless, reuse would not be). */
#define KYUFU_CLIENT_SEQUENCE_BLOCK 64u

/* One response message: the server's gRPC message limit (4 MiB, the
 * standard gRPC default) bounds it; the client refuses larger. */
#define KYUFU_CLIENT_MESSAGE_BYTES_MAX (4u << 20)
/* Error detail returned to the caller (gRPC grpc-message, truncated). */
#define KYUFU_CLIENT_ERRMSG_BYTES 256u

/* kyufuctl: records one `list` follows through pages before it stops (a
 * city's ledger list is bounded by the operator's patience and memory). */
#define KYUFU_CTL_LIST_RECORDS_MAX 100000u
/* kyufuctl cluster init: nodes of a new cluster. */
#define KYUFU_CTL_INIT_NODES_MAX 9u
/* Validity of the generated CA (replaced only with a new cluster). */
#define KYUFU_CTL_CA_VALID_DAYS 3650u
/* Validity of node and client certificates: CA/Browser-Forum-style 825
 * days, so rotation is a yearly routine rather than a forgotten event. */
#define KYUFU_CTL_LEAF_VALID_DAYS 825u

_Static_assert(KYUFU_CLIENT_ATTEMPT_MS_DEFAULT <= KYUFU_CLIENT_DEADLINE_MS_DEFAULT,
               "one attempt fits in the default deadline");
_Static_assert(KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT <= KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT,
               "backoff starts below its cap");
_Static_assert(KYUFU_CLIENT_ID_RANDOM_BYTES * 2 + 8 <= KYUFU_CLIENT_ID_BYTES_MAX,
               "a generated client id (prefix + hex) fits the server's limit");

#endif
