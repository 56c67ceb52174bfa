#!/bin/sh
# Runs the libFuzzer target for a short while, from a gcc build's test suite.
#   run-fuzz.sh <source-root> <build-root> [seconds]
# Configures (once) a clang build in <build-root>/fuzz-build with
# -Dfuzz=true, ASan+UBSan and coverage instrumentation, builds only
# tests/fuzz/fuzz_apply, and runs it for 20 s (seed 1) over the committed
# corpus.  New corpus inputs go to a temporary directory that is removed;
# a crash input is kept in <build-root>/fuzz-build/artifacts/ and printed.
# Exit 77 (skipped) only when clang or its libFuzzer runtime is missing.
set -u
src=${1:?source root}
build=${2:?build root}
seconds=${3:-20}
fb="$build/fuzz-build"

if ! command -v clang >/dev/null 2>&1; then
    echo "SKIP: clang is not installed (apt-get install clang)"
    exit 77
fi
probe=$(mktemp -d /tmp/kyufu-fuzzprobe-XXXXXX)
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
    rm -rf "$probe"
    echo "SKIP: clang has no libFuzzer runtime (-fsanitize=fuzzer)"
    exit 77
fi
rm -rf "$probe"

if [ ! -f "$fb/build.ninja" ]; then
    # werror off: the warning policy is enforced by the gcc builds; this
    # build exists to find crashes.
    if ! CC=clang meson setup "$fb" "$src" -Dfuzz=true \
            -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false \
            -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" \
            >"$build/fuzz-build.setup.log" 2>&1; then
        cat "$build/fuzz-build.setup.log"
        rm -rf "$fb"
        echo "FAIL: could not configure the clang fuzz build"
        exit 1
    fi
fi
if ! ninja -C "$fb" -j2 tests/fuzz/fuzz_apply >"$build/fuzz-build.ninja.log" 2>&1; then
    tail -40 "$build/fuzz-build.ninja.log"
    echo "FAIL: could not build the fuzz target"
    exit 1
fi

work=$(mktemp -d /tmp/kyufu-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/new" "$work/tmp"
status=0
TMPDIR="$work/tmp" \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$fb/tests/fuzz/fuzz_apply" -max_total_time="$seconds" -seed=1 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/new" "$src/tests/fuzz/corpus" || status=$?
if [ "$status" -ne 0 ]; then
    mkdir -p "$fb/artifacts"
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [ -e "$a" ] || continue
        cp "$a" "$fb/artifacts/"
        echo "kept $fb/artifacts/$(basename "$a"):"
        od -An -tx1 "$a" | head -20
    done
    echo "FAIL: fuzz_apply exited with $status"
    exit 1
fi
echo "fuzz_apply ran ${seconds}s: $(ls "$work/new" | wc -l) new corpus inputs (discarded)"
