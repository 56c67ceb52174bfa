/* Latency samples of the load benchmarks (kyufu-bench-load,
 * kyufu-bench-etcd) and what their JSON says of them: seconds, calls/s,
 * nearest-rank p50/p99 and the max, in ms.
 *
 * A phase keeps one sample per answered call (its latency, first send to
 * final answer, in whole µs, and a caller's number: kyufu's Raft index,
 * etcd's revision, 0 for none).  Growing the arrays is the only failure,
 * and it is fatal (kyufu_bench_die). */
#ifndef KYUFU_BENCH_LATENCY_H
#define KYUFU_BENCH_LATENCY_H

#include <stdint.h>

struct kyufu_bench_latency
{
    uint32_t *us;   /* owned; n samples (sorted by _summarize) */
    uint64_t *tag;  /* owned; n numbers (sorted by _distinct_tags) */
    uint64_t n;
    uint64_t cap;
};

struct kyufu_bench_latency_summary
{
    double secs;   /* the phase's length */
    double per_s;  /* samples per second */
    double p50, p99, max;  /* ms */
};

/* Microseconds since t0_ns (uv_hrtime), saturated at UINT32_MAX. */
uint32_t kyufu_bench_latency_us_since(uint64_t t0_ns);

/* The wall clock in ms since the epoch (the probe's lines). */
int64_t kyufu_bench_latency_unix_ms(void);

/* Append one sample (dies when out of memory). */
void kyufu_bench_latency_add(struct kyufu_bench_latency *l, uint32_t us, uint64_t tag);

/* The summary of a phase from t_start_ns to t_end_ns; sorts l->us. */
struct kyufu_bench_latency_summary
kyufu_bench_latency_summarize(struct kyufu_bench_latency *l, uint64_t t_start_ns,
                              uint64_t t_end_ns);

/* The percentiles of the samples added since sample `from` (a time
 * series' window: secs and per_s are left 0); sorts l->us[from..n) in
 * place, which _summarize's whole sort does not mind. */
struct kyufu_bench_latency_summary
kyufu_bench_latency_window(struct kyufu_bench_latency *l, uint64_t from);

/* How many distinct non-zero tags; sorts l->tag. */
uint64_t kyufu_bench_latency_distinct_tags(struct kyufu_bench_latency *l);

/* On stdout: "seconds": S, "commands_per_s": R, "latency_ms": {"p50": ..,
 * "p99": .., "max": ..}  (the fields both programs' runs share, the
 * side-by-side benchmark and the install drill read them). */
void kyufu_bench_latency_print(const struct kyufu_bench_latency_summary *s);

/* Frees the arrays; l is empty again. */
void kyufu_bench_latency_free(struct kyufu_bench_latency *l);

#endif
