"""The availability ledger and failover drills (docs/sla.md), on a real
three-node cluster:

  - SIGKILL of the leader: every node's Cluster.GetAvailability lists that
    failover with cause CRASH, the old and new leader, and an rto_ms
    between 1 ms and 10 s; the window it opened is there too;
  - SIGSTOP of the leader (alive, silent): cause PARTITION;
  - Cluster.TransferLeadership: the failover's cause is PLANNED;
  - kyufuctl drill failover --mode planned|crash --rounds 2 --json: two
    rounds each with rto_ms, lost = [], and the ledger lists each round
    with cause DRILL_PLANNED / DRILL_CRASH and its drill_id (the crashed
    leader is restarted by this test, as systemd would);
  - a node whose config lacks [sla] allow_drills refuses Drill with
    PERMISSION_DENIED and says how to allow it;
  - hostile GetAvailability ranges (from > to, empty, negative, longer
    than 400 days) and a bad drill id are INVALID_ARGUMENT.

usage: test_availability.py KYUFUD KYUFUCTL"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import grpc

import cluster as C
import workload as W
from ports import free_ports
from prom_text import parse

DAY_MS = 86400000
SLA = "[sla]\nallow_drills = true\nheartbeat_ms = 200\n"


def now_ms():
    return int(time.time() * 1000)


def report(c, node, from_ms, to_ms=None):
    S = c.s["service_pb2"]
    return c.cluster(node).GetAvailability(S.GetAvailabilityRequest(
        from_ms=from_ms, to_ms=to_ms or now_ms() + 60000), timeout=5)


def wait_failover(c, node, from_ms, pred, what, timeout=10):
    end = time.monotonic() + timeout
    rep = None
    while time.monotonic() < end:
        rep = report(c, node, from_ms)
        found = [f for f in rep.failovers if pred(f) and f.new_leader_id]
        if found:
            return found[-1], rep
        time.sleep(0.1)
    raise AssertionError("%s: no such failover on node %d: %s"
                         % (what, node, rep))


def planned_counted(port, timeout=10):
    """Wait until the node whose metrics are on port counts a planned
    failover."""
    end = time.monotonic() + timeout
    got = None
    while time.monotonic() < end:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=3) as r:
            fam = parse(r.read().decode())["kyufu_failovers_total"]
            for lab, v in fam["samples"].get("kyufu_failovers_total", []):
                if dict(lab).get("cause") == "planned":
                    got = v
        if got is not None and got >= 1:
            return
        time.sleep(0.1)
    raise AssertionError("kyufu_failovers_total{cause=planned} is %s on "
                         "port %d after a planned drill" % (got, port))


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    mports = free_ports(3)
    c = C.Cluster(kyufud, election_ms=1000, heartbeat_ms=100,
                  extra_conf={i: SLA + "[node]\nmetrics_listen = "
                              "127.0.0.1:%d\n" % mports[i - 1]
                              for i in (1, 2, 3)})
    restarter = None
    try:
        S = c.s["service_pb2"]
        c.start_all()
        leader = c.wait_leader(20)
        led = W.Ledger(c)
        led.setup()
        c.account("op1", [c.s["ledger_pb2"].ROLE_OPERATOR], "Operator")
        t0 = now_ms() - 1000
        time.sleep(0.5)  # a few heartbeats of the first leader

        # 1. SIGKILL of the leader.
        c.kill(leader, signal.SIGKILL)
        c.wait_exit(leader, 5)
        new = c.wait_leader(15, exclude=(leader,))
        other = [i for i in (1, 2, 3) if i not in (leader, new)][0]
        f, rep = wait_failover(
            c, other, t0, lambda f: f.old_leader_id == leader, "kill -9")
        assert f.cause == S.CAUSE_CRASH, f
        assert f.new_leader_id == new, f
        assert 1 <= f.rto_ms <= 10000, f
        assert f.rto_ms == f.first_commit_new_ms - f.last_commit_old_ms, f
        assert any(w.start_ms == f.last_commit_old_ms for w in rep.windows) \
            or f.rto_ms <= 2 * rep.heartbeat_interval_ms, rep
        assert rep.heartbeat_interval_ms == 200, rep
        assert rep.observed_ms > 0 and rep.days, rep
        print("kill -9 of leader %d: node %d leads, ledger rto %d ms (crash)"
              % (leader, new, f.rto_ms))
        c.start(leader)
        c.wait_converged(30)
        f2, _ = wait_failover(c, leader, t0,
                              lambda f: f.old_leader_id == leader, "restarted")
        assert f2 == f, (f2, f)  # replicated: the restarted node agrees

        # 1b. A leader that goes silent without dying (SIGSTOP): nothing
        # closes its connections, so the new leader says PARTITION.
        cur = c.wait_leader(10)
        t3 = now_ms()
        c.kill(cur, signal.SIGSTOP)
        try:
            new = c.wait_leader(15, exclude=(cur,), majority=True)
            f, _ = wait_failover(c, new, t3,
                                 lambda f: f.old_leader_id == cur, "SIGSTOP")
        finally:
            c.kill(cur, signal.SIGCONT)
        assert f.cause == S.CAUSE_PARTITION, f
        print("SIGSTOP of leader %d: node %d leads, ledger rto %d ms "
              "(partition)" % (cur, new, f.rto_ms))
        c.wait_converged(30)

        # 2. A planned transfer.
        cur = c.wait_leader(10)
        target = [i for i in (1, 2, 3) if i != cur][0]
        t1 = now_ms()
        r = c.cluster(cur).TransferLeadership(
            S.TransferLeadershipRequest(target_id=target), timeout=15)
        assert r.new_leader_id == target, r
        f, _ = wait_failover(c, target, t1,
                             lambda f: f.old_leader_id == cur, "transfer")
        assert f.cause == S.CAUSE_PLANNED, f
        print("transfer %d -> %d: ledger rto %d ms (planned)"
              % (cur, target, f.rto_ms))

        # 3. Drills through kyufuctl.
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\nactor = op1\ndeadline_ms = 30000\n"
                     % (",".join(c.api[i] for i in (1, 2, 3)), c.ca,
                        c.client_cert, c.client_key))

        def ctl(*args):
            p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=120,
                               env=c.ctl_env("op1"))
            return p.returncode, p.stdout, p.stderr

        stop = threading.Event()

        def restart_dead():
            # What systemd's Restart=on-failure does for a crash drill.
            while not stop.is_set():
                for i in (1, 2, 3):
                    p = c.procs.get(i)
                    if p is not None and p.poll() is not None:
                        c.start(i)
                time.sleep(0.1)

        restarter = threading.Thread(target=restart_dead, daemon=True)
        restarter.start()
        for mode, cause in (("planned", S.CAUSE_DRILL_PLANNED),
                            ("crash", S.CAUSE_DRILL_CRASH)):
            t2 = now_ms() - 1000
            rc, out, err = ctl("--json", "drill", "failover", "--mode", mode,
                               "--rounds", "2")
            assert rc == 0, (mode, rc, out, err)
            doc = json.loads(out)
            assert len(doc["rounds"]) == 2, doc
            assert doc["lost"] == [], doc
            for rd in doc["rounds"]:
                assert rd["lost"] == [] and rd["acknowledged"] > 0, rd
                assert rd["in_ledger"] and 0 < rd["rto_ms"] <= 10000, rd
            rep = report(c, c.wait_leader(15), t2)
            got = {f.drill_id: f for f in rep.failovers if f.drill_id}
            for rd in doc["rounds"]:
                f = got.get(rd["drill_id"])
                assert f is not None, (rd, rep)
                assert f.cause == cause, f
                assert f.rto_ms == rd["rto_ms"], (f, rd)
            assert rep.writes_lost == 0, rep
            if mode == "planned":
                # The node that handed over counts a planned failover in
                # its own kyufu_failovers_total (docs/metrics.md).
                for rd in doc["rounds"]:
                    planned_counted(mports[rd["old_leader"] - 1])
            print("drill %s: rto %s ms (ledger), probe %s ms, %d writes, "
                  "0 lost" % (mode, [r["rto_ms"] for r in doc["rounds"]],
                              [r["probe_rto_ms"] for r in doc["rounds"]],
                              doc["acknowledged"]))
        stop.set()
        restarter.join()
        c.wait_leader(15)
        c.wait_converged(30)

        # 4. Hostile inputs.
        for frm, to in ((10, 5), (5, 5), (-1, 5),
                        (0, 401 * DAY_MS), (0, 2 ** 63 - 1)):
            try:
                c.cluster(1).GetAvailability(S.GetAvailabilityRequest(
                    from_ms=frm, to_ms=to), timeout=5)
                raise AssertionError("range %d..%d accepted" % (frm, to))
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        for bad in (S.DrillRequest(drill_id="a b", mode=S.DRILL_PLANNED),
                    S.DrillRequest(drill_id="", mode=S.DRILL_CRASH),
                    S.DrillRequest(drill_id="x", mode=99),
                    S.DrillRequest(drill_id="x", mode=S.DRILL_RESULT,
                                   writes_acknowledged=1, writes_lost=2)):
            try:
                c.cluster(1).Drill(bad, timeout=5)
                raise AssertionError("drill accepted: %s" % bad)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad, e)

        # 5. A node without allow_drills refuses, whatever the request.
        fol = [i for i in (1, 2, 3) if i != c.wait_leader(10)][0]
        c.kill(fol, signal.SIGTERM)
        assert c.wait_exit(fol, 20) == 0
        with open(c.conf[fol]) as fh:
            text = fh.read().replace("allow_drills = true",
                                     "allow_drills = false")
        with open(c.conf[fol], "w") as fh:
            fh.write(text)
        c.start(fol)
        c.wait_converged(30)
        try:
            c.cluster(fol).Drill(S.DrillRequest(drill_id="no",
                                                mode=S.DRILL_CRASH), timeout=5)
            raise AssertionError("drill accepted without allow_drills")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
            assert "allow_drills" in e.details(), e.details()
        c.stop_clean()
        print("availability: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        if restarter is not None and restarter.is_alive():
            stop.set()
        c.close()


if __name__ == "__main__":
    main()
