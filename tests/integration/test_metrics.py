"""/metrics of three kyufud nodes (docs/metrics.md), scraped by a real
Prometheus (Debian's `prometheus`): every target up, the kyufu_* series
there; the listener's answers to hostile HTTP; after the leader is killed,
the new leader's failover counter has gone up.  Node 3 serves its metrics
over TLS with a client certificate required (Prometheus presents one).

usage: test_metrics.py KYUFUD"""
import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import cluster as C
import workload as W
from ports import free_ports
from prom_text import parse


def get(port, path="/metrics", raw=None, timeout=3.0):
    """(status code or None, body bytes) of one request; raw: bytes sent
    as they are instead of a GET."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw if raw is not None else
                  ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data.startswith(b"HTTP/1.1 "):
        return None, data  # closed without an HTTP answer
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def scrape(port):
    code, body = get(port)
    assert code == 200, (code, body[:200])
    return parse(body.decode())


def value(families, name, **labels):
    for lab, v in families[name]["samples"].get(name, []):
        if all(lab.get(k) == want for k, want in labels.items()):
            return v
    return None


def hostile(port):
    """Each refusal changes nothing and is counted by reason."""
    before = scrape(port)

    def refused(fam, reason):
        return value(fam, "kyufu_connections_refused_total", port="metrics",
                     reason=reason)

    assert get(port, raw=b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: 0\r\n\r\n")[0] == 405
    assert get(port, raw=b"DELETE / HTTP/1.1\r\n\r\n")[0] == 405
    assert get(port, "/")[0] == 404
    assert get(port, "/metricsX")[0] == 404
    assert get(port, "/metrics?x=1")[0] == 200
    assert get(port, raw=b"GET /metrics HTTP/2.0\r\n\r\n")[0] == 400
    assert get(port, raw=b"GET /metrics\r\n\r\n")[0] == 400
    assert get(port, raw=b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n"
               b"\r\nhello")[0] == 400
    assert get(port, raw=b"GET /metrics HTTP/1.1\r\nA: \x00\r\n\r\n")[0] == 400
    # A huge request line: 431 once 4 KiB are in, whatever follows.
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(b"GET /" + b"a" * 5000)
        answer = s.recv(4096)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    # Slow headers: the request never ends; closed at the header deadline
    # (2 s) without an answer.
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=6)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(0.5)
        s.sendall(b"Host: x\r\n")
        assert s.recv(4096) == b""
    finally:
        s.close()
    took = time.monotonic() - t0
    assert 1.5 < took < 5, took
    # Many connections at once: above the cap of 8 they are closed at once.
    socks = [socket.create_connection(("127.0.0.1", port), timeout=3)
             for _ in range(20)]
    closed = 0
    for s in socks:
        s.settimeout(0.3)
        try:
            if s.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
    for s in socks:
        s.close()
    assert closed >= 12, closed
    after = scrape(port)
    for reason, at_least in (("method", 2), ("not_found", 2),
                             ("bad_request", 4), ("too_large", 1),
                             ("timeout", 1), ("connections", 12)):
        got = refused(after, reason) - refused(before, reason)
        assert got >= at_least, (reason, got)
    print("hostile HTTP: refused and counted")


def tls_scrape(c, port):
    ctx = ssl.create_default_context(cafile=c.ca)
    ctx.load_cert_chain(c.client_cert, c.client_key)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:100]
    return parse(data.partition(b"\r\n\r\n")[2].decode())


def served_cn(c, port):
    ctx = ssl.create_default_context(cafile=c.ca)
    ctx.load_cert_chain(c.client_cert, c.client_key)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
    return subject["commonName"]


def rotate(c, i, port):
    """A new certificate renamed into place and SIGHUP: the metrics port
    serves it to the next connection (docs/metrics.md)."""
    assert served_cn(c, port) == "kyufu-node-%d" % i
    d = os.path.join(c.dir, "rotated")
    os.makedirs(d)
    key, crt = C.make_cert(d, "node", c.ca_key, c.ca,
                           "kyufu-node-%d-2" % i, node_id=i)
    nd = os.path.dirname(c.conf[i])
    for src, name in ((key, "node.key"), (crt, "node.pem")):
        shutil.copyfile(src, os.path.join(nd, name + ".new"))
        os.chmod(os.path.join(nd, name + ".new"), 0o600)  # kyufud refuses
        os.rename(os.path.join(nd, name + ".new"), os.path.join(nd, name))
    os.kill(c.procs[i].pid, signal.SIGHUP)
    end = time.monotonic() + 10
    while '"msg":"TLS files reloaded"' not in open(c.log_path(i)).read():
        assert time.monotonic() < end, "no reload:\n" + c.logs()
        time.sleep(0.05)
    assert served_cn(c, port) == "kyufu-node-%d-2" % i
    tls_scrape(c, port)
    print("TLS metrics: certificate rotated on SIGHUP")


def tls_checks(c, port):
    tls_scrape(c, port)
    # Without a client certificate: refused in the handshake.
    bare = ssl.create_default_context(cafile=c.ca)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            with bare.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                got = s.recv(100)
        assert got == b"", got
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    # Plain HTTP to the TLS port: the handshake fails, nothing is served.
    code, body = get(port)
    assert code is None, (code, body[:100])
    fam = tls_scrape(c, port)
    assert value(fam, "kyufu_connections_refused_total", port="metrics",
                 reason="tls") >= 2, fam["kyufu_connections_refused_total"]
    print("TLS metrics: client certificate required")


class Prometheus:
    def __init__(self, d, targets, tls_target, c):
        self.dir = os.path.join(d, "prometheus")
        os.makedirs(self.dir)
        self.port = free_ports(1)[0]
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                "scrape_configs:\n"
                "  - job_name: kyufu\n"
                "    static_configs:\n"
                "      - targets: [%s]\n"
                "  - job_name: kyufu-tls\n"
                "    scheme: https\n"
                "    tls_config:\n"
                "      ca_file: %s\n      cert_file: %s\n      key_file: %s\n"
                "    static_configs:\n"
                "      - targets: ['%s']\n"
                % (", ".join("'%s'" % t for t in targets), c.ca,
                   c.client_cert, c.client_key, tls_target))
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(
            ["prometheus", "--config.file=" + conf,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--log.level=warn"],
            stdout=self.log, stderr=self.log)
        atexit.register(self.close)  # by PID, whatever happens

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                doc = json.load(r)
        except OSError:
            return None
        assert doc["status"] == "success", doc
        return {(m["metric"].get("instance"), m["metric"].get("role")):
                float(m["value"][1]) for m in doc["data"]["result"]}

    def wait(self, q, ok, timeout, what):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            last = self.query(q)
            if last is not None and ok(last):
                return last
            time.sleep(0.25)
        raise AssertionError("%s: %s gave %s\n%s" % (
            what, q, last, open(self.log.name).read()[-3000:]))

    def close(self):
        if self.log.closed:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main():
    if shutil.which("prometheus") is None:
        C.skip("Debian's prometheus is not installed (scripts/setup)")
    mports = free_ports(3)
    extra = {i: "[node]\nmetrics_listen = 127.0.0.1:%d\n" % mports[i - 1]
             for i in (1, 2, 3)}
    extra[3] += "metrics_tls = true\nmetrics_tls_client_cert = true\n"
    c = C.Cluster(sys.argv[1], election_ms=1000, heartbeat_ms=100,
                  extra_conf=extra)
    prom = None
    try:
        c.start_all()
        leader = c.wait_leader(15)
        inst = {i: "127.0.0.1:%d" % mports[i - 1] for i in (1, 2, 3)}
        prom = Prometheus(c.dir, [inst[1], inst[2]], inst[3], c)
        led = W.Ledger(c)
        led.setup()

        fam = scrape(mports[0] if leader != 1 else mports[1])
        assert value(fam, "kyufu_raft_role", role="follower") == 1
        tls_checks(c, mports[2])
        rotate(c, 3, mports[2])
        hostile(mports[0])

        # Prometheus sees all three nodes up, and the raft series.
        prom.wait("up", lambda r: len(r) == 3 and all(
            v == 1 for v in r.values()), 20, "every target up")
        roles = prom.wait('kyufu_raft_role == 1',
                          lambda r: len(r) == 3, 10, "a role per node")
        assert sorted(role for _, role in roles) == \
            ["follower", "follower", "leader"], roles
        assert (inst[leader], "leader") in roles, (leader, roles)
        prom.wait("kyufu_raft_term", lambda r: len(r) == 3 and all(
            v >= 1 for v in r.values()), 10, "terms")
        prom.wait("kyufu_raft_applied_index", lambda r: len(r) == 3 and all(
            v >= 1 for v in r.values()), 10, "applied indexes")
        prom.wait("kyufu_commit_latency_seconds_count", lambda r: sum(
            r.values()) >= 1, 10, "commit latency recorded on the leader")
        # Every node probes its work pool's queue (node/work_pool.h) from
        # its stall tick, ten times a second.
        prom.wait("kyufu_work_queue_wait_seconds_count", lambda r: len(r) == 3
                  and all(v >= 5 for v in r.values()), 10,
                  "pool probes on every node")

        # The first election is no failover.
        before = prom.query("kyufu_failovers_total")
        assert before and sum(before.values()) == 0, before

        # Kill the leader: the new one counts a failover, and its RTO view
        # shows once it has applied a write under its term.
        t_kill = time.monotonic()
        c.kill(leader)
        c.wait_exit(leader, 10)
        new = c.wait_leader(15, exclude=(leader,))
        led.clerk.node = new
        W.must(led.clerk.call("RegisterHousehold", led.L.RegisterHousehold(
            household=led.household("H-M"))), "write after failover")
        t_ack = time.monotonic()
        prom.wait('kyufu_failovers_total{instance="%s"}' % inst[new],
                  lambda r: sum(r.values()) >= 1, 10,
                  "the new leader's failover counter")
        rto = prom.wait('kyufu_failover_last_rto_seconds{instance="%s"}'
                        % inst[new], lambda r: len(r) == 1, 10,
                        "the new leader's view of the RTO")
        rto = list(rto.values())[0]
        # From the dead leader's last sign of life here to the first write
        # under the new term (the write above, or a node's own command
        # before it): no longer than what this test saw from the kill to
        # its write's answer plus one heartbeat interval (the last sign of
        # life may come up to one before the kill) and a second of slack;
        # and not near zero (it once ended at an old-term entry the new
        # leader committed: 0.004 s).  Not at least an election timeout:
        # a follower that sees the dead leader's connection close elects
        # at once (docs/failover.md "Crash evidence": ~0.15 s here).
        assert 0.02 < rto < min(15, t_ack - t_kill + 1.1), (
            rto, t_ack - t_kill)
        prom.wait('up{instance="%s"}' % inst[leader],
                  lambda r: list(r.values()) == [0], 10,
                  "the killed node down")
        print("prometheus: 3 targets up, failover counted on node %d, "
              "its RTO view %.3f s" % (new, rto))
        prom.close()
        prom = None
        # A stop with a half-sent request open on each metrics port: the
        # listener closes it with the rest (clean exit, nothing leaked).
        idle = []
        for i in (1, 2, 3):
            if c.alive(i):
                s = socket.create_connection(("127.0.0.1", mports[i - 1]),
                                             timeout=3)
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
                idle.append(s)
        c.stop_clean()
        for s in idle:
            s.close()
        print("metrics: ok")
    except Exception:
        print(c.logs())
        raise
    finally:
        if prom is not None:
            prom.close()
        c.close()


if __name__ == "__main__":
    main()
