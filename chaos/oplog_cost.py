#!/usr/bin/python3
"""The cost of read records (docs/identity.md "What a read record costs"):
a three-node cluster, one clerk signed in, THREADS client threads calling
on the leader for SECONDS per phase, alternating two reads that take the
same path (Raft barrier, one store get, one packed answer):

  - GetProgram:   no personal data, no access record (the control);
  - GetHousehold: personal data: a RecordAccess proposed and committed
                  (group commit) before the answer leaves the node.

For each: calls per second and the p50/p99 latency seen by the client.
Phases alternate (program, household, program, household) so that drift
of the machine's load falls on both alike.  Run with THREADS = 1 (one
clerk: the added commit latency) and e.g. 16 (a busy office: group commit).

usage: chaos/oplog_cost.py KYUFUD [SECONDS] [THREADS]"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import cluster as C  # noqa: E402
import workload as W  # noqa: E402


def phase(c, leader, method, req, metadata, seconds, threads):
    G = c.s["service_pb2_grpc"]
    lat, lock = [], threading.Lock()
    stop = time.monotonic() + seconds
    errors = []

    def worker(k):
        ch = c.plain_channel(leader)  # one connection, concurrent streams
        stub = getattr(G.LedgerStub(ch), method)
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                stub(req, timeout=10, metadata=metadata)
            except Exception as e:  # noqa: BLE001 - counted, printed
                errors.append(e)
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    idx0 = c.status(leader).commit_index
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    entries = c.status(leader).commit_index - idx0
    lat.sort()
    if errors:
        print("  %d errors, first: %s" % (len(errors), errors[0]))
    return (len(lat) / wall, lat[len(lat) // 2] * 1e3,
            lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, len(lat),
            entries)


def main():
    kyufud = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    c = C.Cluster(kyufud)
    try:
        c.start_all()
        leader = c.wait_leader(15)
        led = W.Ledger(c)
        led.setup()
        W.must(led.clerk.call("RegisterHousehold", led.L.RegisterHousehold(
            household=led.household("H-001"))), "household")
        S = c.s["service_pb2"]
        md = c.bearer("clerk1")
        reads = {
            "GetProgram": S.GetProgramRequest(code="P2026"),
            "GetHousehold": S.GetHouseholdRequest(household_no="H-001"),
        }
        # Warm up (and wait for the cluster version that knows
        # RecordAccess).
        for name, req in reads.items():
            end = time.monotonic() + 15
            while True:
                try:
                    getattr(c.s["service_pb2_grpc"].LedgerStub(
                        c.plain_channel(leader)), name)(req, timeout=10,
                                                        metadata=md)
                    break
                except Exception:  # noqa: BLE001
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.2)
        results = {name: [] for name in reads}
        for rnd in range(2):
            for name, req in reads.items():
                r = phase(c, leader, name, req, md, seconds, threads)
                results[name].append(r)
                print("round %d %-12s %7.0f calls/s  p50 %6.2f ms  "
                      "p99 %6.2f ms  (%d calls, %d Raft entries)"
                      % ((rnd + 1, name) + r), flush=True)
        print("threads=%d seconds/phase=%g" % (threads, seconds))
        for name in reads:
            rs = results[name]
            print("%-12s mean of rounds: %7.0f calls/s  p50 %6.2f ms  "
                  "p99 %6.2f ms" % (name, sum(r[0] for r in rs) / len(rs),
                                    sum(r[1] for r in rs) / len(rs),
                                    sum(r[2] for r in rs) / len(rs)))
    finally:
        c.close()


if __name__ == "__main__":
    main()
