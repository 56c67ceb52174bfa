#!/usr/bin/env bash
# Where the CPU goes during a load run (issue 9, docs/benchmarks.md "What
# limits the plateau"): one three-node cluster of BUILD (`kyufuctl cluster
# init`, TLS, the bench's staff signed in), then for each round a
# `kyufu-bench-load --approve --no-setup --inflight K` run of SECONDS, with
# user + system CPU read from /proc before and after it for every kyufud
# (and each thread of the leader: its loop thread is the one named like the
# process) and, from `/usr/bin/time`, for the load client; also the
# leader's write system calls (/proc/PID/io syscw) per write answered.
#
#   chaos/bench/cpu_split.sh BUILD OUT_DIR [ROUNDS] [K] [SECONDS]
#
# ROUNDS default 2, K default 256, SECONDS default 8.  Prints one block per
# round: writes/s, then each process's CPU seconds, its share of one core
# over the run and its CPU ms per 1,000 writes; OUT_DIR/ROUND.json is the
# load's JSON.  With KYUFU_CPU_PERF=1 the leader is also sampled with
# `perf record --call-graph dwarf` during round 1 (OUT_DIR/perf.data).  Not a test: it
# reads the wall clock and takes a minute.  Exit 0, or 1 on any failure.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD OUT_DIR [ROUNDS] [K] [SECONDS]" >&2; exit 2; }
build=$1 out=$2 rounds=${3:-2} k=${4:-256} secs=${5:-8}
for v in "$rounds" "$k" "$secs"; do
    case $v in ''|*[!0-9]*) echo "ROUNDS, K and SECONDS are numbers" >&2; exit 2;; esac
done
[ -x "$build/node/kyufud" ] || { echo "$build/node/kyufud: not built" >&2; exit 2; }
ctl_bin=$build/client/kyufuctl
load_bin=$build/chaos/bench/kyufu-bench-load
py=/usr/bin/python3
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck source=chaos/bench/ab_common.sh
. "$(dirname "$0")/ab_common.sh"
ab_tmp kyufu-cpu
ab_init 28611 28711 28811 "$build"

# syscw PID: write system calls the process made so far (/proc/PID/io).
syscw() { awk '/^syscw:/ {print $2}' "/proc/$1/io"; }
# ticks PID: utime + stime of the process (all its threads), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# thread_ticks PID: "TID COMM TICKS" for each thread.
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        # comm may hold spaces: take the fields after the closing paren.
        $py -c 'import sys
s = open(sys.argv[1] + "/stat").read()
comm = s[s.index("(") + 1:s.rindex(")")]
f = s[s.rindex(")") + 2:].split()
print(sys.argv[1].rsplit("/", 1)[1], comm.replace(" ", "_"), int(f[11]) + int(f[12]))' "$t" 2>/dev/null || true
    done
}
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
    start_nodes "$build"
    wait_leader
    lid=$(leader_id)
    lpid=${pids[$((lid - 1))]}
    declare -A before=()
    for i in 0 1 2; do before[$i]=$(ticks "${pids[$i]}"); done
    thread_ticks "$lpid" >"$out/threads-$r-before.txt"
    w0=$(syscw "$lpid")
    perf_pid=""
    if [ "${KYUFU_CPU_PERF:-0}" = 1 ] && [ "$r" = 1 ]; then
        perf record --call-graph dwarf,16384 -F 999 -p "$lpid" -o "$out/perf.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$out/load-time-$r.txt" \
        "$load_bin" "${common[@]}" --no-setup --inflight "$k" >"$out/$r.json"
    t1=$(date +%s.%N)
    for i in 0 1 2; do after[$i]=$(ticks "${pids[$i]}"); done
    thread_ticks "$lpid" >"$out/threads-$r-after.txt"
    w1=$(syscw "$lpid")
    [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
    stop_nodes
    $py - "$out" "$r" "$hz" "$t0" "$t1" "$lid" "${before[0]}" "${before[1]}" \
        "${before[2]}" "${after[0]}" "${after[1]}" "${after[2]}" "$((w1 - w0))" <<'PY'
import json, sys
out, r, hz, t0, t1, lid = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
b = [int(x) for x in sys.argv[7:10]]
a = [int(x) for x in sys.argv[10:13]]
leader_writes = int(sys.argv[13])
run = json.load(open("%s/%s.json" % (out, r)))["runs"][0]
wall = t1 - t0
writes = run["writes"]
u, s = (float(x) for x in open("%s/load-time-%s.txt" % (out, r)).read().split())
print("round %s: K=%s, %.0f writes/s, p50 %s ms, p99 %s ms, %.1f s wall"
      % (r, run["k"], run["commands_per_s"], run["latency_ms"]["p50"],
         run["latency_ms"]["p99"], wall))
rows = [("node%d%s" % (i + 1, " (leader)" if i + 1 == lid else ""),
         (a[i] - b[i]) / hz) for i in range(3)]
rows.append(("kyufu-bench-load", u + s))
print("  leader: %.2f write system calls per write answered (/proc/PID/io syscw)"
      % (leader_writes / writes))
for name, cpu in rows:
    print("  %-18s %6.2f s CPU  %5.0f %% of a core  %6.1f ms / 1,000 writes"
          % (name, cpu, 100 * cpu / wall, 1e6 * cpu / writes))
def load(p):
    d = {}
    for line in open(p):
        tid, comm, t = line.split()
        d[tid] = (comm, int(t))
    return d
tb = load("%s/threads-%s-before.txt" % (out, r))
ta = load("%s/threads-%s-after.txt" % (out, r))
for tid, (comm, t) in sorted(ta.items()):
    d = (t - tb.get(tid, (comm, 0))[1]) / hz
    if d > 0:
        print("    leader thread %-8s %-16s %6.2f s  %5.0f %%"
              % (tid, comm, d, 100 * d / wall))
PY
done
