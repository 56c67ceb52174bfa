/* Prometheus text exposition and fixed-bucket histograms: see metrics.h.
 * The format is Prometheus' "text/plain; version=0.0.4": '#'-lines for
 * HELP and TYPE, then one sample per line, label values in double quotes
 * with \\, \" and \n escaped, values as Go's ParseFloat reads them
 * ("+Inf" for the last bucket bound). */
#include "metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 100 us to 10 s: an LMDB commit with its fsync (~1-5 ms on SSD, tens on
 * a loaded disk), a Raft round trip on a LAN (~1 ms) and an RPC that waits
 * for an election (up to the 10 s call default) all land inside. */
const double kyufu_metrics_buckets_latency[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5, 5.0, 10.0,
};
const size_t kyufu_metrics_buckets_latency_n =
    sizeof kyufu_metrics_buckets_latency /
    sizeof kyufu_metrics_buckets_latency[0];
_Static_assert(sizeof kyufu_metrics_buckets_latency /
                       sizeof kyufu_metrics_buckets_latency[0] <=
                   KYUFU_METRICS_BUCKETS_MAX,
               "the latency buckets fit a histogram");

void kyufu_metrics_histogram_init(struct kyufu_metrics_histogram *h,
                                  const double *bounds,
                                  size_t n_bounds)
{
    assert(n_bounds >= 1 && n_bounds <= KYUFU_METRICS_BUCKETS_MAX);
    for (size_t i = 1; i < n_bounds; i++) {
        assert(bounds[i - 1] < bounds[i]);
    }
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n_bounds;
}

void kyufu_metrics_histogram_observe_ns(struct kyufu_metrics_histogram *h,
                                        uint64_t ns)
{
    assert(h->bounds != NULL);
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < h->n_bounds && s > h->bounds[i]) {
        i++;
    }
    h->counts[i]++; /* i == n_bounds: the +Inf bucket */
    h->count++;
    h->sum += s;
}

/* ------------------------------------------------------------- the writer */

void kyufu_metrics_buf_init(struct kyufu_metrics_buf *b)
{
    memset(b, 0, sizeof *b);
}

void kyufu_metrics_buf_free(struct kyufu_metrics_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

bool kyufu_metrics_buf_failed(const struct kyufu_metrics_buf *b)
{
    return b->failed;
}

static bool reserve(struct kyufu_metrics_buf *b, size_t more)
{
    if (b->failed) {
        return false;
    }
    if (b->len + more + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap > 0 ? b->cap : 4096;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void put(struct kyufu_metrics_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) {
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void puts_(struct kyufu_metrics_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(struct kyufu_metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void printf_(struct kyufu_metrics_buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof tmp); /* numbers only */
    put(b, tmp, (size_t)n);
}

static bool name_ok(const char *s)
{
    if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                       *s == '_' || *s == ':')) {
        return false;
    }
    for (s++; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == ':')) {
            return false;
        }
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

void kyufu_metrics_family(struct kyufu_metrics_buf *b,
                          const char *name,
                          enum kyufu_metrics_type type,
                          const char *help)
{
    assert(name_ok(name));
    assert(strchr(help, '\n') == NULL && strchr(help, '\\') == NULL);
    assert(type != KYUFU_METRICS_COUNTER || ends_with(name, "_total"));
    assert(type == KYUFU_METRICS_COUNTER || !ends_with(name, "_total"));
    static const char *const types[] = {"counter", "gauge", "histogram"};
    puts_(b, "# HELP ");
    puts_(b, name);
    puts_(b, " ");
    puts_(b, help);
    puts_(b, "\n# TYPE ");
    puts_(b, name);
    puts_(b, " ");
    puts_(b, types[type]);
    puts_(b, "\n");
}

static void label_value(struct kyufu_metrics_buf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\') {
            puts_(b, "\\\\");
        } else if (*v == '"') {
            puts_(b, "\\\"");
        } else if (*v == '\n') {
            puts_(b, "\\n");
        } else {
            put(b, v, 1);
        }
    }
}

/* name{a="x",b="y"[,le="..."]} */
static void series(struct kyufu_metrics_buf *b,
                   const char *name,
                   const char *suffix,
                   const struct kyufu_metrics_label *labels,
                   size_t n_labels,
                   const char *le)
{
    puts_(b, name);
    puts_(b, suffix);
    if (n_labels == 0 && le == NULL) {
        return;
    }
    puts_(b, "{");
    for (size_t i = 0; i < n_labels; i++) {
        assert(name_ok(labels[i].name) && strcmp(labels[i].name, "le") != 0);
        puts_(b, i > 0 ? "," : "");
        puts_(b, labels[i].name);
        puts_(b, "=\"");
        label_value(b, labels[i].value);
        puts_(b, "\"");
    }
    if (le != NULL) {
        puts_(b, n_labels > 0 ? ",le=\"" : "le=\"");
        puts_(b, le);
        puts_(b, "\"");
    }
    puts_(b, "}");
}

/* A value as Go's strconv.ParseFloat reads it: integers exactly, others
 * with the fewest significant digits (15 to 17) that read back as the
 * same double ("0.009", not "0.0089999999999999993"). */
static void value(struct kyufu_metrics_buf *b, double v)
{
    if (isnan(v)) {
        puts_(b, " NaN\n");
    } else if (isinf(v)) {
        puts_(b, v > 0 ? " +Inf\n" : " -Inf\n");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        printf_(b, " %" PRId64 "\n", (int64_t)v);
    } else {
        char tmp[40];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(tmp, sizeof tmp, "%.*g", digits, v);
            if (strtod(tmp, NULL) == v) {
                break;
            }
        }
        printf_(b, " %s\n", tmp);
    }
}

void kyufu_metrics_sample(struct kyufu_metrics_buf *b,
                          const char *name,
                          const struct kyufu_metrics_label *labels,
                          size_t n_labels,
                          double v)
{
    series(b, name, "", labels, n_labels, NULL);
    value(b, v);
}

void kyufu_metrics_sample_u(struct kyufu_metrics_buf *b,
                            const char *name,
                            const struct kyufu_metrics_label *labels,
                            size_t n_labels,
                            uint64_t v)
{
    series(b, name, "", labels, n_labels, NULL);
    printf_(b, " %" PRIu64 "\n", v);
}

void kyufu_metrics_histogram_write(struct kyufu_metrics_buf *b,
                                   const char *name,
                                   const struct kyufu_metrics_label *labels,
                                   size_t n_labels,
                                   const struct kyufu_metrics_histogram *h)
{
    uint64_t cumulative = 0;
    char le[32];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += h->counts[i];
        if (i < h->n_bounds) {
            snprintf(le, sizeof le, "%g", h->bounds[i]);
        } else {
            snprintf(le, sizeof le, "+Inf");
        }
        series(b, name, "_bucket", labels, n_labels, le);
        printf_(b, " %" PRIu64 "\n", cumulative);
    }
    assert(cumulative == h->count);
    series(b, name, "_sum", labels, n_labels, NULL);
    value(b, h->sum);
    series(b, name, "_count", labels, n_labels, NULL);
    printf_(b, " %" PRIu64 "\n", h->count);
}
