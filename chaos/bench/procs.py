"""Stopping the processes a chaos/bench script started (side_by_side.py,
install_drill.py): one way, by the Popen's PID, never by name."""
import signal
import subprocess


def stop(p, timeout_s):
    """SIGTERM to p (a subprocess.Popen), then SIGKILL if it has not exited
    timeout_s seconds later; waits for it.  Returns (exit status, True if
    it had to be killed).  A process that has already exited is sent
    nothing."""
    if p.poll() is not None:
        return p.returncode, False
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout_s), False
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(), True
