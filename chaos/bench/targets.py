"""Issue 9's targets, judged from one side-by-side run's results
(side_by_side.py's result: sweep, ceiling, failover): for each target the
figure measured, whether it is met, and when it is not the gap.  The
report's "Targets" table (docs/benchmarks.md reads it).

Every figure is a median over the run's rounds (sweep) or trials
(failover), as the report's other tables give them.  A target whose
figures the run did not measure (a K not swept, a case not run) says so
instead of a verdict; the snapshot and memory targets come from
chaos/bench/soak.py's result when the run included one (--soak-s).
"""
import statistics

PEAK_X = 5.0          # kyufu's peak >= 5x etcd's peak
EVERY_K_X = 3.0       # >= 3x etcd at every K from 16 to 1,024
P50_K1_MS = 0.5       # one caller's p50
CPU_SHARE = 1.0 / 3   # kyufu's CPU per write <= 1/3 of etcd's
CEILING_SHARE = 0.5   # >= 50 % of the no-replication ceiling
CRASH_SHARE = 0.5     # crash failover median <= 1/2 of etcd's
SILENT_SHARE = 1.0    # silent-leader failover median <= etcd's
HANDOVER_MS = 50.0    # planned hand-over: every write gap <= 50 ms
SNAPSHOT_P99_X = 2.0  # a snapshot taken or sent raises p99 by at most 2x
# A soak whose cluster started less than this share of its paced writes
# (writes over the run's duration) gets no snapshot verdict unless the
# ratio is already over: queueing, not snapshots, sets its latencies.
SUSTAINED_SHARE = 0.97
# "Flat": over the second half of its life (after the start's growth: the
# Raft log filling to the snapshot threshold), each node process that ran
# at least 15 minutes (a restarted follower's too) has a memory floor
# between snapshots (the lowest RssAnon of each minute) that grows by at
# most 10 % of its level per hour (least squares; falling is fine).  The
# peaks while a snapshot is out grow with the ledger by design (one copy
# of the snapshot in memory, docs/scale.md) and are reported, not judged.
MEMORY_GROWTH_PER_H = 0.10
JUDGED_PROCESS_S = 900


def _med(runs, f):
    v = [f(r) for r in runs if f(r) is not None]
    return statistics.median(v) if v else None


def _n(x, nd=0):
    if x is None:
        return "-"
    return "{:,.{}f}".format(x, nd)


def judge(res):
    """[(target, measured, met: True/False/None, gap or "")] for res =
    {"sweep": {K: {"kyufu": [runs], "etcd": [runs]}}, "ceiling": {K: {...}},
    "failover": {"kyufu kill": {...}, ...} or None}."""
    sw, ceil = res.get("sweep") or {}, res.get("ceiling") or {}
    fo = res.get("failover") or {}
    rows = []
    ks = sorted(sw)
    kr = {k: _med(sw[k]["kyufu"], lambda r: r["commands_per_s"]) for k in ks}
    er = {k: _med(sw[k]["etcd"], lambda r: r["commands_per_s"]) for k in ks}

    def p(k, system, q):
        return _med(sw[k][system], lambda r: r["latency_ms"][q])

    bad = sum(r["writes"] - r["ok"] + (r.get("errors") or 0)
              for k in ks for system in ("kyufu", "etcd") for r in sw[k][system]
              if "writes" in r and "ok" in r)
    if ks:
        rows.append(("every write of the sweep answered OK", "%d not" % bad if bad else "all",
                     bad == 0, "" if bad == 0 else "the throughput figures count "
                     "only what was answered"))
    if ks and all(kr[k] and er[k] for k in ks):
        kk = max(ks, key=lambda k: kr[k])
        ek = max(ks, key=lambda k: er[k])
        x = kr[kk] / er[ek]
        rows.append(("peak >= %gx etcd's peak" % PEAK_X,
                     "kyufu %s (K = %d) / etcd %s (K = %d) = %.2fx" % (
                         _n(kr[kk]), kk, _n(er[ek]), ek, x),
                     x >= PEAK_X,
                     "" if x >= PEAK_X else "%.2fx short: kyufu needs %s writes/s" % (
                         PEAK_X - x, _n(PEAK_X * er[ek]))))
        kp, ep = p(kk, "kyufu", "p99"), p(kk, "etcd", "p99")
        if kp is not None and ep is not None:
            rows.append(("lower p99 than etcd at that load (K = %d)" % kk,
                         "%s vs %s ms" % (_n(kp, 1), _n(ep, 1)), kp < ep,
                         "" if kp < ep else "%s ms above" % _n(kp - ep, 1)))
        mid = [k for k in ks if 16 <= k <= 1024]
        if mid:
            xs = {k: kr[k] / er[k] for k in mid}
            ok = all(v >= EVERY_K_X for v in xs.values())
            low = [k for k in mid if xs[k] < EVERY_K_X]
            whole = mid[0] == 16 and mid[-1] == 1024
            rows.append((">= %gx etcd at every K from 16 to 1,024" % EVERY_K_X,
                         " / ".join("%.2f" % xs[k] for k in mid) + " (K = %s)" %
                         ", ".join(str(k) for k in mid),
                         False if not ok else (True if whole else None),
                         "below at K = %s (lowest %.2fx)" % (
                             ", ".join(str(k) for k in low), min(xs.values()))
                         if not ok else ("" if whole else "16 and 1,024 not both swept")))
    else:
        rows.append(("throughput targets", "no load sweep in this run", None, ""))
    v = p(1, "kyufu", "p50") if 1 in sw else None
    if v is None:
        rows.append(("one caller's p50 <= %g ms" % P50_K1_MS, "K = 1 not swept", None, ""))
    else:
        rows.append(("one caller's p50 <= %g ms" % P50_K1_MS, "%s ms (etcd %s)" % (
            _n(v, 2), _n(p(1, "etcd", "p50"), 2)), v <= P50_K1_MS,
            "" if v <= P50_K1_MS else "%s ms over" % _n(v - P50_K1_MS, 2)))
    cpu = {}
    for k in ks:
        kc = _med(sw[k]["kyufu"], lambda r: r.get("cpu_ms_per_1000_writes"))
        ec = _med(sw[k]["etcd"], lambda r: r.get("cpu_ms_per_1000_writes"))
        if kc is not None and ec:
            cpu[k] = kc / ec
    if not cpu:
        rows.append(("CPU per 1,000 writes <= 1/3 of etcd's", "not measured", None, ""))
    else:
        ok = all(v <= CPU_SHARE for v in cpu.values())
        rows.append(("CPU per 1,000 writes <= 1/3 of etcd's",
                     " / ".join("%.2f" % cpu[k] for k in sorted(cpu)) + " of etcd's (K = %s)"
                     % ", ".join(str(k) for k in sorted(cpu)), ok,
                     "" if ok else "highest %.2f: %.0f %% more CPU per write than the target" % (
                         max(cpu.values()), 100 * (max(cpu.values()) / CPU_SHARE - 1))))
    share = {k: kr[k] / ceil[k]["commands_per_s"] for k in ks
             if k in ceil and kr.get(k) and ceil[k].get("commands_per_s")}
    if not share:
        rows.append((">= 50 % of the no-replication ceiling", "not measured", None, ""))
    else:
        ok = all(v >= CEILING_SHARE for v in share.values())
        rows.append((">= 50 % of the no-replication ceiling",
                     " / ".join("%.0f %%" % (100 * share[k]) for k in sorted(share)), ok,
                     "" if ok else "below at K = %s" % ", ".join(
                         str(k) for k in sorted(share) if share[k] < CEILING_SHARE)))

    def fmed(key):
        f = fo.get(key)
        return f.get("median") if f and "trials" in f else None

    def failed(*keys):
        """A case that stopped early or failed (its trials so far are no
        verdict): the reason, else None."""
        for key in keys:
            f = fo.get(key)
            if f and (f.get("error") or f.get("stopped") or "trials" not in f):
                return "%s: %s" % (key, f.get("error") or f.get("stopped") or "no trial")
        return None

    # Unplanned failover: kyufu's median at most `share` of etcd's.
    for how, title, share in (
            ("kill", "crash failover (SIGKILL) median <= 1/2 of etcd's", CRASH_SHARE),
            ("stop", "silent leader (SIGSTOP) median <= etcd's", SILENT_SHARE)):
        k_med, e_med = fmed("kyufu " + how), fmed("etcd " + how)
        why = failed("kyufu " + how, "etcd " + how)
        if why:
            rows.append((title, "failed", False, why))
        elif k_med is not None and e_med:
            x = k_med / e_med
            rows.append((title, "%s vs %s ms = %.2f" % (_n(k_med), _n(e_med), x), x <= share,
                         "" if x <= share else "%s ms over" % _n(k_med - share * e_med)))
        else:
            rows.append((title, "not run", None, ""))
    for how, what in (("term", "SIGTERM"), ("transfer", "transfer-leadership")):
        f = fo.get("kyufu " + how)
        if not f:
            rows.append(("planned hand-over (%s)" % what, "not run", None, ""))
            continue
        why = failed("kyufu " + how)
        if why:
            rows.append(("planned hand-over (%s): every write gap <= %g ms" % (
                what, HANDOVER_MS), "failed", False, why))
            continue
        ok = f["max"] <= HANDOVER_MS
        rows.append(("planned hand-over (%s): every write gap <= %g ms" % (what, HANDOVER_MS),
                     "median %s, p90 %s, max %s ms (%d trials)" % (
                         _n(f["median"]), _n(f["p90"]), _n(f["max"]), f["trials"]), ok,
                     "" if ok else "%d of %d trials over" % (
                         sum(1 for x in f["ms"] if x > HANDOVER_MS), len(f["ms"]))))
    rows.extend(soak_rows(res.get("soak")))
    return rows


def soak_rows(sk):
    """The snapshot and memory targets from chaos/bench/soak.py's result."""
    t_snap = "a snapshot taken or sent raises p99 <= %gx" % SNAPSHOT_P99_X
    t_mem = "each node's memory flat over an hour at steady load"
    if not sk:
        return [(t_snap, "not measured by this run (--soak-s, chaos/bench/soak.py)", None, ""),
                (t_mem, "not measured by this run (--soak-s, chaos/bench/soak.py)", None, "")]
    if sk.get("error") or "classes" not in sk:
        why = sk.get("error") or "no result"
        return [(t_snap, "soak failed", False, why), (t_mem, "soak failed", False, why)]
    rows = []
    rt, rs = sk.get("ratio_taking"), sk.get("ratio_sending")
    parts = ["taking %s" % ("-" if rt is None else "%.2fx" % rt),
             "sending %s" % ("-" if rs is None else "%.2fx" % rs)]
    quiet = sk["classes"]["quiet"]["p99"]
    measured = "p99 %s (quiet %s ms)" % (", ".join(parts), _n(quiet, 1))
    over = [p for p, r in (("taking", rt), ("sending", rs)) if r is not None and r > SNAPSHOT_P99_X]
    args = sk.get("args") or {}
    pace = (sk.get("writes_per_household") or 3) * (args.get("households_per_s") or 0)
    rate = (sk.get("writes") or 0) / args["duration_s"] if args.get("duration_s") else 0
    if over:
        rows.append((t_snap, measured, False, "over while " + " and ".join(over)))
    elif pace and rate < SUSTAINED_SHARE * pace:
        # Behind a paced load every write queues for the ones before it:
        # the ratio then compares queues, not what a snapshot adds.
        rows.append((t_snap, measured + "; %s of %s writes/s" % (_n(rate), _n(pace)), None,
                     "the cluster fell behind the paced load"))
    elif quiet is None:
        rows.append((t_snap, measured, None, "no writes traced in the quiet seconds"))
    elif rt is None or rs is None:
        rows.append((t_snap, measured, None, "no %s seconds in the soak" % (
            "snapshot taken" if rt is None else "snapshot sent")))
    else:
        rows.append((t_snap, measured, True, ""))
    duration = (sk.get("args") or {}).get("duration_s") or 0
    judged = [(i, j, m) for i, ps in enumerate(sk.get("memory") or [])
              for j, m in enumerate(ps) if m["seconds"] >= JUDGED_PROCESS_S]
    if duration < 3000 or not judged:
        rows.append((t_mem, "the soak ran %d s" % duration, None, "an hour is needed"))
        return rows
    drift = []
    for i, j, m in judged:
        med, slope = m.get("floor_second_half_median_mb"), m.get("floor_second_half_slope_mb_per_h")
        if med and slope is not None:
            drift.append(("node %d" % (i + 1) + (" (process %d)" % (j + 1) if len(
                sk["memory"][i]) > 1 else ""), slope / med))
    if not drift:
        rows.append((t_mem, "no memory samples", None, ""))
        return rows
    worst = max(drift, key=lambda x: x[1])
    ok = worst[1] <= MEMORY_GROWTH_PER_H
    rows.append((t_mem, "floor between snapshots, second half: %s per hour" % (
        ", ".join("%s %+.1f %%" % (n, 100 * x) for n, x in drift)), ok,
        "" if ok else "%s's floor grows %+.1f %% per hour (bound %.0f %%)" % (
            worst[0], 100 * worst[1], 100 * MEMORY_GROWTH_PER_H)))
    return rows


def markdown(rows):
    """The rows as a markdown table (lines)."""
    verdict = {True: "yes", False: "**no**", None: "-"}
    L = ["| target | measured | met? | gap |", "|---|---|---|---|"]
    for t, m, ok, gap in rows:
        L.append("| %s | %s | %s | %s |" % (t, m, verdict[ok], gap))
    return L
