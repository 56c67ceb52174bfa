"""Fault action `corrupt-store` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, its LMDB data.mdb
truncated, the node started again (harness.fault_corrupt).  Bit flips in
data.mdb are the action `flip-store` (harness.fault_flip_store): LMDB
has no checksums, so kyufud does not detect every flip.

A node that refuses its store (exit 4, "cannot open the store": "data.mdb
is truncated") gets the operator's repairs in order: first its store files
are removed, so that it rebuilds the store from its own Raft snapshot and
log at the next start, as after an OS crash (docs/storage.md "After an OS
crash: rebuild"; its Raft folder, term and vote included, stays); if it
still refuses (its snapshot is refused too), it is replaced with its own
id (fault_corrupt.replace_node)."""
import os

from harness import fault_corrupt

REFUSALS = {4: ("cannot open the store",),
            1: ("cannot start raft",)}


def rebuild_store(c, node):
    """Remove the node's store files: it rebuilds its store from its own
    Raft snapshot and log at the next start."""
    data = os.path.join(c.dir, "node%d" % node, "data")
    for path in fault_corrupt.files(data, "store"):
        d = os.path.dirname(path)
        for name in ("data.mdb", "lock.mdb"):
            fault_corrupt.wipe(os.path.join(d, name))


_F = fault_corrupt.Corruption("corrupt-store", "store",
                              lambda _path: ("truncate",),
                              REFUSALS, [rebuild_store,
                                         fault_corrupt.replace_node])
prepare = _F.prepare
inject = _F.inject
heal = _F.heal
