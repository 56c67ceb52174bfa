#!/bin/sh
# Runs every libFuzzer target for a short while, from a gcc build's suite.
#   run-fuzz.sh <source-root> <build-root> [seconds] [target...]
# Configures (once) a clang build in <build-root>/fuzz-build with
# -Dfuzz=true, ASan+UBSan and coverage instrumentation, builds the fuzz
# targets, and runs each (seed 1) over its committed corpus: apply for
# `seconds` (default 20), the others for half that.  For hours:
#   run-fuzz.sh . build 14400 h2
# New corpus inputs go to a temporary directory that is removed; a crash
# input is kept in <build-root>/fuzz-build/artifacts/ and printed: add it
# to the target's corpus as a regression input once fixed.
# Exit 77 (skipped) only when clang or its libFuzzer runtime is missing.
set -u
src=${1:?source root}
build=${2:?build root}
seconds=${3:-20}
if [ $# -ge 3 ]; then shift 3; else shift $#; fi
targets=${*:-apply h2 frame snapshot config}
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
bins=""
for t in $targets; do bins="$bins tests/fuzz/fuzz_$t"; done
# shellcheck disable=SC2086
if ! ninja -C "$fb" -j2 $bins >"$build/fuzz-build.ninja.log" 2>&1; then
    tail -40 "$build/fuzz-build.ninja.log"
    echo "FAIL: could not build the fuzz targets"
    exit 1
fi

corpus_of() {
    if [ "$1" = apply ]; then echo "$src/tests/fuzz/corpus"; else echo "$src/tests/fuzz/corpus-$1"; fi
}

work=$(mktemp -d /tmp/kyufu-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
failed=0
for t in $targets; do
    secs=$seconds
    [ "$t" = apply ] || secs=$(( (seconds + 1) / 2 ))
    rm -rf "$work/new" "$work/tmp"
    mkdir "$work/new" "$work/tmp"
    status=0
    TMPDIR="$work/tmp" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$fb/tests/fuzz/fuzz_$t" -max_total_time="$secs" -seed=1 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$t-" "$work/new" "$(corpus_of "$t")" \
        >"$work/$t.log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -60 "$work/$t.log"
        mkdir -p "$fb/artifacts"
        for a in "$work/$t"-crash-* "$work/$t"-leak-* "$work/$t"-timeout-* "$work/$t"-oom-*; do
            [ -e "$a" ] || continue
            cp "$a" "$fb/artifacts/"
            echo "kept $fb/artifacts/$(basename "$a"):"
            od -An -tx1 "$a" | head -20
        done
        echo "FAIL: fuzz_$t exited with $status"
        failed=1
        continue
    fi
    echo "fuzz_$t ran ${secs}s: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$') runs, $(ls "$work/new" | wc -l) new corpus inputs (discarded)"
done
exit $failed
