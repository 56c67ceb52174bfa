"""What the scheduled-backup tests share (test_backup_schedule.py,
test_backup_clock.py, test_backup_mount.py): one node's backup metrics, a
poll with a deadline, and the node's backup log lines after a failure."""
import os
import time
import urllib.request

import prom_text


def metrics(port):
    """{name: value} of one node's kyufu_backup_* families (first
    sample)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        fams = prom_text.parse(r.read().decode())
    return {name: fam["samples"][name][0][1] for name, fam in fams.items()
            if name.startswith("kyufu_backup_") and fam["samples"].get(name)}


def wait_for(what, pred, timeout):
    """pred()'s first true value within timeout seconds (0.2 s polls)."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def print_backup_log(c, node):
    """The last 4,000 characters of node's log lines that name a backup
    (for a failed test's output)."""
    try:
        with open(c.log_path(node)) as f:
            print("".join(ln for ln in f if "backup" in ln)[-4000:])
    except OSError:
        pass


def operator(c, nodes):
    """Account op1 (operator) on cluster c and a kyufuctl config naming
    nodes' API addresses: (its environment, the config's path)."""
    L = c.s["ledger_pb2"]
    c.account("op1", [L.ROLE_OPERATOR], "Operator")
    conf = os.path.join(c.dir, "client.conf")
    with open(conf, "w") as fh:
        fh.write("[client]\nendpoints = %s\nca = %s\ncert = %s\n"
                 "key = %s\n" % (",".join(c.api[i] for i in nodes), c.ca,
                                  c.client_cert, c.client_key))
    return c.ctl_env("op1"), conf
