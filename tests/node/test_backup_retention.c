/* Retention of scheduled backups (node/backup_retention.h, docs/backup.md
 * "Retention") with synthetic times and places in the ledger: keep the
 * last N, one per day for D days, one per month for M months, the newest
 * always; equal times, a clock that jumped back, an empty list, retention
 * off; the ledger's order (term first); backups dated in the future
 * never taking a slot ahead of later ones (cases, and a seeded search).
 * [backup] require_mount's mount-point check.  The schedule's
 * names (malformed ones are not its own), and removing a backup folder
 * (whole, or not at all when it holds a foreign file). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../count_check.h"
#include "backup_retention.h"


#define HOUR 3600000LL
#define DAY (24 * HOUR)
/* 2026-01-01T00:00:00Z */
#define T0 1767225600000LL

/* A backup at place (term, index) in the ledger, taken at ms. */
static struct kyufu_backup_aged atl(int64_t ms, uint64_t term,
                                    uint64_t index, const char *name)
{
    struct kyufu_backup_aged a = {.created_ms = ms, .term = term,
                                  .index = index, .keep = false};
    snprintf(a.name, sizeof a.name, "%s", name);
    return a;
}

/* All at one place (an idle ledger): the order is the times'. */
static struct kyufu_backup_aged at(int64_t ms, const char *name)
{
    return atl(ms, 0, 0, name);
}

/* Which names are kept, newest first, joined with ','; `pin` (or NULL)
 * is pinned, nothing else (the arrays are reused across calls); now: the
 * scan's clock (INT64_MAX: no time is in the future). */
static const char *kept_pin(struct kyufu_backup_aged *b, size_t n,
                            uint32_t last, uint32_t daily, uint32_t monthly,
                            const char *pin, int64_t now)
{
    static char out[4096];
    struct kyufu_backup_keep k = {last, daily, monthly};
    for (size_t i = 0; i < n; i++) {
        b[i].keep = pin != NULL && strcmp(b[i].name, pin) == 0;
    }
    kyufu_backup_retention(b, n, &k, now);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (b[i].keep) {
            if (out[0] != '\0') {
                strcat(out, ",");
            }
            strcat(out, b[i].name);
        }
    }
    return out;
}

static const char *kept(struct kyufu_backup_aged *b, size_t n,
                        uint32_t last, uint32_t daily, uint32_t monthly)
{
    return kept_pin(b, n, last, daily, monthly, NULL, INT64_MAX);
}

static const char *kept_now(struct kyufu_backup_aged *b, size_t n,
                            uint32_t last, uint32_t daily, uint32_t monthly,
                            int64_t now)
{
    return kept_pin(b, n, last, daily, monthly, NULL, now);
}

static void test_last(void)
{
    struct kyufu_backup_aged b[5] = {at(T0 + 3 * HOUR, "d"),
                                     at(T0, "a"),
                                     at(T0 + 4 * HOUR, "e"),
                                     at(T0 + 1 * HOUR, "b"),
                                     at(T0 + 2 * HOUR, "c")};
    const char *k = kept(b, 5, 2, 0, 0);
    CHECKF(strcmp(k, "e,d") == 0, "keep_last 2 over 5: %s", k);
    CHECKF(strcmp(b[0].name, "e") == 0 && strcmp(b[4].name, "a") == 0,
          "sorted newest first: %s..%s", b[0].name, b[4].name);
    k = kept(b, 5, 9, 0, 0);
    CHECKF(strcmp(k, "e,d,c,b,a") == 0, "keep_last above the count: %s", k);
    /* Retention off: everything kept. */
    k = kept(b, 5, 0, 0, 0);
    CHECKF(strcmp(k, "e,d,c,b,a") == 0, "off: %s", k);
    /* Only daily/monthly set, all on one day: the newest only. */
    k = kept(b, 5, 0, 3, 0);
    CHECKF(strcmp(k, "e") == 0, "daily 3, one day: %s", k);
    /* Empty: nothing to do, no crash. */
    CHECKF(strcmp(kept(b, 0, 2, 2, 2), "") == 0, "empty");
    /* One backup: kept whatever the policy. */
    struct kyufu_backup_aged one[1] = {at(T0, "only")};
    CHECKF(strcmp(kept(one, 1, 1, 0, 0), "only") == 0, "one");
}

static void test_daily_monthly(void)
{
    /* Four backups a day (00, 06, 12, 18 h) for 70 days from T0. */
    enum { DAYS = 70, PER = 4, N = DAYS * PER };
    static struct kyufu_backup_aged b[N];
    for (int d = 0; d < DAYS; d++) {
        for (int h = 0; h < PER; h++) {
            char name[32];
            snprintf(name, sizeof name, "d%02d-h%02d", d, h * 6);
            b[d * PER + h] = at(T0 + d * DAY + h * 6 * HOUR, name);
        }
    }
    const char *k = kept(b, N, 3, 2, 0);
    /* Last 3: day 69 18h, 12h, 06h; daily 2: day 69's newest (already
     * kept), day 68's newest. */
    CHECKF(strcmp(k, "d69-h18,d69-h12,d69-h06,d68-h18") == 0,
          "last 3, daily 2: %s", k);
    k = kept(b, N, 1, 0, 3);
    /* Days 0..30 are January, 31..58 February, 59..69 March 2026: the
     * newest of March, February and January. */
    CHECKF(strcmp(k, "d69-h18,d58-h18,d30-h18") == 0, "monthly 3: %s", k);
    k = kept(b, N, 0, 0, 12);
    CHECKF(strcmp(k, "d69-h18,d58-h18,d30-h18") == 0,
          "monthly above the months there are: %s", k);
    k = kept(b, N, 0, 5, 1);
    CHECKF(strcmp(k, "d69-h18,d68-h18,d67-h18,d66-h18,d65-h18") == 0,
          "daily 5, monthly 1 (the same newest): %s", k);
    size_t n_kept = 0;
    kept(b, N, 2, 7, 2);
    for (size_t i = 0; i < N; i++) {
        n_kept += b[i].keep;
    }
    /* last 2 (d69 18, 12) + days 68..63 + February's newest: 9. */
    CHECKF(n_kept == 9, "last 2 daily 7 monthly 2 keeps %zu", n_kept);
    /* Days with gaps: daily counts days that have a backup, not calendar
     * days back from now. */
    struct kyufu_backup_aged g[4] = {at(T0, "g0"), at(T0 + 10 * DAY, "g10"),
                                     at(T0 + 20 * DAY, "g20"),
                                     at(T0 + 20 * DAY + HOUR, "g20b")};
    k = kept(g, 4, 0, 3, 0);
    CHECKF(strcmp(k, "g20b,g10,g0") == 0, "daily over gaps: %s", k);
}

static void test_equal_and_jumps(void)
{
    /* Equal times: the order they arrive in does not change the answer. */
    struct kyufu_backup_aged a[3] = {at(T0, "x-n1"), at(T0, "x-n3"),
                                     at(T0, "x-n2")};
    struct kyufu_backup_aged b[3] = {at(T0, "x-n2"), at(T0, "x-n1"),
                                     at(T0, "x-n3")};
    char ka[256];
    snprintf(ka, sizeof ka, "%s", kept(a, 3, 2, 0, 0));
    const char *kb = kept(b, 3, 2, 0, 0);
    CHECKF(strcmp(ka, kb) == 0 && strcmp(ka, "x-n3,x-n2") == 0,
          "equal times: %s vs %s", ka, kb);
    /* Two nodes took a backup in the same second (views of the leader
     * differed): daily keeps one of that day, keep_last counts both. */
    CHECKF(strcmp(kept(a, 3, 0, 1, 0), "x-n3") == 0, "equal, daily 1");

    /* The clock jumped back a day after "late" was taken: the backups
     * taken since carry earlier times.  Retention reads no clock: "late"
     * is still the newest by time and kept; keep_last 2 keeps the newest
     * of those after the jump too. */
    struct kyufu_backup_aged j[4] = {at(T0 + 2 * DAY, "late"),
                                     at(T0 + DAY + HOUR, "after1"),
                                     at(T0 + DAY + 2 * HOUR, "after2"),
                                     at(T0, "before")};
    const char *k = kept(j, 4, 2, 0, 0);
    CHECKF(strcmp(k, "late,after2") == 0, "clock back: %s", k);
    /* A third backup after the jump, pinned (just written): kept though
     * two newer-looking ones fill keep_last. */
    struct kyufu_backup_aged p[5] = {at(T0 + 2 * DAY, "late"),
                                     at(T0 + 2 * DAY - HOUR, "late0"),
                                     at(T0 + DAY + HOUR, "after1"),
                                     at(T0 + DAY + 2 * HOUR, "after2"),
                                     at(T0 + DAY + 3 * HOUR, "after3")};
    k = kept_pin(p, 5, 2, 0, 0, "after3", INT64_MAX);
    CHECKF(strcmp(k, "late,late0,after3") == 0, "pinned after a jump: %s", k);
    /* Pinned survives retention off and daily too. */
    struct kyufu_backup_aged q[3] = {at(T0 + HOUR, "new"), at(T0, "old"),
                                     at(T0 - DAY, "older")};
    k = kept_pin(q, 3, 0, 1, 0, "older", INT64_MAX);
    CHECKF(strcmp(k, "new,older") == 0, "pinned, daily 1: %s", k);
    /* Times before 1970 (a clock reset to 0 and below): days floor. */
    struct kyufu_backup_aged z[3] = {at(-1, "neg"), at(0, "zero"),
                                     at(-DAY - 1, "neg2")};
    k = kept(z, 3, 0, 3, 0);
    CHECKF(strcmp(k, "zero,neg,neg2") == 0, "around 1970: %s", k);
    k = kept(z, 3, 0, 0, 1);
    CHECKF(strcmp(k, "zero") == 0, "monthly around 1970: %s", k);
    /* Far future and far past (int64 ends): no crash, newest kept. */
    struct kyufu_backup_aged f[2] = {at(INT64_MAX, "max"),
                                     at(INT64_MIN, "min")};
    k = kept(f, 2, 0, 2, 2);
    CHECKF(strncmp(k, "max", 3) == 0, "extremes: %s", k);
}

/* Unix ms of a UTC date at noon. */
static int64_t noon(int y, int mo, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = 12};
    return (int64_t)timegm(&tm) * 1000;
}

/* The ledger's order, term first (a cluster recovered from a survivor
 * that lacked entries writes at a higher term from a lower index). */
static void test_ledger_order(void)
{
    CHECKF(kyufu_backup_ledger_cmp(5, 96, 2, 100) == 1, "term first");
    CHECKF(kyufu_backup_ledger_cmp(2, 100, 2, 99) == 1, "then index");
    CHECKF(kyufu_backup_ledger_cmp(2, 99, 2, 100) == -1, "earlier");
    CHECKF(kyufu_backup_ledger_cmp(3, 7, 3, 7) == 0, "same place");
    CHECKF(kyufu_backup_ledger_cmp(UINT64_MAX, 0, 0, UINT64_MAX) == 1,
          "extremes");
    /* After such a recovery, by a node whose clock is behind: keep_last
     * 1 keeps the later place, not the later time. */
    struct kyufu_backup_aged r[2] = {atl(T0 + HOUR, 2, 100, "old-term"),
                                     atl(T0, 5, 96, "new-term")};
    const char *k = kept(r, 2, 1, 0, 0);
    CHECKF(strcmp(k, "new-term") == 0, "term before index: %s", k);
    /* A clock set back a day: keep_last counts in the ledger; days are
     * the backups' own (none is in the future). */
    struct kyufu_backup_aged j[3] = {atl(T0 + 2 * DAY, 1, 10, "late"),
                                     atl(T0 + DAY + HOUR, 1, 20, "after1"),
                                     atl(T0 + DAY + 2 * HOUR, 1, 30,
                                         "after2")};
    k = kept(j, 3, 2, 0, 0);
    CHECKF(strcmp(k, "after2,after1") == 0, "clock back, last 2: %s", k);
    k = kept(j, 3, 0, 1, 0);
    /* The latest day is late's; after2 is the newest in the ledger. */
    CHECKF(strcmp(k, "after2,late") == 0, "clock back, daily 1: %s", k);
    k = kept(j, 3, 0, 2, 0);
    CHECKF(strcmp(k, "after2,late") == 0, "clock back, daily 2: %s", k);
}

/* A backup dated in the future (a node whose clock was ahead, or one
 * copied in): never a keep_last slot, a day or a month ahead of backups
 * later in the ledger. */
static void test_future(void)
{
    /* Three hourly backups; a copy from a node a month ahead, taken
     * earlier in the ledger. */
    int64_t now = T0 + 3 * HOUR + 60000;
    struct kyufu_backup_aged b[4] = {atl(T0 + HOUR, 1, 10, "r1"),
                                     atl(T0 + 30 * DAY, 1, 5, "ahead"),
                                     atl(T0 + 3 * HOUR, 1, 30, "r3"),
                                     atl(T0 + 2 * HOUR, 1, 20, "r2")};
    const char *k = kept_now(b, 4, 2, 0, 0, now);
    CHECKF(strcmp(k, "r3,r2") == 0, "future, last 2: %s", k);
    /* It counts no later than the backups after it in the ledger. */
    CHECKF(strcmp(b[3].name, "ahead") == 0 && b[3].at_ms == T0 + HOUR &&
              b[0].at_ms == b[0].created_ms,
          "future counts at %lld", (long long)b[3].at_ms);
    /* The newest in the ledger dated in the future: kept, at its own
     * time (nothing later in the ledger bounds it, and the pruning
     * node's own clock is no bound: see test_pruner_behind), so it takes
     * a day of its own and the next day is r2's. */
    struct kyufu_backup_aged h[3] = {atl(T0 + HOUR, 1, 10, "r1"),
                                     atl(T0 + 2 * HOUR, 1, 20, "r2"),
                                     atl(T0 + 30 * DAY, 1, 40, "head")};
    k = kept_now(h, 3, 1, 0, 0, now);
    CHECKF(strcmp(k, "head") == 0 && h[0].at_ms == h[0].created_ms,
          "future head: %s at %lld", k, (long long)h[0].at_ms);
    k = kept_now(h, 3, 0, 2, 0, now);
    CHECKF(strcmp(k, "head,r2") == 0, "future head, daily 2: %s", k);

    /* keep_daily 7 over seven days of backups, and a copy dated a year
     * ahead from before them: it adds no day of its own (it counts in
     * the day of the earliest backup after it), the seventh day stays. */
    now = T0 + 10 * DAY + 12 * HOUR;
    struct kyufu_backup_aged d[8];
    for (int i = 0; i < 7; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", i + 3);
        d[i] = atl(T0 + (i + 3) * DAY + 6 * HOUR, 1, 100 + (uint64_t)i,
                   name);
    }
    d[7] = atl(now + 365 * DAY, 1, 50, "ahead");
    k = kept_now(d, 8, 1, 7, 0, now);
    CHECKF(strcmp(k, "r9,r8,r7,r6,r5,r4,r3") == 0, "future, daily 7: %s", k);
    k = kept_now(d, 8, 0, 7, 0, now);
    CHECKF(strcmp(k, "r9,r8,r7,r6,r5,r4,r3") == 0, "future, daily only: %s",
          k);

    /* keep_monthly 6 over January..June, and a copy dated 2027. */
    struct kyufu_backup_aged m[7];
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "m%d", i + 1);
        m[i] = atl(noon(2026, i + 1, 15), 2, 1000 + (uint64_t)i, name);
    }
    m[6] = atl(noon(2027, 3, 1), 2, 999, "ahead");
    k = kept_now(m, 7, 0, 0, 6, noon(2026, 6, 20));
    CHECKF(strcmp(k, "m6,m5,m4,m3,m2,m1") == 0, "future, monthly 6: %s", k);

    /* An idle ledger (every backup at one place): the believable time
     * first, the copy from the future counts at it. */
    struct kyufu_backup_aged t[3] = {atl(T0 - DAY, 3, 7, "r-old"),
                                     atl(T0 + 365 * DAY, 3, 7, "ahead"),
                                     atl(T0, 3, 7, "r")};
    k = kept_now(t, 3, 1, 0, 0, T0 + HOUR);
    CHECKF(strcmp(k, "r") == 0, "idle ledger, last 1: %s", k);
    k = kept_now(t, 3, 0, 1, 0, T0 + HOUR);
    CHECKF(strcmp(k, "r") == 0, "idle ledger, daily 1: %s", k);
}

/* xorshift64: seeded, so a failure replays exactly. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t below)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state % below;
}

/* Whatever the backups, their times (clocks behind or ahead) and the
 * rules: adding one dated in the future never loses a backup later in
 * the ledger that was kept without it. */
static void test_future_never_prunes_newer(void)
{
    enum { N = 10, ROUNDS = 3000 };
    int64_t now = T0 + 40 * DAY;
    int bad = 0;
    for (int round = 0; round < ROUNDS && bad < 5; round++) {
        struct kyufu_backup_aged with[N + 1], without[N];
        for (int i = 0; i < N; i++) {
            char name[16];
            snprintf(name, sizeof name, "b%02d", i);
            /* Mostly believable times, some behind, some ahead. */
            int64_t ms = T0 + (int64_t)rnd(45 * 24) * HOUR;
            without[i] = atl(ms, 1 + rnd(3), rnd(40), name);
            with[i] = without[i];
        }
        with[N] = atl(now + 1 + (int64_t)rnd(400) * DAY, 1 + rnd(3), rnd(40),
                      "zz-future");
        struct kyufu_backup_keep keep = {(uint32_t)rnd(4), (uint32_t)rnd(6),
                                         (uint32_t)rnd(3)};
        kyufu_backup_retention(without, N, &keep, now);
        kyufu_backup_retention(with, N + 1, &keep, now);
        const struct kyufu_backup_aged *f = NULL;
        for (int i = 0; i <= N; i++) {
            if (strcmp(with[i].name, "zz-future") == 0) {
                f = &with[i];
            }
        }
        for (int i = 0; i < N && f != NULL; i++) {
            const struct kyufu_backup_aged *w = &without[i];
            if (!w->keep || kyufu_backup_ledger_cmp(w->term, w->index,
                                                    f->term, f->index) <= 0) {
                continue;
            }
            for (int j = 0; j <= N; j++) {
                if (strcmp(with[j].name, w->name) == 0 && !with[j].keep) {
                    CHECKF(0, "round %d (last %u daily %u monthly %u): %s "
                             "pruned for a future backup",
                          round, keep.last, keep.daily, keep.monthly,
                          w->name);
                    bad++;
                }
            }
        }
        for (int i = 0; i <= N; i++) {
            CHECKF(with[i].at_ms <= with[i].created_ms,
                  "round %d: %s counts after its own time", round,
                  with[i].name);
        }
    }
}

/* The pruning node's own clock a year behind (review finding): every
 * other backup looks dated in the future to it, and must still count at
 * its own time, so retention keeps exactly what a node with a true clock
 * keeps (it kept 3 of 31 daily backups when future times were clamped to
 * the pruner's now). */
static void test_pruner_behind(void)
{
    enum { DAYS = 31 };
    struct kyufu_backup_aged a[DAYS], b[DAYS];
    for (int i = 0; i < DAYS; i++) {
        char name[8];
        snprintf(name, sizeof name, "d%02d", i);
        a[i] = atl(T0 + i * DAY + 3 * HOUR, 2, 100 + 10 * (uint64_t)i, name);
        b[i] = a[i];
    }
    struct kyufu_backup_keep keep = {3, 30, 12};
    int64_t true_now = T0 + DAYS * DAY;
    kyufu_backup_retention(a, DAYS, &keep, true_now);
    kyufu_backup_retention(b, DAYS, &keep, T0 - 365 * DAY);
    int n_a = 0, n_b = 0;
    for (int i = 0; i < DAYS; i++) {
        n_a += a[i].keep;
        n_b += b[i].keep;
        CHECKF(strcmp(a[i].name, b[i].name) == 0 && a[i].keep == b[i].keep,
              "pruner behind: %s kept %d, with a true clock %d", b[i].name,
              b[i].keep, a[i].keep);
    }
    /* 30 days and one month (January): the oldest day goes. */
    CHECKF(n_a == DAYS - 1 && n_b == DAYS - 1 && !b[DAYS - 1].keep,
          "pruner behind: kept %d and %d of %d", n_a, n_b, DAYS);
}

static void test_names(void)
{
    char name[KYUFU_BACKUP_NAME_BYTES_MAX + 1];
    CHECKF(kyufu_backup_auto_name(T0 + 12 * HOUR + 34 * 60000 + 56000, 2, name,
                                 sizeof name) == 0 &&
              strcmp(name, "auto-20260101T123456Z-n2") == 0,
          "name: %s", name);
    CHECKF(kyufu_backup_auto_name_ok(name), "own name is ok");
    CHECKF(kyufu_backup_auto_name(-1000, 2, name, sizeof name) != 0,
          "before 1970 refused");
    CHECKF(kyufu_backup_auto_name(T0, UINT64_MAX, name, 8) != 0,
          "too small a buffer refused");
    const char *bad[] = {
        "",
        "auto-",
        "b1",
        "manual-20260101T123456Z-n2",
        "auto-20260101T123456Z-n0",
        "auto-20260101T123456Z-n02",
        "auto-20260101T123456Z-n",
        "auto-20260101T123456Z-n2x",
        "auto-20260101T123456Z-2",
        "auto-20260101T123456-n2",
        "auto-20260231T123456Z-n2",  /* 31 February */
        "auto-20261301T123456Z-n2",  /* month 13 */
        "auto-20260101T243456Z-n2",  /* hour 24 */
        "auto-20260101T126056Z-n2",  /* minute 60 */
        "auto-19690101T000000Z-n2",  /* before 1970 */
        "auto-2026010xT123456Z-n2",
        "auto-20260101T123456Z-n99999999999999999999",
        "auto-20260101T123456Z-n9223372036854775808",
        ".auto-20260101T123456Z-n2",
        "AUTO-20260101T123456Z-n2",
        "auto-20260101t123456z-n2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(!kyufu_backup_auto_name_ok(bad[i]), "accepted '%s'", bad[i]);
    }
    CHECKF(kyufu_backup_auto_name_ok(
              "auto-20240229T000000Z-n9223372036854775807"),
          "29 February of a leap year, largest id");
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        (void)write(fd, "x", 1);
        close(fd);
    }
}

static void test_remove(void)
{
    char parent[] = "/tmp/kyufu-retention-XXXXXX", p[512], err[256];
    struct stat st;
    if (mkdtemp(parent) == NULL) {
        CHECKF(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    /* A backup's files only: removed whole, nothing hidden left. */
    snprintf(p, sizeof p, "%s/auto-a", parent);
    mkdir(p, 0700);
    const char *files[] = {"manifest.json", "manifest.sig", "node.pem",
                           "chunk-000000.bin", "chunk-000001.bin"};
    for (size_t i = 0; i < 5; i++) {
        char f[600];
        snprintf(f, sizeof f, "%s/%s", p, files[i]);
        touch(f);
    }
    CHECKF(kyufu_backup_remove(parent, "auto-a", err, sizeof err) == 0,
          "remove: %s", err);
    CHECKF(stat(p, &st) != 0, "folder gone");
    snprintf(p, sizeof p, "%s/.auto-a.removing", parent);
    CHECKF(stat(p, &st) != 0, "no hidden leftover");

    /* A foreign file inside: refused, nothing changed. */
    snprintf(p, sizeof p, "%s/auto-b", parent);
    mkdir(p, 0700);
    char f[600];
    snprintf(f, sizeof f, "%s/manifest.json", p);
    touch(f);
    snprintf(f, sizeof f, "%s/notes.txt", p);
    touch(f);
    err[0] = '\0';
    CHECKF(kyufu_backup_remove(parent, "auto-b", err, sizeof err) != 0 &&
              strstr(err, "notes.txt") != NULL,
          "foreign file: %s", err);
    snprintf(f, sizeof f, "%s/manifest.json", p);
    CHECKF(stat(f, &st) == 0, "manifest left in place");
    /* A sub-folder named like a chunk: not a regular file, refused. */
    snprintf(f, sizeof f, "%s/notes.txt", p);
    unlink(f);
    snprintf(f, sizeof f, "%s/chunk-000000.bin", p);
    mkdir(f, 0700);
    CHECKF(kyufu_backup_remove(parent, "auto-b", err, sizeof err) != 0,
          "folder named like a chunk");
    rmdir(f);
    snprintf(f, sizeof f, "%s/manifest.json", p);
    unlink(f);
    rmdir(p);

    /* Hostile names and a missing backup: refused. */
    CHECKF(kyufu_backup_remove(parent, "../etc", err, sizeof err) != 0,
          "path in the name");
    CHECKF(kyufu_backup_remove(parent, "", err, sizeof err) != 0, "empty");
    CHECKF(kyufu_backup_remove(parent, "missing", err, sizeof err) != 0,
          "missing");
    /* A symlink to a folder is not followed. */
    snprintf(p, sizeof p, "%s/target", parent);
    mkdir(p, 0700);
    snprintf(f, sizeof f, "%s/target/manifest.json", parent);
    touch(f);
    char l[600];
    snprintf(l, sizeof l, "%s/auto-link", parent);
    CHECKF(symlink(p, l) == 0, "symlink");
    CHECKF(kyufu_backup_remove(parent, "auto-link", err, sizeof err) != 0,
          "symlink followed");
    CHECKF(stat(f, &st) == 0, "link target untouched");
    unlink(l);
    unlink(f);
    rmdir(p);

    /* Scan of a directory with no backup (and a file, a hidden folder). */
    struct kyufu_backup_scan s;
    snprintf(f, sizeof f, "%s/readme", parent);
    touch(f);
    snprintf(p, sizeof p, "%s/.tmp", parent);
    mkdir(p, 0700);
    snprintf(l, sizeof l, "%s/not-a-backup", parent);
    mkdir(l, 0700);
    CHECKF(kyufu_backup_scan(parent, "/nonexistent-ca.pem", 0, &s, err,
                            sizeof err) == 0 &&
              s.n_good == 0 && s.n_owned == 0 && s.n_bad == 1 &&
              s.newest_past_ms == 0 && s.head_created_ms == 0,
          "scan: good %zu bad %zu", s.n_good, s.n_bad);
    kyufu_backup_scan_free(&s);
    CHECKF(kyufu_backup_scan("/nonexistent-dir-kyufu", "/x", 0, &s, err,
                            sizeof err) != 0 &&
              strstr(err, "nonexistent") != NULL,
          "scan of a missing directory: %s", err);
    unlink(f);
    rmdir(p);
    rmdir(l);
    CHECKF(rmdir(parent) == 0, "parent empty at the end: %s", strerror(errno));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* [backup] require_mount's check (backup_mount.c): "/" and /proc are
 * mount points, a fresh folder is not; mountinfo's escapes; a table that
 * cannot be read or parsed is an error, never "mounted". */
static void test_mount_point(void)
{
    char err[256] = "", dir[] = "/tmp/kyufu-mount-XXXXXX", f[600];
    uint64_t id = 0;
    struct statx sx;
    CHECKF(kyufu_backup_mount_point(KYUFU_BACKUP_MOUNTINFO, "/", &id, err,
                                   sizeof err) == 1,
          "/ is a mount point: %s", err);
    /* The table's id is statx's mount id of the mount's files. */
    CHECKF(statx(AT_FDCWD, "/proc/self", 0, STATX_MNT_ID, &sx) == 0 &&
               (sx.stx_mask & STATX_MNT_ID),
          "statx /proc/self");
    CHECKF(kyufu_backup_mount_point(KYUFU_BACKUP_MOUNTINFO, "/proc", &id,
                                   err, sizeof err) == 1 &&
               id == sx.stx_mnt_id,
          "/proc is a mount point, the mount of its files: %s", err);
    if (mkdtemp(dir) == NULL) {
        CHECKF(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    CHECKF(kyufu_backup_mount_point(KYUFU_BACKUP_MOUNTINFO, dir, NULL, err,
                                   sizeof err) == 0,
          "a fresh folder is no mount point");
    /* A table of the kernel's format, a mount point with a space, and one
     * mounted over (the later line is the mount on top). */
    snprintf(f, sizeof f, "%s/mountinfo", dir);
    write_file(f, "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                  "36 22 0:40 / /mnt/my\\040nas rw shared:9 - nfs4 "
                  "nas:/export rw\n"
                  "37 22 8:1 /srv/a /mnt/bind rw - ext4 /dev/sda1 rw\n"
                  "38 22 0:41 / /mnt/over rw - autofs systemd-1 rw\n"
                  "39 38 0:52 / /mnt/over rw - nfs4 nas:/b rw\n");
    CHECKF(kyufu_backup_mount_point(f, "/mnt/my nas", &id, err,
                                   sizeof err) == 1 &&
               id == 36,
          "escaped space, mount 36: %s", err);
    CHECKF(kyufu_backup_mount_point(f, "/mnt/over", &id, err, sizeof err) ==
                   1 &&
               id == 39,
          "the mount on top gives the id: %s", err);
    CHECKF(kyufu_backup_mount_point(f, "/mnt/my", NULL, err, sizeof err) == 0,
          "a prefix is not the mount point");
    CHECKF(kyufu_backup_mount_point(f, "/mnt/my\\040nas", NULL, err,
                                   sizeof err) == 0,
          "the escaped form is not the path");
    CHECKF(kyufu_backup_mount_point(f, "/mnt/bind", &id, err, sizeof err) ==
                   1 &&
               id == 37,
          "a bind mount counts (a limit: docs/backup.md)");
    CHECKF(kyufu_backup_mount_point(f, "/mnt", NULL, err, sizeof err) == 0,
          "/mnt is not mounted here");
    write_file(f, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n36 22 0:40\n");
    err[0] = '\0';
    CHECKF(kyufu_backup_mount_point(f, "/mnt/nas", NULL, err, sizeof err) ==
                   -1 &&
               strstr(err, "line 2") != NULL,
          "malformed table: %s", err);
    write_file(f, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\nx 22 0:40 / /a rw\n");
    err[0] = '\0';
    CHECKF(kyufu_backup_mount_point(f, "/a", NULL, err, sizeof err) == -1 &&
               strstr(err, "line 2") != NULL,
          "a mount id that is not a number: %s", err);
    unlink(f);
    err[0] = '\0';
    CHECKF(kyufu_backup_mount_point(f, "/", NULL, err, sizeof err) == -1 &&
               strstr(err, "cannot read") != NULL,
          "missing table: %s", err);
    CHECKF(rmdir(dir) == 0, "temp folder left clean: %s", strerror(errno));
}

int main(void)
{
    test_last();
    test_daily_monthly();
    test_equal_and_jumps();
    test_ledger_order();
    test_future();
    test_pruner_behind();
    test_future_never_prunes_newer();
    test_mount_point();
    test_names();
    test_remove();
    if (failures != 0) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
