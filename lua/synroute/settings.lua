-- synroute.settings - the keys of synroute.yaml: ONE schema table says, for
-- every key, what it holds, its default and what a bad value is told; one
-- walk checks a file against it.
--
--   local settings = require("synroute.settings")
--   local s, at = settings.read(doc, report)   (doc: synroute.yamlfile doc)
--     s     the values, defaults applied (docs/design.md "Deployment model")
--     at(path) -> "file:line" of a value: at("limits.sync"), at("listen.2")
--   settings.SCHEMA
--   settings.check(schema, doc, report) -> the same for another schema
--
-- A schema entry (a table) is one of
--   a value    type     a checker of TYPES below (durations, sizes, ... are
--                       synroute.values'); or check = function(v) -> value | nil, why
--              min/max  range (integers; durations in seconds)
--              enum     the values it may take (a list)
--              default  the value when the key is absent (null counts as absent)
--              expect   the message for a bad value: "<path>: <expect>"
--   a list     type = "strings": a string or a list of strings; item = a
--              checker of one string, item_expect = "'%s' is not ...";
--              nonempty: an empty list is "<path>: <expect>"
--              (null: an empty list; absent: default)
--   a section  keys = { name = entry }: a mapping with these keys;
--              each = entry: for every other key, whose name is first
--              checked by each.name(key) -> nil | message;
--              optional: absent stays nil (else absent is an empty mapping,
--              so the defaults inside apply); nonempty: {} is a problem;
--              short = "k": a value that is not a mapping stands for { k = value };
--              finish(values, ctx) -> the section's value (checks across keys);
--              expect: what a value that is not a mapping is told;
--              allow_false: the value false stands for "none" (kept as false)
--   and any entry may be required: true ("<path>: <expect>" when absent) or
--   a message ("<section>: <message>").
-- Adding a setting is adding one entry. An unknown key is
-- "<section>: unknown setting 'k' (the known keys)".

local classes = require("synroute.classes")
local runtime = require("synroute.runtime")
local values = require("synroute.values")
local target = require("synroute.target")
local yamlfile = require("synroute.yamlfile")

local M = {}

local sorted_keys = values.sorted_keys

---------------------------------------------------------------------------
-- value checkers: v -> ok, value, magnitude (for min/max)

local TYPES = {}

function TYPES.string(v) return type(v) == "string", v end
function TYPES.nonempty(v) return type(v) == "string" and v ~= "", v end
function TYPES.boolean(v) return type(v) == "boolean", v end
function TYPES.integer(v) return math.type(v) == "integer", v, v end

function TYPES.duration(v)
    local secs = values.duration(v)
    return secs ~= nil, math.type(v) == "integer" and tostring(v) or v, secs
end

function TYPES.size(v)
    local s = values.size(v)
    return s ~= nil, s
end

function TYPES.addr(v)
    return values.addr(v) ~= nil, v
end

function TYPES.rate(v)
    local count, period, secs = values.rate(v)
    return count ~= nil, count and { count = count, period = period, secs = secs }
end

-- "1.157", "v1.157.2", 1.157 -> "1.157"
local function release(v)
    if math.type(v) == "integer" then v = tostring(v) end
    local r = type(v) == "string" and v:match("^v?(%d+%.%d+)")
    return r or nil, 'expected a release like "1.157"'
end
M.release = release

-- "/metrics": an absolute path without spaces, quotes or a query
local function metrics_path(v)
    if type(v) == "string" and v:match("^/[%w%-%._~/]*$") and not v:find("//", 1, true) then return v end
    return nil, "expected an absolute path like /metrics (letters, digits, - . _ ~ /)"
end

---------------------------------------------------------------------------
-- names of keys in maps

local NAMED_POOL = classes.set(classes.NAMED_POOLS)

local function pool_name(k)
    if classes.WRITERS[k] then
        return "pools." .. k .. ": writer pools come from stream_writers in the Synapse config, not from pools"
    elseif not NAMED_POOL[k] then
        return "pools: unknown pool '" .. tostring(k) .. "' (known: " .. table.concat(classes.NAMED_POOLS, ", ") .. ")"
    end
end

local function limit_pool_name(k)
    if not (NAMED_POOL[k] or classes.WRITERS[k] or k == "main") then
        return "limits: unknown pool '" .. tostring(k) .. "' (a pool name, main or per_user)"
    end
end

local function keyed_class(k)
    if not classes.DEFAULT_KEY[k] then
        return "limits.per_user: '" .. tostring(k) .. "' is not a class with a per-user key (" ..
            table.concat(sorted_keys(classes.DEFAULT_KEY), ", ") .. ")"
    end
end

local function peer_name(k)
    if type(k) ~= "string" or not k:match("^[%w][%w%._%-]*$") then
        return "peers.nodes: '" .. tostring(k) .. "' is not a valid peer name (letters, digits, . _ -)"
    end
end

---------------------------------------------------------------------------
-- sections that shape their values

local function limits_finish(v)
    local out = { pools = {}, per_user = v.per_user or {} }
    for k, rec in pairs(v) do
        if k ~= "per_user" then out.pools[k] = rec end
    end
    return out
end

local function peers_finish(v, ctx)
    local rec = { name = "synroute", nodes = {} }
    local nodes = v.nodes or {}
    for _, n in ipairs(sorted_keys(nodes)) do
        rec.nodes[#rec.nodes + 1] = { name = n, addr = nodes[n] }
    end
    local l = v["local"]
    if l ~= nil and nodes[l] == nil then
        ctx.report:problem(ctx.at("peers.local"), "peers.local: '" .. tostring(l) .. "' is not one of peers.nodes")
    else
        rec["local"] = l
    end
    return rec
end

local function timeouts_finish(v, ctx)
    if ctx.present.timeouts and (values.duration(v.server) or 90) < 90 then
        ctx.report:warn(ctx.at("timeouts.server"),
            "timeouts.server is below 90s: long-polling /sync requests (30 s and more) may be cut")
    end
    return v
end

---------------------------------------------------------------------------
-- the schema

local function timeout(default)
    return { type = "duration", default = default, expect = "expected a duration like 90s" }
end

local function whole(lo, hi, default)
    return { type = "integer", min = lo, max = hi, default = default,
             expect = "expected a whole number from " .. lo .. " to " .. hi }
end

M.SCHEMA = { expect = "expected a YAML mapping at the top level", keys = {
    synapse = { required = true, expect = "expected a mapping with 'homeserver' (and optionally 'workers')",
        keys = {
            homeserver = { type = "strings", required = true, nonempty = true, expect = "no homeserver.yaml given" },
            workers = { type = "strings" },
        } },
    synapse_version = { check = release },
    hash_secret = { type = "nonempty", expect = "expected a non-empty string" },
    listen = { type = "strings", item = values.addr, item_expect = "'%s' is not host:port",
        default = { "127.0.0.1:8080" } },
    admin_networks = { type = "strings", item = values.network,
        item_expect = "'%s' is not an address or CIDR network", default = { "127.0.0.1/32", "::1/128" } },
    admin_metrics = { type = "boolean", default = false, expect = "expected true or false" },
    pools = { optional = true, expect = "expected a mapping of pool name to worker names",
        each = { name = pool_name, short = "servers", keys = {
            servers = { type = "strings" },
            backup = { type = "strings" },
        } } },
    stick = { expect = "expected a mapping with size and expire", keys = {
        size = { type = "size", default = "100k", expect = "expected a number of entries like 100k" },
        expire = { type = "duration", min = 1, default = "30m", expect = "expected a duration like 30m" },
    } },
    timeouts = { expect = "expected a mapping", finish = timeouts_finish, keys = {
        connect = timeout("5s"), client = timeout("180s"), server = timeout("180s"),
        tunnel = timeout("1h"), http_request = timeout("10s"), http_keep_alive = timeout("60s"),
        queue = timeout("30s"), check_interval = timeout("2s"), check = timeout("5s"),
    } },
    log = { check = function(v)
        if type(v) == "string" and v ~= "" and not v:find('[%c#"\\\']') then return v end
        return nil, "expected an HAProxy log target string (one line, no quotes, backslashes or #)"
    end },
    nbthread = whole(1, 64),
    limits = { expect = "expected a mapping of pool name to { maxconn, queue } (and per_user)",
        finish = limits_finish,
        keys = {
            per_user = { optional = true, expect = "expected a mapping of class to a rate like 3/10s",
                each = { name = keyed_class, type = "rate",
                    expect = "expected requests/period like 3/10s (at least 1 request, period at least 1s)" } },
        },
        each = { name = limit_pool_name, expect = "expected a mapping with maxconn and queue", keys = {
            maxconn = { type = "integer", min = 1, max = 100000, expect = "expected a whole number from 1 to 100000",
                required = "maxconn is required (requests one server handles at once)" },
            queue = whole(1, 100000, 100),
            queue_timeout = { type = "duration", expect = "expected a duration like 10s" },
        } } },
    peers = { optional = true, allow_false = true,
        expect = "expected a mapping with nodes (and optionally local), or false",
        finish = peers_finish, keys = {
            ["local"] = { check = function(v)
                return type(v) == "string" and v or nil, "'" .. tostring(v) .. "' is not one of peers.nodes"
            end },
            nodes = { required = true, nonempty = true,
                expect = "expected a mapping of node name to host:port (its peer address)",
                each = { name = peer_name, type = "addr", expect = "expected host:port" } },
        } },
    mas = { expect = "expected a mapping with resolve, cache_size, timeout", keys = {
        resolve = { type = "boolean", default = false, expect = "expected true or false" },
        cache_size = { type = "integer", min = 1, default = 10000,
            expect = "expected a whole number of entries (at least 1)" },
        timeout = { type = "duration", min = 0.001, default = "2s", expect = "expected a duration like 2s" },
    } },
    haproxy = { optional = true, expect = 'expected a mapping with version and lua, like { version: "3.0", lua: "5.4" }',
        keys = {
            version = { check = target.check_haproxy },
            lua = { check = target.check_lua },
        } },
    runtime = runtime.SCHEMA,
    -- metrics: a frontend on its own address (docs/deployment.md "Metrics")
    metrics = { optional = true, short = "listen",
        expect = 'expected a mapping with listen (and optionally path), like { listen: "127.0.0.1:9101" }',
        keys = {
            listen = { type = "strings", item = values.addr, item_expect = "'%s' is not host:port",
                nonempty = true, required = "listen is required (the address Prometheus scrapes)",
                expect = "expected host:port" },
            path = { check = metrics_path, default = "/metrics" },
        } },
} }

---------------------------------------------------------------------------
-- the walk. ctx: doc, report, where (path -> "file:line"), present (path ->
-- true for every key the file has)

local function join(path, k)
    if path == "" then return tostring(k) end
    return path .. "." .. tostring(k)
end

-- "<path>: <text>", or the text alone for the file as a whole
local function say(path, text)
    if path == "" then return text end
    return path .. ": " .. text
end

local function is_mapping(v)
    return type(v) == "table" and v[1] == nil
end

local function copy(v)
    if type(v) ~= "table" then return v end
    local t = {}
    for k, x in pairs(v) do t[k] = copy(x) end
    return t
end

local check_entry

local function check_scalar(e, v, path, where, ctx)
    if e.check then
        local val, why = e.check(v)
        if val == nil then ctx.report:problem(where, say(path, why)) end
        return val
    end
    local ok, val, mag = TYPES[e.type](v)
    if ok and ((e.min and mag < e.min) or (e.max and mag > e.max)) then ok = false end
    if ok and e.enum and not classes.set(e.enum)[val] then ok = false end
    if not ok then
        ctx.report:problem(where, say(path, e.expect))
        return nil
    end
    return val
end

-- A string or a list of strings; the place of the i-th good one is
-- recorded as "<pos_path>.<i>".
local function check_strings(e, parent, key, path, pos_path, ctx)
    local out = {}
    for _, it in ipairs(ctx.doc:strings(parent, key, path, ctx.report)) do
        if e.item and not e.item(it[1]) then
            ctx.report:problem(it[2], say(path, e.item_expect:format(it[1])))
        else
            out[#out + 1] = it[1]
            ctx.where[pos_path .. "." .. #out] = it[2]
        end
    end
    if e.nonempty and #out == 0 then ctx.report:problem(ctx.doc:at(parent, key), say(path, e.expect)) end
    return out
end

-- The entry for key k of a section, or nil (the problem is reported).
local function entry_of(e, k, path, where, ctx)
    local sub = e.keys and e.keys[k]
    if sub then return sub end
    if e.each then
        local bad = e.each.name and e.each.name(k)
        if bad then ctx.report:problem(where, bad) end
        return not bad and e.each or nil
    end
    ctx.report:problem(where, say(path, "unknown setting '" .. tostring(k) .. "' (" ..
        table.concat(sorted_keys(e.keys or {}), ", ") .. ")"))
end

-- Defaults, and the keys a section must have.
local function fill_defaults(e, out, path, where, ctx)
    for _, k in ipairs(sorted_keys(e.keys or {})) do
        local sub, kpath = e.keys[k], join(path, k)
        if out[k] == nil and not ctx.present[kpath] then
            if sub.required == true then
                ctx.report:problem(where, say(kpath, sub.expect))
            elseif sub.required then
                ctx.report:problem(where, say(path, sub.required))
            elseif sub.default ~= nil then
                out[k] = copy(sub.default)
            elseif sub.keys and not sub.optional then
                out[k] = check_entry(sub, {}, nil, nil, kpath, ctx)
            end
        end
    end
end

local function check_section(e, v, where, path, ctx)
    if not is_mapping(v) or (e.nonempty and next(v) == nil) then
        ctx.report:problem(where, say(path, e.expect))
        return nil
    end
    local out = {}
    for _, k in ipairs(sorted_keys(v)) do
        local kpath, kwhere = join(path, k), ctx.doc:at(v, k)
        local sub = entry_of(e, k, path, kwhere, ctx)
        ctx.where[kpath], ctx.present[kpath] = kwhere, true
        if sub then out[k] = check_entry(sub, v[k], v, k, kpath, ctx) end
    end
    fill_defaults(e, out, path, where, ctx)
    if e.finish then out = e.finish(out, ctx) end
    return out
end

-- The value v (key `key` of table `parent`; both nil for a default section).
function check_entry(e, v, parent, key, path, ctx)
    local where = parent and ctx.doc:at(parent, key) or (ctx.doc.file .. ":1")
    if e.type == "strings" then return check_strings(e, parent, key, path, path, ctx) end
    if not (e.keys or e.each) then
        if yamlfile.is_null(v) then return copy(e.default) end
        return check_scalar(e, v, path, where, ctx)
    end
    if e.short and not yamlfile.is_null(v) and not is_mapping(v) then
        local out = { [e.short] = check_strings(e.keys[e.short], parent, key, path, join(path, e.short), ctx) }
        fill_defaults(e, out, path, where, ctx)
        return out
    end
    if v == false and e.allow_false then return false end
    if yamlfile.is_null(v) then
        if e.required then ctx.report:problem(where, say(path, e.expect)) end
        if e.optional or e.required then return nil end
        v = {}
    end
    return check_section(e, v, where, path, ctx)
end

function M.check(schema, doc, report)
    local ctx = { doc = doc, report = report, where = {}, present = {} }
    function ctx.at(path) return ctx.where[path] or (doc.file .. ":1") end
    local s = check_section(schema, doc.root, doc.file .. ":1", "", ctx) or {}
    return s, ctx.at
end

function M.read(doc, report)
    return M.check(M.SCHEMA, doc, report)
end

return M
