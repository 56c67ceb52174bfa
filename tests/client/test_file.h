/* File helpers for the C tests in tests/client. */
#ifndef KYUFU_TEST_FILE_H
#define KYUFU_TEST_FILE_H

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

/* Writes `text` to a new file at `path` (replacing any) with `mode`. */
static inline void test_write_file(const char *path, const char *text,
                                   mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

#endif
