"""The operation log (docs/identity.md "The operation log"), with real
processes: three kyufud nodes writing signed checkpoints, a stock gRPC
client, kyufuctl.

0. A clerk (signed in with password and TOTP through the harness) reads a
   household: the record names the clerk and household/H-001.  A clerk's
   ListStaff (ID administrators only) and a call without a session are
   refused and leave records.
1. A read of personal data leaves a RecordAccess in the chain before its
   answer returns: the ListAudit right after it sees the record (actor,
   method, objects); a stale read on a follower is recorded too (the
   follower forwards it to the leader).
2. A refused TLS connection (a certificate from another CA) to the leader
   leaves a record with the peer address and the certificate's subject.
3. Every node appends signed checkpoints; `kyufuctl audit verify
   --checkpoints --cert --store` on a stopped node's store says ok; the
   same store with one record's bytes changed is REWRITTEN at that seq,
   with its last records removed is TRUNCATED, and a checkpoint line with a
   changed hash is FORGED (exit 5 each).  An export verifies; archived
   segments verify alone with their anchors, a shortened one does not.

usage: test_oplog.py KYUFUD KYUFUCTL"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import grpc

import cluster as C


def until(what, fn, timeout=15.0, poll=0.05):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(poll)


def list_audit(c, node):
    S = c.s["service_pb2"]
    out, token = [], ""
    while True:
        r = c.ledger(node).ListAudit(S.ListRequest(page_size=1000,
                                                  page_token=token),
                                     timeout=10)
        out.extend(r.records)
        token = r.next_page_token
        if not token:
            return out


def retry_unavailable(fn):
    """A new cluster records its version (and so knows RecordAccess) within
    a few seconds of electing a leader: until then reads of personal data
    are withheld with UNAVAILABLE."""
    end = time.monotonic() + 15
    while True:
        try:
            return fn()
        except grpc.RpcError as e:
            if (e.code() != grpc.StatusCode.UNAVAILABLE
                    or time.monotonic() > end):
                raise
            time.sleep(0.1)


def ctl(kyufuctl, *args):
    p = subprocess.run([kyufuctl] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def mdb(store, out_dir, edit):
    """Copy the LMDB store `store` into out_dir through mdb_dump/mdb_load,
    passing the dump of db 'audit' through edit(list of (key, value) hex
    pairs) -> list."""
    dump = subprocess.run(["mdb_dump", "-a", store], check=True,
                          capture_output=True, text=True).stdout
    sections, cur = [], None
    for line in dump.splitlines(keepends=True):
        if line.startswith("VERSION="):
            cur = {"head": [], "data": [], "name": None}
            sections.append(cur)
        if cur is None:
            continue
        if line.startswith(" "):
            cur["data"].append(line.strip())
        elif line.startswith("DATA=END"):
            continue
        else:
            if line.startswith("database="):
                cur["name"] = line.strip().split("=", 1)[1]
            cur["head"].append(line)
    out = []
    for s in sections:
        pairs = list(zip(s["data"][0::2], s["data"][1::2]))
        if s["name"] == "audit":
            pairs = edit(pairs)
        out.append("".join(s["head"]))
        out.extend(" %s\n %s\n" % kv for kv in pairs)
        out.append("DATA=END\n")
    os.makedirs(out_dir)
    subprocess.run(["mdb_load", "-f", "/dev/stdin", out_dir],
                   input="".join(out), check=True, text=True)


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    c = C.Cluster(kyufud)
    anchor = os.path.join(c.dir, "anchor")
    os.makedirs(anchor)
    for i in range(1, 4):
        with open(c.conf[i], "a") as f:
            f.write("[audit]\ncheckpoint_file = %s/node%d.jsonl\n"
                    "checkpoint_interval_seconds = 1\n"
                    "checkpoint_records = 1\n" % (anchor, i))
    try:
        c.start_all()
        leader = c.wait_leader(15)
        S = c.s["service_pb2"]

        L = c.s["ledger_pb2"]
        G = c.s["service_pb2_grpc"]

        # 0. A clerk's GetHousehold: the record names the clerk and the
        # household, and is in the chain before the answer comes back.
        # The bootstrap administrator signs in first (PBKDF2 and TOTP take
        # seconds in the sanitizer build), outside CreateStaff's deadline.
        # CreateStaff hashes a temporary password too: one long attempt (a
        # retry would make a new password under the same key).
        c.token(C.ADMIN)
        code, resp = c.admin().call("CreateStaff", L.CreateStaff(
            staff_id="clerk1", display_name="Clerk", roles=[L.ROLE_CLERK]),
            deadline_s=60, attempt_s=45)
        assert code == grpc.StatusCode.OK, (code, resp)
        c.adopt("clerk1", resp.temporary_password)
        w = C.Writer(c, "clerk1", "oplog-clerk")
        code, resp = w.call("RegisterHousehold", L.RegisterHousehold(
            household=L.Household(
                household_no="H-001", head_name="Yamada Taro",
                address="1-2-3 Chuo", bank=L.BankAccount(
                    bank_code="0001", branch_code="001",
                    account_type="ordinary", account_no="1234567",
                    holder_kana="ヤマダ タロウ"))))
        assert code == grpc.StatusCode.OK, (code, resp)
        clerk = G.LedgerStub(c.plain_channel(leader))
        h = retry_unavailable(lambda: clerk.GetHousehold(
            S.GetHouseholdRequest(household_no="H-001"), timeout=10,
            metadata=c.bearer("clerk1")))
        assert h.head_name == "Yamada Taro", h
        got = [r for r in list_audit(c, leader)
               if r.command == "RecordAccess" and
               list(r.objects) == ["household/H-001"]]
        assert got, "no access record naming household/H-001"
        assert got[-1].actor == "clerk1" and got[-1].object == \
            "household/H-001", got[-1]
        assert "/kyufu.v1.Ledger/GetHousehold" in got[-1].message, got[-1]
        print("ok: a clerk's GetHousehold is recorded: %s" % got[-1].message)

        # 0a. Looking for a household that is not there is recorded too
        # (someone looked for this person), with outcome NOT_FOUND.
        try:
            clerk.GetHousehold(S.GetHouseholdRequest(household_no="H-404"),
                               timeout=10, metadata=c.bearer("clerk1"))
            raise AssertionError("H-404 was found")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
        missing = until("the NOT_FOUND record", lambda: [
            r for r in list_audit(c, leader)
            if r.command == "RecordAccess" and r.actor == "clerk1" and
            r.outcome == L.NOT_FOUND and "household/H-404 not found" in
            r.message] or None, timeout=10)
        print("ok: a GetHousehold that found nothing is recorded: %s"
              % missing[-1].message)

        # 0b. Denied calls leave records: a clerk asking for the staff list
        # (ID administrators only), and a call with no session at all.
        try:
            clerk.ListStaff(S.ListRequest(), timeout=10,
                            metadata=c.bearer("clerk1"))
            raise AssertionError("a clerk read the staff list")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        try:
            clerk.ListHouseholds(S.ListRequest(), timeout=10)
            raise AssertionError("a call without a session was served")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        def denials():
            recs = list_audit(c, leader)
            a = [r for r in recs if r.command == "RecordAccess" and
                 r.actor == "clerk1" and "/kyufu.v1.Ledger/ListStaff" in
                 r.message and r.outcome == L.PERMISSION_DENIED]
            b = [r for r in recs if r.command == "RecordAccess" and
                 r.actor == "" and "/kyufu.v1.Ledger/ListHouseholds" in
                 r.message and "unauthenticated" in r.message]
            return (a, b) if a and b else None
        denied = until("the denial records", denials, timeout=10)
        assert denied[0] and denied[1], denied
        print("ok: denials are recorded: %s | %s"
              % (denied[0][-1].message, denied[1][-1].message))

        # 1. A read of personal data: recorded before its answer returns.
        retry_unavailable(lambda: c.ledger(leader).ListHouseholds(
            S.ListRequest(page_size=10), timeout=10))
        recs = retry_unavailable(lambda: list_audit(c, leader))
        mine = [r for r in recs if r.command == "RecordAccess"
                and "/kyufu.v1.Ledger/ListHouseholds" in r.message]
        assert mine, "no access record of ListHouseholds: %s" % recs
        first_len = len(recs)
        # The ListAudit just answered is in the chain before its answer:
        # the next one shows it, naming the range it returned.
        again = list_audit(c, leader)
        rec = [r for r in again[first_len - 1:]
               if r.command == "RecordAccess" and
               "/kyufu.v1.Ledger/ListAudit" in r.message]
        assert rec, "no access record of the ListAudit: %s" % again[-3:]
        assert list(rec[-1].objects) == ["audit/1-%d" % first_len], rec[-1]
        # Through a follower (forwarded: only the leader can record).
        follower = 1 if leader != 1 else 2
        n_before = len(list_audit(c, leader))
        c.ledger(follower).ListHouseholds(
            S.ListRequest(page_size=10, read=S.ReadOptions(stale=True)),
            timeout=10)
        after = list_audit(c, leader)
        assert any("/kyufu.v1.Ledger/ListHouseholds" in r.message
                   for r in after[n_before:]), after[n_before:]
        # The forwarded record names the client's certificate subject as
        # the follower saw it, blanks inside it included (forward.c).
        key, cert = C.make_cert(c.dir, "counter-spaced", c.ca_key, c.ca,
                                "counter 3")
        ch = c.secure_channel(follower, cert, key)
        try:
            n_before = len(list_audit(c, leader))
            c.s["service_pb2_grpc"].LedgerStub(ch).ListHouseholds(
                S.ListRequest(page_size=10, read=S.ReadOptions(stale=True)),
                timeout=10)
        finally:
            ch.close()
        fwd = [r for r in list_audit(c, leader)[n_before:]
               if r.command == "RecordAccess" and
               "/kyufu.v1.Ledger/ListHouseholds" in r.message]
        assert fwd and " cert /CN=counter 3" in fwd[-1].message, fwd
        print("ok: reads of personal data leave an access record first")

        # 2. A TLS refusal on the leader leaves a record.
        ch = grpc.secure_channel(c.api[leader], c.creds(c.other_cert,
                                                        c.other_key))
        try:
            c.s["service_pb2_grpc"].ClusterStub(ch).Status(
                S.StatusRequest(), timeout=3)
            raise AssertionError("a certificate of another CA was accepted")
        except grpc.RpcError:
            pass
        ch.close()
        tls = until("a TLS refusal record", lambda: [
            r for r in list_audit(c, leader)
            if r.command == "RecordAccess" and "connection" in r.message
            and "127.0.0.1" in r.message])
        assert tls[0].outcome == c.s["ledger_pb2"].PERMISSION_DENIED, tls[0]
        print("ok: a refused TLS connection leaves a record: %s"
              % tls[0].message)

        # 3. Checkpoints.  Wait until every node anchored the chain's head.
        head = list_audit(c, leader)[-1].seq

        def anchored():
            for i in range(1, 4):
                path = os.path.join(anchor, "node%d.jsonl" % i)
                if not os.path.exists(path):
                    return False
                with open(path) as f:
                    seqs = [json.loads(line)["seq"] for line in f]
                if not seqs or max(seqs) < head:
                    return False
            return True
        until("checkpoints of every node at seq %d" % head, anchored)
        cps = os.path.join(c.dir, "checkpoints.jsonl")
        with open(cps, "w") as out:
            for i in range(1, 4):
                out.write(open(os.path.join(anchor, "node%d.jsonl" % i))
                          .read())
        certs = []
        for i in range(1, 4):
            certs += ["--cert", os.path.join(c.dir, "node%d" % i,
                                             "node.pem")]
        victim = 3 if leader != 3 else 2
        c.kill(victim, sig=15)
        c.wait_exit(victim, 20)
        store = os.path.join(c.dir, "node%d" % victim, "data", "ledger")
        # The store is sealed (encryption at rest): the offline reads get
        # the node's KEK, wrapped cluster key, CA and id.
        keys = ["--kek", os.path.join(c.dir, "node%d" % victim, "kek.key"),
                "--cmk", c.cmk_path(victim), "--ca", c.ca,
                "--node", str(victim)]
        rc, out = ctl(kyufuctl, "audit", "verify", "--checkpoints", cps,
                      *certs, "--store", store)
        assert rc != 0 and "--kek" in out, (rc, out)
        print("ok: a sealed store without its keys is refused, naming them")
        rc, out = ctl(kyufuctl, "audit", "verify", "--checkpoints", cps,
                      *certs, "--store", store, *keys)
        assert rc == 0 and "ok" in out, (rc, out)
        print("ok: node %d's store verifies against the checkpoints" % victim)

        # A record rewritten in place.  Audit records are sealed (AES-256-GCM,
        # docs/storage.md "Sealed values"): one byte of the first record's
        # ciphertext changed fails its tag, and the read stops there, naming
        # the corrupt store, before any hash is compared.
        found = []

        def rewrite(pairs):
            out = []
            for k, v in pairs:
                if not found:
                    assert v.startswith("00"), ("audit value not sealed", v[:8])
                    found.append(int(k, 16))
                    i = len(v) // 2 & ~1
                    v = v[:i] + "%02x" % (int(v[i:i + 2], 16) ^ 0x01) + v[i + 2:]
                out.append((k, v))
            return out
        rewritten = os.path.join(c.dir, "rewritten")
        mdb(store, rewritten, rewrite)
        rc, out = ctl(kyufuctl, "audit", "verify", "--checkpoints", cps,
                      *certs, "--store", rewritten, *keys)
        assert found and rc != 0 and "corrupt" in out, (found, rc, out)
        print("ok: a rewritten (sealed) record is refused: %s"
              % out.strip().splitlines()[-1])

        # The chain's last records removed.
        truncated = os.path.join(c.dir, "truncated")
        mdb(store, truncated, lambda pairs: pairs[:-2])
        rc, out = ctl(kyufuctl, "audit", "verify", "--checkpoints", cps,
                      *certs, "--store", truncated, *keys)
        last = list_audit(c, leader)[-1].seq
        assert rc == 5 and "TRUNCATED: the chain ends at seq" in out, \
            (rc, out)
        ends = int(out.split("TRUNCATED: the chain ends at seq ")[1].split()[0])
        assert ends < head <= last, (ends, head, last, out)
        print("ok: a truncated chain is found")

        # A forged checkpoint line: another hash under a copied signature.
        forged = os.path.join(c.dir, "forged.jsonl")
        lines = open(cps).read().splitlines()
        cp = json.loads(lines[-1])
        cp["hash"] = ("0" if cp["hash"][0] != "0" else "1") + cp["hash"][1:]
        with open(forged, "w") as f:
            f.write("\n".join(lines + [json.dumps(cp)]) + "\n")
        rc, out = ctl(kyufuctl, "audit", "verify", "--checkpoints", forged,
                      *certs, "--store", store, *keys)
        assert rc == 5 and "FORGED" in out and \
            "line %d" % (len(lines) + 1) in out, (rc, out)
        print("ok: a forged checkpoint line is found")

        # An export of the store verifies on its own.
        exp = os.path.join(c.dir, "export.jsonl")
        rc, out = ctl(kyufuctl, "audit", "export", "--store", store, *keys,
                      "--out", exp)
        assert rc == 0, (rc, out)
        rc, out = ctl(kyufuctl, "audit", "verify", "--export", exp)
        assert rc == 0, (rc, out)
        print("ok: an export verifies")

        # Archived segments verify alone, anchors included; a segment with a
        # line removed does not.
        arch = os.path.join(c.dir, "archive")
        os.makedirs(arch)
        rc, out = ctl(kyufuctl, "audit", "archive", "--store", store, *keys,
                      "--before", str(int(time.time() * 1000) + 86400000),
                      "--segment-records", "4", "--out", arch)
        assert rc == 0, (rc, out)
        segs = sorted(glob.glob(os.path.join(arch, "*.jsonl")))
        assert len(segs) >= 2, (segs, out)
        for seg in segs:
            rc, out = ctl(kyufuctl, "audit", "verify", "--export", seg)
            assert rc == 0 and "anchor" in out and "matches" in out, (rc, out)
        lines = open(segs[0]).read().splitlines(keepends=True)
        with open(segs[0], "w") as f:
            f.writelines(lines[:-1])
        rc, out = ctl(kyufuctl, "audit", "verify", "--export", segs[0])
        assert rc == 5 and "ANCHOR" in out, (rc, out)
        print("ok: archived segments verify alone; a shortened one does not")
    except BaseException:
        print(c.logs(), file=sys.stderr)
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
