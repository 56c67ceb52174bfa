#!/bin/bash
# A/B cost of Raft over TLS (docs/peer-tls.md, figures in docs/bench-load.md
# "Peer TLS cost"): for each build directory given, in turn, ROUNDS times
# (A B A B ...): a fresh `kyufuctl cluster init` cluster of three kyufud on
# loopback, then kyufu-bench-load --inflight 1,256, then stop the nodes by
# PID.  One JSON result per run in OUT (OUT/NAME-ROUND.json), and the CPU
# time of each node over the run (OUT/NAME-ROUND.cpu).
#
# usage: peer_tls_ab.sh OUT ROUNDS HOUSEHOLDS NAME=BUILD_DIR NAME=BUILD_DIR
# Needs free loopback ports 27501-27503 and 27601-27603.
set -u
out=$1 rounds=$2 households=$3
shift 3
mkdir -p "$out"
for r in $(seq "$rounds"); do
    for ab in "$@"; do
        name=${ab%%=*} build=${ab#*=}
        dir=$(mktemp -d /tmp/kyufu-ab-XXXXXX)
        KYUFU_CA_PASSPHRASE=${KYUFU_CA_PASSPHRASE:-peer-tls-ab CA passphrase} \
        "$build/client/kyufuctl" cluster init --dir "$dir/c" --raft-port-base 27501 \
            --api-port-base 27601 >/dev/null || exit 2
        pids=()
        for i in 1 2 3; do
            "$build/node/kyufud" --config "$dir/c/node$i/kyufud.conf" >>"$dir/node$i.log" 2>&1 &
            pids+=($!)
        done
        sleep 3
        "$build/chaos/bench/kyufu-bench-load" --config "$dir/c/kyufuctl.conf" \
            --households "$households" --inflight 1,256 >"$out/$name-$r.json" 2>"$out/$name-$r.err"
        echo "$name round $r: exit $?"
        # CPU seconds (user + system) each node used over the whole run:
        # what TLS costs, less disturbed by the other jobs than a rate.
        for i in 0 1 2; do
            awk -v n=$((i + 1)) -v hz="$(getconf CLK_TCK)" \
                '{ printf "node%d cpu_s %.2f\n", n, ($14 + $15) / hz }' "/proc/${pids[$i]}/stat"
        done >"$out/$name-$r.cpu"
        for p in "${pids[@]}"; do kill -TERM "$p"; done
        for p in "${pids[@]}"; do wait "$p"; done
        rm -rf "$dir"
    done
done
