/* The store's flush mark: see store_mark.h. */
#include "store_mark.h"

#include "small_file.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK_NAME "flush.mark"
#define MARK_HEADER "kyufu store flush mark 1\n"
/* A whole mark is under 128 bytes; anything longer is not a mark. */
#define MARK_BYTES_MAX 256
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
    n = kyufu_small_file_read(path, buf, sizeof buf, false);
    if (n == KYUFU_SMALL_FILE_EIO) {
        snprintf(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    len = n < 0 ? 0 : (size_t)n;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (n == KYUFU_SMALL_FILE_ESHAPE || !boot_valid(buf, len)) {
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
    char path[KYUFU_SMALL_FILE_PATH_BYTES];
    char buf[MARK_BYTES_MAX];
    const char *p, *end;
    size_t hlen = strlen(MARK_HEADER);
    ssize_t n;

    mark_boot[0] = '\0';
    if (detail_len > 0)
        detail[0] = '\0';
    if (kyufu_small_file_join(path, store_dir, MARK_NAME, detail, detail_len) != 0)
        return KYUFU_STORE_MARK_MALFORMED;
    n = kyufu_small_file_read(path, buf, sizeof buf, false);
    if (n == KYUFU_SMALL_FILE_EIO && errno == ENOENT)
        return KYUFU_STORE_MARK_NONE;
    if (n == KYUFU_SMALL_FILE_EIO) {
        snprintf(detail, detail_len, "%s: %s", path, strerror(errno));
        return KYUFU_STORE_MARK_MALFORMED;
    }
    if (n == KYUFU_SMALL_FILE_ESHAPE || memchr(buf, '\0', (size_t)n) != NULL ||
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

static int unlink_in(const char *dir, const char *name, char *errmsg,
                     size_t errmsg_len)
{
    char path[KYUFU_SMALL_FILE_PATH_BYTES];
    if (kyufu_small_file_join(path, dir, name, errmsg, errmsg_len) != 0)
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
    return kyufu_small_file_sync_dir(store_dir, errmsg, errmsg_len);
}

int kyufu_store_mark_write(const char *store_dir, const char *boot_id,
                           bool open_state, char *errmsg, size_t errmsg_len)
{
    char text[MARK_BYTES_MAX];
    assert(boot_id[0] == '\0' || boot_valid(boot_id, strlen(boot_id)));
    if (mkdir(store_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errmsg_len, "mkdir %s: %s", store_dir,
                 strerror(errno));
        return -1;
    }
    /* An unknown boot id is written as "unknown": it never equals a real
     * one, and the kernel's ids are hexadecimal UUIDs. */
    int len = snprintf(text, sizeof text, MARK_HEADER "boot %s\nstate %s\n",
                       boot_id[0] != '\0' ? boot_id : "unknown",
                       open_state ? "open" : "clean");
    assert(len > 0 && (size_t)len < sizeof text);
    return kyufu_small_file_write(store_dir, MARK_NAME, text, (size_t)len,
                                  errmsg, errmsg_len);
}

int kyufu_store_mark_remove(const char *store_dir, char *errmsg,
                            size_t errmsg_len)
{
    char path[KYUFU_SMALL_FILE_PATH_BYTES];
    if (kyufu_small_file_join(path, store_dir, MARK_NAME, errmsg, errmsg_len) != 0)
        return -1;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return 0; /* nothing to make durable */
        snprintf(errmsg, errmsg_len, "unlink %s: %s", path, strerror(errno));
        return -1;
    }
    return kyufu_small_file_sync_dir(store_dir, errmsg, errmsg_len);
}
