/* Runs kyufuctl in-process for the C tests (tests/client): argv is
 * "kyufuctl", then "--config conf" when conf is not NULL, then the
 * NULL-terminated arguments (copied: getopt may permute them).
 * stdout and stderr go to out/err (cleared first, always NUL-terminated).
 * Returns kyufu_ctl_main's exit status. */
#ifndef KYUFU_TEST_CTL_RUN_H
#define KYUFU_TEST_CTL_RUN_H

#include <stddef.h>

int ctl_run(char *out, size_t out_len, char *err, size_t err_len,
            const char *conf, const char *first, ...);

#endif
