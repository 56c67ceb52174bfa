#!/usr/bin/env bash
# The cost of encryption at rest on write throughput (issue 12, "Done
# means"; docs/benchmarks-encryption.md "Encryption at rest through kyufud"): two
# three-node clusters made by `kyufuctl cluster init`, one as it makes them
# (with [keys]: sealed entries, snapshots and records) and one whose nodes'
# [keys] section is removed before their first start (plaintext), each run
# by build A and by build B, the four sides interleaved in every round (the
# order reversed every other round, so no side always runs first on a warm
# or cold machine).  Each side: its cluster's three kyufud started, then
# kyufu-bench-load --approve --no-setup at each INFLIGHT in turn (one run
# per K), with user + system CPU of the three kyufud read from /proc before
# and after each run, then the nodes stopped.  The clusters' data stays
# between rounds (both builds read it).  Not a test: it reads the wall
# clock and takes minutes.
#
#   chaos/bench/ab_keys.sh BUILD_A BUILD_B OUT_DIR [ROUNDS] [INFLIGHT] [SECONDS]
#
# BUILD_B may be BUILD_A (then the two builds are one; still four sides).
# ROUNDS (default 3), INFLIGHT a comma list (default 1,16,64,256), SECONDS
# per K (default 6).  kyufu-bench-load and kyufuctl come from build B.
# Writes OUT_DIR/<build>-<config>-<round>-k<K>.json (the load's JSON),
# OUT_DIR/results.txt (one line per run: build, config, round, k, writes/s,
# p50 and p99 in ms, CPU ms of the three kyufud per 1,000 writes) and
# OUT_DIR/uptime.txt (load before each side), and prints the lines, then
# per build and K the median over rounds of each config and of the ratio
# keys / plain inside each round.  Exit 0, or 1 on any failure.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BUILD_A BUILD_B OUT_DIR [ROUNDS] [INFLIGHT] [SECONDS]" >&2; exit 2; }
build_a=$1 build_b=$2 out=$3 rounds=${4:-3} inflight=${5:-1,16,64,256} secs=${6:-6}
here=$(cd "$(dirname "$0")/../.." && pwd)
in_range() { # VALUE MAX WHAT
    case $1 in ''|*[!0-9]*|0*) echo "$3 '$1': not a number in 1..$2" >&2; exit 2;; esac
    [ "${#1}" -le 6 ] && [ "$1" -le "$2" ] || { echo "$3 '$1': not a number in 1..$2" >&2; exit 2; }
}
in_range "$rounds" 1000 ROUNDS
in_range "$secs" 86400 SECONDS
IFS=, read -r -a ks <<<"$inflight"
[ "${#ks[@]}" -ge 1 ] || { echo "INFLIGHT must not be empty" >&2; exit 2; }
for v in "${ks[@]}"; do in_range "$v" 1024 INFLIGHT; done
for b in "$build_a" "$build_b"; do
    [ -x "$b/node/kyufud" ] || { echo "$b/node/kyufud: not built" >&2; exit 2; }
done
ctl_bin=$build_b/client/kyufuctl
load_bin=$build_b/chaos/bench/kyufu-bench-load
py=/usr/bin/python3
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck source=chaos/bench/ab_common.sh
. "$here/chaos/bench/ab_common.sh"

# Two clusters, each with its own folder, config, PIDs and load arguments.
ab_tmp kyufu-abk-keys
dir_keys=$dir
dir_plain=$(mktemp -d /tmp/kyufu-abk-plain-XXXXXX)
trap 'stop_nodes; rm -rf "$dir_keys" "$dir_plain"' EXIT

# Drop each node's [keys] section (up to the next section) and its key
# files: kyufud then runs without encryption at rest.
strip_keys() {
    local i
    for i in 1 2 3; do
        $py - "$dir/node$i/kyufud.conf" <<'PY'
import sys
p = sys.argv[1]
out, skip = [], False
for line in open(p):
    s = line.strip()
    if s.startswith("["):
        skip = s == "[keys]"
    if not skip:
        out.append(line)
open(p, "w").write("".join(out))
PY
        if grep -q '^\[keys\]' "$dir/node$i/kyufud.conf"; then
            echo "node$i: [keys] still there" >&2; exit 1
        fi
    done
}

read -r p1 p2 p3 p4 p5 p6 < <($py - "$here" <<'PY'
import sys; sys.path.insert(0, sys.argv[1] + "/tests/integration"); import ports
while True:
    p = ports.free_ports(18)
    bases = p[0:18:3]
    if all(p[i] + 1 == p[i + 1] and p[i] + 2 == p[i + 2] for i in range(0, 18, 3)):
        print(*bases); break
PY
)
ab_init "$p1" "$p2" "$p3" "$build_b"
common_keys=("${common[@]}")
dir=$dir_plain conf=$dir_plain/kyufuctl.conf
ab_after_init=strip_keys
ab_init "$p4" "$p5" "$p6" "$build_b"
common_plain=("${common[@]}")
unset ab_after_init
# What each side measures, as its nodes logged it.
for i in 1 2 3; do
    grep -q "cluster key loaded" "$dir_keys/node$i.log" ||
        { echo "keys cluster, node$i: no 'cluster key loaded' in its log" >&2; exit 1; }
    grep -q "encryption at rest is off" "$dir_plain/node$i.log" ||
        { echo "plain cluster, node$i: no 'encryption at rest is off' in its log" >&2; exit 1; }
done

# ticks PID: utime + stime of the process (all its threads), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# side BUILD_NAME BUILD CONFIG ROUND
side() {
    local name=$1 b=$2 cfg=$3 r=$4 k t0 t1 i f
    if [ "$cfg" = keys ]; then
        dir=$dir_keys; common=("${common_keys[@]}")
    else
        dir=$dir_plain; common=("${common_plain[@]}")
    fi
    conf=$dir/kyufuctl.conf
    echo "$name $cfg $r $(uptime)" >>"$out/uptime.txt"
    start_nodes "$b"
    wait_leader
    for k in "${ks[@]}"; do
        t0=0; for i in 0 1 2; do t0=$((t0 + $(ticks "${pids[$i]}"))); done
        f=$out/$name-$cfg-$r-k$k.json
        "$load_bin" "${common[@]}" --no-setup --inflight "$k" >"$f"
        t1=0; for i in 0 1 2; do t1=$((t1 + $(ticks "${pids[$i]}"))); done
        $py -c 'import json,sys
run = json.load(open(sys.argv[1]))["runs"][0]
cpu_ms = (int(sys.argv[6]) - int(sys.argv[5])) * 1000.0 / int(sys.argv[7])
lat = run["latency_ms"]
print(sys.argv[2], sys.argv[3], sys.argv[4], run["k"], "%.0f" % run["commands_per_s"],
      lat["p50"], lat["p99"], "%.1f" % (1000.0 * cpu_ms / run["writes"]))' \
            "$f" "$name" "$cfg" "$r" "$t0" "$t1" "$hz" | tee -a "$out/results.txt"
    done
    stop_nodes
}

: >"$out/uptime.txt"
: >"$out/results.txt"
echo "build config round k writes/s p50_ms p99_ms cpu_ms_per_1000_writes"
for r in $(seq "$rounds"); do
    order=("A $build_a plain" "A $build_a keys" "B $build_b plain" "B $build_b keys")
    if [ $((r % 2)) = 0 ]; then
        order=("B $build_b keys" "B $build_b plain" "A $build_a keys" "A $build_a plain")
    fi
    for s in "${order[@]}"; do
        read -r name b cfg <<<"$s"
        side "$name" "$b" "$cfg" "$r"
    done
done

$py - "$out/results.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    b, cfg, r, k, w, p50, p99, cpu = line.split()
    rows[(b, cfg, int(r), int(k))] = (float(w), float(p50), float(p99), float(cpu))
med = statistics.median
print("\nmedians over rounds (ratio = keys / plain inside each round, then the median)")
print("build k | writes/s plain keys ratio | p50 ms plain keys | p99 ms plain keys | CPU ms/1000 plain keys ratio")
for b in sorted({x[0] for x in rows}):
    for k in sorted({x[3] for x in rows}):
        rs = sorted({x[2] for x in rows if x[0] == b and x[3] == k
                     and (b, "keys", x[2], k) in rows and (b, "plain", x[2], k) in rows})
        if not rs:
            continue
        P = [rows[(b, "plain", r, k)] for r in rs]
        K = [rows[(b, "keys", r, k)] for r in rs]
        col = lambda v, i: med([x[i] for x in v])
        ratio = lambda i: med([kk[i] / pp[i] for kk, pp in zip(K, P) if pp[i] > 0])
        print("%s %4d | %6.0f %6.0f %.3f | %6.1f %6.1f | %6.1f %6.1f | %6.1f %6.1f %.3f"
              % (b, k, col(P, 0), col(K, 0), ratio(0), col(P, 1), col(K, 1),
                 col(P, 2), col(K, 2), col(P, 3), col(K, 3), ratio(3)))
PY
