#!/usr/bin/python3
"""The failover drill sweep of docs/sla.md: N crash drills and N planned
drills (kyufuctl drill failover) on one local three-node cluster, then the
availability ledger's report of the whole period, which must list the same
RTOs.  Not part of any test suite (about 5 minutes for 50 + 50).

One cluster (tests/integration/cluster.py: own CA, free loopback ports,
temp folder) with [sla] allow_drills = true and the default heartbeat.  A
thread restarts any node that exits, as systemd's Restart=on-failure does.
Prints each mode's kyufuctl summary, then the RTO distribution as the
ledger recorded it (p50/p90/max, nearest rank) and the same from the
GetAvailability report, and checks that lost is empty and that both agree.

usage: chaos/drill_sweep.py KYUFUD KYUFUCTL [ROUNDS] [ELECTION_MS]
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import cluster as C  # noqa: E402
import workload as W  # noqa: E402



def pct(v, p):
    v = sorted(v)
    rank = max(1, (p * len(v) + 99) // 100)
    return v[rank - 1]


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    election_ms = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    import tempfile
    slo = os.path.join(tempfile.mkdtemp(prefix="kyufu-sweep-", dir="/tmp"),
                       "slo.conf")
    with open(slo, "w") as f:
        f.write("[availability]\ntarget_percent = 99.9\n"
                "[rto]\ntarget_ms = 5000\n")
    c = C.Cluster(kyufud, election_ms=election_ms,
                  heartbeat_ms=max(10, election_ms // 10),
                  extra_conf={i: "[sla]\nallow_drills = true\n"
                              for i in (1, 2, 3)})
    stop = threading.Event()
    try:
        S = c.s["service_pb2"]
        c.start_all()
        c.wait_leader(30)
        led = W.Ledger(c, "sweep")
        led.setup()
        c.account("op1", [c.s["ledger_pb2"].ROLE_OPERATOR], "Operator")
        env = c.ctl_env("op1")  # kyufuctl signed in as op1 (KYUFU_TOKEN)
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\nactor = op1\ndeadline_ms = 30000\n"
                     "slo_file = %s\n"
                     % (",".join(c.api[i] for i in (1, 2, 3)), c.ca,
                        c.client_cert, c.client_key, slo))

        def restart_dead():
            while not stop.is_set():
                for i in (1, 2, 3):
                    p = c.procs.get(i)
                    if p is not None and p.poll() is not None:
                        c.start(i)
                time.sleep(0.1)

        threading.Thread(target=restart_dead, daemon=True).start()
        t0 = int(time.time() * 1000) - 1000
        docs = {}
        for mode in ("crash", "planned"):
            p = subprocess.run([kyufuctl, "--config", conf, "--json", "drill",
                                "failover", "--mode", mode, "--rounds",
                                str(rounds)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
            assert p.returncode == 0, (mode, p.returncode, p.stdout, p.stderr)
            docs[mode] = json.loads(p.stdout)
            d = docs[mode]
            assert d["lost"] == [], d["lost"]
            print("%s: %d rounds, rto p50 %d ms, p90 %d ms, max %d ms "
                  "(ledger); probe p50 %d ms, p90 %d ms, max %d ms; %d "
                  "writes acknowledged, 0 lost"
                  % (mode, len(d["rounds"]), d["rto_ms"]["p50"],
                     d["rto_ms"]["p90"], d["rto_ms"]["max"],
                     d["probe_rto_ms"]["p50"], d["probe_rto_ms"]["p90"],
                     d["probe_rto_ms"]["max"], d["acknowledged"]),
                  flush=True)
        stop.set()
        leader = c.wait_leader(30)
        rep = c.cluster(leader).GetAvailability(S.GetAvailabilityRequest(
            from_ms=t0, to_ms=int(time.time() * 1000) + 1000), timeout=10)
        by_id = {f.drill_id: f for f in rep.failovers if f.drill_id}
        for mode, cause in (("crash", S.CAUSE_DRILL_CRASH),
                            ("planned", S.CAUSE_DRILL_PLANNED)):
            rtos = []
            for rd in docs[mode]["rounds"]:
                f = by_id[rd["drill_id"]]
                assert f.cause == cause and f.rto_ms == rd["rto_ms"], (f, rd)
                rtos.append(f.rto_ms)
            print("GetAvailability, %s drills: %d failovers, rto p50 %d ms, "
                  "p90 %d ms, max %d ms" % (mode, len(rtos), pct(rtos, 50),
                                            pct(rtos, 90), max(rtos)))
        print("GetAvailability: %d failovers in all, %d ms unavailable of "
              "%d ms observed, writes_lost %d"
              % (len(rep.failovers), rep.unavailable_ms, rep.observed_ms,
                 rep.writes_lost))
        assert rep.writes_lost == 0
        # The SLA report of the month (what an auditor reads) must show the
        # same RTOs: per cause from its failovers, and its own distribution.
        p = subprocess.run([kyufuctl, "--config", conf, "--json", "sla",
                            "report"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        doc = json.loads(p.stdout)
        for mode, cause in (("crash", "drill_crash"),
                            ("planned", "drill_planned")):
            got = {f["drill_id"]: f["rto_ms"] for f in doc["failovers"]
                   if f["cause"] == cause}
            want = {rd["drill_id"]: rd["rto_ms"]
                    for rd in docs[mode]["rounds"]}
            assert all(got.get(k) == v for k, v in want.items()), (got, want)
            rtos = [want[k] for k in want]
            print("sla report, %s drills: %d failovers, rto p50 %d ms, "
                  "p90 %d ms, max %d ms" % (mode, len(rtos), pct(rtos, 50),
                                            pct(rtos, 90), max(rtos)))
        r = doc["rto"]
        print("sla report %s: rto count %d, p50 %d ms, p90 %d ms, max %d ms, "
              "target %d ms, over target %d; availability %s%%, "
              "unavailable %d ms of %d ms observed, writes_lost %d"
              % (doc["month"], r["count"], r["p50_ms"], r["p90_ms"],
                 r["max_ms"], r["target_ms"], r["over_target"],
                 doc["availability"], doc["unavailable_ms"],
                 doc["observed_ms"], doc["writes_lost"]))
    except Exception:
        print(c.logs()[-20000:])
        raise
    finally:
        stop.set()
        c.close()


if __name__ == "__main__":
    main()
