/* Command-line pieces shared by the load benchmarks (kyufu-bench-load,
 * kyufu-bench-etcd): a fatal setup error, an integer or a number of
 * seconds in bounds, the --inflight list.  Every malformed argument ends
 * the program through kyufu_bench_die (exit 2, one line on stderr naming
 * the option), before anything was sent. */
#ifndef KYUFU_BENCH_ARGS_H
#define KYUFU_BENCH_ARGS_H

#include <stdint.h>

#include "bench_driver.h"

/* The program's name, the prefix of every message: each program defines it
 * ("kyufu-bench-load", "kyufu-bench-etcd"). */
extern const char kyufu_bench_program[];

/* "<program>: <message>" on stderr, then exit(2): a usage or setup error. */
void kyufu_bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The decimal integer s in [lo, hi], or die naming --opt. */
uint64_t kyufu_bench_args_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi);

/* A number of seconds in (0, KYUFU_BENCH_DURATION_S_MAX], or die naming --opt. */
double kyufu_bench_args_seconds(const char *opt, const char *s);

/* --inflight "1,16,64": 1..KYUFU_BENCH_INFLIGHT_STEPS_MAX values, each in
 * [1, KYUFU_BENCH_INFLIGHT_MAX], into ks and their count into n, or die
 * (ks and n left as they were). */
void kyufu_bench_args_ks(const char *s, unsigned ks[KYUFU_BENCH_INFLIGHT_STEPS_MAX],
                         unsigned *n);

/* The largest value of ks[0..n) (at least 1). */
unsigned kyufu_bench_args_ks_max(const unsigned *ks, unsigned n);

#endif
