#!/usr/bin/env python3
"""Phases of each kyufu failover trial of a side-by-side run kept with
--keep (docs/failover.md "Where the time goes"), from the run's folder:
result.json (each trial's kill time and killed node), the kyufud logs
(JSON lines, one clock: this machine's) and the probe's answers.

For each kyufu trial, in ms after the signal:
  evidence  a survivor logged "raft leader connection lost: early
            election" (crash evidence; "-" when none: a SIGSTOP, or a
            build without it)
  elected   a survivor logged "leader changed" with role leader (the
            glue's 10 ms state poll saw it leader)
  recorded  the new leader logged "leader change recorded": elected, and
            its first entry of the term (the leader-change record)
            committed
  ack       the probe's first write sent after the signal was acknowledged
            by another node (the benchmark's figure)
For each planned hand-over trial (term: SIGTERM, transfer: kyufuctl),
in ms after the signal or the start of kyufuctl (whose own start, TLS and
sign-in check come first: seconds on a loaded machine):
  begun     the old leader's state poll saw raft's transfer under way (it
            logs "leader changed" with role leader and leader 0: raft then
            names no leader)
  elected   another node logged "leader changed" with role leader
  handed    the old leader logged "leadership handed over" (SIGTERM) or
            "leadership transferred on request" (kyufuctl)
  gap       the probe's longest write gap (the benchmark's figure)

usage: failover_phases.py FOLDER   (prints a markdown table and medians)
A benchmark tool: reads logs after the fact; never in a test suite."""
import calendar
import json
import os
import statistics
import sys
import time


def log_ms(stamp):
    t = time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(stamp[20:23])


def events(path, msg, role=None):
    """ms of each log line with this msg (and role, if given)."""
    return [t for t, e in events_full(path, msg)
            if role is None or e.get("role") == role]


def events_full(path, msg):
    """(ms, event) of each log line with this msg."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("msg") == msg:
                    out.append((log_ms(e["time"]), e))
    except OSError:
        pass
    return out


def first_after(ts, t0, t1):
    later = [t for t in ts if t0 <= t < t1]
    return min(later) - t0 if later else None


def until(starts, t0):
    """End of a trial's window: the next trial's start (cases and systems
    are interleaved), at most 60 s."""
    later = [t for t in starts if t > t0]
    return min(later + [t0 + 60000])


def main():
    d = sys.argv[1]
    res = json.load(open(os.path.join(d, "result.json")))
    starts = [k["unix_ms"] for f in (res.get("failover") or {}).values()
              for k in f.get("kills", [])]
    kd = os.path.join(d, "kyufu")
    logs = {"kyufud%d" % i: os.path.join(kd, "node%d.log" % i) for i in (1, 2, 3)}
    ev = {n: events(p, "raft leader connection lost: early election") for n, p in logs.items()}
    led = {n: events(p, "leader changed", "leader") for n, p in logs.items()}
    rec = {n: events(p, "leader change recorded") for n, p in logs.items()}
    print("| case | trial | evidence ms | elected ms | recorded ms | ack ms |")
    print("|---|---|---|---|---|---|")
    for case in ("kyufu kill", "kyufu stop"):
        f = (res.get("failover") or {}).get(case)
        if not f or "kills" not in f:
            continue
        cols = {"evidence": [], "elected": [], "recorded": [], "ack": []}
        for n, (k, ack) in enumerate(zip(f["kills"], f["ms"])):
            t0 = k["unix_ms"]
            t1 = until(starts, t0)
            others = [x for x in logs if x != k["leader"]]
            e = [first_after(ev[x], t0, t1) for x in others]
            e = min([x for x in e if x is not None], default=None)
            r = [first_after(rec[x], t0, t1) for x in others]
            r = min([x for x in r if x is not None], default=None)
            el = [first_after(led[x], t0, t1) for x in others]
            el = min([x for x in el if x is not None], default=None)
            for key, v in (("evidence", e), ("elected", el), ("recorded", r), ("ack", ack)):
                if v is not None:
                    cols[key].append(v)
            print("| %s | %d | %s | %s | %s | %.0f |" % (
                case, n + 1, "-" if e is None else "%.0f" % e,
                "-" if el is None else "%.0f" % el,
                "-" if r is None else "%.0f" % r, ack))
        for key, v in cols.items():
            if v:
                print("%s %s: median %.0f ms (%d trials)" % (case, key, statistics.median(v), len(v)))
    handed = {n: events(p, "leadership handed over") + events(p, "leadership transferred on request")
              for n, p in logs.items()}
    print()
    begun = {n: [t for t, e in events_full(p, "leader changed")
                 if e.get("role") == "leader" and e.get("leader") == 0]
             for n, p in logs.items()}
    print("| case | trial | begun ms | elected ms | elected - begun ms | handed ms | gap ms |")
    print("|---|---|---|---|---|---|---|")
    for case in ("kyufu term", "kyufu transfer"):
        f = (res.get("failover") or {}).get(case)
        if not f or "kills" not in f:
            continue
        cols = {"begun": [], "elected": [], "elected - begun": [], "handed": [], "gap": []}
        for n, (k, gap) in enumerate(zip(f["kills"], f["ms"])):
            t0 = k["unix_ms"]
            t1 = until(starts, t0)
            others = [x for x in logs if x != k["leader"]]
            el = [first_after(led[x], t0, t1) for x in others]
            el = min([x for x in el if x is not None], default=None)
            h = first_after(handed[k["leader"]], t0, t1)
            # Only before the election (a fast one may end within one
            # poll: then no such line, "-").
            b = first_after(begun[k["leader"]], t0, t0 + el + 1) if el is not None else None
            eb = el - b if el is not None and b is not None else None
            for key, v in (("begun", b), ("elected", el), ("elected - begun", eb),
                           ("handed", h), ("gap", gap)):
                if v is not None:
                    cols[key].append(v)
            print("| %s | %d | %s | %s | %s | %s | %.0f |" % (
                case, n + 1, *("-" if v is None else "%.0f" % v for v in (b, el, eb, h)),
                gap))
        for key, v in cols.items():
            if v:
                print("%s %s: median %.0f ms, max %.0f ms (%d trials)" % (
                    case, key, statistics.median(v), max(v), len(v)))


if __name__ == "__main__":
    main()
