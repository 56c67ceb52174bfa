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
/* A session token: 32 random bytes as 64 hex digits (docs/identity.md
 * "Sessions"; SignInResponse.token). */
#define KYUFU_CLIENT_TOKEN_BYTES 64u
/* RequestHeader.terminal is 0..64 bytes on the server. */
#define KYUFU_CLIENT_TERMINAL_BYTES_MAX 64u

/* Default overall deadline of one call, retries included: covers one
 * election (about 2 s with a 1000 ms election timeout, docs/measured.md) twice. */
#define KYUFU_CLIENT_DEADLINE_MS_DEFAULT 5000u
/* No call may wait longer than this: an operator's command returns. */
#define KYUFU_CLIENT_DEADLINE_MS_MAX 600000u
/* One attempt against one node: long enough for a commit during a slow
 * fsync stall (~200 ms seen), short enough that a hung node leaves time to
 * try the others inside the default deadline. */
#define KYUFU_CLIENT_ATTEMPT_MS_DEFAULT 2000u
/* Retry backoff while no leader is known (an election in progress, or a
 * follower that cannot reach the dead leader): decorrelated jitter
 * (client/backoff.h), each wait uniform in [initial, 3 x previous], capped.
 * A redirect to a named leader is not delayed at all (client.c).
 *
 * Initial 10 ms: an election ends at an unknown instant, and a client can
 * only see it on its next attempt, so the first waits are short; 10 ms is
 * still ten loopback round trips, so a client does not spin.  The first
 * waits are 10..30 ms. */
#define KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT 10u
/* Cap 250 ms: what a client adds to an election is up to one wait (the
 * election ends during a wait; docs/failover.md: with a 1000 ms cap, doubling
 * from 50 ms, the first acknowledged write came up to 1.9 s after the new
 * leader was elected).  At the cap a waiting client sends 4-12 attempts a
 * second (waits uniform in [10, 250] ms), each a cheap UNAVAILABLE: a few
 * hundred such clients stay far below one node's call rate. */
#define KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT 250u
/* Client hedge (docs/failover.md "Client hedge"): an attempt that has had no
 * answer for hedge_ms is sent again, same bytes and so the same idempotency
 * key, to the next node, and the first final answer wins.  A silent leader
 * (SIGSTOP, dropped packets) is replaced after about one election timeout
 * plus its randomisation; kyufud's default election timeout is 1000 ms and
 * elections were measured at ~1.4 s after a SIGSTOP, so 1.5 x 1000 ms: by
 * then the other nodes usually know the new leader, and a healthy but slow
 * leader (fsync stalls of ~200 ms, p99 under 0.5 s at 1,024 calls in
 * flight) is far from being hedged needlessly.  A client that knows its
 * cluster's election timeout sets 1.5 x it.  0 turns hedging off. */
#define KYUFU_CLIENT_HEDGE_MS_DEFAULT 1500u
/* Below 50 ms a hedge would duplicate ordinary calls (a commit under load
 * takes tens of ms), doubling the cluster's work for nothing. */
#define KYUFU_CLIENT_HEDGE_MS_MIN 50u

/* Attempts of one call: a guard against a loop (backoff_ms_max = 0), not the
 * real bound (the deadline is).  Waits at the cap average ~130 ms, so 256
 * attempts last about half a minute: longer than any election, so a call
 * with a long deadline is not cut short while the cluster elects. */
#define KYUFU_CLIENT_ATTEMPTS_MAX 256u

/* The persisted session file reserves sequence numbers in blocks, so a write
 * costs one fsync per block, not per call; a crash skips the rest of the
 * block (gaps are harmless, reuse would not be). */
#define KYUFU_CLIENT_SEQUENCE_BLOCK 64u

/* One response message: the server's gRPC message limit (4 MiB, the
 * standard gRPC default) bounds it; the client refuses larger. */
#define KYUFU_CLIENT_MESSAGE_BYTES_MAX (4u << 20)
/* Error detail returned to the caller (gRPC grpc-message, truncated). */
#define KYUFU_CLIENT_ERRMSG_BYTES 256u

/* kyufuctl cluster status: how long each node is given to answer when the
 * probes run in parallel (without --digest).  A live node answers Status
 * from memory in a few ms even under load (~200 ms fsync stalls seen); a
 * stopped or partitioned node never does, and the operator waits for the
 * slowest probe, so 1 s.  --node-timeout-ms overrides it. */
#define KYUFU_CTL_STATUS_NODE_MS_DEFAULT 1000u

/* kyufuctl: records one `list` follows through pages before it stops (a
 * city's ledger list is bounded by the operator's patience and memory). */
#define KYUFU_CTL_LIST_RECORDS_MAX 100000u
/* kyufuctl list: records asked for per page (the server caps it too); a
 * page of 1000 records is well under the gRPC message limit. */
#define KYUFU_CTL_LIST_PAGE_RECORDS 1000u
/* kyufuctl list --page-token: longer than any token the server makes. */
#define KYUFU_CTL_PAGE_TOKEN_BYTES_MAX 1024u
/* kyufuctl: the office's time zone unless --tz or `time_zone =` says
 * otherwise (the ledger serves a Japanese city). */
#define KYUFU_CTL_TZ_DEFAULT "Asia/Tokyo"
/* A zone name (tzdata's longest is 32: America/Argentina/ComodRivadavia). */
#define KYUFU_CTL_TZ_BYTES_MAX 64u
#define KYUFU_CLIENT_TIME_ZONE_BYTES_MAX KYUFU_CTL_TZ_BYTES_MAX
/* The repeat command kyufuctl prints for a write of unknown outcome (its
 * whole command line, quoted); a longer one is not printed, the key is. */
#define KYUFU_CTL_REPEAT_BYTES_MAX 8192u
/* kyufuctl table: widest column in display columns (a longer cell is cut
 * with an ellipsis; `get` and --json show it whole). */
#define KYUFU_CTL_COLUMN_WIDTH_MAX 40u
/* kyufuctl login/passwd: a password as typed or read from a file; the
 * server's bound (api/pwhash.h KYUFU_PASSWORD_BYTES_MAX, 256). */
#define KYUFU_CTL_PASSWORD_BYTES_MAX 256u
/* kyufuctl login: a TOTP code is 6 digits (RFC 6238 as the node checks). */
#define KYUFU_CTL_TOTP_DIGITS 6u
/* kyufuctl login, passwd, totp, logout, whoami: the deadline of one Auth
 * call unless --deadline-ms: a password change checks the new password
 * against the last 5 hashes (about 0.8 s of PBKDF2 on an idle node,
 * docs/identity.md; seconds on a loaded one), and such a call is sent
 * once (libkyufu never repeats an Auth call that may have been done). */
#define KYUFU_CTL_AUTH_DEADLINE_MS 30000u
/* kyufuctl login: wrong answers to one question before giving up (a
 * mistyped confirmation, a code typed too late). */
#define KYUFU_CTL_ASK_TRIES 3u
/* kyufuctl totp enroll: the QR code's quiet zone in modules (ISO/IEC
 * 18004 asks for 4; a phone camera needs it to find the code). */
#define KYUFU_CTL_QR_QUIET_MODULES 4u
/* kyufuctl cluster init: nodes of a new cluster. */
#define KYUFU_CTL_INIT_NODES_MAX 9u
/* kyufuctl cluster init --etc-dir / --state-dir: a path as it will be on
 * the host; with "key = " and "/node.key" it stays well inside kyufud's
 * 198-byte config lines (node/config.c). */
#define KYUFU_CTL_INIT_HOST_PATH_BYTES_MAX 128u
/* Validity of the generated CA (replaced only with a new cluster). */
#define KYUFU_CTL_CA_VALID_DAYS 3650u
/* Validity of node and client certificates: CA/Browser-Forum-style 825
 * days, so rotation is a yearly routine rather than a forgotten event. */
#define KYUFU_CTL_LEAF_VALID_DAYS 825u
/* The CA key's passphrase (ctl_pki.c): at least 12 bytes, the length the
 * password policy asks of people (docs/identity.md); at most 1023, far
 * beyond any typed one, so a line read never truncates it. */
#define KYUFU_CTL_CA_PASSPHRASE_BYTES_MIN 12u
#define KYUFU_CTL_CA_PASSPHRASE_BYTES_MAX 1023u
/* PBKDF2-HMAC-SHA256 iterations deriving the CA key's encryption key from
 * its passphrase: the password hashes' count (api/pwhash.h, measured at
 * about 0.13 s on the project's machine: docs/identity.md), once per
 * command that signs. */
#define KYUFU_CTL_CA_KEY_PBKDF2_ITERATIONS 600000
/* A CRL's nextUpdate: 30 days after it is written.  Nodes still enforce
 * one past it (and warn): `kyufuctl terminal crl` writes a fresh one. */
#define KYUFU_CTL_CRL_VALID_DAYS 30u
/* A CRL file kyufuctl copies: about 40 bytes a revoked certificate, so
 * room for some 25,000 revocations. */
#define KYUFU_CTL_CRL_BYTES_MAX (1024u * 1024u)
/* Terminal names and operator ids in the registry: letters, digits, '.',
 * '_', '-', starting with a letter or digit (a certificate CN, a file
 * name and a CSV field that needs no quoting). */
#define KYUFU_CTL_TERMINAL_NAME_BYTES_MAX 64u
/* kyufuctl terminal revoke --reason: printable text (the registry, CSV). */
#define KYUFU_CTL_REVOKE_REASON_BYTES_MAX 200u
/* kyufuctl node new --id: kyufud's own bound (node/limits.h
 * KYUFU_NODE_ID_MAX). */
#define KYUFU_CTL_NODE_ID_MAX 1000000u
/* cluster add-node / replace-node: how long the call waits beyond the
 * catch-up bound (raft-glue/glue_limits.h KYUFU_JOIN_CATCH_UP_MS_*) for the
 * promotion: libraft's catch-up round and a configuration entry, a few
 * election timeouts. */
#define KYUFU_CTL_PROMOTE_MS 30000u
/* remove-node, and the hand-over inside replace-node, unless --deadline-ms:
 * one configuration entry or a leadership transfer (a few election
 * timeouts), with room for a loaded machine; sent as one attempt. */
#define KYUFU_CTL_MEMBER_CHANGE_MS 60000u

_Static_assert(KYUFU_CLIENT_ATTEMPT_MS_DEFAULT <= KYUFU_CLIENT_DEADLINE_MS_DEFAULT,
               "one attempt fits in the default deadline");
_Static_assert(KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT <= KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT,
               "backoff starts below its cap");
_Static_assert(KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT <= KYUFU_CLIENT_ATTEMPT_MS_DEFAULT / 4,
               "a backoff wait is small next to an attempt");
_Static_assert(KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT < KYUFU_CLIENT_DEADLINE_MS_DEFAULT / 10,
               "the default deadline holds many retries");
_Static_assert(KYUFU_CLIENT_ENDPOINTS_MAX <= 32,
               "client.c keeps the endpoints of a redirect chain in a uint32_t");
_Static_assert(KYUFU_CLIENT_ID_RANDOM_BYTES * 2 + 8 <= KYUFU_CLIENT_ID_BYTES_MAX,
               "a generated client id (prefix + hex) fits the server's limit");

#endif
