-- tests/lua/test_runtime.lua - synroute.runtime (settings, the generated
-- lines, the runtime API parsers on answers HAProxy 2.6.12 and 3.0.11 gave)
-- and synroute.ops argument parsing. Run with lua5.4 from the repository root.
-- (The commands against a live HAProxy: tests/traffic/drain.sh, reload.sh.)

local prefix = "lua/runtime"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local kit = dofile(here .. "/testkit.lua")(prefix)
local check, eq = kit.check, kit.eq

local rt = require("synroute.runtime")
local ops = require("synroute.ops")

-- settings -------------------------------------------------------------------
-- the `runtime:` entry of synroute.yaml, through the schema walk
local settings_mod = require("synroute.settings")
local yamlfile = require("synroute.yamlfile")
local tmpyaml = os.tmpname()
local function yaml_scalar(v)
    if type(v) == "string" then
        return '"' .. v:gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
    end
    return tostring(v)
end
local function settings(v)
    local lines = { "runtime:" }
    if type(v) == "table" and v[1] ~= nil then
        for _, x in ipairs(v) do lines[#lines + 1] = "  - " .. yaml_scalar(x) end
    elseif type(v) == "table" then
        for k, x in pairs(v) do lines[#lines + 1] = "  " .. k .. ": " .. yaml_scalar(x) end
    end
    local f = assert(io.open(tmpyaml, "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local report = yamlfile.report()
    local s = settings_mod.check({ keys = { runtime = rt.SCHEMA } }, report:load(tmpyaml), report)
    local probs = {}
    for _, p in ipairs(report.problems) do probs[#probs + 1] = (p:gsub("^[^:]*:%d+: ", "")) end
    return s.runtime, probs
end
do
    local r, p = settings(nil)
    eq("settings/default-socket", r.socket, "/run/haproxy/admin.sock")
    eq("settings/default-mode", r.mode, "660")
    eq("settings/default-group", r.group, "haproxy")
    eq("settings/default-no-problem", #p, 0)
    r, p = settings({ socket = "${SYNROUTE_RUN_DIR-/run/haproxy}/a.sock", mode = 640, group = false })
    eq("settings/env-path", r.socket, "${SYNROUTE_RUN_DIR-/run/haproxy}/a.sock")
    eq("settings/integer-mode", r.mode, "640")
    eq("settings/group-false", r.group, false)
    eq("settings/ok-no-problem", #p, 0)
    r = settings({ socket = false, mode = "0600" })
    eq("settings/socket-false", r.socket, false)
    eq("settings/mode-leading-zero", r.mode, "600")
    local bad = {
        { "space", { socket = "/run/a b.sock" }, "runtime.socket: the path must be one token" },
        { "newline", { socket = "/run/a\nb" }, "runtime.socket: the path must be one token" },
        { "quote", { socket = '/run/"a".sock' }, "runtime.socket: the path may hold only" },
        { "hash", { socket = "/run/a#b" }, "runtime.socket: the path may hold only" },
        { "relative", { socket = "run/a.sock" }, "runtime.socket: expected an absolute path" },
        { "bad-default", { socket = "${X-/a b}/s" }, "runtime.socket:" },
        { "too-long", { socket = "/" .. string.rep("a", 120) }, "runtime.socket: a UNIX socket path is at most 107 bytes" },
        { "mode-9", { mode = 699 }, "runtime.mode: expected an octal file mode" },
        { "mode-word", { mode = "rw" }, "runtime.mode: expected an octal file mode" },
        { "group-space", { group = "ha proxy" }, "runtime.group: expected a group name" },
        { "unknown", { level = "admin" }, "runtime: unknown setting 'level' (group, mode, socket)" },
        { "not-a-map", { "x" }, "runtime: expected a mapping" },
    }
    for _, b in ipairs(bad) do
        local _, probs = settings(b[2])
        check("settings/rejects-" .. b[1], #probs == 1 and probs[1]:find(b[3], 1, true) == 1,
            table.concat(probs, " | "))
    end
    os.remove(tmpyaml)
end

-- generated lines ------------------------------------------------------------
do
    local dep = { runtime = rt.DEFAULTS, peers = rt.default_peers(), pools = {} }
    eq("gen/stats-line", rt.global_line(dep),
        "stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners group haproxy")
    dep.runtime = { socket = "${D-/tmp}/x.sock", mode = "600", group = false }
    eq("gen/stats-line-env-quoted", rt.global_line(dep), 'stats socket "${D-/tmp}/x.sock" mode 600 level admin expose-fd listeners')
    dep.runtime.socket = false
    eq("gen/no-socket", rt.global_line(dep), nil)
    eq("gen/boot-line", rt.boot_line(dep), "set-var proc.synroute_boot date(0,ms)")
    eq("gen/store-guard", rt.store_guard(dep), " { date(0,ms),sub(proc.synroute_boot) ge 3000 }")
    eq("gen/no-peers-no-guard", rt.store_guard({}), "")
    eq("gen/no-peers-no-boot", rt.boot_line({}), nil)
    -- implicit peers only when some pool has a stick table (two active servers)
    dep.pools = { sync = { servers = { { name = "a" }, { name = "b", backup = true } } } }
    eq("gen/idle-peers-dropped", rt.without_idle_peers(dep).peers, nil)
    check("gen/idle-peers-copy", dep.peers ~= nil, "the caller's dep was changed")
    dep.pools.sync.servers[2].backup = nil
    check("gen/peers-kept-with-table", rt.without_idle_peers(dep).peers == dep.peers)
    local explicit = { peers = { name = "synroute", nodes = {} }, pools = {} }
    check("gen/explicit-peers-kept", rt.without_idle_peers(explicit) == explicit)
end

-- the local peer's name -------------------------------------------------------
do
    local nodes = { { name = "node1", addr = "10.0.0.1:1" }, { name = "node2", addr = "10.0.0.2:1" } }
    check("peername/warn-host-not-a-node",
        (rt.local_peer_warning({ nodes = nodes }, "web7") or ""):find("this host's name 'web7' is not one of peers.nodes", 1, true),
        tostring(rt.local_peer_warning({ nodes = nodes }, "web7")))
    eq("peername/host-is-a-node", rt.local_peer_warning({ nodes = nodes }, "node2"), nil)
    eq("peername/local-set", rt.local_peer_warning({ ["local"] = "node1", nodes = nodes }, "web7"), nil)
    eq("peername/implicit", rt.local_peer_warning(rt.default_peers(), "web7"), nil)
end

-- ${NAME} expansion ------------------------------------------------------------
do
    local env = { A = "/x", E = "" }
    local function get(n) return env[n] end
    eq("expand/set", rt.expand("${A}/s.sock", get), "/x/s.sock")
    eq("expand/default-unset", rt.expand("${B-/run/haproxy}/s", get), "/run/haproxy/s")
    eq("expand/default-set", rt.expand("${A-/run}/s", get), "/x/s")
    eq("expand/empty-not-default", rt.expand("${E-/run}/s", get), "/s")
    eq("expand/unset", rt.expand("${B}/s", get), "/s")
    eq("expand/plain", rt.expand("/run/haproxy/admin.sock", get), "/run/haproxy/admin.sock")
end

-- parsers --------------------------------------------------------------------
do
    local f = rt.csv_fields('a,"x,y",,"q""t",')
    eq("csv/fields", table.concat(f, "|"), 'a|x,y||q"t|')
    local stat = table.concat({
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,weight,act,bck,tracked,check_status,check_code,check_desc,",
        "sync,synchrotron-1,0,0,2,3,,41,UP,100,1,0,,L7OK,200,Layer7 check passed,",
        'sync,synchrotron-2,0,0,0,1,,7,MAINT (via generic/synchrotron-2),100,1,0,generic/synchrotron-2,,,"x, y",',
        "sync,main,0,0,0,0,,0,UP,1,0,1,main/main,,,,",
        "sync,BACKEND,0,0,2,3,,48,UP,200,2,1,,,,,",
        "", }, "\n")
    local rows = rt.parse_csv(stat)
    eq("csv/rows", #rows, 4)
    eq("csv/by-name", rows[1].scur .. " " .. rows[1].stot .. " " .. rows[1].check_status, "2 41 L7OK")
    eq("csv/quoted-field", rows[2].check_desc, "x, y")
    eq("csv/tracked", rows[2].tracked, "generic/synchrotron-2")
    eq("csv/status-with-spaces", rows[2].status, "MAINT (via generic/synchrotron-2)")
    local r, e = rt.parse_csv("Unknown command\n")
    check("csv/no-header-error", r == nil and e:find("no CSV header", 1, true), tostring(e))

    -- HAProxy 2.6.12 and 3.0.11 (3.0 adds shard=)
    local t26 = "# table: sync, type: string, size:102400, used:1\n" ..
        "0x7f336803a5f0: key=7d1e8ee4abca3a2b use=0 exp=1787544 server_id=676350 server_key=synchrotron-2\n\n"
    local t30 = "# table: b, type: string, size:1024, used:1\n" ..
        "0x7f334b6338d0: key=a use=0 exp=1798400 shard=0 server_id=1 server_key=s1\n\n"
    local e26, e30 = rt.parse_table(t26)[1], rt.parse_table(t30)[1]
    eq("table/2.6", e26.key .. " " .. e26.server_id .. " " .. e26.server_key .. " " .. e26.exp,
        "7d1e8ee4abca3a2b 676350 synchrotron-2 1787544")
    eq("table/3.0", e30.key .. " " .. e30.server_id .. " " .. e30.server_key, "a 1 s1")
    eq("table/empty", #rt.parse_table("# table: sync, type: string, size:102400, used:0\n\n"), 0)
    local names = rt.parse_tables("# table: sync, type: string, size:102400, used:1\n# table: event_send, type: string, size:1, used:0\n")
    check("tables/names", names.sync and names.event_send and not names.main)

    local st = rt.parse_servers_state("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n" ..
        "9 sync 342643 synchrotron-1 127.0.0.1 2 0\n9 sync 676350 synchrotron-2 127.0.0.1 0 1\n\n")
    eq("servers-state/rows", #st, 2)
    eq("servers-state/fields", st[2].srv_id .. " " .. st[2].srv_name .. " " .. st[2].srv_admin_state, "676350 synchrotron-2 1")

    local p26 = "0x55e38cf0a7a0: [01/Dec/2026:23:55:05] id=synroute disabled=0 flags=0x33 resync_timeout=<PAST> task_calls=62\n" ..
        "  0x55e38cf1fdc0: id=local(local,inactive) addr=127.0.0.1:10010 last_status=NONE last_hdshk=<NEVER>\n" ..
        "        reconnect=<NEVER> heartbeat=<NEVER> confirm=0 tx_hbt=0\n\n"
    local p26young = "0x56227cf23b30: [01/Dec/2026:23:22:22] id=synroute disabled=0 flags=0x11 resync_timeout=3s task_calls=2\n" ..
        "  0x56227cf23ca0: id=local(local,inactive) addr=127.0.0.1:10010 last_status=NONE\n"
    local p30 = "0x7f334b697a00: [10/Jan/2027:14:27:56] id=synroute disabled=0 flags=0x300003 resync_timeout=3s task_calls=2\n" ..
        "  0x7f334b630d80: id=local1(local,inactive) addr=127.0.0.1:29100 app_state=STOPPED learn_state=NOTASSIGNED last_status=NONE\n"
    local s = rt.parse_peers(p26)[1]
    eq("peers/2.6-section", s.id .. " " .. s.flags, "synroute 0x33")
    eq("peers/local-peer", s.peers[1].id .. " " .. tostring(s.peers[1]["local"]), "local true")
    eq("peers/2.6-synced", rt.peers_synced(s), true)
    eq("peers/2.6-young-not-synced", rt.peers_synced(rt.parse_peers(p26young)[1]), false)
    eq("peers/3.0-synced", rt.peers_synced(rt.parse_peers(p30)[1]), true)
    eq("peers/3.0-local-name", rt.parse_peers(p30)[1].peers[1].id, "local1")
    eq("peers/none", #rt.parse_peers("\n"), 0)
end

-- the client against a socket that is not there --------------------------------
do
    local c = rt.client("/nonexistent/synroute-test.sock", 1)
    local out, err = c:cmd("show info")
    if rt.socket_lib() then
        check("client/unreachable", out == nil and err:find("cannot connect to HAProxy's runtime API at /nonexistent/synroute-test.sock", 1, true),
            tostring(err))
    else   -- (tests/traffic installs lua-socket; this suite may run first)
        check("client/no-lua-socket", out == nil and err:find("apt install lua-socket", 1, true), tostring(err))
    end
end

-- ops arguments -------------------------------------------------------------------
do
    local o = ops.parse_args("drain", { "synchrotron-1", "--wait", "90s", "--force" })
    eq("args/drain-wait-force", o and (o.arg .. " " .. o.wait .. " " .. tostring(o.force)), "synchrotron-1 90 true")
    o = ops.parse_args("drain", { "--wait", "synchrotron-1" })
    eq("args/drain-wait-default", o and (o.arg .. " " .. o.wait), "synchrotron-1 300")
    o = ops.parse_args("drain", { "w", "--wait=5m" })
    eq("args/drain-wait-inline", o and o.wait, 300)
    o = ops.parse_args("show", { "--kind", "origin", "matrix.org", "--socket", "/x.sock" })
    eq("args/show-kind", o and (o.kind .. " " .. o.arg .. " " .. o.socket), "origin matrix.org /x.sock")
    o = ops.parse_args("show", { "--token-file", "-" })
    eq("args/show-token-file", o and o.token_file, "-")
    local usage = {
        { "status", { "extra" } }, { "drain", {} }, { "drain", { "a", "b" } }, { "ready", { "a", "--force" } },
        { "show", {} }, { "show", { "x", "--kind", "device" } }, { "status", { "--bogus" } },
        { "drain", { "a", "--wait=5y" } }, { "status", { "--socket" } }, { "show", { "--token-file", "-", "extra" } },
    }
    for i, u in ipairs(usage) do
        local r, err = ops.parse_args(u[1], u[2])
        check("args/usage-" .. i, r == nil and type(err) == "string", u[1] .. " " .. table.concat(u[2], " "))
    end
end

kit.finish()
