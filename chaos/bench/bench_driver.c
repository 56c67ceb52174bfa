/* The in-flight loop of the load benchmarks (bench_driver.h). */
#include "bench_driver.h"

#include <assert.h>
#include <signal.h>

#include "bench_args.h"

static void signal_cb(uv_signal_t *h, int signum)
{
    struct kyufu_bench_driver *d = h->data;
    (void)signum;
    d->stop = true;
}

void kyufu_bench_driver_init(struct kyufu_bench_driver *d, uv_loop_t *loop)
{
    *d = (struct kyufu_bench_driver){.loop = loop};
    uv_signal_init(loop, &d->sigint);
    uv_signal_init(loop, &d->sigterm);
    d->sigint.data = d->sigterm.data = d;
    uv_signal_start(&d->sigint, signal_cb, SIGINT);
    uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
}

uint64_t kyufu_bench_driver_begin(struct kyufu_bench_driver *d)
{
    assert(d->in_flight == 0);
    d->time_up = false;
    return uv_hrtime();
}

bool kyufu_bench_driver_may_start(const struct kyufu_bench_driver *d)
{
    return !d->stop && !d->time_up;
}

uint64_t kyufu_bench_driver_drain(struct kyufu_bench_driver *d, uint64_t t_start_ns,
                                  double duration_s, bool probe)
{
    double limit_ns = duration_s > 0 ? duration_s * 1e9 : 0;
    while (d->in_flight > 0 || (probe && !d->stop)) {
        uv_run(d->loop, UV_RUN_ONCE);
        if (limit_ns > 0 && (double)(uv_hrtime() - t_start_ns) >= limit_ns) {
            /* A load phase starts no new call and drains; the probe ends. */
            d->time_up = true;
            if (probe) {
                d->stop = true;
            }
        }
    }
    return uv_hrtime();
}

unsigned kyufu_bench_driver_connections(unsigned k, unsigned per_conn)
{
    assert(per_conn >= 1);
    unsigned n = (k + per_conn - 1) / per_conn;
    if (n > KYUFU_BENCH_CONNECTIONS_MAX) {
        kyufu_bench_die("K=%u at %u per connection needs more than %u connections", k,
                        per_conn, KYUFU_BENCH_CONNECTIONS_MAX);
    }
    return n;
}

void kyufu_bench_driver_close(struct kyufu_bench_driver *d)
{
    d->stop = true;
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
}
