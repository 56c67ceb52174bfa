"""SIGTERM of the leader hands leadership over before the node stops: the
process exits 0, its log says the hand-over happened, another node leads
(without waiting for an election timeout), writes go on (a steady
writer's calls to the stopping leader are held during the hand-over, not
turned away), and the node restarts and catches up.  Cluster.TransferLeadership moves it on request.

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

        # A steady writer on the leader (a write every 10 ms) while it
        # gets SIGTERM.
        pacer = W.Pacer(c, led, "T")
        pacer.w.node = leader
        pacer.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        c.kill(leader, signal.SIGTERM)
        rc = c.wait_exit(leader, 20)
        assert rc == 0, "kyufud exited %d after SIGTERM" % rc
        new = c.wait_leader(10, exclude=(leader,))
        took = time.monotonic() - t0
        time.sleep(0.5)
        pacer.stop.set()
        pacer.join(30)
        log = open(c.log_path(leader)).read()
        assert '"msg":"leadership handed over"' in log, log[-3000:]
        assert '"msg":"node stopped","exit_code":0' in log, log[-3000:]
        # Calls that reached the stopping leader while it handed over were
        # held and passed to the new leader (node/call.c
        # kyufu_node__taking_calls, node/forward_hold.c); once the hand-over
        # had ended it refused new ones naming the new leader.  None was
        # turned away without a leader to go to (the client would then go
        # round the nodes, which forward to the same stopping leader).
        errs = [(round(b - t0, 3), n, code, m) for b, n, code, m in pacer.w.errors
                if b >= t0 - 0.5]
        turned = [e for e in errs if e[1] == leader and "node is stopping" in (e[3] or "")
                  and "leader at" not in e[3]]
        gap = pacer.gap_ms(t0 - 0.5, time.monotonic())
        why = ("write gap %.1f ms; failed attempts (start - t0 s, node, code, "
               "message): %s; failed writes: %s" % (gap, errs, pacer.failed[:10]))
        print("SIGTERM of leader %d -> node %d leads after %.3f s; %s"
              % (leader, new, took, why))
        assert not pacer.failed, why
        assert not turned, c.logs() + "\n" + why
        assert len(pacer.acks) >= 10, why

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
