#!/usr/bin/python3
"""Measure failover: kill -9 of the leader -> first acknowledged write.

One three-node cluster (tests/integration/cluster.py: own CA, free loopback
ports, temp folder).  Each trial: wait until all three nodes agree on a
leader and have converged; write a little (so the write path is warm);
SIGKILL the leader; then write with the client's retry rule (same
idempotency key, next node on UNAVAILABLE) until one write is acknowledged.
The time from the kill to that acknowledgement is the trial's RTO as a
client sees it.  The killed node is restarted and catches up before the
next trial.  At the end every acknowledged write is checked to be applied
exactly once (audit chain), and the numbers are printed.

usage: chaos/failover_measure.py KYUFUD [TRIALS] [ELECTION_MS]
"""
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import cluster as C  # noqa: E402
import workload as W  # noqa: E402


def main():
    kyufud = sys.argv[1]
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    election_ms = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    c = C.Cluster(kyufud, election_ms=election_ms,
                  heartbeat_ms=max(10, election_ms // 10))
    L, S = None, None
    times = []
    try:
        c.start_all()
        c.wait_leader(30)
        L, S = c.s["ledger_pb2"], c.s["service_pb2"]
        led = W.Ledger(c, "chaos")
        led.setup(budget=10 ** 6)
        w = C.Writer(c, "approver1", "chaos-failover")
        acked = []

        def write():
            code, resp = w.call("AdjustBudget", L.AdjustBudget(
                code="P2026", delta=1, reason="chaos"), deadline_s=60)
            assert code.name == "OK", (code, resp)
            acked.append(w.seq)

        for t in range(trials):
            leader = c.wait_leader(30)
            c.wait_converged(60)
            for _ in range(5):
                write()
            c.kill(leader, signal.SIGKILL)
            t0 = time.monotonic()
            c.wait_exit(leader, 5)
            write()
            took = time.monotonic() - t0
            times.append(took)
            new = c.wait_leader(30, exclude=(leader,))
            print("trial %2d: killed leader %d, node %d leads, first ack "
                  "after %4.0f ms" % (t + 1, leader, new, took * 1000),
                  flush=True)
            c.start(leader)

        c.wait_leader(30)
        c.wait_converged(60)
        counts, token = {}, ""
        while True:
            page = c.ledger(1).ListAudit(S.ListRequest(
                page_size=1000, page_token=token), timeout=10)
            for r in page.records:
                if r.client_id == "chaos-failover":
                    counts[r.client_seq] = counts.get(r.client_seq, 0) + 1
            token = page.next_page_token
            if not token:
                break
        lost = [s for s in acked if counts.get(s) != 1]
        assert not lost, "acknowledged writes not applied exactly once: %s" % (
            lost,)
        ms = sorted(x * 1000 for x in times)
        print("election_timeout_ms=%d trials=%d median=%.0f ms max=%.0f ms "
              "min=%.0f ms p90=%.0f ms; %d acknowledged writes, each applied "
              "exactly once" % (election_ms, len(ms), statistics.median(ms),
                                ms[-1], ms[0], ms[int(0.9 * (len(ms) - 1))],
                                len(acked)))
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
