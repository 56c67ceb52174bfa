/* kyufud.conf's [backup] section (docs/backup.md): the rules of its values
 * but kek_file (config.c reads it with the other key files' rule), and the
 * rule between require_mount and directory.  config.c calls these with
 * the key's name and reports `why` on the key's line. */
#include "config.h"
#include "config_values.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "limits.h"
#include "textconf.h"

/* [backup] interval: "0" (no schedule), or digits and one unit (s, m, h,
 * d), within KYUFU_NODE_BACKUP_INTERVAL_S_MIN..MAX seconds.  A bare number
 * other than 0 is refused: "6" could mean hours as well as seconds. */
static int parse_interval(const char *value, uint64_t *secs)
{
    static const struct {
        char unit;
        uint64_t secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    if (strcmp(value, "0") == 0) {
        *secs = 0;
        return 0;
    }
    size_t n = strlen(value);
    if (n < 2 || n > 12) {
        return -1;
    }
    char digits[16];
    memcpy(digits, value, n - 1);
    digits[n - 1] = '\0';
    uint64_t v;
    if (!kyufu_textconf_parse_uint(digits, 1, KYUFU_NODE_BACKUP_INTERVAL_S_MAX,
                                   &v)) {
        return -1;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (value[n - 1] == units[i].unit) {
            if (v > KYUFU_NODE_BACKUP_INTERVAL_S_MAX / units[i].secs ||
                v * units[i].secs < KYUFU_NODE_BACKUP_INTERVAL_S_MIN) {
                return -1;
            }
            *secs = v * units[i].secs;
            return 0;
        }
    }
    return -1;
}

/* An absolute path that fits dst (dst_len - 1 bytes at most). */
static int set_path(char *dst, size_t dst_len, const char *value, char *why,
                    size_t why_len)
{
    size_t n = strlen(value);
    if (n + 1 > dst_len) {
        snprintf(why, why_len, "value is %zu bytes, at most %zu allowed", n,
                 dst_len - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

int kyufu_config__backup_value(struct kyufu_config *c,
                               const char *key,
                               const char *value,
                               char *why,
                               size_t why_len)
{
    uint64_t v;
    if (strcmp(key, "directory") == 0) {
        /* The one directory backups may be written into: an existing
         * folder, absolute. */
        if (set_path(c->backup_directory, sizeof c->backup_directory, value,
                     why, why_len) != 0) {
            return -1;
        }
        /* Whether it exists is checked once the whole file is read
         * (kyufu_config__backup_directory): not at all under
         * require_mount, whose NAS may be down at boot. */
        if (value[0] != '/') {
            c->backup_directory[0] = '\0';
            snprintf(why, why_len,
                     "'%s' must be the absolute path of an existing folder",
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "require_mount") == 0) {
        /* Where it is, and that it is directory or a parent of it, once
         * the whole file is read: kyufu_config__backup_mount. */
        if (value[0] != '/') {
            snprintf(why, why_len,
                     "'%s' must be an absolute path (the mount point of "
                     "[backup] directory's disk or NAS)",
                     value);
            return -1;
        }
        return set_path(c->backup_require_mount,
                        sizeof c->backup_require_mount, value, why, why_len);
    }
    if (strcmp(key, "max_bytes_per_s") == 0) {
        /* 0: no limit; else at least 64 KiB/s (a chunk is 4 MiB: below
         * that one chunk would take over a minute). */
        if (!kyufu_textconf_parse_uint(value, 0, KYUFU_NODE_BACKUP_RATE_MAX,
                                       &v) ||
            (v != 0 && v < KYUFU_NODE_BACKUP_RATE_MIN)) {
            snprintf(why, why_len,
                     "'%s' is not 0 (no limit) or a number of bytes per "
                     "second in %llu..%llu",
                     value, (unsigned long long)KYUFU_NODE_BACKUP_RATE_MIN,
                     (unsigned long long)KYUFU_NODE_BACKUP_RATE_MAX);
            return -1;
        }
        c->backup_max_bytes_per_s = v;
        return 0;
    }
    if (strcmp(key, "io_priority") == 0) {
        if (strcmp(value, "normal") != 0 && strcmp(value, "idle") != 0) {
            snprintf(why, why_len, "'%s' is not normal or idle", value);
            return -1;
        }
        c->backup_io_idle = strcmp(value, "idle") == 0;
        return 0;
    }
    if (strcmp(key, "interval") == 0) {
        if (parse_interval(value, &v) != 0) {
            snprintf(why, why_len,
                     "'%s' is not 0 (no schedule) or a whole number with a "
                     "unit s, m, h or d, from %us to %ud",
                     value, (unsigned)KYUFU_NODE_BACKUP_INTERVAL_S_MIN,
                     (unsigned)(KYUFU_NODE_BACKUP_INTERVAL_S_MAX / 86400u));
            return -1;
        }
        c->backup_interval_s = v;
        return 0;
    }
    uint32_t *keep = strcmp(key, "keep_last") == 0    ? &c->backup_keep_last
                     : strcmp(key, "keep_daily") == 0 ? &c->backup_keep_daily
                     : strcmp(key, "keep_monthly") == 0
                         ? &c->backup_keep_monthly
                         : NULL;
    assert(keep != NULL); /* config.c passes only the keys above */
    if (!kyufu_textconf_parse_uint(value, 0, KYUFU_NODE_BACKUP_KEEP_MAX, &v)) {
        snprintf(why, why_len, "'%s' is not a number of backups in 0..%u",
                 value, KYUFU_NODE_BACKUP_KEEP_MAX);
        return -1;
    }
    *keep = (uint32_t)v;
    return 0;
}

int kyufu_config__backup_directory(struct kyufu_config *c,
                                   char *why,
                                   size_t why_len)
{
    struct stat st;
    if (c->backup_directory[0] == '\0' || c->backup_require_mount[0] != '\0') {
        return 0;
    }
    if (stat(c->backup_directory, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, why_len,
                 "'%.300s' must be the absolute path of an existing folder",
                 c->backup_directory);
        c->backup_directory[0] = '\0';
        return -1;
    }
    return 0;
}

/* Whether path (absolute) is written plainly: no "." or ".." component,
 * no empty one ("//"), no trailing "/" unless it is "/". */
static bool plain_path(const char *path)
{
    if (path[0] != '/') {
        return false;
    }
    if (path[1] == '\0') {
        return true;
    }
    for (const char *p = path; *p != '\0';) {
        const char *q = strchr(p + 1, '/');
        size_t n = q != NULL ? (size_t)(q - p - 1) : strlen(p + 1);
        if (n == 0 || (n == 1 && p[1] == '.') ||
            (n == 2 && p[1] == '.' && p[2] == '.')) {
            return false;
        }
        p = q != NULL ? q : p + 1 + n;
    }
    return true;
}

int kyufu_config__backup_mount(struct kyufu_config *c,
                               char *why,
                               size_t why_len)
{
    const char *mount = c->backup_require_mount;
    const char *dir = c->backup_directory;
    if (mount[0] == '\0') {
        return 0;
    }
    if (dir[0] == '\0') {
        snprintf(why, why_len,
                 "require_mount needs [backup] directory (a folder on the "
                 "mounted disk or NAS)");
        goto refused;
    }
    /* Compared as written, touching no file system: at boot the NAS may be
     * down (directory missing: kyufud must start all the same, and refuse
     * backups until it is mounted), or mounted and hung (a stat would hang
     * the start).  /proc/self/mountinfo names mount points without
     * symlinks, so both are asked in that form. */
    if (!plain_path(mount) || !plain_path(dir)) {
        snprintf(why, why_len,
                 "'%.300s' and [backup] directory '%.300s' must be written "
                 "as plain absolute paths (no '.', '..', '//' or trailing "
                 "'/'; no symlink: compared as written with the mount table)",
                 mount, dir);
        goto refused;
    }
    size_t n = strlen(mount);
    bool under = strcmp(mount, "/") == 0 ||
                 (strncmp(dir, mount, n) == 0 &&
                  (dir[n] == '\0' || dir[n] == '/'));
    if (!under) {
        snprintf(why, why_len,
                 "'%.300s' is neither [backup] directory (%.300s) nor one of "
                 "its parents",
                 mount, dir);
        goto refused;
    }
    return 0;
refused:
    c->backup_require_mount[0] = '\0';
    return -1;
}
