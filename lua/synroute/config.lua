-- synroute.config - the deployment model `dep` (docs/design.md "Deployment
-- model") from synroute.yaml and the Synapse files it names, in four steps:
--   1. synroute.yaml against its schema          (synroute.settings)
--   2. the Synapse files: processes, listeners,
--      instance_map, stream_writers, appservices (synroute.synapse)
--   3. the pools                                  (synroute.pools)
--   4. dep, and the checks that need all of them  (here)
--
--   local config = require("synroute.config")
--   local dep, problems = config.load("synroute.yaml" [, { synapse_version = "1.157" }])
--     -> dep | nil, { "file:line: message", ... }
--   config.format_problems(problems) -> one string (for errors raised at load time)
--
-- Every problem found is reported (the load does not stop at the first one).
-- Nothing here prints; tokens and secrets are never part of any message.

local paths = require("synroute.paths")
local policy = require("synroute.policy")
local pools = require("synroute.pools")
local runtime = require("synroute.runtime")
local settings = require("synroute.settings")
local synapse = require("synroute.synapse")
local values = require("synroute.values")
local yamlfile = require("synroute.yamlfile")

local M = {}

local listener_for, first_public = synapse.listener_for, synapse.first_public

---------------------------------------------------------------------------
-- main and the secret

-- The listener main gets public traffic on: client and federation, else
-- client, else any public one.
local function pick_main_listener(main)
    for _, l in ipairs(main.listeners) do
        if l.public and l.names.client and l.names.federation then return l end
    end
    return listener_for(main, "client") or first_public(main)
end

local function no_main_listener(m, report)
    local reps = {}
    for _, l in ipairs(m.main.listeners) do
        if l.replication then reps[#reps + 1] = tostring(l.port or l.path) end
    end
    local msg = "main has no HTTP listener with client or federation resources"
    if #reps > 0 then
        msg = msg .. ", only replication (port " .. table.concat(reps, ", ") ..
            "); public traffic must never be sent to a replication listener"
    end
    report:problem(m.hs_at("listeners"), msg)
end

local function main_record(m, report)
    local main = { name = "main", serves_media = m.serves_media, file = m.hs_file }
    local ml = pick_main_listener(m.main)
    m.main_listener = ml
    if not ml then
        if not m.hs_failed then no_main_listener(m, report) end
        return main
    end
    main.host, main.port, main.path, main.where = ml.host, ml.port, ml.path, ml.where
    if not ml.x_forwarded then
        report:warn(ml.where, "main's listener on port " .. tostring(ml.port or ml.path) ..
            " has no 'x_forwarded: true': Synapse will see the proxy's address instead of the client's")
    end
    local fl = listener_for(m.main, "federation")
    if not ml.names.federation and fl then
        report:warn(fl.where, "main serves federation on a separate listener (port " .. tostring(fl.port) ..
            "); synroute sends all of main's traffic to port " .. tostring(ml.port))
    end
    return main
end

-- hash_secret, else one of Synapse's own secrets, else the built-in constant.
local SECRET_KEYS = { "macaroon_secret_key", "form_secret", "registration_shared_secret" }

local function hash_secret(s, m, file, report)
    if s.hash_secret then return s.hash_secret, "synroute.yaml" end
    for _, k in ipairs(SECRET_KEYS) do
        if type(m.hs[k]) == "string" and m.hs[k] ~= "" then return "synroute:" .. m.hs[k], k end
    end
    report:warn(file .. ":1", "no hash_secret and no macaroon_secret_key/form_secret/registration_shared_secret: " ..
        "using the built-in constant (stickiness keys are predictable)")
    return policy.DEFAULT_SECRET, "default"
end

---------------------------------------------------------------------------
-- checks across processes and settings

local function proc_label(proc)
    return proc.name == "main" and "main" or ("worker '" .. proc.name .. "'")
end

-- A listener that serves replication and public resources at once.
local function check_mixed(m, report)
    for _, proc in ipairs({ m.main, table.unpack(m.workers) }) do
        for _, l in ipairs(proc.listeners) do
            if l.public and l.replication then
                report:problem(l.where, proc_label(proc) .. ": listener on port " .. tostring(l.port or l.path) ..
                    " serves replication together with client/federation/media: public traffic would reach" ..
                    " replication; split it into two listeners")
            end
        end
    end
end

-- A public listener that also serves metrics: HAProxy never forwards
-- /_synapse/metrics (unless admin_metrics), but the port itself still
-- answers it to whoever reaches it.
local function check_public_metrics(m, report)
    for _, proc in ipairs({ m.main, table.unpack(m.workers) }) do
        for _, l in ipairs(proc.listeners) do
            if l.public and l.names.metrics then
                report:warn(l.where, proc_label(proc) .. ": listener on port " .. tostring(l.port or l.path) ..
                    " serves metrics together with client/federation/media: synroute never forwards " ..
                    "/_synapse/metrics, but anyone who reaches this port directly reads them; move metrics " ..
                    "to a listener of its own (type: metrics, or an http listener bound to loopback)")
            end
        end
    end
end

local function check_media(m, dep, report)
    for _, w in ipairs(m.workers) do
        -- Synapse runs the media repository in a worker only if it is a
        -- media_repository worker or enable_media_repo is not false for it
        local ml, em = listener_for(w, "media"), w.enable_media_repo
        if em == nil then em = m.enable_media end
        if ml and w.app ~= "synapse.app.media_repository" and em == false then
            report:problem(ml.where, "worker '" .. w.name .. "' has a media listener, but enable_media_repo is " ..
                "false for it (set enable_media_repo: true in its worker file, or make it a " ..
                "synapse.app.media_repository worker)")
        end
    end
    local media_servers = dep.pools.media and #dep.pools.media.servers or 0
    if not m.serves_media and media_servers == 0 then
        report:problem(m.hs_at("enable_media_repo"), "media is handled nowhere: enable_media_repo is false and " ..
            "no media_repository worker (or listener with the media resource) is configured")
    elseif m.serves_media and media_servers > 0 and m.enable_media == nil then
        report:warn(m.hs_file .. ":1", "media workers are configured but enable_media_repo is not set to false: " ..
            "main also runs the media repository")
    end
end

-- Every listening socket is claimed once: by one Synapse listener or by
-- synroute's own listen address.
local function check_endpoints(m, dep, at, report)
    local seen = {}
    local function claim(key, what, where, public, replication)
        local prev = seen[key]
        if not prev then
            seen[key] = { what = what, where = where, public = public, replication = replication }
            return
        end
        local extra = ((public and prev.replication) or (replication and prev.public)) and
            "; public traffic would reach a replication listener" or ""
        report:problem(where, key .. " is used twice: " .. what .. " and " .. prev.what .. " (" .. prev.where .. ")" .. extra)
    end
    for _, proc in ipairs({ m.main, table.unpack(m.workers) }) do
        for _, l in ipairs(proc.listeners) do
            local kind = l.replication and "replication" or (l.public and "http") or l.type or "http"
            claim(values.endpoint(l.host, l.port, l.path), proc_label(proc) .. " " .. kind .. " listener",
                l.where, l.public, l.replication)
        end
    end
    for i, a in ipairs(dep.listen) do
        local h, p = values.addr(a)
        if synapse.WILDCARD[h] then
            for _, key in ipairs(values.sorted_keys(seen)) do
                local kh, kp = key:match("^(.*):(%d+)$")
                if kp and tonumber(kp) == p and (kh:match("^127%.") or kh == "::1") then
                    report:problem(at("listen." .. i), "listen " .. a .. " clashes with " .. seen[key].what ..
                        " on " .. key .. " (" .. seen[key].where .. ")")
                end
            end
        else
            claim(values.endpoint(h, p), "synroute listen address", at("listen." .. i), false, false)
        end
    end
end

-- Settings that name a pool the deployment does not have.
local function check_pool_settings(dep, at, report)
    for _, k in ipairs(values.sorted_keys(dep.limits.pools)) do
        if k ~= "main" and not dep.pools[k] then
            report:warn(at("limits." .. k), "limits." .. k .. ": this deployment has no " .. k ..
                " pool (the limit applies to nothing)")
            dep.limits.pools[k] = nil
        end
    end
    if dep.pools.appservice and #dep.as_tokens == 0 then
        report:warn(at("pools.appservice"), "pools.appservice is set but no appservice registration is configured")
    end
end

---------------------------------------------------------------------------
-- dep

-- What the stand-ins, replay and `check` list: every worker and every public
-- listening socket.
local function summary(m, p, dep)
    local streams = {}
    for _, sw in ipairs(m.writers) do
        for _, it in ipairs(sw.names) do
            streams[it[1]] = streams[it[1]] or {}
            table.insert(streams[it[1]], sw.stream)
        end
    end
    dep.workers, dep.processes = {}, {}
    local function process(name, l)
        dep.processes[#dep.processes + 1] = { name = name, host = l.host, port = l.port, path = l.path }
    end
    if dep.main.port or dep.main.path then
        process("main", dep.main)
        for _, l in ipairs(m.main.listeners) do
            if l.public and l ~= m.main_listener then process("main", l) end
        end
    end
    for _, w in ipairs(m.workers) do
        local rec = { name = w.name, app = w.app, where = w.where, pools = {}, streams = streams[w.name] or {},
                      public = {}, replication = {} }
        for _, l in ipairs(w.listeners) do
            local list = l.public and rec.public or (l.replication and rec.replication)
            if list then list[#list + 1] = { host = l.host, port = l.port, path = l.path } end
        end
        for _, pool in ipairs(values.sorted_keys(p.in_pool)) do
            if p.in_pool[pool][w.name] then rec.pools[#rec.pools + 1] = pool end
        end
        dep.workers[#dep.workers + 1] = rec
        for _, l in ipairs(rec.public) do process(w.name, l) end
    end
end

local SETTINGS = { "synapse_version", "listen", "admin_networks", "admin_metrics", "stick", "timeouts", "nbthread",
                   "log", "limits", "mas", "haproxy", "runtime", "metrics" }

-- peers: false is no peers section (a reload starts with empty stick
-- tables); no setting is the local-only section of synroute.runtime.
local function peers_of(s, at, report)
    if s.peers == false then return nil end
    local peers = s.peers or runtime.default_peers()
    local w = runtime.local_peer_warning(peers)
    if w then report:warn(at("peers"), w) end
    return peers
end

local function assemble(path, s, at, m, p, report)
    local dep = { file = paths.abspath(path), pools = p.pools, as_tokens = m.as_tokens,
                  warnings = report.warnings }
    for _, k in ipairs(SETTINGS) do dep[k] = s[k] end
    dep.peers = peers_of(s, at, report)
    -- "<dep.file>:<line>" of synapse_version (line 1 when absent), for messages
    dep.synapse_version_at = dep.file .. ":" .. (at("synapse_version"):match(":(%d+)$") or "1")
    dep.hash_secret, dep.hash_secret_source = hash_secret(s, m, path, report)
    dep.main = main_record(m, report)
    summary(m, p, dep)
    return dep
end

-- --synapse-version overrides synapse_version. Without either, the
-- commands ask the running main (synroute.version_choice); the router never
-- assumes a release nobody named (synroute.api).
local function apply_version(dep, opts, path, report)
    if opts.synapse_version then
        local v = settings.release(opts.synapse_version)
        if v then dep.synapse_version = v
        else report:problem(path .. ":1", "--synapse-version: expected a release like 1.157") end
    end
end

function M.load(path, opts)
    local report = yamlfile.report()
    local doc = report:load(path, nil, "synroute config")
    if not doc then return nil, report.problems end
    local s, at = settings.read(doc, report)
    local m = synapse.read(s, at, path, report)
    local p = pools.derive(m, s, at, report)
    local dep = assemble(path, s, at, m, p, report)
    check_mixed(m, report)
    check_public_metrics(m, report)
    check_media(m, dep, report)
    check_endpoints(m, dep, at, report)
    check_pool_settings(dep, at, report)
    apply_version(dep, opts or {}, path, report)
    if #report.problems > 0 then return nil, report.problems end
    return dep
end

function M.format_problems(problems)
    if type(problems) == "string" then return problems end
    return table.concat(problems or {}, "\n")
end

return M
