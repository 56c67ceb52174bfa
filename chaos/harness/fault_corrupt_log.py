"""Fault action `corrupt-log` (docs/chaos.md "Faults: disk full and
corrupted files"): one node killed with SIGKILL, one of its Raft segment
files with bits flipped, or a closed segment truncated, the node started
again (harness.fault_corrupt).  An open segment cut short is the action
`cut-open-log` (harness.fault_cut_open_log): libraft 0.22.1 aborts on it
(double free), a known gap.

A node that refuses its log ("cannot start raft", exit 1: raft_uv found
the segment damaged, and kyufu runs raft_uv without its auto-recovery,
docs/raft.md "Auto-recovery decision") is replaced by the operator's
procedure with its own id (fault_corrupt.replace_node)."""
from harness import fault_corrupt

# Exit 1: raft_uv refused the log itself; exit 4: kyufu's check of the open
# segments before raft_uv loads them (raft-glue/segment_check.h) refused a
# batch damaged in the middle or a segment cut short.
REFUSALS = {1: ("cannot start raft",), 4: ("cannot start raft",)}



def damages(path):
    if fault_corrupt.is_open_segment(path):
        return ("flip",)
    return ("truncate", "flip")


_F = fault_corrupt.Corruption("corrupt-log", "log", damages, REFUSALS,
                              [fault_corrupt.replace_node])
prepare = _F.prepare
inject = _F.inject
heal = _F.heal
