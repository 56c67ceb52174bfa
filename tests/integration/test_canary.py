"""Encryption at rest, end to end (issue 12 Deliver 1; docs/encryption.md,
enc-common 7): canary head names, member names, addresses and account
numbers written through the gRPC API are in no byte of any file under any
node's data directory (LMDB, Raft segments, snapshots, key files, anything
else), in UTF-8, UTF-16LE, hex, base64 or reversed byte order, and not in
any node's log: after the writes, after a snapshot and log compaction on
every node, and after a restart of the whole cluster.

Every finding is reported by file class (lmdb / raft segment / snapshot /
other) with the file, the canary and the encoding.

It can pass only with all of encryption at rest: records sealed in the store
(storage/seal.c), Raft entry payloads and snapshot chunks sealed (raft-glue),
and kyufud loading its key (a [keys] section, made by the cluster set-up).
A cluster whose configuration has no [keys] section runs without encryption
at rest: the test then skips (exit 77), unless KYUFU_CANARY_REPORT=1, which
runs it anyway and only reports where the canaries are (exit 0).

usage: test_canary.py KYUFUD"""
import base64
import os
import re
import sys
import time

import cluster as C
import workload as W

# A snapshot every 32 entries, 8 kept: the writes below pass it on every
# node, so snapshots exist and the entries with the canaries are compacted.
SNAPSHOT_THRESHOLD = 32
SNAPSHOT_TRAILING = 8
FILLER = 2 * SNAPSHOT_THRESHOLD

CANARIES = {
    "head": "Kanaria Headname Qx7",
    "member": "Kanaria Membername Zv4",
    "address": "Kanaria-cho 9-8-7 Canaryaddr",
    "account": "8675309",
    "kana": "カナリア キュウフ",
}


def encodings(s):
    """(name, bytes) of every form of s the code could write."""
    raw = s.encode("utf-8")
    out = [("utf-16le", s.encode("utf-16le")),
           ("utf-16le reversed", s.encode("utf-16le")[::-1])]
    for rev, b in (("", raw), (" reversed", raw[::-1])):
        out.append(("utf-8" + rev, b))
        out.append(("hex" + rev, b.hex().encode()))
        out.append(("HEX" + rev, b.hex().upper().encode()))
        for pad in range(3):
            e = base64.b64encode(b"\0" * pad + b)
            # the characters the padding bytes touch vary with context
            skip = 4 if pad else 0
            stable = e[skip:len(e) - 4] if len(e) - 4 > skip + 4 else b""
            if stable:
                out.append(("base64" + rev, stable))
    return out


NEEDLES = [(name, enc, b) for name, s in CANARIES.items()
           for enc, b in encodings(s)]


def file_class(path):
    base = os.path.basename(path)
    if base.endswith(".mdb"):
        return "lmdb"
    if base.startswith("snapshot-"):
        return "snapshot"
    if base.startswith("open-") or re.match(r"^\d+-\d+$", base) \
            or base.startswith("metadata"):
        return "raft segment"
    return "other"


def scan(c, when):
    """{class: [(file, canary, encoding)]} over every node's data directory
    and every node's log."""
    found = {}
    files = 0
    for i in c.ids():
        roots = [os.path.join(c.dir, "node%d" % i, "data")]
        paths = []
        for root in roots:
            for d, _, names in os.walk(root):
                paths += [os.path.join(d, n) for n in names]
        paths.append(c.log_path(i))
        for p in paths:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue  # a segment closed and removed meanwhile
            files += 1
            cls = "log" if p == c.log_path(i) else file_class(p)
            for name, enc, b in NEEDLES:
                if b in data:
                    found.setdefault(cls, []).append(
                        (os.path.relpath(p, c.dir), name, enc))
    print("%s: %d files scanned (%.1f s)" % (when, files,
                                              time.monotonic() - T0))
    for cls in sorted(found):
        hits = found[cls]
        print("  %s: %d finding(s), e.g. %s" % (cls, len(hits), hits[:3]))
    if not found:
        print("  no canary anywhere")
    return found


def newest_snapshot_formats(c):
    """Each node's newest snapshot data file's KYFS header version: 3 (the
    chunks under a key of the snapshot's own) once the cluster version is
    6 (docs/encryption.md "Nonces")."""
    out = {}
    for i in c.ids():
        best = None
        for d, _, names in os.walk(os.path.join(c.dir, "node%d" % i, "data")):
            for x in names:
                parts = x.split("-")
                if (x.startswith("snapshot-") and not x.endswith(".meta")
                        and len(parts) == 4 and parts[2].isdigit()):
                    key = (int(parts[1]), int(parts[2]))
                    if best is None or key > best[0]:
                        best = (key, os.path.join(d, x))
        if best is not None:
            with open(best[1], "rb") as f:
                head = f.read(8)
            out[i] = (head[:4], int.from_bytes(head[4:8], "little"))
    return out


def snapshot_files(c):
    n = 0
    for i in c.ids():
        for d, _, names in os.walk(os.path.join(c.dir, "node%d" % i, "data")):
            n += sum(1 for x in names if x.startswith("snapshot-"))
    return n


T0 = time.monotonic()


def main():
    kyufud = sys.argv[1]
    report_only = os.environ.get("KYUFU_CANARY_REPORT") == "1"
    c = C.Cluster(kyufud, snapshot_threshold=SNAPSHOT_THRESHOLD,
                  snapshot_trailing=SNAPSHOT_TRAILING)
    keyed = all("[keys]" in open(c.conf[i]).read() for i in c.ids())
    if not keyed and not report_only:
        c.close()
        C.skip("the cluster set-up gives kyufud no [keys]: encryption at "
               "rest is off (KYUFU_CANARY_REPORT=1 runs it to report)")
    failures = []
    try:
        c.start_all()
        c.wait_leader(15)
        L = c.s["ledger_pb2"]
        led = W.Ledger(c, "canary")
        led.setup()
        for no in ("H-C1", "H-C2"):
            h = led.household(no)
            h.head_name = CANARIES["head"]
            h.member_names[:] = [CANARIES["member"], "Yamada Hanako"]
            h.address = CANARIES["address"]
            h.bank.account_no = CANARIES["account"]
            h.bank.holder_kana = CANARIES["kana"]
            W.must(led.clerk.call("RegisterHousehold",
                                  L.RegisterHousehold(household=h)),
                   "register " + no)
        # Read back through the API: the ledger serves them in clear.
        got = c.ledger(1).GetHousehold(
            c.s["service_pb2"].GetHouseholdRequest(household_no="H-C1"),
            timeout=10)
        assert got.head_name == CANARIES["head"], got
        c.wait_converged(30)
        found = {"after writes": scan(c, "after writes")}

        # Enough entries for a snapshot and a compaction on every node.
        for k in range(FILLER):
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-F%d" % k))), "filler %d" % k)
        c.wait_converged(30)
        deadline = time.monotonic() + 20
        while snapshot_files(c) < len(c.ids()) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert snapshot_files(c) >= len(c.ids()), "no snapshot on every node"
        formats = newest_snapshot_formats(c)
        assert len(formats) == len(c.ids()) and all(
            f == (b"KYFS", 3) for f in formats.values()), formats
        found["after snapshot"] = scan(c, "after snapshot and compaction")

        c.stop_clean()
        c.start_all()
        c.wait_leader(15)
        c.wait_converged(30)
        found["after restart"] = scan(c, "after restart")
        for when, f in found.items():
            for cls, hits in f.items():
                failures.append("%s: %s: %s" % (when, cls, hits[:5]))
        c.stop_clean()
    finally:
        c.close()
    if report_only:
        print("report only (KYUFU_CANARY_REPORT=1, keys: %s): %d finding "
              "group(s)" % ("yes" if keyed else "no", len(failures)))
        return 0
    assert not failures, "canaries found:\n" + "\n".join(failures)
    print("canary: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
