#!/usr/bin/env bash
# tests/e2e/probes.sh - hostile request targets against examples/full, sent
# byte-exact from a non-admin address (127.0.0.2), through real HAProxy and
# the stand-ins:
#   - every probe ends in HAProxy's own 400/403/404/405 with a Matrix JSON
#     body and reaches no process (no X-Worker), and `synroute explain
#     --src 127.0.0.2` names the same status;
#   - the same with the converter removed (what HAProxy does when Lua
#     fails): the plain ACLs alone hold;
#   - real requests with odd but legal targets (encoded aliases with %2F,
#     an invalid escape in the query) still reach an active server of the
#     pool explain names.
# docs/request-targets.md says what the frontend does with each kind.
T=e2e/probes
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, stop_all, syn, standin
port=22794; nolua_port=22795
cfg=examples/full/haproxy.cfg
conf=examples/full/synroute.yaml
bind=$(sed -n 's/^ *bind \([^ ]*\)$/\1/p' "$cfg" | head -1)
grep -q 'lua\.synroute$' "$cfg" || { fail setup "no converter line in $cfg"; exit 1; }
sed -e "s|^    bind $bind\$|    bind 127.0.0.1:$port|" -e '/^    stats socket/d' "$cfg" > "$tmp/full.cfg"
sed -e '/var(txn.synroute_in),lua\.synroute$/d' "$tmp/full.cfg" |
    sed -e "s|^    bind 127.0.0.1:$port\$|    bind 127.0.0.1:$nolua_port|" > "$tmp/nolua.cfg"
if grep -q 'lua\.synroute$' "$tmp/nolua.cfg"; then fail setup "converter line still there"; exit 1; fi

standin config "$conf" > "$tmp/standin.cfg" || { fail setup "standin config"; exit 1; }
standin servers "$conf" > "$tmp/servers" || { fail setup "standin servers"; exit 1; }
mainport=$(sed -n 's/^ *server main [^ ]*:\([0-9]*\) check$/\1/p' "$cfg" | head -1)
for p in $port $nolua_port $mainport; do
    port_busy "$p" && { fail setup "127.0.0.1:$p is already in use"; exit 1; }
done
haproxy -db -f "$tmp/standin.cfg" > "$tmp/standin.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$mainport/health" && break; sleep 0.1; done
haproxy -db -f "$tmp/full.cfg" > "$tmp/haproxy.log" 2>&1 & pids+=($!)
haproxy -db -f "$tmp/nolua.cfg" > "$tmp/nolua.log" 2>&1 & pids+=($!)
for p in $port $nolua_port; do
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$p/_matrix/client/versions" && break; sleep 0.1; done
done

# send PORT METHOD TARGET [AUTH] -> "status worker" (body in $tmp/body), from 127.0.0.2
send() {
    local p=$1 method=$2 target=$3 auth=${4:-} url host
    local -a o=(-s --max-time 5 --interface 127.0.0.2 --path-as-is -o "$tmp/body" -w '%{http_code} %header{x-worker}' -X "$method")
    [ -n "$auth" ] && o+=(-H "Authorization: $auth")
    case $target in
        http://*) host=${target#http://}; host=${host%%/*}
                  o+=(-H "Host: $host" --request-target "$target"); url="http://127.0.0.1:$p/" ;;
        /*) url="http://127.0.0.1:$p$target" ;;
        *) o+=(-H "Host: $target" --request-target "$target"); url="http://127.0.0.1:$p/" ;;
    esac
    curl "${o[@]}" "$url"
}

# name|method|target: every one must be answered by HAProxy itself
while IFS='|' read -r name method target; do
    [ -z "$name" ] && continue
    want=$(syn explain --config "$conf" --src 127.0.0.2 "$method" "$target" 2>&1 | sed -n 's/.*"answer":\([0-9]*\).*/\1/p')
    for p in $port $nolua_port; do
        label=$name; [ "$p" = "$nolua_port" ] && label=$name/nolua
        res=$(send "$p" "$method" "$target"); code=${res%% *}; worker=${res#* }
        why=""
        case $code in 400|403|404|405) ;; *) why="status $code, want HAProxy's 400/403/404/405" ;; esac
        [ -z "$worker" ] || why="${why:+$why; }reached worker '$worker'"
        grep -q '"errcode":"M_' "$tmp/body" || why="${why:+$why; }no Matrix JSON body"
        [ "$code" = "$want" ] || why="${why:+$why; }explain says ${want:-no answer (routed)}, HAProxy $code"
        check "$label" "$why"
    done
done <<'PROBES'
dotdot_admin|GET|/_matrix/%2e%2e/_synapse/admin/v1/rooms
dotdot_admin_upper|GET|/_matrix/%2E%2E/_synapse/admin/v1/rooms
dotdot_admin_mixed|GET|/_matrix/%2e%2E/_synapse/admin/v1/rooms
dotdot_admin_half|GET|/_matrix/.%2e/_synapse/admin/v1/rooms
dotdot_admin_half2|GET|/_matrix/%2E./_synapse/admin/v1/rooms
dotdot_admin_deep|GET|/_matrix/client/%2e%2e/%2e%2e/_synapse/%2e/admin/v1/rooms
dotdot_admin_lead|GET|/%2e%2e/_synapse/admin/v1/rooms
dotdot_admin_plain|GET|/_matrix/../_synapse/admin/v1/rooms
dot_admin|GET|/_synapse/./admin/v1/rooms
slashes_admin|GET|//_synapse//admin/v1/rooms
escaped_admin|GET|/_synapse/%61dmin/v1/rooms
double_encoded_dot|GET|/_matrix/%252e%252e/_synapse/admin/v1/rooms
double_encoded_dot_upper|POST|/_matrix/%252E%252E/_synapse/replication/send_event/x
overlong_dot|GET|/_matrix/%c0%ae%c0%ae/_synapse/admin/v1/rooms
overlong_dot3|GET|/_matrix/%e0%80%ae%e0%80%ae/_synapse/admin/v1/rooms
overlong_slash|GET|/_matrix/..%c0%af_synapse/admin/v1/rooms
backslash_raw|GET|/_matrix/..\_synapse\admin/v1/rooms
backslash_raw_prefix|GET|/_synapse\admin/v1/rooms
backslash_encoded|GET|/_synapse%5cadmin/v1/rooms
backslash_encoded_dotdot|GET|/_matrix/..%5c_synapse%5cadmin/v1/rooms
slash_encoded_dotdot|GET|/_matrix/..%2f_synapse%2fadmin/v1/rooms
slash_encoded_prefix|GET|/_synapse%2fadmin/v1/rooms
param_admin|GET|/_synapse/admin;x=1/v1/rooms
param_synapse|GET|/_synapse;x=1/admin/v1/rooms
param_replication|POST|/_synapse/replication;x/send_event/x
case_admin|GET|/_SYNAPSE/admin/v1/rooms
absolute_admin|GET|http://example.org/_synapse/admin/v1/rooms
absolute_dotdot_replication|POST|http://example.org/_matrix/%2e%2e/_synapse/replication/send_event/x
absolute_mas|POST|http://example.org/_synapse/mas/provision_user
admin|GET|/_synapse/admin/v1/rooms
admin_bare|GET|/_synapse/admin
mas|POST|/_synapse/mas/provision_user
mas_escaped|POST|/_synapse/%6d%61s/provision_user
mas_dotdot|POST|/_matrix/%2e%2e/_synapse/mas/sync_devices
metrics|GET|/_synapse/metrics
metrics_escaped|GET|/_synapse/%6detrics
replication|POST|/_synapse/replication/send_event/x
replication_dotdot|POST|/_matrix/%2e%2e/_synapse/replication/send_event/x
replication_escaped|GET|/_synapse/%72eplication/get_repl_stream_updates/events
unknown_synapse|GET|/_synapse/x
bare_synapse|GET|/_synapse
bad_escape_path|GET|/_matrix/%ZZ
bad_escape_end|GET|/_matrix/client/v3/sync%
connect|CONNECT|example.org:443
trace|TRACE|/_matrix/client/versions
PROBES

# name|method|target|auth: odd but legal, must reach the pool explain names
alice=$(standin token alice)
while IFS='|' read -r name method target auth; do
    [ -z "$name" ] && continue
    exp=$(syn explain --config "$conf" --src 127.0.0.2 "$method" "$target" ${auth:+-H "Authorization: $auth"} 2>&1)
    eb=$(json_field backend <<<"$exp")
    res=$(send "$port" "$method" "$target" "$auth"); code=${res%% *}; worker=${res#* }
    why=""
    [ "$code" = 200 ] || why="status $code"
    grep -q '"answer"' <<<"$exp" && why="${why:+$why; }explain says HAProxy answers: $exp"
    if ! awk -F'\t' -v p="$eb" -v w="$worker" '$1==p && $2==w && $3!="backup" {f=1} END {exit !f}' "$tmp/servers"; then
        why="${why:+$why; }answered by '$worker', not an active server of pool '$eb'"
    fi
    check "legit/$name" "$why"
done <<LEGIT
join_alias_with_slash|POST|/_matrix/client/v3/join/%23a%2Fb%3Aexample.org|Bearer $alice
directory_alias|GET|/_matrix/client/v3/directory/room/%23room%3Aexample.org|Bearer $alice
directory_alias_with_slash|GET|/_matrix/client/v3/directory/room/%23a%2fb%3Aexample.org|Bearer $alice
messages_encoded_room|GET|/_matrix/client/v3/rooms/%21r1%3Aexample.org/messages?dir=b|Bearer $alice
sync_bad_query_escape|GET|/_matrix/client/v3/sync?since=1%ZZ|Bearer $alice
sync_normalised_bad_query|GET|//_matrix/client/v3/%73ync?since=1%ZZ|Bearer $alice
sso_callback|GET|/_synapse/client/oidc/callback?code=x&state=y|
LEGIT
exit $(( fails > 0 ))
