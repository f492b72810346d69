-- synroute.version_choice - which Synapse release `check` and `haproxy`
-- route for, and where that came from. Never a release nobody named:
--
--   1. --synapse-version V                      source "--synapse-version"
--   2. synapse_version in synroute.yaml         source "set in synroute.yaml line 11"
--   3. otherwise (or with --probe) ask the running main (synroute.probe):
--                                               source "probed from URL (Synapse 1.67.0)"
--   4. main cannot be reached or read (without --probe):
--      "conservative" (synroute.routes.CONSERVATIVE), source "conservative: unknown, no answer from URL",
--      and a warning naming what stays on main and how to set the version.
--
--   local vc = require("synroute.version_choice")
--   local ok, err = vc.choose(dep, { synapse_version =, probe =, probe_url =, out = stream })
--     sets dep.synapse_version and dep.synapse_version_source; notes go to
--     opts.out, warnings to dep.warnings; nil, message: exit 1 (an explicit
--     --probe that failed, a Synapse older than synroute knows)
--   vc.stays_on_main(dep, doc) -> { "pool: route, route, ..." } (conservative vs newest)

local paths = require("synroute.paths")
local policy = require("synroute.policy")
local probe = require("synroute.probe")
local routes = require("synroute.routes")

local M = {}

-- At most this many route ids per pool in the warning.
M.LIST_MAX = 8

-- The backend an entry's target reaches (a pool) or "main".
local function reaches(spec, ent)
    local t = spec.targets[ent.target]
    if t.generic_backend ~= "main" then return t.generic_backend end
    return t.other_backend
end

-- Routes that workers serve at the newest release but that the conservative
-- set sends to main, for this deployment, grouped by the pool that would
-- serve them: { "client (12): user_filter, capabilities, ... and 4 more", ... }
function M.stays_on_main(dep, doc)
    local newest = policy.build(assert(routes.active(doc, doc.latest)), dep)
    local cons = policy.build(assert(routes.active(doc, routes.CONSERVATIVE)), dep)
    if not newest or not cons then return {} end
    local cons_by_id = {}
    for _, ent in ipairs(cons.entries) do cons_by_id[ent.id] = ent end
    local by_pool, order = {}, {}
    for _, ent in ipairs(newest.entries) do
        local pool = reaches(newest, ent)
        local cons_ent = cons_by_id[ent.id]
        if pool ~= "main" and pool ~= "blocked" and cons_ent and reaches(cons, cons_ent) == "main" then
            if not by_pool[pool] then by_pool[pool] = {}; order[#order + 1] = pool end
            local ids = by_pool[pool]
            ids[#ids + 1] = ent.id
        end
    end
    table.sort(order)
    local out = {}
    for _, pool in ipairs(order) do
        local ids = by_pool[pool]
        local shown = table.concat(ids, ", ", 1, math.min(#ids, M.LIST_MAX))
        if #ids > M.LIST_MAX then shown = shown .. " and " .. (#ids - M.LIST_MAX) .. " more" end
        out[#out + 1] = pool .. " (" .. #ids .. "): " .. shown
    end
    return out
end

local function say(out, s) if out then out:write(s, "\n") end end

-- main did not answer: the conservative set, and a warning that says why,
-- what stays on main and how to set the version.
local function conservative(dep, doc, why, url)
    dep.synapse_version = routes.CONSERVATIVE
    dep.synapse_version_source = "conservative: unknown" .. (url and (", no answer from " .. url) or "")
    local lines = {
        dep.file .. ":1: synapse_version is not set and the running Synapse could not be asked (" .. why ..
            "): routing conservatively, only what workers serve in every release from " .. doc.oldest ..
            " to " .. doc.latest .. " goes to workers.",
    }
    local stays = M.stays_on_main(dep, doc)
    if #stays > 0 then
        lines[#lines + 1] = "  These routes stay on main (pool that would serve them at " .. doc.latest ..
            ", route ids of routes/routes.yaml):"
        for _, s in ipairs(stays) do lines[#lines + 1] = "    " .. s end
    end
    lines[#lines + 1] = "  Set the version: synapse_version: \"1.NN\" in " .. dep.file ..
        " (the release main runs), or --synapse-version 1.NN, or start main and run again."
    dep.warnings[#dep.warnings + 1] = table.concat(lines, "\n")
end

-- The probed release `got` against what synroute.yaml says.
local function probed(dep, doc, got, out)
    local use, note = probe.choose(doc, got.release)
    if not use then return nil, got.url .. " reports Synapse " .. got.raw .. ": " .. note end
    say(out, "probe: " .. got.url .. " reports " .. (got.server or "Synapse") .. " " .. got.raw ..
        " (routes of " .. use .. ")")
    if note then say(out, "warning: probe: " .. note) end
    local configured = dep.synapse_version
    local where = dep.synapse_version_at
    if configured == nil then
        say(out, "warning: " .. where .. ": synapse_version is not set; the running Synapse is " ..
            got.raw .. ": using " .. use)
    elseif configured ~= got.release then
        say(out, "warning: " .. where .. ": synapse_version is " .. configured ..
            " but the running Synapse (" .. got.url .. ") is " .. got.raw ..
            ": using " .. use .. "; set synapse_version: \"" .. got.release .. "\" in " .. dep.file)
    end
    dep.synapse_version = use
    dep.synapse_version_source = "probed from " .. got.url .. " (" .. (got.server or "Synapse") .. " " .. got.raw .. ")"
    return true
end

function M.choose(dep, opts)
    opts = opts or {}
    if opts.synapse_version then
        dep.synapse_version_source = "--synapse-version"
        return true
    end
    if dep.synapse_version and not opts.probe then
        local line = dep.synapse_version_at:match(":(%d+)$")
        dep.synapse_version_source = "set in " .. (dep.file:match("([^/]*)$") or dep.file) ..
            (line and line ~= "1" and (" line " .. line) or "")
        return true
    end
    local doc, rerr = routes.load(paths.routes_file)
    if not doc then return nil, tostring(rerr) end
    local got, perr = probe.version(dep, opts.probe_url)
    if got then return probed(dep, doc, got, opts.out) end
    if opts.probe then return nil, "--probe: " .. perr end
    local base = probe.main_url(dep)
    conservative(dep, doc, perr, opts.probe_url or (base and (base .. probe.FEDERATION_PATH)))
    return true
end

return M
