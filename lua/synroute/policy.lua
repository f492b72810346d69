-- synroute.policy - from route entries + a deployment to the router spec.
--
--   policy.build(routes, dep) -> spec, backends
--     routes: the entries of routes.active(doc, version), or a doc from
--             routes.load (then routes.active(doc, dep.synapse_version) is applied)
--     dep:    the deployment (docs/design.md "Deployment model") or nil
--     spec:   the table synroute.router(spec) takes (docs/design.md "Router data")
--     backends: sorted list of the HAProxy backends the spec can name (a
--               decision of class blocked names "blocked", which is no
--               backend: the frontend answers it 404 before use_backend)
--   policy.resolve(class, dep, generic_methods) -> generic_backend, other_backend, generic_methods
--   policy.DEFAULT_SECRET
--
-- Plain Lua, no HAProxy and no C dependency. The rules, in one place:
--   * every pool is an HAProxy backend of the same name; "main" always exists.
--   * a class with a pool of its own goes to that pool (for every method);
--   * otherwise the fallback chain of docs/design.md decides;
--   * writer classes without a pool: methods in the entry's `generic` list go
--     the generic way (client -> generic -> main), every other method to main;
--   * a non-writer entry whose `generic` is a method list: those methods as
--     above, the others to main (no generic worker serves them);
--   * media: own pool, else main if main serves media, else "media" (empty
--     backend -> 503); sso and admin: own pool else main; blocked: "blocked";
--   * an entry whose `reason` is set (Synapse too old) goes to main;
--   * with no deployment every class goes to main, except blocked.
--   * as_ok (appservice override allowed) only when every backend of the
--     target is a pool of generic workers (not main, a writer, media, sso,
--     admin or blocked).

local classes = require("synroute.classes")

local M = {}

-- Used when there is no deployment at all (dep == nil). The same constant as
-- synroute.config's fallback when neither synroute.yaml nor homeserver.yaml
-- gives a secret (config warns then), so one documented value exists. Hash
-- keys are then predictable: that only matters for who can aim traffic at one
-- worker, never for the secrecy of tokens (a token-hash key is still one-way).
M.DEFAULT_SECRET = "synroute-default-hash-secret-change-me"

local WRITERS = classes.WRITERS

local CHAINS = {
    initial_sync = { "sync", "generic" },
    sync = { "generic" },
    federation_send = { "federation", "generic" },
    federation = { "generic" },
    encryption = { "client", "generic" },
    login = { "client", "generic" },
    user_directory = { "client", "generic" },
    messages = { "client", "generic" },
    client = { "generic" },
    event_send = { "generic" },
    sso = {},
    admin = {},
}
local WRITER_GENERIC_CHAIN = { "client", "generic" }

-- backends that are not a pool of generic workers
local NOT_GENERIC = { main = true, blocked = true, media = true, sso = true, admin = true }

local function has_pool(dep, name)
    return dep ~= nil and type(dep.pools) == "table" and dep.pools[name] ~= nil
end

local function first_pool(dep, chain)
    for _, p in ipairs(chain) do
        if has_pool(dep, p) then return p end
    end
    return "main"
end

-- The backend(s) for `class` in `dep`. generic_methods: "all" (default),
-- "none" or a list of methods that a generic worker may serve.
-- Returns generic_backend (for the methods generic workers serve),
-- other_backend (for every other method) and generic_methods, the list of
-- those methods (nil when both backends are the same: every method).
function M.resolve(class, dep, generic_methods)
    generic_methods = generic_methods or (WRITERS[class] and "none" or "all")
    if class == "blocked" then
        return "blocked", "blocked", nil
    end
    if dep == nil or class == "main" then
        return "main", "main", nil
    end
    local generic_backend
    if WRITERS[class] then
        if has_pool(dep, class) then
            return class, class, nil
        end
        generic_backend = first_pool(dep, WRITER_GENERIC_CHAIN)
    elseif class == "media" then
        if has_pool(dep, "media") then
            generic_backend = "media"
        elseif dep.main and dep.main.serves_media == false then
            generic_backend = "media"
        else
            generic_backend = "main"
        end
    else
        local chain = CHAINS[class]
        if chain == nil then
            error("policy.resolve: unknown class " .. tostring(class), 2)
        end
        if has_pool(dep, class) then
            generic_backend = class
        else
            generic_backend = first_pool(dep, chain)
        end
    end
    if generic_methods == "all" then
        return generic_backend, generic_backend, nil
    elseif generic_methods == "none" or #generic_methods == 0 then
        return "main", "main", nil
    elseif generic_backend == "main" then
        return "main", "main", nil
    end
    local methods = {}
    for i, m in ipairs(generic_methods) do methods[i] = m end
    return generic_backend, "main", methods
end

local function is_generic_pool(be)
    return not NOT_GENERIC[be] and not WRITERS[be]
end

local function make_target(class, entry, dep)
    local key = entry.key or classes.DEFAULT_KEY[class] or "none"
    local generic_backend, other_backend, generic_methods
    local reason = entry.reason
    if reason and class ~= "blocked" then
        generic_backend, other_backend = "main", "main"
    else
        reason = nil
        generic_backend, other_backend, generic_methods = M.resolve(class, dep, entry.generic)
    end
    return {
        class = class, generic_backend = generic_backend, other_backend = other_backend,
        generic_methods = generic_methods, key = key,
        as_ok = is_generic_pool(generic_backend) and is_generic_pool(other_backend), reason = reason,
    }
end

local function target_sig(t)
    return table.concat({
        t.class, t.generic_backend, t.other_backend,
        t.generic_methods and table.concat(t.generic_methods, ",") or "*",
        t.key, tostring(t.as_ok), t.reason or "",
    }, "|")
end

function M.build(routes, dep)
    if type(routes) ~= "table" then
        error("policy.build: routes must be a table", 2)
    end
    if routes.routes ~= nil and routes.synapse_versions ~= nil then
        -- a whole doc from routes.load: pick the entries for this version
        local active, err = require("synroute.routes").active(routes, dep and dep.synapse_version)
        if not active then
            return nil, err
        end
        routes = active
    end
    local targets, by_sig, used = {}, {}, {}
    local function add_target(t)
        local sig = target_sig(t)
        local idx = by_sig[sig]
        if not idx then
            targets[#targets + 1] = t
            idx = #targets
            by_sig[sig] = idx
            for _, be in ipairs({ t.generic_backend, t.other_backend }) do
                if be ~= "blocked" then used[be] = true end
            end
        end
        return idx
    end

    local entries = {}
    for i, e in ipairs(routes) do
        if type(e) ~= "table" or type(e.id) ~= "string" or type(e.pattern) ~= "string"
            or type(e.class) ~= "string" then
            error(string.format("policy.build: route %d is not a validated entry", i), 2)
        end
        local ent = {
            id = e.id, pattern = e.pattern, methods = e.methods,
            target = add_target(make_target(e.class, e, dep)),
        }
        if e.refine then
            ent.refine = e.refine
            ent.alt_target = add_target(make_target(e.alt_class, e, dep))
        end
        entries[#entries + 1] = ent
    end
    local fallback = add_target({
        class = "main", generic_backend = "main", other_backend = "main", key = "none", as_ok = false,
    })

    local as_tokens = {}
    if dep and type(dep.as_tokens) == "table" then
        for _, t in ipairs(dep.as_tokens) do
            as_tokens[#as_tokens + 1] = { token = t.token, sender = t.sender }
        end
    end
    local as_backend = has_pool(dep, "appservice") and "appservice" or nil
    if as_backend then used[as_backend] = true end

    local backends = {}
    for be in pairs(used) do backends[#backends + 1] = be end
    table.sort(backends)

    local spec = {
        secret = (dep and dep.hash_secret) or M.DEFAULT_SECRET,
        entries = entries,
        targets = targets,
        fallback_target = fallback,
        as_tokens = as_tokens,
        as_backend = as_backend,
    }
    return spec, backends
end

return M
