/* kyufuctl sla report from fixtures: the report document built from an
 * AvailabilityReport, incidents and an SLO has the figures a reader relies
 * on (availability against target, each failover with time, cause and
 * rto_ms, the RTO distribution, writes lost, budget, incidents); the HTML
 * page carries them, is self-contained and escapes what it shows; a saved
 * document renders the same through --input; hostile --input files are
 * refused with a clear error and write nothing.
 *   usage: test_sla_report FIXTURE.json [WRITE-FIXTURE]  */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctl_run.h"
#include "ctl.h"
#include "kyufu/v1/service.pb-c.h"
#include "slo.h"

static char out_buf[1 << 20], err_buf[65536];

/* kyufuctl in-process (ctl_run.h), the arguments NULL-terminated. */
#define run(...) \
    ctl_run(out_buf, sizeof out_buf, err_buf, sizeof err_buf, NULL, __VA_ARGS__)

#define DEC1 1796083200000LL /* 2026-12-01T00:00:00Z */
#define DAY 86400000LL

static struct kyufu_slo slo;

static json_t *build_fixture(void)
{
    const char *text = "[availability]\ntarget_percent = 99.9\n[rto]\ntarget_ms = 3000\n"
                       "[maintenance]\nwindow = once 2026-12-20 01:00 60\n";
    CHECK_EQ_INT(kyufu_slo_parse(text, strlen(text), &slo), 0);

    Kyufu__V1__Failover f[4];
    Kyufu__V1__Failover *fp[4];
    static const struct
    {
        int64_t at;
        uint64_t rto;
        int cause;
        const char *drill;
    } fx[4] = {
        {DEC1 + 2 * DAY + 3600000, 1200, KYUFU__V1__FAILOVER_CAUSE__CAUSE_CRASH, ""},
        {DEC1 + 5 * DAY, 450, KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED, ""},
        {DEC1 + 9 * DAY, 4800, KYUFU__V1__FAILOVER_CAUSE__CAUSE_PARTITION, ""},
        {DEC1 + 9 * DAY + 600000, 900, KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_CRASH,
         "drill-7"},
    };
    for (int i = 0; i < 4; i++) {
        kyufu__v1__failover__init(&f[i]);
        f[i].term = 2 + (uint64_t)i;
        f[i].old_leader_id = 1 + (uint64_t)i % 3;
        f[i].new_leader_id = 1 + (uint64_t)(i + 1) % 3;
        f[i].cause = fx[i].cause;
        f[i].last_commit_old_ms = fx[i].at - (int64_t)fx[i].rto;
        f[i].first_commit_new_ms = fx[i].at;
        f[i].rto_ms = fx[i].rto;
        f[i].drill_id = (char *)fx[i].drill;
        fp[i] = &f[i];
    }
    Kyufu__V1__UnavailabilityWindow w[2];
    Kyufu__V1__UnavailabilityWindow *wp[2];
    for (int i = 0; i < 2; i++) {
        kyufu__v1__unavailability_window__init(&w[i]);
        wp[i] = &w[i];
    }
    /* 1.2 s + 4.8 s counted, plus 20 s inside the maintenance window. */
    w[0].start_ms = f[0].last_commit_old_ms;
    w[0].end_ms = f[0].first_commit_new_ms;
    w[0].cause = f[0].cause;
    w[1].start_ms = DEC1 + 19 * DAY + 3600000 + 60000;
    w[1].end_ms = w[1].start_ms + 20000;
    w[1].cause = KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED;
    Kyufu__V1__DaySummary d;
    Kyufu__V1__DaySummary *dp[1] = {&d};
    kyufu__v1__day_summary__init(&d);
    d.day = (char *)"2026-12-03";
    d.unavailable_ms = 1200;
    d.failovers = 1;
    d.max_rto_ms = 1200;
    d.heartbeats = 86400;

    Kyufu__V1__AvailabilityReport rep = KYUFU__V1__AVAILABILITY_REPORT__INIT;
    rep.from_ms = DEC1;
    rep.to_ms = DEC1 + 31 * DAY;
    rep.observed_ms = 31 * DAY;
    rep.unavailable_ms = 1200 + 4800 + 20000;
    rep.n_failovers = 4;
    rep.failovers = fp;
    rep.n_windows = 2;
    rep.windows = wp;
    rep.n_days = 1;
    rep.days = dp;
    rep.heartbeat_interval_ms = 1000;
    rep.writes_lost = 0;

    Kyufu__V1__Incident inc[2];
    Kyufu__V1__Incident *ip[2] = {&inc[0], &inc[1]};
    kyufu__v1__incident__init(&inc[0]);
    kyufu__v1__incident__init(&inc[1]);
    inc[0].id = 1;
    inc[0].alert = (char *)"rto";
    inc[0].subject = (char *)"term/4";
    inc[0].severity = (char *)"critical";
    inc[0].summary = (char *)"failover to term 4 took 4800 ms, RTO target 3000 ms";
    inc[0].opened_ms = f[2].first_commit_new_ms + 200;
    inc[0].state = KYUFU__V1__INCIDENT_STATE__INCIDENT_CLOSED;
    inc[0].closed_ms = inc[0].opened_ms + 3600000;
    inc[0].closed_by = (char *)"ops1";
    inc[0].cause = (char *)"switch port flapping";
    inc[0].fix = (char *)"replaced the cable";
    inc[1].id = 2;
    inc[1].alert = (char *)"node_unreachable";
    inc[1].subject = (char *)"node/3";
    inc[1].severity = (char *)"warning";
    inc[1].summary = (char *)"<script>alert('x')</script> & \"quotes\"";
    inc[1].opened_ms = DEC1 + 12 * DAY;
    inc[1].state = KYUFU__V1__INCIDENT_STATE__INCIDENT_OPEN;
    json_t *doc = ctl__sla_report_build("2026-12", &rep, ip, 2, &slo, DEC1 + 31 * DAY + 5);
    CHECK(doc != NULL);
    return doc;
}

static json_int_t ival(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK(json_is_integer(v));
    return json_integer_value(v);
}

static void test_document(json_t *doc)
{
    char why[256];
    CHECK_EQ_INT(ctl__sla_report_check(doc, why, sizeof why), 0);
    /* 6000 ms counted of 31 days: 100 * (1 - 6000 / 2678400000). */
    double av = json_number_value(json_object_get(doc, "availability"));
    CHECK(av > 99.99977 && av < 99.99978);
    CHECK(json_number_value(json_object_get(doc, "target")) == 99.9);
    CHECK(json_is_true(json_object_get(doc, "met")));
    CHECK_EQ_INT(ival(doc, "maintenance_excluded_ms"), 20000);
    json_t *b = json_object_get(doc, "budget");
    CHECK_EQ_INT(ival(b, "total_ms"), 2678400);
    CHECK_EQ_INT(ival(b, "used_ms"), 6000);
    json_t *fos = json_object_get(doc, "failovers");
    CHECK_EQ_INT(json_array_size(fos), 4);
    json_t *f0 = json_array_get(fos, 0);
    CHECK_EQ_INT(ival(f0, "rto_ms"), 1200);
    CHECK(strcmp(json_string_value(json_object_get(f0, "cause")), "crash") == 0);
    CHECK(strcmp(json_string_value(json_object_get(f0, "time")),
                 "2026-12-03T01:00:00.000Z") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(fos, 3), "cause")),
                 "drill_crash") == 0);
    json_t *r = json_object_get(doc, "rto");
    CHECK_EQ_INT(ival(r, "count"), 4);
    CHECK_EQ_INT(ival(r, "p50_ms"), 900);  /* sorted 450 900 1200 4800 */
    CHECK_EQ_INT(ival(r, "p90_ms"), 4800);
    CHECK_EQ_INT(ival(r, "max_ms"), 4800);
    CHECK_EQ_INT(ival(r, "over_target"), 1);
    CHECK_EQ_INT(ival(doc, "writes_lost"), 0);
    CHECK_EQ_INT(ival(doc, "open_incidents"), 1);
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(doc, "backups"),
                                                   "status")),
                 "no backups configured") == 0);
}

static void test_html(json_t *doc)
{
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    ctl__sla_report_html(doc, f);
    fclose(f);
    static const char *const want[] = {
        "id=\"availability\"", "99.9998%", "id=\"target\">99.9000%",
        "<svg id=\"timeline\"", "<svg id=\"rto-chart\"", "id=\"rto-p50\">900<",
        "id=\"rto-p90\">4800<", "data-rto-ms=\"4800\"", "id=\"writes-lost\" class=\"met\">0<",
        "no backups configured", "switch port flapping", "replaced the cable",
        "id=\"open-incidents\">1<", "id=\"rto-target\"", "class=\"unavailable\"",
        "class=\"incident-mark\"", "2026-12-03T01:00:00.000Z",
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(html, want[i]) == NULL) {
            fprintf(stderr, "HTML lacks '%s'\n", want[i]);
            exit(1);
        }
    }
    /* Self-contained: no script, no external resource of any kind. */
    static const char *const never[] = {"<script", "http:", "https:", "src=", "href=",
                                        "url(", "@import", "<link", "@font-face"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        if (strstr(html, never[i]) != NULL) {
            fprintf(stderr, "HTML holds '%s'\n", never[i]);
            exit(1);
        }
    }
    free(html);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* No ledger (an empty AvailabilityReport): no figure is invented. */
static void test_no_ledger(void)
{
    Kyufu__V1__AvailabilityReport rep = KYUFU__V1__AVAILABILITY_REPORT__INIT;
    rep.from_ms = DEC1;
    rep.to_ms = DEC1 + 31 * DAY;
    json_t *doc = ctl__sla_report_build("2026-12", &rep, NULL, 0, &slo, DEC1);
    CHECK(doc != NULL);
    char why[256];
    CHECK_EQ_INT(ctl__sla_report_check(doc, why, sizeof why), 0);
    CHECK(json_is_null(json_object_get(doc, "availability")));
    CHECK(json_is_null(json_object_get(doc, "met")));
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "failovers")), 0);
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    ctl__sla_report_html(doc, f);
    fclose(f);
    CHECK(strstr(html, "no ledger data for this month") != NULL);
    CHECK(strstr(html, "target met") == NULL);
    free(html);
    json_decref(doc);
}

/* The target is per month: judged by the month's error budget, not by the
 * ratio over the observed time.  A cluster observed for 10 s with a 2 s
 * failover (80% of what was observed) is within a 99.9% month's 2,678 s
 * budget; 2,679 s of unavailability in a full month is not. */
static void test_partial_month(void)
{
    Kyufu__V1__AvailabilityReport rep = KYUFU__V1__AVAILABILITY_REPORT__INIT;
    rep.from_ms = DEC1;
    rep.to_ms = DEC1 + 31 * DAY;
    rep.observed_ms = 10000;
    rep.unavailable_ms = 2000;
    json_t *doc = ctl__sla_report_build("2026-12", &rep, NULL, 0, &slo, DEC1 + 20000);
    CHECK(doc != NULL);
    double av = json_number_value(json_object_get(doc, "availability"));
    CHECK(av > 79.99 && av < 80.01);
    CHECK(json_is_true(json_object_get(doc, "met")));
    {
        /* Mid-month the page's verdict is not final. */
        char *html = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&html, &len);
        ctl__sla_report_html(doc, f);
        fclose(f);
        CHECK(strstr(html, "target met so far (the month is not over") != NULL);
        free(html);
    }
    json_decref(doc);
    rep.observed_ms = 31 * DAY;
    rep.unavailable_ms = 2678401;
    doc = ctl__sla_report_build("2026-12", &rep, NULL, 0, &slo, DEC1 + 31 * DAY);
    CHECK(doc != NULL);
    CHECK(json_is_false(json_object_get(doc, "met")));
    CHECK_EQ_INT(ival(json_object_get(doc, "budget"), "remaining_ms"), 0);
    json_decref(doc);
    rep.unavailable_ms = 2678400;
    doc = ctl__sla_report_build("2026-12", &rep, NULL, 0, &slo, DEC1 + 31 * DAY);
    CHECK(json_is_true(json_object_get(doc, "met")));
    json_decref(doc);
}

/* A saved document renders the same as the live one. */
static void test_input(json_t *doc, const char *dir)
{
    char path[512], html[512];
    snprintf(path, sizeof path, "%s/saved.json", dir);
    snprintf(html, sizeof html, "%s/saved.html", dir);
    CHECK(json_dump_file(doc, path, JSON_INDENT(2)) == 0);
    CHECK_EQ_INT(run("--json", "sla", "report", "--input", path, "--html", html, NULL), 0);
    json_error_t je;
    json_t *back = json_loads(out_buf, 0, &je);
    CHECK(back != NULL);
    CHECK(json_equal(back, doc));
    json_decref(back);
    CHECK(access(html, R_OK) == 0);
    CHECK_EQ_INT(run("sla", "report", "--input", path, NULL), 0);
    CHECK(strstr(out_buf, "availability  99.9998% of the 2678400000 ms observed (target "
                          "99.9000% of the month): met so far (within the budget)") != NULL);
    CHECK(strstr(out_buf, "failovers     4, RTO p50 900 ms, p90 4800 ms, max 4800 ms") !=
          NULL);
    unlink(path);
    unlink(html);
}

/* Hostile saved reports: refused with a reason (exit 2), no page written. */
static void test_hostile(json_t *doc, const char *dir)
{
    char path[512], html[512];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    snprintf(html, sizeof html, "%s/bad.html", dir);
    struct
    {
        const char *text; /* NULL: built from doc by `mutate` */
        const char *key;
        json_t *value;
        const char *want;
    } cases[] = {
        {"not json at all", NULL, NULL, "not JSON"},
        {"[1,2,3]", NULL, NULL, "must be a JSON object"},
        {"{\"kind\":\"other\"}", NULL, NULL, "not a kyufu SLA report"},
        {"{\"a\":1,\"a\":2}", NULL, NULL, "not JSON"},
        {NULL, "month", json_string("2026-13"), "'month' must be YYYY-MM"},
        {NULL, "writes_lost", json_integer(-1), "'writes_lost' must be an integer"},
        {NULL, "availability", json_real(101.0), "'availability' must be a percentage"},
        {NULL, "failovers", json_string("x"), "'failovers' must be an array"},
        {NULL, "failovers", json_pack("[{s:s}]", "time", "x"),
         "failovers[0].time_ms must be an integer"},
        {NULL, "incidents", json_pack("[{s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i}]",
                                      "id", (json_int_t)1, "opened_ms", (json_int_t)1,
                                      "closed_ms", (json_int_t)0, "alert", "a",
                                      "subject", "s", "severity", "w", "summary", "",
                                      "state", "open", "closed_by", "", "cause", "",
                                      "fix", 5),
         "incidents[0].fix must be a string"},
        {NULL, "to_ms", json_integer(1), "from < to"},
        {NULL, "rto", json_object(), "'rto' must hold"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].text != NULL) {
            write_text(path, cases[i].text);
        } else {
            json_t *bad = json_deep_copy(doc);
            json_object_set_new(bad, cases[i].key, cases[i].value);
            CHECK(json_dump_file(bad, path, 0) == 0);
            json_decref(bad);
        }
        unlink(html);
        int rv = run("sla", "report", "--input", path, "--html", html, NULL);
        if (rv != KYUFU_CTL_EXIT_USAGE || strstr(err_buf, cases[i].want) == NULL) {
            fprintf(stderr, "case %zu: exit %d, stderr: %s\n", i, rv, err_buf);
            exit(1);
        }
        CHECK(access(html, F_OK) != 0);
    }
    /* A NUL inside a string is refused, not cut. */
    write_text(path, "{\"kind\":\"kyufu.sla.report/v1\",\"month\":\"2026-12\\u0000x\"}");
    CHECK_EQ_INT(run("sla", "report", "--input", path, NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("sla", "report", "--input", "/nonexistent.json", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("sla", "report", "--input", dir, NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("sla", "report", "--input", path, "--month", "2026-12", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("sla", "report", "--month", "26-12", "--slo", "/x", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--month: '26-12' is not YYYY-MM") != NULL);
    unlink(path);
}

/* sla show: the SLO file as written, and its errors with line and key. */
static void test_show(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/slo.conf", dir);
    write_text(path, "[availability]\ntarget_percent = 99.95\n[rto]\ntarget_ms = 2500\n"
                     "[maintenance]\nwindow = weekly sun 02:00 120\n");
    CHECK_EQ_INT(run("--json", "sla", "show", "--slo", path, NULL), 0);
    json_t *doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    CHECK(json_number_value(json_object_get(doc, "availability_target_percent")) == 99.95);
    CHECK_EQ_INT(ival(doc, "rto_target_ms"), 2500);
    CHECK_EQ_INT(ival(doc, "rpo_acknowledged_writes_ms"), 0);
    CHECK(strcmp(json_string_value(json_array_get(
                     json_object_get(doc, "maintenance_windows"), 0)),
                 "weekly sun 02:00 120") == 0);
    json_decref(doc);
    write_text(path, "[availability]\ntarget_percent = 99.95\n[rto]\ntarget_ms = fast\n");
    CHECK_EQ_INT(run("sla", "show", "--slo", path, NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "slo.conf:4: [rto] target_ms: 'fast'") != NULL);
    CHECK_EQ_INT(run("sla", "show", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "no SLO file") != NULL);
    unlink(path);
}

/* sla check speaks the plugin protocol even when it cannot ask: UNKNOWN (3)
 * and one "SLA UNKNOWN - ..." line. */
static void test_check_unknown(void)
{
    CHECK_EQ_INT(run("sla", "check", NULL), 3);
    CHECK(strncmp(out_buf, "SLA UNKNOWN - ", 14) == 0);
    CHECK(strchr(out_buf, '\n') == out_buf + strlen(out_buf) - 1);
    CHECK_EQ_INT(run("--json", "sla", "check", NULL), 3);
    json_t *doc = json_loads(out_buf, 0, NULL); /* exactly one document */
    CHECK(doc != NULL);
    CHECK(strcmp(json_string_value(json_object_get(doc, "state")), "UNKNOWN") == 0);
    json_decref(doc);
    CHECK_EQ_INT(run("sla", "check", "--node-timeout-ms", "0", NULL), 3);
    CHECK(strncmp(out_buf, "SLA UNKNOWN - bad usage", 23) == 0);
    CHECK_EQ_INT(run("sla", "incident", "close", "x", "--cause", "c", "--fix", "f", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "ID must be a positive integer") != NULL);
    CHECK_EQ_INT(run("sla", "incident", "reopen", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("sla", "bogus", NULL), KYUFU_CTL_EXIT_USAGE);
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2);
    unsetenv("KYUFUCTL_CONFIG");
    char dir[] = "/tmp/kyufu-sla-report.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    json_t *doc = build_fixture();
    test_document(doc);
    test_html(doc);
    test_no_ledger();
    test_partial_month();
    test_input(doc, dir);
    test_hostile(doc, dir);
    test_show(dir);
    test_check_unknown();
    if (argc >= 3) {
        /* Regenerate the checked-in fixture (the render test's input). */
        json_object_set_new(doc, "generated_ms", json_integer(DEC1 + 31 * DAY + 5));
        CHECK(json_dump_file(doc, argv[2], JSON_INDENT(2) | JSON_SORT_KEYS) == 0);
    }
    /* The checked-in fixture is a valid report with the same figures. */
    json_t *saved = json_load_file(argv[1], 0, NULL);
    CHECK(saved != NULL);
    test_document(saved);
    CHECK(json_equal(saved, doc));
    json_decref(saved);
    json_decref(doc);
    rmdir(dir);
    puts("sla report tests: ok");
    return 0;
}
