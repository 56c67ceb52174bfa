/* Latency samples of the load benchmarks (bench_latency.h). */
#include "bench_latency.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <uv.h>

#include "bench_args.h"

/* First allocation: 65,536 samples (768 KiB), then doubling. */
#define LATENCY_SAMPLES_INITIAL (1u << 16)

uint32_t kyufu_bench_latency_us_since(uint64_t t0_ns)
{
    uint64_t us = (uv_hrtime() - t0_ns) / 1000;
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

int64_t kyufu_bench_latency_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kyufu_bench_latency_add(struct kyufu_bench_latency *l, uint32_t us, uint64_t tag)
{
    if (l->n == l->cap) {
        uint64_t cap = l->cap ? l->cap * 2 : LATENCY_SAMPLES_INITIAL;
        uint32_t *u = realloc(l->us, cap * sizeof *u);
        if (u == NULL) {
            kyufu_bench_die("out of memory for samples");
        }
        l->us = u;
        uint64_t *t = realloc(l->tag, cap * sizeof *t);
        if (t == NULL) {
            kyufu_bench_die("out of memory for samples");
        }
        l->tag = t;
        l->cap = cap;
    }
    l->us[l->n] = us;
    l->tag[l->n] = tag;
    l->n++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile p of the sorted v[0..n), in ms. */
static double pct_ms(const uint32_t *v, uint64_t n, unsigned p)
{
    if (n == 0) {
        return 0;
    }
    uint64_t rank = (n * p + 99) / 100;
    return (double)v[rank == 0 ? 0 : rank - 1] / 1000.0;
}

struct kyufu_bench_latency_summary
kyufu_bench_latency_summarize(struct kyufu_bench_latency *l, uint64_t t_start_ns,
                              uint64_t t_end_ns)
{
    struct kyufu_bench_latency_summary s = {0};
    s.secs = (double)(t_end_ns - t_start_ns) / 1e9;
    s.per_s = s.secs > 0 ? (double)l->n / s.secs : 0;
    struct kyufu_bench_latency_summary w = kyufu_bench_latency_window(l, 0);
    s.p50 = w.p50;
    s.p99 = w.p99;
    s.max = w.max;
    return s;
}

struct kyufu_bench_latency_summary
kyufu_bench_latency_window(struct kyufu_bench_latency *l, uint64_t from)
{
    struct kyufu_bench_latency_summary s = {0};
    if (from < l->n) {
        uint32_t *v = l->us + from;
        uint64_t n = l->n - from;
        qsort(v, n, sizeof v[0], cmp_u32);
        s.p50 = pct_ms(v, n, 50);
        s.p99 = pct_ms(v, n, 99);
        s.max = (double)v[n - 1] / 1000.0;
    }
    return s;
}

uint64_t kyufu_bench_latency_distinct_tags(struct kyufu_bench_latency *l)
{
    uint64_t distinct = 0;
    if (l->n > 0) {
        qsort(l->tag, l->n, sizeof l->tag[0], cmp_u64);
    }
    for (uint64_t i = 0; i < l->n; i++) {
        if (l->tag[i] != 0 && (i == 0 || l->tag[i] != l->tag[i - 1])) {
            distinct++;
        }
    }
    return distinct;
}

void kyufu_bench_latency_print(const struct kyufu_bench_latency_summary *s)
{
    printf("\"seconds\": %.3f, \"commands_per_s\": %.1f,"
           " \"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}",
           s->secs, s->per_s, s->p50, s->p99, s->max);
}

void kyufu_bench_latency_free(struct kyufu_bench_latency *l)
{
    free(l->us);
    free(l->tag);
    *l = (struct kyufu_bench_latency){0};
}
