"""Encrypted online backups (issue 12; docs/backup.md), end to end.

  - writes go on while `kyufuctl backup create` runs; the backup is taken
    on a follower, at an applied index at or above the leader's commit
    index from before the command (so every write acknowledged before it
    is in it), and `backup verify` passes (signature, chain, hashes, tags,
    state digest recomputed from the decrypted stream);
  - no canary (head name, address, account number) is in any file of the
    backup in UTF-8, UTF-16LE, hex or base64, and the chunk files look
    like ciphertext (byte entropy);
  - the cluster has a CMK: the manifest carries it wrapped (never in
    clear) and verify restores the sealed records under it;
  - verify refuses, naming what failed, a flipped byte in a chunk, in the
    manifest, in the signature, a foreign certificate, a missing or an
    extra chunk, and a wrong KEK; `backup list` marks them;
  - hostile command lines and requests are refused and leave nothing in
    the backup directory (no partial backup, no temporary).

usage: test_backup.py KYUFUD KYUFUCTL"""
import base64
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import cluster as C
import prom_text
import workload as W
from ports import free_ports

RATE = 65536  # [backup] max_bytes_per_s, the lowest accepted

CANARIES = ["Kanariyama Hisoka", "7-7-7 Canary Heights, Suzume Ward",
            "8642097"]


def ctl(kyufuctl, conf, env, *args, timeout=120):
    p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def write_kek(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


def encodings(s):
    b = s.encode()
    out = [b, s.encode("utf-16-le"), b.hex().encode(), b.hex().upper().encode()]
    for skip in range(3):  # base64 at every alignment, padding cut
        frag = base64.b64encode(b[skip:]).rstrip(b"=")[2:-2]
        # A short canary leaves fragments of 3 or 4 characters, which a
        # base64 file (node.pem) holds by chance now and then (a false
        # alarm seen once in CI: 'IwO' of "8642097"); 6 or more do not.
        if len(frag) >= 6:
            out.append(frag)
    return out


def entropy(data):
    counts = [0] * 256
    for x in data:
        counts[x] += 1
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in counts if c)


def backup_metric(port):
    """The backup gauges of one node's /metrics: (timestamp, age) or None
    when absent."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        fams = prom_text.parse(r.read().decode())
    ts = fams.get("kyufu_backup_last_success_timestamp_seconds")
    age = fams.get("kyufu_backup_newest_good_age_seconds")
    if ts is None and age is None:
        return None
    assert ts["type"] == "gauge" and age["type"] == "gauge", (ts, age)
    return (ts["samples"]["kyufu_backup_last_success_timestamp_seconds"][0][1],
            age["samples"]["kyufu_backup_newest_good_age_seconds"][0][1])


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="kyufu-bk-", dir="/tmp")
    bkdir = os.path.join(work, "backups")
    os.makedirs(bkdir)
    kek = os.path.join(work, "backup.kek")
    write_kek(kek)
    # A slow throttle, so that its effect shows on a small store.
    mports = free_ports(3)
    extra = {i: "[node]\nmetrics_listen = 127.0.0.1:%d\n"
             "[backup]\ndirectory = %s\nkek_file = %s\n"
             "max_bytes_per_s = %d\n" % (mports[i - 1], bkdir, kek, RATE)
             for i in (1, 2, 3)}
    c = C.Cluster(kyufud, extra_conf=extra)
    stop = threading.Event()
    writer = None
    try:
        c.start_all()
        leader = c.wait_leader(15)
        L = c.s["ledger_pb2"]
        led = W.Ledger(c, "backup")
        led.setup()
        c.account("op1", [L.ROLE_OPERATOR], "Operator")
        env = c.ctl_env("op1")
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\n" % (",".join(c.api[i] for i in (1, 2, 3)),
                                     c.ca, c.client_cert, c.client_key))

        # Acknowledged writes with the canaries.
        for i in range(10):
            h = led.household("H-%d" % i)
            h.head_name = CANARIES[0]
            h.address = CANARIES[1]
            h.bank.account_no = CANARIES[2]
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=h)), "register %d" % i)
        commit_before = c.status(leader).commit_index

        # Writes go on during the backup.
        during = []

        def keep_writing():
            w = W.cluster_writer(c, "clerk1", "backup-during")
            n = 0
            while not stop.is_set():
                code, _ = w.call("RegisterHousehold", L.RegisterHousehold(
                    household=led.household("D-%d" % n)), deadline_s=10)
                if code.name == "OK":
                    during.append(n)
                n += 1
        writer = threading.Thread(target=keep_writing, daemon=True)
        writer.start()

        out1 = os.path.join(bkdir, "b1")
        assert backup_metric(mports[leader - 1]) is None  # none yet
        t_before = time.time()
        rc, out, err = ctl(kyufuctl, conf, env, "--json", "backup", "create",
                           "--out", out1)
        stop.set()
        writer.join(30)
        assert rc == 0, (rc, out, err)
        doc = json.loads(out)
        print("backup: %s" % doc)
        assert doc["node"] != leader, (doc, leader)
        assert doc["applied_index"] >= commit_before, (doc, commit_before)
        assert doc["path"] == out1 and doc["chunks"] >= 1, doc
        assert len(during) > 0, "no write went through during the backup"
        # The metric: on the node that took it, its manifest's time.
        ts, age = backup_metric(mports[doc["node"] - 1])
        assert t_before - 1 <= ts <= time.time() + 1, (ts, t_before)
        assert 0 <= age < 120, age
        assert backup_metric(mports[leader - 1]) is None
        names = sorted(os.listdir(out1))
        assert names[0] == "chunk-000000.bin", names
        # The throttle: the chunk files took at least their size / RATE.
        chunk_bytes = sum(os.path.getsize(os.path.join(out1, n))
                          for n in names if n.startswith("chunk-"))
        floor_ms = 1000 * chunk_bytes // RATE
        print("throttle: %d chunk bytes in %d ms (floor %d ms at %d B/s): "
              "%.0f B/s" % (chunk_bytes, doc["elapsed_ms"], floor_ms, RATE,
                            chunk_bytes * 1000 / max(1, doc["elapsed_ms"])))
        assert doc["elapsed_ms"] >= floor_ms, (doc, floor_ms)
        assert {"manifest.json", "manifest.sig", "node.pem"} <= set(names)
        for n in names:
            assert (os.stat(os.path.join(out1, n)).st_mode & 0o077) == 0, n

        # The cluster runs with a CMK: the manifest carries it wrapped
        # under the backup KEK (never in clear), and verify restores the
        # sealed records with it.
        man = json.load(open(os.path.join(out1, "manifest.json")))
        wrapped = man["cmk_wrapped"]
        assert isinstance(wrapped, str) and len(wrapped) == 2 * (
            len(bytes.fromhex(man["bk_wrapped"]))), man
        assert wrapped != man["bk_wrapped"], man
        rc, out, err = ctl(kyufuctl, conf, env, "backup", "verify", out1,
                           "--kek", kek)
        assert rc == 0 and "verified" in out, (rc, out, err)
        print(out.strip())

        # No canary, in any encoding, in any file; chunks are ciphertext.
        for n in names:
            data = open(os.path.join(out1, n), "rb").read()
            for s in CANARIES:
                for e in encodings(s):
                    assert e not in data, (n, s, e)
            for e in (c.cmk, c.cmk.hex().encode(),
                      base64.b64encode(c.cmk)[:40]):
                assert e not in data, (n, "the CMK in clear")
            if n.startswith("chunk-") and len(data) > 4096:
                assert entropy(data) > 7.9, (n, entropy(data))

        # Tampering: each copy refused, naming what failed.
        tamper = os.path.join(work, "tamper")
        os.makedirs(tamper)

        def copy(name):
            d = os.path.join(tamper, name)
            shutil.copytree(out1, d)
            return d

        cases = []
        d = copy("chunk")
        flip(os.path.join(d, "chunk-000000.bin"), 100)
        cases.append((d, "chunk-000000.bin: SHA-256 differs"))
        d = copy("manifest")
        text = open(os.path.join(d, "manifest.json")).read()
        with open(os.path.join(d, "manifest.json"), "w") as f:
            f.write(text.replace('"applied_index": ', '"applied_index": 1', 1))
        cases.append((d, "manifest signature does not verify"))
        d = copy("signature")
        flip(os.path.join(d, "manifest.sig"), 20)
        cases.append((d, "manifest signature does not verify"))
        d = copy("cert")
        shutil.copy(c.other_cert, os.path.join(d, "node.pem"))
        cases.append((d, "does not chain to the cluster CA"))
        d = copy("missing")
        os.unlink(os.path.join(d, "chunk-000000.bin"))
        cases.append((d, "chunk files"))
        d = copy("extra")
        shutil.copy(os.path.join(d, "chunk-000000.bin"),
                    os.path.join(d, "chunk-999999.bin"))
        cases.append((d, "chunk files"))
        for d, want in cases:
            rc, out, err = ctl(kyufuctl, conf, env, "backup", "verify", d,
                               "--kek", kek)
            assert rc == 5 and want in err, (d, rc, out, err)
            print("refused %s: %s" % (os.path.basename(d), err.strip()))
        # A keyed backup under a wrong KEK: neither key unwraps.
        wrong = os.path.join(work, "wrong.kek")
        write_kek(wrong)
        rc, out, err = ctl(kyufuctl, conf, env, "backup", "verify", out1,
                           "--kek", wrong)
        assert rc == 5 and "backup key does not unwrap" in err, (rc, err)

        rc, out, err = ctl(kyufuctl, conf, env, "--json", "backup", "list",
                           bkdir, tamper)
        assert rc == 0, (rc, out, err)
        rows = {os.path.basename(r["backup"]): r for r in
                json.loads(out)["backups"]}
        assert rows["b1"]["good"] and rows["b1"]["node"] == doc["node"], rows
        for bad in ("manifest", "signature", "cert"):
            assert not rows[bad]["good"], rows[bad]

        # Hostile input: refused, nothing written.
        before = sorted(os.listdir(bkdir))
        loose = os.path.join(work, "loose.kek")
        with open(loose, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.chmod(loose, 0o644)
        for args, code, want in [
                (["backup", "create"], 2, "--out DIR is required"),
                (["backup", "create", "--out", "rel/b"], 2, "absolute"),
                (["backup", "create", "--out", out1, "x"], 2, "unexpected"),
                (["backup", "create", "--out", out1, "--node", "x1"], 2,
                 "not a node id"),
                (["backup", "create", "--out", out1, "--kek", kek], 2,
                 "option of backup verify"),
                (["backup", "create", "--out", out1, "--timeout-ms", "0"],
                 2, "--timeout-ms"),
                (["backup", "create", "--out", out1], 1, "already exists"),
                (["backup", "create", "--out", os.path.join(work, "b9")], 1,
                 "directly under"),
                (["backup", "create", "--out", bkdir + "/.hidden"], 1,
                 "plain name"),
                (["backup", "create", "--out", bkdir + "/a b"], 1,
                 "plain name"),
                (["backup", "create", "--out", bkdir + "/x/y"], 1,
                 "directly under"),
                (["backup", "verify", out1], 2, "--kek FILE"),
                (["backup", "verify", out1, "--kek", loose], 2, "--kek"),
                (["backup", "verify", out1, out1, "--kek", kek], 2,
                 "exactly one"),
                (["backup", "verify", "/nonexistent", "--kek", kek], 5,
                 "does not verify"),
                (["backup", "list"], 2, "at least one folder"),
                (["backup", "list", kek], 2, "not a folder"),
                (["backup", "frob"], 2, "unknown command"),
                (["backup", "verify", out1, "--kek"], 2, "missing value")]:
            rc, out, err = ctl(kyufuctl, conf, env, *args)
            assert rc == code and want in err, (args, rc, out, err)
        # The same over the API, without kyufuctl's checks: refused by
        # the node, nothing written.
        S = c.s["service_pb2"]
        follower = [i for i in (1, 2, 3) if i != leader][0]
        for node, req, code, want in [
                (follower, S.CreateBackupRequest(out=""),
                 "INVALID_ARGUMENT", "absolute path"),
                (follower, S.CreateBackupRequest(out="/"),
                 "INVALID_ARGUMENT", "plain name"),
                (follower, S.CreateBackupRequest(out=bkdir + "/.."),
                 "INVALID_ARGUMENT", "plain name"),
                (follower, S.CreateBackupRequest(out="/" + "a" * 5000),
                 "INVALID_ARGUMENT", "absolute path"),
                (follower, S.CreateBackupRequest(out="/etc/kyufu-b"),
                 "INVALID_ARGUMENT", "directly under"),
                (follower, S.CreateBackupRequest(
                    out=bkdir + "/b7", min_applied_index=2 ** 63),
                 "FAILED_PRECONDITION", "below the requested"),
                (leader, S.CreateBackupRequest(out=bkdir + "/b7"),
                 "FAILED_PRECONDITION", "is the leader")]:
            try:
                c.cluster(node).CreateBackup(req, timeout=30)
                raise AssertionError("accepted: %s" % req)
            except C.grpc.RpcError as e:
                assert e.code().name == code and want in e.details(), (
                    req.out[:40], e.code(), e.details())
        assert sorted(os.listdir(bkdir)) == before, os.listdir(bkdir)

        # Hostile [backup] config: kyufud --check-config refuses, naming
        # the key.
        base = open(c.conf[1]).read().split("[backup]\n")[0]
        bad_conf = os.path.join(work, "bad.conf")
        for section, want in [
                ("directory = backups\n", "directory"),
                ("directory = %s/nope\n" % work, "directory"),
                ("kek_file = %s\n" % loose, "kek_file"),
                ("kek_file = %s\n" % bad_conf, "kek_file"),
                ("max_bytes_per_s = 5\n", "max_bytes_per_s"),
                ("max_bytes_per_s = fast\n", "max_bytes_per_s"),
                ("max_bytes_per_s = 99999999999\n", "max_bytes_per_s"),
                ("keep = 3\n", "unknown key")]:
            with open(bad_conf, "w") as f:
                f.write(base + "[backup]\n" + section)
            os.chmod(bad_conf, 0o600)
            p = subprocess.run([kyufud, "--check-config", bad_conf],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 2 and want in p.stderr, (section, p)

        # The leader only when asked; then it is its own.
        rc, out, err = ctl(kyufuctl, conf, env, "--json", "backup", "create",
                           "--out", os.path.join(bkdir, "b2"), "--node",
                           str(leader))
        assert rc == 0 and json.loads(out)["node"] == leader, (rc, out, err)
        rc, out, err = ctl(kyufuctl, conf, env, "backup", "list", bkdir)
        assert rc == 0 and out.count("signed") == 2, (rc, out, err)
        assert not [n for n in os.listdir(bkdir) if n.startswith(".")]
        print("ok")
    finally:
        stop.set()
        c.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
