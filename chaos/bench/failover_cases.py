"""The failover part of the side-by-side benchmark (side_by_side.py,
docs/failover.md): trials of one fault of a system's leader, seen by a
probe (one write in flight, the client's retry rule) that runs for the whole
failover part, one per system.

Cases (how):
  kill      SIGKILL of the leader (crash: its connections close at once)
  stop      SIGSTOP of the leader (silent leader: connections stay open)
  term      SIGTERM of the leader (planned: the server hands leadership
            over before it exits; kyufud and etcd 3.4 both do)
  transfer  an operator's transfer (kyufu: `kyufuctl cluster
            transfer-leadership`; etcd: not measured, needs etcdctl)

Figures, from the probe's file (one line per answer: unix_ms latency_us
status index endpoint):
  kill, stop     signal -> acknowledgement of the first write SENT after it
                 by another node (a write in flight at the signal may be
                 acknowledged by a follower that applied the old leader's
                 last commit);
  term, transfer the write gap: the longest interval between two
                 consecutive acknowledged writes from the last one before
                 the signal (or the transfer command's start) to the first
                 one after the hand-over's end (the old leader's exit, or
                 the transfer command's return), and at least
                 HANDOVER_WINDOW_MS after the start; the same statistic
                 over a window of the same length just before the signal
                 is kept as the trial's "baseline" (what the loaded
                 machine costs a writer without any hand-over).

Trials are interleaved: trial t of every case of every system runs before
trial t + 1 of any, so machine noise hits each alike.  After each trial the
killed or stopped (term) node is restarted, the SIGSTOPped one resumed.
A benchmark tool: reads the wall clock; never in a test suite."""
import os
import signal
import statistics
import subprocess
import sys
import time

import procs  # chaos/bench/procs.py

CASES = ("kill", "stop", "term", "transfer")
SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "term": signal.SIGTERM}
# The shortest window the write gap is taken over (a hand-over ends in
# ~0.1 s, but the writer's answers must show it on both sides).
HANDOVER_WINDOW_MS = 1000
# A signalled node that does not exit within this after SIGTERM: the trial fails.
TERM_EXIT_S = 30


def log(msg):
    print("side-by-side: " + msg, file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile (None for no values)."""
    v = sorted(values)
    if not v:
        return None
    rank = max(1, -(-len(v) * p // 100))
    return v[rank - 1]


def read_probe(path):
    """(answered unix ms, first sent unix ms, status, endpoint) per line."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 5:
                    rows.append((int(p[0]), int(p[0]) - int(p[1]) / 1000.0,
                                 int(p[2]), int(p[4])))
    except OSError:
        pass
    return rows


def max_gap(acks, t0, t1):
    """Longest interval between consecutive acknowledgement times in acks
    (sorted), over the span from the last one at or before t0 to the first
    one at or after t1; None if the span is not covered on both sides."""
    before = [x for x in acks if x <= t0]
    after = [x for x in acks if x >= t1]
    if not before or not after:
        return None
    span = [x for x in acks if before[-1] <= x <= after[0]]
    return max(b - a for a, b in zip(span, span[1:])) if len(span) > 1 else 0


def supported(system_name, how):
    return not (how == "transfer" and system_name == "etcd")


class Probe:
    """One system's probe process and its answers file."""

    def __init__(self, d, system, cmd):
        self.system = system
        self.path = os.path.join(d, "probe-%s.txt" % system.name)
        self.err = open(self.path + ".err", "w")
        self.p = subprocess.Popen(cmd(system, self.path), stdout=subprocess.DEVNULL,
                                  stderr=self.err)

    def rows(self):
        return read_probe(self.path)

    def wait_writing(self, n=3, timeout_s=30):
        """Until n more answers arrive (the probe is writing)."""
        seen = len(self.rows())
        end = time.monotonic() + timeout_s
        while len(self.rows()) < seen + n:
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError("%s probe makes no progress" % self.system.name)
            time.sleep(0.05)

    def close(self):
        procs.stop(self.p, 30)
        self.err.close()


class Case:
    """The trials of one fault (how) on one system."""

    def __init__(self, a, system, probe, how, transfer_cmd=None):
        self.a, self.s, self.probe, self.how = a, system, probe, how
        self.transfer_cmd = transfer_cmd
        self.key = "%s %s" % (system.name, how)
        self.ms, self.trials, self.stopped, self.error = [], [], None, None

    def done(self):
        return self.stopped is not None or self.error is not None

    def trial(self, t):
        try:
            self._trial(t)
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            # One case failing leaves the others' figures.
            log("failover %s: %s" % (self.key, e))
            self.error = str(e)

    def _trial(self, t):
        s = self.s
        dead = [q.name for q in s.procs if q.p is None or q.p.poll() is not None]
        if dead:
            # A restarted node that exited (its log says why): the trials so
            # far stand; the case stops here, reported.
            self.stopped = "before trial %d: %s not running (see its log)" % (
                t + 1, ", ".join(dead))
            log("failover %s stopped %s" % (self.key, self.stopped))
            return
        leader = s.leader(60)
        self.probe.wait_writing()
        p = s.procs[leader]
        t_ms = time.time() * 1000.0
        rec = {"unix_ms": round(t_ms, 1), "leader": p.name}
        if self.how == "transfer":
            r = subprocess.run(self.transfer_cmd, capture_output=True, text=True, timeout=60)
            rec["transfer_ms"] = round(time.time() * 1000.0 - t_ms, 1)
            if r.returncode != 0:
                raise RuntimeError("transfer trial %d: %s" % (t + 1, (r.stderr or r.stdout)[-500:]))
        else:
            os.kill(p.p.pid, SIGNALS[self.how])
        if self.how == "term":
            rec["exit"] = p.p.wait(TERM_EXIT_S)
            rec["exit_ms"] = round(time.time() * 1000.0 - t_ms, 1)
        if self.how in ("kill", "stop"):
            fig = self._first_ack_after(t_ms, leader)
        else:
            fig = self._gap(t_ms, rec, rec.get("exit_ms", rec.get("transfer_ms")))
        if self.how in ("term", "transfer"):
            new = s.leader(30)
            rec["new_leader"] = s.procs[new].name
            if new == leader:
                raise RuntimeError("%s trial %d: %s still leads" % (self.how, t + 1, p.name))
        self.ms.append(round(fig, 1))
        self.trials.append(rec)
        log("failover %s trial %d: leader %s, %s %.0f ms%s" % (
            self.key, t + 1, p.name,
            "write gap" if self.how in ("term", "transfer") else "first write sent after it acked",
            fig, " (baseline %s ms)" % rec.get("baseline_ms") if "baseline_ms" in rec else ""))
        if self.how in ("kill", "term"):
            if self.how == "kill":
                p.p.wait(10)
            p.start()
        elif self.how == "stop":
            os.kill(p.p.pid, signal.SIGCONT)

    def _first_ack_after(self, t_ms, leader):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            for unix_ms, sent_ms, status, ep in self.probe.rows():
                if sent_ms >= t_ms and status == 0 and ep != leader:
                    return unix_ms - t_ms
            time.sleep(0.01)
        raise RuntimeError("%s: no write acknowledged in 60 s" % self.key)

    def _gap(self, t_ms, rec, ended_ms):
        """The write gap over [t_ms, t_ms + window]; window: ended_ms (the
        hand-over's end, ms after t_ms), at least HANDOVER_WINDOW_MS."""
        window = max(HANDOVER_WINDOW_MS, ended_ms)
        rec["window_ms"] = round(window, 1)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            acks = [r[0] for r in self.probe.rows() if r[2] == 0]
            g = max_gap(acks, t_ms, t_ms + window)
            if g is not None:
                rec["baseline_ms"] = max_gap(acks, t_ms - window, t_ms)
                rec["writes_in_window"] = sum(1 for x in acks if t_ms <= x <= t_ms + window)
                return g
            time.sleep(0.05)
        raise RuntimeError("%s: no write acknowledged after the hand-over within 60 s"
                           % self.key)

    def result(self):
        if not self.ms:
            return {"error": self.error or "no trial ran (%s)" % self.stopped}
        ms = sorted(self.ms)
        out = {"trials": len(ms), "ms": self.ms, "median": statistics.median(ms),
               "p90": pct(ms, 90), "max": ms[-1], "kills": self.trials,
               "stopped": self.stopped, "error": self.error}
        base = [r["baseline_ms"] for r in self.trials if r.get("baseline_ms") is not None]
        if base:
            out["baseline"] = {"median": statistics.median(base), "p90": pct(base, 90),
                               "max": max(base)}
        return out


def run_cases(a, d, systems, hows):
    """systems: [(System, probe_cmd(system, path), transfer_cmd or None)].
    Returns {"<system> <how>": result}."""
    probes = [Probe(d, s, cmd) for s, cmd, _ in systems]
    cases = [Case(a, s, pr, how, tcmd) for how in hows
             for (s, _, tcmd), pr in zip(systems, probes) if supported(s.name, how)]
    try:
        for t in range(a.trials):
            for c in cases:
                if not c.done():
                    time.sleep(a.settle_s)
                    c.trial(t)
    finally:
        for pr in probes:
            pr.close()
    return {c.key: c.result() for c in cases}
