#!/usr/bin/env bash
# kyufud --check-config / --config: what an operator relies on when a config
# file is wrong: exit status 2 and an error naming the line and the key;
# a good file passes; a second kyufud on the same data directory is refused.
#   usage: config_test.sh KYUFUD
set -u
kyufud=$1
tmp=$(mktemp -d /tmp/kyufu-config-test.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

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
read -r raft_port api_port < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
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
[ ! -e "$tmp/n1/data" ] || fail "--check-config created the data directory"

# expect_bad NAME SED-EXPRESSION EXPECTED-SUBSTRING...
expect_bad() {
    local name=$1 expr=$2; shift 2
    good | sed -e "$expr" >"$tmp/$name.ini"
    out=$("$kyufud" --check-config "$tmp/$name.ini" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
    for want in "$@"; do
        grep -qF -- "$want" <<<"$out" || fail "$name: output lacks '$want': $out"
    done
}
expect_bad unknown_key   's/^level = info/level = info\ncolour = red/' ':22: [log] colour:' "unknown key"
expect_bad unknown_sect  's/^\[log\]/[logging]/' ':20:' "unknown section [logging]"
expect_bad bad_id        's/^id = 1/id = one/' ':2: [node] id:' "'one'"
expect_bad zero_id       's/^id = 1/id = 0/' ':2: [node] id:'
expect_bad bad_port      "s/^api_address = .*/api_address = 127.0.0.1:99999/" ':5: [node] api_address:' "1..65535"
expect_bad missing_key   '/^data_dir/d' '[node] data_dir:' "required key 'data_dir' is missing"
expect_bad missing_file  "s#^ca = .*#ca = $tmp/nope.pem#" ':12: [tls] ca:' "nope.pem" "No such file"
expect_bad relative      's#^key = .*#key = node.key#' ':14: [tls] key:' "absolute"
expect_bad election_low  's/^election_timeout_ms = 1000/election_timeout_ms = 20/' ':16: [raft] election_timeout_ms:'
expect_bad heartbeat     's/^heartbeat_timeout_ms = 100/heartbeat_timeout_ms = 600/' ':17: [raft] heartbeat_timeout_ms:' "third"
expect_bad dup_key       's/^id = 1/id = 1\nid = 2/' ':3: [node] id:' "first set on line 2"
expect_bad not_member    's/^1 = .*/4 = 127.0.0.1:7004 127.0.0.1:8004/' '[node] id:' "not listed in [cluster]"
expect_bad addr_differs  's/^raft_address = .*/raft_address = 127.0.0.1:7009/' ':4: [node] raft_address:' "differs"
expect_bad dup_peer      's/^3 = 127.0.0.1:7003 127.0.0.1:8003/2 = 127.0.0.1:7003 127.0.0.1:8003/' ':10: [cluster] 2:' "already listed on line 9"
expect_bad dup_addr      's/^3 = 127.0.0.1:7003/3 = 127.0.0.1:7002/' ':10: [cluster] 3:' "raft address 127.0.0.1:7002"
expect_bad peer_syntax   's/^2 = 127.0.0.1:7002 127.0.0.1:8002/2 = 127.0.0.1:7002/' ':9: [cluster] 2:' "expected"
expect_bad syntax        's/^\[raft\]/[raft]\nthis is not ini/' ':16:' "syntax error"
expect_bad log_level     's/^level = info/level = loud/' ':21: [log] level:' "'loud'"
expect_bad long_line     "s#^key = .*#key = /$(printf 'x%.0s' $(seq 300))#" ':14:' "longer than"

out=$("$kyufud" --check-config "$tmp/missing.ini" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "missing config file: exit $rc, want 2"
grep -qF "cannot open" <<<"$out" || fail "missing config file: '$out'"
"$kyufud" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad usage must exit 2"

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
    [ $rc -eq 1 ] || fail "certificate naming node $c: exit $rc, want 1 ($out)"
    grep -qF "does not name this node" <<<"$out" || fail "certificate naming node $c: $out"
done

[ $fails -eq 0 ] && echo "config tests: ok"
exit $((fails > 0))
