-- synroute.api - one engine = routes.yaml + a deployment -> a synroute.router.
-- The same code path serves HAProxy (lua/synroute/haproxy.lua), the CLI and the tests.
--
--   local eng, err = api.new{ config = "path/synroute.yaml" }     -- a real deployment
--   local eng, err = api.new{ pools = "all", version = "1.100" }  -- synthetic deployment
--   local eng, err = api.new{}                                    -- no config: all to main
--   eng:input{ method=, target=, headers=, src= }  -> "METHOD SRC PATHQ AUTH"
--   eng:explain{ ... }                              -> { class, backend, key_kind, key, hash, route,
--                                                       answer?, reason? } (answer: the status HAProxy
--                                                       answers itself, api.answer; the backend is then unused)
--   eng:route{ ... }                                -> "backend|class|hkey" (what HAProxy gets)
--   eng.router   the synroute.router userdata (the one HAProxy uses)
--   eng.spec     the router spec from policy.build; eng.backends: backends used
--   eng.dep      the deployment (nil without one); eng.version: Synapse version used
--   eng.warnings list of "file:line: ..." strings (config and routes.yaml)
--
-- api.new options:
--   config  = path of synroute.yaml (loaded by synroute.config)
--   dep     = a deployment table (docs/design.md "Deployment model")
--   pools   = "all" | { "generic", "sync", ... } : a synthetic deployment whose
--             pools are these (no servers); main serves media unless "media" is a pool
--   version = Synapse version, overrides dep.synapse_version (default: the
--             deployment's; for a config file without one "conservative"
--             (synroute.routes.CONSERVATIVE); without a config the newest known)
--   routes  = path of routes.yaml (default: synroute.paths.routes_file)
-- At most one of config, dep, pools.

local synroute = require("synroute")
local classes = require("synroute.classes")
local config = require("synroute.config")
local paths = require("synroute.paths")
local policy = require("synroute.policy")
local routes_mod = require("synroute.routes")
local values = require("synroute.values")

local M = {}

local POOL_OK = classes.set(classes.POOLS)

local function synthetic_dep(pools)
    local names = {}
    if pools == "all" then
        names = classes.POOLS
    elseif type(pools) == "table" then
        for k, v in pairs(pools) do
            if type(k) == "number" then names[#names + 1] = v
            elseif v then names[#names + 1] = k end
        end
    else
        return nil, "pools must be \"all\" or a list of pool names"
    end
    local dep = {
        file = nil,
        main = { name = "main", serves_media = true },
        pools = {},
        as_tokens = {},
        warnings = {},
    }
    for _, n in ipairs(names) do
        if type(n) ~= "string" or not POOL_OK[n] then
            return nil, "unknown pool " .. string.format("%q", tostring(n)) ..
                " (pools are class names, generic and appservice)"
        end
        dep.pools[n] = { servers = {} }
    end
    if dep.pools.media then
        dep.main.serves_media = false
    end
    return dep
end

local function load_config(path)
    if type(path) ~= "string" or path == "" then
        return nil, "config must be a file path"
    end
    local dep, problems = config.load(path)
    if not dep then return nil, config.format_problems(problems) end
    return dep
end

local Eng = {}
Eng.__index = Eng

function M.new(opts)
    opts = opts or {}
    if type(opts) ~= "table" then
        error("api.new: expected a table of options", 2)
    end
    local n = (opts.config ~= nil and 1 or 0) + (opts.dep ~= nil and 1 or 0) + (opts.pools ~= nil and 1 or 0)
    if n > 1 then
        return nil, "give at most one of config, dep and pools"
    end
    local dep, err
    if opts.config ~= nil then
        dep, err = load_config(opts.config)
    elseif opts.dep ~= nil then
        if type(opts.dep) ~= "table" then
            return nil, "dep must be a table"
        end
        dep = opts.dep
    elseif opts.pools ~= nil then
        dep, err = synthetic_dep(opts.pools)
    end
    if err then
        return nil, err
    end

    local routes_path = opts.routes or paths.routes_file
    if not routes_path then
        return nil, "cannot find routes.yaml (pass routes=)"
    end
    local doc, rerr = routes_mod.load(routes_path)
    if not doc then
        return nil, rerr
    end
    -- a deployment whose release nobody named: only what every release
    -- serves on workers (routes.CONSERVATIVE); never the newest by default
    local version = opts.version or (dep and dep.synapse_version) or
        (dep and dep.file and routes_mod.CONSERVATIVE) or nil
    local active, verr = routes_mod.active(doc, version)
    if not active then
        return nil, verr
    end
    local spec, backends = policy.build(active, dep)
    if not spec then
        return nil, backends
    end
    local router, berr = synroute.router(spec)
    if not router then
        return nil, "building the router: " .. tostring(berr)
    end
    local warnings = {}
    for _, w in ipairs(doc.warnings or {}) do warnings[#warnings + 1] = w end
    if dep and type(dep.warnings) == "table" then
        for _, w in ipairs(dep.warnings) do warnings[#warnings + 1] = w end
    end
    if version == routes_mod.CONSERVATIVE and not opts.version and not (dep and dep.synapse_version) then
        warnings[#warnings + 1] = dep.file .. ":1: synapse_version is not set: only the routes workers serve " ..
            "in every release (" .. doc.oldest .. " to " .. doc.latest .. ") go to workers; set synapse_version"
    end
    if version and version ~= routes_mod.CONSERVATIVE and doc.synapse_versions then
        local known = false
        for _, v in ipairs(doc.synapse_versions) do
            if v == version then known = true break end
        end
        if not known then
            warnings[#warnings + 1] = string.format("%s: Synapse version %s is not in synapse_versions",
                routes_path, version)
        end
    end
    return setmetatable({
        router = router,
        spec = spec,
        backends = backends,
        dep = dep,
        version = version or doc.latest,
        routes_file = routes_path,
        routes = doc,
        warnings = warnings,
    }, Eng)
end

--------------------------------------------------------------------------
-- the string HAProxy builds:
--   set-var-fmt "%[method] %[req.fhdr(x-forwarded-for)] %[pathq] %[req.fhdr(authorization)]"
-- Checked against HAProxy 2.6: req.fhdr gives the LAST Authorization header
-- (whole value, not split at commas), its value without surrounding
-- spaces/tabs; an absent or empty header prints as nothing (AUTH empty);
-- pathq drops the scheme and authority of an absolute-form target and is
-- empty when there is no path ("http://host", "*").

local function trim(s)
    return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", ""))
end

local function header_list(headers)
    local list = {}
    if headers == nil then
        return list
    end
    if type(headers) == "string" then
        headers = { headers }
    end
    if type(headers) ~= "table" then
        error("headers must be a list of \"Name: value\" strings", 3)
    end
    if #headers > 0 then
        for _, h in ipairs(headers) do
            if type(h) ~= "string" then
                error("headers must be a list of \"Name: value\" strings", 3)
            end
            local name, value = h:match("^([^:]*):(.*)$")
            if not name then
                name, value = h, ""
            end
            list[#list + 1] = { trim(name), trim(value) }
        end
    else
        -- a map { Authorization = "..." }; order of a map is undefined, so
        -- only one value per name makes sense here
        local names = {}
        for k in pairs(headers) do names[#names + 1] = k end
        table.sort(names)
        for _, k in ipairs(names) do
            list[#list + 1] = { trim(k), trim(tostring(headers[k])) }
        end
    end
    return list
end

function M.pathq(target)
    if type(target) ~= "string" then
        error("target must be a string", 2)
    end
    local rest = target:match("^[%a][%w+.-]*://(.*)$")
    if rest then
        local slash = rest:find("/", 1, true)
        if not slash then
            return ""
        end
        return rest:sub(slash)
    end
    if target == "*" then
        return ""
    end
    return target
end

-- The generated frontend's path rules (synroute.haproxy_gen, step 1), so
-- that explain sees the path HAProxy routes on (checked against HAProxy
-- 2.6.12 and 3.0.11 by tests/e2e/normalize.sh). Only when the path has "//",
-- "/.", "%" or a backslash; the query is never touched:
--   percent-decode-unreserved strict  (a "%" not followed by two hex digits: 400)
--   percent-to-uppercase strict
--   path-merge-slashes
--   path-strip-dot            ("/a/./b" -> "/a/b", "/a/." -> "/a/")
--   path-strip-dotdot full    (leading ".." dropped too)
-- then 400 for what is left that no Matrix path has (BAD_SUB, BAD_END).
local function strip_dots(path)
    local segs, out = {}, {}
    for seg in (path:sub(2) .. "/"):gmatch("([^/]*)/") do segs[#segs + 1] = seg end
    local n = #segs
    -- path-strip-dot
    local nodot = {}
    for i, seg in ipairs(segs) do
        if seg == "." then
            if i == n then nodot[#nodot + 1] = "" end
        else
            nodot[#nodot + 1] = seg
        end
    end
    -- path-strip-dotdot full
    n = #nodot
    for i, seg in ipairs(nodot) do
        if seg == ".." then
            if #out > 0 then out[#out] = nil end
            if i == n then out[#out + 1] = "" end
        else
            out[#out + 1] = seg
        end
    end
    return "/" .. table.concat(out, "/")
end

local function pct_unreserved(hex)
    local c = string.char(tonumber(hex, 16))
    if c:match("^[%w%-%._~]$") then return c end
    return "%" .. hex:upper()
end

-- acl synroute_bad_path (after the rewrites): substrings, endings, and
-- case-insensitive substrings
local BAD_SUB = { { "\\", "a backslash" }, { "/./", "a dot segment" }, { "/../", "a dot segment" },
    { "..%2F", "\"..\" next to an encoded slash" }, { "%2F..", "\"..\" next to an encoded slash" },
    { "..%5C", "\"..\" next to an encoded backslash" }, { "%5C..", "\"..\" next to an encoded backslash" },
    { "%C0", "an overlong UTF-8 sequence" }, { "%C1", "an overlong UTF-8 sequence" },
    { "%E0%8", "an overlong UTF-8 sequence" }, { "%E0%9", "an overlong UTF-8 sequence" },
    { "%F0%8", "an overlong UTF-8 sequence" } }
local BAD_END = { "/.", "/.." }

local function bad_path(path)
    for _, b in ipairs(BAD_SUB) do
        if path:find(b[1], 1, true) then return b[2] end
    end
    for _, e in ipairs(BAD_END) do
        if path:sub(-#e) == e then return "a dot segment" end
    end
    if path:lower():find("%252e", 1, true) then return "a double-encoded dot" end
end

-- pathq -> the pathq HAProxy routes on, and nil | why HAProxy answers 400
-- instead ("invalid percent-encoding ..." or "invalid path: ...").
function M.normalize(pathq)
    local path, query = pathq:match("^([^?]*)(.*)$")
    if not (path:find("//", 1, true) or path:find("/.", 1, true) or path:find("[%%\\]")) then
        return pathq, nil
    end
    if path:gsub("%%%x%x", ""):find("%", 1, true) then
        return pathq, "invalid percent-encoding in the path: HAProxy answers 400 before routing"
    end
    path = path:gsub("%%(%x%x)", pct_unreserved)
    if path:sub(1, 1) == "/" then
        if path:find("//", 1, true) then path = path:gsub("/+", "/") end
        if path:find("/.", 1, true) then path = strip_dots(path) end
    end
    local bad = bad_path(path)
    if bad then return path .. query, "invalid path (" .. bad .. "): HAProxy answers 400 before routing" end
    return path .. query, nil
end

-- explain without a deployment: the admin_networks default of synroute.yaml
local DEFAULT_ADMIN = require("synroute.settings").SCHEMA.keys.admin_networks.default

local function admin_ok(dep, src)
    for _, n in ipairs(dep and dep.admin_networks or DEFAULT_ADMIN) do
        if values.in_network(src or "", n) then return true end
    end
    return false
end

-- What the generated frontend answers itself before routing (steps 1 and 3
-- of synroute.haproxy_gen): status, why | nil (HAProxy routes the request).
local function answer_normalized(dep, method, pathq, bad, src)
    if method == "CONNECT" or method == "TRACE" then
        return 405, "no homeserver serves " .. method .. ": HAProxy answers 405"
    end
    if bad then return 400, bad end
    local path = pathq:match("^[^?]*")
    if path:sub(1, 9):lower() ~= "/_synapse" then return nil end
    local admin = path == "/_synapse/admin" or path:sub(1, 16) == "/_synapse/admin/"
    local metrics = dep and dep.admin_metrics and path == "/_synapse/metrics"
    if not (admin or metrics or path:sub(1, 17) == "/_synapse/client/") then
        return 404, "not public under /_synapse/: HAProxy answers 404 (no Lua needed)"
    end
    if (admin or metrics) and not admin_ok(dep, src) then
        return 403, (admin and "the admin API" or "metrics") .. " only from admin_networks: HAProxy answers 403"
    end
end

function M.answer(dep, method, target, src)
    local pathq, bad = M.normalize(M.pathq(target))
    return answer_normalized(dep, method, pathq, bad, src)
end

-- req's normalised path and query, and why HAProxy refuses it (or nil)
local function normalized(req)
    if type(req) ~= "table" then
        error("input: expected a table { method=, target=, headers=, src= }", 3)
    end
    return M.normalize(M.pathq(req.target or "/"))
end

-- the converter's input for req, its path and query already normalised
local function input_line(req, pathq)
    local auth = ""
    for _, h in ipairs(header_list(req.headers)) do
        if h[1]:lower() == "authorization" then
            auth = h[2]
        end
    end
    return (req.method or "GET") .. " " .. (req.src or "127.0.0.1") .. " " .. pathq .. " " .. auth
end

function M.input(req)
    return input_line(req, (normalized(req)))
end

function Eng.input(_, req)
    return M.input(req)
end

function Eng:explain(req)
    local pathq, bad = normalized(req)
    local d = self.router:explain(input_line(req, pathq))
    local out = {
        class = d.class, backend = d.backend, key_kind = d.key_kind,
        key = d.key or "", hash = d.hash or "", route = d.route,
    }
    if d.reason ~= nil and d.reason ~= "" then
        out.reason = d.reason
    end
    if d.appservice then
        out.appservice = true
    end
    local status, why = answer_normalized(self.dep, req.method or "GET", pathq, bad, req.src or "127.0.0.1")
    if status then
        out.answer, out.reason = status, why
    elseif d.class == "blocked" then
        out.answer = 404
    end
    return out
end

function Eng:route(req)
    return self.router:route(M.input(req))
end

M.EXPLAIN_ORDER = { "class", "backend", "key_kind", "key", "hash", "route", "answer", "reason", "appservice" }

return M
