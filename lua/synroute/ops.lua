-- synroute.ops - the operator's commands on a running HAProxy, through its
-- runtime API only (synroute.runtime): no second daemon.
--
--   synroute status [--config FILE] [--socket PATH]
--   synroute drain WORKER [--force] [--wait [TIMEOUT]] [--config FILE] [--socket PATH]
--   synroute ready WORKER [--config FILE] [--socket PATH]
--   synroute show KEY-OR-USER [--kind user|room|origin] [--config FILE] [--socket PATH]
--   synroute show --token-file FILE|- [--config FILE] [--socket PATH]
--
--   local ops = require("synroute.ops")
--   ops.main(command, args, { default_config = path|nil }) -> exit code
--
-- Exit codes: 0 ok, 1 data or runtime error (socket unreachable, unknown
-- worker, a refused drain), 2 usage error. Arguments: synroute.cmdline.
--
-- drain puts the process's server into MAINT in every backend that has it
-- (not DRAIN: HAProxy 2.6 and 3.0 keep sending the keys pinned to a DRAIN
-- server by the stick table to it; MAINT sends them elsewhere and leaves the
-- table alone, so `ready` brings them back; requests in flight finish).
-- docs/operations.md has the measurements.

local rt = require("synroute.runtime")

local M = {}


local function say(stream, s)
    stream:write(s)
    if s:sub(-1) ~= "\n" then stream:write("\n") end
end

local function fail(msg)
    say(io.stderr, "synroute: " .. msg)
    return 1
end

-- HAProxy server names: the generator's rule (synroute.values.server_name).
local srvname = require("synroute.values").server_name

---------------------------------------------------------------------------
-- arguments

local function is_duration(s)
    return s ~= nil and (s:match("^%d+$") or s:match("^%d+[smh]$")) ~= nil
end

local function duration(s)
    local n, u = s:match("^(%d+)([smh]?)$")
    return tonumber(n) * ({ [""] = 1, s = 1, m = 60, h = 3600 })[u]
end

local DESCRIPTION = {
    status = "Per pool (HAProxy backend): its servers, their state (UP, DOWN, MAINT, DRAIN, ...), health check, " ..
        "the server they track, requests in flight, share of the weight and of the requests served so far; and " ..
        "whether the stick tables are ready to survive a reload.",
    drain = "Take one Synapse process (a worker name, or main) out of every pool that has it, for an upgrade: " ..
        "requests in flight (a /sync long poll) finish, new requests go to the other servers, including those " ..
        "of users, rooms and origins pinned to it.",
    ready = "Put the process back; pinned users, rooms and origins return to it.",
    show = "Which server a user (@alice:example.org or alice), room (!id:server or #alias:server) or federation " ..
        "origin (--kind origin) is pinned to, in every pool keyed by that kind. Access tokens are never taken " ..
        "on the command line: --token-file reads one from a file (- for stdin).",
}

-- The parser of one of status, drain, ready, show (synroute.cmdline).
function M.parser(cmd)
    local cmdline = require("synroute.cmdline")
    local p = cmdline.parser(cmd, DESCRIPTION[cmd] .. " Talks to the running HAProxy through its runtime API " ..
        "(runtime.socket in synroute.yaml, default /run/haproxy/admin.sock).")
    if cmd == "drain" then
        -- WORKER is checked here: --wait's optional TIMEOUT may have taken it
        p:argument("WORKER", "A worker_name, or main."):args("?"):target("arg")
        p:flag("--force", "Drain even if a pool is left with no server (a single stream writer, or main): its " ..
            "requests get 503 until ready.")
        p:option("--wait", "Then wait until it has no request in flight (default 300s; e.g. 90s, 5m)."):args("?")
            :argname("TIMEOUT")
    elseif cmd == "ready" then
        p:argument("WORKER", "A worker_name, or main."):target("arg")
    elseif cmd == "show" then
        p:argument("KEY-OR-USER", "A user, room or origin."):args("?"):target("arg")
        p:option("--kind", "What the argument is."):choices({ "user", "room", "origin" })
        p:option("--token-file", "Read an access token from FILE (- for standard input)."):argname("FILE")
    end
    cmdline.config_option(p, "synroute.yaml (default: $SYNROUTE_CONFIG, else /etc/synroute/synroute.yaml); " ..
        "show needs it (the key hash).")
    cmdline.socket(p)
    return p
end

-- --wait [TIMEOUT] and the one argument. -> o | nil, why
local function finish_args(cmd, o)
    if o.wait then
        local v = o.wait[1]
        if v and not is_duration(v) and not o.arg then o.arg, v = v, nil end
        if v and not is_duration(v) then return nil, "--wait: expected a duration like 90s or 5m" end
        o.wait = v and duration(v) or 300
    end
    if cmd == "drain" and not o.arg then return nil, "expected a worker name (or main)" end
    if cmd == "show" and not o.arg == not o.token_file then
        return nil, o.arg and "give either KEY-OR-USER or --token-file" or "expected a user, room or origin"
    end
    if o.socket and (o.socket == "" or o.socket:find("[%c]")) then return nil, "bad --socket" end
    return o
end

-- args -> o { arg=, wait= (seconds), force=, kind=, token_file=, socket=, config=, help= } | nil, message
function M.parse_args(cmd, args)
    local p = M.parser(cmd)
    local o, err = require("synroute.cmdline").parse(p, args)
    if not o then return nil, err, p end
    if o.help then return o, nil, p end
    local r, why = finish_args(cmd, o)
    return r, why, p
end

---------------------------------------------------------------------------
-- the deployment and the socket

-- -> { socket=, dep=, eng= } | nil, message. need_config: the command needs
-- the deployment (show).
local function context(o, env, need_config)
    local cfg = o.config or env.default_config
    local ctx = {}
    if cfg and (need_config or not o.socket) then
        local config = require("synroute.config")
        local dep, problems = config.load(cfg)
        if not dep then return nil, config.format_problems(problems) end
        ctx.dep = dep
        if need_config then
            local eng, err = require("synroute.api").new{ dep = dep }
            if not eng then return nil, tostring(err) end
            ctx.eng = eng
        end
    elseif need_config then
        return nil, "no deployment: give --config FILE (or set SYNROUTE_CONFIG); the key hash depends on its secret"
    end
    if o.socket then
        ctx.socket = o.socket
    elseif ctx.dep and ctx.dep.runtime then
        if ctx.dep.runtime.socket == false then
            return nil, ctx.dep.file .. " sets runtime.socket: false (no runtime API): give --socket PATH"
        end
        ctx.socket = rt.expand(ctx.dep.runtime.socket)
    else
        ctx.socket = rt.DEFAULT_SOCKET
    end
    ctx.client = rt.client(ctx.socket)
    return ctx
end

local function stat_rows(ctx)
    local text, err = ctx.client:cmd("show stat")
    if not text then return nil, err end
    return rt.parse_csv(text)
end

-- rows -> ordered list of backends { name=, algo=, servers = { row... } }
-- (frontends, HAProxy's internal proxies and synroute's rate tables left out)
local function backends_of(rows)
    local list, by = {}, {}
    for _, r in ipairs(rows) do
        local px = r.pxname
        if r.svname ~= "FRONTEND" and px:sub(1, 1) ~= "<" and not px:match("^synroute_") then
            local b = by[px]
            if not b then
                b = { name = px, servers = {} }
                by[px] = b
                list[#list + 1] = b
            end
            if r.svname == "BACKEND" then b.total = r else b.servers[#b.servers + 1] = r end
        end
    end
    local out = {}
    for _, b in ipairs(list) do
        if b.total then out[#out + 1] = b end   -- a listen/frontend-only proxy has no BACKEND row
    end
    return out
end

local function num(s) return tonumber(s) or 0 end

-- Does this server take new requests? (UP, "UP 1/3" going down, or no check)
local function usable(r)
    local st = r.status or ""
    return st:match("^UP") ~= nil or st == "no check"
end

local function is_backup(r) return num(r.bck) > 0 end

---------------------------------------------------------------------------
-- status

local function pct(n, total)
    if total <= 0 then return "-" end
    return string.format("%d%%", math.floor(n * 100 / total + 0.5))
end

local function check_text(r)
    local cs = r.check_status or ""
    if cs == "" then return "-" end
    cs = cs:gsub("^%* ?", "")
    if r.check_code and r.check_code ~= "" then cs = cs .. "/" .. r.check_code end
    return cs
end

local function pad(s, n) return s .. string.rep(" ", math.max(1, n - #s)) end

-- HAProxy's status in one word: UP, DOWN, MAINT, DRAIN, NOLB, no-check
-- ("UP 1/3", a server going down, is UP; "MAINT (via x/y)" is MAINT; the
-- TRACKS and CHECK columns tell the rest).
local function state_word(r)
    local st = r.status or ""
    if st == "" then return "-" end
    if st == "no check" then return "no-check" end
    return st:match("^%S+")
end

-- Key kinds by backend, from the router spec (which classes key by what).
local function kinds_by_backend(eng)
    local out = {}
    if not eng then return out end
    local function add(be, kind, class)
        if not be then return end
        out[be] = out[be] or {}
        out[be][kind] = out[be][kind] or {}
        out[be][kind][class] = true
    end
    for _, t in ipairs(eng.spec.targets) do
        local k = t.key == "path_user" and "user" or t.key
        if k and k ~= "none" then
            add(t.generic_backend, k, t.class)
            add(t.other_backend, k, t.class)
        end
    end
    if eng.spec.as_backend then add(eng.spec.as_backend, "user", "appservice") end
    return out
end
M.kinds_by_backend = kinds_by_backend

local function print_backend(b)
    local wsum, rsum, up = 0, 0, 0
    for _, r in ipairs(b.servers) do
        if usable(r) and not is_backup(r) then wsum = wsum + num(r.weight) end
        rsum = rsum + num(r.stot)
        if usable(r) then up = up + 1 end
    end
    local head = "pool " .. b.name .. "  (" .. up .. " of " .. #b.servers .. " servers take requests" ..
        ((b.algo and b.algo ~= "") and ("; balance " .. b.algo) or "") .. ")"
    io.stdout:write(head, "\n")
    if #b.servers == 0 then
        io.stdout:write("  no server: its requests get a Matrix 503\n")
        return
    end
    io.stdout:write("  ", pad("SERVER", 24), pad("STATE", 12), pad("CHECK", 12), pad("TRACKS", 28),
        pad("IN-FLIGHT", 11), pad("WEIGHT", 9), "REQUESTS\n")
    for _, r in ipairs(b.servers) do
        local name = r.svname .. (is_backup(r) and " (backup)" or "")
        local w
        if is_backup(r) then w = "backup"
        elseif usable(r) then w = pct(num(r.weight), wsum)
        else w = "0%" end
        local inflight = tostring(num(r.scur)) .. (num(r.qcur) > 0 and ("+" .. r.qcur .. "q") or "")
        io.stdout:write("  ", pad(name, 24), pad(state_word(r), 12), pad(check_text(r), 12),
            pad(r.tracked ~= "" and r.tracked or "-", 28), pad(inflight, 11), pad(w, 9),
            tostring(num(r.stot)), " (", pct(num(r.stot), rsum), ")\n")
    end
end

local function print_peers(ctx)
    local text = ctx.client:cmd("show peers")
    local sections = text and rt.parse_peers(text) or {}
    if #sections == 0 then
        io.stdout:write("stick tables: no peers section: a reload starts with empty tables (users move)\n")
        return
    end
    for _, s in ipairs(sections) do
        local lp
        for _, p in ipairs(s.peers) do if p["local"] then lp = p.id end end
        local synced = rt.peers_synced(s)
        io.stdout:write("stick tables: peers section ", s.id, ", local peer ", tostring(lp or "?"), ": ",
            synced and "in sync (a reload hands the tables to the new process)"
            or "still resyncing (a reload now would start the new process with empty tables)", "\n")
    end
end

function M.status(o, env)
    local ctx, err = context(o, env, false)
    if not ctx then return fail("status: " .. err) end
    local rows, rerr = stat_rows(ctx)
    if not rows then return fail("status: " .. rerr) end
    local info = ctx.client:cmd("show info") or ""
    local version = info:match("\nVersion: (%S+)") or info:match("^Version: (%S+)") or "?"
    local kinds = {}
    if ctx.dep then
        local eng = require("synroute.api").new{ dep = ctx.dep }
        kinds = kinds_by_backend(eng)
    end
    io.stdout:write("HAProxy ", version, ", runtime API ", ctx.socket, "\n\n")
    for _, b in ipairs(backends_of(rows)) do
        b.algo = b.total.algo
        local k = kinds[b.name]
        if k and b.algo == "hash" then
            local ks = {}
            for kind in pairs(k) do ks[#ks + 1] = kind end
            table.sort(ks)
            b.algo = "hash by " .. table.concat(ks, "/")
        end
        print_backend(b)
        io.stdout:write("\n")
    end
    print_peers(ctx)
    return 0
end

---------------------------------------------------------------------------
-- drain / ready

-- The rows of one process (server name) in every backend: list of { be=, row= }.
local function rows_of(rows, worker)
    local name, out = srvname(worker), {}
    for _, b in ipairs(backends_of(rows)) do
        for _, r in ipairs(b.servers) do
            if r.svname == name then out[#out + 1] = { be = b, row = r } end
        end
    end
    return out
end

local function unknown_worker(rows, worker)
    local names, seen = {}, {}
    for _, b in ipairs(backends_of(rows)) do
        for _, r in ipairs(b.servers) do
            if not seen[r.svname] then seen[r.svname] = true; names[#names + 1] = r.svname end
        end
    end
    table.sort(names)
    return fail("unknown worker " .. string.format("%q", worker) .. ": no HAProxy server has that name (servers: " ..
        table.concat(names, ", ") .. ")")
end

-- Backends where `worker` is the only server that takes requests.
local function stranded(mine)
    local out = {}
    for _, m in ipairs(mine) do
        local other = false
        for _, r in ipairs(m.be.servers) do
            if r ~= m.row and usable(r) then other = true end
        end
        if not other then out[#out + 1] = m.be.name end
    end
    return out
end

local function set_state(ctx, be, srv, state)
    local ans, err = ctx.client:cmd("set server " .. be .. "/" .. srv .. " state " .. state)
    if not ans then return nil, err end
    ans = ans:gsub("%s+$", "")
    if ans ~= "" then return nil, be .. "/" .. srv .. ": " .. ans end
    return true
end

local function inflight(ctx, worker)
    local rows, err = stat_rows(ctx)
    if not rows then return nil, err end
    local n = 0
    for _, m in ipairs(rows_of(rows, worker)) do n = n + num(m.row.scur) + num(m.row.qcur) end
    return n
end

local function wait_idle(ctx, worker, timeout)
    local t0 = rt.now()
    while true do
        local n, err = inflight(ctx, worker)
        if not n then return fail("drain --wait: " .. err) end
        local waited = rt.now() - t0
        if n == 0 then
            io.stdout:write(worker, ": no request in flight (waited ", math.floor(waited + 0.5),
                " s); it can be stopped\n")
            return 0
        end
        if waited >= timeout then
            return fail("drain --wait: " .. worker .. " still has " .. n .. " request(s) in flight after " ..
                math.floor(timeout) .. " s (it stays drained)")
        end
        rt.sleep(0.25)
    end
end

local function names(list)
    local out = {}
    for _, m in ipairs(list) do out[#out + 1] = m.be.name end
    return table.concat(out, ", ")
end

-- The runtime API's context and the stat rows of worker o.arg, for drain
-- and ready. -> ctx, rows (one per backend the worker serves in) | nil, exit code
local function worker_rows(cmd, o, env)
    local ctx, err = context(o, env, false)
    if not ctx then return nil, fail(cmd .. ": " .. err) end
    local rows, rerr = stat_rows(ctx)
    if not rows then return nil, fail(cmd .. ": " .. rerr) end
    local mine = rows_of(rows, o.arg)
    if #mine == 0 then return nil, unknown_worker(rows, o.arg) end
    return ctx, mine
end

function M.drain(o, env)
    local ctx, mine = worker_rows("drain", o, env)
    if not ctx then return mine end
    local alone = stranded(mine)
    if #alone > 0 and not o.force then
        return fail("drain: refusing to drain " .. o.arg .. ": it is the only server left in pool(s) " ..
            table.concat(alone, ", ") .. ", so their requests would get 503 until `synroute ready " .. o.arg ..
            "` (a stream writer has exactly one process; main serves what no worker serves). " ..
            "Nothing was changed; --force drains anyway.")
    end
    local done = {}
    for _, m in ipairs(mine) do
        local ok, serr = set_state(ctx, m.be.name, m.row.svname, "maint")
        if not ok then
            for _, d in ipairs(done) do set_state(ctx, d.be.name, d.row.svname, "ready") end
            return fail("drain: " .. serr .. (#done > 0 and " (undone in the other pools)" or ""))
        end
        done[#done + 1] = m
    end
    io.stdout:write("drained ", o.arg, " in ", names(mine), ": requests in flight finish; new requests,",
        " including users, rooms and origins pinned to it, go to the other servers until `synroute ready ",
        o.arg, "`\n")
    if #alone > 0 then
        io.stdout:write("warning: pool(s) ", table.concat(alone, ", "), " now have no server: their requests get 503\n")
    end
    if o.wait then return wait_idle(ctx, o.arg, o.wait) end
    return 0
end

function M.ready(o, env)
    local ctx, mine = worker_rows("ready", o, env)
    if not ctx then return mine end
    local bad = {}
    for _, m in ipairs(mine) do
        local ok, serr = set_state(ctx, m.be.name, m.row.svname, "ready")
        if not ok then bad[#bad + 1] = serr end
    end
    if #bad > 0 then return fail("ready: " .. table.concat(bad, "; ")) end
    local rows = stat_rows(ctx) or {}
    local states = {}
    for _, m in ipairs(rows_of(rows, o.arg)) do
        states[#states + 1] = m.be.name .. " " .. ((m.row.status or "?"):match("^%S+"))
    end
    io.stdout:write("ready ", o.arg, ": ", table.concat(states, ", "),
        " (a server with a failing health check takes requests once the check passes;",
        " pinned users, rooms and origins return to it)\n")
    return 0
end

---------------------------------------------------------------------------
-- show

local TOKEN_PREFIXES = { "syt_", "syr_", "mat_", "mar_", "mct_", "mcr_", "mpt_", "MDAx" }

local function looks_like_token(s)
    for _, p in ipairs(TOKEN_PREFIXES) do
        if s:sub(1, #p) == p then return true end
    end
    return #s >= 40 and not s:find("[@!#:%.]")
end

local function pct_decode(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- -> kind, readable key, hkey | nil, message, exit code
local function key_of(o, eng)
    if o.token_file then
        local fh = o.token_file == "-" and io.stdin or io.open(o.token_file, "rb")
        if not fh then return nil, "show: cannot read " .. o.token_file, 1 end
        local tok = (fh:read("l") or ""):gsub("^%s+", ""):gsub("%s+$", "")
        if fh ~= io.stdin then fh:close() end
        if tok == "" or tok:find("[%s%c]") then return nil, "show: no token on the first line of " .. o.token_file, 1 end
        -- the same request a client's /sync makes: the router derives the key
        local d = eng:explain{ method = "GET", target = "/_matrix/client/v3/sync?since=s1",
                               headers = { "Authorization: Bearer " .. tok } }
        if d.key_kind ~= "user" and d.key_kind ~= "token-hash" then
            return nil, "show: the router derives no user key from that token", 1
        end
        return d.key_kind, d.key, d.hash
    end
    local a = o.arg
    if looks_like_token(a) then
        return nil, "show: that looks like an access token; tokens are never taken on the command line " ..
            "(ps and the shell history would keep them): use --token-file FILE (- for stdin)", 2
    end
    local kind = o.kind
    if not kind then
        local c = a:sub(1, 1)
        kind = (c == "!" or c == "#") and "room" or "user"
    end
    local key = a
    if kind == "user" then
        key = a:gsub("^@", ""):match("^[^:]*")
    elseif kind == "room" then
        key = pct_decode(a)
    end
    if key == "" then return nil, "show: empty " .. kind, 2 end
    return kind, key, eng.router:hkey(kind, key)
end

local function server_name(ctx, be, entry)
    if entry.server_key and entry.server_key ~= "" then return entry.server_key end
    local text = ctx.client:cmd("show servers state " .. be) or ""
    for _, r in ipairs(rt.parse_servers_state(text)) do
        if r.srv_id == entry.server_id then return r.srv_name end
    end
    return "server id " .. tostring(entry.server_id)
end

local function show_backend(ctx, be, hkey, tables, rows)
    if not tables[be] then
        local active = {}
        for _, b in ipairs(backends_of(rows)) do
            if b.name == be then
                for _, r in ipairs(b.servers) do if not is_backup(r) then active[#active + 1] = r.svname end end
            end
        end
        if #active == 0 then return "no server" end
        return active[1] .. " (the pool's only server; no stick table)"
    end
    local text, err = ctx.client:cmd("show table " .. be .. " key " .. hkey)
    if not text then return nil, err end
    local e = rt.parse_table(text)[1]
    if not e then return "not pinned (its next request is placed by consistent hashing, then pinned)" end
    local exp = tonumber(e.exp)
    local srv = server_name(ctx, be, e)
    local state = ""
    for _, r in ipairs(rows) do
        if r.pxname == be and r.svname == srv and not usable(r) then
            state = "; it is " .. r.status .. ": requests go elsewhere meanwhile, the pin stays"
        end
    end
    return srv .. " (pinned" .. (exp and (", expires in " .. math.floor(exp / 1000) .. " s") or "") .. state .. ")"
end

function M.show(o, env)
    local ctx, err = context(o, env, true)
    if not ctx then return fail("show: " .. err) end
    local kind, key, hkey = key_of(o, ctx.eng)
    if not kind then
        if hkey == 2 then return require("synroute.cmdline").usage_error(M.parser("show"), key) end
        return fail(key)
    end
    local kinds = kinds_by_backend(ctx.eng)
    local want = kind == "token-hash" and "user" or kind
    local bes = {}
    for be, ks in pairs(kinds) do
        if ks[want] then bes[#bes + 1] = be end
    end
    table.sort(bes)
    local rows, rerr = stat_rows(ctx)
    if not rows then return fail("show: " .. rerr) end
    local ttext, terr = ctx.client:cmd("show table")
    if not ttext then return fail("show: " .. terr) end
    local tables = rt.parse_tables(ttext)
    io.stdout:write(kind, " ", key, " (hashed key ", hkey, ")\n")
    if #bes == 0 then io.stdout:write("  no pool is keyed by ", want, " in this deployment\n") end
    for _, be in ipairs(bes) do
        local classes = {}
        for c in pairs(kinds[be][want]) do classes[#classes + 1] = c end
        table.sort(classes)
        local line, serr = show_backend(ctx, be, hkey, tables, rows)
        if not line then return fail("show: " .. serr) end
        io.stdout:write("  ", pad(be, 18), pad("(" .. table.concat(classes, ", ") .. ")", 28), line, "\n")
    end
    return 0
end

---------------------------------------------------------------------------

local COMMANDS = { status = M.status, drain = M.drain, ready = M.ready, show = M.show }

function M.main(cmd, args, env)
    env = env or {}
    local o, err, p = M.parse_args(cmd, args or {})
    if not o then return require("synroute.cmdline").usage_error(p, err) end
    if o.help then return require("synroute.cmdline").help(p) end
    return COMMANDS[cmd](o, env)
end

return M
