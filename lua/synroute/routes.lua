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

-- The validation of one file: errors and warnings as "file:line: message",
-- the releases known (for since/until), and the validated doc being built.
local V = {}
V.__index = V

function V:err(line, fmt, ...)
    self.errs[#self.errs + 1] = string.format("%s:%d: " .. fmt, self.file, line or 0, ...)
end

function V:warn(line, fmt, ...)
    self.warns[#self.warns + 1] = string.format("%s:%d: " .. fmt, self.file, line or 0, ...)
end

-- the line of key/index `key` of table tbl (of tbl itself without key) | nil
function V:line(tbl, key)
    local p = self.pos[tbl]
    if not p then return nil end
    if key ~= nil then
        if type(key) == "number" and p.items and p.items[key] then return p.items[key] end
        if p.keys and p.keys[key] then return p.keys[key] end
    end
    return p.line
end

function V:version_key(doc)
    if doc.version == nil then
        self:err(self.root_line, "missing key version (must be 1)")
    elseif doc.version ~= 1 then
        self:err(self:line(doc, "version"), "version must be 1, not %s", describe(doc.version))
    end
    self.out.version = 1
end

function V:synapse_versions(doc)
    local sv, out = doc.synapse_versions, self.out
    if sv == nil then
        return self:err(self.root_line, "missing key synapse_versions (every known release, oldest first)")
    elseif not is_list(sv) or #sv == 0 then
        return self:err(self:line(doc, "synapse_versions"), "synapse_versions must be a non-empty list")
    end
    local prev, prevs
    out.synapse_versions = {}
    for i, v in ipairs(sv) do
        local p = M.parse_version(v)
        if type(v) ~= "string" then
            self:err(self:line(sv, i), "synapse_versions[%d]: %s is not a quoted version string like \"1.60\"", i, describe(v))
        elseif not p then
            self:err(self:line(sv, i), "synapse_versions[%d]: bad version string %s", i, describe(v))
        else
            if prev and cmp_parts(prev, p) >= 0 then
                self:err(self:line(sv, i), "synapse_versions must be in increasing order: %s after %s", v, prevs)
            end
            prev, prevs = p, v
            self.known[v] = true
            out.synapse_versions[#out.synapse_versions + 1] = v
        end
    end
    out.oldest = out.synapse_versions[1]
    out.latest = out.synapse_versions[#out.synapse_versions]
end

---------------------------------------------------------------------------
-- one entry: e the map, c = { name =, line = } its context, entry the result

function V:version_field(e, c, name)
    local v = e[name]
    if v == nil then return nil end
    local l = self:line(e, name) or c.line
    if type(v) ~= "string" then
        self:err(l, "%s: %s must be a quoted version string like \"1.60\", not %s", c.name, name, describe(v))
    elseif not M.parse_version(v) then
        self:err(l, "%s: bad version string %s in %s", c.name, describe(v), name)
    elseif self.out.synapse_versions and not self.known[v] then
        self:err(l, "%s: %s %s is not in synapse_versions", c.name, name, describe(v))
    else
        return v
    end
    return false
end

function V:method_list(e, c, name, allow_words)
    local v = e[name]
    local l = self:line(e, name) or c.line
    if allow_words and (v == "all" or v == "none") then return v end
    if not is_list(v) or #v == 0 then
        self:err(l, "%s: %s must be %s, not %s", c.name, name,
            allow_words and "all, none or a list of methods" or "a non-empty list of methods", describe(v))
        return nil
    end
    local list, dup = {}, {}
    for i, m in ipairs(v) do
        local ml = self:line(v, i) or l
        if type(m) ~= "string" or not M.METHODS[m] then
            self:err(ml, "%s: bad method %s in %s (one of %s)", c.name, describe(m), name,
                table.concat(M.METHOD_LIST, ", "))
        elseif dup[m] then
            self:err(ml, "%s: method %s listed twice in %s", c.name, m, name)
        else
            dup[m] = true
            list[#list + 1] = m
        end
    end
    return list
end

function V:entry_id(e, c, entry)
    local id = e.id
    if id == nil then
        return self:err(c.line, "%s: missing id", c.name)
    elseif type(id) ~= "string" or not id:match("^[a-z0-9_]+$") then
        return self:err(self:line(e, "id") or c.line, "%s: bad id %s (must match [a-z0-9_]+)", c.name, describe(id))
    end
    c.name = "route " .. id
    local l = self:line(e, "id") or c.line
    if self.seen_ids[id] then
        self:err(l, "duplicate id %s (first at line %d)", id, self.seen_ids[id])
    else
        self.seen_ids[id] = l
    end
    entry.id = id
end

function V:entry_class(e, c, entry)
    local cls = e.class
    if cls == nil then
        self:err(c.line, "%s: missing class", c.name)
    elseif type(cls) ~= "string" or not classes.IS[cls] then
        self:err(self:line(e, "class") or c.line, "%s: unknown class %s", c.name, describe(cls))
    else
        entry.class = cls
    end
end

function V:entry_pattern(e, c, entry)
    local pat, l = e.pattern, self:line(e, "pattern") or c.line
    if pat == nil then
        return self:err(c.line, "%s: missing pattern", c.name)
    elseif type(pat) ~= "string" or pat == "" then
        return self:err(l, "%s: pattern must be a string, not %s", c.name, describe(pat))
    elseif pat:sub(1, 1) ~= "^" then
        return self:err(l, "%s: pattern must start with '^'", c.name)
    end
    local set_, perr = synroute.regex_set({ pat })
    if not set_ then
        self:err(l, "%s: bad pattern: %s", c.name, (tostring(perr):gsub("^entry %d+[^:]*: ", "")))
    else
        entry.pattern = pat
    end
end

function V:entry_refine(e, c, entry)
    local refine = e.refine
    if refine == nil then return end
    local l = self:line(e, "refine") or c.line
    if type(refine) ~= "string" or not M.REFINES[refine] then
        self:err(l, "%s: refine must be since or pos, not %s", c.name, describe(refine))
    elseif e.alt_class == nil then
        self:err(l, "%s: refine without alt_class", c.name)
    end
    entry.refine = refine
end

function V:entry_alt_class(e, c, entry)
    local alt = e.alt_class
    if alt == nil then return end
    local why = (type(alt) ~= "string" or not classes.IS[alt]) and ("unknown alt_class " .. describe(alt))
        or (e.refine == nil and "alt_class without refine")
        or (alt == entry.class and "alt_class is the same as class")
    if why then self:err(self:line(e, "alt_class") or c.line, "%s: %s", c.name, why) end
    entry.alt_class = alt
end

function V:entry_key(e, c, entry)
    local key = e.key
    if key == nil then return end
    if type(key) ~= "string" or not M.KEYS[key] then
        self:err(self:line(e, "key") or c.line, "%s: key must be user, room, origin, path_user or none, not %s",
            c.name, describe(key))
    end
    entry.key = key
end

function V:entry_methods(e, c, entry)
    if e.methods ~= nil then
        entry.methods = self:method_list(e, c, "methods", false)
    end
    if e.generic ~= nil then
        entry.generic = self:method_list(e, c, "generic", true)
    elseif entry.class then
        entry.generic = classes.WRITERS[entry.class] and "none" or "all"
    end
end

function V:entry_versions(e, c, entry)
    local since = self:version_field(e, c, "since")
    local till = self:version_field(e, c, "until")
    if since and till and M.compare_versions(since, till) > 0 then
        self:err(self:line(e, "since") or c.line, "%s: since %s is after until %s", c.name, since, till)
    end
    entry.since = since or self.out.oldest
    entry["until"] = till or nil
    if e.source ~= nil then
        if type(e.source) ~= "string" then
            self:err(self:line(e, "source") or c.line, "%s: source must be a string", c.name)
        end
        entry.source = e.source
    end
end

function V:entry(rs, i)
    local e = rs[i]
    local c = { name = "routes[" .. i .. "]", line = self:line(rs, i) or self:line(e) or self.root_line }
    if type(e) ~= "table" or (is_list(e) and next(e) ~= nil) then
        return self:err(c.line, "routes[%d]: an entry must be a map", i)
    end
    local entry = { line = c.line }
    for k in pairs(e) do
        if not ENTRY_KEYS[k] then
            self:err(self:line(e, k) or c.line, "%s: unknown key %s", c.name, describe(k))
        end
    end
    self:entry_id(e, c, entry)
    self:entry_class(e, c, entry)
    self:entry_pattern(e, c, entry)
    self:entry_refine(e, c, entry)
    self:entry_alt_class(e, c, entry)
    self:entry_key(e, c, entry)
    self:entry_methods(e, c, entry)
    self:entry_versions(e, c, entry)
    self.out.routes[#self.out.routes + 1] = entry
end

---------------------------------------------------------------------------

-- doc, pos from the YAML loader -> out (its warnings in out.warnings) | nil, errs
local function validate(doc, pos, file)
    local v = setmetatable({ errs = {}, warns = {}, file = file, pos = pos, known = {}, seen_ids = {} }, V)
    if type(doc) ~= "table" or is_list(doc) and next(doc) ~= nil then
        v:err(1, "the file must be a map with keys version, synapse_versions, routes")
        return nil, v.errs
    end
    v.root_line = v:line(doc) or 1
    for k in pairs(doc) do
        if not TOP_KEYS[k] then v:warn(v:line(doc, k), "unknown top-level key %s (ignored)", describe(k)) end
    end
    v.out = { file = file, routes = {}, warnings = v.warns }
    v:version_key(doc)
    v:synapse_versions(doc)
    local rs = doc.routes
    if rs == nil then
        v:err(v.root_line, "missing key routes")
    elseif not is_list(rs) then
        v:err(v:line(doc, "routes"), "routes must be a list")
    elseif #rs == 0 then
        v:err(v:line(doc, "routes") or v.root_line, "routes is empty")
    end
    for i = 1, is_list(rs) and #rs or 0 do v:entry(rs, i) end
    if #v.errs > 0 then return nil, v.errs end
    return v.out
end

-- What the YAML loader gave (doc, pos | nil, msg) -> the validated doc |
-- nil, "file:line: msg\n...", { "file:line: msg", ... }
local function finish(name, doc, pos)
    if not doc then return nil, pos, { pos } end
    local out, errs = validate(doc, pos, name)
    if not out then return nil, table.concat(errs, "\n"), errs end
    return out
end

function M.load(path)
    if type(path) ~= "string" then error("routes.load: path must be a string", 2) end
    return finish(path, synroute.yaml_load(path))
end

function M.parse(str, name)
    if type(str) ~= "string" then error("routes.parse: expected a string", 2) end
    name = name or "routes.yaml"
    return finish(name, synroute.yaml_parse(str, name))
end

-- The pseudo-version for a Synapse whose release is unknown: only the
-- entries workers serve in EVERY release of synapse_versions (no `since`
-- after the oldest, no `until` before the newest) go to workers; every
-- other entry still matches (first match wins) but goes to main.
M.CONSERVATIVE = "conservative"

local function conservative(doc)
    local oldest, latest = M.parse_version(doc.oldest), M.parse_version(doc.latest)
    local list = {}
    for _, e in ipairs(doc.routes) do
        local c = {}
        for k, x in pairs(e) do c[k] = x end
        if e.since and cmp_parts(M.parse_version(e.since), oldest) > 0 then
            c.reason = "Synapse version unknown: served by workers only since " .. e.since
        elseif e["until"] and cmp_parts(M.parse_version(e["until"]), latest) < 0 then
            c.reason = "Synapse version unknown: served by workers only until " .. e["until"]
        end
        list[#list + 1] = c
    end
    return list
end

-- The entries in effect for Synapse version `version` (default: the newest
-- known; M.CONSERVATIVE: see above). Returns a new list of shallow copies;
-- `reason` is set on entries that exist but are served by main at this version.
function M.active(doc, version)
    if type(doc) ~= "table" or type(doc.routes) ~= "table" then
        error("routes.active: expected a doc from routes.load", 2)
    end
    if version == M.CONSERVATIVE then return conservative(doc) end
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
