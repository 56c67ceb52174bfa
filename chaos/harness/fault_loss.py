"""Fault action "loss" (kind loss-peer; docs/chaos.md "Faults: delay and
loss on peer links"): the target node's namespace drops each packet of its
Raft connections, both directions, with probability P (iptables statistic
match in a chain of its own), so TCP retransmits and Raft messages arrive
late, in bursts, or the connection stalls; clients still reach the node.
P cycles through LOSS_P, one value per injection, so a replayed plan
applies the same values in the same order.

heal() removes the chain (idempotent) and checks the counters: the fault
must have dropped about P of the packets it saw (else the rules did not
act and the run reports a harness error)."""
from harness import netns, peerlink

CHAIN = "KCHAOS-LOSS"
HOOKS = (("INPUT", CHAIN), ("OUTPUT", CHAIN))
LOSS_P = (0.2, 0.3, 0.1)  # the "10-30 %"; 20 % first (--cover)
# The drop check needs enough packets to be a certain test: with at least
# CHECK_MIN packets seen, a drop fraction outside [P/2, 2P] has a chance
# below 2e-5 for every P of LOSS_P (binomial).
CHECK_MIN = 500


def _state(inj):
    return inj.__dict__.setdefault("_fault_loss", {"n": 0, "on": {}})


def inject(inj, node):
    st = _state(inj)
    p = LOSS_P[st["n"] % len(LOSS_P)]
    st["n"] += 1
    port = netns.RAFT_PORT
    text = ":%s - [0:0]\n" % CHAIN
    for sel in ("--sport", "--dport"):
        text += "-A %s -p tcp %s %d\n" % (CHAIN, sel, port)  # counts
        text += ("-A %s -p tcp %s %d -m statistic --mode random "
                 "--probability %.3f -j DROP\n" % (CHAIN, sel, port, p))
    for hook, chain in HOOKS:
        text += "-I %s -j %s\n" % (hook, chain)
    ns = inj.c.ns(node)
    peerlink.restore(ns, "filter", text)
    st["on"][node] = p


def heal(inj):
    st = _state(inj)
    for node, p in sorted(st["on"].items()):
        ns = inj.c.ns(node)
        seen = dropped = 0
        for packets, rule in peerlink.counters(ns, CHAIN):
            if "-j DROP" in rule:
                dropped += packets
            else:
                seen += packets
        peerlink.remove(ns, "filter", HOOKS)
        del st["on"][node]
        print("chaos: loss-peer node %d: %.0f %% loss, dropped %d of %d "
              "Raft packets" % (node, 100 * p, dropped, seen), flush=True)
        if seen >= CHECK_MIN and not p / 2 <= dropped / seen <= 2 * p:
            inj.errors.append("loss-peer node %d: dropped %d of %d packets, "
                              "not about %.0f %%" % (node, dropped, seen,
                                                     100 * p))
        elif seen >= 100 and dropped == 0:
            inj.errors.append("loss-peer node %d: no packet of %d dropped"
                              % (node, seen))
