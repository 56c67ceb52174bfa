/* The store's flush mark: see store_mark.h. */
#include "store_mark.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK_NAME "flush.mark"
#define MARK_TMP_NAME "flush.mark.tmp"
#define MARK_HEADER "kyufu store flush mark 1\n"
/* A whole mark is under 128 bytes; anything longer is not a mark. */
#define MARK_BYTES_MAX 256
/* STORE_DIR plus a file name (node.c's store path is at most 528 bytes). */
#define MARK_PATH_BYTES 1024
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

static bool boot_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c == '-';
}

/* s[0..n) is a boot id: 1..MAX-1 characters of boot_char. */
static bool boot_valid(const char *s, size_t n)
{
    if (n == 0 || n >= KYUFU_STORE_MARK_BOOT_BYTES_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!boot_char(s[i]))
            return false;
    }
    return true;
}

static int join(char *out, const char *dir, const char *name, char *errmsg,
                size_t errmsg_len)
{
    int n = snprintf(out, MARK_PATH_BYTES, "%s/%s", dir, name);
    if (n < 0 || n >= MARK_PATH_BYTES) {
        snprintf(errmsg, errmsg_len, "path too long: %s/%s", dir, name);
        return -1;
    }
    return 0;
}

/* Read at most cap - 1 bytes of path into buf (NUL-terminated).  Returns
 * the length, -1 with errno on an error, or -2 when the file is longer or
 * not a regular file.  Opened without blocking and checked before any
 * read: a FIFO where a mark or boot id belongs would otherwise hang the
 * start in open or read. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    ssize_t got = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -2;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - (size_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        got += r;
        if ((size_t)got == cap - 1) {
            char extra;
            r = read(fd, &extra, 1);
            close(fd);
            buf[got] = '\0';
            return r == 0 ? got : -2;
        }
    }
    close(fd);
    buf[got] = '\0';
    return got;
}

int kyufu_store_mark_boot_id(char out[KYUFU_STORE_MARK_BOOT_BYTES_MAX],
                             char *errmsg, size_t errmsg_len)
{
    const char *path = getenv("KYUFU_BOOT_ID_FILE");
    char buf[KYUFU_STORE_MARK_BOOT_BYTES_MAX + 2];
    ssize_t n;
    size_t len;

    if (path == NULL || path[0] == '\0')
        path = BOOT_ID_PATH;
    out[0] = '\0';
    n = read_small(path, buf, sizeof buf);
    if (n == -1) {
        snprintf(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    len = n < 0 ? 0 : (size_t)n;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (n == -2 || !boot_valid(buf, len)) {
        snprintf(errmsg, errmsg_len, "%s: not a boot id", path);
        return -1;
    }
    memcpy(out, buf, len);
    out[len] = '\0';
    return 0;
}

enum kyufu_store_mark_verdict kyufu_store_mark_judge(
    const char *store_dir, const char *boot_id,
    char mark_boot[KYUFU_STORE_MARK_BOOT_BYTES_MAX], char *detail,
    size_t detail_len)
{
    char path[MARK_PATH_BYTES];
    char buf[MARK_BYTES_MAX];
    const char *p, *end;
    size_t hlen = strlen(MARK_HEADER);
    ssize_t n;

    mark_boot[0] = '\0';
    if (detail_len > 0)
        detail[0] = '\0';
    if (join(path, store_dir, MARK_NAME, detail, detail_len) != 0)
        return KYUFU_STORE_MARK_MALFORMED;
    n = read_small(path, buf, sizeof buf);
    if (n == -1 && errno == ENOENT)
        return KYUFU_STORE_MARK_NONE;
    if (n == -1) {
        snprintf(detail, detail_len, "%s: %s", path, strerror(errno));
        return KYUFU_STORE_MARK_MALFORMED;
    }
    if (n == -2 || memchr(buf, '\0', (size_t)n) != NULL ||
        (size_t)n < hlen || memcmp(buf, MARK_HEADER, hlen) != 0)
        goto malformed;
    p = buf + hlen;
    if (strncmp(p, "boot ", 5) != 0)
        goto malformed;
    p += 5;
    end = strchr(p, '\n');
    if (end == NULL || !boot_valid(p, (size_t)(end - p)))
        goto malformed;
    memcpy(mark_boot, p, (size_t)(end - p));
    mark_boot[end - p] = '\0';
    p = end + 1;
    if (strcmp(p, "state clean\n") == 0)
        return KYUFU_STORE_MARK_CLEAN;
    if (strcmp(p, "state open\n") != 0) {
        mark_boot[0] = '\0';
        goto malformed;
    }
    if (boot_id[0] != '\0' && strcmp(boot_id, mark_boot) == 0)
        return KYUFU_STORE_MARK_SAME_BOOT;
    return KYUFU_STORE_MARK_REBOOTED;
malformed:
    snprintf(detail, detail_len, "%s: not a flush mark", path);
    return KYUFU_STORE_MARK_MALFORMED;
}

bool kyufu_store_mark_must_rebuild(enum kyufu_store_mark_verdict v)
{
    return v == KYUFU_STORE_MARK_REBOOTED || v == KYUFU_STORE_MARK_MALFORMED;
}

static int sync_dir(const char *dir, char *errmsg, size_t errmsg_len)
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

static int unlink_in(const char *dir, const char *name, char *errmsg,
                     size_t errmsg_len)
{
    char path[MARK_PATH_BYTES];
    if (join(path, dir, name, errmsg, errmsg_len) != 0)
        return -1;
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(errmsg, errmsg_len, "unlink %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int kyufu_store_mark_discard_store(const char *store_dir, char *errmsg,
                                   size_t errmsg_len)
{
    if (unlink_in(store_dir, "data.mdb", errmsg, errmsg_len) != 0 ||
        unlink_in(store_dir, "lock.mdb", errmsg, errmsg_len) != 0)
        return -1;
    return sync_dir(store_dir, errmsg, errmsg_len);
}

int kyufu_store_mark_write(const char *store_dir, const char *boot_id,
                           bool open_state, char *errmsg, size_t errmsg_len)
{
    char tmp[MARK_PATH_BYTES], path[MARK_PATH_BYTES];
    char text[MARK_BYTES_MAX];
    int fd = -1;
    int len;

    assert(boot_id[0] == '\0' || boot_valid(boot_id, strlen(boot_id)));
    if (join(tmp, store_dir, MARK_TMP_NAME, errmsg, errmsg_len) != 0 ||
        join(path, store_dir, MARK_NAME, errmsg, errmsg_len) != 0)
        goto err;
    if (mkdir(store_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errmsg_len, "mkdir %s: %s", store_dir,
                 strerror(errno));
        goto err;
    }
    /* An unknown boot id is written as "unknown": it never equals a real
     * one, and the kernel's ids are hexadecimal UUIDs. */
    len = snprintf(text, sizeof text, MARK_HEADER "boot %s\nstate %s\n",
                   boot_id[0] != '\0' ? boot_id : "unknown",
                   open_state ? "open" : "clean");
    assert(len > 0 && (size_t)len < sizeof text);
    /* A new file: whatever a crash or a hand left under the temporary
     * name is removed first (a FIFO would block the open; a symlink would
     * fail it), and O_CREAT | O_EXCL follows no link. */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        snprintf(errmsg, errmsg_len, "unlink %s: %s", tmp, strerror(errno));
        goto err;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "open %s: %s", tmp, strerror(errno));
        goto err;
    }
    errno = 0;
    if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "write %s: %s", tmp,
                 errno != 0 ? strerror(errno) : "short write");
        goto err;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(errmsg, errmsg_len, "close %s: %s", tmp, strerror(errno));
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(errmsg, errmsg_len, "rename %s: %s", tmp, strerror(errno));
        goto err;
    }
    return sync_dir(store_dir, errmsg, errmsg_len);
err:
    if (fd >= 0)
        close(fd);
    return -1;
}

int kyufu_store_mark_remove(const char *store_dir, char *errmsg,
                            size_t errmsg_len)
{
    char path[MARK_PATH_BYTES];
    if (join(path, store_dir, MARK_NAME, errmsg, errmsg_len) != 0)
        return -1;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return 0; /* nothing to make durable */
        snprintf(errmsg, errmsg_len, "unlink %s: %s", path, strerror(errno));
        return -1;
    }
    return sync_dir(store_dir, errmsg, errmsg_len);
}
