#!/usr/bin/env bash
# One caller's write, step by step (issue 9's "one caller's p50", docs/
# benchmarks.md "One caller's write, step by step"): a three-node cluster
# of BUILD (`kyufuctl cluster init`, TLS, the bench's staff signed in), a
# warm-up at one call in flight, then SECONDS of `kyufu-bench-load
# --inflight 1` under `perf record -a` of the system-call tracepoints
# (read, write, writev, pwrite64, io_submit, epoll_wait), and the same
# load again untraced.  chaos/bench/one_write.py then times each write's
# steps from the client's request to its answer.
#
#   chaos/bench/one_write.sh BUILD OUT_DIR [SECONDS]
#
# SECONDS default 3.  OUT_DIR gets pids.txt, traced.json, plain.json
# (the load's JSON), perf.data, script.txt and steps.txt.  Recording
# slows the writes (the untraced run says by how much): the steps' order
# and shares are the result, not their sum.  Not a test: it reads the
# wall clock.  Exit 0, or 1 on any failure.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD OUT_DIR [SECONDS]" >&2; exit 2; }
build=$1 out=$2 secs=${3:-3}
case $secs in ''|*[!0-9]*|0) echo "SECONDS is a number of seconds (1 or more)" >&2; exit 2;; esac
[ -x "$build/node/kyufud" ] || { echo "$build/node/kyufud: not built" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf is not installed (linux-perf)" >&2; exit 2; }
ctl_bin=$build/client/kyufuctl
load_bin=$build/chaos/bench/kyufu-bench-load
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck source=chaos/bench/ab_common.sh
. "$here/ab_common.sh"
ab_tmp kyufu-one-write
ab_init 29611 29711 29811 "$build"
start_nodes "$build"
wait_leader
lid=$(leader_id)
[ -n "$lid" ] || { echo "no leader to time" >&2; exit 1; }
echo "leader $lid pids ${pids[*]}" >"$out/pids.txt"
"$load_bin" "${common[@]}" --no-setup --inflight 1 --duration-s 2 >/dev/null
events=
for e in sys_enter_read sys_exit_read sys_enter_write sys_enter_writev \
         sys_enter_pwrite64 sys_enter_io_submit sys_enter_epoll_wait sys_exit_epoll_wait; do
    events=${events:+$events,}syscalls:$e
done
perf record -q -a -e "$events" -o "$out/perf.data" -- \
    "$load_bin" "${common[@]}" --no-setup --inflight 1 --duration-s "$secs" >"$out/traced.json"
"$load_bin" "${common[@]}" --no-setup --inflight 1 --duration-s "$secs" >"$out/plain.json"
# A leader change during the run would mislabel the nodes' steps.
[ "$(leader_id)" = "$lid" ] || { echo "the leader changed during the run: run again" >&2; exit 1; }
stop_nodes
perf script -i "$out/perf.data" -F comm,pid,tid,time,event,trace >"$out/script.txt" 2>/dev/null
"$py" "$here/one_write.py" "$out" | tee "$out/steps.txt"
