"""A rolling upgrade that adds a command type (docs/operations.md
"Upgrades"): three kyufud nodes (command set N) are replaced one by one,
on their own data folders, by kyufud-next (N + 1: it knows Annotate).
While any voter runs the old build the new command is refused before it
is proposed (FAILED_PRECONDITION naming the versions, from an upgraded
leader; UNIMPLEMENTED from an old node, which has no such RPC); once the
last voter runs the new build the leader records it, the cluster version
rises and the command is applied.  Digests agree on every node after every
step.  Then the old build, started on an upgraded node's data, refuses to
start (exit 4, "upgrade kyufud") and changes nothing.  (An old replica
meeting a new entry in its log stops the same way: tests/sim/test_fsm.c
and tests/storage/test_versions.c.)

usage: test_upgrade.py KYUFUD KYUFUD_NEXT"""
import signal
import sys
import time

import grpc

import cluster as C
import workload as W

EXIT_REFUSED_DATA = 4


class Mixed(C.Cluster):
    """A cluster whose nodes each run the binary in self.bins."""

    def start(self, i):
        self.kyufud = self.bins[i]
        super().start(i)


def wait_for(what, fn, timeout, c):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("%s: not within %.0f s (last %r)\n%s"
                         % (what, timeout, last, c.logs()))


def recorded(c, node, want):
    """The voters' versions node's state holds equal `want` {id: v}."""
    st = c.status(node)
    if st is None:
        return None
    got = {v.node_id: v.command_version for v in st.voter_versions}
    return st if got == want else None


def annotate(c, node, w, text):
    """(code, details) of an Annotate sent to that node only."""
    S, L = c.s["service_pb2"], c.s["ledger_pb2"]
    w.seq += 1
    req = S.AnnotateRequest(header=w.header(w.seq),
                            command=L.Annotate(text=text))
    try:
        c.ledger(node).Annotate(req, timeout=5)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def main():
    old, new = sys.argv[1], sys.argv[2]
    c = Mixed(old, election_ms=1000, heartbeat_ms=100)
    c.bins = {1: old, 2: old, 3: old}
    try:
        t0 = time.monotonic()
        c.start_all()
        c.wait_leader(20)
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        led = W.Ledger(c)
        led.setup()
        w = C.Writer(c, "clerk1", "upgrade")
        # The leader records the three old versions; cluster version N
        # (kyufud's command set; kyufud-next's is N + 1).
        N = wait_for("status", lambda: c.status(1), 10, c).command_version
        assert N >= 1, N
        st = wait_for("old versions recorded",
                      lambda: recorded(c, 1, {1: N, 2: N, 3: N}), 10, c)
        assert st.command_version == N and st.cluster_version == N, st
        code, _ = annotate(c, c.wait_leader(10), w, "before")
        assert code == grpc.StatusCode.UNIMPLEMENTED, code

        want = {1: N, 2: N, 3: N}
        for i in (1, 2, 3):
            c.kill(i, signal.SIGTERM)
            rc = c.wait_exit(i, 20)
            assert rc == 0, "node %d exited %d" % (i, rc)
            c.bins[i] = new
            c.start(i)
            c.wait_leader(15)
            want[i] = N + 1
            wait_for("node %d's new version recorded" % i,
                     lambda: recorded(c, i, want), 15, c)
            W.must(w.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-U%d" % i))), "write, step %d" % i)
            if i < 3:
                # An upgraded leader refuses it before proposing.
                leader = c.wait_leader(10)
                if leader != i:
                    r = c.cluster(leader).TransferLeadership(
                        S.TransferLeadershipRequest(target_id=i), timeout=15)
                    assert r.new_leader_id == i, r
                    assert c.wait_leader(10) == i
                code, details = annotate(c, i, w, "during, step %d" % i)
                assert code == grpc.StatusCode.FAILED_PRECONDITION, \
                    (code, details)
                assert ("needs cluster version %d" % (N + 1) in details and
                        "runs version %d" % N in details), details
                # An old node has no such RPC.
                code, _ = annotate(c, 3, w, "during, old node")
                assert code == grpc.StatusCode.UNIMPLEMENTED, code
                for n in (1, 2, 3):
                    assert c.status(n).cluster_version == N
            c.wait_converged(20)
            print("step %d: node %d runs kyufud-next, digests agree (%.1f s)"
                  % (i, i, time.monotonic() - t0))

        # Every voter runs N + 1: the cluster version rises everywhere.
        for n in (1, 2, 3):
            st = wait_for("cluster version N + 1 on node %d" % n,
                          lambda: (lambda s: s if s is not None and
                                   s.cluster_version == N + 1 else None)(
                                       c.status(n)), 10, c)
            assert st.command_version == N + 1, st
        leader = c.wait_leader(10)
        code, details = annotate(c, leader, w, "after the upgrade")
        assert code == grpc.StatusCode.OK, (code, details)
        follower = [n for n in (1, 2, 3) if n != leader][0]
        code, details = annotate(c, follower, w, "forwarded")
        assert code == grpc.StatusCode.OK, (code, details)
        c.wait_converged(20)
        page = c.ledger(follower).ListAudit(S.ListRequest(page_size=1000),
                                            timeout=5)
        notes = [r for r in page.records if r.command == "Annotate"]
        oks = [r for r in notes if r.outcome == 0]
        assert len(oks) == 2, notes
        print("after: Annotate applied on every node (%.1f s)"
              % (time.monotonic() - t0))

        # A downgrade: the old build on an upgraded node's data refuses
        # to start (and writes nothing): exit 4, not restarted by systemd.
        victim = follower
        before = c.wait_converged(20)
        c.kill(victim, signal.SIGTERM)
        assert c.wait_exit(victim, 20) == 0
        c.bins[victim] = old
        c.start(victim)
        rc = c.wait_exit(victim, 20)
        log = open(c.log_path(victim)).read()
        assert rc == EXIT_REFUSED_DATA, (rc, log[-3000:])
        assert "upgrade kyufud" in log and "cannot open the store" in log, \
            log[-3000:]
        c.bins[victim] = new
        c.start(victim)
        c.wait_leader(15)
        after = c.wait_converged(20)
        assert after.applied_index >= before.applied_index
        c.stop_clean()
        print("upgrade: ok (%.1f s)" % (time.monotonic() - t0))
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
