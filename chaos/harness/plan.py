"""Seeded fault plans (docs/chaos.md "Faults and plan").  make(seed, n,
cover) is a pure function of its arguments: the same seed replays the same
plan.  Targets naming a role ("leader", "follower") are resolved when the
fault is injected."""
import random

# kind: (action, target rule)
KINDS = {
    "kill-leader": ("kill", "leader"),
    "kill-follower": ("kill", "follower"),
    "kill-random": ("kill", "random"),
    "pause-leader": ("pause", "leader"),
    "pause-random": ("pause", "random"),
    "partition-leader": ("partition", "leader"),
    "partition-split": ("partition", "random"),
    "partition-bridge": ("bridge", "random"),
    "oneway-leader": ("oneway", "leader"),
    # replace-node: a member replaced by a fresh node (new id, empty data)
    # under the clients' writes (chaos/harness/fault_replace.py)
    "replace-follower": ("replace", "follower"),
    "replace-leader": ("replace", "leader"),
    "replace-dead": ("replace-dead", "random"),  # killed first, then replaced
    # delay and loss on peer links (fault_loss.py, fault_delay.py): on the
    # leader's Raft connections, both directions
    "loss-peer": ("loss", "leader"),
    "delay-peer": ("delay", "leader"),
    # disk full and corrupted files on one node (docs/chaos.md "Faults:
    # disk full and corrupted files")
    "disk-full": ("disk-full", "random"),
    "corrupt-log": ("corrupt-log", "random"),
    "corrupt-store": ("corrupt-store", "random"),
    "flip-store": ("flip-store", "random"),
    "cut-open-log": ("cut-open-log", "random"),
    # power loss and clock jumps (harness/fault_power.py,
    # fault_clock.py): "all" = every node at once (the pick is unused)
    "power-all": ("power", "all"),
    "clock-jump-fwd": ("clock", "random"),
    "clock-jump-back": ("clock", "random"),
}
# Kinds a run injects only when --kinds names them: faults kyufud is known
# not to survive yet, which would fail every run that draws them (none
# since the scrub found flip-store's silent divergence: docs/scrub.md).
NAMED_ONLY = set()


def default_kinds():
    """The kinds of a run without --kinds."""
    return sorted(set(KINDS) - NAMED_ONLY)
# Seconds a fault lasts before it is healed, and the quiet gap after the
# cluster has a leader again: long enough for an election (1 s timeout)
# to happen inside the fault, short enough for a quick run to hold one of
# each kind in about 25 s.
DURATION_S = (1.0, 2.0)
GAP_S = (0.2, 1.0)


def make(seed, n, cover=False, kinds=None):
    """n faults: [{kind, action, target, pick, duration, gap}].  pick is a
    number in [0, 1) that chooses among the candidate nodes at injection
    (so a replay picks the same rank).  cover: the first len(kinds) faults
    are a permutation of every kind.  kinds: the kinds to draw from (a
    subset of KINDS; default default_kinds())."""
    rnd = random.Random(seed)
    kinds = sorted(kinds or default_kinds())
    first = []
    if cover:
        first = kinds[:]
        rnd.shuffle(first)
    plan = []
    for k in range(n):
        kind = first[k] if k < len(first) else rnd.choice(kinds)
        action, target = KINDS[kind]
        plan.append({"kind": kind, "action": action, "target": target,
                     "pick": round(rnd.random(), 6),
                     "duration": round(rnd.uniform(*DURATION_S), 3),
                     "gap": round(rnd.uniform(*GAP_S), 3)})
    return plan
