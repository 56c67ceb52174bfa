"""Signing in like a real front end (issue 8; docs/identity.md), for the
integration tests and the chaos scripts.

  - totp(secret, step): RFC 6238 (HMAC-SHA-1, 30 s steps, 6 digits), the
    code of a chosen step, so a test never waits for the clock;
  - Account: what a person knows (staff id, password, TOTP secret) and the
    last TOTP step it used: codes are single use and a node accepts only
    the steps now-1, now and now+1, so next_step() hands out each step
    once and never one the node would refuse;
  - first_sign_in(): an account's first sign-in as a front end does it
    (temporary password -> setup session -> ChangePassword -> setup
    session -> EnrollTotp -> ConfirmTotp -> password + TOTP -> token);
  - sign_in(): a later sign-in with password + TOTP (another client
    certificate needs one: a token is bound to the certificate it was
    issued on);
  - bearer(token) / call_credentials(token): the `authorization: Bearer`
    metadata every call but Health and Auth.SignIn carries;
  - bootstrap_admin_text(): the `bootstrap-admin` file kyufuctl cluster
    init writes into each node's folder (PBKDF2-HMAC-SHA256).

Nothing here sleeps a whole TOTP step: a step is used at most once per
account, three steps are usable at any moment, and the harness signs each
account in once per client certificate.
"""
import base64
import hashlib
import hmac
import os
import struct
import string
import time

import grpc

STEP_S = 30
DIGITS = 6
PBKDF2_ITERATIONS = 600000  # api/pwhash.h KYUFU_PWHASH_ITERATIONS
# The harness's clusters run with [insecure_test] password_iterations =
# TEST_ITERATIONS (api/pwhash.h KYUFU_PWHASH_TEST_ITERATIONS_MIN; cluster.py):
# each hash ~0.2 ms instead of ~0.13 s of CPU (docs/testing.md "Password
# hashing in tests").
TEST_ITERATIONS = 1000
# A code is computed a little ahead: a step chosen now must still be
# accepted (within +-1 of the node's step) when the call reaches the node.
MARGIN_S = 5


def totp(secret, step):
    """RFC 6238 / RFC 4226: the 6-digit code of `step` (unix time // 30)
    for the raw secret bytes."""
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    val = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return "%0*d" % (DIGITS, val % 10 ** DIGITS)


def step_at(t):
    return int(t) // STEP_S


def b32_secret(text):
    """EnrollTotpResponse.secret_base32 -> raw bytes (padding optional)."""
    text = text.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def new_password():
    """A password the default policy accepts: 26 characters, four classes,
    random, with no two letters in a row after its first two: the node
    refuses any 4 letters of the staff id and any word of 3 letters or more
    of the display name (node/password.c), and a run of random letters
    held one now and then (CI: "observer" refused "...erve..."-like runs),
    while letter-digit pairs can hold no such word.  About 90 bits."""
    raw = os.urandom(20)
    letters = string.ascii_letters
    pairs = "".join(letters[raw[2 * i] % 52] + str(raw[2 * i + 1] % 10)
                    for i in range(10))
    return "Kq7#" + pairs + "%9"


def bearer(token):
    return (("authorization", "Bearer " + token),)


def call_credentials(token):
    """grpc call credentials adding `authorization: Bearer <token>` (to be
    composed with the channel's TLS credentials)."""
    return grpc.access_token_call_credentials(token)


def bootstrap_admin_text(staff_id, display_name, password, salt=None,
                         iterations=PBKDF2_ITERATIONS):
    """The bootstrap-admin file (docs/identity.md): key = value lines."""
    salt = salt if salt is not None else os.urandom(16)
    h = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return ("staff_id = %s\ndisplay_name = %s\niterations = %d\n"
            "salt = %s\nhash = %s\n" % (staff_id, display_name, iterations,
                                        salt.hex(), h.hex()))


def write_bootstrap_admin(path, text):
    """Written 0600 from the start (it holds a password hash)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Account:
    """A person's sign-in material.  password: the current one (the
    temporary one until first_sign_in changed it)."""

    def __init__(self, staff_id, password):
        self.staff_id = staff_id
        self.password = password
        self.secret = None
        self.last_step = 0

    def next_step(self, clock=time.time):
        """The lowest step above the last used one that the node accepts
        now and still accepts MARGIN_S from now; None if the three usable
        steps are all spent (the caller waits, or signs in less)."""
        now = clock()
        lo = max(self.last_step + 1, step_at(now + MARGIN_S) - 1)
        if lo > step_at(now) + 1:
            return None
        self.last_step = lo
        return lo

    def code(self, clock=time.time):
        step = self.next_step(clock)
        if step is None:
            # Only reached when a test signs one account in more than
            # twice within a step: wait for the next one (never in the
            # default suite's normal runs).
            time.sleep(STEP_S - clock() % STEP_S + 0.1)
            step = self.next_step(clock)
        return totp(self.secret, step)


class AuthError(AssertionError):
    pass


def _call(rpc, req, token=None, timeout=30):
    md = bearer(token) if token else None
    return rpc(req, metadata=md, timeout=timeout)


def await_sign_in(stub, S, request, wait_s):
    """stub.SignIn(request()), retried for wait_s while it is refused as
    for an account that does not exist yet (the bootstrap administrator
    appears once the cluster runs the identity command set, a few seconds
    after the first election) or a node not ready or too loaded to answer
    in time.  request: a function,
    called for each try (a TOTP code may change between them)."""
    end = time.monotonic() + wait_s
    while True:
        try:
            return _call(stub.SignIn, request())
        except grpc.RpcError as e:
            if time.monotonic() > end or e.code() not in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            time.sleep(0.2)


def first_sign_in(stub, S, account, new_password_=None, wait_s=0):
    """The full first sign-in of `account` (holding its temporary
    password) through the Auth stub `stub`; S: service_pb2.  Returns the
    token of a full session; account then holds the new password and the
    TOTP secret.  wait_s: how long the account may take to appear (the
    bootstrap administrator exists once the cluster runs the identity
    command set, a few seconds after the first election): the first
    SignIn is retried while it is refused for that long."""
    # An account that keeps its TOTP (a reset password) gives its code even
    # for the setup-only session.
    r = await_sign_in(stub, S, lambda: S.SignInRequest(
        staff_id=account.staff_id, password=account.password,
        totp_code=account.code() if account.secret else ""), wait_s)
    if not r.setup_only or not r.must_change_password:
        raise AuthError("%s: first sign-in is not a setup session: %s"
                        % (account.staff_id, r))
    new = new_password_ or new_password()
    _call(stub.ChangePassword, S.ChangePasswordRequest(
        old_password=account.password, new_password=new), r.token)
    account.password = new
    if account.secret:
        return sign_in(stub, S, account)
    r = _call(stub.SignIn, S.SignInRequest(staff_id=account.staff_id,
                                           password=account.password))
    if not r.setup_only or not r.totp_enrollment_required:
        raise AuthError("%s: after the password change, expected TOTP "
                        "enrollment: %s" % (account.staff_id, r))
    e = _call(stub.EnrollTotp, S.EnrollTotpRequest(), r.token)
    account.secret = b32_secret(e.secret_base32)
    _call(stub.ConfirmTotp, S.ConfirmTotpRequest(
        totp_code=account.code()), r.token)
    return sign_in(stub, S, account)


def sign_in(stub, S, account):
    """Password + TOTP (the next unused step): the token of a full
    session."""
    r = _call(stub.SignIn, S.SignInRequest(
        staff_id=account.staff_id, password=account.password,
        totp_code=account.code()))
    if r.setup_only or len(r.token) != 64:
        raise AuthError("%s: sign-in gave no full session: %s"
                        % (account.staff_id, r))
    return r.token


def stand_in_bootstrap(data_dirs, staff_id="admin"):
    """For a cluster made by `kyufuctl cluster init` (whose one-time
    password went to its output): a bootstrap-admin file in each node's
    data folder whose temporary password the test knows, written before
    the first start; returns that password."""
    password = new_password()
    text = bootstrap_admin_text(staff_id, "ID administrator", password)
    for d in data_dirs:
        os.makedirs(d, mode=0o700, exist_ok=True)
        write_bootstrap_admin(os.path.join(d, "bootstrap-admin"), text)
    return password


class Client:
    """A signed-in grpcio client of a cluster the Cluster class did not
    make: stubs s (cluster.stubs), one endpoint, one client certificate."""

    def __init__(self, s, endpoint, ca, cert, key):
        self.s = s
        tls = grpc.ssl_channel_credentials(
            root_certificates=open(ca, "rb").read(),
            private_key=open(key, "rb").read(),
            certificate_chain=open(cert, "rb").read())
        self.ch = grpc.secure_channel(endpoint, tls)
        G = s["service_pb2_grpc"]
        self.auth = G.AuthStub(self.ch)
        self.ledger = G.LedgerStub(self.ch)
        self.seq = 0

    def first_sign_in(self, staff_id, temporary_password, wait_s=0):
        """(Account, token) after the account's first sign-in."""
        acct = Account(staff_id, temporary_password)
        return acct, first_sign_in(self.auth, self.s["service_pb2"], acct,
                                   wait_s=wait_s)

    def create(self, admin_token, staff_id, roles, client_id="it-accounts"):
        """CreateStaff by an ID administrator: the temporary password."""
        S, L = self.s["service_pb2"], self.s["ledger_pb2"]
        self.seq += 1
        r = _call(self.ledger.CreateStaff, S.CreateStaffRequest(
            header=S.RequestHeader(terminal="it", key=L.IdempotencyKey(
                client_id=client_id, sequence=self.seq)),
            command=L.CreateStaff(staff_id=staff_id, display_name=staff_id,
                                  roles=roles)), admin_token)
        if not r.temporary_password:
            raise AuthError("CreateStaff %s: no temporary password" % staff_id)
        return r.temporary_password

    def close(self):
        self.ch.close()


def wait_session(auth_stubs, S, token, timeout=10):
    """Until every stub's node knows the session (WhoAmI answers): a
    follower authenticates from its own replica, which may trail the
    leader's commit of the sign-in by a heartbeat.  auth_stubs: Auth stubs
    of the live nodes; a node that does not answer (stopped, restarting)
    is passed over."""
    end = time.monotonic() + timeout
    for stub in auth_stubs:
        while True:
            try:
                _call(stub.WhoAmI, S.WhoAmIRequest(), token, timeout=1)
                break
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                    break  # not answering: nothing to wait for
                if time.monotonic() > end:
                    raise AuthError("a node never saw the session: %s"
                                    % e.details())
                time.sleep(0.02)
