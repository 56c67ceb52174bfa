#!/usr/bin/python3
"""The harness's waits under load and its AddNode retry (docs/chaos.md
"Waits under load"), without a cluster (< 1 s):

  1. patience.factor() is 1 on an idle machine, the load per CPU above
     that, never more than FACTOR_MAX (a cluster that never recovers still
     fails the run), and 1 when the load average cannot be read.
  2. fault_corrupt.add_node calls AddNode again while the leader answers
     DEADLINE_EXCEEDED "did not catch up in time" (the answer tells an
     operator to), ADD_TRIES calls in all, then raises the last error (a
     node that never catches up fails the run); an `already a voter`
     answer to a later call is success (the call before completed after
     our deadline), to the first call it is an error; UNAVAILABLE
     ("leadership lost before the command committed ...; retry") is
     retried within the busy window, and `already a voter` after it is
     success; any other error is raised at once, without another call."""
import os
import sys

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import fault_corrupt, patience  # noqa: E402

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def with_load(load, cpus, fn):
    real_load, real_cpus = os.getloadavg, os.cpu_count
    os.getloadavg = load if callable(load) else (lambda: (load, 0, 0))
    os.cpu_count = lambda: cpus
    try:
        return fn()
    finally:
        os.getloadavg, os.cpu_count = real_load, real_cpus


def test_factor():
    check(with_load(0.3, 2, patience.factor) == 1.0, "idle: factor 1")
    check(with_load(6.0, 2, patience.factor) == 3.0, "load 6 on 2: 3")
    check(with_load(30.0, 2, patience.factor) == patience.FACTOR_MAX,
          "load 30 on 2: capped")
    check(with_load(6.0, 2, lambda: patience.scaled(30)) == 90.0,
          "scaled(30) at load 6 on 2: 90 s")

    def no_load():
        raise OSError("no load average")
    check(with_load(no_load, 2, patience.factor) == 1.0,
          "no load average: factor 1")


class Err(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


LATE = Err(grpc.StatusCode.DEADLINE_EXCEEDED,
           "node 4 did not catch up in time: it stays a standby (not in "
           "the quorum); run add-node again to resume, or remove-node it")
VOTER = Err(grpc.StatusCode.ALREADY_EXISTS, "node 4 is already a voter")
OTHER = Err(grpc.StatusCode.INVALID_ARGUMENT, "bad address")
LOST = Err(grpc.StatusCode.UNAVAILABLE,
           "membership change of node 4: leadership lost before the command "
           "committed (it may or may not have been made: see cluster "
           "status); no leader known yet, retry")


class FakeCluster:
    """The leader (node 1) answers AddNode from a script: an Err to
    raise or a value to return, one per call."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0
        self.s = {"service_pb2": type("S", (), {
            "AddNodeRequest": staticmethod(lambda **kw: kw)})}
        self.raft = {4: "127.77.0.4:7001"}
        self.api = {4: "127.77.0.4:8001"}

    def wait_leader(self, timeout, exclude=(), majority=False):
        return 1

    def cluster(self, lead):
        return self

    def AddNode(self, req, timeout):
        self.calls += 1
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a


def add(answers):
    c = FakeCluster(answers)
    try:
        got = fault_corrupt.add_node(c, 4)
    except grpc.RpcError as e:
        return c.calls, None, e
    return c.calls, got, None


def test_add_node():
    n = fault_corrupt.ADD_TRIES
    check(add(["ok"]) == (1, "ok", None), "first call succeeds: one call")
    check(add([LATE, "ok"]) == (2, "ok", None),
          "not caught up, then caught up: two calls")
    calls, _, e = add([LATE] * n + ["never reached"])
    check(calls == n and e is LATE,
          "never caught up: %d calls, the last error raised" % n)
    calls, got, e = add([LATE, VOTER])
    check(calls == 2 and e is None, "already a voter on the 2nd call: done")
    calls, _, e = add([VOTER])
    check(calls == 1 and e is VOTER, "already a voter on the 1st: an error")
    calls, _, e = add([OTHER, "never reached"])
    check(calls == 1 and e is OTHER, "another error: raised, no retry")
    check(add([LOST, "ok"]) == (2, "ok", None),
          "leadership lost, then done: two calls")
    calls, got, e = add([LOST, VOTER])
    check(calls == 2 and e is None,
          "leadership lost, then already a voter: done")
    busy_s = fault_corrupt.BUSY_S
    fault_corrupt.BUSY_S = 0  # the window is over at once
    try:
        calls, _, e = add([LOST, "never reached"])
    finally:
        fault_corrupt.BUSY_S = busy_s
    check(calls == 1 and e is LOST,
          "leadership lost past the busy window: raised")


test_factor()
test_add_node()
print("%s: %d failures" % (os.path.basename(__file__), len(FAILS)))
sys.exit(1 if FAILS else 0)
