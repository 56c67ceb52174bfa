"""Fault action "clock" (kinds clock-jump-fwd, clock-jump-back; docs/chaos.md
"Faults: power loss and clock jumps"): one node's wall clock steps forward
or back by minutes to hours, as an NTP step does, and steps back to the
true time at healing (so every fault steps both ways).

When a plan holds this action, setup() starts every kyufud under
libfaketime (Debian libfaketime, LD_PRELOAD) reading its offset from a
file of its own (FAKETIME_TIMESTAMP_FILE, "+0" at first, re-read within
2 CACHE_S seconds); only CLOCK_REALTIME moves (DONT_FAKE_MONOTONIC=1: a real
clock step leaves CLOCK_MONOTONIC alone, and so libuv's timers, Raft's
election and heartbeat timers), file times are not faked (NO_FAKE_STAT).
inject() rewrites the node's file, waits until the offset is in effect and
checks that it is: it sends the node SIGHUP (a TLS reload, which logs a
line) and compares that line's time with the true one (a harness error
if they differ by more than SEEN_SLACK_S from the step); heal() writes
"+0" back for every node.

The step: the fault's kind says the sign; its size is drawn from the
plan's pick (the part of it the target choice does not use), log-uniform
between STEP_MIN_S and STEP_MAX_S, so a replay steps by the same amount."""
import datetime
import json
import math
import os
import signal
import time

from harness import patience

ACTION = "clock"
LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
CACHE_S = 1          # FAKETIME_CACHE_DURATION (seconds)
STEP_MIN_S = 120     # 2 minutes
STEP_MAX_S = 6 * 3600
LOG_WAIT_S = 5.0     # a SIGHUP's log line (scaled by the load)
SEEN_SLACK_S = 5     # the log's clock vs the step (scheduling), plus
                     # however long the line took to appear
SIGN = {"clock-jump-fwd": +1, "clock-jump-back": -1}

_files = {}   # node: its offset file
_on = False   # the plan steps clocks (setup ran): joining nodes too


def missing(kyufud):
    del kyufud
    if not os.path.exists(LIB):
        return "libfaketime is not installed (Debian libfaketime): %s" % LIB
    return None


def step_s(kind, pick, n):
    """The signed step of a fault of this kind whose pick chose among n
    candidate nodes."""
    frac = pick * n - math.floor(pick * n)  # uniform in [0, 1) again
    size = STEP_MIN_S * (STEP_MAX_S / STEP_MIN_S) ** frac
    return SIGN[kind] * int(size)


def _write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(path + ".tmp", path)  # libfaketime never reads half a file


def _under_faketime(c, i):
    """Node i (not started yet) runs under libfaketime, at the true time
    for now: its offset file in its folder, beside its kyufud.conf."""
    path = os.path.join(os.path.dirname(c.conf[i]), "faketime")
    _write(path, "+0")
    _files[i] = path
    c.node_env.setdefault(i, {}).update({
        "LD_PRELOAD": LIB, "FAKETIME_TIMESTAMP_FILE": path,
        "FAKETIME_CACHE_DURATION": str(CACHE_S),
        "DONT_FAKE_MONOTONIC": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "NO_FAKE_STAT": "1"})


def setup(c, kinds, actions):
    global _on
    if ACTION not in actions:
        return
    _on = True
    for i in c.ids():
        _under_faketime(c, i)


def join(c, i):
    """A node added by the harness (replace-node) runs under libfaketime
    too, if the plan steps clocks: a clock fault may pick it."""
    if _on:
        _under_faketime(c, i)


def _log_times(path, offset):
    """[(wall seconds of the line, line)] of the log lines written after
    offset."""
    with open(path) as f:
        f.seek(offset)
        text = f.read()
    out = []
    for line in text.splitlines():
        try:
            stamp = json.loads(line[line.index("{"):])["time"]
        except (ValueError, KeyError):
            continue
        t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        out.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(),
                    line))
    return out


def seen_step(inj, node):
    """Makes the node log a line now (SIGHUP: it reloads its TLS files,
    docs/operations.md) and returns the line's clock minus the true one
    at the signal (seconds), the line, and the seconds it took to appear
    (a loaded or busy node handles the signal late: its line is that much
    later); (None, None, None) when no line came within LOG_WAIT_S
    (scaled by the load, harness.patience)."""
    path = inj.c.log_path(node)
    off = os.path.getsize(path)
    inj.c.kill(node, signal.SIGHUP)
    t_true = time.time()
    end = time.monotonic() + patience.scaled(LOG_WAIT_S)
    while time.monotonic() < end:
        lines = _log_times(path, off)
        if lines:
            return (round(lines[0][0] - t_true), lines[0][1],
                    time.time() - t_true)
        time.sleep(0.05)
    return None, None, None


def inject(inj, node):
    f = inj.fault
    s = step_s(f["kind"], f["pick"], inj.c.n)
    _write(_files[node], "%+d" % s)
    # libfaketime re-reads the file once more than CACHE_S whole seconds
    # have passed since its last read: up to 2 CACHE_S (measured: 1.9-2.0
    # s with CACHE_S 1).  In effect from here:
    time.sleep(2 * CACHE_S + 0.5)
    seen, line, late = seen_step(inj, node)
    print("chaos: %s node %d: wall clock %+d s, its log says %s: %s" % (
        f["kind"], node, s, seen, (line or "")[:200]), flush=True)
    if seen is None or not \
            -SEEN_SLACK_S <= seen - s <= SEEN_SLACK_S + late:
        inj.errors.append("clock step %+d s on node %d not in effect: its "
                          "log is %s s off" % (s, node, seen))


def heal(inj):
    """Every clock back to the true time, and in effect before the next
    fault or the final read (a clock left ahead would refuse the
    harness's sessions as idle)."""
    del inj
    stepped = False
    for path in _files.values():
        with open(path) as f:
            if f.read().strip() == "+0":
                continue
        _write(path, "+0")
        stepped = True
    if stepped:
        time.sleep(2 * CACHE_S + 0.5)


def teardown(c):
    global _on
    del c
    _files.clear()
    _on = False
