/* Which peers the Raft transport dials (internal; docs/raft.md
 * "Membership").
 *
 * libraft 0.22.1's raft_uv keeps one client per peer id it ever sent to
 * (uv_send.c uvClient) and, while that client is not connected, retries
 * transport->connect every connect_retry_delay (KYUFU_CONNECT_RETRY_DELAY_MS)
 * for as long as the node runs: nothing closes the client of a member that
 * the configuration no longer holds.  So a node kept dialling a removed dead
 * member's address, ten times a second, and once a new node took that
 * address every attempt was refused by its certificate and logged
 * (docs/chaos.md "Findings").
 *
 * The policy: an id seen as a member of this node's latest configuration
 * when it was dialled, and that the latest configuration no longer holds,
 * is a removed member: the transport does not dial it (connect fails at
 * once, raft_uv retries later without touching the network, and the
 * retry succeeds again if the id is added back).  Every other id is
 * dialled: a member; any id while the configuration is empty (a node
 * waiting to join answers the leader that contacts it); an id never seen
 * as a member (a member of a newer configuration this node has not
 * received yet, whose vote requests it must still answer). */
#ifndef KYUFU_GLUE_DIAL_POLICY_H
#define KYUFU_GLUE_DIAL_POLICY_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#include "glue_limits.h"

struct glue_dial_policy
{
    /* ids seen as members when dialled (0: free), the oldest overwritten
     * when full (a forgotten removed id is dialled again: the old
     * behaviour, no harm beyond the noise). */
    raft_id seen[KYUFU_GLUE_MEMBERS_SEEN_MAX];
    unsigned next;              /* the slot written next when full */
    unsigned long n_skipped;    /* dials of removed members not made */
};

/* Whether the transport may dial peer id now, given this node's latest
 * configuration (see above); remembers id when it is a member.  id > 0. */
bool glue__dial_ok(struct glue_dial_policy *p,
                   const struct raft_configuration *conf,
                   raft_id id);

#endif
