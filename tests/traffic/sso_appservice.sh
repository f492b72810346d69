#!/usr/bin/env bash
# tests/traffic/sso_appservice.sh - SSO and bridges through real HAProxy:
#   sso-round-trip-one-process   every step of an SSO login (redirect, pick_idp,
#                                OIDC callback, pick_username, new_user_consent,
#                                sso_register) reaches sso-login-1
#   sso-backup-when-down         with sso-login-1 down, the whole round trip
#                                reaches sso-login-2 (pools.sso.backup)
#   sso-back-when-up             sso-login-1 takes over again when it is back
#   appservice-pool              as_token requests go to the appservice pool
#   appservice-user-sticky       one bridged user (user_id param) -> one worker
#   appservice-users-spread      different bridged users use both workers
#   appservice-burst-not-sync    a 300-request bridge burst (syncs, sends, messages,
#                                profile) never reaches a sync worker (or any
#                                non-appservice worker)
#   appservice-token-not-logged  the as_token is in no HAProxy log line and in no
#                                stick table (show table via the stats socket)
T=traffic/sso_appservice
source "$(dirname "$0")/lib.bash"
make_dep 2
gen_cfg a
start_standins
start_haproxy a

RU='redirectUrl=https%3A%2F%2Fapp.example%2F'
SSO_STEPS="GET /_matrix/client/v3/login/sso/redirect?$RU
GET /_synapse/client/pick_idp?$RU
GET /_synapse/client/pick_idp?idp=oidc-github&$RU
GET /_matrix/client/v3/login/sso/redirect/oidc-github?$RU
GET /_synapse/client/oidc/callback?code=c0de&state=st4te
GET /_synapse/client/pick_username/account_details
GET /_synapse/client/pick_username/check?username=alice
POST /_synapse/client/pick_username/account_details
GET /_synapse/client/new_user_consent
POST /_synapse/client/new_user_consent
GET /_synapse/client/sso_register"
round_trip() {   # -> the workers of each step, space separated
    local m p
    while read -r m p; do
        worker -X "$m" -b 'oidc_session=s3ss; username_mapping_session=m4p' "$base$p"; echo -n ' '
    done <<<"$SSO_STEPS"
}
all_are() {   # name "w1 w2 ..." -> why
    local w bad="" n=0
    for w in $2; do n=$((n + 1)); [ "$w" = "$1" ] || bad="$bad $w"; done
    [ -z "$bad" ] && [ "$n" -eq 11 ] || echo "$n of 11 steps answered, by:$2"
}
check sso-round-trip-one-process "$(all_are sso-login-1 "$(round_trip)")"
stop_standin sso-login-1
wait_state a sso sso-login-1 DOWN || echo "# sso-login-1 not marked down"
check sso-backup-when-down "$(all_are sso-login-2 "$(round_trip)")"
start_standin sso-login-1
wait_state a sso sso-login-1 UP || echo "# sso-login-1 not marked up"
check sso-back-when-up "$(all_are sso-login-1 "$(round_trip)")"

# bridges
AS="Authorization: Bearer $AS_TOKEN"
w=$(worker -X PUT -H "$AS" "$base/_matrix/client/v3/rooms/!r:example.org/send/m.room.message/t1?user_id=%40bridge_alice%3Aexample.org")
check appservice-pool "$([[ $w == appservice-client-* ]] || echo "answered by '$w'")"
for i in $(seq 30); do
    echo "$base/_matrix/client/v3/rooms/!room$i:example.org/send/m.room.message/t$i?user_id=%40bridge_alice%3Aexample.org"
done | urls > "$tmp/as1.K"
curl -s -K "$tmp/as1.K" -X PUT -H "$AS" -w '%header{x-worker}\n' > "$tmp/as1"
u=$(sort -u "$tmp/as1"); n=$(grep -c '^appservice-client-' "$tmp/as1")
check appservice-user-sticky "$([ "$n" -eq 30 ] && [ "$(grep -c . <<<"$u")" -eq 1 ] || echo "30 sends of one bridged user reached: $(sort "$tmp/as1" | uniq -c | tr -s ' \n' ' ')")"
for i in $(seq 300); do
    uid="%40bridge_u$((i % 40))%3Aexample.org"
    case $((i % 4)) in
        0) echo "$base/_matrix/client/v3/sync?since=s$i&timeout=0&user_id=$uid" ;;
        1) echo "$base/_matrix/client/v3/sync?user_id=$uid" ;;
        2) echo "$base/_matrix/client/v3/rooms/!r$((i % 7)):example.org/messages?dir=b&user_id=$uid" ;;
        3) echo "$base/_matrix/client/v3/profile/@bridge_u$((i % 40)):example.org/displayname?user_id=$uid" ;;
    esac
done | urls > "$tmp/burst.K"
curl -s -K "$tmp/burst.K" -H "$AS" -w '%header{x-worker}\n' > "$tmp/burst"
check appservice-users-spread "$([ "$(sort -u "$tmp/burst" | grep -c '^appservice-client-')" -eq 2 ] || echo "40 bridged users used: $(sort -u "$tmp/burst" | tr '\n' ' ')")"
n=$(grep -c . "$tmp/burst"); other=$(grep -vc '^appservice-client-' "$tmp/burst")
check appservice-burst-not-sync "$([ "$n" -eq 300 ] && [ "$other" -eq 0 ] || echo "$n answers, $other not from the appservice pool: $(grep -v '^appservice-client-' "$tmp/burst" | sort | uniq -c | tr -s ' \n' ' ')")"
sleep 0.3
why=""
lines=$(grep -c 'backend=appservice' "$tmp/a.log")
[ "$lines" -ge 300 ] || why="only $lines appservice lines in the log"
grep -q -- "$AS_TOKEN" "$tmp/a.log" && why="${why:+$why; }the as_token is in the HAProxy log"
grep -q -e 'user_id=' -e 'access_token' "$tmp/a.log" && why="${why:+$why; }a query string is in the HAProxy log"
tables=$(sock a "show table" | sed -n 's/^# table: \([^,]*\),.*/\1/p')
for t in $tables; do sock a "show table $t"; done > "$tmp/tables"
grep -q -- "$AS_TOKEN" "$tmp/tables" && why="${why:+$why; }the as_token is in a stick table"
grep -q 'table: appservice' "$tmp/tables" || why="${why:+$why; }no appservice table dumped"
bad=$(grep 'key=' "$tmp/tables" | grep -vcE 'key=[0-9a-f]{16} ')
[ "$bad" -eq 0 ] || why="${why:+$why; }$bad stick entries are not 16-hex hashes"
check appservice-token-not-logged "$why"
exit $(( fails > 0 ))
