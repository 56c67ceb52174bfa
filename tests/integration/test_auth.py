"""Sign-in, sessions and the second factor through a stock grpcio client
(issue 8; docs/identity.md), on a three-node cluster:

  - the first ID administrator comes from the bootstrap-admin file (0600,
    PBKDF2 hash of a temporary password); each node deletes its file once
    the account exists;
  - the first sign-in with the temporary password is a setup-only session;
    ChangePassword (policy: a guessable password is refused); a sign-in
    without TOTP is still setup-only; EnrollTotp + ConfirmTotp (codes
    computed per RFC 6238 by auth.py);
  - a full sign-in with password + TOTP through a follower (forwarded to
    the leader, bound to this client's certificate); WhoAmI on every node;
  - the same TOTP code again is refused (single use); the token over
    another client certificate is refused; forged forwarding metadata
    from a client is refused;
  - CreateStaff answers a temporary password once; five wrong passwords
    lock that account, the right one too (answered "sign-in failed" as
    an unknown account is: nothing tells them apart);
  - SignOut: the token is refused on every node;
  - no password, token or secret appears in any node's log.

usage: test_auth.py KYUFUD"""
import os
import sys
import time

import grpc

import auth as AU
import cluster as C

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
ADMIN = C.ADMIN
T = 30  # per call: the sanitizer build on a loaded machine is slow
RESET = [lambda: None]  # run() sets it: new channels after UNAVAILABLE


def code_of(e):
    return e.code() if isinstance(e, grpc.RpcError) else None


def expect_error(fn, code, text=None, patience=30):
    """fn() fails with code (and text in its details); UNAVAILABLE (a new
    channel still connecting to a loaded node) is retried meanwhile."""
    end = time.monotonic() + patience
    while True:
        try:
            fn()
        except grpc.RpcError as e:
            if (e.code() == grpc.StatusCode.UNAVAILABLE and
                    code != grpc.StatusCode.UNAVAILABLE and
                    time.monotonic() < end):
                # grpcio can stay stuck on a subchannel that failed to
                # connect: start afresh (the stubs are made per call).
                RESET[0]()
                time.sleep(0.2)
                continue
            assert e.code() == code, (e.code(), e.details())
            if text is not None:
                assert text in (e.details() or ""), e.details()
            return e.details()
        raise AssertionError("expected %s" % code)


def md(token, extra=()):
    return (("authorization", "Bearer " + token),) + tuple(extra)


def main():
    c = C.Cluster(sys.argv[1])
    try:
        run(c)
        c.stop_clean()
    finally:
        c.close()


def run(c):
    S = c.s["service_pb2"]
    led = c.s["ledger_pb2"]
    G = c.s["service_pb2_grpc"]
    from kyufu.v1 import identity_pb2 as ident
    # The bootstrap-admin file kyufuctl cluster init writes, in each node's
    # data folder: the Cluster wrote it (auth.bootstrap_admin_text).
    TEMP, text = c.admin_temp, c.bootstrap_text
    h = dict(line.split(" = ", 1) for line in text.splitlines())["hash"]
    files = {i: os.path.join(c.dir, "node%d" % i, "data", C.BOOTSTRAP_FILE)
             for i in (1, 2, 3)}
    for f in files.values():
        assert os.stat(f).st_mode & 0o777 == 0o600, f
    c.start_all()
    leader = c.wait_leader(20)
    follower = [i for i in (1, 2, 3) if i != leader][0]

    other = {}

    def auth(i, cert=None, key=None):
        if cert is None:
            return G.AuthStub(c.channel(i))
        if i not in other:
            other[i] = grpc.secure_channel(c.api[i], c.creds(cert, key),
                                           options=C.CHANNEL_OPTIONS)
        return G.AuthStub(other[i])

    def reset():
        for i in (1, 2, 3):
            c.reset_channel(i)
        for ch in other.values():
            ch.close()
        other.clear()
    RESET[0] = reset

    # First sign-in: the bootstrap account appears once the cluster runs
    # the identity command set (a few seconds after the election).
    try:
        r = AU.await_sign_in(auth(leader), S, lambda: S.SignInRequest(
            staff_id=ADMIN, password=TEMP), 40)
    except grpc.RpcError as e:
        raise AssertionError("%s %s\n%s" % (e.code(), e.details(), c.logs()))
    assert r.setup_only and r.must_change_password, r
    assert len(r.token) == 64 and r.staff_id == ADMIN
    setup_token = r.token

    # A setup session may change its password; the policy refuses a
    # guessable one (no change), then takes a good one.
    def A():
        return auth(leader)
    expect_error(lambda: A().ChangePassword(S.ChangePasswordRequest(
        old_password=TEMP, new_password="password1234567"),
        metadata=md(setup_token), timeout=T),
        grpc.StatusCode.INVALID_ARGUMENT, "refused")
    expect_error(lambda: A().ChangePassword(S.ChangePasswordRequest(
        old_password=TEMP, new_password="short"),
        metadata=md(setup_token), timeout=T),
        grpc.StatusCode.INVALID_ARGUMENT, "at least 12")
    new_pw = AU.new_password()
    A().ChangePassword(S.ChangePasswordRequest(old_password=TEMP,
                                             new_password=new_pw),
                     metadata=md(setup_token), timeout=T)
    # The change closed every session of the account, this one included.
    expect_error(lambda: A().WhoAmI(S.WhoAmIRequest(), metadata=md(setup_token),
                                  timeout=T), UNAUTH)
    # The temporary password no longer works; the new one gives a setup
    # session until a TOTP secret is confirmed.
    expect_error(lambda: A().SignIn(S.SignInRequest(staff_id=ADMIN,
                                                  password=TEMP), timeout=T),
                 UNAUTH, "sign-in failed")
    r = A().SignIn(S.SignInRequest(staff_id=ADMIN, password=new_pw), timeout=T)
    assert r.setup_only and not r.must_change_password, r
    assert r.totp_enrollment_required, r
    t2 = r.token
    # A wrong old password: refused, and counted as a failed sign-in.
    expect_error(lambda: A().ChangePassword(S.ChangePasswordRequest(
        old_password="Not-The-Password-1", new_password=AU.new_password()),
        metadata=md(t2), timeout=T), UNAUTH, "old password is wrong")
    e = A().EnrollTotp(S.EnrollTotpRequest(), metadata=md(t2), timeout=T)
    assert e.otpauth_uri.startswith("otpauth://totp/kyufu:admin?secret="), e
    b32 = e.secret_base32
    secret = AU.b32_secret(b32)
    assert len(secret) == 20
    acct = AU.Account(ADMIN, new_pw)  # hands out each TOTP step once
    acct.secret = secret
    wrong = "000000"
    for step in range(AU.step_at(time.time()) - 2,
                      AU.step_at(time.time()) + 3):
        if AU.totp(secret, step) == wrong:
            wrong = "111111"
    expect_error(lambda: A().ConfirmTotp(S.ConfirmTotpRequest(
        totp_code=wrong), metadata=md(t2), timeout=T), UNAUTH)
    A().ConfirmTotp(S.ConfirmTotpRequest(totp_code=acct.code()),
                  metadata=md(t2), timeout=T)

    # A full sign-in through a follower (forwarded to the leader).
    def F():
        return auth(follower)
    code = acct.code()
    expect_error(lambda: F().SignIn(S.SignInRequest(staff_id=ADMIN,
                                                  password=new_pw),
                                  timeout=T), UNAUTH, "sign-in failed")
    r = F().SignIn(S.SignInRequest(staff_id=ADMIN, password=new_pw,
                                 totp_code=code), timeout=T)
    assert not r.setup_only and r.staff_id == ADMIN, r
    assert list(r.roles) == [led.ROLE_ID_ADMIN], r
    token = r.token
    # The same code again: single use.
    expect_error(lambda: F().SignIn(S.SignInRequest(
        staff_id=ADMIN, password=new_pw, totp_code=code), timeout=T),
        UNAUTH, "sign-in failed")

    # WhoAmI on every node (followers read their own replica).
    # At once on every node: a follower that has not applied the sign-in
    # yet asks the leader to check the session (never UNAUTHENTICATED).
    for i in (1, 2, 3):
        w = auth(i).WhoAmI(S.WhoAmIRequest(), metadata=md(token), timeout=T)
        assert w.staff_id == ADMIN and not w.setup_only, w
        assert w.display_name == "ID administrator", w
        assert w.terminal == "kyufu-test-client", w
        assert w.expires_ms > w.idle_expires_ms > 0, w
        # The session's limits as authenticate checked them: idle from
        # this use (15 minutes by default), absolute from the sign-in
        # (12 hours); a few seconds of slack for a loaded machine.
        now_ms = int(time.time() * 1000)
        assert abs(w.idle_expires_ms - (now_ms + 15 * 60000)) < 10000, w
        assert abs(w.expires_ms - r.expires_ms) < 10000, (w, r)

    # The token over another client certificate of the same CA: refused.
    okey, ocert = C.make_cert(os.path.join(c.dir, "pki"), "terminal2",
                              c.ca_key, c.ca, "terminal-2")
    for i in (leader, follower):
        expect_error(lambda: auth(i, ocert, okey).WhoAmI(
            S.WhoAmIRequest(), metadata=md(token), timeout=T), UNAUTH,
            "another client certificate")
    # A client cannot claim to be a forwarding node.
    expect_error(lambda: A().WhoAmI(S.WhoAmIRequest(), metadata=(
        ("kyufu-principal", ADMIN), ("kyufu-session", "00" * 32)),
        timeout=T), UNAUTH, "forwarded-identity")
    # Malformed tokens.
    for bad in ("Bearer " + token.upper(), "Bearer " + token[:-1],
                "Basic " + token, token):
        expect_error(lambda: A().WhoAmI(S.WhoAmIRequest(), metadata=(
            ("authorization", bad),), timeout=T), UNAUTH, "malformed")

    # CreateStaff: the node makes the temporary password, answers it once;
    # a client-set one is refused.
    def header(seq):
        return S.RequestHeader(actor=ADMIN, key=led.IdempotencyKey(
            client_id="it-auth", sequence=seq))
    def L():
        return c.ledger(leader)
    expect_error(lambda: L().CreateStaff(S.CreateStaffRequest(
        header=header(1), command=led.CreateStaff(
            staff_id="clerk1", display_name="Ichiro Clerk",
            roles=[led.ROLE_CLERK],
            temporary_password=ident.PasswordHash(iterations=600000))),
        metadata=md(token), timeout=T), grpc.StatusCode.INVALID_ARGUMENT,
        "temporary_password")
    cr = L().CreateStaff(S.CreateStaffRequest(
        header=header(2), command=led.CreateStaff(
            staff_id="clerk1", display_name="Ichiro Clerk",
            roles=[led.ROLE_CLERK])), metadata=md(token), timeout=T)
    clerk_pw = cr.temporary_password
    assert len(clerk_pw) >= 16 and clerk_pw.isprintable(), cr
    # The same key again gets the first result (the command digest leaves
    # the node-made hash out) and never shows the password a second time.
    cr2 = L().CreateStaff(S.CreateStaffRequest(
        header=header(2), command=led.CreateStaff(
            staff_id="clerk1", display_name="Ichiro Clerk",
            roles=[led.ROLE_CLERK])), metadata=md(token), timeout=T)
    assert cr2.temporary_password == "", cr2
    assert cr2.result.audit_seq == cr.result.audit_seq, (cr, cr2)

    # Five wrong passwords lock the account; then the right one is refused
    # too, answered as any refusal (the reason is in the audit record).
    for k in range(5):
        expect_error(lambda: F().SignIn(S.SignInRequest(
            staff_id="clerk1", password="Wrong-Password-%d-x" % k),
            timeout=T), UNAUTH, "sign-in failed")
    expect_error(lambda: A().SignIn(S.SignInRequest(
        staff_id="clerk1", password=clerk_pw), timeout=T), UNAUTH,
        "sign-in failed")
    # An unknown account answers like a wrong password.
    expect_error(lambda: A().SignIn(S.SignInRequest(
        staff_id="nobody", password="Whatever-Pass-1"), timeout=T), UNAUTH,
        "sign-in failed")

    # An ID administrator unlocks it (a write, through a follower), and
    # the temporary password signs in again: a setup session.
    def LF():
        return G.AuthStub(c.channel(follower))
    LF().UnlockStaff(S.UnlockStaffRequest(
        header=header(3), command=ident.UnlockStaff(staff_id="clerk1")),
        metadata=md(token), timeout=T)
    r = A().SignIn(S.SignInRequest(staff_id="clerk1", password=clerk_pw),
                 timeout=T)
    assert r.setup_only and r.must_change_password, r
    clerk_token = r.token
    # ResetPassword: a new temporary password, shown once; the old one and
    # the clerk's sessions are gone.
    rp = LF().ResetPassword(S.ResetPasswordRequest(
        header=header(4), staff_id="clerk1"), metadata=md(token), timeout=T)
    clerk_pw2 = rp.temporary_password
    assert len(clerk_pw2) >= 16 and clerk_pw2 != clerk_pw, rp
    expect_error(lambda: A().WhoAmI(S.WhoAmIRequest(),
                                  metadata=md(clerk_token), timeout=T),
                 UNAUTH)
    expect_error(lambda: A().SignIn(S.SignInRequest(
        staff_id="clerk1", password=clerk_pw), timeout=T), UNAUTH,
        "sign-in failed")
    r = A().SignIn(S.SignInRequest(staff_id="clerk1", password=clerk_pw2),
                 timeout=T)
    assert r.setup_only and r.must_change_password, r

    reset()

    # Sign-out: the token is gone everywhere.
    F().SignOut(S.SignOutRequest(), metadata=md(token), timeout=T)
    for i in (1, 2, 3):
        end = time.monotonic() + 10
        while True:
            try:
                auth(i).WhoAmI(S.WhoAmIRequest(), metadata=md(token),
                               timeout=T)
            except grpc.RpcError as e:
                assert e.code() == UNAUTH, e
                break
            assert time.monotonic() < end, "token alive on node %d" % i
            time.sleep(0.1)

    # Bootstrap files: every node deleted its own once the account existed.
    end = time.monotonic() + 10
    while any(os.path.exists(f) for f in files.values()):
        assert time.monotonic() < end, "bootstrap-admin not deleted"
        time.sleep(0.2)
    # A file group or others may read is refused at start (and left).
    c.kill(follower, C.signal.SIGTERM)
    assert c.wait_exit(follower, 30) == 0
    fd = os.open(files[follower], os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(files[follower], 0o644)
    c.start(follower)
    end = time.monotonic() + 10
    while "bootstrap-admin file refused" not in open(
            c.log_path(follower)).read():
        assert time.monotonic() < end, c.logs()
        time.sleep(0.1)
    assert os.path.exists(files[follower])

    # No secret in any log.
    secrets = [TEMP, new_pw, clerk_pw, clerk_pw2, token, setup_token, t2,
               clerk_token, b32,
               secret.hex(), h]
    for i in (1, 2, 3):
        log = open(c.log_path(i)).read()
        for s in secrets:
            assert s not in log, "node %d logged a secret" % i

    weak_hashes_refused_in_production(c, S, auth, clerk_pw2)


def weak_hashes_refused_in_production(c, S, auth, clerk_pw2):
    """The harness's clusters make weak password hashes ([insecure_test],
    docs/testing.md "Password hashing in tests"), and say so in every
    log; the same stores under a production config (the section removed)
    refuse every such hash at a sign-in, even with the right password."""
    if not c.weak_hashes:
        print("KYUFU_TEST_PWHASH=production: no weak hashes to refuse")
        return
    for i in (1, 2, 3):
        assert "INSECURE TEST MODE" in open(c.log_path(i)).read(), i
    # The control: the weak temporary hash signs in on the test cluster.
    leader = c.wait_leader(20)
    r = auth(leader).SignIn(S.SignInRequest(staff_id="clerk1",
                                            password=clerk_pw2), timeout=T)
    assert r.setup_only, r
    c.stop_clean()
    sizes = {}
    for i in (1, 2, 3):
        text = open(c.conf[i]).read()
        assert C.WEAK_HASHES in text, text
        with open(c.conf[i], "w") as f:
            f.write(text.replace(C.WEAK_HASHES, ""))
        sizes[i] = os.path.getsize(c.log_path(i))
    c.start_all()
    leader = c.wait_leader(20)
    RESET[0]()
    expect_error(lambda: auth(leader).SignIn(S.SignInRequest(
        staff_id="clerk1", password=clerk_pw2), timeout=T), UNAUTH,
        "sign-in failed")
    for i in (1, 2, 3):
        with open(c.log_path(i)) as f:
            f.seek(sizes[i])
            assert "INSECURE TEST MODE" not in f.read(), i


if __name__ == "__main__":
    main()
