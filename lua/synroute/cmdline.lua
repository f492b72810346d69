-- synroute.cmdline - the command line of one command: options, with a value
-- ("--name VALUE", "--name=VALUE", for a short option also "-XVALUE") or
-- without (flags), words, and "--" after which everything is a word.
--
--   local cmdline = require("synroute.cmdline")
--   local o, words = cmdline.parse(argv, spec)   -> o, words | nil, message
--   spec = { ["--config"] = { "config", value = true }, ["-q"] = { "quiet" }, ... }
--     entry[1]        the field of o the option sets (a flag: true)
--     value = true    the option takes a value
--     list = true     repeatable: o[field] is the list of the values
--     check(v)        -> v | nil, why: the value must have this form
--     attached = true a short option whose value may follow it directly (-HValue)
-- Messages: "<option> needs a value", "unknown option <option>", or check's why.

local M = {}

-- The spec entry and option name of argument a, and a value given with it.
local function entry_of(spec, a)
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if name then return spec[name], name, inline end
    if spec[a] then return spec[a], a end
    local short = a:match("^%-%w") and spec[a:sub(1, 2)]
    if short and short.attached and #a > 2 then return short, a:sub(1, 2), a:sub(3) end
    return nil, a
end

local function store(o, e, v)
    if e.list then
        o[e[1]] = o[e[1]] or {}
        table.insert(o[e[1]], v)
    else
        o[e[1]] = v
    end
end

function M.parse(argv, spec)
    local o, words, i = {}, {}, 1
    while i <= #argv do
        local a = argv[i]
        local e, name, v = entry_of(spec, a)
        if a == "--" then
            table.move(argv, i + 1, #argv, #words + 1, words)
            break
        elseif e and e.value then
            if v == nil then i = i + 1; v = argv[i] end
            if v == nil then return nil, name .. " needs a value" end
            local why
            if e.check then v, why = e.check(v) end
            if v == nil then return nil, why end
            store(o, e, v)
        elseif e and v == nil then
            store(o, e, true)
        elseif a:sub(1, 1) == "-" and a ~= "-" then
            return nil, "unknown option " .. a
        else
            words[#words + 1] = a
        end
        i = i + 1
    end
    return o, words
end

return M
