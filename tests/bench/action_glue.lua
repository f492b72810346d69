-- action_glue.lua - for `make bench` only: the same router entered through a
-- Lua ACTION instead of the converter, to measure what the converter design
-- saves. Not used by the product. Loaded after lua/synroute/haproxy.lua,
-- whose engine it reuses through package.loaded.
local api = require("synroute.api")
local eng = assert(api.new{ config = os.getenv("SYNROUTE_CONFIG") })
local route = eng.router.route
local router = eng.router
core.register_action("synroute_action", { "http-req" }, function(txn)
    local f = txn.f
    local auth = f:req_fhdr("authorization") or ""
    local out = route(router, f:method() .. " " .. f:src() .. " " .. f:pathq() .. " " .. auth)
    local key = out:match("^[^|]*|[^|]*|(.*)$")
    txn:set_var("txn.synroute", out)
    if key and key ~= "" then txn:set_var("txn.synroute_key", key) end
end, 0)
