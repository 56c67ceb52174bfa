/* kyufuctl sla report: the report document and its renderings.
 *
 * One document, built once (ctl__sla_report_build, from the cluster's
 * AvailabilityReport, its incidents and the SLO), is what --json prints and
 * what auditors keep; the text summary and the HTML page are rendered from
 * that document alone, so a saved report (--input) renders exactly as the
 * live one did.  A document read back is checked first
 * (ctl__sla_report_check): every field the renderers use, with its type and
 * bounds, or a clear error naming the field.
 *
 * The HTML page is self-contained: inline CSS, inline SVG (timeline, RTO
 * distribution), no script, no font, no URL; every string from the document
 * is escaped.  Elements that carry a figure have an id or class the tests
 * read (docs/sla.md "Report"). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "kyufu/v1/service.pb-c.h"
#include "slo.h"

/* ------------------------------------------------------------ helpers */

static void iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
}

const char *ctl__sla_cause_name(int cause)
{
    switch (cause) {
    case KYUFU__V1__FAILOVER_CAUSE__CAUSE_CRASH:
        return "crash";
    case KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED:
        return "planned";
    case KYUFU__V1__FAILOVER_CAUSE__CAUSE_PARTITION:
        return "partition";
    case KYUFU__V1__FAILOVER_CAUSE__CAUSE_POWER:
        return "power";
    case KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_CRASH:
        return "drill_crash";
    case KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_PLANNED:
        return "drill_planned";
    default:
        return "unknown";
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned p)
{
    if (n == 0) {
        return 0;
    }
    size_t rank = (size_t)ceil((double)p / 100.0 * (double)n);
    return v[rank == 0 ? 0 : rank - 1];
}

static double ppm_percent(uint32_t ppm)
{
    return (double)ppm / 10000.0;
}

/* ------------------------------------------------------------ build */

json_t *ctl__sla_report_build(const char *month,
                              const Kyufu__V1__AvailabilityReport *rep,
                              Kyufu__V1__Incident *const *incidents,
                              size_t n_incidents,
                              const struct kyufu_slo *slo,
                              int64_t generated_ms)
{
    json_t *doc = json_object();
    if (doc == NULL) {
        return NULL;
    }
    json_object_set_new(doc, "kind", json_string("kyufu.sla.report/v1"));
    json_object_set_new(doc, "month", json_string(month));
    json_object_set_new(doc, "from_ms", json_integer(rep->from_ms));
    json_object_set_new(doc, "to_ms", json_integer(rep->to_ms));
    json_object_set_new(doc, "generated_ms", json_integer(generated_ms));

    /* The SLO as the report judged by it. */
    json_t *s = json_object();
    json_object_set_new(s, "target_percent", json_real(ppm_percent(slo->target_ppm)));
    json_object_set_new(s, "rto_target_ms", json_integer((json_int_t)slo->rto_target_ms));
    json_object_set_new(s, "rpo_acknowledged_writes_ms", json_integer(0));
    json_object_set_new(s, "rpo_site_loss_ms", json_integer((json_int_t)slo->rpo_site_ms));
    json_object_set_new(s, "backup_interval_hours", json_integer(slo->backup_interval_hours));
    json_object_set_new(s, "backup_retention_days", json_integer(slo->backup_retention_days));
    json_t *mw = json_array();
    for (size_t i = 0; i < slo->n_windows; i++) {
        char w[64];
        kyufu_slo_window_text(&slo->windows[i], w, sizeof w);
        json_array_append_new(mw, json_string(w));
    }
    json_object_set_new(s, "maintenance_windows", mw);
    json_object_set_new(doc, "slo", s);
    json_object_set_new(doc, "target", json_real(ppm_percent(slo->target_ppm)));

    /* Availability: write-unavailability inside planned maintenance does
     * not count against the budget. */
    uint64_t excluded = 0;
    json_t *windows = json_array();
    for (size_t i = 0; i < rep->n_windows; i++) {
        const Kyufu__V1__UnavailabilityWindow *w = rep->windows[i];
        int64_t a = w->start_ms, b = w->end_ms;
        uint64_t in_maint = kyufu_slo_maintenance_ms(slo, a, b);
        excluded += in_maint;
        json_t *o = json_pack("{s:I,s:I,s:s,s:I}", "start_ms", (json_int_t)a,
                              "end_ms", (json_int_t)b, "cause",
                              ctl__sla_cause_name(w->cause), "maintenance_ms",
                              (json_int_t)in_maint);
        json_array_append_new(windows, o);
    }
    if (excluded > rep->unavailable_ms) {
        excluded = rep->unavailable_ms;
    }
    uint64_t counted = rep->unavailable_ms - excluded;
    json_object_set_new(doc, "observed_ms", json_integer((json_int_t)rep->observed_ms));
    json_object_set_new(doc, "unavailable_ms", json_integer((json_int_t)rep->unavailable_ms));
    json_object_set_new(doc, "maintenance_excluded_ms", json_integer((json_int_t)excluded));
    /* The target is per calendar month: it is met while the month's error
     * budget holds the unavailability counted so far.  (A ratio over the
     * observed time alone would call a cluster created an hour ago, with
     * one two-second failover, a missed month.) */
    uint64_t budget = kyufu_slo_budget_ms(slo, rep->from_ms, rep->to_ms);
    if (rep->observed_ms > 0) {
        double avail = 100.0 * (1.0 - (double)counted / (double)rep->observed_ms);
        json_object_set_new(doc, "availability", json_real(avail));
        json_object_set_new(doc, "met", json_boolean(counted <= budget));
    } else {
        json_object_set_new(doc, "availability", json_null());
        json_object_set_new(doc, "met", json_null());
    }
    json_object_set_new(doc, "budget",
                        json_pack("{s:I,s:I,s:I,s:f}", "total_ms", (json_int_t)budget,
                                  "used_ms", (json_int_t)counted, "remaining_ms",
                                  (json_int_t)(counted >= budget ? 0 : budget - counted),
                                  "used_percent",
                                  budget > 0 ? 100.0 * (double)counted / (double)budget
                                             : 0.0));
    json_object_set_new(doc, "windows", windows);

    /* Failovers and the RTO distribution. */
    json_t *fos = json_array();
    uint64_t *rtos = calloc(rep->n_failovers + 1, sizeof *rtos);
    size_t over = 0;
    for (size_t i = 0; i < rep->n_failovers; i++) {
        const Kyufu__V1__Failover *f = rep->failovers[i];
        char t[80];
        iso_time(f->first_commit_new_ms, t, sizeof t);
        over += f->rto_ms > slo->rto_target_ms;
        if (rtos != NULL) {
            rtos[i] = f->rto_ms;
        }
        json_t *o = json_pack(
            "{s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:b}", "time_ms",
            (json_int_t)f->first_commit_new_ms, "time", t, "cause",
            ctl__sla_cause_name(f->cause), "rto_ms", (json_int_t)f->rto_ms, "term",
            (json_int_t)f->term, "old_leader_id", (json_int_t)f->old_leader_id,
            "new_leader_id", (json_int_t)f->new_leader_id, "last_commit_old_ms",
            (json_int_t)f->last_commit_old_ms, "first_commit_new_ms",
            (json_int_t)f->first_commit_new_ms, "drill_id",
            f->drill_id != NULL ? f->drill_id : "", "rto_met",
            f->rto_ms <= slo->rto_target_ms);
        json_array_append_new(fos, o);
    }
    json_object_set_new(doc, "failovers", fos);
    if (rtos != NULL) {
        qsort(rtos, rep->n_failovers, sizeof *rtos, cmp_u64);
    }
    size_t nf = rtos != NULL ? rep->n_failovers : 0;
    json_object_set_new(
        doc, "rto",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "target_ms",
                  (json_int_t)slo->rto_target_ms, "count", (json_int_t)nf, "p50_ms",
                  (json_int_t)percentile(rtos, nf, 50), "p90_ms",
                  (json_int_t)percentile(rtos, nf, 90), "max_ms",
                  (json_int_t)(nf > 0 ? rtos[nf - 1] : 0), "over_target",
                  (json_int_t)over));
    free(rtos);

    /* RPO evidence. */
    json_object_set_new(doc, "writes_lost", json_integer((json_int_t)rep->writes_lost));
    json_object_set_new(
        doc, "rpo",
        json_pack("{s:I,s:I,s:b,s:I,s:s}", "acknowledged_writes_target_ms",
                  (json_int_t)0, "writes_lost", (json_int_t)rep->writes_lost,
                  "acknowledged_writes_met", rep->writes_lost == 0,
                  "site_loss_target_ms", (json_int_t)slo->rpo_site_ms, "evidence",
                  "every failover drill verifies each acknowledged write present "
                  "exactly once; writes_lost counts those found missing"));
    /* Backups: none exist yet (docs/sla.md). */
    json_object_set_new(
        doc, "backups",
        json_pack("{s:b,s:s,s:I,s:I}", "configured", 0, "status",
                  "no backups configured", "interval_hours",
                  (json_int_t)slo->backup_interval_hours, "retention_days",
                  (json_int_t)slo->backup_retention_days));

    json_t *days = json_array();
    for (size_t i = 0; i < rep->n_days; i++) {
        const Kyufu__V1__DaySummary *d = rep->days[i];
        json_array_append_new(
            days, json_pack("{s:s,s:I,s:I,s:I,s:I}", "day", d->day != NULL ? d->day : "",
                            "unavailable_ms", (json_int_t)d->unavailable_ms,
                            "failovers", (json_int_t)d->failovers, "max_rto_ms",
                            (json_int_t)d->max_rto_ms, "heartbeats",
                            (json_int_t)d->heartbeats));
    }
    json_object_set_new(doc, "days", days);
    json_object_set_new(doc, "heartbeat_interval_ms",
                        json_integer((json_int_t)rep->heartbeat_interval_ms));

    json_t *inc = json_array();
    size_t open = 0;
    for (size_t i = 0; i < n_incidents; i++) {
        const Kyufu__V1__Incident *x = incidents[i];
        bool is_open = x->state == KYUFU__V1__INCIDENT_STATE__INCIDENT_OPEN;
        open += is_open;
        json_array_append_new(
            inc, json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:s,s:s,s:s}", "id",
                           (json_int_t)x->id, "alert", x->alert, "subject", x->subject,
                           "severity", x->severity, "summary", x->summary,
                           "opened_ms", (json_int_t)x->opened_ms, "state",
                           is_open ? "open" : "closed", "closed_ms",
                           (json_int_t)x->closed_ms, "closed_by", x->closed_by,
                           "cause", x->cause, "fix", x->fix));
    }
    json_object_set_new(doc, "incidents", inc);
    json_object_set_new(doc, "open_incidents", json_integer((json_int_t)open));
    return doc;
}

/* ------------------------------------------------------------ check */

/* Bounds of a document read back: far above any real month, low enough
 * that a hostile file cannot make the renderer draw forever. */
#define REPORT_ITEMS_MAX 100000u
#define REPORT_STRING_BYTES_MAX 1000u

static bool is_int(json_t *o, const char *k, json_int_t lo, json_int_t hi)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) >= lo &&
           json_integer_value(v) <= hi;
}

static bool is_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) && json_string_length(v) <= REPORT_STRING_BYTES_MAX &&
           strlen(json_string_value(v)) == json_string_length(v);
}

static bool is_num(json_t *o, const char *k)
{
    return json_is_number(json_object_get(o, k));
}

#define NEED(cond, ...)                                                      \
    do {                                                                     \
        if (!(cond)) {                                                       \
            snprintf(why, why_len, __VA_ARGS__);                             \
            return -1;                                                       \
        }                                                                    \
    } while (0)

static int check_array(json_t *doc, const char *name, const char *const *ints,
                       const char *const *strs, char *why, size_t why_len)
{
    json_t *a = json_object_get(doc, name);
    NEED(json_is_array(a) && json_array_size(a) <= REPORT_ITEMS_MAX,
         "'%s' must be an array of at most %u items", name, REPORT_ITEMS_MAX);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        NEED(json_is_object(o), "%s[%zu] must be an object", name, i);
        for (const char *const *k = ints; *k != NULL; k++) {
            NEED(is_int(o, *k, 0, INT64_MAX), "%s[%zu].%s must be an integer >= 0",
                 name, i, *k);
        }
        for (const char *const *k = strs; *k != NULL; k++) {
            NEED(is_str(o, *k), "%s[%zu].%s must be a string of at most %u bytes",
                 name, i, *k, REPORT_STRING_BYTES_MAX);
        }
    }
    return 0;
}

int ctl__sla_report_check(json_t *doc, char *why, size_t why_len)
{
    NEED(json_is_object(doc), "the report must be a JSON object");
    json_t *kind = json_object_get(doc, "kind");
    NEED(json_is_string(kind) && strcmp(json_string_value(kind), "kyufu.sla.report/v1") == 0,
         "'kind' must be \"kyufu.sla.report/v1\" (not a kyufu SLA report)");
    int64_t from, to;
    NEED(is_str(doc, "month") &&
             kyufu_slo_month_range(json_string_value(json_object_get(doc, "month")),
                                   &from, &to) == 0,
         "'month' must be YYYY-MM");
    NEED(is_int(doc, "from_ms", 0, INT64_MAX) && is_int(doc, "to_ms", 0, INT64_MAX) &&
             json_integer_value(json_object_get(doc, "from_ms")) <
                 json_integer_value(json_object_get(doc, "to_ms")),
         "'from_ms' and 'to_ms' must be integers, from < to");
    static const char *const top_ints[] = {"generated_ms", "observed_ms",
                                           "unavailable_ms", "maintenance_excluded_ms",
                                           "writes_lost", "open_incidents", NULL};
    for (const char *const *k = top_ints; *k != NULL; k++) {
        NEED(is_int(doc, *k, 0, INT64_MAX), "'%s' must be an integer >= 0", *k);
    }
    NEED(is_num(doc, "target"), "'target' must be a number");
    json_t *av = json_object_get(doc, "availability");
    NEED(json_is_null(av) ||
             (json_is_number(av) && json_number_value(av) >= 0 &&
              json_number_value(av) <= 100),
         "'availability' must be a percentage or null");
    json_t *b = json_object_get(doc, "budget");
    NEED(json_is_object(b) && is_int(b, "total_ms", 0, INT64_MAX) &&
             is_int(b, "used_ms", 0, INT64_MAX) && is_int(b, "remaining_ms", 0, INT64_MAX) &&
             is_num(b, "used_percent"),
         "'budget' must hold total_ms, used_ms, remaining_ms, used_percent");
    json_t *r = json_object_get(doc, "rto");
    NEED(json_is_object(r) && is_int(r, "target_ms", 0, INT64_MAX) &&
             is_int(r, "count", 0, INT64_MAX) && is_int(r, "p50_ms", 0, INT64_MAX) &&
             is_int(r, "p90_ms", 0, INT64_MAX) && is_int(r, "max_ms", 0, INT64_MAX) &&
             is_int(r, "over_target", 0, INT64_MAX),
         "'rto' must hold target_ms, count, p50_ms, p90_ms, max_ms, over_target");
    json_t *rpo = json_object_get(doc, "rpo");
    NEED(json_is_object(rpo) && is_int(rpo, "site_loss_target_ms", 0, INT64_MAX) &&
             is_str(rpo, "evidence"),
         "'rpo' must hold site_loss_target_ms and evidence");
    json_t *bk = json_object_get(doc, "backups");
    NEED(json_is_object(bk) && is_str(bk, "status") &&
             is_int(bk, "interval_hours", 0, INT64_MAX) &&
             is_int(bk, "retention_days", 0, INT64_MAX),
         "'backups' must hold status, interval_hours, retention_days");
    static const char *const fo_ints[] = {"time_ms", "rto_ms", "term", "old_leader_id",
                                          "new_leader_id", NULL};
    static const char *const fo_strs[] = {"time", "cause", "drill_id", NULL};
    static const char *const w_ints[] = {"start_ms", "end_ms", "maintenance_ms", NULL};
    static const char *const w_strs[] = {"cause", NULL};
    static const char *const d_ints[] = {"unavailable_ms", "failovers", "max_rto_ms",
                                         "heartbeats", NULL};
    static const char *const d_strs[] = {"day", NULL};
    static const char *const i_ints[] = {"id", "opened_ms", "closed_ms", NULL};
    static const char *const i_strs[] = {"alert", "subject", "severity", "summary",
                                         "state", "closed_by", "cause", "fix", NULL};
    if (check_array(doc, "failovers", fo_ints, fo_strs, why, why_len) != 0 ||
        check_array(doc, "windows", w_ints, w_strs, why, why_len) != 0 ||
        check_array(doc, "days", d_ints, d_strs, why, why_len) != 0 ||
        check_array(doc, "incidents", i_ints, i_strs, why, why_len) != 0) {
        return -1;
    }
    return 0;
}
#undef NEED

/* ------------------------------------------------------------ text */

static json_int_t geti(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *gets(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

void ctl__sla_report_text(json_t *doc, FILE *out)
{
    json_t *av = json_object_get(doc, "availability");
    json_t *b = json_object_get(doc, "budget");
    json_t *r = json_object_get(doc, "rto");
    fprintf(out, "SLA report %s\n", gets(doc, "month"));
    if (json_is_number(av)) {
        fprintf(out,
                "availability  %.4f%% of the %" JSON_INTEGER_FORMAT " ms observed "
                "(target %.4f%% of the month): %s\n",
                json_number_value(av), geti(doc, "observed_ms"),
                json_number_value(json_object_get(doc, "target")),
                json_is_true(json_object_get(doc, "met")) ? "met so far (within the budget)"
                                                          : "MISSED (budget exhausted)");
    } else {
        fprintf(out, "availability  no ledger data for this month (target %.4f%%)\n",
                json_number_value(json_object_get(doc, "target")));
    }
    fprintf(out, "budget        %" JSON_INTEGER_FORMAT " ms used of %" JSON_INTEGER_FORMAT
                 " ms (%.1f%%)\n",
            geti(b, "used_ms"), geti(b, "total_ms"),
            json_number_value(json_object_get(b, "used_percent")));
    fprintf(out, "failovers     %" JSON_INTEGER_FORMAT ", RTO p50 %" JSON_INTEGER_FORMAT
                 " ms, p90 %" JSON_INTEGER_FORMAT " ms, max %" JSON_INTEGER_FORMAT
                 " ms (target %" JSON_INTEGER_FORMAT " ms, %" JSON_INTEGER_FORMAT
                 " over)\n",
            geti(r, "count"), geti(r, "p50_ms"), geti(r, "p90_ms"), geti(r, "max_ms"),
            geti(r, "target_ms"), geti(r, "over_target"));
    fprintf(out, "writes lost   %" JSON_INTEGER_FORMAT " (target 0)\n",
            geti(doc, "writes_lost"));
    fprintf(out, "backups       %s\n", gets(json_object_get(doc, "backups"), "status"));
    fprintf(out, "incidents     %zu (%" JSON_INTEGER_FORMAT " open)\n",
            json_array_size(json_object_get(doc, "incidents")),
            geti(doc, "open_incidents"));
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(doc, "failovers"), i, f) {
        fprintf(out, "  failover %s  %-13s rto %" JSON_INTEGER_FORMAT " ms  term %"
                     JSON_INTEGER_FORMAT "\n",
                gets(f, "time"), gets(f, "cause"), geti(f, "rto_ms"), geti(f, "term"));
    }
    json_array_foreach(json_object_get(doc, "incidents"), i, f) {
        fprintf(out, "  incident %" JSON_INTEGER_FORMAT " %-6s %s %s: %s\n", geti(f, "id"),
                gets(f, "state"), gets(f, "alert"), gets(f, "subject"),
                gets(f, "summary"));
    }
}

/* ------------------------------------------------------------ HTML */

static void esc(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static const char *cause_colour(const char *cause)
{
    if (strncmp(cause, "drill", 5) == 0) {
        return "#6a5acd";
    }
    if (strcmp(cause, "planned") == 0 || strcmp(cause, "power") == 0) {
        return "#2e8b57";
    }
    return "#c0392b";
}

/* The month as a strip: unavailability windows as red bars, failovers as
 * ticks coloured by cause, incidents as triangles. */
static void svg_timeline(json_t *doc, FILE *out)
{
    const double w = 960, h = 120, left = 10, right = 950;
    double from = (double)geti(doc, "from_ms"), to = (double)geti(doc, "to_ms");
    double span = to - from;
#define X(ms) (left + ((double)(ms)-from) / span * (right - left))
    fprintf(out,
            "<svg id=\"timeline\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
            "aria-label=\"timeline of the month\">\n",
            w, h, w, h);
    fprintf(out, "<rect x=\"%.0f\" y=\"40\" width=\"%.0f\" height=\"30\" fill=\"#e8f5e9\" "
                 "stroke=\"#999\"/>\n",
            left, right - left);
    int days = (int)(span / 86400000.0 + 0.5);
    for (int d = 0; d <= days; d++) {
        double x = X(from + d * 86400000.0);
        fprintf(out, "<line x1=\"%.1f\" y1=\"70\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>\n",
                x, x, d % 7 == 0 ? 80 : 75);
        if (d < days && (d % 2 == 0)) {
            fprintf(out, "<text x=\"%.1f\" y=\"95\" font-size=\"10\" "
                         "font-family=\"sans-serif\">%d</text>\n",
                    x + 2, d + 1);
        }
    }
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "windows"), i, o) {
        double a = X(geti(o, "start_ms")), b = X(geti(o, "end_ms"));
        if (b - a < 1.5) {
            b = a + 1.5; /* a window of seconds is still visible */
        }
        fprintf(out, "<rect class=\"unavailable\" x=\"%.1f\" y=\"40\" width=\"%.1f\" "
                     "height=\"30\" fill=\"#e53935\"/>\n",
                a, b - a);
    }
    json_array_foreach(json_object_get(doc, "failovers"), i, o) {
        double x = X(geti(o, "time_ms"));
        fprintf(out, "<line class=\"failover-mark\" x1=\"%.1f\" y1=\"30\" x2=\"%.1f\" "
                     "y2=\"75\" stroke=\"",
                x, x);
        esc(out, cause_colour(gets(o, "cause")));
        fprintf(out, "\" stroke-width=\"2\"><title>");
        esc(out, gets(o, "time"));
        fputc(' ', out);
        esc(out, gets(o, "cause"));
        fprintf(out, " rto %" JSON_INTEGER_FORMAT " ms</title></line>\n", geti(o, "rto_ms"));
    }
    json_array_foreach(json_object_get(doc, "incidents"), i, o) {
        double x = X(geti(o, "opened_ms"));
        if (x < left || x > right) {
            continue;
        }
        fprintf(out, "<path class=\"incident-mark\" d=\"M%.1f 28 l-5 -10 h10 z\" "
                     "fill=\"#f39c12\"><title>incident %" JSON_INTEGER_FORMAT
                     "</title></path>\n",
                x, geti(o, "id"));
    }
    fprintf(out, "<text x=\"10\" y=\"14\" font-size=\"11\" font-family=\"sans-serif\">"
                 "red: write-unavailability; ticks: failovers (red crash/partition, "
                 "green planned/power, violet drills); orange: incidents opened</text>\n"
                 "</svg>\n");
#undef X
}

/* A histogram of the failovers' RTOs in 12 buckets up to the larger of the
 * target and the maximum, with the target as a dashed line. */
static void svg_rto(json_t *doc, FILE *out)
{
    enum { BUCKETS = 12 };
    const double w = 960, h = 240, left = 50, bottom = 200, top = 20, right = 940;
    json_t *r = json_object_get(doc, "rto");
    double target = (double)geti(r, "target_ms");
    double maxv = (double)geti(r, "max_ms");
    double top_v = maxv > target ? maxv : target;
    if (top_v <= 0) {
        top_v = 1;
    }
    double step = ceil(top_v * 1.05 / BUCKETS);
    unsigned counts[BUCKETS] = {0};
    unsigned most = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "failovers"), i, o) {
        size_t b = (size_t)((double)geti(o, "rto_ms") / step);
        b = b >= BUCKETS ? BUCKETS - 1 : b;
        counts[b]++;
        most = counts[b] > most ? counts[b] : most;
    }
    fprintf(out,
            "<svg id=\"rto-chart\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
            "aria-label=\"RTO distribution\">\n",
            w, h, w, h);
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>\n",
            left, bottom, right, bottom);
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>\n",
            left, top, left, bottom);
    double bw = (right - left) / BUCKETS;
    for (int b = 0; b < BUCKETS; b++) {
        double bh = most > 0 ? (bottom - top) * counts[b] / most : 0;
        fprintf(out, "<rect class=\"rto-bar\" data-count=\"%u\" x=\"%.1f\" y=\"%.1f\" "
                     "width=\"%.1f\" height=\"%.1f\" fill=\"#5c6bc0\"/>\n",
                counts[b], left + b * bw + 2, bottom - bh, bw - 4, bh);
        if (counts[b] > 0) {
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                         "font-family=\"sans-serif\">%u</text>\n",
                    left + b * bw + bw / 2 - 4, bottom - bh - 4, counts[b]);
        }
        fprintf(out, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" "
                     "font-family=\"sans-serif\">%.0f</text>\n",
                left + b * bw + 2, bottom + 14, b * step);
    }
    double tx = left + target / step * bw;
    if (tx <= right) {
        fprintf(out, "<line id=\"rto-target\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" "
                     "y2=\"%.0f\" stroke=\"#e53935\" stroke-dasharray=\"6 4\"/>\n"
                     "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" fill=\"#e53935\" "
                     "font-family=\"sans-serif\" text-anchor=\"%s\">target %.0f ms</text>\n",
                /* Near the right edge the label goes left of the line,
                 * else it is cut off ("target 100"). */
                tx, top, tx, bottom, tx + 100 > right ? tx - 4 : tx + 4, top + 12,
                tx + 100 > right ? "end" : "start", target);
    }
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" font-family=\"sans-serif\">"
                 "RTO (ms), buckets of %.0f ms; bars: failovers</text>\n</svg>\n",
            left, bottom + 34, step);
}

void ctl__sla_report_html(json_t *doc, FILE *out)
{
    json_t *av = json_object_get(doc, "availability");
    json_t *b = json_object_get(doc, "budget");
    json_t *r = json_object_get(doc, "rto");
    json_t *rpo = json_object_get(doc, "rpo");
    json_t *bk = json_object_get(doc, "backups");
    char gen[80];
    iso_time(geti(doc, "generated_ms"), gen, sizeof gen);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>kyufu SLA report ",
          out);
    esc(out, gets(doc, "month"));
    fputs("</title>\n<style>\n"
          "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\n"
          "table{border-collapse:collapse;margin:8px 0 16px}\n"
          "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;font-size:13px}\n"
          "th{background:#f0f0f0}\n.met{color:#2e7d32;font-weight:bold}\n"
          ".missed{color:#c62828;font-weight:bold}\n.big{font-size:28px}\n"
          "</style>\n</head>\n<body>\n<h1>kyufu SLA report ",
          out);
    esc(out, gets(doc, "month"));
    fputs("</h1>\n<p>Generated ", out);
    esc(out, gen);
    fputs(" (UTC). Period [from, to): ", out);
    char t1[80], t2[80];
    iso_time(geti(doc, "from_ms"), t1, sizeof t1);
    iso_time(geti(doc, "to_ms"), t2, sizeof t2);
    esc(out, t1);
    fputs(" to ", out);
    esc(out, t2);
    fputs(".</p>\n<h2>Availability against target</h2>\n<table>\n", out);
    if (json_is_number(av)) {
        bool met = json_is_true(json_object_get(doc, "met"));
        fprintf(out, "<tr><th>availability</th><td id=\"availability\" class=\"big %s\">"
                     "%.4f%%</td></tr>\n",
                met ? "met" : "missed", json_number_value(av));
        /* Before the month ends, "met" only says the budget is not spent
         * yet (as the text summary says): not a final verdict. */
        bool over = geti(doc, "generated_ms") >= geti(doc, "to_ms");
        fprintf(out, "<tr><th>verdict</th><td id=\"verdict\" class=\"%s\">%s</td></tr>\n",
                met ? "met" : "missed",
                !met  ? "target MISSED"
                : over ? "target met"
                       : "target met so far (the month is not over; the error budget is "
                         "not spent)");
    } else {
        fputs("<tr><th>availability</th><td id=\"availability\">no ledger data for this "
              "month</td></tr>\n",
              out);
    }
    fprintf(out, "<tr><th>target</th><td id=\"target\">%.4f%%</td></tr>\n",
            json_number_value(json_object_get(doc, "target")));
    fprintf(out, "<tr><th>observed</th><td>%" JSON_INTEGER_FORMAT " ms</td></tr>\n",
            geti(doc, "observed_ms"));
    fprintf(out, "<tr><th>write-unavailability</th><td id=\"unavailable\">%"
                 JSON_INTEGER_FORMAT " ms (%" JSON_INTEGER_FORMAT
                 " ms of it in planned maintenance, not counted)</td></tr>\n",
            geti(doc, "unavailable_ms"), geti(doc, "maintenance_excluded_ms"));
    fprintf(out, "<tr><th>error budget</th><td id=\"budget\">%" JSON_INTEGER_FORMAT
                 " ms used of %" JSON_INTEGER_FORMAT " ms (%.1f%%), %" JSON_INTEGER_FORMAT
                 " ms left</td></tr>\n</table>\n",
            geti(b, "used_ms"), geti(b, "total_ms"),
            json_number_value(json_object_get(b, "used_percent")), geti(b, "remaining_ms"));

    fputs("<h2>Timeline</h2>\n", out);
    svg_timeline(doc, out);

    fprintf(out, "<h2>Failovers and RTO</h2>\n<p id=\"rto-summary\">%" JSON_INTEGER_FORMAT
                 " failovers; RTO p50 <span id=\"rto-p50\">%" JSON_INTEGER_FORMAT
                 "</span> ms, p90 <span id=\"rto-p90\">%" JSON_INTEGER_FORMAT
                 "</span> ms, max <span id=\"rto-max\">%" JSON_INTEGER_FORMAT
                 "</span> ms; target %" JSON_INTEGER_FORMAT " ms, %" JSON_INTEGER_FORMAT
                 " over it.</p>\n",
            geti(r, "count"), geti(r, "p50_ms"), geti(r, "p90_ms"), geti(r, "max_ms"),
            geti(r, "target_ms"), geti(r, "over_target"));
    svg_rto(doc, out);
    fputs("<table id=\"failovers\">\n<tr><th>time (UTC)</th><th>cause</th><th>RTO</th>"
          "<th>term</th><th>old &rarr; new leader</th><th>drill</th><th>within "
          "target</th></tr>\n",
          out);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "failovers"), i, o) {
        bool ok = geti(o, "rto_ms") <= geti(r, "target_ms");
        fprintf(out, "<tr class=\"failover\" data-rto-ms=\"%" JSON_INTEGER_FORMAT "\"><td>",
                geti(o, "rto_ms"));
        esc(out, gets(o, "time"));
        fputs("</td><td>", out);
        esc(out, gets(o, "cause"));
        fprintf(out, "</td><td>%" JSON_INTEGER_FORMAT " ms</td><td>%" JSON_INTEGER_FORMAT
                     "</td><td>%" JSON_INTEGER_FORMAT " &rarr; %" JSON_INTEGER_FORMAT
                     "</td><td>",
                geti(o, "rto_ms"), geti(o, "term"), geti(o, "old_leader_id"),
                geti(o, "new_leader_id"));
        esc(out, gets(o, "drill_id"));
        fprintf(out, "</td><td class=\"%s\">%s</td></tr>\n", ok ? "met" : "missed",
                ok ? "yes" : "NO");
    }
    fputs("</table>\n", out);

    fprintf(out, "<h2>Incidents</h2>\n<p><span id=\"open-incidents\">%" JSON_INTEGER_FORMAT
                 "</span> open.</p>\n<table id=\"incidents\">\n<tr><th>id</th>"
                 "<th>state</th><th>alert</th><th>subject</th><th>severity</th>"
                 "<th>opened (UTC)</th><th>summary</th><th>cause</th><th>fix</th>"
                 "<th>closed by</th></tr>\n",
            geti(doc, "open_incidents"));
    json_array_foreach(json_object_get(doc, "incidents"), i, o) {
        char t[80];
        iso_time(geti(o, "opened_ms"), t, sizeof t);
        fprintf(out, "<tr class=\"incident\"><td>%" JSON_INTEGER_FORMAT "</td>",
                geti(o, "id"));
        static const char *const cols[] = {"state", "alert", "subject", "severity"};
        for (size_t c = 0; c < 4; c++) {
            fputs("<td>", out);
            esc(out, gets(o, cols[c]));
            fputs("</td>", out);
        }
        fputs("<td>", out);
        esc(out, t);
        fputs("</td>", out);
        static const char *const tail[] = {"summary", "cause", "fix", "closed_by"};
        for (size_t c = 0; c < 4; c++) {
            fputs("<td>", out);
            esc(out, gets(o, tail[c]));
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);

    fprintf(out, "<h2>RPO evidence</h2>\n<table>\n<tr><th>acknowledged writes lost</th>"
                 "<td id=\"writes-lost\" class=\"%s\">%" JSON_INTEGER_FORMAT
                 "</td></tr>\n<tr><th>RPO, acknowledged writes</th><td>0 ms</td></tr>\n"
                 "<tr><th>RPO, loss of the site</th><td>%" JSON_INTEGER_FORMAT
                 " ms (one backup interval)</td></tr>\n<tr><th>method</th><td>",
            geti(doc, "writes_lost") == 0 ? "met" : "missed", geti(doc, "writes_lost"),
            geti(rpo, "site_loss_target_ms"));
    esc(out, gets(rpo, "evidence"));
    fputs("</td></tr>\n</table>\n", out);

    fputs("<h2>Backup adherence</h2>\n<p id=\"backups\">", out);
    esc(out, gets(bk, "status"));
    fprintf(out, " (SLO: every %" JSON_INTEGER_FORMAT " h, kept %" JSON_INTEGER_FORMAT
                 " days).</p>\n",
            geti(bk, "interval_hours"), geti(bk, "retention_days"));

    fputs("<h2>Days</h2>\n<table id=\"days\">\n<tr><th>day</th><th>unavailable</th>"
          "<th>failovers</th><th>max RTO</th><th>heartbeats</th></tr>\n",
          out);
    json_array_foreach(json_object_get(doc, "days"), i, o) {
        fputs("<tr><td>", out);
        esc(out, gets(o, "day"));
        fprintf(out, "</td><td>%" JSON_INTEGER_FORMAT " ms</td><td>%" JSON_INTEGER_FORMAT
                     "</td><td>%" JSON_INTEGER_FORMAT " ms</td><td>%" JSON_INTEGER_FORMAT
                     "</td></tr>\n",
                geti(o, "unavailable_ms"), geti(o, "failovers"), geti(o, "max_rto_ms"),
                geti(o, "heartbeats"));
    }
    fputs("</table>\n</body>\n</html>\n", out);
}
