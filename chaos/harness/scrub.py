"""The scrub in chaos runs (docs/scrub.md, docs/chaos.md "Faults: disk
full and corrupted files", flip-store): every node's kyufud.conf gets
`[scrub] interval_seconds = INTERVAL_S` (NetCluster), so that a replica
whose store silently differs stops with exit 4 within seconds instead of
at the run's end; a fault's heal and the final phase wait for a scrub.

wait(c, node, offset, timeout) reads node's log after offset until a
verdict: "passed" (a `scrub passed` line: its state agrees with a majority
of the voters), "corrupt" (it exited 4 after a `CORRUPT:` line: its store
differed, or its scan met a damaged page), "exited" (another exit), or
None (neither within timeout: no scrub could decide, e.g. too few voters
up)."""
import time

from harness import nodelog

INTERVAL_S = 3
CONF = "[scrub]\ninterval_seconds = %d\n" % INTERVAL_S
# A scrub proposed after the offset, its digest and the comparison (one
# ask a second); more when the cluster has just elected a leader.
WAIT_S = 4 * INTERVAL_S + 10.0
PASSED = '"msg":"scrub passed'
CORRUPT = '"msg":"CORRUPT: '


def wait(c, node, offset, timeout=WAIT_S):
    end = time.monotonic() + timeout
    while True:
        text = nodelog.read_from(c.log_path(node), offset)
        rc = c.procs[node].poll() if node in c.procs else None
        if rc is not None:
            return "corrupt" if rc == 4 and CORRUPT in text else "exited"
        if PASSED in text:
            return "passed"
        if time.monotonic() >= end:
            return None
        time.sleep(0.2)
