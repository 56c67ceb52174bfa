/* Opening a scratch store for the raft-glue tests that drive the FSM by
 * hand (test_fsm.c, test_seal.c). */
#ifndef KYUFU_TESTS_SIM_TEST_STORE_H
#define KYUFU_TESTS_SIM_TEST_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* A store at dir/name (64 MiB map, no fsync), with cluster master key cmk
 * (KYUFU_CRYPTO_KEY_BYTES; NULL: none).  Exits the test, naming the path
 * and the error, when it cannot be opened. */
struct kyufu_storage *test_store_open(const char *dir,
                                      const char *name,
                                      const uint8_t *cmk);

/* Apply n CreateStaff entries at indexes 1..n: "admin", then
 * "canary-staff-001"... (ids a test can look for in the bytes). */
void test_store_fill(struct kyufu_storage *s, unsigned n);

/* storage's snapshot stream of s now, in one malloc'ed buffer (*len
 * bytes); fails the test on error. */
uint8_t *test_store_stream(struct kyufu_storage *s, size_t *len);

/* The store's digest and applied index; fails the test on error. */
void test_store_digest(struct kyufu_storage *s, uint8_t d[32], uint64_t *idx);

#endif /* KYUFU_TESTS_SIM_TEST_STORE_H */
