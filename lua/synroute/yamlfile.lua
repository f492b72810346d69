-- synroute.yamlfile - YAML files with the line of every value, and the
-- problems and warnings found in them, as "file:line: message".
--
--   local yamlfile = require("synroute.yamlfile")
--   local report = yamlfile.report()
--   local doc = report:load(path, ref, what)   -> doc | nil (the problem is reported)
--       ref:  "file:line" of whoever named the file (nil: the command line)
--       what: what the file is ("homeserver config"), for messages
--   doc.file, doc.root (the top-level mapping), doc.pos (synroute.yaml_load's)
--   doc:at(t, k)                 -> "file:line" of key/index k of table t (of t itself
--                                   without k; line 1 when the position is unknown)
--   doc:strings(t, key, what, report) -> { { value, "file:line" }, ... }
--                                   for a string or a list of strings (null: {})
--   report:problem(where, msg), report:warn(where, msg)
--   report.problems, report.warnings   lists of "where: msg"
--   yamlfile.where(file, key)    -> "file:line" of a top-level key of a file
--                                   ("file:1" when absent or unreadable)
--   yamlfile.is_null(v)          -> v is nil or YAML null
-- Nothing here prints; a message never holds a value that may be a secret.

local synroute = require("synroute")

local M = {}

function M.is_null(v)
    return v == nil or v == synroute.null
end

---------------------------------------------------------------------------
-- one file

local Doc = {}
Doc.__index = Doc

function Doc:at(t, k)
    local p = t and self.pos[t]
    local line = 1
    if p then
        if type(k) == "number" and p.items and p.items[k] then line = p.items[k]
        elseif k ~= nil and p.keys and p.keys[k] then line = p.keys[k]
        elseif p.line then line = p.line end
    end
    return self.file .. ":" .. line
end

function Doc:strings(t, key, what, report)
    local v = t[key]
    if M.is_null(v) then return {} end
    if type(v) == "string" then return { { v, self:at(t, key) } } end
    if type(v) == "table" and next(v) == nil then return {} end
    if type(v) ~= "table" or v[1] == nil then
        report:problem(self:at(t, key), what .. ": expected a string or a list of strings")
        return {}
    end
    local out = {}
    for i, s in ipairs(v) do
        if type(s) ~= "string" then
            report:problem(self:at(v, i), what .. ": expected a string")
        else
            out[#out + 1] = { s, self:at(v, i) }
        end
    end
    return out
end

---------------------------------------------------------------------------
-- the report

local Report = {}
Report.__index = Report

function M.report()
    return setmetatable({ problems = {}, warnings = {} }, Report)
end

function Report:problem(where, msg)
    self.problems[#self.problems + 1] = where .. ": " .. msg
end

function Report:warn(where, msg)
    self.warnings[#self.warnings + 1] = where .. ": " .. msg
end

function Report:load(path, ref, what)
    local fh, err = io.open(path, "r")
    if not fh then
        self:problem(ref or (path .. ":1"), "cannot read " .. (what or "file") .. " " .. path .. ": " ..
            tostring(err):gsub("^[^:]*: ", ""))
        return nil
    end
    fh:close()
    local root, pos = synroute.yaml_load(path)
    if root == nil then
        -- pos is "path:line:col: message"
        local msg = tostring(pos)
        if not msg:find(path, 1, true) then msg = path .. ":1: " .. msg end
        self.problems[#self.problems + 1] = msg
        return nil
    end
    if root == synroute.null then root, pos = {}, pos or {} end
    if type(root) ~= "table" then
        self:problem(path .. ":1", "expected a YAML mapping at the top level")
        return nil
    end
    return setmetatable({ file = path, root = root, pos = pos }, Doc)
end

function M.where(file, key)
    if type(file) == "string" then
        local root, pos = synroute.yaml_load(file)
        local p = type(root) == "table" and pos[root]
        if p and p.keys and p.keys[key] then
            return file .. ":" .. tostring(p.keys[key])
        end
    end
    return tostring(file) .. ":1"
end

return M
