/* The exposition writer and histograms of node/metrics.c, read back by a
 * strict parser of the text format 0.0.4 written here: every sample under
 * a family announced by # HELP then # TYPE, counters ending in _total,
 * histogram buckets with increasing `le` up to +Inf, cumulative counts
 * that never decrease, +Inf equal to _count, label values unescaped back
 * to what was written.  Also: where a value on a bucket's bound lands, and
 * that an out-of-memory buffer reports failure instead of half a page. */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../client/check.h"
#include "../../node/metrics.h"

/* ------------------------------------------------------- strict parser */

#define SAMPLES_MAX 256
#define FAMILIES_MAX 32

struct sample
{
    char name[96];
    char labels[8][2][96]; /* name, unescaped value */
    int n_labels;
    double value;
};

struct family
{
    char name[96];
    char type[16];
    int first, n; /* samples[first .. first+n) */
};

struct page
{
    struct sample s[SAMPLES_MAX];
    int n;
    struct family f[FAMILIES_MAX];
    int nf;
};

static void fail(int line, const char *why, const char *text)
{
    fprintf(stderr, "exposition line %d: %s: %s\n", line, why, text);
    exit(1);
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == ':' || (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p into out. */
static void read_name(const char **p, char *out, size_t cap, int line)
{
    size_t n = 0;
    if (!name_char(**p, true)) {
        fail(line, "bad name", *p);
    }
    while (name_char(**p, n == 0)) {
        CHECK(n + 1 < cap);
        out[n++] = *(*p)++;
    }
    out[n] = '\0';
}

static double read_value(const char *s, int line)
{
    if (strcmp(s, "+Inf") == 0) {
        return INFINITY;
    }
    if (strcmp(s, "-Inf") == 0) {
        return -INFINITY;
    }
    if (strcmp(s, "NaN") == 0) {
        return NAN;
    }
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || strchr(s, ' ') != NULL) {
        fail(line, "bad value", s);
    }
    return v;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void parse_sample(struct page *pg, const char *p, int line)
{
    CHECK(pg->n < SAMPLES_MAX);
    struct sample *s = &pg->s[pg->n++];
    memset(s, 0, sizeof *s);
    read_name(&p, s->name, sizeof s->name, line);
    if (*p == '{') {
        p++;
        while (*p != '}') {
            CHECK(s->n_labels < 8);
            read_name(&p, s->labels[s->n_labels][0], 96, line);
            if (p[0] != '=' || p[1] != '"') {
                fail(line, "label without =\"", p);
            }
            p += 2;
            char *v = s->labels[s->n_labels][1];
            size_t n = 0;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n') {
                    fail(line, "unterminated label value", p);
                }
                char c = *p++;
                if (c == '\\') {
                    c = *p++;
                    if (c == 'n') {
                        c = '\n';
                    } else if (c != '\\' && c != '"') {
                        fail(line, "bad escape", p - 2);
                    }
                }
                CHECK(n + 1 < 96);
                v[n++] = c;
            }
            v[n] = '\0';
            p++;
            for (int i = 0; i < s->n_labels; i++) {
                if (strcmp(s->labels[i][0], s->labels[s->n_labels][0]) == 0) {
                    fail(line, "label twice", s->labels[i][0]);
                }
            }
            s->n_labels++;
            if (*p == ',') {
                p++;
            } else if (*p != '}') {
                fail(line, "labels not separated by ','", p);
            }
        }
        p++;
    }
    if (*p != ' ') {
        fail(line, "no space before the value", p);
    }
    s->value = read_value(p + 1, line);
}

static void parse(struct page *pg, const char *text)
{
    memset(pg, 0, sizeof *pg);
    CHECK(text[0] != '\0' && text[strlen(text) - 1] == '\n');
    struct family *cur = NULL;
    int line = 0;
    for (const char *p = text; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        char buf[512];
        size_t len = (size_t)(eol - p);
        CHECK(len < sizeof buf);
        memcpy(buf, p, len);
        buf[len] = '\0';
        p = eol + 1;
        line++;
        if (strncmp(buf, "# HELP ", 7) == 0) {
            const char *q = buf + 7;
            CHECK(pg->nf < FAMILIES_MAX);
            cur = &pg->f[pg->nf++];
            memset(cur, 0, sizeof *cur);
            read_name(&q, cur->name, sizeof cur->name, line);
            if (*q != ' ' || q[1] == '\0') {
                fail(line, "HELP without text", buf);
            }
            for (int i = 0; i < pg->nf - 1; i++) {
                if (strcmp(pg->f[i].name, cur->name) == 0) {
                    fail(line, "family announced twice", cur->name);
                }
            }
            cur->first = pg->n;
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            const char *q = buf + 7;
            char name[96];
            read_name(&q, name, sizeof name, line);
            if (cur == NULL || strcmp(name, cur->name) != 0 ||
                cur->type[0] != '\0' || pg->n != cur->first) {
                fail(line, "TYPE not right after its HELP", buf);
            }
            if (strcmp(q, " counter") != 0 && strcmp(q, " gauge") != 0 &&
                strcmp(q, " histogram") != 0) {
                fail(line, "unknown type", q);
            }
            snprintf(cur->type, sizeof cur->type, "%s", q + 1);
            continue;
        }
        if (buf[0] == '#' || buf[0] == '\0') {
            fail(line, "unexpected line", buf);
        }
        if (cur == NULL || cur->type[0] == '\0') {
            fail(line, "sample before HELP and TYPE", buf);
        }
        parse_sample(pg, buf, line);
        const char *name = pg->s[pg->n - 1].name;
        size_t fl = strlen(cur->name);
        bool ok = strcmp(name, cur->name) == 0;
        if (strcmp(cur->type, "histogram") == 0) {
            ok = strncmp(name, cur->name, fl) == 0 &&
                 (strcmp(name + fl, "_bucket") == 0 ||
                  strcmp(name + fl, "_sum") == 0 ||
                  strcmp(name + fl, "_count") == 0);
        }
        if (!ok) {
            fail(line, "sample outside its family", name);
        }
        cur->n++;
    }
    for (int i = 0; i < pg->nf; i++) {
        const struct family *f = &pg->f[i];
        bool counter = strcmp(f->type, "counter") == 0;
        if (counter != ends_with(f->name, "_total")) {
            fail(0, "only counters end in _total", f->name);
        }
    }
}

static const char *label(const struct sample *s, const char *name)
{
    for (int i = 0; i < s->n_labels; i++) {
        if (strcmp(s->labels[i][0], name) == 0) {
            return s->labels[i][1];
        }
    }
    return NULL;
}

static const struct family *family(const struct page *pg, const char *name)
{
    for (int i = 0; i < pg->nf; i++) {
        if (strcmp(pg->f[i].name, name) == 0) {
            return &pg->f[i];
        }
    }
    return NULL;
}

/* Every histogram series of the page: le increasing to +Inf, counts
 * cumulative, +Inf == _count, one _sum; returns the series checked. */
static int check_histograms(const struct page *pg)
{
    int checked = 0;
    for (int i = 0; i < pg->nf; i++) {
        const struct family *f = &pg->f[i];
        if (strcmp(f->type, "histogram") != 0) {
            continue;
        }
        double last_le = -INFINITY, last_count = 0;
        bool open = false, saw_sum = false;
        for (int k = f->first; k < f->first + f->n; k++) {
            const struct sample *s = &pg->s[k];
            if (ends_with(s->name, "_bucket")) {
                const char *le = label(s, "le");
                CHECK(le != NULL);
                double v = read_value(le, 0);
                if (!open) {
                    open = true;
                    last_le = -INFINITY;
                    last_count = 0;
                    saw_sum = false;
                }
                CHECK(v > last_le);
                CHECK(s->value >= last_count);
                last_le = v;
                last_count = s->value;
            } else if (ends_with(s->name, "_sum")) {
                CHECK(open && isinf(last_le) && last_le > 0);
                saw_sum = true;
            } else {
                CHECK(open && saw_sum);
                CHECK(s->value == last_count); /* +Inf == _count */
                open = false;
                checked++;
            }
        }
        CHECK(!open);
    }
    return checked;
}

/* ------------------------------------------------------------- tests */

static const double bounds3[] = {0.001, 0.01, 0.1};

static void test_page(void)
{
    struct kyufu_metrics_histogram a, b;
    kyufu_metrics_histogram_init(&a, bounds3, 3);
    kyufu_metrics_histogram_init(&b, kyufu_metrics_buckets_latency,
                                 kyufu_metrics_buckets_latency_n);
    kyufu_metrics_histogram_observe_ns(&a, 0);          /* le 0.001 */
    kyufu_metrics_histogram_observe_ns(&a, 1000000);    /* exactly 0.001 */
    kyufu_metrics_histogram_observe_ns(&a, 1000001);    /* le 0.01 */
    kyufu_metrics_histogram_observe_ns(&a, 50000000);   /* le 0.1 */
    kyufu_metrics_histogram_observe_ns(&a, 3000000000); /* +Inf */
    for (uint64_t ns = 1; ns < 20000000000u; ns = ns * 3 + 7) {
        kyufu_metrics_histogram_observe_ns(&b, ns);
    }

    struct kyufu_metrics_buf buf;
    kyufu_metrics_buf_init(&buf);
    kyufu_metrics_family(&buf, "kyufu_test_requests_total",
                         KYUFU_METRICS_COUNTER, "Requests by code");
    const struct kyufu_metrics_label l1[] = {{"method", "Ledger/Get"},
                                             {"code", "OK"}};
    kyufu_metrics_sample_u(&buf, "kyufu_test_requests_total", l1, 2, 42);
    const struct kyufu_metrics_label l2[] = {{"method", "odd \"x\" \\ y\nz"},
                                             {"code", "NOT_FOUND"}};
    kyufu_metrics_sample_u(&buf, "kyufu_test_requests_total", l2, 2,
                           UINT64_C(18446744073709551615));
    kyufu_metrics_family(&buf, "kyufu_test_term", KYUFU_METRICS_GAUGE,
                         "A gauge");
    kyufu_metrics_sample_u(&buf, "kyufu_test_term", NULL, 0, 7);
    kyufu_metrics_family(&buf, "kyufu_test_ratio", KYUFU_METRICS_GAUGE,
                         "Fractions and non-finite values");
    const struct kyufu_metrics_label r[4][1] = {
        {{"k", "a"}}, {{"k", "b"}}, {{"k", "c"}}, {{"k", "d"}}};
    kyufu_metrics_sample(&buf, "kyufu_test_ratio", r[0], 1, 0.1);
    kyufu_metrics_sample(&buf, "kyufu_test_ratio", r[1], 1, -2.5e-9);
    kyufu_metrics_sample(&buf, "kyufu_test_ratio", r[2], 1, INFINITY);
    kyufu_metrics_sample(&buf, "kyufu_test_ratio", r[3], 1, NAN);
    kyufu_metrics_family(&buf, "kyufu_test_seconds",
                         KYUFU_METRICS_HISTOGRAM, "Two series");
    const struct kyufu_metrics_label h1[] = {{"method", "A"}};
    const struct kyufu_metrics_label h2[] = {{"method", "B"}};
    kyufu_metrics_histogram_write(&buf, "kyufu_test_seconds", h1, 1, &a);
    kyufu_metrics_histogram_write(&buf, "kyufu_test_seconds", h2, 1, &b);
    kyufu_metrics_family(&buf, "kyufu_test_plain_seconds",
                         KYUFU_METRICS_HISTOGRAM, "No labels");
    kyufu_metrics_histogram_write(&buf, "kyufu_test_plain_seconds", NULL, 0,
                                  &a);
    CHECK(!kyufu_metrics_buf_failed(&buf));
    CHECK(strlen(buf.data) == buf.len);

    static struct page pg;
    parse(&pg, buf.data);
    CHECK(pg.nf == 5);
    CHECK(check_histograms(&pg) == 3);

    /* Values and labels come back as written. */
    const struct family *f = family(&pg, "kyufu_test_requests_total");
    CHECK(f != NULL && f->n == 2 && strcmp(f->type, "counter") == 0);
    CHECK(pg.s[f->first].value == 42);
    CHECK(strcmp(label(&pg.s[f->first + 1], "method"),
                 "odd \"x\" \\ y\nz") == 0);
    CHECK(strstr(buf.data, " 18446744073709551615\n") != NULL);
    CHECK(strstr(buf.data, "{k=\"a\"} 0.1\n") != NULL); /* shortest */
    f = family(&pg, "kyufu_test_ratio");
    CHECK(pg.s[f->first].value == 0.1);
    CHECK(pg.s[f->first + 1].value == -2.5e-9);
    CHECK(isinf(pg.s[f->first + 2].value));
    CHECK(isnan(pg.s[f->first + 3].value));

    /* Buckets of `a`: 0 and exactly 1 ms in le=0.001 (le is <=), then
     * 1 more each, the 3 s one only in +Inf. */
    f = family(&pg, "kyufu_test_plain_seconds");
    const double want[] = {2, 3, 4, 5};
    const char *const les[] = {"0.001", "0.01", "0.1", "+Inf"};
    for (int i = 0; i < 4; i++) {
        const struct sample *s = &pg.s[f->first + i];
        CHECK(strcmp(s->name, "kyufu_test_plain_seconds_bucket") == 0);
        CHECK(strcmp(label(s, "le"), les[i]) == 0);
        CHECK(s->value == want[i]);
    }
    CHECK(strcmp(pg.s[f->first + 4].name, "kyufu_test_plain_seconds_sum") ==
          0);
    CHECK(fabs(pg.s[f->first + 4].value - 3.052000001) < 1e-9);
    CHECK(pg.s[f->first + 5].value == 5);
    kyufu_metrics_buf_free(&buf);
}

/* The parser itself refuses what it must (a test that cannot fail proves
 * nothing): run in a child, each of these exits 1. */
static bool refused(const char *text)
{
    fflush(NULL);
    int status;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK(freopen("/dev/null", "w", stderr) != NULL);
        static struct page pg;
        parse(&pg, text);
        check_histograms(&pg);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

static void test_parser_refuses(void)
{
    CHECK(!refused("# HELP kyufu_x_total X\n# TYPE kyufu_x_total counter\n"
                   "kyufu_x_total 1\n"));
    CHECK(refused("kyufu_x 1\n"));                         /* no HELP */
    CHECK(refused("# HELP kyufu_x X\nkyufu_x 1\n"));       /* no TYPE */
    CHECK(refused("# HELP kyufu_x X\n# TYPE kyufu_x counter\nkyufu_x 1\n"));
    CHECK(refused("# HELP kyufu_x_total X\n# TYPE kyufu_x_total gauge\n"
                  "kyufu_x_total 1\n"));
    CHECK(refused("# HELP kyufu_x X\n# TYPE kyufu_x gauge\n"
                  "kyufu_y 1\n")); /* outside its family */
    CHECK(refused("# HELP kyufu_x X\n# TYPE kyufu_x gauge\n"
                  "kyufu_x{a=\"b} 1\n"));
    CHECK(refused("# HELP kyufu_x X\n# TYPE kyufu_x gauge\n"
                  "kyufu_x{a=\"\\t\"} 1\n"));
    CHECK(refused("# HELP kyufu_h X\n# TYPE kyufu_h histogram\n"
                  "kyufu_h_bucket{le=\"1\"} 2\nkyufu_h_bucket{le=\"+Inf\"} 1\n"
                  "kyufu_h_sum 1\nkyufu_h_count 1\n")); /* decreasing */
    CHECK(refused("# HELP kyufu_h X\n# TYPE kyufu_h histogram\n"
                  "kyufu_h_bucket{le=\"1\"} 1\nkyufu_h_bucket{le=\"+Inf\"} 2\n"
                  "kyufu_h_sum 1\nkyufu_h_count 3\n")); /* +Inf != count */
    CHECK(refused("# HELP kyufu_h X\n# TYPE kyufu_h histogram\n"
                  "kyufu_h_bucket{le=\"1\"} 1\n"
                  "kyufu_h_sum 1\nkyufu_h_count 1\n")); /* no +Inf */
}

static void test_out_of_memory(void)
{
    struct kyufu_metrics_buf buf;
    kyufu_metrics_buf_init(&buf);
    buf.failed = true; /* as after a failed realloc */
    kyufu_metrics_family(&buf, "kyufu_x", KYUFU_METRICS_GAUGE, "X");
    kyufu_metrics_sample_u(&buf, "kyufu_x", NULL, 0, 1);
    CHECK(kyufu_metrics_buf_failed(&buf) && buf.len == 0 && buf.data == NULL);
    kyufu_metrics_buf_free(&buf);
}

int main(void)
{
    test_page();
    test_parser_refuses();
    test_out_of_memory();
    printf("ok\n");
    return 0;
}
