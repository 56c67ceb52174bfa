/* Counting assertions for the C tests that report every failed check
 * before they exit (tests/api, tests/node): CHECK prints where and counts
 * (`failures`, which a test may also raise itself); main ends with
 * `return count_check_end("name");`, which fails the test (1) when any
 * check failed.  tests/client/check.h is the variant that exits at once. */
#ifndef KYUFU_TEST_COUNT_CHECK_H
#define KYUFU_TEST_COUNT_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            failures++;                                                      \
        }                                                                    \
    } while (0)

/* CHECK with a printf-style message of what was seen (a test whose
 * failures need the values to be read). */
#define CHECKF(cond, ...)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static inline int count_check_end(const char *name)
{
    if (failures != 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
