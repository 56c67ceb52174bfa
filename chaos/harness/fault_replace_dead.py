"""The replace-dead fault (docs/chaos.md "Faults: replace-node"): the
operator's case of docs/operations.md "Replacing a node": the target is
killed with kill -9 (its host lost; its data folder is kept, never started
again), then replaced by a fresh node exactly as fault_replace does.  The
cluster runs on two voters while the fresh node catches up, on three of
four for the moment the fresh node votes and the dead one is still a
member, then on three again.  heal is fault_replace's (the dead node's
process is already gone: nothing to stop).  The replacement starts once
the others name a leader (the killed node may have led)."""
import signal

from harness import fault_replace, patience

KILL_S = 10.0
LEADER_S = 30.0  # a leader among the others after the kill (scaled by load)


def inject(inj, node):
    inj.c.kill(node, signal.SIGKILL)
    inj.c.wait_exit(node, KILL_S)
    # The target may have led: `kyufuctl node new` asks the leader for the
    # members and gives up at once when no node knows one (seed 15 of the
    # mixed plan, a loaded machine: the election took 3 s).  The operator
    # would wait for the election too.
    inj.c.wait_leader(patience.scaled(LEADER_S), exclude=(node,),
                      majority=True)
    return fault_replace.inject(inj, node)


def heal(inj):
    fault_replace.heal(inj)
