"""Three kyufud processes; a stock gRPC client (Debian's python3-grpcio,
stubs generated from api/*.proto) calls grpc.health.v1.Health/Check, writes
through every node (followers forward to the leader) and reads through
every node: linearizable reads see the write at once on any node; a stale
read on a follower sees it once replicated; the three stopped at once
exit cleanly.

usage: test_basic.py KYUFUD"""
import sys
import time

import grpc

import cluster as C
import workload as W


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        leader = c.wait_leader(15)
        S, L, H = c.s["service_pb2"], c.s["ledger_pb2"], c.s["health_pb2"]

        # Health: SERVING on every node once a leader is known.  The node
        # updates health from raft-glue's state callback, which polls raft
        # every KYUFU_STATE_POLL_MS (10 ms), so it may trail the Status that
        # wait_leader saw by a poll or two (more on a loaded ASan run).
        for i in range(1, 4):
            end = time.monotonic() + 5
            while True:
                r = c.health(i).Check(H.HealthCheckRequest(service=""),
                                      timeout=5)
                if (r.status == H.HealthCheckResponse.SERVING
                        or time.monotonic() > end):
                    break
                time.sleep(0.02)
            assert r.status == H.HealthCheckResponse.SERVING, (i, r)

        led = W.Ledger(c)
        follower = 1 if leader != 1 else 2
        # Every setup write goes first to a follower: forwarded.
        for w in (led.admin, led.clerk, led.approver):
            w.node = follower
        led.setup()

        # A write through each node; read back through each node.
        for i in range(1, 4):
            w = C.Writer(c, "clerk1", "basic-%d" % i)
            w.node = i
            resp = W.must(w.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-%d" % i))), "register via %d" % i)
            assert resp.result.household.household_no == "H-%d" % i
            assert resp.result.raft_index > 0
            for j in range(1, 4):
                h = c.ledger(j).GetHousehold(
                    S.GetHouseholdRequest(household_no="H-%d" % i),
                    timeout=5)
                assert h.head_name == "Yamada Taro", (i, j, h)

        # A retry with the same idempotency key returns the first result
        # and applies nothing new.
        w = C.Writer(c, "clerk1", "basic-retry")
        first = W.must(w.call("SubmitApplication", L.SubmitApplication(
            program_code="P2026", household_no="H-1",
            channel=L.CHANNEL_COUNTER)), "submit")
        w.seq -= 1  # same key again
        again = W.must(w.call("SubmitApplication", L.SubmitApplication(
            program_code="P2026", household_no="H-1",
            channel=L.CHANNEL_COUNTER)), "submit retry")
        assert again.result.application.id == first.result.application.id
        assert again.result.audit_seq == first.result.audit_seq

        # A ledger rejection is a gRPC status with a message.
        w2 = C.Writer(c, "clerk1", "basic-dup")
        code, msg = w2.call("SubmitApplication", L.SubmitApplication(
            program_code="P2026", household_no="H-1",
            channel=L.CHANNEL_COUNTER))
        assert code == grpc.StatusCode.ALREADY_EXISTS, (code, msg)

        # Unknown record: NOT_FOUND on every node.
        for i in range(1, 4):
            try:
                c.ledger(i).GetProgram(S.GetProgramRequest(code="NOPE"),
                                       timeout=5)
                raise AssertionError("GetProgram NOPE succeeded")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e

        # Lists page through with the storage's continuation token.
        seen, token = [], ""
        while True:
            page = c.ledger(follower).ListHouseholds(
                S.ListRequest(page_size=2, page_token=token), timeout=5)
            seen += [h.household_no for h in page.households]
            token = page.next_page_token
            if not token:
                break
        assert seen == ["H-1", "H-2", "H-3"], seen

        # Stale reads on each node see the data once replicated.
        end = time.monotonic() + 10
        for i in range(1, 4):
            while True:
                try:
                    c.ledger(i).GetApplication(S.GetApplicationRequest(
                        id=first.result.application.id,
                        read=S.ReadOptions(stale=True)), timeout=5)
                    break
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.NOT_FOUND, e
                    assert time.monotonic() < end, "stale read never caught up"
                    time.sleep(0.05)

        v = c.ledger(follower).VerifyAudit(S.VerifyAuditRequest(), timeout=5)
        assert v.ok and v.records > 0, v
        c.wait_converged(10)
        # All three at once: the leader's hand-over to a peer that stops
        # too ends by its bound (KYUFU_NODE_STOP_TRANSFER_MS_MAX), a stop
        # path the other tests' stop_clean (followers first) no longer
        # takes; every node still exits 0.
        c.stop_clean(together=True)
        print("basic: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
