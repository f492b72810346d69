-- tests/bench/perclass.lua - the C decision (sr_route_packed through the
-- converter closure HAProxy calls) over mix.tsv, per request kind.
--
--   lua5.4 tests/bench/perclass.lua ROOT MIX time        -> kind, calls, ns per decision
--   lua5.4 tests/bench/perclass.lua ROOT MIX run KIND N  -> N passes over KIND's lines
--                                                         (for callgrind; KIND "all")
-- Deployment: examples/bench (the benchmark's pools). The input is what the
-- generated frontend builds: "METHOD SRC PATHQ AUTH". Figures are printed,
-- never asserted (tests never assert timings).
local root, mix, mode = arg[1], arg[2], arg[3]
package.path = root .. "/lua/?.lua;" .. package.path
package.cpath = root .. "/build/5.4/?.so;" .. package.cpath
local api = require("synroute.api")
local eng = assert(api.new{ config = root .. "/examples/bench/synroute.yaml" })
local conv = eng.router:converter()

local by_kind, kinds = {}, {}
for line in io.lines(mix) do
    local k, _, m, p, a = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
    if k and k:sub(1, 1) ~= "#" then
        if not by_kind[k] then by_kind[k] = {}; kinds[#kinds + 1] = k end
        local t = by_kind[k]
        t[#t + 1] = m .. " 127.0.0.1 " .. p .. " " .. (a == "-" and "" or a)
    end
end
table.sort(kinds)

local function pass(inputs, reps)
    for _ = 1, reps do
        for i = 1, #inputs do conv(inputs[i]) end
    end
end

if mode == "run" then
    local kind, reps = arg[4], tonumber(arg[5] or "1")
    local inputs = {}
    for _, k in ipairs(kinds) do
        if kind == "all" or k == kind then
            for _, s in ipairs(by_kind[k]) do inputs[#inputs + 1] = s end
        end
    end
    pass(inputs, reps)
    io.stderr:write(string.format("perclass: %d decisions\n", #inputs * reps))
    return
end

-- time: the median of 7 runs of ~0.2 s each, per kind
io.write(string.format("%-16s %6s %12s\n", "kind", "lines", "ns/decision"))
for _, k in ipairs(kinds) do
    local inputs = by_kind[k]
    local reps = math.max(1, math.floor(200000 / #inputs))
    local t = {}
    for r = 1, 7 do
        local t0 = os.clock()
        pass(inputs, reps)
        t[r] = (os.clock() - t0) * 1e9 / (reps * #inputs)
    end
    table.sort(t)
    io.write(string.format("%-16s %6d %12.0f\n", k, #inputs, t[4]))
end
