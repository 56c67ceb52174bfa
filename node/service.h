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
 */
#ifndef KYUFU_NODE_SERVICE_H
#define KYUFU_NODE_SERVICE_H

#include <protobuf-c/protobuf-c.h>

#include "node.h"

enum kyufu_node_method_kind {
    KYUFU_NODE_WRITE,
    KYUFU_NODE_READ,
    KYUFU_NODE_STATUS,
    KYUFU_NODE_TRANSFER,
};

struct kyufu_node_method
{
    const char *path;
    enum kyufu_node_method_kind kind;
    const ProtobufCMessageDescriptor *request;
    /* WRITE: name of the Command body field ("create_program").
     * READ: the query to run on the store (service_read.c). */
    const char *body;
    void (*read)(struct kyufu_node_call *c);
};

void kyufu_node__write(struct kyufu_node_call *c);
void kyufu_node__read(struct kyufu_node_call *c);
void kyufu_node__status(struct kyufu_node_call *c);
void kyufu_node__transfer(struct kyufu_node_call *c);

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

#endif /* KYUFU_NODE_SERVICE_H */
