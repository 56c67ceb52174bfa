"""The leader hint, end to end: libkyufu with its real gRPC transport against
three kyufud.

  - every node's answer carries the trailer kyufu-leader (a stock grpcio
    client sees it with call.trailing_metadata(), OK or error), naming the
    leader's api_address, also on a follower's forwarded answer;
  - one libkyufu client (kyufu-leader-probe) whose first endpoint is a
    follower: its first call is forwarded (the follower's
    NodeStatus.forwarded_calls grows by one), every later call goes straight
    to the leader (answered by the leader's endpoint in one attempt, no
    node forwards anything more);
  - after kill -9 of the leader the same client finds the new leader and
    again sends its calls straight there;
  - kyufuctl --idempotency-key: the same write run twice (a script
    repeating a write whose outcome it does not know) is applied once.

usage: test_leader_hint.py KYUFUD KYUFU-LEADER-PROBE KYUFUCTL"""
import json
import os
import signal
import subprocess
import sys

import grpc

import cluster as C
import workload as W


def forwarded(c, nodes):
    out = {}
    for i in nodes:
        st = c.status(i, timeout=5.0)
        assert st is not None, "node %d did not answer Status" % i
        out[i] = st.forwarded_calls
    return out


class Probe:
    def __init__(self, exe, conf, env):
        self.p = subprocess.Popen([exe, conf], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)

    def do(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, "probe exited (%s)" % self.p.poll()
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=30) == 0


def main():
    kyufud, probe_exe, kyufuctl = sys.argv[1], sys.argv[2], sys.argv[3]
    c = C.Cluster(kyufud)
    probe = None
    try:
        c.start_all()
        leader = c.wait_leader(15)
        W.Ledger(c).setup(budget=1000)
        S = c.s["service_pb2"]
        followers = [i for i in (1, 2, 3) if i != leader]
        f = followers[0]

        # A stock client sees the trailer on a leader's answer, on a
        # follower's forwarded answer, and on an error.
        for node in (leader, f):
            _, call = c.ledger(node).GetProgram.with_call(
                S.GetProgramRequest(code="P2026"), timeout=10)
            md = dict(call.trailing_metadata())
            assert md.get("kyufu-leader") == c.api[leader], (node, md)
        try:
            c.ledger(f).GetProgram(S.GetProgramRequest(code="NOPE"),
                                   timeout=10)
            raise AssertionError("GetProgram NOPE should fail")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()
            md = dict(e.trailing_metadata())
            assert md.get("kyufu-leader") == c.api[leader], md

        # The client's endpoints: the follower first, so its first call
        # lands there.
        order = [f] + [i for i in (1, 2, 3) if i != f]
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\nactor = approver1\ndeadline_ms = 30000\n"
                     % (",".join(c.api[i] for i in order), c.ca,
                        c.client_cert, c.client_key))
        probe = Probe(probe_exe, conf, c.ctl_env("approver1"))

        before = forwarded(c, (1, 2, 3))
        r = probe.do("write")
        assert r["rv"] == 0 and r["status"] == 0, r
        assert order[r["endpoint"]] == f, r
        after = forwarded(c, (1, 2, 3))
        assert after[f] == before[f] + 1, (before, after)

        for cmd in ["write", "read"] * 5:
            r = probe.do(cmd)
            assert r["rv"] == 0 and r["status"] == 0, (cmd, r)
            assert order[r["endpoint"]] == leader and r["attempts"] == 1, \
                (cmd, r, leader)
        again = forwarded(c, (1, 2, 3))
        assert again == after, ("calls were forwarded after the client "
                                "learnt the leader", after, again)
        print("leader hint: 1 forwarded call, then 10 direct to node %d"
              % leader)

        # kill -9 of the leader: the same client follows the new leader.
        c.kill(leader, signal.SIGKILL)
        c.wait_exit(leader, 5)
        r = probe.do("write")
        assert r["rv"] == 0 and r["status"] == 0, r
        new = c.wait_leader(15, exclude=(leader,))
        assert new != leader
        live = [i for i in (1, 2, 3) if i != leader]
        # The answer above named the leader it came through; if an election
        # was still settling, one more call may be redirected once.
        r = probe.do("write")
        assert r["rv"] == 0 and r["status"] == 0, r
        before = forwarded(c, live)
        for cmd in ["write", "read"] * 5:
            r = probe.do(cmd)
            assert r["rv"] == 0 and r["status"] == 0, (cmd, r)
            assert order[r["endpoint"]] == new and r["attempts"] == 1, \
                (cmd, r, new)
        assert forwarded(c, live) == before
        print("after kill -9 of node %d: 10 calls direct to node %d"
              % (leader, new))
        probe.close()
        probe = None

        # The same write twice with one key: applied once, both runs OK.
        budget = c.ledger(new).GetProgram(S.GetProgramRequest(code="P2026"),
                                          timeout=10).budget
        for _ in range(2):
            subprocess.run([kyufuctl, "--config", conf, "--deadline-ms",
                            "20000", "--idempotency-key", "it-rerun:7",
                            "program", "adjust-budget", "--code", "P2026",
                            "--delta", "5", "--reason", "rerun"],
                           check=True, stdout=subprocess.DEVNULL,
                           env=c.ctl_env("approver1"))
        after = c.ledger(new).GetProgram(S.GetProgramRequest(code="P2026"),
                                         timeout=10).budget
        assert after == budget + 5, (budget, after)
        c.stop_clean()
    except BaseException:
        print(c.logs())
        raise
    finally:
        if probe is not None:
            probe.p.kill()
            probe.p.wait()
        c.close()


if __name__ == "__main__":
    main()
