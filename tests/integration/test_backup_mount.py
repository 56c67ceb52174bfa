"""[backup] require_mount (docs/backup.md "Mount check"), end to end with
one real kyufud configured as docs/backup.md's runbook says (directory =
NAS/kyufu, require_mount = NAS), where NAS is an empty folder meant to be
a mount point, nothing is mounted there, and NAS/kyufu does not exist (a
NAS down at boot):

  - kyufud starts all the same (the config check touches neither path);
  - `kyufuctl backup create` is refused with an error naming the folder
    ("... is not mounted"), logged as `backup failed`;
  - the schedule ([backup] interval = 2s) fails the same way: counted in
    kyufu_backup_scheduled_failures_total, logged as `scheduled backup
    failed` with the same error, nothing taken;
  - NAS stays empty (no backup, no temporary, no directory made);
  - with NAS/kyufu made and restarted with require_mount = / (a mount
    point, and a parent of the directory), the same command writes a
    backup that verifies.

usage: test_backup_mount.py KYUFUD KYUFUCTL"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import backup_test as B
import cluster as C
from ports import free_ports




def main():
    kyufud, kyufuctl = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="kyufu-bm-", dir="/tmp")
    # The empty mount point: what a root disk holds where a NAS is meant
    # to be mounted (a plain path: require_mount is compared as written).
    nas = os.path.realpath(os.path.join(work, "nas"))
    os.makedirs(nas)
    bdir = os.path.join(nas, "kyufu")  # on the NAS: missing while it is down
    kek = os.path.join(work, "backup.kek")
    with open(kek, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(kek, 0o600)
    mport = free_ports(1)[0]
    c = C.Cluster(kyufud, n=1, extra_conf={1: (
        "[node]\nmetrics_listen = 127.0.0.1:%d\n[backup]\n"
        "directory = %s\nkek_file = %s\ninterval = 2s\nkeep_last = 2\n"
        "require_mount = %s\n" % (mport, bdir, kek, nas))})
    try:
        c.start_all()
        c.wait_leader(15)
        env, conf = B.operator(c, (1,))
        want = "require_mount %s is not mounted" % nas

        def create(name):
            return subprocess.run(
                [kyufuctl, "--config", conf, "backup", "create", "--out",
                 os.path.join(bdir, name)], capture_output=True, text=True,
                timeout=120, env=env)

        p = create("b1")
        assert p.returncode != 0 and want in p.stderr, p
        print("backup create refused: %s" % p.stderr.strip())

        m = B.wait_for("two scheduled failures", lambda: (
            lambda m: m if m.get("kyufu_backup_scheduled_failures_total", 0)
            >= 2 else None)(B.metrics(mport)), 20)
        assert m["kyufu_backup_scheduled_total"] == 0, m
        assert os.listdir(nas) == [], os.listdir(nas)
        with open(c.log_path(1)) as f:
            log = f.read()
        for line in ('"msg":"backup failed"', '"msg":"scheduled backup '
                     'failed"'):
            assert [ln for ln in log.splitlines()
                    if line in ln and want in ln], (line, log[-3000:])

        # Mounted (/ always is), its folder there: the same node writes
        # the backup.
        os.makedirs(bdir)
        c.kill(1, C.signal.SIGTERM)
        c.wait_exit(1, 30)
        text = open(c.conf[1]).read().replace(
            "require_mount = %s\n" % nas, "require_mount = /\n")
        with open(c.conf[1], "w") as f:
            f.write(text)
        c.start(1)
        c.wait_leader(15)
        p = B.wait_for("backup create with the mount there", lambda: (
            lambda p: p if p.returncode == 0 else None)(create("b2")), 30)
        p = subprocess.run([kyufuctl, "backup", "verify",
                            os.path.join(bdir, "b2"), "--kek", kek, "--ca",
                            c.ca], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p
        print("ok")
    except BaseException:
        B.print_backup_log(c, 1)
        raise
    finally:
        c.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
