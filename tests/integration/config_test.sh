#!/usr/bin/env bash
# kyufud --check-config / --config: what an operator relies on when a config
# file is wrong: exit status 2 and an error naming the line and the key;
# a good file passes; a file at the bounds of every [raft] key passes and
# the node starts with it; the documented defaults, bounds and sample config
# are the binary's; a second kyufud on the same data directory is refused.
#   usage: config_test.sh KYUFUD
set -u
kyufud=$1
here=$(cd "$(dirname "$0")" && pwd)
docs=$here/../../docs
tmp=$(mktemp -d /tmp/kyufu-config-test.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
# A failure is recorded in a file: the independent --check-config cases
# run in background subshells (par below).
fail() { echo "FAIL: $*"; echo . >>"$tmp/failed"; }
# has TEXT WANT: TEXT contains WANT (a builtin: this file runs ~100 such
# checks, and a grep per check costs a fork on a loaded machine).
has() { [[ $1 == *"$2"* ]]; }
# par CMD...: run one independent --check-config case in the background,
# at most par_max at once.  Each case writes only files named after it;
# par_wait waits for all of them.  Every case still runs and is checked;
# they are only not one after another (each kyufud start takes up to a
# second under ASan on a loaded machine, ~90 of them).
par_max=4 par_n=0
par() {
    if [ "$par_n" -ge "$par_max" ]; then
        wait -n
        par_n=$((par_n - 1))
    fi
    "$@" &
    par_n=$((par_n + 1))
}
par_wait() { wait; par_n=0; }

mkdir -p "$tmp/n1"
# A real CA and node certificate, so the node of the lock test below runs
# (and holds its lock) until we stop it.
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 2 -subj /CN=ca \
    -out "$tmp/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/n1/node.key" 2>/dev/null
openssl req -new -key "$tmp/n1/node.key" -subj /CN=n1 -out "$tmp/n1.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,URI:urn:kyufu:node:1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/n1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 2 -extfile "$tmp/ext" -out "$tmp/n1/node.pem" 2>/dev/null \
    || { echo "openssl failed"; exit 1; }
# Loopback ports below the ephemeral range (ports.py, as cluster.py): two
# for the three-node file below, two for the single-node starts.
read -r raft_port api_port s_raft s_api < <(/usr/bin/python3 "$here/ports.py" 4)
[ -n "${s_api:-}" ] || { echo "no free ports"; exit 1; }
good() {
cat <<EOF
[node]
id = 1
data_dir = $tmp/n1/data
raft_address = 127.0.0.1:$raft_port
api_address = 127.0.0.1:$api_port
[cluster]
# id = raft_address api_address
1 = 127.0.0.1:$raft_port 127.0.0.1:$api_port
2 = 127.0.0.1:7002 127.0.0.1:8002
3 = 127.0.0.1:7003 127.0.0.1:8003
[tls]
ca = $tmp/ca.pem
cert = $tmp/n1/node.pem
key = $tmp/n1/node.key
[raft]
election_timeout_ms = 1000
heartbeat_timeout_ms = 100
snapshot_threshold = 64
snapshot_trailing = 16
[log]
level = info
EOF
}
good >"$tmp/good.ini"
out=$("$kyufud" --check-config "$tmp/good.ini" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "good config refused (rc $rc): $out"
grep -qF "good.ini: ok (node 1; 3 members in [cluster])" <<<"$out" \
    || fail "--check-config of a good config: '$out'"
[ ! -e "$tmp/n1/data" ] || fail "--check-config created the data directory"

# expect_bad NAME SED-EXPRESSION EXPECTED-SUBSTRING...
expect_bad() {
    local name=$1 expr=$2; shift 2
    good | sed -e "$expr" >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    for want in "$@"; do
        has "$out" "$want" || fail "$name: output lacks '$want': $out"
    done
}
par expect_bad unknown_key   's/^level = info/level = info\ncolour = red/' ':22: [log] colour:' "unknown key"
par expect_bad unknown_sect  's/^\[log\]/[logging]/' ':20:' "unknown section [logging]"
par expect_bad bad_id        's/^id = 1/id = one/' ':2: [node] id:' "'one'"
par expect_bad zero_id       's/^id = 1/id = 0/' ':2: [node] id:'
par expect_bad bad_port      "s/^api_address = .*/api_address = 127.0.0.1:99999/" ':5: [node] api_address:' "1..65535"
par expect_bad missing_key   '/^data_dir/d' '[node] data_dir:' "required key 'data_dir' is missing"
par expect_bad missing_file  "s#^ca = .*#ca = $tmp/nope.pem#" ':12: [tls] ca:' "nope.pem" "No such file"
par expect_bad relative      's#^key = .*#key = node.key#' ':14: [tls] key:' "absolute"
# [tls] crl_file (revoked certificates): optional; when set, the file must
# be there at start (the node refuses to run without the CRL it was told of).
par expect_bad crl_missing   "s#^key = \(.*\)#key = \1\ncrl_file = $tmp/nope.crl#" ':15: [tls] crl_file:' "nope.crl" "No such file"
par expect_bad crl_relative  "s#^key = \(.*\)#key = \1\ncrl_file = crl.pem#" ':15: [tls] crl_file:' "absolute"
par expect_bad election_low  's/^election_timeout_ms = 1000/election_timeout_ms = 20/' ':16: [raft] election_timeout_ms:'
par expect_bad snap_low      's/^snapshot_threshold = 64/snapshot_threshold = 3/' ':18: [raft] snapshot_threshold:' "4..1048576"
par expect_bad snap_high     's/^snapshot_threshold = 64/snapshot_threshold = 1048577/' ':18: [raft] snapshot_threshold:'
par expect_bad trail_low     's/^snapshot_trailing = 16/snapshot_trailing = 1/' ':19: [raft] snapshot_trailing:' "2..524288"
par expect_bad heartbeat     's/^heartbeat_timeout_ms = 100/heartbeat_timeout_ms = 600/' ':17: [raft] heartbeat_timeout_ms:' "third"
# [node] join (a node to add with kyufuctl cluster add-node): yes/no only.
par expect_bad join_bad      's/^api_address = .*/&\njoin = maybe/' ':6: [node] join:' "'maybe' is not yes, no, true or false"
good | sed 's/^api_address = .*/&\njoin = yes/' >"$tmp/join_yes.ini"
out=$("$kyufud" --check-config "$tmp/join_yes.ini" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "join = yes refused (rc $rc): $out"
par expect_bad dup_key       's/^id = 1/id = 1\nid = 2/' ':3: [node] id:' "first set on line 2"
par expect_bad not_member    's/^1 = .*/4 = 127.0.0.1:7004 127.0.0.1:8004/' '[node] id:' "not listed in [cluster]"
par expect_bad addr_differs  's/^raft_address = .*/raft_address = 127.0.0.1:7009/' ':4: [node] raft_address:' "differs"
par expect_bad dup_peer      's/^3 = 127.0.0.1:7003 127.0.0.1:8003/2 = 127.0.0.1:7003 127.0.0.1:8003/' ':10: [cluster] 2:' "already listed on line 9"
# [keys] (encryption at rest, docs/encryption.md): exactly one source of the
# key-encryption key, absolute paths of files; the files themselves are
# checked when the node starts (tests/integration/test_cluster_keys.py).
par expect_bad keys_both     "s#^level = info#level = info\n[keys]\nkek_file = $tmp/kek.key\npassphrase_file = $tmp/pass#" ':24: [keys] passphrase_file:' "exactly one"
par expect_bad keys_neither  "s#^level = info#level = info\n[keys]\ncmk_file = $tmp/cmk#" '[keys] kek_file:' "needs kek_file or passphrase_file"
par expect_bad keys_relative "s#^level = info#level = info\n[keys]\nkek_file = kek.key#" ':23: [keys] kek_file:' "absolute"
par expect_bad keys_folder   "s#^level = info#level = info\n[keys]\nkek_file = $tmp#" ':23: [keys] kek_file:' "not a regular file"
par expect_bad keys_unknown  "s#^level = info#level = info\n[keys]\nkek = $tmp/kek.key#" ':23: [keys] kek:' "unknown key 'kek' in [keys]"
good | sed -e "s#^level = info#level = info\n[keys]\npassphrase_file = $tmp/not-installed-yet#" >"$tmp/keys-good.ini"
out=$("$kyufud" --check-config "$tmp/keys-good.ini" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "good [keys] refused (rc $rc): $out"
# [sla]: the SLO file is validated with the config; its problems name the
# config key and the SLO file's own line, section and key.
printf '[availability]\ntarget_percent = 99.9\n[rto]\ntarget_ms = 5000\n' >"$tmp/slo-good.conf"
printf '[availability]\ntarget_percent = 101\n[rto]\n' >"$tmp/slo-bad.conf"
par expect_bad slo_bad       "s#^level = info#level = info\n[sla]\nslo_file = $tmp/slo-bad.conf#" ':23: [sla] slo_file:' "slo-bad.conf:2: [availability] target_percent:" "required key 'target_ms'"
par expect_bad alert_shell   "s#^level = info#level = info\n[sla]\nalert_command = page-ops --now#" ':23: [sla] alert_command:' "absolute path"
good | sed -e "s#^level = info#level = info\n[sla]\nslo_file = $tmp/slo-good.conf\nalert_command = /bin/true --x#" >"$tmp/sla-good.ini"
out=$("$kyufud" --check-config "$tmp/sla-good.ini" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "good [sla] refused (rc $rc): $out"
# [insecure_test] password_iterations (docs/testing.md "Password hashing in
# tests"): a count in the test range, and only when every address is a
# literal loopback one; --check-config says the config is insecure.
weak='s/^level = info/level = info\n[insecure_test]\npassword_iterations = '
par expect_bad weak_low      "${weak}999/" ':23: [insecure_test] password_iterations:' "1000..99999"
par expect_bad weak_high     "${weak}100000/" ':23: [insecure_test] password_iterations:' "1000..99999"
par expect_bad weak_word     "${weak}cheap/" ':23: [insecure_test] password_iterations:' "'cheap'"
par expect_bad weak_neg      "${weak}-1000/" ':23: [insecure_test] password_iterations:' "'-1000'"
par expect_bad weak_empty    "${weak}/" '[insecure_test] password_iterations'
par expect_bad weak_unknown  's/^level = info/level = info\n[insecure_test]\nhash_cost = 1/' ':23: [insecure_test] hash_cost:' "unknown key"
par expect_bad weak_peer     "${weak}1000/; s/^3 = 127.0.0.1:7003/3 = 10.20.0.13:7003/" ':23: [insecure_test] password_iterations:' "10.20.0.13:7003 is not one" "remove [insecure_test]"
par expect_bad weak_api      "${weak}1000/; s/^3 = \(127.0.0.1:7003\) 127.0.0.1:8003/3 = \1 192.0.2.3:8003/" ':23: [insecure_test] password_iterations:' "192.0.2.3:8003 is not one"
par expect_bad weak_name     "${weak}1000/; s/^2 = 127.0.0.1:7002/2 = localhost:7002/" ':23: [insecure_test] password_iterations:' "localhost:7002 is not one"
par expect_bad weak_metrics  "${weak}1000/; s/^\(api_address = .*\)/\1\nmetrics_listen = 0.0.0.0:9100/" ':24: [insecure_test] password_iterations:' "0.0.0.0:9100 is not one"
good | sed -e "${weak}1000/" -e 's/^3 = 127.0.0.1:7003 127.0.0.1:8003/3 = 127.77.0.3:7003 127.77.0.3:8003/' >"$tmp/weak-good.ini"
out=$("$kyufud" --check-config "$tmp/weak-good.ini" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "[insecure_test] on loopback refused (rc $rc): $out"
has "$out" "INSECURE TEST config: new password hashes get 1000 PBKDF2 iterations, not 600000" \
    || fail "--check-config of [insecure_test] does not say so: '$out'"
has "$(good | "$kyufud" --print-defaults 2>&1)" "insecure" \
    && fail "--print-defaults offers [insecure_test]"
out=$("$kyufud" --check-config "$tmp/good.ini" 2>&1)
has "$out" "INSECURE" && fail "a production config is called insecure: $out"
par expect_bad dup_addr      's/^3 = 127.0.0.1:7003/3 = 127.0.0.1:7002/' ':10: [cluster] 3:' "raft address 127.0.0.1:7002"
par expect_bad peer_syntax   's/^2 = 127.0.0.1:7002 127.0.0.1:8002/2 = 127.0.0.1:7002/' ':9: [cluster] 2:' "expected"
par expect_bad syntax        's/^\[raft\]/[raft]\nthis is not ini/' ':16:' "syntax error"
par expect_bad log_level     's/^level = info/level = loud/' ':21: [log] level:' "'loud'"
# [node] metrics_* (docs/metrics.md): a numeric IPv4 address, booleans
# spelled out, TLS only with a listener, no port shared with raft or api.
par expect_bad metrics_port  's/^api_address = \(.*\)/api_address = \1\nmetrics_listen = 127.0.0.1:0/' ':6: [node] metrics_listen:' "1..65535"
par expect_bad metrics_name  's/^api_address = \(.*\)/api_address = \1\nmetrics_listen = localhost:9101/' ':6: [node] metrics_listen:' "numeric IPv4"
par expect_bad metrics_clash 's/^api_address = \(127.0.0.1:[0-9]*\)/api_address = \1\nmetrics_listen = \1/' ':6: [node] metrics_listen:' "raft or api address"
par expect_bad metrics_bool  's/^api_address = \(.*\)/api_address = \1\nmetrics_listen = 127.0.0.1:9101\nmetrics_tls = yes/' ':7: [node] metrics_tls:' "'yes' is not true or false"
par expect_bad metrics_notls 's/^api_address = \(.*\)/api_address = \1\nmetrics_tls = true/' ':6: [node] metrics_tls:' "metrics_listen is not"
par expect_bad metrics_cc    's/^api_address = \(.*\)/api_address = \1\nmetrics_listen = 127.0.0.1:9101\nmetrics_tls_client_cert = true/' ':7: [node] metrics_tls_client_cert:' "needs metrics_tls"
par expect_bad long_line     "s#^key = .*#key = /$(printf 'x%.0s' $(seq 300))#" ':14:' "longer than"

# ------------------------------------------------ --version
# The release, the store schema and the command set (docs/operations.md
# "Upgrades"); an extra argument is a usage error.
version=$("$kyufud" --version); rc=$?
[ $rc -eq 0 ] || fail "--version: exit $rc"
[[ $version =~ ^kyufud\ [0-9]+\.[0-9]+\.[0-9]+$'\n'store\ schema\ [0-9]+$'\n'command\ set\ [0-9]+$ ]] \
    || fail "--version: unexpected output: $version"
"$kyufud" --version extra >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "--version extra: exit $rc, want 2"

# ------------------------------------------------ [raft] bounds and rules
# The defaults and bounds the binary applies (the one source,
# raft-glue/glue_limits.h), as "key = default ; min..max unit".
defaults=$("$kyufud" --print-defaults); rc=$?
[ $rc -eq 0 ] || fail "--print-defaults: exit $rc"
declare -A def min max unit
while IFS= read -r line; do
    if [[ $line =~ ^([a-z_]+)\ =\ ([0-9]+)\ \;\ ([0-9]+)\.\.([0-9]+)\ ([a-z]+)$ ]]; then
        k=${BASH_REMATCH[1]}
        def[$k]=${BASH_REMATCH[2]} min[$k]=${BASH_REMATCH[3]}
        max[$k]=${BASH_REMATCH[4]} unit[$k]=${BASH_REMATCH[5]}
    fi
done <<<"$defaults"
raft_keys="election_timeout_ms heartbeat_timeout_ms snapshot_threshold snapshot_trailing"
for k in $raft_keys; do
    [ -n "${def[$k]:-}" ] || fail "--print-defaults lacks $k: $defaults"
done
api_keys="connections_max connections_per_address_max"
for k in $api_keys; do
    [ -n "${def[$k]:-}" ] || fail "--print-defaults lacks $k: $defaults"
done
[ -n "${def[poll_ms]:-}" ] || fail "--print-defaults lacks poll_ms: $defaults"
[ -n "${def[alert_command_timeout_ms]:-}" ] || fail "--print-defaults lacks alert_command_timeout_ms: $defaults"
[ -n "${def[heartbeat_ms]:-}" ] || fail "--print-defaults lacks [sla] heartbeat_ms: $defaults"
[ -n "${def[checkpoint_interval_seconds]:-}" ] || fail "--print-defaults lacks [audit] checkpoint_interval_seconds: $defaults"
[ -n "${def[checkpoint_records]:-}" ] || fail "--print-defaults lacks [audit] checkpoint_records: $defaults"
[ -n "${def[group_commit_entries_inflight]:-}" ] || fail "--print-defaults lacks [raft] group_commit_entries_inflight: $defaults"
[ "${def[interval_seconds]:-}" = 600 ] && [ "${min[interval_seconds]:-}" = 0 ] || fail "--print-defaults lacks [scrub] interval_seconds = 600 ; 0..: $defaults"
[ -n "${def[reencrypt_records_per_s]:-}" ] || fail "--print-defaults lacks [keys] reencrypt_records_per_s: $defaults"
[ ${#def[@]} -eq 22 ] || fail "--print-defaults: ${#def[@]} numeric keys, want 22 (10, [audit]'s 2, [auth]'s 8, [keys]' 1 and [scrub]'s 1): $defaults"
# [scrub] interval_seconds (docs/scrub.md): 0 (off) .. 86400 seconds.
for bad in 86401 -1 ten; do
    par expect_bad "scrub_$bad" "s/^level = info/level = info\n[scrub]\ninterval_seconds = $bad/" \
        ":23: [scrub] interval_seconds:" "'$bad' is not a number of seconds in 0..86400"
done
# [raft] group_commit_entries_inflight (issue 9, the proposer's window): a
# number of entries in its bounds, anything else named on its line.
w=group_commit_entries_inflight
for bad in 0 "$((max[$w] + 1))" -1 eight 8x 99999999999999999999; do
    par expect_bad "window_$bad" "s/^snapshot_trailing = 16/snapshot_trailing = 16\n$w = $bad/" \
        ":20: [raft] $w:" "'$bad' is not a number of entries in ${min[$w]}..${max[$w]}"
done
for ok in "${min[$w]}" "${max[$w]}"; do
    good | sed "s/^snapshot_trailing = 16/snapshot_trailing = 16\n$w = $ok/" >"$tmp/window_$ok.ini"
    out=$("$kyufud" --check-config "$tmp/window_$ok.ini" 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "$w = $ok refused (rc $rc): $out"
done

# single NAME ELECTION HEARTBEAT THRESHOLD TRAILING: a one-node cluster
# (it elects itself), [raft] on lines 13-16.
single() {
cat <<EOF
[node]
id = 1
data_dir = $tmp/$1/data
raft_address = 127.0.0.1:$s_raft
api_address = 127.0.0.1:$s_api
[cluster]
1 = 127.0.0.1:$s_raft 127.0.0.1:$s_api
[tls]
ca = $tmp/ca.pem
cert = $tmp/n1/node.pem
key = $tmp/n1/node.key
[raft]
election_timeout_ms = $2
heartbeat_timeout_ms = $3
snapshot_threshold = $4
snapshot_trailing = $5
[log]
level = info
${api_extra:-}
EOF
}
declare -A line_of=([election_timeout_ms]=13 [heartbeat_timeout_ms]=14
         [snapshot_threshold]=15 [snapshot_trailing]=16)

# accept_and_start NAME E H TH TR: --check-config accepts the file, and
# kyufud started with it comes up (raft-glue took every option: "node
# started" follows kyufu_glue_init and kyufu_glue_start), becomes leader of
# its one-node cluster, and stops cleanly on SIGTERM.
accept_and_start() {
    local name=$1; shift
    mkdir -p "$tmp/$name"
    single "$name" "$@" >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 0 ] || { fail "$name ($*): --check-config refused (rc $rc): $out"; return; }
    "$kyufud" --config "$tmp/$name.ini" 2>"$tmp/$name.log" &
    local pid=$!; pids+=("$pid")
    for _ in $(seq 150); do
        grep -q '"msg":"leader changed".*"leader":1,"role":"leader"' "$tmp/$name.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '"msg":"node started"' "$tmp/$name.log" \
        || fail "$name ($*): accepted by --check-config but did not start: $(tail -3 "$tmp/$name.log")"
    grep -q '"msg":"leader changed".*"leader":1,"role":"leader"' "$tmp/$name.log" \
        || fail "$name ($*): no leader: $(tail -3 "$tmp/$name.log")"
    kill -TERM "$pid" 2>/dev/null; wait "$pid"; rc=$?
    [ $rc -eq 0 ] || fail "$name ($*): exit $rc after SIGTERM: $(tail -3 "$tmp/$name.log")"
}
e=election_timeout_ms h=heartbeat_timeout_ms th=snapshot_threshold tr=snapshot_trailing
# Every key at its minimum at once, and at its maximum at once (the rules
# hold for both: glue_limits.h asserts it at compile time).
accept_and_start all_min "${min[$e]}" "${min[$h]}" "${min[$th]}" "${min[$tr]}"
accept_and_start all_max "${max[$e]}" "${max[$h]}" "${max[$th]}" "${max[$tr]}"
# The rules at their edge: heartbeat exactly a third, trailing one below.
accept_and_start rule_edge 300 100 5 4
# The defaults, written out.
accept_and_start defaults "${def[$e]}" "${def[$h]}" "${def[$th]}" "${def[$tr]}"

# refuse NAME E H TH TR KEY WANT...: exit 2, one error, naming KEY and its line.
refuse() {
    local name=$1 key=$6 n; shift
    mkdir -p "$tmp/$name"
    single "$name" "$1" "$2" "$3" "$4" >"$tmp/$name.ini"; shift 5
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    has "$out" ":${line_of[$key]}: [raft] $key:" \
        || fail "$name: no error at line ${line_of[$key]} naming $key: $out"
    n=$(grep -c ':[0-9]*: \[' <<<"$out")
    [ "$n" -eq 1 ] || fail "$name: $n errors, want 1: $out"
    for want in "$@"; do
        has "$out" "$want" || fail "$name: output lacks '$want': $out"
    done
}
lo=("${min[$e]}" "${min[$h]}" "${min[$th]}" "${min[$tr]}")
hi=("${max[$e]}" "${max[$h]}" "${max[$th]}" "${max[$tr]}")
i=0
for k in $raft_keys; do
    v=("${lo[@]}"); v[$i]=$((min[$k] - 1))
    par refuse "under_$k" "${v[@]}" "$k" "'${v[$i]}' is not a number of ${unit[$k]} in ${min[$k]}..${max[$k]}"
    v=("${hi[@]}"); v[$i]=$((max[$k] + 1))
    par refuse "over_$k" "${v[@]}" "$k" "'${v[$i]}' is not a number of ${unit[$k]} in ${min[$k]}..${max[$k]}"
    i=$((i + 1))
done
par refuse rule_heartbeat 300 101 5 4 "$h" "101 ms is more than a third of the election timeout (300 ms)"
par refuse rule_trailing  300 100 5 5 "$tr" "5 entries kept after a snapshot is not below the snapshot threshold (5 entries)"
# A rule broken by a key left at its default is reported at the key set.
single rule_default 1000 100 1000 2 | sed '/^snapshot_trailing/d' >"$tmp/rule_default.ini"
out=$("$kyufud" --check-config "$tmp/rule_default.ini" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "rule_default: exit $rc, want 2 ($out)"
grep -qF ":15: [raft] snapshot_threshold: ${def[$tr]} entries kept after a snapshot is not below the snapshot threshold (1000 entries) (snapshot_trailing is at its default)" <<<"$out" \
    || fail "rule_default: $out"

# Inline comments, '#' as well as ';', whatever libinih was built with.
mkdir -p "$tmp/inline" "$tmp/rule_default"
single inline 300 100 64 16 \
    | sed -e 's/^election_timeout_ms = 300/election_timeout_ms = 300   # three heartbeats/' \
          -e 's/^snapshot_threshold = 64/snapshot_threshold = 64 ; entries/' >"$tmp/inline.ini"
out=$("$kyufud" --check-config "$tmp/inline.ini" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "inline comments refused: $out"
# ... and really cut: the value before the comment is the one checked.
sed -e 's/^heartbeat_timeout_ms = 100/heartbeat_timeout_ms = 101 # one too many/' \
    "$tmp/inline.ini" >"$tmp/inline_bad.ini"
out=$("$kyufud" --check-config "$tmp/inline_bad.ini" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF ":14: [raft] heartbeat_timeout_ms: 101 ms" <<<"$out" \
    || fail "inline comment not cut before the value: $out"

# [api]: limits at their bounds start (the API server takes them), one
# beyond is refused naming key and line; allow-lists parse or are refused.
api_extra=$'[api]\nconnections_max = 1\nconnections_per_address_max = 1\nallow = 127.0.0.1/32, ::1'
accept_and_start api_min 1000 100 64 16
api_extra=$'[api]\nconnections_max = '"${max[connections_max]}"$'\nconnections_per_address_max = '"${max[connections_per_address_max]}"
accept_and_start api_max 1000 100 64 16
api_refuse() {
    local name=$1 line=$2 key=$3 want=$4
    single "$name" 1000 100 64 16 >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    has "$out" ":$line: [api] $key: $want" || fail "$name: $out"
}
mkdir -p "$tmp/api_zero" "$tmp/api_over" "$tmp/api_rule" "$tmp/api_allow"
api_extra=$'[api]\nconnections_max = 0'
par api_refuse api_zero 20 connections_max "'0' is not a number of connections in 1..${max[connections_max]}"
api_extra=$'[api]\nconnections_max = '"$((max[connections_max] + 1))"
par api_refuse api_over 20 connections_max "'$((max[connections_max] + 1))' is not a number of connections in 1..${max[connections_max]}"
api_extra=$'[api]\nconnections_max = 8\nconnections_per_address_max = 9'
par api_refuse api_rule 21 connections_per_address_max "connections_per_address_max (9) exceeds connections_max (8)"
api_extra=$'[api]\nallow = 10.0.0.0/8, 10.1.0.0/33'
par api_refuse api_allow 20 allow 'bad network "10.1.0.0/33"'
mkdir -p "$tmp/raft_allow"
api_extra=$'[raft]\nallow = 127.0.0.1/32, 300.1.2.3'
single raft_allow 1000 100 64 16 >"$tmp/raft_allow.ini"
out=$("$kyufud" --check-config "$tmp/raft_allow.ini" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF ':20: [raft] allow: bad network "300.1.2.3"' <<<"$out" \
    || fail "raft_allow: $out"
api_extra=

# [power]: a UPS nobody serves starts (lost contact is an alert, never a
# stop: docs/power.md), poll_ms at its bounds; bad values named by line.
api_extra=$'[power]\nups = ups1@127.0.0.1:1\ndomain = room-a\npoll_ms = '"${min[poll_ms]}"$'\nshutdown_command = /bin/true'
accept_and_start power_min 1000 100 64 16
grep -qF '"msg":"power: lost contact with the UPS' "$tmp/power_min.log" \
    || fail "power_min: no lost-contact alert: $(tail -5 "$tmp/power_min.log")"
api_extra=$'[power]\nups = ups1@localhost\npoll_ms = '"${max[poll_ms]}"
accept_and_start power_max 1000 100 64 16
power_refuse() {
    local name=$1 line=$2 key=$3 want=$4
    mkdir -p "$tmp/$name"
    single "$name" 1000 100 64 16 >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    has "$out" ":$line: [power] $key: $want" || fail "$name: $out"
}
api_extra=$'[power]\nups = ups1'
par power_refuse power_no_host 20 ups "expected NAME@HOST[:PORT], got 'ups1'"
api_extra=$'[power]\nups = ups1@127.0.0.1:65536'
par power_refuse power_port 20 ups "port of 'ups1@127.0.0.1:65536' must be 1..65535"
# [backup] require_mount (docs/backup.md "Mount check"): [backup] directory
# or one of its parents, both plain absolute paths compared as written (by
# whole components), only with a directory; no file system is touched, so
# a directory on a NAS that is down at boot is accepted.
mkdir -p "$tmp/bk/nas/kyufu/x" "$tmp/bk/other" "$tmp/bk/na"
bk="s#^level = info#level = info\n[backup]\ndirectory = $tmp/bk/nas/kyufu"
par expect_bad mount_relative "$bk\nrequire_mount = bk/nas#" ':24: [backup] require_mount:' "'bk/nas' must be an absolute path"
par expect_bad mount_empty    "$bk\nrequire_mount =#" ':24: [backup] require_mount:' "'' must be an absolute path"
par expect_bad mount_long     "$bk\nrequire_mount = /$(printf 'a%.0s' {1..600})#" ':24: line is longer than'
par expect_bad mount_dotdot   "$bk\nrequire_mount = $tmp/bk/other/../nas#" ':24: [backup] require_mount:' "must be written as plain absolute paths"
par expect_bad mount_slash    "$bk\nrequire_mount = $tmp/bk/nas/#" ':24: [backup] require_mount:' "must be written as plain absolute paths"
par expect_bad mount_dot_dir  "s#^level = info#level = info\n[backup]\ndirectory = $tmp/bk/nas/./kyufu\nrequire_mount = $tmp/bk/nas#" ':24: [backup] require_mount:' "must be written as plain absolute paths"
par expect_bad mount_sibling  "$bk\nrequire_mount = $tmp/bk/other#" ':24: [backup] require_mount:' "is neither [backup] directory ($tmp/bk/nas/kyufu) nor one of its parents"
par expect_bad mount_prefix   "$bk\nrequire_mount = $tmp/bk/na#" ':24: [backup] require_mount:' "nor one of its parents"
par expect_bad mount_below    "$bk\nrequire_mount = $tmp/bk/nas/kyufu/x#" ':24: [backup] require_mount:' "nor one of its parents"
par expect_bad mount_elsewhere "$bk\nrequire_mount = $tmp/bk/gone#" ':24: [backup] require_mount:' "nor one of its parents"
par expect_bad mount_no_dir   "s#^level = info#level = info\n[backup]\nrequire_mount = /#" ':23: [backup] require_mount:' "require_mount needs [backup] directory"
par expect_bad mount_dup      "$bk\nrequire_mount = /\nrequire_mount = /#" ':25: [backup] require_mount:' "first set on line 24"
# Without require_mount the directory must exist.
par expect_bad dir_missing    "s#^level = info#level = info\n[backup]\ndirectory = $tmp/bk/down/kyufu#" ':23: [backup] directory:' "must be the absolute path of an existing folder"
for m in "$tmp/bk/nas/kyufu" "$tmp/bk/nas" /; do
    good | sed -e "$bk\nrequire_mount = $m#" >"$tmp/mount_ok.ini"
    out=$("$kyufud" --check-config "$tmp/mount_ok.ini" 2>&1) || fail "require_mount = $m refused: $out"
done
# The NAS down at boot: neither the mount point's folder nor the directory
# exists; kyufud starts (backups are refused until it is mounted).
good | sed -e "s#^level = info#level = info\n[backup]\ndirectory = $tmp/bk/down/kyufu\nrequire_mount = $tmp/bk/down#" >"$tmp/mount_down.ini"
out=$("$kyufud" --check-config "$tmp/mount_down.ini" 2>&1) || fail "require_mount on a NAS down at boot refused: $out"
api_extra=$'[power]\nups = ups 1@h'
par power_refuse power_name 20 ups "'ups 1@h': only letters, digits and _.-@: allowed"
api_extra=$'[power]\npoll_ms = '"$((min[poll_ms] - 1))"
par power_refuse power_poll_low 20 poll_ms "'$((min[poll_ms] - 1))' is not a number of milliseconds in ${min[poll_ms]}..${max[poll_ms]}"
api_extra=$'[power]\npoll_ms = '"$((max[poll_ms] + 1))"
par power_refuse power_poll_high 20 poll_ms "'$((max[poll_ms] + 1))' is not a number of milliseconds in ${min[poll_ms]}..${max[poll_ms]}"
api_extra=$'[power]\nshutdown_command = poweroff'
par power_refuse power_cmd 20 shutdown_command "'poweroff' must start with an absolute path"
api_extra=$'[power]\ndomain = room a'
par power_refuse power_domain 20 domain "'room a': only letters"
# [sla] (docs/sla.md): the heartbeat's bounds are apply's; allow_drills is
# true or false, nothing else.
sla_refuse() {
    local name=$1 line=$2 key=$3 want=$4
    mkdir -p "$tmp/$name"
    single "$name" 1000 100 64 16 >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    grep -qF -- ":$line: [sla] $key: $want" <<<"$out" || fail "$name: $out"
}
api_extra=$'[sla]\nheartbeat_ms = '"$((min[heartbeat_ms] - 1))"
sla_refuse sla_hb_low 20 heartbeat_ms "'$((min[heartbeat_ms] - 1))' is not a number of milliseconds in ${min[heartbeat_ms]}..${max[heartbeat_ms]}"
api_extra=$'[sla]\nallow_drills = yes'
sla_refuse sla_drills 20 allow_drills "'yes' is neither true nor false"
# [auth] (docs/identity.md): numbers in their bounds, idle within the
# absolute limit; 0 turns password expiry off.
auth_refuse() {
    local name=$1 line=$2 key=$3 want=$4
    mkdir -p "$tmp/$name"
    single "$name" 1000 100 64 16 >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    grep -qF -- ":$line: [auth] $key: $want" <<<"$out" || fail "$name: $out"
}
api_extra=$'[auth]\npassword_min_length = 7'
auth_refuse auth_len 20 password_min_length "'7' is not a number of characters in ${min[password_min_length]}..${max[password_min_length]}"
api_extra=$'[auth]\nlockout_failures = 0'
auth_refuse auth_lock 20 lockout_failures "'0' is not a number of failures in 1..${max[lockout_failures]}"
api_extra=$'[auth]\npassword_history = -1'
auth_refuse auth_hist 20 password_history "'-1' is not a number of passwords in 0..${max[password_history]}"
api_extra=$'[auth]\nsession_max_hours = 1\nsession_idle_minutes = 61'
auth_refuse auth_idle 21 session_idle_minutes "61 minutes is longer than session_max_hours (1 hours)"
api_extra=$'[auth]\nsession_pepper = x'
mkdir -p "$tmp/auth_unknown"
single auth_unknown 1000 100 64 16 >"$tmp/auth_unknown.ini"
out=$("$kyufud" --check-config "$tmp/auth_unknown.ini" 2>&1) && fail "[auth] unknown key accepted: $out"
grep -qF 'session_pepper' <<<"$out" || fail "[auth] unknown key: $out"
api_extra=$'[auth]\npassword_max_age_days = 0\npurge_after_days = 30'
mkdir -p "$tmp/auth_ok"
single auth_ok 1000 100 64 16 >"$tmp/auth_ok.ini"
out=$("$kyufud" --check-config "$tmp/auth_ok.ini" 2>&1) || fail "[auth] good values refused: $out"
# [storage] flush (docs/storage.md "Durability of the store").
storage_check() {
    local name=$1 want=$2
    mkdir -p "$tmp/$name"
    single "$name" 1000 100 64 16 >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    if [ -z "$want" ]; then
        [ $rc -eq 0 ] || fail "$name: refused: $out"
    else
        [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
        grep -qF -- ":20: [storage] flush: $want" <<<"$out" || fail "$name: $out"
    fi
}
api_extra=$'[storage]\nflush = sometimes'
storage_check storage_bad "'sometimes' is neither commit nor background"
api_extra=$'[storage]\nflush = background'
storage_check storage_background ""
api_extra=$'[storage]\nflush = commit'
storage_check storage_commit ""
api_extra=$'[sla]\nallow_drills = true\nheartbeat_ms = 250'
mkdir -p "$tmp/sla_ok"
single sla_ok 1000 100 64 16 >"$tmp/sla_ok.ini"
out=$("$kyufud" --check-config "$tmp/sla_ok.ini" 2>&1) || fail "[sla] good values refused: $out"
api_extra=

# ------------------------------------------------------------------- docs
# docs/operations.md's table of optional keys is --print-defaults.
# (rows of its "Configuration" section only: other tables have such rows)
table=$(awk '/^## /{on=($0=="## Configuration")} on' "$docs/operations.md" \
        | grep -E '^\| `[a-z_]+` \| ' \
        | sed -E 's/^\| `([a-z_]+)` \| ([^ ]+) \| ([^|]*[^ |]) \|.*/\1 = \2 ; \3/')
printed=$(grep -v '^\[' <<<"$defaults" | sed -e 's/debug | info | warn | error/debug, info, warn, error/' \
          -e 's/background | commit/background, commit/')
[ "$table" = "$printed" ] \
    || fail "docs/operations.md's table differs from --print-defaults:"$'\n'"$table"$'\n'"---"$'\n'"$printed"
# docs/raft.md's options table states the same [raft] values.
for want in "| election timeout | ${def[$e]} ms (${min[$e]}..${max[$e]})" \
            "| heartbeat timeout | ${def[$h]} ms (${min[$h]}..${max[$h]}), ≤ election/3" \
            "| snapshot threshold / trailing | ${def[$th]} (${min[$th]}..${max[$th]}) / ${def[$tr]} (${min[$tr]}..${max[$tr]}) entries"; do
    grep -qF -- "$want" "$docs/raft.md" || fail "docs/raft.md lacks '$want'"
done
# The sample config of docs/operations.md passes --check-config (its
# certificate paths and data directory moved into $tmp), and its documented
# error for a heartbeat of 600 ms is the one kyufud prints.
cp "$tmp/n1/node.pem" "$tmp/n1/node.key" "$tmp/"
awk '/^```ini$/ { on = 1; next } on && /^```$/ { exit } on' "$docs/operations.md" \
    | sed -e "s#/etc/kyufu/#$tmp/#" -e "s#/var/lib/kyufu#$tmp/sample-data#" >"$tmp/kyufud.conf"
grep -q '^election_timeout_ms' "$tmp/kyufud.conf" || fail "no sample config in docs/operations.md"
out=$("$kyufud" --check-config "$tmp/kyufud.conf" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "docs/operations.md's sample config refused: $out"
sed -i -e 's/^heartbeat_timeout_ms = 100 /heartbeat_timeout_ms = 600 /' "$tmp/kyufud.conf"
want=$(grep -F 'kyufud: /etc/kyufu/kyufud.conf:' "$docs/operations.md" | sed -e "s#/etc/kyufu/#$tmp/#")
out=$("$kyufud" --check-config "$tmp/kyufud.conf" 2>&1); rc=$?
[ $rc -eq 2 ] && [ -n "$want" ] && grep -qxF -- "$want" <<<"$out" \
    || fail "docs/operations.md's example error ('$want') is not kyufud's: $out"

# Every config sample in docs/*.md (whole configs, and fragments put into
# operations.md's) passes --check-config: doc_configs.py.
mkdir -p "$tmp/doc-samples"
samples=$(/usr/bin/python3 "$here/doc_configs.py" "$docs" "$tmp/doc-samples" "$tmp" \
          "$tmp/ca.pem" "$tmp/n1/node.pem" "$tmp/n1/node.key") \
    || fail "doc_configs.py failed: $samples"
[ "$(wc -l <<<"$samples")" -ge 3 ] || fail "fewer than 3 config samples found in docs/: $samples"
while read -r file where; do
    [ -n "$file" ] || continue
    out=$("$kyufud" --check-config "$file" 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "docs/$where: the config sample is refused: $out"
done <<<"$samples"

# A '#' or ';' with no blank before it is part of the value, not a comment.
good | sed -e 's/^level = info/level = info#debug/' >"$tmp/hash_value.ini"
out=$("$kyufud" --check-config "$tmp/hash_value.ini" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "'info#debug'" <<<"$out" \
    || fail "a '#' inside a value was not kept in it (exit $rc): $out"

out=$("$kyufud" --check-config "$tmp/missing.ini" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "missing config file: exit $rc, want 2"
grep -qF "cannot open" <<<"$out" || fail "missing config file: '$out'"
out=$("$kyufud" --bogus 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bad usage must exit 2"
grep -qF "unknown option '--bogus'" <<<"$out" \
    || fail "bad usage does not name the option: $out"
out=$("$kyufud" --config 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF -- "--config takes exactly one FILE" <<<"$out" \
    || fail "--config without FILE (exit $rc): $out"
out=$("$kyufud" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "no option given" <<<"$out" \
    || fail "no arguments (exit $rc): $out"

par_wait # bad_port.ini below, and no case still running at the lock test
# --config with a bad file: exit 2, JSON log line naming the key.
out=$("$kyufud" --config "$tmp/bad_port.ini" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "--config bad file: exit $rc, want 2"
grep -q '"level":"error".*"line":5.*"key":"api_address"' <<<"$out" || fail "--config bad file log: $out"

# The data-directory lock: a second process on the same directory fails
# clearly while the first one runs.
"$kyufud" --config "$tmp/good.ini" 2>"$tmp/first.log" &
first=$!; pids+=("$first")
for _ in $(seq 50); do [ -s "$tmp/n1/data/LOCK" ] && break; sleep 0.1; done
out=$("$kyufud" --config "$tmp/good.ini" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "second kyufud on a locked data dir: exit $rc, want 1 ($out)"
grep -qF "in use by another kyufud (pid $first)" <<<"$out" || fail "lock message: $out"

kill -TERM "$first"; wait "$first"; rc=$?
[ $rc -eq 0 ] || fail "first kyufud: exit $rc after SIGTERM, want 0: $(tail -5 "$tmp/first.log")"
grep -q '"msg":"node stopped","exit_code":0' "$tmp/first.log" || fail "no clean stop line: $(tail -5 "$tmp/first.log")"

# Raft speaks mutual TLS only and peers check the node id in the
# certificate (docs/peer-tls.md): a certificate that names no node id, or
# another node's, stops kyufud at start with the reason.
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tmp/ext0"
printf 'subjectAltName=IP:127.0.0.1,URI:urn:kyufu:node:2\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tmp/ext2"
for c in 0 2; do
    openssl x509 -req -in "$tmp/n1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -CAcreateserial -days 2 -extfile "$tmp/ext$c" -out "$tmp/n1/id$c.pem" 2>/dev/null \
        || { echo "openssl failed"; exit 1; }
    good | sed "s|^cert = .*|cert = $tmp/n1/id$c.pem|" >"$tmp/id$c.ini"
    out=$("$kyufud" --config "$tmp/id$c.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "certificate naming node $c: exit $rc, want 2 ($out)"
    grep -qF "does not name this node" <<<"$out" || fail "certificate naming node $c: $out"
done

par_wait
if [ -s "$tmp/failed" ]; then
    echo "$(wc -l <"$tmp/failed") failure(s)"
    exit 1
fi
echo "config tests: ok"
