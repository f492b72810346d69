-- synroute.json - a small JSON encoder (stable key order) and decoder.
--
--   json.encode(value [, opts]) -> string
--     opts.order = { "class", "backend", ... }  object keys listed here come
--                  first, in this order; every other key follows, sorted.
--     opts.indent = "  "                         pretty-print (default: compact)
--   json.decode(str) -> value | nil, "offset N: message"
--   json.null                                    encodes as null; decode returns it for null
--   json.array(t)                                marks t as an array (so {} encodes as [])
--
-- Tables whose keys are exactly 1..n (n >= 1) encode as arrays, other tables as
-- objects (keys must be strings or numbers). Strings are bytes: valid UTF-8 is
-- kept as is, control characters are \u escaped, and a byte that is not part
-- of valid UTF-8 is written as \u00XX (its Latin-1 reading) so the output is
-- always valid JSON. Encoding a function, a NaN/inf number or a cyclic table is a
-- programming error and raises.

local M = {}

local null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })
M.null = null

local array_mt = { __name = "json.array" }
function M.array(t)
    return setmetatable(t or {}, array_mt)
end

local escapes = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_bytes(s)
    -- Fast path: plain printable ASCII with nothing to escape.
    if not s:find('[%c"\\\128-\255]') then
        return s
    end
    local out, n, i, len = {}, 0, 1, #s
    while i <= len do
        local c = s:byte(i)
        local piece, step
        if c < 0x80 then
            local ch = string.char(c)
            if escapes[ch] then
                piece = escapes[ch]
            elseif c < 0x20 or c == 0x7f then
                piece = string.format("\\u%04x", c)
            else
                piece = ch
            end
            step = 1
        else
            -- validate one UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF)
            local need, min
            if c >= 0xc2 and c <= 0xdf then need, min = 1, 0x80
            elseif c >= 0xe0 and c <= 0xef then need, min = 2, 0x800
            elseif c >= 0xf0 and c <= 0xf4 then need, min = 3, 0x10000
            end
            local ok = need ~= nil and i + need <= len
            if ok then
                local cp = c & (0x3f >> need)
                for k = 1, need do
                    local b = s:byte(i + k)
                    if b < 0x80 or b > 0xbf then ok = false; break end
                    cp = (cp << 6) | (b & 0x3f)
                end
                if ok and (cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff)) then
                    ok = false
                end
            end
            if ok then
                piece, step = s:sub(i, i + need), need + 1
            else
                piece, step = string.format("\\u%04x", c), 1
            end
        end
        n = n + 1
        out[n] = piece
        i = i + step
    end
    return table.concat(out)
end

local function is_array(t)
    if getmetatable(t) == array_mt then
        return true
    end
    local n = #t
    if n == 0 then
        return false
    end
    local count = 0
    for k in pairs(t) do
        if math.type(k) ~= "integer" or k < 1 or k > n then
            return false
        end
        count = count + 1
    end
    return count == n
end

local function key_string(k)
    local tk = type(k)
    if tk == "string" then
        return k
    elseif tk == "number" then
        if math.type(k) == "integer" then
            return string.format("%d", k)
        end
        return string.format("%.17g", k)
    end
    error("json.encode: object key of type " .. tk, 0)
end

local encode_value

local function encode_table(t, opts, depth, seen, out)
    if seen[t] then
        error("json.encode: cyclic table", 0)
    end
    seen[t] = true
    local ind = opts.indent
    local nl, pad, pad_in, colon = "", "", "", ":"
    if ind then
        nl = "\n"
        pad = string.rep(ind, depth)
        pad_in = string.rep(ind, depth + 1)
        colon = ": "
    end
    if is_array(t) then
        if #t == 0 then
            out[#out + 1] = "[]"
        else
            out[#out + 1] = "[" .. nl
            for i = 1, #t do
                if i > 1 then out[#out + 1] = "," .. nl end
                out[#out + 1] = pad_in
                encode_value(t[i], opts, depth + 1, seen, out)
            end
            out[#out + 1] = nl .. pad .. "]"
        end
    else
        local keys, ks, done = {}, {}, {}
        local order = depth == 0 and opts.order or nil
        if order then
            for _, k in ipairs(order) do
                if t[k] ~= nil then
                    keys[#keys + 1] = k
                    done[k] = true
                end
            end
        end
        local rest = {}
        for k in pairs(t) do
            if not done[k] then
                rest[#rest + 1] = k
                ks[k] = key_string(k)
            end
        end
        table.sort(rest, function(a, b) return ks[a] < ks[b] end)
        for _, k in ipairs(rest) do
            keys[#keys + 1] = k
        end
        if #keys == 0 then
            out[#out + 1] = "{}"
        else
            out[#out + 1] = "{" .. nl
            for i, k in ipairs(keys) do
                if i > 1 then out[#out + 1] = "," .. nl end
                out[#out + 1] = pad_in .. '"' .. escape_bytes(ks[k] or key_string(k)) .. '"' .. colon
                encode_value(t[k], opts, depth + 1, seen, out)
            end
            out[#out + 1] = nl .. pad .. "}"
        end
    end
    seen[t] = nil
end

encode_value = function(v, opts, depth, seen, out)
    local tv = type(v)
    if v == nil or v == null then
        out[#out + 1] = "null"
    elseif tv == "boolean" then
        out[#out + 1] = v and "true" or "false"
    elseif tv == "number" then
        if math.type(v) == "integer" then
            out[#out + 1] = string.format("%d", v)
        elseif v ~= v or v == math.huge or v == -math.huge then
            error("json.encode: cannot encode " .. tostring(v), 0)
        elseif v == math.floor(v) and v > -2^53 and v < 2^53 then
            out[#out + 1] = string.format("%d", math.floor(v))
        else
            out[#out + 1] = string.format("%.17g", v)
        end
    elseif tv == "string" then
        out[#out + 1] = '"' .. escape_bytes(v) .. '"'
    elseif tv == "table" then
        encode_table(v, opts, depth, seen, out)
    elseif tv == "userdata" and opts.null_userdata then
        out[#out + 1] = "null"
    else
        error("json.encode: cannot encode a " .. tv, 0)
    end
end

function M.encode(value, opts)
    opts = opts or {}
    local out = {}
    encode_value(value, opts, 0, {}, out)
    return table.concat(out)
end

--------------------------------------------------------------------------
-- decoder (strict RFC 8259; numbers without fraction/exponent -> integer)

local function decode_error(pos, msg)
    return error({ json_error = string.format("offset %d: %s", pos, msg) }, 0)
end

local function skip_ws(s, i)
    local _, e = s:find("^[ \t\r\n]*", i)
    return e + 1
end

local function utf8_char(cp)
    if utf8 and utf8.char then
        return utf8.char(cp)
    end
    error("no utf8 library")
end

local decode_at

local function decode_string(s, i)
    -- s:sub(i, i) == '"'
    local out, n = {}, 0
    local j = i + 1
    while true do
        local a, b = s:find('^[^"\\%c]+', j)
        if a then
            n = n + 1
            out[n] = s:sub(a, b)
            j = b + 1
        end
        local c = s:sub(j, j)
        if c == '"' then
            return table.concat(out), j + 1
        elseif c == "\\" then
            local e = s:sub(j + 1, j + 1)
            local simple = ({ ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b",
                              f = "\f", n = "\n", r = "\r", t = "\t" })[e]
            if simple then
                n = n + 1
                out[n] = simple
                j = j + 2
            elseif e == "u" then
                local hex = s:match("^%x%x%x%x", j + 2)
                if not hex then decode_error(j, "bad \\u escape") end
                local cp = tonumber(hex, 16)
                j = j + 6
                if cp >= 0xd800 and cp <= 0xdbff then
                    local lo = s:match("^\\u(%x%x%x%x)", j)
                    local lcp = lo and tonumber(lo, 16)
                    if not lcp or lcp < 0xdc00 or lcp > 0xdfff then
                        decode_error(j, "unpaired surrogate")
                    end
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lcp - 0xdc00)
                    j = j + 6
                elseif cp >= 0xdc00 and cp <= 0xdfff then
                    decode_error(j, "unpaired surrogate")
                end
                n = n + 1
                out[n] = utf8_char(cp)
            else
                decode_error(j, "bad escape")
            end
        elseif c == "" then
            decode_error(j, "unterminated string")
        else
            decode_error(j, "control character in string")
        end
    end
end

decode_at = function(s, i, depth)
    if depth > 200 then decode_error(i, "nested too deeply") end
    i = skip_ws(s, i)
    local c = s:sub(i, i)
    if c == "{" then
        local obj = {}
        i = skip_ws(s, i + 1)
        if s:sub(i, i) == "}" then return obj, i + 1 end
        while true do
            if s:sub(i, i) ~= '"' then decode_error(i, "expected a string key") end
            local k
            k, i = decode_string(s, i)
            i = skip_ws(s, i)
            if s:sub(i, i) ~= ":" then decode_error(i, "expected ':'") end
            local v
            v, i = decode_at(s, i + 1, depth + 1)
            obj[k] = v
            i = skip_ws(s, i)
            local d = s:sub(i, i)
            if d == "}" then return obj, i + 1 end
            if d ~= "," then decode_error(i, "expected ',' or '}'") end
            i = skip_ws(s, i + 1)
        end
    elseif c == "[" then
        local arr, n = M.array({}), 0
        i = skip_ws(s, i + 1)
        if s:sub(i, i) == "]" then return arr, i + 1 end
        while true do
            local v
            v, i = decode_at(s, i, depth + 1)
            n = n + 1
            arr[n] = v
            i = skip_ws(s, i)
            local d = s:sub(i, i)
            if d == "]" then return arr, i + 1 end
            if d ~= "," then decode_error(i, "expected ',' or ']'") end
            i = i + 1
        end
    elseif c == '"' then
        return decode_string(s, i)
    elseif s:find("^true", i) then
        return true, i + 4
    elseif s:find("^false", i) then
        return false, i + 5
    elseif s:find("^null", i) then
        return null, i + 4
    else
        local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
        if num and num:match("^-?0%d") then decode_error(i, "leading zero") end
        if num and num:match("^-?%d+$") then
            local v = math.tointeger(tonumber(num))
            if v then return v, i + #num end
        end
        if num and (num:match("^-?%d+%.%d+$") or num:match("^-?%d+%.%d+[eE][-+]?%d+$")
                    or num:match("^-?%d+[eE][-+]?%d+$") or num:match("^-?%d+$")) then
            return tonumber(num) + 0.0, i + #num
        end
        decode_error(i, c == "" and "unexpected end" or "unexpected character")
    end
end

function M.decode(s)
    if type(s) ~= "string" then
        error("json.decode: expected a string", 2)
    end
    local ok, v, i = pcall(decode_at, s, 1, 0)
    if not ok then
        if type(v) == "table" and v.json_error then
            return nil, v.json_error
        end
        error(v, 0)
    end
    i = skip_ws(s, i)
    if i <= #s then
        return nil, string.format("offset %d: trailing data", i)
    end
    return v
end

return M
