#!/usr/bin/env bash
# tests/run.sh - run every test suite (called by `make test`, which builds first).
# Each suite prints "ok <name>" / "FAIL <name>: why" lines; a suite that exits
# non-zero without printing a FAIL line counts as one failure of its own.
# The last line is "N passed, N failed".
T=run
. "$(dirname -- "$0")/lib.bash"   # root, need_pkg
# What the Lua code needs at run time besides the module: lua-cjson decodes
# JSON (MAS resolution inside HAProxy, --probe). The suites that use it also
# install it when they run alone.
need_pkg lua-cjson
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/synroute-tests.XXXXXX")
passed=0 failed=0

run_suite() {   # name, command...
    local name=$1; shift
    local out="$log_dir/$name.log" rc t0=$SECONDS
    echo "== $name: $*"
    "$@" >"$out" 2>&1; rc=$?
    local ok fail
    ok=$(grep -c '^ok ' "$out"); fail=$(grep -c '^FAIL' "$out")
    grep '^FAIL' "$out" | head -50
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        echo "FAIL suite/$name: exited $rc with no FAIL line; last output:"; tail -20 "$out" | sed 's/^/    /'
        fail=1
    fi
    echo "   $name: $ok passed, $fail failed ($((SECONDS - t0)) s; log $out)"
    passed=$((passed + ok)); failed=$((failed + fail))
}

run_suite unit      build/unit_tests
run_suite style     bash tests/style/run.sh
run_suite fuzz      bash tests/fuzz/run.sh
run_suite routes    lua5.4 tests/routes/test_routes.lua
run_suite lua       bash tests/lua/run.sh
run_suite check     bash tests/check/run.sh
run_suite vtc       bash tests/vtc/run.sh
run_suite examples  bash tests/e2e/examples.sh
run_suite agree     bash tests/e2e/agree.sh
run_suite normalize bash tests/e2e/normalize.sh
run_suite probes    bash tests/e2e/probes.sh
run_suite glue      bash tests/e2e/glue.sh
run_suite safe      bash tests/e2e/safe_defaults.sh
run_suite names     bash tests/e2e/names.sh
run_suite replay    bash tests/e2e/replay.sh
run_suite version   bash tests/version/run.sh
run_suite package   bash tests/platform/package.sh
for t in tests/traffic/*.sh; do
    [ -f "$t" ] && run_suite "traffic-$(basename "$t" .sh)" bash "$t"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
