"""Fault action `disk-full` (docs/chaos.md "Faults: disk full and
corrupted files"): one node's data folder runs out of space, then gets it
back.

Each node's data folder is its own small tmpfs (DATA_FS_BYTES), mounted by
prepare() before the nodes start.  The mounts are made by the inner run,
which `ip netns exec` put in a mount namespace of its own, so they are
invisible outside the run and the kernel drops them when the run's last
process exits (a run killed with SIGKILL leaves none behind); teardown()
still detaches them before the cluster folder is removed.

inject() fills the node's filesystem with a ballast file (fallocate) and
waits until the node has met the full disk (it exited) or FULL_WAIT_S
passed.  heal() removes the ballast and, if the node exited, checks that
it was the documented stop (exit status 1 and a "stopping" line with the
reason "fatal raft or storage error", docs/operations.md "Exit status":
systemd restarts such a node) and restarts it, as systemd would.  Any other
exit (a signal, status 4) is left to the Injector, which reports a node
that exited on its own."""
import os
import shutil
import subprocess
import time

from harness import nodelog

DATA_FS_BYTES = 1 << 30     # each node's data folder (RAM only as used,
#                             but all of it while the ballast fills it):
#                             ~30 s under six clients wrote 83 MB of store
#                             on a quiet VM, so runs of a few minutes fit
FULL_WAIT_S = 10.0          # a node may write into space it already holds
#                             (preallocated segments, LMDB's free pages)
EXPECTED_RC = 1             # docs/operations.md "Exit status"
EXPECTED_STOP = '"reason":"fatal raft or storage error"'
BALLAST = "chaos-ballast"

_full = {}      # node -> (ballast path, log offset, time), while on
_exited = {}    # node -> seconds from the full disk to its exit
_mounted = []   # data folders with our tmpfs


def data_dir(c, i):
    return os.path.join(c.dir, "node%d" % i, "data")


def prepare(c, _seed):
    """Before the nodes start: every node's data folder on its own tmpfs
    (its current files, the bootstrap admin file, are copied in)."""
    for i in range(1, c.n + 1):
        d = data_dir(c, i)
        aside = d + ".pre"
        os.rename(d, aside)
        os.mkdir(d, 0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%d,mode=0700" % DATA_FS_BYTES,
                        "kyufu-chaos-data", d], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _mounted.append(d)
        for name in os.listdir(aside):
            shutil.copy2(os.path.join(aside, name), os.path.join(d, name))
        shutil.rmtree(aside)


def teardown(c):
    """Detach the tmpfs mounts (lazily: a node may still run; its files go
    when it exits) so the cluster folder can be removed."""
    _full.clear()
    _exited.clear()
    while _mounted:
        subprocess.run(["umount", "-l", _mounted.pop()],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _fill(path):
    """Allocate every free block of path's filesystem to path."""
    st = os.statvfs(os.path.dirname(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        size = 0
        chunk = st.f_bavail * st.f_frsize
        while chunk >= 4096:
            try:
                os.posix_fallocate(fd, size, chunk)
                size += chunk
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)


def inject(inj, node):
    if data_dir(inj.c, node) not in _mounted:
        # A node that joined after prepare() (the replace-node kinds) has
        # no tmpfs of its own: filling its folder would fill the host's.
        raise RuntimeError("disk-full: node %d's data folder is not on a "
                           "tmpfs of the run" % node)
    path = os.path.join(data_dir(inj.c, node), BALLAST)
    offset = nodelog.size(inj.c.log_path(node))
    _fill(path)
    t_full = time.monotonic()
    _full[node] = (path, offset, t_full)
    st = os.statvfs(os.path.dirname(path))
    inj.hist.write("fault-note", action="disk-full", node=node,
                   free_bytes=st.f_bavail * st.f_frsize, t=t_full)
    end = t_full + FULL_WAIT_S
    while time.monotonic() < end and inj.c.alive(node):
        time.sleep(0.05)
    if not inj.c.alive(node):
        _exited[node] = round(time.monotonic() - t_full, 2)


def heal(inj):
    for node, (path, offset, _t) in sorted(_full.items()):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        p = inj.c.procs.get(node)
        rc = p.poll() if p is not None else None
        log = inj.c.log_path(node)
        said = nodelog.read_from(log, offset)
        reason = nodelog.last_error(log, offset) if rc is not None else None
        documented = rc == EXPECTED_RC and EXPECTED_STOP in said
        inj.hist.write("fault-note", action="disk-full", node=node,
                       healed=True, exit_code=rc, reason=reason,
                       documented_stop=documented,
                       exited_after_s=_exited.get(node))
        if documented and node not in inj.killed:
            print("chaos: disk-full: node %d stopped as documented (exit "
                  "1: %s); space back, restarting it"
                  % (node, (reason or "")[:300]), flush=True)
            inj.c.start(node)
        elif rc is not None:
            print("chaos: disk-full: node %d exited %s without the "
                  "documented stop (%s)" % (node, rc, reason), flush=True)
    _full.clear()
    _exited.clear()

