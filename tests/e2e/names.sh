#!/usr/bin/env bash
# tests/e2e/names.sh - worker names that are not HAProxy identifiers, in a
# real HAProxy (tests/check/cases/names-non-ascii: wörker-1 and wärker-1):
#   distinct      two server lines with two names (sanitising alone would give
#                 both w__rker-1), and HAProxy starts with them
#   drain/ready   `synroute drain wörker-1` puts exactly wörker-1's server into
#                 maintenance (the runtime commands map the name as the
#                 generator does); `synroute ready wörker-1` brings it back
T=e2e/names
. "$(dirname -- "$0")/../lib.bash"
need_pkg haproxy lua-socket   # lua-socket: the runtime commands (drain, ready, status)

cp -R tests/check/cases/names-non-ascii "$tmp/dep"
printf 'runtime:\n  socket: "%s/admin.sock"\n  group: false\npeers: false\n' "$tmp" >> "$tmp/dep/synroute.yaml"
export SYNROUTE_CONFIG=$tmp/dep/synroute.yaml
if ! syn haproxy "$SYNROUTE_CONFIG" -o "$tmp/h.cfg" 2>"$tmp/gen.err"; then
    fail setup "generation failed: $(grep -v '^warning' "$tmp/gen.err" | head -2)"; exit 1
fi
srv() { lua5.4 - "$1" <<<'print(require("synroute.values").server_name(arg[1]))'; }
a=$(srv wörker-1) b=$(srv wärker-1)
lines=$(sed -n '/^backend generic$/,/^$/p' "$tmp/h.cfg")
why=""
[ "$a" != "$b" ] || why="one server name for both: $a"
for s in "$a 127.0.0.1:38510" "$b 127.0.0.1:38511"; do
    grep -qF -- "    server $s " <<<"$lines" || why="${why:+$why; }backend generic has no 'server $s'"
done
haproxy -db -f "$tmp/h.cfg" >"$tmp/h.log" 2>&1 &
pids+=("$!")
for _ in $(seq 50); do [ -S "$tmp/admin.sock" ] && break; sleep 0.1; done
[ -S "$tmp/admin.sock" ] || why="${why:+$why; }HAProxy did not start: $(grep -m2 ALERT "$tmp/h.log" | tr '\n' ' ')"
check distinct "$why"
[ -S "$tmp/admin.sock" ] || exit 1

# the STATE column of a server's row in backend generic
state() { syn status 2>/dev/null | awk -v s="$1" '/^pool generic / { on = 1; next } on && /^$/ { exit } on && $1 == s { print $2 }'; }
why=""
# (no stand-ins here: both servers are down, so drain wants --force)
out=$(syn drain wörker-1 --force 2>&1) || why="drain failed: $out"
[ "$(state "$a")" = MAINT ] || why="${why:+$why; }wörker-1 ($a) is '$(state "$a")' after drain, want MAINT"
s=$(state "$b"); [ -n "$s" ] && [ "$s" != MAINT ] || why="${why:+$why; }wärker-1 ($b) is '$s' after draining wörker-1, want a state other than MAINT"
check drain "$why"
why=""
out=$(syn ready wörker-1 2>&1) || why="ready failed: $out"
s=$(state "$a"); [ -n "$s" ] && [ "$s" != MAINT ] || why="${why:+$why; }wörker-1 ($a) is '$s' after ready, want a state other than MAINT"
check ready "$why"
exit $(( fails > 0 ))
