"""Reading a node's log after it stopped (the fault modules that expect a
documented stop: harness.fault_disk, harness.fault_corrupt)."""
import os

# Lines that only report the stop itself, not its reason.
_NOT_A_REASON = ('"msg":"stopping"', '"msg":"node stopped"',
                 '"msg":"store closed"')


def last_error(log_path, offset=0):
    """The node's last error-level line after offset that gives a reason
    (the cause of its stop), at most 600 characters; None if none."""
    for line in reversed(read_from(log_path, offset).splitlines()):
        if '"level":"error"' in line and \
                not any(k in line for k in _NOT_A_REASON):
            return line[:600]
    return None


def size(log_path):
    """The log's length now (read_from's offset)."""
    try:
        return os.path.getsize(log_path)
    except OSError:
        return 0


def read_from(log_path, offset):
    """What the node logged after offset."""
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""
