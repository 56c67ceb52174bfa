"""Restore drill (issue 12; docs/restore.md): a new cluster from an
encrypted backup, its cluster master key (CMK) carried over.

  1. Cluster A (encryption at rest on, as cluster.py makes it) takes
     writes (batch 1, acknowledged); writes continue while `kyufuctl backup
     create` runs; A is wiped (stopped, its folders removed).
  2. Refusals change nothing (no store or Raft directory appears in the
     new cluster B, its CMK files keep their bytes): a wrong backup KEK, a
     backup of another cluster than --ca, a tampered chunk, a node folder
     that is not empty, missing options; kyufud --seed with a key operand
     that is not 32 bytes.
  3. `kyufuctl restore --backup` seeds B (a new CA: a new cluster
     identity): each node reports the manifest's applied index and state
     digest; every node's CMK file is rewritten (the backup's CMK wrapped
     under that node's KEK with B's binding).
  4. B starts without bootstrapping, elects a leader; every batch-1
     household reads back through the API; B takes a write and converges
     above the restored index.

usage: test_restore.py KYUFUD KYUFUCTL"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading

import cluster as C
import workload as W


def write_kek(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


def restore(kyufuctl, kyufud, *args):
    p = subprocess.run([kyufuctl, "restore", "--kyufud", kyufud] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def decrypted_stream(bdir, kek_path):
    """The backup's snapshot stream and CMK, decrypted here from the format
    (docs/backup.md "Chunks", "Keys"), to feed kyufud --seed damaged
    copies of a real stream."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    with open(kek_path) as f:
        kek = bytes.fromhex(f.read().strip())
    with open(os.path.join(bdir, "manifest.json")) as f:
        m = json.load(f)
    bid = bytes.fromhex(m["backup_id"])

    def unwrap(hexs, label):
        w = bytes.fromhex(hexs)
        return AESGCM(kek).decrypt(w[:12], w[12:], label + bid)
    bk = unwrap(m["bk_wrapped"], b"kyufu-backup-key v1 bk")
    cmk = unwrap(m["cmk_wrapped"], b"kyufu-backup-key v1 cmk")
    stream = b""
    n = len(m["chunks"])
    for i, c in enumerate(m["chunks"]):
        with open(os.path.join(bdir, c["file"]), "rb") as f:
            d = f.read()
        aad = (b"kyufu-backup-chunk v1" + bid + i.to_bytes(4, "big") +
               bytes([1 if i == n - 1 else 0]))
        stream += AESGCM(bk).decrypt(d[:12], d[12:], aad)
    return stream, cmk


def seed_from_pipe(kyufud, conf, data, digest, cmk):
    """kyufud --seed reading `data` from a pipe (as kyufuctl restore feeds
    it) and the CMK from another: its exit status and stderr."""
    r, w = os.pipe()
    cr, cw = os.pipe()
    os.write(cw, cmk)
    os.close(cw)
    p = subprocess.Popen([kyufud, "--seed", conf, "/dev/fd/%d" % r, digest,
                          "/dev/fd/%d" % cr], pass_fds=(r, cr),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    os.close(cr)
    try:
        with os.fdopen(w, "wb") as f:
            f.write(data)
    except BrokenPipeError:
        pass  # kyufud stopped reading: its status says why
    out, err = p.communicate(timeout=60)
    return p.returncode, err.decode()


def snapshot_of(b):
    """What a refusal must leave as it was: B's CMK files' bytes, and no
    ledger or raft directory in any node's data folder."""
    out = {}
    for i in (1, 2, 3):
        for sub in ("ledger", "raft"):
            p = os.path.join(b.dir, "node%d" % i, "data", sub)
            assert not os.path.exists(p), "a refusal left " + p
        with open(b.cmk_path(i), "rb") as f:
            out[i] = f.read()
    return out


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="kyufu-rs-", dir="/tmp")
    bkdir = os.path.join(work, "backups")
    os.makedirs(bkdir)
    kek = os.path.join(work, "backup.kek")
    write_kek(kek)
    extra = {i: "[backup]\ndirectory = %s\nkek_file = %s\n" % (bkdir, kek)
             for i in (1, 2, 3)}
    a = C.Cluster(kyufud, extra_conf=extra)
    b = None
    stop = threading.Event()
    writer = None
    try:
        # ---- 1. cluster A: writes, a backup while writes go on, wiped
        a.start_all()
        leader = a.wait_leader(15)
        L = a.s["ledger_pb2"]
        led = W.Ledger(a, "restore")
        led.setup()
        a.account("op1", [L.ROLE_OPERATOR], "Operator")
        env = a.ctl_env("op1")
        conf = os.path.join(work, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\n" % (",".join(a.api[i] for i in (1, 2, 3)),
                                     a.ca, a.client_cert, a.client_key))
        batch1 = []
        for k in range(20):
            no = "B1-%04d" % k
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household(no))), no)
            batch1.append(no)
        during = []

        def keep_writing():
            w = W.cluster_writer(a, "clerk1", "restore-during")
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
        p = subprocess.run([kyufuctl, "--config", conf, "--json", "backup",
                            "create", "--out", out1], capture_output=True,
                           text=True, timeout=120, env=env)
        stop.set()
        writer.join(30)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        assert during, "no write went through during the backup"
        with open(os.path.join(out1, "manifest.json")) as f:
            man = json.load(f)
        digest, index = man["state_digest"], man["applied_index"]
        old_ca = os.path.join(work, "old-ca.pem")
        shutil.copy(a.ca, old_ca)
        accounts = dict(a.accounts)
        a.stop_clean()
        a.close()  # wiped: its folders removed
        assert os.environ.get("KYUFU_KEEP_TMP") or not os.path.exists(a.dir)
        a = None
        print("backup: index %d digest %s..., %d writes during it"
              % (index, digest[:16], len(during)))

        # ---- 2. refusals, nothing changed
        b = C.Cluster(kyufud)
        before = snapshot_of(b)
        other_kek = os.path.join(work, "other.kek")
        write_kek(other_kek)
        tampered = os.path.join(work, "tampered")
        shutil.copytree(out1, tampered)
        with open(os.path.join(tampered, "chunk-000000.bin"), "r+b") as f:
            f.seek(40)
            x = f.read(1)
            f.seek(40)
            f.write(bytes([x[0] ^ 1]))
        good = ["--dir", b.dir, "--backup", out1, "--kek", kek, "--ca", old_ca]
        for args, code, text in (
                (["--dir", b.dir, "--backup", out1, "--kek", other_kek,
                  "--ca", old_ca], 5, "refused"),
                (["--dir", b.dir, "--backup", out1, "--kek", kek,
                  "--ca", b.ca], 5, "refused"),
                (["--dir", b.dir, "--backup", tampered, "--kek", kek,
                  "--ca", old_ca], 5, "refused"),
                (["--dir", b.dir, "--backup", out1, "--ca", old_ca], 2,
                 "--kek"),
                (["--dir", b.dir, "--backup", out1, "--kek", kek], 2, "--ca"),
                (good + ["--digest", digest], 2, "manifest"),
                (good + ["--stream", out1], 2, "one of"),
                (["--dir", b.dir, "--backup", out1, "--kek",
                  os.path.join(work, "none"), "--ca", old_ca], 2, "--kek"),
                (["--dir", work, "--backup", out1, "--kek", kek, "--ca",
                  old_ca], 2, "no node1/data")):
            rc, out, err = restore(kyufuctl, kyufud, *args)
            assert rc == code and text in err, (args, rc, out, err)
            assert snapshot_of(b) == before, args
        # A real stream through a pipe, cut or with one byte flipped: the
        # seed restores as it reads, and refuses at the end (the trailer)
        # with nothing left behind.
        stream, cmk = decrypted_stream(out1, kek)
        flipped = bytearray(stream)
        flipped[len(stream) // 2] ^= 1
        for what, data in (("cut", stream[:len(stream) // 2]),
                           ("flipped", bytes(flipped)),
                           ("one byte more", stream + b"\0")):
            rc, err = seed_from_pipe(kyufud, b.conf[1], data, digest, cmk)
            assert rc == 4 and "trailer does not match" in err and \
                "nothing changed" in err, (what, rc, err)
            assert snapshot_of(b) == before, what
        short = os.path.join(work, "short.key")
        with open(short, "wb") as f:
            f.write(b"\x01" * 31)
        p = subprocess.run([kyufud, "--seed", b.conf[1], short, digest,
                            short], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 1 and "32 key bytes" in p.stderr, \
            (p.returncode, p.stderr)
        assert snapshot_of(b) == before
        busy = os.path.join(b.dir, "node3", "data", "raft")
        os.makedirs(busy)
        rc, out, err = restore(kyufuctl, kyufud, *good)
        assert rc == 2 and "nothing changed" in err, (rc, out, err)
        os.rmdir(busy)
        assert snapshot_of(b) == before
        print("refusals: wrong KEK, other cluster, tampered chunk, a cut, "
              "flipped or longer stream through a pipe, busy node, bad "
              "options: nothing changed")

        # ---- 3. restore into B
        rc, out, err = restore(kyufuctl, kyufud, *good)
        assert rc == 0 and "restored: 3 nodes seeded" in out, (rc, out, err)
        lines = re.findall(r"seeded node (\d): applied index (\d+) term \d+, "
                           r"state digest ([0-9a-f]{64}), 3 voters", out)
        assert [(int(n), int(i), d) for n, i, d in lines] == \
            [(n, index, digest) for n in (1, 2, 3)], out
        for i in (1, 2, 3):
            with open(b.cmk_path(i), "rb") as f:
                assert f.read() != before[i], "node %d CMK not rewrapped" % i
        rc, out, err = restore(kyufuctl, kyufud, *good)
        assert rc == 2 and "exists" in err, (rc, out, err)

        # ---- 4. B runs on the restored state
        b.start_all()
        lead = b.wait_leader(20)
        S = b.s["service_pb2"]
        # The restored ledger's staff (their passwords came with it) sign
        # in on B with B's client certificate.
        b.accounts = accounts
        md = b.bearer("clerk1")
        for no in batch1:
            h = b.retry_unavailable(lambda: b.ledger(
                b.wait_leader(20)).GetHousehold(S.GetHouseholdRequest(
                    household_no=no), metadata=md, timeout=10))
            assert h.household_no == no, no
        wb = C.Writer(b, "clerk1", "restore-b")
        wb.node = lead
        W.must(wb.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("C-0001")), deadline_s=20.0), "B write")
        wb.close()
        st = b.wait_converged(20)
        assert st.applied_index > index, (st.applied_index, index)
        print("cluster B: %d batch-1 households read back, a write taken, "
              "converged at index %d" % (len(batch1), st.applied_index))
        b.stop_clean()
    finally:
        stop.set()
        if a is not None:
            a.close()
        if b is not None:
            b.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
