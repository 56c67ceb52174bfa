/* Prometheus text exposition (format 0.0.4) and fixed-bucket histograms:
 * the I/O-free half of kyufud's /metrics (docs/metrics.md).  What the node
 * exposes is metrics_node.c's; the listener is metrics_http.c's.
 *
 * Histograms: each has a static, strictly increasing array of upper bounds
 * in seconds (base units, as Prometheus names them) and one counter per
 * bucket plus the +Inf one.  Every recording happens on the loop thread
 * (apply, proposals, calls all run there), so nothing is locked; a future
 * recorder on a work thread must post to the loop instead.
 *
 * The writer appends to a growable buffer.  Family lines (# HELP, # TYPE)
 * come once, before the family's samples; label values are escaped as the
 * format demands (\\, \", \n), though kyufu only ever passes fixed names
 * (methods, status codes, roles, causes): never personal data.  On
 * out-of-memory the buffer is marked failed, later appends do nothing and
 * kyufu_metrics_buf_failed says so (the scrape is then answered 500). */
#ifndef KYUFU_NODE_METRICS_H
#define KYUFU_NODE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- histograms */

/* Bucket upper bounds at most this many (the +Inf bucket not counted). */
#define KYUFU_METRICS_BUCKETS_MAX 16u

struct kyufu_metrics_histogram
{
    const double *bounds; /* borrowed, static: strictly increasing, seconds */
    size_t n_bounds;      /* 1..KYUFU_METRICS_BUCKETS_MAX */
    uint64_t counts[KYUFU_METRICS_BUCKETS_MAX + 1]; /* not cumulative */
    uint64_t count;
    double sum; /* seconds */
};

/* Latencies of in-process work: 100 us .. 10 s. */
extern const double kyufu_metrics_buckets_latency[];
extern const size_t kyufu_metrics_buckets_latency_n;

void kyufu_metrics_histogram_init(struct kyufu_metrics_histogram *h,
                                  const double *bounds,
                                  size_t n_bounds);
/* Record one observation of `ns` nanoseconds. */
void kyufu_metrics_histogram_observe_ns(struct kyufu_metrics_histogram *h,
                                        uint64_t ns);

/* ------------------------------------------------------------- the writer */

struct kyufu_metrics_buf
{
    char *data; /* owned; NUL-terminated while not failed */
    size_t len;
    size_t cap;
    bool failed;
};

enum kyufu_metrics_type {
    KYUFU_METRICS_COUNTER,
    KYUFU_METRICS_GAUGE,
    KYUFU_METRICS_HISTOGRAM,
};

/* One label: a name ([a-zA-Z_][a-zA-Z0-9_]*) and a value (escaped here). */
struct kyufu_metrics_label
{
    const char *name;
    const char *value;
};

void kyufu_metrics_buf_init(struct kyufu_metrics_buf *b);
void kyufu_metrics_buf_free(struct kyufu_metrics_buf *b);
bool kyufu_metrics_buf_failed(const struct kyufu_metrics_buf *b);

/* "# HELP name help\n# TYPE name type\n".  A counter's name must end in
 * "_total" (asserted: the convention is the contract of docs/metrics.md);
 * `help` is one line. */
void kyufu_metrics_family(struct kyufu_metrics_buf *b,
                          const char *name,
                          enum kyufu_metrics_type type,
                          const char *help);
/* One sample "name{labels} value\n" (integers print exactly). */
void kyufu_metrics_sample(struct kyufu_metrics_buf *b,
                          const char *name,
                          const struct kyufu_metrics_label *labels,
                          size_t n_labels,
                          double value);
void kyufu_metrics_sample_u(struct kyufu_metrics_buf *b,
                            const char *name,
                            const struct kyufu_metrics_label *labels,
                            size_t n_labels,
                            uint64_t value);
/* name_bucket{labels,le="..."} (cumulative, +Inf last), name_sum and
 * name_count of `h`. */
void kyufu_metrics_histogram_write(struct kyufu_metrics_buf *b,
                                   const char *name,
                                   const struct kyufu_metrics_label *labels,
                                   size_t n_labels,
                                   const struct kyufu_metrics_histogram *h);

#endif /* KYUFU_NODE_METRICS_H */
