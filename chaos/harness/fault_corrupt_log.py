"""Fault action `corrupt-log` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, one of its Raft segment
files truncated or with bits flipped, the node started again
(harness.fault_corrupt).

A node that refuses its log ("cannot start raft", exit 1: raft_uv found
the segment damaged, and kyufu runs raft_uv without its auto-recovery,
docs/raft.md "Auto-recovery decision") gets the operator's repair of
docs/operations.md "Replacing a node", with the same id and addresses:
the node is removed from the configuration (RemoveNode on the leader),
its data folder emptied, its config given `join = yes`, and it is added
back (AddNode), so it catches up as a standby and votes again only once
it holds the log.  Wiping the folder and letting the node rejoin as a
voter would not be safe: with its log and its vote gone it could help
elect a leader that lacks entries it had acknowledged."""
import os

import grpc

from harness import fault_corrupt

REFUSALS = {1: ("cannot start raft",)}
CATCH_UP_MS = 60000     # AddNode's bound for the standby's catch-up
LEADER_S = 30.0


def _join_conf(path):
    """`join = yes` in the config's [node] section (kyufuctl node new
    writes the same for a new node)."""
    with open(path) as f:
        text = f.read()
    if "\njoin = yes\n" not in text:
        text = text.replace("[node]\n", "[node]\njoin = yes\n", 1)
        with open(path, "w") as f:
            f.write(text)


def _repair(c, node):
    S = c.s["service_pb2"]
    lead = c.wait_leader(LEADER_S, exclude=(node,), majority=True)
    try:
        c.cluster(lead).RemoveNode(S.RemoveNodeRequest(id=node),
                                   timeout=30)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
    data = os.path.join(c.dir, "node%d" % node, "data")
    for name in os.listdir(data):   # the folder may be a mount point
        fault_corrupt.wipe(os.path.join(data, name))
    _join_conf(c.conf[node])
    c.start(node)
    lead = c.wait_leader(LEADER_S, exclude=(node,), majority=True)
    c.cluster(lead).AddNode(S.AddNodeRequest(
        id=node, raft_address=c.raft[node], api_address=c.api[node],
        catch_up_timeout_ms=CATCH_UP_MS), timeout=CATCH_UP_MS / 1000 + 30)


_F = fault_corrupt.Corruption("log", REFUSALS, _repair)
prepare = _F.prepare
inject = _F.inject
heal = _F.heal
