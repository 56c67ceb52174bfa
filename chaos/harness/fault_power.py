"""Fault action "power" (kind power-all, docs/chaos.md "Faults: power loss
and clock jumps"): the power of all three nodes fails at once.

When a plan holds this action, setup() puts each node's data folder on its
own kyufu-powerfs mount (chaos/powerfs/powerfs.c: every write is held until
the file is fsynced, a cut drops what is held) and gives every kyufud a
boot id file (the KYUFU_BOOT_ID_FILE test hook, docs/testing.md); join()
does the same for a node the harness adds later (replace-node).  The nodes
take snapshots as configured: libraft writes them with O_TMPFILE, which
powerfs serves (chaos/powerfs/powerfs_loop.c), so a rebuild after a cut
restores the newest snapshot and replays only the log's tail.  inject()
cuts the power of every member's mount (unsynced data dropped, the mounts
then answer EIO) and kills -9 every member; heal() unmounts, mounts again
from what was synced and writes a new boot id for each of them (the OS
restarted: a store flushed in the background is rebuilt from the node's
own Raft snapshot and log, docs/storage.md); Injector.heal_all then
restarts the nodes like any killed node.  The target is ignored ("all").
A removed node's mount stays as it is until teardown().  If fault_disk
put the data folder on a tmpfs first, that tmpfs becomes the mount's
backing folder (moved there with mount --move).

Mounts live in the mount namespace of the run's inner process (`ip netns
exec` gives it one of its own, a slave of the host's), so the host never
sees them; teardown() kills the nodes and unmounts, and a run killed with
SIGKILL leaves nothing mounted either: once chaos/run's namespace sweep has
killed the kyufu-powerfs daemons (they run in the client namespace), the
mount namespace holding the mounts is gone."""
import os
import shutil
import signal
import subprocess

import powerfs as P

ACTION = "power"
CUT_WAIT_S = 15.0  # a killed kyufud's exit (its files close)


def program(kyufud):
    """kyufu-powerfs: $KYUFU_POWERFS, else beside kyufud in its build
    folder (build/node/kyufud -> build/chaos/powerfs/kyufu-powerfs)."""
    return os.environ.get("KYUFU_POWERFS") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(kyufud))),
        "chaos", "powerfs", "kyufu-powerfs")


def missing(kyufud):
    """Why power faults cannot run here (None if they can)."""
    prog = program(kyufud)
    if not os.access(prog, os.X_OK):
        return ("kyufu-powerfs not built (%s): install libfuse3-dev and "
                "fuse3 (scripts/setup) and reconfigure, or set "
                "KYUFU_POWERFS" % prog)
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is missing or not usable"
    if shutil.which("fusermount3") is None:
        return "fusermount3 missing (Debian package fuse3)"
    return None


def _move_folder(src, dst):
    """Move the folder src to dst; if src is a mount point (fault_disk's
    tmpfs), move the mount (the folder src stays, empty, on the parent
    filesystem, ready to be mounted over)."""
    if os.path.ismount(src):
        os.mkdir(dst, 0o700)
        subprocess.run(["mount", "--move", src, dst], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        os.rename(src, dst)


class State:
    def __init__(self, prog):
        self.prog = prog
        self.mounts = {}   # node: its powerfs mount (removed nodes' too)
        self.boots = {}    # node: its boot count
        self.cut = []      # the nodes whose power is cut, until healed

    def add(self, c, i):
        """Node i (not started yet) on a powerfs mount of its own, with a
        boot id."""
        nd = os.path.dirname(os.path.abspath(c.conf[i]))
        data, disk = os.path.join(nd, "data"), os.path.join(nd, "disk")
        # The data folder (holding its bootstrap-admin file, if any)
        # becomes the backing folder of a mount at the same path.
        _move_folder(data, disk)
        self.mounts[i] = P.Mount(self.prog, disk, data,
                                 os.path.join(nd, "powerfs.log"))
        self.boots[i] = 0
        self.new_boot(c, i)

    def new_boot(self, c, i):
        self.boots[i] += 1
        path = os.path.join(os.path.dirname(c.conf[i]), "boot_id")
        with open(path + ".tmp", "w") as f:
            f.write("00000000-0000-4000-8000-%06d%06d\n" % (i, self.boots[i]))
        os.rename(path + ".tmp", path)
        c.node_env.setdefault(i, {})["KYUFU_BOOT_ID_FILE"] = path


_state = None


def setup(c, kinds, actions):
    """Before the nodes start: mounts, if the plan cuts power."""
    global _state
    if ACTION not in actions:
        return
    _state = State(program(c.kyufud))
    for i in c.ids():
        _state.add(c, i)
    for i in c.ids():
        _state.mounts[i].mount()


def join(c, i):
    """A node added by the harness (replace-node) gets its mount and boot
    id too, if the plan cuts power: it is a member when the next cut
    comes."""
    if _state is not None:
        assert not _state.cut, "a node joins while the power is cut"
        _state.add(c, i)
        _state.mounts[i].mount()


def inject(inj, node):
    """Every member's power cut (a removed node's mount is left alone: it
    runs nothing)."""
    st = _state
    assert st is not None and not st.cut, "power fault without mounts"
    del node  # every node loses power
    members = inj.c.ids()
    # Frozen first: a real power loss gives a process no moment between
    # losing its unsynced bytes and dying, and a node left running while
    # they are reverted under its maps could crash for that alone.  Killed
    # only after the cut: closing its files earlier would let the mount see
    # a flush before the cut.  So any other death in between is a crash of
    # the node's own, and fails the run.
    alive = [i for i in members if inj.c.alive(i)]
    for i in alive:
        inj.c.kill(i, signal.SIGSTOP)
    dropped = {i: st.mounts[i].cut() for i in members}
    st.cut = members
    for i in members:
        if inj.c.alive(i):
            inj.c.kill(i, signal.SIGKILL)
        inj.killed.add(i)
    for i in members:
        rc = inj.c.wait_exit(i, CUT_WAIT_S)
        if i in alive and rc is not None and rc < 0 and rc != -signal.SIGKILL:
            raise AssertionError(
                "power-all: node %d died of signal %d before the harness "
                "killed it (a crash of its own)" % (i, -rc))
    print("chaos: power-all dropped %s" % ", ".join(
        "node %d %d bytes in %d files (data.mdb %d)" % (
            i, d["bytes"], d["files"],
            d["per_file"].get("/ledger/data.mdb", (0, 0))[1])
        for i, d in sorted(dropped.items())), flush=True)


def heal(inj):
    st = _state
    if st is None or not st.cut:
        return
    for i in st.cut:
        st.mounts[i].unmount()
    for i in st.cut:
        st.mounts[i].mount()
        st.new_boot(inj.c, i)  # the OS restarted with the power
    st.cut = []


def teardown(c):
    """Nodes killed (by PID), then the mounts removed; idempotent."""
    global _state
    st, _state = _state, None
    if st is None:
        return
    for p in c.procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()
    for m in st.mounts.values():
        m.close()


UNKNOWN_SESSION = "no such session"


def check(events):
    """The chaos clients sign in once and never sign out, and a run is far
    shorter than a session's idle limit: a node that calls one of their
    sessions unknown is wrong (a definite refusal the client would answer
    by signing in again).  Before the fix in node/auth.c surely_unknown, a
    leader replaying its log after power-all did (docs/chaos.md)."""
    bad = [e for e in events if e["ev"] == "fail" and
           e.get("code") == "UNAUTHENTICATED" and
           e.get("msg", "").startswith(UNKNOWN_SESSION)]
    if not bad:
        return []
    return ["%d operations refused with %r, the first: %s" % (
        len(bad), UNKNOWN_SESSION, bad[0])]
