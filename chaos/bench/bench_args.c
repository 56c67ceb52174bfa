/* Command-line pieces of the load benchmarks (bench_args.h). */
#include "bench_args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kyufu_bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", kyufu_bench_program);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

uint64_t kyufu_bench_args_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        kyufu_bench_die("--%s: '%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]", opt, s,
                        lo, hi);
    }
    return v;
}

double kyufu_bench_args_seconds(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > 0) || v > KYUFU_BENCH_DURATION_S_MAX) {
        kyufu_bench_die("--%s: a number of seconds in (0, %u]", opt,
                        KYUFU_BENCH_DURATION_S_MAX);
    }
    return v;
}

void kyufu_bench_args_ks(const char *s, unsigned ks[KYUFU_BENCH_INFLIGHT_STEPS_MAX],
                         unsigned *n)
{
    char buf[256];
    unsigned got[KYUFU_BENCH_INFLIGHT_STEPS_MAX];
    unsigned count = 0;
    if (strlen(s) >= sizeof buf) {
        kyufu_bench_die("--inflight: too long");
    }
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (count == KYUFU_BENCH_INFLIGHT_STEPS_MAX) {
            kyufu_bench_die("--inflight: at most %u values", KYUFU_BENCH_INFLIGHT_STEPS_MAX);
        }
        got[count++] = (unsigned)kyufu_bench_args_u64("inflight", tok, 1,
                                                      KYUFU_BENCH_INFLIGHT_MAX);
    }
    if (count == 0) {
        kyufu_bench_die("--inflight: empty");
    }
    memcpy(ks, got, count * sizeof got[0]);
    *n = count;
}

unsigned kyufu_bench_args_ks_max(const unsigned *ks, unsigned n)
{
    unsigned kmax = 1;
    for (unsigned i = 0; i < n; i++) {
        kmax = ks[i] > kmax ? ks[i] : kmax;
    }
    return kmax;
}
