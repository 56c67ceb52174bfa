"""The first ID administrator from `kyufuctl cluster init` (issue 8 item 1;
docs/identity.md "Accounts and their lifecycle"), end to end:

  - cluster init prints the temporary password once on stdout (the shape
    scripts/run parses) and writes only its hash, as bootstrap-admin (0600),
    into each node's data folder; no file it wrote holds the password;
  - the three kyufud started from init's own configs: a write with no
    token is refused, and a CreateStaff of an ID administrator by a caller
    with no session creates nothing, before and after the bootstrap;
  - the printed password signs in to a setup-only session that must change
    the password (and can do nothing else); the first sign-in completes
    (new password, TOTP per RFC 6238 from auth.py);
  - every node deletes its bootstrap-admin once the account exists; the
    staff table then holds exactly that one ID administrator;
  - the password appears in no node's log.

usage: test_bootstrap.py KYUFUD KYUFUCTL"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import grpc

import auth
import cluster as C
from test_sla_e2e import consecutive_free

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
T = 30  # per call: the sanitizer build on a loaded machine is slow


def files_under(d):
    for root, _, names in os.walk(d):
        for n in names:
            yield os.path.join(root, n)


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="kyufu-boot-", dir="/tmp")
    d = os.path.join(tmp, "c")
    base = consecutive_free(6)
    env = dict(os.environ, KYUFU_CA_PASSPHRASE="bootstrap test CA passphrase")
    p = subprocess.run([kyufuctl, "cluster", "init", "--dir", d,
                        "--raft-port-base", str(base),
                        "--api-port-base", str(base + 3),
                        "--metrics-port-base", "0"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0, (p.stdout, p.stderr)
    # The shape scripts/run parses: "... for ID (...):" then the password
    # alone, indented, on the next line; nowhere else, not on stderr.
    m = re.search(r"^First ID administrator: temporary password for (\S+) "
                  r"\(shown once; change it at first sign-in\):\n  (\S+)\n",
                  p.stdout, re.M)
    assert m, p.stdout
    admin, temp = m.group(1), m.group(2)
    assert admin == "admin", admin
    assert len(temp) >= 16 and not re.search(r"[0O1lI]", temp), temp
    assert p.stdout.count(temp) == 1 and temp not in p.stderr
    data = {i: os.path.join(d, "node%d" % i, "data") for i in (1, 2, 3)}
    boot = {i: os.path.join(data[i], C.BOOTSTRAP_FILE) for i in (1, 2, 3)}
    for f in boot.values():
        assert os.stat(f).st_mode & 0o777 == 0o600, f
        kv = dict(line.split(" = ", 1) for line in open(f).read().splitlines()
                  if " = " in line and not line.startswith("#"))
        assert kv["staff_id"] == admin and len(kv["hash"]) == 64, kv
    for f in files_under(d):
        assert temp.encode() not in open(f, "rb").read(), f

    s = C.stubs(tmp)
    S, L, G = s["service_pb2"], s["ledger_pb2"], s["service_pb2_grpc"]
    cfg = dict(line.split(" = ", 1) for line in open(
        os.path.join(d, "kyufuctl.conf")).read().splitlines() if " = " in line)
    procs, logs = {}, {}
    clients = []
    try:
        for i in (1, 2, 3):
            logs[i] = os.path.join(tmp, "node%d.log" % i)
            with open(logs[i], "a") as log:
                procs[i] = subprocess.Popen(
                    [kyufud, "--config",
                     os.path.join(d, "node%d" % i, "kyufud.conf")],
                    stdout=log, stderr=subprocess.STDOUT)
        api = {i: "127.0.0.1:%d" % (base + 3 + i - 1) for i in (1, 2, 3)}

        def client(i):
            cl = auth.Client(s, api[i], cfg["ca"], cfg["cert"], cfg["key"])
            clients.append(cl)
            return cl

        leader, end = 0, time.monotonic() + 30
        node1 = os.path.join(d, "node1")
        while not leader:
            assert time.monotonic() < end, "no leader"
            # One channel at a time: a node refuses more than 32
            # connections from one address.
            probe = auth.Client(s, api[1], cfg["ca"],
                                os.path.join(node1, "node.pem"),
                                os.path.join(node1, "node.key"))
            try:
                leader = G.ClusterStub(probe.ch).Status(
                    S.StatusRequest(), timeout=2).leader_id
            except grpc.RpcError:
                time.sleep(0.2)
            finally:
                probe.close()
        cl = client(leader)
        seq, last = [0], [None]

        def create_admin(actor, token=None):
            """CreateStaff of an ID administrator: its status code."""
            seq[0] += 1
            req = S.CreateStaffRequest(
                header=S.RequestHeader(actor=actor, terminal="it",
                                       key=L.IdempotencyKey(
                                           client_id="it-boot",
                                           sequence=seq[0])),
                command=L.CreateStaff(staff_id="mallory",
                                      display_name="Mallory",
                                      roles=[L.ROLE_ID_ADMIN]))
            end = time.monotonic() + T
            while True:
                try:
                    cl.ledger.CreateStaff(req, metadata=auth.bearer(token)
                                          if token else None, timeout=T)
                    return grpc.StatusCode.OK
                except grpc.RpcError as e:
                    last[0] = e.details()
                    if e.code() == grpc.StatusCode.UNAVAILABLE and \
                            time.monotonic() < end:
                        # grpcio can stay stuck on a subchannel that failed
                        # to connect to a loaded node: a new channel.
                        cl.ch.close()
                        cl.__init__(s, api[leader], cfg["ca"], cfg["cert"],
                                    cfg["key"])
                        time.sleep(0.2)
                        continue
                    return e.code()

        # No session: refused (the staff table may still be empty: no
        # "first caller" bootstrap), whatever the header says.
        for actor in ("", "mallory", admin):
            code = create_admin(actor)
            assert code == UNAUTH, (actor, code, last[0])

        # The printed password: a setup-only session that must change it.
        end = time.monotonic() + 40
        while True:
            try:
                r = cl.auth.SignIn(S.SignInRequest(staff_id=admin,
                                                   password=temp), timeout=T)
                break
            except grpc.RpcError as e:
                assert time.monotonic() < end and e.code() in (
                    UNAUTH, grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.UNAVAILABLE), (e.code(), e.details())
                time.sleep(0.3)
        assert r.setup_only and r.must_change_password, r
        assert r.staff_id == admin and len(r.token) == 64
        # A setup-only session does nothing but set itself up.
        code = create_admin(admin, r.token)
        assert code == grpc.StatusCode.PERMISSION_DENIED, (code, last[0])
        # A wrong password is refused.
        try:
            cl.auth.SignIn(S.SignInRequest(staff_id=admin,
                                           password=temp + "x"), timeout=T)
            raise AssertionError("a wrong password signed in")
        except grpc.RpcError as e:
            assert e.code() == UNAUTH, e.code()
        acct, token = cl.first_sign_in(admin, temp)
        assert acct.password != temp

        # Every node deletes its bootstrap-admin once the account exists.
        end = time.monotonic() + 20
        while any(os.path.exists(f) for f in boot.values()):
            assert time.monotonic() < end, \
                [f for f in boot.values() if os.path.exists(f)]
            time.sleep(0.1)

        # Still no write without a session; the only account is the
        # bootstrap's ID administrator.
        code = create_admin("mallory")
        assert code == UNAUTH, (code, last[0])
        staff = cl.ledger.ListStaff(S.ListRequest(page_size=100),
                                    metadata=auth.bearer(token),
                                    timeout=T).staff
        assert [(a.staff_id, list(a.roles)) for a in staff] == \
            [(admin, [L.ROLE_ID_ADMIN])], staff
    finally:
        for cl in clients:
            cl.close()
        for pr in procs.values():
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
        for pr in procs.values():
            try:
                pr.wait(30)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
    for i, path in logs.items():
        text = open(path, errors="replace").read()
        assert temp not in text, i
        assert "Sanitizer" not in text and "runtime error" not in text, \
            (i, text[-4000:])
    subprocess.run(["rm", "-rf", tmp], check=True)
    print("ok")


if __name__ == "__main__":
    main()
