"""Restore core (docs/restore.md "Restore"): a new cluster seeded from a
snapshot stream.

Until the backup reader (branch h/backup) is merged, the stream comes from
the storage library itself: the newest Raft snapshot cluster A's node 1
wrote (its file is raft-glue's 40-byte header, then the storage stream).

  1. Cluster A takes writes (batch 1) until a snapshot covers them, then
     more (batch 2, "writes continue during the backup"); A is stopped.
  2. Refusals change nothing (no store or Raft file is left): `kyufud
     --seed` of a corrupt stream (one byte flipped: exit 4), of a stream
     whose digest is not the expected one (exit 4), of a missing stream
     file, with a missing operand; `kyufuctl restore` with no --dir, a
     malformed --digest, a folder with no node folders, a wrong --digest.
  3. Cluster B (a new CA: a new cluster identity) is seeded with `kyufuctl
     restore --digest`: each node prints the stream's applied index and
     term and the state digest this test computes from the stream alone
     (docs/snapshot-format.md, storage/digest.c framing), and every batch-1
     household is a key of the stream's households database.  Seeding a
     node a second time is refused.
  4. B starts without bootstrapping and elects a leader; the restored
     staff account signs in on B (its new CA's client certificate) and
     reads every batch-1 household back through the API; B takes a write;
     its three nodes converge on one applied index and state digest, above
     the restored index.

usage: test_restore.py KYUFUD KYUFUCTL"""
import glob
import hashlib
import os
import re
import struct
import subprocess
import sys

import cluster as C
from workload import Ledger, must

GLUE_HEADER = 40
HOUSEHOLDS_DB = 2


def parse_stream(b):
    """(applied_index, applied_term, digest hex, household keys)."""
    assert b[:8] == b"KYUFUSN1", b[:8]
    index, term = struct.unpack(">QQ", b[16:32])
    assert hashlib.sha256(b[:-32]).digest() == b[-32:]
    h = hashlib.sha256()
    keys = set()
    p = 32
    while b[p] != 0xFF:
        db = b[p]
        klen, vlen = struct.unpack(">II", b[p + 1:p + 9])
        k = b[p + 9:p + 9 + klen]
        v = b[p + 9 + klen:p + 9 + klen + vlen]
        h.update(bytes([db]) + struct.pack(">I", klen) + k +
                 struct.pack(">I", vlen) + v)
        if db == HOUSEHOLDS_DB:
            keys.add(k)
        p += 9 + klen + vlen
    return index, term, h.hexdigest(), keys


def newest_snapshot(raft_dir):
    snaps = [f for f in glob.glob(os.path.join(raft_dir, "snapshot-*"))
             if not f.endswith(".meta")]
    if not snaps:
        return None, 0
    best = max(snaps, key=lambda f: int(os.path.basename(f).split("-")[2]))
    return best, int(os.path.basename(best).split("-")[2])


def seed(kyufud, conf, stream, digest=None):
    args = [kyufud, "--seed", conf] + ([stream] if stream else []) + \
        ([digest] if digest else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def restore(kyufuctl, kyufud, *args):
    p = subprocess.run([kyufuctl, "restore", "--kyufud", kyufud] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def untouched(b):
    for i in (1, 2, 3):
        for sub in ("ledger", "raft"):
            p = os.path.join(b.dir, "node%d" % i, "data", sub)
            assert not os.path.exists(p), "a refusal left " + p


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    a = C.Cluster(kyufud, snapshot_threshold=4, snapshot_trailing=2)
    b = None
    try:
        # ---- 1. cluster A, writes before and during the "backup"
        a.start_all()
        leader = a.wait_leader(15)
        led = Ledger(a, "restore")
        led.setup()
        L = a.s["ledger_pb2"]
        w = C.Writer(a, "clerk1", "restore-w")
        w.node = leader
        batch1 = []
        for k in range(30):
            no = "B1-%04d" % k
            must(w.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household(no))), no)
            batch1.append(no)
        covered = a.status(leader).applied_index  # has every ack
        raft1 = os.path.join(a.dir, "node1", "data", "raft")
        for k in range(200):  # until node 1 snapshotted past batch 1
            path, index = newest_snapshot(raft1)
            if index >= covered:
                break
            must(w.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("B2-%04d" % k))), "batch 2")
        assert index >= covered, (index, covered)
        with open(path, "rb") as f:
            data = f.read()
        w.close()
        a.stop_clean()
        stream = data[GLUE_HEADER:]
        s_index, s_term, digest, keys = parse_stream(stream)
        for no in batch1:
            assert any(no.encode() in k for k in keys), no
        sfile = os.path.join(a.dir, "stream.bin")
        with open(sfile, "wb") as f:
            f.write(stream)
        print("stream: index %d term %d, %d bytes, %d households"
              % (s_index, s_term, len(stream), len(keys)))

        # ---- 2. refusals
        b = C.Cluster(kyufud)
        bad = os.path.join(a.dir, "bad.bin")
        flipped = bytearray(stream)
        flipped[len(flipped) // 2] ^= 0x01
        with open(bad, "wb") as f:
            f.write(bytes(flipped))
        rc, out, err = seed(kyufud, b.conf[1], bad)
        assert rc == 4 and "refused" in err and "nothing changed" in err, \
            (rc, out, err)
        wrong = "0" * 64
        rc, out, err = seed(kyufud, b.conf[1], sfile, wrong)
        assert rc == 4 and "is not the expected" in err, (rc, out, err)
        rc, out, err = seed(kyufud, b.conf[1], os.path.join(a.dir, "none"))
        assert rc == 1 and "cannot read the stream" in err, (rc, out, err)
        rc, out, err = seed(kyufud, b.conf[1], None)
        assert rc == 2 and "--seed takes FILE and STREAM" in err, \
            (rc, out, err)
        for args, code, text in (
                (["--stream", sfile], 2, "--dir DIR"),
                (["--dir", b.dir, "--stream", sfile, "--digest", "abc"], 2,
                 "64 lowercase hex"),
                (["--dir", a.dir + "/pki", "--stream", sfile], 2,
                 "no node1/data"),
                (["--dir", b.dir, "--stream", sfile, "--digest", wrong], 5,
                 "is not the expected"),
                (["--dir", b.dir, "--stream", bad], 5, "refused")):
            rc, out, err = restore(kyufuctl, kyufud, *args)
            assert rc == code and text in err, (args, rc, out, err)
        untouched(b)

        # ---- 3. seed B
        rc, out, err = restore(kyufuctl, kyufud, "--dir", b.dir, "--stream",
                               sfile, "--digest", digest)
        assert rc == 0 and "restored: 3 nodes seeded" in out, (rc, out, err)
        lines = re.findall(r"seeded node (\d): applied index (\d+) term (\d+), "
                           r"state digest ([0-9a-f]{64}), 3 voters", out)
        assert [(int(n), int(i), int(t), d) for n, i, t, d in lines] == \
            [(n, s_index, s_term, digest) for n in (1, 2, 3)], out
        rc, out, err = seed(kyufud, b.conf[1], sfile)
        assert rc == 1 and "exists" in err, (rc, out, err)
        print("seeded 3 nodes: digest %s... equals the stream's"
              % digest[:16])

        # ---- 4. B runs on the restored state
        b.start_all()
        lead = b.wait_leader(20)
        # The restored ledger's staff sign in on B (new CA, same
        # accounts): every batch-1 household is read back through the API,
        # and B takes writes.
        b.accounts = dict(a.accounts)
        S = b.s["service_pb2"]
        md = b.bearer("clerk1")
        for no in batch1:
            h = b.ledger(lead).GetHousehold(S.GetHouseholdRequest(
                household_no=no), metadata=md, timeout=10)
            assert h.household_no == no, no
        wb = C.Writer(b, "clerk1", "restore-b")
        wb.node = lead
        must(wb.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("C-0001")), deadline_s=20.0), "B write")
        wb.close()
        st = b.wait_converged(20)
        assert st.applied_index > s_index, (st.applied_index, s_index)
        print("cluster B: %d batch-1 households read back, a write taken, "
              "converged at index %d" % (len(batch1), st.applied_index))
        b.stop_clean()
    finally:
        a.close()
        if b is not None:
            b.close()


if __name__ == "__main__":
    main()
