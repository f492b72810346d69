-- synroute.pools - which Synapse processes serve which pool, from the model
-- of synroute.synapse and the `pools:` setting. A worker joins pools by the
-- first rule that names it:
--   1. `pools:` in synroute.yaml names it (a name or a pattern);
--   2. it writes a stream that has public routes (stream_writers);
--   3. it is a media repository (worker_app, or a listener with `media`);
--   4. convention: its worker_app or its name (docs/deployment.md);
--   5. it serves client or federation: pool `generic`.
-- Then every member must have a public listener with the resource its
-- pool's requests need; the servers of a pool are its members' listeners.
--
--   local p = pools.derive(m, s, at, report)
--     p.pools    pool -> { servers = { {name=, host=, port=|path=, backup=, where=} },
--                          writer = true|nil }   (active servers first, natural order)
--     p.in_pool  pool -> worker name -> true
--
--   pools.record(dep, version) -> string: the backend set haproxy.cfg is
--     written for, one token: "v=1.157;main=127.0.0.1:8008;generic=generic-1@
--     127.0.0.1:8081,...;sso=...+backup" (server names as in haproxy.cfg)
--   pools.drift(recorded, now) -> { "difference", ... } (empty: the same)
-- `synroute haproxy` writes the record into haproxy.cfg; the glue derives it
-- again at every start and refuses to start on a difference (drift).

local synroute = require("synroute")
local classes = require("synroute.classes")
local synapse = require("synroute.synapse")
local values = require("synroute.values")

local M = {}

local listener_for, first_public = synapse.listener_for, synapse.first_public

-- Convention: historical worker_app names -> pools.
local APP_POOLS = {
    ["synapse.app.synchrotron"] = { "sync" },
    ["synapse.app.client_reader"] = { "client" },
    ["synapse.app.federation_reader"] = { "federation" },
    ["synapse.app.event_creator"] = { "event_send" },
    ["synapse.app.frontend_proxy"] = { "encryption" },
    ["synapse.app.user_dir"] = { "user_directory" },
    ["synapse.app.media_repository"] = { "media" },
}
-- Convention: worker names (after stripping a deployment prefix and an
-- instance number) -> pools. Names from Synapse's docs, element-hq/ess-helm
-- and matrix-docker-ansible-deploy; see docs/deployment.md.
local NAME_POOLS = {
    synchrotron = { "sync" }, sync = { "sync" }, sync_worker = { "sync" },
    sliding_sync = { "sync" },
    initial_synchrotron = { "initial_sync" }, initial_sync = { "initial_sync" },
    client_reader = { "client" },
    federation_reader = { "federation" },
    federation_inbound = { "federation_send" },
    event_creator = { "event_send" },
    room_worker = { "event_send", "messages" }, room = { "event_send", "messages" },
    sso_login = { "sso" }, sso = { "sso" },
    encryption = { "encryption" }, frontend_proxy = { "encryption" },
    login = { "login" },
    user_dir = { "user_directory" }, user_directory = { "user_directory" },
    media_repository = { "media" }, media = { "media" },
    generic_worker = { "generic" }, generic = { "generic" },
}

-- "matrix-synapse-worker-sync-2" -> "sync"
local function convention_name(n)
    local s = n:lower():gsub("%-", "_")
    s = s:gsub("^matrix_synapse_worker_", ""):gsub("^synapse_worker_", ""):gsub("^synapse_", "")
    s = s:gsub("[_%.]?%d+$", "")
    return (s:gsub("_$", ""))
end

local function needed_resource(pool)
    if pool == "federation" or pool == "federation_send" then return "federation" end
    if pool == "media" then return "media" end
    return "client"
end

---------------------------------------------------------------------------
-- membership. st: { members = pool -> { {proc=, backup=, where=} },
-- in_pool = pool -> name -> true, assigned = name -> true, explicit = name -> true }

local function add_member(st, pool, proc, backup, where)
    st.members[pool] = st.members[pool] or {}
    st.in_pool[pool] = st.in_pool[pool] or {}
    if st.in_pool[pool][proc.name] then return end
    st.in_pool[pool][proc.name] = true
    local list = st.members[pool]
    list[#list + 1] = { proc = proc, backup = backup, where = where }
end

-- 1. pools: the workers each name or pattern of pool `pool` stands for
local function name_workers(st, m, pool, names, backup, at, path, report)
    for i, pat in ipairs(names) do
        local where, found = at(path .. "." .. i), 0
        for _, w in ipairs(m.workers) do
            if synroute.name_match(pat, w.name) then
                found = found + 1
                st.explicit[w.name], st.assigned[w.name] = true, true
                add_member(st, pool, w, backup, where)
            end
        end
        if pat == "main" then
            report:problem(where, "pools." .. pool .. ": 'main' is not a worker (main is every pool's fallback already)")
        elseif found == 0 and pat:find("[%*%?%[]") then
            report:problem(where, "pools." .. pool .. ": '" .. pat .. "' matches no worker")
        elseif found == 0 then
            report:problem(where, "pools." .. pool .. ": unknown worker '" .. pat .. "'")
        end
    end
end

local function explicit_pools(st, m, s, at, report)
    for _, pool in ipairs(values.sorted_keys(s.pools or {})) do
        local p = s.pools[pool]
        name_workers(st, m, pool, p.servers or {}, false, at, "pools." .. pool .. ".servers", report)
        name_workers(st, m, pool, p.backup or {}, true, at, "pools." .. pool .. ".backup", report)
    end
end

-- 2. the writer of a stream with public routes serves that stream's pool
local function writer_pools(st, m, report)
    for _, sw in ipairs(m.writers) do
        for _, it in ipairs(sw.class and sw.names or {}) do
            local w, where = m.by_name[it[1]], it[2]
            st.assigned[w.name] = true
            st.members[sw.class] = st.members[sw.class] or {}
            if listener_for(w, "client") then
                add_member(st, sw.class, w, false, where)
            else
                local only_rep = #w.listeners > 0 and not first_public(w)
                report:problem(w.where, "stream writer '" .. w.name .. "' (" .. sw.stream ..
                    ") has no HTTP listener with the client resource" ..
                    (only_rep and " (only replication; public traffic must never reach it)" or "") ..
                    ", so its " .. sw.stream .. " routes cannot reach it")
            end
        end
    end
end

-- 3-5. media repositories, convention, generic
local function implicit_pools(st, m)
    for _, w in ipairs(m.workers) do
        if not st.explicit[w.name] and (w.app == "synapse.app.media_repository" or listener_for(w, "media")) then
            st.assigned[w.name] = true
            add_member(st, "media", w, false, w.where)
        end
    end
    for _, w in ipairs(m.workers) do
        local by_convention = APP_POOLS[w.app] or NAME_POOLS[convention_name(w.name)]
        if not st.assigned[w.name] and by_convention then
            for _, p in ipairs(by_convention) do add_member(st, p, w, false, w.where) end
            st.assigned[w.name] = true
        end
    end
    for _, w in ipairs(m.workers) do
        if not st.assigned[w.name] and (listener_for(w, "client") or listener_for(w, "federation")) then
            add_member(st, "generic", w, false, w.where)
            st.assigned[w.name] = true
        end
    end
end

---------------------------------------------------------------------------
-- servers

-- Why member m of pool cannot serve it (no listener with the resource).
local function no_listener(pool, res, mem, report)
    local w = mem.proc
    local rep = false
    for _, x in ipairs(w.listeners) do if x.replication then rep = true end end
    local what = first_public(w) and ("the " .. res .. " resource") or
        ("client, federation or media resources" ..
         (rep and "; its only HTTP listener is replication, and public traffic must never be sent there" or ""))
    report:problem(mem.where, "pool " .. pool .. ": worker '" .. w.name .. "' (" .. w.where ..
        ") has no HTTP listener with " .. what)
end

local function member_warnings(pool, w, l, report)
    if pool == "generic" and not listener_for(w, "federation") then
        report:warn(w.where, "generic worker '" .. w.name ..
            "' has no federation listener; federation requests routed to the generic pool may fail")
    end
    if not l.x_forwarded and not l.warned_xff then
        l.warned_xff = true
        report:warn(l.where, "worker '" .. w.name .. "': listener on port " .. tostring(l.port or l.path) ..
            " has no 'x_forwarded: true': Synapse will see the proxy's address instead of the client's")
    end
end

-- The servers of one pool: active ones in natural order, then the backups.
local function pool_servers(pool, members, report)
    local res = needed_resource(pool)
    local act, bak = {}, {}
    for _, mem in ipairs(members) do
        local l = listener_for(mem.proc, res)
        if not l then
            no_listener(pool, res, mem, report)
        else
            member_warnings(pool, mem.proc, l, report)
            local list = mem.backup and bak or act
            list[#list + 1] = { name = mem.proc.name, host = l.host, port = l.port, path = l.path,
                                backup = mem.backup or nil, where = l.where }
        end
    end
    table.sort(act, function(a, b) return values.natural_less(a.name, b.name) end)
    if pool == "sso" and #act > 1 then
        local names = {}
        for _, s in ipairs(act) do names[#names + 1] = s.name end
        report:problem(members[1].where, "more than one active SSO process (" .. table.concat(names, ", ") ..
            "): every SSO step must reach the same process; keep one and list the others under pools.sso.backup")
    end
    for _, s in ipairs(bak) do act[#act + 1] = s end
    return act
end

---------------------------------------------------------------------------
-- the record of the backend set

local function server_token(s)
    return values.server_name(s.name) .. "@" .. values.server_addr(s) .. (s.backup and "+backup" or "")
end

function M.record(dep, version)
    local parts = {}
    if version then parts[1] = "v=" .. version end
    if dep.main.port or dep.main.path then parts[#parts + 1] = "main=" .. values.server_addr(dep.main) end
    for _, pool in ipairs(values.sorted_keys(dep.pools)) do
        local list = {}
        for _, s in ipairs(dep.pools[pool].servers) do list[#list + 1] = server_token(s) end
        parts[#parts + 1] = pool .. "=" .. table.concat(list, ",")
    end
    return table.concat(parts, ";")
end

local function parse_record(r)
    local t = {}
    for item in (r .. ";"):gmatch("([^;]*);") do
        local k, v = item:match("^([^=]+)=(.*)$")
        if k then t[k] = v end
    end
    return t
end

local function servers_text(v)
    if v == "" then return "no server" end
    return (v:gsub(",", ", "))
end

-- One difference of key k (a pool, main or v) between the two records.
local function difference(k, old, new)
    if k == "v" then
        return "Synapse release: now " .. (new or "?") .. "; haproxy.cfg was generated for " .. (old or "?")
    elseif k == "main" then
        return "main: now " .. (new or "no listener") .. "; haproxy.cfg has " .. (old or "none")
    elseif not old then
        return "pool " .. k .. ": now " .. servers_text(new) .. "; haproxy.cfg was generated without it"
    elseif not new then
        return "pool " .. k .. ": haproxy.cfg has it (" .. servers_text(old) .. "); the deployment no longer has it"
    end
    return "pool " .. k .. ": now " .. servers_text(new) .. "; haproxy.cfg has " .. servers_text(old)
end

function M.drift(recorded, now)
    local a, b, keys, out = parse_record(recorded), parse_record(now), {}, {}
    for k in pairs(a) do keys[k] = true end
    for k in pairs(b) do keys[k] = true end
    for _, k in ipairs(values.sorted_keys(keys)) do
        if a[k] ~= b[k] then out[#out + 1] = difference(k, a[k], b[k]) end
    end
    return out
end

function M.derive(m, s, at, report)
    local st = { members = {}, in_pool = {}, assigned = {}, explicit = {} }
    explicit_pools(st, m, s, at, report)
    writer_pools(st, m, report)
    implicit_pools(st, m)
    local out = { pools = {}, in_pool = st.in_pool }
    for _, pool in ipairs(values.sorted_keys(st.members)) do
        out.pools[pool] = { servers = pool_servers(pool, st.members[pool], report),
                            writer = classes.WRITERS[pool] or nil }
    end
    return out
end

return M
