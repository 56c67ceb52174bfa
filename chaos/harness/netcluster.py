"""tests/integration/cluster.Cluster with each node in its own network
namespace (harness.netns): node addresses 127.77.0.N with fixed ports,
node certificates naming them, kyufud started with `ip netns exec` (which
execs: the PID is kyufud's, so kill() and close() act on it directly).
The harness process itself runs in the run's client namespace."""
import os
import re
import subprocess

import cluster as C
from harness import netns

_ADDR = re.compile(r"127\.0\.0\.1:(\d+)\b")


class NetCluster(C.Cluster):
    def __init__(self, kyufud, net, **kw):
        super().__init__(kyufud, n=net.n, **kw)
        self.net = net
        moved = {}
        for i in range(1, self.n + 1):
            a = net.addr(i)
            moved[self.raft[i]] = "%s:%d" % (a, netns.RAFT_PORT)
            moved[self.api[i]] = "%s:%d" % (a, netns.API_PORT)
            self.raft[i] = moved[self.raft[i]]
            self.api[i] = moved[self.api[i]]
        for i in range(1, self.n + 1):
            with open(self.conf[i]) as f:
                text = f.read()
            text = _ADDR.sub(lambda m: moved[m.group(0)], text)
            with open(self.conf[i], "w") as f:
                f.write(text)
            nd = os.path.join(self.dir, "node%d" % i)
            C.make_cert(nd, "node", self.ca_key, self.ca,
                        "kyufu-node-%d" % i, node_id=i,
                        ips=(net.addr(i), "127.0.0.1"))

    def start(self, i):
        assert i not in self.procs or self.procs[i].poll() is not None
        env = dict(os.environ)
        env.update(self.node_env.get(i, {}))  # fault modules' (faults.py)
        with open(self.log_path(i), "a") as log:
            self.procs[i] = subprocess.Popen(
                ["ip", "netns", "exec", self.net.node(i), self.kyufud,
                 "--config", self.conf[i]], stdout=log, stderr=log, env=env)
