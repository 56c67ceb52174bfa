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

usage: test_cluster_keys.py KYUFUD"""
import os
import shutil
import sys

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


def main():
    c = C.Cluster(sys.argv[1])
    try:
        c.start_all()
        c.wait_leader(20)
        for i in c.ids():
            assert LOADED in open(c.log_path(i)).read(), c.logs()
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
        salt = os.urandom(16)
        os.unlink(cmk)
        keyfiles.write_cmk(cmk, keyfiles.passphrase_kek(
            b"correct horse battery staple", salt), 3, c.identity, c.cmk,
            salt=salt)
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
        c.wait_leader(20)
        c.wait_converged(20)
        assert "passphrase" in open(c.log_path(3)).read().split(
            LOADED)[-1].splitlines()[0], c.logs()
        c.stop_clean()
        print("cluster-keys: ok")
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.close()


if __name__ == "__main__":
    main()
