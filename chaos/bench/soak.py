#!/usr/bin/python3
"""A steady load on one kyufu cluster for a long time (issue 9's last two
targets, docs/benchmarks.md "Snapshots and memory under a steady load"):
does a snapshot being taken or sent raise the p99, and is each node's
resident memory flat?

Starts three kyufud from `kyufuctl cluster init` (as side_by_side.py does:
TLS, election 1,000 ms, default snapshot threshold 8,192 / trailing 2,048
entries), then one kyufu-bench-load (RegisterHousehold + SubmitApplication
+ ApproveApplication chains) at --inflight K, paced at --households-per-s
(0: as fast as K allows), for --duration-s, writing one line per second
(--series: answered, OK, p50/p99/max).  Every second it reads each node's
metrics (role, kyufu_snapshots_in_flight, snapshots taken/restored,
snapshot copies sent) and /proc/PID/status (RssAnon, VmRSS).  At
--catch-up-at (fractions of the run) a follower is stopped for
--catch-up-stop-s and started again: by then the leader's log is
compacted past it, so it is sent a snapshot.

Each second of the series is then classed: "taking" when a node had a
snapshot in flight during it, "sending" while a copy was out to the
restarted follower (from copies_sent moving until its restored count
moves), "follower down" while it was stopped, else "quiet".  The report
gives, per class, the p50 and p99 of every write answered in its seconds
(from the load's --trace), the median and p90 of the per-second p99 and
the worst second, and the ratio of each snapshot class's p99 to the quiet
seconds' (the target: at most 2); and, per node, RssAnon over the run: the
median of the first and last tenth, the peak, and the slope of the
per-minute floor (the lowest sample of each minute: memory between
snapshots) in MB per hour.

usage: chaos/bench/soak.py --build BUILD [--duration-s 3600] [--inflight 16]
         [--households-per-s 300] [--catch-up-at 0.5] [--catch-up-stop-s 30]
         [--out DIR] [--keep]

Writes series.txt, samples.json, result.json and report.md into a
temporary folder (/tmp/kyufu-soak-*) and --out DIR.  A benchmark: reads
the wall clock, takes the run's length; never in a test suite.  Exit 0
when every write was answered OK, 1 otherwise.
"""
import argparse
import bisect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import install_drill  # noqa: E402  (proc_status)
import procs  # noqa: E402
import side_by_side as sbs  # noqa: E402  (start_kyufu, http_get)


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


def metrics(p):
    """The node's metric samples as {name: value} (unlabelled ones and the
    role), or None when it does not answer."""
    try:
        text = sbs.http_get(p.metrics_url, 1)
    except Exception:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, _, v = line.rpartition(" ")
        try:
            out[name] = float(v)
        except ValueError:
            pass
    return out


def sample(s):
    """One second's look at each node."""
    now = time.time()
    nodes = []
    for p in s.procs:
        m = metrics(p) if p.alive() else None
        st = install_drill.proc_status(p.p.pid) if p.alive() else None
        nodes.append({
            "up": p.alive(),
            "leader": bool(m and m.get('kyufu_raft_role{role="leader"}') == 1),
            "in_flight": m.get("kyufu_snapshots_in_flight", 0) if m else 0,
            "taken": m.get("kyufu_snapshots_taken_total") if m else None,
            "restored": m.get("kyufu_snapshots_restored_total") if m else None,
            "sent": m.get("kyufu_snapshot_copies_sent_total") if m else None,
            "rss_anon_kib": st.get("RssAnon") if st else None,
            "vm_rss_kib": st.get("VmRSS") if st else None,
        })
    return {"t": now, "nodes": nodes}


def read_series(path):
    out = []
    with open(path) as f:
        for line in f:
            v = line.split()
            if len(v) != 8:
                continue
            out.append({"t": int(v[0]) / 1000.0, "answered": int(v[2]),
                        "ok": int(v[3]), "errors": int(v[4]),
                        "p50": float(v[5]), "p99": float(v[6]),
                        "max": float(v[7])})
    return out


def classify(series, samples, downs):
    """Each series second's class (see the module's comment)."""
    # Intervals (start, end) of each kind, from the 1 s samples: a sample
    # at t covers (t - 1, t].
    taking, sending = [], []
    prev = None
    sending_since = None
    for smp in samples:
        t = smp["t"]
        if any(n["in_flight"] for n in smp["nodes"]) or (
                prev and any(a["taken"] is not None and b["taken"] is not None
                             and b["taken"] > a["taken"]
                             for a, b in zip(prev["nodes"], smp["nodes"]))):
            taking.append((t - 1.0, t))
        if prev:
            sent = any(a["sent"] is not None and b["sent"] is not None
                       and b["sent"] > a["sent"]
                       for a, b in zip(prev["nodes"], smp["nodes"]))
            restored = any(a["restored"] is not None and b["restored"] is not None
                           and b["restored"] > a["restored"]
                           for a, b in zip(prev["nodes"], smp["nodes"]))
            if sent and sending_since is None:
                sending_since = t - 1.0
            if sending_since is not None and restored:
                sending.append((sending_since, t))
                sending_since = None
        prev = smp
    if sending_since is not None:
        sending.append((sending_since, samples[-1]["t"]))

    def overlaps(t, ivs):
        return any(a < t and t - 1.0 < b for a, b in ivs)

    for sec in series:
        t = sec["t"]
        if overlaps(t, sending):
            sec["class"] = "sending"
        elif overlaps(t, downs):
            sec["class"] = "follower down"
        elif overlaps(t, taking):
            sec["class"] = "taking"
        else:
            sec["class"] = "quiet"
    return taking, sending


def pooled(series, trace_path):
    """{class: [latency ms of each write answered in its seconds]}: a
    write answered at t belongs to the series second (t_end - 1, t_end]
    holding t."""
    ends = [x["t"] for x in series]
    out = {}
    with open(trace_path) as f:
        for line in f:
            v = line.split()
            if len(v) != 3:
                continue
            t = int(v[0]) / 1000.0
            i = bisect.bisect_left(ends, t)
            if i < len(ends) and ends[i] - 1.0 < t:
                out.setdefault(series[i]["class"], []).append(int(v[1]) / 1000.0)
    return out


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[max(0, min(len(v) - 1, (len(v) * p + 99) // 100 - 1))]


def slope_per_hour(points):
    """Least-squares slope of (t s, y) in y per hour, or None."""
    if len(points) < 3:
        return None
    mt = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return sum((t - mt) * (y - my) for t, y in points) / den * 3600.0


def memory(samples, t0):
    out = []
    for i in range(3):
        pts = [(s["t"] - t0, s["nodes"][i]["rss_anon_kib"] / 1024.0)
               for s in samples if s["nodes"][i]["rss_anon_kib"] is not None]
        if not pts:
            out.append(None)
            continue
        span = pts[-1][0] - pts[0][0]
        first = [y for t, y in pts if t - pts[0][0] <= span / 10]
        last = [y for t, y in pts if pts[-1][0] - t <= span / 10]
        floors = {}
        for t, y in pts:
            m = int(t // 60)
            floors[m] = min(floors.get(m, y), y)
        fl = sorted((m * 60.0, y) for m, y in floors.items())
        out.append({"first_tenth_median_mb": statistics.median(first),
                    "last_tenth_median_mb": statistics.median(last),
                    "peak_mb": max(y for _, y in pts),
                    "floor_first_mb": fl[0][1], "floor_last_mb": fl[-1][1],
                    "floor_slope_mb_per_h": slope_per_hour(fl),
                    "samples": len(pts)})
    return out


def fmt(x):
    return "-" if x is None else "%.2f" % x


def report(a, res):
    L = ["# kyufu soak: snapshots and memory under a steady load", "",
         "%s; K = %d, %s households/s (3 writes each), %d s; commit %s" % (
             sbs.machine(), a.inflight, a.households_per_s or "unpaced",
             a.duration_s, res["commit"]), "",
         "writes answered %d, OK %d, client errors %d; mean %.0f writes/s" % (
             res["answered"], res["ok"], res["errors"], res["writes_per_s"]), "",
         "| seconds | count | writes | p50 ms | p99 ms | per-second p99: median | p90 | worst | worst max ms |",
         "|---|---|---|---|---|---|---|---|---|"]
    for c, v in res["classes"].items():
        L.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            c, v["count"], v["writes"], fmt(v["p50"]), fmt(v["p99"]),
            fmt(v["p99_median"]), fmt(v["p99_p90"]), fmt(v["p99_worst"]),
            fmt(v["max_worst"])))
    L += ["", "p99 of the writes answered while a snapshot was taken ÷ that of "
          "the quiet seconds: %s; while one was sent: %s (target ≤ 2)" % (
              res["ratio_taking"], res["ratio_sending"]),
          "", "snapshots taken (leader at the end): %s; copies sent: %s; "
          "intervals taking %d, sending %d" % (
              res["snapshots_taken"], res["copies_sent"], res["n_taking"],
              res["n_sending"]), "",
          "| node | RssAnon first tenth MB | last tenth MB | peak MB | floor first min MB | floor last min MB | floor slope MB/h |",
          "|---|---|---|---|---|---|---|"]
    for i, m in enumerate(res["memory"]):
        if m is None:
            continue
        L.append("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %s |" % (
            i + 1, m["first_tenth_median_mb"], m["last_tenth_median_mb"],
            m["peak_mb"], m["floor_first_mb"], m["floor_last_mb"],
            "%.1f" % m["floor_slope_mb_per_h"]
            if m["floor_slope_mb_per_h"] is not None else "-"))
    L += ["", "store (data.mdb) per node at the end: %s MB" % ", ".join(
        "%.0f" % b for b in res["store_mb"])]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--duration-s", type=int, default=3600)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--households-per-s", type=int, default=300)
    ap.add_argument("--catch-up-at", default="0.5",
                    help="fractions of the run, comma separated ('' for none)")
    ap.add_argument("--catch-up-stop-s", type=int, default=30)
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not 10 <= a.duration_s <= 86400 or not 1 <= a.inflight <= 1024 or \
            not 0 <= a.households_per_s <= 100000 or a.catch_up_stop_s < 1:
        ap.error("--duration-s 10..86400, --inflight 1..1024, "
                 "--households-per-s 0..100000, --catch-up-stop-s >= 1")
    try:
        at = [float(x) for x in a.catch_up_at.split(",") if x.strip()]
    except ValueError:
        ap.error("--catch-up-at: fractions, e.g. 0.3,0.7")
    if any(not 0 < x < 1 for x in at):
        ap.error("--catch-up-at: each in (0, 1)")
    for b in ("node/kyufud", "client/kyufuctl", "chaos/bench/kyufu-bench-load"):
        if not os.access(os.path.join(a.build, b), os.X_OK):
            ap.error("%s/%s: not built" % (a.build, b))
    d = tempfile.mkdtemp(prefix="kyufu-soak-")
    log("folder " + d)
    s = sbs.start_kyufu(a, d)
    load = None
    ok = False
    try:
        series_path = os.path.join(d, "series.txt")
        cmd = [os.path.join(a.build, "chaos", "bench", "kyufu-bench-load"),
               "--config", s.conf,
               "--clerk-token-file", os.path.join(s.tokens, "bench-clerk"),
               "--approver-token-file", os.path.join(s.tokens, "bench-approver"),
               "--operator-token-file", os.path.join(s.tokens, "bench-operator"),
               "--households", "100000000", "--inflight", str(a.inflight),
               "--approve", "--duration-s", str(a.duration_s),
               "--series", series_path,
               "--trace", os.path.join(d, "trace.txt")]
        if a.households_per_s:
            cmd += ["--households-per-s", str(a.households_per_s)]
        out = open(os.path.join(d, "load.json"), "w")
        err = open(os.path.join(d, "load.err"), "w")
        t0 = time.time()
        load = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        samples, downs = [], []
        plan = sorted(t0 + x * a.duration_s for x in at)
        down = None  # (index, since)
        next_t = t0 + 1.0
        while load.poll() is None:
            time.sleep(max(0.0, next_t - time.time()))
            next_t += 1.0
            samples.append(sample(s))
            now = time.time()
            if down is None and plan and now >= plan[0]:
                plan.pop(0)
                lead = s.leader(30)
                i = (lead + 1) % 3
                log("stopping follower %d for %d s" % (i + 1, a.catch_up_stop_s))
                procs.stop(s.procs[i].p, 30)
                down = (i, time.time())
            elif down is not None and now - down[1] >= a.catch_up_stop_s:
                s.procs[down[0]].start()
                downs.append((down[1], time.time()))
                log("follower %d started again" % (down[0] + 1))
                down = None
            if len(samples) % 300 == 0:
                log("%d s" % (now - t0))
        if down is not None:
            s.procs[down[0]].start()
            downs.append((down[1], time.time()))
        rc = load.wait()
        series = read_series(series_path)
        taking, sending = classify(series, samples, downs)
        classes = {}
        lat = pooled(series, os.path.join(d, "trace.txt"))
        for c in ("quiet", "taking", "sending", "follower down"):
            v = [x for x in series if x["class"] == c and x["answered"] > 0]
            classes[c] = {"count": len(v), "writes": len(lat.get(c, [])),
                          "p50": pct(lat.get(c), 50), "p99": pct(lat.get(c), 99),
                          "p99_median": statistics.median([x["p99"] for x in v]) if v else None,
                          "p99_p90": pct([x["p99"] for x in v], 90),
                          "p99_worst": max((x["p99"] for x in v), default=None),
                          "max_worst": max((x["max"] for x in v), default=None),
                          "p50_median": statistics.median([x["p50"] for x in v]) if v else None}
        q = classes["quiet"]["p99"]

        def ratio(c):
            m = classes[c]["p99"]
            return round(m / q, 2) if m is not None and q else None
        last = samples[-1]["nodes"]
        kd = os.path.join(d, "kyufu")
        store_mb = []
        for i in range(1, 4):
            mdb = None
            for root, _, files in os.walk(os.path.join(kd, "node%d" % i)):
                if "data.mdb" in files:
                    mdb = os.path.join(root, "data.mdb")
            store_mb.append(os.stat(mdb).st_blocks * 512 / 1e6 if mdb else 0)
        res = {"commit": install_drill.source_commit()[0],
               "args": vars(a), "load_exit": rc,
               "answered": sum(x["answered"] for x in series),
               "ok": sum(x["ok"] for x in series),
               "errors": sum(x["errors"] for x in series),
               "writes_per_s": sum(x["answered"] for x in series) / max(1, len(series)),
               "classes": classes, "ratio_taking": ratio("taking"),
               "ratio_sending": ratio("sending"),
               "n_taking": len(taking), "n_sending": len(sending),
               "snapshots_taken": [n["taken"] for n in last],
               "copies_sent": [n["sent"] for n in last],
               "downs": downs, "memory": memory(samples, t0),
               "store_mb": store_mb}
        with open(os.path.join(d, "samples.json"), "w") as f:
            json.dump(samples, f)
        with open(os.path.join(d, "result.json"), "w") as f:
            json.dump(res, f, indent=1)
        md = report(a, res)
        with open(os.path.join(d, "report.md"), "w") as f:
            f.write(md)
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            for n in ("series.txt", "samples.json", "result.json", "report.md",
                      "load.json", "load.err", "trace.txt"):
                shutil.copy(os.path.join(d, n), a.out)
        print(md)
        ok = rc == 0 and res["errors"] == 0 and res["ok"] == res["answered"]
    finally:
        if load is not None and load.poll() is None:
            procs.stop(load, 30)
        s.stop()
        if ok and not a.keep:
            shutil.rmtree(d, ignore_errors=True)
        else:
            log("kept " + d)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
