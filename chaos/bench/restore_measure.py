#!/usr/bin/python3
"""Time and peak memory of a backup's whole life at scale (docs/backup.md
"Measured", docs/restore.md "Measured"): write, verify, and the full
restore to a new three-node cluster until all three nodes serve the
backup's ledger with the same state digest.

    /usr/bin/python3 chaos/bench/restore_measure.py --build build \\
        --store DIR/a --work WORK [--port-base 27400] [--cmk]

STORE is a store made by kyufu-bench-scale --no-snapshot (docs/scale.md);
--cmk when it was made with --cmk (a keyed store: the backup carries the
bench's CMK and the new cluster keeps its [keys] sections).
Steps, each under /usr/bin/time -v (CPU, peak RSS; a parent's figure
includes the children it waited for):

1. kyufuctl cluster init WORK/old: the backed-up cluster's CA and node 1's
   certificate and key (the backup's signer); a backup KEK.
2. kyufu-bench-backup [--cmk] STORE ... (kyufu_backup_write, the node's
   code).
3. kyufuctl backup verify.
4. kyufuctl cluster init WORK/new; without a CMK in the backup (a store of
   kyufu-bench-scale without --cmk) the new nodes get no [keys] section.
5. kyufuctl restore --backup (seeds the three nodes), then the three kyufud
   started; done when every node's metrics show the manifest's applied
   index (or above) and one leader (Cluster.Status needs a signed-in
   session, which a bench ledger has none for).  Each kyufud's VmHWM and
   largest sampled RssAnon are recorded.  After the stop the three stores'
   digests (kyufu-bench-digest) must be equal (each node's seed checked
   its store against the manifest's digest before it started).

Prints one JSON document; run by hand, never in a suite.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request


def tree(pid):
    """pid and its descendants."""
    out = [pid]
    for p in out:
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def timed(cmd, log_path, env=None):
    """Run cmd under /usr/bin/time -v; also the largest RssAnon and
    RssFile of its process tree, sampled every 0.2 s (ru_maxrss counts
    file-backed pages: LMDB's map and the seed's mapped snapshot file,
    page cache the kernel can drop; RssAnon is what the processes hold)."""
    t0 = time.monotonic()
    anon = filed = 0
    with open(log_path, "w") as err:
        p = subprocess.Popen(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE,
                             stderr=err, text=True, env=env)
        import threading
        out = []
        th = threading.Thread(target=lambda: out.append(p.stdout.read()))
        th.start()
        while p.poll() is None:
            a_sum = f_sum = 0
            for pid in tree(p.pid):
                mm = proc_mem(pid)
                if mm:
                    a_sum += mm.get("RssAnon", 0)
                    f_sum += mm.get("RssFile", 0)
            anon = max(anon, a_sum)
            filed = max(filed, f_sum)
            time.sleep(0.2)
        th.join()
    wall = time.monotonic() - t0
    with open(log_path) as f:
        text = f.read()
    t = parse_time(text)
    t["peak_rss_anon_kib_sampled"] = anon
    t["peak_rss_file_kib_sampled"] = filed
    return p.returncode, out[0] if out else "", wall, t, text


def parse_time(text):
    out = {}
    for key, pat in (("user_s", r"User time \(seconds\): ([\d.]+)"),
                     ("system_s", r"System time \(seconds\): ([\d.]+)"),
                     ("max_rss_kib", r"Maximum resident set size \(kbytes\): (\d+)"),
                     ("wall", r"Elapsed \(wall clock\) time.*: ([\d:.]+)")):
        m = re.search(pat, text)
        if m:
            out[key] = m.group(1) if key == "wall" else float(m.group(1))
    return out


def uptime():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def strip_keys(conf):
    with open(conf) as f:
        text = f.read()
    text = re.sub(r"\[keys\]\n(?:[^\[].*\n?)*", "", text)
    with open(conf, "w") as f:
        f.write(text)


def proc_mem(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    m = {}
    for k in ("VmHWM", "RssAnon", "RssFile"):
        r = re.search(r"%s:\s+(\d+) kB" % k, text)
        if r:
            m[k] = int(r.group(1))
    return m


def metrics(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for name in ("kyufu_raft_applied_index", "kyufu_raft_leader_id"):
        mm = re.search(r"^%s (\S+)$" % name, text, re.M)
        if mm:
            out[name] = int(float(mm.group(1)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--port-base", type=int, default=27400)
    ap.add_argument("--timeout-s", type=int, default=1800)
    ap.add_argument("--cmk", action="store_true")
    a = ap.parse_args()
    b = os.path.abspath(a.build)
    ctl = os.path.join(b, "client/kyufuctl")
    kyufud = os.path.join(b, "node/kyufud")
    bench = os.path.join(b, "chaos/bench/kyufu-bench-backup")
    w = os.path.abspath(a.work)
    os.makedirs(w)
    res = {"load_before": uptime(), "keyed": a.cmk}
    pw = os.path.join(w, "ca.pass")
    with open(pw, "w") as f:
        f.write("bench only, protects nothing\n")
    os.chmod(pw, 0o600)
    kek = os.path.join(w, "backup.kek")
    with open(kek, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(kek, 0o600)
    old = os.path.join(w, "old")
    new = os.path.join(w, "new")
    for d, base in ((old, a.port_base + 50), (new, a.port_base)):
        subprocess.run([ctl, "cluster", "init", "--dir", d, "--ca-passphrase-file",
                        pw, "--raft-port-base", str(base), "--api-port-base",
                        str(base + 10), "--metrics-port-base", str(base + 20)],
                       check=True, stdout=subprocess.DEVNULL)
    parent = os.path.join(w, "backups")
    os.makedirs(parent)
    bdir = os.path.join(parent, "b")

    rc, out, wall, t, _ = timed([bench] + (["--cmk"] if a.cmk else []) + [a.store, parent, "b", old + "/ca.pem",
                                 old + "/node1/node.pem", old + "/node1/node.key",
                                 kek], os.path.join(w, "write.time"))
    if rc != 0:
        sys.exit("backup write failed: see %s/write.time" % w)
    with open(os.path.join(bdir, "manifest.json")) as f:
        m = json.load(f)
    res["backup"] = {"stream_bytes": m["stream_bytes"], "chunks": len(m["chunks"]),
                     "applied_index": m["applied_index"],
                     "files_bytes": sum(c["bytes"] for c in m["chunks"]),
                     "wall_s": round(wall, 1), **t, "bench": out.strip()}
    res["load_after_write"] = uptime()

    rc, out, wall, t, text = timed([ctl, "backup", "verify", bdir, "--kek", kek,
                                    "--ca", old + "/ca.pem"],
                                   os.path.join(w, "verify.time"))
    if rc != 0:
        sys.exit("verify failed: %s" % text[-500:])
    res["verify"] = {"wall_s": round(wall, 1), **t}
    res["load_after_verify"] = uptime()

    if m["cmk_wrapped"] is None:
        for i in (1, 2, 3):
            strip_keys(os.path.join(new, "node%d" % i, "kyufud.conf"))
    t_start = time.monotonic()
    rc, out, wall, t, text = timed([ctl, "restore", "--dir", new, "--backup", bdir,
                                    "--kek", kek, "--ca", old + "/ca.pem",
                                    "--kyufud", kyufud],
                                   os.path.join(w, "seed.time"))
    if rc != 0:
        sys.exit("restore failed: %s" % text[-800:])
    res["seed_all_three"] = {"wall_s": round(wall, 1), **t}
    procs = {}
    for i in (1, 2, 3):
        log = open(os.path.join(new, "node%d" % i, "kyufud.log"), "w")
        procs[i] = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", os.path.join(w, "node%d.time" % i),
             kyufud, "--config", os.path.join(new, "node%d" % i, "kyufud.conf")],
            stdout=log, stderr=subprocess.STDOUT)
    kid = {}
    peak_anon = {i: 0 for i in procs}
    hwm = {i: 0 for i in procs}
    done = None
    last = None
    deadline = time.monotonic() + a.timeout_s
    next_status = time.monotonic()
    while time.monotonic() < deadline and done is None:
        for i, p in procs.items():
            if p.poll() is not None:
                sys.exit("node %d exited %s (see %s)" % (
                    i, p.returncode, os.path.join(new, "node%d" % i, "kyufud.log")))
            # The kyufud under /usr/bin/time: its only child.
            kids = subprocess.run(["pgrep", "-P", str(p.pid)], stdout=subprocess.PIPE,
                                  text=True).stdout.split()
            for k in kids:
                kid[i] = int(k)
                mm = proc_mem(int(k))
                if mm:
                    peak_anon[i] = max(peak_anon[i], mm.get("RssAnon", 0))
                    hwm[i] = max(hwm[i], mm.get("VmHWM", 0))
        if time.monotonic() >= next_status:
            # Cluster.Status needs a signed-in session, and the restored
            # bench ledger has no usable password: the nodes' metrics say
            # when each applied the backup's index and knows one leader;
            # the digests are checked on the stores after the stop.
            st = {i: metrics(a.port_base + 20 + i - 1) for i in procs}
            last = st
            leaders = {v.get("kyufu_raft_leader_id") for v in st.values()}
            if (all(v.get("kyufu_raft_applied_index", -1) >= m["applied_index"]
                    for v in st.values()) and len(leaders) == 1 and
                    0 not in leaders and None not in leaders):
                done = time.monotonic() - t_start
            next_status = time.monotonic() + 1
        time.sleep(0.5)
    res["status_last"] = last
    res["restore_total_s"] = round(done, 1) if done is not None else None
    res["nodes_peak_rss_anon_kib_sampled"] = peak_anon
    res["nodes_vmhwm_kib"] = hwm
    res["load_end"] = uptime()
    for i in procs:
        if i in kid:
            os.kill(kid[i], signal.SIGTERM)  # kyufud, not /usr/bin/time
    for i, p in procs.items():
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
        with open(os.path.join(w, "node%d.time" % i)) as f:
            res.setdefault("nodes_time", {})[i] = parse_time(f.read())
    r = subprocess.run([os.path.join(b, "chaos/bench/kyufu-bench-digest")] +
                       [os.path.join(new, "node%d" % i, "data", "ledger")
                        for i in procs], stdout=subprocess.PIPE, text=True)
    lines = r.stdout.split()
    digests = {lines[k + 2] for k in range(0, len(lines), 3)}
    res["digests_after_stop"] = r.stdout.strip().splitlines()
    # The new cluster applies entries of its own once started (its
    # voters' versions, availability records), so the stores are past the
    # manifest's index: equal to each other, each seeded from a store
    # whose digest was the manifest's (kyufud --seed checks it).
    res["digests_equal"] = r.returncode == 0 and len(digests) == 1
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0 if done is not None and res["digests_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
