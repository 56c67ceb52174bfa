/* The in-flight loop shared by the load benchmarks (kyufu-bench-load,
 * kyufu-bench-etcd): K calls in flight on one libuv loop for a phase, until
 * the time is up, then the calls in flight drain.
 *
 * Happy path: kyufu_bench_driver_init once (SIGINT/SIGTERM set `stop`);
 * per phase, kyufu_bench_driver_begin, start K calls (each counted in
 * `in_flight` by the program when sent, uncounted when answered; a program
 * starts a new call only while kyufu_bench_driver_may_start), then
 * kyufu_bench_driver_drain runs the loop.  At the end
 * kyufu_bench_driver_close, then the program runs the loop to close its
 * own handles.
 *
 * The driver owns no call: the programs' callbacks read and write the
 * fields below; all on the loop's thread. */
#ifndef KYUFU_BENCH_DRIVER_H
#define KYUFU_BENCH_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

/* Calls in flight on one HTTP/2 connection by default: below the 100
 * concurrent streams a server typically allows, so none waits in
 * nghttp2's queue where its attempt timer would already run.
 * --per-connection lowers it. */
#define KYUFU_BENCH_CALLS_PER_CONNECTION_MAX 64u
/* Largest K: 16 connections of 64. */
#define KYUFU_BENCH_INFLIGHT_MAX 1024u
/* Values of --inflight, one phase each. */
#define KYUFU_BENCH_INFLIGHT_STEPS_MAX 16u
#define KYUFU_BENCH_CONNECTIONS_MAX \
    (KYUFU_BENCH_INFLIGHT_MAX / KYUFU_BENCH_CALLS_PER_CONNECTION_MAX)
/* --duration-s: a day is longer than any benchmark phase. */
#define KYUFU_BENCH_DURATION_S_MAX 86400u

_Static_assert(KYUFU_BENCH_CONNECTIONS_MAX * KYUFU_BENCH_CALLS_PER_CONNECTION_MAX >=
                   KYUFU_BENCH_INFLIGHT_MAX,
               "connections must cover the largest K");

struct kyufu_bench_driver
{
    uv_loop_t *loop;     /* borrowed; outlives the driver */
    unsigned in_flight;  /* calls sent and not yet answered */
    bool stop;           /* a signal, or the probe's time ended: no new call */
    bool time_up;        /* the phase's duration passed: no new call starts */
    uv_signal_t sigint, sigterm;
};

/* Start watching SIGINT and SIGTERM on loop (each sets d->stop). */
void kyufu_bench_driver_init(struct kyufu_bench_driver *d, uv_loop_t *loop);

/* A new phase: clears time_up; returns its start (uv_hrtime, ns). */
uint64_t kyufu_bench_driver_begin(struct kyufu_bench_driver *d);

/* Whether a call may start now (neither stop nor time_up). */
bool kyufu_bench_driver_may_start(const struct kyufu_bench_driver *d);

/* Run the loop while a call is in flight (a probe: until stop, even with
 * none in flight, as while it waits to retry).  When duration_s > 0 and
 * that many seconds passed since t_start_ns, time_up is set (and stop for a
 * probe).  Returns the end (uv_hrtime, ns). */
uint64_t kyufu_bench_driver_drain(struct kyufu_bench_driver *d, uint64_t t_start_ns,
                                  double duration_s, bool probe);

/* Connections for k calls at per_conn each (ceil), or die when more than
 * KYUFU_BENCH_CONNECTIONS_MAX. */
unsigned kyufu_bench_driver_connections(unsigned k, unsigned per_conn);

/* Sets stop and closes the signal handles; the caller runs the loop after. */
void kyufu_bench_driver_close(struct kyufu_bench_driver *d);

#endif
