-- synroute.probe - everything synroute asks a running Synapse: which release
-- it is, and whether its processes answer GET /health.
--
--   probe.release(s)            -> "1.121" | nil      ("1.121.1", "1.98.0rc1", "v1.157.0 (b=...)")
--   probe.main_url(dep)         -> base URL of main ("http://127.0.0.1:8008"), unix socket path
--   probe.get(url, opts)        -> body, status | nil, err    (one HTTP GET, via curl)
--   probe.version(dep, url)     -> { release="1.121", raw="1.121.1", url=, server= } | nil, err
--   probe.choose(doc, release)  -> version, warning | nil, err
--                                  (which known routes.yaml release to use for it)
--   probe.health(dep)           -> { "file:line: probe: ... did not answer ..." }
--                                  (every server of every pool and main, 2 s each)
--
-- The version comes from `GET /_matrix/federation/v1/version` on main, which
-- Synapse answers without authentication:
--   {"server":{"name":"Synapse","version":"1.121.1"}}
-- If main's listener does not serve federation (a 4xx), the unauthenticated
-- `GET /_synapse/admin/v1/server_version` ({"server_version":"1.121.1"}) is
-- tried next. An explicit URL (--probe-url) is used alone; it may answer
-- either JSON shape.
--
-- HTTP is done by curl (synroute.exec), with a 5 s limit; no Lua socket
-- library is needed. JSON is decoded by lua-cjson.

local cjson = require("cjson.safe")
local exec = require("synroute.exec")
local routes = require("synroute.routes")
local values = require("synroute.values")

local M = {}

M.FEDERATION_PATH = "/_matrix/federation/v1/version"
M.ADMIN_PATH = "/_synapse/admin/v1/server_version"
M.TIMEOUT = 5
M.HEALTH_TIMEOUT = 2

-- "1.121.1" -> "1.121"; also "v1.98.0rc1", "1.157.0 (b=matrix-org-hotfixes,...)".
function M.release(s)
    if type(s) ~= "string" then return nil end
    local maj, min = s:match("^%s*[vV]?(%d+)%.(%d+)")
    if not maj or #maj > 4 or #min > 6 then return nil end
    return tostring(math.tointeger(tonumber(maj))) .. "." .. tostring(math.tointeger(tonumber(min)))
end

-- Base URL of main's public listener from a deployment (synroute.config),
-- plus the unix socket path when main listens on one.
function M.main_url(dep)
    local m = dep and dep.main
    if type(m) ~= "table" then return nil, "the deployment has no main process" end
    if m.path then
        return "http://localhost", m.path
    end
    if not m.host or not m.port then
        return nil, "the deployment names no HTTP listener of main"
    end
    local h = m.host
    if h == "0.0.0.0" or h == "*" or h == "" then h = "127.0.0.1" end
    if h == "::" then h = "::1" end
    return "http://" .. values.host_port(h, m.port)
end

-- One GET. Returns body, status (number) | nil, message.
-- opts.unix_socket, opts.timeout (seconds), opts.curl (command, default "curl").
function M.get(url, opts)
    opts = opts or {}
    if type(url) ~= "string" or not url:match("^https?://[^%s]+$") then
        return nil, "not an http(s) URL: " .. tostring(url)
    end
    local body_file = os.tmpname()
    local argv = { opts.curl or "curl", "-s", "-S", "--max-time", tostring(opts.timeout or M.TIMEOUT),
                   "-o", body_file, "-w", "%{http_code}" }
    if opts.unix_socket then
        argv[#argv + 1] = "--unix-socket"
        argv[#argv + 1] = opts.unix_socket
    end
    argv[#argv + 1] = "--"
    argv[#argv + 1] = url
    local out, rc, errs = exec.run(argv)
    local f = io.open(body_file, "rb")
    local body = f and f:read("a") or ""
    if f then f:close() end
    os.remove(body_file)
    local code = tonumber(out:match("^(%d%d%d)$") or "")
    if rc == 127 then return nil, "curl is not installed" end
    if rc ~= 0 or not code or code == 0 then
        local msg = errs:match("([^\n]*)\n?$"):gsub("^curl: %(%d+%) ", ""):gsub("%s+$", "")
        return nil, msg ~= "" and msg or ("no answer (curl exit " .. tostring(rc) .. ")")
    end
    return body, code
end

-- Version from a JSON body of either endpoint. Returns raw, server_name | nil, why.
local function version_from_body(body)
    local doc = cjson.decode(body)
    if type(doc) ~= "table" then
        return nil, "the answer is not JSON: " .. string.format("%q", body:sub(1, 80))
    end
    if type(doc.server) == "table" and type(doc.server.version) == "string" then
        return doc.server.version, type(doc.server.name) == "string" and doc.server.name or nil
    end
    if type(doc.server_version) == "string" then
        return doc.server_version, "Synapse"
    end
    return nil, "the answer has no server.version: " .. string.format("%q", body:sub(1, 80))
end

-- One answer of `u`: { release=, raw=, url=, server= } | nil, why, status
local function version_at(u, where, opts)
    local body, code = M.get(u, opts)
    if not body then return nil, "cannot read the Synapse version from " .. where .. ": " .. tostring(code) end
    if code ~= 200 then
        return nil, "cannot read the Synapse version from " .. where .. ": HTTP status " .. tostring(code), code
    end
    local raw, server = version_from_body(body)
    if not raw then return nil, "cannot read the Synapse version from " .. where .. ": " .. server end
    local rel = M.release(raw)
    if not rel then
        return nil, "cannot read the Synapse version from " .. where ..
            ": " .. string.format("%q", raw) .. " is not a version like 1.121.1"
    end
    return { release = rel, raw = raw, url = where, server = server }
end

-- Ask the running Synapse. `url` (optional) overrides the URL derived from
-- dep's main. Returns { release=, raw=, url=, server= } | nil, message.
function M.version(dep, url, opts)
    opts = opts or {}
    local tries, sock = {}, nil
    if url then
        tries[1] = url
    else
        local base, s = M.main_url(dep)
        if not base then return nil, s end
        sock = s
        tries = { base .. M.FEDERATION_PATH, base .. M.ADMIN_PATH }
    end
    local got, why, code
    for _, u in ipairs(tries) do
        local where = sock and (u .. " (unix socket " .. sock .. ")") or u
        got, why, code = version_at(u, where, { unix_socket = sock, timeout = opts.timeout, curl = opts.curl })
        -- a 4xx: the listener may lack the federation resource; try the next
        if got or not code or code < 400 or code > 499 then break end
    end
    return got, why
end

-- Which release of routes.yaml (doc from synroute.routes.load) to use for a
-- probed release. Newer than the newest known: the newest, with a warning.
-- Older than the oldest known: an error. Between two known releases (a gap in
-- synapse_versions): the newest known release before it, with a warning.
function M.choose(doc, release)
    if not routes.parse_version(release) then
        return nil, string.format("%q is not a Synapse version like 1.121", tostring(release))
    end
    local list = doc.synapse_versions
    local oldest, latest = list[1], list[#list]
    if routes.compare_versions(release, oldest) < 0 then
        return nil, "Synapse " .. release .. " is older than the oldest release synroute knows (" ..
            oldest .. "); upgrade Synapse or use an older synroute"
    end
    if routes.compare_versions(release, latest) > 0 then
        return latest, "Synapse " .. release .. " is newer than the newest release synroute knows (" ..
            latest .. "): using the routes of " .. latest .. "; update synroute"
    end
    local best
    for _, v in ipairs(list) do
        if v == release then return v end
        if routes.compare_versions(v, release) < 0 then best = v end
    end
    return best, "Synapse " .. release .. " is not in routes.yaml's synapse_versions: using the routes of " .. best
end

-- main and every server of every pool over TCP, each address once
local function health_targets(dep)
    local targets = { { name = "main", s = dep.main } }
    local seen = { [values.server_addr(dep.main)] = true }
    for _, pool in ipairs(values.sorted_keys(dep.pools)) do
        for _, s in ipairs(dep.pools[pool].servers) do
            if not s.path and not seen[values.server_addr(s)] then
                seen[values.server_addr(s)] = true
                targets[#targets + 1] = { name = s.name, s = s }
            end
        end
    end
    return targets
end

function M.health(dep, opts)
    local problems = {}
    for _, t in ipairs(health_targets(dep)) do
        if not t.s.path then
            local addr = values.server_addr(t.s)
            local _, code = M.get("http://" .. addr .. "/health",
                { timeout = M.HEALTH_TIMEOUT, curl = opts and opts.curl })
            if code ~= 200 then
                problems[#problems + 1] = (t.s.where or dep.file) .. ": probe: " .. t.name .. " at " .. addr ..
                    " did not answer GET /health with 200 (got " .. (math.type(code) and code or "no answer") .. ")"
            end
        end
    end
    return problems
end

return M
