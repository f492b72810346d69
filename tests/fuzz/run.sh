#!/usr/bin/env bash
# tests/fuzz/run.sh - build the fuzz targets and run a bounded fuzzing
# session, printing "ok fuzz/<target> # <runs> runs in <s> s" or
# "FAIL fuzz/<target>: why" per target.
#
#   FUZZ_SECONDS   total time budget, split evenly over the targets
#                  (default 36: 4 s for each of the 9 targets)
#   FUZZ_MODE      libfuzzer | driver (default: libfuzzer if clang can link
#                  -fsanitize=fuzzer, else the gcc random-input driver)
#   FUZZ_TARGETS   space-separated subset (default: all)
#   FUZZ_OUT       build/work directory (default: <repo>/build/fuzz)
#   FUZZ_CONFIG    the deployment the router targets use
#                  (default: examples/full/synroute.yaml)
#   FUZZ_COVERAGE  1: after fuzzing, replay each target's corpus in a
#                  coverage build and print the line coverage of the core
#                  files it is about, and of sr_router.c and sr_rset*.c over
#                  the router, rset and rsetpat corpora together (libFuzzer
#                  mode only; needs llvm-profdata and llvm-cov)
#   BENCH_DIR      where a benchmark mix.tsv may be found for extra seeds
#                  (default: the Makefile's BENCH_DIR default; absent is fine)
#
# Targets: xmatrix token query path b64 yaml (fuzz_targets.c, the parsers)
# and router rset rsetpat (fuzz_router.c, the decision and the regex set
# over the real route table). The router targets need the route table as
# C data: gen_spec.lua writes it with lua5.4 and build/5.4/synroute.so
# (built with make when missing), with their seeds, into $FUZZ_OUT.
# Needs libyaml-dev, libpcre2-dev (and for libFuzzer clang + its runtime);
# missing packages are installed with apt-get, announced on stderr, never
# silently. Crash inputs are kept as $FUZZ_OUT/<target>-crash-* (libFuzzer)
# or $FUZZ_OUT/<target>.corpus/driver-last-input (driver); reproduce with
#   $FUZZ_OUT/<target> <file>          (libFuzzer binary)
T=fuzz
. "$(dirname -- "$0")/../lib.bash"   # root, ok/fail, need_pkg
here=$root/tests/fuzz
out=${FUZZ_OUT:-$root/build/fuzz}
targets=${FUZZ_TARGETS:-"xmatrix token query path b64 yaml router rset rsetpat"}
total=${FUZZ_SECONDS:-36}
ntargets=$(echo $targets | wc -w)
per=$(( total / ntargets )); [ "$per" -ge 1 ] || per=1
core="$root/c_ext/sr_parse.c $root/c_ext/sr_hash.c $root/c_ext/sr_yaml.c $root/c_ext/sr_util.c"
rset="$root/c_ext/sr_rset.c $root/c_ext/sr_rset_prefix.c $root/c_ext/sr_rset_glob.c $root/c_ext/sr_rset_trie.c
      $root/c_ext/sr_rset_memo.c $root/c_ext/sr_rset_match.c $root/c_ext/sr_rset_dump.c $root/c_ext/sr_router.c"
cflags="-g -O1 -I$root/c_ext -I$here -Wall -Wextra -Wno-unused-function -Wno-unused-parameter -Wno-comment"
mkdir -p "$out"
rm -f "$out"/*.profraw "$out"/*.profdata

need_pkg libyaml-dev libpcre2-dev gcc || { for t in $targets; do fail "$t" "cannot install libyaml-dev/libpcre2-dev/gcc"; done; exit 1; }

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

# The route table and deployment as C data, and seeds from the repository's
# policy cases (plus a benchmark mix when there is one), for router targets.
spec_err=""
case " $targets " in *" router "*|*" rset "*|*" rsetpat "*)
    mix=${BENCH_DIR:-$root/../shared/bench}/mix.tsv; [ -f "$mix" ] || mix=""
    rm -rf "$out/seeds"
    if ! command -v lua5.4 >/dev/null 2>&1; then
        spec_err="lua5.4 is missing"
    elif [ ! -f "$root/build/5.4/synroute.so" ] && ! make -s -C "$root" build/5.4/synroute.so >"$out/gen_spec.log" 2>&1; then
        spec_err="cannot build build/5.4/synroute.so ($out/gen_spec.log)"
    elif ! LUA_PATH_5_4="$root/lua/?.lua;;" LUA_CPATH_5_4="$root/build/5.4/?.so;;" \
            lua5.4 "$here/gen_spec.lua" "${FUZZ_CONFIG:-$root/examples/full/synroute.yaml}" \
            "$out/router_spec.c" "$out/seeds" "$mix" >"$out/gen_spec.log" 2>&1; then
        spec_err="gen_spec.lua failed: $(tail -1 "$out/gen_spec.log")"
    else
        echo "# $(tail -1 "$out/gen_spec.log")" >&2
    fi
esac

sources() {   # the C sources of target $1 (the target's own file last)
    case $1 in
        router|rset|rsetpat) echo "$core $rset $out/router_spec.c $here/fuzz_router.c" ;;
        *) echo "$core $here/fuzz_targets.c" ;;
    esac
}
# Build target $1 with compiler $2 and flags $3 into $4 (log $5): the shared
# sources are compiled once per flag set (objects in $out/obj, rebuilt when
# a source or a c_ext header is newer), the target's own file with
# -DFUZZ_TARGET. Extra arguments: more files to link (driver.c).
build() {
    local t=$1 cc=$2 fl=$3 bin=$4 log=$5 objs="" f o dir
    shift 5
    dir="$out/obj/$(echo "$cc $fl" | cksum | cut -d' ' -f1)"
    mkdir -p "$dir"
    set -- "$@" $(sources "$t")
    : >"$log"
    while [ $# -gt 1 ]; do
        f=$1; shift
        o="$dir/$(basename "$f" .c).o"
        if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ -n "$(find "$root/c_ext" -name '*.h' -newer "$o")" ]; then
            $cc $cflags $fl -c -o "$o" "$f" >>"$log" 2>&1 || return 1
        fi
        objs="$objs $o"
    done
    $cc $cflags $fl -DFUZZ_TARGET="$t" -o "$bin" $objs "$1" -lyaml -lpcre2-8 >>"$log" 2>&1
}
seed_dirs() {   # the seed directories of target $1 (read only)
    local d
    for d in "$here/seeds/$1" "$out/seeds/$1"; do [ -d "$d" ] && echo "$d"; done
}

# Line coverage when target $1's corpus (and seeds) are replayed in a clang
# source-based coverage build, of the core files the target is about;
# prints a "# coverage" line. After the last router target, the same for
# sr_router.c and sr_rset*.c over the corpora of router, rset and rsetpat.
lines_of() {   # profdata, binaries..., then -- and source globs: TOTAL line coverage
    local prof=$1 bins="" g files=""
    shift
    while [ "$1" != -- ]; do bins="$bins${bins:+ -object} $1"; shift; done
    shift
    for g in "$@"; do files="$files $(ls $root/c_ext/$g)"; done
    llvm-cov report $bins -instr-profile="$prof" $files 2>/dev/null | awk '$1 == "TOTAL" { print $(NF-3) }'
}
coverage() {
    local t=$1 cov="$out/$1.cov" g groups line=""
    if ! build "$t" clang "-fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping" "$cov" "$out/$t.cov.log"; then
        echo "# coverage fuzz/$t: build failed ($out/$t.cov.log)" >&2; return
    fi
    rm -f "$out/$t.profraw"
    LLVM_PROFILE_FILE="$out/$t.profraw" "$cov" -runs=0 "$out/$t.corpus" $(seed_dirs "$t") >>"$out/$t.cov.log" 2>&1
    llvm-profdata merge -sparse "$out/$t.profraw" -o "$out/$t.profdata" 2>>"$out/$t.cov.log" || return
    case $t in
        router) groups="sr_router.c sr_rset*.c sr_parse.c" ;;
        rset|rsetpat) groups="sr_rset*.c" ;;
        yaml) groups="sr_yaml.c" ;;
        *) groups="sr_parse.c" ;;
    esac
    for g in $groups; do line="$line $g $(lines_of "$out/$t.profdata" "$cov" -- "$g"),"; done
    echo "# coverage fuzz/$t, lines:${line%,}" >&2
}
coverage_router_all() {
    local t bins="" profs=""
    for t in router rset rsetpat; do
        [ -f "$out/$t.profdata" ] && { bins="$bins $out/$t.cov"; profs="$profs $out/$t.profdata"; }
    done
    [ -n "$profs" ] || return 0
    llvm-profdata merge -sparse $profs -o "$out/router-all.profdata" 2>/dev/null || return 0
    echo "# coverage fuzz/{router,rset,rsetpat} together, lines:" \
         "sr_router.c $(lines_of "$out/router-all.profdata" $bins -- sr_router.c)," \
         "sr_rset*.c $(lines_of "$out/router-all.profdata" $bins -- 'sr_rset*.c')" >&2
}

for t in $targets; do
    bin="$out/$t"
    log="$out/$t.log"
    work="$out/$t.corpus"
    dict="$here/dict/$t.dict"
    rm -rf "$work"; mkdir -p "$work"
    case $t in router|rset|rsetpat)
        if [ -n "$spec_err" ]; then fail "$t" "$spec_err"; continue; fi
    esac
    if [ "$mode" = libfuzzer ]; then
        if ! build "$t" clang "-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all" "$bin" "$log"; then
            fail "$t" "build failed ($(grep -m1 error "$log"))"; continue
        fi
        rm -f "$out/$t"-crash-* "$out/$t"-leak-* "$out/$t"-timeout-* "$out/$t"-oom-*
        # new inputs go to the scratch corpus; the seeds are read only
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
            -dict="$dict" -artifact_prefix="$out/$t-" -print_final_stats=1 \
            "$work" $(seed_dirs "$t") >"$log" 2>&1
        rc=$?
        runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        if [ $rc -eq 0 ]; then
            ok "$t # libFuzzer: ${runs:-?} runs in ${per} s"
            [ "${FUZZ_COVERAGE:-0}" = 1 ] && coverage "$t"
        else
            why=$(grep -m1 -E 'invariant failed|SUMMARY|ERROR: libFuzzer|runtime error|==ERROR|fuzz: ' "$log")
            art=$(ls "$out/$t"-* 2>/dev/null | grep -E 'crash|leak|timeout|oom' | head -1)
            fail "$t" "${why:-exit $rc} (input: ${art:-none}, log: $log)"
        fi
    else
        if ! build "$t" gcc "-fsanitize=address,undefined -fno-sanitize-recover=all" "$bin" "$log" "$here/driver.c"; then
            fail "$t" "build failed ($(grep -m1 error "$log"))"; continue
        fi
        ( cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            "$bin" -runs="${FUZZ_RUNS:-1000000}" -seconds="$per" -max_len=8192 \
            -dict="$dict" $(seed_dirs "$t") ) >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            ok "$t # $(grep -m1 '^driver:' "$log")"
        else
            why=$(grep -m1 -E 'invariant failed|SUMMARY|runtime error|==ERROR|fuzz: ' "$log")
            fail "$t" "${why:-exit $rc} (input: $work/driver-last-input, log: $log)"
        fi
    fi
done
[ "${FUZZ_COVERAGE:-0}" = 1 ] && [ "$mode" = libfuzzer ] && coverage_router_all
exit $(( fails > 0 ))
