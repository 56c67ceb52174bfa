/* The SLO file (docs/sla.md "SLO file"): what the cluster promises, read by
 * kyufud (the SLA evaluator, sla_eval.h) and by kyufuctl (sla show, report,
 * check).  Its path is kyufud.conf's [sla] slo_file and kyufuctl.conf's
 * slo_file.
 *
 *   [availability] target_percent (required), burn_rate_max
 *   [rto]          target_ms (required)
 *   [rpo]          acknowledged_writes_ms (must be 0), site_loss_ms
 *   [backup]       interval_hours, retention_days
 *   [maintenance]  window = weekly DAY HH:MM MINUTES | once YYYY-MM-DD HH:MM MINUTES
 *                  (UTC; the key repeats, one line per window)
 *   [alerts]       follower_lag_entries, follower_contact_ms
 *
 * Lines: "[section]", "key = value", blank, or a comment (first non-blank
 * ';' or '#'); an inline comment starts at a ';' or '#' after a blank.
 * Strict, as kyufud.conf: an unknown section or key, a key given twice
 * (window excepted), a value that does not parse or is out of bounds, a
 * missing required key, a NUL byte, an over-long line or file are all
 * reported, each with its line, section and key; nothing is half-loaded.
 *
 * No I/O but reading the file in kyufu_slo_load; no clock. */
#ifndef KYUFU_NODE_SLO_H
#define KYUFU_NODE_SLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "textconf.h"

/* ------------------------------------------------------------ limits */

/* A hand-written file of a few dozen lines; anything larger is not one. */
#define KYUFU_SLO_FILE_BYTES_MAX 65536u
/* One line: a key, a value and a comment fit easily. */
#define KYUFU_SLO_LINE_BYTES_MAX 512u
/* Planned maintenance windows: a weekly slot and a few one-off dates. */
#define KYUFU_SLO_WINDOWS_MAX 32u
/* A window lasts at most a week (a weekly window longer than that would
 * cover everything). */
#define KYUFU_SLO_WINDOW_MINUTES_MAX 10080u
/* The target: at least 90% (below that it is no service level), at most
 * 99.9999% (six nines: the ledger's heartbeat resolution cannot show more).
 * Kept as parts per million. */
#define KYUFU_SLO_TARGET_PPM_MIN 900000u
#define KYUFU_SLO_TARGET_PPM_MAX 999999u
/* RTO target: 100 ms (below one election) .. 1 h. */
#define KYUFU_SLO_RTO_MS_MIN 100u
#define KYUFU_SLO_RTO_MS_MAX 3600000u
/* Budget burn rate that alerts (x the even rate over the last hour). */
#define KYUFU_SLO_BURN_RATE_MAX_MAX 1000u
/* Backups: hourly .. weekly; kept 1 day .. 10 years. */
#define KYUFU_SLO_BACKUP_INTERVAL_HOURS_MAX 168u
#define KYUFU_SLO_RETENTION_DAYS_MAX 3660u
/* A follower is lagging beyond this many entries behind the leader's
 * commit index; or not heard from for this long (at least one election
 * timeout's worth of heartbeats, at most a minute). */
#define KYUFU_SLO_LAG_ENTRIES_MAX 100000000u
#define KYUFU_SLO_CONTACT_MS_MIN 200u
#define KYUFU_SLO_CONTACT_MS_MAX 60000u
/* Problems described per load (more are counted). */
#define KYUFU_SLO_PROBLEMS_MAX 16u

/* Defaults of the optional keys (docs/sla.md lists them). */
#define KYUFU_SLO_BURN_RATE_MAX_DEFAULT 10u
#define KYUFU_SLO_BACKUP_INTERVAL_HOURS_DEFAULT 24u
#define KYUFU_SLO_RETENTION_DAYS_DEFAULT 35u
#define KYUFU_SLO_LAG_ENTRIES_DEFAULT 10000u
#define KYUFU_SLO_CONTACT_MS_DEFAULT 1000u

/* ------------------------------------------------------------ errors */

#define KYUFU_SLO_ERRORS(X)                                                  \
    X(OK, 0, "ok")                                                           \
    X(IO, -1, "cannot read the SLO file")                                    \
    X(INVALID, -2, "the SLO file has errors")

enum kyufu_slo_error {
#define KYUFU_SLO__ENUM(name, value, text) KYUFU_SLO_E##name = value,
    KYUFU_SLO_ERRORS(KYUFU_SLO__ENUM)
#undef KYUFU_SLO__ENUM
};

const char *kyufu_slo_strerror(int rv);

/* ------------------------------------------------------------ the SLO */

struct kyufu_slo_window
{
    bool weekly;          /* else once */
    unsigned wday;        /* weekly: 0 = Sunday .. 6 */
    int64_t start_ms;     /* once: unix ms of the start */
    unsigned start_min;   /* weekly: minute of the day (UTC) */
    unsigned minutes;     /* 1..KYUFU_SLO_WINDOW_MINUTES_MAX */
};

struct kyufu_slo
{
    char path[1024];                 /* the file it came from ("" parsed text) */
    uint32_t target_ppm;             /* monthly availability, per million */
    uint32_t burn_rate_max;
    uint64_t rto_target_ms;
    uint64_t rpo_ack_ms;             /* always 0 */
    uint64_t rpo_site_ms;            /* default: the backup interval */
    uint32_t backup_interval_hours;
    uint32_t backup_retention_days;
    struct kyufu_slo_window windows[KYUFU_SLO_WINDOWS_MAX];
    size_t n_windows;
    uint64_t follower_lag_entries;
    uint32_t follower_contact_ms;

    /* Filled when load/parse returns INVALID (or IO: problems[0]). */
    struct kyufu_textconf_problem problems[KYUFU_SLO_PROBLEMS_MAX];
    size_t n_problems;     /* described */
    size_t n_problems_all; /* found */
};

/* Read and validate `path` into *out (caller-allocated, filled even on
 * error with the problems).  Returns 0, IO or INVALID. */
int kyufu_slo_load(const char *path, struct kyufu_slo *out);

/* Same from `len` bytes of text (tests, and load itself). */
int kyufu_slo_parse(const char *text, size_t len, struct kyufu_slo *out);

/* Print every problem of a failed load as "FILE:LINE: [section] key: message"
 * lines to `to`. */
void kyufu_slo_print_problems(const struct kyufu_slo *s, FILE *to);

/* The default SLO file `kyufuctl cluster init` writes (commented). */
void kyufu_slo_write_default(FILE *to);

/* The error budget of [from_ms, to_ms): (1 - target) of its length, in ms. */
uint64_t kyufu_slo_budget_ms(const struct kyufu_slo *s, int64_t from_ms,
                             int64_t to_ms);

/* Milliseconds of [from_ms, to_ms) inside planned maintenance windows
 * (overlapping windows counted once). */
uint64_t kyufu_slo_maintenance_ms(const struct kyufu_slo *s, int64_t from_ms,
                                  int64_t to_ms);

/* [from, to) of the calendar month "YYYY-MM" (UTC, years 2000..2999) in
 * unix ms.  0, or -1 when the text is not such a month. */
int kyufu_slo_month_range(const char *yyyy_mm, int64_t *from_ms,
                          int64_t *to_ms);

/* The window as its file text ("weekly sun 02:00 120"). */
void kyufu_slo_window_text(const struct kyufu_slo_window *w, char *buf,
                           size_t len);

#endif /* KYUFU_NODE_SLO_H */
