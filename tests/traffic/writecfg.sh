#!/usr/bin/env bash
# tests/traffic/writecfg.sh - `synroute haproxy -o FILE [--reload]` puts a
# configuration in place safely, and the installed-mode global section keeps
# Debian's conventions.
#
#   write/ok           -o writes FILE (checked with haproxy -c), no FILE.tmp left
#   write/broken       a result HAProxy rejects: exit 1, HAProxy's ALERT lines on
#                      stderr, FILE keeps its old bytes, no FILE.tmp left
#   write/no-check     the same result with --no-check is written (the check is
#                      what refused it)
#   write/no-haproxy   no haproxy binary to check with: refused, FILE untouched
#   write/atomic       FILE is replaced by a rename: a new inode, and the old
#                      version, held open, stays whole; a reader that reads it
#                      in a loop while it is rewritten 20 times only ever sees
#                      one of the two whole versions
#   reload/master      HAProxy in master-worker mode (-W -S, as Debian's unit
#                      runs it) under load; -o FILE --reload --master-socket:
#                      a new worker takes over, no request fails, and the new
#                      configuration routes (sliding sync: main for Synapse
#                      1.65, the sync pool for 1.157)
#   reload/no-socket   --reload through a socket that does not exist: exit 1
#                      with a clear message (FILE was written and checked)
#   system/*           the global section of an installed synroute (user and
#                      group haproxy, log /dev/log, chroot /var/lib/haproxy)
#                      passes haproxy -c, and HAProxy started from it (as root)
#                      chroots, drops root and still routes: the Lua glue loads
#                      the deployment before the chroot
T=traffic/writecfg
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
need_lua_socket

make_dep 2
cfg=$tmp/w.cfg
dep=$tmp/dep/synroute.yaml

# write/ok
if syn haproxy "$dep" -o "$cfg" 2>"$tmp/ok.err" && [ -s "$cfg" ] && [ ! -e "$cfg.tmp" ] \
   && grep -q "^wrote $cfg (checked with haproxy -c)$" "$tmp/ok.err"; then ok "write/ok"
else fail "write/ok" "$(head -3 "$tmp/ok.err" | tr '\n' ' ')"; fi
cp "$cfg" "$tmp/good.cfg"

# write/broken: a log target HAProxy does not understand (synroute.yaml only
# knows it is a string)
sed 's/^hash_secret:/log: "nosuchtarget local0"\nhash_secret:/' "$dep" > "$tmp/dep/broken.yaml"
out=$(syn haproxy "$tmp/dep/broken.yaml" -o "$cfg" 2>&1); rc=$?
if [ "$rc" = 1 ] && grep -q '\[ALERT\]' <<<"$out" && grep -q "nosuchtarget" <<<"$out" \
   && grep -q "$cfg is unchanged" <<<"$out" && cmp -s "$cfg" "$tmp/good.cfg" && [ ! -e "$cfg.tmp" ]; then
    ok "write/broken"
else fail "write/broken" "exit $rc, $(cmp -s "$cfg" "$tmp/good.cfg" && echo same || echo CHANGED): $(head -4 <<<"$out" | tr '\n' ' ')"; fi
if syn haproxy "$tmp/dep/broken.yaml" -o "$tmp/nc.cfg" --no-check 2>"$tmp/nc.err" && grep -q nosuchtarget "$tmp/nc.cfg" \
   && grep -q "not checked (--no-check)" "$tmp/nc.err"; then ok "write/no-check"
else fail "write/no-check" "$(head -3 "$tmp/nc.err" | tr '\n' ' ')"; fi

# write/no-haproxy: generating for a named target on a machine without haproxy
out=$(PATH=/usr/bin:/bin timeout 20 "$root/bin/synroute" haproxy "$dep" --haproxy-version 2.6 --lua-version 5.3 \
    -o "$cfg" 2>&1); rc=$?
if [ "$rc" = 1 ] && grep -q "cannot check the configuration: no \`haproxy\` in PATH (give --haproxy-bin PATH, or --no-check" <<<"$out" \
   && cmp -s "$cfg" "$tmp/good.cfg"; then ok "write/no-haproxy"
else fail "write/no-haproxy" "exit $rc: $(head -3 <<<"$out" | tr '\n' ' ')"; fi

# write/atomic
syn haproxy "$dep" --synapse-version 1.65 -o "$cfg" 2>/dev/null
sum_b=$(md5sum < "$cfg")
syn haproxy "$dep" -o "$cfg" 2>/dev/null
sum_a=$(md5sum < "$cfg")
ino0=$(stat -c %i "$cfg")
# hold the first version open: its inode cannot be reused while the fd is
# open, and a rename leaves what the fd reads whole (an in-place write would not)
exec 7<"$cfg"
( while [ ! -e "$tmp/stop-reader" ]; do md5sum < "$cfg"; done > "$tmp/reads" ) &
reader=$!; pids+=($reader)
for i in $(seq 10); do
    syn haproxy "$dep" --synapse-version 1.65 -o "$cfg" 2>/dev/null
    syn haproxy "$dep" -o "$cfg" 2>/dev/null
done
touch "$tmp/stop-reader"; wait "$reader" 2>/dev/null
syn haproxy "$dep" --synapse-version 1.65 -o "$cfg" 2>/dev/null   # FILE is the other version now
bad=$(grep -vcxF -e "$sum_a" -e "$sum_b" "$tmp/reads")
held=$(md5sum <&7); exec 7<&-
if [ "$(stat -c %i "$cfg")" != "$ino0" ] && [ "$held" = "$sum_a" ] && [ "$bad" = 0 ] \
   && [ "$(grep -c '' "$tmp/reads")" -gt 20 ]; then
    ok "write/atomic ($(grep -c '' "$tmp/reads") reads, each a whole version)"
else fail "write/atomic" "inode $ino0 -> $(stat -c %i "$cfg"), the first version $([ "$held" = "$sum_a" ] && echo intact || echo CHANGED) behind its fd, $bad of $(grep -c '' "$tmp/reads") reads were neither version"; fi

# reload/master
start_standins
syn haproxy "$dep" --synapse-version 1.65 -o "$tmp/m.cfg" 2>/dev/null
printf 'global\n    noreuseport\n' > "$tmp/m.stats.cfg"
haproxy -W -S "$tmp/master.sock" -f "$tmp/m.cfg" -f "$tmp/m.stats.cfg" > "$tmp/m.log" 2>&1 9>&- &
mpid=$!; pids+=($mpid)
for _ in $(seq 50); do curl -s -o /dev/null "$base/_matrix/client/versions" && break; sleep 0.1; done
tok=$(standin token alice)
SL="/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=3"
before=$(worker -X POST -H "Authorization: Bearer $tok" "$base$SL")
( while [ ! -e "$tmp/stop-load" ]; do
      curl -s -o /dev/null -m 10 -w '%{http_code}\n' -H "Authorization: Bearer $tok" "$base/_matrix/client/v3/sync?since=s1"
  done > "$tmp/load" ) 9>&- &
loader=$!; pids+=($loader)
sleep 1
out=$(syn haproxy "$dep" -o "$tmp/m.cfg" --reload --master-socket "$tmp/master.sock" 2>&1); rc=$?
sleep 1
touch "$tmp/stop-load"; wait "$loader" 2>/dev/null
after=$(worker -X POST -H "Authorization: Bearer $tok" "$base$SL")
codes=$(sort "$tmp/load" | uniq -c | tr '\n' ' ')
if [ "$rc" = 0 ] && grep -q "^reloaded through the master socket $tmp/master.sock (new worker [0-9]*)$" <<<"$out" \
   && [ "$before" = main ] && [[ $after == synchrotron-* ]] && ! grep -qv '^200$' "$tmp/load" && [ -s "$tmp/load" ]; then
    ok "reload/master (sliding sync: $before -> $after; load: $codes)"
else fail "reload/master" "exit $rc: $(tr '\n' ' ' <<<"$out" | head -c 300); sliding sync $before -> $after; load $codes"; fi
kill -0 "$mpid" 2>/dev/null && ok "reload/master-still-running" || fail "reload/master-still-running" "$(tail -3 "$tmp/m.log")"
stop_pid "$mpid"

out=$(syn haproxy "$dep" -o "$tmp/m.cfg" --reload --master-socket "$tmp/nosuch.sock" 2>&1); rc=$?
if [ "$rc" = 1 ] && grep -q "^synroute haproxy: master socket $tmp/nosuch.sock: cannot connect" <<<"$out" \
   && grep -q "^wrote $tmp/m.cfg (checked with haproxy -c)" <<<"$out"; then ok "reload/no-socket"
else fail "reload/no-socket" "exit $rc: $(tr '\n' ' ' <<<"$out")"; fi

# system/*: the installed-mode global section
lua5.4 - "$dep" > "$tmp/sys.cfg" <<'EOF' || fail "system/generate" "$(head -3 "$tmp/sys.cfg")"
local dep = assert(require("synroute.config").load(arg[1]))
assert(require("synroute.version_choice").choose(dep, {}))
local t = require("synroute.target").detect()
io.write(require("synroute.haproxy_gen").generate(dep, { system = true, target = t }))
EOF
want="    log /dev/log local0|    user haproxy|    group haproxy|    chroot /var/lib/haproxy"
got=$(grep -E "^    (log /dev/log|user |group |chroot )" "$tmp/sys.cfg" | paste -sd'|')
check "system/debian-lines" "$([ "$got" = "$want" ] || echo "got '$got', want '$want'")"
out=$(haproxy -c -f "$tmp/sys.cfg" 2>&1); rc=$?
if [ "$rc" = 0 ] && ! grep -qE 'WARNING|ALERT' <<<"$out"; then ok "system/haproxy-c ($(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p'))"
else fail "system/haproxy-c" "exit $rc: $(grep -m3 -E 'WARNING|ALERT' <<<"$out" | tr '\n' ' ')"; fi
if [ "$(id -u)" = 0 ] && id haproxy >/dev/null 2>&1 && [ -d /var/lib/haproxy ]; then
    haproxy -db -f "$tmp/sys.cfg" > "$tmp/sys.log" 2>&1 9>&- &
    spid=$!; pids+=($spid)
    for _ in $(seq 50); do curl -s -o /dev/null "$base/_matrix/client/versions" && break; sleep 0.1; done
    w=$(worker -H "Authorization: Bearer $tok" "$base/_matrix/client/v3/sync?since=s1")
    user=$(ps -o user= -p "$spid" | tr -d ' ')
    root_of=$(readlink "/proc/$spid/root")
    if [[ $w == synchrotron-* ]] && [ "$user" = haproxy ] && [ "$root_of" = /var/lib/haproxy ]; then
        ok "system/chroot-routes (sync -> $w, running as $user in $root_of)"
    else fail "system/chroot-routes" "sync -> '$w', user '$user', root '$root_of': $(grep -m3 ALERT "$tmp/sys.log" | tr '\n' ' ')"; fi
    stop_pid "$spid"
else
    skip "system/chroot-routes" "needs root, a haproxy user and /var/lib/haproxy"
fi

stop_all
[ "$fails" -eq 0 ]
