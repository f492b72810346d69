-- synroute.synapse - a Synapse deployment as its own files describe it: the
-- homeserver config (one file or several, merged the way Synapse merges the
-- files it is given), the worker files, their listeners, instance_map,
-- stream_writers and the appservice registrations.
--
--   local m = synapse.read(s, at, file, report)
--     s, at    synroute.settings.read's values and positions
--     file     synroute.yaml (relative paths in it start from its directory)
--   m.hs            the merged homeserver config: key -> value
--   m.hs_at(k)      "file:line" of top-level key k, in the file it came from
--   m.hs_doc(k)     that file (a synroute.yamlfile doc)
--   m.hs_file       the first homeserver file; m.hs_dir its directory
--   m.hs_failed     a homeserver file could not be read (reported)
--   m.main          process "main"; m.workers its workers (natural order);
--   m.by_name       name -> process (main too)
--   m.writers       { { stream=, class=nil|class, where=, names = { {name, where} } } }
--   m.as_tokens     { { token=, sender=, id= } } from app_service_config_files
-- process  = { name=, app=, file=, where=, listeners = { listener }, enable_media_repo= }
-- listener = { where=, type=, port=|path=, host=, names = { resource = true },
--              x_forwarded=, public=, replication= }
--
-- Several homeserver files: Synapse reads its -c files in order and each
-- file's top-level keys replace the same keys of the files before it (a
-- shallow merge); `synapse.homeserver` lists them, and a pattern
-- (conf.d/*.yaml) stands for its files in sorted order, as Synapse reads a
-- directory. Every key keeps the file:line it came from.

local synroute = require("synroute")
local classes = require("synroute.classes")
local paths = require("synroute.paths")
local values = require("synroute.values")
local yamlfile = require("synroute.yamlfile")

local M = {}

local is_null = yamlfile.is_null

-- Streams that allow several writers (events is sharded inside Synapse and is
-- never routed by the proxy).
local MULTI_WRITER = { events = true, receipts = true, device_lists = true }
-- Streams synroute knows but does not route.
local UNROUTED_STREAM = { events = true, quarantined_media_changes = true }

-- worker_app values Synapse runs as generic workers (historical names too).
local GENERIC_APPS = classes.set({
    "synapse.app.generic_worker", "synapse.app.client_reader", "synapse.app.event_creator",
    "synapse.app.federation_reader", "synapse.app.federation_sender", "synapse.app.frontend_proxy",
    "synapse.app.pusher", "synapse.app.synchrotron", "synapse.app.user_dir",
    "synapse.app.appservice", "synapse.app.media_repository",
})

local WILDCARD = { ["0.0.0.0"] = true, ["::"] = true, [""] = true, ["*"] = true, ["[::]"] = true }
M.WILDCARD = WILDCARD

---------------------------------------------------------------------------
-- files

local function has_wildcard(s) return s:find("[%*%?%[]") ~= nil end

-- The files a synroute.yaml entry names: a path, or a pattern through
-- glob(3). -> list, or nil with the problem reported.
local function expand(pattern, where, what, report)
    if not has_wildcard(pattern) then return { pattern } end
    local files, err = synroute.glob(pattern)
    if not files then report:problem(where, what .. ": " .. err) end
    return files
end

-- the homeserver files, in order: { { path, ref } }
local function homeserver_files(s, at, base, report)
    local out, empty = {}, nil
    for i, item in ipairs(s.synapse and s.synapse.homeserver or {}) do
        local where = at("synapse.homeserver." .. i)
        local files = expand(paths.join(base, item), where, "synapse.homeserver", report) or {}
        if #files == 0 then empty = empty or { item, where } end
        for _, f in ipairs(files) do out[#out + 1] = { f, where } end
    end
    -- an empty conf.d is fine; no homeserver file at all is not
    if empty and #out == 0 then
        report:problem(empty[2], "synapse.homeserver: '" .. empty[1] .. "' matches no file")
    elseif empty then
        report:warn(empty[2], "synapse.homeserver: '" .. empty[1] .. "' matches no file")
    end
    return out
end

local function read_homeserver(m, s, at, file, report)
    local base = paths.dirname(file)
    local named = s.synapse and s.synapse.homeserver or {}
    local files = homeserver_files(s, at, base, report)
    m.hs, m.hs_src = {}, {}
    m.hs_failed = #files == 0
    m.hs_file = files[1] and files[1][1] or (named[1] and paths.join(base, named[1])) or file
    m.hs_dir = paths.dirname(m.hs_file)
    for _, f in ipairs(files) do
        local doc = report:load(f[1], f[2], "homeserver config")
        if not doc then m.hs_failed = true end
        for k, v in pairs(doc and doc.root or {}) do
            m.hs[k], m.hs_src[k] = v, doc
        end
    end
    function m.hs_doc(k) return m.hs_src[k] end
    function m.hs_at(k)
        local doc = m.hs_src[k]
        return doc and doc:at(doc.root, k) or (m.hs_file .. ":1")
    end
end

---------------------------------------------------------------------------
-- listeners

local show = values.show

-- What a value that has the wrong type is, for messages.
local function describe(v)
    if type(v) == "string" then return "the string '" .. show(v) .. "'" end
    if type(v) == "table" then return (v[1] ~= nil or next(v) == nil) and "a list" or "a mapping" end
    if math.type(v) == "float" then return "the number " .. tostring(v) end
    return tostring(v)
end

-- Keys Synapse reads (synapse/config/workers.py, server.py). A worker file
-- may hold any homeserver key too: only worker_* keys (and near misses of
-- them) are checked there. KEY_ROUTES: a misspelling of these changes routing.
local WORKER_KEYS = {
    "worker_app", "worker_name", "worker_listeners", "worker_daemonize", "worker_pid_file", "worker_log_config",
    "worker_main_http_uri", "worker_manhole", "worker_replication_host", "worker_replication_port",
    "worker_replication_http_port", "worker_replication_http_tls", "worker_replication_secret",
    "worker_replication_secret_path",
}
local LISTENER_KEYS = {
    "type", "port", "path", "mode", "tls", "x_forwarded", "resources", "additional_resources", "tag",
    "request_id_header", "bind_addresses", "bind_address",
}
local RESOURCE_KEYS = { "names", "compress" }
local RESOURCE_NAMES = {
    "client", "consent", "federation", "health", "keys", "media", "metrics", "openid", "replication", "static",
}
local KEY_ROUTES = classes.set({ "worker_app", "worker_name", "worker_listeners", "type", "port", "path",
                                 "resources", "bind_addresses", "bind_address", "x_forwarded", "names" })
local KNOWN = {}
for _, list in ipairs({ WORKER_KEYS, LISTENER_KEYS, RESOURCE_KEYS, RESOURCE_NAMES }) do KNOWN[list] = classes.set(list) end

-- Flags the keys of mapping t that are not in `known` (a list above).
-- strict: Synapse refuses unknown keys (a problem); else Synapse ignores
-- them (a warning), unless the key is a misspelling of a routing key that
-- t lacks. prefix: only keys with it, or near misses, are checked.
-- -> the first near miss of a known key, or nil
local function unknown_keys(doc, t, known, what, report, strict, prefix)
    local near
    for _, k in ipairs(values.sorted_keys(t)) do
        if type(k) == "string" and not KNOWN[known][k] then
            local guess = values.suggest(k, known)
            if not prefix or k:sub(1, #prefix) == prefix or guess then
                local msg = what .. ": unknown key '" .. show(k) .. "'" ..
                    (guess and (", did you mean '" .. guess .. "'?") or "") ..
                    (strict and " (Synapse refuses it)" or " (Synapse ignores it)")
                if strict or (guess and KEY_ROUTES[guess] and t[guess] == nil) then
                    report:problem(doc:at(t, k), msg)
                else
                    report:warn(doc:at(t, k), msg)
                end
                near = near or (guess and { k, guess, doc:at(t, k) })
            end
        end
    end
    return near
end

local function listener_port(rec, l, doc, where, report)
    local port, path = l.port, l.path
    if not is_null(port) and not is_null(path) then
        report:problem(where, "listener has both a port and a path (Synapse refuses this)")
        return false
    elseif not is_null(port) then
        if math.type(port) ~= "integer" then
            report:problem(doc:at(l, "port"), "listener port: expected a whole number (Synapse requires an " ..
                "integer), not " .. describe(port))
            return false
        elseif port < 1 or port > 65535 then
            report:problem(doc:at(l, "port"), "listener port " .. port .. " is out of range")
            return false
        end
        rec.port = port
    elseif not is_null(path) then
        if type(path) ~= "string" or not values.socket_path(path) then
            report:problem(doc:at(l, "path"), "listener path: " .. describe(path) .. " is not a usable UNIX " ..
                "socket path (absolute, at most 107 bytes, only letters, digits and / . _ - + @ = , ~)")
            return false
        end
        rec.path = path
    else
        report:problem(where, "listener has neither a port nor a path")
        return false
    end
    return true
end

-- One bind address -> it | nil (reported)
local function bind_ok(b, where, what, report)
    if type(b) ~= "string" then
        report:problem(where, what .. ": expected an address, not " .. describe(b) ..
            (type(b) == "table" and " (a YAML alias expanding to a nested list?)" or ""))
    elseif not WILDCARD[b] and not values.host(b) then
        report:problem(where, what .. ": '" .. show(b) .. "' is not an IPv4 or IPv6 address or a host name")
    else
        return b
    end
end

-- The first non-wildcard bind address, if any; false: a bad one (reported).
local function listener_bind(l, doc, report)
    local binds, list = {}, l.bind_addresses
    if not is_null(list) then
        if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
            report:problem(doc:at(l, "bind_addresses"), "bind_addresses: expected a list of addresses, not " ..
                describe(list))
            return false
        end
        for i, b in ipairs(list) do
            -- the first bad entry only: an alias bomb has many
            local where = type(b) == "table" and doc:at(l, "bind_addresses") or doc:at(list, i)
            if not bind_ok(b, where, "bind_addresses", report) then return false end
            binds[#binds + 1] = b
        end
    end
    if not is_null(l.bind_address) then
        if not bind_ok(l.bind_address, doc:at(l, "bind_address"), "bind_address", report) then return false end
        binds[#binds + 1] = l.bind_address
    end
    for _, b in ipairs(binds) do
        if not WILDCARD[b] then return b end
    end
end

-- The resource names of a listener; Synapse refuses unknown keys and names.
local function listener_names(l, doc, report)
    local names = {}
    for i, r in ipairs(type(l.resources) == "table" and l.resources or {}) do
        if type(r) ~= "table" or (r[1] ~= nil) then
            report:problem(doc:at(l.resources, i), "resources: expected a mapping with names")
        else
            unknown_keys(doc, r, RESOURCE_KEYS, "listener resource", report, true)
            for j, n in ipairs(type(r.names) == "table" and r.names or {}) do
                if type(n) == "string" and KNOWN[RESOURCE_NAMES][n] then
                    names[n] = true
                else
                    local guess = values.suggest(n, RESOURCE_NAMES)
                    report:problem(doc:at(r.names, j), "resource names: unknown resource " ..
                        (type(n) == "string" and ("'" .. show(n) .. "'") or describe(n)) ..
                        (guess and (", did you mean '" .. guess .. "'?") or "") .. " (Synapse refuses it; known: " ..
                        table.concat(RESOURCE_NAMES, ", ") .. ")")
                end
            end
        end
    end
    return names
end

-- One entry of a listeners list -> listener | nil (not usable; reported).
local function parse_listener(doc, list, i, report)
    local l, where = list[i], doc:at(list, i)
    if type(l) ~= "table" then
        report:problem(where, "listener: expected a mapping")
        return nil
    end
    local rec = { where = where, type = is_null(l.type) and "http" or l.type }
    unknown_keys(doc, l, LISTENER_KEYS, "listener", report, false)
    if not listener_port(rec, l, doc, where, report) then return nil end
    rec.bind, rec.names = listener_bind(l, doc, report), listener_names(l, doc, report)
    if rec.bind == false then return nil end
    rec.x_forwarded = l.x_forwarded == true
    local http = rec.type == "http"
    rec.public = http and (rec.names.client or rec.names.federation or rec.names.media) and true or false
    rec.replication = http and rec.names.replication or false
    return rec
end

-- t[key] (t a table of doc) as the listeners of process `owner`; a
-- listener's address is its bind address, else the owner's instance_map
-- entry, else loopback.
local function parse_listeners(doc, t, key, owner, imap, report)
    local out, list = {}, t[key]
    if is_null(list) then return out end
    if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
        report:problem(doc:at(t, key), key .. ": expected a list of listeners")
        return out
    end
    local mapped = imap[owner]
    for i = 1, #list do
        local rec = parse_listener(doc, list, i, report)
        if rec then
            rec.host = rec.bind or (mapped and mapped.host) or "127.0.0.1"
            out[#out + 1] = rec
        end
    end
    return out
end

-- A process's public listener serving resource `res` (client/federation/media).
function M.listener_for(proc, res)
    for _, l in ipairs(proc.listeners) do
        if l.public and l.names[res] then return l end
    end
end

function M.first_public(proc)
    for _, l in ipairs(proc.listeners) do if l.public then return l end end
end

---------------------------------------------------------------------------
-- processes

-- instance_map: name -> { host = a valid host | nil }
local function instance_map(m, report)
    local imap, map, doc = {}, m.hs.instance_map, m.hs_doc("instance_map")
    if type(map) ~= "table" then return imap end
    for _, name in ipairs(values.sorted_keys(map)) do
        local v = map[name]
        if type(v) == "table" then
            local h = v.host
            if not is_null(h) and not values.host(h) then
                report:problem(doc:at(v, "host"), "instance_map." .. show(tostring(name)) .. ".host: " ..
                    describe(h) .. " is not an IPv4 or IPv6 address or a host name")
                h = nil
            end
            imap[name] = { host = h }
        end
    end
    return imap
end

local function read_main(m, report)
    local enable = m.hs.enable_media_repo
    m.enable_media = enable
    m.serves_media = not (enable == false or enable == "false")
    m.main = { name = "main", file = m.hs_file, listeners = {} }
    local doc = m.hs_doc("listeners")
    if doc then m.main.listeners = parse_listeners(doc, doc.root, "listeners", "main", m.imap, report) end
end

-- One worker file -> process | nil (reported).
local function read_worker(m, path, ref, report)
    local doc = report:load(path, ref, "worker config")
    if not doc then return nil end
    local w, name, app = doc.root, doc.root.worker_name, doc.root.worker_app
    if is_null(app) then app = "synapse.app.generic_worker" end
    local near = unknown_keys(doc, w, WORKER_KEYS, "worker config", report, false, "worker")
    if is_null(name) or name == "" then
        report:problem(path .. ":1", "worker config has no worker_name" .. ((near and near[2] == "worker_name")
            and (" ('" .. show(near[1]) .. "' at " .. near[3] .. " looks like a misspelling of it)") or ""))
        return nil
    elseif type(name) ~= "string" or name:find("[%c%s]") then
        report:problem(doc:at(w, "worker_name"), "worker_name: " .. describe(name) .. " is not a usable name " ..
            "(a string without spaces or control characters)")
        return nil
    elseif m.by_name[name] then
        report:problem(doc:at(w, "worker_name"), "worker name '" .. name ..
            "' is used twice (also " .. (m.by_name[name].where or "main") .. ")")
        return nil
    end
    local proc = { name = name, app = app, file = path, where = doc:at(w, "worker_name"),
                   enable_media_repo = w.enable_media_repo }
    if type(app) ~= "string" then
        report:problem(doc:at(w, "worker_app"), "worker_app: expected a string")
        proc.app = "synapse.app.generic_worker"
    elseif not GENERIC_APPS[app] then
        report:problem(doc:at(w, "worker_app"), "unknown worker_app '" .. app .. "'")
    end
    proc.listeners = parse_listeners(doc, w, "worker_listeners", name, m.imap, report)
    if w.listeners ~= nil and w.worker_listeners == nil then
        report:warn(doc:at(w, "listeners"), "workers read worker_listeners, not listeners")
    end
    return proc
end

local function read_workers(m, s, at, file, report)
    local base, seen, srv = paths.dirname(file), {}, {}
    for i, item in ipairs(s.synapse and s.synapse.workers or {}) do
        local where = at("synapse.workers." .. i)
        local files = expand(paths.join(base, item), where, "synapse.workers", report)
        if files and #files == 0 then
            report:problem(where, "synapse.workers: '" .. item .. "' matches no file")
        end
        for _, f in ipairs(files or {}) do
            local w = not seen[f] and read_worker(m, f, where, report)
            seen[f] = true
            local other = w and srv[values.server_name(w.name)]
            if other then
                report:problem(w.where, "worker name '" .. show(w.name) .. "' gives the same HAProxy server name as '" ..
                    show(other.name) .. "' (" .. other.where .. "): rename one")
            elseif w then
                m.by_name[w.name], srv[values.server_name(w.name)] = w, w
                m.workers[#m.workers + 1] = w
            end
        end
    end
    table.sort(m.workers, function(a, b) return values.natural_less(a.name, b.name) end)
end

---------------------------------------------------------------------------
-- stream writers and appservices

-- The writers given for a stream that are workers: { {name, where} } (main
-- left out, unknown names reported).
local function stream_workers(m, stream, given, report)
    local out = {}
    for _, it in ipairs(given) do
        local name, where = it[1], it[2]
        if name ~= "main" and not m.by_name[name] then
            report:problem(where, "stream_writers." .. stream .. ": unknown worker '" .. name .. "'")
        elseif name ~= "main" then
            if not m.imap[name] then
                report:warn(where, "stream writer '" .. name .. "' is not in instance_map (Synapse requires it)")
            end
            out[#out + 1] = { name, where }
        end
    end
    return out
end

local function read_writers(m, report)
    m.writers = {}
    local sw, doc = m.hs.stream_writers, m.hs_doc("stream_writers")
    if is_null(sw) then return end
    if type(sw) ~= "table" then
        report:problem(m.hs_at("stream_writers"), "stream_writers: expected a mapping")
        return
    end
    for _, stream in ipairs(values.sorted_keys(sw)) do
        local where = doc:at(sw, stream)
        local class = classes.WRITERS[stream] and stream or nil
        if not class and not UNROUTED_STREAM[stream] then
            report:warn(where, "stream_writers: unknown stream '" .. tostring(stream) .. "' (not routed)")
        end
        local given = doc:strings(sw, stream, "stream_writers." .. stream, report)
        if #given > 1 and not MULTI_WRITER[stream] then
            report:problem(where, "stream_writers." .. stream ..
                ": Synapse allows only one writer for this stream (" .. #given .. " given)")
        end
        m.writers[#m.writers + 1] = { stream = stream, class = class, where = where,
                                      names = stream_workers(m, stream, given, report) }
    end
end

local function read_appservice(m, path, ref, report)
    local doc = report:load(path, ref, "appservice registration")
    if not doc then return end
    local r = doc.root
    if type(r.as_token) ~= "string" or r.as_token == "" then
        report:problem(doc:at(r, "as_token"), "appservice registration has no as_token")
    elseif type(r.sender_localpart) ~= "string" then
        report:problem(doc:at(r, "sender_localpart"), "appservice registration has no sender_localpart")
    else
        m.as_tokens[#m.as_tokens + 1] = { token = r.as_token, sender = r.sender_localpart,
                                          id = type(r.id) == "string" and r.id or nil }
    end
end

local function read_appservices(m, report)
    m.as_tokens = {}
    local doc = m.hs_doc("app_service_config_files")
    if not doc then return end
    for _, it in ipairs(doc:strings(doc.root, "app_service_config_files", "app_service_config_files", report)) do
        read_appservice(m, paths.join(m.hs_dir, it[1]), it[2], report)
    end
end

---------------------------------------------------------------------------

function M.read(s, at, file, report)
    local m = { workers = {} }
    read_homeserver(m, s, at, file, report)
    m.imap = instance_map(m, report)
    read_main(m, report)
    m.by_name = { main = m.main }
    read_workers(m, s, at, file, report)
    read_writers(m, report)
    read_appservices(m, report)
    return m
end

return M
