"""Damaged files on one node (docs/chaos.md "Faults: disk full and
corrupted files"), shared by the actions `corrupt-log`
(harness.fault_corrupt_log), `cut-open-log` (harness.fault_cut_open_log),
`corrupt-store` (harness.fault_corrupt_store) and `flip-store`
(harness.fault_flip_store).

inject() kills the node with SIGKILL, then damages one of its files: a
Raft segment (closed `N-M` or open `open-K`) for "log", the LMDB
`data.mdb` for "store"; truncated to a shorter length or with a few bits
flipped (the action says which files it damages, and how).  Which file,
which damage and where are drawn from a random.Random seeded with the
run's seed, as fractions scaled to the file's size at injection (a replay
draws the same fractions; the files can differ).

heal() starts the node again and watches it for START_WAIT_S:
- it runs (its Status answers): the damage went unnoticed or did no harm;
  the run's checker compares every replica's digest at the end;
- it refuses to start with one of the action's documented refusals (exit
  1 "cannot start raft" for a damaged log, exit 4 "cannot open the store"
  for a damaged store): the action's operator repairs run in order, each
  followed by a start, until the node runs.
Any other outcome (a signal, a node that exits after answering) is left
to the Injector, which reports a node that exited on its own."""
import os
import random
import re
import shutil
import signal
import time

import grpc

from harness import nodelog

START_WAIT_S = 30.0     # from start to a Status answer or an exit
FLIP_BITS = (1, 4)      # bits flipped per damage, inclusive
_SEGMENT = re.compile(r"^(\d+-\d+|open-\d+)$")


def files(root, what):
    """The node's Raft segment files ("log") or data.mdb ("store") under
    root, sorted."""
    out = []
    for d, _dirs, names in os.walk(root):
        for n in names:
            if (what == "log" and _SEGMENT.match(n)) or \
                    (what == "store" and n == "data.mdb"):
                out.append(os.path.join(d, n))
    return sorted(out)


def _written(path):
    """The length of path without its trailing zero bytes (raft_uv
    preallocates open segments: only the start holds entries)."""
    end = os.path.getsize(path)
    with open(path, "rb") as f:
        while end > 0:
            n = min(end, 1 << 16)
            f.seek(end - n)
            chunk = f.read(n).rstrip(b"\0")
            if chunk:
                return end - n + len(chunk)
            end -= n
    return 0


def is_open_segment(path):
    return os.path.basename(path).startswith("open-")


def _damage(rnd, path, damages):
    """Truncate or flip bits in path (one of damages), within its written
    part; a description of what was done."""
    size = _written(path)
    how = rnd.choice(damages)
    fracs = [rnd.random() for _ in range(1 + FLIP_BITS[1] * 2)]
    if size == 0:
        return {"file": path, "written": 0, "damage": "none (empty file)"}
    if how == "truncate":
        new = int(fracs[0] * size)
        os.truncate(path, new)
        return {"file": path, "written": size, "damage": "truncate",
                "to": new}
    n = FLIP_BITS[0] + int(fracs[0] * (FLIP_BITS[1] - FLIP_BITS[0] + 1))
    flips = []
    with open(path, "r+b") as f:
        for k in range(n):
            off = int(fracs[1 + 2 * k] * size)
            bit = int(fracs[2 + 2 * k] * 8)
            f.seek(off)
            b = f.read(1)[0]
            f.seek(off)
            f.write(bytes([b ^ (1 << bit)]))
            flips.append([off, bit])
    return {"file": path, "written": size, "damage": "flip", "bits": flips}


class Corruption:
    def __init__(self, action, what, damages, refusals, repairs):
        """action: the fault action's name; what: "log" or "store";
        damages(path): the damages to draw from for that file, a subset
        of ("truncate", "flip"), or () to leave it alone; refusals: {exit
        status:
        [log line fragments]} that mark the node's documented refusal to
        start on damaged data; repairs: [repair(cluster, node)], the
        operator's repairs, tried in order while the node refuses (a
        repair may start the node itself)."""
        self.action = action
        self.what = what
        self.damages = damages
        self.refusals = refusals
        self.repairs = repairs
        self.rnd = random.Random(0)
        self.down = {}  # node -> the damage done, until healed

    def prepare(self, _c, seed):
        self.rnd = random.Random("%s-%d" % (self.action, seed))

    def inject(self, inj, node):
        c = inj.c
        c.kill(node, signal.SIGKILL)
        c.wait_exit(node, 10)
        found = [f for f in files(os.path.join(c.dir, "node%d" % node,
                                               "data"), self.what)
                 if self.damages(f) and _written(f) > 0]  # not unused
        pick = self.rnd.random()
        if not found:
            done = {"damage": "none (no %s file with data)" % self.what}
        else:
            path = found[int(pick * len(found))]
            done = _damage(self.rnd, path, self.damages(path))
            done["file"] = os.path.relpath(path, c.dir)
        self.down[node] = done
        inj.hist.write("fault-note", action=self.action, node=node, **done)
        print("chaos: %s: node %d killed, %s" % (self.action, node, done),
              flush=True)

    def _start_and_watch(self, c, node):
        """Start node (unless the repair did); "running", or (exit status,
        its last error line)."""
        offset = nodelog.size(c.log_path(node))
        if not c.alive(node):
            c.start(node)
        end = time.monotonic() + START_WAIT_S
        while time.monotonic() < end:
            rc = c.procs[node].poll()
            if rc is not None:
                return rc, nodelog.last_error(c.log_path(node), offset)
            if c.status(node, timeout=1.0) is not None:
                return "running"
            time.sleep(0.1)
        return "running"  # slow, not refused: the Injector watches on

    def _refused(self, outcome):
        if outcome == "running":
            return False
        rc, line = outcome
        return line is not None and \
            any(k in line for k in self.refusals.get(rc, ()))

    def heal(self, inj):
        for node, done in sorted(self.down.items()):
            c = inj.c
            t0 = time.monotonic()
            outcome = self._start_and_watch(c, node)
            note = {"action": self.action, "node": node, "healed": True,
                    "start": _show(outcome), "repairs": []}
            for repair in self.repairs:
                if not self._refused(outcome):
                    break
                repair(c, node)
                outcome = self._start_and_watch(c, node)
                note["repairs"].append({"repair": repair.__name__,
                                        "then": _show(outcome)})
            note["restart_s"] = round(time.monotonic() - t0, 2)
            inj.hist.write("fault-note", **note)
            print("chaos: %s: node %d %s" % (
                self.action, node, {k: v for k, v in note.items()
                                    if k not in ("action", "node")}),
                flush=True)
        self.down.clear()


def _show(outcome):
    if outcome == "running":
        return "running"
    return {"exit_code": outcome[0], "line": outcome[1]}


def wipe(path):
    """Remove a file or folder if it is there."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


CATCH_UP_MS = 60000     # AddNode's bound for the standby's catch-up
LEADER_S = 30.0


def _join_conf(path):
    """`join = yes` in the config's [node] section (kyufuctl node new
    writes the same for a new node)."""
    with open(path) as f:
        text = f.read()
    if "\njoin = yes\n" not in text:
        text = text.replace("[node]\n", "[node]\njoin = yes\n", 1)
        with open(path, "w") as f:
            f.write(text)


BUSY_S = 120.0          # how long a repair waits out an earlier change


def _membership_call(c, node, call):
    """call(leader) on the leader of the others, again while the leader
    answers FAILED_PRECONDITION "another membership change is running"
    (one change at a time: an earlier fault's replace-node, or its
    catch-up, may still be under way), as an operator would, for up to
    BUSY_S."""
    end = time.monotonic() + BUSY_S
    while True:
        lead = c.wait_leader(LEADER_S, exclude=(node,), majority=True)
        try:
            return call(lead)
        except grpc.RpcError as e:
            busy = (e.code() == grpc.StatusCode.FAILED_PRECONDITION and
                    "another membership change" in (e.details() or ""))
            if not busy or time.monotonic() > end:
                raise
        time.sleep(0.5)


def replace_node(c, node):
    """docs/operations.md "Replacing a node" with the same id and
    addresses: the node is removed from the configuration (RemoveNode on
    the leader), its data folder emptied, its config given `join = yes`,
    it is started and added back (AddNode): it catches up as a standby and
    votes again only once it holds the log.  Wiping the folder and letting
    the node rejoin as a voter would not be safe: with its log and its
    vote gone it could help elect a leader that lacks entries it had
    acknowledged."""
    S = c.s["service_pb2"]
    try:
        _membership_call(c, node, lambda lead: c.cluster(lead).RemoveNode(
            S.RemoveNodeRequest(id=node), timeout=30))
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
    data = os.path.join(c.dir, "node%d" % node, "data")
    for name in os.listdir(data):   # the folder may be a mount point
        wipe(os.path.join(data, name))
    _join_conf(c.conf[node])
    c.start(node)
    _membership_call(c, node, lambda lead: c.cluster(lead).AddNode(
        S.AddNodeRequest(id=node, raft_address=c.raft[node],
                         api_address=c.api[node],
                         catch_up_timeout_ms=CATCH_UP_MS),
        timeout=CATCH_UP_MS / 1000 + 30))
