"""Fault action `corrupt-store` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, its LMDB data.mdb
truncated or with bits flipped, the node started again
(harness.fault_corrupt).

A node that refuses its store (exit 4 CORRUPT, or exit 1 naming the store)
gets the operator's repair of docs/chaos.md: its store files are removed
and it rebuilds the store from its own Raft snapshot and log at the next
start, as after an OS crash (docs/storage.md "After an OS crash:
rebuild"); its Raft folder, term and vote included, stays as it was."""
import os

from harness import fault_corrupt

REFUSALS = {4: ('"fatal raft or storage error"', "CORRUPT", "store"),
            1: ("cannot open the store", "store")}


def _repair(c, node):
    data = os.path.join(c.dir, "node%d" % node, "data")
    for path in fault_corrupt._files(data, "store"):
        d = os.path.dirname(path)
        for name in ("data.mdb", "lock.mdb"):
            fault_corrupt.wipe(os.path.join(d, name))


_F = fault_corrupt.Corruption("store", REFUSALS, _repair)
prepare = _F.prepare
inject = _F.inject
heal = _F.heal
