"""Whole-store reads in bulk must not stop a node (issue 15 item 7).

Before: 200 concurrent Cluster.Status(with_digest=true) calls to a node
each opened an LMDB read transaction when queued; the 64-slot reader table
filled, MDB_READERS_FULL was taken for a fatal storage error, and the stop
ran inside the connection's receive callback and aborted (SIGABRT).  Sent to
each node, all three died within 100 ms.

Now, against a real three-node cluster, each round sends to every node at
once, on connections of their own: 200 Status(with_digest=true), 200 stale
VerifyAudit (served on that node) and 50 linearizable VerifyAudit
(forwarded to the leader by followers).  Meanwhile a well-behaved client
writes to the leader and reads back (linearizable) there, one attempt per
call with a 5 s deadline, on its own connection.  Checked:
  - no node exits, none logs "stopping" or an abort;
  - every abusive call ends OK or RESOURCE_EXHAUSTED (with the limit's
    message), and some did get RESOURCE_EXHAUSTED (the limit is there);
  - every call of the well-behaved client succeeds;
  - afterwards the replicas converge and stop cleanly (exit 0).

usage: test_read_abuse.py KYUFUD"""
import sys
import threading
import time

import grpc

import cluster as C
import workload as W

ROUNDS = 3
DIGESTS, AUDITS_STALE, AUDITS_LIN = 200, 200, 50
CALL_TIMEOUT_S = 30.0


class GoodClient(threading.Thread):
    """Writes a household and reads it back (linearizable), in a loop, each
    call within 5 s; records every outcome."""

    def __init__(self, c, leader):
        super().__init__(daemon=True)
        self.c = c
        self.leader = leader
        self.ch = own_channel(c, leader)
        self.w = C.Writer(c, "clerk1", "good-client")
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []

    def run(self):
        S = self.c.s["service_pb2"]
        L = self.c.s["ledger_pb2"]
        led = W.Ledger(self.c)
        i = 0
        stub = self.c.s["service_pb2_grpc"].LedgerStub(self.ch)
        while not self.stop.is_set():
            i += 1
            no = "G-%d" % i
            try:
                stub.RegisterHousehold(S.RegisterHouseholdRequest(
                    header=self.w.header(i),
                    command=L.RegisterHousehold(
                        household=led.household(no))), timeout=5.0)
            except grpc.RpcError as e:
                self.failures.append(("write", no, e.code(), e.details()))
                continue
            try:
                h = stub.GetHousehold(
                    S.GetHouseholdRequest(household_no=no), timeout=5.0)
                assert h.household_no == no
                self.ok += 1
            except grpc.RpcError as e:
                self.failures.append(("read", no, e.code(), e.details()))


def own_channel(c, i):
    """A connection of its own (grpcio shares subchannels between channels
    to one target unless told not to), connected before use.  Not with
    cluster.CHANNEL_OPTIONS: no node restarts here, and their 50 ms minimum
    reconnect backoff is also grpcio's connect timeout, which a TLS
    handshake on a loaded 2-core machine (an ASan build) can exceed.  Its
    calls carry the harness's tokens (cluster.TokenInterceptor)."""
    ch = c.secure_channel(i, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(ch).result(timeout=30)
    return ch


def abuse_round(c, channels):
    S = c.s["service_pb2"]
    G = c.s["service_pb2_grpc"]
    futures = []
    for i, ch in channels.items():
        cl, led = G.ClusterStub(ch), G.LedgerStub(ch)
        for _ in range(DIGESTS):
            futures.append((i, "digest", cl.Status.future(
                S.StatusRequest(with_digest=True), timeout=CALL_TIMEOUT_S)))
        for _ in range(AUDITS_STALE):
            futures.append((i, "audit-stale", led.VerifyAudit.future(
                S.VerifyAuditRequest(read=S.ReadOptions(stale=True)),
                timeout=CALL_TIMEOUT_S)))
        for _ in range(AUDITS_LIN):
            futures.append((i, "audit", led.VerifyAudit.future(
                S.VerifyAuditRequest(), timeout=CALL_TIMEOUT_S)))
    counts = {}
    for i, kind, f in futures:
        try:
            r = f.result()
            if kind == "digest":
                assert len(r.state_digest) == 32, r
            else:
                assert r.ok, r
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (
                "node %d %s: %s %s" % (i, kind, code, e.details()))
            assert ("whole-store reads" in e.details()
                    or "reader table" in e.details()), e.details()
        counts[(kind, code)] = counts.get((kind, code), 0) + 1
    return counts


def main():
    c = C.Cluster(sys.argv[1])
    good = None
    channels = {}
    try:
        c.start_all()
        leader = c.wait_leader(15)
        led = W.Ledger(c)
        led.setup()
        L = c.s["ledger_pb2"]
        w = C.Writer(c, "clerk1", "abuse-setup")
        w.node = leader
        for k in range(50):  # something for the walks to read
            W.must(w.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-%d" % k))), "setup household")

        good = GoodClient(c, leader)
        good.start()
        channels = {i: own_channel(c, i) for i in range(1, c.n + 1)}
        total = {}
        for r in range(ROUNDS):
            counts = abuse_round(c, channels)
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
            for i in range(1, c.n + 1):
                assert c.alive(i), "node %d exited after round %d\n%s" % (
                    i, r, c.logs())
        good.stop.set()
        good.join(30)
        good.ch.close()
        assert not good.is_alive(), "the good client hung"
        print("abusive calls:", sorted((k[0], k[1].name, v)
                                       for k, v in total.items()))
        print("good client: %d write+read pairs ok, %d failures"
              % (good.ok, len(good.failures)))
        assert not good.failures, good.failures[:5]
        assert good.ok > 0, "the good client made no progress"
        exhausted = sum(v for k, v in total.items()
                        if k[1] == grpc.StatusCode.RESOURCE_EXHAUSTED)
        served = sum(v for k, v in total.items()
                     if k[1] == grpc.StatusCode.OK)
        assert exhausted > 0, "no call met the whole-store read limit"
        assert served > 0, "no whole-store read was served"
        for i in range(1, c.n + 1):
            assert c.alive(i), "node %d exited\n%s" % (i, c.logs())
            log = open(c.log_path(i)).read()
            assert '"msg":"stopping"' not in log, log[-3000:]
            assert "Assertion" not in log, log[-3000:]
        c.wait_converged(20)
        c.stop_clean()
        print("read_abuse: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        if good is not None:
            good.stop.set()
        for ch in channels.values():
            ch.close()
        c.close()


if __name__ == "__main__":
    main()
