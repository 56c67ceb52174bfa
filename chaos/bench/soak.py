#!/usr/bin/python3
"""A steady load on one kyufu cluster for a long time (issue 9's last two
targets, docs/soak.md):
does a snapshot being taken or sent raise the p99, and is each node's
resident memory flat?

Starts three kyufud from `kyufuctl cluster init` (as side_by_side.py does:
TLS, election 1,000 ms, default snapshot threshold 8,192 / trailing 2,048
entries), then one kyufu-bench-load (RegisterHousehold + SubmitApplication
+ ApproveApplication chains) at --inflight K, paced at --households-per-s
(0: as fast as K allows), for --duration-s, writing one line per second
(--series: answered, OK, p50/p99/max).  Every second it reads each node's
metrics (role, kyufu_snapshots_in_flight, snapshots taken/restored,
snapshot copies sent) and /proc/PID/status (RssAnon, VmRSS), and every
minute /proc/PID/smaps (anonymous mappings of 1 MiB or more).  At
--catch-up-at (fractions of the run) a follower is stopped for
--catch-up-stop-s and started again: by then the leader's log is
compacted past it, so it is sent a snapshot.

Each second of the series is then classed (chaos/bench/soak_analysis.py:
quiet, taking a snapshot, sending one to the restarted follower, follower
down) and the report gives, per class, the p50 and p99 of every write in
flight during it (from the load's --trace: [answer - latency, answer]
meets the class's intervals) beside the median, p90 and worst of the
per-second p99 of its seconds, and the ratio of each snapshot class's
p99 to the quiet seconds' (the target: at most 2); and, per node and per
process it ran (the restarted follower has several), RssAnon over the
run: the median of the first and last tenth, the peak, and the slope of
the per-minute floor (the lowest sample of each minute: memory between
snapshots) in MB per hour.  The load is paced (--households-per-s) and a
household that starts late because every call slot was busy is timed from
when it was due, so a stall counts against every write it held up.

usage: chaos/bench/soak.py --build BUILD [--duration-s 3600] [--inflight 16]
         [--households-per-s 100] [--catch-up-at 0.35,0.7] [--catch-up-stop-s 30]
         [--out DIR] [--keep]
       chaos/bench/soak.py --analyse DIR   (again, from a run's files)

Writes load.json, load.err, series.txt, trace.txt, samples.json,
result.json and report.md into a temporary folder (/tmp/kyufu-soak-*) and
--out DIR.  A benchmark: reads
the wall clock, takes the run's length; never in a test suite.  Exit 0
when every write was answered OK, 1 otherwise.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import install_drill  # noqa: E402  (proc_status, source_commit)
import procs  # noqa: E402
import side_by_side as sbs  # noqa: E402  (start_kyufu, http_get, machine)
import prom_text  # noqa: E402  (tests/integration: side_by_side puts it on the path)
import soak_analysis as an  # noqa: E402
import targets  # noqa: E402


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


def metrics(p):
    """The node's metric families (prom_text.parse), or None when it does
    not answer or answers something that is not the exposition format."""
    try:
        return prom_text.parse(sbs.http_get(p.metrics_url, 1))
    except Exception:
        return None


def value(fams, name, **labels):
    """The value of the sample of family `name` with exactly these labels,
    or None."""
    for lab, v in (fams or {}).get(name, {}).get("samples", {}).get(name, []):
        if lab == labels:
            return v
    return None


def hist(fams, name, over=0.1):
    """[count, sum, count above `over` seconds] of the unlabelled histogram
    `name`, or None."""
    samples = (fams or {}).get(name, {}).get("samples", {})
    count = samples.get(name + "_count")
    total = samples.get(name + "_sum")
    at = [v for lab, v in samples.get(name + "_bucket", [])
          if lab.get("le") not in (None, "+Inf") and float(lab["le"]) == over]
    if not count or not total or not at:
        return None
    return [count[0][1], total[0][1], count[0][1] - at[0]]


SMAPS_EVERY = 60      # samples between two looks at /proc/PID/smaps
SMAPS_MIN_KIB = 1024  # anonymous mappings at least this resident


def anon_maps(pid):
    """The process's anonymous mappings holding at least SMAPS_MIN_KIB
    resident, as [start address, size KiB, Anonymous KiB, name]: where the
    memory between snapshots lives (glibc puts a block above its mmap
    threshold, 3 MiB in kyufud, in a mapping of its own: libraft's log
    index among them).  None when the process is gone."""
    out, cur = [], None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and not head[0].endswith(":"):
                    lo, hi = head[0].split("-")
                    cur = [lo, (int(hi, 16) - int(lo, 16)) // 1024, 0,
                           head[5] if len(head) > 5 else ""]
                elif head[0] == "Anonymous:" and cur is not None:
                    cur[2] = int(head[1])
                    if cur[2] >= SMAPS_MIN_KIB:
                        out.append(cur)
    except OSError:
        return None
    return out


def sample(s, smaps=False):
    """One second's look at each node (and, when smaps, its large
    anonymous mappings)."""
    now = time.time()
    nodes = []
    for p in s.procs:
        m = metrics(p) if p.alive() else None
        st = install_drill.proc_status(p.p.pid) if p.alive() else None
        nodes.append({
            "up": p.alive(),
            "leader": value(m, "kyufu_raft_role", role="leader") == 1,
            "in_flight": value(m, "kyufu_snapshots_in_flight") or 0,
            "taken": value(m, "kyufu_snapshots_taken_total"),
            "restored": value(m, "kyufu_snapshots_restored_total"),
            "sent": value(m, "kyufu_snapshot_copies_sent_total"),
            "rss_anon_kib": st.get("RssAnon") if st else None,
            "vm_rss_kib": st.get("VmRSS") if st else None,
            "loop_stalls": value(m, "kyufu_loop_stalls_total"),
            **{k: hist(m, n) for k, n in an.HISTOGRAMS.items()},
        })
        if smaps and p.alive():
            nodes[-1]["anon_maps"] = anon_maps(p.p.pid)
    return {"t": now, "nodes": nodes}


FILES = ("load.json", "load.err", "series.txt", "trace.txt", "samples.json",
         "result.json", "report.md")


def head_lines(args, commit, machine):
    return ["# kyufu soak: snapshots and memory under a steady load", "",
            "%s; K = %d, %s households/s (3 writes each), %d s, follower "
            "stopped %d s at %s of the run; commit %s" % (
                machine, args["inflight"], args["households_per_s"] or "unpaced",
                args["duration_s"], args["catch_up_stop_s"], args["catch_up_at"] or "none",
                commit)]


def load_run(path):
    """The load's run from its load.json, with the writes each household
    makes (register, and submit and approve when on)."""
    with open(path) as f:
        load = json.load(f)
    return dict(load["runs"][0], writes_per_household=1 + bool(load.get("submit")) +
                bool(load.get("approve")))


def analyse_dir(d):
    """Analyse a run's files again (--analyse): result.json keeps the run's
    arguments, machine, commit, stops and store sizes."""
    with open(os.path.join(d, "result.json")) as f:
        old = json.load(f)
    with open(os.path.join(d, "samples.json")) as f:
        samples = json.load(f)
    run = load_run(os.path.join(d, "load.json"))
    trace = os.path.join(d, "trace.txt")
    res = an.analyse(an.read_series(os.path.join(d, "series.txt")), samples,
                     old.get("downs", []), trace if os.path.exists(trace) else None, run)
    for k in ("args", "commit", "machine", "store_mb"):
        res[k] = old.get(k)
    return res


def write_result(d, res):
    md = an.report(head_lines(res["args"], res["commit"], res["machine"]), res)
    md += "\nTargets (issue 9; chaos/bench/targets.py):\n\n" + "\n".join(
        targets.markdown(targets.soak_rows(res))) + "\n"
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write(md)
    return md


def store_mb(d):
    out = []
    for i in range(1, 4):
        mdb = os.path.join(d, "kyufu", "node%d" % i, "data", "ledger", "data.mdb")
        try:
            out.append(os.stat(mdb).st_blocks * 512 / 1e6)
        except OSError:
            out.append(None)
    return out


def run_soak(a, d, s):
    """The load, the samples and the stops; returns (load exit status,
    samples, downs)."""
    cmd = [os.path.join(a.build, "chaos", "bench", "kyufu-bench-load"),
           "--config", s.conf,
           "--clerk-token-file", os.path.join(s.tokens, "bench-clerk"),
           "--approver-token-file", os.path.join(s.tokens, "bench-approver"),
           "--operator-token-file", os.path.join(s.tokens, "bench-operator"),
           "--households", "100000000", "--inflight", str(a.inflight),
           "--approve", "--duration-s", str(a.duration_s),
           "--series", os.path.join(d, "series.txt"),
           "--trace", os.path.join(d, "trace.txt")]
    if a.households_per_s:
        cmd += ["--households-per-s", str(a.households_per_s)]
    with open(os.path.join(d, "load.json"), "w") as out, \
            open(os.path.join(d, "load.err"), "w") as err:
        load = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    t0 = time.time()
    samples, downs = [], []
    plan = sorted(t0 + x * a.duration_s for x in a.at)
    down = None  # (node index, when it was told to stop)
    next_t = t0 + 1.0
    try:
        while load.poll() is None:
            time.sleep(max(0.0, next_t - time.time()))
            next_t = max(next_t + 1.0, time.time())
            samples.append(sample(s, smaps=len(samples) % SMAPS_EVERY == 0))
            now = time.time()
            if down is None and plan and now >= plan[0]:
                plan.pop(0)
                i = (s.leader(30) + 1) % 3
                log("stopping follower %d for %d s" % (i + 1, a.catch_up_stop_s))
                down = (i, time.time())
                procs.stop(s.procs[i].p, 30)
            elif down is not None and now - down[1] >= a.catch_up_stop_s:
                s.procs[down[0]].start()
                downs.append((down[1], time.time(), down[0]))
                log("follower %d started again" % (down[0] + 1))
                down = None
            if len(samples) % 300 == 0:
                log("%d s" % (now - t0))
        if down is not None:
            s.procs[down[0]].start()
            downs.append((down[1], time.time(), down[0]))
        return load.wait(), samples, downs
    finally:
        if load.poll() is None:
            procs.stop(load, 30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build")
    ap.add_argument("--duration-s", type=int, default=3600)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--households-per-s", type=int, default=100)
    ap.add_argument("--catch-up-at", default="0.35,0.7",
                    help="fractions of the run, comma separated ('' for none)")
    ap.add_argument("--catch-up-stop-s", type=int, default=30)
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--analyse", metavar="DIR")
    a = ap.parse_args()
    if a.analyse:
        try:
            print(write_result(a.analyse, analyse_dir(a.analyse)))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            ap.error("--analyse %s: not a soak's folder (%s)" % (a.analyse, e))
        return 0
    if not a.build:
        ap.error("--build is required (or --analyse DIR)")
    if not 10 <= a.duration_s <= 86400 or not 1 <= a.inflight <= 1024 or \
            not 0 <= a.households_per_s <= 100000 or not 1 <= a.catch_up_stop_s <= 3600:
        ap.error("--duration-s 10..86400, --inflight 1..1024, "
                 "--households-per-s 0..100000, --catch-up-stop-s 1..3600")
    try:
        a.at = [float(x) for x in a.catch_up_at.split(",") if x.strip()]
    except ValueError:
        ap.error("--catch-up-at: fractions, e.g. 0.3,0.7")
    if any(not 0 < x < 1 for x in a.at):
        ap.error("--catch-up-at: each in (0, 1)")
    if a.out and os.path.exists(a.out) and not os.path.isdir(a.out):
        ap.error("--out: %s is not a folder" % a.out)
    for b in ("node/kyufud", "client/kyufuctl", "chaos/bench/kyufu-bench-load"):
        if not os.access(os.path.join(a.build, b), os.X_OK):
            ap.error("%s/%s: not built" % (a.build, b))
    a.build = os.path.abspath(a.build)
    d = tempfile.mkdtemp(prefix="kyufu-soak-")
    log("folder " + d)
    machine = sbs.machine()
    commit = install_drill.source_commit()[0]  # the code that runs, not what HEAD is by the end
    s = sbs.start_kyufu(a, d)
    ok = False
    try:
        rc, samples, downs = run_soak(a, d, s)
        s.stop()
        with open(os.path.join(d, "samples.json"), "w") as f:
            json.dump(samples, f)
        try:
            run = load_run(os.path.join(d, "load.json"))
        except (OSError, ValueError, KeyError, IndexError):
            with open(os.path.join(d, "load.err")) as f:
                log("the load gave no result (exit %d): %s" % (rc, f.read()[-2000:]))
            return 1
        if not samples:
            log("the load ended before the first sample")
            return 1
        res = an.analyse(an.read_series(os.path.join(d, "series.txt")), samples, downs,
                         os.path.join(d, "trace.txt"), run)
        res.update({"args": {k: v for k, v in vars(a).items() if k != "at"},
                    "commit": commit, "machine": machine,
                    "load_exit": rc, "store_mb": store_mb(d)})
        md = write_result(d, res)
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            for n in FILES:
                shutil.copy(os.path.join(d, n), a.out)
        print(md)
        ok = rc == 0 and res["errors"] == 0 and res["ok"] == res["writes"]
    finally:
        s.stop()
        if ok and not a.keep:
            shutil.rmtree(d, ignore_errors=True)
        else:
            log("kept " + d)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
