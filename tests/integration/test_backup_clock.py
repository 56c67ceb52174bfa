"""Scheduled backups when the wall clock is set back (docs/backup.md
"Which node takes it", "Retention"), with a real kyufud under libfaketime:
a one-node cluster, [backup] interval = 2s, keep_last = 2.

  - before the jump: backups every ~2 s, retention keeps 2;
  - the node's clock set back one hour (FAKETIME_TIMESTAMP_FILE, the
    monotonic clock left alone) while the backup KEK is unreadable: the
    newest backup is dated in the node's future, and its age grows from
    when the node first saw it so (not held at 0);
  - the KEK back: backups go on every ~2 s (due times run on the
    monotonic clock: no hour-long stall), named with the earlier time;
  - retention keeps the two newest in the ledger (keep_last counts
    places in the ledger, not times): once two backups are taken after
    the jump, the two from before it (dated in the node's future) are
    pruned, whatever their times say;
  - the newest backup's age is counted from the newest time that is not
    in the node's future (a post-jump backup's), never negative and not
    held at 0 by the backups from before the jump; `kyufuctl backup
    verify` passes on the freshest;
  - then two hours ahead with the backup KEK unreadable: the SLA's
    backup_age alert (SLO [backup] interval_hours = 1) is raised from the
    directory's newest good backup, and cleared once a backup lands.

usage: test_backup_clock.py KYUFUD KYUFUCTL"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

import backup_test as B
import cluster as C
import prom_text
from ports import free_ports

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"



def backup_alert(port):
    """kyufu_alerts_open{alert="backup_age", severity="critical"}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        fams = prom_text.parse(r.read().decode())
    for labels, value in fams["kyufu_alerts_open"]["samples"][
            "kyufu_alerts_open"]:
        if labels == {"alert": "backup_age", "severity": "critical"}:
            return value
    raise AssertionError("no backup_age series")


def autos(bkdir):
    return sorted(n for n in os.listdir(bkdir) if n.startswith("auto-"))


def when(name):
    """The UTC time in a schedule's backup name, as Unix seconds."""
    stamp = name[len("auto-"):].split("-n")[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=timezone.utc).timestamp()



def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    if not os.path.exists(FAKETIME_LIB):
        C.skip("libfaketime missing (scripts/setup installs it)")
    work = tempfile.mkdtemp(prefix="kyufu-bc-", dir="/tmp")
    bkdir = os.path.join(work, "backups")
    os.makedirs(bkdir)
    kek = os.path.join(work, "backup.kek")
    with open(kek, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(kek, 0o600)
    # The SLO's backup interval: 1 h (the SLA's backup_age rule).
    slo = os.path.join(work, "slo.conf")
    with open(slo, "w") as f:
        f.write("[availability]\ntarget_percent = 99.9\n[rto]\n"
                "target_ms = 10000\n[backup]\ninterval_hours = 1\n")
    clock = os.path.join(work, "faketime")
    with open(clock, "w") as f:
        f.write("+0\n")
    mport = free_ports(1)[0]
    # The certificates made two hours back (openssl under libfaketime), so
    # that they are valid on the node's clock after the jump, as a real
    # cluster's are: verify checks the chain at the node's time.
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "FAKETIME")}
    os.environ.update(LD_PRELOAD=FAKETIME_LIB, FAKETIME="-2h")
    try:
        c = C.Cluster(kyufud, n=1, extra_conf={1: (
            "[node]\nmetrics_listen = 127.0.0.1:%d\n[backup]\n"
            "directory = %s\nkek_file = %s\ninterval = 2s\nkeep_last = 2\n"
            "[sla]\nslo_file = %s\n" % (mport, bkdir, kek, slo))})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    asan = os.environ.get("ASAN_OPTIONS", "")
    c.node_env[1] = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME_TIMESTAMP_FILE": clock,
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "ASAN_OPTIONS": (asan + ":" if asan else "") +
        "verify_asan_link_order=0",
    }
    try:
        c.start_all()
        c.wait_leader(15)
        before = B.wait_for("two backups and a prune", lambda: (
            lambda m: m.get("kyufu_backup_pruned_total", 0) >= 1 and
            len(autos(bkdir)) == 2 and autos(bkdir))(B.metrics(mport)), 20)
        print("before the jump: %s" % before)
        taken0 = B.metrics(mport)["kyufu_backup_scheduled_total"]

        # One hour back, for this node only, with the backup KEK
        # unreadable for a while: the newest backup in the ledger is then
        # dated in the node's future, and no believable one exists.  Its
        # age counts from when the node first saw it so (not 0 until the
        # clock catches up): it grows.
        kek_text = open(kek).read()
        with open(kek, "w") as f:
            f.write("not a key\n")
        failed0 = B.metrics(mport)["kyufu_backup_scheduled_failures_total"]
        with open(clock, "w") as f:
            f.write("-1h\n")
        jumped = time.time()
        newest_before = max(when(n) for n in before)
        # Two failed tries: at least one scan ran on the clock set back.
        B.wait_for("two failures after the jump", lambda: B.metrics(mport)[
            "kyufu_backup_scheduled_failures_total"] >= failed0 + 2, 15)
        m1 = B.metrics(mport)
        time.sleep(3)
        m2 = B.metrics(mport)
        assert m2["kyufu_backup_last_success_timestamp_seconds"] < \
            time.time() - 3000, m2  # first seen on the node's clock
        assert m2["kyufu_backup_newest_good_age_seconds"] >= \
            m1["kyufu_backup_newest_good_age_seconds"] + 2, (m1, m2)
        print("future-dated newest: age %.1f s, then %.1f s" % (
            m1["kyufu_backup_newest_good_age_seconds"],
            m2["kyufu_backup_newest_good_age_seconds"]))
        with open(kek, "w") as f:
            f.write(kek_text)

        def after():
            return [n for n in autos(bkdir)
                    if when(n) < newest_before - 3000]
        B.wait_for("a backup after the jump", after, 15)
        # keep_last 2 in the ledger's order: the two taken after the jump
        # (later in the ledger) stay, the two from before it go, though
        # their times look an hour newer.
        B.wait_for("two after the jump, those before it pruned", lambda: (
            B.metrics(mport)["kyufu_backup_scheduled_total"] >= taken0 + 2
            and len(after()) == 2 and len(autos(bkdir)) == 2), 15)
        print("%.1f s after the jump: %s" % (time.time() - jumped,
                                             autos(bkdir)))
        names = autos(bkdir)
        assert not [n for n in before if n in names], (before, names)
        # The age from the newest believable time (a post-jump backup's,
        # on the node's clock an hour back), not held at 0 by the ones
        # dated in its future; the next scan (every 2 s) has seen it.
        m = B.wait_for("the age from a post-jump backup", lambda: (
            lambda m: m if m["kyufu_backup_last_success_timestamp_seconds"]
            < time.time() - 3000 else None)(B.metrics(mport)), 10)
        age = m["kyufu_backup_newest_good_age_seconds"]
        assert 0 <= age < 30, m
        failed1 = m["kyufu_backup_scheduled_failures_total"]
        fresh = os.path.join(bkdir, max(after(), key=when))
        p = subprocess.run([kyufuctl, "backup", "verify", fresh, "--kek", kek,
                            "--ca", c.ca], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p
        assert backup_alert(mport) == 0

        # Two hours ahead, with the backup KEK unreadable (no new backup):
        # the newest good backup is two hours old for the node, past the
        # SLO's 1 h: the SLA's backup_age alert is raised from the
        # directory's newest; a backup landing clears it.
        with open(kek, "w") as f:
            f.write("not a key\n")
        with open(clock, "w") as f:
            f.write("+2h\n")
        B.wait_for("the backup_age alert", lambda: backup_alert(mport) == 1,
                 15)
        m = B.metrics(mport)
        assert m["kyufu_backup_newest_good_age_seconds"] > 3600, m
        B.wait_for("a scheduled failure counted", lambda: B.metrics(mport)[
            "kyufu_backup_scheduled_failures_total"] >= failed1 + 1, 10)
        assert backup_alert(mport) == 1  # no backup landed meanwhile
        with open(kek, "w") as f:
            f.write(kek_text)
        B.wait_for("the alert cleared by a new backup",
                 lambda: backup_alert(mport) == 0, 20)
        print("ok")
    except BaseException:
        B.print_backup_log(c, 1)
        raise
    finally:
        c.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
