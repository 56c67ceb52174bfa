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
dir=$(mktemp -d /tmp/kyufu-ab-XXXXXX)
conf=$dir/kyufuctl.conf
pids=()
export KYUFU_CA_PASSPHRASE=${KYUFU_CA_PASSPHRASE:-$(openssl rand -base64 24)}

stop_nodes() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    done
    pids=()
}
trap 'stop_nodes; rm -rf "$dir"' EXIT

start_nodes() { # build, strace file or ""
    local i
    for i in 1 2 3; do
        "$1/node/kyufud" --config "$dir/node$i/kyufud.conf" >>"$dir/node$i.log" 2>&1 &
        pids+=($!)
        if [ -n "$2" ] && [ "$i" = 1 ]; then
            # Attached, so that stopping kyufud by its PID ends strace too.
            strace -f -T -e trace=fdatasync,fsync -o "$2" -p "$!" 2>/dev/null &
        fi
    done
}

wait_leader() {
    for _ in $(seq 300); do
        if "$ctl_bin" --config "$conf" --token-file "$dir/tokens/bench-operator" --json \
            cluster status 2>/dev/null | $py -c 'import json,sys
d = json.load(sys.stdin)
sys.exit(0 if sum(n.get("role") == "leader" for n in d["nodes"]) == 1 else 1)'; then
            return 0
        fi
        sleep 0.1
    done
    echo "no leader after 30 s" >&2; return 1
}

init_out=$("$ctl_bin" cluster init --dir "$dir" --nodes 3 --raft-port-base 28311 \
    --api-port-base 28411 --metrics-port-base 28511)
start_nodes "$build_b" ""
printf '%s\n' "$init_out" | scripts/accounts "$ctl_bin" "$conf" "$dir" \
    bench-clerk=clerk bench-approver=approver bench-operator=operator >/dev/null
unset init_out
wait_leader
t=$dir/tokens
common=(--config "$conf" --clerk-token-file "$t/bench-clerk"
        --approver-token-file "$t/bench-approver" --operator-token-file "$t/bench-operator"
        --households 1000000 --approve --duration-s "$secs")
"$load_bin" "${common[@]}" --inflight 16 --duration-s 2 >/dev/null # setup, warm-up
stop_nodes
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
