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

-- The message for a file yaml_load refused. Problems with the file as a
-- whole lead with the reference:
--   "homeserver.yaml:19: appservice registration /dev/zero is not a regular file (a character device)"
-- problems inside it lead with their own place and say where it was named:
--   "as/bomb.yaml:3:9: alias *a expands ... (referenced at homeserver.yaml:19)"
local function refused(path, ref, what, msg)
    local head = msg:sub(1, #path + 1) == path .. ":" and msg:sub(#path + 2, #path + 2)
    if head and head:match("%d") then
        return msg .. (ref and (" (referenced at " .. ref .. ")") or "")
    end
    local why = head and msg:sub(#path + 3) or msg
    local where = ref and (ref .. ": ") or ""
    if why:sub(1, 3) == "is " then return where .. what .. " " .. path .. " " .. why end
    return where .. "cannot read " .. what .. " " .. path .. ": " .. (why:gsub("^cannot open: ", ""))
end

-- Only a regular file within the module's YAML limits is read (self.limits,
-- nil: the defaults); a FIFO or a device is refused without being read.
function Report:load(path, ref, what)
    local root, pos = synroute.yaml_load(path, self.limits)
    if root == nil then
        self.problems[#self.problems + 1] = refused(path, ref, what or "file", tostring(pos))
        return nil
    end
    if root == synroute.null then root, pos = {}, pos or {} end
    if type(root) ~= "table" or root[1] ~= nil then
        self:problem(path .. ":1", (what or "file") .. " is a YAML " .. (type(root) == "table" and "list" or "scalar") ..
            "; expected a mapping at the top level" .. (ref and (" (referenced at " .. ref .. ")") or ""))
        return nil
    end
    return setmetatable({ file = path, root = root, pos = pos }, Doc)
end

return M
