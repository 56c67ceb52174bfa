#!/bin/sh
# 50 crash and 50 planned failover drills on a local three-node cluster
# (docs/sla.md "Drills"; not in any test suite: about 5 minutes).
# usage: chaos/drill_sweep.sh [BUILD_DIR] [ROUNDS]
set -eu
here=$(dirname "$0")
build=${1:-build}
rounds=${2:-50}
exec /usr/bin/python3 "$here/drill_sweep.py" "$build/node/kyufud" \
    "$build/client/kyufuctl" "$rounds"
