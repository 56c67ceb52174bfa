"""The SLA end to end, as an operator meets it (issue 10's "Done means"):

  kyufuctl cluster init (loopback ports, metrics ports), start the three
  nodes with the files it wrote, write a little, SIGKILL the leader; then

  - `kyufuctl --json sla report` lists that failover with cause crash, its
    term and an `rto_ms` (positive, at most the time the test saw pass plus
    one heartbeat interval; since the followers act on the dead leader's
    closed connections, docs/failover.md "Crash evidence", it can be far
    below an election timeout);
  - every live node's /metrics counts it from the replicated ledger:
    kyufu_sla_failovers{cause="crash"} >= 1, kyufu_sla_last_failover_term
    the failover's term, kyufu_sla_last_failover_rto_seconds its rto_ms,
    kyufu_slo_compliant{objective="rto"} and kyufu_alerts_open{alert="rto"}
    saying whether the target held; the killed node, restarted, says the
    same;
  - `kyufuctl sla check` exits 2 (CRITICAL, the rto alert) when the RTO was
    over the SLO's target, 0 (OK) when it held, and its line names the
    failover and the verdict.

Run twice: [rto] target_ms = 100 (the smallest the SLO file takes: over on
this VM, where a crash failover with the evidence takes 300-700 ms; if it
held, the test says so) and 30000 (held).

usage: test_sla_e2e.py KYUFUD KYUFUCTL"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import auth
import ports
import prom_text



def consecutive_free(n):
    """A base port with base .. base+n-1 all free on 127.0.0.1 (cluster init
    numbers each kind of port from a base)."""
    for _ in range(200):
        base = ports.free_ports(1)[0]
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no %d consecutive free ports" % n)


class Run:
    def __init__(self, kyufud, kyufuctl, target_ms):
        self.kyufud, self.kyufuctl = kyufud, kyufuctl
        self.tmp = tempfile.mkdtemp(prefix="kyufu-sla-e2e-", dir="/tmp")
        self.dir = os.path.join(self.tmp, "c")
        self.procs, self.logs = {}, {}
        base = consecutive_free(9)
        self.metrics = {i: base + 6 + i - 1 for i in (1, 2, 3)}
        self.api_base = base + 3
        os.environ.setdefault("KYUFU_CA_PASSPHRASE", "sla e2e CA passphrase")
        self.ctl(["cluster", "init", "--dir", self.dir,
                  "--raft-port-base", str(base),
                  "--api-port-base", str(base + 3),
                  "--metrics-port-base", str(base + 6)], json_out=False)
        slo = os.path.join(self.dir, "slo.conf")
        with open(slo) as f:
            text = f.read()
        text, k = re.subn(r"(?m)^target_ms = [0-9]+", "target_ms = %d"
                          % target_ms, text)
        assert k == 1, text
        with open(slo, "w") as f:
            f.write(text)
        self.conf = os.path.join(self.dir, "kyufuctl.conf")
        self.target_ms = target_ms
        # The first ID administrator: a bootstrap file whose temporary
        # password the test knows (init printed its own one-time one).
        self.admin_password = auth.stand_in_bootstrap(
            [os.path.join(self.dir, "node%d" % i, "data") for i in (1, 2, 3)])
        self.env = None  # kyufuctl's KYUFU_TOKEN once signed in

    def sign_in(self):
        """The administrator signs in (on the leader, found with a node
        certificate's Status probe), creates the operator ops1 and signs
        it in: kyufuctl runs as ops1 from here on."""
        import cluster  # noqa: E402 (grpcio stubs)
        s = cluster.stubs(self.tmp)
        cfg = dict(line.split(" = ", 1) for line in
                   open(self.conf).read().splitlines() if " = " in line)
        node = os.path.join(self.dir, "node1")
        leader, end = 0, time.monotonic() + 20
        while not leader:
            assert time.monotonic() < end, "no leader"
            probe = auth.Client(s, "127.0.0.1:%d" % self.api_base, cfg["ca"],
                                os.path.join(node, "node.pem"),
                                os.path.join(node, "node.key"))
            try:
                leader = s["service_pb2_grpc"].ClusterStub(probe.ch).Status(
                    s["service_pb2"].StatusRequest(), timeout=2).leader_id
            except Exception:
                time.sleep(0.1)
            finally:
                probe.close()
        cl = auth.Client(s, "127.0.0.1:%d" % (self.api_base + leader - 1),
                         cfg["ca"], cfg["cert"], cfg["key"])
        try:
            _, admin = cl.first_sign_in("admin", self.admin_password,
                                        wait_s=30)
            ops_temp = cl.create(admin, "ops1",
                                 [s["ledger_pb2"].ROLE_OPERATOR])
            _, ops = cl.first_sign_in("ops1", ops_temp)
        finally:
            cl.close()
        self.admin_env = dict(os.environ, KYUFU_TOKEN=admin)
        self.env = dict(os.environ, KYUFU_TOKEN=ops)

    def ctl(self, args, json_out=True, check=True, env=None):
        cmd = [self.kyufuctl]
        if hasattr(self, "conf"):
            cmd += ["--config", self.conf]
        if json_out:
            cmd.append("--json")
        p = subprocess.run(cmd + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60,
                           env=env or getattr(self, "env", None))
        if check:
            assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p

    def start(self, i):
        log = open(os.path.join(self.tmp, "node%d.log" % i), "a")
        self.logs[i] = log.name
        self.procs[i] = subprocess.Popen(
            [self.kyufud, "--config",
             os.path.join(self.dir, "node%d" % i, "kyufud.conf")],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def status(self):
        p = self.ctl(["cluster", "status", "--node-timeout-ms", "500"],
                     check=False)
        try:
            return json.loads(p.stdout)
        except ValueError:
            return None

    def wait(self, what, fn, timeout=20):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            last = fn()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s (last: %r)"
                             % (what, last))

    def leader(self, reachable=3, not_=None):
        def ok():
            st = self.status()
            if st and st.get("leader_id") and st.get("leader_id") != not_ \
                    and st.get("reachable") >= reachable:
                return st["leader_id"]
            return None
        return self.wait("a leader", ok)

    def scrape(self, i):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                    % self.metrics[i], timeout=5) as r:
            return prom_text.parse(r.read().decode())

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def sanitizer_clean(self):
        for i, path in self.logs.items():
            with open(path, errors="replace") as f:
                text = f.read()
            assert "Sanitizer" not in text and "runtime error" not in text, \
                (i, text[-4000:])


def value(fams, name, **labels):
    for lab, v in fams.get(name, {}).get("samples", {}).get(name, []):
        if all(lab.get(k) == want for k, want in labels.items()):
            return v
    return None


def metrics_count_it(run, i, f, held):
    fams = run.scrape(i)
    if not (value(fams, "kyufu_sla_failovers", cause="crash") or 0) >= 1:
        return None
    if value(fams, "kyufu_sla_last_failover_term") != f["term"]:
        return None
    assert fams["kyufu_sla_failovers"]["type"] == "gauge"
    rto = value(fams, "kyufu_sla_last_failover_rto_seconds")
    assert rto is not None and round(rto * 1000) == f["rto_ms"], (i, rto, f)
    assert value(fams, "kyufu_slo_rto_target_seconds") == \
        run.target_ms / 1000.0, i
    assert value(fams, "kyufu_slo_compliant", objective="rto") == \
        (1 if held else 0), (i, held)
    ratio = value(fams, "kyufu_availability_ratio")
    assert ratio is not None and 0 < ratio <= 1, (i, ratio)
    return fams


def one(kyufud, kyufuctl, target_ms):
    run = Run(kyufud, kyufuctl, target_ms)
    try:
        for i in (1, 2, 3):
            run.start(i)
        # A little writing: the first ID admin signs in and creates an
        # operator (who signs in), and a clerk through kyufuctl.
        run.sign_in()
        old = run.leader()
        run.ctl(["--as", "admin", "staff", "create", "--staff-id", "clerk1",
                 "--display-name", "Clerk", "--roles", "clerk"],
                env=run.admin_env)
        term0 = max(n.get("term", 0) for n in run.status()["nodes"]
                    if n.get("reachable"))
        t_kill = time.monotonic()
        run.procs[old].send_signal(signal.SIGKILL)
        run.procs[old].wait()
        new = run.leader(reachable=2, not_=old)

        def reported():
            doc = json.loads(run.ctl(["sla", "report"]).stdout)
            fs = [f for f in doc["failovers"]
                  if f["cause"] == "crash" and f["term"] > term0]
            return (doc, fs[0]) if fs else None
        doc, f = run.wait("the failover in sla report", reported)
        # With the killed node still down, sla check names it first, then
        # the last failover.
        p = run.ctl(["sla", "check"], json_out=False, check=False)
        silent = "1 of 3 nodes did not answer (127.0.0.1:%d)" % (
            run.api_base + old - 1)
        assert p.returncode in (1, 2) and silent in p.stdout, p.stdout
        assert p.stdout.index(silent) < p.stdout.index("last failover"), \
            p.stdout
        seen_ms = (time.monotonic() - t_kill) * 1000
        held = f["rto_ms"] <= target_ms
        print("target %d ms: failover term %d, %d -> %d, rto_ms %d (seen "
              "after %.0f ms); held: %s" % (target_ms, f["term"],
                                           f["old_leader_id"],
                                           f["new_leader_id"], f["rto_ms"],
                                           seen_ms, held))
        assert f["old_leader_id"] == old and f["new_leader_id"] == new, f
        assert 1 <= f["rto_ms"] <= seen_ms + 1000 + 200, \
            (f, seen_ms)
        assert f["rto_met"] == held, f
        assert doc["writes_lost"] == 0, doc
        # 30 s always holds; 100 ms (the smallest target the SLO file
        # takes) is over on this loaded VM (RTO 300-700 ms with the crash
        # evidence) but may hold on a quiet fast machine: every check below
        # follows `held`, and the over path is named when it did not run.
        if target_ms == 30000:
            assert held, (f, target_ms)
        elif held:
            print("note: RTO %d ms within %d ms: the over path not exercised"
                  % (f["rto_ms"], target_ms))

        for i in (1, 2, 3):
            if i != old:
                run.wait("node %d's /metrics to count it" % i,
                         lambda i=i: metrics_count_it(run, i, f, held), 10)
        # The evaluator runs every 250 ms: the alert follows the ledger's
        # figures within a second (docs/sla.md), not at the same instant.
        want_open = 0 if held else 1
        run.wait("node %d's rto alert to be %d" % (new, want_open),
                 lambda: value(run.scrape(new), "kyufu_alerts_open",
                               alert="rto", severity="critical")
                 == want_open, 2)

        # The killed node back (as systemd would): it reads the same ledger.
        run.start(old)
        run.leader(reachable=3)
        run.wait("the restarted node %d's /metrics to count it" % old,
                 lambda: metrics_count_it(run, old, f, held), 15)

        want = 0 if held else 2
        last = {}

        def check():
            p = run.ctl(["sla", "check"], json_out=False, check=False)
            last["p"] = p
            return p.returncode == want
        run.wait("sla check to exit %d" % want, check, 15)
        line = last["p"].stdout
        print("sla check: exit %d: %s" % (want, line.strip()))
        assert ("last failover (term %d, crash" % f["term"]) in line, line
        assert ("RTO %d ms" % f["rto_ms"]) in line, line
        assert ("within" if held else "OVER") in line, line
        assert line.startswith("SLA OK" if held else "SLA CRITICAL"), line
        if not held:
            assert "over the RTO target" in line or "rto" in line.lower(), line
        p = run.ctl(["sla", "check"], check=False)
        doc = json.loads(p.stdout)
        assert doc["exit_code"] == p.returncode, doc
    except Exception:
        for i, path in run.logs.items():
            with open(path, errors="replace") as fh:
                print("--- node %d\n%s" % (i, fh.read()[-3000:]))
        raise
    finally:
        run.close()
    run.sanitizer_clean()
    shutil.rmtree(run.tmp, ignore_errors=True)


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    t0 = time.monotonic()
    one(kyufud, kyufuctl, 100)
    one(kyufud, kyufuctl, 30000)
    print("ok (%.1f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
