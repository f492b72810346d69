#!/usr/bin/env bash
# tests/traffic/metrics.sh - the metrics section (docs/deployment.md "Metrics")
# through real HAProxy and stand-ins. A known mix: 7 incremental syncs, 3 media
# requests (main serves media here), 2 /messages that the stand-in answers 404,
# 1 profile request it answers 502, 1 typing request (the writer has no
# stand-in: HAProxy's own 503), 1 replication request (the frontend's 404).
#   generated             the Lua service is used in the metrics frontend only;
#                         every backend's first line is the tracking line
#   classes/requests      synroute_requests_total rose by exactly the mix, per
#                         class and the pool that answered (media -> main)
#   classes/errors        synroute_errors_total 4xx and 5xx rose exactly
#   classes/rate          synroute_requests_per_minute of sync is 7
#   classes/frontend-answers-not-counted  the frontend's own 404 reaches no pool
#   classes/format        HELP/TYPE lines for every name, synroute_info
#   exporter              /metrics is HAProxy's exporter: haproxy_backend_* for
#                         every pool, haproxy_server_* for their servers; the
#                         writer's 503 is in haproxy_backend_http_responses_total
#   not-admin-403         a scrape from 127.0.0.2 (not in admin_networks) gets 403,
#                         on both paths
#   unknown-path-404      another path on the metrics address is 404
#   dashboard-names       every metric name in the Grafana dashboard's queries
#                         (examples/monitoring) is one the scrape has
#   scrape-config         the Prometheus example scrapes both paths
T=traffic/metrics
source "$(dirname "$0")/lib.bash"
MLISTEN=127.0.0.1:22191
make_dep 2 "metrics: { listen: \"$MLISTEN\" }"

# The stand-ins answer 404 to ?gone=1 and 502 to ?broken=1 (else 200).
eval "orig_$(declare -f standin_part)"
standin_part() {
    orig_standin_part "$@" | awk '
        /^    http-request return status 200 / {
            print "    http-request return status 404 content-type application/json string \x27{\"errcode\":\"M_NOT_FOUND\",\"error\":\"gone\"}\x27 if { url_param(gone) -m found }"
            print "    http-request return status 502 content-type text/plain string \x27broken\x27 if { url_param(broken) -m found }"
        }
        { print }'
}

gen_cfg a
grep -q "^frontend synroute_metrics" "$tmp/a.cfg" || { fail setup "no metrics frontend in the generated config"; exit 1; }
# no Lua per request: the service appears only in the metrics frontend, and
# every backend (main, each pool) starts with the two tracking lines
where=$(awk '/^(frontend|backend|listen) / { px = $2 } /lua\.synroute_metrics/ { print px }' "$tmp/a.cfg" | sort -u)
untracked=$(awk '/^backend / { if (be != "" && !t) print be; be = $2; t = 0; first = 1; second = 0; next }
    first && NF { t = ($0 ~ /^    http-request set-var\(txn\.synroute_class\) var\(txn\.synroute\),field\(2,\|\)$/); first = 0; second = t; next }
    second && NF { t = ($0 ~ /^    http-request track-sc2 be_name,concat\(\|,txn\.synroute_class\) table synroute_classes$/); second = 0 }
    END { if (be != "" && !t) print be }' "$tmp/a.cfg" | grep -vE '^synroute_(classes|rate_)' | tr '\n' ' ')
check generated "$([ "$where" = synroute_metrics ] || echo "lua.synroute_metrics used in: $where;")$([ -z "$untracked" ] || echo "backends without the tracking line first: $untracked")"
start_standins
start_haproxy a
# (bounded; the 503 does not depend on it, only which of HAProxy's paths gives it)
wait_state a typing typing-1 DOWN || wait_state a typing typing-1 DOWN || wait_state a typing typing-1 DOWN ||
    fail setup "typing-1 is not DOWN"

scrape() { curl -s -m 5 "http://$MLISTEN$1"; }
# value of one series (exact labels) in a scrape file, 0 when absent
val() { awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }' "$1"; }

scrape /metrics/classes > "$tmp/before.txt"
mapfile -t tk < <(standin token alice bob carol dave erin frank gina)
R=/_matrix/client/v3/rooms/!r:example.org
for i in 0 1 2 3 4 5 6; do
    curl -s -o /dev/null -H "Authorization: Bearer ${tk[$i]}" "$base/_matrix/client/v3/sync?since=s$i"
done
for i in 1 2 3; do curl -s -o /dev/null "$base/_matrix/media/v3/download/example.org/m$i"; done
codes=""
for i in 1 2; do codes="$codes $(curl -s -o /dev/null -w '%{http_code}' "$base$R/messages?gone=1&n=$i")"; done
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${tk[0]}" "$base/_matrix/client/v3/profile/@u:example.org?broken=1")"
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{}' "$base$R/typing/@alice:example.org")"
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' "$base/_synapse/replication/x")"
[ "$codes" = " 404 404 502 503 404" ] || fail setup "the mix got$codes, want 404 404 502 503 404"
scrape /metrics/classes > "$tmp/after.txt"
[ -n "${METRICS_SAMPLE:-}" ] && cp "$tmp/after.txt" "$METRICS_SAMPLE"

delta() {   # series -> after - before
    echo $(( $(val "$tmp/after.txt" "$1") - $(val "$tmp/before.txt" "$1") ))
}
want() {   # series expected-delta -> message if different
    local d
    d=$(delta "$1")
    [ "$d" = "$2" ] || echo "$1 rose by $d, want $2;"
}
wants() {   # lines "series expected-delta" on stdin -> the messages of want
    local series n
    while read -r series n; do want "$series" "$n"; done
}
why=$(wants <<'EOF'
synroute_requests_total{class="sync",pool="sync"} 7
synroute_requests_total{class="media",pool="main"} 3
synroute_requests_total{class="messages",pool="messages"} 2
synroute_requests_total{class="event_send",pool="event_send"} 1
synroute_requests_total{class="typing",pool="typing"} 1
EOF
)
# every other series unchanged: the sum of all requests rose by exactly 14
total() { awk '$1 ~ /^synroute_requests_total\{/ { s += $2 } END { print s + 0 }' "$1"; }
d=$(( $(total "$tmp/after.txt") - $(total "$tmp/before.txt") ))
[ "$d" = 14 ] || why+="all requests rose by $d, want 14;"
check classes/requests "$why"

why=$(wants <<'EOF'
synroute_errors_total{class="messages",pool="messages",code="4xx"} 2
synroute_errors_total{class="event_send",pool="event_send",code="5xx"} 1
synroute_errors_total{class="sync",pool="sync",code="4xx"} 0
synroute_errors_total{class="sync",pool="sync",code="5xx"} 0
synroute_errors_total{class="media",pool="main",code="4xx"} 0
EOF
)
grep -q '^synroute_errors_total{class="sync",pool="sync",code="5xx"} 0$' "$tmp/after.txt" ||
    why+="no zero 5xx series for sync;"
check classes/errors "$why"

r=$(val "$tmp/after.txt" 'synroute_requests_per_minute{class="sync",pool="sync"}')
check classes/rate "$([ "$r" = 7 ] || echo "sync rate $r, want 7")"

check classes/frontend-answers-not-counted "$(grep -E 'class="(blocked|none)"' "$tmp/after.txt")"

why=""
for n in synroute_requests_total:counter synroute_errors_total:counter synroute_requests_per_minute:gauge synroute_info:gauge; do
    grep -q "^# TYPE ${n%%:*} ${n#*:}\$" "$tmp/after.txt" && grep -q "^# HELP ${n%%:*} ." "$tmp/after.txt" ||
        why+="no HELP/TYPE for $n;"
done
grep -qE '^synroute_info\{version="[^"]+",synapse="1\.157"\} 1$' "$tmp/after.txt" || why+="no synroute_info;"
bad=$(grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\} [0-9]+)$' "$tmp/after.txt" | head -2)
[ -z "$bad" ] || why+="malformed lines: $bad"
check classes/format "$why"

scrape /metrics > "$tmp/exporter.txt"
why=""
for p in main sync messages event_send typing initial_sync; do
    grep -q "^haproxy_backend_http_requests_total{proxy=\"$p\"} " "$tmp/exporter.txt" || why+="no backend series for $p;"
done
grep -q '^haproxy_server_status{proxy="sync",server="synchrotron-1",state="UP"} 1' "$tmp/exporter.txt" ||
    why+="no server status for synchrotron-1;"
n=$(val "$tmp/exporter.txt" 'haproxy_backend_http_responses_total{proxy="typing",code="5xx"}')
[ "$n" -ge 1 ] || why+="the writer's 503 is not in haproxy_backend_http_responses_total;"
check exporter "$why"

c1=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "http://$MLISTEN/metrics")
c2=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "http://$MLISTEN/metrics/classes")
b=$(curl -s --interface 127.0.0.2 "http://$MLISTEN/metrics/classes")
check not-admin-403 "$([ "$c1 $c2" = "403 403" ] && [ "$b" = "metrics are only served to admin_networks" ] ||
    echo "from 127.0.0.2: $c1 $c2 ($b), want 403 403")"
c=$(curl -s -o /dev/null -w '%{http_code}' "http://$MLISTEN/other")
check unknown-path-404 "$([ "$c" = 404 ] || echo "got $c")"

# The dashboard's queries use only names this scrape has (with the scopes the
# example scrape configuration asks for).
scrape "/metrics?scope=global&scope=frontend&scope=backend&scope=server" > "$tmp/scoped.txt"
cat "$tmp/scoped.txt" "$tmp/after.txt" | awk '$1 !~ /^#/ { sub(/\{.*/, "", $1); print $1 }' | sort -u > "$tmp/names.txt"
out=$(lua5.4 - "$root/examples/monitoring/grafana-dashboard.json" "$tmp/names.txt" 2>&1 <<'EOF' || echo "the dashboard check failed"
local cjson = require("cjson")
local f = assert(io.open(arg[1])); local dash = cjson.decode(f:read("a")); f:close()
local have = {}
for l in io.lines(arg[2]) do have[l] = true end
local exprs, used, missing = {}, {}, {}
local function walk(t)
    if type(t) ~= "table" then return end
    for k, v in pairs(t) do
        if (k == "expr" or k == "query") and type(v) == "string" then exprs[#exprs + 1] = v end
        walk(v)
    end
end
walk(dash)
for _, e in ipairs(exprs) do
    for n in e:gsub('"[^"]*"', '""'):gmatch("[%a_:][%w_:]*") do   -- names outside label values
        if n:match("^haproxy_") or n:match("^synroute_") then
            used[n] = true
            if not have[n] then missing[#missing + 1] = n end
        end
    end
end
local nused = 0
for _ in pairs(used) do nused = nused + 1 end
if #exprs == 0 or nused < 5 then print("only " .. #exprs .. " queries, " .. nused .. " names") end
if #missing > 0 then print("not in the scrape: " .. table.concat(missing, " ")) end
EOF
)
check dashboard-names "$out"

pc=$root/examples/monitoring/prometheus.yml
check scrape-config "$(grep -q 'metrics_path: /metrics$' "$pc" && grep -q 'metrics_path: /metrics/classes$' "$pc" || echo "$pc does not scrape /metrics and /metrics/classes")"
exit $((fails > 0))
