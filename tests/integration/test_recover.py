"""Quorum-loss recovery (docs/restore.md "Quorum-loss recovery").

A three-node cluster takes acknowledged writes; the two followers are
killed and their data folders deleted (gone for good); the survivor (the
leader, so in every majority: it has every acknowledged write) is stopped.

  1. Refusals change nothing (the survivor's Raft folder is byte-for-byte
     the same after each, once raft_uv's first read of the log closed its
     open segment, as any start does): `kyufuctl cluster recover` while
     its kyufud runs
     (the data-folder lock), with no --node-config, an unknown option, a
     stray argument, --json, kyufud --recover with an unknown flag, a
     config file that does not exist or does not parse, the config of a
     node whose data was deleted (no Raft log), a wrong confirmation line,
     and end of input instead of one.
  2. Recovery with the typed confirmation: the statement names the last
     index and term the survivor has and what may be lost; running it again
     is refused (already the one voter).
  3. The survivor starts as a one-voter cluster, elects itself and has
     every acknowledged write; two new nodes are made with `kyufuctl node
     new` and joined with `kyufuctl cluster add-node`; writes continue; the
     three nodes converge on one applied index and state digest, and every
     acknowledged write is on each new node.

usage: test_recover.py KYUFUD KYUFUCTL"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

import cluster as C
from workload import Ledger, must

ENV = {}


def ctl(kyufuctl, conf, *args, stdin=None, timeout=60):
    p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                       input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=ENV.get("env"))
    return p.returncode, p.stdout, p.stderr


def tree_hash(d):
    """{path: SHA-256} of every file under d (the lock file aside: a
    refused recovery may create it, as kyufud --compact does)."""
    out = {}
    for root, dirs, files in os.walk(d):
        for f in files:
            if f == "LOCK":
                continue
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = hashlib.sha256(
                    fh.read()).hexdigest()[:16]
    return out


def write(led, L, prefix, n, node):
    acked = []
    w = C.Writer(led.c, "clerk1", "recover-" + prefix)
    w.node = node
    for k in range(n):
        no = "%s%04d" % (prefix, k)
        must(w.call("RegisterHousehold", L.RegisterHousehold(
            household=led.household(no)), deadline_s=20.0), "write " + no)
        acked.append(no)
    w.close()
    return acked


def all_there(c, node, acked):
    S = c.s["service_pb2"]
    for no in acked:
        h = c.ledger(node).GetHousehold(S.GetHouseholdRequest(
            household_no=no, read=S.ReadOptions(stale=True)), timeout=5)
        assert h.household_no == no, (node, no)


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    c = C.Cluster(kyufud)
    try:
        t0 = time.monotonic()
        c.start_all()
        s = c.wait_leader(15)  # the survivor: the leader has every ack
        led = Ledger(c, "recover")
        led.setup()
        L = c.s["ledger_pb2"]
        c.account("op1", [led.L.ROLE_OPERATOR], "Operator")
        ENV["env"] = dict(c.ctl_env("op1"), KYUFU_KYUFUD=kyufud)
        conf = os.path.join(c.dir, "client.conf")

        def client_conf(nodes):
            c.write_client_conf(conf, nodes, "op1")
        client_conf((1, 2, 3))
        acked = write(led, L, "R", 40, s)

        # ---- 1. refusals
        rc, out, err = ctl(kyufuctl, conf, "cluster", "recover",
                           "--node-config", c.conf[s], "--yes")
        assert rc == 4 and "in use by another kyufud" in err \
            and "nothing changed" in err, (rc, out, err)
        dead = [i for i in (1, 2, 3) if i != s]
        for i in dead:
            c.kill(i)
            c.wait_exit(i, 10)
            shutil.rmtree(os.path.join(c.dir, "node%d" % i, "data"))
        c.kill(s)
        c.wait_exit(s, 10)
        raft_dir = os.path.join(c.dir, "node%d" % s, "data", "raft")
        # The first read of the log closes its open segment (raft_uv's
        # load, as kyufud's next start would): entries unchanged, files
        # renamed.  From then on a refusal leaves every byte as it was.
        rc, out, err = ctl(kyufuctl, conf, "cluster", "recover",
                           "--node-config", c.conf[s], stdin="")
        assert rc == 4 and "not confirmed; nothing changed" in err, \
            (rc, out, err)
        shown = re.search(r"Raft log ends at index \d+, term \d+", out)
        assert shown, out
        before = tree_hash(raft_dir)
        bad = os.path.join(c.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[node]\nid = zero\n")
        for args, code, text in (
                ([], 2, "--node-config FILE"),
                (["--node-config", c.conf[s], "--force"], 2, "unknown option"),
                (["--node-config", c.conf[s], "now"], 2, "unexpected argument"),
                (["--node-config", os.path.join(c.dir, "none.conf")], 2, ""),
                (["--node-config", bad], 2, "id"),
                (["--node-config", c.conf[dead[0]], "--yes"], 4,
                 "no Raft log")):
            rc, out, err = ctl(kyufuctl, conf, "cluster", "recover", *args)
            assert rc == code and text in err, (args, rc, out, err)
        p = subprocess.run([kyufud, "--recover", c.conf[s], "--force"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--recover takes one FILE, then " \
            "optionally --yes" in p.stderr, p
        rc, out, err = ctl(kyufuctl, conf, "--json", "cluster", "recover",
                           "--node-config", c.conf[s])
        assert rc == 2 and "no --json" in err, (rc, out, err)
        for answer in ("yes\n", "recover node %d!\n" % s, ""):
            rc, out, err = ctl(kyufuctl, conf, "cluster", "recover",
                               "--node-config", c.conf[s], stdin=answer)
            assert rc == 4 and "not confirmed; nothing changed" in err, \
                (answer, rc, out, err)
            assert "WHAT MAY BE LOST" in out and shown.group(0) in out, out
        after = tree_hash(raft_dir)
        assert after == before, ("a refusal changed the log",
                                 sorted(set(before.items()) ^
                                        set(after.items())))
        print("refusals: ok, the survivor's Raft log unchanged")

        # ---- 2. recover, confirmed as typed
        rc, out, err = ctl(kyufuctl, conf, "cluster", "recover",
                           "--node-config", c.conf[s],
                           stdin="recover node %d\n" % s)
        assert rc == 0, (rc, out, err)
        m = re.search(r"Raft log ends at index (\d+), term (\d+)", out)
        assert m and m.group(0) == shown.group(0) and int(m.group(1)) > 40, \
            out
        assert "Recovered: node %d is the only voter" % s in out, out
        print("recovered node %d at index %s term %s"
              % (s, m.group(1), m.group(2)))
        rc, out, err = ctl(kyufuctl, conf, "cluster", "recover",
                           "--node-config", c.conf[s], "--yes")
        assert rc == 4 and "already the one voter" in err, (rc, out, err)

        # ---- 3. one voter, then two new nodes, writes go on
        members = [s]
        c.ids = lambda: list(members)
        c.start(s)
        assert c.wait_leader(15) == s
        all_there(c, s, acked)
        client_conf((s,))
        for i in (4, 5):
            c.add_node_files(kyufuctl, conf, i, ENV.get("env"))
            c.start(i)
            rc, out, err = ctl(kyufuctl, conf, "--json", "cluster",
                               "add-node", "--id", str(i), "--raft",
                               c.raft[i], "--api", c.api[i],
                               "--catch-up-timeout-ms", "15000")
            assert rc == 0, (rc, out, err, c.logs())
            members.append(i)
        st = c.status(s)
        got = sorted((m.id, m.role) for m in st.members)
        assert [g[0] for g in got] == sorted(members), got
        acked += write(led, L, "S", 20, s)
        c.wait_converged(20, nodes=members)
        for i in (4, 5):
            all_there(c, i, acked)
        print("%d acknowledged writes on nodes %s; digests agree (%.1f s)"
              % (len(acked), members, time.monotonic() - t0))
        c.stop_clean()
        print("stopped (%.1f s)" % (time.monotonic() - t0))
    finally:
        c.close()


if __name__ == "__main__":
    main()
