"""docs/api.md "A front end in Python" run as written: the block after
`<!-- api-example: python -->` is read from the file and executed (stubs
generated from api/*.proto), against a three-node cluster, through a
follower:

  - sign_in() with password + TOTP gives a token; register_household()
    with it writes, the audit record's actor is the signed-in account
    (the header named nobody), and the household reads back;
  - the same request without the token is UNAUTHENTICATED and writes
    nothing (the cluster's client certificate alone is not enough);
  - a header naming another actor is refused;
  - after sign_out() the token is UNAUTHENTICATED.

usage: test_api_example.py KYUFUD"""
import os
import re
import sys
import types

import grpc

import auth as A
import cluster as C
import workload as W

DOC = os.path.join(C.SRC, "docs", "api.md")


def example_module():
    text = open(DOC).read()
    m = re.search(r"<!-- api-example: python -->\n```python\n(.*?)\n```",
                  text, re.S)
    assert m, "no api-example block in docs/api.md"
    mod = types.ModuleType("api_example")
    exec(compile(m.group(1), DOC + ":api-example", "exec"), mod.__dict__)
    return mod


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        leader = c.wait_leader(15)
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        led = W.Ledger(c, "example")
        led.setup()
        c.account("front1", [L.ROLE_CLERK], "Counter clerk")
        acct = c.accounts["front1"]
        ex = example_module()
        follower = 1 if leader != 1 else 2

        ch = ex.connect(c.api[follower], c.ca, c.client_cert, c.client_key)
        token = ex.sign_in(ch, "front1", acct.password, acct.code())
        assert len(token) == 64 and int(token, 16) >= 0, token
        hh = led.household("H-EX-1")
        try:
            r = ex.register_household(ch, token, "front-1", 1, hh)
        except grpc.RpcError as e:
            # A front end uses its token at once, on the node it signed in
            # through: that node must know the session by then.
            raise AssertionError(
                "the token SignIn just answered through follower %d is "
                "refused by it: %s %s" % (follower, e.code(), e.details()))
        assert r.result.household.household_no == "H-EX-1", r
        got = c.ledger(leader).GetHousehold(
            S.GetHouseholdRequest(household_no="H-EX-1"), timeout=10)
        assert got.head_name == hh.head_name, got
        recs = [a for a in W.audit_writes(c, leader)
                if a.client_id == "front-1"]
        assert [(a.actor, a.command, a.outcome) for a in recs] == \
            [("front1", "RegisterHousehold", 0)], recs

        # No token: refused, nothing written.
        stub = c.s["service_pb2_grpc"].LedgerStub(ch)
        req = S.RegisterHouseholdRequest(
            header=S.RequestHeader(key=L.IdempotencyKey(
                client_id="front-1", sequence=2)),
            command=L.RegisterHousehold(household=led.household("H-EX-2")))
        # ("Bearer " with its trailing blank is not a valid HTTP/2 header
        # value: nghttp2 resets that stream before kyufu sees it.)
        for md in (None, (("authorization", "Bearer x"),),
                   (("authorization", "Bearer " + "0" * 64),)):
            try:
                stub.RegisterHousehold(req, timeout=10, metadata=md)
                raise AssertionError("write without a session served")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED, (md, e)
        # Another actor in the header: refused.
        req.header.actor = "approver1"
        try:
            stub.RegisterHousehold(req, timeout=10, metadata=A.bearer(token))
            raise AssertionError("header naming another actor served")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        try:
            c.ledger(leader).GetHousehold(
                S.GetHouseholdRequest(household_no="H-EX-2"), timeout=10)
            raise AssertionError("H-EX-2 was written")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e

        # Signed out: the token is dead.
        ex.sign_out(ch, token)
        try:
            ex.register_household(ch, token, "front-1", 3,
                                  led.household("H-EX-3"))
            raise AssertionError("token served after sign-out")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        ch.close()
        c.stop_clean()
        print("api example: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
