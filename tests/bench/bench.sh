#!/usr/bin/env bash
# bench.sh - `make bench`: synroute's benchmarks.
#   1. the regex-set micro-benchmark (build/rset_bench): median ns per
#      classification for the set and for the naive loop over mix.tsv.
#   2. (placeholder) instructions per request under callgrind - see below.
# Targets are reported, not asserted. Exit status: 1 only if a benchmark
# could not run or the set disagreed with the loop.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BENCH_DIR=${BENCH_DIR:-$ROOT/../shared/bench}
export BENCH_DIR

if [ ! -f "$BENCH_DIR/mix.tsv" ]; then
    echo "bench: no mix.tsv in $BENCH_DIR (set BENCH_DIR)" >&2
    exit 1
fi
[ -x build/rset_bench ] || make -s build/rset_bench

echo "== regex set micro-benchmark (tests/bench/rset_bench.c)"
build/rset_bench routes/routes.yaml "$BENCH_DIR/mix.tsv"

# ---------------------------------------------------------------------------
# == instructions per request (instr.sh) ====================================
# PLACEHOLDER for the integrator: run $BENCH_DIR/instr.sh with synroute's
# HAProxy config as a --contestant here (and, if wanted, run.sh). Keep this
# section last so the micro-benchmark above always runs first.
# ---------------------------------------------------------------------------
