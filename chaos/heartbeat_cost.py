#!/usr/bin/python3
"""The cost of the availability heartbeat (docs/sla.md "Heartbeat cost"):
an idle three-node cluster for SECONDS with [sla] heartbeat_ms = 60000
(about none), 1000 (the default) and 100; for each, the leader's entries
per second (commit index), the bytes its Raft directory and store grew,
and the CPU time (user + system, /proc/PID/stat) of the leader and of a
follower.

usage: chaos/heartbeat_cost.py KYUFUD [SECONDS]"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import cluster as C  # noqa: E402


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for n in files:
            try:
                total += os.stat(os.path.join(root, n)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def run(kyufud, hb, seconds):
    c = C.Cluster(kyufud, extra_conf={i: "[sla]\nheartbeat_ms = %d\n" % hb
                                      for i in (1, 2, 3)})
    try:
        c.start_all()
        leader = c.wait_leader(20)
        time.sleep(2)
        fol = [i for i in (1, 2, 3) if i != leader][0]
        data = {i: os.path.join(c.dir, "node%d" % i, "data") for i in (1, 2, 3)}
        s0 = c.status(leader)
        cl0, cf0 = cpu_s(c.procs[leader].pid), cpu_s(c.procs[fol].pid)
        d0 = du(data[leader])
        time.sleep(seconds)
        s1 = c.status(leader)
        cl1, cf1 = cpu_s(c.procs[leader].pid), cpu_s(c.procs[fol].pid)
        d1 = du(data[leader])
        ent = (s1.commit_index - s0.commit_index) / seconds
        print("heartbeat_ms=%5d: %.2f entries/s, leader disk +%d bytes/s "
              "(raft log + store), leader CPU %.2f%%, follower CPU %.2f%%"
              % (hb, ent, (d1 - d0) / seconds, 100 * (cl1 - cl0) / seconds,
                 100 * (cf1 - cf0) / seconds), flush=True)
        c.stop_clean()
    finally:
        c.close()


def main():
    kyufud = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    for hb in (60000, 1000, 100):
        run(kyufud, hb, seconds)


if __name__ == "__main__":
    main()
