#!/usr/bin/python3
"""Failover in two figures: the election, and what a libkyufu client sees.

For kill -9 of the leader of a three-node cluster this records, per trial:

  election  time from the kill to the first moment a surviving node reports
            itself leader (Cluster.Status of both survivors polled every
            10 ms by a separate Python gRPC client, role == "leader" in a
            term above the killed leader's);
  gap       time from the kill to the first acknowledged write through
            libkyufu: a long-lived kyufu-leader-probe process (one client
            object, already sending to the leader before the kill) is told
            `write` right after the kill and its answer line is timestamped;
  excess    gap - election: what the client adds on top of the election.

Two probes can run in the same trials, e.g. the libkyufu of an older commit
("before") and the current one ("after"): both are told to write at the
same instant after the same kill (the order of the two writes alternates
per trial), so each trial compares them on the same election.  Each probe
has its own client id and writes AdjustBudget +1 with its own keys; at the
end the program's budget must equal the start plus the number of
acknowledged writes (each applied exactly once).

usage: chaos/failover_gap.py KYUFUD TRIALS ELECTION_MS NAME=PROBE [NAME=PROBE]
       [--json OUT.json]
Run with Debian's /usr/bin/python3 (python3-grpcio).
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import cluster as C  # noqa: E402
import grpc  # noqa: E402
import workload as W  # noqa: E402

POLL_S = 0.010


class Probe:
    def __init__(self, name, exe, conf, env):
        self.name = name
        self.p = subprocess.Popen([exe, conf], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)
        self.acked = 0

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def answer(self):
        line = self.p.stdout.readline()
        t = time.monotonic()
        assert line, "probe %s exited (%s)" % (self.name, self.p.poll())
        r = json.loads(line)
        if r["rv"] == 0 and r["status"] == 0:
            self.acked += 1
        return t, r

    def do(self, cmd):
        self.send(cmd)
        return self.answer()[1]

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(timeout=30)


def poll_election(c, survivors, old_term, t0, out, stop):
    """Poll Status of the survivors every POLL_S until one says leader in a
    term above old_term; out['t'] = seconds after t0, out['node']."""
    S = c.s["service_pb2"]
    stubs = {}
    for i in survivors:
        ch = c.secure_channel(i)
        stubs[i] = (ch, c.s["service_pb2_grpc"].ClusterStub(ch))
    try:
        while not stop.is_set():
            tick = time.monotonic()
            for i, (_, stub) in stubs.items():
                try:
                    st = stub.Status(S.StatusRequest(), timeout=0.5)
                except grpc.RpcError:
                    continue
                if st.role == "leader" and st.term > old_term:
                    out["t"] = time.monotonic() - t0
                    out["node"] = i
                    out["term"] = st.term
                    return
            left = POLL_S - (time.monotonic() - tick)
            if left > 0:
                time.sleep(left)
    finally:
        for ch, _ in stubs.values():
            ch.close()


def stats(xs):
    xs = sorted(xs)
    n = len(xs)
    med = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    p90 = xs[max(0, -(-9 * n // 10) - 1)]  # nearest rank
    return med, p90, xs[-1]


def main():
    args = [a for a in sys.argv[1:]]
    out_json = None
    if "--json" in args:
        k = args.index("--json")
        out_json = args[k + 1]
        del args[k:k + 2]
    kyufud, trials, election_ms = args[0], int(args[1]), int(args[2])
    probes_spec = [a.split("=", 1) for a in args[3:]]
    assert probes_spec, __doc__
    c = C.Cluster(kyufud, election_ms=election_ms,
                  heartbeat_ms=max(10, election_ms // 10))
    probes = []
    rows = []
    try:
        c.start_all()
        c.wait_leader(30)
        W.Ledger(c, "gap").setup(budget=10 ** 6)
        S = c.s["service_pb2"]
        for name, exe in probes_spec:
            conf = os.path.join(c.dir, "client-%s.conf" % name)
            with open(conf, "w") as fh:
                fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                         "key = %s\nactor = approver1\ndeadline_ms = 30000\n"
                         % (",".join(c.api[i] for i in (1, 2, 3)), c.ca,
                            c.client_cert, c.client_key))
            probes.append(Probe(name, exe, conf, c.ctl_env("approver1")))
        budget0 = None
        for t in range(trials):
            leader = c.wait_leader(30)
            c.wait_converged(60)
            for p in probes:  # warm: each client sends to the leader
                for _ in range(2):
                    r = p.do("write")
                    assert r["rv"] == 0 and r["status"] == 0, (p.name, r)
                assert r["attempts"] == 1 and r["endpoint"] == leader - 1, \
                    (p.name, r, leader)
            if budget0 is None:
                budget0 = c.ledger(leader).GetProgram(
                    S.GetProgramRequest(code="P2026"), timeout=10).budget - \
                    sum(p.acked for p in probes)
            old_term = c.status(leader, timeout=2.0).term
            survivors = [i for i in (1, 2, 3) if i != leader]
            found, stop = {}, threading.Event()
            order = probes if t % 2 == 0 else probes[::-1]
            c.kill(leader, signal.SIGKILL)
            t0 = time.monotonic()
            for p in order:
                p.send("write")
            poller = threading.Thread(target=poll_election,
                                      args=(c, survivors, old_term, t0,
                                            found, stop))
            poller.start()
            answers = {}

            def wait_answer(p):
                answers[p.name] = p.answer()
            readers = [threading.Thread(target=wait_answer, args=(p,))
                       for p in probes]
            for th in readers:
                th.start()
            for th in readers:
                th.join(60)
            poller.join(30)
            stop.set()
            c.wait_exit(leader, 5)
            assert "t" in found, "no leader seen by the poller"
            row = {"trial": t + 1, "killed": leader, "new": found["node"],
                   "election_ms": found["t"] * 1000}
            line = "trial %2d: killed %d, node %d leads after %5.0f ms" % (
                t + 1, leader, found["node"], found["t"] * 1000)
            for p in probes:
                ta, r = answers[p.name]
                assert r["rv"] == 0 and r["status"] == 0, (p.name, r)
                gap = (ta - t0) * 1000
                row[p.name] = {"gap_ms": gap, "attempts": r["attempts"],
                               "excess_ms": gap - found["t"] * 1000}
                line += "; %s ack %5.0f ms (+%4.0f, %d attempts)" % (
                    p.name, gap, gap - found["t"] * 1000, r["attempts"])
            print(line, flush=True)
            rows.append(row)
            c.start(leader)

        leader = c.wait_leader(30)
        c.wait_converged(60)
        budget = c.ledger(leader).GetProgram(
            S.GetProgramRequest(code="P2026"), timeout=10).budget
        acked = sum(p.acked for p in probes)
        assert budget == budget0 + acked, (budget0, acked, budget)
        for p in probes:
            p.close()

        el = stats([r["election_ms"] for r in rows])
        print("\nelection_timeout_ms=%d trials=%d; %d acknowledged writes, "
              "budget = start + acked (each applied exactly once)"
              % (election_ms, len(rows), acked))
        print("| figure | median | p90 | max |\n|---|---|---|---|")
        print("| election | %.0f ms | %.0f ms | %.0f ms |" % el)
        for name, _ in probes_spec:
            g = stats([r[name]["gap_ms"] for r in rows])
            x = stats([r[name]["excess_ms"] for r in rows])
            print("| %s: kill -> first ack | %.0f ms | %.0f ms | %.0f ms |"
                  % ((name,) + g))
            print("| %s: ack - election | %.0f ms | %.0f ms | %.0f ms |"
                  % ((name,) + x))
        if out_json:
            with open(out_json, "w") as fh:
                json.dump({"election_timeout_ms": election_ms,
                           "rows": rows}, fh, indent=1)
    except BaseException:
        print(c.logs())
        raise
    finally:
        for p in probes:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        c.close()


if __name__ == "__main__":
    main()
