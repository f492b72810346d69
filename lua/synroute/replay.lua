-- synroute.replay - `synroute replay`: what synroute would do with the
-- requests of an existing proxy's access log, before switching to it.
--
--   synroute replay [--config FILE] [--synapse-version V] [--format F]
--                   [--map FROM=PROCESS]... [--all] ACCESS_LOG|-
--
--   local replay = require("synroute.replay")
--   replay.main(args, { default_config = path|nil }) -> exit code (0, 1, 2)
--   replay.parse_line(line, format) -> rec | nil, reason
--   replay.mask(target) -> target with every token-like query value masked
--   replay.scrub(s)     -> s with every token-like substring masked
--
-- Every request goes through the engine `synroute explain` uses
-- (synroute.api); nothing here re-implements routing. What a log cannot
-- carry (the Authorization header) is said in the output.
--
-- Formats (--format auto: decided line by line):
--   nginx     "combined", optionally followed by the upstream address
--             ($upstream_addr: host:port, [v6]:port, unix:/path, a list of
--             them as nginx writes for retries; bare, quoted, or as
--             upstream=/upstream_addr= key=value field)
--   haproxy   HAProxy's `option httplog` line (a syslog prefix is skipped),
--             with its backend/server field; and synroute's own log-format
--             (method, path without query, class=, backend=)
--
-- Exit codes: 0 ok, 1 data error (unreadable log, no request in it, bad
-- config), 2 usage error.

local synroute = require("synroute")
local api = require("synroute.api")
local cmdline = require("synroute.cmdline")
local values = require("synroute.values")

local M = {}

-- The parser of `synroute replay` (synroute.cmdline).
function M.parser()
    local p = cmdline.parser("replay", "Replays an access log of the proxy in front of Synapse today (nginx " ..
        "\"combined\", HAProxy `option httplog`, or synroute's own HAProxy log) through the router " ..
        "`synroute explain` uses, and prints what synroute would do: a table per class (count, share, " ..
        "backend), and every request whose recorded upstream is not a server of the backend synroute picks, " ..
        "summarised by (from process -> to backend).",
        "Query strings are printed with access_token and every token-like value masked; the Authorization " ..
        "header is never read or printed.")
    p:argument("ACCESS_LOG", "The log (- for standard input)."):target("log")
    cmdline.config_option(p)
    cmdline.synapse_version(p)
    p:option("--format", "auto (default, per line), nginx or haproxy."):argname("F")
    p:option("--map", "The recorded upstream FROM (an address, a server name or backend/server; * matches any " ..
        "text) is the Synapse process PROCESS (a worker_name, main, or a glob of them); repeatable. Without it, " ..
        "an address matches the process listening there (or, for a host no listener has, the only process on " ..
        "that port), and an HAProxy server name matches a worker_name."):argname("FROM=PROCESS")
        :count("*"):target("maps")
    p:flag("--all", "Also print every request's decision.")
    return p
end

---------------------------------------------------------------------------
-- Masking. Applied to every target and upstream this command echoes; lines
-- it cannot parse are reported by number only.

local MASK = "***"

-- Parameter names whose value is a secret whatever it looks like.
local function secret_name(name)
    local n = name:lower()
    return n:find("token", 1, true) or n:find("secret", 1, true) or n:find("passw", 1, true)
        or n == "sig" or n == "signature" or n == "code" or n == "password"
end

local function pct_decode(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function form_decode(s)
    return pct_decode((s:gsub("%+", " ")))
end

-- Token shapes: Synapse access/refresh tokens, MAS tokens, macaroons.
local TOKEN_PATTERNS = {
    "sy[tr]_[%w+/=%%_-]+",
    "m[ac][rt]_[%w_]+", "mcr_[%w_]+", "mpt_[%w_]+",
    "MDAx[%w+/=_-]+",
}

local function looks_like_token(v)
    -- decode repeatedly: a token may be percent-encoded once or twice
    for _ = 1, 3 do
        for _, p in ipairs(TOKEN_PATTERNS) do
            if v:find(p) then return true end
        end
        local d = pct_decode(v)
        if d == v then break end
        v = d
    end
    return false
end

-- Every token-like substring of s masked (a safety net under mask()).
function M.scrub(s)
    s = tostring(s)
    for _, p in ipairs(TOKEN_PATTERNS) do
        s = s:gsub(p, function(t) return t:sub(1, 4) .. MASK end)
    end
    -- percent-encoded underscore: syt%5F..., mat%5F...
    s = s:gsub("([sS][yY][tTrR])%%5[fF][%w+/=%%_-]*", "%1_" .. MASK)
    s = s:gsub("([mM][aAcCpP][tTrR])%%5[fF][%w%%_-]*", "%1_" .. MASK)
    return s
end

-- target with the values of secret parameters and of token-like values
-- replaced by ***; the path is scrubbed too.
function M.mask(target)
    target = tostring(target)
    local path, query = target:match("^([^?]*)%?(.*)$")
    if not path then
        return M.scrub(target)
    end
    local parts = {}
    for part, sep in (query .. "&"):gmatch("([^&;]*)([&;])") do
        local k, v = part:match("^([^=]*)=(.*)$")
        if k and (secret_name(form_decode(k)) or looks_like_token(form_decode(v))) then
            part = k .. "=" .. MASK
        elseif not k and looks_like_token(form_decode(part)) then
            part = MASK
        end
        parts[#parts + 1] = part .. sep
    end
    local q = table.concat(parts):sub(1, -2)
    return M.scrub(path) .. "?" .. M.scrub(q)
end

---------------------------------------------------------------------------
-- Parsing.

-- nginx escapes '"', '\' and bytes outside 32..126 as \xHH (escape=default)
-- or as JSON (escape=json).
local function nginx_unescape(s)
    s = s:gsub("\\x(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    s = s:gsub("\\u00(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    s = s:gsub('\\(["\\/])', "%1")
    return s
end

-- HAProxy writes '"', '#', '{', '|', '}' and control bytes of the request
-- line as #HH.
local function haproxy_unescape(s)
    return (s:gsub("#(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "METHOD TARGET [HTTP/x]" -> method, target | nil
local function split_request(r)
    local method, target, rest = r:match("^(%S+) (%S+)(.*)$")
    if not method then return nil end
    if rest ~= "" and not rest:match("^ HTTP/%d[%d.]*$") then return nil end
    if not method:match("^[!#$%%&'*+.^_`|~%w-]+$") then return nil end
    if not (target:sub(1, 1) == "/" or target:match("^[%a][%w+.-]*://") or target == "*") then
        return nil
    end
    return method, target
end

-- One address as nginx or a config writes it -> "host:port" | "unix:/path" | nil
local function norm_addr(a)
    a = a:gsub("^%s+", ""):gsub("[%s,]+$", "")
    if a:match("^unix:") then return a end
    local h, p = a:match("^%[([%x:.]+)%]:(%d+)$")
    if not h then h, p = a:match("^([%w.-]+):(%d+)$") end
    if not h then return nil end
    return values.endpoint(h, p)
end

-- The upstream of an nginx line: what follows the user agent. Returns the
-- last address of the first address list (the one that answered), "-"
-- when no field is an address but one is "-" (nginx answered itself), or nil.
local function nginx_upstream(extra)
    if extra == nil or extra:match("^%s*$") then return nil end
    local keyed = extra:match('upstream_addr="([^"]*)"') or extra:match('upstream="([^"]*)"')
        or extra:match("upstream_addr=(%S+)") or extra:match("upstream=(%S+)")
    local candidates = {}
    if keyed then
        candidates[1] = keyed
    else
        for q in extra:gmatch('"([^"]*)"') do candidates[#candidates + 1] = q end
        -- bare fields: an address list may be "a:1, b:2" or "a:1 : b:2"
        local bare = extra:gsub('"[^"]*"', " ")
        candidates[#candidates + 1] = bare
    end
    -- the first field holding an address wins; "-" only when none does
    local dash = false
    for _, c in ipairs(candidates) do
        local last
        local started = false
        for tok in c:gmatch("%S+") do
            if tok == "-" then dash = true end
            local a = norm_addr(tok)
            if a then
                last, started = a, true
            elseif started and tok ~= ":" and tok ~= "," then
                break
            end
        end
        if last then return last end
    end
    if dash then return "-" end
    return nil
end

-- combined: $remote_addr - $remote_user [$time_local] "$request" $status
-- $body_bytes_sent "$http_referer" "$http_user_agent", then anything.
local NGINX_HEAD = "^(%S+) %S+ %S+ %[([^%]]+)%] "

local function read_quoted(line, i)
    -- line:sub(i, i) == '"'; returns the contents and the index after the quote
    local j = i + 1
    local buf = {}
    while j <= #line do
        local c = line:sub(j, j)
        if c == "\\" then
            buf[#buf + 1] = line:sub(j, j + 1)
            j = j + 2
        elseif c == '"' then
            return table.concat(buf), j + 1
        else
            buf[#buf + 1] = c
            j = j + 1
        end
    end
    return nil
end

local function parse_nginx(line)
    local src, _, i = line:match(NGINX_HEAD .. "()")
    if not src then return nil, "not an access-log line" end
    if line:sub(i, i) ~= '"' then return nil, "not an access-log line" end
    local request, j = read_quoted(line, i)
    if not request then return nil, "not an access-log line" end
    local status, after = line:match("^ (%d%d%d) %S+()", j)
    if not status then return nil, "not an access-log line" end
    -- referer and user agent (both quoted in "combined")
    local k = after
    for _ = 1, 2 do
        if line:sub(k, k + 1) ~= ' "' then return nil, "not a combined line (no referer and user agent)" end
        local _, nk = read_quoted(line, k + 1)
        if not nk then return nil, "not a combined line (no referer and user agent)" end
        k = nk
    end
    local extra = line:sub(k)
    local method, target = split_request(nginx_unescape(request))
    if not method then return nil, "no HTTP request in the line" end
    local rec = {
        format = "nginx", src = src, method = method, target = target,
        status = tonumber(status),
    }
    local up = nginx_upstream(extra)
    if up and up ~= "-" then
        rec.upstream = up
        rec.upstream_addr = up
    elseif up == "-" then
        rec.upstream_none = true
    end
    return rec
end

-- HAProxy: "<ci>:<cp> [<date>] <frontend> <backend>/<server> <timers> <status> <bytes> ..."
local HAP_HEAD = "(%S+):(%d+) %[(%d%d?/%a%a%a/%d%d%d%d:%d%d:%d%d:%d%d[.%d]*)%] (%S+) ([^%s/]+)/(%S+) (%S+) (%-?%d+) (%+?%-?%d+) (.*)$"

local function parse_haproxy(line)
    local ci, _, _, fe, be, srv, timers, status, _, rest = line:match(HAP_HEAD)
    if not ci then return nil, "not an access-log line" end
    if not timers:match("^[+%-%d/]+$") then return nil, "not an access-log line" end
    local rec = { src = ci, status = tonumber(status), frontend = fe, backend = be, server = srv }
    local lc, lb = rest:match(" class=(%S*) backend=(%S*)%s*$")
    if lc then
        -- synroute's log-format: ... %HM %HPO class=... backend=...
        local method, path = rest:match("(%S+) (%S+) class=%S* backend=%S*%s*$")
        if not method then return nil, "no HTTP request in the line" end
        method, path = split_request(haproxy_unescape(method .. " " .. path))
        if not method then return nil, "no HTTP request in the line" end
        rec.format = "synroute"
        rec.method, rec.target = method, path
        rec.no_query = true
        rec.logged_class = (lc ~= "-" and lc ~= "") and lc or nil
        rec.logged_backend = (lb ~= "-" and lb ~= "") and lb or nil
    else
        local request = rest:match('"([^"]*)"%s*$')
        if not request then return nil, "no HTTP request in the line" end
        local method, target = split_request(haproxy_unescape(request))
        if not method then return nil, "no HTTP request in the line" end
        rec.format = "haproxy"
        rec.method, rec.target = method, target
    end
    if srv:match("^<.*>$") then
        rec.upstream_none = true   -- <NOSRV>, <STATS>, ...: the proxy answered itself
    else
        rec.upstream = be .. "/" .. srv
    end
    return rec
end

local PARSERS = { nginx = { parse_nginx }, haproxy = { parse_haproxy }, auto = { parse_nginx, parse_haproxy } }

-- One log line -> rec | nil, reason. rec = { format=, src=, method=, target=,
-- status=, upstream= (address or backend/server) | nil, upstream_none=,
-- no_query= (synroute's log: path only), logged_class=, logged_backend= }
function M.parse_line(line, format)
    local best
    for _, p in ipairs(PARSERS[format or "auto"]) do
        local rec, why = p(line)
        if rec then return rec end
        -- prefer the more specific reason of a parser that recognised the line
        if why ~= "not an access-log line" or not best then best = why end
    end
    return nil, best
end

---------------------------------------------------------------------------
-- Recorded upstream -> Synapse processes.

-- --map FROM: '*' matches any text, every other character itself.
local function from_pattern(g)
    return (g:gsub("[%[%]%?\\]", "\\%0"))
end

local function canon_name(n)
    return n:lower():gsub("_", "-")
end

-- dep -> resolver(rec) -> { [process] = true }, how | nil
-- maps: list of { from = pattern, to = { process, ... } }. In order:
--   --map (FROM against the address, backend/server or server name);
--   an address equal to a process's listener (localhost = 127.0.0.1);
--   an address whose host is no listener's host but whose port only one
--     process listens on (containers: the log has the container's address,
--     the Synapse files its name), how = "port";
--   a server name equal to a worker_name (case and "-"/"_" aside).
local function resolver(dep, maps)
    local by_addr, by_name, hosts, by_port = {}, {}, {}, {}
    for _, p in ipairs(dep.processes or {}) do
        local key = values.endpoint(p.host, p.port, p.path)
        by_addr[key] = by_addr[key] or p.name
        if p.port then
            hosts[key:match("^(.*):%d+$")] = true
            local ps = by_port[p.port] or {}
            ps[p.name] = true
            by_port[p.port] = ps
        end
    end
    local names = { main = "main" }
    for _, w in ipairs(dep.workers or {}) do names[canon_name(w.name)] = w.name end
    for k, v in pairs(names) do by_name[k] = v end
    return function(rec)
        local up = rec.upstream
        if not up then return nil end
        local srv = not rec.upstream_addr and up:match("/([^/]*)$") or nil
        for _, m in ipairs(maps) do
            if synroute.name_match(m.from, up) or (srv and synroute.name_match(m.from, srv)) then
                local set = {}
                for _, p in ipairs(m.to) do set[p] = true end
                return set, "map"
            end
        end
        if rec.upstream_addr then
            local p = by_addr[rec.upstream_addr]
            if p then return { [p] = true }, "address" end
            local host, port = rec.upstream_addr:match("^(.*):(%d+)$")
            local ps = port and not hosts[host] and by_port[tonumber(port)]
            local only = ps and next(ps)
            if only and next(ps, only) == nil then return { [only] = true }, "port" end
            return nil
        end
        local p = srv and by_name[canon_name(srv)]
        return p and { [p] = true } or nil, "name"
    end
end

-- Parse the --map values against the deployment. -> list | nil, err
local function build_maps(dep, specs)
    local all = { "main" }
    for _, w in ipairs(dep.workers or {}) do all[#all + 1] = w.name end
    local out = {}
    for _, spec in ipairs(specs) do
        local from, to = spec:match("^(.+)=(.+)$")
        if not from then return nil, "--map " .. spec .. ": expected FROM=PROCESS" end
        from = norm_addr(from) or from   -- localhost:8008 = 127.0.0.1:8008
        local list = {}
        for _, name in ipairs(all) do
            if synroute.name_match(to, name) then list[#list + 1] = name end
        end
        if #list == 0 then
            return nil, "--map " .. spec .. ": no Synapse process of the deployment is named " .. to
        end
        out[#out + 1] = { from = from_pattern(from), to = list }
    end
    return out
end

---------------------------------------------------------------------------
-- The replay.

-- The servers that serve a pool in normal operation: its active servers
-- (backups, including main as every non-writer pool's backup, serve only
-- when every active server is down). Main's own backend is main.
local function pool_members(dep, pool)
    local m = {}
    if pool == "main" then
        m.main = true
        return m
    end
    local p = dep.pools[pool]
    for _, s in ipairs(p and p.servers or {}) do
        if not s.backup then m[s.name] = true end
    end
    return m
end

local sorted_names = values.sorted_keys

local function subset(a, b)
    for k in pairs(a) do if not b[k] then return false end end
    return true
end

-- Which way the query string refines a route (the log has no query).
local REFINE_PARAM = { since = "since", pos = "pos" }

-- A list that counts everything but keeps only the first `cap` items
-- (a big log must not hold every moved request in memory).
local LISTED = 200
local function capped(cap) return { n = 0, cap = cap or LISTED } end
local function push(list, item)
    list.n = list.n + 1
    if list.n <= list.cap then list[list.n] = item end
end

-- Count one more of t[key], which starts as `first` (with count 0).
local function tally(t, key, first)
    local e = t[key]
    if not e then
        e = first
        e.count = 0
        t[key] = e
    end
    e.count = e.count + 1
end

local Replay = {}
Replay.__index = Replay

function M.new(eng, dep, maps)
    local by_id = {}
    for _, e in ipairs(eng.routes and eng.routes.routes or {}) do by_id[e.id] = e end
    local self = setmetatable({
        eng = eng, dep = dep, resolve = resolver(dep, maps or {}), routes = by_id,
        total = 0, classes = {}, moved = capped(), moves = {}, compared = 0, unmapped = {},
        answered_by_proxy = 0, no_upstream = 0, by_port = {}, bad = {}, formats = {}, logged = 0,
        logged_differ = capped(), refined_by_log = 0, decisions = {},
    }, Replay)
    return self
end

-- The verdict for one parsed request: { class, backend, label, members }
function Replay:decide(rec)
    local d = self.eng:explain{ method = rec.method, target = rec.target, src = rec.src }
    if rec.no_query then
        -- synroute's log carries the path only: for a route the query refines
        -- (since / pos), take the branch the logged class shows
        local e = self.routes[d.route]
        local param = e and REFINE_PARAM[e.refine]
        if param and rec.logged_class and rec.logged_class ~= d.class then
            local d2 = self.eng:explain{ method = rec.method, target = rec.target .. "?" .. param .. "=0", src = rec.src }
            if d2.class == rec.logged_class then
                d = d2
                self.refined_by_log = self.refined_by_log + 1
            end
        end
    end
    local v = { class = d.class, backend = d.backend, route = d.route }
    -- what HAProxy answers itself (explain's answer, synroute.api.answer)
    if d.answer == 400 then
        v.backend, v.label, v.answered = "rejected", "rejected (400)", true
    elseif d.answer == 404 then
        v.backend, v.label, v.answered = "blocked", "blocked (404)", true
    elseif d.answer == 403 then
        v.backend, v.label, v.answered = "forbidden", "forbidden (403, admin_networks)", true
    elseif d.answer == 405 then
        v.backend, v.label, v.answered = "refused", "refused (405, method)", true
    end
    v.label = v.label or v.backend
    v.members = v.answered and {} or pool_members(self.dep, v.backend)
    return v
end

function Replay:add(lineno, line, format, keep)
    if line:match("^%s*$") then return end
    local rec, why = M.parse_line(line, format)
    if not rec then
        self.bad[why] = self.bad[why] or capped(20)
        push(self.bad[why], lineno)
        return
    end
    self.total = self.total + 1
    self.formats[rec.format] = (self.formats[rec.format] or 0) + 1
    local v = self:decide(rec)
    tally(self.classes, v.class .. "\0" .. v.label, { class = v.class, backend = v.label })

    local item = { line = lineno, method = rec.method, target = rec.target, class = v.class,
                   backend = v.label, no_query = rec.no_query }
    if rec.upstream_none then
        self.answered_by_proxy = self.answered_by_proxy + 1
        item.from = "(proxy)"
    elseif not rec.upstream then
        self.no_upstream = self.no_upstream + 1
    else
        local set, how = self.resolve(rec)
        if how == "port" and set then
            local p = next(set)
            self.by_port[rec.upstream] = p
        end
        if not set then
            self.unmapped[rec.upstream] = (self.unmapped[rec.upstream] or 0) + 1
            item.from = rec.upstream .. "?"
        else
            self.compared = self.compared + 1
            item.from = table.concat(sorted_names(set), ",")
            if not subset(set, v.members) then
                item.moved = true
                push(self.moved, item)
                tally(self.moves, item.from .. "\0" .. v.label, { from = item.from, to = v.label })
            end
        end
    end
    if rec.format == "synroute" then
        -- compare with what synroute itself logged
        self.logged = self.logged + 1
        local want_class = rec.logged_class or "-"
        local want_be = rec.logged_backend or "-"
        local got_class, got_be = v.class, v.backend
        if v.answered and v.backend ~= "blocked" then got_class, got_be = "-", "-" end
        if v.backend == "blocked" and want_class == "-" then got_class, got_be = "-", "-" end
        if got_class ~= want_class or got_be ~= want_be then
            item.logged = want_class .. "/" .. want_be
            push(self.logged_differ, item)
        end
    end
    if keep then self.decisions[#self.decisions + 1] = item end
end

---------------------------------------------------------------------------
-- Output.

local function pct(n, total)
    if total == 0 then return "0.0%" end
    return string.format("%.1f%%", 100 * n / total)
end

local function line_list(nums)
    local out = {}
    for i = 1, math.min(nums.n, nums.cap) do out[#out + 1] = tostring(nums[i]) end
    local s = table.concat(out, ", ")
    if nums.n > nums.cap then s = s .. ", ... (" .. (nums.n - nums.cap) .. " more)" end
    return s
end

-- What is echoed of a request: method and masked target, with control and
-- non-ASCII bytes (which a log may carry decoded) percent-encoded.
local function request_text(it)
    local t = M.mask(it.target):gsub("[%c\127-\255]", function(c) return string.format("%%%02X", c:byte()) end)
    return it.method .. " " .. t
end

local function plural(n, one, many)
    return n .. " " .. (n == 1 and one or many)
end

-- The header: what was replayed, and what a log cannot tell.
function Replay:render_header(w, opts)
    local fmts = sorted_names(self.formats)
    for i, f in ipairs(fmts) do fmts[i] = f .. " " .. self.formats[f] end
    local nbad = 0
    for _, l in pairs(self.bad) do nbad = nbad + l.n end
    w("synroute replay: " .. opts.log_name .. " against " .. tostring(self.dep.file) .. " (Synapse " ..
        self.eng.version .. (opts.version_note and (", " .. opts.version_note) or "") .. ")")
    w(plural(self.total, "request", "requests") .. (#fmts > 0 and (" (" .. table.concat(fmts, ", ") .. ")") or "") ..
        "; " .. plural(nbad, "line", "lines") .. " not replayed")
    w("note: access logs carry no Authorization header. Replayed: each request's class and backend.")
    w("      Not replayed: which server of a pool a user's requests stick to (user-keyed")
    w("      stickiness needs the token), and appservice routing of as_tokens sent in the header.")
    if self.formats.synroute then
        w("note: synroute's own log has no query string: for /sync and sliding sync the")
        w("      branch (sync or initial_sync) follows the logged class (" .. self.refined_by_log .. " requests),")
        w("      and as_tokens sent as access_token are not seen either.")
    end
    for _, why in ipairs(sorted_names(self.bad)) do
        w("not replayed (" .. why .. "): line " .. line_list(self.bad[why]))
    end
end

function Replay:render_requests(w)
    w("")
    w("requests:")
    for _, it in ipairs(self.decisions) do
        w(string.format("  line %-6d %-26s %-24s %s%s%s", it.line, it.class, it.backend, request_text(it),
            it.from and ("  from " .. it.from) or "", it.moved and "  MOVES" or ""))
    end
end

-- by count, then name
local function by_count(a_count, b_count, ...)
    if a_count ~= b_count then return a_count > b_count end
    local n = select("#", ...)
    for i = 1, n, 2 do
        local x, y = select(i, ...)
        if x ~= y then return x < y end
    end
    return false
end

function Replay:render_classes(w)
    w("")
    w(string.format("%-22s %8s %7s  %s", "class", "requests", "share", "backend"))
    local rows = {}
    for _, c in pairs(self.classes) do rows[#rows + 1] = c end
    table.sort(rows, function(a, b) return by_count(a.count, b.count, a.class, b.class, a.backend, b.backend) end)
    for _, c in ipairs(rows) do
        w(string.format("%-22s %8d %7s  %s", c.class, c.count, pct(c.count, self.total), c.backend))
    end
    w(string.format("%-22s %8d %7s", "total", self.total, pct(self.total, self.total)))
end

-- "a = x, b = y" of a map, sorted by key
local function pairs_text(t, fmt)
    local parts = {}
    for _, k in ipairs(sorted_names(t)) do parts[#parts + 1] = string.format(fmt, k, t[k]) end
    return table.concat(parts, ", ")
end

function Replay:render_upstreams(w)
    w("")
    w(string.format("moved: %d of %d requests with a known upstream would reach another process",
        self.moved.n, self.compared))
    if self.no_upstream > 0 then
        w("  " .. plural(self.no_upstream, "request has", "requests have") ..
            " no upstream in the log (nginx: log $upstream_addr; HAProxy: httplog has backend/server)")
    end
    if self.answered_by_proxy > 0 then
        w("  " .. plural(self.answered_by_proxy, "request was", "requests were") ..
            " answered by the proxy itself (no upstream)")
    end
    if next(self.by_port) then
        w("  matched by port only (no listener has that host; --map to override): " ..
            pairs_text(self.by_port, "%s = %s"))
    end
    if next(self.unmapped) then
        w("  upstreams that are no Synapse process of the deployment (--map FROM=PROCESS): " ..
            pairs_text(self.unmapped, "%s (%d)"))
    end
end

function Replay:render_moves(w)
    local mv = {}
    for _, m in pairs(self.moves) do mv[#mv + 1] = m end
    table.sort(mv, function(a, b) return by_count(a.count, b.count, a.from, b.from, a.to, b.to) end)
    w("")
    w(string.format("  %-28s    %-30s %8s", "from process", "to backend", "requests"))
    for _, m in ipairs(mv) do
        w(string.format("  %-28s -> %-30s %8d", m.from, m.to, m.count))
    end
    w("")
    w("requests that move:")
    for _, it in ipairs(self.moved) do
        w(string.format("  line %-6d %s -> %s  %s  (class %s)", it.line, it.from, it.backend, request_text(it), it.class))
    end
    if self.moved.n > self.moved.cap then
        w("  ... " .. (self.moved.n - self.moved.cap) .. " more (--all lists every request)")
    end
end

function Replay:render_logged(w)
    w("")
    w(string.format("synroute's own log: %d of %d requests get the class and backend it logged",
        self.logged - self.logged_differ.n, self.logged))
    for _, it in ipairs(self.logged_differ) do
        w(string.format("  line %-6d logged %s, replay %s/%s  %s", it.line, it.logged, it.class, it.backend,
            request_text(it)))
    end
    if self.logged_differ.n > self.logged_differ.cap then
        w("  ... " .. (self.logged_differ.n - self.logged_differ.cap) .. " more (--all lists every request)")
    end
end

-- The report, line by line through out(line); every line is scrubbed.
function Replay:render(out, opts)
    local function w(s) out(M.scrub(s or "")) end
    self:render_header(w, opts)
    if opts.all then self:render_requests(w) end
    self:render_classes(w)
    self:render_upstreams(w)
    if self.moved.n > 0 then self:render_moves(w) end
    if self.logged > 0 then self:render_logged(w) end
end

---------------------------------------------------------------------------
-- The command.

local function usage_error(msg)
    return cmdline.usage_error(M.parser(), msg)
end

local function check_format(o)
    o.format = o.format or "auto"
    if not PARSERS[o.format] then
        return nil, "--format must be auto, nginx or haproxy, not " .. string.format("%q", o.format)
    end
    return o
end

function M.main(argv, env)
    env = env or {}
    local o, code = cmdline.read(M.parser(), argv, check_format)
    if not o then return code end
    local cfg = o.config or env.default_config
    if not cfg then
        return usage_error("no deployment: give --config FILE (or set SYNROUTE_CONFIG)")
    end

    local config = require("synroute.config")
    local dep, problems = config.load(cfg, { synapse_version = o.synapse_version })
    if not dep then
        io.stderr:write("synroute: replay: ", config.format_problems(problems), "\n")
        return 1
    end
    local maps, merr = build_maps(dep, o.maps)
    if not maps then return usage_error(merr) end
    local eng, eerr = api.new{ dep = dep }
    if not eng then
        io.stderr:write("synroute: replay: ", tostring(eerr), "\n")
        return 1
    end
    local version_note
    if o.synapse_version then
        version_note = "--synapse-version"
    elseif not dep.synapse_version then
        version_note = "synapse_version is not set in " .. tostring(dep.file) ..
            ": only the routes every release serves on workers go to workers; pass --synapse-version"
        io.stderr:write("warning: replay: ", version_note, "\n")
    end

    local fh, ferr
    if o.log == "-" then
        fh = io.stdin
    else
        fh, ferr = io.open(o.log, "rb")
        if not fh then
            io.stderr:write("synroute: replay: cannot read ", tostring(ferr), "\n")
            return 1
        end
    end
    local r = M.new(eng, dep, maps)
    local n = 0
    while true do
        local line, rerr = fh:read("l")
        if line == nil then
            if rerr then
                io.stderr:write("synroute: replay: cannot read ", o.log, ": ", tostring(rerr), "\n")
                if fh ~= io.stdin then fh:close() end
                return 1
            end
            break
        end
        n = n + 1
        r:add(n, (line:gsub("\r$", "")), o.format, o.all)
    end
    if fh ~= io.stdin then fh:close() end
    if r.total == 0 then
        local nbad = 0
        for _, l in pairs(r.bad) do nbad = nbad + l.n end
        io.stderr:write("synroute: replay: ", o.log == "-" and "standard input" or o.log, ": no request line in ",
            n, " lines", nbad > 0 and (" (" .. nbad .. " not parsed; is it an nginx combined or HAProxy httplog?)") or "",
            "\n")
        return 1
    end
    r:render(function(s) io.stdout:write(s, "\n") end, {
        log_name = o.log == "-" and "standard input" or o.log,
        all = o.all, version_note = version_note,
    })
    return 0
end

return M
