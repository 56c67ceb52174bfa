"""Fault action `cut-open-log` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, one of its open Raft
segments (`open-K`, with entries) truncated inside its written part, the
node started again (harness.fault_corrupt).

libraft 0.22.1's raft_uv aborts while it loads such a segment (`double
free or corruption (!prev)` from raft_start's load, SIGABRT, or SIGSEGV);
kyufud now checks its open segments before raft_uv loads them
(raft-glue/segment_check.h) and refuses a cut one, exit 4 "cannot start
raft", which gets the same repair as corrupt-log."""
from harness import fault_corrupt, fault_corrupt_log


def damages(path):
    return ("truncate",) if fault_corrupt.is_open_segment(path) else ()


_F = fault_corrupt.Corruption("cut-open-log", "log", damages,
                              fault_corrupt_log.REFUSALS,
                              [fault_corrupt.replace_node])
prepare = _F.prepare
inject = _F.inject
heal = _F.heal
