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
# PrivateTmp=, ProtectHome= played by the mount namespace).  Then: a leader is elected, the guide's last block
# (cluster status, a write) succeeds, every node applies the write, and
# each kyufud runs as the kyufu user with its data in /var/lib/kyufu.
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
    for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
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
[ "$kinds" = "admin copy host start admin " ] \
    || die "docs/operations.md 'Three hosts from empty': blocks are '$kinds', this test knows 'admin copy host start admin'"
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

# ------------------------------------------------------------ 5. check
ctl() { ip netns exec "$adm" "$build/client/kyufuctl" --config "$tmp/admin/cluster/kyufuctl.conf" "$@"; }
leader=0
for _ in $(seq 150); do
    leader=$(ctl --json cluster status 2>/dev/null | $py -c 'import json,sys
try: d = json.load(sys.stdin)
except Exception: print(0); sys.exit()
roles = [n["id"] for n in d["nodes"] if n.get("role") == "leader"]
print(roles[0] if len(roles) == 1 else 0)')
    [ "$leader" != 0 ] && break
    sleep 0.2
done
[ "$leader" != 0 ] || die "no leader after 30 s"
echo "ok: node $leader is the leader (${SECONDS}s)"
run_admin "${blocks[4]}" >"$tmp/check.log" 2>&1 || { cat "$tmp/check.log"; die "step 5 (status, first write) failed"; }
cat "$tmp/check.log"
converged=0
for _ in $(seq 100); do
    if ctl --json cluster status --digest 2>/dev/null | $py -c 'import json,sys
d = json.load(sys.stdin)["nodes"]
ok = len(d) == 3 and all(n.get("reachable") for n in d) and len({(n["applied_index"], n.get("state_digest")) for n in d}) == 1
sys.exit(0 if ok else 1)'; then converged=1; break; fi
    sleep 0.2
done
[ "$converged" = 1 ] || fail "the three nodes did not reach the same applied index and digest"
ctl --json staff list 2>/dev/null | grep -q '"admin"' || fail "the write is not readable back"
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
