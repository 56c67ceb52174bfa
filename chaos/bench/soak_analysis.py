"""What a soak's files say (chaos/bench/soak.py): the classes of its
seconds, the latencies of each class, each node's memory over the run,
and the report.  Reads only the files a soak leaves (series.txt,
trace.txt, samples.json, load.json, result.json's "downs"), so a run can
be analysed again (`soak.py --analyse DIR`).

Classes: a series second (prev_end, end] is "sending" while a snapshot
copy was out to a follower (from the leader's copies-sent counter moving
until a follower's restored counter moves, or the run ends: then the
interval is marked open), else "follower down" while a follower the soak
stopped was down (from the moment it was told to stop until it answered
again), else "taking" while any node had a snapshot in flight or took one
since the previous sample, else "quiet".  Counters are compared with each
node's last value seen, so a missed sample (a node slow to answer its
metrics) does not lose a step; a counter that goes down is a restarted
process and starts again from its new value.
"""
import bisect
import statistics

CLASSES = ("quiet", "taking", "sending", "follower down")


def pct(v, p):
    """Nearest-rank percentile p of v, or None when v is empty."""
    if not v:
        return None
    v = sorted(v)
    return v[max(0, min(len(v) - 1, (len(v) * p + 99) // 100 - 1))]


def read_series(path):
    """The load's --series lines: one dict per second (t = its end, s)."""
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


def _steps(samples, field):
    """[(t_prev, t, node)] where node's counter `field` rose between two of
    its answered samples (the last one seen before t)."""
    out = []
    last = [None, None, None]
    last_t = [None, None, None]
    for smp in samples:
        for i, n in enumerate(smp["nodes"]):
            v = n.get(field)
            if v is None:
                continue
            if last[i] is not None and v > last[i]:
                out.append((last_t[i], smp["t"], i))
            last[i], last_t[i] = v, smp["t"]
    return out


def intervals(samples):
    """(taking, sending, open_sending) intervals [(start, end)] from the
    1 s samples; open_sending is True when a copy was still out at the
    end."""
    taking = []
    prev_t = None
    prev_busy = False
    for smp in samples:
        busy = any(n.get("in_flight") for n in smp["nodes"])
        # A snapshot ends (raft_uv's fsync of its copy returns, and the
        # Raft appends of every node queued behind it with it) between the
        # last sample that saw it in flight and the next: that second is
        # the snapshot's too (docs/soak.md "Snapshots through a file").
        if busy or prev_busy:
            taking.append((prev_t if prev_t is not None else smp["t"] - 1.0, smp["t"]))
        prev_t = smp["t"]
        prev_busy = busy
    taking += [(a, b) for a, b, _ in _steps(samples, "taken")]
    sent = sorted(_steps(samples, "sent"))
    restored = sorted(_steps(samples, "restored"))
    sending, open_sending = [], False
    for a, _, _ in sent:
        if sending and a <= sending[-1][1]:
            continue  # a re-send while the previous copy was out
        done = [b for _, b, _ in restored if b > a]
        if done:
            sending.append((a, done[0]))
        else:
            sending.append((a, samples[-1]["t"]))
            open_sending = True
    return sorted(taking), sending, open_sending


def down_intervals(samples, downs):
    """[(start, end)]: each stop (start, restart, node) the soak made, up to
    the first sample after the restart at which the node answered its
    metrics (older results: (start, restart) pairs, taken as they are)."""
    out = []
    for d in downs:
        if len(d) < 3:
            out.append((d[0], d[1]))
            continue
        start, restart, node = d[0], d[1], d[2]
        end = next((s["t"] for s in samples if s["t"] >= restart and
                    s["nodes"][node].get("taken") is not None), restart)
        out.append((start, end))
    return out


def classify(series, samples, downs):
    """Sets each series second's "class"; returns the intervals (taking,
    sending, whether a copy was still out at the end, follower down)."""
    taking, sending, open_sending = intervals(samples)
    downs = down_intervals(samples, downs)
    order = _order(taking, sending, downs)
    prev = None
    for sec in series:
        b = sec["t"]
        a = prev if prev is not None else b - 1.0
        prev = b
        sec["class"] = _class_of(order, a, b)
    return taking, sending, open_sending, downs


class _Intervals:
    """Sorted, merged intervals; whether (a, b) overlaps one of them."""

    def __init__(self, ivs):
        merged = []
        for x, y in sorted(ivs):
            if merged and x <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], y)
            else:
                merged.append([x, y])
        self.starts = [x for x, _ in merged]
        self.ivs = merged

    def meets(self, a, b):
        i = bisect.bisect_left(self.starts, b) - 1
        return i >= 0 and self.ivs[i][1] > a


def _order(taking, sending, downs):
    """The classes in the order they win: a copy being sent, then a
    follower down, then a snapshot being taken."""
    return (("sending", _Intervals(sending)), ("follower down", _Intervals(downs)),
            ("taking", _Intervals(taking)))


def _class_of(order, a, b):
    return next((name for name, ivs in order if ivs.meets(a, b)), "quiet")


def pooled(trace_path, taking, sending, downs):
    """{class: [latency ms of each write]}: a write is classed by the time
    it was in flight, [answer - latency, answer], not by its answer's
    second (a write held up by a snapshot's end is answered after it):
    "sending" if that meets a copy being sent, else "follower down", else
    "taking", else "quiet"."""
    order = _order(taking, sending, downs)
    out = {}
    with open(trace_path) as f:
        for line in f:
            v = line.split()
            if len(v) != 3:
                continue
            b = int(v[0]) / 1000.0
            lat = int(v[1]) / 1000.0
            a = b - lat / 1000.0
            out.setdefault(_class_of(order, a, b), []).append(lat)
    return out


def slope_per_hour(points):
    """Least-squares slope of [(t s, y)] in y per hour, or None."""
    if len(points) < 3:
        return None
    mt = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return sum((t - mt) * (y - my) for t, y in points) / den * 3600.0


# Samples (one a second) a minute needs for its lowest to count as a floor.
MINUTE_SAMPLES_MIN = 30


def memory(samples):
    """Per node, per process it ran (a restart starts a new one: the node
    was seen down in between), RssAnon in MB: the median of its first and
    last tenth, its peak, the lowest sample of its first and last minute
    (of MINUTE_SAMPLES_MIN samples or more) and the least-squares slope of
    its per-minute lowest sample (memory
    between snapshots) in MB per hour, over its whole life and over its
    second half (after the start's growth: the Raft log filling up to the
    snapshot threshold, the store's caches)."""
    out = []
    for i in range(3):
        segs, cur = [], []
        for s in samples:
            n = s["nodes"][i]
            if not n.get("up") or n.get("rss_anon_kib") is None:
                if cur and not n.get("up"):
                    segs.append(cur)
                    cur = []
                continue
            cur.append((s["t"], n["rss_anon_kib"] / 1024.0))
        if cur:
            segs.append(cur)
        procs = []
        for pts in segs:
            t0 = pts[0][0]
            span = pts[-1][0] - t0
            first = [y for t, y in pts if t - t0 <= span / 10]
            last = [y for t, y in pts if pts[-1][0] - t <= span / 10]
            floors, counts = {}, {}
            for t, y in pts:
                m = int((t - t0) // 60)
                floors[m] = min(floors.get(m, y), y)
                counts[m] = counts.get(m, 0) + 1
            # A minute of a few samples (the last one, cut by the run's or
            # the process's end) has no floor: its lowest sample may be a
            # snapshot's peak.  Unless no minute is whole.
            whole = {m: y for m, y in floors.items() if counts[m] >= MINUTE_SAMPLES_MIN}
            fl = sorted((m * 60.0, y) for m, y in (whole or floors).items())
            half = [(t, y) for t, y in fl if t >= span / 2]
            procs.append({"seconds": round(span), "first_tenth_median_mb": statistics.median(first),
                          "floor_second_half_median_mb": statistics.median(
                              y for _, y in half) if half else None,
                          "floor_second_half_slope_mb_per_h": slope_per_hour(half),
                          "last_tenth_median_mb": statistics.median(last),
                          "peak_mb": max(y for _, y in pts),
                          "floor_first_mb": fl[0][1], "floor_last_mb": fl[-1][1],
                          "floor_slope_mb_per_h": slope_per_hour(fl)})
        out.append(procs)
    return out


# What each node's second was spent waiting on (docs/soak.md "Snapshot
# spacing by size, A/B"): its Raft log appends (write and fsync on libuv's
# pool), its LMDB commits (loop thread) and, leader only, commit latency
# (proposal to applied), and its heap releases after each compaction of the
# Raft log (malloc_trim; on the loop thread before 9a06eb2, on a work
# thread since), and how long an empty work item waited for a thread of
# libuv's pool (node/work_pool.h; since the twentieth session); soak.py
# samples these.
HISTOGRAMS = {"append": "kyufu_raft_append_seconds",
              "store_commit": "kyufu_storage_commit_seconds",
              "commit": "kyufu_commit_latency_seconds",
              "heap_release": "kyufu_heap_release_seconds",
              "pool_wait": "kyufu_work_queue_wait_seconds"}
WAITS = tuple(HISTOGRAMS)
# Their columns in the report; the leader's commit latency has no count.
WAIT_LABELS = {"append": "Raft appends", "store_commit": "LMDB commits",
               "commit": "leader commit latency", "heap_release": "heap releases",
               "pool_wait": "pool probes"}


def waits(samples, taking, sending, downs):
    """{class: {histogram: [count, sum s, count over 100 ms], "loop_stalls":
    n}} over every node: the growth of each node's HISTOGRAMS (its Raft
    appends, LMDB commits, and the leader's commit latency) and loop stall
    counter between two of its answered samples,
    given to the class of that interval.  Samples without them (older
    runs) add nothing."""
    order = _order(taking, sending, downs)
    out = {c: {**{h: [0, 0.0, 0] for h in WAITS}, "loop_stalls": 0} for c in CLASSES}
    last = [None, None, None]
    for smp in samples:
        for i, n in enumerate(smp["nodes"]):
            if not n.get("up"):
                last[i] = None  # a stop: the next process counts afresh
                continue
            if n.get("append") is None:
                continue
            prev, last[i] = last[i], (smp["t"], n)
            if prev is None:
                continue
            t0, p = prev
            ds = {h: [y - z for y, z in zip(n[h], p[h])] for h in WAITS
                  if n.get(h) and p.get(h)}
            stalls = (n.get("loop_stalls") or 0) - (p.get("loop_stalls") or 0)
            if stalls < 0 or any(d[0] < 0 for d in ds.values()):
                continue  # restarted unseen between the two: skip it
            c = out[_class_of(order, t0, smp["t"])]
            for h, d in ds.items():
                c[h] = [x + y for x, y in zip(c[h], d)]
            c["loop_stalls"] += stalls
    return out


def analyse(series, samples, downs, trace_path, load_run):
    """The result dict (without the run's arguments)."""
    taking, sending, open_sending, down_ivs = classify(series, samples, downs)
    lat = pooled(trace_path, taking, sending, down_ivs) if trace_path else {}
    classes = {}
    for c in CLASSES:
        v = [x for x in series if x["class"] == c and x["answered"] > 0]
        p99s = [x["p99"] for x in v]
        classes[c] = {"seconds": len(v), "writes": len(lat.get(c, [])),
                      "p50": pct(lat.get(c), 50), "p99": pct(lat.get(c), 99),
                      "p99_median": statistics.median(p99s) if v else None,
                      "p99_p90": pct(p99s, 90), "p99_worst": max(p99s, default=None),
                      "max_worst": max((x["max"] for x in v), default=None)}
    q = classes["quiet"]["p99"]

    def ratio(c):
        m = classes[c]["p99"]
        return round(m / q, 2) if m is not None and q else None
    last = samples[-1]["nodes"] if samples else []
    return {"writes": load_run.get("writes"), "ok": load_run.get("ok"),
            "errors": load_run.get("errors"), "writes_per_s": load_run.get("commands_per_s"),
            "writes_per_household": load_run.get("writes_per_household"),
            "latency_ms": load_run.get("latency_ms"),
            "classes": classes, "ratio_taking": ratio("taking"),
            "ratio_sending": ratio("sending"), "sending_open_at_end": open_sending,
            "n_taking": len(taking), "n_sending": len(sending),
            "snapshots_taken": [n.get("taken") for n in last],
            "copies_sent": [n.get("sent") for n in last],
            "downs": downs, "memory": memory(samples),
            "waits": waits(samples, taking, sending, down_ivs)}


def _f(x, nd=2):
    return "-" if x is None else "{:,.{}f}".format(x, nd)


def report(head, res):
    """Markdown lines of a soak's result; head: the first lines."""
    L = list(head) + [
        "",
        "writes %s, OK %s, client errors %s; %s writes/s over the run" % (
            res["writes"], res["ok"], res["errors"], _f(res["writes_per_s"], 0)),
        "",
        "| class | seconds | writes in flight in it | p50 ms | p99 ms | per-second p99: median | p90 | worst | worst max ms |",
        "|---|---|---|---|---|---|---|---|---|"]
    for c in CLASSES:
        v = res["classes"][c]
        L.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            c, v["seconds"], v["writes"], _f(v["p50"]), _f(v["p99"]), _f(v["p99_median"]),
            _f(v["p99_p90"]), _f(v["p99_worst"]), _f(v["max_worst"])))
    L += ["",
          "p99 of the writes in flight while a snapshot was taken ÷ that of "
          "the other (quiet) writes: %s; while one was sent: %s%s (target ≤ 2)" % (
              _f(res["ratio_taking"]), _f(res["ratio_sending"]),
              " (a copy still out at the end)" if res["sending_open_at_end"] else ""),
          "",
          ]
    if any(res.get("waits", {}).get(c, {}).get("append", [0])[0] for c in CLASSES):
        L += ["What the nodes waited on, by class of second (all nodes; mean ms, "
              "and how many took over 100 ms):", "",
              "| class | %s | loop stalls |" % " | ".join(
                  ("%s | mean" % WAIT_LABELS[h] if h != "commit"
                   else "%s: mean" % WAIT_LABELS[h]) + " | > 100 ms" for h in WAITS),
              "|---|%s---|" % ("---|" * sum(2 if h == "commit" else 3 for h in WAITS))]
        for c in CLASSES:
            w = res["waits"][c]
            cells = []
            for h in WAITS:
                n, tot, slow = w[h]
                cells += ([str(int(n))] if h != "commit" else []) + [
                    _f(1000.0 * tot / n if n else None), str(int(slow))]
            L.append("| %s | %s | %d |" % (c, " | ".join(cells), w["loop_stalls"]))
        L.append("")
    L += ["snapshots taken per node (at the last sample): %s; copies sent: %s; "
          "intervals taking %d, sending %d" % (
              res["snapshots_taken"], res["copies_sent"], res["n_taking"], res["n_sending"]),
          "",
          "| node | process (s alive) | RssAnon first tenth MB | last tenth MB | peak MB "
          "| floor first minute MB | floor last minute MB | floor slope MB/h "
          "| second half: floor median MB | floor slope MB/h |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for i, ps in enumerate(res["memory"]):
        for j, m in enumerate(ps):
            L.append("| %d | %d (%d s) | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s | %s |" % (
                i + 1, j + 1, m["seconds"], m["first_tenth_median_mb"],
                m["last_tenth_median_mb"], m["peak_mb"], m["floor_first_mb"],
                m["floor_last_mb"], _f(m["floor_slope_mb_per_h"], 1),
                _f(m.get("floor_second_half_median_mb"), 0),
                _f(m.get("floor_second_half_slope_mb_per_h"), 1)))
    if res.get("store_mb"):
        L += ["", "store (data.mdb, allocated) per node at the end: %s MB" % ", ".join(
            "%.0f" % b for b in res["store_mb"])]
    return "\n".join(L) + "\n"
