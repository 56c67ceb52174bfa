/* Scheduled backups' names and retention: see backup_retention.h and
 * docs/backup.md "Retention".  Pure: no I/O, and no clock but the now
 * the caller passes in. */
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

int kyufu_backup_ledger_cmp(uint64_t term_a,
                            uint64_t index_a,
                            uint64_t term_b,
                            uint64_t index_b)
{
    if (term_a != term_b) {
        return term_a > term_b ? 1 : -1;
    }
    return index_a == index_b ? 0 : index_a > index_b ? 1 : -1;
}

/* Later in the ledger first; one place by name, descending (only so that
 * the first pass of kyufu_backup_order is deterministic). */
static int later_place_first(const void *a, const void *b)
{
    const struct kyufu_backup_aged *x = a, *y = b;
    int c = kyufu_backup_ledger_cmp(x->term, x->index, y->term, y->index);
    return c != 0 ? -c : -strcmp(x->name, y->name);
}

/* The total order of kyufu_backup_order: later in the ledger; then later
 * at_ms; then one whose time is not in the future (at_ms == created_ms)
 * before one whose is; then the name, descending (names are unique in a
 * directory). */
static int newest_first(const void *a, const void *b)
{
    const struct kyufu_backup_aged *x = a, *y = b;
    int c = kyufu_backup_ledger_cmp(x->term, x->index, y->term, y->index);
    if (c != 0) {
        return -c;
    }
    if (x->at_ms != y->at_ms) {
        return x->at_ms > y->at_ms ? -1 : 1;
    }
    bool xf = x->created_ms != x->at_ms, yf = y->created_ms != y->at_ms;
    if (xf != yf) {
        return xf ? 1 : -1;
    }
    return -strcmp(x->name, y->name);
}

void kyufu_backup_order(struct kyufu_backup_aged *b, size_t n, int64_t now_ms)
{
    assert(b != NULL || n == 0);
    if (n == 0) {
        return;
    }
    qsort(b, n, sizeof *b, later_place_first);
    /* Walk the places from the latest: `bound` is the earliest at_ms of
     * every later place (none before the first).  A time in the future
     * counts at the earliest of itself, bound and the latest time not in
     * the future at its own place: it was taken no later than what the
     * ledger says came after it, and a backup of the same state whose
     * time is believable comes first.  Never at this node's own now: a
     * pruning node whose clock is behind sees the others' true times as
     * future, and clamping them to its now would put them all in one day
     * and one month (review finding: 3 of 31 daily backups kept with the
     * pruner's clock a year behind). */
    int64_t bound = INT64_MAX;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        bool any_past = false;
        int64_t past = 0; /* the latest time not in the future */
        while (j < n && kyufu_backup_ledger_cmp(b[j].term, b[j].index,
                                                b[i].term, b[i].index) == 0) {
            if (b[j].created_ms <= now_ms &&
                (!any_past || b[j].created_ms > past)) {
                past = b[j].created_ms;
                any_past = true;
            }
            j++;
        }
        int64_t future_at = any_past && past < bound ? past : bound;
        for (size_t k = i; k < j; k++) {
            int64_t t = b[k].created_ms;
            b[k].at_ms = t <= now_ms || t <= future_at ? t : future_at;
            if (b[k].at_ms < bound) {
                bound = b[k].at_ms;
            }
        }
        i = j;
    }
    qsort(b, n, sizeof *b, newest_first);
    for (size_t k = 0; k < n; k++) {
        assert(b[k].at_ms <= b[k].created_ms);
    }
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

/* Later bucket (of at_ms) first; in one bucket, kyufu_backup_order's. */
static int by_bucket(const void *a, const void *b, void *arg)
{
    int64_t (*bucket)(int64_t) = *(int64_t (**)(int64_t))arg;
    const struct kyufu_backup_aged *x = a, *y = b;
    int64_t kx = bucket(x->at_ms), ky = bucket(y->at_ms);
    if (kx != ky) {
        return kx > ky ? -1 : 1;
    }
    return newest_first(a, b);
}

/* Keep the first (in kyufu_backup_order's order) of each bucket, for the
 * `count` latest buckets.  The order is the ledger's, and a clock set
 * back makes at_ms go back and forth along it: b is sorted by bucket for
 * the walk and put back in order after. */
static void keep_buckets(struct kyufu_backup_aged *b,
                         size_t n,
                         uint32_t count,
                         int64_t (*bucket)(int64_t))
{
    if (count == 0) {
        return;
    }
    qsort_r(b, n, sizeof *b, by_bucket, &bucket);
    uint32_t kept = 0;
    int64_t last = 0;
    for (size_t i = 0; i < n && kept < count; i++) {
        int64_t k = bucket(b[i].at_ms);
        if (i == 0 || k != last) {
            b[i].keep = true;
            kept++;
            last = k;
        }
    }
    qsort(b, n, sizeof *b, newest_first);
}

void kyufu_backup_retention(struct kyufu_backup_aged *b,
                            size_t n,
                            const struct kyufu_backup_keep *keep,
                            int64_t now_ms)
{
    assert(keep != NULL && (b != NULL || n == 0));
    if (n == 0) {
        return;
    }
    kyufu_backup_order(b, n, now_ms);
    bool off = keep->last == 0 && keep->daily == 0 && keep->monthly == 0;
    for (size_t i = 0; i < n; i++) {
        b[i].keep = b[i].keep || off || i < keep->last;
    }
    b[0].keep = true; /* never the newest good one in the ledger */
    keep_buckets(b, n, keep->daily, day_of);
    keep_buckets(b, n, keep->monthly, month_of);
    assert(b[0].keep);
}
