"""Fault action `disk-full` (docs/chaos.md "Faults: disk full and
corrupted files"): one node's data folder runs out of space, then gets it
back.

Each node's data folder is its own small tmpfs (DATA_FS_BYTES), mounted by
prepare() before the nodes start, and by join() for a node the harness
adds (the replace-node kinds).  The mounts are made by the inner run,
which `ip netns exec` put in a mount namespace of its own, so they are
invisible outside the run and the kernel drops them when the run's last
process exits (a run killed with SIGKILL leaves none behind); teardown()
still detaches them before the cluster folder is removed.  The module
finds a node's tmpfs in /proc/self/mountinfo (source FS_SOURCE under the
node's folder), so it keeps no list of paths: fault_power moves a tmpfs
to the backing folder of its powerfs mount (the held writes then land on
it, and a full tmpfs is full under powerfs too).

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

DATA_FS_BYTES = 3 << 30     # each node's data folder (RAM only as used,
#                             but all of it while the ballast fills it).
#                             1 GiB held runs of a few minutes but not the
#                             soak's 900 s ones: at ~13 min a leader held a
#                             450 MB store, ~200 MB snapshots (two kept,
#                             one more being written) and its log, met a
#                             real ENOSPC and stopped (seed 180057676,
#                             docs/chaos-findings.md)
FULL_WAIT_S = 10.0          # a node may write into space it already holds
# How long heal waits for a node to stop over a write that failed while
# the disk was full (its report can come after the space is back).
LATE_STOP_S = 2.0
#                             (preallocated segments, LMDB's free pages)
EXPECTED_RC = 1             # docs/operations.md "Exit status"
EXPECTED_STOP = '"reason":"fatal raft or storage error"'
BALLAST = "chaos-ballast"

FS_SOURCE = "kyufu-chaos-data"   # the tmpfs's source in mountinfo

_full = {}      # node -> (ballast path, log offset, time), while on
_exited = {}    # node -> seconds from the full disk to its exit
_on = False     # the plan fills disks (prepare ran): joining nodes too


def data_dir(c, i):
    """Node i's data folder (its kyufud.conf's folder + data, as Cluster
    and kyufuctl node new write it)."""
    return os.path.join(os.path.dirname(c.conf[i]), "data")


def _tmpfs_mounts():
    """The mount points of this mount namespace's FS_SOURCE tmpfs
    mounts."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            tail = fields[fields.index("-") + 1:]
            if tail[:2] == ["tmpfs", FS_SOURCE]:
                out.append(fields[4].replace("\\040", " "))
    return out


def fs_dir(c, i):
    """Where node i's tmpfs is mounted (its data folder, or where
    fault_power moved it), or None if it has none."""
    top = os.path.dirname(os.path.abspath(c.conf[i])) + os.sep
    for mp in _tmpfs_mounts():
        if mp.startswith(top):
            return mp
    return None


def _on_tmpfs(c, i):
    """Node i's data folder (not started yet) on a tmpfs of its own (its
    current files, the bootstrap admin file if any, are copied in)."""
    d = data_dir(c, i)
    # fault_power's mount (its setup, or its join) comes after this one.
    assert not os.path.ismount(d), "%s is a mount already" % d
    aside = d + ".pre"
    os.rename(d, aside)
    os.mkdir(d, 0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    "size=%d,mode=0700" % DATA_FS_BYTES, FS_SOURCE, d],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    for name in os.listdir(aside):
        shutil.copy2(os.path.join(aside, name), os.path.join(d, name))
    shutil.rmtree(aside)


def prepare(c, _seed):
    """Before the nodes start: every node's data folder on its own
    tmpfs."""
    global _on
    _on = True
    for i in c.ids():
        _on_tmpfs(c, i)


def join(c, i):
    """A node added by the harness (replace-node) gets its tmpfs too, if
    the plan fills disks: disk-full may pick it."""
    if _on:
        _on_tmpfs(c, i)


def teardown(c):
    """Detach the run's tmpfs mounts (lazily: a node may still run; its
    files go when it exits) so the cluster folder can be removed."""
    global _on
    _full.clear()
    _exited.clear()
    _on = False
    top = os.path.abspath(c.dir) + os.sep
    for mp in sorted(_tmpfs_mounts(), reverse=True):
        if mp.startswith(top):
            subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


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
    fs = fs_dir(inj.c, node)
    if fs is None:
        # Never fill a folder that is not on a tmpfs of the run: that
        # would fill the host's /tmp.
        raise RuntimeError("disk-full: node %d's data folder is not on a "
                           "tmpfs of the run" % node)
    path = os.path.join(fs, BALLAST)
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
        # A write that failed just before the space came back is reported
        # a moment after it (seed 3210042731's replay: node 7 stopped as
        # documented just after this heal and was counted as exiting on
        # its own): give it LATE_STOP_S to stop.
        end = time.monotonic() + LATE_STOP_S
        while p is not None and p.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
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

