"""Fault action `flip-store` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, a few bits flipped in its
LMDB data.mdb, the node started again (harness.fault_corrupt).

LMDB keeps no checksums: a flip in a page LMDB reads may make it refuse
the store (MDB_CORRUPTED: exit 4), crash the node, or change a value
without any error, so that this replica's state and digest differ from
the others' (the checker reports "replicas differ").  Not in any quick
run: a known gap (docs/chaos.md), kept as a kind so that the detection
that closes it can be tested.  Refusals get the same repairs as
corrupt-store."""
from harness import fault_corrupt, fault_corrupt_store

_F = fault_corrupt.Corruption("flip-store", "store", lambda _path: ("flip",),
                              fault_corrupt_store.REFUSALS,
                              [fault_corrupt_store.rebuild_store,
                               fault_corrupt.replace_node])
prepare = _F.prepare
inject = _F.inject
heal = _F.heal
