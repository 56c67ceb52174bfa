"""Certificate rotation without downtime, and the Raft allow-list.

Three kyufud with `[raft] allow = 127.0.0.1/32` (every peer is there) and a
writer that keeps adjusting a budget through the API with idempotent
retries.  Meanwhile:

1. A TCP connection to a node's Raft port from 127.0.0.9 (outside the list)
   is closed before any TLS, and the node logs the refusal.
2. Each node in turn gets a new certificate and key from the same CA
   (renamed into place, as docs/operations.md says) and SIGHUP: the node
   logs "TLS files reloaded", and a new connection to its API port and to
   its Raft port shows the new certificate's serial.
3. A half-written certificate, then a certificate naming another node, are
   each refused on SIGHUP ("TLS files not reloaded") and the node keeps
   serving with the certificate it had.
4. The leader is killed and restarted, so every Raft link is made again
   with the new certificates; the cluster converges.

No write may fail, every acknowledged write is applied exactly once, and
the replicas end with the same digest.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc

import cluster as C
import workload as W


def log_has(c, i, msg, **fields):
    with open(c.log_path(i)) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("msg") == msg and all(
                    str(e.get(k, "")).find(v) >= 0 for k, v in fields.items()):
                return True
    return False


def wait_log(c, i, msg, timeout=10, **fields):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log_has(c, i, msg, **fields):
            return
        time.sleep(0.05)
    raise AssertionError("node %d never logged %r %s" % (i, msg, fields))


def serial_of(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", pem],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1].upper()


def served_serial(c, address, cert=None, key=None):
    """Serial of the certificate a port presents to a new TLS connection."""
    args = ["openssl", "s_client", "-connect", address, "-CAfile", c.ca,
            "-showcerts"]
    if cert:
        args += ["-cert", cert, "-key", key]
    r = subprocess.run(args, input="", capture_output=True, text=True,
                       timeout=20)
    pem = r.stdout[r.stdout.find("-----BEGIN CERTIFICATE-----"):]
    pem = pem[:pem.find("-----END CERTIFICATE-----") + 25]
    assert pem.startswith("-----BEGIN"), r.stdout + r.stderr
    p = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                       capture_output=True, text=True, check=True)
    return p.stdout.strip().split("=", 1)[1].upper()


def install(c, i, key_src, crt_src):
    """Rename complete copies over node i's key and certificate."""
    nd = os.path.dirname(c.conf[i])
    for src, name in ((key_src, "node.key"), (crt_src, "node.pem")):
        tmp = os.path.join(nd, name + ".new")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o600)
        os.rename(tmp, os.path.join(nd, name))


def main():
    # Appended after [log]: a second [raft] block, as an operator may write.
    c = C.Cluster(sys.argv[1], extra_conf={
        i: "[raft]\nallow = 127.0.0.1/32\n" for i in (1, 2, 3)})
    try:
        c.start_all()
        leader = c.wait_leader(15)
        L, S = c.s["ledger_pb2"], c.s["service_pb2"]
        led = W.Ledger(c)
        led.setup(budget=1000)
        budget0 = c.ledger(leader).GetProgram(
            S.GetProgramRequest(code="P2026"), timeout=5).budget

        # 1. The Raft allow-list: 127.0.0.9 is closed before TLS.
        host, port = c.raft[2].rsplit(":", 1)
        s = socket.socket()
        s.bind(("127.0.0.9", 0))
        s.settimeout(5)
        s.connect((host, int(port)))
        try:
            s.sendall(b"\x16\x03\x01\x00\x05hello")
            got = s.recv(100)
        except ConnectionResetError:
            got = b""  # closed with our bytes unread: a reset
        assert got == b"", "raft port answered a refused address: %r" % got
        s.close()
        wait_log(c, 2, "raft peer refused", reason="allow-list",
                 remote="127.0.0.9")

        # A writer all along.
        w = C.Writer(c, "approver1", "rotation-stream", own_channels=True)
        w.node = leader
        acked, errors, stop = [], [], threading.Event()

        def write():
            while not stop.is_set():
                code, resp = w.call("AdjustBudget", L.AdjustBudget(
                    code="P2026", delta=1, reason="tick"), deadline_s=60)
                if code != grpc.StatusCode.OK:
                    errors.append((w.seq, code, resp))
                    return
                acked.append(w.seq)
                time.sleep(0.01)

        t = threading.Thread(target=write)
        t.start()

        # 2. Rotate each node: new key and certificate, same CA and id.
        pki = os.path.join(c.dir, "rotated")
        os.makedirs(pki)
        for i in (1, 2, 3):
            d = os.path.join(pki, "n%d" % i)
            os.makedirs(d)
            key, crt = C.make_cert(d, "node", c.ca_key, c.ca,
                                   "kyufu-node-%d-2" % i, node_id=i)
            old = served_serial(c, c.api[i])
            install(c, i, key, crt)
            os.kill(c.procs[i].pid, signal.SIGHUP)
            wait_log(c, i, "TLS files reloaded")
            new = serial_of(crt)
            assert new != old
            assert served_serial(c, c.api[i]) == new, "API port, node %d" % i
            # The Raft port, as a peer would see it (node i's own cert).
            assert served_serial(c, c.raft[i], crt, key) == new, \
                "Raft port, node %d" % i
            print("node %d rotated: serial %s -> %s" % (i, old, new))

        # 3. Refused rotations keep the current certificate.
        nd1 = os.path.dirname(c.conf[1])
        good = served_serial(c, c.api[1])
        keep = os.path.join(pki, "keep")
        os.makedirs(keep)
        shutil.copyfile(os.path.join(nd1, "node.pem"),
                        os.path.join(keep, "node.pem"))
        shutil.copyfile(os.path.join(nd1, "node.key"),
                        os.path.join(keep, "node.key"))
        with open(os.path.join(pki, "half.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nMIIB\n")
        install(c, 1, os.path.join(keep, "node.key"),
                os.path.join(pki, "half.pem"))
        os.kill(c.procs[1].pid, signal.SIGHUP)
        wait_log(c, 1, "TLS files not reloaded, keeping the current ones")
        d = os.path.join(pki, "other")
        os.makedirs(d)
        okey, ocrt = C.make_cert(d, "node", c.ca_key, c.ca, "kyufu-node-2",
                                 node_id=2)
        install(c, 1, okey, ocrt)
        os.kill(c.procs[1].pid, signal.SIGHUP)
        wait_log(c, 1, "TLS files not reloaded, keeping the current ones",
                 error="does not name this node")
        assert served_serial(c, c.api[1]) == good
        install(c, 1, os.path.join(keep, "node.key"),
                os.path.join(keep, "node.pem"))

        # 4. Every Raft link made again with the new certificates.
        leader = c.wait_leader(10)
        c.kill(leader, signal.SIGKILL)
        c.wait_exit(leader, 5)
        c.wait_leader(15, exclude=(leader,))
        time.sleep(1)
        c.start(leader)
        time.sleep(2)
        stop.set()
        t.join(120)
        assert not t.is_alive(), "writer stuck"
        assert not errors, errors
        w.close()
        st = c.wait_converged(60)
        leader = c.wait_leader(10)
        counts, ok = W.audit_keys(c, leader, "rotation-stream")
        for seq in acked:
            assert counts.get(seq) == 1, "write %d applied %s times" % (
                seq, counts.get(seq))
        budget = c.ledger(leader).GetProgram(
            S.GetProgramRequest(code="P2026"), timeout=5).budget
        assert budget == budget0 + len(acked), (budget, budget0, len(acked))
        print("%d writes acknowledged across three rotations and a leader "
              "restart; converged at index %d" % (len(acked),
                                                   st.applied_index))
        c.stop_clean()
        print("rotation: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
