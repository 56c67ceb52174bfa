#!/usr/bin/python3
"""Steps of each write at one call in flight, from chaos/bench/one_write.sh's
folder: pids.txt ("leader ID pids P1 P2 P3") and script.txt (perf script of
the system-call tracepoints).  Only the loop threads (thread id = process
id) of the three kyufud and the load client count.

For each request the client writes, the time from that write to:
  req      the leader's first read (the request's TLS record);
  submit   the leader's first io_submit (its Raft log write of the entry);
  tx       the leader's first write of 250 bytes or more (an AppendEntries
           on TCP: the smallest one, one command, is ~262 bytes with TLS);
  ack      the first 70-byte write of a follower after its own io_submit
           (an AppendEntries result with TLS);
  apply    the leader's first pwrite64 (its LMDB commit of the entry);
  answer   the leader's first write on the request's connection after it;
  client   the client's read of the answer.
and whether each follower wrote its store (pwrite64) between its io_submit
and its ack.  The sizes are those of this build's messages: a change of
the wire format needs them read again (a write of the wrong size only
drops that write from the table: `writes` says how many were timed)."""
import re
import statistics
import sys

LINE = re.compile(r"^\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+syscalls:(\S+):\s*(.*)$")
ACK_BYTES = 70
APPEND_BYTES_MIN = 250


def load(folder):
    f = open(folder + "/pids.txt").read().split()
    if len(f) != 6 or f[0] != "leader" or f[2] != "pids" or not all(x.isdigit() for x in f[1:2] + f[3:]):
        raise SystemExit("%s/pids.txt: not 'leader ID pids P1 P2 P3'" % folder)
    leader_id, nodes = int(f[1]), [int(x) for x in f[3:6]]
    if not 1 <= leader_id <= 3:
        raise SystemExit("%s/pids.txt: leader id %d is not 1..3" % (folder, leader_id))
    leader = nodes[leader_id - 1]
    followers = [p for p in nodes if p != leader]
    ev = []
    for line in open(folder + "/script.txt"):
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, tid, t, name, args = m.groups()
        pid, tid = int(pid), int(tid)
        if comm.startswith("kyufu-bench"):
            who = "C"
        elif pid != tid:
            continue
        elif pid == leader:
            who = "L"
        elif pid in followers:
            who = "F%d" % followers.index(pid)
        else:
            continue
        fd = re.search(r"fd: (0x[0-9a-f]+)", args)
        n = re.search(r"count: (0x[0-9a-f]+)", args)
        ev.append((float(t), who, name, int(fd.group(1), 16) if fd else None,
                   int(n.group(1), 16) if n else None))
    ev.sort(key=lambda e: e[0])
    return ev


def first(ev, lo, hi, pred):
    for i in range(lo, hi):
        if pred(ev[i]):
            return i
    return None


def steps(ev):
    sends = [i for i, e in enumerate(ev) if e[1] == "C" and e[2] == "sys_enter_write"]
    rows = []
    for a, b in zip(sends, sends[1:]):
        t0 = ev[a][0]
        at = {}
        req = first(ev, a, b, lambda e: e[1] == "L" and e[2] == "sys_enter_read")
        if req is None:
            continue
        api_fd = ev[req][3]
        at["req"] = req
        at["submit"] = first(ev, req, b, lambda e: e[1] == "L" and e[2] == "sys_enter_io_submit")
        at["tx"] = first(ev, req, b, lambda e: e[1] == "L" and e[2] == "sys_enter_write"
                         and (e[4] or 0) >= APPEND_BYTES_MIN)
        at["apply"] = first(ev, req, b, lambda e: e[1] == "L" and e[2] == "sys_enter_pwrite64")
        if None in at.values():
            continue
        at["answer"] = first(ev, at["apply"], b, lambda e: e[1] == "L"
                             and e[2] == "sys_enter_write" and e[3] == api_fd)
        if at["answer"] is None:
            continue
        at["client"] = first(ev, at["answer"], b, lambda e: e[1] == "C" and e[2] == "sys_exit_read")
        if at["client"] is None:
            continue
        acks, applied = [], 0
        for f in ("F0", "F1"):
            sub = first(ev, at["tx"], b, lambda e: e[1] == f and e[2] == "sys_enter_io_submit")
            if sub is None:
                continue
            ack = first(ev, sub, b, lambda e: e[1] == f and e[2] == "sys_enter_write"
                        and e[4] == ACK_BYTES)
            if ack is None:
                continue
            acks.append(ack)
            if first(ev, sub, ack, lambda e: e[1] == f and e[2] == "sys_enter_pwrite64") is not None:
                applied += 1
        row = {k: (ev[i][0] - t0) * 1e6 for k, i in at.items()}
        row["ack"] = (ev[min(acks)][0] - t0) * 1e6 if acks else None
        row["acks"], row["applied"] = len(acks), applied
        rows.append(row)
    return rows


def main():
    if len(sys.argv) != 2:
        print("usage: chaos/bench/one_write.py OUT_DIR", file=sys.stderr)
        return 2
    rows = steps(load(sys.argv[1]))
    if not rows:
        print("no write could be timed (see the module's doc for what is looked for)",
              file=sys.stderr)
        return 1
    print("writes timed: %d" % len(rows))
    print("| step | p50 us | p90 us |")
    print("|---|---|---|")
    for k in ("req", "submit", "tx", "ack", "apply", "answer", "client"):
        v = sorted(r[k] for r in rows if r[k] is not None)
        if v:
            print("| %s | %.0f | %.0f |" % (k, statistics.median(v), v[int(len(v) * 0.9)]))
        else:
            print("| %s | - | - |" % k)
    acks = sum(r["acks"] for r in rows)
    print("acknowledgements preceded by a store write on that follower: %d of %d (%.0f %%)"
          % (sum(r["applied"] for r in rows), acks, 100.0 * sum(r["applied"] for r in rows) / max(acks, 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
