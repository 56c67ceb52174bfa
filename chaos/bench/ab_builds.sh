#!/usr/bin/env bash
# A/B two builds of kyufud on one three-node cluster, rounds interleaved
# (A B A B ...) so machine noise hits both alike (docs/benchmarks.md, "Store
# sync off the loop").  The cluster's data stays between rounds (both builds
# read the same store and log format); kyufu-bench-load and kyufuctl come
# from build B.  Not a test: it reads the wall clock and takes minutes.
#
#   chaos/bench/ab_builds.sh BUILD_A BUILD_B OUT_DIR [ROUNDS] [INFLIGHT] [SECONDS]
#
# ROUNDS per build (default 3), INFLIGHT a comma list (default 16,256),
# SECONDS per K (default 8).  Writes OUT_DIR/{A,B}-ROUND.json (the bench's
# JSON), OUT_DIR/uptime.txt (load before each round) and prints one line per
# round and K: build, round, k, writes/s, p50, p99 (ms).  With
# KYUFU_AB_STRACE=1 the first node of each build's first round runs under
# `strace -f -T -e trace=fdatasync,fsync` (attached after start;
# OUT_DIR/{A,B}-strace.txt, the loop thread's lines carry kyufud's PID) to
# show which threads flush and for how long.  Exit 0, or 1 on any failure.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BUILD_A BUILD_B OUT_DIR [ROUNDS] [INFLIGHT] [SECONDS]" >&2; exit 2; }
build_a=$1 build_b=$2 out=$3 rounds=${4:-3} inflight=${5:-16,256} secs=${6:-8}
for b in "$build_a" "$build_b"; do
    [ -x "$b/node/kyufud" ] || { echo "$b/node/kyufud: not built" >&2; exit 2; }
done
ctl_bin=$build_b/client/kyufuctl
load_bin=$build_b/chaos/bench/kyufu-bench-load
py=/usr/bin/python3
mkdir -p "$out"
# shellcheck source=chaos/bench/ab_common.sh
. "$(dirname "$0")/ab_common.sh"
ab_tmp kyufu-ab
ab_init 28311 28411 28511 "$build_b"
: >"$out/uptime.txt"
for r in $(seq "$rounds"); do
    for side in A B; do
        b=$build_a; [ "$side" = B ] && b=$build_b
        st=""; [ "${KYUFU_AB_STRACE:-0}" = 1 ] && [ "$r" = 1 ] && st=$out/$side-strace.txt
        echo "$side $r $(uptime)" >>"$out/uptime.txt"
        start_nodes "$b" "$st"
        wait_leader
        "$load_bin" "${common[@]}" --no-setup --inflight "$inflight" >"$out/$side-$r.json"
        stop_nodes
        $py -c 'import json,sys
d = json.load(open(sys.argv[1]))
for run in d["runs"]:
    lat = run["latency_ms"]
    print(sys.argv[2], sys.argv[3], run["k"], "%.0f" % run["commands_per_s"],
          lat["p50"], lat["p99"])' "$out/$side-$r.json" "$side" "$r"
    done
done
