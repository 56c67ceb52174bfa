"""Scheduled backups with retention (docs/backup.md "Scheduled backups"),
end to end with three real kyufud sharing one backup directory (as on a
NAS), [backup] interval = 2s and keep_last = 2, while writes go on:

  - backups appear only from the lowest-id follower (auto-...-n<id>), and
    from the next one when that follower is stopped;
  - retention prunes the schedule's old ones down to keep_last, and never
    touches a good backup under another name, a folder that is not a
    backup, or a name that only looks like the schedule's;
  - `kyufuctl backup verify` passes on what remains;
  - the metrics move: scheduled_total and pruned_total on the taker, the
    newest backup's age small on every node (each scans the directory),
    failures counted while the backup KEK is unreadable and the schedule
    recovering after it is back; a restarted node has the age metric
    from its start scan before it writes anything;
  - hostile [backup] values: kyufud --check-config refuses with exit 2 and
    a line naming the key.

usage: test_backup_schedule.py KYUFUD KYUFUCTL"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import backup_test as B
import cluster as C
import workload as W
from ports import free_ports

AUTO = "auto-"
# Looks like the schedule's but is not (month 13): never pruned.
DECOY = "auto-20261301T000000Z-n7"


def ctl(kyufuctl, conf, env, *args, timeout=120):
    p = subprocess.run([kyufuctl, "--config", conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def write_kek(path, text=None):
    with open(path, "w") as f:
        f.write((text if text is not None else secrets.token_hex(32)) + "\n")
    os.chmod(path, 0o600)



def metrics_or_none(port):
    try:
        return B.metrics(port)
    except OSError:
        return None  # not listening yet


def autos(bkdir):
    return sorted(n for n in os.listdir(bkdir) if n.startswith(AUTO) and
                  n != DECOY)



def taker(c, exclude=()):
    """The lowest-id follower, as the design picks it."""
    leader = c.wait_leader(15, exclude=exclude)
    return min(i for i in c.ids() if i != leader and i not in exclude)


def hostile_configs(kyufud, c, work, bkdir, kek):
    base = open(c.conf[1]).read().split("[backup]\n")[0]
    bad_conf = os.path.join(work, "bad.conf")
    good = "directory = %s\nkek_file = %s\n" % (bkdir, kek)
    for section, want in [
            ("interval = 6\n", "interval"),          # no unit
            ("interval = 0s\n", "interval"),         # below 1 s
            ("interval = 1x\n", "interval"),
            ("interval = -1h\n", "interval"),
            ("interval = 1.5h\n", "interval"),
            ("interval = 367d\n", "interval"),
            ("interval = 99999999999999999999d\n", "interval"),
            ("interval = h\n", "interval"),
            ("interval = \n", "interval"),
            ("interval = 1h 2m\n", "interval"),
            ("keep_last = -1\ninterval = 1h\n", "keep_last"),
            ("keep_daily = many\ninterval = 1h\n", "keep_daily"),
            ("keep_monthly = 10001\ninterval = 1h\n", "keep_monthly"),
            ("keep_last = 3\n", "keep_last"),        # retention, no schedule
            ("io_priority = low\n", "io_priority"),
            ("interval = 1h\ninterval = 2h\n", "interval")]:
        with open(bad_conf, "w") as f:
            f.write(base + "[backup]\n" + good + section)
        os.chmod(bad_conf, 0o600)
        p = subprocess.run([kyufud, "--check-config", bad_conf],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and want in p.stderr, (section, p)
    # Started for real (not --check-config): the same refusal, one line.
    with open(bad_conf, "w") as f:
        f.write(base + "[backup]\n" + good + "interval = 6\n")
    p = subprocess.run([kyufud, "--config", bad_conf], capture_output=True,
                       text=True, timeout=30)
    lines = [ln for ln in p.stderr.splitlines() if "interval" in ln]
    assert p.returncode == 2 and len(lines) == 1, p
    # A schedule without a KEK or a directory.
    for section in ["directory = %s\ninterval = 1h\n" % bkdir,
                    "kek_file = %s\ninterval = 1h\n" % kek]:
        with open(bad_conf, "w") as f:
            f.write(base + "[backup]\n" + section)
        p = subprocess.run([kyufud, "--check-config", bad_conf],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "interval" in p.stderr, (section, p)
    # And the accepted forms.
    for section in ["interval = 0\n", "interval = 90s\nkeep_last = 0\n",
                    "interval = 6h\nkeep_last = 4\nkeep_daily = 7\n"
                    "keep_monthly = 12\nio_priority = idle\n",
                    "interval = 366d\n", "interval = 15m\n"]:
        with open(bad_conf, "w") as f:
            f.write(base + "[backup]\n" + good + section)
        p = subprocess.run([kyufud, "--check-config", bad_conf],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (section, p)


def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="kyufu-bs-", dir="/tmp")
    bkdir = os.path.join(work, "backups")
    os.makedirs(bkdir)
    kek = os.path.join(work, "backup.kek")
    write_kek(kek)
    kek_text = open(kek).read().strip()
    # Not the schedule's: a folder that is no backup, and a name that only
    # looks like the schedule's (month 13).  Both must survive.
    os.makedirs(os.path.join(bkdir, "notes"))
    with open(os.path.join(bkdir, "notes", "readme.txt"), "w") as f:
        f.write("kept by the operator\n")
    os.makedirs(os.path.join(bkdir, DECOY))
    mports = free_ports(3)
    extra = {i: "[node]\nmetrics_listen = 127.0.0.1:%d\n"
             "[backup]\ndirectory = %s\nkek_file = %s\n"
             "interval = 2s\nkeep_last = 2\nio_priority = %s\n"
             % (mports[i - 1], bkdir, kek, "idle" if i == 2 else "normal")
             for i in (1, 2, 3)}
    # Elections slower than the default: fewer leader changes under load.
    c = C.Cluster(kyufud, extra_conf=extra, election_ms=3000)
    stop = threading.Event()
    writer = None
    t0 = time.time()
    try:
        hostile_configs(kyufud, c, work, bkdir, kek)
        c.start_all()
        leader = c.wait_leader(15)
        led = W.Ledger(c, "sched")
        led.setup()
        L = c.s["ledger_pb2"]
        env, conf = B.operator(c, (1, 2, 3))
        written = []

        def keep_writing():
            w = W.cluster_writer(c, "clerk1", "sched-during")
            n = 0
            while not stop.is_set():
                code, _ = w.call("RegisterHousehold", L.RegisterHousehold(
                    household=led.household("S-%d" % n)), deadline_s=10)
                if code.name == "OK":
                    written.append(n)
                n += 1
        writer = threading.Thread(target=keep_writing, daemon=True)
        writer.start()

        def total(name, nodes=None):
            return sum(B.metrics(mports[i - 1]).get(name, 0)
                       for i in (nodes or c.ids()) if c.alive(i))

        # Backups from the lowest-id follower only; old ones pruned.  The
        # strict check holds while the leader stays (an election on this
        # loaded machine may move the duty: then the new taker's backups
        # are checked the same way).
        term0 = c.status(leader).term
        first = taker(c)
        print("leader %d, taker %d" % (leader, first))
        B.wait_for("4 scheduled backups and 2 pruned", lambda:
                 total("kyufu_backup_scheduled_total") >= 4 and
                 total("kyufu_backup_pruned_total") >= 2, 25)
        names = autos(bkdir)
        print("after %.1f s: %s" % (time.time() - t0, names))
        st = c.status(c.wait_leader(15))
        if st.term == term0 and c.wait_leader(15) == leader:
            assert names and all(n.endswith("-n%d" % first)
                                 for n in names), names
            for i in c.ids():
                if i != first:
                    m = B.metrics(mports[i - 1])
                    assert m.get("kyufu_backup_scheduled_total") == 0, (i, m)
        else:
            print("leader changed (term %d -> %d): strict check skipped"
                  % (term0, st.term))
        # Never the leader's: the leader took none while it led.
        leader = c.wait_leader(15)
        assert B.metrics(mports[leader - 1]).get(
            "kyufu_backup_scheduled_total", 0) == 0 or st.term != term0
        # A good backup under a name of its own (a copy of a scheduled
        # one, as an operator would keep one aside): never pruned.
        shutil.copytree(os.path.join(bkdir, names[-1]),
                        os.path.join(bkdir, "kept-by-hand"))
        # keep_last 2: between a backup and its pruning there may briefly
        # be three.
        B.wait_for("keep_last 2", lambda: len(autos(bkdir)) == 2, 10)

        # The backup KEK unreadable: failures counted, nothing written,
        # and the schedule recovers once it is back.
        failed0 = total("kyufu_backup_scheduled_failures_total")
        write_kek(kek, "not a key")
        B.wait_for("a failure counted", lambda: total(
            "kyufu_backup_scheduled_failures_total") > failed0, 10)
        taken0 = total("kyufu_backup_scheduled_total")
        write_kek(kek, kek_text)
        B.wait_for("the schedule recovered", lambda: total(
            "kyufu_backup_scheduled_total") > taken0 + 1, 15)
        # A pruning in progress shows as ".NAME.removing" for a moment
        # (renamed away first, then emptied); none may stay behind.
        B.wait_for("no removal left half done", lambda: not [
            n for n in os.listdir(bkdir) if n.startswith(".")], 10)

        # The taker stopped: the next follower takes over; restarted, the
        # node's metrics come from its scan of the directory at start.
        first = taker(c)
        c.kill(first, C.signal.SIGTERM)
        c.wait_exit(first, 30)
        leader = c.wait_leader(15, exclude=(first,))
        second = [i for i in c.ids() if i not in (first, leader)][0]
        B.wait_for("a backup by node %d" % second, lambda: [
            n for n in autos(bkdir) if n.endswith("-n%d" % second)], 15)
        c.start(first)
        m = B.wait_for("node %d's start scan" % first, lambda: (
            lambda m: m if m and
            "kyufu_backup_last_success_timestamp_seconds" in m else None)(metrics_or_none(mports[first - 1])), 15)
        newest = m["kyufu_backup_last_success_timestamp_seconds"]
        # Seen before this process wrote a backup: from the scan.
        assert m["kyufu_backup_scheduled_total"] == 0, m
        assert m["kyufu_backup_newest_good_age_seconds"] < 20, m
        print("restarted node %d: newest %.3f, age %.1f s" % (
            first, newest, m["kyufu_backup_newest_good_age_seconds"]))
        stop.set()
        writer.join(30)
        assert len(written) > 0, "no write went through"

        # What remains verifies; what is not the schedule's is untouched.
        for n in autos(bkdir):
            rc, out, err = ctl(kyufuctl, conf, env, "backup", "verify",
                               os.path.join(bkdir, n), "--kek", kek)
            # A backup pruned between the listing and verify is fine.
            assert rc == 0 or not os.path.exists(os.path.join(bkdir, n)), (
                n, rc, out, err)
        rc, out, err = ctl(kyufuctl, conf, env, "backup", "verify",
                           os.path.join(bkdir, "kept-by-hand"), "--kek", kek)
        assert rc == 0, (rc, out, err)
        assert open(os.path.join(bkdir, "notes", "readme.txt")).read()
        assert os.path.isdir(os.path.join(bkdir, DECOY))
        for i in c.ids():
            m = B.metrics(mports[i - 1])
            assert m.get("kyufu_backup_newest_good_age_seconds", 99) < 20, (
                i, m)
            assert m.get("kyufu_backup_good", 0) >= 2, (i, m)
        print("ok (%.1f s, %d writes during)" % (time.time() - t0,
                                                  len(written)))
    except BaseException:
        for i in c.ids():  # the backup lines of each node, for the reader
            try:
                with open(c.log_path(i)) as f:
                    print("--- node %d" % i)
                    print("".join(ln for ln in f if "backup" in ln)[-4000:])
            except OSError:
                pass
        raise
    finally:
        stop.set()
        c.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
