#!/usr/bin/env bash
# tests/vtc/run.sh - run every VTest file in tests/vtc/ against the HAProxy
# installed here (2.6 with Lua 5.3, 3.0 with Lua 5.4, ...), with synroute's
# glue loaded the way the generated configuration loads it.
#
#   bash tests/vtc/run.sh [file.vtc ...]
#
# Requirements: each file states its own, in the style of HAProxy's
# reg-tests, as lines right after `varnishtest "..."`:
#   #REQUIRE_OPTIONS=LUA[,OPT...]  `haproxy -vv` shows each option (USE_<OPT>=1
#                                  or +<OPT> in the feature list)
#   #REQUIRE_VERSION=X.Y           HAProxy X.Y or later
#   #REQUIRE_VERSION_BELOW=X.Y     HAProxy older than X.Y
# A requirement that is not met prints "skip vtc/<file>: <why>" (neither ok
# nor FAIL), as does a `feature cmd` line of the file (varnishtest exit 77).
# An unknown #REQUIRE_ line is a FAIL, so is a file with a synroute
# placeholder that does not require LUA.
#
# What ships, not a copy of it: the synroute lines of a test's HAProxy
# configuration come from the generator, through placeholder lines:
#   #SYNROUTE_GLOBAL <dir> [options]  (in `global`) the global section that
#         `bin/synroute haproxy tests/vtc/<dir>/synroute.yaml [options]`
#         writes for the HAProxy installed here, without its `log` lines:
#         expose-experimental-directives, tune.lua.maxmem, setenv
#         SYNROUTE_CONFIG, lua-load-per-thread of the glue (lua-load for a
#         deployment with mas.resolve), nbthread if the deployment sets it
#   #SYNROUTE_RULES <dir> [options]   (in a frontend) that output's frontend
#         rules, from "# 0. Client-supplied ..." through `use_backend`; a test's own
#         http-request lines go before it, its http-response /
#         http-after-response lines (test headers) after it
#   #SYNROUTE_EDIT <sed script>       (right after a placeholder, repeatable)
#         for a test that changes the shipped lines on purpose (a broken
#         input, no path ACL, no deployment): `sed -e <script>` runs on what
#         the placeholder filled in; an edit that changes nothing is a FAIL
#         (the generator changed: the test would no longer test its case).
# The filled-in copy of each file is written to the log directory, with
# ${testdir} replaced by this directory, and run from there.
#
# Prints "ok vtc/<file>", "skip vtc/<file>: <why>" or "FAIL vtc/<file>: <why>"
# per file, then the tail of each failing test's log. Exits non-zero if any
# file failed.
# Env: VTC_JOBS (parallel files, default 4), VTC_TIMEOUT (per test, default 30 s),
#      VTC_KEEP=1 keeps the logs directory (filled-in files and logs).
T=vtc
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, ok/fail/skip, need_pkg, haproxy_lua
vtcdir=$root/tests/vtc

need_pkg varnish haproxy lua-cjson
for c in varnishtest haproxy; do
    command -v "$c" >/dev/null 2>&1 || { fail setup "$c not installed"; exit 1; }
done

# What this HAProxy is and has.
vv=$(haproxy -vv 2>&1)
hver=$(sed -n 's/^HA-\{0,1\}Proxy version \([0-9]*\.[0-9]*\).*/\1/p' <<<"$vv" | head -1)
hlua=$(haproxy_lua)
[ -n "$hver" ] || { fail setup "no version in haproxy -vv"; exit 1; }
has_option() {   # OPT: USE_OPT=1 among the build options, or +OPT in the feature list
    grep -qE "(^|[[:space:]])USE_$1=1([[:space:]]|\$)" <<<"$vv" ||
        grep -E '^Feature list' <<<"$vv" | grep -qE "(^|[[:space:]])\+$1([[:space:]]|\$)"
}
vnum() { local a=${1%%.*} b=${1#*.}; echo $((a * 1000 + ${b%%.*})); }

if [ $# -gt 0 ]; then files=("$@"); else files=(tests/vtc/*.vtc); fi
[ -e "${files[0]}" ] || { fail setup "no .vtc files"; exit 1; }

# (The tests choose their deployment themselves: setenv in the global lines.)
jobs=${VTC_JOBS:-4}
tmo=${VTC_TIMEOUT:-30}
logs=$tmp
if [ "${VTC_KEEP:-0}" = 1 ]; then logs=$(mktemp -d "${TMPDIR:-/tmp}/synroute-vtc.XXXXXX"); echo "logs: $logs"; fi
mkdir -p "$logs/gen"

# requirements FILE -> nothing if they are met, else "skip: why" / "fail: why"
requirements() {
    local f=$1 line key val opt why="" placeholders=0 lua=0
    while IFS= read -r line; do
        case $line in
            '#REQUIRE_'*=*)
                key=${line%%=*}; val=${line#*=}
                case $key in
                    '#REQUIRE_OPTIONS')
                        for opt in ${val//,/ }; do
                            [ "$opt" = LUA ] && lua=1
                            has_option "$opt" || why="${why:+$why, }HAProxy here is built without $opt"
                        done ;;
                    '#REQUIRE_VERSION')
                        [ "$(vnum "$hver")" -ge "$(vnum "$val")" ] || why="${why:+$why, }needs HAProxy $val or later (here $hver)" ;;
                    '#REQUIRE_VERSION_BELOW')
                        [ "$(vnum "$hver")" -lt "$(vnum "$val")" ] || why="${why:+$why, }needs HAProxy older than $val (here $hver)" ;;
                    *) echo "fail: unknown requirement line: $line"; return ;;
                esac ;;
            '#REQUIRE_'*) echo "fail: malformed requirement line: $line"; return ;;
            *'#SYNROUTE_'*) placeholders=1 ;;
        esac
    done <"$f"
    if [ "$placeholders" = 1 ] && [ "$lua" = 0 ]; then
        echo "fail: uses #SYNROUTE_ placeholders but does not say #REQUIRE_OPTIONS=LUA"; return
    fi
    [ -z "$why" ] || echo "skip: $why"
}

# gen DIR [OPTIONS...] -> path of the generated config (cached per arguments)
gen() {
    local key out dir=$1
    key=$(printf '%s_' "$@" | tr -c 'A-Za-z0-9._-' '_')
    out=$logs/gen/$key.cfg
    if [ ! -f "$out" ]; then
        shift
        timeout 30 bin/synroute haproxy "tests/vtc/$dir/synroute.yaml" "$@" -o "$out" 2>"$logs/gen/$key.err" || {
            echo "synroute haproxy tests/vtc/$dir/synroute.yaml $*: $(head -3 "$logs/gen/$key.err" | tr '\n' ' ')" >&2
            rm -f "$out"; return 1; }
    fi
    echo "$out"
}
# part global|rules CFG -> those lines, without their indentation
part() {
    case $1 in
        # (not the runtime API socket: parallel tests would take each other's)
        global) awk '/^global$/ { on = 1; next } on && /^$/ { exit } on && $1 != "log" && $1 != "stats" { sub(/^    /, ""); print }' "$2" ;;
        rules) awk '/^    # 0\. Client-supplied/ { on = 1 } on { sub(/^    /, ""); print } on && /^use_backend/ { exit }' "$2" ;;
    esac
}

# fill SRC DST: write the runnable copy; on a problem say why (stderr), return 1
fill() {
    local src=$1 dst=$2 line indent="" kind rest cfg pending="" n=0 edited
    local block=$logs/block.$BASHPID
    local -a lines=()
    mapfile -t lines <"$src"
    : >"$dst"
    while [ "$n" -lt "${#lines[@]}" ]; do
        line=${lines[$n]}; n=$((n + 1))
        if [[ $line =~ ^[[:space:]]*#SYNROUTE_EDIT[[:space:]]+(.*)$ ]]; then
            [ -n "$pending" ] || { echo "#SYNROUTE_EDIT without a placeholder before it: $line" >&2; return 1; }
            edited=$(sed -e "${BASH_REMATCH[1]}" "$block") || { echo "bad edit: $line" >&2; return 1; }
            if [ "$edited" = "$(cat "$block")" ]; then
                echo "#SYNROUTE_EDIT ${BASH_REMATCH[1]} changed nothing in the generated lines" >&2; return 1
            fi
            printf '%s\n' "$edited" >"$block"
            # (braces would unbalance the -conf block of varnishtest)
            echo "$indent# ---- edited: ${BASH_REMATCH[1]//[\{\}]/}" >>"$dst"
            continue
        fi
        if [ -n "$pending" ]; then   # the placeholder's lines, after their edits
            sed "s/^/$indent/" "$block" >>"$dst"
            pending=""
        fi
        if [[ $line =~ ^([[:space:]]*)#SYNROUTE_(GLOBAL|RULES)[[:space:]]+(.*)$ ]]; then
            indent=${BASH_REMATCH[1]}; kind=${BASH_REMATCH[2]}; rest=${BASH_REMATCH[3]}
            # shellcheck disable=SC2086 # the directory and options are words
            cfg=$(gen $rest) || return 1
            if [ "$kind" = GLOBAL ]; then part global "$cfg" >"$block"; else part rules "$cfg" >"$block"; fi
            [ -s "$block" ] || { echo "#SYNROUTE_$kind $rest: no such part in the generator's output" >&2; return 1; }
            echo "$indent# ---- #SYNROUTE_$kind $rest: generated" >>"$dst"
            pending=1
        else
            printf '%s\n' "${line//\$\{testdir\}/$vtcdir}" >>"$dst"
        fi
    done
    [ -z "$pending" ] || sed "s/^/$indent/" "$block" >>"$dst"
    rm -f "$block"
}

# Requirements, then the filled-in copies, in order.
declare -A state=()   # name -> run | skip: why | fail: why
build_needed=0
for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    r=$(requirements "$f")
    if [ -n "$r" ]; then state[$name]=$r; continue; fi
    state[$name]=run
    grep -q '^#REQUIRE_OPTIONS=.*LUA' "$f" && build_needed=1
done
if [ "$build_needed" = 1 ] && [ ! -f "build/$hlua/synroute.so" ]; then
    fail setup "build/$hlua/synroute.so (the Lua this HAProxy embeds) is missing (make)"; exit 1
fi
for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    [ "${state[$name]}" = run ] || continue
    if ! err=$(fill "$f" "$logs/$name.vtc" 2>&1); then
        state[$name]="fail: cannot fill in the placeholders: $(head -2 <<<"$err" | tr '\n' ' ')"
    fi
done

run_one() {   # name -> writes $logs/<name>.log and $logs/<name>.rc
    local name=$1 rc
    # The outer timeout is a backstop only: varnishtest enforces -t itself.
    timeout -k 5 $((tmo + 30)) varnishtest -b 16M -t "$tmo" "$logs/$name.vtc" >"$logs/$name.log" 2>&1
    rc=$?
    echo "$rc" >"$logs/$name.rc"
}

# Simple bounded parallelism: at most $jobs varnishtest processes at a time.
running=0
for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    [ "${state[$name]}" = run ] || continue
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n 2>/dev/null || true
        running=$((running - 1))
    fi
done
wait

for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    case ${state[$name]} in
        skip:*) skip "$name" "requirement not met: ${state[$name]#skip: }"; continue ;;
        fail:*) fail "$name" "${state[$name]#fail: }"; continue ;;
    esac
    rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 99)
    if [ "$rc" = 0 ]; then
        ok "$name"
    elif [ "$rc" = 77 ]; then
        # a `feature` line of the test is not met here: neither ok nor FAIL
        skip "$name" "requirement not met: $(grep -h '^feature cmd' "$f" 2>/dev/null | head -1 | cut -c1-120)"
    else
        why="exit $rc"
        [ "$rc" = 124 ] && why="timed out"
        first=$(grep -m1 -E '^---- ' "$logs/$name.log" | sed 's/^[- ]*//' | cut -c1-200)
        fail "$name" "$why${first:+: $first}"
    fi
done
for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    [ "${state[$name]}" = run ] || continue
    case $(cat "$logs/$name.rc" 2>/dev/null) in 0|77) continue ;; esac
    echo "---- log tail of vtc/$name"
    grep -E '^(----|\*\*\*\*|\*\*\*)' "$logs/$name.log" | tail -40 | sed 's/^/    /'
done
echo "vtc: HAProxy $hver${hlua:+ with Lua $hlua}"
exit $(( fails > 0 ))
