"""Terminal certificates and their revocation, end to end, against three
kyufud processes (docs/operations.md "Terminals and revocation"):

- `kyufuctl terminal issue` makes two terminal certificates from the
  cluster CA; both open a TLS connection and call grpc.health.v1 Check on
  every node (a call that needs no session);
- each terminal keeps a channel open to the leader (node a) with a live
  session signed in on its certificate;
- `kyufuctl terminal revoke counter-1` writes a CRL; renamed over node a's
  [tls] crl_file and SIGHUP: counter-1's open connection is closed at once
  (`connection closed`, its subject and serial in the log, a RecordAccess
  in the operation log), its next call on the same channel fails, while
  counter-2's channel keeps working; node a refuses counter-1 at the
  handshake and logs `connection refused` with OpenSSL's "certificate
  revoked", while counter-2 still gets in;
- renamed over node b's crl_file without any signal: node b refuses
  counter-1 once it has polled the file (a few seconds);
- node d, still on the old CRL, lets counter-1 in (it is the CRL that
  refuses, nothing else);
- a CRL that does not load (garbage) on node b: logged, the one in force
  stays (counter-1 still refused, counter-2 still in);
- a certificate from another CA is refused;
- kyufud refuses to start on a node key readable by others (0644): exit 2,
  the file named in the log.

usage: test_terminals.py KYUFUD KYUFUCTL"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import cluster as C

import grpc  # noqa: E402  (cluster.py skips the test without grpcio)
import workload as W  # noqa: E402


def ctl(kyufuctl, *args):
    p = subprocess.run([kyufuctl] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def gets_in(c, i, cert, key, timeout=10.0):
    """True when a client with this certificate completes a Health.Check
    on node i (a fresh connection each time); False when refused.  A
    connection that timed out (a loaded machine) is neither: tried again
    for up to timeout."""
    end = time.monotonic() + timeout
    while True:
        ch = grpc.secure_channel(c.api[i], c.creds(cert, key),
                                 options=C.CHANNEL_OPTIONS)
        try:
            c.s["health_pb2_grpc"].HealthStub(ch).Check(
                c.s["health_pb2"].HealthCheckRequest(service=""), timeout=3)
            return True
        except grpc.RpcError as e:
            slow = (e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                    or "timed out" in (e.details() or ""))
            assert slow or e.code() == grpc.StatusCode.UNAVAILABLE, e
            if not slow or time.monotonic() > end:
                print("node %d refused %s: %s" % (i, os.path.basename(cert),
                                                 e.details()))
                return False
        finally:
            ch.close()
        time.sleep(0.2)


def gets_in_soon(c, i, cert, key, timeout=10.0):
    """gets_in, tried again while it fails for up to timeout: on a loaded
    machine a first connection can time out (a refusal never turns into
    an acceptance, so retrying cannot hide one)."""
    end = time.monotonic() + timeout
    while True:
        if gets_in(c, i, cert, key):
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.2)


def refused(c, i, cert, key, since, detail, subject, timeout=15.0):
    """Node i refuses this certificate: the call fails AND the node logs
    `connection refused` with `detail` and `subject` (after log line
    `since`).  A loaded grpcio can also fail a connection on its own side
    (no refusal logged): tried again until the node's word is there."""
    end = time.monotonic() + timeout
    while True:
        assert not gets_in(c, i, cert, key), (i, cert)
        for rec in log_lines(c, i, since):
            if (rec.get("msg") == "connection refused"
                    and detail in rec.get("detail", "")
                    and subject in rec.get("subject", "")):
                return rec
        if time.monotonic() > end:
            raise AssertionError("node %d never logged the refusal of %s:\n%s"
                                 % (i, cert, c.logs()))
        time.sleep(0.3)


def put_crl(src, dst):
    """As the runbook says: copy next to it, then rename over it."""
    shutil.copyfile(src, dst + ".new")
    os.rename(dst + ".new", dst)


def log_lines(c, i, since=0):
    lines = open(c.log_path(i)).read().splitlines()[since:]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line[line.index("{"):]))
        except ValueError:
            pass
    return out


def wait_log(c, i, pred, timeout, since=0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for rec in log_lines(c, i, since):
            if pred(rec):
                return rec
        time.sleep(0.1)
    raise AssertionError("node %d: no such log line in %ss:\n%s"
                         % (i, timeout, c.logs()))


def audit_head(c, i):
    """The operation log's last seq, read on node i (as the observer, an
    auditor)."""
    return max([r.seq for r in audit_records(c, i, 0)] or [0])


def audit_records(c, i, since):
    """The operation log's records after seq `since`, read on node i."""
    return list(W.pages(c.ledger(i).ListAudit, c.s["service_pb2"], "records",
                        token=str(since) if since else ""))


def audit_find(c, i, since, pred, timeout=15):
    """The first operation-log record after seq `since` for which pred
    holds (the leader proposes it just after the closure)."""
    end = time.monotonic() + timeout
    while True:
        recs = [r for r in audit_records(c, i, since) if r.seq > since]
        for r in recs:
            if pred(r):
                return r
        if time.monotonic() > end:
            raise AssertionError("no such record after seq %d:\n%s" % (
                since, "\n".join("%d %s %s" % (r.seq, r.command, r.message)
                                  for r in recs)))
        time.sleep(0.2)


def n_lines(c, i):
    return len(open(c.log_path(i)).read().splitlines())


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    t0 = time.monotonic()
    with C.Cluster(kyufud) as c:
        pki = os.path.join(c.dir, "pki")
        out = os.path.join(c.dir, "terminals")
        # The harness's CA key is not encrypted (made by openssl): kyufuctl
        # asks for a passphrase only for an encrypted one.
        ctl(kyufuctl, "terminal", "crl", "--ca-dir", pki)
        for i in (1, 2, 3):
            crl = os.path.join(c.dir, "node%d" % i, "crl.pem")
            shutil.copyfile(os.path.join(pki, "crl.pem"), crl)
            text = open(c.conf[i]).read()
            assert "[raft]\n" in text
            with open(c.conf[i], "w") as f:
                f.write(text.replace("[raft]\n", "crl_file = %s\n[raft]\n"
                                     % crl, 1))
        term = {}
        for n, mac in (("counter-1", "02:00:00:00:00:01"),
                       ("counter-2", "02:00:00:00:00:02")):
            ctl(kyufuctl, "terminal", "issue", n, "--mac", mac, "--ca-dir",
                pki, "--out", out)
            term[n] = (os.path.join(out, n + ".pem"),
                       os.path.join(out, n + ".key"))
            assert os.stat(term[n][1]).st_mode & 0o777 == 0o600
        c.start_all()
        # a: the leader (SIGHUP; its refusals reach the operation log),
        # b: the file watch, d: keeps the old CRL, then the key check.
        a = c.wait_leader(15)
        b, d = [i for i in (1, 2, 3) if i != a]
        for i in (1, 2, 3):
            for n in term:
                assert gets_in_soon(c, i, *term[n]), (i, n)
        print("issued: both terminals get in on every node")

        # Each terminal: a channel to the leader kept open, a session
        # signed in on its certificate, a call that needs it.
        c.observer()
        S, G = c.s["service_pb2"], c.s["service_pb2_grpc"]
        chan, who = {}, {}
        for n in term:
            md = c.bearer(C.OBSERVER, term[n][0])
            chan[n] = grpc.secure_channel(c.api[a], c.creds(*term[n]),
                                          options=C.CHANNEL_OPTIONS)
            who[n] = (lambda stub, md: lambda: stub.WhoAmI(
                S.WhoAmIRequest(), metadata=md, timeout=10))(
                    G.AuthStub(chan[n]), md)
            assert who[n]().staff_id == C.OBSERVER
        since = audit_head(c, a)

        ctl(kyufuctl, "terminal", "revoke", "counter-1", "--reason",
            "lost at the counter", "--ca-dir", pki)
        csv = ctl(kyufuctl, "terminal", "export", "--csv", "--ca-dir", pki)
        assert ",revoked," in csv and "lost at the counter" in csv, csv
        new_crl = os.path.join(pki, "crl.pem")

        # Node a: the new CRL, then SIGHUP.
        mark = n_lines(c, a)
        put_crl(new_crl, os.path.join(c.dir, "node%d" % a, "crl.pem"))
        c.kill(a, signal.SIGHUP)
        wait_log(c, a, lambda r: r.get("msg") == "TLS files reloaded", 5,
                 mark)
        # counter-1's open connection was closed at the reload (logged
        # before "TLS files reloaded"): its next call on the same channel
        # fails (the reconnect is refused), counter-2's channel works.
        rec = wait_log(c, a, lambda r: r.get("msg") == "connection closed"
                       and r.get("reason") == "certificate revoked", 1, mark)
        assert "counter-1" in rec["subject"], rec
        assert "serial " in rec["detail"] and "open connection closed" in \
            rec["detail"], rec
        try:
            who["counter-1"]()
            raise AssertionError("counter-1's channel still works")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
        assert who["counter-2"]().staff_id == C.OBSERVER
        r = audit_find(c, a, since, lambda r: r.command == "RecordAccess"
                       and "certificate revoked" in r.message
                       and "counter-1" in r.message)
        for ch in chan.values():
            ch.close()
        print("node %d: counter-1's open channel closed at SIGHUP (%s), "
              "counter-2's still works; audit seq %d: %s"
              % (a, rec["detail"], r.seq, r.message[:80]))
        rec = refused(c, a, *term["counter-1"], mark, "certificate revoked",
                      "counter-1")
        assert gets_in_soon(c, a, *term["counter-2"])
        print("node %d: counter-1 refused after SIGHUP (%s)"
              % (a, rec["detail"]))

        # Node b: the new CRL, no signal: picked up by the file watch.
        mark2 = n_lines(c, b)
        put_crl(new_crl, os.path.join(c.dir, "node%d" % b, "crl.pem"))
        wait_log(c, b, lambda r: r.get("msg") == "TLS files reloaded"
                 and r.get("why") == "crl_file changed", 10, mark2)
        refused(c, b, *term["counter-1"], mark2, "certificate revoked",
                "counter-1")
        assert gets_in_soon(c, b, *term["counter-2"])
        print("node %d: counter-1 refused after the file changed, no signal"
              % b)

        # The Raft port checks the same CRL: counter-1's certificate fails
        # its handshake there with the same reason (before any node-id
        # check could refuse it).
        host, port = c.raft[a].rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(c.ca)
        ctx.set_alpn_protocols(["kyufu-raft/1"])
        ctx.load_cert_chain(*term["counter-1"])
        sock = socket.create_connection((host, int(port)), timeout=5)
        try:
            sock = ctx.wrap_socket(sock)
            sock.recv(1)  # TLS 1.3: the server's verdict comes after ours
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError,
                socket.timeout):
            pass
        sock.close()
        rec = wait_log(c, a, lambda r: r.get("msg") == "raft peer refused"
                       and "certificate revoked" in r.get("reason", ""), 10,
                       mark)
        print("node %d: counter-1 refused on the Raft port too" % a)

        # Node d still has the CRL of before: counter-1 gets in there.
        assert gets_in_soon(c, d, *term["counter-1"])

        # A CRL that does not load: logged, the one in force stays.
        mark2 = n_lines(c, b)
        bad = os.path.join(c.dir, "bad.pem")
        with open(bad, "w") as f:
            f.write("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n"
                    "-----END X509 CRL-----\n")
        put_crl(bad, os.path.join(c.dir, "node%d" % b, "crl.pem"))
        rec = wait_log(c, b, lambda r: r.get("msg") ==
                       "TLS files not reloaded, keeping the current ones", 10,
                       mark2)
        assert "CRL" in rec.get("error", ""), rec
        refused(c, b, *term["counter-1"], n_lines(c, b), "certificate revoked",
                "counter-1")
        assert gets_in_soon(c, b, *term["counter-2"])
        print("node %d: a damaged CRL is refused, the old one stays" % b)

        # Another CA's certificate: refused.
        refused(c, a, c.other_cert, c.other_key, n_lines(c, a),
                "certificate verify failed", "intruder")

        # A node key readable by others: kyufud will not start.
        c.kill(d, signal.SIGTERM)
        assert c.wait_exit(d, 30) == 0
        key3 = os.path.join(c.dir, "node%d" % d, "node.key")
        os.chmod(key3, 0o644)
        mark3 = n_lines(c, d)
        c.start(d)
        assert c.wait_exit(d, 15) == 2
        rec = wait_log(c, d, lambda r: r.get("msg") ==
                       "refusing to start: private key not private", 1, mark3)
        assert rec.get("key") == key3 and "0644" in rec.get("error", ""), rec
        os.chmod(key3, 0o600)
        c.start(d)
        c.wait_leader(15)
        print("node %d: a 0644 key refused (exit 2), 0600 starts" % d)
        c.stop_clean()
        print("ok (%.1fs)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
