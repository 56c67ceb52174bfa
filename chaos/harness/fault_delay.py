"""Fault action "delay" (kind delay-peer; docs/chaos.md "Faults: delay and
loss on peer links"): every byte on the target node's Raft connections,
both directions, is held DELAY_MS (plus seeded jitter) by a user-space
proxy (delayproxy.py), since this kernel has no netem.  In the node's
namespace, iptables nat rules REDIRECT the node's new connections to the
peers' Raft port (OUTPUT) and the peers' new connections to its own
(PREROUTING) to the proxy, which connects on to the original destination
(SO_ORIGINAL_DST) from a socket marked MARK that the rules let through;
then the node's open Raft connections are closed (ss -K), so both sides
reconnect through the proxy: one peer at a time, waiting until that peer
names a leader again before the next.  Resetting the leader's links with
both followers at once is crash evidence for both (raft-glue
crash_evidence.h): they would elect another leader at once, and the fault
would be a leader change, not a slow leader (docs/chaos.md).  A node's message to a peer and the answer
each take the delay once: a round trip grows by twice the delay.  The
clients' API port is not touched.  The delay cycles through DELAY_MS, one
value per injection, so a replayed plan applies the same values in the
same order.

While the fault is on, rttprobe.py measures the round trip from the
node's namespace to a peer's Raft port (the same path as the node's own
links); heal() fails the run if it was not at least twice the smallest
delay the proxy applies.  heal() removes the rules, closes the
connections through the proxy one peer at a time as above (both ends
reconnect directly), stops the proxy by its PID and is idempotent."""
import json
import os
import select
import subprocess
import sys

from harness import netns, peerlink

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "delayproxy.py")
PROBE = os.path.join(HERE, "rttprobe.py")
PROXY_PORT = 7101        # in the node's namespace; Raft 7001, API 8001
MARK = 0x6b66            # the proxy's upstream sockets ("kf")
DELAY_MS = (150, 300, 50)  # the "50-300 ms"; 150 first (--cover)
JITTER_DIV = 5           # jitter: +- a fifth of the delay
PROBE_TRIES = 3
READY_S = 30.0           # the proxy listens (Python start on a loaded host)
PROBE_WAIT_S = 20.0
STOP_S = 10.0
MOVE_WAIT_S = 5.0        # a peer whose links moved names a leader again
OUT, IN = "KCHAOS-DELAY-OUT", "KCHAOS-DELAY-IN"
HOOKS = (("OUTPUT", OUT), ("PREROUTING", IN))
KEEP = "-m conntrack --ctstate INVALID -j RETURN"  # see inject()


def _state(inj):
    return inj.__dict__.setdefault("_fault_delay", {"n": 0, "on": {}})


def _peers(inj, node):
    return [j for j in inj.c.ids() if j != node]


def _start_proxy(ns, delay, jitter, seed):
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, PROXY,
                          "--port", str(PROXY_PORT), "--delay-ms", str(delay),
                          "--jitter-ms", str(jitter), "--seed", str(seed),
                          "--mark", hex(MARK)], stdout=subprocess.PIPE,
                         text=True)
    ready, _, _ = select.select([p.stdout], [], [], READY_S)
    line = p.stdout.readline() if ready else ""
    if line.split()[:1] != ["ready"]:
        _stop(p)
        raise RuntimeError("delay proxy in %s did not start (%r)"
                           % (ns, line))
    return p


def _stop(p):
    """Stop a process this module started, by its PID."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def inject(inj, node):
    st = _state(inj)
    delay = DELAY_MS[st["n"] % len(DELAY_MS)]
    jitter = delay // JITTER_DIV
    seed = st["n"]
    st["n"] += 1
    ns = inj.c.ns(node)
    peers = [inj.c.addr(j) for j in _peers(inj, node)]
    on = {"delay": delay, "jitter": jitter, "proxy": None, "probe": None}
    st["on"][node] = on  # heal() undoes whatever got done below
    on["proxy"] = _start_proxy(ns, delay, jitter, seed)
    # KEEP holds connection tracking on in the namespace until the chains
    # go: NAT needs it, and the kernel turns it off when its last user
    # (rule) goes, so deleting the REDIRECT rules alone would leave every
    # redirected connection untranslated (reset by both peers at once).
    text = ":%s - [0:0]\n:%s - [0:0]\n-A %s %s\n" % (OUT, IN, OUT, KEEP)
    on["redirects"] = []
    for a in peers:
        # --syn: only connections that start now.  The first nat rule in a
        # namespace turns connection tracking on there, and the tracker
        # picks up open connections mid-stream as new ones: without --syn
        # their next packets would be redirected to the proxy, which
        # resets them, with both peers at once.
        on["redirects"] += [
            "%s -p tcp --syn -d %s --dport %d -m mark ! --mark 0x%x "
            "-j REDIRECT --to-ports %d"
            % (OUT, a, netns.RAFT_PORT, MARK, PROXY_PORT),
            "%s -p tcp --syn -s %s --dport %d -j REDIRECT --to-ports %d"
            % (IN, a, netns.RAFT_PORT, PROXY_PORT)]
    text += "".join("-A %s\n" % r for r in on["redirects"])
    for hook, chain in HOOKS:
        text += "-I %s -j %s\n" % (hook, chain)
    peerlink.restore(ns, "nat", text)
    on["closed"] = on["moved"] = 0
    for j in _peers(inj, node):
        linked = peerlink.count_connections(ns, netns.RAFT_PORT,
                                            inj.c.addr(j)) > 0
        on["closed"] += peerlink.close_connections(
            ns, inj.c.addr(j), local_ports=(netns.RAFT_PORT,),
            remote_ports=(netns.RAFT_PORT,), spare_mark=MARK)
        on["moved"] += peerlink.wait_reconnected(inj, ns, j, PROXY_PORT,
                                                 MOVE_WAIT_S, linked)
    on["probe"] = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, PROBE, peers[0],
         str(netns.RAFT_PORT), str(PROBE_TRIES)],
        stdout=subprocess.PIPE, text=True)


def _probe_result(p):
    try:
        out, _ = p.communicate(timeout=PROBE_WAIT_S)
    except subprocess.TimeoutExpired:
        _stop(p)
        return None
    try:
        return json.loads(out)["rtt_ms"]
    except (ValueError, KeyError, TypeError):
        return None


def heal(inj):
    st = _state(inj)
    for node, on in sorted(st["on"].items()):
        ns = inj.c.ns(node)
        rtts = _probe_result(on["probe"]) if on["probe"] else None
        if on.get("redirects"):
            # new connections go direct from now on (KEEP stays)
            peerlink.restore(ns, "nat", "".join(
                "-D %s\n" % r for r in on["redirects"]))
            on["redirects"] = []
        for j in _peers(inj, node):
            # the node's connections to j (through the proxy or not) and
            # the proxy's from j: the proxy closes the other end of each
            linked = peerlink.count_connections(ns, PROXY_PORT,
                                                inj.c.addr(j)) > 0
            peerlink.close_connections(
                ns, inj.c.addr(j), local_ports=(PROXY_PORT,),
                remote_ports=(netns.RAFT_PORT,), spare_mark=MARK)
            peerlink.wait_reconnected(inj, ns, j, netns.RAFT_PORT,
                                      MOVE_WAIT_S, linked)
        carried = peerlink.count_connections(ns, PROXY_PORT)
        if on["proxy"] is not None:
            _stop(on["proxy"])
        peerlink.remove(ns, "nat", HOOKS)
        del st["on"][node]
        least = 2 * (on["delay"] - on["jitter"])
        print("chaos: delay-peer node %d: %d +- %d ms each way, %s Raft "
              "connections reset, %s of %d peers back (through the proxy if "
              "linked) within %.0f s; round trip through it %s ms; %d connections "
              "still on the proxy when it stopped"
              % (node, on["delay"], on["jitter"], on.get("closed"),
                 on.get("moved"), inj.c.n - 1, MOVE_WAIT_S, rtts, carried),
              flush=True)
        if not rtts or min(rtts) < least:
            inj.errors.append("delay-peer node %d: round trip %s ms, not at "
                              "least %d ms" % (node, rtts, least))
