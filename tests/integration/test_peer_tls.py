"""Raft over mutual TLS (docs/peer-tls.md), against three kyufud processes:

- the cluster replicates (a write through a follower, every node converges);
- `openssl s_client` to a Raft port without a client certificate fails the
  handshake; with the cluster CA and a node certificate it completes, and
  the server's certificate names the node (SAN URI urn:kyufu:node:N);
- a plaintext connection sending raft's own handshake with a forged id is
  closed unanswered, and logged with its address;
- a TLS client with a certificate from another CA is refused and logged;
- node 2's certificate claiming id 3 in raft's handshake is refused and
  logged, while the same certificate claiming id 2 is accepted (so the
  refusal is the id check, not something else);
- the API's client certificate (no node id) is refused on the Raft port;
- after all that the cluster still writes and converges, and every node
  stops cleanly.

usage: test_peer_tls.py KYUFUD"""
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time

import cluster as C
import workload as W

ALPN = "kyufu-raft/1"


def preamble(node_id, address="127.0.0.1:1"):
    """raft_uv_tcp's handshake: protocol 1, id, padded address length
    (little-endian uint64), then the address, NUL, zero padding to 8."""
    a = address.encode() + b"\0"
    a += b"\0" * (-len(a) % 8)
    return struct.pack("<QQQ", 1, node_id, len(a)) + a


def host_port(addr):
    h, p = addr.rsplit(":", 1)
    return h, int(p)


def closed_by_peer(sock, timeout=8.0):
    """True when the peer closes (EOF, reset or a TLS alert) within
    timeout; False when the connection stays open."""
    sock.settimeout(timeout)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if sock.recv(4096) == b"":
                return True
    except socket.timeout:
        return False
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    return False


def tls_client(c, cert=None, key=None, ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # node ids, not names, are checked
    ctx.load_verify_locations(ca or c.ca)
    ctx.set_alpn_protocols([ALPN])
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def wait_log(c, i, needle, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(c.log_path(i)) as f:
            for line in f:
                if needle(line):
                    return line
        time.sleep(0.1)
    raise AssertionError("node %d never logged it:\n%s" % (
        i, open(c.log_path(i)).read()[-4000:]))


def refused(reason_part, remote=None, subject=None):
    def match(line):
        return ('"msg":"raft peer refused"' in line and reason_part in line
                and (remote is None or '"remote":"%s"' % remote in line)
                and (subject is None or subject in line))
    return match


def s_client(args, stdin=b""):
    p = subprocess.run(["openssl", "s_client"] + args, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return p.returncode, p.stdout.decode(errors="replace")


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        leader = c.wait_leader(15)
        follower = 1 if leader != 1 else 2
        L = c.s["ledger_pb2"]
        led = W.Ledger(c)
        for w in (led.admin, led.clerk, led.approver):
            w.node = follower
        led.setup()
        c.wait_converged(15)

        target = 3 if leader != 3 else 1  # a node's Raft port to poke
        host, port = host_port(c.raft[target])
        node2_dir = os.path.join(c.dir, "node2")
        n2_cert = os.path.join(node2_dir, "node.pem")
        n2_key = os.path.join(node2_dir, "node.key")

        # 1. s_client without a client certificate: TLS 1.2 makes the
        # refusal part of the handshake itself (in TLS 1.3 the client's
        # side ends before the server has judged its certificate).
        rc, out = s_client(["-connect", c.raft[target], "-tls1_2",
                            "-CAfile", c.ca, "-alpn", ALPN])
        assert rc != 0, out
        assert "alert handshake failure" in out or "alert" in out, out
        # The same over TLS 1.3: the server answers with an alert, never
        # with data, and logs the refusal.
        ctx = tls_client(c)
        s = socket.create_connection((host, port))
        local = "127.0.0.1:%d" % s.getsockname()[1]
        try:
            s = ctx.wrap_socket(s)
            assert closed_by_peer(s)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
        s.close()
        wait_log(c, target, refused("", remote=local))

        # 2. s_client with the cluster CA and node 2's certificate: the
        # handshake completes and the server's certificate names the node.
        rc, out = s_client(["-connect", c.raft[target], "-CAfile", c.ca,
                            "-cert", n2_cert, "-key", n2_key,
                            "-alpn", ALPN, "-verify_return_error",
                            "-showcerts"])
        assert "Verification: OK" in out, out
        assert "ALPN protocol: %s" % ALPN in out, out
        assert "CN = kyufu-node-%d" % target in out, out
        pem = out[out.index("-----BEGIN CERTIFICATE-----"):
                  out.index("-----END CERTIFICATE-----") + 25]
        san = subprocess.run(["openssl", "x509", "-noout", "-ext",
                              "subjectAltName"], input=pem.encode(),
                             stdout=subprocess.PIPE, check=True)
        assert ("URI:urn:kyufu:node:%d" % target) in san.stdout.decode(), \
            san.stdout

        # 3. Plaintext with raft's handshake and a forged id: closed.
        s = socket.create_connection((host, port))
        local = "127.0.0.1:%d" % s.getsockname()[1]
        s.sendall(preamble(leader, c.raft[leader]))
        assert closed_by_peer(s)
        s.close()
        wait_log(c, target, refused("", remote=local))

        # 4. A client certificate from another CA: refused, logged with the
        # subject it presented.
        ctx = tls_client(c, c.other_cert, c.other_key)
        s = socket.create_connection((host, port))
        local = "127.0.0.1:%d" % s.getsockname()[1]
        try:
            s = ctx.wrap_socket(s)
            s.sendall(preamble(2))
            assert closed_by_peer(s)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
        s.close()
        wait_log(c, target, refused("certificate verify failed",
                                    remote=local, subject="intruder"))

        # 5. Node 2's certificate claiming id 3: refused.  The kyufuctl-like
        # client certificate (no node id): refused.  Node 2's certificate
        # claiming 2: accepted (stays open).
        claim = 3 if target != 3 else 1
        ctx = tls_client(c, n2_cert, n2_key)
        s = ctx.wrap_socket(socket.create_connection((host, port)))
        local = "127.0.0.1:%d" % s.getsockname()[1]
        s.sendall(preamble(claim))
        assert closed_by_peer(s)
        s.close()
        wait_log(c, target, refused(
            "claims node id %d, certificate names node 2" % claim,
            remote=local, subject="kyufu-node-2"))

        ctx = tls_client(c, c.client_cert, c.client_key)
        s = ctx.wrap_socket(socket.create_connection((host, port)))
        local = "127.0.0.1:%d" % s.getsockname()[1]
        s.sendall(preamble(2))
        assert closed_by_peer(s)
        s.close()
        wait_log(c, target, refused("certificate names no node id",
                                    remote=local,
                                    subject="kyufu-test-client"))

        if target != 2:
            ctx = tls_client(c, n2_cert, n2_key)
            s = ctx.wrap_socket(socket.create_connection((host, port)))
            s.sendall(preamble(2, c.raft[2]))
            assert not closed_by_peer(s, timeout=1.5), "node 2 refused"
            s.close()

        # 5b. What TLS the Raft port accepts, seen from outside with a node
        # certificate: only TLS 1.2/1.3, AES-GCM, P-256/P-384 (sslscan, a
        # Debian package; openssl probes when it is missing).
        for args in (["-tls1_3", "-groups", "X25519"],
                     ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
                     ["-tls1_3", "-ciphersuites",
                      "TLS_CHACHA20_POLY1305_SHA256"]):
            rc, out = s_client(["-connect", c.raft[target], "-CAfile", c.ca,
                                "-cert", n2_cert, "-key", n2_key,
                                "-alpn", ALPN] + args)
            assert not re.search(r"^New, TLSv", out, re.M), (args, out)
        if shutil.which("sslscan"):
            r = subprocess.run(
                ["sslscan", "--no-colour", "--no-heartbleed", "--no-fallback",
                 "--no-renegotiation", "--no-compression",
                 "--certs=" + n2_cert, "--pk=" + n2_key, c.raft[target]],
                capture_output=True, text=True, timeout=120)
            out = r.stdout
            accepted = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv[\d.]+)"
                                  r"\s+\d+ bits\s+(\S+)", out, re.M)
            assert accepted, "sslscan saw no accepted cipher:\n" + out
            for proto, cipher in accepted:
                assert proto in ("TLSv1.2", "TLSv1.3") and "GCM" in cipher, \
                    (proto, cipher, out)
            groups = re.findall(r"^TLSv[\d.]+\s+\d+ bits\s+(\S+)", out,
                                re.M)
            assert groups and set(groups) <= {"secp256r1", "secp384r1"}, out
            print("raft port sslscan: %s; groups %s"
                  % (sorted(set(accepted)), sorted(set(groups))))

        # 6. The cluster still works: a write through a follower, all
        # three converge, clean stops.
        w = C.Writer(c, "clerk1", "peer-tls")
        w.node = target
        W.must(w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household("PT-1"))), "register after attacks")
        c.wait_converged(15)
        c.stop_clean()
        print("peer_tls: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
