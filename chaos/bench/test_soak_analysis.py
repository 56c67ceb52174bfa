#!/usr/bin/python3
"""chaos/bench/soak_analysis.py classes a soak's seconds and pools its
writes as soak.py's report says (synthetic samples, no cluster, < 1 s):
a snapshot in flight or a taken counter step makes "taking", a copy sent
until the follower restored it "sending" (also across a missed sample),
a stopped follower "follower down" until it answers again; each write
lands in the second that holds it; a restarted node's memory is split by
process; a leak shows as a floor slope."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_analysis as an  # noqa: E402


def node(up=True, in_flight=0, taken=0, restored=0, sent=0, rss_mib=100):
    if not up:
        return {"up": False, "in_flight": 0, "taken": None, "restored": None,
                "sent": None, "rss_anon_kib": None}
    return {"up": True, "in_flight": in_flight, "taken": taken, "restored": restored,
            "sent": sent, "rss_anon_kib": rss_mib * 1024}


def main():
    T0 = 1000.0
    samples = []
    for i in range(1, 301):
        t = T0 + i
        n0 = node(taken=1 if i >= 11 else 0, sent=1 if i >= 61 else 0,
                  in_flight=1 if 30 <= i <= 32 else 0, rss_mib=100 + (i // 60))
        n1 = node(rss_mib=100)
        if 40 <= i <= 50:
            n2 = node(up=False)
        elif i < 40:
            n2 = node(rss_mib=200)
        else:
            n2 = node(restored=1 if i >= 66 else 0, rss_mib=150)
        # node 1's waits: 10 appends a second of 1 ms, one over 100 ms and
        # a loop stall and a heap release of 8 ms in the second that ends at
        # 31 (a snapshot in flight)
        slow = 1 if i >= 31 else 0
        n0.update(append=[10 * i, 0.01 * i + 0.2 * slow, slow],
                  store_commit=[10 * i, 0.001 * i, 0], commit=None,
                  heap_release=[slow, 0.008 * slow, 0],
                  pool_wait=[10 * i, 0.0001 * i + 0.15 * slow, slow],
                  loop_stalls=slow)
        # node 3's: 5 appends a second, counted from 0 again by its second
        # process (up from 51); its stop and restart add nothing negative
        if n2["up"]:
            c2 = 5 * (i if i < 40 else i - 50)
            n2.update(append=[c2, 0.001 * c2, 0], loop_stalls=0 if i < 40 else 0)
        if i in (63, 64, 65):
            n1 = dict(n1, taken=None, restored=None, sent=None)  # metrics missed
        samples.append({"t": t, "nodes": [n0, n1, n2]})
    # node 3 told to stop at 39.5, started again at 50.5 (answers at 51)
    downs = [(T0 + 39.5, T0 + 50.5, 2)]
    series = [{"t": T0 + i, "answered": 10, "ok": 10, "errors": 0, "p50": 1.0,
               "p99": 2.0, "max": 3.0} for i in range(1, 301)]
    taking, sending, open_sending, down_ivs = an.classify(series, samples, downs)
    cls = {int(x["t"] - T0): x["class"] for x in series}
    assert cls[5] == "quiet", cls[5]
    assert cls[11] == "taking", "a taken step between samples 10 and 11"
    # in flight at samples 30-32; it ended between 32 and 33: that second
    # is the snapshot's too
    assert [cls[i] for i in (29, 30, 31, 32, 33, 34)] == \
        ["quiet", "taking", "taking", "taking", "taking", "quiet"], \
        [cls[i] for i in range(29, 35)]
    assert all(cls[i] == "follower down" for i in range(40, 52)), \
        [cls[i] for i in range(38, 53)]
    assert cls[39] == "quiet" and cls[52] == "quiet", (cls[39], cls[52])
    # sent between 60 and 61; restored between 65 and 66: sending (60, 66]
    assert all(cls[i] == "sending" for i in range(61, 67)), [cls[i] for i in range(59, 68)]
    assert cls[60] == "quiet" and cls[67] == "quiet", (cls[60], cls[67])
    assert not open_sending

    # A copy still out at the end: sending to the end, flagged open.
    s2 = [dict(x, nodes=[dict(x["nodes"][0]), x["nodes"][1],
                         dict(x["nodes"][2], restored=0) if x["nodes"][2]["up"]
                         else x["nodes"][2]]) for x in samples]
    _, sending2, open2, _ = an.classify([dict(x) for x in series], s2, downs)
    assert open2 and sending2[-1][1] == samples[-1]["t"], (open2, sending2)

    # Writes pooled by the time they were in flight, [answer - latency,
    # answer]: one answered after a snapshot's end that it waited for is
    # the snapshot's.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("%d 1000 0\n" % ((T0 + 30.5) * 1000))      # inside: taking
        f.write("%d 1500000 0\n" % ((T0 + 33.2) * 1000))   # sent at 31.7: taking
        f.write("%d 3000 0\n" % ((T0 + 35.2) * 1000))      # quiet
        f.write("%d 4000 0\n" % ((T0 + 45.0) * 1000))      # node 3 down
        f.write("%d 5000 0\n" % ((T0 + 63.0) * 1000))      # a copy out: sending
        path = f.name
    lat = an.pooled(path, taking, sending, down_ivs)
    os.unlink(path)
    assert sorted(lat.get("taking", [])) == [1.0, 1500.0], lat
    assert lat.get("quiet") == [3.0], lat
    assert lat.get("follower down") == [4.0] and lat.get("sending") == [5.0], lat

    # Memory: node 3 ran two processes; node 1's floor rose 1 MB a minute.
    mem = an.memory(samples)
    assert len(mem[0]) == 1 and len(mem[1]) == 1 and len(mem[2]) == 2, \
        [len(m) for m in mem]
    assert mem[2][0]["peak_mb"] == 200 and mem[2][1]["peak_mb"] == 150, mem[2]
    assert abs(mem[1][0]["floor_slope_mb_per_h"]) < 1e-9, mem[1]
    assert 50 < mem[0][0]["floor_slope_mb_per_h"] < 70, mem[0]
    # The run ends 5 s into a minute, a snapshot out (400 MB): that minute
    # has no floor, the last floor is the last whole minute's.
    cut = [{"t": T0 + i, "nodes": [node(rss_mib=400 if i > 180 else 100)] * 3}
           for i in range(1, 186)]
    m = an.memory(cut)[0][0]
    assert m["floor_last_mb"] == 100 and abs(m["floor_slope_mb_per_h"]) < 1e-9, m
    assert m["peak_mb"] == 400, m

    res = an.analyse(series, samples, downs, None,
                     {"writes": 3000, "ok": 3000, "errors": 0, "commands_per_s": 10})
    w = res["waits"]
    assert w["taking"]["append"][2] == 1 and w["taking"]["loop_stalls"] == 1, w["taking"]
    assert w["quiet"]["append"][2] == 0 and w["quiet"]["loop_stalls"] == 0, w["quiet"]
    # node 1: 299 intervals of 10; node 3: 38 before its stop, 249 after
    assert sum(w[c]["append"][0] for c in an.CLASSES) == 10 * 299 + 5 * (38 + 249), w
    assert w["quiet"]["commit"] == [0, 0.0, 0], w["quiet"]  # absent: nothing added
    md = an.report(["# t"], res)
    assert w["taking"]["heap_release"] == [1, 0.008, 0], w["taking"]
    assert w["quiet"]["heap_release"] == [0, 0.0, 0], w["quiet"]
    assert w["taking"]["pool_wait"][2] == 1 and w["quiet"]["pool_wait"][2] == 0, w
    assert ("| taking | 75 | 3.67 | 1 | 50 | 0.10 | 0 | - | 0 | 1 | 8.00 | 0 "
            "| 50 | 3.01 | 1 | 1 |" in md), md
    assert "| follower down | 12 |" in md and "| sending | 6 |" in md, md
    print("ok")


if __name__ == "__main__":
    main()
