"""A clock step on the leader signs nobody out (issue 13; docs/chaos.md
"Clock steps and sessions").

Three kyufud under libfaketime, each with an offset file of its own (as
chaos/harness/fault_clock.py runs them: FAKETIME_TIMESTAMP_FILE,
DONT_FAKE_MONOTONIC=1, NO_FAKE_STAT=1), with the test knobs
KYUFU_TEST_AUTH_TICK_MS (the leader's expiry sweep every second instead of
every minute) and KYUFU_TEST_SESSION_IDLE_MS (a 10 s idle limit instead of
15 minutes).  Two sessions: A used on every node twice a second, B left
idle.  The leader's wall clock steps +6 h while its sweep runs:

  - the leader logs the step once ("wall clock stepped", step_ms 6 h) and
    its /metrics shows it (kyufu_clock_step_seconds 21600,
    kyufu_clock_steps_total 1; the followers 0 and 0);
  - A works on every node all through, longer than the idle limit and many
    sweeps (before the fix the leader's first sweep after the step closed
    every session: "no such session" on every node);
  - B, idle past the limit, is still closed by that leader: "no such
    session" on every node;
  - the clock set right again: "wall clock agrees again", the gauge 0,
    A still works;
  - a follower restarted on a clock 20 s slow, then set right (a
    step forward, as NTP does after a boot on a slow RTC): its step is
    taken at once because the leader's applied stamps agree with the
    corrected clock ("wall clock step accepted: the leader's clock
    agrees"), where it used to be held until kyufud restarted; the step
    on the leader above, which its followers' clocks do not back, was
    not (a leader's own stamps are no second opinion); nor is a step of
    every node's clock at once (the leader's stamps come from its identity
    clock, which ignores it too).

usage: test_clock_step.py KYUFUD"""
import json
import os
import sys
import time

import grpc

import auth as A
import cluster as C
from ports import free_ports
from test_metrics import scrape

LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
STEP_S = 6 * 3600
# Slow enough to be a step (past the 5 s tolerance), not so slow that the
# test PKI's certificates (notBefore: when the cluster was made) are not
# yet valid on the restarted node.
SLOW_S = 20
IDLE_MS = 10000
TICK_MS = 1000
OK = grpc.StatusCode.OK
UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def write_offset(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(path + ".tmp", path)  # libfaketime never reads half a file


def who(c, i, token):
    """WhoAmI on node i with token: (code, details)."""
    S = c.s["service_pb2"]
    stub = c.s["service_pb2_grpc"].AuthStub(c.plain_channel(i))
    try:
        stub.WhoAmI(S.WhoAmIRequest(), metadata=A.bearer(token), timeout=5)
        return OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def clock_metrics(port):
    """(kyufu_clock_step_seconds, kyufu_clock_steps_total) of a node."""
    fam = scrape(port)
    out = []
    for name in ("kyufu_clock_step_seconds", "kyufu_clock_steps_total"):
        samples = fam[name]["samples"][name]
        assert len(samples) == 1, (name, samples)
        out.append(samples[0][1])
    return tuple(out)


def log_event(c, i, msg):
    """The fields of node i's first log line whose msg is msg, or None."""
    with open(c.log_path(i)) as f:
        for line in f:
            if '"%s"' % msg not in line:
                continue
            try:
                doc = json.loads(line[line.index("{"):])
            except ValueError:
                continue
            if doc.get("msg") == msg:
                return doc
    return None


class Active:
    """Session A, used on every node every call of use(); every answer
    must be OK."""

    def __init__(self, c, token):
        self.c, self.token, self.calls = c, token, 0

    def use(self):
        for i in self.c.ids():
            code, why = who(self.c, i, self.token)
            assert code == OK, ("an active session was refused on node %d "
                                "(%s: %s)\n%s" % (i, code, why,
                                                  self.c.logs()))
            self.calls += 1


def until(active, what, cond, timeout):
    """Use A every 0.5 s until cond() is true (returns its value)."""
    end = time.monotonic() + timeout
    while True:
        active.use()
        v = cond()
        if v:
            return v
        assert time.monotonic() < end, "%s within %d s" % (what, timeout)
        time.sleep(0.5)


def main():
    kyufud = sys.argv[1]
    if not os.path.exists(LIB):
        C.skip("libfaketime missing (scripts/setup installs it)")
    t0 = time.monotonic()
    mports = free_ports(3)
    extra = {i: "[node]\nmetrics_listen = 127.0.0.1:%d\n" % mports[i - 1]
             for i in (1, 2, 3)}
    with C.Cluster(kyufud, extra_conf=extra) as c:
        files = {}
        asan = os.environ.get("ASAN_OPTIONS", "")
        for i in c.ids():
            files[i] = os.path.join(os.path.dirname(c.conf[i]), "faketime")
            write_offset(files[i], "+0")
            c.node_env[i] = {
                "LD_PRELOAD": LIB, "FAKETIME_TIMESTAMP_FILE": files[i],
                "FAKETIME_CACHE_DURATION": "1",
                "DONT_FAKE_MONOTONIC": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1", "NO_FAKE_STAT": "1",
                "ASAN_OPTIONS": (asan + ":" if asan else "") +
                "verify_asan_link_order=0",
                "KYUFU_TEST_AUTH_TICK_MS": str(TICK_MS),
                "KYUFU_TEST_SESSION_IDLE_MS": str(IDLE_MS)}
        c.start_all()
        leader = c.wait_leader(15)
        for i in c.ids():
            knob = log_event(c, i, "test knob in effect")
            assert knob is not None, "node %d: no test knob line" % i
        # A: the observer (signed in last, so fresh); B: the ID
        # administrator who created it, idle from here on.
        active = Active(c, c.observer())
        b = c.token(C.ADMIN)
        active.use()
        for i in c.ids():
            code, why = who(c, i, b)
            assert code == OK, ("B refused before the step on node %d (%s:"
                                " %s): setup slower than the %d ms idle "
                                "limit?" % (i, code, why, IDLE_MS))
        b_used = time.monotonic()
        print("cluster up, leader %d, sessions A and B open: %.1f s"
              % (leader, time.monotonic() - t0))

        # The leader's clock +6 h, while its sweep runs every second.
        write_offset(files[leader], "+%d" % STEP_S)
        step = until(active, "the leader's step logged", lambda: log_event(
            c, leader, "wall clock stepped: ignored for sessions and "
            "lockouts"), 15)
        assert abs(step["step_ms"] - STEP_S * 1000) < 10000, step
        for i in c.ids():
            gap, steps = clock_metrics(mports[i - 1])
            if i == leader:
                assert steps == 1 and abs(gap - STEP_S) < 10, (gap, steps)
            else:
                assert steps == 0 and gap == 0, (i, gap, steps)
        stepped = time.monotonic()
        print("leader %d stepped +%d s: logged step_ms %d (%.1f s after "
              "the write)" % (leader, STEP_S, step["step_ms"],
                              stepped - b_used))

        # A keeps working everywhere for longer than the idle limit and
        # many sweeps; B, idle, is closed by the stepped leader.
        def b_closed():
            for i in c.ids():
                code, why = who(c, i, b)
                assert code == UNAUTH, ("B past its idle limit answered %s "
                                        "on node %d" % (code, i))
                if "no such session" not in why:
                    return False  # refused as idle, not yet closed
            return True
        # B is not called before it is past the limit: a call that passes
        # is a use, and would keep it open.
        hold_s = IDLE_MS / 1000 + 3 * TICK_MS / 1000
        until(active, "B past its idle limit",
              lambda: time.monotonic() - b_used > IDLE_MS / 1000 + 1,
              IDLE_MS / 1000 + 5)
        until(active, "B closed as idle on every node", b_closed, 20)
        closed = time.monotonic()
        assert closed - b_used >= IDLE_MS / 1000, \
            "B closed %.1f s after its last use" % (closed - b_used)
        until(active, "A used past the idle limit after the step",
              lambda: time.monotonic() - stepped >= hold_s, hold_s + 5)
        print("A answered on every node %d times, %.1f s after the step; "
              "B closed %.1f s after its last use (limit %.0f s)"
              % (active.calls, time.monotonic() - stepped, closed - b_used,
                 IDLE_MS / 1000))

        # Set right again: followed again, A still works.
        write_offset(files[leader], "+0")
        until(active, "the leader's clock agreeing again", lambda: log_event(
            c, leader, "wall clock agrees again"), 15)
        active.use()
        assert clock_metrics(mports[leader - 1]) == (0, 1)
        assert log_event(c, leader, "wall clock step back accepted") is None
        for i in c.ids():
            if i != leader:
                assert log_event(c, i, "wall clock stepped: ignored for "
                                 "sessions and lockouts") is None, i
        print("a +%d s step on the leader signed nobody out; an idle "
              "session still expired (%.1f s)"
              % (STEP_S, time.monotonic() - t0))

        # Every node's clock +1 h at once (one bad time source): the
        # leader's identity clock ignores it too, so its stamps agree with
        # the followers' held time, not with their stepped wall clocks: no
        # node takes it (were any header stamped from the raw wall clock,
        # the followers would take the leader's word for it).
        for i in c.ids():
            write_offset(files[i], "+3600")
        until(active, "every node's step logged", lambda: all(
            clock_metrics(mports[i - 1])[0] > 3000 for i in c.ids()), 15)
        common = time.monotonic()
        until(active, "the common step held a while",
              lambda: time.monotonic() - common > 5, 10)
        for i in c.ids():
            assert log_event(c, i, "wall clock step accepted: the leader's "
                             "clock agrees") is None, (
                "node %d took a step every node made\n%s" % (i, c.logs()))
            assert clock_metrics(mports[i - 1])[0] > 3000, i
        for i in c.ids():
            write_offset(files[i], "+0")
        until(active, "every clock followed again", lambda: all(
            clock_metrics(mports[i - 1])[0] == 0 for i in c.ids()), 15)
        print("a +3600 s step of every clock at once was taken by none "
              "(%.1f s)" % (time.monotonic() - t0))

        # A follower that starts on a clock SLOW_S slow anchors on it
        # (there is no other time at start).  NTP then sets it right, a
        # step forward: the leader's applied stamps agree with the
        # corrected wall clock and not with the held time, so the step is
        # taken at once (before: held until kyufud restarted).
        f = next(i for i in c.ids() if i != leader)
        while time.monotonic() - t0 < SLOW_S + 5:
            active.use()
            time.sleep(0.5)
        c.kill(f)
        c.wait_exit(f, 10)
        write_offset(files[f], "-%d" % SLOW_S)
        c.start(f)
        end = time.monotonic() + 30
        st = None
        while True:
            try:
                st = c.status(f)
                if (st is not None and st.leader_id == leader
                        and st.applied_index > 0):
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < end, ("node %d back within 30 s "
                                            "(status %s)\n%s"
                                            % (f, st, c.logs()))
            time.sleep(0.5)
        time.sleep(3)  # a few of the leader's stamped heartbeats applied
        assert log_event(c, f, "wall clock step accepted: the leader's "
                         "clock agrees") is None
        write_offset(files[f], "+0")
        end = time.monotonic() + 15
        while True:
            took = log_event(c, f, "wall clock step accepted: the leader's "
                             "clock agrees")
            if took is not None:
                break
            assert time.monotonic() < end, (
                "node %d did not take the corrected clock within 15 s\n%s"
                % (f, c.logs()))
            time.sleep(0.5)
        assert abs(took["step_ms"] - SLOW_S * 1000) < 3000, took
        assert abs(took["leader_minus_wall_ms"]) < 5000, took
        assert clock_metrics(mports[f - 1])[0] == 0
        active.use()
        print("ok: follower %d, started %d s slow, took NTP's correction at "
              "once (the leader's clock %d ms off its wall clock) (%.1f s)"
              % (f, SLOW_S, took["leader_minus_wall_ms"],
                 time.monotonic() - t0))


if __name__ == "__main__":
    main()
