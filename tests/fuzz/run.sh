#!/usr/bin/env bash
# tests/fuzz/run.sh - build the parser fuzz targets and run a bounded fuzzing
# session, printing "ok fuzz/<target>" or "FAIL fuzz/<target>: why" per target.
#
#   FUZZ_SECONDS   total time budget, split over the targets (default 24)
#   FUZZ_MODE      libfuzzer | driver (default: libfuzzer if clang can link
#                  -fsanitize=fuzzer, else the gcc random-input driver)
#   FUZZ_TARGETS   space-separated subset (default: all)
#   FUZZ_OUT       build/work directory (default: <repo>/build/fuzz)
#
# Needs libyaml-dev (and for libFuzzer clang + its runtime); missing
# packages are installed with apt-get, announced on stderr, never silently.
# Crash inputs are kept as $FUZZ_OUT/<target>-crash-* (libFuzzer) or
# $FUZZ_OUT/<target>/driver-last-input (driver); reproduce with
#   $FUZZ_OUT/<target> <file>          (libFuzzer binary)
T=fuzz
. "$(dirname -- "$0")/../lib.bash"   # root, ok/fail, need_pkg
here=$root/tests/fuzz
out=${FUZZ_OUT:-$root/build/fuzz}
targets=${FUZZ_TARGETS:-"xmatrix token query path b64 yaml"}
total=${FUZZ_SECONDS:-24}
ntargets=$(echo $targets | wc -w)
per=$(( total / ntargets )); [ "$per" -ge 1 ] || per=1
src="$root/c_ext/sr_parse.c $root/c_ext/sr_hash.c $root/c_ext/sr_yaml.c $root/c_ext/sr_util.c $here/fuzz_targets.c"
cflags="-g -O1 -I$root/c_ext -Wall -Wextra -Wno-unused-function -Wno-unused-parameter -Wno-comment"
mkdir -p "$out"

need_pkg libyaml-dev gcc || { for t in $targets; do fail "$t" "cannot install libyaml-dev/gcc"; done; exit 1; }

mode=${FUZZ_MODE:-}
if [ -z "$mode" ] || [ "$mode" = libfuzzer ]; then
    if ! command -v clang >/dev/null 2>&1; then need_pkg clang || true; fi
    if command -v clang >/dev/null 2>&1; then
        ver=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
        [ -n "$ver" ] && { need_pkg "libclang-rt-$ver-dev" 2>/dev/null || true; }
        printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){(void)d;(void)n;return 0;}\n' > "$out/probe.c"
        if clang -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" >/dev/null 2>&1; then
            mode=libfuzzer
        fi
    fi
    if [ "$mode" != libfuzzer ]; then
        [ "${FUZZ_MODE:-}" = libfuzzer ] && { for t in $targets; do fail "$t" "clang -fsanitize=fuzzer unavailable"; done; exit 1; }
        echo "fuzz: libFuzzer unavailable, using the gcc random-input driver" >&2
        mode=driver
    fi
fi

for t in $targets; do
    bin="$out/$t"
    log="$out/$t.log"
    work="$out/$t.corpus"
    rm -rf "$work"; mkdir -p "$work"
    if [ "$mode" = libfuzzer ]; then
        if ! clang $cflags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -DFUZZ_TARGET="$t" -o "$bin" $src -lyaml >"$log" 2>&1; then
            fail "$t" "build failed ($(grep -m1 error "$log"))"; continue
        fi
        rm -f "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-* "$out/$t"-oom-*
        # new inputs go to the scratch corpus; the seeds are read only
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
            -dict="$here/dict/$t.dict" -artifact_prefix="$out/$t-" -print_final_stats=1 \
            "$work" "$here/seeds/$t" >"$log" 2>&1
        rc=$?
        runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        if [ $rc -eq 0 ]; then
            ok "$t"
            echo "# fuzz/$t: libFuzzer ${per}s, ${runs:-?} runs" >&2
        else
            why=$(grep -m1 -E 'SUMMARY|ERROR: libFuzzer|runtime error|==ERROR' "$log")
            art=$(ls "$out/$t"-* 2>/dev/null | grep -E 'crash|leak|timeout|oom' | head -1)
            fail "$t" "${why:-exit $rc} (input: ${art:-none}, log: $log)"
        fi
    else
        if ! gcc $cflags -fsanitize=address,undefined -fno-sanitize-recover=all \
                -DFUZZ_TARGET="$t" -o "$bin" $src "$here/driver.c" -lyaml >"$log" 2>&1; then
            fail "$t" "build failed ($(grep -m1 error "$log"))"; continue
        fi
        ( cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            "$bin" -runs="${FUZZ_RUNS:-1000000}" -seconds="$per" -max_len=8192 \
            -dict="$here/dict/$t.dict" "$here/seeds/$t" ) >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            ok "$t"
            echo "# fuzz/$t: $(grep -m1 '^driver:' "$log")" >&2
        else
            why=$(grep -m1 -E 'SUMMARY|runtime error|==ERROR' "$log")
            fail "$t" "${why:-exit $rc} (input: $work/driver-last-input, log: $log)"
        fi
    fi
done
exit $(( fails > 0 ))
