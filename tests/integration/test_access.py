"""Access control end to end (issue 8 items 4-6; node/permissions.c):
three kyufud processes and a stock gRPC client (Debian's python3-grpcio)
signing in like a front end (auth.py, via cluster.py).

  - a write with the cluster's client certificate and no token is
    UNAUTHENTICATED (on the leader and on a follower, which never forwards
    it); so is a made-up token; a node's certificate without a session may
    call Status only;
  - each role calling a sample of the RPCs it may not call is
    PERMISSION_DENIED, naming the method and the role, and each role's own
    sample is served;
  - a header naming another actor is refused; an empty one acts as the
    session's account;
  - an idempotency key replayed by another account is refused without the
    stored result (write and SettleWrite); the owner with another command
    is INVALID_ARGUMENT; the owner with the same command gets the first
    result;
  - a clerk's write through a follower (forwarded with the principal) is
    applied with the clerk as actor.

usage: test_access.py KYUFUD"""
import sys

import grpc

import cluster as C
import workload as W

DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def code_of(fn, req, md):
    """(code, response or error details) of one call."""
    try:
        return grpc.StatusCode.OK, fn(req, metadata=md, timeout=10)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        leader = c.wait_leader(15)
        follower = 1 if leader != 1 else 2
        S, L = c.s["service_pb2"], c.s["ledger_pb2"]
        G = c.s["service_pb2_grpc"]
        led = W.Ledger(c)

        def ledger(node, cert=None, key=None):
            return G.LedgerStub(c.plain_channel(node, cert, key))

        def clus(node, cert=None, key=None):
            return G.ClusterStub(c.plain_channel(node, cert, key))

        def header(actor, client, seq):
            return S.RequestHeader(actor=actor, terminal="it-access",
                                   key=L.IdempotencyKey(client_id=client,
                                                        sequence=seq))

        def register(no, actor, client, seq):
            return S.RegisterHouseholdRequest(
                header=header(actor, client, seq),
                command=L.RegisterHousehold(household=led.household(no)))

        # ---- no session: refused before anything runs, nothing forwarded
        for node in (leader, follower):
            code, why = code_of(ledger(node).RegisterHousehold,
                                register("H-anon", "", "anon", 1), None)
            assert code == UNAUTH, (node, code, why)
            assert "RegisterHousehold" in why, why
            code, why = code_of(ledger(node).RegisterHousehold,
                                register("H-anon", "", "anon", 1),
                                (("authorization", "Bearer " + "0" * 64),))
            assert code == UNAUTH, (node, code, why)
            assert "0" * 16 not in why, why  # never echoes the token
        code, why = code_of(clus(leader).Status, S.StatusRequest(), None)
        assert code == UNAUTH, (code, why)
        # A node's certificate: Status (peers' probes), nothing else.
        ncert, nkey = c.node_cert(follower)
        code, _ = code_of(clus(leader, ncert, nkey).Status,
                          S.StatusRequest(), None)
        assert code == grpc.StatusCode.OK, code
        code, why = code_of(ledger(leader, ncert, nkey).ListHouseholds,
                            S.ListRequest(), None)
        assert code == DENIED, (code, why)
        code, why = code_of(clus(leader, ncert, nkey).TransferLeadership,
                            S.TransferLeadershipRequest(), None)
        assert code == DENIED, (code, why)

        # ---- accounts, one role each
        roles = {"clerk": L.ROLE_CLERK, "clerk2": L.ROLE_CLERK,
                 "approver": L.ROLE_APPROVER, "auditor": L.ROLE_AUDITOR,
                 "operator": L.ROLE_OPERATOR}
        for sid, role in roles.items():
            c.account(sid, [role])
        md = {sid: c.bearer(sid) for sid in list(roles) + [C.ADMIN]}

        # ---- each role: a sample it may not call, and one it may
        list_req = S.ListRequest(page_size=1)
        samples = {
            C.ADMIN: [
                (ledger, "ListHouseholds", list_req, "clerk or approver"),
                (ledger, "ListAudit", list_req, "auditor"),
                (ledger, "CreateProgram", S.CreateProgramRequest(
                    header=header("", "adm", 1),
                    command=L.CreateProgram(code="P1")), "approver"),
                (clus, "TransferLeadership", S.TransferLeadershipRequest(),
                 "operator"),
            ],
            "clerk": [
                (ledger, "ApproveApplication", S.ApproveApplicationRequest(
                    header=header("", "clk", 1),
                    command=L.ApproveApplication(id=1)), "approver"),
                (ledger, "ListStaff", list_req, "ID administrator"),
                (ledger, "ListAudit", list_req, "auditor"),
                (clus, "GetAvailability", S.GetAvailabilityRequest(),
                 "operator"),
            ],
            "approver": [
                (ledger, "RegisterHousehold",
                 register("H-appr", "", "appr", 1), "clerk"),
                (ledger, "GetStaff", S.GetStaffRequest(staff_id="clerk"),
                 "ID administrator"),
                (ledger, "VerifyAudit", S.VerifyAuditRequest(), "auditor"),
                (clus, "RemoveNode", S.RemoveNodeRequest(id=9), "operator"),
            ],
            "auditor": [
                (ledger, "ListHouseholds", list_req, "clerk or approver"),
                (ledger, "ListStaff", list_req, "ID administrator"),
                (ledger, "SettleWrite", S.SettleWriteRequest(
                    header=header("", "aud", 1)), "clerk"),
                (clus, "Status", S.StatusRequest(), "operator"),
            ],
            "operator": [
                (ledger, "ListHouseholds", list_req, "clerk or approver"),
                (ledger, "GetHousehold",
                 S.GetHouseholdRequest(household_no="H-1"),
                 "clerk or approver"),
                (ledger, "ListApplications", S.ListApplicationsRequest(),
                 "clerk or approver"),
                (ledger, "ListStaff", list_req, "ID administrator"),
                (ledger, "ListAudit", list_req, "auditor"),
            ],
        }
        for sid, calls in samples.items():
            for stub, method, req, role in calls:
                code, why = code_of(getattr(stub(follower), method), req,
                                    md[sid])
                assert code == DENIED, (sid, method, code, why)
                assert method in why and role in why, (sid, method, why)
        allowed = [(C.ADMIN, ledger, "ListStaff", list_req),
                   ("clerk", ledger, "ListHouseholds", list_req),
                   ("approver", ledger, "ListPrograms", list_req),
                   ("auditor", ledger, "ListAudit", list_req),
                   ("operator", clus, "Status", S.StatusRequest()),
                   ("operator", clus, "ListIncidents",
                    S.ListIncidentsRequest())]
        for sid, stub, method, req in allowed:
            code, why = code_of(getattr(stub(leader), method), req, md[sid])
            assert code == grpc.StatusCode.OK, (sid, method, code, why)

        # ---- the actor is the session's
        code, why = code_of(ledger(leader).RegisterHousehold,
                            register("H-spoof", "approver", "clk", 1),
                            md["clerk"])
        assert code == DENIED, (code, why)
        assert "actor approver is not the signed-in account" in why, why
        # Through a follower as well (checked on the leader, which reads
        # the principal the follower forwarded, never the header).
        code, why = code_of(ledger(follower).RegisterHousehold,
                            register("H-spoof", "approver", "clk", 1),
                            md["clerk"])
        assert code == DENIED, (code, why)

        # ---- a clerk's write through a follower: forwarded, clerk acts
        req = register("H-1", "", "clk", 1)
        code, first = code_of(ledger(follower).RegisterHousehold, req,
                              md["clerk"])
        assert code == grpc.StatusCode.OK, (code, first)
        seq = first.result.audit_seq
        rec = None
        page = ledger(leader).ListAudit(S.ListRequest(page_size=1000),
                                        metadata=md["auditor"], timeout=10)
        for r in page.records:
            if r.seq == seq:
                rec = r
        assert rec is not None and rec.actor == "clerk", rec
        assert rec.command == "RegisterHousehold", rec

        # ---- the key is the clerk's
        code, again = code_of(ledger(leader).RegisterHousehold, req,
                              md["clerk"])
        assert code == grpc.StatusCode.OK, (code, again)
        assert again.result.audit_seq == seq, (again, first)
        for node in (leader, follower):
            code, why = code_of(ledger(node).RegisterHousehold, req,
                                md["clerk2"])
            assert code == DENIED, (node, code, why)
            assert "Yamada" not in why and "H-1" not in why, why
            code, why = code_of(ledger(node).SettleWrite,
                                S.SettleWriteRequest(
                                    header=header("", "clk", 1)),
                                md["clerk2"])
            assert code == DENIED, (node, code, why)
        code, why = code_of(ledger(leader).RegisterHousehold,
                            register("H-other", "", "clk", 1), md["clerk"])
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, why)
        code, settled = code_of(ledger(leader).SettleWrite,
                                S.SettleWriteRequest(
                                    header=header("", "clk", 1)),
                                md["clerk"])
        assert code == grpc.StatusCode.OK, (code, settled)
        assert settled.outcome == L.WRITE_APPLIED, settled
        # Nothing the refusals did changed the household.
        h = ledger(leader).GetHousehold(
            S.GetHouseholdRequest(household_no="H-1"), metadata=md["clerk"],
            timeout=10)
        assert h.version == 1, h
        code, _ = code_of(ledger(leader).GetHousehold,
                          S.GetHouseholdRequest(household_no="H-other"),
                          md["clerk"])
        assert code == grpc.StatusCode.NOT_FOUND, code
        print("ok")
    finally:
        c.close()


if __name__ == "__main__":
    main()
