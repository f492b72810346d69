#!/usr/bin/env bash
# tests/lua/run.sh - the Lua suite: policy cases and unit tests under every Lua
# the module is built for (5.3 and 5.4), then the CLI (bin/synroute, lua5.4).
# Lua 5.4 (the CLI's) and the Lua the installed HAProxy embeds are required;
# the other one runs where its interpreter is installed and is otherwise
# skipped with a "skip" line (neither ok nor FAIL).
# Prints ok/FAIL lines; exits 1 if anything failed.
T=lua
. "$(dirname -- "$0")/../lib.bash"   # root, ok/fail/skip, need_pkg, haproxy_lua
need_pkg lua-cjson || fail setup "lua-cjson is missing and could not be installed"
hlua=$(haproxy_lua)
required() { [ "$1" = 5.4 ] || [ "$1" = "$hlua" ]; }
rc=0
for v in 5.4 5.3; do
    lua=lua$v
    if ! command -v "$lua" >/dev/null 2>&1; then
        if required "$v"; then echo "FAIL lua$v/setup: $lua is not installed"; rc=1
        else echo "skip lua$v: $lua is not installed here (HAProxy here embeds Lua ${hlua:-none}); the Lua $v half did not run"; fi
        continue
    fi
    if [ ! -f "build/$v/synroute.so" ]; then
        echo "FAIL lua$v/setup: build/$v/synroute.so is missing (run make)"; rc=1; continue
    fi
    tag=lua; [ "$v" = 5.3 ] && tag=lua5.3
    for t in run_policy.lua test_units.lua test_mas.lua test_module.lua; do
        env "LUA_PATH=$root/lua/?.lua;;" "LUA_CPATH=$root/build/$v/?.so;;" \
            "LUA_PATH_${v/./_}=$root/lua/?.lua;;" "LUA_CPATH_${v/./_}=$root/build/$v/?.so;;" \
            "$lua" "tests/lua/$t" "$tag" || rc=1
    done
done
lua5.4 tests/lua/test_cli.lua || rc=1
lua5.4 tests/lua/test_runtime.lua || rc=1
lua5.4 tests/lua/test_metrics.lua || rc=1
[ "$fails" = 0 ] || rc=1
exit $rc
