"""A stopped node whose store has a damaged page is refused at start, not
crashed later (docs/storage.md "Structural check", docs/operations.md "A
damaged store").

The chaos fault flip-store found it: LMDB keeps no page checksums, and a
flipped bit in a page's structure made kyufud die of SIGSEGV inside LMDB a
second after "node started".  Here the test kills a follower (kill -9:
no clean-stop marker, so the next start walks the store), raises the value size of the first record in the first leaf of its
"households" database to 2 GiB (a structural byte: reading the record runs
off the end of the file's mapping), and starts it again.  kyufud must exit
4 within 20 s with "cannot open the store", error "store or snapshot is
corrupt" and the crash named in the detail, and leave data.mdb byte for byte
as it was.  The other two nodes keep serving.  Before that, the other
follower stops cleanly: it leaves ledger/clean.stop, and its next start
removes the marker and skips the walk.

usage: test_store_check.py KYUFUD"""
import hashlib
import os
import signal
import struct
import sys

import cluster as C
import workload as W

EXIT_REFUSED_DATA = 4
LMDB_MAGIC = 0xBEEFC0DE
PAGE_HEADER = 16          # MDB_page up to mp_ptrs (LMDB 0.9, 64-bit)
META_PSIZE = 16 + 24      # mm_dbs[FREE_DBI].md_pad holds the page size
META_MAIN = 16 + 24 + 48  # mm_dbs[MAIN_DBI]
META_TXNID = 16 + 24 + 96 + 8
DB_ROOT = 40              # MDB_db.md_root
P_BRANCH, P_LEAF = 0x01, 0x02
F_BIGDATA, F_SUBDATA = 0x01, 0x02


def node_at(page, i):
    """The i-th node's offset in page."""
    return struct.unpack_from("<H", page, PAGE_HEADER + 2 * i)[0]


def damage_households(path):
    """Set the value size of the first record of the first leaf of the
    households database to 2 GiB (mn_hi = 0x8000).  Returns the offset."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    magic, = struct.unpack_from("<I", data, PAGE_HEADER)
    assert magic == LMDB_MAGIC, hex(magic)
    psize, = struct.unpack_from("<I", data, META_PSIZE)
    # The meta page of the last commit: the higher txnid.
    meta = max((0, psize), key=lambda m: struct.unpack_from(
        "<Q", data, m + META_TXNID)[0])
    main_root, = struct.unpack_from("<Q", data, meta + META_MAIN + DB_ROOT)
    page = main_root * psize
    flags, = struct.unpack_from("<H", data, page + 10)
    assert flags & 0xff == P_LEAF, flags  # a handful of names: one leaf
    lower, = struct.unpack_from("<H", data, page + 12)
    root = None
    for i in range((lower - PAGE_HEADER) // 2):
        n = page + node_at(data[page:page + psize], i)
        ksize, = struct.unpack_from("<H", data, n + 6)
        if bytes(data[n + 8:n + 8 + ksize]) == b"households":
            root, = struct.unpack_from("<Q", data, n + 8 + ksize + DB_ROOT)
    assert root is not None, "no households database"
    page = root * psize
    while struct.unpack_from("<H", data, page + 10)[0] & 0xff == P_BRANCH:
        n = page + node_at(data[page:page + psize], 0)
        lo, hi, fl = struct.unpack_from("<HHH", data, n)
        page = (lo | hi << 16 | fl << 32) * psize
    assert struct.unpack_from("<H", data, page + 10)[0] & 0xff == P_LEAF
    n = page + node_at(data[page:page + psize], 0)
    nflags, = struct.unpack_from("<H", data, n + 4)
    assert nflags & (F_BIGDATA | F_SUBDATA) == 0, nflags
    with open(path, "r+b") as f:
        f.seek(n + 2)
        f.write(struct.pack("<H", 0x8000))
        f.flush()
        os.fsync(f.fileno())
    return n


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        leader = c.wait_leader(15)
        led = W.Ledger(c)
        led.setup()
        L = c.s["ledger_pb2"]
        for k in range(3):
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-%d" % k))), "household")
        c.wait_converged(10)
        victim, other = [i for i in c.ids() if i != leader]

        # A clean stop writes the marker; the next start removes it and
        # skips the walk.
        c.kill(other, signal.SIGTERM)
        assert c.wait_exit(other, 30) == 0
        marker = os.path.join(c.dir, "node%d" % other, "data", "ledger",
                              "clean.stop")
        assert os.path.exists(marker), "no clean-stop marker"
        c.start(other)
        c.wait_converged(20)
        assert not os.path.exists(marker), "marker left after a start"
        log = open(c.log_path(other)).read()
        assert log.count('"msg":"store checked"') == 1, log[-3000:]
        assert log.count('"msg":"store check skipped after a clean stop"') \
            == 1, log[-3000:]

        # kill -9 (no marker), then the damage, as the chaos fault does.
        c.kill(victim)
        c.wait_exit(victim, 30)
        path = os.path.join(c.dir, "node%d" % victim, "data", "ledger",
                            "data.mdb")
        damage_households(path)
        before = sha256(path)
        size = os.path.getsize(path)

        c.start(victim)
        rc = c.wait_exit(victim, 20)
        log = open(c.log_path(victim)).read()
        tail = log[-3000:]
        assert rc == EXIT_REFUSED_DATA, (rc, tail)
        refused = [l for l in log.splitlines()
                   if '"msg":"cannot open the store"' in l]
        assert len(refused) == 1, tail
        assert '"error":"store or snapshot is corrupt"' in refused[0], tail
        assert "the store check crashed on signal SIG" in refused[0], tail
        assert "a page of data.mdb is damaged" in refused[0], tail
        assert "node started" not in log.split(refused[0])[1], tail
        assert sha256(path) == before and os.path.getsize(path) == size, \
            "the check changed data.mdb"
        # The others still serve.
        W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-9"))), "household after")
        c.stop_clean()
        print(refused[0])
        print("store_check: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
