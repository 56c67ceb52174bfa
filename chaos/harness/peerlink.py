"""What the peer-link faults (fault_loss, fault_delay; docs/chaos.md
"Faults: delay and loss on peer links") share: their iptables chains in a
node's namespace, installed and removed as a whole, and closing that node's
open Raft connections.  A node's peer links are the TCP connections with
the Raft port (netns.RAFT_PORT) at either end; its API port, and so the
clients, are never touched."""
import subprocess
import time


def restore(ns, table, text):
    """Apply iptables-restore lines to one table of ns in one transaction
    (the fault starts at once), keeping the rules already there."""
    subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "-w",
                    "--noflush"], input=("*%s\n%sCOMMIT\n" % (table, text))
                   .encode(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def rules(ns, table):
    r = subprocess.run(["ip", "netns", "exec", ns, "iptables", "-w", "-t",
                        table, "-S"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, check=True)
    return r.stdout


def remove(ns, table, jumps):
    """Remove the chains [(builtin chain, own chain)] from ns in one
    transaction: every jump to them, then the chains.  Idempotent (a chain
    already gone is fine); raises if any of them is still there afterwards.
    Three iptables calls, since heal_all runs after every fault."""
    have = rules(ns, table).splitlines()
    text = "".join("-D %s\n" % line[3:] for line in have
                   if line.startswith("-A ") and
                   any(line == "-A %s -j %s" % j for j in jumps))
    for chain in sorted({c for _, c in jumps}):
        if "-N %s" % chain in have:
            text += "-F %s\n-X %s\n" % (chain, chain)
    if text:
        restore(ns, table, text)
    have = rules(ns, table)
    left = [c for _, c in jumps if c in have]
    if left:
        raise RuntimeError("%s: chains %s still in table %s"
                           % (ns, left, table))


def counters(ns, chain):
    """[(packets, rule line)] of the rules of a filter chain."""
    r = subprocess.run(["ip", "netns", "exec", ns, "iptables", "-w", "-S",
                        chain, "-v"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, check=True)
    out = []
    for line in r.stdout.splitlines():
        if line.startswith("-A ") and " -c " in line:
            out.append((int(line.partition(" -c ")[2].split()[0]), line))
    return out


def _ss(ns, kill, filt):
    r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-H", "-tn"] +
                       (["-K"] if kill else []) + ["state", "connected", filt],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, check=True)
    return len(r.stdout.splitlines())


def _filter(peer, local_ports, remote_ports, spare_mark):
    ports = ["sport = :%d" % p for p in local_ports] + \
        ["dport = :%d" % p for p in remote_ports]
    filt = "dst %s and ( %s )" % (peer, " or ".join(ports))
    if spare_mark is not None:
        filt += " and fwmark != 0x%x/0xffffffff" % spare_mark
    return filt


def close_connections(ns, peer, local_ports=(), remote_ports=(),
                      spare_mark=None):
    """Close (ss -K: the kernel resets both ends) the connected TCP sockets
    of ns whose remote address is peer and whose local port is one of
    local_ports or remote port one of remote_ports; sockets marked
    spare_mark (the delay proxy's own) are left alone.  Listening sockets
    are never touched.  Returns how many were closed."""
    return _ss(ns, True, _filter(peer, local_ports, remote_ports,
                                 spare_mark))


def count_connections(ns, local_port, peer_addr=None):
    """How many connected TCP sockets of ns have local_port (and, given
    peer_addr, that remote address: a node's, NetCluster.addr)."""
    if peer_addr is None:
        return _ss(ns, False, "sport = :%d" % local_port)
    return _ss(ns, False, _filter(peer_addr, (local_port,), (), None))


def wait_reconnected(inj, ns, peer_node, local_port, limit_s,
                     linked=True):
    """After close_connections: wait until peer_node names a leader (its
    Status) and, if it had a link with ns (linked), has connected again to
    local_port in ns (so it has seen the reset), at most limit_s.  Two
    followers need not have a link: Raft followers send each other
    nothing.  False on timeout."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if not linked or count_connections(ns, local_port,
                                           inj.c.addr(peer_node)) > 0:
            st = inj.c.status(peer_node, timeout=1.0)
            if st is not None and st.leader_id:
                return True
        time.sleep(0.05)
    return False
