"""Fault action `flip-store` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, a few bits flipped in its
LMDB data.mdb, the node started again (harness.fault_corrupt).

LMDB keeps no checksums: a flip in a page LMDB reads may make it refuse
the store (MDB_CORRUPTED: exit 4, "cannot open the store"), or change a
value without any error.  The scrub finds the latter (docs/scrub.md): at
the next ScrubMark the node's state digest differs from the other voters'
and it stops with exit 4 after a `CORRUPT:` line.  So heal, after the
start and the refusal repairs of corrupt-store, waits for the node's next
scrub (harness.scrub.wait): it passes (the flips hit free pages or bytes
no state depends on), or the node stopped as damaged and is replaced with
its own id, its store rebuilt from the leader (fault_corrupt.replace_node;
rebuilding from its own Raft snapshot is not enough: that snapshot may
have been taken from the damaged store).  The fault note says which."""
import time

from harness import fault_corrupt, fault_corrupt_store, nodelog, scrub

_REFUSALS = {4: fault_corrupt_store.REFUSALS[4] + ("CORRUPT: ",),
             1: fault_corrupt_store.REFUSALS[1]}
_F = fault_corrupt.Corruption("flip-store", "store", lambda _path: ("flip",),
                              _REFUSALS,
                              [fault_corrupt_store.rebuild_store,
                               fault_corrupt.replace_node])
prepare = _F.prepare
inject = _F.inject


def heal(inj):
    c = inj.c
    nodes = sorted(_F.down)
    offsets = {n: nodelog.size(c.log_path(n)) for n in nodes}
    _F.heal(inj)
    for node in nodes:
        if not c.alive(node):
            continue  # not a documented stop: left to the Injector
        t0 = time.monotonic()
        verdict = scrub.wait(c, node, offsets[node])
        note = {"action": "flip-store", "node": node, "scrub": verdict,
                "scrub_s": round(time.monotonic() - t0, 2)}
        if verdict == "corrupt":
            t1 = time.monotonic()
            offset = nodelog.size(c.log_path(node))
            fault_corrupt.replace_node(c, node)
            note["repair"] = "replace_node"
            note["after_repair"] = scrub.wait(c, node, offset)
            note["repair_s"] = round(time.monotonic() - t1, 2)
        inj.hist.write("fault-note", **note)
        print("chaos: flip-store: node %d %s" % (
            node, {k: v for k, v in note.items()
                   if k not in ("action", "node")}), flush=True)
