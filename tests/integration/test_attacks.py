"""The attack table of issue 8 (identity and access), end to end: three
kyufud processes, a stock grpcio client (Debian's python3-grpcio) signing in
like a front end (auth.py, cluster.py), one cluster shared by every case,
each account signed in once.

Each row is (name, attack, expected status, expected record).  A case
passes only when the attack is refused with exactly that status (and, where
it says why, that reason) AND the refusal is in the operation log: an audit
record of the replicated chain, read back by an auditor's ListAudit after
the attack (command, outcome and message checked).  A refusal taken by a
follower (a TLS refusal, a call without a token) reaches the chain through
the leader (docs/identity.md "Refusals"): its record must name the follower
(the key's client id kyufu-node-N), the peer and the certificate.  The
table is printed row by row as it runs.

The last case, the expired password, restarts the cluster with
`[auth] password_max_age_days = 1` under Debian's libfaketime 2 days ahead
(FAKETIME="+2d", the monotonic clock untouched so Raft's timers are not
disturbed; the harness's certificates are valid for 30 days, so 91 days
past the default 90 would expire them first): the right password then
gives a setup-only session with must_change_password, and that session's
ledger call is refused and recorded.

usage: test_attacks.py KYUFUD KYUFUCTL"""
import os
import shutil
import subprocess
import sys
import time

import grpc

import auth as A
import cluster as C
import workload as W

OK = grpc.StatusCode.OK
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
FAILED = grpc.StatusCode.FAILED_PRECONDITION
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
T = 60  # one attempt per call: a loaded sanitizer build is slow
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
DAY_S = 86400
# The harness's certificates are valid for 30 days (cluster.make_cert), so
# the clock cannot move 91 days past the default password_max_age_days
# (90): the restart sets it to 1 and moves the clock 2 days ahead.
MAX_AGE_DAYS = 1
AHEAD_DAYS = 2


def ctl(kyufuctl, *args):
    p = subprocess.run([kyufuctl] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


class Attacks:
    def __init__(self, c, leader):
        self.c = c
        self.leader = leader
        self.S = c.s["service_pb2"]
        self.L = c.s["ledger_pb2"]
        self.G = c.s["service_pb2_grpc"]
        self.rows = []
        self.auditor_md = None
        self.cursor = ""  # ListAudit page token: the last seq read
        self.records = []
        print("%-34s | %-60s | %-20s | %s" % ("case", "attack", "status",
                                              "record"))

    # ------------------------------------------------------- calling
    def stub(self, service, node):
        return getattr(self.G, service + "Stub")(self.c.plain_channel(node))

    def call(self, service, method, req, md=None, node=None, cert=None,
             key=None):
        """(code, details or response): one attempt, no retry (a retried
        write could hide a refusal behind a duplicate's answer); a fresh
        connection that is refused at the handshake is UNAVAILABLE."""
        node = self.leader if node is None else node
        # A certificate other than the harness's: a channel of its own,
        # closed at once (grpcio would otherwise keep reconnecting with a
        # refused certificate, each attempt one more refusal record).
        own = None
        if cert is None:
            st = self.stub(service, node)
        else:
            own = grpc.secure_channel(self.c.api[node],
                                      self.c.creds(cert, key),
                                      options=C.CHANNEL_OPTIONS)
            st = getattr(self.G, service + "Stub")(own)
        try:
            r = getattr(st, method)(req, metadata=md, timeout=T)
            return OK, r
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        finally:
            if own is not None:
                own.close()

    def header(self, client, seq, actor=""):
        return self.S.RequestHeader(actor=actor, terminal="it-attacks",
                                    key=self.L.IdempotencyKey(
                                        client_id=client, sequence=seq))

    # --------------------------------------------------- the record
    def fetch(self):
        """The records appended since the last fetch (as the auditor)."""
        while True:
            code, r = self.call("Ledger", "ListAudit", self.S.ListRequest(
                page_size=1000, page_token=self.cursor), self.auditor_md)
            assert code == OK, (code, r)
            self.records += list(r.records)
            if r.records:
                self.cursor = str(r.records[-1].seq)
            if not r.next_page_token:
                return

    def head(self):
        self.fetch()
        return self.records[-1].seq if self.records else 0

    def find(self, since, pred, timeout=15):
        """The first record after seq `since` for which pred holds: the
        refusal's record is committed by the leader, possibly just after
        the refusal's answer left."""
        end = time.monotonic() + timeout
        while True:
            self.fetch()
            for r in self.records:
                if r.seq > since and pred(r):
                    return r
            if time.monotonic() > end:
                tail = "\n".join("  %d %s %s %s %d %s" % (
                    r.seq, r.command, r.actor, r.object, r.outcome,
                    r.message) for r in self.records if r.seq > since)
                raise AssertionError("no matching record after seq %d:\n%s"
                                     % (since, tail))
            time.sleep(0.2)

    # ------------------------------------------------------ one row
    def case(self, name, attack, status, record, run, why, pred,
             since=None):
        """run() -> (code, details); why: a text the refusal's details
        must hold (None: any); pred(record) -> bool: the refusal's record,
        appended after seq `since` (every row has one)."""
        since = self.head() if since is None else since
        code, details = run()
        assert code == status, (name, code, details)
        if why is not None:
            assert why in str(details), (name, details)
        answered = time.monotonic()
        rec = self.find(since, pred)
        shown = "seq %d %s outcome=%d [%s] %s (read %.2f s after)" % (
            rec.seq, rec.command, rec.outcome, rec.client_id,
            rec.message[:60], time.monotonic() - answered)
        self.rows.append((name, attack, status, record))
        print("%-34s | %-60s | %-20s | %s\n%36s-> %s" % (
            name, attack, status.name, record, "", shown), flush=True)


def access(method, outcome, *words):
    """A RecordAccess record of `method` with `outcome` whose message holds
    every word."""
    def pred(r):
        return (r.command == "RecordAccess" and r.outcome == outcome
                and method in r.message
                and all(w in r.message for w in words))
    return pred


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    t0 = time.monotonic()
    c = C.Cluster(kyufud)
    try:
        run(c, kyufuctl, t0)
        c.stop_clean()
    finally:
        c.close()
    print("ok (%.1f s)" % (time.monotonic() - t0))


def run(c, kyufuctl, t0):
    S, L = c.s["service_pb2"], c.s["ledger_pb2"]
    DEN = L.PERMISSION_DENIED
    # Terminal certificates from the cluster CA (kyufuctl terminal issue):
    # one lost and revoked before the nodes start, so the CRL each node
    # reads ([tls] crl_file) names it; one other terminal.
    pki = os.path.join(c.dir, "pki")
    out = os.path.join(c.dir, "terminals")
    term = {}
    for n, mac in (("counter-lost", "02:00:00:00:00:01"),
                   ("counter-2", "02:00:00:00:00:02"),
                   ("counter-3", "02:00:00:00:00:03")):
        ctl(kyufuctl, "terminal", "issue", n, "--mac", mac, "--ca-dir", pki,
            "--out", out)
        term[n] = (os.path.join(out, n + ".pem"),
                   os.path.join(out, n + ".key"))
    ctl(kyufuctl, "terminal", "revoke", "counter-lost", "--reason",
        "lost at the counter", "--ca-dir", pki)
    for i in (1, 2, 3):
        crl = os.path.join(c.dir, "node%d" % i, "crl.pem")
        shutil.copyfile(os.path.join(pki, "crl.pem"), crl)
        text = open(c.conf[i]).read()
        with open(c.conf[i], "w") as f:
            f.write(text.replace("[raft]\n", "crl_file = %s\n[raft]\n" % crl,
                                 1))
    c.start_all()
    leader = c.wait_leader(20)
    followers = [i for i in (1, 2, 3) if i != leader]
    admin_md = c.bearer(C.ADMIN)
    x = Attacks(c, leader)

    # ---- accounts: one per role, each signed in once (the harness)
    roles = {"clerk": L.ROLE_CLERK, "approver": L.ROLE_APPROVER,
             "auditor": L.ROLE_AUDITOR, "operator": L.ROLE_OPERATOR,
             "suspect": L.ROLE_CLERK}
    md = {C.ADMIN: admin_md}
    # CreateStaff by the admin, one long attempt each (the node hashes the
    # temporary password first: slow on a loaded sanitizer build, and a
    # retried CreateStaff would be a new command under the same key).
    # lockee and newbie stay at their temporary password.
    temp = {}
    people = sorted(roles.items()) + [("lockee", L.ROLE_CLERK),
                                      ("newbie", L.ROLE_CLERK),
                                      ("racer", L.ROLE_CLERK)]
    for n, (sid, role) in enumerate(people, start=1):
        code, r = x.call("Ledger", "CreateStaff", S.CreateStaffRequest(
            header=x.header("it-attacks-admin", n),
            command=L.CreateStaff(staff_id=sid, display_name=sid,
                                  roles=[role])), admin_md)
        assert code == OK and r.temporary_password, (sid, code, r)
        temp[sid] = r.temporary_password
    # First sign-ins (password change, TOTP) one after the other.
    for sid in sorted(roles):
        md[sid] = A.bearer(c.adopt(sid, temp[sid]))
    x.auditor_md = md["auditor"]
    print("setup: %d accounts signed in (%.1f s)" % (len(md),
                                                      time.monotonic() - t0))

    def sign_in(sid, password, code="", cert=None):
        """cert: a terminal's (term[name]); None: the harness's."""
        return lambda: x.call("Auth", "SignIn", S.SignInRequest(
            staff_id=sid, password=password, totp_code=code),
            cert=cert and cert[0], key=cert and cert[1])

    def sign_in_failed(sid, *words, command="SignInFailed"):
        def pred(r):
            return (r.command == command and r.actor == sid
                    and r.outcome != L.OK
                    and all(w in r.message for w in words))
        return pred

    clerk = c.accounts["clerk"]
    # 1. wrong password
    x.case("wrong password", "SignIn clerk, wrong password", UNAUTH,
           "SignInFailed clerk", sign_in("clerk", "Wrong-Password-1x"),
           "sign-in failed", sign_in_failed("clerk"))

    # Blocks with many failed sign-ins (2, 3b, 6b) come from a terminal of
    # their own (counter-3): the harness certificate's failed-sign-in
    # bucket (30, one back every 2 s) must not run dry before block 4's
    # right sign-in, which would then be the certificate's
    # RESOURCE_EXHAUSTED (with the harness's fast test hashes the blocks
    # run in a few seconds: docs/testing.md "Password hashing in tests").
    c3 = term["counter-3"]

    # 2. locked account: 5 failures, then the right password refused
    since = x.head()
    for k in range(5):
        code, why = sign_in("lockee", "Wrong-Password-%d-x" % k, cert=c3)()
        assert code == UNAUTH and "sign-in failed" in why, (k, code, why)
    # The answer does not say locked (an attacker would learn the account
    # exists); the fifth failure's record says "locked until": the row's
    # record is the refusal of the right password, whose reason is
    # "locked" (storage/apply_identity.c: "sign-in refused: <reason>").
    x.case("locked account", "5 wrong passwords, then the right one",
           UNAUTH, "SignInFailed lockee (locked)",
           sign_in("lockee", temp["lockee"], cert=c3), "sign-in failed",
           sign_in_failed("lockee", "sign-in refused: locked"), since=since)

    # 2b. guesses at once: 12 sign-ins of one account sent together (from
    # counter-2's certificate) are at most 5 password checks; the others
    # are refused as in flight (or, once 5 failed, as locked), all
    # answered alike.
    import concurrent.futures
    since = x.head()
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda k: x.call(
            "Auth", "SignIn", S.SignInRequest(
                staff_id="racer", password="Wrong-Password-%d-r" % k),
            cert=term["counter-2"][0], key=term["counter-2"][1]),
            range(12)))
    assert all(a == (UNAUTH, "sign-in failed") for a in answers), answers

    def racer_records():
        x.fetch()
        return [r for r in x.records if r.seq > since and
                r.command == "SignInFailed" and r.actor == "racer"]
    end = time.monotonic() + 15
    while len(racer_records()) < 12:
        assert time.monotonic() < end, racer_records()
        time.sleep(0.2)
    checked = [r for r in racer_records()
               if r.message.startswith("sign-in refused: password")]
    assert len(checked) <= 5, [r.message for r in racer_records()]
    # The row's record is the right password's refusal, read after the
    # 12 guesses' records (some of them already say "locked"; a SignIn
    # is answered once its record is applied).
    x.case("12 guesses at once",
           "12 concurrent SignIn racer: at most 5 password checks", UNAUTH,
           "SignInFailed racer (locked)",
           sign_in("racer", temp["racer"]), "sign-in failed",
           sign_in_failed("racer", "sign-in refused: locked"))
    print("%36s-> %d of 12 checked, the rest: %s" % (
        "", len(checked), sorted({r.message.split(";")[0]
                                  for r in racer_records()})))

    # 3. temporary password not changed: a setup-only session
    code, r = sign_in("newbie", temp["newbie"])()
    assert code == OK and r.setup_only and r.must_change_password, (code, r)
    newbie_md = A.bearer(r.token)
    x.case("temporary password not changed",
           "setup-only session calls ListHouseholds", DENIED,
           "RecordAccess ListHouseholds denied",
           lambda: x.call("Ledger", "ListHouseholds",
                          S.ListRequest(page_size=1), newbie_md),
           "ListHouseholds",
           lambda r: access("ListHouseholds", DEN)(r) and r.actor == "newbie")

    # 3b. a locked account's live session takes no password guesses: its
    # ChangePassword is refused before the old password is checked (the
    # answer would tell a right guess from a wrong one, and the change
    # would clear the lock).
    for k in range(5):
        code, why = sign_in("newbie", "Wrong-Password-%d-y" % k, cert=c3)()
        assert code == UNAUTH, (k, code, why)
    code, why = x.call("Auth", "ChangePassword", S.ChangePasswordRequest(
        old_password=temp["newbie"], new_password="a"), newbie_md)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "locked" in why, \
        (code, why)
    print("ok: a locked account's session cannot guess its password")

    # 4. replayed TOTP code
    code_now = clerk.code()
    ok, r = sign_in("clerk", clerk.password, code_now)()
    assert ok == OK and not r.setup_only, (ok, r)
    spare_md = A.bearer(r.token)
    x.case("replayed TOTP code", "SignIn clerk with a code already used",
           UNAUTH, "OpenSession clerk refused",
           sign_in("clerk", clerk.password, code_now), "sign-in failed",
           sign_in_failed("clerk", "TOTP code already used",
                          command="OpenSession"))

    # 5. token after sign-out
    code, _ = x.call("Auth", "SignOut", S.SignOutRequest(), spare_md)
    assert code == OK, code
    x.case("token after sign-out", "WhoAmI with the signed-out token",
           UNAUTH, "RecordAccess WhoAmI unauthenticated",
           lambda: x.call("Auth", "WhoAmI", S.WhoAmIRequest(), spare_md),
           None, access("WhoAmI", DEN, "unauthenticated"))

    # 6. suspended account's live token, on every node
    code, r = x.call("Ledger", "SetStaffStatus", S.SetStaffStatusRequest(
        header=x.header("it-attacks-admin", 10),
        command=L.SetStaffStatus(staff_id="suspect",
                                 status=L.STAFF_SUSPENDED)), admin_md)
    assert code == OK, (code, r)
    for node in [leader] + followers:
        x.case("suspended account (node %d)" % node,
               "suspect's old token: ListHouseholds", UNAUTH,
               "RecordAccess ListHouseholds unauthenticated",
               lambda: x.call("Ledger", "ListHouseholds",
                              S.ListRequest(page_size=1), md["suspect"],
                              node=node),
               None, access("ListHouseholds", DEN, "unauthenticated",
                             "no such session"))

    # 6b. nothing tells an existing account from an unknown one: an
    # unknown account, a wrong password, a suspended and a locked account
    # (each with its right password) get the same answer, after the same
    # hash; the reason is only in the record.  From a terminal of their
    # own (counter-3, see block 2): the certificate's RESOURCE_EXHAUSTED
    # would say nothing about the account either, but is not the
    # comparison made here.
    sus = c.accounts["suspect"]
    answers = {
        "unknown": sign_in("nobody-here", "Wrong-Password-9-z", cert=c3)(),
        "wrong password": sign_in("clerk", "Wrong-Password-8-z",
                                  cert=c3)(),
        "suspended": sign_in("suspect", sus.password, sus.code(),
                             cert=c3)(),
        "locked": sign_in("lockee", temp["lockee"], cert=c3)(),
    }
    assert all(a == (UNAUTH, "sign-in failed") for a in answers.values()), \
        answers
    x.case("unknown vs wrong password alike",
           "SignIn nobody-here (no such account)", UNAUTH,
           "SignInFailed (unknown account)",
           sign_in("nobody-here", "Wrong-Password-7-z", cert=c3),
           "sign-in failed",
           lambda r: (r.command == "SignInFailed" and r.actor != "clerk"
                      and "unknown account" in r.message))
    x.case("suspended account signs in",
           "SignIn suspect, right password and TOTP", UNAUTH,
           "SignInFailed suspect (suspended)",
           sign_in("suspect", sus.password, sus.code(), cert=c3),
           "sign-in failed",
           sign_in_failed("suspect", "sign-in refused: suspended"))

    # 7. token on another terminal's certificate
    x.case("token on another certificate",
           "admin's token over counter-2's certificate", UNAUTH,
           "RecordAccess unauthenticated, cert counter-2",
           lambda: x.call("Ledger", "ListStaff", S.ListRequest(page_size=1),
                          admin_md, cert=term["counter-2"][0],
                          key=term["counter-2"][1]),
           "another client certificate",
           access("ListStaff", DEN, "counter-2"))

    # 8. each role calling a forbidden RPC
    forbidden = [
        (C.ADMIN, "Ledger", "ListHouseholds", S.ListRequest(page_size=1),
         "clerk or approver"),
        ("clerk", "Ledger", "ApproveApplication",
         S.ApproveApplicationRequest(header=x.header("clk-x", 1),
                                     command=L.ApproveApplication(id=1)),
         "approver"),
        ("approver", "Ledger", "RegisterHousehold",
         S.RegisterHouseholdRequest(header=x.header("appr-x", 1),
                                    command=L.RegisterHousehold()), "clerk"),
        ("auditor", "Ledger", "ListStaff", S.ListRequest(page_size=1),
         "ID administrator"),
        ("operator", "Ledger", "GetHousehold",
         S.GetHouseholdRequest(household_no="H-1"), "clerk or approver"),
    ]
    for sid, svc, method, req, role in forbidden:
        x.case("role %s: %s" % (sid, method), "%s calls %s" % (sid, method),
               DENIED, "RecordAccess %s denied" % method,
               lambda: x.call(svc, method, req, md[sid]), role,
               lambda r: access(method, DEN)(r) and r.actor == sid)

    # 9. self-escalation: an ID administrator granting itself a role
    code, r = x.call("Ledger", "CreateStaff", S.CreateStaffRequest(
        header=x.header("it-attacks-admin", 20),
        command=L.CreateStaff(staff_id="admin2", display_name="admin2",
                              roles=[L.ROLE_ID_ADMIN])), admin_md)
    # The bootstrap administrator alone may make the second one (nobody
    # else could confirm); from now on a grant takes two.
    assert code == OK, (code, r)
    admin2_temp = r.temporary_password
    x.case("self-escalation", "admin: SetStaffRoles admin += clerk",
           DENIED, "SetStaffRoles admin denied",
           lambda: x.call("Ledger", "SetStaffRoles", S.SetStaffRolesRequest(
               header=x.header("it-attacks-admin", 21),
               command=L.SetStaffRoles(staff_id=C.ADMIN, roles=[
                   L.ROLE_ID_ADMIN, L.ROLE_CLERK])), admin_md),
           None, lambda r: (r.command == "SetStaffRoles" and
                            r.actor == C.ADMIN and r.outcome == DEN))
    x.case("ID admin granted by one of two",
           "admin: SetStaffRoles operator += ID admin", FAILED,
           "SetStaffRoles pending, roles unchanged",
           lambda: x.call("Ledger", "SetStaffRoles", S.SetStaffRolesRequest(
               header=x.header("it-attacks-admin", 22),
               command=L.SetStaffRoles(staff_id="operator", roles=[
                   L.ROLE_OPERATOR, L.ROLE_ID_ADMIN])), admin_md),
           "pending: a second ID administrator must confirm",
           lambda r: (r.command == "SetStaffRoles" and
                      r.object == "staff/operator" and
                      r.outcome == L.FAILED_PRECONDITION))
    code, r = x.call("Ledger", "GetStaff", S.GetStaffRequest(
        staff_id="operator"), admin_md)
    assert code == OK and list(r.roles) == [L.ROLE_OPERATOR], (code, r)

    # 9b. one ID administrator taking over another (reset its password and
    # TOTP, then sign in as it): a reset of an ID administrator takes two.
    # admin2 signs in; admin3 is granted by both.
    from kyufu.v1 import identity_pb2 as I
    admin2_md = A.bearer(c.adopt("admin2", admin2_temp))
    code, r = x.call("Ledger", "CreateStaff", S.CreateStaffRequest(
        header=x.header("it-attacks-admin", 23),
        command=L.CreateStaff(staff_id="admin3", display_name="admin3",
                              roles=[L.ROLE_ID_ADMIN])), admin_md)
    assert code == FAILED and "pending" in r, (code, r)
    code, r = x.call("Ledger", "CreateStaff", S.CreateStaffRequest(
        header=x.header("it-attacks-admin2", 1),
        command=L.CreateStaff(staff_id="admin3", display_name="admin3",
                              roles=[L.ROLE_ID_ADMIN])), admin2_md)
    assert code == OK, (code, r)

    def reset_password(by_md, client, seq):
        return lambda: x.call("Auth", "ResetPassword", S.ResetPasswordRequest(
            header=x.header(client, seq), staff_id="admin3"), by_md)

    def reset_totp(by_md, client, seq):
        return lambda: x.call("Auth", "ResetTotp", S.ResetTotpRequest(
            header=x.header(client, seq),
            command=I.ResetTotp(staff_id="admin3")), by_md)

    def by(command, actor, outcome, *words):
        return lambda r: (r.command == command and r.actor == actor and
                          r.outcome == outcome and
                          all(w in r.message for w in words))

    def pending(name, attack, record, command, attempt):
        """admin alone: refused as pending, its record saying so."""
        x.case(name, attack, FAILED, record, attempt,
               "pending: a second ID administrator must confirm",
               by(command, C.ADMIN, L.FAILED_PRECONDITION, "pending"))
    pending("ID admin resets another alone",
            "admin: ResetPassword admin3 (an ID administrator)",
            "SetPassword pending, no password", "SetPassword",
            reset_password(admin_md, "it-attacks-admin", 24))
    pending("nobody completes their own",
            "admin: the same ResetPassword again",
            "SetPassword pending again", "SetPassword",
            reset_password(admin_md, "it-attacks-admin", 25))
    pending("ID admin resets another's TOTP alone",
            "admin: ResetTotp admin3", "ResetTotp pending", "ResetTotp",
            reset_totp(admin_md, "it-attacks-admin", 26))
    x.case("second admin completes",
           "admin2: ResetTotp admin3 (confirms admin's)", OK,
           "ResetTotp confirmed (first by admin)",
           reset_totp(admin2_md, "it-attacks-admin2", 2), None,
           by("ResetTotp", "admin2", L.OK, "confirmed (first by admin)"))

    # 10. spoofed actor in the header
    led = W.Ledger(c)

    def register(no, client, seq, actor=""):
        return S.RegisterHouseholdRequest(
            header=x.header(client, seq, actor),
            command=L.RegisterHousehold(household=led.household(no)))
    x.case("spoofed actor", "clerk's token, header actor = approver",
           DENIED, "RecordAccess RegisterHousehold denied",
           lambda: x.call("Ledger", "RegisterHousehold",
                          register("H-spoof", "clk", 1, "approver"),
                          md["clerk"]),
           "actor approver is not the signed-in account",
           lambda r: (access("RegisterHousehold", DEN, "actor approver")(r)
                      and r.actor == "clerk"))

    # 11. an idempotency key replayed by another principal
    code, r = x.call("Ledger", "RegisterHousehold", register("H-1", "clk", 1),
                     md["clerk"])
    assert code == OK, (code, r)
    x.case("replayed idempotency key", "approver: SettleWrite clerk's key",
           DENIED, "RecordAccess SettleWrite denied",
           lambda: x.call("Ledger", "SettleWrite", S.SettleWriteRequest(
               header=x.header("clk", 1)), md["approver"]),
           "belongs to another account",
           lambda r: (access("SettleWrite", DEN,
                             "belongs to another account")(r)
                      and r.actor == "approver"))

    def log_line(node, *words, since_bytes=0):
        def get():
            end = time.monotonic() + 15
            while True:
                for line in open(c.log_path(node)).read()[since_bytes:] \
                        .splitlines():
                    if "connection refused" in line and \
                            all(w in line for w in words):
                        return line
                assert time.monotonic() < end, (node, words)
                time.sleep(0.2)
        return get
    # 12. revoked terminal certificate (the CRL every node loaded)
    since = x.head()
    mark = os.path.getsize(c.log_path(leader))
    x.case("revoked certificate (leader)", "counter-lost calls the leader",
           UNAVAILABLE, "RecordAccess connection, CN=counter-lost",
           lambda: x.call("Auth", "WhoAmI", S.WhoAmIRequest(), None,
                          cert=term["counter-lost"][0],
                          key=term["counter-lost"][1]),
           None, lambda r: (r.command == "RecordAccess"
                            and r.outcome == DEN
                            and "TLS handshake failed" in r.message
                            and "CN=counter-lost" in r.message), since=since)
    # The record's message is cut at its field's bound before OpenSSL's
    # reason ends; the leader's log line has the whole reason.
    log_line(leader, "certificate revoked", "CN=counter-lost",
             since_bytes=mark)()

    f = followers[0]
    seen_by_f = "kyufu-node-%d" % f

    def at_follower(pred):
        """pred, and the record was taken by follower f (its key's client
        id) and names the refused client's address."""
        return lambda r: (pred(r) and r.client_id == seen_by_f
                          and "from 127.0.0.1:" in r.message)
    mark = os.path.getsize(c.log_path(f))
    x.case("revoked certificate (follower)",
           "counter-lost calls node %d" % f, UNAVAILABLE,
           "RecordAccess connection, CN=counter-lost, by node %d" % f,
           lambda: x.call("Auth", "WhoAmI", S.WhoAmIRequest(), None,
                          node=f, cert=term["counter-lost"][0],
                          key=term["counter-lost"][1]),
           None, at_follower(lambda r: (r.command == "RecordAccess"
                                        and r.outcome == DEN
                                        and "TLS handshake failed" in
                                        r.message
                                        and "CN=counter-lost" in
                                        r.message)))
    log_line(f, "certificate revoked", "counter-lost", since_bytes=mark)()

    # 13. a certificate from another CA
    x.case("certificate from another CA (leader)",
           "CN=intruder (other CA) calls the leader", UNAVAILABLE,
           "RecordAccess connection: TLS handshake failed",
           lambda: x.call("Auth", "WhoAmI", S.WhoAmIRequest(), None,
                          cert=c.other_cert, key=c.other_key),
           None, lambda r: (r.command == "RecordAccess"
                            and r.outcome == DEN
                            and "connection" in r.message
                            and "intruder" in r.message))
    x.case("certificate from another CA (follower)",
           "CN=intruder calls node %d" % f, UNAVAILABLE,
           "RecordAccess connection, CN=intruder, by node %d" % f,
           lambda: x.call("Auth", "WhoAmI", S.WhoAmIRequest(), None,
                          node=f, cert=c.other_cert, key=c.other_key),
           None, at_follower(lambda r: (r.command == "RecordAccess"
                                        and r.outcome == DEN
                                        and "connection" in r.message
                                        and "CN=intruder" in r.message)))
    x.case("no token at a follower",
           "ListHouseholds at node %d, no token" % f, UNAUTH,
           "RecordAccess ListHouseholds unauthenticated, by node %d" % f,
           lambda: x.call("Ledger", "ListHouseholds",
                          S.ListRequest(page_size=1), None, node=f),
           "ListHouseholds",
           at_follower(lambda r: (access("ListHouseholds", DEN,
                                         "unauthenticated",
                                         "CN=kyufu-test-client")(r)
                                  and r.actor == "")))

    # 13b. the follower-to-leader method is a node's alone
    internal(c, x, f, pki, md["operator"])

    # 14. a write through grpcio with the cluster's certificate, no session
    x.case("write without a session",
           "grpcio RegisterHousehold, cluster certificate, no token",
           UNAUTH, "RecordAccess RegisterHousehold unauthenticated",
           lambda: x.call("Ledger", "RegisterHousehold",
                          register("H-anon", "anon", 1), None),
           "RegisterHousehold",
           lambda r: (access("RegisterHousehold", DEN, "unauthenticated")(r)
                      and r.actor == ""))
    code, _ = x.call("Ledger", "GetHousehold", S.GetHouseholdRequest(
        household_no="H-anon"), md["clerk"])
    assert code == grpc.StatusCode.NOT_FOUND, code

    # 15. expired password: the cluster restarted 91 days ahead
    expired(c, x, t0)
    print("%d cases refused and recorded (%.1f s)" % (len(x.rows),
                                                      time.monotonic() - t0))


def internal(c, x, f, pki, operator_md):
    """NodeInternal/ReportRefusals, which carries a follower's refusal
    records to the leader, refused to anyone but a member node, and those
    refusals recorded like any other; a member's malformed batch refused
    whole, nothing recorded."""
    S, L = x.S, x.L
    DEN = L.PERMISSION_DENIED
    forged = S.ReportRefusalsRequest(boot_id=1, batch_seq=1, refusals=[
        S.RefusalReport(method="forged-by-the-test", outcome=DEN,
                        peer="127.0.0.1:1", time_ms=1)])
    x.case("ReportRefusals, no node certificate",
           "client certificate, no token: ReportRefusals", UNAUTH,
           "RecordAccess ReportRefusals unauthenticated",
           lambda: x.call("NodeInternal", "ReportRefusals", forged, None),
           "ReportRefusals",
           access("ReportRefusals", DEN, "unauthenticated",
                  "CN=kyufu-test-client"))
    x.case("ReportRefusals by an account (follower)",
           "operator's token at node %d: ReportRefusals" % f, DENIED,
           "RecordAccess ReportRefusals denied, by node %d" % f,
           lambda: x.call("NodeInternal", "ReportRefusals", forged,
                          operator_md, node=f),
           "ReportRefusals",
           lambda r: (access("ReportRefusals", DEN)(r)
                      and r.actor == "operator"
                      and r.client_id == "kyufu-node-%d" % f))
    # A node certificate from the cluster's CA for a node that is not a
    # member (a removed node's, or a stolen CA key's).
    key, crt = C.make_cert(pki, "node-9", c.ca_key, c.ca, "kyufu-node-9",
                           node_id=9)
    x.case("ReportRefusals, not a member",
           "node 9's certificate: ReportRefusals", DENIED,
           "RecordAccess ReportRefusals denied, cert kyufu-node-9",
           lambda: x.call("NodeInternal", "ReportRefusals", forged, None,
                          cert=crt, key=key),
           "node 9 is not another member",
           access("ReportRefusals", DEN, "CN=kyufu-node-9"))
    # A member's certificate (follower f's identity) with a malformed
    # batch: refused whole; the forged record never reaches the chain.
    key, crt = C.make_cert(pki, "node-f", c.ca_key, c.ca,
                           "kyufu-node-%d" % f, node_id=f)
    since = x.head()
    bad = S.ReportRefusalsRequest(boot_id=1, batch_seq=1, refusals=[
        S.RefusalReport(method="forged-by-the-test", outcome=DEN,
                        peer="127.0.0.1:1", time_ms=0)])
    code, why = x.call("NodeInternal", "ReportRefusals", bad, None,
                       cert=crt, key=key)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "time_ms" in why, \
        (code, why)
    # A later refusal's record as the mark: a record of the batch, proposed
    # before its answer, would be in the chain before it (not a sleep: a
    # slow commit would let the check pass unseen).
    code, _ = x.call("Ledger", "ListHouseholds", S.ListRequest(page_size=1),
                     None)
    assert code == UNAUTH, code
    mark = x.find(since, access("ListHouseholds", DEN, "unauthenticated"))
    assert not any("forged-by-the-test" in r.message for r in x.records
                   if r.seq > since), "a malformed batch was recorded"
    print("ok: a member's malformed batch is refused whole (%s; nothing "
          "of it up to seq %d)" % (why, mark.seq))


def expired(c, x, t0):
    """Every node restarted with password_max_age_days = MAX_AGE_DAYS under
    libfaketime, AHEAD_DAYS ahead of the clock: the clerk's password (set
    minutes ago) is past it, so the right password gives a setup-only
    session that must change it; that session's ledger call is refused
    and recorded."""
    S, L = x.S, x.L
    if not os.path.exists(FAKETIME_LIB):
        C.skip("libfaketime missing (scripts/setup installs it)")
    c.stop_clean()
    for i in (1, 2, 3):
        with open(c.conf[i], "a") as f:
            f.write("[auth]\npassword_max_age_days = %d\n" % MAX_AGE_DAYS)
    os.environ["LD_PRELOAD"] = FAKETIME_LIB
    os.environ["FAKETIME"] = "+%dd" % AHEAD_DAYS
    os.environ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    asan = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
        "verify_asan_link_order=0"
    for i in (1, 2, 3):
        c.reset_channel(i)
        c.start(i)
    x.leader = c.wait_leader(30)
    # Every session is past its 12 h limit now: the auditor signs in again,
    # its TOTP code computed for the nodes' (faked) clock.
    ahead = lambda: time.time() + AHEAD_DAYS * DAY_S  # noqa: E731
    aud = c.accounts["auditor"]
    code, r = x.call("Auth", "SignIn", S.SignInRequest(
        staff_id="auditor", password=aud.password,
        totp_code=A.totp(aud.secret, aud.next_step(ahead))))
    assert code == OK and r.must_change_password and r.setup_only, (code, r)
    clerk = c.accounts["clerk"]
    code, r = x.call("Auth", "SignIn", S.SignInRequest(
        staff_id="clerk", password=clerk.password,
        totp_code=A.totp(clerk.secret, clerk.next_step(ahead))))
    assert code == OK, (code, r)
    assert r.setup_only and r.must_change_password, r
    assert 0 < r.password_expires_ms < ahead() * 1000, r
    expired_md = A.bearer(r.token)
    print("expired password: the right password gives a setup-only session"
          " (must_change_password) %.1f s" % (time.monotonic() - t0))
    # The auditor's password expired too: it changes it, then reads.
    code, r2 = x.call("Auth", "SignIn", S.SignInRequest(
        staff_id="auditor", password=aud.password,
        totp_code=A.totp(aud.secret, aud.next_step(ahead))))
    assert code == OK and r2.setup_only and r2.must_change_password, \
        (code, r2)
    new = A.new_password()
    code, _ = x.call("Auth", "ChangePassword", S.ChangePasswordRequest(
        old_password=aud.password, new_password=new), A.bearer(r2.token))
    assert code == OK, code
    aud.password = new
    code, r3 = x.call("Auth", "SignIn", S.SignInRequest(
        staff_id="auditor", password=aud.password,
        totp_code=A.totp(aud.secret, aud.next_step(ahead))))
    assert code == OK and not r3.setup_only, (code, r3)
    x.auditor_md = A.bearer(r3.token)
    x.cursor = ""
    x.records = []
    # The right password without the TOTP code: refused (an expired
    # password does not skip the second factor).
    x.case("expired password without TOTP",
           "SignIn clerk, right (expired) password, no code", UNAUTH,
           "SignInFailed clerk (totp)",
           lambda: x.call("Auth", "SignIn", S.SignInRequest(
               staff_id="clerk", password=clerk.password)),
           "sign-in failed",
           lambda r: (r.command == "SignInFailed" and r.actor == "clerk"
                      and "totp" in r.message))
    x.case("expired password",
           "password past max age: setup-only session calls "
           "ListHouseholds", DENIED, "RecordAccess ListHouseholds denied",
           lambda: x.call("Ledger", "ListHouseholds",
                          S.ListRequest(page_size=1), expired_md),
           "setup-only",
           lambda r: (access("ListHouseholds", L.PERMISSION_DENIED,
                             "setup-only")(r) and r.actor == "clerk"))


if __name__ == "__main__":
    main()
