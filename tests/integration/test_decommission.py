"""Decommissioning (issue 12 Deliver 4; docs/decommission.md).

A three-node cluster holds canary household data and, beside each node's
data folder, the KEK file and wrapped cluster key cluster init makes, and
one node's backup in a [backup] directory the nodes share.  Refused first,
with nothing erased and nothing changed: a clerk's request (wrong role),
the requester approving their own, a clerk's approval, an approval of
another id, EraseNode before the approval and with a wrong id, kyufuctl's
hostile command lines.  Then two operators decommission it: every kyufud
exits 0, no file or folder remains under any data folder, no canary is in
any file left in the test's folder (logs, certificate included); the key
files and the backup are gone, a foreign folder in the backup directory
stays; the certificate verifies and lists every file that existed, the key
files as keys with their sizes and hashes, the backup's files as kind
backup in its node's report only; a changed byte, a re-indented copy and
another CA are refused; the HTML copy escapes what it shows.

usage: test_decommission.py KYUFUD KYUFUCTL"""
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

import cluster as C
import workload as W

CANARY_NAME = "Kanariya Zzqx"
CANARY_ADDR = "9-9-9 Canaryzzqx-cho"
CANARY_ACCOUNT = "7391846"
CANARIES = [CANARY_NAME, CANARY_ADDR, CANARY_ACCOUNT]
STATEMENT = 'End of contract <script>alert("x")</script> & \'all\' data'


def ctl(kyufuctl, conf, env, *args, timeout=120):
    p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def files_under(d):
    out = set()
    for root, dirs, files in os.walk(d):
        for f in files:
            out.add(os.path.join(root, f))
    return out


def encodings(s):
    b = s.encode()
    return [b, s.encode("utf-16-le"), b.hex().encode(), b[::-1]]


def scan(top, skip=()):
    """Files under top holding a canary in any encoding above."""
    hits = []
    for root, dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            if p in skip:
                continue
            with open(p, "rb") as fh:
                data = fh.read()
            for s in CANARIES:
                if any(e in data for e in encodings(s)):
                    hits.append((p, s))
    return hits


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    # Backups in one [backup] directory shared by the nodes (docs/backup.md):
    # each node erases its own, a foreign folder stays.
    bk_work = tempfile.mkdtemp(prefix="kyufu-decom-bk-", dir="/tmp")
    bkdir = os.path.join(bk_work, "backups")
    os.makedirs(bkdir)
    bk_kek = os.path.join(bk_work, "backup.kek")
    fd = os.open(bk_kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    c = C.Cluster(kyufud, extra_conf={
        i: "[backup]\ndirectory = %s\nkek_file = %s\n" % (bkdir, bk_kek)
        for i in (1, 2, 3)})
    t0 = time.monotonic()

    def mark(what):
        print("%6.2f s  %s" % (time.monotonic() - t0, what), flush=True)
    try:
        c.start_all()
        c.wait_leader(15)
        L = c.s["ledger_pb2"]
        S = c.s["service_pb2"]
        led = W.Ledger(c, "decom")
        led.setup()
        h = led.household("H-CANARY")
        h.head_name = CANARY_NAME
        h.address = CANARY_ADDR
        h.bank.account_no = CANARY_ACCOUNT
        W.must(led.clerk.call("RegisterHousehold",
                              L.RegisterHousehold(household=h)), "canary")
        for sid in ("op1", "op2"):
            c.account(sid, [L.ROLE_OPERATOR], "Operator " + sid)
        env = {s: c.ctl_env(s) for s in ("op1", "op2", "clerk1")}
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\n" % (",".join(c.api[i] for i in (1, 2, 3)),
                                     c.ca, c.client_cert, c.client_key))
        data = {i: os.path.join(c.dir, "node%d" % i, "data")
                for i in (1, 2, 3)}
        # Each node's real key files as cluster init leaves them (cluster.py:
        # the KEK file and the wrapped CMK beside the data folder, named by
        # [keys] kek_file and cmk_file): path -> (size, SHA-256).
        key_files = {}
        for i in (1, 2, 3):
            key_files[i] = {}
            for p in (os.path.join(c.dir, "node%d" % i, "kek.key"),
                      c.cmk_path(i)):
                with open(p, "rb") as fh:
                    blob = fh.read()
                assert len(blob) > 0, p
                key_files[i][p] = (len(blob),
                                   hashlib.sha256(blob).hexdigest())
        out = os.path.join(c.dir, "cert-out")

        def alive_all():
            for i in (1, 2, 3):
                assert c.alive(i), "node %d stopped" % i

        def refused(who, args, rc, words):
            r, o, e = ctl(kyufuctl, conf, env[who], *args)
            assert r == rc and words in e, (args, r, o, e)

        mark("cluster, canary, accounts")
        # -- hostile command lines: exit 2, nothing asked of a node
        for args in (["decommission", "request"],
                     ["decommission", "request", "--statement", ""],
                     ["decommission", "request", "--statement", "x" * 401],
                     ["decommission", "request", "--statement", "a\x01b"],
                     ["decommission", "request", "--statement", "s", "extra"],
                     ["decommission", "request", "--statement", "s", "--out",
                      out],
                     ["decommission", "approve"],
                     ["decommission", "approve", "abc"],
                     ["decommission", "approve", "0"],
                     ["decommission", "approve", "-1"],
                     ["decommission", "approve", "07"],
                     ["decommission", "approve", "99999999999999999999999"],
                     ["decommission", "approve", "5", "--bogus"],
                     ["decommission", "erase", "5"],
                     ["decommission", "erase", "5", "--out", conf],
                     ["decommission", "erase", "x", "--out", out],
                     ["decommission", "erase", "5", "--out", out, "--ca",
                      c.ca],
                     ["decommission", "verify", conf, "--ca-dir", c.dir],
                     ["decommission", "verify"],
                     ["decommission", "verify", "/nonexistent/cert.json",
                      "--ca", c.ca],
                     ["decommission", "verify", conf, "--ca", c.ca],
                     ["decommission", "verify", conf, "--ca", conf],
                     ["decommission", "frobnicate"]):
            r, o, e = ctl(kyufuctl, conf, env["op1"], *args)
            assert r in (2, 5) and "kyufuctl:" in e, (args, r, o, e)
        assert not os.path.exists(os.path.join(out, "erasure-certificate.json"))
        # No confirmation and no terminal: refused, nothing requested.
        refused("op1", ["decommission", "request", "--statement", STATEMENT],
                2, "--yes")
        r, o, e = ctl(kyufuctl, conf, env["op1"], "decommission", "show")
        assert r == 1 and "NOT_FOUND" in e, (r, o, e)

        mark("hostile command lines")
        # -- wrong role
        refused("clerk1", ["decommission", "request", "--statement",
                           STATEMENT, "--yes"], 1, "PERMISSION_DENIED")
        # -- the first operator
        r, o, e = ctl(kyufuctl, conf, env["op1"], "--json", "decommission",
                      "request", "--statement", STATEMENT, "--yes")
        assert r == 0, (r, o, e)
        dec_id = json.loads(o)["id"]
        assert dec_id > 0
        # the same operator twice, a clerk, another id: refused
        refused("op1", ["decommission", "approve", str(dec_id), "--yes"], 1,
                "another operator must approve it")
        refused("clerk1", ["decommission", "approve", str(dec_id), "--yes"],
                1, "PERMISSION_DENIED")
        refused("op2", ["decommission", "approve", str(dec_id + 1000),
                        "--yes"], 1, "not found")
        # erasing before the approval: refused by kyufuctl and by the node
        refused("op1", ["decommission", "erase", str(dec_id), "--out", out,
                        "--ca-dir", os.path.dirname(c.ca), "--yes"], 1,
                "not the approved one")
        op1 = c.bearer("op1")
        try:
            c.cluster(1).EraseNode(S.EraseNodeRequest(decommission_id=0),
                                   metadata=op1, timeout=10)
            assert False, "EraseNode with id 0 answered OK"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        for i in (1, 2, 3):
            try:
                c.cluster(i).EraseNode(
                    S.EraseNodeRequest(decommission_id=dec_id),
                    metadata=op1, timeout=10)
                assert False, "EraseNode before approval answered OK"
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
        alive_all()
        r, o, e = ctl(kyufuctl, conf, env["op2"], "--json", "decommission",
                      "show")
        assert r == 0 and json.loads(o)["requested_by"] == "op1", (r, o, e)
        assert json.loads(o).get("approved_by", "") == "", o

        # -- the second operator
        r, o, e = ctl(kyufuctl, conf, env["op2"], "decommission", "approve",
                      str(dec_id), "--yes")
        assert r == 0 and "approved" in o, (r, o, e)
        refused("op1", ["decommission", "request", "--statement", "again",
                        "--yes"], 1, "already approved")
        # a wrong id, a clerk: refused by the node, which keeps running
        for i in (1, 2, 3):
            for md, want in ((op1, grpc.StatusCode.FAILED_PRECONDITION),
                             (c.bearer("clerk1"),
                              grpc.StatusCode.PERMISSION_DENIED)):
                try:
                    c.cluster(i).EraseNode(
                        S.EraseNodeRequest(decommission_id=dec_id + 1),
                        metadata=md, timeout=10)
                    assert False, "EraseNode with a wrong id answered OK"
                except grpc.RpcError as e:
                    assert e.code() == want, (i, e)
        alive_all()

        # A backup by one node, and a folder no node wrote.
        b1 = os.path.join(bkdir, "b1")
        r, o, e = ctl(kyufuctl, conf, env["op1"], "--json", "backup",
                      "create", "--out", b1)
        assert r == 0, (r, o, e)
        bk_node = json.loads(o)["node"]
        bk_files = files_under(b1)
        assert os.path.join(b1, "manifest.json") in bk_files, bk_files
        foreign = os.path.join(bkdir, "foreign")
        os.makedirs(foreign)
        with open(os.path.join(foreign, "keep"), "w") as fh:
            fh.write("not a backup of this cluster's nodes\n")
        # Every node deletes its bootstrap-admin file on its own once its
        # store has an account (node/auth_timer.c, a 1 s tick): the list of
        # what existed is taken once that has happened everywhere, so that
        # it is the list the erasure starts from.
        deadline = time.monotonic() + 15
        while any(os.path.exists(os.path.join(data[i], "bootstrap-admin"))
                  for i in (1, 2, 3)):
            assert time.monotonic() < deadline, "bootstrap-admin not deleted"
            time.sleep(0.1)
        before = {i: files_under(data[i]) | set(key_files[i])
                  for i in (1, 2, 3)}
        for i in (1, 2, 3):
            assert any("ledger" in p for p in before[i]), before[i]
        mark("refusals")
        # -- erase
        r, o, e = ctl(kyufuctl, conf, env["op1"], "decommission", "erase",
                      str(dec_id), "--out", out, "--ca-dir",
                      os.path.dirname(c.ca), "--yes")
        assert r == 0, (r, o, e)
        for i in (1, 2, 3):
            assert c.wait_exit(i, 30) == 0, "node %d exit status" % i
            assert not os.path.exists(data[i]), files_under(data[i])
            for p in key_files[i]:
                assert not os.path.exists(p), p
        assert not os.path.exists(b1), files_under(b1)
        assert os.listdir(bkdir) == ["foreign"], os.listdir(bkdir)
        assert os.path.exists(os.path.join(foreign, "keep"))
        mark("erased")
        hits = scan(c.dir)
        assert hits == [], hits
        mark("scanned")

        # -- the certificate
        cert_path = os.path.join(out, "erasure-certificate.json")
        r, o, e = ctl(kyufuctl, conf, env["op1"], "decommission", "verify",
                      cert_path, "--ca", c.ca)
        assert r == 0 and o.startswith("valid"), (r, o, e)
        mark("verified")
        with open(cert_path, "rb") as fh:
            raw = fh.read()
        doc = json.loads(raw)
        ca_der = subprocess.run(["openssl", "x509", "-in", c.ca, "-outform",
                                 "DER"], stdout=subprocess.PIPE,
                                check=True).stdout
        assert doc["cluster_id"] == hashlib.sha256(ca_der).hexdigest(), doc
        assert doc["decommission"]["requested_by"] == "op1"
        assert doc["decommission"]["approved_by"] == "op2"
        assert doc["decommission"]["statement"] == STATEMENT
        assert doc["complete"] is True and len(doc["nodes"]) == 3
        assert "NIST SP 800-88" in doc["method"]
        for i, node in enumerate(doc["nodes"], 1):
            rep = json.loads(node["report"])
            assert rep["node"] == i and rep["complete"] is True, rep
            listed = {f["path"]: f for f in node["files"]}
            # Raft's open segments may be renamed between the listing above
            # and the erasure; every other file must be named.
            for p in before[i]:
                if "/open-" not in p:
                    assert p in listed, (p, sorted(listed))
            for f in node["files"]:
                assert f["overwritten"] and f["removed"], f
                assert len(f["sha256"]) == 64 and f["size"] >= 0, f
            backups = {p for p, f in listed.items() if f["kind"] == "backup"}
            assert backups == (bk_files if i == bk_node else set()), (
                i, bk_node, backups)
            for p, (size, sha) in key_files[i].items():
                k = listed[p]
                assert k["kind"] == "key" and k["sha256"] == sha, k
                assert k["size"] == size, k

        mark("certificate content")
        # -- tampering: one changed byte, a re-indented copy, another CA
        def verify_bytes(b, ca=c.ca):
            p = os.path.join(c.dir, "tampered.json")
            with open(p, "wb") as fh:
                fh.write(b)
            return ctl(kyufuctl, conf, env["op1"], "decommission", "verify",
                       p, "--ca", ca)
        pos = raw.index(b'"size": ') + len(b'"size": ')
        digit = raw[pos:pos + 1]
        changed = raw[:pos] + (b"8" if digit != b"8" else b"9") + raw[pos + 1:]
        for b in (changed, raw.replace(b"op2", b"op3", 1),
                  json.dumps(doc).encode() + b"\n", raw[:-1], raw + b" "):
            r, o, e = verify_bytes(b)
            assert r == 5 and "refused" in e, (r, o, e)
        r, o, e = verify_bytes(raw, c.other_ca)
        assert r == 5 and "refused" in e, (r, o, e)
        r, o, e = verify_bytes(raw)
        assert r == 0, (r, o, e)

        mark("certificate checks")
        # -- the HTML copy: same content, escaped
        with open(os.path.join(out, "erasure-certificate.html")) as fh:
            html = fh.read()
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "&quot;x&quot;" in html and "&#39;all&#39;" in html
        for node in doc["nodes"]:
            for f in node["files"]:
                assert f["sha256"] in html
        print("decommission: %d files erased on 3 nodes, certificate verified"
              % sum(len(n["files"]) for n in doc["nodes"]))
    except BaseException:
        c.logs()
        raise
    finally:
        c.close()
        shutil.rmtree(bk_work, ignore_errors=True)


if __name__ == "__main__":
    main()
