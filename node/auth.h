/* Who is calling (issue 8; docs/identity.md).
 *
 * Every call but Health resolves to a principal before the permission
 * table (permissions.c) is consulted: a signed-in account (from the
 * `authorization: Bearer <64 hex>` metadata, its session looked up in this
 * node's store by the token's SHA-256, the connection's client certificate
 * compared with the one the session was issued on), a peer node (its
 * certificate names `kyufu-node:N`; on a forwarded call it may carry the
 * principal a follower authenticated, as `kyufu-principal` and
 * `kyufu-session` metadata; or only the session's hash, when the follower
 * does not hold that session yet and asks the leader to check it), or
 * nobody.
 *
 * The token, its hash and any password never reach a log line, an error
 * message, a metric or an audit record. */
#ifndef KYUFU_NODE_AUTH_H
#define KYUFU_NODE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc.h"
#include "storage_limits.h"

struct kyufu_node;

enum kyufu_principal_kind {
    KYUFU_PRINCIPAL_NONE = 0,  /* no (valid) token, not a node */
    KYUFU_PRINCIPAL_STAFF,     /* a session's account */
    KYUFU_PRINCIPAL_NODE,      /* a peer node's own call (no session) */
};

struct kyufu_principal
{
    enum kyufu_principal_kind kind;
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1]; /* STAFF */
    uint32_t roles_mask;       /* STAFF: 1 << Role, as stored */
    bool setup_only;           /* STAFF: only the setup methods */
    uint64_t session_id;       /* STAFF: AuthSession.id */
    /* STAFF: the session's terminal (its client certificate's subject CN),
     * the terminal of every command the principal makes. */
    char terminal[KYUFU_TERMINAL_BYTES_MAX + 1];
    uint8_t token_hash[32];    /* STAFF: the session's key */
    /* STAFF: when the session ends, as checked (ms since the epoch): idle
     * from this use, and its absolute limit (WhoAmI answers them). */
    int64_t idle_expires_ms;
    int64_t expires_ms;
    uint64_t node_id;          /* NODE, or the node that forwarded a STAFF */
    /* NONE refused only because this node's store does not hold the
     * session (yet: a follower may lag the sign-in that opened it):
     * token_hash is set, and a follower forwards the call for the leader
     * to check (service.c), never serving it itself. */
    bool unknown_here;
};

/* Resolve the caller of `call` into *p.  Returns KYUFU_GRPC_OK (p->kind
 * NONE when the call carries no token and does not come from a node), or
 * KYUFU_GRPC_UNAUTHENTICATED with a message in msg (a token that is
 * malformed, unknown, expired, closed, or presented over another client
 * certificate; a forwarded principal from a connection that is not a
 * node's), never naming the token; or KYUFU_GRPC_UNAVAILABLE when the
 * session cannot be read now: a store error, a leader that has not yet
 * applied its log up to where it stood when it first looked in its term
 * (as after an election or a restart that replays the log: its store may
 * lag any session's sign-in, sign-out or use), or a session this node
 * does not hold on a node that knows no leader: p->unknown_here is set
 * then too, so a follower that knows the leader still forwards the call
 * and a leader waits for its apply. */
int kyufu_node__authenticate(struct kyufu_node *n,
                             const struct kyufu_grpc_call *call,
                             struct kyufu_principal *p,
                             char *msg,
                             size_t len);

#endif /* KYUFU_NODE_AUTH_H */
