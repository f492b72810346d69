-- tests/lua/test_metrics.lua - synroute.metrics: the `metrics:` section of
-- synroute.yaml through the schema walk, the frontend lines, and the
-- Prometheus text rendered from a stick-table dump. Run with lua5.4 from the
-- repository root. (Through real HAProxy: tests/traffic/metrics.sh.)

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local kit = dofile(here .. "/testkit.lua")("lua/metrics")
local check, eq = kit.check, kit.eq

local metrics = require("synroute.metrics")
local settings = require("synroute.settings")
local yamlfile = require("synroute.yamlfile")

-- settings -------------------------------------------------------------------
local tmpyaml = os.tmpname()
local function read(text)
    local f = assert(io.open(tmpyaml, "w"))
    f:write(text, "\n")
    f:close()
    local report = yamlfile.report()
    local s = settings.check({ keys = { metrics = settings.SCHEMA.keys.metrics } }, report:load(tmpyaml), report)
    local probs = {}
    for _, p in ipairs(report.problems) do probs[#probs + 1] = (p:gsub("^[^:]*:%d+: ", "")) end
    return s.metrics, table.concat(probs, " / ")
end

local m = read("other: 1")
check("absent", m == nil, "got a value")
local p
m, p = read('metrics: "127.0.0.1:9101"')
eq("short/problems", p, "")
eq("short/listen", m and m.listen[1], "127.0.0.1:9101")
eq("short/path-default", m and m.path, "/metrics")
m, p = read('metrics: { listen: ["127.0.0.1:9101", "[::1]:9101"], path: /prom/metrics }')
eq("list/problems", p, "")
eq("list/second", m and m.listen[2], "[::1]:9101")
eq("list/path", m and m.path, "/prom/metrics")
p = select(2, read("metrics: { path: /metrics }"))
eq("no-listen", p, "metrics: listen is required (the address Prometheus scrapes)")
p = select(2, read("metrics: { listen: [] }"))
check("empty-listen", p:find("metrics.listen: expected host:port", 1, true) ~= nil, p)
for _, bad in ipairs({ "metrics", "/a b", "/a?x=1", "//x", "/a'b" }) do
    p = select(2, read('metrics: { listen: "127.0.0.1:9101", path: "' .. bad .. '" }'))
    check("bad-path " .. bad, p:find("metrics.path: expected an absolute path", 1, true) ~= nil, p)
end
p = select(2, read("metrics: [1, 2]"))
check("not-mapping", p ~= "", "no problem for a list of numbers")
os.remove(tmpyaml)

-- the frontend ----------------------------------------------------------------
local dep = { metrics = { listen = { "127.0.0.1:9101" }, path = "/metrics" }, admin_networks = { "10.0.0.0/8" } }
local text = table.concat(metrics.frontend_lines(dep), "\n")
check("frontend/bind", text:find("\n    bind 127.0.0.1:9101\n", 1, true), text)
check("frontend/acl", text:find("acl synroute_admin_net src 10.0.0.0/8", 1, true), text)
check("frontend/403-first", text:find("403", 1, true) < text:find("use-service", 1, true), text)
check("frontend/exporter", text:find("use-service prometheus-exporter if { path /metrics }", 1, true), text)
check("frontend/classes", text:find("use-service lua.synroute_metrics if { path /metrics/classes }", 1, true), text)
check("frontend/table", text:find("backend synroute_classes\n    stick-table type string", 1, true), text)
dep.admin_networks = {}
text = table.concat(metrics.frontend_lines(dep), "\n")
check("frontend/nobody", text:find("string 'metrics are only served to admin_networks'\n", 1, true)
    and not text:find("acl synroute_admin_net", 1, true), text)
eq("classes-path/slash", metrics.classes_path("/m/"), "/m/classes")

-- rendering ---------------------------------------------------------------------
local out = metrics.render({
    ["sync|sync"] = { http_req_cnt = 7, http_err_cnt = 0, http_fail_cnt = 1, http_req_rate = 7 },
    ["main|media"] = { http_req_cnt = 3, http_err_cnt = 2, http_fail_cnt = 0, http_req_rate = 3 },
    ["main|"] = { http_req_cnt = 1 },
    ["nopipe"] = { http_req_cnt = 9 },
    ['x"y|a\\b'] = { http_req_cnt = 2 },
}, { version = "0.1.0", synapse = "1.157" })
local lines = {}
for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
eq("render/first", lines[1]:match("^# HELP (%S+)"), "synroute_requests_total")
eq("render/type", lines[2], "# TYPE synroute_requests_total counter")
eq("render/sorted-by-class", lines[3], 'synroute_requests_total{class="a\\\\b",pool="x\\"y"} 2')
check("render/media", out:find('\nsynroute_requests_total{class="media",pool="main"} 3\n', 1, true), out)
check("render/no-class", out:find('\nsynroute_requests_total{class="none",pool="main"} 1\n', 1, true), out)
check("render/bad-key-skipped", not out:find("nopipe", 1, true), out)
check("render/4xx", out:find('\nsynroute_errors_total{class="media",pool="main",code="4xx"} 2\n', 1, true), out)
check("render/5xx", out:find('\nsynroute_errors_total{class="sync",pool="sync",code="5xx"} 1\n', 1, true), out)
check("render/missing-is-0", out:find('\nsynroute_errors_total{class="none",pool="main",code="5xx"} 0\n', 1, true), out)
check("render/rate", out:find('\nsynroute_requests_per_minute{class="sync",pool="sync"} 7\n', 1, true), out)
check("render/info", out:find('\nsynroute_info{version="0.1.0",synapse="1.157"} 1\n$'), out)
local names = {}
for _, n in ipairs(metrics.NAMES) do names[#names + 1] = n[1] end
check("render/names", #names == 4, table.concat(names, " "))
for _, n in ipairs(names) do
    check("render/help " .. n, out:find("# HELP " .. n .. " ", 1, true) and out:find("# TYPE " .. n .. " ", 1, true), out)
end
local empty = metrics.render({}, nil)
check("render/empty", empty:find("^# HELP synroute_requests_total") and empty:find('synroute_info{version="",synapse=""} 1\n', 1, true), empty)

-- the service, with a stand-in for HAProxy's core and applet
local sent = {}
local applet = {
    set_status = function(_, s) sent.status = s end,
    add_header = function(_, k, v) sent[k] = v end,
    start_response = function() sent.started = true end,
    send = function(_, b) sent.body = b end,
}
local core = { backends = { synroute_classes = { stktable = {
    dump = function() return { ["sync|sync"] = { http_req_cnt = 4 } } end } } } }
metrics.service(core, { version = "v", synapse = "s" })(applet)
eq("service/status", sent.status, 200)
eq("service/length", sent["content-length"], tostring(#(sent.body or "")))
check("service/body", (sent.body or ""):find('synroute_requests_total{class="sync",pool="sync"} 4', 1, true), sent.body)
check("service/type", (sent["content-type"] or ""):find("^text/plain; version=0.0.4"), sent["content-type"])

kit.finish()
