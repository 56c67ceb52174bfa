"""The replace-node fault (docs/chaos.md "Faults: replace-node"): a member
(the plan's target: the leader, a follower; fault_replace_dead.py kills
it first) is replaced by a fresh node
(a new id, an empty data folder, its own namespace slot) while the
clients write, through the operator's own path: `kyufuctl node new`
writes the new node's certificate and kyufud.conf (join = yes), the node
starts in the free namespace slot, and `kyufuctl cluster replace-node`
adds it (standby, caught up, voter), hands leadership to it if the old
node leads, and removes the old node.

inject() starts replace-node in the background and returns (the fault is
the membership change itself, so the clients' unavailability during it is
the fault's RTO); heal() waits for it, runs it again if it failed (it is
resumable: each step skipped when done) up to TRIES times, checks the
leader's configuration (the old node gone, every member a voter), then
stops the removed node (SIGTERM: it must exit 0) and moves its folder
(data and log) into the run folder as removed-node<ID>.  A change that
does not complete is a harness error: the run fails."""
import os
import shutil
import signal
import subprocess
import time

from harness import fault_corrupt, netns, patience

OPERATOR = "op1"        # the operator account kyufuctl acts as
CATCH_UP_MS = 60000     # replace-node's --catch-up-timeout-ms
# One replace-node run: catch-up (bounded above) plus the hand-over and
# the removal, each a commit (COMMITS_S, scaled by the load like STOP_S
# and LEADER_S: harness.patience); more than that is a hung command.
COMMITS_S = 30.0
TRIES = 3               # replace-node runs in all (it resumes)
STOP_S = 30.0           # the removed node's clean stop
LEADER_S = 30.0         # a leader among the new members, after the change
_STATE = "replacing"    # the Injector attribute of the change under way


def _client_conf(c, nodes):
    """kyufuctl's config: the API addresses of nodes (the members, and the
    joining node: it leads after a hand-over)."""
    path = os.path.join(c.dir, "chaos-ctl.conf")
    with open(path, "w") as f:
        f.write("[client]\nendpoints = %s\nca = %s\ncert = %s\nkey = %s\n"
                "actor = %s\n" % (",".join(c.api[i] for i in nodes), c.ca,
                                  c.client_cert, c.client_key, OPERATOR))
    return path


def _ctl_argv(c, conf, *args):
    return [c.kyufuctl, "--config", conf] + list(args)


def _ctl(c, conf, *args, timeout=60.0):
    p = subprocess.run(_ctl_argv(c, conf, *args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=c.ctl_env(OPERATOR))
    return p.returncode, p.stdout, p.stderr


def _replace_argv(c, conf, old, new):
    return _ctl_argv(c, conf, "--json", "cluster", "replace-node", "--old",
                     str(old), "--new", str(new), "--raft", c.raft[new],
                     "--api", c.api[new], "--catch-up-timeout-ms",
                     str(CATCH_UP_MS))


def inject(inj, node):
    c = inj.c
    L = c.s["ledger_pb2"]
    c.account(OPERATOR, [L.ROLE_OPERATOR], "chaos operator")  # once
    slot = c.free_slot()
    if slot is None:
        raise RuntimeError("replace-node: no free namespace slot")
    new = c.next_id
    folder = os.path.join(c.dir, "node%d" % new)
    raft = "%s:%d" % (c.net.addr(slot), netns.RAFT_PORT)
    api = "%s:%d" % (c.net.addr(slot), netns.API_PORT)
    conf = _client_conf(c, c.ids())
    rc, out, err = _ctl(c, conf, "--json", "node", "new", "--id", str(new),
                        "--raft", raft, "--api", api, "--pki",
                        os.path.join(c.dir, "pki"), "--out", folder)
    if rc != 0:
        raise RuntimeError("kyufuctl node new --id %d: exit %d: %s"
                           % (new, rc, err.strip()))
    c.join(new, slot, os.path.join(folder, "kyufud.conf"))
    inj.add_node(new)  # mounts, clock file... of the other fault modules
    c.start(new)
    conf = _client_conf(c, c.ids() + [new])
    log = open(os.path.join(c.dir, "replace-%d-%d.out" % (node, new)), "w")
    proc = subprocess.Popen(_replace_argv(c, conf, node, new),
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env=c.ctl_env(OPERATOR))
    log.close()
    setattr(inj, _STATE, {"old": node, "new": new, "proc": proc,
                          "conf": conf, "log": log.name})
    return {"new_node": new}


def _members(c, nodes):
    """The member list ({id: role}) of the leader that one of nodes names
    and that names itself, or None after LEADER_S."""
    end = time.monotonic() + patience.scaled(LEADER_S)
    while time.monotonic() < end:
        for i in nodes:
            st = c.status(i, timeout=2.0)
            if st is None or st.leader_id not in nodes:
                continue
            ls = c.status(st.leader_id, timeout=2.0)
            if ls is not None and ls.leader_id == st.leader_id:
                return {m.id: m.role for m in ls.members}
        time.sleep(0.1)
    return None


def _run_s():
    return CATCH_UP_MS / 1000.0 + patience.scaled(COMMITS_S)


def _finish(inj, r):
    """Wait for the background replace-node, resume it until it succeeds
    (TRIES runs in all); the exit code of the last run.  A run refused
    with "another membership change is running" (the run before ended on
    kyufuctl's own deadline while the leader went on with its change) is
    not a try: it is run again, as that answer says, once the change has
    finished, for up to fault_corrupt.BUSY_S (scaled by the load)."""
    c = inj.c
    rc = None
    try:
        rc = r["proc"].wait(timeout=_run_s())
    except subprocess.TimeoutExpired:
        r["proc"].kill()  # our own child, by its PID
        r["proc"].wait()
    tries = 1
    busy_end = None
    while rc != 0 and tries < TRIES:
        with open(r["log"], "a") as log:
            log.write("-- again (resumes)\n")
            log.flush()
            start = log.tell()
            try:
                rc = subprocess.run(_replace_argv(c, r["conf"], r["old"],
                                                  r["new"]),
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    env=c.ctl_env(OPERATOR),
                                    timeout=_run_s()).returncode
            except subprocess.TimeoutExpired:
                rc = None
        with open(r["log"]) as f:
            f.seek(start)
            busy = rc != 0 and fault_corrupt.BUSY in f.read()
        if busy:
            if busy_end is None:
                busy_end = time.monotonic() + patience.scaled(
                    fault_corrupt.BUSY_S)
            if time.monotonic() < busy_end:
                time.sleep(1.0)
                continue
        tries += 1
    return rc


def heal(inj):
    r = getattr(inj, _STATE, None)
    if r is None:
        return
    setattr(inj, _STATE, None)
    c = inj.c
    old, new = r["old"], r["new"]
    rc = _finish(inj, r)
    with open(r["log"]) as f:
        said = f.read()
    want = sorted([i for i in c.ids() if i != old] + [new])
    got = _members(c, want) if rc == 0 else None
    if got is None or sorted(got) != want or \
            set(got.values()) != {"voter"}:
        inj.errors.append("replace-node %d -> %d: exit %s, members %s "
                          "(want voters %s): %s" % (old, new, rc, got, want,
                                                   said[-2000:]))
        return
    c.swap_member(old, new)
    t = time.monotonic()
    if c.alive(old):
        c.kill(old, signal.SIGTERM)
        stop_s = patience.scaled(STOP_S)
        try:
            code = c.wait_exit(old, stop_s)
        except subprocess.TimeoutExpired:
            code = "none in %.0f s" % stop_s
            c.kill(old, signal.SIGKILL)
            c.wait_exit(old, stop_s)
        if code != 0:
            inj.errors.append("removed node %d: exit %s on SIGTERM"
                              % (old, code))
    # Its folder into the run folder, unless its data folder is a mount
    # of another module (fault_disk's tmpfs, unmounted by path at the end).
    if inj.out is not None and not os.path.ismount(
            os.path.join(os.path.dirname(c.log_path(old)), "data")):
        dest = os.path.join(inj.out, "removed-node%d" % old)
        shutil.move(c.log_path(old).rsplit(os.sep, 1)[0], dest)
        c.moved[old] = dest
    inj.hist.write("replaced", old=old, new=new, stopped_t=t,
                   kyufuctl=said[-1000:])
