"""Data-key rotation without downtime, and a node's KEK rewrap, end to end
through three real kyufud and kyufuctl (issue 12; docs/encryption.md
"Rotation").

1. Households are written; once every voter runs command set 5 an operator
   runs `kyufuctl key rotate`: new values are sealed under version 2 at
   once (the census of every node counts them).
2. The leader re-encrypts the older values in the background at
   `[keys] reencrypt_records_per_s`; writes go on meanwhile and every one
   is acknowledged while re-encryption is still in progress.
3. `kyufuctl key status --census` on every node: done, and no stored value
   under version 1 or plaintext; the three digests agree.
4. Hostile command lines get clear errors and change nothing; a clerk may
   not rotate.
5. `kyufuctl key rewrap` of node 3 under a new KEK file: with a wrong old
   KEK it refuses and the file is unchanged; then it works; node 3
   restarted with the old KEK refuses to start, with the new one it starts,
   serves every household and converges to the same digest.
Every node's /metrics (parsed strictly) shows the active version, done
and the values re-sealed.

usage: test_key_rotate.py KYUFUD KYUFUCTL"""
import hashlib
import json
import os
import subprocess
import sys
import time

import urllib.request

import cluster as C
import workload as W
from ports import free_ports
from prom_text import parse

RATE = 300  # values per second: the ~1,000 values here take a few seconds
FIRST = 120  # households before the rotation
DURING = 40  # households written while re-encryption runs

T0 = time.monotonic()


def mark(what):
    print("%6.2f s  %s" % (time.monotonic() - T0, what), flush=True)


def ctl(kyufuctl, conf, env, *args, timeout=60):
    p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


BUSY = "too many whole-store reads"


def key_status(kyufuctl, conf, env, census=False):
    """Every node's key status.  The census is a whole-store read on a
    work thread (node/offload.h): a node already running its limit of
    them (the harness's digest polls) answers RESOURCE_EXHAUSTED "retry
    later", which is retried here as an operator would, for up to 30 s."""
    args = ["--json", "key", "status"] + (["--census"] if census else [])
    end = time.monotonic() + 30
    while True:
        r, o, e = ctl(kyufuctl, conf, env, *args)
        assert r == 0, (r, o, e)
        nodes = json.loads(o)["nodes"]
        busy = [n for n in nodes if BUSY in n.get("error", "")]
        if not busy or time.monotonic() > end:
            return nodes
        time.sleep(0.3)


def census_of(node):
    """{version: values} of a node's key status (JSON)."""
    return {int(k.get("version", 0)): int(k.get("values", 0))
            for k in node.get("census", [])}


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def set_kek(conf, old, new):
    text = open(conf).read()
    assert ("kek_file = %s\n" % old) in text, text
    with open(conf, "w") as f:
        f.write(text.replace("kek_file = %s\n" % old, "kek_file = %s\n" % new))


def metric(port, name):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=5).read().decode()
    fam = parse(body)
    if name not in fam:
        return None
    return fam[name]["samples"][name][0][1]


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    mports = free_ports(3)
    c = C.Cluster(kyufud, extra_conf={
        i: "[keys]\nreencrypt_records_per_s = %d\n"
           "[node]\nmetrics_listen = 127.0.0.1:%d\n" % (RATE, mports[i - 1])
        for i in (1, 2, 3)})
    try:
        c.start_all()
        c.wait_leader(15)
        L = c.s["ledger_pb2"]
        S = c.s["service_pb2"]
        led = W.Ledger(c, "rot")
        led.setup()
        for k in range(FIRST):
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-A%03d" % k))), "household %d" % k)
        mark("%d households written" % FIRST)
        c.account("op1", [L.ROLE_OPERATOR], "Operator one")
        env = {s: c.ctl_env(s) for s in ("op1", "clerk1")}
        conf = os.path.join(c.dir, "client.conf")
        with open(conf, "w") as fh:
            fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                     "key = %s\n" % (",".join(c.api[i] for i in (1, 2, 3)),
                                     c.ca, c.client_cert, c.client_key))

        # Before the rotation: everything under version 1, never rotated.
        nodes = key_status(kyufuctl, conf, env["op1"], census=True)
        assert len(nodes) == 3 and all(n["reachable"] for n in nodes), nodes
        for n in nodes:
            assert n["encrypted"] and n["active_version"] == 1, n
            cs = census_of(n)
            assert set(cs) == {1} and cs[1] > FIRST, n
        for i in (1, 2, 3):
            assert metric(mports[i - 1], "kyufu_keys_active_version") == 1
            assert metric(mports[i - 1], "kyufu_keys_reencrypt_done") is None

        # The cluster version rises to 6 (this build's command set) once
        # the leader has recorded every voter's (about a second after
        # start); from 6 every node counts the seals under the active
        # version (docs/encryption.md "Nonces").
        end = time.monotonic() + 30
        while time.monotonic() < end:
            st = c.status(c.wait_leader(15))
            if st is not None and st.cluster_version >= 6:
                break
            time.sleep(0.2)
        assert st.cluster_version >= 6, st
        end = time.monotonic() + 10
        while time.monotonic() < end:
            nodes = key_status(kyufuctl, conf, env["op1"])
            if all(n.get("seals_counted") for n in nodes):
                break
            time.sleep(0.2)
        for n in nodes:
            assert n.get("seals_counted") and int(n["seals"]) > 0, n
            assert int(n["seal_limit"]) == 2 ** 31, n
        for i in (1, 2, 3):
            assert metric(mports[i - 1], "kyufu_keys_seal_limit") == 2 ** 31
            assert metric(mports[i - 1],
                          "kyufu_keys_active_version_seals") > 0

        # A clerk may not rotate; malformed command lines change nothing.
        r, o, e = ctl(kyufuctl, conf, env["clerk1"], "key", "rotate")
        assert r == 1 and "kyufuctl:" in e, (r, o, e)
        for args, words in ((["key", "rotate", "--to", "abc"], "--to"),
                            (["key", "rotate", "--to", "1"], "--to"),
                            (["key", "rotate", "--census"], "not an option"),
                            (["key", "status", "--to", "3"], "not an option"),
                            (["key", "rotate", "extra"], "unexpected"),
                            (["key", "spin"], "unknown command")):
            r, o, e = ctl(kyufuctl, conf, env["op1"], *args)
            assert r == 2 and words in e, (args, r, o, e)
        r, o, e = ctl(kyufuctl, conf, env["op1"], "key", "rotate", "--to", "3")
        assert r == 1 and "the next is 2, not 3" in e, (r, o, e)
        assert all(n["active_version"] == 1
                   for n in key_status(kyufuctl, conf, env["op1"])), "rotated"

        r, o, e = ctl(kyufuctl, conf, env["op1"], "key", "rotate")
        assert r == 0 and "rotated at raft index" in o, (r, o, e)
        mark("rotated: %s" % o.strip().splitlines()[0])

        # Writes go on while re-encryption runs.
        in_progress = 0
        for k in range(DURING):
            W.must(led.clerk.call("RegisterHousehold", L.RegisterHousehold(
                household=led.household("H-B%03d" % k))), "during %d" % k)
            if k % 10 == 0:
                nodes = key_status(kyufuctl, conf, env["op1"])
                lead = [n for n in nodes if n["reachable"]][0]
                assert lead["active_version"] == 2, lead
                if not lead["rotation"].get("done", False):
                    in_progress += 1
        assert in_progress > 0, "re-encryption was over before any write"
        mark("%d writes during re-encryption (%d status polls saw it "
             "running)" % (DURING, in_progress))

        end = time.monotonic() + 60
        while time.monotonic() < end:
            nodes = key_status(kyufuctl, conf, env["op1"])
            if all(n["reachable"] and n["rotation"].get("done", False)
                   for n in nodes):
                break
            time.sleep(0.3)
        assert all(n["rotation"].get("done", False) for n in nodes), nodes
        mark("re-encryption done: %d values re-sealed"
             % int(nodes[0]["rotation"]["resealed"]))
        c.wait_converged(30)
        resealed = int(nodes[0]["rotation"]["resealed"])
        end = time.monotonic() + 10
        while time.monotonic() < end:
            got = [(metric(p, "kyufu_keys_active_version"),
                    metric(p, "kyufu_keys_reencrypt_done"),
                    metric(p, "kyufu_keys_reencrypted_values"))
                   for p in mports]
            if all(g == (2, 1, resealed) for g in got):
                break
            time.sleep(0.2)
        assert all(g == (2, 1, resealed) for g in got), (got, resealed)
        # The metrics come from the same tick that logs the end.
        assert any("re-encryption done" in open(c.log_path(i)).read()
                   for i in (1, 2, 3)), "no log line of the leader"
        nodes = key_status(kyufuctl, conf, env["op1"], census=True)
        for n in nodes:
            cs = census_of(n)
            assert set(cs) == {2}, ("values under another version", n)
        r, o, e = ctl(kyufuctl, conf, env["op1"], "key", "status", "--census")
        assert r == 0 and "done at raft index" in o and "census: v2" in o, o
        assert "v1" not in o and "plaintext" not in o, o
        # The rotation restarted the count; the re-sealed values are in it.
        assert "seals under version 2: " in o, o
        for n in nodes:
            assert n["seals_counted"] and int(n["seals"]) > resealed, n

        # Rewrap node 3's CMK under a new KEK file.
        nd = os.path.join(c.dir, "node3")
        old_kek = os.path.join(nd, "kek.key")
        new_kek = os.path.join(nd, "kek-new.key")
        cmk = c.cmk_path(3)
        before = sha(cmk)
        base = ["key", "rewrap", "--node-id", "3", "--ca", c.ca,
                "--cmk", cmk]
        wrong = os.path.join(c.dir, "node1", "kek.key")
        for args, rc, words in (
                (base + ["--kek-file", wrong, "--new-kek-file", new_kek], 4,
                 "old key does not open it"),
                (["key", "rewrap", "--node-id", "1", "--ca", c.ca, "--cmk",
                  cmk, "--kek-file", old_kek, "--new-kek-file", new_kek], 4,
                 "old key does not open it"),
                (base + ["--kek-file", old_kek], 2, "--new-kek-file"),
                (base + ["--kek-file", old_kek, "--passphrase-file", old_kek,
                         "--new-kek-file", new_kek], 2, "exactly one"),
                (base + ["--kek-file", old_kek, "--new-kek-file", old_kek], 2,
                 "the new key is the old one"),
                (["key", "rewrap", "--node-id", "x3", "--ca", c.ca, "--cmk",
                  cmk, "--kek-file", old_kek, "--new-kek-file", new_kek], 2,
                 "--node-id"),
                (base + ["--kek-file", old_kek, "--new-kek-file", new_kek,
                         "--nodes", "1"], 2, "not an option")):
            r, o, e = ctl(kyufuctl, conf, env["op1"], *args)
            assert r == rc and words in e, (args, r, o, e)
            assert sha(cmk) == before, "cmk changed by a refused rewrap"
            assert not os.path.exists(new_kek), "new KEK left behind"
        r, o, e = ctl(kyufuctl, conf, env["op1"], *(
            base + ["--kek-file", old_kek, "--new-kek-file", new_kek]))
        assert r == 0 and "rewrapped" in o, (r, o, e)
        assert sha(cmk) != before
        assert oct(os.stat(new_kek).st_mode & 0o777) == "0o600"
        assert oct(os.stat(cmk).st_mode & 0o777) == "0o600"
        mark("node 3 rewrapped")

        c.kill(3, 15)
        c.wait_exit(3, 30)
        # The old KEK no longer opens the file: kyufud refuses to start.
        c.start(3)
        assert c.wait_exit(3, 30) == 2, "node 3 started with the old KEK"
        assert "cmk" in open(c.log_path(3)).read()
        set_kek(c.conf[3], old_kek, new_kek)
        c.start(3)
        c.wait_leader(20)
        st = c.wait_converged(60)
        mark("node 3 back with the new KEK at index %d" % st.applied_index)
        # Node 3 leads, so the reads below are served from its own store
        # (a follower forwards personal-data reads to the leader).
        lead = c.wait_leader(20)
        if lead != 3:
            c.cluster(lead).TransferLeadership(
                S.TransferLeadershipRequest(target_id=3), timeout=15)
        assert c.wait_leader(20) == 3
        led3 = c.ledger(3)
        for no in ["H-A%03d" % k for k in range(FIRST)] + \
                  ["H-B%03d" % k for k in range(DURING)]:
            h = led3.GetHousehold(S.GetHouseholdRequest(household_no=no),
                                  timeout=10)
            assert h.head_name == "Yamada Taro", (no, h)
        mark("node 3 serves all %d households" % (FIRST + DURING))
        # Key status is the node's own (never forwarded): node 3 alone,
        # without a leader, still counts its values.
        for i in (1, 2):
            c.kill(i, 15)
            assert c.wait_exit(i, 30) == 0
        nodes = key_status(kyufuctl, conf, env["op1"], census=True)
        assert [n["reachable"] for n in nodes] == [False, False, True], nodes
        assert census_of(nodes[2]).keys() == {2}, nodes[2]
        r, o, e = ctl(kyufuctl, conf, env["op1"], "key", "status")
        assert r == 0 and o.count("did not answer") == 2, (r, o, e)
        c.stop_clean()
    finally:
        c.close()
    print("key rotation: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
