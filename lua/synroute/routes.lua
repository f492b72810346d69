-- synroute.routes - load and validate routes/routes.yaml, apply version semantics.
--
--   routes.load(path)            -> doc | nil, "file:line: msg\n...", { "file:line: msg", ... }
--   routes.parse(str, name)      -> the same, from a string (tests)
--   routes.active(doc, version)  -> entries | nil, err
--   routes.parse_version(s)      -> { 1, 157 } | nil
--   routes.compare_versions(a, b) -> -1 | 0 | 1   (a, b: version strings)
--   routes.METHOD_LIST, routes.METHODS, routes.KEYS, routes.REFINES   (classes: synroute.classes)
--
-- doc = { file=, version=1, synapse_versions={...}, latest="1.157",
--         routes = { entry, ... }, warnings = { "file:line: ..." } }
-- entry = { id=, class=, pattern=, refine="since"|"pos"|nil, alt_class=,
--           key="user"|"room"|"origin"|"path_user"|"none"|nil,  (nil: the class default,
--                                     classes.DEFAULT_KEY, for class and alt_class)
--           methods={"GET",...}|nil, generic="all"|"none"|{"GET",...},
--           since="1.60", ["until"]="1.120"|nil, source=, line=N }
--
-- Version semantics (docs/design.md): for a configured version V,
--   V > until : the entry is skipped (a later entry may match);
--   V < since : the entry matches but workers of V cannot serve it: it gets
--               reason = "served by workers since <since>" (policy sends it to main).

local synroute = require("synroute")
local classes = require("synroute.classes")

local M = {}

local set = classes.set

M.METHOD_LIST = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH" }
M.METHODS = set(M.METHOD_LIST)
M.KEYS = set({ "user", "room", "origin", "path_user", "none" })
M.REFINES = set({ "since", "pos" })

local ENTRY_KEYS = set({
    "id", "class", "pattern", "refine", "alt_class", "key", "methods", "generic",
    "since", "until", "source",
})
local TOP_KEYS = set({ "version", "synapse_versions", "routes" })

--------------------------------------------------------------------------
-- versions

function M.parse_version(s)
    if type(s) ~= "string" or not s:match("^%d+%.%d+$") and not s:match("^%d+%.%d+%.%d+$") then
        return nil
    end
    local parts = {}
    for d in s:gmatch("%d+") do
        local n = math.tointeger(tonumber(d))
        if not n or #d > 9 then return nil end
        parts[#parts + 1] = n
    end
    return parts
end

local function cmp_parts(a, b)
    for i = 1, math.max(#a, #b) do
        local x, y = a[i] or 0, b[i] or 0
        if x < y then return -1 elseif x > y then return 1 end
    end
    return 0
end

function M.compare_versions(a, b)
    local pa, pb = M.parse_version(a), M.parse_version(b)
    if not pa or not pb then
        error("compare_versions: bad version " .. tostring(pa and b or a), 2)
    end
    return cmp_parts(pa, pb)
end

--------------------------------------------------------------------------
-- validation

local function describe(v)
    if v == synroute.null then return "null" end
    local t = type(v)
    if t == "string" then return string.format("%q", v) end
    if t == "table" then return (#v > 0 or next(v) == nil) and "a list" or "a map" end
    return t .. " " .. tostring(v)
end

local function is_list(v)
    if type(v) ~= "table" then return false end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    return n == #v
end

local function validate(doc, pos, file)
    local errs, warns = {}, {}
    local function err(line, fmt, ...)
        errs[#errs + 1] = string.format("%s:%d: " .. fmt, file, line or 0, ...)
    end
    local function warn(line, fmt, ...)
        warns[#warns + 1] = string.format("%s:%d: " .. fmt, file, line or 0, ...)
    end
    local function line_of(tbl, key)
        local p = pos[tbl]
        if not p then return nil end
        if key ~= nil then
            if type(key) == "number" and p.items and p.items[key] then return p.items[key] end
            if p.keys and p.keys[key] then return p.keys[key] end
        end
        return p.line
    end

    if type(doc) ~= "table" or is_list(doc) and next(doc) ~= nil then
        err(1, "the file must be a map with keys version, synapse_versions, routes")
        return nil, errs, warns
    end
    local root_line = line_of(doc) or 1

    for k in pairs(doc) do
        if not TOP_KEYS[k] then
            warn(line_of(doc, k), "unknown top-level key %s (ignored)", describe(k))
        end
    end

    local out = { file = file, routes = {}, warnings = warns }

    -- version
    if doc.version == nil then
        err(root_line, "missing key version (must be 1)")
    elseif doc.version ~= 1 then
        err(line_of(doc, "version"), "version must be 1, not %s", describe(doc.version))
    end
    out.version = 1

    -- synapse_versions
    local known = {}
    local sv = doc.synapse_versions
    if sv == nil then
        err(root_line, "missing key synapse_versions (every known release, oldest first)")
    elseif not is_list(sv) or #sv == 0 then
        err(line_of(doc, "synapse_versions"), "synapse_versions must be a non-empty list")
    else
        local prev, prevs
        out.synapse_versions = {}
        for i, v in ipairs(sv) do
            local p = M.parse_version(v)
            if type(v) ~= "string" then
                err(line_of(sv, i), "synapse_versions[%d]: %s is not a quoted version string like \"1.60\"", i, describe(v))
            elseif not p then
                err(line_of(sv, i), "synapse_versions[%d]: bad version string %s", i, describe(v))
            else
                if prev and cmp_parts(prev, p) >= 0 then
                    err(line_of(sv, i), "synapse_versions must be in increasing order: %s after %s", v, prevs)
                end
                prev, prevs = p, v
                known[v] = true
                out.synapse_versions[#out.synapse_versions + 1] = v
            end
        end
        out.oldest = out.synapse_versions[1]
        out.latest = out.synapse_versions[#out.synapse_versions]
    end

    -- routes
    local rs = doc.routes
    if rs == nil then
        err(root_line, "missing key routes")
        return nil, errs, warns
    elseif not is_list(rs) then
        err(line_of(doc, "routes"), "routes must be a list")
        return nil, errs, warns
    end

    local seen_ids = {}
    local function version_field(e, ename, name, eline)
        local v = e[name]
        if v == nil then return nil end
        local l = line_of(e, name) or eline
        if type(v) ~= "string" then
            err(l, "%s: %s must be a quoted version string like \"1.60\", not %s", ename, name, describe(v))
            return false
        elseif not M.parse_version(v) then
            err(l, "%s: bad version string %s in %s", ename, describe(v), name)
            return false
        elseif out.synapse_versions and not known[v] then
            err(l, "%s: %s %s is not in synapse_versions", ename, name, describe(v))
            return false
        end
        return v
    end

    local function method_list(e, ename, name, eline, allow_words)
        local v = e[name]
        local l = line_of(e, name) or eline
        if allow_words and (v == "all" or v == "none") then
            return v
        end
        if not is_list(v) or #v == 0 then
            if allow_words then
                err(l, "%s: %s must be all, none or a list of methods, not %s", ename, name, describe(v))
            else
                err(l, "%s: %s must be a non-empty list of methods, not %s", ename, name, describe(v))
            end
            return nil
        end
        local list, dup = {}, {}
        for i, m in ipairs(v) do
            local ml = line_of(v, i) or l
            if type(m) ~= "string" or not M.METHODS[m] then
                err(ml, "%s: bad method %s in %s (one of %s)", ename, describe(m), name,
                    table.concat(M.METHOD_LIST, ", "))
            elseif dup[m] then
                err(ml, "%s: method %s listed twice in %s", ename, m, name)
            else
                dup[m] = true
                list[#list + 1] = m
            end
        end
        return list
    end

    for i, e in ipairs(rs) do
        local eline = line_of(rs, i) or line_of(e) or root_line
        if type(e) ~= "table" or (is_list(e) and next(e) ~= nil) then
            err(eline, "routes[%d]: an entry must be a map", i)
            goto continue
        end
        do
            local ename = "routes[" .. i .. "]"
            local entry = { line = eline }
            for k in pairs(e) do
                if not ENTRY_KEYS[k] then
                    err(line_of(e, k) or eline, "%s: unknown key %s", ename, describe(k))
                end
            end
            -- id
            local id = e.id
            if id == nil then
                err(eline, "%s: missing id", ename)
            elseif type(id) ~= "string" or not id:match("^[a-z0-9_]+$") then
                err(line_of(e, "id") or eline, "%s: bad id %s (must match [a-z0-9_]+)", ename, describe(id))
            else
                ename = "route " .. id
                if seen_ids[id] then
                    err(line_of(e, "id") or eline, "duplicate id %s (first at line %d)", id, seen_ids[id])
                else
                    seen_ids[id] = line_of(e, "id") or eline
                end
                entry.id = id
            end
            -- class
            local cls = e.class
            if cls == nil then
                err(eline, "%s: missing class", ename)
            elseif type(cls) ~= "string" or not classes.IS[cls] then
                err(line_of(e, "class") or eline, "%s: unknown class %s", ename, describe(cls))
                cls = nil
            end
            entry.class = cls
            -- pattern
            local pat = e.pattern
            if pat == nil then
                err(eline, "%s: missing pattern", ename)
            elseif type(pat) ~= "string" or pat == "" then
                err(line_of(e, "pattern") or eline, "%s: pattern must be a string, not %s", ename, describe(pat))
            elseif pat:sub(1, 1) ~= "^" then
                err(line_of(e, "pattern") or eline, "%s: pattern must start with '^'", ename)
            else
                local set_, perr = synroute.regex_set({ pat })
                if not set_ then
                    perr = tostring(perr):gsub("^entry %d+[^:]*: ", "")
                    err(line_of(e, "pattern") or eline, "%s: bad pattern: %s", ename, perr)
                else
                    entry.pattern = pat
                end
            end
            -- refine / alt_class
            local refine, alt = e.refine, e.alt_class
            if refine ~= nil then
                if type(refine) ~= "string" or not M.REFINES[refine] then
                    err(line_of(e, "refine") or eline, "%s: refine must be since or pos, not %s", ename, describe(refine))
                elseif alt == nil then
                    err(line_of(e, "refine") or eline, "%s: refine without alt_class", ename)
                end
                entry.refine = refine
            end
            if alt ~= nil then
                if type(alt) ~= "string" or not classes.IS[alt] then
                    err(line_of(e, "alt_class") or eline, "%s: unknown alt_class %s", ename, describe(alt))
                elseif refine == nil then
                    err(line_of(e, "alt_class") or eline, "%s: alt_class without refine", ename)
                elseif alt == cls then
                    err(line_of(e, "alt_class") or eline, "%s: alt_class is the same as class", ename)
                end
                entry.alt_class = alt
            end
            -- key
            local key = e.key
            if key ~= nil then
                if type(key) ~= "string" or not M.KEYS[key] then
                    err(line_of(e, "key") or eline, "%s: key must be user, room, origin, path_user or none, not %s",
                        ename, describe(key))
                end
                entry.key = key
            end
            -- methods
            if e.methods ~= nil then
                entry.methods = method_list(e, ename, "methods", eline, false)
            end
            -- generic
            if e.generic ~= nil then
                entry.generic = method_list(e, ename, "generic", eline, true)
            elseif cls then
                entry.generic = classes.WRITERS[cls] and "none" or "all"
            end
            -- since / until
            local since = version_field(e, ename, "since", eline)
            local till = version_field(e, ename, "until", eline)
            if since and till and M.compare_versions(since, till) > 0 then
                err(line_of(e, "since") or eline, "%s: since %s is after until %s", ename, since, till)
            end
            entry.since = since or out.oldest
            entry["until"] = till or nil
            -- source
            if e.source ~= nil then
                if type(e.source) ~= "string" then
                    err(line_of(e, "source") or eline, "%s: source must be a string", ename)
                end
                entry.source = e.source
            end
            out.routes[#out.routes + 1] = entry
        end
        ::continue::
    end
    if #rs == 0 then
        err(line_of(doc, "routes") or root_line, "routes is empty")
    end

    if #errs > 0 then
        return nil, errs, warns
    end
    return out, errs, warns
end

local function finish(doc, errs, warns)
    if not doc then
        return nil, table.concat(errs, "\n"), errs
    end
    return doc
end

function M.load(path)
    if type(path) ~= "string" then
        error("routes.load: path must be a string", 2)
    end
    local doc, pos = synroute.yaml_load(path)
    if not doc then
        return nil, pos, { pos }
    end
    return finish(validate(doc, pos, path))
end

function M.parse(str, name)
    if type(str) ~= "string" then
        error("routes.parse: expected a string", 2)
    end
    name = name or "routes.yaml"
    local doc, pos = synroute.yaml_parse(str, name)
    if not doc then
        return nil, pos, { pos }
    end
    return finish(validate(doc, pos, name))
end

-- The entries in effect for Synapse version `version` (default: the newest
-- known). Returns a new list of shallow copies; `reason` is set on entries
-- that exist but are served by main at this version.
function M.active(doc, version)
    if type(doc) ~= "table" or type(doc.routes) ~= "table" then
        error("routes.active: expected a doc from routes.load", 2)
    end
    version = version or doc.latest
    local v
    if version ~= nil then
        if type(version) ~= "string" then
            return nil, "bad Synapse version " .. describe(version) .. " (expected e.g. \"1.157\")"
        end
        v = M.parse_version(version)
        if not v then
            return nil, "bad Synapse version " .. string.format("%q", version) .. " (expected e.g. \"1.157\")"
        end
    end
    local list = {}
    for _, e in ipairs(doc.routes) do
        local skip = v and e["until"] and cmp_parts(v, M.parse_version(e["until"])) > 0
        if not skip then
            local c = {}
            for k, x in pairs(e) do c[k] = x end
            if v and e.since and cmp_parts(v, M.parse_version(e.since)) < 0 then
                c.reason = "served by workers since " .. e.since
            end
            list[#list + 1] = c
        end
    end
    return list
end

return M
