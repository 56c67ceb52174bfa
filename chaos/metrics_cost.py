#!/usr/bin/python3
"""Measure what a /metrics scrape costs the node's loop (docs/metrics.md,
"Cost of a scrape").

One three-node cluster (tests/integration/cluster.py), node 1 serving plain
HTTP and node 2 TLS (no client certificate).  A workload first touches
every kind of call (writes, reads, status, a few errors) so that the
per-method families are as full as they get in use; then each node is
scraped SCRAPES times, one after another.  Every answer carries
kyufu_metrics_scrape_loop_seconds, the loop time the PREVIOUS scrape took
(parse, render, TLS encryption, queueing the answer: uv_hrtime around it,
inside kyufud), so scrape k reads scrape k-1's cost; kyufu_metrics_scrape_cpu_seconds is
the same span in the loop thread's CPU time (what the scrape cost, without
the time other processes held the CPU).  Printed per node: body bytes, and
the median, p90, p99 and max of both.

usage: chaos/metrics_cost.py KYUFUD [SCRAPES]
"""
import os
import socket
import ssl
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import cluster as C  # noqa: E402
import grpc  # noqa: E402  (after cluster: it skips without grpcio)
import workload as W  # noqa: E402
from ports import free_ports  # noqa: E402
from prom_text import parse  # noqa: E402


def fetch(port, ctx=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body


def gauge(fam, name):
    return fam[name]["samples"][name][0][1]


def stats(xs):
    xs = sorted(xs[1:])  # the first reports a scrape before ours
    q = statistics.quantiles(xs, n=100)
    return "median %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us" % (
        statistics.median(xs) * 1e6, q[89] * 1e6, q[98] * 1e6, xs[-1] * 1e6)


def measure(port, n, ctx=None):
    wall, cpu, sizes = [], [], []
    for _ in range(n):
        body = fetch(port, ctx)
        fam = parse(body.decode())
        sizes.append(len(body))
        wall.append(gauge(fam, "kyufu_metrics_scrape_loop_seconds"))
        cpu.append(gauge(fam, "kyufu_metrics_scrape_cpu_seconds"))
    return max(sizes), stats(cpu), stats(wall)


def main():
    kyufud = sys.argv[1]
    scrapes = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    mports = free_ports(3)
    extra = {i: "[node]\nmetrics_listen = 127.0.0.1:%d\n" % mports[i - 1]
             for i in (1, 2, 3)}
    extra[2] += "metrics_tls = true\n"
    c = C.Cluster(kyufud, extra_conf=extra)
    try:
        c.start_all()
        leader = c.wait_leader(15)
        led = W.Ledger(c)
        led.setup()
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        for i in range(50):
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-%d" % i))), "household")
        for node in (1, 2, 3):
            c.status(node)
            led_stub = c.ledger(node)
            led_stub.ListPrograms(S.ListRequest(), timeout=5)
            led_stub.ListHouseholds(S.ListRequest(), timeout=5)
            led_stub.ListStaff(S.ListRequest(), timeout=5)
            led_stub.ListAudit(S.ListRequest(), timeout=5)
            led_stub.GetProgram(S.GetProgramRequest(code="P2026"), timeout=5)
            # The error family's entry: a program that does not exist.
            try:
                led_stub.GetProgram(S.GetProgramRequest(code="nope"),
                                    timeout=5)
                raise AssertionError("GetProgram nope answered")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
        ctx = ssl.create_default_context(cafile=c.ca)
        for node, tls in ((1, None), (2, ctx)):
            size, cpu, wall = measure(mports[node - 1], scrapes, tls)
            print("node %d (%s, %s), %d scrapes: %d bytes\n"
                  "  loop thread CPU per scrape: %s\n"
                  "  loop wall time per scrape:  %s"
                  % (node, "TLS" if tls else "plain",
                     "leader" if node == leader else "follower", scrapes,
                     size, cpu, wall))
        c.stop_clean()
    finally:
        c.close()


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print("took %.1f s" % (time.monotonic() - t0))
