#!/usr/bin/python3
"""Snapshot install to a lagging node, at city size (docs/scale.md).

Happy path:
  1. `kyufuctl cluster init` in a new mkdtemp folder on free loopback ports,
     `[raft] snapshot_threshold` / `snapshot_trailing` added to each node's
     config, three kyufud started (PIDs recorded, logs in the folder);
  2. staff and program bootstrapped (kyufu-bench-load, 1 household), then
     one follower stopped with SIGTERM: its log ends there;
  3. --households households loaded through the leader with
     kyufu-bench-load (K calls in flight), optionally applications too;
  4. wait until the leader holds a snapshot whose index is past the stopped
     follower's last log index (raft_uv names snapshot files
     snapshot-TERM-INDEX-MS), so the follower can only catch up by an
     InstallSnapshot;
  5. start the probe (kyufu-bench-load --probe: one write in flight) for
     --before-s seconds, then restart the follower and poll every node's
     Cluster.Status and /proc/PID/status (VmHWM, VmRSS, RssAnon) every
     --poll-ms until the follower's applied index has reached the leader's
     applied index at the restart, and then equals the leader's;
  6. stop the probe, compare the nodes' state digests at one applied index
     (scripts/same-state: the cluster keeps writing while idle);
  7. write result.json and print it; stop every kyufud by its PID.

--save DIR (after step 4): both running nodes are stopped with SIGTERM and
waited for, the cluster folder is copied to DIR (cp -a --reflink=auto; DIR
must not exist, it appears only once complete) with a saved.json manifest,
then the two healthy nodes are started again and the drill goes on as with
--from.  --from DIR skips steps 1-4: DIR is copied into a new mkdtemp
folder (DIR itself is never modified), the two healthy nodes are started on
the saved ports (Raft addresses live in the log and snapshot, so the same
ports must be free), and once a leader holds the snapshot past the stopped
follower's last index, steps 5-7 run.  One 1M load thus serves many
install runs.

Failure modes are the point: if the follower does not catch up within
--install-timeout-s, or a node dies, the drill says so, keeps the folder
(logs, configs, data) and exits 1; it never retries.  Ctrl-C stops every
process it started (by PID) and keeps the folder.

Run with Debian's /usr/bin/python3.  Not part of any test suite: it reads
the wall clock, needs minutes and gigabytes.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import procs  # chaos/bench/procs.py (this script's folder)

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def ephemeral_low():
    """First port of the kernel's ephemeral range (source ports of outgoing
    connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_free(p, reuse=False):
    """Whether 127.0.0.1:p can be bound.  reuse=True sets SO_REUSEADDR as
    libuv does for a listener, so a port held only by TIME_WAIT connections
    of a node that just stopped counts as free."""
    s = socket.socket()
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_base(n):
    """A port base p with p..p+n-1 and p+100..p+100+n-1 free on 127.0.0.1,
    all below the kernel's ephemeral range: a node's port must not be one
    the kernel may hand a peer as the source port of a reconnect while the
    node is stopped, or the node cannot listen on it when restarted
    (suspected cause of a "cannot start raft" restart failure).  Bases are
    random so that parallel drills and tests rarely collide; each port is
    checked free by binding it (tests/integration/cluster.py does the
    same)."""
    low, high = 20000, ephemeral_low() - 200
    if high <= low:
        raise RuntimeError("ephemeral range starts at %d: no room below it"
                           % ephemeral_low())
    for _ in range(500):
        base = random.randrange(low, high)
        ports = list(range(base, base + n)) + list(range(base + 100, base + 100 + n))
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range below the ephemeral range")


def source_commit():
    """(HEAD commit, work tree dirty) of the source tree, or (None, None).
    It names the source, not necessarily what --build was built from."""
    try:
        head = subprocess.run(["git", "-C", SRC, "rev-parse", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, timeout=20).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", SRC, "status", "--porcelain",
                                "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, timeout=20).stdout.strip() != ""
        return head, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def proc_status(pid):
    """VmHWM, VmRSS, RssAnon in KiB (None if the process is gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon"):
                    out[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def proc_io(pid):
    """rchar, wchar of /proc/PID/io in bytes (None if gone).  rchar counts
    every read(): on a leader it is dominated by raft_uv reading the whole
    snapshot file once per InstallSnapshot it sends, so its growth over the
    install divided by the snapshot size estimates how many copies the
    leader loaded (docs/scale.md)."""
    out = {}
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("rchar", "wchar"):
                    out[k] = int(v)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return out


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except FileNotFoundError:
                pass
    return total


def snapshots(raft_dir):
    """[(index, name, bytes)] of the complete snapshots in a raft_uv dir."""
    out = []
    try:
        names = os.listdir(raft_dir)
    except FileNotFoundError:
        return out
    for n in names:
        if n.startswith("snapshot-") and not n.endswith(".meta"):
            if n + ".meta" not in names:
                continue  # being written
            parts = n.split("-")
            try:
                idx = int(parts[2])
                size = os.path.getsize(os.path.join(raft_dir, n))
            except (IndexError, ValueError, FileNotFoundError):
                continue
            out.append((idx, n, size))
    return sorted(out)


def snapshot_in_flight(raft_dir):
    """Whether raft_uv is writing a snapshot (a data file without .meta)."""
    try:
        names = os.listdir(raft_dir)
    except FileNotFoundError:
        return False
    return any(n.startswith("snapshot-") and not n.endswith(".meta")
               and n + ".meta" not in names for n in names)


def last_log_index(raft_dir):
    """Highest index in the closed segments' names (FIRST-LAST) of a stopped
    node; open segments hold entries too, so status is asked first."""
    best = 0
    for n in os.listdir(raft_dir):
        parts = n.split("-")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            best = max(best, int(parts[1]))
    return best


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    rank = max(1, (len(v) * p + 99) // 100)
    return v[rank - 1]


class Drill:
    def __init__(self, a):
        self.a = a
        self.build = os.path.abspath(a.build)
        self.kyufud = os.path.join(self.build, "node", "kyufud")
        self.ctl_bin = os.path.join(self.build, "client", "kyufuctl")
        self.load = os.path.join(self.build, "chaos", "bench", "kyufu-bench-load")
        for b in (self.kyufud, self.ctl_bin, self.load):
            if not os.access(b, os.X_OK):
                sys.exit("missing %s: build first (ninja -C %s)" % (b, a.build))
        self.dir = tempfile.mkdtemp(prefix="kyufu-drill-", dir=a.tmp)
        self.cdir = os.path.join(self.dir, "cluster")
        self.conf = os.path.join(self.cdir, "kyufuctl.conf")
        self.procs = {}     # node id -> Popen
        self.others = []    # other Popen (loaders, probe)
        self.stopped = None     # the lagging follower's id
        self.restarted = False
        # Loading options mean nothing with --from: restore() fills these
        # from saved.json; "conf" holds the [raft] options actually used.
        self.result = {"dir": self.dir, "households": a.households,
                       "applications": a.applications,
                       "snapshot_threshold": a.snapshot_threshold,
                       "snapshot_trailing": a.snapshot_trailing,
                       "inflight": a.inflight,
                       "election_ms": a.election_ms, "heartbeat_ms": a.heartbeat_ms}
        if a.from_dir:
            for k in ("snapshot_threshold", "snapshot_trailing"):
                del self.result[k]

    # ------------------------------------------------------ processes
    def set_timers(self, text):
        """text of a kyufud.conf with --election-ms / --heartbeat-ms (if
        given) replacing its timer lines (cluster init writes 1000 / 100)."""
        for key, val in (("election_timeout_ms", self.a.election_ms),
                         ("heartbeat_timeout_ms", self.a.heartbeat_ms)):
            if val is None:
                continue
            lines = text.split("\n")
            hit = [n for n, l in enumerate(lines) if l.startswith(key + " ")]
            assert len(hit) == 1, key
            lines[hit[0]] = "%s = %d" % (key, val)
            text = "\n".join(lines)
        return text

    def node_conf(self, i):
        return os.path.join(self.cdir, "node%d" % i, "kyufud.conf")

    def conf_options(self):
        """The [raft] options node 1's config ended up with (all three
        nodes get the same)."""
        out = {}
        with open(self.node_conf(1)) as f:
            for line in f:
                k, _, v = line.partition("=")
                k = k.strip()
                if k in ("snapshot_threshold", "snapshot_trailing",
                         "election_timeout_ms", "heartbeat_timeout_ms"):
                    out[k] = int(v)
        return out

    def ports(self):
        """{node id: {"raft": port, "api": port}} from the node configs."""
        out = {}
        for i in (1, 2, 3):
            with open(self.node_conf(i)) as f:
                for line in f:
                    k, _, v = line.partition("=")
                    k = k.strip()
                    if k in ("raft_address", "api_address"):
                        out.setdefault(i, {})[k.split("_")[0]] = int(v.strip().rsplit(":", 1)[1])
        return out

    def init(self):
        base = free_base(3)
        # Its output (the first ID administrator's temporary password)
        # goes to sign_in() in memory only.
        self.init_out = subprocess.run(
                       [self.ctl_bin, "cluster", "init", "--dir", self.cdir,
                        "--nodes", "3", "--raft-port-base", str(base),
                        "--api-port-base", str(base + 100)],
                       check=True, stdout=subprocess.PIPE, text=True,
                       env=dict(os.environ, KYUFU_CA_PASSPHRASE=os.environ.get(
                           "KYUFU_CA_PASSPHRASE", "install drill CA passphrase"))).stdout
        for i in (1, 2, 3):
            p = self.node_conf(i)
            text = open(p).read()
            extra = "[raft]\nsnapshot_threshold = %d\nsnapshot_trailing = %d\n" % (
                self.a.snapshot_threshold, self.a.snapshot_trailing)
            assert "[raft]\n" in text
            text = self.set_timers(text.replace("[raft]\n", extra, 1))
            with open(p, "w") as f:
                f.write(text)
        log("cluster in", self.cdir, "ports", base, base + 100)

    STAFF = ("bench-clerk=clerk", "bench-approver=approver", "bench-operator=operator")

    def sign_in(self, again=False):
        """The bench's staff sign in with password + TOTP (scripts/accounts:
        tokens in cluster/tokens, secrets in cluster/secrets).  again: a
        copied cluster (--from) whose sessions may have expired signs in
        anew with the saved secrets."""
        acc = os.path.join(SRC, "scripts", "accounts")
        head = [acc] + (["--login"] if again else []) + [self.ctl_bin, self.conf, self.cdir]
        if again:
            r = subprocess.run(head + [x.split("=")[0] for x in self.STAFF],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        else:
            r = subprocess.run(head + list(self.STAFF), input=self.init_out,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.init_out = None
        if r.returncode != 0:
            raise RuntimeError("sign-in of the bench staff failed: %s" % r.stdout.strip())
        log("signed in:", ", ".join(x.split("=")[0] for x in self.STAFF))

    def token(self, who):
        return os.path.join(self.cdir, "tokens", who)

    def load_cmd(self, args):
        """kyufu-bench-load on this cluster, in the bench staff's sessions."""
        return [self.load, "--config", self.conf,
                "--clerk-token-file", self.token("bench-clerk"),
                "--approver-token-file", self.token("bench-approver"),
                "--operator-token-file", self.token("bench-operator")] + list(args)

    def start(self, i):
        assert i not in self.procs or self.procs[i].poll() is not None
        logf = open(os.path.join(self.cdir, "node%d" % i, "kyufud.log"), "a")
        self.procs[i] = subprocess.Popen(
            [self.kyufud, "--config",
             os.path.join(self.cdir, "node%d" % i, "kyufud.conf")],
            stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        log("node %d started, pid %d" % (i, self.procs[i].pid))

    def stop(self, i, timeout=60):
        p = self.procs.get(i)
        if p is None or p.poll() is not None:
            return None
        code, killed = procs.stop(p, timeout)
        if killed:
            log("node %d (pid %d) still running %d s after SIGTERM: SIGKILL"
                % (i, p.pid, timeout))
        return code

    def stop_all(self):
        for p in self.others:
            procs.stop(p, 30)
        codes = {}
        for i in list(self.procs):
            codes[i] = self.stop(i)
        return codes

    def ctl_json(self, *args):
        r = subprocess.run([self.ctl_bin, "--config", self.conf, "--json",
                            "--token-file", self.token("bench-operator")]
                           + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def status(self, digest=False):
        # A digest walks the whole store (several seconds per node at 1M
        # households with applications, three nodes on two cores): give it
        # a minute instead of kyufuctl's default deadline.
        d = self.ctl_json(*(["--deadline-ms", "60000", "cluster", "status",
                             "--digest"] if digest else ["cluster", "status"]))
        if d is None:
            return {}
        return {n["id"]: n for n in d.get("nodes", []) if n.get("reachable")}

    def leader(self, timeout=30):
        t = time.time() + timeout
        while time.time() < t:
            st = self.status()
            ls = [i for i, n in st.items() if n.get("role") == "leader"]
            if len(ls) == 1:
                return ls[0]
            time.sleep(0.2)
        raise RuntimeError("no leader after %d s" % timeout)

    def check_alive(self):
        # The stopped follower counts again once restarted: a restart that
        # fails (seen once: "cannot start raft", raft I/O error) must end
        # the drill at once instead of waiting --install-timeout-s.
        for i, p in self.procs.items():
            rc = p.poll()
            if rc is not None and (i != self.stopped or self.restarted):
                raise RuntimeError("node %d exited with %s (see %s)" % (
                    i, rc, os.path.join(self.cdir, "node%d" % i, "kyufud.log")))

    def bench(self, args, out_name):
        out = os.path.join(self.dir, out_name)
        cmd = self.load_cmd(args)
        log("run", " ".join(cmd))
        with open(out, "w") as fo, open(out + ".err", "w") as fe:
            p = subprocess.Popen(cmd, stdout=fo, stderr=fe)
            self.others.append(p)
            while p.poll() is None:
                time.sleep(1)
                self.check_alive()
        with open(out) as f:
            text = f.read()
        try:
            return p.returncode, json.loads(text)
        except ValueError:
            return p.returncode, None

    def io_report(self, io0, ios, t_restart):
        """Bytes each node read / wrote since the restart, and the same in
        snapshot sizes (a leader's rchar grows by one snapshot per
        InstallSnapshot it loads; a receiver's by one per copy it reads)."""
        snap = self.result.get("leader_snapshot", {}).get("bytes") or 1
        rep = {}
        for i in io0:
            a, b = io0.get(i), ios.get(i)
            if not a or not b:
                continue
            rep[i] = {"rchar": b["rchar"] - a["rchar"], "wchar": b["wchar"] - a["wchar"],
                      "rchar_snapshots": round((b["rchar"] - a["rchar"]) / snap, 2),
                      "wchar_snapshots": round((b["wchar"] - a["wchar"]) / snap, 2)}
        self.result["io_since_restart"] = rep

    # ------------------------------------------------------ the drill
    def load_phase(self):
        """Steps 1-3: a new cluster, one follower stopped, N households."""
        a = self.a
        self.init()
        for i in (1, 2, 3):
            self.start(i)
        self.sign_in()
        leader = self.leader()
        rc, _ = self.bench(["--households", "1", "--inflight", "1",
                            "--prefix", "S"], "setup.json")
        if rc != 0:
            raise RuntimeError("setup load failed (setup.json.err)")
        follower = [i for i in (1, 2, 3) if i != leader][0]
        st = self.status()
        self.result["follower_last_index_at_stop"] = st[follower]["last_log_index"]
        self.stopped = follower
        self.stop(follower)
        log("leader %d; follower %d stopped at log index %d" % (
            leader, follower, self.result["follower_last_index_at_stop"]))
        self.result.update(leader_at_load=leader, follower=follower)

        # ---- load
        t0 = time.time()
        args = ["--households", str(a.households), "--inflight", str(a.inflight),
                "--prefix", "D", "--no-setup", "--progress"]
        if not a.applications:
            args.append("--no-submit")
        rc, load = self.bench(args, "load.json")
        if load is None:
            raise RuntimeError("load failed: see %s" % os.path.join(self.dir, "load.json.err"))
        run = load["runs"][0]
        self.result["load"] = {k: run[k] for k in (
            "writes", "ok", "retries", "errors", "rejected", "seconds",
            "commands_per_s", "latency_ms", "group_commit_factor")}
        self.result["load"]["exit_code"] = rc
        self.result["load"]["wall_seconds"] = round(time.time() - t0, 1)
        log("loaded in %.0f s: %s" % (time.time() - t0, self.result["load"]))

    def wait_snapshot(self, timeout):
        """Step 4: (leader, its snapshots) once a single leader holds a
        complete snapshot past the stopped follower's last log index, so
        the follower can only catch up by an InstallSnapshot."""
        past = self.result["follower_last_index_at_stop"]
        t = time.time()
        while True:
            self.check_alive()
            st = self.status()
            ls = [i for i, n in st.items() if n.get("role") == "leader"]
            if len(ls) == 1:
                snaps = snapshots(os.path.join(self.cdir, "node%d" % ls[0], "data", "raft"))
                if snaps and snaps[-1][0] > past:
                    return ls[0], snaps
            if time.time() - t > timeout:
                # Group commit packs ~16 writes into one entry: a small load
                # may not reach --snapshot-threshold entries at all.
                raise RuntimeError(
                    "no leader holding a snapshot past index %d after %d s (last log "
                    "indexes %s; snapshot_threshold %s)" % (
                        past, timeout, {i: n.get("last_log_index") for i, n in st.items()},
                        self.conf_options().get("snapshot_threshold")))
            time.sleep(1)

    def relocate(self, old):
        """Point the copied configs' absolute paths (data_dir, TLS files)
        from the folder they were written for to self.cdir."""
        for p in [os.path.join(self.cdir, "kyufuctl.conf")] + [
                self.node_conf(i) for i in (1, 2, 3)]:
            text = open(p).read()
            assert old + "/" in text, (p, old)
            with open(p, "w") as f:
                f.write(text.replace(old + "/", self.cdir + "/"))

    def start_healthy(self):
        for i in (1, 2, 3):
            if i != self.stopped:
                self.start(i)

    def settle_snapshots(self, timeout):
        """Before --save stops the nodes: wait until on each healthy node
        applied index - newest complete snapshot index < snapshot_threshold,
        i.e. no snapshot is due or being written.  A node stopped with one
        due restarts with raft's applied index at its snapshot and its store
        a threshold or more ahead; raft then asks for a snapshot while
        replaying entries the store already holds, and raft-glue's
        fsm_snapshot asserts storage_index <= raft_index (seen: kyufud
        aborted starting from a 1M save).  libraft only considers a
        snapshot after applying an entry, so a due one that was skipped
        (one was in flight when the load ended) is forced by a few writes.
        Returns ({node: gap}, households written)."""
        thr = self.conf_options()["snapshot_threshold"]
        healthy = [i for i in (1, 2, 3) if i != self.stopped]
        t = time.time()
        nudges = 0
        while True:
            self.check_alive()
            st = self.status()
            gaps = {}
            for i in healthy:
                snaps = snapshots(os.path.join(self.cdir, "node%d" % i, "data", "raft"))
                applied = st.get(i, {}).get("applied_index")
                gaps[i] = None if applied is None else applied - (snaps[-1][0] if snaps else 0)
            if all(g is not None and g < thr for g in gaps.values()):
                return gaps, 8 * nudges
            if time.time() - t > timeout:
                raise RuntimeError("--save: a snapshot still due after %d s "
                                   "(applied - snapshot index %s, threshold %d)"
                                   % (timeout, gaps, thr))
            if not any(snapshot_in_flight(os.path.join(self.cdir, "node%d" % i, "data", "raft"))
                       for i in healthy):
                nudges += 1
                log("snapshot due (gaps %s, threshold %d): 8 more households" % (gaps, thr))
                rc, _ = self.bench(["--households", "8", "--inflight", "1", "--prefix",
                                    "Z%d" % nudges, "--no-setup", "--no-submit"],
                                   "nudge%d.json" % nudges)
                if rc != 0:
                    raise RuntimeError("--save: nudge writes failed (nudge%d.json.err)" % nudges)
            time.sleep(2)

    def save(self, leader, snaps):
        """--save: stop both running nodes (SIGTERM, wait), copy the cluster
        folder to a.save with saved.json, start them again.  The copy is
        made under DIR.partial and renamed to DIR once complete, so DIR
        exists only as a whole."""
        a = self.a
        dest = os.path.abspath(a.save)
        part = dest + ".partial"
        if os.path.exists(dest) or os.path.exists(part):
            raise RuntimeError("--save: %s or %s exists already" % (dest, part))
        gaps, extra = self.settle_snapshots(a.snapshot_wait_s)
        if extra:
            leader, snaps = self.wait_snapshot(a.snapshot_wait_s)
        st = self.status()
        head, dirty = source_commit()
        man = {
            "format": 1,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cluster_dir": dest,
            "households": a.households, "applications": a.applications,
            "inflight": a.inflight,
            "extra_households": extra, "snapshot_gaps": gaps,
            "ports": self.ports(),
            "follower": self.stopped,
            "follower_last_index_at_stop": self.result["follower_last_index_at_stop"],
            "leader_at_save": leader,
            "leader_applied_index_at_save": st.get(leader, {}).get("applied_index"),
            "leader_snapshot": {"index": snaps[-1][0], "file": snaps[-1][1],
                                "bytes": snaps[-1][2]},
            "config": self.conf_options(),
            "load": self.result.get("load"),
            "build": self.build,
            "kyufud_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                          time.localtime(os.path.getmtime(self.kyufud))),
            "source_commit": head, "source_dirty": dirty,
            "drilled_from": self.cdir,
        }
        codes = {}
        for i in sorted(self.procs):
            if i != self.stopped:
                codes[i] = self.stop(i, timeout=300)
        man["node_exit_codes_at_save"] = codes
        if any(c != 0 for c in codes.values()):
            log("WARNING: nodes exited with %s on SIGTERM; saving anyway "
                "(the data is what a crash would leave)" % codes)
        t0 = time.time()
        subprocess.run(["cp", "-a", "--reflink=auto", self.cdir, part], check=True)
        for p in [os.path.join(part, "kyufuctl.conf")] + [
                os.path.join(part, "node%d" % i, "kyufud.conf") for i in (1, 2, 3)]:
            text = open(p).read()
            with open(p, "w") as f:
                f.write(text.replace(self.cdir + "/", dest + "/"))
        man["bytes"] = dir_bytes(part)
        with open(os.path.join(part, "saved.json"), "w") as f:
            json.dump(man, f, indent=1)
        os.rename(part, dest)
        self.result["saved"] = {"dir": dest, "bytes": man["bytes"],
                                "copy_seconds": round(time.time() - t0, 1),
                                "node_exit_codes": codes}
        log("saved %s (%.1f GB) in %.0f s" % (dest, man["bytes"] / 1e9, time.time() - t0))
        self.start_healthy()

    def restore(self):
        """--from: copy the saved folder, check its ports, start the two
        healthy nodes."""
        a = self.a
        src = os.path.abspath(a.from_dir)
        with open(os.path.join(src, "saved.json")) as f:
            man = json.load(f)
        ports = sorted(p for n in man["ports"].values() for p in n.values())
        busy = [p for p in ports if not port_free(p, reuse=True)]
        if busy:
            raise RuntimeError(
                "saved ports %s are in use on 127.0.0.1 (%s needs %s: the raft "
                "addresses are in its log and snapshot, so they cannot change); "
                "stop whatever holds them" % (busy, src, ports))
        t0 = time.time()
        subprocess.run(["cp", "-a", "--reflink=auto", src, self.cdir], check=True)
        self.relocate(man["cluster_dir"])
        for i in (1, 2, 3):
            p = self.node_conf(i)
            text = open(p).read()
            with open(p, "w") as f:
                f.write(self.set_timers(text))
        log("copied %s to %s in %.0f s; ports %s" % (src, self.cdir, time.time() - t0, ports))
        self.stopped = int(man["follower"])
        self.result.update(
            {"from": src, "households": man["households"],
             "applications": man["applications"], "inflight": None,
             "follower": self.stopped, "leader_at_save": man["leader_at_save"],
             "follower_last_index_at_stop": man["follower_last_index_at_stop"],
             "saved_load": man.get("load"), "saved_source_commit": man.get("source_commit")})
        self.start_healthy()
        self.sign_in(again=True)

    def run(self):
        a = self.a
        if a.from_dir:
            self.restore()
        else:
            self.load_phase()
        leader, snaps = self.wait_snapshot(a.snapshot_wait_s)
        if a.save:
            self.save(leader, snaps)
            leader, snaps = self.wait_snapshot(a.snapshot_wait_s)
        follower = self.stopped
        self.result.update(conf=self.conf_options(), leader=leader)
        lraft = os.path.join(self.cdir, "node%d" % leader, "data", "raft")
        st = self.status()
        self.result["leader_snapshot"] = {"index": snaps[-1][0], "file": snaps[-1][1],
                                          "bytes": snaps[-1][2]}
        self.result["leader_before_install"] = {
            "applied_index": st[leader]["applied_index"],
            "ledger_bytes": dir_bytes(os.path.join(self.cdir, "node%d" % leader, "data", "ledger")),
            "raft_dir_bytes": dir_bytes(lraft),
            "proc": proc_status(self.procs[leader].pid)}
        log("leader snapshot", self.result["leader_snapshot"])

        # ---- probe, restart, watch
        probe_file = os.path.join(self.dir, "probe.txt")
        probe_out = open(os.path.join(self.dir, "probe.json"), "w")
        probe_err = open(os.path.join(self.dir, "probe.json.err"), "w")
        probe = subprocess.Popen(self.load_cmd(["--probe", probe_file,
                                  "--prefix", "P", "--no-setup"]),
                                 stdout=probe_out, stderr=probe_err)
        self.others.append(probe)
        time.sleep(a.before_s)
        lpid = self.procs[leader].pid
        t_restart = time.time()
        restart_target = self.status()[leader]["applied_index"]
        self.start(follower)
        self.restarted = True
        fpid = self.procs[follower].pid
        peak = {"leader": {"RssAnon": 0, "VmRSS": 0}, "follower": {"RssAnon": 0, "VmRSS": 0}}
        io0 = {i: proc_io(p.pid) for i, p in self.procs.items()}
        leaders_seen = []   # (seconds after restart, node id or None)
        la_prev = None
        samples = []
        self.samples = samples
        t_reach = t_match = None
        while True:
            now = time.time()
            self.check_alive()
            for role, pid in (("leader", lpid), ("follower", fpid)):
                ps = proc_status(pid)
                if ps:
                    for k in ("RssAnon", "VmRSS"):
                        peak[role][k] = max(peak[role][k], ps[k])
                    peak[role]["VmHWM"] = ps["VmHWM"]
            # The machine is shared: a node growing without bound (seen at
            # 1M households, docs/scale.md) is stopped before the kernel's
            # OOM killer picks someone else's process.
            for i, p in self.procs.items():
                ps = proc_status(p.pid)
                if ps and ps["RssAnon"] > a.rss_limit_mib * 1024:
                    self.result["install"] = {"peak_kib": peak, "samples_tail": samples[-5:]}
                    raise RuntimeError("memory guard: node %d RssAnon %d MiB > %d MiB, "
                                       "%.1f s after the restart" % (
                                           i, ps["RssAnon"] // 1024, a.rss_limit_mib,
                                           now - t_restart))
            st = self.status()
            ls = [i for i, n in st.items() if n.get("role") == "leader"]
            cur = ls[0] if len(ls) == 1 else None
            if not leaders_seen or leaders_seen[-1][1] != cur:
                leaders_seen.append((round(now - t_restart, 1), cur))
            fa = st.get(follower, {}).get("applied_index")
            la = st.get(leader, {}).get("applied_index")
            ios = {i: proc_io(p.pid) for i, p in self.procs.items()}
            samples.append({"t": round(now - t_restart, 2), "follower_applied": fa,
                            "leader_applied": la, "leader": cur,
                            "follower_rss_anon_kib": peak["follower"]["RssAnon"],
                            "io": ios})
            self.io_report(io0, ios, t_restart)
            self.result["leaders_seen"] = leaders_seen
            if fa is not None and t_reach is None and fa >= restart_target:
                t_reach = now - t_restart
                log("follower reached the leader's restart index %d after %.1f s"
                    % (restart_target, t_reach))
            # Matched: the follower has applied what the leader had applied
            # one poll earlier.  The probe keeps writing and one status call
            # reads the nodes one after another, so "fa >= la" in the same
            # poll can stay false for minutes on a fully caught-up node.
            if (fa is not None and la_prev is not None and fa >= la_prev
                    and t_reach is not None):
                t_match = now - t_restart
                log("follower matched the leader (%d) after %.1f s" % (la_prev, t_match))
                break
            if la is not None:
                la_prev = la
            if now - t_restart > a.install_timeout_s:
                self.result["install_timeout"] = True
                log("follower not caught up after %d s: applied %s, leader %s"
                    % (a.install_timeout_s, fa, la))
                break
            time.sleep(a.poll_ms / 1000.0)
        t_end_install = time.time()
        time.sleep(a.after_s)
        probe.send_signal(signal.SIGTERM)
        probe.wait(30)
        probe_out.close()
        probe_err.close()
        self.result["install"] = {
            "restart_target_index": restart_target,
            "seconds_to_restart_index": t_reach, "seconds_to_match": t_match,
            "peak_kib": peak,
            "follower_snapshot": [
                {"index": s[0], "bytes": s[2]} for s in
                snapshots(os.path.join(self.cdir, "node%d" % follower, "data", "raft"))],
            "follower_ledger_bytes": dir_bytes(os.path.join(
                self.cdir, "node%d" % follower, "data", "ledger")),
        }
        with open(os.path.join(self.dir, "samples.json"), "w") as f:
            json.dump(samples, f)

        # ---- probe latency before / during / after
        rows = []
        with open(probe_file) as f:
            for line in f:
                p = line.split()
                if len(p) >= 4:
                    rows.append((int(p[0]) / 1000.0, int(p[1]) / 1000.0, int(p[2])))
        def window(lo, hi):
            v = [r[1] for r in rows if lo <= r[0] < hi]
            bad = sum(1 for r in rows if lo <= r[0] < hi and r[2] != 0)
            return {"writes": len(v), "not_ok": bad, "p50_ms": pct(v, 50),
                    "p99_ms": pct(v, 99), "max_ms": max(v) if v else None}
        self.result["probe"] = {
            "before": window(t_restart - a.before_s, t_restart),
            "during": window(t_restart, t_end_install),
            "after": window(t_end_install, t_end_install + a.after_s)}
        log("probe", self.result["probe"])

        # ---- converge and compare digests (scripts/same-state: at the
        # same applied index, as the cluster keeps writing while idle)
        r = subprocess.run([os.path.join(SRC, "scripts", "same-state"), str(a.converge_s),
                            self.ctl_bin, "--config", self.conf, "--deadline-ms", "60000",
                            "--token-file", self.token("bench-operator")],
                           stdout=subprocess.PIPE, text=True)
        log("converge:", r.stdout.strip())
        self.result["digests_equal"] = r.returncode == 0
        self.result["converge"] = r.stdout.strip()
        self.result["final"] = {i: (n.get("applied_index"), n.get("state_digest"))
                                for i, n in self.status(digest=True).items()}
        for i in (1, 2, 3):
            self.result.setdefault("vmhwm_kib_end", {})[i] = (
                proc_status(self.procs[i].pid) or {}).get("VmHWM")
        return self.result["digests_equal"] and t_match is not None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"),
                    help="meson build dir with kyufud, kyufuctl, kyufu-bench-load")
    ap.add_argument("--save", metavar="DIR", default=None,
                    help="after step 4, stop the two running nodes, copy the cluster "
                    "folder to DIR (must not exist) with saved.json, then go on as "
                    "--from does")
    ap.add_argument("--from", dest="from_dir", metavar="DIR", default=None,
                    help="skip cluster init and the load: run the install (steps 5-7) "
                    "on a copy of a --save folder (DIR is not modified); needs the "
                    "saved ports free; --households, --applications, --inflight, "
                    "--snapshot-threshold and --snapshot-trailing are ignored, "
                    "--election-ms / --heartbeat-ms still apply")
    ap.add_argument("--households", type=int, default=1000000)
    ap.add_argument("--applications", action="store_true",
                    help="also submit one application per household")
    ap.add_argument("--inflight", type=int, default=256)
    ap.add_argument("--snapshot-threshold", type=int, default=4096)
    ap.add_argument("--snapshot-trailing", type=int, default=1024)
    ap.add_argument("--snapshot-wait-s", type=int, default=600,
                    help="wait for a leader holding a snapshot past the follower's "
                    "index (after the load, and after starting saved nodes)")
    ap.add_argument("--before-s", type=float, default=10)
    ap.add_argument("--after-s", type=float, default=5)
    ap.add_argument("--poll-ms", type=int, default=200)
    ap.add_argument("--install-timeout-s", type=int, default=900)
    ap.add_argument("--converge-s", type=int, default=120)
    ap.add_argument("--rss-limit-mib", type=int, default=8192,
                    help="stop the drill when a node's RssAnon passes this")
    ap.add_argument("--election-ms", type=int, default=None,
                    help="[raft] election_timeout_ms (cluster init writes 1000)")
    ap.add_argument("--heartbeat-ms", type=int, default=None,
                    help="[raft] heartbeat_timeout_ms (cluster init writes 100)")
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the folder on success")
    a = ap.parse_args()
    if a.save and a.from_dir:
        ap.error("--save and --from exclude each other")
    if a.save:
        dest = os.path.abspath(a.save)
        if os.path.exists(dest) or os.path.exists(dest + ".partial"):
            ap.error("--save %s: it (or %s.partial) exists already" % (dest, dest))
        if not os.path.isdir(os.path.dirname(dest)):
            ap.error("--save %s: no folder %s" % (dest, os.path.dirname(dest)))
    if a.from_dir and not os.path.isfile(os.path.join(a.from_dir, "saved.json")):
        ap.error("--from %s: no saved.json there (made by --save)" % a.from_dir)
    d = Drill(a)

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    ok = False
    try:
        ok = d.run()
    except (RuntimeError, KeyboardInterrupt) as e:
        d.result["failure"] = str(e) or type(e).__name__
        log("FAILED:", d.result["failure"])
    finally:
        d.result["exit_codes"] = d.stop_all()
        d.result["logs"] = {i: os.path.join(d.cdir, "node%d" % i, "kyufud.log")
                            for i in (1, 2, 3)}
        with open(os.path.join(d.dir, "result.json"), "w") as f:
            json.dump(d.result, f, indent=1)
        if getattr(d, "samples", None) is not None:
            with open(os.path.join(d.dir, "samples.json"), "w") as f:
                json.dump(d.samples, f)
        print(json.dumps(d.result, indent=1))
    if ok and not a.keep:
        shutil.rmtree(d.dir)
        log("ok; folder removed (--keep keeps it)")
    else:
        log("folder kept:", d.dir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
