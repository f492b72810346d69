#!/usr/bin/env bash
# tests/check/run.sh - broken deployments must be reported, with file:line.
#
# Each tests/check/cases/<name>/ holds a synroute.yaml (plus the Synapse YAML
# it names) and `expect`: the first line is "exit N", every further line a
# fragment that `synroute check` must print. A case with a `setup` script is
# checked in a temporary copy in which `setup` first runs (bash, in the copy):
# for files made at run time (FIFOs, large files). Prints "ok check/<name>" or
# "FAIL check/<name>: why". Last tests: HAProxy refuses to start with a broken
# deployment and prints the same message as `synroute check`; and at once,
# saying why, when the homeserver file has become a FIFO or 12 MiB. Drift:
# a new comment and setting in homeserver.yaml are no drift; after a typing
# writer is added to the Synapse files, haproxy -c refuses the
# config generated before, naming the difference and the command; the
# regenerated one passes, and so does the old one with SYNROUTE_DRIFT ignore.
# Lua memory: a deployment with a 1 MiB homeserver.yaml and 4 threads starts
# (a real start: every thread loads its own Lua state, haproxy -c loads one);
# the control, the same config with tune.lua.maxmem 16, runs out of Lua
# memory (the fixed 64 of old sometimes did, depending on the collector).
T=check
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, ok/fail, syn
for dir in tests/check/cases/*/; do
    dir=${dir%/}
    name=${dir##*/}
    [ -f "$dir/expect" ] || continue
    copy=""
    if [ -f "$dir/setup" ]; then
        copy=$(mktemp -d "${TMPDIR:-/tmp}/synroute-case.XXXXXX")
        cp -R "$dir/." "$copy/"
        if ! (cd "$copy" && bash ./setup) >"$copy/.setup.log" 2>&1; then
            fail "$name" "setup failed: $(head -3 "$copy/.setup.log" | tr '\n' ' ')"
            rm -rf "$copy"; continue
        fi
        dir=$copy
    fi
    out=$(syn check "$dir/synroute.yaml" 2>&1); rc=$?
    want=$(head -n1 "$dir/expect" | sed 's/^exit //')
    why=""
    [ "$rc" = "$want" ] || why="exit $rc, want $want"
    while IFS= read -r frag; do
        [ -z "$frag" ] && continue
        if ! grep -qF -- "$frag" <<<"$out"; then why="${why:+$why; }missing: $frag"; fi
    done < <(tail -n +2 "$dir/expect")
    # every problem line names file:line
    if [ "$want" = 1 ]; then
        bad=$(grep -vE '^(warning: |[0-9]+ problems? found)' <<<"$out" | grep -vE '^[^ :]+:[0-9]+(:[0-9]+)?: ' | head -1)
        [ -z "$bad" ] || why="${why:+$why; }line without file:line: $bad"
    fi
    if [ -z "$why" ]; then ok "$name"; else fail "$name" "$why"; printf '%s\n' "$out" | sed 's/^/    | /'; fi
    # a deployment that passes check must give an HAProxy config that passes haproxy -c
    if [ "$want" = 0 ]; then
        cfg=$tmp/$name.cfg
        if ! gout=$(syn haproxy "$dir/synroute.yaml" -o "$cfg" 2>&1); then
            fail "$name/haproxy-c" "generation failed: $(head -2 <<<"$gout" | tr '\n' ' ')"
        elif ! hout=$(timeout 20 haproxy -c -f "$cfg" 2>&1); then
            fail "$name/haproxy-c" "$(grep -m2 ALERT <<<"$hout" | tr '\n' ' ')"
        else
            ok "$name/haproxy-c"
        fi
    fi
    [ -n "$copy" ] && rm -rf "$copy"
done

# HAProxy must refuse to start when the deployment it loads is broken, with
# the message synroute check prints.
name=haproxy-refuses-broken-config
cp -R tests/check/cases/ok "$tmp/dep"
if ! syn haproxy "$tmp/dep/synroute.yaml" -o "$tmp/haproxy.cfg" 2>"$tmp/gen.err"; then
    fail "$name" "generating from the good config failed: $(head -3 "$tmp/gen.err")"
else
    # the admin later edits the deployment: a pool names a worker that does not exist
    printf '  client: [no-such-worker]\n' >> "$tmp/dep/synroute.yaml"
    want=$(syn check "$tmp/dep/synroute.yaml" 2>&1 | grep -F "unknown worker 'no-such-worker'")
    hout=$(timeout 20 haproxy -c -f "$tmp/haproxy.cfg" 2>&1); hrc=$?
    if [ "$hrc" = 0 ]; then
        fail "$name" "haproxy -c accepted the broken deployment"
    elif [ -z "$want" ] || ! grep -qF -- "$want" <<<"$hout"; then
        fail "$name" "haproxy did not print '$want'"; printf '%s\n' "$hout" | sed 's/^/    | /' | head -20
    else
        ok "$name"
    fi
fi

# The same for input files HAProxy's Lua must never read: the homeserver
# file replaced, after generation, by a FIFO (no writer: reading would
# block the start) or by a 12 MiB file. HAProxy refuses at once, saying why.
for kind in fifo large; do
    name=haproxy-refuses-$kind-homeserver
    rm -rf "$tmp/dep"; cp -R tests/check/cases/ok "$tmp/dep"
    if ! syn haproxy "$tmp/dep/synroute.yaml" -o "$tmp/haproxy.cfg" 2>"$tmp/gen.err"; then
        fail "$name" "generating from the good config failed: $(head -3 "$tmp/gen.err")"; continue
    fi
    if [ $kind = fifo ]; then
        rm "$tmp/dep/homeserver.yaml"; mkfifo "$tmp/dep/homeserver.yaml"
        want="homeserver.yaml is not a regular file (a FIFO)"
    else
        yes '# a comment line, repeated until the file is 12 MiB' | head -c $((12 * 1024 * 1024)) > "$tmp/big"
        cat "$tmp/dep/homeserver.yaml" "$tmp/big" | head -c $((12 * 1024 * 1024)) > "$tmp/dep/homeserver.yaml.new"
        mv "$tmp/dep/homeserver.yaml.new" "$tmp/dep/homeserver.yaml"
        want="homeserver.yaml is too large (12582912 bytes; the limit is 1048576 bytes)"
    fi
    hout=$(timeout 20 haproxy -c -f "$tmp/haproxy.cfg" 2>&1); hrc=$?
    if [ "$hrc" = 0 ] || [ "$hrc" = 124 ]; then
        fail "$name" "haproxy -c exited $hrc"
    elif ! grep -qF -- "synroute.yaml:2: homeserver config " <<<"$hout" || ! grep -qF -- "$want" <<<"$hout"; then
        fail "$name" "haproxy did not print '$want'"; printf '%s\n' "$hout" | sed 's/^/    | /' | head -20
    else
        ok "$name"
    fi
done
# Drift is fatal: a typing writer added after generation.
name=haproxy-refuses-drift
rm -rf "$tmp/dep"; cp -R tests/check/cases/ok "$tmp/dep"
if ! syn haproxy "$tmp/dep/synroute.yaml" -o "$tmp/haproxy.cfg" 2>"$tmp/gen.err"; then
    fail "$name" "generating from the good config failed: $(head -3 "$tmp/gen.err")"
else
    why=""
    # not drift: a comment and a setting synroute does not read
    printf '# a comment added later\nsuppress_key_server_warning: true\n' >> "$tmp/dep/homeserver.yaml"
    cout=$(timeout 20 haproxy -c -f "$tmp/haproxy.cfg" 2>&1) || why="a new comment and setting count as drift: $(grep -m1 -A1 ALERT <<<"$cout")"
    # drift: a typing writer
    sed -i 's/^  main:$/  typing-1: {host: 127.0.0.1, port: 38521}\n  main:/' "$tmp/dep/homeserver.yaml"
    printf 'stream_writers:\n  typing: typing-1\n' >> "$tmp/dep/homeserver.yaml"
    printf '%s\n' 'worker_app: synapse.app.generic_worker' 'worker_name: typing-1' 'worker_listeners:' \
        '  - {type: http, port: 38520, bind_addresses: [127.0.0.1], x_forwarded: true, resources: [{names: [client]}]}' \
        > "$tmp/dep/workers/typing-1.yaml"
    syn check "$tmp/dep/synroute.yaml" >"$tmp/check.out" 2>&1 || why="${why:+$why; }the changed deployment fails check: $(head -2 "$tmp/check.out")"
    hout=$(timeout 20 haproxy -c -f "$tmp/haproxy.cfg" 2>&1); hrc=$?
    [ "$hrc" != 0 ] || why="${why:+$why; }haproxy -c accepted the old config"
    for want in "pool typing: now typing-1@127.0.0.1:38520; haproxy.cfg was generated without it" \
                "regenerate it: synroute haproxy $tmp/dep/synroute.yaml -o $tmp/haproxy.cfg"; do
        grep -qF -- "$want" <<<"$hout" || why="${why:+$why; }haproxy did not print '$want'"
    done
    sed 's/^\(    setenv SYNROUTE_CONFIG .*\)$/\1\n    setenv SYNROUTE_DRIFT ignore/' "$tmp/haproxy.cfg" > "$tmp/ignore.cfg"
    iout=$(timeout 20 haproxy -c -f "$tmp/ignore.cfg" 2>&1) || why="${why:+$why; }SYNROUTE_DRIFT ignore: $(grep -m1 ALERT <<<"$iout")"
    syn haproxy "$tmp/dep/synroute.yaml" -o "$tmp/haproxy.cfg" 2>/dev/null
    rout=$(timeout 20 haproxy -c -f "$tmp/haproxy.cfg" 2>&1) || why="${why:+$why; }regenerated: $(grep -m1 ALERT <<<"$rout")"
    if [ -z "$why" ]; then ok "$name"; else fail "$name" "$why"; printf '%s\n' "$hout" | sed 's/^/    | /' | head -12; fi
fi

# Whatever passes check starts within the tune.lua.maxmem it is given.
name=haproxy-starts-large-deployment
rm -rf "$tmp/dep"; cp -R tests/check/cases/ok "$tmp/dep"
{ cat tests/check/cases/ok/homeserver.yaml; echo "x_many:"
  seq 0 200000 | awk '{ print "  - {a: " $1 "}" }'; } | head -c 1048000 | sed '$d' > "$tmp/dep/homeserver.yaml"
printf 'nbthread: 4\n' >> "$tmp/dep/synroute.yaml"
if ! syn check "$tmp/dep/synroute.yaml" >"$tmp/check.out" 2>&1; then
    fail "$name" "check refused it: $(grep -v '^warning' "$tmp/check.out" | head -2 | tr '\n' ' ')"
elif ! syn haproxy "$tmp/dep/synroute.yaml" -o "$tmp/haproxy.cfg" 2>"$tmp/gen.err"; then
    fail "$name" "generation failed: $(head -3 "$tmp/gen.err")"
else
    # a real start (foreground, stopped after 4 s): 124 means it was running
    timeout 4 haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/start.out" 2>&1; src=$?
    sed 's/^    tune.lua.maxmem .*/    tune.lua.maxmem 16/' "$tmp/haproxy.cfg" > "$tmp/fixed.cfg"
    timeout 4 haproxy -db -f "$tmp/fixed.cfg" >"$tmp/fixed.out" 2>&1; frc=$?
    if [ "$src" != 124 ]; then
        fail "$name" "HAProxy did not start ($src, $(grep -m1 maxmem "$tmp/haproxy.cfg")): $(grep -m2 ALERT "$tmp/start.out" | tr '\n' ' ')"
    elif [ "$frc" = 124 ] || ! grep -q "Lua.*memory" "$tmp/fixed.out"; then
        fail "$name" "control: with tune.lua.maxmem 16 it did not run out of Lua memory ($frc); the test proves nothing"
    else
        ok "$name"
    fi
fi
exit $(( fails > 0 ))
