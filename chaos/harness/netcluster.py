"""tests/integration/cluster.Cluster with each node in its own network
namespace (harness.netns): node addresses 127.77.0.S with fixed ports (S
the node's namespace slot), node certificates naming them, kyufud started
with `ip netns exec` (which execs: the PID is kyufud's, so kill() and
close() act on it directly).  The harness process itself runs in the run's
client namespace.

Membership can change (the replace-node fault): ids() are the current
members (n of them, always), each in slot[id]; a node that joins gets a
new id (next_id) and the free slot; a removed node keeps its id, its
process handle (stopped) and its log, which may move (moved[id])."""
import os
import re
import subprocess

import cluster as C
from harness import netns, scrub

_ADDR = re.compile(r"127\.0\.0\.1:(\d+)\b")


class NetCluster(C.Cluster):
    def __init__(self, kyufud, net, **kw):
        super().__init__(kyufud, n=net.n, **kw)
        self.net = net
        self.members = list(range(1, self.n + 1))
        self.slot = {i: i for i in self.members}
        self.next_id = self.n + 1
        self.moved = {}  # removed node id: its folder's new place
        moved = {}
        for i in range(1, self.n + 1):
            a = self.addr(i)
            moved[self.raft[i]] = "%s:%d" % (a, netns.RAFT_PORT)
            moved[self.api[i]] = "%s:%d" % (a, netns.API_PORT)
            self.raft[i] = moved[self.raft[i]]
            self.api[i] = moved[self.api[i]]
        for i in range(1, self.n + 1):
            with open(self.conf[i]) as f:
                text = f.read()
            text = _ADDR.sub(lambda m: moved[m.group(0)], text)
            text += scrub.CONF  # docs/scrub.md: a scrub every few seconds
            with open(self.conf[i], "w") as f:
                f.write(text)
            nd = os.path.join(self.dir, "node%d" % i)
            C.make_cert(nd, "node", self.ca_key, self.ca,
                        "kyufu-node-%d" % i, node_id=i,
                        ips=(self.addr(i), "127.0.0.1"))

    def ids(self):
        return list(self.members)

    def ns(self, i):
        """Node i's namespace."""
        return self.net.node(self.slot[i])

    def addr(self, i):
        """Node i's address (its namespace's)."""
        return self.net.addr(self.slot[i])

    def free_slot(self):
        """A namespace slot no member uses and no process runs in, or
        None."""
        busy = {self.slot[i] for i in self.slot
                if i in self.members or self.alive(i)}
        free = [s for s in range(1, self.net.slots + 1) if s not in busy]
        return free[0] if free else None

    def join(self, i, slot, conf):
        """Register node i (not yet a member) in slot with its config
        file; its folder is conf's."""
        assert i not in self.slot and i == self.next_id
        self.next_id += 1
        self.slot[i] = slot
        self.conf[i] = conf
        with open(conf, "a") as f:
            f.write(scrub.CONF)  # as the first nodes' (__init__)
        self.raft[i] = "%s:%d" % (self.addr(i), netns.RAFT_PORT)
        self.api[i] = "%s:%d" % (self.addr(i), netns.API_PORT)

    def swap_member(self, old, new):
        """new took old's place in the configuration."""
        self.members = sorted([i for i in self.members if i != old] + [new])
        assert len(self.members) == self.n

    def log_path(self, i):
        if i in self.moved:
            return os.path.join(self.moved[i], "kyufud.log")
        return super().log_path(i)

    def start(self, i):
        assert i not in self.procs or self.procs[i].poll() is not None
        env = dict(os.environ)
        env.update(self.node_env.get(i, {}))  # fault modules' (faults.py)
        with open(self.log_path(i), "a") as log:
            self.procs[i] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(i), self.kyufud,
                 "--config", self.conf[i]], stdout=log, stderr=log, env=env)
