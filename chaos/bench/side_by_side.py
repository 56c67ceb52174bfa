#!/usr/bin/python3
"""kyufu against etcd 3.4, side by side on one machine (issue 9, docs/benchmarks.md).

Starts, in one temporary folder (/tmp/kyufu-sbs-*):
  - a kyufu cluster: three kyufud from `kyufuctl cluster init` (election
    1,000 ms, heartbeat 100 ms, mutual TLS between peers, TLS on the API),
    staff signed in by scripts/accounts as kyufu-bench-load needs them;
  - an etcd cluster: three Debian `etcd` members on loopback, TLS on the
    client port, mutual TLS between peers (certificates made here with
    openssl, ECDSA P-256), election 1,000 ms, heartbeat 100 ms, etcd's
    default durability (fsync of its WAL per batch).

Then, for each K of --inflight, --rounds rounds of A B (kyufu, then etcd):
each run is one client process for --duration-s seconds at K calls in
flight (kyufu-bench-load: RegisterHousehold + SubmitApplication +
ApproveApplication chains; kyufu-bench-etcd: KV.Put of a 64-byte value),
both through api/'s C gRPC client; each server's CPU time (user + system of
its three processes, /proc/PID/stat) is read before and after the run.

Then the no-replication ceiling: kyufu-bench-scale --sync --no-snapshot, one
process applying the same command kinds to one LMDB, synced per entry as
the node's store, with the batch size (commands per Raft entry) kyufu
reached at that K.

Then failover, both systems the same way (failover_cases.py): a probe per
system (one write in flight, the client's retry rule) runs; each trial
finds the leader from its metrics, sends it SIGKILL (crash) or SIGSTOP
(silent leader) and times the signal to the acknowledgement of the first
write SENT after it (a write in flight at the kill may be acknowledged by a
follower that applied the old leader's last commit: etcd followers serve
writes by forwarding), or sends SIGTERM / runs kyufuctl's
transfer-leadership (planned hand-over) and takes the longest gap between
two acknowledged writes.  Trials of the cases and systems are interleaved;
the node is then restarted or resumed and the cluster left to settle.

Then, with --soak-s S, the snapshot and memory targets: chaos/bench/soak.py
(a kyufu cluster of its own under a steady load for S seconds, a follower
stopped twice so it is sent a snapshot) once the six servers are stopped.

Writes result.json and report.md into the folder (and --out DIR), prints
the markdown.  The servers' data is removed at the end unless --keep or a
failure (then configs and logs stay for a look).
A benchmark: reads the wall clock, takes minutes; never in a test suite.

usage: chaos/bench/side_by_side.py --build BUILD [--duration-s 5]
         [--inflight 1,16,64,256,1024] [--rounds 2] [--trials 3]
         [--election-ms 1000] [--settle-s 3] [--out DIR] [--keep]
         [--skip-failover] [--skip-sweep] [--cases kill,stop,term,transfer]
         (every case by default) [--soak-s 3600]
         [--check-args]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import ports  # noqa: E402
import procs  # noqa: E402  (chaos/bench/procs.py, this script's folder)
import failover_cases  # noqa: E402  (the same folder)
import targets  # noqa: E402  (the same folder)

TICK = os.sysconf("SC_CLK_TCK")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def log(msg):
    print("side-by-side: " + msg, file=sys.stderr, flush=True)


def cpu_ms(pid):
    """user + system CPU time of a process, in ms (0 if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0.0
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / TICK


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Proc:
    """A server process we started, restartable with the same command."""

    def __init__(self, name, argv, logpath, metrics_url, leader_line):
        self.name, self.argv, self.logpath = name, argv, logpath
        self.metrics_url, self.leader_line = metrics_url, leader_line
        self.p = None

    def start(self):
        out = open(self.logpath, "ab")
        self.p = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        out.close()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def is_leader(self):
        try:
            return any(line.strip() == self.leader_line
                       for line in http_get(self.metrics_url, 1).splitlines())
        except Exception:
            return False

    def stop(self):
        if self.p is None:
            return
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGCONT)  # a stopped one, resumed
            procs.stop(self.p, 15)
        self.p = None


class System:
    """Three server processes of one system and how to load and probe it."""

    def __init__(self, name, procs):
        self.name, self.procs = name, procs

    def cpu(self):
        return sum(cpu_ms(p.p.pid) for p in self.procs if p.alive())

    def leader(self, timeout=60, exclude=()):
        """Index of the one process whose metrics say leader."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ls = [i for i, p in enumerate(self.procs)
                  if i not in exclude and p.alive() and p.is_leader()]
            if len(ls) == 1:
                return ls[0]
            time.sleep(0.05)
        raise RuntimeError("%s: no single leader within %d s" % (self.name, timeout))

    def stop(self):
        for p in self.procs:
            p.stop()


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], r.returncode,
                                                  (r.stderr or r.stdout)[-2000:]))
    return r.stdout


# ---------------------------------------------------------------- kyufu

def start_kyufu(a, d):
    kd = os.path.join(d, "kyufu")
    ctl = os.path.join(a.build, "client", "kyufuctl")
    kyufud = os.path.join(a.build, "node", "kyufud")
    # cluster init takes port bases: three consecutive free ports each.
    bases = ports_consecutive(3)
    env = dict(os.environ, KYUFU_CA_PASSPHRASE="side-by-side-bench-" + str(os.getpid()))
    init = run([ctl, "cluster", "init", "--dir", kd, "--nodes", "3",
                "--raft-port-base", str(bases[0]), "--api-port-base", str(bases[1]),
                "--metrics-port-base", str(bases[2])], env=env)
    procs = []
    for i in range(1, 4):
        conf = os.path.join(kd, "node%d" % i, "kyufud.conf")
        procs.append(Proc("kyufud%d" % i, [kyufud, "--config", conf],
                          os.path.join(kd, "node%d.log" % i),
                          "http://127.0.0.1:%d/metrics" % (bases[2] + i - 1),
                          'kyufu_raft_role{role="leader"} 1'))
    for p in procs:
        p.start()
    s = System("kyufu", procs)
    s.conf = os.path.join(kd, "kyufuctl.conf")
    s.tokens = os.path.join(kd, "tokens")
    run([os.path.join(ROOT, "scripts", "accounts"), ctl, s.conf, kd,
         "bench-clerk=clerk", "bench-approver=approver", "bench-operator=operator"],
        input=init, env=env)
    s.leader(60)
    return s


def ports_consecutive(n_groups):
    """n_groups bases, each of three consecutive free loopback ports."""
    out = []
    while len(out) < n_groups:
        p = ports.free_ports(3)
        if p[1] == p[0] + 1 and p[2] == p[0] + 2:
            out.append(p[0])
    return out


def kyufu_load_cmd(a, s, k, setup):
    t = s.tokens
    cmd = [os.path.join(a.build, "chaos", "bench", "kyufu-bench-load"),
           "--config", s.conf, "--clerk-token-file", os.path.join(t, "bench-clerk"),
           "--approver-token-file", os.path.join(t, "bench-approver"),
           "--operator-token-file", os.path.join(t, "bench-operator"),
           "--households", "100000000", "--inflight", str(k), "--approve",
           "--duration-s", str(a.duration_s)]
    if not setup:
        cmd.append("--no-setup")
    return cmd


def kyufu_probe_cmd(a, s, path):
    t = s.tokens
    return [os.path.join(a.build, "chaos", "bench", "kyufu-bench-load"),
            "--config", s.conf, "--clerk-token-file", os.path.join(t, "bench-clerk"),
            "--no-setup", "--probe", path]


def kyufu_transfer_cmd(a, s):
    """An operator's planned hand-over (the "transfer" failover case)."""
    return [os.path.join(a.build, "client", "kyufuctl"), "--config", s.conf,
            "--token-file", os.path.join(s.tokens, "bench-operator"),
            "cluster", "transfer-leadership"]


# ---------------------------------------------------------------- etcd

OPENSSL_EXT = """[v3]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
"""


def make_etcd_certs(d):
    """A CA and one certificate per member (server and peer client), ECDSA P-256."""
    os.makedirs(d, mode=0o700)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key])
    run(["openssl", "req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", "2",
         "-subj", "/CN=side-by-side etcd CA", "-out", ca])
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write(OPENSSL_EXT)
    for i in range(1, 4):
        key, csr, crt = (os.path.join(d, "e%d.%s" % (i, x)) for x in ("key", "csr", "pem"))
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
        run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=etcd-e%d" % i, "-out", csr])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext,
             "-extensions", "v3", "-out", crt])
    return ca


def start_etcd(a, d):
    ed = os.path.join(d, "etcd")
    os.makedirs(ed)
    ca = make_etcd_certs(os.path.join(ed, "pki"))
    client, peer, met = ports.free_ports(3), ports.free_ports(3), ports.free_ports(3)
    cluster = ",".join("e%d=https://127.0.0.1:%d" % (i + 1, peer[i]) for i in range(3))
    procs = []
    for i in range(3):
        n = i + 1
        crt, key = (os.path.join(ed, "pki", "e%d.%s" % (n, x)) for x in ("pem", "key"))
        argv = [ETCD, "--name", "e%d" % n, "--data-dir", os.path.join(ed, "e%d" % n),
                "--listen-client-urls", "https://127.0.0.1:%d" % client[i],
                "--advertise-client-urls", "https://127.0.0.1:%d" % client[i],
                "--listen-peer-urls", "https://127.0.0.1:%d" % peer[i],
                "--initial-advertise-peer-urls", "https://127.0.0.1:%d" % peer[i],
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "side-by-side",
                "--listen-metrics-urls", "http://127.0.0.1:%d" % met[i],
                "--cert-file", crt, "--key-file", key,
                "--peer-cert-file", crt, "--peer-key-file", key,
                "--peer-trusted-ca-file", ca, "--peer-client-cert-auth",
                "--election-timeout", str(a.election_ms),
                "--heartbeat-interval", str(max(10, a.election_ms // 10)),
                "--logger", "zap", "--log-level", "warn"]
        procs.append(Proc("etcd%d" % n, argv, os.path.join(ed, "e%d.log" % n),
                          "http://127.0.0.1:%d/metrics" % met[i], "etcd_server_is_leader 1"))
    for p in procs:
        p.start()
    s = System("etcd", procs)
    s.ca = ca
    s.endpoints = ["127.0.0.1:%d" % c for c in client]
    s.leader(60)
    return s


def etcd_endpoints(s, first):
    return ",".join([s.endpoints[first]] + [e for i, e in enumerate(s.endpoints)
                                            if i != first])


def etcd_load_cmd(a, s, k):
    return [os.path.join(a.build, "chaos", "bench", "kyufu-bench-etcd"),
            "--endpoints", etcd_endpoints(s, s.leader(30)), "--ca", s.ca,
            "--inflight", str(k), "--duration-s", str(a.duration_s), "--value-bytes", "64"]


def etcd_probe_cmd(a, s, path):
    return [os.path.join(a.build, "chaos", "bench", "kyufu-bench-etcd"),
            "--endpoints", ",".join(s.endpoints), "--ca", s.ca, "--probe", path]


# ---------------------------------------------------------------- phases

def one_run(system, cmd):
    """Run a load client; its JSON's one run, with the servers' CPU time."""
    c0, t0 = system.cpu(), time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    c1, wall = system.cpu(), time.monotonic() - t0
    if r.returncode == 2 or not r.stdout.strip():
        raise RuntimeError("%s: %s" % (cmd[0], r.stderr[-2000:]))
    run_ = json.loads(r.stdout)["runs"][0]
    run_["exit"] = r.returncode
    run_["server_cpu_ms"] = round(c1 - c0, 1)
    run_["wall_s"] = round(wall, 2)
    run_["cpu_ms_per_1000_writes"] = (round((c1 - c0) * 1000.0 / run_["writes"], 1)
                                      if run_["writes"] else None)
    return run_


def sweep(a, ky, et):
    out = {}
    first = True
    for k in a.ks:
        rows = {"kyufu": [], "etcd": []}
        for rnd in range(a.rounds):
            log("K=%d round %d: kyufu" % (k, rnd + 1))
            rows["kyufu"].append(one_run(ky, kyufu_load_cmd(a, ky, k, first)))
            first = False
            log("K=%d round %d: etcd" % (k, rnd + 1))
            rows["etcd"].append(one_run(et, etcd_load_cmd(a, et, k)))
        out[k] = rows
    return out


def ceiling(a, d, sw):
    """kyufu-bench-scale at the batch size kyufu reached at each K."""
    out = {}
    for k in a.ks:
        runs = sw[k]["kyufu"]
        factors = [r.get("group_commit_factor") or 1.0 for r in runs]
        batch = max(1, int(round(statistics.mean(factors))))
        writes = statistics.mean(r["writes"] for r in runs)
        households = max(200, int(writes / 2.5))
        dd = os.path.join(d, "ceiling-k%d" % k)
        os.makedirs(dd)
        log("ceiling K=%d: batch %d, %d households" % (k, batch, households))
        r = json.loads(run([os.path.join(a.build, "chaos", "bench", "kyufu-bench-scale"),
                            "--dir", dd, "--households", str(households), "--batch",
                            str(batch), "--sync", "--no-snapshot"]))
        shutil.rmtree(dd, ignore_errors=True)
        out[k] = r
    return out


# ---------------------------------------------------------------- report

def fmt(x, nd=0):
    if x is None:
        return "–"
    return ("{:,.%df}" % nd).format(x)


def sweep_header(a, L):
    L.append("Each cell: round 1 / round 2 / ... (interleaved A B A B, %.0f s per run)."
             % a.duration_s)
    L.append("")
    L.append("| K | kyufu writes/s | etcd puts/s | kyufu ÷ etcd (median) | kyufu p50 ms | "
             "etcd p50 ms | kyufu p99 ms | etcd p99 ms | kyufu CPU ms / 1,000 writes | "
             "etcd CPU ms / 1,000 puts | kyufu commands per entry | ceiling commands/s "
             "(batch) | kyufu ÷ ceiling |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def report(a, res):
    sw, ceil = res["sweep"], res.get("ceiling", {})
    L = []
    if not sw:
        L.append("No load sweep (--skip-sweep).")
    else:
        sweep_header(a, L)
    for k in (a.ks if sw else []):
        ky, et = sw[k]["kyufu"], sw[k]["etcd"]

        def j(rows, f, nd=0):
            return " / ".join(fmt(f(r), nd) for r in rows)
        kr = statistics.median(r["commands_per_s"] for r in ky)
        er = statistics.median(r["commands_per_s"] for r in et)
        c = ceil.get(k)
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            fmt(k), j(ky, lambda r: r["commands_per_s"]), j(et, lambda r: r["commands_per_s"]),
            fmt(kr / er if er else None, 2),
            j(ky, lambda r: r["latency_ms"]["p50"], 1), j(et, lambda r: r["latency_ms"]["p50"], 1),
            j(ky, lambda r: r["latency_ms"]["p99"], 1), j(et, lambda r: r["latency_ms"]["p99"], 1),
            j(ky, lambda r: r["cpu_ms_per_1000_writes"]),
            j(et, lambda r: r["cpu_ms_per_1000_writes"]),
            j(ky, lambda r: r.get("group_commit_factor"), 1),
            "%s (%d)" % (fmt(c["commands_per_s"]), c["batch_commands"]) if c else "–",
            fmt(100.0 * kr / c["commands_per_s"], 0) + " %" if c else "–"))
    bad = [(s, k, r["writes"] - r["ok"]) for k in sw for s in ("kyufu", "etcd")
           for r in sw[k][s] if r["writes"] != r["ok"] or r.get("errors")]
    L.append("")
    L.append("Writes not answered OK: %s." % (
        ", ".join("%s K=%d: %d" % b for b in bad) if bad else "none"))
    fo = res.get("failover")
    L.append("")
    L.append("Targets (issue 9; chaos/bench/targets.py):")
    L.append("")
    L.extend(targets.markdown(targets.judge(res)))
    if fo:
        L.append("")
        L.append("| failover (election %d ms) | trials | median ms | p90 ms | max ms | all ms |"
                 % a.election_ms)
        L.append("|---|---|---|---|---|---|")
        what = {"kill": "SIGKILL of the leader: signal -> first write sent after it acked",
                "stop": "SIGSTOP of the leader: signal -> first write sent after it acked",
                "term": "SIGTERM of the leader (hand-over): longest write gap",
                "transfer": "transfer-leadership: longest write gap"}
        for how in failover_cases.CASES:
            for sysname in ("kyufu", "etcd"):
                key = "%s %s" % (sysname, how)
                f = fo.get(key)
                if f and "trials" not in f:
                    L.append("| %s | failed: %s | | | | |" % (key, f["error"]))
                elif f:
                    L.append("| %s %s | %d | %s | %s | %s | %s |" % (
                        sysname, what[how], f["trials"], fmt(f["median"]), fmt(f["p90"]),
                        fmt(f["max"]), ", ".join(fmt(x) for x in f["ms"])
                        + ("; stopped %s" % f["stopped"] if f.get("stopped") else "")
                        + ("; then failed: %s" % f["error"] if f.get("error") else "")))
                    if f.get("baseline"):
                        bl = f["baseline"]
                        L.append("| %s, baseline: same statistic, same-length window "
                                 "before the signal | %d | %s | %s | %s | |" % (
                                     key, f["trials"],
                                     fmt(bl["median"]), fmt(bl["p90"]), fmt(bl["max"])))
    return "\n".join(L) + "\n"


def soak(a, d):
    """chaos/bench/soak.py for --soak-s seconds (its defaults otherwise);
    its result.json, or {"error": ...}."""
    out = os.path.join(d, "soak")
    log("soak: %d s" % a.soak_s)
    r = subprocess.run([sys.executable, os.path.join(HERE, "soak.py"), "--build", a.build,
                        "--duration-s", str(a.soak_s), "--out", out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with open(os.path.join(out, "result.json")) as f:
            res = json.load(f)
    except (OSError, ValueError):
        return {"error": "soak.py exit %d: %s" % (r.returncode, r.stderr[-1000:])}
    if r.returncode != 0:
        res["error"] = "soak.py exit %d (writes not all answered OK)" % r.returncode
    return res


def machine():
    m = {"nproc": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        m["etcd_version"] = run([ETCD, "--version"]).splitlines()[0]
    except Exception as e:  # noqa: BLE001
        m["etcd_version"] = str(e)
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            m["cpu"] = line.split(":", 1)[1].strip()
            break
    return m


def bench_limit(name):
    """A bound of the load clients (bench_driver.h), which refuse past it:
    checked here before the clusters start, from the one definition."""
    with open(os.path.join(HERE, "bench_driver.h")) as f:
        m = re.search(r"#define %s (\d+)u" % name, f.read())
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--duration-s", type=float, default=5.0)
    ap.add_argument("--inflight", default="1,16,64,256,1024")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--election-ms", type=int, default=1000)
    ap.add_argument("--settle-s", type=float, default=3.0)
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-failover", action="store_true")
    # The snapshot and memory targets: chaos/bench/soak.py for S seconds
    # after the rest (0: not run; the targets say "not measured").
    ap.add_argument("--soak-s", type=int, default=0)
    # Failover only: no load sweep, no ceiling (docs/failover.md's runs).
    ap.add_argument("--skip-sweep", action="store_true")
    # Which failover cases (failover_cases.py): kill (SIGKILL), stop
    # (SIGSTOP), term (SIGTERM: hand-over), transfer (kyufuctl), a comma list.
    ap.add_argument("--cases", default="kill,stop,term,transfer")
    ap.add_argument("--check-args", action="store_true",
                    help="check the other arguments and exit (chaos/bench/run, before it builds)")
    a = ap.parse_args()
    try:
        a.ks = [int(x) for x in a.inflight.split(",")]
    except ValueError:
        ap.error("--inflight: a comma list of integers")
    k_max = bench_limit("KYUFU_BENCH_INFLIGHT_MAX")
    if not a.ks or any(k < 1 or k > k_max for k in a.ks):
        ap.error("--inflight: each K in 1..%d" % k_max)
    if a.rounds < 1 or a.trials < 0:
        ap.error("--rounds >= 1, --trials >= 0")
    s_max = bench_limit("KYUFU_BENCH_DURATION_S_MAX")
    if not 0 < a.duration_s <= s_max:
        ap.error("--duration-s: a number of seconds in (0, %d]" % s_max)
    if not 0 <= a.settle_s <= 600:
        ap.error("--settle-s: 0..600 seconds")
    if a.soak_s != 0 and not 60 <= a.soak_s <= 86400:
        ap.error("--soak-s: 0 (no soak) or 60..86400 seconds")
    if a.out and os.path.exists(a.out) and not os.path.isdir(a.out):
        ap.error("--out: %s is not a folder" % a.out)
    a.cases = a.cases.split(",")
    if not a.cases or any(c not in failover_cases.CASES for c in a.cases) or \
            len(set(a.cases)) != len(a.cases):
        ap.error("--cases: a comma list of distinct cases among %s"
                 % ",".join(failover_cases.CASES))
    if a.election_ms != 1000:
        ap.error("--election-ms: only 1000 (kyufuctl cluster init's value) for now")
    if a.check_args:
        return
    a.build = os.path.abspath(a.build)
    for exe in ("node/kyufud", "client/kyufuctl", "chaos/bench/kyufu-bench-load",
                "chaos/bench/kyufu-bench-etcd", "chaos/bench/kyufu-bench-scale"):
        if not os.access(os.path.join(a.build, exe), os.X_OK):
            ap.error("--build: no %s in %s (chaos/bench/run builds it)" % (exe, a.build))
    d = tempfile.mkdtemp(prefix="kyufu-sbs-")
    log("folder %s" % d)
    res = {"machine": machine(), "args": {k: v for k, v in vars(a).items()}}
    ky = et = None
    ok = False
    try:
        ky = start_kyufu(a, d)
        et = start_etcd(a, d)
        if a.skip_sweep:
            res["sweep"], res["ceiling"] = {}, {}
        else:
            res["sweep"] = sweep(a, ky, et)
            res["ceiling"] = ceiling(a, d, res["sweep"])
        if not a.skip_failover and a.trials > 0:
            res["failover"] = failover_cases.run_cases(a, d, [
                (ky, lambda s, path: kyufu_probe_cmd(a, s, path), kyufu_transfer_cmd(a, ky)),
                (et, lambda s, path: etcd_probe_cmd(a, s, path), None)], a.cases)
        res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        ok = True
    finally:
        for s in (ky, et):
            if s is not None:
                s.stop()
        if not ok:
            log("failed; logs and configs kept in %s" % d)
    if ok and a.soak_s > 0:
        # After the six servers are gone: a cluster of its own for an hour.
        res["soak"] = soak(a, d)
    # JSON keys must be strings.
    res["sweep"] = {str(k): v for k, v in res["sweep"].items()}
    res["ceiling"] = {str(k): v for k, v in res["ceiling"].items()}
    md = report(a, {"sweep": {int(k): v for k, v in res["sweep"].items()},
                    "ceiling": {int(k): v for k, v in res["ceiling"].items()},
                    "soak": res.get("soak"),
                    "failover": res.get("failover")})
    for folder in [d] + ([a.out] if a.out else []):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "result.json"), "w") as f:
            json.dump(res, f, indent=1)
        with open(os.path.join(folder, "report.md"), "w") as f:
            f.write(md)
    print(md)
    if ok and not a.keep:
        # The servers' data (GBs at long runs) goes; results and probes stay.
        for sub in ("kyufu", "etcd"):
            shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
    log("result.json and report.md in %s%s" % (d, " and " + a.out if a.out else ""))


if __name__ == "__main__":
    main()
