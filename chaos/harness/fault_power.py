"""Fault action "power" (kind power-all, docs/chaos.md "Faults: power loss
and clock jumps"): the power of all three nodes fails at once.

When a plan holds this action, setup() puts each node's data folder on its
own kyufu-powerfs mount (chaos/powerfs/powerfs.c: every write is held until
the file is fsynced, a cut drops what is held) and gives every kyufud a
boot id file (the KYUFU_BOOT_ID_FILE test hook, docs/testing.md), and a
snapshot threshold no run reaches (SNAPSHOT_THRESHOLD).  inject()
cuts the power of all three mounts (unsynced data dropped, the mounts then
answer EIO) and kills -9 every kyufud; heal() unmounts, mounts again from
what was synced and writes a new boot id for every node (the OS restarted:
a store flushed in the background is rebuilt from the node's own Raft
snapshot and log, docs/storage.md); Injector.heal_all then restarts the
nodes like any killed node.  The target is ignored ("all").

Mounts live in the mount namespace of the run's inner process (`ip netns
exec` gives it one of its own, a slave of the host's), so the host never
sees them; teardown() kills the nodes and unmounts, and a run killed with
SIGKILL leaves nothing mounted either: once chaos/run's namespace sweep has
killed the kyufu-powerfs daemons (they run in the client namespace), the
mount namespace holding the mounts is gone."""
import os
import shutil
import signal

import powerfs as P

ACTION = "power"
CUT_WAIT_S = 15.0  # a killed kyufud's exit (its files close)
# libraft 0.22.1 writes a snapshot with open(O_TMPFILE), which a FUSE
# mount refuses: raft_uv retries and kyufud stops (docs/chaos.md
# "Findings").  On powerfs mounts the nodes take no snapshot: the largest
# threshold kyufud accepts (raft-glue/glue_limits.h), far more entries than
# a run makes.
SNAPSHOT_THRESHOLD = 1048576


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


class State:
    def __init__(self, c, prog):
        self.c = c
        self.mounts = {}
        self.boots = {i: 0 for i in range(1, c.n + 1)}
        self.down = False  # cut, not yet mounted again
        for i in range(1, c.n + 1):
            nd = os.path.join(c.dir, "node%d" % i)
            data, disk = os.path.join(nd, "data"), os.path.join(nd, "disk")
            # The data folder (holding its bootstrap-admin file) becomes
            # the backing folder of a mount at the same path.
            shutil.move(data, disk)
            self.mounts[i] = P.Mount(prog, disk, data,
                                     os.path.join(nd, "powerfs.log"))
            self.new_boot(i)

    def new_boot(self, i):
        self.boots[i] += 1
        path = os.path.join(self.c.dir, "node%d" % i, "boot_id")
        with open(path + ".tmp", "w") as f:
            f.write("00000000-0000-4000-8000-%06d%06d\n" % (i, self.boots[i]))
        os.rename(path + ".tmp", path)
        self.c.node_env.setdefault(i, {})["KYUFU_BOOT_ID_FILE"] = path


_state = None


def setup(c, kinds, actions):
    """Before the nodes start: mounts, if the plan cuts power."""
    global _state
    if ACTION not in actions:
        return
    _state = State(c, program(c.kyufud))
    for i in range(1, c.n + 1):
        with open(c.conf[i]) as f:
            text = f.read()
        assert "snapshot_threshold" not in text, c.conf[i]
        with open(c.conf[i], "w") as f:
            f.write(text.replace("[raft]\n", "[raft]\nsnapshot_threshold = "
                                 "%d\n" % SNAPSHOT_THRESHOLD, 1))
    for m in _state.mounts.values():
        m.mount()


def inject(inj, node):
    st = _state
    assert st is not None and not st.down, "power fault without mounts"
    del node  # every node loses power
    dropped = {i: m.cut() for i, m in st.mounts.items()}
    st.down = True
    for i in st.mounts:
        if inj.c.alive(i):
            inj.c.kill(i, signal.SIGKILL)
        inj.killed.add(i)
    for i in st.mounts:
        inj.c.wait_exit(i, CUT_WAIT_S)
    print("chaos: power-all dropped %s" % ", ".join(
        "node %d %d bytes in %d files (data.mdb %d)" % (
            i, d["bytes"], d["files"],
            d["per_file"].get("/ledger/data.mdb", (0, 0))[1])
        for i, d in sorted(dropped.items())), flush=True)


def heal(inj):
    st = _state
    if st is None or not st.down:
        return
    for m in st.mounts.values():
        m.unmount()
    for i, m in st.mounts.items():
        m.mount()
        st.new_boot(i)  # the OS restarted with the power
    st.down = False


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
