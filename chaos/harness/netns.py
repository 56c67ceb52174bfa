"""Per-run network namespaces for chaos/run (docs/chaos.md "Harness and
network").

A run owns: a switch namespace with bridge br0, one namespace per node
slot (the n nodes' and SPARES more for nodes that join) and one for the
clients, each with eth0 joined to the bridge by a veth pair made
inside the namespaces (nothing is added to the host's namespace).
Addresses are 127.77.0.N/24 on each eth0 with route_localnet=1 inside the
run's namespaces.  Every name starts with the run's prefix (kchaos<pid>-),
so teardown() removes exactly what setup() made, and kills only the PIDs
that `ip netns pids` lists in those namespaces; sweep_stale() does the same
for the namespaces of a run whose chaos/run process is gone (killed with
SIGKILL, so its own teardown never ran)."""
import os
import re
import shutil
import signal
import subprocess

SUBNET = "127.77.0."
CLIENT_HOST = 100
RAFT_PORT = 7001
API_PORT = 8001
PREFIX = "kchaos"
# Namespaces beyond the n nodes': one, so a node can join before the one
# it replaces is removed (four members for a moment, never five).
SPARES = 1
_OURS = re.compile(r"^%s(\d+)-" % PREFIX)


def missing():
    """Why namespaces cannot be used here (None if they can)."""
    if os.geteuid() != 0:
        return "chaos/run needs root (ip netns, iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return "%s is not installed (iproute2, iptables)" % tool
    probe = "%s%d-probe" % (PREFIX, os.getpid())
    r = subprocess.run(["ip", "netns", "add", probe],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return "cannot create a network namespace: %s" % r.stderr.decode()
    try:
        r = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-S"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            return "iptables fails in a namespace: %s" % r.stderr.decode()
    finally:
        subprocess.run(["ip", "netns", "del", probe])
    return None


def sh(*cmd):
    subprocess.run(list(cmd), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Net:
    """The namespaces of one run: node(s) and client are the namespace
    names, addr(s) the address of node slot s (1..n + spares).  A cluster
    of n members uses slots 1..n; the spare slots are for nodes that join
    (the replace-node fault, chaos/harness/fault_replace.py): a joining
    node takes a free slot, a removed node's slot becomes free once its
    process is stopped."""

    def __init__(self, n, prefix=None, spares=SPARES):
        self.n = n
        self.slots = n + spares
        self.prefix = prefix or "%s%d-" % (PREFIX, os.getpid())
        self.switch = self.prefix + "sw"
        self.client = self.prefix + "cl"
        self.made = []

    def node(self, i):
        return "%sn%d" % (self.prefix, i)

    @staticmethod
    def addr(i):
        return SUBNET + str(i)

    def _host(self, ns, host, port_no):
        sh("ip", "netns", "add", ns)
        self.made.append(ns)
        sh("ip", "-n", self.switch, "link", "add", "p%d" % port_no,
           "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.switch, "link", "set", "p%d" % port_no,
           "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for k in ("all", "default", "eth0"):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw",
               "net.ipv4.conf.%s.route_localnet=1" % k)
        sh("ip", "-n", ns, "addr", "add", SUBNET + "%d/24" % host,
           "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def setup(self):
        sh("ip", "netns", "add", self.switch)
        self.made.append(self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i in range(1, self.slots + 1):
            self._host(self.node(i), i, i)
        self._host(self.client, CLIENT_HOST, CLIENT_HOST)

    def teardown(self):
        """Kill what still runs in the run's namespaces (by PID), then
        delete them.  Safe to call twice."""
        for ns in self.made:
            r = subprocess.run(["ip", "netns", "pids", ns],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)
        self.made = []


def _running_chaos(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"chaos/run" in f.read()
    except OSError:
        return False


def sweep_stale():
    """Remove the namespaces (and what runs in them) of chaos runs that no
    longer exist; returns their names."""
    r = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    stale = {}
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _OURS.match(name)
        if m and not _running_chaos(int(m.group(1))):
            stale.setdefault(m.group(0), []).append(name)
    gone = []
    for prefix, names in stale.items():
        net = Net(0, prefix=prefix)
        net.made = sorted(names, key=lambda x: x.endswith("-sw"))
        net.teardown()
        gone += names
    return gone


def iptables(ns, *args):
    sh("ip", "netns", "exec", ns, "iptables", "-w", *args)


def isolate(ns, peers, inbound=True):
    """Drop traffic between namespace ns and the addresses peers: what ns
    sends to them, and (inbound) what they send to ns; the clients'
    address is never touched.  All rules in one iptables-restore
    transaction, so the partition starts at once."""
    rules = "".join(("-A INPUT -s %s -j DROP\n" % p if inbound else "") +
                    "-A OUTPUT -d %s -j DROP\n" % p for p in peers)
    subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "-w",
                    "--noflush"], input=("*filter\n%sCOMMIT\n" % rules)
                   .encode(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def heal(ns):
    iptables(ns, "-F", "INPUT")
    iptables(ns, "-F", "OUTPUT")
