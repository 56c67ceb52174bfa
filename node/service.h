/* The method table of kyufud (service.c) and the per-kind handlers
 * (service_ledger.c, service_read.c, service_cluster.c).
 *
 * Every method of kyufu.v1.Ledger and kyufu.v1.Cluster has one row: its
 * path, the request's protobuf-c descriptor and a kind:
 *   WRITE     unpack -> Command (header from RequestHeader, time stamped by
 *             the leader) -> kyufu_glue_propose -> WriteResponse; on a
 *             follower the original bytes are forwarded to the leader.
 *   READ      unpack -> linearizable (leader, after a barrier; followers
 *             forward) or ReadOptions.stale (here, now) -> storage query.
 *   STATUS    this node's status, never forwarded.
 *   TRANSFER  on the leader (forwarded otherwise).
 *   SETTLE    SettleWrite: a WRITE whose key must be given (checked before
 *             Raft) and whose answer is SettleWriteResponse whatever the
 *             key's first result was (service_settle.c).
 */
#ifndef KYUFU_NODE_SERVICE_H
#define KYUFU_NODE_SERVICE_H

#include <protobuf-c/protobuf-c.h>

#include "kyufu/v1/service.pb-c.h"

#include "node.h"

enum kyufu_node_method_kind {
    KYUFU_NODE_WRITE,
    KYUFU_NODE_READ,
    KYUFU_NODE_STATUS,
    KYUFU_NODE_TRANSFER,
    KYUFU_NODE_POWER_EVENT,
    KYUFU_NODE_SETTLE,
    KYUFU_NODE_ADD_NODE,    /* membership (service_membership.c) */
    KYUFU_NODE_REMOVE_NODE,
    KYUFU_NODE_GET_AVAILABILITY, /* this node's store (availability.c) */
    KYUFU_NODE_DRILL,            /* on the leader, if allowed (availability.c) */
    KYUFU_NODE_CREATE_BACKUP,    /* this node, off the loop (service_backup.c) */
    KYUFU_NODE_AUTH,             /* identity: the Auth service (auth_service.c) */
    KYUFU_NODE_REPORT_REFUSALS,  /* a follower's refusals (refusal_report.c) */
    KYUFU_NODE_FETCH_CLUSTER_KEY, /* a joiner's cluster key (service_keys.c) */
    KYUFU_NODE_SCRUB_DIGESTS,    /* a voter's scrub results (scrub.c) */
    KYUFU_NODE_ERASE_NODE,       /* decommissioning: this node (decommission.c) */
    KYUFU_NODE_KEY_STATUS,       /* this node's store, never forwarded
                                    (keys_rotate.c) */
};

/* A WRITE method's typed row (service.c WRITE_DEF, one per method, as
 * storage/apply.c's command_def): the request type
 * Kyufu__V1__<Rpc>Request {header = 1; command = 2} and the Command body it
 * becomes.  The accessors are generated per method with the request's own
 * type, so the compiler checks that the request's command and the Command
 * member it is put in have the same type; kyufu_node__methods checks at
 * start that `body_case` is that member's field number. */
struct kyufu_node_write_def
{
    const ProtobufCMessageDescriptor *request;
    Kyufu__V1__Command__BodyCase body_case;
    const char *field; /* the Command member, "create_program" */
    /* The request's header (NULL when absent); the request must be of
     * `request`'s type (asserted). */
    const Kyufu__V1__RequestHeader *(*header)(const ProtobufCMessage *req);
    /* Put the request's command in `cmd` as its body (borrowed from the
     * request); false when the request has none (cmd unchanged). */
    bool (*body)(const ProtobufCMessage *req, Kyufu__V1__Command *cmd);
};

struct kyufu_node_method
{
    const char *path;
    enum kyufu_node_method_kind kind;
    const ProtobufCMessageDescriptor *request;
    /* WRITE: the typed row above; NULL for every other kind. */
    const struct kyufu_node_write_def *write;
    /* READ: the query to run on the store (service_read.c). */
    void (*read)(struct kyufu_node_call *c);
};

void kyufu_node__write(struct kyufu_node_call *c);
void kyufu_node__read(struct kyufu_node_call *c);
void kyufu_node__status(struct kyufu_node_call *c);
void kyufu_node__transfer(struct kyufu_node_call *c);
void kyufu_node__power_event_call(struct kyufu_node_call *c);
void kyufu_node__settle(struct kyufu_node_call *c);

/* Follower refusals (refusal_report.c): on the leader, record a member
 * node's batch of refusal records. */
void kyufu_node__report_refusals(struct kyufu_node_call *c);
/* NodeInternal/FetchClusterKey (service_keys.c). */
void kyufu_node__fetch_cluster_key(struct kyufu_node_call *c);

/* Membership (service_membership.c, docs/operations.md "Replacing a
 * node"). */
void kyufu_node__add_node(struct kyufu_node_call *c);
void kyufu_node__remove_node(struct kyufu_node_call *c);

/* The Raft configuration as this node knows it, as NodeStatus.members:
 * storage for the answer, filled by kyufu_node__members (pointers into
 * itself: valid while it lives). */
struct kyufu_node_members
{
    struct kyufu_glue_member g[KYUFU_NODE_CLUSTER_SIZE_MAX];
    Kyufu__V1__Member m[KYUFU_NODE_CLUSTER_SIZE_MAX];
    Kyufu__V1__Member *p[KYUFU_NODE_CLUSTER_SIZE_MAX];
    size_t n;
    const char *own_role; /* this node's role, "" when not a member */
};
void kyufu_node__members(struct kyufu_node *n, struct kyufu_node_members *out);
/* Whether `id` is a voter in the Raft configuration this node knows. */
bool kyufu_node__is_voter(struct kyufu_node *n, uint64_t id);
/* Whether `id` is in the Raft configuration this node knows, in any role
 * (voter, standby, spare); false before the glue runs. */
bool kyufu_node__is_member(struct kyufu_node *n, uint64_t id);

/* On the leader: propose `cmd`, whose body the caller has set (borrowed
 * until this returns), with a header made here: the call's principal as
 * actor (c->principal, a signed-in account), the request's header (terminal,
 * key; NULL for none: apply rejects and audits it) and this leader's time
 * (cmd->header is ignored; `cmd` is not changed).  `cb` fires as for
 * kyufu_glue_propose, with the result unpacked.  Answers the call itself when the proposal cannot
 * start (forwards it if leadership was just lost), and refuses, before
 * Raft: INVALID_ARGUMENT a key whose client id starts with kyufud- or
 * kyufu-node-, the nodes' own (docs/api.md); PERMISSION_DENIED a header
 * whose actor is not empty and not the principal's, or a key already used
 * by another account; INVALID_ARGUMENT a key already used (by this account)
 * for another command (SettleWrite excepted: it asks about its key);
 * FAILED_PRECONDITION a body newer than the cluster version. */
void kyufu_node__propose(struct kyufu_node_call *c,
                         const Kyufu__V1__RequestHeader *rh,
                         const Kyufu__V1__Command *cmd,
                         kyufu_glue_propose_cb cb);
/* Answer a call whose proposal failed (status != 0): RESOURCE_EXHAUSTED for
 * TOOBIG, else UNAVAILABLE; a fatal status stops the node. */
void kyufu_node__proposal_failed(struct kyufu_node_call *c, int status);

/* Roles at the API boundary (service_roles.c).  roles_in: for the bodies
 * CreateStaff and SetStaffRoles of `cmd` (others pass), check the request's
 * role list and replace it by roles_mask in place; -1 with `why` (a
 * message for INVALID_ARGUMENT) if the list or a client-set mask is
 * refused.  roles_out: fill a record's role list from its mask and clear
 * the mask (the record must have been unpacked with the default allocator);
 * -1 when out of memory.  NULL passes. */
int kyufu_node__roles_in(Kyufu__V1__Command *cmd, char *why, size_t len);
int kyufu_node__roles_out(Kyufu__V1__StaffAccount *a);

/* Read queries (service_read.c), run after the barrier or at once. */
void kyufu_node__get_program(struct kyufu_node_call *c);
void kyufu_node__get_household(struct kyufu_node_call *c);
void kyufu_node__get_application(struct kyufu_node_call *c);
void kyufu_node__get_batch(struct kyufu_node_call *c);
void kyufu_node__get_staff(struct kyufu_node_call *c);
void kyufu_node__list_programs(struct kyufu_node_call *c);
void kyufu_node__list_households(struct kyufu_node_call *c);
void kyufu_node__list_applications(struct kyufu_node_call *c);
void kyufu_node__list_batches(struct kyufu_node_call *c);
void kyufu_node__list_staff(struct kyufu_node_call *c);
void kyufu_node__list_audit(struct kyufu_node_call *c);
void kyufu_node__verify_audit(struct kyufu_node_call *c);
/* SLA incidents, oldest first; open_only filters the page (sla_node.c). */
void kyufu_node__list_incidents(struct kyufu_node_call *c);
/* Cluster.CreateBackup (service_backup.c; docs/backup.md). */
void kyufu_node__create_backup(struct kyufu_node_call *c);

#endif /* KYUFU_NODE_SERVICE_H */
