"""How long the harness waits for the cluster, scaled by the machine's
load (docs/chaos.md "Waits under load").

Every fixed wait of the harness (a node's start, a leader after a heal,
the settle catch-up, the final read, the clean stop) was measured on an
idle machine.  On a shared one (the soak: load average 25-30 on 2 CPUs)
each kyufud gets a fraction of a CPU, so the same work takes several
times longer and a fixed bound fails runs where nothing is lost.  A wait
is therefore its idle bound times factor(): the load average over the
CPU count at the moment the wait starts, at least 1 (an idle machine
waits as before) and at most FACTOR_MAX, so a cluster that never
recovers still fails the run, only later."""
import os

FACTOR_MAX = 4.0


def factor():
    """1 on an idle machine, the 1-minute load per CPU above that, at most
    FACTOR_MAX."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average: wait as on an idle machine
        return 1.0
    return min(FACTOR_MAX, max(1.0, load / (os.cpu_count() or 1)))


def scaled(seconds):
    """seconds (an idle machine's bound) scaled by factor()."""
    return seconds * factor()
