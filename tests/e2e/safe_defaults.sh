#!/usr/bin/env bash
# tests/e2e/safe_defaults.sh - the GENERATED config is safe when Lua is not.
# Takes examples/full/haproxy.cfg as `synroute haproxy` writes it, removes the
# converter call (what HAProxy does when the converter fails: no synroute var
# is set), and checks through real HAProxy and the stand-ins that
#   - replication and MAS-internal paths still get the Matrix 404 and reach
#     no process (the plain ACL, independent of Lua),
#   - everything else still reaches main (default_backend).
T=e2e/safe
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, stop_all, standin
port=22792

cfg=examples/full/haproxy.cfg
bind=$(sed -n 's/^ *bind \([^ ]*\)$/\1/p' "$cfg" | head -1)
grep -q 'lua\.synroute$' "$cfg" || { fail setup "no converter line in $cfg"; exit 1; }
# no converter call, and our own listening port
sed -e '/var(txn.synroute_in),lua\.synroute$/d' -e "s|^    bind $bind\$|    bind 127.0.0.1:$port|" "$cfg" > "$tmp/nolua.cfg"
if grep -q 'lua\.synroute$' "$tmp/nolua.cfg"; then fail setup "converter line still there"; exit 1; fi

standin config examples/full/synroute.yaml > "$tmp/standin.cfg" || { fail setup "standin config"; exit 1; }
mainport=$(sed -n 's/^ *server main [^ ]*:\([0-9]*\) check$/\1/p' "$cfg" | head -1)
if ss -Hltn 2>/dev/null | awk '{print $4}' | grep -qE ":($port|$mainport)\$"; then fail setup "ports $port/$mainport busy"; exit 1; fi
haproxy -db -f "$tmp/standin.cfg" > "$tmp/standin.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$mainport/health" && break; sleep 0.1; done
SYNROUTE_ROOT=$root haproxy -db -f "$tmp/nolua.cfg" > "$tmp/haproxy.log" 2>&1 & pids+=($!)
base=http://127.0.0.1:$port
for _ in $(seq 50); do curl -s -o /dev/null "$base/_matrix/client/versions" && break; sleep 0.1; done

while IFS='|' read -r name method target want; do
    [ -z "$name" ] && continue
    res=$(curl -s --max-time 5 -o "$tmp/body" -w '%{http_code} %header{x-worker}' -X "$method" --path-as-is "$base$target")
    code=${res%% *}; worker=${res#* }
    why=""
    if [ "$want" = 404 ]; then
        [ "$code" = 404 ] || why="status $code, want 404"
        [ -z "$worker" ] || why="${why:+$why; }reached worker '$worker'"
        grep -q M_UNRECOGNIZED "$tmp/body" || why="${why:+$why; }no Matrix JSON body"
    else
        [ "$code" = 200 ] && [ "$worker" = "$want" ] || why="status $code from '$worker', want 200 from $want"
    fi
    if [ -z "$why" ]; then ok "$name"; else fail "$name" "$why"; fi
done <<'CASES'
replication|POST|/_synapse/replication/send_event/x|404
replication_dotted|POST|//_synapse/./replication/send_event/x|404
replication_no_slash|GET|/_synapse/replication|404
mas_internal|POST|/_synapse/mas/sync_devices|404
sync_to_main|GET|/_matrix/client/v3/sync?since=s1|main
send_to_main|PUT|/_matrix/client/v3/rooms/!r:example.org/send/m.room.message/t1|main
federation_to_main|PUT|/_matrix/federation/v1/send/1|main
CASES
# the synroute vars really are unset in this run (the log line says so)
if grep -q 'class=- backend=-' "$tmp/haproxy.log"; then ok no-synroute-vars
else fail no-synroute-vars "expected log lines with class=- backend=- (converter removed): $(tail -2 "$tmp/haproxy.log" | tr '\n' ' ')"; fi
exit $(( fails > 0 ))
