#!/usr/bin/env bash
# The proposer's in-flight window ([raft] group_commit_entries_inflight),
# measured A/B on one build and one three-node cluster (docs/benchmarks.md
# "In-flight window"): for each round, each window in turn (the order
# rotated every round, so no window always runs first on a warm or cold
# machine) sets the key in every node's config, starts the three kyufud,
# runs kyufu-bench-load --approve at every INFLIGHT, and stops them.  Every
# run starts from the same data: the nodes' data folders as the set-up and
# warm-up left them, copied back before each start (when the data stayed
# between runs, each later run met a larger store and ran slower for that
# alone: docs/benchmarks.md "The window again").  Not a test: it reads the
# wall clock and takes minutes.
#
#   chaos/bench/ab_window.sh BUILD OUT_DIR [WINDOWS] [ROUNDS] [INFLIGHT] [SECONDS]
#
# WINDOWS a comma list (default 4,8,16,32), ROUNDS (default 2), INFLIGHT a
# comma list (default 16,64,256,1024), SECONDS per K (default 5).  Writes
# OUT_DIR/w<W>-r<R>.json (the load's JSON), OUT_DIR/w<W>-r<R>.metrics (the
# leader's apply counters before and after), OUT_DIR/uptime.txt, and
# prints one line per run and K: window, round, k, writes/s, p50, p99 (ms),
# commands per entry, then the leader's and a follower's entries per run of
# committed entries (kyufu_storage_commit_seconds_count over
# kyufu_raft_apply_runs_total, over the whole run).  Ports come from
# tests/integration/ports.py (free, loopback).  Exit 0, or 1 on a failure.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD OUT_DIR [WINDOWS] [ROUNDS] [INFLIGHT] [SECONDS]" >&2; exit 2; }
build=$1 out=$2 windows=${3:-4,8,16,32} rounds=${4:-2} inflight=${5:-16,64,256,1024} secs=${6:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
# Every number a decimal in 1..1024 ([raft] group_commit_entries_inflight's
# bounds, and the load's K), rounds and seconds in 1..86400.
in_range() { # VALUE MAX WHAT
    case $1 in ''|*[!0-9]*|0*) echo "$3 '$1': not a number in 1..$2" >&2; exit 2;; esac
    [ "${#1}" -le 6 ] && [ "$1" -le "$2" ] || { echo "$3 '$1': not a number in 1..$2" >&2; exit 2; }
}
in_range "$rounds" 86400 ROUNDS
in_range "$secs" 86400 SECONDS
IFS=, read -r -a ws <<<"$windows"
IFS=, read -r -a ks <<<"$inflight"
[ "${#ws[@]}" -ge 1 ] && [ "${#ks[@]}" -ge 1 ] || { echo "WINDOWS and INFLIGHT must not be empty" >&2; exit 2; }
for v in "${ws[@]}"; do in_range "$v" 1024 WINDOWS; done
for v in "${ks[@]}"; do in_range "$v" 1024 INFLIGHT; done
[ -x "$build/node/kyufud" ] || { echo "$build/node/kyufud: not built" >&2; exit 2; }
ctl_bin=$build/client/kyufuctl
load_bin=$build/chaos/bench/kyufu-bench-load
py=/usr/bin/python3
mkdir -p "$out"
# shellcheck source=chaos/bench/ab_common.sh
. "$here/chaos/bench/ab_common.sh"
ab_tmp kyufu-abw

set_window() {
    local i
    for i in 1 2 3; do
        sed -i '/^group_commit_entries_inflight = /d' "$dir/node$i/kyufud.conf"
        sed -i "s/^\[raft\]\$/[raft]\ngroup_commit_entries_inflight = $1/" "$dir/node$i/kyufud.conf"
    done
}

# apply counters of node $1: "<entries applied> <runs>"
counters() {
    curl -s --max-time 10 "http://127.0.0.1:$((mb + $1 - 1))/metrics" | $py -c 'import sys
v = {}
for line in sys.stdin:
    p = line.split()
    if len(p) == 2 and p[0] in ("kyufu_storage_commit_seconds_count", "kyufu_raft_apply_runs_total"):
        v[p[0]] = int(float(p[1]))
print(v.get("kyufu_storage_commit_seconds_count", 0), v.get("kyufu_raft_apply_runs_total", 0))'
}

read -r rb ab mb < <($py - "$here" <<'PY'
import sys; sys.path.insert(0, sys.argv[1] + "/tests/integration"); import ports
while True:
    p = ports.free_ports(9)
    if all(p[i] + 1 == p[i + 1] for i in (0, 1, 3, 4, 6, 7)):
        print(p[0], p[3], p[6]); break
PY
)
ab_init "$rb" "$ab" "$mb" "$build"
for i in 1 2 3; do cp -a "$dir/node$i/data" "$dir/pristine$i"; done
# The nodes' data as ab_init left them (nodes stopped).
fresh_data() {
    local i
    for i in 1 2 3; do
        rm -rf "$dir/node$i/data"
        cp -a "$dir/pristine$i" "$dir/node$i/data"
    done
}
: >"$out/uptime.txt"
for r in $(seq "$rounds"); do
    for j in $(seq 0 $((${#ws[@]} - 1))); do
        w=${ws[$(((j + r - 1) % ${#ws[@]}))]}
        echo "w$w r$r $(uptime)" >>"$out/uptime.txt"
        set_window "$w"
        fresh_data
        start_nodes "$build"
        wait_leader
        lid=$(leader_id)
        fid=$((lid % 3 + 1))
        before_l=$(counters "$lid") before_f=$(counters "$fid")
        "$load_bin" "${common[@]}" --no-setup --inflight "$inflight" >"$out/w$w-r$r.json"
        after_l=$(counters "$lid") after_f=$(counters "$fid")
        printf 'leader %s %s %s\nfollower %s %s %s\n' "$lid" "$before_l" "$after_l" \
            "$fid" "$before_f" "$after_f" >"$out/w$w-r$r.metrics"
        stop_nodes
        $py -c 'import json,sys
d = json.load(open(sys.argv[1]))
m = [l.split() for l in open(sys.argv[4])]
def per_run(f):
    de, dr = int(f[4]) - int(f[2]), int(f[5]) - int(f[3])
    return "%.2f" % (de / dr) if dr > 0 else "-"
for run in d["runs"]:
    lat = run["latency_ms"]
    print("w" + sys.argv[2], sys.argv[3], run["k"], "%.0f" % run["commands_per_s"],
          lat["p50"], lat["p99"], run.get("group_commit_factor", "-"),
          per_run(m[0]), per_run(m[1]))' "$out/w$w-r$r.json" "$w" "$r" "$out/w$w-r$r.metrics"
    done
done
