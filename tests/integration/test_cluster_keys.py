"""Encryption keys on every node (issue 12; docs/encryption.md "Keys"): a
cluster whose nodes have [keys] starts, and each node says its cluster key
loaded; a node whose key files are wrong refuses to start with one clear
line and exit status 2 (as a config error), and starts again once they
are right:
  - KEK file readable by others (0644), or absent;
  - another KEK (the CMK does not unwrap);
  - the CMK file of another node copied over its own (bound to node id);
  - a CMK file bound to another cluster (another CA);
  - a damaged or truncated CMK file;
  - a passphrase KEK with the wrong passphrase.
NodeInternal.FetchClusterKey: a member node certificate gets the cluster
key sealed for it, which an independent implementation (keyfiles.py)
opens to the cluster's key; the sealed bytes do not hold it; a node
certificate whose id is not in the configuration, an operator's client
certificate and another CA's certificate are refused, so is a malformed
public key.  (A node added later getting the key from a member and then
serving: cluster-membership, whose replacement node runs with keys.)  A
joining node no one added asks, is refused, waits without starting Raft
and stops cleanly; added, with a [cluster] that names each member at
another member's addresses, it still gets the key and joins.

usage: test_cluster_keys.py KYUFUD"""
import json
import os
import shutil
import signal
import sys
import time

import grpc

import cluster as C
import keyfiles

REFUSED = "refusing to start: the cluster key does not load"
LOADED = "cluster key loaded: encryption at rest is on"


def refused(c, i, *want):
    """Start node i; it must exit 2 within 20 s with REFUSED and each of
    want in its log's last line."""
    with open(c.log_path(i), "a") as f:
        f.write("--- start expected to be refused\n")
    c.start(i)
    rc = c.wait_exit(i, 20)
    log = open(c.log_path(i)).read().split("--- start expected to be "
                                           "refused\n")[-1]
    assert rc == 2, (rc, log[-2000:])
    lines = [l for l in log.splitlines() if REFUSED in l]
    assert len(lines) == 1, log[-2000:]
    for w in want:
        assert w in lines[0], (w, lines[0])
    assert "store opened" not in log, log[-2000:]


def fetch(c, node, cert, key, public):
    """FetchClusterKey on node with this client certificate: (code,
    response)."""
    S = c.s["service_pb2"]
    stub = c.s["service_pb2_grpc"].NodeInternalStub(
        c.plain_channel(node, cert, key))
    try:
        return grpc.StatusCode.OK, stub.FetchClusterKey(
            S.FetchClusterKeyRequest(public_key=public), timeout=10)
    except grpc.RpcError as e:
        return e.code(), e.details()


def handover(c):
    # Node 1's identity (the harness's probe certificate) asking node 2.
    h = keyfiles.Handover()
    code, r = fetch(c, 2, c.probe_cert, c.probe_key, h.public)
    assert code == grpc.StatusCode.OK, (code, r)
    assert len(r.public_key) == 65 and len(r.nonce) == 12 and \
        len(r.sealed_key) == 48, r
    assert c.cmk not in r.SerializeToString()
    assert h.open(1, c.identity, r) == c.cmk
    # Bound to the asker's id: as node 2 it does not open.
    try:
        h.open(2, c.identity, r)
        raise AssertionError("opened under another node id")
    except Exception as e:  # cryptography's InvalidTag
        assert type(e).__name__ == "InvalidTag", e
    # A node certificate of this CA whose id is not a member.
    pki = os.path.join(c.dir, "pki")
    k9, c9 = C.make_cert(pki, "node9", c.ca_key, c.ca, "kyufu-node-9",
                         node_id=9)
    code, msg = fetch(c, 2, c9, k9, h.public)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (code, msg)
    assert "node 9 is not in this cluster's configuration" in msg, msg
    # An operator's (client) certificate: the permission table.
    code, msg = fetch(c, 2, c.client_cert, c.client_key, h.public)
    assert code in (grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED), (code, msg)
    # Another CA's certificate: refused at TLS.
    code, msg = fetch(c, 2, c.other_cert, c.other_key, h.public)
    assert code != grpc.StatusCode.OK, (code, msg)
    # A member with a malformed public key: INVALID_ARGUMENT.
    for bad in (b"", h.public[:33], b"\x02" + h.public[1:],
                h.public[:64] + bytes([h.public[64] ^ 1])):
        code, msg = fetch(c, 2, c.probe_cert, c.probe_key, bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, msg)
        assert "public_key" in msg, msg
    log = open(c.log_path(2)).read()
    assert c.cmk.hex() not in log
    # node 9 and the four malformed keys (the permission table and TLS
    # refuse the other two before the method).
    assert log.count("cluster key request refused") == 5, log[-3000:]


def joiner_not_added(c):
    """A joining node (join = yes, its own KEK, no CMK) that no one added:
    it asks, is refused, keeps waiting without starting Raft, and stops
    cleanly on SIGTERM with no key file written."""
    nd = os.path.join(c.dir, "node4")
    os.makedirs(nd)
    key, crt = C.make_cert(nd, "node", c.ca_key, c.ca, "kyufu-node-4",
                           node_id=4)
    keyfiles.write_kek(os.path.join(nd, keyfiles.KEK_FILE))
    p = C.free_ports(2)
    c.raft[4], c.api[4] = "127.0.0.1:%d" % p[0], "127.0.0.1:%d" % p[1]
    cmk = os.path.join(nd, "data", "keys", "cmk")
    conf = open(c.conf[3]).read()
    conf = conf.replace("id = 3\n", "id = 4\njoin = yes\n", 1)
    conf = conf.replace(os.path.join(c.dir, "node3"), nd)
    conf = conf.replace("raft_address = %s" % c.raft[3],
                        "raft_address = %s" % c.raft[4])
    conf = conf.replace("api_address = %s" % c.api[3],
                        "api_address = %s" % c.api[4])
    conf = conf.replace("[tls]", "4 = %s %s\n[tls]" % (c.raft[4], c.api[4]))
    conf = conf.replace(c.cmk_path(3), cmk)
    c.conf[4] = os.path.join(nd, "kyufud.conf")
    with open(c.conf[4], "w") as f:
        f.write(conf)
    c.start(4)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        log = open(c.log_path(4)).read()
        if "is this node added to the cluster yet?" in log:
            break
        time.sleep(0.1)
    assert "PERMISSION_DENIED" in log, log[-3000:]
    assert "waiting for the cluster key from a member" in log, log[-3000:]
    c.kill(4, signal.SIGTERM)
    assert c.wait_exit(4, 20) == 0, open(c.log_path(4)).read()[-3000:]
    log = open(c.log_path(4)).read()
    assert '"msg":"node stopped","exit_code":0' in log, log[-3000:]
    # Raft never started: its join line is absent, no key was written.
    assert "waiting to be added to the cluster" not in log, log[-3000:]
    assert not os.path.exists(cmk)
    del c.procs[4]


def joiner_moved_members(c):
    """The same joiner, its [cluster] now naming each member at another
    member's addresses (as after replace-node gave a new node the address
    of the one it replaced: a config written before).  Once added it gets
    the key from whichever node answers there (any node certificate of the
    cluster CA will do for this call: docs/encryption.md), then serves."""
    conf = open(c.conf[4]).read()
    for i in (1, 2, 3):
        conf = conf.replace("%d = %s %s\n" % (i, c.raft[i], c.api[i]),
                            "%d = @%d\n" % (i, i % 3 + 1), 1)
    for i in (1, 2, 3):
        assert "%d = @%d\n" % (i, i % 3 + 1) in conf, conf
        conf = conf.replace("%d = @%d\n" % (i, i % 3 + 1), "%d = %s %s\n"
                            % (i, c.raft[i % 3 + 1], c.api[i % 3 + 1]), 1)
    with open(c.conf[4], "w") as f:
        f.write(conf)
    c.observer()  # an operator's session for AddNode and RemoveNode
    mark = len(open(c.log_path(4)).read())
    c.start(4)
    leader = c.wait_leader(20)
    S = c.s["service_pb2"]
    c.cluster(leader).AddNode(S.AddNodeRequest(
        id=4, raft_address=c.raft[4], api_address=c.api[4],
        catch_up_timeout_ms=20000), timeout=40)
    log = open(c.log_path(4)).read()[mark:]
    got = [json.loads(l) for l in log.splitlines()
           if "cluster key received from a member" in l]
    assert len(got) == 1, log[-3000:]
    # The node that answered is named, not the one listed at its address.
    by_api = {c.api[i]: i for i in (1, 2, 3)}
    assert got[0]["member"] == by_api[got[0]["address"]], got
    c.wait_converged(30, nodes=[1, 2, 3, 4])
    c.cluster(leader).RemoveNode(S.RemoveNodeRequest(id=4), timeout=20)
    c.kill(4, signal.SIGTERM)
    assert c.wait_exit(4, 20) == 0, open(c.log_path(4)).read()[-3000:]
    del c.procs[4]


def main():
    with C.Cluster(sys.argv[1]) as c:
        c.start_all()
        c.wait_leader(20)
        for i in c.ids():
            assert LOADED in open(c.log_path(i)).read(), c.logs()
        handover(c)
        joiner_not_added(c)
        joiner_moved_members(c)
        c.stop_clean()

        nd = os.path.dirname(c.log_path(3))
        kek = os.path.join(nd, keyfiles.KEK_FILE)
        cmk = c.cmk_path(3)
        saved_kek = open(kek, "rb").read()
        saved_cmk = open(cmk, "rb").read()

        def restore():
            for path, data in ((kek, saved_kek), (cmk, saved_cmk)):
                if os.path.exists(path):
                    os.unlink(path)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600)
                os.write(fd, data)
                os.close(fd)

        os.chmod(kek, 0o644)
        refused(c, 3, kek, "0600")
        os.unlink(kek)
        refused(c, 3, kek, "No such file")
        keyfiles.write_kek(kek)  # another KEK
        refused(c, 3, cmk, "does not unwrap")
        restore()
        shutil.copyfile(c.cmk_path(2), cmk)  # node 2's, same cluster
        refused(c, 3, cmk, "does not unwrap")
        os.unlink(cmk)  # bound to another cluster's CA
        keyfiles.write_cmk(cmk, keyfiles.read_kek(kek), 3,
                           keyfiles.ca_hash(c.other_ca), c.cmk)
        refused(c, 3, cmk, "does not unwrap")
        damaged = bytearray(saved_cmk)
        damaged[50] ^= 0x01
        os.unlink(cmk)
        fd = os.open(cmk, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, bytes(damaged))
        os.close(fd)
        refused(c, 3, cmk, "does not unwrap")
        os.truncate(cmk, 91)
        refused(c, 3, cmk, "not a kyufu cluster key file")
        os.unlink(cmk)
        refused(c, 3, cmk, "No such file")
        restore()

        # A passphrase KEK: a CMK file wrapped under a key file is refused,
        # so is a passphrase file others can read and the wrong
        # passphrase; the right one starts the node (below).
        passfile = os.path.join(nd, "passphrase")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"correct horse battery staple\n")
        os.close(fd)
        conf = open(c.conf[3]).read()
        with open(c.conf[3], "w") as f:
            f.write(conf.replace("kek_file = " + kek,
                                 "passphrase_file = " + passfile))
        refused(c, 3, cmk, "wrapped under a key file, but [keys] names a "
                "passphrase")
        # The node's lowest accepted round count (the file names it): each
        # start derives the KEK, and PBKDF2 allocates per round under ASan
        # (600,000 rounds took ~10 s there).
        salt = os.urandom(16)
        os.unlink(cmk)
        keyfiles.write_cmk(cmk, keyfiles.passphrase_kek(
            b"correct horse battery staple", salt,
            keyfiles.PBKDF2_ROUNDS_MIN), 3, c.identity, c.cmk, salt=salt,
            rounds=keyfiles.PBKDF2_ROUNDS_MIN)
        os.chmod(passfile, 0o640)
        refused(c, 3, passfile, "0600")
        os.chmod(passfile, 0o600)
        with open(passfile, "r+b") as f:
            f.write(b"C")
        refused(c, 3, cmk, "does not unwrap")
        with open(passfile, "r+b") as f:
            f.write(b"c")

        # The right files again: node 3 starts and rejoins.
        c.start_all()
        c.wait_leader(40)
        c.wait_converged(40)
        assert "passphrase" in open(c.log_path(3)).read().split(
            LOADED)[-1].splitlines()[0], c.logs()
        c.stop_clean()
        print("cluster-keys: ok")


if __name__ == "__main__":
    main()
