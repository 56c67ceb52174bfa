# Shared by the A/B scripts of chaos/bench (ab_builds.sh, ab_window.sh):
# one three-node cluster made by `kyufuctl cluster init` in a temporary
# folder, its nodes started and stopped by PID, the bench accounts signed
# in, a warm-up load.  Sourced, not run.  The caller sets ctl_bin,
# load_bin, secs and py, then calls ab_init PREFIX RAFT API METRICS
# BUILD; afterwards common=(...) holds kyufu-bench-load's arguments.

# ab_tmp PREFIX: the cluster folder ($dir), its kyufuctl config ($conf),
# removed (and every node stopped) on exit.
ab_tmp() {
    dir=$(mktemp -d "/tmp/$1-XXXXXX")
    conf=$dir/kyufuctl.conf
    pids=()
    export KYUFU_CA_PASSPHRASE=${KYUFU_CA_PASSPHRASE:-$(openssl rand -base64 24)}
    trap 'stop_nodes; rm -rf "$dir"' EXIT
}

stop_nodes() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    done
    pids=()
}

# start_nodes BUILD [STRACE_FILE]: the three kyufud of BUILD; with a file,
# node 1 under strace (attached, so that stopping kyufud ends it too).
start_nodes() {
    local i
    for i in 1 2 3; do
        "$1/node/kyufud" --config "$dir/node$i/kyufud.conf" >>"$dir/node$i.log" 2>&1 &
        pids+=($!)
        if [ -n "${2:-}" ] && [ "$i" = 1 ]; then
            strace -f -T -e trace=fdatasync,fsync -o "$2" -p "$!" 2>/dev/null &
        fi
    done
}

# The Raft id of the leader (from cluster status), or nothing.
leader_id() {
    "$ctl_bin" --config "$conf" --token-file "$dir/tokens/bench-operator" --json \
        cluster status 2>/dev/null | $py -c 'import json,sys
d = json.load(sys.stdin)
ids = [n["id"] for n in d["nodes"] if n.get("role") == "leader"]
print(ids[0] if len(ids) == 1 else "")' || true
}

wait_leader() {
    for _ in $(seq 300); do
        [ -n "$(leader_id)" ] && return 0
        sleep 0.1
    done
    echo "no leader after 30 s" >&2; return 1
}

# ab_init RAFT_BASE API_BASE METRICS_BASE BUILD: cluster init, the nodes of
# BUILD started (and every one serving metrics), the bench accounts, the
# warm-up load that also registers the households, the nodes stopped.
ab_init() {
    local init_out here i
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    init_out=$("$ctl_bin" cluster init --dir "$dir" --nodes 3 --raft-port-base "$1" \
        --api-port-base "$2" --metrics-port-base "$3")
    # The caller may change the node configs before the first start
    # (ab_keys.sh: a cluster without [keys]).
    "${ab_after_init:-:}"
    start_nodes "$4"
    for i in 0 1 2; do
        for _ in $(seq 120); do
            curl -sf "http://127.0.0.1:$(($3 + i))/metrics" >/dev/null && break
            sleep 0.5
        done
    done
    printf '%s\n' "$init_out" | "$here/scripts/accounts" "$ctl_bin" "$conf" "$dir" \
        bench-clerk=clerk bench-approver=approver bench-operator=operator >/dev/null
    wait_leader
    local t=$dir/tokens
    common=(--config "$conf" --clerk-token-file "$t/bench-clerk"
            --approver-token-file "$t/bench-approver" --operator-token-file "$t/bench-operator"
            --households 1000000 --approve --duration-s "$secs")
    "$load_bin" "${common[@]}" --inflight 16 --duration-s 2 >/dev/null # setup, warm-up
    stop_nodes
}
