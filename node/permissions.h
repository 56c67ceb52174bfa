/* The permission table: who may call each RPC kyufud serves (issue 8;
 * docs/identity.md "Permissions").
 *
 * One row per method of kyufu.v1.Ledger, kyufu.v1.Cluster and kyufu.v1.Auth
 * (grpc.health is answered by the API server before any handler and is not
 * in it).  A row names a set of roles (any one of them suffices) and any of:
 *   PUBLIC     anyone, signed in or not (Auth/SignIn alone);
 *   SIGNED_IN  any account with a session, setup-only sessions included
 *              (WhoAmI, SignOut, ChangePassword, EnrollTotp, ConfirmTotp);
 *   LOCAL      a caller on this node's own host, session or not
 *              (Cluster/PowerEvent: upsmon's NOTIFYCMD, docs/power.md);
 *   NODE       a peer node's own call, with its node certificate and no
 *              session (Cluster/Status: the power survey, the SLA probes,
 *              the version round).
 * A setup-only session may call SIGNED_IN (and PUBLIC) methods only,
 * whatever its roles.  A method without a row is refused: service.c checks
 * at start that every method it serves has one.
 *
 * Everything here is pure (no node, no I/O): tests/node/test_permissions.c
 * runs every method against every kind of caller. */
#ifndef KYUFU_NODE_PERMISSIONS_H
#define KYUFU_NODE_PERMISSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

enum {
    KYUFU_PERM_PUBLIC = 1u << 0,
    KYUFU_PERM_SIGNED_IN = 1u << 1,
    KYUFU_PERM_LOCAL = 1u << 2,
    KYUFU_PERM_NODE = 1u << 3,
};

struct kyufu_node_permission
{
    const char *path;  /* "/kyufu.v1.Ledger/CreateProgram" */
    uint32_t roles;    /* 1 << Role: any one of them may call */
    unsigned who;      /* KYUFU_PERM_* */
};

/* The row of `path`, or NULL when the table has none (then every caller is
 * refused).  The row lives as long as the program. */
const struct kyufu_node_permission *kyufu_node__permission(const char *path);

/* The table's rows, for checks and tests: count and row i (i < count). */
size_t kyufu_node__permissions_count(void);
const struct kyufu_node_permission *kyufu_node__permission_at(size_t i);

/* May principal `p` call `path`?  own_host: the connection comes from this
 * node's host (kyufu_node__from_own_host; only LOCAL rows look at it).
 * Returns KYUFU_GRPC_OK; KYUFU_GRPC_UNAUTHENTICATED when the method needs a
 * session and `p` is nobody; KYUFU_GRPC_PERMISSION_DENIED otherwise (no
 * row, the wrong roles, a setup-only session, a node, another host).  msg
 * (len bytes, truncated) says why, naming the method and the role missing;
 * it never names a token. */
int kyufu_node__permit(const char *path,
                       const struct kyufu_principal *p,
                       bool own_host,
                       char *msg,
                       size_t len);

/* Whether `peer` ("ip:port" as the API server writes it) is this host:
 * 127.0.0.1, ::1 or ::ffff:127.0.0.1, or the host of `api_address` (this
 * node's own "host:port"). */
bool kyufu_node__from_own_host(const char *api_address, const char *peer);

/* "clerk or approver" for a roles mask, into buf (len bytes); returns buf.
 * "no role" for 0. */
const char *kyufu_node__roles_text(uint32_t roles, char *buf, size_t len);

#endif /* KYUFU_NODE_PERMISSIONS_H */
