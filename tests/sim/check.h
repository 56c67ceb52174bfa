/* The raft-glue tests' assertion (test_crash_evidence.c, test_fsm.c,
 * test_dial_policy.c, test_glue_uv.c, test_io_guard.c, test_options.c,
 * test_proposer_limits.c): on in every build (NDEBUG does not remove it),
 * names the file, the line and the failed expression, and fails the test
 * binary. */
#ifndef KYUFU_TESTS_SIM_CHECK_H
#define KYUFU_TESTS_SIM_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                          \
    do {                                                                  \
        if (!(x)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,        \
                    __LINE__, #x);                                        \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

#endif /* KYUFU_TESTS_SIM_CHECK_H */
