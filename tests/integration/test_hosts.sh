#!/usr/bin/env bash
# docs/operations.md "Three hosts from empty", followed literally: the
# guide's blocks (each after a `<!-- hosts-test: KIND -->` line) are read
# from the file and run, so the guide and this test cannot drift apart.
#
# Hosts: three network namespaces, 10.77.0.1..3/24, and an admin machine,
# 10.77.0.100, holding the bridge that joins them: a private network that
# exists only inside namespaces this test creates and deletes.  Each host
# also gets its own /etc, /var and /usr/local: overlays (upper layers
# in the test's folder) in a private mount namespace, so `useradd`,
# `install` and `cp` to /usr/local run as written, and nothing reaches the
# machine's own files.
#
# Kinds of block: admin (run on the admin machine, in a folder where
# `build` is this build), copy (`scp -r SRC root@HOST:DST`, run as
# `cp -r SRC` into that host's home folder: the hosts share a file system),
# host (run on each host, as root, in its home folder), start (systemctl:
# no systemd here, so the test runs what the installed unit runs instead:
# ExecStartPre= and ExecStart= as User=, with its UMask=, LimitCORE=,
# NoNewPrivileges=, an empty capability bounding set, and ProtectSystem=,
# PrivateTmp=, ProtectHome= played by the mount namespace), admin again
# (the first ID administrator signs in, creates an operator's account) and
# operator (the operator signs in, cluster status).  Those two blocks run
# line by line on the admin machine, each person with their own token file
# (XDG_CONFIG_HOME), the operator with the administrator's certificate; a
# `kyufuctl ... login --staff-id ID` line, which asks on the terminal, is
# given the same answers as files and options (scripts/run's first sign-in:
# the temporary password, a new one, TOTP enrolled with `oathtool` playing
# the phone), the temporary passwords taken from what `cluster init` and
# `staff create` printed.  Then: every node deleted bootstrap-admin once the
# account existed, the operator's session sees a leader, every node applies
# the write (same applied index and digest), the ID administrator reads the
# new account back, and each kyufud runs as the kyufu user with its data in
# /var/lib/kyufu.
#
# Skipped (exit 77) without root, `ip netns` or overlayfs.  On every exit
# (TERM included) the processes in the test's namespaces (`ip netns pids`)
# are stopped by PID and the namespaces deleted.
#   usage: test_hosts.sh BUILD_ROOT SOURCE_ROOT
set -u
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
doc=$src/docs/operations.md
py=/usr/bin/python3

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v unshare >/dev/null && command -v setpriv >/dev/null || skip "no util-linux unshare/setpriv"

tmp=$(mktemp -d /tmp/kyufu-hosts.XXXXXX)
chmod 0755 "$tmp" # the kyufu user walks into each host's overlay layers
sfx=$$
adm=kyu-adm-$sfx
hosts_ns=(kyu-h1-$sfx kyu-h2-$sfx kyu-h3-$sfx)
addrs=(10.77.0.1 10.77.0.2 10.77.0.3)
made_ns=()
setups=()
cleanup() {
    local pids=() pid= ns
    # Host setups still running first (then no kyufud can start after this).
    for pid in "${setups[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${setups[@]}"; do wait "$pid" 2>/dev/null; done
    # Every process in our namespaces, by PID (the kyufud of each host).
    for ns in "${made_ns[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$pid"); done
    done
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    # A clean stop of the last leader waits up to 5 s for a hand-over no
    # one can take; this test checks nothing of it: SIGKILL (safe,
    # docs/operations.md "Failover") after a short grace.
    for _ in $(seq 20); do
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
        [ -z "$pid" ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    # The killed processes may not be reaped yet (their mount namespaces
    # still hold the namespace): try again for up to 5 s.
    for ns in "${made_ns[@]}"; do
        for _ in $(seq 50); do
            ip netns del "$ns" 2>/dev/null && break
            [ -e "/run/netns/$ns" ] || break
            sleep 0.1
        done
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" TERM INT HUP
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() {
    echo "FAIL: $*"
    for i in 1 2 3; do
        [ -f "$tmp/h$i/kyufud.log" ] && { echo "--- host $i kyufud.log"; tail -20 "$tmp/h$i/kyufud.log"; }
        [ -f "$tmp/h$i/setup.log" ] && { echo "--- host $i setup.log"; tail -20 "$tmp/h$i/setup.log"; }
    done
    exit 1
}

# ------------------------------------------------------------ the guide
mkdir -p "$tmp/blocks"
awk -v out="$tmp/blocks" '
    /^<!-- hosts-test: [a-z]+ -->$/ { kind = $3; want = 1; next }
    want && /^```/ { n++; file = sprintf("%s/%02d.%s", out, n, kind); inblk = 1; want = 0; next }
    inblk && /^```$/ { inblk = 0; close(file); next }
    inblk { print > file }
' "$doc"
kinds=$(cd "$tmp/blocks" && ls | sed 's/^[0-9]*\.//' | tr '\n' ' ')
[ "$kinds" = "admin copy host start admin operator " ] \
    || die "docs/operations.md 'Three hosts from empty': blocks are '$kinds', this test knows 'admin copy host start admin operator'"
blocks=("$tmp"/blocks/*)
grep -qx 'systemctl enable --now kyufud' "${blocks[3]}" \
    || die "the start block no longer runs 'systemctl enable --now kyufud': update the test"

mkdir -p "$tmp/ovl/lower" "$tmp/ovl/upper" "$tmp/ovl/work" "$tmp/ovl/mnt"
unshare -m --propagation private mount -t overlay overlay \
    -o "lowerdir=$tmp/ovl/lower,upperdir=$tmp/ovl/upper,workdir=$tmp/ovl/work" "$tmp/ovl/mnt" \
    2>/dev/null || skip "overlayfs cannot be mounted here (each host needs its own /etc)"

# ------------------------------------------------------------ network
ip netns add "$adm" 2>/dev/null || skip "ip netns add failed (no CAP_SYS_ADMIN?)"
made_ns+=("$adm")
ip -n "$adm" link set lo up
ip -n "$adm" link add br0 type bridge
ip -n "$adm" addr add 10.77.0.100/24 dev br0
ip -n "$adm" link set br0 up
for i in 1 2 3; do
    ns=${hosts_ns[$((i - 1))]}
    ip netns add "$ns" || die "ip netns add $ns"
    made_ns+=("$ns")
    ip link add "vh$i" netns "$adm" type veth peer name eth0 netns "$ns" || die "veth for host $i"
    ip -n "$adm" link set "vh$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "${addrs[$((i - 1))]}/24" dev eth0
    ip -n "$ns" link set eth0 up
done

# ------------------------------------------------------------ 1. admin
mkdir -p "$tmp/admin"
ln -s "$build" "$tmp/admin/build"
run_admin() {
    ip netns exec "$adm" bash -euo pipefail -c 'cd "$1" && . "$2"' admin "$tmp/admin" "$1"
}
# cluster init's CA passphrase, as a script gives it (an operator types it).
export KYUFU_CA_PASSPHRASE="hosts test CA passphrase"
run_admin "${blocks[0]}" >"$tmp/admin.log" 2>&1 || { cat "$tmp/admin.log"; die "step 1 (admin) failed"; }
# cluster init printed the first ID administrator's temporary password once:
# "... temporary password for ID (...):" then the password alone, indented.
mkdir -m 0700 "$tmp/secrets"
awk 'tolower($0) ~ /temporary password for/ {
        for (i = 1; i <= NF; i++) if ($i == "for") { id = $(i + 1); sub(/[,:(].*/, "", id) }
        getline; if (NF == 1 && id != "") { print $1 > (dir "/" id ".temp") }; exit }' \
    dir="$tmp/secrets" "$tmp/admin.log"
first_admin=$(cd "$tmp/secrets" && ls -- *.temp 2>/dev/null | sed 's/\.temp$//')
[ -n "$first_admin" ] && [ "$(echo "$first_admin" | wc -l)" = 1 ] \
    || { cat "$tmp/admin.log"; die "step 1: cluster init printed no temporary password for the first ID administrator"; }
grep -Fxq "  $(cat "$tmp/secrets/$first_admin.temp")" "$tmp/admin.log" || die "step 1: temporary password not found as printed"
echo "ok: step 1: staged install and cluster files (${SECONDS}s)"

# ------------------------------------------------------------ 2. copy
for i in 1 2 3; do mkdir -p "$tmp/h$i/root"; done
while read -r cmd flag from to; do
    [ -n "$cmd" ] || continue
    [ "$cmd $flag" = "scp -r" ] || die "copy step: '$cmd $flag $from $to' is not 'scp -r SRC root@HOST:DST'"
    host=${to%%:*}; host=${host#root@}; dst=${to#*:}
    n=0
    for i in 1 2 3; do [ "${addrs[$((i - 1))]}" = "$host" ] && n=$i; done
    [ "$n" != 0 ] || die "copy step: host '$host' is not one of ${addrs[*]}"
    cp -r "$tmp/admin/$from" "$tmp/h$n/root/$dst" || die "copy step: $from to host $n"
done <"${blocks[1]}"
echo "ok: step 2: copied (${SECONDS}s)"

# ------------------------------------------------------------ 3, 4. hosts
# In the host's namespaces: overlays, the guide's block as written, then
# what the installed unit runs.
host_script='
set -euo pipefail
h=$1 block=$2
for d in /etc /var /usr/local; do
    k=$(echo "$d" | tr / _)
    mkdir -p "$h/up$k" "$h/work$k"
    mount -t overlay overlay -o "lowerdir=$d,upperdir=$h/up$k,workdir=$h/work$k" "$d"
done
cd "$h/root"
export HOME=$h/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
echo "== step 3"
bash -euo pipefail -x "$block"
echo "== step 4 (the unit, without systemd)"
unit=/usr/local/lib/systemd/system/kyufud.service
val() { sed -n "s/^$1=//p" "$unit"; }
user=$(val User)
[ -n "$user" ] && [ "$(val NoNewPrivileges)" = yes ]
umask "$(val UMask)"
ulimit -c "$(val LimitCORE)"
as_user() { setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs -- "$@"; }
while read -r pre; do
    [ -n "$pre" ] || continue
    case $pre in
    -*) as_user ${pre#-} || echo "ExecStartPre failed (ignored: -)" ;;
    *) as_user $pre ;;
    esac
done <<<"$(val ExecStartPre)"
# The file-system sandbox of the unit, as far as a mount namespace can play it:
# ProtectSystem=strict (every mount read-only but /proc, /sys, /dev, then
# the StateDirectory= writable), PrivateTmp= (empty /tmp, /var/tmp),
# ProtectHome= (/home, /root, /run/user empty and closed).
exec 3>"$h/kyufud.log" 4>"$h/pid"
if [ "$(val ProtectSystem)" = strict ]; then
    awk '\''{ print $5 }'\'' /proc/self/mountinfo | sort -u | while read -r mp; do
        case $mp in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
        mount -o remount,bind,ro "$mp" 2>/dev/null || true
    done
    touch /etc/kyufu/.probe 2>/dev/null && { echo "ProtectSystem emulation: /etc writable"; exit 1; }
    state=/var/lib/$(val StateDirectory)
    mount --bind "$state" "$state"
    mount -o remount,bind,rw "$state"
fi
if [ "$(val PrivateTmp)" = yes ]; then
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=1777 tmpfs /var/tmp
fi
if [ "$(val ProtectHome)" = yes ]; then
    for d in /home /root /run/user; do
        [ -d "$d" ] && mount -t tmpfs -o mode=000 tmpfs "$d"
    done
fi
start=$(val ExecStart)
setsid setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
    --bounding-set=-all --inh-caps=-all -- $start >&3 2>&1 </dev/null &
echo $! >&4
'
for i in 1 2 3; do # the three hosts at once, as an operator with three terminals
    ns=${hosts_ns[$((i - 1))]}
    ip netns exec "$ns" unshare -m --propagation private bash -c "$host_script" host \
        "$tmp/h$i" "${blocks[2]}" >"$tmp/h$i/setup.log" 2>&1 &
    setups+=($!)
done
bad_hosts=""
for i in 1 2 3; do wait "${setups[$((i - 1))]}" || bad_hosts+=" $i"; done
setups=()
[ -z "$bad_hosts" ] || die "steps 3-4 failed on host(s)$bad_hosts"
echo "ok: steps 3-4 on three hosts (${SECONDS}s): kyufud pids $(cat "$tmp"/h*/pid | tr '\n' ' ')"

# ------------------------------------------------------------ 5. people
ctl() { ip netns exec "$adm" "$build/client/kyufuctl" --config "$tmp/admin/cluster/kyufuctl.conf" "$@"; }
# The leader makes the account from bootstrap-admin; then every node deletes
# its copy of the file.  Each host's file as its kyufud sees it:
bootstrap_left() {
    local i pid left=""
    for i in 1 2 3; do
        pid=$(cat "$tmp/h$i/pid")
        if ! kill -0 "$pid" 2>/dev/null; then
            left+=" $i (kyufud not running)"
        elif [ -e "/proc/$pid/root/var/lib/kyufu/bootstrap-admin" ]; then
            left+=" $i"
        fi
    done
    echo "$left"
}
for _ in $(seq 300); do [ -z "$(bootstrap_left)" ] && break; sleep 0.2; done
left=$(bootstrap_left)
[ -z "$left" ] || die "bootstrap-admin still in /var/lib/kyufu on host(s)$left after 60 s (no leader, or the account was not made)"
echo "ok: the first ID administrator's account exists; bootstrap-admin gone on all three hosts (${SECONDS}s)"

# `kyufuctl login` for a first sign-in, without a terminal (docs/kyufuctl.md
# "Signing in"): the temporary password changed to a new one, TOTP enrolled
# and confirmed, then the real sign-in with the next code (single-use).
first_sign_in() { # PREFIX ID: PREFIX is the guide's `kyufuctl --config ...`
    local prefix=$1 id=$2 secret
    [ -s "$tmp/secrets/$id.temp" ] || { echo "no temporary password for $id was printed"; return 1; }
    (umask 077; printf 'kyufu-%s\n' "$(openssl rand -base64 24 | tr '+/' '._')" >"$tmp/secrets/$id.pw")
    eval "$prefix login --staff-id $id --password-file $tmp/secrets/$id.temp --new-password-file $tmp/secrets/$id.pw" \
        || { echo "$id: first sign-in (new password) failed"; return 1; }
    secret=$(eval "$prefix --json totp enroll" | $py -c 'import json,sys; print(json.load(sys.stdin)["secret_base32"])') \
        && [ -n "$secret" ] || { echo "$id: totp enroll failed"; return 1; }
    eval "$prefix totp confirm --code $(oathtool --totp -b "$secret")" || { echo "$id: totp confirm failed"; return 1; }
    eval "$prefix login --staff-id $id --password-file $tmp/secrets/$id.pw --totp $(oathtool --totp -b -N 'now + 30 seconds' "$secret")" \
        || { echo "$id: sign-in with password and TOTP failed"; return 1; }
}
# The guide's block for one person, line by line, in their own config
# folder (so their own token file), on the admin machine.
person() { # KIND BLOCK
    local kind=$1 block=$2 line temp id
    export XDG_CONFIG_HOME=$tmp/people/$kind
    mkdir -p -m 0700 "$XDG_CONFIG_HOME"
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        echo "\$ $line"
        if [[ $line =~ ^(.*kyufuctl.*)\ login\ --staff-id\ ([a-z0-9._-]+)$ ]]; then
            first_sign_in "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" || return 1
        elif [[ $line =~ \ cluster\ status ]]; then
            # Each node answers Cluster/Status from its own replica (never
            # forwarded): a follower knows a session one heartbeat or so
            # after the leader does, and until then answers UNAUTHENTICATED.
            # A person takes longer than that to type the next command; a
            # script right after `login` retries, for at most 10 s.
            for try in $(seq 50); do
                eval "$line" >"$tmp/people/out" 2>&1 && break
                [ "$try" = 50 ] && { cat "$tmp/people/out"; return 1; }
                sleep 0.2
            done
            [ "$try" = 1 ] || echo "(answered by all three nodes after $try tries)"
            cat "$tmp/people/out"
        else
            eval "$line" | tee "$tmp/people/out" || return 1
            # staff create prints the new account's temporary password once.
            if [[ $line =~ \ staff\ create\ .*--staff-id\ ([a-z0-9._-]+) ]]; then
                id=${BASH_REMATCH[1]}
                temp=$(awk 'tolower($0) ~ /temporary password/ { getline; if (NF == 1) print $1; exit }' "$tmp/people/out")
                [ -n "$temp" ] || { echo "staff create $id printed no temporary password"; return 1; }
                (umask 077; printf '%s\n' "$temp" >"$tmp/secrets/$id.temp")
                created=$id
            fi
        fi
    done <"$block"
}
export -f first_sign_in person
export tmp py
mkdir -p "$tmp/people"
: >"$tmp/people/created"
created=
for k in 4 5; do
    kind=${blocks[$k]##*.}
    # In this shell (created= is read below), inside the admin namespace.
    if ! ip netns exec "$adm" bash -euo pipefail -c 'cd "$1/admin"; person "$2" "$3"; [ -z "${created:-}" ] || echo "created=$created" >>"$1/people/created"' \
        person "$tmp" "$kind" "${blocks[$k]}" >"$tmp/$kind.log" 2>&1; then
        awk 'hide { sub(/[^ ]+$/, "(hidden)"); hide = 0 } { print } tolower($0) ~ /temporary password/ { hide = 1 }' "$tmp/$kind.log"
        die "step $((k + 1)) ($kind: sign-in, first write, status) failed"
    fi
    # The log shows no temporary password (changed by now, still a secret).
    awk 'hide { sub(/[^ ]+$/, "(hidden)"); hide = 0 } { print } tolower($0) ~ /temporary password/ { hide = 1 }' "$tmp/$kind.log"
done
. "$tmp/people/created"
[ -n "$created" ] || die "step 5 created no account (no 'staff create --staff-id ID' line?)"
admin_token=$tmp/people/admin/kyufu/token
oper_token=$tmp/people/operator/kyufu/token
[ -f "$admin_token" ] && [ -f "$oper_token" ] || die "a sign-in left no token file"
[ "$(stat -c %a "$admin_token") $(stat -c %a "$oper_token")" = "600 600" ] || fail "token files are not 0600"

# ------------------------------------------------------------ 6. check
# The leader, as the operator sees it (Cluster/Status is operator-only).
leader=0
for _ in $(seq 150); do
    leader=$(ctl --token-file "$oper_token" --json cluster status 2>/dev/null | $py -c 'import json,sys
try: d = json.load(sys.stdin)
except Exception: print(0); sys.exit()
roles = [n["id"] for n in d["nodes"] if n.get("role") == "leader"]
print(roles[0] if len(roles) == 1 else 0)')
    [ "$leader" != 0 ] && break
    sleep 0.2
done
[ "$leader" != 0 ] || die "the operator sees no leader after 30 s"
echo "ok: node $leader is the leader, as the operator sees it (${SECONDS}s)"
converged=0
for _ in $(seq 100); do
    if ctl --token-file "$oper_token" --json cluster status --digest 2>/dev/null | $py -c 'import json,sys
d = json.load(sys.stdin)["nodes"]
ok = len(d) == 3 and all(n.get("reachable") for n in d) and len({(n["applied_index"], n.get("state_digest")) for n in d}) == 1
sys.exit(0 if ok else 1)'; then converged=1; break; fi
    sleep 0.2
done
[ "$converged" = 1 ] || fail "the three nodes did not reach the same applied index and digest"
# The first write read back by the ID administrator (staff list is theirs).
ctl --token-file "$admin_token" --json staff list >"$tmp/staff.json" 2>&1 || { cat "$tmp/staff.json"; fail "staff list as $first_admin failed"; }
$py - "$tmp/staff.json" "$created" "$first_admin" <<'EOF' || fail "the write ($created's account) is not readable back"
import json, sys
text = open(sys.argv[1]).read()
ids = set()
def walk(o):
    if isinstance(o, dict):
        if isinstance(o.get("staff_id"), str): ids.add(o["staff_id"])
        for v in o.values(): walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(json.loads(text))
sys.exit(0 if {sys.argv[2], sys.argv[3]} <= ids else 1)
EOF
for i in 1 2 3; do
    pid=$(cat "$tmp/h$i/pid")
    uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
    [ -n "$uid" ] && [ "$uid" != 0 ] || fail "host $i: kyufud runs as uid '$uid', want the kyufu user"
    owner=$(stat -c '%u %a' "/proc/$pid/root/var/lib/kyufu")
    [ "$owner" = "$uid 700" ] || fail "host $i: /var/lib/kyufu is '$owner', want '$uid 700'"
    [ -d "/proc/$pid/root/var/lib/kyufu/raft" ] || fail "host $i: no raft/ in /var/lib/kyufu"
    key=$(stat -c '%u %a' "/proc/$pid/root/etc/kyufu/node.key")
    [ "$key" = "$uid 600" ] || fail "host $i: /etc/kyufu/node.key is '$key', want '$uid 600' (kyufu's, private)"
    [ ! -e "$tmp/h$i/root/kyufu-node" ] || fail "host $i: the copied node folder is still there"
    # The sandbox it ran in (the last mount on each path is the one seen).
    mnt() { awk -v p="$1" '$5 == p { o = $6 } END { print substr(o, 1, 2) }' "/proc/$pid/mountinfo"; }
    [ "$(mnt /etc)" = ro ] && [ "$(mnt /usr/local)" = ro ] && [ "$(mnt /var/lib/kyufu)" = rw ] \
        || fail "host $i: not sandboxed: /etc $(mnt /etc), /usr/local $(mnt /usr/local), /var/lib/kyufu $(mnt /var/lib/kyufu)"
done
[ "$fails" = 0 ] || die "$fails failure(s)"
echo "ok: a leader, the first write on all three nodes, each kyufud as kyufu (${SECONDS}s)"
