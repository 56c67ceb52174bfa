/* Scheduled backups' names and retention: see backup_retention.h and
 * docs/backup.md "Retention".  Pure: no clock, no I/O. */
#include "backup_retention.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* Years the names cover: four digits, and gmtime/timegm are exact. */
#define YEAR_MIN 1970
#define YEAR_MAX 9999

int kyufu_backup_auto_name(int64_t ms, uint64_t node, char *buf, size_t len)
{
    struct tm tm;
    time_t s = (time_t)(ms / 1000);
    if (ms < 0 || gmtime_r(&s, &tm) == NULL ||
        tm.tm_year + 1900 > YEAR_MAX) {
        return -1;
    }
    int w = snprintf(buf, len,
                     KYUFU_BACKUP_AUTO_PREFIX
                     "%04d%02d%02dT%02d%02d%02dZ-n%llu",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (unsigned long long)node);
    return w > 0 && (size_t)w < len ? 0 : -1;
}

/* n decimal digits at s, as a number. */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool kyufu_backup_auto_name_ok(const char *name)
{
    const size_t pre = sizeof KYUFU_BACKUP_AUTO_PREFIX - 1;
    if (!kyufu_backup_name_ok(name) ||
        strncmp(name, KYUFU_BACKUP_AUTO_PREFIX, pre) != 0) {
        return false;
    }
    const char *t = name + pre; /* YYYYMMDDTHHMMSSZ-nID */
    int y, mo, d, h, mi, s;
    if (strlen(t) < 19 || !digits(t, 4, &y) || !digits(t + 4, 2, &mo) ||
        !digits(t + 6, 2, &d) || t[8] != 'T' || !digits(t + 9, 2, &h) ||
        !digits(t + 11, 2, &mi) || !digits(t + 13, 2, &s) || t[15] != 'Z' ||
        t[16] != '-' || t[17] != 'n') {
        return false;
    }
    /* A real date: timegm normalises a 31st of February away. */
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s};
    struct tm back;
    time_t secs = timegm(&tm);
    if (y < YEAR_MIN || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 ||
        s > 59 || secs == (time_t)-1 || gmtime_r(&secs, &back) == NULL ||
        back.tm_mday != d || back.tm_mon != mo - 1) {
        return false;
    }
    const char *id = t + 18;
    if (id[0] < '1' || id[0] > '9' || strlen(id) > 19) {
        return false;
    }
    for (const char *p = id; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return strtoull(id, NULL, 10) <= (uint64_t)INT64_MAX;
}

/* Newest first; equal times by name, descending, so that the order (and
 * what is kept) does not depend on the order the scan read them in. */
static int newest_first(const void *a, const void *b)
{
    const struct kyufu_backup_aged *x = a, *y = b;
    if (x->created_ms != y->created_ms) {
        return x->created_ms > y->created_ms ? -1 : 1;
    }
    return -strcmp(x->name, y->name);
}

/* The UTC day of ms (floor, also before 1970). */
static int64_t day_of(int64_t ms)
{
    int64_t d = ms / MS_PER_DAY;
    return ms % MS_PER_DAY < 0 ? d - 1 : d;
}

/* The UTC month of ms as year * 12 + month. */
static int64_t month_of(int64_t ms)
{
    struct tm tm;
    time_t s = (time_t)(day_of(ms) * 86400);
    if (gmtime_r(&s, &tm) == NULL) {
        return INT64_MIN; /* out of gmtime's range: one bucket for all */
    }
    return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Keep the newest of each bucket for the `count` newest buckets (b sorted
 * newest first, so the first of a bucket met is its newest). */
static void keep_buckets(struct kyufu_backup_aged *b,
                         size_t n,
                         uint32_t count,
                         int64_t (*bucket)(int64_t))
{
    uint32_t kept = 0;
    int64_t last = 0;
    for (size_t i = 0; i < n && kept < count; i++) {
        int64_t k = bucket(b[i].created_ms);
        if (i == 0 || k != last) {
            b[i].keep = true;
            kept++;
            last = k;
        }
    }
}

void kyufu_backup_retention(struct kyufu_backup_aged *b,
                            size_t n,
                            const struct kyufu_backup_keep *keep)
{
    assert(keep != NULL && (b != NULL || n == 0));
    if (n == 0) {
        return;
    }
    qsort(b, n, sizeof *b, newest_first);
    bool off = keep->last == 0 && keep->daily == 0 && keep->monthly == 0;
    for (size_t i = 0; i < n; i++) {
        b[i].keep = b[i].keep || off || i < keep->last;
    }
    b[0].keep = true; /* never the newest good one */
    keep_buckets(b, n, keep->daily, day_of);
    keep_buckets(b, n, keep->monthly, month_of);
    assert(b[0].keep);
}
