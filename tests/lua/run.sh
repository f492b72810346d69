#!/usr/bin/env bash
# tests/lua/run.sh - the Lua suite: policy cases and unit tests under every Lua
# the module is built for (5.3 and 5.4), then the CLI (bin/synroute, lua5.4)
# and the HAProxy glue. Lua 5.4 (the CLI's) and the Lua the installed HAProxy
# embeds are required; the other one runs where its interpreter is installed
# and is otherwise skipped with a "skip" line (neither ok nor FAIL).
# Prints ok/FAIL lines; exits 1 if anything failed.
set -u
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
rc=0
hlua=$(haproxy -vv 2>/dev/null | sed -n 's/^Built with Lua version : Lua \([0-9]*\.[0-9]*\).*/\1/p')
required() { [ "$1" = 5.4 ] || [ "$1" = "$hlua" ]; }
luas=()
for v in 5.4 5.3; do
    lua=lua$v
    if ! command -v "$lua" >/dev/null 2>&1; then
        if required "$v"; then echo "FAIL lua$v/setup: $lua is not installed"; rc=1
        else echo "skip lua$v: $lua is not installed here (HAProxy here embeds Lua ${hlua:-none}); the Lua $v half did not run"; fi
        continue
    fi
    if [ ! -f "$root/build/$v/synroute.so" ]; then
        echo "FAIL lua$v/setup: build/$v/synroute.so is missing (run make)"; rc=1; continue
    fi
    luas+=("$v")
    tag=lua; [ "$v" = 5.3 ] && tag=lua5.3
    for t in run_policy.lua test_units.lua test_mas.lua test_module.lua; do
        LUA_PATH="$root/lua/?.lua;;" LUA_CPATH="$root/build/$v/?.so;;" \
        LUA_PATH_5_4="$root/lua/?.lua;;" LUA_CPATH_5_4="$root/build/$v/?.so;;" \
        LUA_PATH_5_3="$root/lua/?.lua;;" LUA_CPATH_5_3="$root/build/$v/?.so;;" \
            "$lua" "$here/$t" "$tag" || rc=1
    done
done
LUA_PATH_5_4="$root/lua/?.lua;;" LUA_CPATH_5_4="$root/build/5.4/?.so;;" \
    lua5.4 "$here/test_cli.lua" || rc=1
LUA_PATH_5_4="$root/lua/?.lua;;" LUA_CPATH_5_4="$root/build/5.4/?.so;;" \
    lua5.4 "$here/test_runtime.lua" || rc=1

# lint: these modules write no globals (every name is `local`), compile under
# the Lua versions here, and the glue registers nothing that runs Lua per request.
for f in api policy routes json cli haproxy paths target haproxy_gen config runtime ops; do
    file="$root/lua/synroute/$f.lua"
    for v in "${luas[@]}"; do
        if ! out=$(luac$v -p "$file" 2>&1); then
            echo "FAIL lua/lint/$f-compiles-$v: $out"; rc=1; continue
        fi
        echo "ok lua/lint/$f-compiles-$v"
    done
    g=$(luac5.4 -l -l -p "$file" | grep -E 'SETTABUP.*_ENV' | head -3)
    if [ -n "$g" ]; then echo "FAIL lua/lint/$f-no-globals: $g"; rc=1; else echo "ok lua/lint/$f-no-globals"; fi
done
# (the one exception, the opt-in MAS action, is checked by test_mas.lua: glue/off-no-action)
if grep -nE 'register_(action|fetches|service|task|filter)' "$root/lua/synroute/haproxy.lua" | grep -v '^[0-9]*: *--' | grep -v 'register_action("synroute_mas"'; then
    echo "FAIL lua/lint/glue-no-per-request-lua: haproxy.lua registers per-request Lua"; rc=1
else
    echo "ok lua/lint/glue-no-per-request-lua"
fi
bash "$here/test_haproxy.sh" || rc=1
exit $rc
