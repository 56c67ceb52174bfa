"""Damaged files on one node (docs/chaos.md "Faults: disk full and
corrupted files"), shared by the actions `corrupt-log`
(harness.fault_corrupt_log) and `corrupt-store`
(harness.fault_corrupt_store).

inject() kills the node with SIGKILL, then damages one of its files: a
Raft segment (closed `N-M` or open `open-K`) for "log", the LMDB
`data.mdb` for "store"; either truncated to a shorter length or with a few
bits flipped.  Which file, which damage and where are drawn from a
random.Random seeded with the run's seed, as fractions scaled to the
file's size at injection (a replay draws the same fractions; the files
can differ).

heal() starts the node again and watches it for START_WAIT_S:
- it runs (its Status answers): the damage went unnoticed or did no harm;
  the run's checker compares every replica's digest at the end;
- it refuses to start (exit 1 "cannot start raft" for a damaged segment,
  exit 4 or 1 naming a damaged store): the documented operator repair
  (REPAIR below) runs, and the node is started again and must run.
Any other outcome (a signal, a node that exits after answering) is left
running-or-not for the Injector to report as a node that exited on its
own."""
import os
import random
import re
import shutil
import signal
import time

from harness import nodelog

START_WAIT_S = 30.0     # from start to a Status answer or an exit
FLIP_BITS = (1, 4)      # bits flipped per damage, inclusive
_SEGMENT = re.compile(r"^(\d+-\d+|open-\d+)$")


def _files(root, what):
    out = []
    for d, _dirs, names in os.walk(root):
        for n in names:
            if (what == "log" and _SEGMENT.match(n)) or \
                    (what == "store" and n == "data.mdb"):
                out.append(os.path.join(d, n))
    return sorted(out)


def _damage(rnd, path):
    """Truncate or flip bits in path; a description of what was done."""
    size = os.path.getsize(path)
    how = rnd.choice(("truncate", "flip"))
    fracs = [rnd.random() for _ in range(FLIP_BITS[1] * 2)]
    if size == 0:
        return {"file": path, "size": 0, "damage": "none (empty file)"}
    if how == "truncate":
        new = int(fracs[0] * size)
        os.truncate(path, new)
        return {"file": path, "size": size, "damage": "truncate",
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
    return {"file": path, "size": size, "damage": "flip", "bits": flips}


class Corruption:
    def __init__(self, what, refusals, repair):
        """what: "log" or "store"; refusals: {exit status: [log line
        fragments]} that mark the node's documented refusal to start on
        damaged data; repair(cluster, node): the operator's repair (it
        may start the node itself)."""
        self.what = what
        self.refusals = refusals
        self.repair = repair
        self.rnd = random.Random(0)
        self.down = {}  # node -> the damage done, until healed

    def prepare(self, _c, seed):
        self.rnd = random.Random("%s-%d" % (self.what, seed))

    def inject(self, inj, node):
        c = inj.c
        c.kill(node, signal.SIGKILL)
        c.wait_exit(node, 10)
        files = _files(os.path.join(c.dir, "node%d" % node, "data"),
                       self.what)
        pick = self.rnd.random()
        if not files:
            done = {"damage": "none (no %s file)" % self.what}
        else:
            path = files[int(pick * len(files))]
            done = _damage(self.rnd, path)
            done["file"] = os.path.relpath(path, c.dir)
        self.down[node] = done
        inj.hist.write("fault-note", action="corrupt-" + self.what,
                       node=node, **done)
        print("chaos: corrupt-%s: node %d killed, %s" % (self.what, node,
              done), flush=True)

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
            first = self._start_and_watch(c, node)
            note = {"action": "corrupt-" + self.what, "node": node,
                    "healed": True, "start": _show(first)}
            if self._refused(first):
                self.repair(c, node)
                second = self._start_and_watch(c, node)
                note.update(repaired=True, after_repair=_show(second))
            note["restart_s"] = round(time.monotonic() - t0, 2)
            inj.hist.write("fault-note", **note)
            print("chaos: corrupt-%s: node %d %s" % (
                self.what, node, {k: v for k, v in note.items()
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
