"""Rolling compaction of the LMDB file (docs/operations.md "Compacting the
store"): on a cluster with churn (applications submitted and cancelled),
`kyufud --compact` is refused while the node runs and on a folder with no
store; on a stopped follower it compacts (the file does not grow, the state
digest is unchanged), the follower starts again, catches up with writes made
meanwhile, and every node ends with the same digest; no write is lost.

usage: test_compact.py KYUFUD"""
import os
import re
import subprocess
import sys
import time

import cluster as C
import workload as W

ROUNDS = int(os.environ.get("KYUFU_COMPACT_ROUNDS", "120"))


def compact(kyufud, conf):
    p = subprocess.run([kyufud, "--compact", conf], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def main():
    kyufud = sys.argv[1]
    c = C.Cluster(kyufud)
    try:
        c.start_all()
        leader = c.wait_leader(15)
        L = c.s["ledger_pb2"]
        led = W.Ledger(c, "compact")
        led.setup()
        W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-1"))), "register")
        t0 = time.monotonic()
        for i in range(ROUNDS):
            r = W.must(led.clerk.call("SubmitApplication", L.SubmitApplication(
                program_code="P2026", household_no="H-1",
                channel=L.CHANNEL_COUNTER)), "submit %d" % i)
            app = r.result.application.id
            W.must(led.clerk.call("CancelApplication", L.CancelApplication(
                id=app, reason="churn %d" % i)), "cancel %d" % i)
        print("churn: %d submit+cancel in %.1f s" % (ROUNDS, time.monotonic() - t0))
        before = c.wait_converged(30)

        f = 1 if leader != 1 else 2
        other = 6 - leader - f
        data = os.path.join(c.dir, "node%d" % f, "data", "ledger", "data.mdb")

        # A running node's store is never touched.
        rc, out, err = compact(kyufud, c.conf[other])
        assert rc == 1 and "in use by another kyufud" in err \
            and "stop it first" in err and "first (" not in err, (rc, out, err)
        # A malformed call is a usage error.
        p = subprocess.run([kyufud, "--compact"], capture_output=True)
        assert p.returncode == 2, p
        p = subprocess.run([kyufud, "--compact", "/nonexistent.conf"],
                           capture_output=True)
        assert p.returncode == 2, p

        # A config naming a data folder with no store: refused, and the
        # folder is not created.
        empty = os.path.join(c.dir, "nostore")
        conf = os.path.join(c.dir, "nostore.conf")
        with open(c.conf[other]) as src, open(conf, "w") as dst:
            dst.write(re.sub(r"(?m)^data_dir = .*$", "data_dir = " + empty,
                             src.read()))
        rc, out, err = compact(kyufud, conf)
        assert rc == 1 and "no store at" in err, (rc, out, err)
        assert not os.path.exists(empty)

        # The follower, stopped cleanly, compacted.
        c.kill(f, C.signal.SIGTERM)
        assert c.wait_exit(f, 30) == 0
        size0 = os.path.getsize(data)
        rc, out, err = compact(kyufud, c.conf[f])
        assert rc == 0, (rc, out, err)
        m = re.search(r"compacted (\d+) -> (\d+) bytes in (\d+) ms; applied "
                      r"index (\d+), state digest ([0-9a-f]{16})\.\.\. unchanged", out)
        assert m, out
        b0, b1 = int(m.group(1)), int(m.group(2))
        assert b0 == size0 and b1 == os.path.getsize(data) and b1 <= b0, (
            size0, out)
        # The leader's heartbeats (docs/sla.md) and version records may
        # have been applied between `before` and the stop: the digest is
        # comparable only when no entry came in between.
        assert int(m.group(4)) >= before.applied_index, (out, before)
        if int(m.group(4)) == before.applied_index:
            assert m.group(5) == before.state_digest[:8].hex(), (out, before)
        assert not os.path.exists(os.path.join(os.path.dirname(data),
                                               "compact.tmp"))
        print("compact: " + out.strip())

        # Writes while it is down, then it starts and catches up.
        for i in range(5):
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-late-%d" % i))), "late %d" % i)
        c.start(f)
        end = c.wait_converged(60)
        assert end.applied_index > before.applied_index
        for i in range(5):
            h = c.ledger(f).GetHousehold(c.s["service_pb2"].GetHouseholdRequest(
                household_no="H-late-%d" % i), timeout=5)
            assert h.household_no == "H-late-%d" % i
        c.stop_clean()
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.close()
    print("ok")


if __name__ == "__main__":
    main()
