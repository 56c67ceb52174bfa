#!/bin/sh
# Issue 15: with io_guard's install hold switched off, the stall-install
# scenario must crash libraft 0.22.1 where the bug is: raft parked the
# leader's InstallSnapshot during the follower's own snapshot put, and when
# the put completed takeSnapshotCb passed NULL to legacyPersistSnapshotStart,
# which faults reading NULL->r (address 0x48) inside libraft.  Without the
# switch the same seed passes (it is one of the default suite's seeds), so
# the hold is what makes the difference.
#
#   crash_without_hold.sh KYUFU_SIM SEED
#
# Asserts: the process died of a signal (SIGSEGV; SIGABRT under ASan, whose
# report is made to abort), it reported the parked install first, and the
# fault was at address 0x48 with the faulting instruction in libraft (the
# simulation's own SIGSEGV line, or ASan's report).
set -u
sim=$1
seed=$2
out=$(mktemp /tmp/kyufu-crash-XXXXXX) || exit 1
# The crashing simulation cannot remove its stores: keep them where we can.
KYUFU_SIM_TMPDIR=$(mktemp -d /tmp/kyufu-crash-sim-XXXXXX) || exit 1
export KYUFU_SIM_TMPDIR
trap 'rm -f "$out"; rm -rf "$KYUFU_SIM_TMPDIR"' EXIT

ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1"
export ASAN_OPTIONS
"$sim" --stall-install --no-install-hold --seed "$seed" >"$out" 2>&1
rc=$?
fail() {
    echo "crash_without_hold: seed $seed: $1 (exit status $rc)" >&2
    grep -v '^sim: server' "$out" | tail -40 >&2
    exit 1
}
# A shell reports death by signal N as 128 + N.
case $rc in
    139) how=SIGSEGV ;;
    134) how=SIGABRT ;;
    *) fail "did not die of SIGSEGV or SIGABRT" ;;
esac
grep -q "^sim: stall-install seed $seed: server [0-9] parked an InstallSnapshot" \
    "$out" || fail "died without raft parking an InstallSnapshot first"
if grep -q '^sim: SIGSEGV at address 0x48, pc libraft\.so' "$out"; then
    where=$(grep '^sim: SIGSEGV' "$out")
elif grep -q 'SEGV on unknown address 0x000000000048' "$out" &&
    grep -q '#0 .*libraft\.so' "$out"; then
    where="ASan: $(grep -m1 '#0 .*libraft\.so' "$out")"
else
    fail "crashed, but not reading address 0x48 inside libraft"
fi
echo "crash_without_hold: seed $seed died of $how as expected: $where"
exit 0
