"""Ledger.SettleWrite on three kyufud processes, driven by Debian's
python3-grpcio (docs/api.md "Settling an unknown outcome"):

  - a write that was applied: SettleWrite answers APPLIED with the same
    result the write returned (record, raft index, audit seq), through a
    follower too, and writes nothing (the audit trail does not grow);
  - an unused key: NOT_APPLIED (code ABORTED, a fence); the original write
    sent afterwards with that key is refused with ABORTED and applies
    nothing; settling again answers the same fence;
  - a write whose first result was a ledger rejection: APPLIED with that
    rejection;
  - malformed settles change nothing: no header or no key ->
    INVALID_ARGUMENT before Raft (the audit trail does not grow); an actor
    that is not staff -> PERMISSION_DENIED and the key is NOT fenced (the
    original then applies); another client id with the same sequence is
    another key (settling it does not touch ours);
  - kyufuctl write settle --json says the same, exit 0 (APPLIED,
    NOT_APPLIED); without --idempotency-key it is a usage error (exit 2);
  - the replicas converge to the same state digest.

usage: test_settle.py KYUFUD KYUFUCTL"""
import json
import os
import subprocess
import sys
import time

import grpc

import cluster as C
import workload as W


def settle(c, node, actor, client_id, seq, deadline_s=30.0, md=None):
    """(grpc code, SettleWriteResponse or details), retrying UNAVAILABLE
    on the other nodes with the same request (settling is idempotent).
    md: metadata instead of the actor's own token."""
    S, L = c.s["service_pb2"], c.s["ledger_pb2"]
    req = S.SettleWriteRequest(header=S.RequestHeader(
        actor=actor, terminal="it",
        key=L.IdempotencyKey(client_id=client_id, sequence=seq)))
    end = time.monotonic() + deadline_s
    while True:
        try:
            return grpc.StatusCode.OK, c.ledger(node).SettleWrite(
                req, timeout=5, metadata=md)
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                grpc.StatusCode.DEADLINE_EXCEEDED):
                return e.code(), e.details()
            c.reset_channel(node)
            assert time.monotonic() < end, "settle: no answer"
            node = node % c.n + 1
            time.sleep(0.05)


def audit_count(c, node):
    """Audit records of writes (the operation log's records of refused
    calls and reads left out: they change nothing)."""
    return len(W.audit_writes(c, node))


def raw_settle(c, node, req):
    try:
        c.ledger(node).SettleWrite(req, timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    with C.Cluster(kyufud) as c:
        c.start_all()
        leader = c.wait_leader(15)
        follower = 1 if leader != 1 else 2
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        led = W.Ledger(c, "settle")
        led.setup()
        APPLIED, NOT_APPLIED = L.WRITE_APPLIED, L.WRITE_NOT_APPLIED

        # 1. Applied: the same result the write returned, writing nothing.
        w = C.Writer(c, "clerk1", "fe-1")
        first = W.must(w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-1"))), "register")
        n_audit = audit_count(c, leader)
        for node in (leader, follower):
            code, r = settle(c, node, "clerk1", "fe-1", w.seq)
            assert code == grpc.StatusCode.OK, (code, r)
            assert r.outcome == APPLIED, r
            assert r.result.code == L.OK, r
            assert r.result.household.household_no == "H-1", r
            assert r.result.raft_index == first.result.raft_index, r
            assert r.result.audit_seq == first.result.audit_seq, r
            assert r.result.household == first.result.household
        assert audit_count(c, leader) == n_audit

        # 2. Unused key: fenced; the original arriving later is refused.
        code, fence = settle(c, follower, "clerk1", "fe-1", w.seq + 1)
        assert code == grpc.StatusCode.OK, (code, fence)
        assert fence.outcome == NOT_APPLIED, fence
        assert fence.result.code == L.ABORTED, fence
        assert fence.result.raft_index > first.result.raft_index, fence
        code, msg = w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-2")))  # takes seq + 1: the fenced key
        assert code == grpc.StatusCode.ABORTED, (code, msg)
        try:
            c.ledger(leader).GetHousehold(
                S.GetHouseholdRequest(household_no="H-2"), timeout=10)
            raise AssertionError("the fenced write was applied")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
        code, again = settle(c, leader, "clerk1", "fe-1", w.seq)
        assert code == grpc.StatusCode.OK and again == fence, (code, again)
        # The same write under a new key is an ordinary write.
        W.must(w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-2"))), "register under a new key")

        # 3. A key whose write was rejected: APPLIED, with the rejection.
        code, msg = w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-1")))
        assert code == grpc.StatusCode.ALREADY_EXISTS, (code, msg)
        code, r = settle(c, leader, "clerk1", "fe-1", w.seq)
        assert code == grpc.StatusCode.OK and r.outcome == APPLIED, (code, r)
        assert r.result.code == L.ALREADY_EXISTS, r

        # 4. Malformed settles change nothing.
        n_audit = audit_count(c, leader)
        hdr = S.RequestHeader(actor="clerk1", terminal="it")
        for req in (S.SettleWriteRequest(),
                    S.SettleWriteRequest(header=hdr),
                    S.SettleWriteRequest(header=S.RequestHeader(
                        actor="clerk1",
                        key=L.IdempotencyKey(client_id="fe-1"))),
                    S.SettleWriteRequest(header=S.RequestHeader(
                        actor="clerk1",
                        key=L.IdempotencyKey(sequence=99)))):
            for node in (leader, follower):
                code = raw_settle(c, node, req)
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (req, code)
        assert audit_count(c, leader) == n_audit
        # Not the caller (clerk1's session naming another actor), or no
        # session at all: refused, and the key is not fenced.
        nxt = w.seq + 1
        code, msg = settle(c, leader, "nobody", "fe-1", nxt,
                           md=c.bearer("clerk1"))
        assert code == grpc.StatusCode.PERMISSION_DENIED, (code, msg)
        try:
            c.s["service_pb2_grpc"].LedgerStub(c.plain_channel(leader)) \
                .SettleWrite(S.SettleWriteRequest(header=w.header(nxt)),
                             timeout=10)
            raise AssertionError("SettleWrite without a session served")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        # Another client id with our next sequence is another key.
        code, r = settle(c, leader, "clerk1", "fe-other", nxt)
        assert code == grpc.StatusCode.OK and r.outcome == NOT_APPLIED, r
        resp = W.must(w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("H-3"))), "the unfenced key applies")
        assert w.seq == nxt
        assert resp.result.household.household_no == "H-3"

        # 5. kyufuctl write settle.
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\nactor = clerk1\ndeadline_ms = 30000\n"
                     % (",".join(c.api[i] for i in (1, 2, 3)), c.ca,
                        c.client_cert, c.client_key))

        def ctl(*args):
            p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=c.ctl_env("clerk1"))
            return p.returncode, p.stdout, p.stderr

        rc, out, err = ctl("--json", "--idempotency-key", "fe-1:%d" % nxt,
                           "write", "settle")
        assert rc == 0, (rc, out, err)
        doc = json.loads(out)
        assert doc["outcome"] == "WRITE_APPLIED", doc
        assert doc["result"]["household"]["household_no"] == "H-3", doc
        assert doc["result"]["raft_index"] == resp.result.raft_index, doc
        rc, out, err = ctl("--json", "--idempotency-key", "fe-1:%d" % (nxt + 5),
                           "write", "settle")
        assert rc == 0, (rc, out, err)
        doc = json.loads(out)
        assert doc["outcome"] == "WRITE_NOT_APPLIED", doc
        assert doc["result"]["code"] == "ABORTED", doc
        rc, out, err = ctl("--idempotency-key", "fe-1:%d" % (nxt + 5),
                           "write", "settle")
        assert rc == 0 and out.startswith("not applied"), (rc, out, err)
        rc, out, err = ctl("write", "settle")
        assert rc == 2 and "--idempotency-key" in err, (rc, out, err)

        c.wait_converged(15)
        c.stop_clean()
        print("settle: ok")


if __name__ == "__main__":
    main()
