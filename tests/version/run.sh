#!/usr/bin/env bash
# tests/version/run.sh - version-aware routes, end to end.
#
#   explain/*   tests/version/cases.tsv: per request, the class and backend
#               `synroute explain --config` gives under Synapse 1.65, 1.100 and
#               1.157 for examples/full's and examples/small's Synapse files
#               (tests/version/conf[-small]-<V>/synroute.yaml), with the reason
#               "served by workers since X" exactly where the table says
#   check/*     `synroute check` on those configs; an unknown synapse_version
#               (newer: warning, older than 1.60: problem) with file:line
#   docs/*      every release where routes.yaml's since/until changes a route
#               has a row in docs/routes.md's changelog; the routes suite
#               (tests/routes/test_routes.lua) is part of tests/run.sh
#   live/*      examples/full's Synapse files with ports moved to 226xx: one
#               HAProxy generated for Synapse 1.65, one for 1.157, the same
#               stand-in workers behind both; the same request reaches a
#               worker under one version and main (or another pool) under the
#               other, as explain says
#   probe/*     a stand-in main answering /_matrix/federation/v1/version:
#               `check --probe` reports the mismatch, `haproxy --probe` writes
#               what `--synapse-version 1.98` writes, and HAProxy started from
#               it routes as 1.98; newer/older/odd versions; probe failures
#               are clear errors with exit 1
#   unset/*     no synapse_version: `haproxy` asks main; a stand-in main that
#               reports 1.67.0 gives a config for 1.67 (header and setenv say
#               so) and HAProxy routes as 1.67; main unreachable gives the
#               conservative set, a warning naming what stays on main and how
#               to set the version, and HAProxy keeps the nine endpoints a 1.67
#               worker does not serve on main
#   unit/*      tests/version/test_probe.lua: version strings, release choice,
#               main's URL, --probe/--probe-url argument handling, the
#               conservative set
# Ports: 127.0.0.1:22600-22699 only. Every process is started here and stopped
# by PID (also on Ctrl-C). Prints "ok version/<what>" / "FAIL version/<what>: why".
T=version
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, stop_all, syn, standin, json_field
need_pkg lua-cjson || fail setup "lua-cjson (--probe decodes JSON with it) could not be installed"
versions=(1.65 1.100 1.157)

# ---------------------------------------------------------------------------
# unit: synroute.probe and the CLI's --probe arguments (no network)
lua5.4 tests/version/test_probe.lua || fails=$((fails+1))

# ---------------------------------------------------------------------------
# explain: the table
conf_of() {   # deployment version
    case $1 in
        full) echo "tests/version/conf-$2/synroute.yaml" ;;
        small) echo "tests/version/conf-small-$2/synroute.yaml" ;;
    esac
}
# the table's header must name the versions this script uses
hdr=$(grep -m1 '^#deployment' tests/version/cases.tsv | cut -f4-)
if [ "$hdr" = "$(IFS=$'\t'; echo "${versions[*]}")" ]; then ok "explain/header"
else fail "explain/header" "cases.tsv columns are '$hdr', want ${versions[*]}"; fi

n=0
while IFS=$'\t' read -r dep method target e1 e2 e3; do
    case $dep in ''|'#'*) continue ;; esac
    n=$((n+1))
    exps=("$e1" "$e2" "$e3")
    why=""
    for i in 0 1 2; do
        v=${versions[$i]} want=${exps[$i]}
        want_cls=${want%%:*} rest=${want#*:}
        want_be=${rest%%@*} want_since=""
        [ "$rest" != "$want_be" ] && want_since=${rest#*@}
        out=$(syn explain --config "$(conf_of "$dep" "$v")" "$method" "$target" 2>&1)
        cls=$(json_field class <<<"$out"); be=$(json_field backend <<<"$out"); reason=$(json_field reason <<<"$out")
        if [ "$cls" != "$want_cls" ] || [ "$be" != "$want_be" ]; then
            why="$why $v: got $cls:$be, want $want_cls:$want_be;"
        elif [ -n "$want_since" ] && [ "$reason" != "served by workers since $want_since" ]; then
            why="$why $v: reason '$reason', want 'served by workers since $want_since';"
        elif [ -z "$want_since" ] && [[ $reason == "served by workers since"* ]]; then
            why="$why $v: unexpected reason '$reason';"
        fi
    done
    if [ -z "$why" ]; then ok "explain/$dep $method $target"
    else fail "explain/$dep $method $target" "$why"; fi
done < tests/version/cases.tsv
[ "$n" -ge 40 ] && ok "explain/count ($n requests)" || fail "explain/count" "only $n requests in cases.tsv"

# --synapse-version overrides the config's synapse_version; reason for an old one
out=$(syn explain --synapse-version 1.60 --config tests/version/conf-1.157/synroute.yaml POST /_matrix/client/v3/user/@alice:example.org/filter)
if [[ $out == *'"backend":"main"'*'"reason":"served by workers since 1.79"'* ]]; then ok "explain/version-option"
else fail "explain/version-option" "$out"; fi

# ---------------------------------------------------------------------------
# check
for d in tests/version/conf-*/; do
    f=${d}synroute.yaml
    out=$(syn check "$f" 2>&1); rc=$?
    if [ "$rc" = 0 ] && ! grep -q 'synapse_version' <<<"$out"; then ok "check/${d#tests/version/}"
    else fail "check/${d#tests/version/}" "exit $rc: $(grep -m2 -E 'synapse_version|problem' <<<"$out" | tr '\n' ' ')"; fi
done

mkconf() {   # version-line (may be empty) -> file in $tmp
    local f="$tmp/conf-$2.yaml"
    { sed -n '1,/^synapse:/p' tests/version/conf-1.157/synroute.yaml
      echo "  homeserver: $root/examples/full/homeserver.yaml"
      echo "  workers: $root/examples/full/workers/*.yaml"
      [ -n "$1" ] && echo "$1"
      sed -n '/^listen:/,$p' tests/version/conf-1.157/synroute.yaml; } > "$f"
    echo "$f"
}
for v in 1.158 2.0; do
    f=$(mkconf "synapse_version: \"$v\"" "$v")
    line=$(grep -n '^synapse_version' "$f" | cut -d: -f1)
    out=$(syn check "$f" 2>&1); rc=$?
    if [ "$rc" = 0 ] && grep -q "^warning: $f:$line: .*$v.*newer than the newest release synroute knows (1.157)" <<<"$out"; then
        ok "check/unknown-newer-$v"
    else fail "check/unknown-newer-$v" "exit $rc: $(grep -m3 -E 'warning|problem|ok:' <<<"$out" | tr '\n' ' ')"; fi
done
for v in 1.50 1.59; do
    f=$(mkconf "synapse_version: \"$v\"" "$v")
    line=$(grep -n '^synapse_version' "$f" | cut -d: -f1)
    out=$(syn check "$f" 2>&1); rc=$?
    if [ "$rc" = 1 ] && grep -q "^$f:$line: .*$v.*older than the oldest release synroute knows (1.60)" <<<"$out"; then
        ok "check/unknown-older-$v"
    else fail "check/unknown-older-$v" "exit $rc: $(grep -m3 -vE '^  ' <<<"$out" | tr '\n' ' ')"; fi
done
# a pool that no route reaches at this version (the writer is newer)
out=$(syn check tests/version/conf-1.100/synroute.yaml 2>&1)
line=$(grep -n '^synapse_version' tests/version/conf-1.100/synroute.yaml | cut -d: -f1)
if grep -q "^warning: .*tests/version/conf-1.100/synroute.yaml:$line: no request goes to pool device_lists with Synapse 1.100 (workers serve device_lists requests since 1.135)" <<<"$out" \
   && grep -q "no request goes to pool push_rules with Synapse 1.100 (.* since 1.105)" <<<"$out" \
   && ! grep -q "no request goes to pool" < <(syn check tests/version/conf-1.157/synroute.yaml 2>&1); then
    ok "check/pool-unused-at-version"
else fail "check/pool-unused-at-version" "$(grep -m3 warning <<<"$out" | tr '\n' ' ')"; fi
# ---------------------------------------------------------------------------
# docs: the changelog names every release where a route changes
missing=$(lua5.4 - <<'EOF'
local routes = require("synroute.routes")
local doc = assert(routes.load("routes/routes.yaml"))
local f = assert(io.open("docs/routes.md")); local md = f:read("a"); f:close()
local rows = {}
for rel in md:gmatch("\n| (1%.%d+) |") do rows[rel] = true end
local want = {}
for i, v in ipairs(doc.synapse_versions) do
    for _, e in ipairs(doc.routes) do
        if (e.since == v and v ~= doc.oldest) then want[v] = (want[v] or "") .. " +" .. e.id end
        if e["until"] and doc.synapse_versions[i - 1] == e["until"] then want[v] = (want[v] or "") .. " -" .. e.id end
    end
end
local out = {}
for _, v in ipairs(doc.synapse_versions) do
    if want[v] and not rows[v] then out[#out + 1] = v .. ":" .. want[v] end
end
print(table.concat(out, "; "))
EOF
)
if [ -z "$missing" ]; then ok "docs/changelog-covers-routes.yaml"
else fail "docs/changelog-covers-routes.yaml" "no changelog row for $missing"; fi
# the "By route id" table is exactly what routes.yaml says
want=$(lua5.4 tests/version/changelog.lua)
have=$(sed -n '/^### By route id/,$p' docs/routes.md | sed -n '/^| release/,/^$/p' | sed '/^$/d')
if [ -n "$want" ] && [ "$want" = "$have" ]; then ok "docs/changelog-by-route-id"
else fail "docs/changelog-by-route-id" "docs/routes.md differs from tests/version/changelog.lua: $(diff <(echo "$have") <(echo "$want") | head -4 | tr '\n' ' ')"; fi
if grep -q '^run_suite routes *lua5.4 tests/routes/test_routes.lua' tests/run.sh; then ok "docs/routes-suite-in-runner"
else fail "docs/routes-suite-in-runner" "tests/run.sh does not run tests/routes/test_routes.lua"; fi
if grep -q '^## Choosing the version' docs/routes.md; then ok "docs/choosing-the-version"
else fail "docs/choosing-the-version" "docs/routes.md has no section 'Choosing the version'"; fi

# ---------------------------------------------------------------------------
# live: the same Synapse files, HAProxy for 1.65 and for 1.157
live=$tmp/live
mkdir -p "$live"
cp -R examples/full/homeserver.yaml examples/full/workers examples/full/appservices "$live/"
# examples/full listens on 240xx; move every port to 226xx (22620-22672)
sed -i 's/\b240\([0-9][0-9]\)\b/226\1/g' "$live/homeserver.yaml" "$live"/workers/*.yaml "$live"/appservices/*.yaml
if grep -rqE '\b2[0-9]{4}\b' "$live" && grep -rhoE '\b2[0-9]{4}\b' "$live" | grep -vqE '^226[0-9][0-9]$'; then
    fail "live/ports" "a port outside 22600-22699 is left: $(grep -rhoE '\b2[0-9]{4}\b' "$live" | grep -vE '^226' | head -3 | tr '\n' ' ')"
fi
mk_live() {   # name version listen-port
    { echo "# examples/full's Synapse on 226xx, routed for Synapse $2 (tests/version/run.sh)"
      echo "synapse:"
      echo "  homeserver: homeserver.yaml"
      echo "  workers: workers/*.yaml"
      echo "synapse_version: \"$2\""
      echo "listen: 127.0.0.1:$3"
      sed -n '/^hash_secret:/,$p' tests/version/conf-1.157/synroute.yaml; } > "$live/$1.yaml"
}
mk_live old 1.65 22690
mk_live new 1.157 22691

busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ':226[0-9][0-9]$' | head -3 | tr '\n' ' ')
[ -n "$busy" ] && fail "live/ports" "ports busy: $busy"

start_haproxy() {   # cfg log probe-url -> sets $hpid, returns 0 when the URL answers
    local attempt
    for attempt in 1 2 3 4 5; do
        haproxy -db -f "$1" > "$2" 2>&1 &
        hpid=$!
        for _ in $(seq 50); do
            curl -s -o /dev/null "$3" && return 0
            kill -0 $hpid 2>/dev/null || break
            sleep 0.1
        done
        kill -0 $hpid 2>/dev/null && { pids+=($hpid); return 1; }
        sleep 1   # bind failed (a port briefly in use): retry
    done
    return 1
}

standin config "$live/new.yaml" > "$live/standin.cfg"
standin servers "$live/new.yaml" > "$live/servers"
# main also answers the version request, as Synapse 1.98.0 would; extra
# frontends answer other version strings for the probe tests
awk '
    { print }
    /^ *bind 127\.0\.0\.1:22620$/ {
        print "    http-request return status 200 content-type application/json string '"'"'{\"server\":{\"name\":\"Synapse\",\"version\":\"1.98.0\"}}'"'"' if { path /_matrix/federation/v1/version }"
    }' "$live/standin.cfg" > "$live/standin2.cfg"
vfront() {   # port body [path-condition]
    printf 'frontend probe_%s\n    bind 127.0.0.1:%s\n' "$1" "$1"
    printf "    http-request return status 200 content-type application/json string '%s' if { path %s }\n" "$2" "${3:-/_matrix/federation/v1/version}"
    printf '    http-request return status 404 content-type application/json string %s\n\n' "'{\"errcode\":\"M_UNRECOGNIZED\"}'"
}
{ cat "$live/standin2.cfg"; echo
  vfront 22680 '{"server":{"name":"Synapse","version":"1.160.0"}}'
  vfront 22681 '{"server":{"name":"Synapse","version":"1.50.3"}}'
  vfront 22682 '{"server":{"name":"Synapse","version":"1.157.0 (b=matrix-org-hotfixes,abc1234)"}}'
  vfront 22683 '{"server_version":"1.121.1"}' /_synapse/admin/v1/server_version
  vfront 22684 'this is not json'
  vfront 22685 '{"server":{"name":"Synapse","version":"1.98.0rc1"}}'
  # a main process that is Synapse 1.67.0 (for the unset/* tests)
  printf 'frontend main67\n    bind 127.0.0.1:22686\n'
  printf "    http-request return status 200 content-type application/json string '%s' if { path /_matrix/federation/v1/version }\n" \
      '{"server":{"name":"Synapse","version":"1.67.0"}}'
  printf "    http-request return status 200 content-type application/json hdr X-Worker main string '{\"worker\":\"main\"}'\n\n"
} > "$live/standin3.cfg"
if ! start_haproxy "$live/standin3.cfg" "$live/standin.log" http://127.0.0.1:22620/health; then
    fail "live/standins" "stand-ins did not start: $(head -3 "$live/standin.log" | tr '\n' ' ')"
    exit 1
fi
pids+=($hpid)

live_ok=1
for which in old new; do
    if ! syn haproxy "$live/$which.yaml" -o "$live/$which.cfg" 2>"$live/$which.gen.err"; then
        fail "live/generate-$which" "$(head -3 "$live/$which.gen.err" | tr '\n' ' ')"; live_ok=0; continue
    fi
    port=$([ $which = old ] && echo 22690 || echo 22691)
    if start_haproxy "$live/$which.cfg" "$live/$which.log" "http://127.0.0.1:$port/_matrix/client/versions"; then
        pids+=($hpid); eval "pid_$which=$hpid"; ok "live/start-$which"
    else
        fail "live/start-$which" "$(grep -m3 -E 'ALERT|error' "$live/$which.log" | tr '\n' ' ')"; live_ok=0
    fi
done

alice=$(standin token alice)
# worker of a backend? (main is main; a pool's active or backup server)
worker_in() {   # backend worker
    [ "$1" = main ] && { [ "$2" = main ]; return; }
    awk -F'\t' -v p="$1" -v w="$2" '$1 == p && $2 == w { f = 1 } END { exit !f }' "$live/servers"
}
# name | method | target | backend under 1.65 | backend under 1.157
LIVE_CASES="
filter|POST|/_matrix/client/v3/user/@alice:example.org/filter|main|client
device_get|GET|/_matrix/client/v3/devices/X|main|device_lists
keys_upload|POST|/_matrix/client/v3/keys/upload|encryption|device_lists
media_v1|GET|/_matrix/client/v1/media/download/example.org/abc|main|media
relations|GET|/_matrix/client/v1/rooms/!r1:example.org/relations/\$ev1|main|client
pushrules_put|PUT|/_matrix/client/v3/pushrules/global/override/x|main|push_rules
thread_sub|PUT|/_matrix/client/unstable/io.element.msc4306/rooms/!r1:example.org/thread/\$ev1/subscription|main|thread_subscriptions
sliding_sync|POST|/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=3|main|sync
account_data_put|PUT|/_matrix/client/v3/user/@alice:example.org/account_data/x|account_data|account_data
sync|GET|/_matrix/client/v3/sync?since=s1|sync|sync
"
request() {   # port method target -> "status worker"
    local h
    h=$(curl -s -o /dev/null -D - -m 10 -X "$2" -H "Authorization: Bearer $alice" \
        ${4:+-d "$4"} "http://127.0.0.1:$1$3" | tr -d '\r')
    echo "$(awk 'NR==1{print $2}' <<<"$h") $(sed -n 's/^[Xx]-[Ww]orker: //p' <<<"$h")"
}
if [ "$live_ok" = 1 ]; then
    while IFS='|' read -r name method target want_old want_new; do
        [ -z "$name" ] && continue
        why=""
        for which in old new; do
            if [ $which = old ]; then want=$want_old port=22690 v=1.65; else want=$want_new port=22691 v=1.157; fi
            exp=$(syn explain --config "$live/$which.yaml" "$method" "$target" -H "Authorization: Bearer $alice" | json_field backend)
            read -r status worker <<<"$(request $port "$method" "$target")"
            if [ "$exp" != "$want" ]; then why="$why $v: explain says $exp, want $want;"
            elif [ "$status" != 200 ] || ! worker_in "$want" "$worker"; then
                why="$why $v: answered by '${worker:-nobody}' (HTTP $status), not a server of $want;"
            fi
        done
        if [ -z "$why" ]; then ok "live/$name (1.65: $want_old, 1.157: $want_new)"
        else fail "live/$name" "$why"; fi
    done <<<"$LIVE_CASES"
    # the log line of each HAProxy names the version it routes for
    grep -q 'Synapse 1.65,' "$live/old.log" && grep -q 'Synapse 1.157,' "$live/new.log" \
        && ok "live/haproxy-log-names-version" \
        || fail "live/haproxy-log-names-version" "$(grep -h -m1 'synroute' "$live/old.log" "$live/new.log" | tr '\n' ' ')"
    for which in old new; do eval "p=\${pid_$which:-}"; [ -n "$p" ] && stop_pid "$p"; done
fi

# ---------------------------------------------------------------------------
# probe
out=$(syn check "$live/new.yaml" --probe 2>&1); rc=$?
line=$(grep -n '^synapse_version' "$live/new.yaml" | cut -d: -f1)
if [ "$rc" = 0 ] && grep -q "^warning: $live/new.yaml:$line: synapse_version is 1.157 but the running Synapse (http://127.0.0.1:22620/_matrix/federation/v1/version) is 1.98.0" <<<"$out"; then
    ok "probe/check-reports-mismatch"
else fail "probe/check-reports-mismatch" "exit $rc: $(head -5 <<<"$out" | tr '\n' ' ')"; fi
out=$(syn check "$live/old.yaml" --probe --probe-url http://127.0.0.1:22682/_matrix/federation/v1/version 2>&1); rc=$?
if [ "$rc" = 0 ] && grep -q '1.157.0 (b=matrix-org-hotfixes,abc1234) (routes of 1.157)' <<<"$out" \
   && grep -q "synapse_version is 1.65 but the running Synapse .* is 1.157.0" <<<"$out"; then ok "probe/hotfix-version-string"
else fail "probe/hotfix-version-string" "exit $rc: $(head -4 <<<"$out" | tr '\n' ' ')"; fi
out=$(syn check "$live/new.yaml" --probe-url http://127.0.0.1:22685/_matrix/federation/v1/version 2>&1); rc=$?
if [ "$rc" = 0 ] && grep -q 'reports Synapse 1.98.0rc1 (routes of 1.98)' <<<"$out"; then ok "probe/rc-version-string"
else fail "probe/rc-version-string" "exit $rc: $(head -4 <<<"$out" | tr '\n' ' ')"; fi
# a matching version: no warning
sed 's/^synapse_version:.*/synapse_version: "1.98"/' "$live/new.yaml" > "$live/v198.yaml"
out=$(syn check "$live/v198.yaml" --probe 2>&1); rc=$?
if [ "$rc" = 0 ] && ! grep -q '^warning:.*synapse_version' <<<"$out"; then ok "probe/check-match-no-warning"
else fail "probe/check-match-no-warning" "exit $rc: $(grep -m2 warning <<<"$out" | tr '\n' ' ')"; fi

# haproxy --probe == haproxy --synapse-version 1.98
# (both written to the same -o path: the header records the command)
same_but_source() {   # two configs equal but for the lines that say where the release came from
    cmp -s <(grep -v -e '^# Synapse: ' -e 'the Synapse release the Lua side routes for' "$1") \
           <(grep -v -e '^# Synapse: ' -e 'the Synapse release the Lua side routes for' "$2")
}
gen() {   # out-file args... : synroute haproxy ARGS -o $live/gen.cfg, then rename
    local f=$1; shift
    rm -f "$live/gen.cfg"
    syn haproxy "$@" -o "$live/gen.cfg" && mv "$live/gen.cfg" "$f"
}
if gen "$live/probed.cfg" "$live/new.yaml" --probe 2>"$live/probed.err" \
   && gen "$live/v198.cfg" "$live/new.yaml" --synapse-version 1.98 2>"$live/v198.err"; then
    # the same but for where the release came from (header and setenv comment)
    if same_but_source "$live/probed.cfg" "$live/v198.cfg" \
       && grep -q '^# Synapse: 1.98 (probed from http://127.0.0.1:22620/_matrix/federation/v1/version (Synapse 1.98.0))$' "$live/probed.cfg" \
       && grep -q '^# Synapse: 1.98 (--synapse-version)$' "$live/v198.cfg"; then ok "probe/haproxy-equals-synapse-version"
    else fail "probe/haproxy-equals-synapse-version" "$(diff "$live/v198.cfg" "$live/probed.cfg" | head -6 | tr '\n' ' ')"; fi
    if grep -q "synapse_version is 1.157 but the running Synapse .* is 1.98.0" "$live/probed.err"; then ok "probe/haproxy-reports-mismatch"
    else fail "probe/haproxy-reports-mismatch" "$(head -3 "$live/probed.err" | tr '\n' ' ')"; fi
    gen "$live/new157.cfg" "$live/new.yaml" 2>/dev/null
    if cmp -s "$live/probed.cfg" "$live/new157.cfg"; then
        fail "probe/haproxy-differs-from-configured" "the probed config is the same as the one for 1.157"
    else ok "probe/haproxy-differs-from-configured"; fi
    # HAProxy started from the probed config routes as Synapse 1.98
    if start_haproxy "$live/probed.cfg" "$live/probed.log" "http://127.0.0.1:22691/_matrix/client/versions"; then
        pids+=($hpid)
        why=""
        for c in "POST /_matrix/client/v3/user/@alice:example.org/filter client" \
                 "GET /_matrix/client/v3/devices/X main" \
                 "POST /_matrix/client/v3/keys/upload encryption" \
                 "PUT /_matrix/client/v3/pushrules/global/override/x main"; do
            set -- $c
            read -r status worker <<<"$(request 22691 "$1" "$2")"
            worker_in "$3" "$worker" || why="$why $1 $2: answered by '${worker:-nobody}', want $3;"
        done
        [ -z "$why" ] && ok "probe/haproxy-routes-as-1.98" || fail "probe/haproxy-routes-as-1.98" "$why"
        stop_pid "$hpid"
    else
        fail "probe/haproxy-routes-as-1.98" "HAProxy did not start: $(grep -m3 -E 'ALERT|error' "$live/probed.log" | tr '\n' ' ')"
    fi
else
    fail "probe/haproxy-equals-synapse-version" "$(head -3 "$live/probed.err" "$live/v198.err" 2>/dev/null | tr '\n' ' ')"
fi

# newer than known: the newest, with a warning; same config as --synapse-version 1.157
if gen "$live/p160.cfg" "$live/old.yaml" --probe-url http://127.0.0.1:22680/_matrix/federation/v1/version 2>"$live/p160.err" \
   && gen "$live/v157.cfg" "$live/old.yaml" --synapse-version 1.157 2>/dev/null \
   && same_but_source "$live/p160.cfg" "$live/v157.cfg" \
   && grep -q 'warning: probe: Synapse 1.160 is newer than the newest release synroute knows (1.157): using the routes of 1.157' "$live/p160.err"; then
    ok "probe/newer-uses-newest"
else fail "probe/newer-uses-newest" "$(head -4 "$live/p160.err" | tr '\n' ' ')"; fi
# older than 1.60: error
out=$(syn haproxy "$live/new.yaml" --probe-url http://127.0.0.1:22681/_matrix/federation/v1/version -o "$live/p150.cfg" 2>&1); rc=$?
if [ "$rc" = 1 ] && [ ! -s "$live/p150.cfg" ] && grep -q '1.50.3.*older than the oldest release synroute knows (1.60)' <<<"$out"; then ok "probe/older-is-error"
else fail "probe/older-is-error" "exit $rc: $out"; fi
# nothing listening: clear error, exit 1
out=$(syn check "$live/new.yaml" --probe-url http://127.0.0.1:22699/_matrix/federation/v1/version 2>&1); rc=$?
if [ "$rc" = 1 ] && grep -q "^$live/new.yaml:1: --probe: cannot read the Synapse version from http://127.0.0.1:22699/_matrix/federation/v1/version: .*onnect" <<<"$out"; then
    ok "probe/nothing-listening"
else fail "probe/nothing-listening" "exit $rc: $out"; fi
sed 's/^listen:.*/listen: 127.0.0.1:22698/' "$live/new.yaml" > "$live/down.yaml"
sed -i 's/\b22620\b/22699/' "$live/homeserver.yaml"
out=$(syn haproxy "$live/down.yaml" --probe -o "$live/down.cfg" 2>&1); rc=$?
sed -i 's/\b22699\b/22620/' "$live/homeserver.yaml"
if [ "$rc" = 1 ] && [ ! -s "$live/down.cfg" ] && grep -q "^synroute haproxy: --probe: cannot read the Synapse version from http://127.0.0.1:22699/_matrix/federation/v1/version" <<<"$out"; then
    ok "probe/main-down"
else fail "probe/main-down" "exit $rc: $out"; fi
# not JSON: clear error
out=$(syn check "$live/new.yaml" --probe-url http://127.0.0.1:22684/_matrix/federation/v1/version 2>&1); rc=$?
if [ "$rc" = 1 ] && grep -q 'not JSON' <<<"$out"; then ok "probe/not-json"
else fail "probe/not-json" "exit $rc: $out"; fi
# main's listener without federation: the admin server_version endpoint
out=$(lua5.4 -e 'local p = require("synroute.probe")
local r, err = p.version({ main = { host = "127.0.0.1", port = 22683 } })
print(r and (r.release .. " " .. r.raw .. " " .. r.url) or ("error: " .. err))')
if [ "$out" = "1.121 1.121.1 http://127.0.0.1:22683/_synapse/admin/v1/server_version" ]; then ok "probe/admin-fallback"
else fail "probe/admin-fallback" "$out"; fi
# ---------------------------------------------------------------------------
# unset: no synapse_version anywhere; main is asked, or the conservative set
sed 's/\b22620\b/22686/' "$live/homeserver.yaml" > "$live/hs67.yaml"     # main = the 1.67.0 stand-in
sed 's/\b22620\b/22697/' "$live/homeserver.yaml" > "$live/hsdown.yaml"   # main not running (yet)
mk_unset() {   # name homeserver listen-port
    { echo "# examples/full's Synapse on 226xx, no synapse_version (tests/version/run.sh)"
      echo "synapse:"
      echo "  homeserver: $2"
      echo "  workers: workers/*.yaml"
      echo "listen: 127.0.0.1:$3"
      sed -n '/^hash_secret:/,$p' tests/version/conf-1.157/synroute.yaml; } > "$live/$1.yaml"
}
mk_unset u67 hs67.yaml 22692
mk_unset udown hsdown.yaml 22693
# the nine requests that a 1.67 worker answers with M_UNRECOGNIZED (or an HTML
# 404): they must reach main both for a probed 1.67 and when the release is unknown
NINE="
POST /_matrix/client/v3/user/@alice:example.org/filter
GET /_matrix/client/v3/user/@alice:example.org/filter/1
GET /_matrix/client/v3/capabilities
GET /_matrix/client/v3/register/available?username=bob
GET /_matrix/client/v3/notifications
GET /_matrix/client/v3/directory/room/%23a:example.org
PUT /_matrix/client/v3/directory/room/%23a:example.org
GET /_matrix/client/v1/rooms/!r1:example.org/relations/\$ev1
GET /_synapse/admin/v2/users/@alice:example.org
"
routes_like() {   # port "METHOD TARGET WANT"... -> "" or what differs
    local port=$1 why="" m t w status worker; shift
    for c in "$@"; do
        read -r m t w <<<"$c"
        read -r status worker <<<"$(request "$port" "$m" "$t")"
        worker_in "$w" "$worker" || why="$why $m $t: answered by '${worker:-nobody}' (HTTP $status), want $w;"
    done
    echo "$why"
}
nine_main=()
while read -r m t; do [ -n "$m" ] && nine_main+=("$m $t main"); done <<<"$NINE"

# (a) main reports 1.67.0: the config is for 1.67 and says where that came from
if syn haproxy "$live/u67.yaml" -o "$live/u67.cfg" 2>"$live/u67.err"; then
    if grep -qx '# Synapse: 1.67 (probed from http://127.0.0.1:22686/_matrix/federation/v1/version (Synapse 1.67.0))' "$live/u67.cfg" \
       && grep -qx '    setenv SYNROUTE_SYNAPSE_VERSION "1.67"' "$live/u67.cfg" \
       && grep -q 'synapse_version is not set; the running Synapse is 1.67.0: using 1.67' "$live/u67.err"; then
        ok "unset/probed-1.67-header"
    else fail "unset/probed-1.67-header" "$(grep -m2 -e '^# Synapse' -e SYNAPSE_VERSION "$live/u67.cfg" | tr '\n' ' ') $(head -2 "$live/u67.err" | tr '\n' ' ')"; fi
    if start_haproxy "$live/u67.cfg" "$live/u67.log" "http://127.0.0.1:22692/_matrix/client/versions"; then
        pids+=($hpid)
        why=$(routes_like 22692 "${nine_main[@]}" \
            "GET /_matrix/client/v3/sync?since=s1 sync" \
            "PUT /_matrix/client/v3/user/@alice:example.org/account_data/x account_data" \
            "POST /_matrix/client/v3/keys/upload encryption")
        [ -z "$why" ] && ok "unset/probed-1.67-routes (the nine on main; account_data, keys/upload on 1.67's workers)" \
            || fail "unset/probed-1.67-routes" "$why"
        grep -q 'Synapse 1.67,' "$live/u67.log" && ok "unset/probed-1.67-log" \
            || fail "unset/probed-1.67-log" "$(grep -m1 synroute "$live/u67.log")"
        stop_pid "$hpid"
    else fail "unset/probed-1.67-routes" "HAProxy did not start: $(grep -m3 -E 'ALERT|error' "$live/u67.log" | tr '\n' ' ')"; fi
else fail "unset/probed-1.67-header" "$(head -3 "$live/u67.err" | tr '\n' ' ')"; fi
out=$(syn check "$live/u67.yaml" 2>&1); rc=$?
if [ "$rc" = 0 ] && grep -q '^probe: http://127.0.0.1:22686/_matrix/federation/v1/version reports Synapse 1.67.0 (routes of 1.67)' <<<"$out"; then
    ok "unset/check-probes"
else fail "unset/check-probes" "exit $rc: $(head -3 <<<"$out" | tr '\n' ' ')"; fi

# (b) main unreachable: conservative set, a warning, a header that says so
if syn haproxy "$live/udown.yaml" -o "$live/udown.cfg" 2>"$live/udown.err"; then
    if grep -qx '# Synapse: routes that every release serves on workers (conservative: unknown, no answer from http://127.0.0.1:22697/_matrix/federation/v1/version)' "$live/udown.cfg" \
       && grep -qx '    setenv SYNROUTE_SYNAPSE_VERSION "conservative"' "$live/udown.cfg"; then
        ok "unset/conservative-header"
    else fail "unset/conservative-header" "$(grep -m2 -e '^# Synapse' -e SYNAPSE_VERSION "$live/udown.cfg" | tr '\n' ' ')"; fi
    w=$(cat "$live/udown.err")
    if grep -q "^warning: $live/udown.yaml:1: synapse_version is not set and the running Synapse could not be asked" <<<"$w" \
       && grep -q '^  These routes stay on main' <<<"$w" \
       && grep -qE '^    client \([0-9]+\): .*room_relations' <<<"$w" \
       && grep -qE '^    device_lists \([0-9]+\): ' <<<"$w" \
       && grep -q '^  Set the version: synapse_version: "1.NN" in ' <<<"$w" \
       && [ "$(grep -c '' <<<"$w")" -lt 30 ]; then ok "unset/conservative-warning ($(grep -c '^    ' <<<"$w") pools listed)"
    else fail "unset/conservative-warning" "$(head -c 600 <<<"$w")"; fi
    # main comes up after the config was written: a stand-in on 22697
    printf 'defaults\n    mode http\n    timeout client 5s\n    timeout server 5s\n    timeout connect 2s\nfrontend m\n    bind 127.0.0.1:22697\n    http-request return status 200 content-type application/json hdr X-Worker main string ok\n' > "$live/main97.cfg"
    if start_haproxy "$live/main97.cfg" "$live/main97.log" http://127.0.0.1:22697/health; then pids+=($hpid); m97=$hpid; fi
    if start_haproxy "$live/udown.cfg" "$live/udown.log" "http://127.0.0.1:22693/_matrix/client/versions"; then
        pids+=($hpid)
        why=$(routes_like 22693 "${nine_main[@]}" \
            "GET /_matrix/client/v3/sync?since=s1 sync" \
            "POST /_matrix/client/v3/keys/query encryption" \
            "PUT /_matrix/client/v3/user/@alice:example.org/account_data/x main" \
            "POST /_matrix/client/v3/keys/upload main")
        [ -z "$why" ] && ok "unset/conservative-routes (the nine on main; sync, keys/query on workers)" \
            || fail "unset/conservative-routes" "$why"
        grep -q 'Synapse release unknown (only routes every release serves on workers)' "$live/udown.log" \
            && ok "unset/conservative-log" || fail "unset/conservative-log" "$(grep -m1 synroute "$live/udown.log")"
        stop_pid "$hpid"
    else fail "unset/conservative-routes" "HAProxy did not start: $(grep -m3 -E 'ALERT|error' "$live/udown.log" | tr '\n' ' ')"; fi
    [ -n "${m97:-}" ] && stop_pid "$m97"
else fail "unset/conservative-header" "$(head -3 "$live/udown.err" | tr '\n' ' ')"; fi
# the same for check (exit 0: a warning), and explain agrees with HAProxy
out=$(syn check "$live/udown.yaml" 2>&1); rc=$?
e=$(syn explain --config "$live/udown.yaml" GET /_matrix/client/v3/capabilities 2>/dev/null | json_field backend)
if [ "$rc" = 0 ] && grep -q 'routing conservatively' <<<"$out" && [ "$e" = main ]; then ok "unset/check-conservative"
else fail "unset/check-conservative" "exit $rc, explain $e: $(head -2 <<<"$out" | tr '\n' ' ')"; fi

# usage: --probe with --synapse-version
out=$(syn haproxy "$live/new.yaml" --probe --synapse-version 1.98 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q 'either --probe or --synapse-version' <<<"$out" && ok "probe/usage-conflict" \
    || fail "probe/usage-conflict" "exit $rc: $(head -2 <<<"$out" | tr '\n' ' ')"

stop_all
[ "$fails" -eq 0 ]
