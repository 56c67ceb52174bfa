"""A three-node kyufud cluster in a temporary folder, for integration tests.

Each test makes its own Cluster: free loopback ports, a fresh CA with node
and client certificates (ECDSA P-256, made with the openssl command line),
one kyufud.conf per node, and Python gRPC stubs generated from api/*.proto
with Debian's grpc_tools.  Processes are tracked by PID and killed in
close(), which tests call from `finally` (and atexit as a last resort), so
a failing test leaves nothing running.  Everything is written under the
cluster's own mkdtemp folder.

Identity (issue 8; docs/identity.md): every call but Health and
Auth.SignIn carries a session token.  The cluster's first ID administrator
comes from a `bootstrap-admin` file written into each node's data folder at
creation, as kyufuctl cluster init does; the harness signs accounts in like
a front end (auth.py) once per client certificate and keeps their tokens.
The channels of channel(), ledger(), cluster() and secure_channel() add the
token by themselves (TokenInterceptor): a request whose header names an
actor carries that account's token, a read carries the observer's (an
account holding every role but ID administrator; ID administrators' reads
carry the admin's).  status() probes with a node certificate
(pki/probe.pem, node 1's identity), which the permission table lets call
Status (a peer's probe), so wait_leader works before any account exists.
Tests that need a call without a token use plain_channel().

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-grpc-tools).
"""
import atexit
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77


def skip(why):
    print("SKIP:", why)
    sys.exit(SKIP)


try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:  # pragma: no cover
    skip("python3-grpcio / python3-grpc-tools missing: %s" % e)

import auth as A  # noqa: E402
import keyfiles  # noqa: E402
from ports import free_ports  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, **kw)


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
         "-out", key])
    run(["openssl", "req", "-x509", "-new", "-key", key, "-sha256", "-days",
         "30", "-subj", "/CN=" + name, "-out", crt])
    return key, crt


def make_cert(d, name, ca_key, ca_crt, cn, node_id=None,
              ips=("127.0.0.1",)):
    """A leaf certificate; node_id adds the Raft identity URI SAN
    urn:kyufu:node:N that the Raft port requires (docs/peer-tls.md); ips:
    its IP SANs (chaos/ gives nodes addresses in their own namespaces)."""
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    csr, ext = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
         "-out", key])
    os.chmod(key, 0o600)
    run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + cn,
         "-out", csr])
    with open(ext, "w") as f:
        uri = ",URI:urn:kyufu:node:%d" % node_id if node_id else ""
        san = "".join("IP:%s," % ip for ip in ips)
        f.write("subjectAltName=%sDNS:localhost%s\n" % (san, uri) +
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "keyUsage=digitalSignature\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
         ca_key, "-CAcreateserial", "-days", "30", "-sha256", "-extfile",
         ext, "-out", crt])
    return key, crt


# Nodes come and go in these tests: reconnect quickly instead of grpc's
# default backoff (1 s growing to 120 s).  grpcio also takes the minimum
# reconnect backoff as its connect timeout (TCP + TLS + the server's
# SETTINGS): 2 s, not 50 ms, which a handshake on a loaded 2-core machine
# exceeds ("handshaker shutdown"; the harness opens fresh channels for
# sign-ins and other certificates).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 50),
                   ("grpc.min_reconnect_backoff_ms", 2000),
                   ("grpc.max_reconnect_backoff_ms", 300)]

# The bootstrap administrator (docs/identity.md "Accounts and their
# lifecycle"), the harness's read-only observer, and the file name.
ADMIN = "admin"
OBSERVER = "observer"
BOOTSTRAP_FILE = "bootstrap-admin"
# Audit records of the operation log that change no ledger state: reads of
# personal data, refused calls, sign-ins and sessions (identity.proto).
ACCESS_COMMANDS = ("RecordAccess", "OpenSession", "SignInFailed",
                   "CloseSession", "TouchSessions")
# Methods whose reads are an ID administrator's (docs/identity.md roles).
ADMIN_READS = ("/kyufu.v1.Ledger/GetStaff", "/kyufu.v1.Ledger/ListStaff")

_Details = collections.namedtuple(
    "_Details", ("method", "timeout", "metadata", "credentials",
                 "wait_for_ready", "compression"))


class _CallDetails(_Details, grpc.ClientCallDetails):
    pass


class TokenInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to each call that has none:
    the token of the actor the request's header names, else (a read) the
    observer's or, for staff reads, the admin's.  Auth methods without a
    header go as they are (the sign-in flow sets its own metadata).
    cert: the client certificate of the channel (a token is bound to
    it)."""

    def __init__(self, cluster, cert):
        self.c = cluster
        self.cert = cert

    def pick(self, method, request):
        header = getattr(request, "header", None)
        actor = getattr(header, "actor", "") if header is not None else ""
        if actor:
            return self.c.token(actor, self.cert)
        if method.startswith("/kyufu.v1.Auth/"):
            return None
        who = ADMIN if method in ADMIN_READS else OBSERVER
        if who == OBSERVER and OBSERVER not in self.c.accounts:
            if ADMIN not in self.c.accounts:
                return None  # nothing signed in yet: no token
            self.c.observer()
        return self.c.token(who, self.cert)

    def intercept_unary_unary(self, continuation, details, request):
        md = list(details.metadata or ())
        if not any(k == "authorization" for k, _ in md):
            token = self.pick(details.method, request)
            if token:
                md += A.bearer(token)
                details = _CallDetails(
                    details.method, details.timeout, md,
                    details.credentials, details.wait_for_ready,
                    details.compression)
        return continuation(details, request)


_stubs = {}


def stubs(d):
    """Generate and import the kyufu and health stubs into d (once)."""
    if _stubs:
        return _stubs
    out = os.path.join(d, "stubs")
    hout = os.path.join(d, "health_stubs")  # never on sys.path: 'grpc/...'
    os.makedirs(out)
    os.makedirs(hout)
    api = os.path.join(SRC, "api")
    inc = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    for o, protos in ((out, ["kyufu/v1/identity.proto",
                             "kyufu/v1/ledger.proto",
                             "kyufu/v1/service.proto"]),
                      (hout, ["grpc/health/v1/health.proto"])):
        rc = protoc.main(["protoc", "-I" + api, "-I" + inc,
                          "--python_out=" + o, "--grpc_python_out=" + o]
                         + [os.path.join(api, p) for p in protos])
        if rc != 0:
            raise RuntimeError("protoc failed")
    for sub in ["kyufu", "kyufu/v1"]:
        open(os.path.join(out, sub, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    # The health stubs live in package 'grpc.health.v1', which would clash
    # with grpcio's own 'grpc': load them by path under other names.
    import importlib.util

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    hdir = os.path.join(hout, "grpc", "health", "v1")
    src = open(os.path.join(hdir, "health_pb2_grpc.py")).read()
    src = src.replace("from grpc.health.v1 import health_pb2 as",
                      "import kyufu_health_pb2 as")
    with open(os.path.join(hdir, "health_pb2_grpc.py"), "w") as f:
        f.write(src)
    _stubs["health_pb2"] = load("kyufu_health_pb2",
                                os.path.join(hdir, "health_pb2.py"))
    _stubs["health_pb2_grpc"] = load("kyufu_health_pb2_grpc",
                                     os.path.join(hdir, "health_pb2_grpc.py"))
    from kyufu.v1 import ledger_pb2, service_pb2, service_pb2_grpc
    _stubs.update(ledger_pb2=ledger_pb2, service_pb2=service_pb2,
                  service_pb2_grpc=service_pb2_grpc)
    return _stubs


# The config section of the test-only password hash cost (node/config.c;
# kyufud refuses it unless every address is a loopback one).
WEAK_HASHES = "[insecure_test]\npassword_iterations = %d\n" % A.TEST_ITERATIONS


class Cluster:
    def __init__(self, kyufud, n=3, election_ms=1000, heartbeat_ms=100,
                 snapshot_threshold=None, snapshot_trailing=None,
                 extra_conf=None, weak_hashes=None):
        """extra_conf: {node: text} appended to that node's kyufud.conf
        (e.g. a [power] section).  weak_hashes: every node's config has
        [insecure_test] password_iterations = auth.TEST_ITERATIONS and the
        bootstrap administrator's hash that count (docs/testing.md
        "Password hashing in tests"); False: the production cost; None:
        True unless KYUFU_TEST_PWHASH=production (to measure the
        difference, or run a suite at the production cost)."""
        if weak_hashes is None:
            weak_hashes = os.environ.get("KYUFU_TEST_PWHASH") != "production"
        self.kyufud = kyufud
        self.n = n
        self.election_ms = election_ms
        self.dir = tempfile.mkdtemp(prefix="kyufu-it-", dir="/tmp")
        self.procs = {}
        # {node: {NAME: value}}: extra environment for that node's kyufud
        # (e.g. the KYUFU_BOOT_ID_FILE test hook, docs/testing.md).
        self.node_env = {}
        atexit.register(self.close)
        self.s = stubs(self.dir)
        ports = free_ports(2 * n)
        self.raft = {i: "127.0.0.1:%d" % ports[2 * (i - 1)]
                     for i in range(1, n + 1)}
        self.api = {i: "127.0.0.1:%d" % ports[2 * (i - 1) + 1]
                    for i in range(1, n + 1)}
        pki = os.path.join(self.dir, "pki")
        os.makedirs(pki)
        ca_key, self.ca = make_ca(pki, "ca")
        self.ca_key = ca_key  # to issue more certificates (rotation tests)
        self.client_key, self.client_cert = make_cert(
            pki, "client", ca_key, self.ca, "kyufu-test-client")
        self.ca_key = ca_key
        # The harness's Status probes: a node certificate (node 1's
        # identity, its own files, never rotated by a test).
        self.probe_key, self.probe_cert = make_cert(
            pki, "probe", ca_key, self.ca, "kyufu-probe", node_id=1)
        other_key, other_ca = make_ca(pki, "other-ca")
        self.other_ca_key, self.other_ca = other_key, other_ca
        self.other_key, self.other_cert = make_cert(
            pki, "other-client", other_key, other_ca, "intruder")
        cluster = "".join("%d = %s %s\n" % (i, self.raft[i], self.api[i])
                          for i in range(1, n + 1))
        raft_extra = ""
        if snapshot_threshold:
            raft_extra += "snapshot_threshold = %d\n" % snapshot_threshold
        if snapshot_trailing:
            raft_extra += "snapshot_trailing = %d\n" % snapshot_trailing
        self.conf = {}
        # Encryption at rest (docs/encryption.md): one cluster key, each
        # node's KEK file and wrapped copy, as kyufuctl cluster init makes.
        self.cmk = os.urandom(32)
        self.identity = keyfiles.ca_hash(self.ca)
        for i in range(1, n + 1):
            nd = os.path.join(self.dir, "node%d" % i)
            os.makedirs(nd)
            kek = keyfiles.write_kek(os.path.join(nd, keyfiles.KEK_FILE))
            keyfiles.write_cmk(self.cmk_path(i), kek, i, self.identity,
                               self.cmk)
            key, crt = make_cert(nd, "node", ca_key, self.ca,
                                 "kyufu-node-%d" % i, node_id=i)
            conf = os.path.join(nd, "kyufud.conf")
            with open(conf, "w") as f:
                f.write("[node]\nid = %d\ndata_dir = %s\n"
                        "raft_address = %s\napi_address = %s\n"
                        "[cluster]\n%s"
                        "[tls]\nca = %s\ncert = %s\nkey = %s\n"
                        "[raft]\nelection_timeout_ms = %d\n"
                        "heartbeat_timeout_ms = %d\n%s"
                        "[log]\nlevel = info\n"
                        % (i, os.path.join(nd, "data"), self.raft[i],
                           self.api[i], cluster, self.ca, crt, key,
                           election_ms, heartbeat_ms, raft_extra))
                f.write(keyfiles.conf(os.path.join(nd, keyfiles.KEK_FILE),
                                      self.cmk_path(i)))
                if weak_hashes:
                    f.write(WEAK_HASHES)
                f.write((extra_conf or {}).get(i, ""))
            self.conf[i] = conf
        self.channels = {}
        self.plain = {}  # (node, cert): channel without a token
        # Identity: the bootstrap administrator's temporary password, in
        # each node's data folder as kyufuctl cluster init leaves it.
        self.lock = threading.RLock()
        self.accounts = {}  # staff_id: auth.Account, first sign-in done
        self.tokens = {}    # (staff_id, client cert path): token
        self.admin_temp = A.new_password()
        self.weak_hashes = weak_hashes
        self.bootstrap_text = A.bootstrap_admin_text(
            ADMIN, "ID administrator", self.admin_temp,
            iterations=(A.TEST_ITERATIONS if weak_hashes
                        else A.PBKDF2_ITERATIONS))
        for i in range(1, n + 1):
            self.write_bootstrap(i, self.bootstrap_text)
        self._admin_writer = None

    # ------------------------------------------------------- processes
    def log_path(self, i):
        return os.path.join(self.dir, "node%d" % i, "kyufud.log")

    def start(self, i):
        assert i not in self.procs or self.procs[i].poll() is not None
        log = open(self.log_path(i), "a")
        env = dict(os.environ)
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "lsan.supp"))
        env.update(self.node_env.get(i, {}))
        self.procs[i] = subprocess.Popen([self.kyufud, "--config",
                                          self.conf[i]],
                                         stdout=log, stderr=log, env=env)
        log.close()

    def start_all(self):
        for i in self.ids():
            self.start(i)

    def ids(self):
        """The ids of the cluster's members: 1..n here; a subclass whose
        membership changes (chaos/harness/netcluster.py) returns the
        current ones, and wait_leader, wait_converged, logs and Writer's
        rotation follow it."""
        return list(range(1, self.n + 1))

    def next_node(self, i):
        """The member after node i in id order (wrapping): where a Writer
        tries next."""
        ids = self.ids()
        later = [j for j in ids if j > i]
        return later[0] if later else ids[0]

    def alive(self, i):
        return i in self.procs and self.procs[i].poll() is None

    def kill(self, i, sig=signal.SIGKILL):
        self.procs[i].send_signal(sig)

    def wait_exit(self, i, timeout):
        return self.procs[i].wait(timeout=timeout)

    def stop_clean(self, timeout=30, together=False):
        """SIGTERM every live node; each must exit 0 (clean stop: loop
        closed with no handle left) with no sanitizer report in its log.

        The followers first, then the leader (when every live node names
        the same live one): a leader stopped with its peers hands
        leadership to a peer that is stopping too and waits out its
        5 s hand-over bound (KYUFU_NODE_STOP_TRANSFER_MS_MAX) in every
        test; alone, its hand-over fails within an election timeout, once
        it has lost its quorum (docs/testing.md "Run time").  together:
        all at once, as before (cluster-basic keeps that path)."""
        live = [i for i in self.procs if self.alive(i)]
        groups = [live]
        if not together and len(live) > 1:
            sts = [self.status(i, timeout=1.0) for i in live]
            named = {s.leader_id for s in sts if s is not None}
            if None not in sts and len(named) == 1 and named <= set(live):
                lid = named.pop()
                groups = [[i for i in live if i != lid], [lid]]
        for group in groups:
            for i in group:
                self.kill(i, signal.SIGTERM)
            for i in group:
                rc = self.wait_exit(i, timeout)
                log = open(self.log_path(i)).read()
                assert rc == 0, "node %d exited %d:\n%s" % (i, rc,
                                                             log[-3000:])
                assert '"msg":"node stopped","exit_code":0' in log, \
                    log[-3000:]
        for i in self.procs:
            log = open(self.log_path(i)).read()
            for bad in ("AddressSanitizer", "LeakSanitizer",
                        "runtime error:"):
                assert bad not in log, "node %d: %s\n%s" % (i, bad,
                                                            log[-4000:])

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        """`with Cluster(...) as c:` prints the nodes' logs when the body
        raised (the exception goes on), then closes."""
        if kind is not None:
            print(self.logs())
        self.close()
        return False

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        for ch in list(self.channels.values()) + list(self.plain.values()):
            ch.close()
        self.channels = {}
        self.plain = {}
        if os.environ.get("KYUFU_KEEP_TMP"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = []
        for i in self.ids():
            try:
                with open(self.log_path(i)) as f:
                    out.append("--- node %d\n%s" % (i, f.read()[-6000:]))
            except OSError:
                pass
        return "\n".join(out)

    # ----------------------------------------------------------- calls
    def creds(self, cert=None, key=None):
        cert = cert or self.client_cert
        key = key or self.client_key
        return grpc.ssl_channel_credentials(
            root_certificates=open(self.ca, "rb").read(),
            private_key=open(key, "rb").read(),
            certificate_chain=open(cert, "rb").read())

    def secure_channel(self, i, cert=None, key=None, options=None):
        """A new channel to node i (or an address) that signs its calls
        (TokenInterceptor) with tokens issued on `cert`; the caller closes
        it."""
        target = self.api[i] if i in self.api else i
        ch = grpc.secure_channel(target, self.creds(cert, key),
                                 options=CHANNEL_OPTIONS if options is None
                                 else options)
        return grpc.intercept_channel(
            ch, TokenInterceptor(self, cert or self.client_cert))

    def channel(self, i):
        if i not in self.channels:
            self.channels[i] = self.secure_channel(i)
        return self.channels[i]

    def plain_channel(self, i, cert=None, key=None):
        """The shared channel to node i that adds no token (sign-in, and
        tests of what a caller without a session gets)."""
        k = (i, cert or self.client_cert)
        if k not in self.plain:
            self.plain[k] = grpc.secure_channel(
                self.api[i], self.creds(cert, key), options=CHANNEL_OPTIONS)
        return self.plain[k]

    def reset_channel(self, i):
        ch = self.channels.pop(i, None)
        if ch is not None:
            ch.close()
        for k in [k for k in self.plain if k[0] == i]:
            self.plain.pop(k).close()

    def node_cert(self, i):
        """(cert, key) of node i's own certificate files."""
        nd = os.path.join(self.dir, "node%d" % i)
        return os.path.join(nd, "node.pem"), os.path.join(nd, "node.key")

    def probe(self, i):
        """Cluster stub on node i with a node certificate (node 1's
        identity), no token: a peer's probe (Status), for wait_leader
        before accounts exist."""
        return self.s["service_pb2_grpc"].ClusterStub(
            self.plain_channel(i, self.probe_cert, self.probe_key))

    def ledger(self, i):
        return self.s["service_pb2_grpc"].LedgerStub(self.channel(i))

    def cluster(self, i):
        return self.s["service_pb2_grpc"].ClusterStub(self.channel(i))

    def health(self, i):
        return self.s["health_pb2_grpc"].HealthStub(self.channel(i))

    def status(self, i, digest=False, timeout=2.0):
        try:
            return self.probe(i).Status(
                self.s["service_pb2"].StatusRequest(with_digest=digest),
                timeout=timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                # grpcio 1.51 can stay stuck on a subchannel that failed to
                # connect ("tcp handshaker shutdown"): start afresh.
                self.reset_channel(i)
            return None

    def retry_unavailable(self, fn, deadline_s=20.0):
        """fn() again while it fails UNAVAILABLE with "retry" in its
        details (kyufud's answer during an election, which a loaded
        machine can hold right after wait_leader returned), until
        deadline_s; any other outcome as it comes."""
        end = time.monotonic() + deadline_s
        while True:
            try:
                return fn()
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or \
                        "retry" not in (e.details() or "") or \
                        time.monotonic() > end:
                    raise
            time.sleep(0.2)

    # -------------------------------------------------------- identity
    def cmk_path(self, i):
        """Node i's wrapped cluster key: beside its KEK, not in its data
        folder (kyufud's default, cluster init's place), because drills
        move, remount or wipe data folders and restart the node, which
        in production would need the key again from a member."""
        return os.path.join(self.dir, "node%d" % i, "keys", "cmk")

    def write_bootstrap(self, i, text):
        """The bootstrap-admin file in node i's data folder (0600)."""
        d = os.path.join(self.dir, "node%d" % i, "data")
        os.makedirs(d, mode=0o700, exist_ok=True)
        A.write_bootstrap_admin(os.path.join(d, BOOTSTRAP_FILE), text)

    def auth_stub(self, cert=None, key=None):
        """An Auth stub (no token added) on the leader, or on any live
        node if none is known."""
        live = [i for i in self.ids() if self.alive(i)]
        node = live[0] if live else 1
        for i in live:
            st = self.status(i, timeout=2.0)
            if st is not None and st.leader_id in self.api and \
                    self.alive(st.leader_id):
                node = st.leader_id
                break
        return self.s["service_pb2_grpc"].AuthStub(
            self.plain_channel(node, cert, key))

    def _cert_key(self, cert):
        if cert in (None, self.client_cert):
            return self.client_cert, self.client_key
        return cert, cert[:-len(".pem")] + ".key"

    def _settled(self, token, cert, key):
        """token, once every live node knows its session."""
        G = self.s["service_pb2_grpc"]
        A.wait_session([G.AuthStub(self.plain_channel(i, cert, key))
                        for i in self.ids() if self.alive(i)],
                       self.s["service_pb2"], token)
        return token

    def adopt(self, staff_id, temporary_password, cert=None):
        """An account's first sign-in (its temporary password, from
        CreateStaff or ResetPassword): returns its token on `cert`."""
        cert, key = self._cert_key(cert)
        with self.lock:
            acct = A.Account(staff_id, temporary_password)
            old = self.accounts.get(staff_id)
            if old is not None and old.secret:  # a reset keeps the TOTP
                acct.secret, acct.last_step = old.secret, old.last_step
            token = A.first_sign_in(
                self.auth_stub(cert, key), self.s["service_pb2"], acct,
                wait_s=30 if staff_id == ADMIN else 0)
            self.accounts[staff_id] = acct
            self.tokens[(staff_id, cert)] = self._settled(token, cert, key)
            return token

    def token(self, staff_id, cert=None):
        """The token of a signed-in account on client certificate `cert`
        (signing in on it the first time); the bootstrap admin is signed
        in on first use; None for an account the harness never signed
        in."""
        cert, key = self._cert_key(cert)
        with self.lock:
            if (staff_id, cert) in self.tokens:
                return self.tokens[(staff_id, cert)]
            if staff_id == ADMIN and ADMIN not in self.accounts:
                return self.adopt(ADMIN, self.admin_temp, cert)
            acct = self.accounts.get(staff_id)
            if acct is None:
                return None
            token = A.sign_in(self.auth_stub(cert, key),
                              self.s["service_pb2"], acct)
            self.tokens[(staff_id, cert)] = self._settled(token, cert, key)
            return token

    def bearer(self, staff_id, cert=None):
        """gRPC metadata carrying the account's token (auth.bearer)."""
        token = self.token(staff_id, cert)
        assert token, "%s is not signed in" % staff_id
        return A.bearer(token)

    def ctl_env(self, staff_id, cert=None):
        """The environment for a kyufuctl run as staff_id: its token in
        KYUFU_TOKEN (the interface kyufuctl login's token file shares)."""
        token = self.token(staff_id, cert)
        assert token, "%s is not signed in" % staff_id
        return dict(os.environ, KYUFU_TOKEN=token)

    def add_node_files(self, kyufuctl, conf, i, env=None):
        """kyufuctl node new for node i (fresh loopback ports, files under
        the cluster's directory, run with `env`), checked (its JSON, join =
        yes, node.key mode 0600), and registered here; returns its dir."""
        p = free_ports(2)
        self.raft[i] = "127.0.0.1:%d" % p[0]
        self.api[i] = "127.0.0.1:%d" % p[1]
        out = os.path.join(self.dir, "node%d" % i)
        r = subprocess.run(
            [kyufuctl, "--config", conf, "--json", "node", "new", "--id",
             str(i), "--raft", self.raft[i], "--api", self.api[i], "--pki",
             os.path.join(self.dir, "pki"), "--out", out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=60, env=env)
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        doc = json.loads(r.stdout)
        assert doc["id"] == i and doc["dir"] == out, doc
        text = open(os.path.join(out, "kyufud.conf")).read()
        assert "join = yes" in text, text
        assert oct(os.stat(os.path.join(out, "node.key")).st_mode & 0o777) \
            == "0o600"
        self.conf[i] = os.path.join(out, "kyufud.conf")
        if self.weak_hashes:
            # The cluster's test password cost, or the new node would
            # refuse every hash the others made.
            with open(self.conf[i], "a") as f:
                f.write(WEAK_HASHES)
        self.n = max(self.n, i)
        return out

    def write_client_conf(self, path, nodes, actor):
        """Write a kyufuctl/libkyufu config at path: endpoints the API
        addresses of `nodes`, the cluster's CA and client certificate,
        acting as `actor`."""
        with open(path, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\nactor = %s\n"
                     % (",".join(self.api[i] for i in nodes), self.ca,
                        self.client_cert, self.client_key, actor))

    def token_file(self, staff_id, cert=None):
        """A token file (0600, the token and a newline, as kyufuctl login
        writes it) for a libkyufu program's `token_file` config key."""
        token = self.token(staff_id, cert)
        assert token, "%s is not signed in" % staff_id
        path = os.path.join(self.dir, "token-%s" % staff_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return path

    def reset_password(self, staff_id):
        """Auth.ResetPassword by the bootstrap admin: the account's new
        temporary password (then adopt() signs it in)."""
        w = self.admin()
        w.seq += 1
        S = self.s["service_pb2"]
        leader = self.wait_leader(15, majority=True)
        r = self.s["service_pb2_grpc"].AuthStub(self.channel(leader)) \
            .ResetPassword(S.ResetPasswordRequest(
                header=w.header(w.seq), staff_id=staff_id), timeout=10)
        assert r.temporary_password, r
        return r.temporary_password

    def forget(self, staff_id):
        """Drop the account's tokens (after a password change, sign-out,
        suspension: the next token() signs in again)."""
        with self.lock:
            for k in [k for k in self.tokens if k[0] == staff_id]:
                del self.tokens[k]

    def admin(self):
        """The bootstrap ID administrator's Writer (signed in on first
        use)."""
        with self.lock:
            if self._admin_writer is None:
                self._admin_writer = Writer(self, ADMIN, "it-accounts")
            return self._admin_writer

    def account(self, staff_id, roles, display_name=None, writer=None):
        """A signed-in account with these roles (a list of Role values),
        created by the bootstrap admin if the harness has not made it yet;
        returns its token.  Writer(cluster, staff_id, ...) then acts as
        it.  writer: the admin's Writer to create it with (its node, its
        idempotency client); admin() if None."""
        with self.lock:
            if staff_id in self.accounts:
                return self.token(staff_id)
            L = self.s["ledger_pb2"]
            # One long attempt: the node hashes the temporary password
            # before proposing (slow on a loaded sanitizer build), and a
            # retry under the same key is answered as a duplicate, without
            # the temporary password (the node keeps only its hash).
            w = writer or self.admin()
            code, resp = w.call("CreateStaff", L.CreateStaff(
                staff_id=staff_id, display_name=display_name or staff_id,
                roles=roles), deadline_s=60.0, attempt_s=30.0)
            assert code == grpc.StatusCode.OK, (
                "CreateStaff %s: %s %s" % (staff_id, code, resp))
            assert resp.temporary_password, resp
            return self.adopt(staff_id, resp.temporary_password)

    def observer(self):
        """The harness's reader: every role but ID administrator, so that
        ledger(), cluster() and the tests' reads are served."""
        L = self.s["ledger_pb2"]
        return self.account(OBSERVER, [L.ROLE_CLERK, L.ROLE_APPROVER,
                                       L.ROLE_AUDITOR, L.ROLE_OPERATOR],
                            "integration test observer")

    def ledger_content(self, i):
        """The ledger as a client sees it on node i (a linearizable read of
        every list and the whole audit trail), serialized.  Unlike the state
        digest it leaves out the cluster's own records (the availability
        ledger's heartbeats change the digest every second), and the
        operation log's records of calls that changed nothing (reads,
        refusals, sign-ins: ACCESS_COMMANDS): equal content before and
        after means no command of any client changed anything."""
        S = self.s["service_pb2"]
        L = self.ledger(i)
        out = []
        for name, req in (("ListPrograms", S.ListRequest),
                          ("ListHouseholds", S.ListRequest),
                          ("ListApplications", S.ListApplicationsRequest),
                          ("ListPaymentBatches", S.ListRequest),
                          ("ListStaff", S.ListRequest),
                          ("ListAudit", S.ListRequest)):
            token = ""
            while True:
                r = getattr(L, name)(req(page_size=1000, page_token=token),
                                     timeout=10)
                if name == "ListAudit":
                    out += [a.SerializeToString(deterministic=True)
                            for a in r.records
                            if a.command not in ACCESS_COMMANDS]
                else:
                    out.append(r.SerializeToString(deterministic=True))
                token = r.next_page_token
                if not token:
                    break
        return b"".join(out)

    def wait_leader(self, timeout, exclude=(), poll=None, majority=False):
        """The leader id once every live node (not in exclude) names the
        same leader, which is itself live; raises on timeout.  majority:
        a majority of the cluster naming the same live leader is enough
        (the others may be slow to answer, e.g. a loaded ASan build).
        poll, if given, is called on every round (a test's own checks,
        which may raise)."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if poll is not None:
                poll()
            live = [i for i in self.ids()
                    if self.alive(i) and i not in exclude]
            sts = [self.status(i, timeout=1.0) for i in live]
            last = sts
            named = [s.leader_id for s in sts if s is not None]
            if majority:
                for lid in set(named) - {0}:
                    if lid in live and 2 * named.count(lid) > self.n:
                        return lid
            elif (None not in sts and len(set(named)) == 1
                  and named[0] != 0 and named[0] in live):
                return named[0]
            time.sleep(0.05)
        raise AssertionError("no leader within %.1fs: %s\n%s"
                             % (timeout, last, self.logs()))

    def wait_converged(self, timeout, nodes=None):
        """Every node at the same applied index with the same digest."""
        nodes = nodes or self.ids()
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            sts = [self.status(i, digest=True) for i in nodes]
            last = sts
            if None not in sts:
                if (len({s.applied_index for s in sts}) == 1 and
                        len({s.state_digest for s in sts}) == 1):
                    return sts[0]
            time.sleep(0.1)
        # Compact, and the laggards' warnings and errors last: meson shows
        # only a failed test's last 100 lines.
        brief = [None if st is None else
                 "node %d: applied %d commit %d last_log %d" % (
                     st.id, st.applied_index, st.commit_index,
                     st.last_log_index) for st in last or []]
        top = max((st.applied_index for st in last or [] if st), default=0)
        tails = []
        for i, st in zip(nodes, last or []):
            if st is not None and st.applied_index == top:
                continue
            try:
                with open(self.log_path(i)) as f:
                    lines = [ln for ln in f.read().splitlines()
                             if '"level":"warn"' in ln or
                             '"level":"error"' in ln]
            except OSError:
                lines = []
            tails.append("--- node %d, last warnings and errors:\n%s"
                         % (i, "\n".join(ln[:300] for ln in lines[-25:])))
        raise AssertionError("nodes did not converge: %s\n%s"
                             % (brief, "\n".join(tails)))


class Writer:
    """Writes with idempotency keys, retried across nodes with the SAME key
    until acknowledged (what libkyufu does), so a test can check that every
    acknowledged write is applied exactly once.  Each call carries the
    token of `actor` (signed in by the cluster: Cluster.account), which
    the header names too.

    own_channels: the writer opens its own channels (closed by close())
    instead of sharing the cluster's, so that writers in several threads
    are independent clients: one resetting its channel to a node does not
    cancel the others' calls on it."""

    def __init__(self, cluster, actor, client_id, own_channels=False):
        self.c = cluster
        self.actor = actor
        self.client_id = client_id
        self.seq = 0
        self.node = 1
        self.channels = {} if own_channels else None
        # Attempts that took longer than half their allowance: (monotonic
        # start, node, code name, seconds), for a test's failure message.
        self.slow = []
        # Attempts that did not succeed: (monotonic start, node, code name,
        # message).
        self.errors = []

    def ledger(self, node):
        if self.channels is None:
            return self.c.ledger(node)
        if node not in self.channels:
            self.channels[node] = self.c.secure_channel(node)
        return self.c.s["service_pb2_grpc"].LedgerStub(self.channels[node])

    def reset_channel(self, node):
        if self.channels is None:
            self.c.reset_channel(node)
            return
        ch = self.channels.pop(node, None)
        if ch is not None:
            ch.close()

    def close(self):
        for node in list(self.channels or ()):
            self.reset_channel(node)

    def _timed(self, began, node, code, attempt_s):
        took = time.monotonic() - began
        if took > attempt_s / 2:
            self.slow.append((began, node, code, took))

    def header(self, seq):
        s = self.c.s["service_pb2"]
        led = self.c.s["ledger_pb2"]
        return s.RequestHeader(actor=self.actor, terminal="it",
                               key=led.IdempotencyKey(
                                   client_id=self.client_id, sequence=seq))

    def call(self, method, command, deadline_s=30.0, attempt_s=2.0):
        """Returns (grpc code, response); retries UNAVAILABLE /
        DEADLINE_EXCEEDED on other nodes until deadline_s."""
        self.seq += 1
        seq = self.seq
        req_type = getattr(self.c.s["service_pb2"], method + "Request")
        req = req_type(header=self.header(seq), command=command)
        end = time.monotonic() + deadline_s
        while True:
            node = self.node
            began = time.monotonic()
            try:
                resp = getattr(self.ledger(node), method)(
                    req, timeout=attempt_s)
                self._timed(began, node, "OK", attempt_s)
                return grpc.StatusCode.OK, resp
            except grpc.RpcError as e:
                code = e.code()
                self._timed(began, node, code.name, attempt_s)
                self.errors.append((began, node, code.name, e.details()))
                if code == grpc.StatusCode.UNAVAILABLE:
                    self.reset_channel(node)  # see Cluster.status
                if code not in (grpc.StatusCode.UNAVAILABLE,
                                grpc.StatusCode.DEADLINE_EXCEEDED,
                                grpc.StatusCode.CANCELLED):
                    return code, e.details()
            if time.monotonic() > end:
                return code, "gave up"
            self.node = self.c.next_node(node)
            time.sleep(0.02)
