-- synroute.json - a JSON encoder with a stable key order, for output that
-- scripts read and tests compare (`synroute explain`). Decoding is
-- lua-cjson's.
--
--   json.encode(value [, opts]) -> string
--     opts.order = { "class", "backend", ... }  keys of the top-level object
--                  listed here come first, in this order; every other key
--                  follows, sorted (so do the keys of nested objects).
--
-- Tables whose keys are exactly 1..n (n >= 1) encode as arrays, other tables as
-- objects (keys must be strings or numbers). Strings are bytes: valid UTF-8 is
-- kept as is, control characters are \u escaped, and a byte that is not part
-- of valid UTF-8 is written as \u00XX (its Latin-1 reading) so the output is
-- always valid JSON. Encoding a function, a NaN/inf number or a cyclic table is a
-- programming error and raises.

local M = {}

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
    if is_array(t) then
        out[#out + 1] = "["
        for i = 1, #t do
            if i > 1 then out[#out + 1] = "," end
            encode_value(t[i], opts, depth + 1, seen, out)
        end
        out[#out + 1] = "]"
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
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
            if i > 1 then out[#out + 1] = "," end
            out[#out + 1] = '"' .. escape_bytes(ks[k] or key_string(k)) .. '":'
            encode_value(t[k], opts, depth + 1, seen, out)
        end
        out[#out + 1] = "}"
    end
    seen[t] = nil
end

encode_value = function(v, opts, depth, seen, out)
    local tv = type(v)
    if tv == "boolean" then
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

return M
