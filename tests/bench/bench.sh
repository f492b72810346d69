#!/usr/bin/env bash
# bench.sh - `make bench`: synroute's benchmarks, run with the benchmark
# harness in $BENCH_DIR (its request mix mix.tsv and its instr.sh; the
# Makefile variable BENCH_DIR names it):
#   1. the regex-set micro-benchmark (build/rset_bench): median ns per
#      classification for the set and for the naive loop over mix.tsv.
#   2. instructions per request under callgrind (instr.sh) - see below.
# Targets are reported, not asserted. Exit status: 1 only if a benchmark
# could not run or the set disagreed with the loop.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# the shared benchmark's directory: make bench sets BENCH_DIR (a Makefile variable)
if [ -z "${BENCH_DIR:-}" ] || [ ! -f "$BENCH_DIR/mix.tsv" ]; then
    echo "bench: no mix.tsv in '${BENCH_DIR:-}' (run make bench, or set BENCH_DIR)" >&2
    exit 1
fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
export BENCH_DIR
[ -x build/rset_bench ] || make -s build/rset_bench

echo "== regex set micro-benchmark (tests/bench/rset_bench.c)"
build/rset_bench routes/routes.yaml "$BENCH_DIR/mix.tsv"

# == the C decision per request kind ========================================
# ns per decision (the converter closure, Lua call included) and the
# instructions of sr_route_packed alone (callgrind, collection only inside it).
echo
echo "== the C decision per kind of mix.tsv (tests/bench/perclass.lua; examples/bench deployment)"
lua5.4 tests/bench/perclass.lua "$ROOT" "$BENCH_DIR/mix.tsv" time
if command -v valgrind >/dev/null; then
    printf '%-16s %10s\n' kind instr/decision
    for k in $(awk -F'\t' 'NR > 1 && $1 !~ /^#/ {print $1}' "$BENCH_DIR/mix.tsv" | sort -u) all; do
        out=$(mktemp)
        valgrind --tool=callgrind --toggle-collect=sr_route_packed --callgrind-out-file="$out" \
            lua5.4 tests/bench/perclass.lua "$ROOT" "$BENCH_DIR/mix.tsv" run "$k" 3 2>"$out.log" >/dev/null
        ir=$(awk '/^totals:/ {print $2}' "$out")
        n=$(sed -n 's/^perclass: \([0-9]*\) decisions$/\1/p' "$out.log")
        [ -n "$ir" ] && [ -n "$n" ] && awk -v k="$k" -v ir="$ir" -v n="$n" 'BEGIN { printf "%-16s %10.0f\n", k, ir / n }'
        rm -f "$out" "$out.log"
    done
fi

# == instructions per request (instr.sh) ====================================
# synroute (examples/bench, the generated config) as a contestant of the
# shared benchmark, next to plain / haproxy-acl / nginx, plus a variant of the
# same config that enters Lua through an action instead of the converter.
# BENCH_ROUNDS (default 3) rounds; figures are printed, never asserted.
if ! command -v valgrind >/dev/null || ! command -v wrk >/dev/null; then
    echo "bench: valgrind and wrk are needed for instr.sh (make deps installs them)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SYNROUTE_RUN_DIR=$tmp   # examples/bench's runtime API socket
cfg=$ROOT/examples/bench/haproxy.cfg
# action variant: the converter lines replaced by one Lua action
awk -v glue="$ROOT/tests/bench/action_glue.lua" '
    /lua-load(-per-thread)? .*haproxy.lua/ { print; print "    " $1 " \"" glue "\""; next }
    /set-var-fmt\(txn.synroute_in\)/ { print "    http-request lua.synroute_action"; next }
    /var\(txn.synroute_in\)|set-var\(txn.synroute_key\) +var\(txn.synroute\),field\(3,\|\)/ { next }
    { print }' "$cfg" > "$tmp/action.cfg"
echo
echo "== instructions per request (instr.sh of the shared benchmark, ${BENCH_ROUNDS:-3} rounds; $(haproxy -v | head -1 | cut -d' ' -f1-3))"
SYNROUTE_ROOT=$ROOT "$BENCH_DIR/instr.sh" --rounds "${BENCH_ROUNDS:-3}" --top 0 \
    --contestant "synroute=env SYNROUTE_ROOT=$ROOT haproxy -db -f $cfg:28090" \
    --contestant "synroute-action=env SYNROUTE_ROOT=$ROOT haproxy -db -f $tmp/action.cfg:28090" \
    | sed -n '/^contestant/,/^medians/p'
echo "targets: beat haproxy-acl; moonshot <= 1.20x plain"
