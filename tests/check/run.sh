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
# saying why, when the homeserver file has become a FIFO or 12 MiB.
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
exit $(( fails > 0 ))
