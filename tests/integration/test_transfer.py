"""SIGTERM of the leader hands leadership over before the node stops: the
process exits 0, its log says the hand-over happened, another node leads
(without waiting for an election timeout), writes go on, and the node
restarts and catches up.  Cluster.TransferLeadership moves it on request.

usage: test_transfer.py KYUFUD"""
import signal
import sys
import time

import cluster as C
import workload as W


def main():
    c = C.Cluster(sys.argv[1], election_ms=2000, heartbeat_ms=100)
    try:
        c.start_all()
        leader = c.wait_leader(20)
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        led = W.Ledger(c)
        led.setup()

        t0 = time.monotonic()
        c.kill(leader, signal.SIGTERM)
        rc = c.wait_exit(leader, 20)
        assert rc == 0, "kyufud exited %d after SIGTERM" % rc
        new = c.wait_leader(10, exclude=(leader,))
        took = time.monotonic() - t0
        log = open(c.log_path(leader)).read()
        assert '"msg":"leadership handed over"' in log, log[-3000:]
        assert '"msg":"node stopped","exit_code":0' in log, log[-3000:]
        print("SIGTERM of leader %d -> node %d leads after %.3f s"
              % (leader, new, took))

        w = C.Writer(c, "clerk1", "transfer")
        w.node = new
        W.must(w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-T"))), "write after hand-over")

        c.start(leader)
        c.wait_leader(15)
        c.wait_converged(30)

        # On request, through a follower (forwarded to the leader).
        cur = c.wait_leader(10)
        target = 1 if cur != 1 else 2
        via = [i for i in (1, 2, 3) if i != cur][0]
        r = c.cluster(via).TransferLeadership(
            S.TransferLeadershipRequest(target_id=target), timeout=15)
        assert r.new_leader_id == target, r
        assert c.wait_leader(10) == target
        c.stop_clean()
        print("transfer: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
