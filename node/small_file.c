/* Small files read and written whole: see small_file.h. */
#include "small_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kyufu_small_file_join(char out[KYUFU_SMALL_FILE_PATH_BYTES],
                          const char *dir, const char *name, char *errmsg,
                          size_t errmsg_len)
{
    int n = snprintf(out, KYUFU_SMALL_FILE_PATH_BYTES, "%s/%s", dir, name);
    if (n < 0 || n >= KYUFU_SMALL_FILE_PATH_BYTES) {
        snprintf(errmsg, errmsg_len, "path too long: %s/%s", dir, name);
        return -1;
    }
    return 0;
}

static ssize_t fail_closing(int fd, ssize_t rv)
{
    int e = errno;
    close(fd);
    errno = e;
    return rv;
}

ssize_t kyufu_small_file_read(const char *path, void *buf, size_t cap,
                              bool private_only)
{
    char *p = buf;
    size_t got = 0;
    struct stat st;
    if (cap == 0)
        return KYUFU_SMALL_FILE_ESHAPE;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return KYUFU_SMALL_FILE_EIO;
    if (fstat(fd, &st) != 0)
        return fail_closing(fd, KYUFU_SMALL_FILE_EIO);
    if (!S_ISREG(st.st_mode))
        return fail_closing(fd, KYUFU_SMALL_FILE_ESHAPE);
    if (private_only && ((st.st_mode & 077) != 0 ||
                         (st.st_uid != geteuid() && st.st_uid != 0)))
        return fail_closing(fd, KYUFU_SMALL_FILE_EPRIVATE);
    for (;;) {
        ssize_t r = read(fd, p + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail_closing(fd, KYUFU_SMALL_FILE_EIO);
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == cap - 1) {
            char extra;
            r = read(fd, &extra, 1);
            close(fd);
            p[got] = '\0';
            return r == 0 ? (ssize_t)got : KYUFU_SMALL_FILE_ESHAPE;
        }
    }
    close(fd);
    p[got] = '\0';
    return (ssize_t)got;
}

int kyufu_small_file_sync_dir(const char *dir, char *errmsg,
                              size_t errmsg_len)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "fsync %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int kyufu_small_file_write(const char *dir, const char *name,
                           const void *data, size_t len, char *errmsg,
                           size_t errmsg_len)
{
    char tmp_name[256], tmp[KYUFU_SMALL_FILE_PATH_BYTES],
        path[KYUFU_SMALL_FILE_PATH_BYTES];
    int fd = -1;
    int n = snprintf(tmp_name, sizeof tmp_name, "%s.tmp", name);
    if (n < 0 || (size_t)n >= sizeof tmp_name) {
        snprintf(errmsg, errmsg_len, "file name too long: %s", name);
        return -1;
    }
    if (kyufu_small_file_join(tmp, dir, tmp_name, errmsg, errmsg_len) != 0 ||
        kyufu_small_file_join(path, dir, name, errmsg, errmsg_len) != 0)
        return -1;
    /* A new file: whatever a crash or a hand left under the temporary
     * name is removed first (a FIFO would block the open; a symlink would
     * fail it), and O_CREAT | O_EXCL follows no link. */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        snprintf(errmsg, errmsg_len, "unlink %s: %s", tmp, strerror(errno));
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    errno = 0;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "write %s: %s", tmp,
                 errno != 0 ? strerror(errno) : "short write");
        close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        snprintf(errmsg, errmsg_len, "close %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(errmsg, errmsg_len, "rename %s: %s", tmp, strerror(errno));
        return -1;
    }
    return kyufu_small_file_sync_dir(dir, errmsg, errmsg_len);
}
