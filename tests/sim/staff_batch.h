/* Packed CommandBatches (one CreateStaff, one RecordVersions) for the
 * raft-glue tests that feed entries to the FSM by hand (test_fsm.c,
 * test_seal.c). */
#ifndef KYUFU_TESTS_SIM_STAFF_BATCH_H
#define KYUFU_TESTS_SIM_STAFF_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* A CommandBatch of one CreateStaff `id` (display name `id`, admin role) by
 * `actor`, idempotency key (client_id, seq), terminal "t", time
 * 1775001600000 + seq ms.  It is the bootstrap when actor == id on a store
 * with no staff.  Returns a malloc'ed buffer of *len bytes (the caller
 * frees it); exits the test on allocation failure. */
uint8_t *test_staff_batch(const char *client_id,
                          const char *actor,
                          const char *id,
                          uint64_t seq,
                          size_t *len);

/* A CommandBatch of one RecordVersions by "kyufu-node-1": three voters
 * (ids 1-3) at `command_version`, time as above; malloc'ed, *len bytes. */
uint8_t *test_versions_batch(uint64_t seq, uint32_t command_version,
                             size_t *len);

#endif /* KYUFU_TESTS_SIM_STAFF_BATCH_H */
