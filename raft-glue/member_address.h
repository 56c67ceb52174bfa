/* A member's address as kyufu records it in the Raft configuration
 * (docs/raft.md, "Membership"): "RAFT" for the members bootstrapped from
 * [cluster] (their API address is in every node's config), "RAFT API" (one
 * blank) for a node added later with kyufu_glue_add, so that every member
 * learns from the replicated configuration where the newcomer serves its
 * API.  libraft treats the string as opaque (it compares it whole for
 * RAFT_DUPLICATEADDRESS and hands it to the transport), and the transport
 * dials only the RAFT part. */
#ifndef KYUFU_GLUE_MEMBER_ADDRESS_H
#define KYUFU_GLUE_MEMBER_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the RAFT part of a recorded address. */
size_t glue__address_raft_len(const char *recorded);

/* Copy the two parts into raft / api ("" when none), each truncated to its
 * buffer (len > 0). */
void glue__address_split(const char *recorded,
                         char *raft,
                         size_t raft_len,
                         char *api,
                         size_t api_len);

#endif
