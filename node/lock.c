/* Data-directory lock: see lock.h. */
#include "lock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"

int kyufu_node_lock(const char *data_dir, char *errmsg, size_t errmsg_len)
{
    char path[KYUFU_NODE_PATH_BYTES_MAX + 16];
    char text[32];
    int fd = -1;
    int n;

    assert(data_dir != NULL && data_dir[0] == '/');
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errmsg_len, "cannot create data directory %s: %s",
                 data_dir, strerror(errno));
        goto err;
    }
    n = snprintf(path, sizeof path, "%s/LOCK", data_dir);
    assert(n > 0 && (size_t)n < sizeof path);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", path,
                 strerror(errno));
        goto err;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t got = pread(fd, text, sizeof text - 1, 0);
        text[got > 0 ? got : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        if (e == EWOULDBLOCK) {
            snprintf(errmsg, errmsg_len,
                     "data directory %s is in use by another kyufud (pid "
                     "%s); stop it first",
                     data_dir, text[0] != '\0' ? text : "unknown");
        } else {
            snprintf(errmsg, errmsg_len, "cannot lock %s: %s", path,
                     strerror(e));
        }
        goto err_after_open;
    }
    n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        /* The pid is a courtesy for the error above; the lock holds. */
    }
    return fd;

err_after_open:
    close(fd);
err:
    return -1;
}

void kyufu_node_unlock(int fd)
{
    assert(fd >= 0);
    /* Closing drops the flock; the file stays (removing it would race with
     * a process that opened it and is about to lock it). */
    close(fd);
}
