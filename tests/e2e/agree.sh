#!/usr/bin/env bash
# tests/e2e/agree.sh - "synroute explain and HAProxy agree on every case".
#
#   bash tests/e2e/agree.sh [CASES.tsv ...]
#
# Default cases: tests/lua/cases*.tsv (the policy case tables; their expected
# columns are for other deployments and are ignored: only method, target,
# headers and src are used) plus
# tests/e2e/agree/extra.tsv (edge cases: encodings, sources, blocked paths).
# Deployment: tests/vtc/conf/all (every pool exists, one worker each).
#
# tests/e2e/agree/prepare.lua computes every explain in one lua5.4 process
# (require("synroute.api"), the code path of `synroute explain`) and writes an
# HAProxy config: the converter's frontend rules (design.md "Per-request flow",
# without the path normalisation and path ACL of the generated frontend, which
# explain does not do) on 127.0.0.1:23000, one backend
# per pool whose server is a stand-in frontend on that worker's port
# (23002, 23010-23031) answering "X-Worker: <pool>". HAProxy reports the class,
# backend and key it computed in response headers. Every case is sent with one
# curl run (curl -K, verbatim request target, the case's source address passed
# in X-Agree-Src and applied with set-src). Per case we compare:
#   class   X-Synroute-Class  == explain.class
#   backend X-Worker (the pool that really answered) == explain.backend
#           (for class blocked: status 404 and no worker)
#   key     X-Synroute-Key    == explain.hash
# The frontend starts with the native fast paths the generator writes for the
# deployment, so the cases they take compare the fast path with explain (the
# converter's own code): same class, backend and key. Each fast path must take
# at least one case (X-Synroute-Fast names the one that decided).
# Prints "ok agree/<case>" or "FAIL agree/<case>: <why>"; exits 1 on any FAIL.
T=agree
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, haproxy_lua, port_busy
conf=$root/tests/vtc/conf/all/synroute.yaml

for c in haproxy curl lua5.4; do
    command -v "$c" >/dev/null 2>&1 || { fail setup "$c not installed (make deps)"; exit 1; }
done
# explain runs under lua5.4; HAProxy loads the module for the Lua it embeds
hlua=$(haproxy_lua)
[ -n "$hlua" ] || { fail setup "haproxy is not built with Lua"; exit 1; }
for v in 5.4 "$hlua"; do
    [ -f "build/$v/synroute.so" ] || { fail setup "build/$v/synroute.so is missing (make)"; exit 1; }
done

if [ $# -gt 0 ]; then
    cases=("$@")
else
    cases=()
    for f in tests/lua/cases*.tsv; do
        [ -f "$f" ] && cases+=("$f")
    done
    [ ${#cases[@]} -gt 0 ] || echo "note: no tests/lua/cases*.tsv; only the extra cases run"
    cases+=(tests/e2e/agree/extra.tsv)
fi

work=$tmp
export SYNROUTE_RUN_DIR=$work   # the runtime API socket of tests/vtc/conf/all

n=$(timeout 60 lua5.4 tests/e2e/agree/prepare.lua "$root" "$conf" "$work" "${cases[@]}" 2>"$work/prepare.err") || {
    fail setup "prepare.lua failed:"; sed 's/^/    /' "$work/prepare.err"; exit 1; }
if [ -s "$work/skipped.txt" ]; then
    echo "note: $(wc -l <"$work/skipped.txt") case(s) not sendable verbatim over HTTP/1.1, skipped:"
    sed 's/^/    /' "$work/skipped.txt"
fi
[ "$n" -gt 0 ] || { fail setup "no cases"; exit 1; }

# every port we bind must be free
for p in $(cat "$work/ports.txt"); do
    if port_busy "$p"; then
        fail setup "127.0.0.1:$p is already in use (agree.sh needs 23000-23099)"; exit 1
    fi
done

haproxy -c -q -f "$work/haproxy.cfg" >"$work/check.out" 2>&1 || {
    fail setup "haproxy -c rejected the config:"; sed 's/^/    /' "$work/check.out" | head -30; exit 1; }
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
    port_busy 23000 && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
done
if ! port_busy 23000; then
    fail setup "HAProxy did not start:"; sed 's/^/    /' "$work/haproxy.out" | head -30; exit 1
fi

timeout 300 curl -s -K "$work/curl.cfg" --max-time 5 --connect-timeout 2 >"$work/got.tsv" 2>"$work/curl.err"
# (curl's exit status is that of the last transfer; missing lines are reported per case)
if [ ! -s "$work/got.tsv" ]; then
    fail run "curl gave no result at all: $(head -2 "$work/curl.err" | tr '\n' ' ')"; exit 1
fi

awk -F'\t' '
    FILENAME == ARGV[1] { want_fast[$0] = 1; next }
    FILENAME == ARGV[2] { gsub(/\r/, ""); got[$1] = $0; next }   # curl prints an empty header value as "\r"
    {
        n = $1; name = $2; cls = $3; be = $4; hash = $5
        if (!(n in got)) { printf "FAIL agree/%s: no response (curl error or timeout)\n", name; bad++; next }
        split(got[n], g, "\t")
        status = g[2]; worker = g[3]; hcls = g[4]; hbe = g[5]; hkey = g[6]; hfast = g[7]
        if (hfast != "") fast[hfast]++
        if (status == "400" && hcls == "" && worker == "") {
            # the request never reached the rules: this HAProxy rejects it
            # while parsing (e.g. "GET *": 3.0 allows "*" only with OPTIONS)
            printf "skip agree/%s: HAProxy answered 400 before any rule ran (nothing to compare)\n", name; skipped++; next
        }
        why = ""
        if (hcls != cls) why = why sprintf(" class: haproxy %s, explain %s;", hcls == "" ? "(none)" : hcls, cls)
        if (cls == "blocked") {
            if (status != "404") why = why sprintf(" blocked: haproxy status %s, want 404;", status)
            if (worker != "") why = why sprintf(" blocked: reached worker %s;", worker)
        } else {
            if (worker != be) why = why sprintf(" backend: haproxy reached %s (status %s, var %s), explain %s;", worker == "" ? "(nothing)" : worker, status, hbe == "" ? "(none)" : hbe, be)
        }
        if (hkey != hash) why = why sprintf(" key: haproxy %s, explain %s;", hkey == "" ? "(none)" : hkey, hash == "" ? "(none)" : hash)
        if (why == "") { printf "ok agree/%s\n", name; ok++ }
        else { sub(/;$/, "", why); printf "FAIL agree/%s:%s\n", name, why; bad++ }
    }
    END {
        for (f in want_fast) {
            if (fast[f] > 0) { printf "ok agree/fast-path %s: took %d case(s)\n", f, fast[f]; ok++ }
            else { printf "FAIL agree/fast-path %s: no case took it\n", f; bad++ }
        }
        printf "agree: %d ok, %d failed, %d skipped\n", ok, bad, skipped; exit bad > 0
    }
' "$work/fast.txt" "$work/got.tsv" "$work/expected.tsv"
rc=$?
if [ "$rc" -ne 0 ] && [ -s "$work/curl.err" ]; then
    echo "curl stderr:"; sed 's/^/    /' "$work/curl.err" | head -10
fi
exit "$rc"
