"""Injecting a plan's faults into a running NetCluster (docs/chaos.md
"Faults and plan"): kill -9 and restart, SIGSTOP / SIGCONT, and partitions
by iptables inside the node's namespace.  Each fault is written to the
history with its injection, heal and recovery times (recovery: a leader
named by a majority again)."""
import signal
import time

from harness import fault_clock, fault_corrupt_log, fault_corrupt_store
from harness import fault_cut_open_log, fault_delay, fault_disk
from harness import fault_flip_store, fault_loss, fault_power
from harness import fault_replace, fault_replace_dead, netns, patience, plan

# Further fault actions, each in its own module with inject(inj, node)
# (break it; `node` is the resolved target) and heal(inj) (undo whatever
# that module broke, idempotent: heal_all calls every module's heal).
# A module may also define missing(kyufud) (why it cannot run here: the
# run is skipped), setup(cluster, kinds, actions), called before the nodes
# first start (setup_all), check(events) (harness errors it finds in the
# history, verdicts), join(cluster, node_id), called when the harness
# adds a node (join_all: what setup did for the first nodes, done for this
# one before it first starts; a module that set nothing up does nothing)
# and teardown(cluster), called before the cluster folder is removed
# (teardown_all); Injector.fault is the plan entry being injected.  No
# module assumes the node ids 1..n: the members are cluster.ids() (they
# change with the replace-node kinds).
ACTIONS = {
    # replace-node (docs/chaos.md "Faults: replace-node")
    "replace": fault_replace,
    "replace-dead": fault_replace_dead,
    # delay and loss on peer links
    "loss": fault_loss,
    "delay": fault_delay,
    # disk full and corrupted files (docs/chaos.md "Faults: disk full and
    # corrupted files")
    "disk-full": fault_disk,
    "corrupt-log": fault_corrupt_log,
    "corrupt-store": fault_corrupt_store,
    "flip-store": fault_flip_store,
    "cut-open-log": fault_cut_open_log,
    # power loss of all three nodes, clock jumps (docs/chaos.md "Faults:
    # power loss and clock jumps")
    "power": fault_power,
    "clock": fault_clock,
}


def _modules(kinds=None):
    """The action modules (of these kinds' actions), in a fixed order."""
    acts = None if kinds is None else {plan.KINDS[k][0] for k in kinds}
    return sorted({m for a, m in ACTIONS.items()
                   if acts is None or a in acts}, key=lambda m: m.__name__)


def missing(kyufud, kinds):
    """Why the plan's kinds cannot run here (None if they can): each
    module's missing(kyufud), for the modules the kinds use."""
    for mod in _modules(kinds):
        why = hasattr(mod, "missing") and mod.missing(kyufud)
        if why:
            return why
    return None


def setup_all(cluster, kinds, seed):
    """Before the nodes first start: prepare(cluster, seed) of each module
    the kinds use (e.g. a filesystem of its own under each data folder),
    then every module's setup(cluster, kinds, actions) (it decides from the
    kinds whether it has anything to do)."""
    actions = {plan.KINDS[k][0] for k in kinds}
    for mod in _modules(kinds):
        if hasattr(mod, "prepare"):
            mod.prepare(cluster, seed)
    for mod in _modules():
        if hasattr(mod, "setup"):
            mod.setup(cluster, kinds, actions)


def join_all(cluster, node_id):
    """A node the harness adds (NetCluster.join done, not yet started):
    each module's join(cluster, node_id), in the order of setup_all
    (fault_disk's tmpfs on the data folder before fault_power's mount over
    it)."""
    for mod in _modules():
        if hasattr(mod, "join"):
            mod.join(cluster, node_id)


def verdicts(events):
    """Harness errors that modules find in the run's history (each
    module's optional check(events))."""
    out = []
    for mod in _modules():
        if hasattr(mod, "check"):
            out += mod.check(events)
    return out


def teardown_all(cluster):
    """At the end of the run, before the cluster folder is removed: each
    module's teardown(cluster), if it has one (idempotent)."""
    for mod in _modules():
        if hasattr(mod, "teardown"):
            mod.teardown(cluster)


# Idle-machine bounds, each scaled by the load when its wait starts
# (harness.patience).
RECOVER_S = 30.0  # no majority leader this long after the heal: a failure
CATCH_UP_S = 30.0  # settle: every node applied the leader's commit index


class Injector:
    def __init__(self, cluster, net, hist, settle=False, out=None):
        """settle: after each fault wait until every node has applied
        what the leader had committed when it was back (a restarted node
        caught up) before the next fault; without it a node may be killed
        again while it catches up (see docs/chaos.md "Findings")."""
        self.settle = settle
        self.out = out  # the run folder (a module may keep files there)
        self.c = cluster
        self.net = net
        self.hist = hist
        self.killed = set()
        self.paused = set()
        self.isolated = set()  # nodes whose namespace has DROP rules
        self.errors = []  # harness-level failures (no recovery, a crash)
        self.fault = None  # the plan entry being injected

    def add_node(self, node):
        """The harness adds node (registered with NetCluster.join, not
        yet started): every module prepares it (join_all)."""
        join_all(self.c, node)

    def leader(self):
        named = []
        for i in self.c.ids():
            if self.c.alive(i) and i not in self.paused:
                st = self.c.status(i, timeout=1.0)
                if st is not None and st.leader_id:
                    named.append(st.leader_id)
        for lid in set(named):
            if 2 * named.count(lid) > self.c.n:
                return lid
        return None

    def resolve(self, target, pick):
        nodes = self.c.ids()
        lead = self.leader()
        if target == "leader" and lead is not None:
            cands = [lead]
        elif target == "follower" and lead is not None:
            cands = [i for i in nodes if i != lead]
        else:
            cands = nodes
        return cands[int(pick * len(cands))], lead

    def crashed(self):
        """Nodes that exited although the plan did not kill them."""
        return [i for i in self.c.ids()
                if i not in self.killed and not self.c.alive(i)]

    def _break(self, action, node):
        """Break node; returns the fields an ACTIONS module adds to the
        fault's history event (or {})."""
        if action == "kill":
            self.c.kill(node, signal.SIGKILL)
            self.c.wait_exit(node, 10)
            self.killed.add(node)
        elif action == "pause":
            self.c.kill(node, signal.SIGSTOP)
            self.paused.add(node)
        else:
            others = [j for j in self.c.ids() if j != node]
            addrs = [self.c.addr(j) for j in others]
            if action == "partition":    # node cut from the others
                netns.isolate(self.c.ns(node), addrs)
                self.isolated.add(node)
            elif action == "oneway":     # node hears the others, unheard
                netns.isolate(self.c.ns(node), addrs, inbound=False)
                self.isolated.add(node)
            elif action == "bridge":     # the others cut, node sees both
                netns.isolate(self.c.ns(others[0]), addrs[1:])
                self.isolated.add(others[0])
            elif action in ACTIONS:
                return ACTIONS[action].inject(self, node) or {}
            else:
                raise ValueError("unknown fault action %r" % action)
        return {}

    def heal_all(self):
        for mod in _modules():
            mod.heal(self)
        for i in sorted(self.paused):
            self.c.kill(i, signal.SIGCONT)
        self.paused.clear()
        for i in sorted(self.isolated):
            netns.heal(self.c.ns(i))
        self.isolated.clear()
        for i in sorted(self.killed):
            self.c.start(i)
        self.killed.clear()

    def catch_up(self):
        """Wait until every node's applied index reaches the leader's
        commit index of now; the time, or None after CATCH_UP_S (scaled
        by the load)."""
        lead = self.leader()
        st = self.c.status(lead, timeout=2.0) if lead else None
        if st is None:
            return None
        target = st.commit_index
        bound = patience.scaled(CATCH_UP_S)
        end = time.monotonic() + bound
        nodes = self.c.ids()
        while time.monotonic() < end:
            if not all(self.c.alive(i) for i in nodes):
                return None  # a node died: inject() reports it
            sts = [self.c.status(i, timeout=1.0) for i in nodes]
            if all(s is not None and s.applied_index >= target
                   for s in sts):
                return time.monotonic()
            time.sleep(0.05)
        self.errors.append("a node did not catch up with index %d within "
                           "%.0f s" % (target, bound))
        return None

    def inject(self, f):
        node, lead = self.resolve(f["target"], f["pick"])
        self.fault = f
        extra = self._break(f["action"], node)
        t0 = time.monotonic()  # in effect from here (rules installed)
        time.sleep(f["duration"])
        t_heal = time.monotonic()
        self.heal_all()
        t_rec = after = None
        # From the end of the heal: healing a replace-node fault waits for
        # the whole membership change (a fresh node's catch-up, bounded by
        # fault_replace's own limits), which can outlast RECOVER_S.
        bound = patience.scaled(RECOVER_S)
        end = time.monotonic() + bound
        while time.monotonic() < end:
            after = self.leader()
            if after is not None:
                t_rec = time.monotonic()
                break
            time.sleep(0.05)
        t_caught = self.catch_up() if self.settle and t_rec else None
        ev = self.hist.write("fault", kind=f["kind"], node=node,
                             leader_before=lead, leader_after=after,
                             t=t0, heal_t=t_heal,
                             recover_t=t_rec, caught_up_t=t_caught,
                             **extra)
        if t_rec is None:
            self.errors.append("no majority leader %.0f s after healing %s"
                               % (bound, ev))
        for i in self.crashed():
            self.errors.append("node %d exited on its own (rc %s) during %s"
                               % (i, self.c.procs[i].poll(), ev))
        time.sleep(f["gap"])
        return ev
