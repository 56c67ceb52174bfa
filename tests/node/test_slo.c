/* The SLO file parser (node/slo.c) on good and hostile files: every refused
 * file names the line, section and key at fault and yields INVALID; a good
 * file gives the values an operator wrote; defaults fill the optional keys;
 * budget and maintenance arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/check.h"
#include "slo.h"

static struct kyufu_slo slo;

static int parse(const char *text)
{
    return kyufu_slo_parse(text, strlen(text), &slo);
}

/* The text is refused, and some problem has this line, key and message
 * fragment. */
static void refused(const char *text, unsigned line, const char *key,
                    const char *want)
{
    int rv = parse(text);
    if (rv != KYUFU_SLO_EINVALID) {
        fprintf(stderr, "accepted: %s\n", text);
        exit(1);
    }
    for (size_t i = 0; i < slo.n_problems; i++) {
        const struct kyufu_textconf_problem *p = &slo.problems[i];
        if (p->line == line && strcmp(p->key, key) == 0 &&
            strstr(p->message, want) != NULL) {
            return;
        }
    }
    fprintf(stderr, "no problem at line %u key '%s' with '%s' in:\n", line,
            key, want);
    kyufu_slo_print_problems(&slo, stderr);
    exit(1);
}

#define BASE "[availability]\ntarget_percent = 99.9\n[rto]\ntarget_ms = 5000\n"

static void test_good(void)
{
    CHECK_EQ_INT(parse("# comment\n; another\n\n[availability]\n"
                       "target_percent = 99.95   ; inline\n"
                       "burn_rate_max = 6\n"
                       "[rto]\ntarget_ms = 3000 # inline\n"
                       "[rpo]\nacknowledged_writes_ms = 0\nsite_loss_ms = 7200000\n"
                       "[backup]\ninterval_hours = 2\nretention_days = 90\n"
                       "[maintenance]\nwindow = weekly sun 02:00 120\n"
                       "window = once 2026-12-20 01:30 90\n"
                       "[alerts]\nfollower_lag_entries = 500\nfollower_contact_ms = 800\n"),
                 0);
    CHECK_EQ_INT(slo.target_ppm, 999500);
    CHECK_EQ_INT(slo.burn_rate_max, 6);
    CHECK_EQ_INT(slo.rto_target_ms, 3000);
    CHECK_EQ_INT(slo.rpo_ack_ms, 0);
    CHECK_EQ_INT(slo.rpo_site_ms, 7200000);
    CHECK_EQ_INT(slo.backup_interval_hours, 2);
    CHECK_EQ_INT(slo.backup_retention_days, 90);
    CHECK_EQ_INT(slo.n_windows, 2);
    CHECK(slo.windows[0].weekly && slo.windows[0].wday == 0 &&
          slo.windows[0].start_min == 120 && slo.windows[0].minutes == 120);
    char buf[64];
    kyufu_slo_window_text(&slo.windows[1], buf, sizeof buf);
    CHECK(strcmp(buf, "once 2026-12-20 01:30 90") == 0);
    kyufu_slo_window_text(&slo.windows[0], buf, sizeof buf);
    CHECK(strcmp(buf, "weekly sun 02:00 120") == 0);
    CHECK_EQ_INT(slo.follower_lag_entries, 500);
    CHECK_EQ_INT(slo.follower_contact_ms, 800);

    /* Defaults; site loss defaults to the backup interval. */
    CHECK_EQ_INT(parse(BASE), 0);
    CHECK_EQ_INT(slo.target_ppm, 999000);
    CHECK_EQ_INT(slo.burn_rate_max, KYUFU_SLO_BURN_RATE_MAX_DEFAULT);
    CHECK_EQ_INT(slo.rpo_site_ms, 24 * 3600000ull);
    CHECK_EQ_INT(slo.follower_contact_ms, KYUFU_SLO_CONTACT_MS_DEFAULT);
    /* CRLF and a BOM are fine. */
    CHECK_EQ_INT(parse("\xEF\xBB\xBF[availability]\r\ntarget_percent = 99\r\n"
                       "[rto]\r\ntarget_ms = 100\r\n"),
                 0);
    CHECK_EQ_INT(slo.target_ppm, 990000);

    /* The default file cluster init writes is valid. */
    char text[4096];
    FILE *f = fmemopen(text, sizeof text, "w");
    kyufu_slo_write_default(f);
    fclose(f);
    CHECK_EQ_INT(parse(text), 0);
}

static void test_hostile(void)
{
    refused("[availability]\n[rto]\ntarget_ms = 5000\n", 0, "target_percent",
            "required key");
    refused("[availability]\ntarget_percent = 99.9\n", 0, "target_ms",
            "required key");
    refused(BASE "target_ms = 6000\n", 5, "target_ms", "given twice");
    refused("[availability]\ntarget_percent = 100\n[rto]\ntarget_ms = 5000\n",
            2, "target_percent", "percentage");
    refused("[availability]\ntarget_percent = 89.9\n[rto]\ntarget_ms = 5000\n",
            2, "target_percent", "percentage");
    refused("[availability]\ntarget_percent = 99.99999\n[rto]\ntarget_ms = 5000\n",
            2, "target_percent", "percentage");
    refused("[availability]\ntarget_percent = -99\n[rto]\ntarget_ms = 5000\n",
            2, "target_percent", "percentage");
    refused("[availability]\ntarget_percent = 99.9%\n[rto]\ntarget_ms = 5000\n",
            2, "target_percent", "percentage");
    refused("[availability]\ntarget_percent = 99.\n[rto]\ntarget_ms = 5000\n",
            2, "target_percent", "percentage");
}

static void test_hostile2(void)
{
    refused("[availability]\ntarget_percent = 99.9\n[rto]\ntarget_ms = 99\n", 4,
            "target_ms", "outside [100, 3600000]");
    refused("[availability]\ntarget_percent = 99.9\n[rto]\ntarget_ms = 1e4\n", 4,
            "target_ms", "not a non-negative integer");
    refused("[availability]\ntarget_percent = 99.9\n[rto]\n"
            "target_ms = 99999999999999999999999\n",
            4, "target_ms", "not a non-negative integer");
    refused(BASE "[rpo]\nacknowledged_writes_ms = 5\n", 6,
            "acknowledged_writes_ms", "must be 0");
    refused(BASE "[rpo]\nsite_loss_ms = 1000\n", 6, "site_loss_ms",
            "shorter than [backup] interval_hours");
    refused(BASE "[backup]\ninterval_hours = 0\n", 6, "interval_hours",
            "outside");
    refused(BASE "[colour]\nred = 1\n", 5, "", "unknown section [colour]");
    refused(BASE "[rto]\nspeed = 1\n", 6, "speed", "unknown key");
    refused("target_percent = 99.9\n" BASE, 1, "", "outside any known section");
    refused(BASE "[rto\n", 5, "", "section header");
    refused(BASE "just words\n", 5, "", "expected '[section]'");
    refused(BASE "[alerts]\nfollower_contact_ms =\n", 6, "follower_contact_ms",
            "empty value");
    refused(BASE "[alerts]\nfollower_contact_ms = 50\n", 6,
            "follower_contact_ms", "outside");
    refused(BASE "[maintenance]\nwindow = weekly funday 02:00 60\n", 6, "window",
            "DAY must be");
    refused(BASE "[maintenance]\nwindow = weekly sun 24:00 60\n", 6, "window",
            "HH:MM");
    refused(BASE "[maintenance]\nwindow = weekly sun 02:00 0\n", 6, "window",
            "MINUTES");
    refused(BASE "[maintenance]\nwindow = weekly sun 02:00 10081\n", 6, "window",
            "MINUTES");
    refused(BASE "[maintenance]\nwindow = once 2027-02-29 02:00 60\n", 6,
            "window", "real YYYY-MM-DD");
    refused(BASE "[maintenance]\nwindow = once 2026-13-01 02:00 60\n", 6,
            "window", "real YYYY-MM-DD");
    refused(BASE "[maintenance]\nwindow = sometimes\n", 6, "window",
            "expected 'weekly");
    refused(BASE "[maintenance]\nwindow = weekly sun 02:00 60 extra more\n", 6,
            "window", "too many fields");
    refused(BASE "[rto]\ntarget\x01ms = 5\n", 6, "", "control character");

    /* A NUL byte: refused whole, not read as text. */
    char nul[] = BASE "[rto]\0target_ms = 1\n";
    CHECK_EQ_INT(kyufu_slo_parse(nul, sizeof nul - 1, &slo), KYUFU_SLO_EINVALID);
    CHECK(strstr(slo.problems[0].message, "NUL") != NULL);

    /* An over-long line is reported at its line; parsing goes on. */
    size_t big = KYUFU_SLO_LINE_BYTES_MAX + 100;
    char *text = malloc(sizeof BASE + big + 64);
    strcpy(text, BASE "[rto]\n# ");
    size_t n = strlen(text);
    memset(text + n, 'x', big);
    strcpy(text + n + big, "\nspeed = 1\n");
    refused(text, 6, "", "longer than");
    refused(text, 7, "speed", "unknown key");
    free(text);

    /* A file over the size limit: refused before reading lines. */
    char *huge = malloc(KYUFU_SLO_FILE_BYTES_MAX + 2);
    memset(huge, '\n', KYUFU_SLO_FILE_BYTES_MAX + 1);
    huge[KYUFU_SLO_FILE_BYTES_MAX + 1] = '\0';
    CHECK_EQ_INT(parse(huge), KYUFU_SLO_EINVALID);
    CHECK(strstr(slo.problems[0].message, "larger than") != NULL);
    free(huge);

    /* Too many windows, too many problems: counted, not overflowed. */
    char *many = malloc(64 * 1024);
    strcpy(many, BASE "[maintenance]\n");
    for (int i = 0; i < 40; i++) {
        strcat(many, "window = weekly mon 01:00 30\n");
    }
    refused(many, 6 + 32, "window", "more than 32 windows");
    strcpy(many, BASE "[rto]\n");
    for (int i = 0; i < 40; i++) {
        strcat(many, "nope = 1\n");
    }
    CHECK_EQ_INT(parse(many), KYUFU_SLO_EINVALID);
    CHECK_EQ_INT(slo.n_problems, KYUFU_SLO_PROBLEMS_MAX);
    CHECK_EQ_INT(slo.n_problems_all, 40);
    free(many);

    /* Files: a missing one is IO with the reason; a directory is IO too. */
    CHECK_EQ_INT(kyufu_slo_load("/nonexistent/slo.conf", &slo), KYUFU_SLO_EIO);
    CHECK(strstr(slo.problems[0].message, "No such file") != NULL);
    CHECK(kyufu_slo_load("/", &slo) != 0);
}

static void test_arithmetic(void)
{
    CHECK_EQ_INT(parse(BASE "[maintenance]\nwindow = weekly sun 02:00 120\n"
                            "window = weekly sun 03:00 120\n"
                            "window = once 2026-12-01 00:00 60\n"),
                 0);
    /* December 2026: 31 days. */
    int64_t dec = 1796083200000LL; /* 2026-12-01T00:00Z */
    int64_t jan = dec + 31LL * 86400000;
    /* 99.9% of 31 days: 0.1% = 2678400 ms. */
    CHECK_EQ_INT(kyufu_slo_budget_ms(&slo, dec, jan), 2678400);
    /* Sundays of Dec 2026: 6, 13, 20, 27: each 02:00-05:00 (overlapping
     * windows merged) = 3 h, plus the one-off hour. */
    CHECK_EQ_INT(kyufu_slo_maintenance_ms(&slo, dec, jan),
                 4 * 3 * 3600000LL + 3600000LL);
    /* A range cutting a window counts the part inside. */
    int64_t sun6_0230 = dec + 5LL * 86400000 + 150LL * 60000;
    CHECK_EQ_INT(kyufu_slo_maintenance_ms(&slo, sun6_0230, sun6_0230 + 3600000),
                 3600000);
    CHECK_EQ_INT(kyufu_slo_maintenance_ms(&slo, jan, dec), 0);
}

int main(void)
{
    test_good();
    test_hostile();
    test_hostile2();
    test_arithmetic();
    puts("slo tests: ok");
    return 0;
}
