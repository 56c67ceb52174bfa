/* The SLO file: a strict line parser (slo.h has the grammar).  One pass
 * over the text collects every problem; the rules between keys are checked
 * after it.  On any problem the caller gets INVALID and must not use the
 * values. */
#include "slo.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *kyufu_slo_strerror(int rv)
{
    switch (rv) {
#define KYUFU_SLO__CASE(name, value, text)                                   \
    case value:                                                              \
        return text;
        KYUFU_SLO_ERRORS(KYUFU_SLO__CASE)
#undef KYUFU_SLO__CASE
    default:
        return "unknown error";
    }
}

enum key_id {
    K_TARGET,
    K_BURN,
    K_RTO,
    K_RPO_ACK,
    K_RPO_SITE,
    K_BACKUP_INTERVAL,
    K_RETENTION,
    K_WINDOW,
    K_LAG,
    K_CONTACT,
    K_COUNT
};

static const struct
{
    const char *section;
    const char *key;
    bool required;
    uint64_t min, max; /* integer keys */
} keys[K_COUNT] = {
    [K_TARGET] = {"availability", "target_percent", true, 0, 0},
    [K_BURN] = {"availability", "burn_rate_max", false, 1,
                KYUFU_SLO_BURN_RATE_MAX_MAX},
    [K_RTO] = {"rto", "target_ms", true, KYUFU_SLO_RTO_MS_MIN,
               KYUFU_SLO_RTO_MS_MAX},
    [K_RPO_ACK] = {"rpo", "acknowledged_writes_ms", false, 0, 0},
    [K_RPO_SITE] = {"rpo", "site_loss_ms", false, 1,
                    (uint64_t)KYUFU_SLO_BACKUP_INTERVAL_HOURS_MAX * 3600000u * 2},
    [K_BACKUP_INTERVAL] = {"backup", "interval_hours", false, 1,
                           KYUFU_SLO_BACKUP_INTERVAL_HOURS_MAX},
    [K_RETENTION] = {"backup", "retention_days", false, 1,
                     KYUFU_SLO_RETENTION_DAYS_MAX},
    [K_WINDOW] = {"maintenance", "window", false, 0, 0},
    [K_LAG] = {"alerts", "follower_lag_entries", false, 1,
               KYUFU_SLO_LAG_ENTRIES_MAX},
    [K_CONTACT] = {"alerts", "follower_contact_ms", false,
                   KYUFU_SLO_CONTACT_MS_MIN, KYUFU_SLO_CONTACT_MS_MAX},
};

static const char *const sections[] = {"availability", "rto",    "rpo",
                                       "backup",       "maintenance",
                                       "alerts"};

struct parse
{
    struct kyufu_slo *s;
    unsigned line;
    char section[16]; /* "" before the first header, or after a bad one */
    bool section_ok;
    bool section_bad; /* the last header was refused (reported once) */
    unsigned seen[K_COUNT]; /* line a key was set on */
};

static void problem(struct kyufu_slo *s, unsigned line, const char *section,
                    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void problem(struct kyufu_slo *s, unsigned line, const char *section,
                    const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kyufu_textconf_report(s->problems, KYUFU_SLO_PROBLEMS_MAX, &s->n_problems,
                          &s->n_problems_all, line, section, key, fmt, ap);
    va_end(ap);
}

/* A decimal integer, all digits, no sign, no blanks. */
static bool parse_u64(const char *v, uint64_t *out)
{
    return kyufu_textconf_parse_uint(v, 0, UINT64_MAX, out);
}

/* "99.95" -> 999500 per million: digits, an optional '.' and at most four
 * decimals. */
static bool parse_percent_ppm(const char *v, uint32_t *out)
{
    uint64_t whole = 0, frac = 0;
    unsigned decimals = 0;
    const char *p = v;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > 100) {
            return false;
        }
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return false;
        }
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++decimals > 4) {
                return false;
            }
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
    }
    if (*p != '\0') {
        return false;
    }
    for (; decimals < 4; decimals++) {
        frac *= 10;
    }
    uint64_t ppm = whole * 10000 + frac;
    if (ppm > 1000000) {
        return false;
    }
    *out = (uint32_t)ppm;
    return true;
}

static const char *const wdays[7] = {"sun", "mon", "tue", "wed",
                                     "thu", "fri", "sat"};

/* HH:MM -> minute of the day. */
static bool parse_hhmm(const char *v, unsigned *out)
{
    if (strlen(v) != 5 || v[2] != ':') {
        return false;
    }
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (v[i] < '0' || v[i] > '9')) {
            return false;
        }
    }
    unsigned h = (unsigned)(v[0] - '0') * 10 + (unsigned)(v[1] - '0');
    unsigned m = (unsigned)(v[3] - '0') * 10 + (unsigned)(v[4] - '0');
    if (h > 23 || m > 59) {
        return false;
    }
    *out = h * 60 + m;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil); no time zone, no libc. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool parse_date(const char *v, int64_t *days)
{
    if (strlen(v) != 10 || v[4] != '-' || v[7] != '-') {
        return false;
    }
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (v[i] < '0' || v[i] > '9')) {
            return false;
        }
    }
    unsigned y = (unsigned)atoi(v);
    unsigned m = (unsigned)atoi(v + 5);
    unsigned d = (unsigned)atoi(v + 8);
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
    if (y < 2000 || y > 2999 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) {
        return false;
    }
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap) {
        return false;
    }
    *days = days_from_civil(y, m, d);
    return true;
}

/* "weekly DAY HH:MM MINUTES" | "once YYYY-MM-DD HH:MM MINUTES". */
static const char *parse_window(char *v, struct kyufu_slo_window *w)
{
    char *tok[5];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(v, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        if (n == 5) {
            return "too many fields";
        }
        tok[n++] = t;
    }
    if (n != 4) {
        return "expected 'weekly DAY HH:MM MINUTES' or 'once YYYY-MM-DD "
               "HH:MM MINUTES'";
    }
    memset(w, 0, sizeof *w);
    if (strcmp(tok[0], "weekly") == 0) {
        w->weekly = true;
        bool found = false;
        for (unsigned i = 0; i < 7; i++) {
            if (strcmp(tok[1], wdays[i]) == 0) {
                w->wday = i;
                found = true;
            }
        }
        if (!found) {
            return "DAY must be one of sun mon tue wed thu fri sat";
        }
    } else if (strcmp(tok[0], "once") == 0) {
        int64_t days;
        if (!parse_date(tok[1], &days)) {
            return "the date must be a real YYYY-MM-DD (2000..2999)";
        }
        w->start_ms = days * 86400000;
    } else {
        return "a window is 'weekly ...' or 'once ...'";
    }
    unsigned minute;
    if (!parse_hhmm(tok[2], &minute)) {
        return "the start must be HH:MM (UTC, 00:00..23:59)";
    }
    uint64_t minutes;
    if (!parse_u64(tok[3], &minutes) || minutes < 1 ||
        minutes > KYUFU_SLO_WINDOW_MINUTES_MAX) {
        return "MINUTES must be an integer in [1, 10080]";
    }
    w->minutes = (unsigned)minutes;
    if (w->weekly) {
        w->start_min = minute;
    } else {
        w->start_ms += (int64_t)minute * 60000;
    }
    return NULL;
}

static void set_key(struct parse *ps, enum key_id k, char *value)
{
    struct kyufu_slo *s = ps->s;
    const char *sec = keys[k].section, *key = keys[k].key;
    if (k != K_WINDOW && ps->seen[k] != 0) {
        problem(s, ps->line, sec, key, "'%s' given twice (first on line %u)",
                key, ps->seen[k]);
        return;
    }
    ps->seen[k] = ps->line;
    uint64_t v = 0;
    if (k == K_TARGET) {
        uint32_t ppm;
        if (!parse_percent_ppm(value, &ppm) || ppm < KYUFU_SLO_TARGET_PPM_MIN ||
            ppm > KYUFU_SLO_TARGET_PPM_MAX) {
            problem(s, ps->line, sec, key,
                    "'%.40s' is not a percentage in [90, 99.9999] with at "
                    "most 4 decimals", value);
            return;
        }
        s->target_ppm = ppm;
        return;
    }
    if (k == K_WINDOW) {
        if (s->n_windows == KYUFU_SLO_WINDOWS_MAX) {
            problem(s, ps->line, sec, key, "more than %u windows",
                    KYUFU_SLO_WINDOWS_MAX);
            return;
        }
        const char *why = parse_window(value, &s->windows[s->n_windows]);
        if (why != NULL) {
            problem(s, ps->line, sec, key, "%s", why);
            return;
        }
        s->n_windows++;
        return;
    }
    if (!parse_u64(value, &v)) {
        problem(s, ps->line, sec, key, "'%.40s' is not a non-negative integer",
                value);
        return;
    }
    if (k == K_RPO_ACK) {
        if (v != 0) {
            problem(s, ps->line, sec, key,
                    "must be 0: an acknowledged write is on a quorum of "
                    "nodes and survives any single failure");
        }
        return;
    }
    if (v < keys[k].min || v > keys[k].max) {
        problem(s, ps->line, sec, key, "%llu is outside [%llu, %llu]",
                (unsigned long long)v, (unsigned long long)keys[k].min,
                (unsigned long long)keys[k].max);
        return;
    }
    switch (k) {
    case K_BURN:
        s->burn_rate_max = (uint32_t)v;
        break;
    case K_RTO:
        s->rto_target_ms = v;
        break;
    case K_RPO_SITE:
        s->rpo_site_ms = v;
        break;
    case K_BACKUP_INTERVAL:
        s->backup_interval_hours = (uint32_t)v;
        break;
    case K_RETENTION:
        s->backup_retention_days = (uint32_t)v;
        break;
    case K_LAG:
        s->follower_lag_entries = v;
        break;
    case K_CONTACT:
        s->follower_contact_ms = (uint32_t)v;
        break;
    default:
        assert(0 && "handled above");
    }
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r')) {
        p[--n] = '\0';
    }
    return p;
}

static void one_line(struct parse *ps, char *text)
{
    struct kyufu_slo *s = ps->s;
    /* Inline comment: from a ';' or '#' after a blank. */
    for (size_t i = 1; text[i] != '\0'; i++) {
        if ((text[i] == '#' || text[i] == ';') &&
            (text[i - 1] == ' ' || text[i - 1] == '\t')) {
            text[i] = '\0';
            break;
        }
    }
    char *p = trim(text);
    if (p[0] == '\0' || p[0] == '#' || p[0] == ';') {
        return;
    }
    for (const char *q = p; *q != '\0'; q++) {
        if ((unsigned char)*q < 0x20 && *q != '\t') {
            problem(s, ps->line, ps->section, "", "control character 0x%02x",
                    (unsigned)(unsigned char)*q);
            return;
        }
    }
    if (p[0] == '[') {
        size_t n = strlen(p);
        ps->section[0] = '\0';
        ps->section_ok = false;
        ps->section_bad = true;
        if (n < 3 || p[n - 1] != ']') {
            problem(s, ps->line, "", "", "a section header is '[name]'");
            return;
        }
        p[n - 1] = '\0';
        char *name = trim(p + 1);
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
            if (strcmp(name, sections[i]) == 0) {
                snprintf(ps->section, sizeof ps->section, "%s", name);
                ps->section_ok = true;
                ps->section_bad = false;
                return;
            }
        }
        problem(s, ps->line, "", "",
                "unknown section [%.40s] (known: availability, rto, rpo, "
                "backup, maintenance, alerts)", name);
        return;
    }
    char *eq = strchr(p, '=');
    if (eq == NULL) {
        problem(s, ps->line, ps->section, "",
                "expected '[section]' or 'key = value'");
        return;
    }
    *eq = '\0';
    char *key = trim(p);
    char *value = trim(eq + 1);
    if (!ps->section_ok) {
        if (!ps->section_bad) {
            problem(s, ps->line, "", "", "key '%.31s' outside any known section",
                    key);
        }
        return;
    }
    if (value[0] == '\0') {
        problem(s, ps->line, ps->section, key, "empty value");
        return;
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (strcmp(keys[k].section, ps->section) == 0 &&
            strcmp(keys[k].key, key) == 0) {
            set_key(ps, (enum key_id)k, value);
            return;
        }
    }
    problem(s, ps->line, ps->section, key, "unknown key '%.31s' in [%s]", key,
            ps->section);
}

static void check_whole(struct parse *ps)
{
    struct kyufu_slo *s = ps->s;
    for (int k = 0; k < K_COUNT; k++) {
        if (keys[k].required && ps->seen[k] == 0) {
            problem(s, 0, keys[k].section, keys[k].key,
                    "required key '%s' is missing from [%s]", keys[k].key,
                    keys[k].section);
        }
    }
    uint64_t interval_ms = (uint64_t)s->backup_interval_hours * 3600000u;
    if (ps->seen[K_RPO_SITE] == 0) {
        s->rpo_site_ms = interval_ms;
    } else if (s->rpo_site_ms != 0 && s->rpo_site_ms < interval_ms) {
        problem(s, ps->seen[K_RPO_SITE], "rpo", "site_loss_ms",
                "%llu ms is shorter than [backup] interval_hours (%u h): "
                "losing the site loses up to one backup interval",
                (unsigned long long)s->rpo_site_ms, s->backup_interval_hours);
    }
}

/* Parse into *out, whose path is set (load) or "" (parse). */
static int parse_text(const char *text, size_t len, struct kyufu_slo *out)
{
    char path[sizeof out->path];
    snprintf(path, sizeof path, "%s", out->path);
    memset(out, 0, sizeof *out);
    memcpy(out->path, path, sizeof path);
    out->burn_rate_max = KYUFU_SLO_BURN_RATE_MAX_DEFAULT;
    out->backup_interval_hours = KYUFU_SLO_BACKUP_INTERVAL_HOURS_DEFAULT;
    out->backup_retention_days = KYUFU_SLO_RETENTION_DAYS_DEFAULT;
    out->follower_lag_entries = KYUFU_SLO_LAG_ENTRIES_DEFAULT;
    out->follower_contact_ms = KYUFU_SLO_CONTACT_MS_DEFAULT;

    struct parse ps = {.s = out};
    if (len > KYUFU_SLO_FILE_BYTES_MAX) {
        problem(out, 0, "", "", "larger than %u bytes",
                KYUFU_SLO_FILE_BYTES_MAX);
        return KYUFU_SLO_EINVALID;
    }
    if (memchr(text, '\0', len) != NULL) {
        problem(out, 0, "", "", "holds a NUL byte: not a text file");
        return KYUFU_SLO_EINVALID;
    }
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        pos = 3;
    }
    char line[KYUFU_SLO_LINE_BYTES_MAX + 1];
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        ps.line++;
        if (n > KYUFU_SLO_LINE_BYTES_MAX) {
            problem(out, ps.line, ps.section, "", "line is longer than %u bytes",
                    KYUFU_SLO_LINE_BYTES_MAX);
        } else {
            memcpy(line, text + pos, n);
            line[n] = '\0';
            one_line(&ps, line);
        }
        pos += n + 1;
    }
    check_whole(&ps);
    return out->n_problems_all == 0 ? 0 : KYUFU_SLO_EINVALID;
}

int kyufu_slo_parse(const char *text, size_t len, struct kyufu_slo *out)
{
    out->path[0] = '\0';
    return parse_text(text, len, out);
}

int kyufu_slo_load(const char *path, struct kyufu_slo *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        problem(out, 0, "", "", "cannot open: %s", strerror(errno));
        return KYUFU_SLO_EIO;
    }
    char *buf = malloc(KYUFU_SLO_FILE_BYTES_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        problem(out, 0, "", "", "out of memory");
        return KYUFU_SLO_EIO;
    }
    size_t n = fread(buf, 1, KYUFU_SLO_FILE_BYTES_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        problem(out, 0, "", "", "read error");
        return KYUFU_SLO_EIO;
    }
    int rv = parse_text(buf, n, out);
    free(buf);
    return rv;
}

void kyufu_slo_print_problems(const struct kyufu_slo *s, FILE *to)
{
    for (size_t i = 0; i < s->n_problems; i++) {
        const struct kyufu_textconf_problem *p = &s->problems[i];
        fprintf(to, "%s:%u: ", s->path[0] != '\0' ? s->path : "(slo)", p->line);
        if (p->section[0] != '\0') {
            fprintf(to, "[%s] ", p->section);
        }
        if (p->key[0] != '\0') {
            fprintf(to, "%s: ", p->key);
        }
        fprintf(to, "%s\n", p->message);
    }
    if (s->n_problems_all > s->n_problems) {
        fprintf(to, "%s: %zu more problem(s)\n", s->path,
                s->n_problems_all - s->n_problems);
    }
}

void kyufu_slo_write_default(FILE *to)
{
    fprintf(to,
            "# kyufu service level objectives (docs/sla.md \"SLO file\").\n"
            "# kyufud's [sla] slo_file and kyufuctl's slo_file name this file.\n"
            "\n"
            "[availability]\n"
            "target_percent = 99.9        ; writes accepted, per calendar month (UTC)\n"
            "burn_rate_max = %u           ; alert when the last hour burns the budget this many times too fast\n"
            "\n"
            "[rto]\n"
            "target_ms = 10000            ; last commit under the old leader -> first under the new\n"
            "\n"
            "[rpo]\n"
            "acknowledged_writes_ms = 0   ; an acknowledged write is never lost\n"
            "site_loss_ms = %llu     ; losing the whole site: one backup interval\n"
            "\n"
            "[backup]\n"
            "interval_hours = %u\n"
            "retention_days = %u\n"
            "\n"
            "[maintenance]\n"
            "; window = weekly sun 02:00 120      ; UTC start, minutes\n"
            "; window = once 2027-01-10 01:00 180\n"
            "\n"
            "[alerts]\n"
            "follower_lag_entries = %u    ; a follower this far behind the commit index\n"
            "follower_contact_ms = %u      ; a node not heard from for this long\n",
            KYUFU_SLO_BURN_RATE_MAX_DEFAULT,
            (unsigned long long)KYUFU_SLO_BACKUP_INTERVAL_HOURS_DEFAULT * 3600000ull,
            KYUFU_SLO_BACKUP_INTERVAL_HOURS_DEFAULT,
            KYUFU_SLO_RETENTION_DAYS_DEFAULT, KYUFU_SLO_LAG_ENTRIES_DEFAULT,
            KYUFU_SLO_CONTACT_MS_DEFAULT);
}

uint64_t kyufu_slo_budget_ms(const struct kyufu_slo *s, int64_t from_ms,
                             int64_t to_ms)
{
    if (to_ms <= from_ms) {
        return 0;
    }
    uint64_t len = (uint64_t)(to_ms - from_ms);
    /* len < 2^43 for any real range; the product stays below 2^63. */
    return len / 1000000u * (1000000u - s->target_ppm) +
           len % 1000000u * (1000000u - s->target_ppm) / 1000000u;
}

struct span
{
    int64_t a, b;
};

static int span_cmp(const void *x, const void *y)
{
    const struct span *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

uint64_t kyufu_slo_maintenance_ms(const struct kyufu_slo *s, int64_t from_ms,
                                  int64_t to_ms)
{
    if (to_ms <= from_ms || s->n_windows == 0) {
        return 0;
    }
    const int64_t week = 7 * 86400000LL;
    /* 1970-01-01 was a Thursday (wday 4): Sunday 00:00 of its week. */
    const int64_t sunday0 = -4 * 86400000LL;
    int64_t first_week = (from_ms - sunday0) / week - 2;
    int64_t last_week = (to_ms - sunday0) / week + 1;
    size_t cap = s->n_windows * (size_t)(last_week - first_week + 1);
    struct span *sp = malloc(cap * sizeof *sp);
    if (sp == NULL) {
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->n_windows; i++) {
        const struct kyufu_slo_window *w = &s->windows[i];
        int64_t dur = (int64_t)w->minutes * 60000;
        if (!w->weekly) {
            sp[n++] = (struct span){w->start_ms, w->start_ms + dur};
            continue;
        }
        for (int64_t k = first_week; k <= last_week; k++) {
            int64_t a = sunday0 + k * week + (int64_t)w->wday * 86400000LL +
                        (int64_t)w->start_min * 60000;
            sp[n++] = (struct span){a, a + dur};
        }
    }
    qsort(sp, n, sizeof *sp, span_cmp);
    uint64_t total = 0;
    int64_t cur_a = 0, cur_b = 0;
    bool open = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && open && sp[i].a <= cur_b) {
            cur_b = sp[i].b > cur_b ? sp[i].b : cur_b;
            continue;
        }
        if (open) {
            int64_t a = cur_a > from_ms ? cur_a : from_ms;
            int64_t b = cur_b < to_ms ? cur_b : to_ms;
            total += b > a ? (uint64_t)(b - a) : 0;
        }
        if (i < n) {
            cur_a = sp[i].a;
            cur_b = sp[i].b;
            open = true;
        }
    }
    free(sp);
    return total;
}

int kyufu_slo_month_range(const char *yyyy_mm, int64_t *from_ms,
                          int64_t *to_ms)
{
    if (yyyy_mm == NULL || strlen(yyyy_mm) != 7 || yyyy_mm[4] != '-') {
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        if (i != 4 && (yyyy_mm[i] < '0' || yyyy_mm[i] > '9')) {
            return -1;
        }
    }
    unsigned y = (unsigned)atoi(yyyy_mm);
    unsigned m = (unsigned)atoi(yyyy_mm + 5);
    if (y < 2000 || y > 2999 || m < 1 || m > 12) {
        return -1;
    }
    *from_ms = days_from_civil(y, m, 1) * 86400000;
    *to_ms = (m == 12 ? days_from_civil(y + 1, 1, 1)
                      : days_from_civil(y, m + 1, 1)) *
             86400000;
    return 0;
}

void kyufu_slo_window_text(const struct kyufu_slo_window *w, char *buf,
                           size_t len)
{
    if (w->weekly) {
        snprintf(buf, len, "weekly %s %02u:%02u %u", wdays[w->wday % 7],
                 w->start_min / 60, w->start_min % 60, w->minutes);
        return;
    }
    /* civil_from_days (Hinnant) */
    int64_t z = w->start_ms / 86400000 + 719468;
    unsigned minute = (unsigned)(w->start_ms % 86400000 / 60000);
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(buf, len, "once %04lld-%02u-%02u %02u:%02u %u", (long long)y, m, d,
             minute / 60, minute % 60, w->minutes);
}
