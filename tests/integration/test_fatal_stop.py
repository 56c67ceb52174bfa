"""A fatal storage error while serving stops the node cleanly: one
"stopping" line with the first reason, exit status 1 (docs/operations.md
"Exit status"), no abort, whichever callback found the error.

The fault is caused from outside, as a disk would: while the node runs, the
test rewrites both meta pages of its LMDB file (DATA/ledger/data.mdb) so
that the main database's root names a page past the end of the file.  The
node's mapping shares the page cache, so the next transaction that opens
a named database fails in LMDB (reported as a storage I/O error: fatal).  Three nodes, three
paths, one each:
  1. the leader, by a write: its apply fails inside raft's callbacks
     (the glue goes fatal, the node's state callback asks for the stop);
  2. a follower, by a stale GetProgram: the query fails inside the handler,
     which runs inside the connection's receive callback (the path that
     aborted on `!conn->in_recv` before);
  3. the other follower, by Status(with_digest=true): the snapshot begins
     on a work thread and fails; the stop is asked from the after-work
     callback.

usage: test_fatal_stop.py KYUFUD"""
import os
import struct
import sys
import time

import grpc

import cluster as C
import workload as W

LMDB_MAGIC = 0xBEEFC0DE
PAGE_HEADER = 16          # MDB_page up to mp_ptrs (LMDB 0.9, 64-bit)
META_PSIZE = 16 + 24      # mm_dbs[FREE_DBI].md_pad holds the page size
META_MAIN_ROOT = 16 + 24 + 48 + 40  # mm_dbs[MAIN_DBI].md_root
META_LAST_PG = 16 + 24 + 96


def corrupt_main_root(data_mdb):
    """Point the main DB's root past the last page in both meta pages."""
    with open(data_mdb, "r+b") as f:
        head = f.read(4096)
        magic, = struct.unpack_from("<I", head, PAGE_HEADER)
        assert magic == LMDB_MAGIC, hex(magic)
        psize, = struct.unpack_from("<I", head, META_PSIZE)
        for page in (0, 1):
            f.seek(page * psize)
            meta = f.read(psize)
            assert struct.unpack_from("<I", meta, PAGE_HEADER)[0] == LMDB_MAGIC
            last, = struct.unpack_from("<Q", meta, META_LAST_PG)
            f.seek(page * psize + META_MAIN_ROOT)
            f.write(struct.pack("<Q", last + 1000000))
        f.flush()
        os.fsync(f.fileno())


def check_stopped(c, i, reason, timeout=30):
    rc = c.wait_exit(i, timeout)
    log = open(c.log_path(i)).read()
    assert rc == 1, "node %d exited %d, want 1\n%s" % (i, rc, log[-4000:])
    stopping = [l for l in log.splitlines() if '"msg":"stopping"' in l]
    assert len(stopping) == 1, "node %d: %d stopping lines\n%s" % (
        i, len(stopping), log[-4000:])
    reasons = reason if isinstance(reason, tuple) else (reason,)
    assert any('"reason":"%s"' % r in stopping[0] for r in reasons), \
        stopping[0]
    assert '"msg":"node stopped","exit_code":1' in log, log[-4000:]
    for bad in ("Assertion", "AddressSanitizer", "LeakSanitizer",
                "runtime error:", "loop did not close cleanly"):
        assert bad not in log, "node %d: %s\n%s" % (i, bad, log[-4000:])


def data_mdb(c, i):
    return os.path.join(c.dir, "node%d" % i, "data", "ledger", "data.mdb")


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        leader = c.wait_leader(15)
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        led = W.Ledger(c)
        led.setup()
        c.wait_converged(10)
        f1, f2 = [i for i in range(1, 4) if i != leader]

        # 1. The leader, in raft's apply or the session's query.
        corrupt_main_root(data_mdb(c, leader))
        w = C.Writer(c, "clerk1", "fatal-leader")
        w.node = leader
        try:
            c.ledger(leader).RegisterHousehold(S.RegisterHouseholdRequest(
                header=w.header(1),
                command=L.RegisterHousehold(household=led.household("H-1"))),
                timeout=5)
        except grpc.RpcError:
            pass  # answered or cut off: the node is going down either way
        # The write's session is looked up first (a query), unless the
        # leader's own heartbeat reached apply before it: either way the
        # one clean fatal stop.
        check_stopped(c, leader, ("fatal raft or storage error",
                                  "fatal storage error in a query"))

        # 2. A follower, in the receive callback (a stale read).  Not
        # while the survivors elect a leader: the new leader's first
        # entries are write transactions on every node, and one that began
        # before the damage commits a fresh meta page over it (the read
        # then succeeds: seen once in a clean-clone CI).
        c.wait_leader(15, exclude=(leader,))
        time.sleep(0.5)
        corrupt_main_root(data_mdb(c, f1))
        try:
            c.ledger(f1).GetProgram(S.GetProgramRequest(
                code="P2026", read=S.ReadOptions(stale=True)), timeout=5)
            raise AssertionError("a read of a corrupt store succeeded")
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.INTERNAL,
                                grpc.StatusCode.UNAVAILABLE), e
        # The follower may meet the corrupt store in raft's apply first
        # (the leader's availability heartbeat is an entry every second):
        # either way the one clean fatal stop.
        check_stopped(c, f1, ("fatal storage error in a query",
                              "fatal raft or storage error"))

        # 3. The other follower, from a work completion.
        corrupt_main_root(data_mdb(c, f2))
        try:
            c.cluster(f2).Status(S.StatusRequest(with_digest=True), timeout=5)
            raise AssertionError("a digest of a corrupt store succeeded")
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.INTERNAL,
                                grpc.StatusCode.UNAVAILABLE), e
        check_stopped(c, f2, ("fatal storage error in a query",
                              "fatal raft or storage error"))
        print("fatal_stop: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
