-- synroute.metrics: the `metrics:` section of synroute.yaml (docs/deployment.md
-- "Metrics").
--
-- Per request, HAProxy alone counts: every backend the generator writes
-- tracks the request in one stick table (TABLE), keyed "<pool>|<class>"
-- (the backend's own name and the decision's class), storing requests, 4xx,
-- 5xx and the request rate over one minute (TRACK_LINES, TABLE_LINE). No Lua
-- runs per request. On a scrape, the Lua service `lua.synroute_metrics`
-- (registered by the glue, lua/synroute/haproxy.lua) dumps that table in
-- Prometheus' text format (render).
--
--   local metrics = require("synroute.metrics")
--   metrics.NAMES                      the metric names it emits, with type and help
--   metrics.classes_path(path)         where the per-class series are served
--   metrics.frontend_lines(dep)        the metrics frontend (list of lines)
--   metrics.render(entries, info)      entries: StickTable:dump() -> text
--   metrics.service(core, info)        the HTTP applet (runs per scrape)

local M = {}

M.TABLE = "synroute_classes"
M.FRONTEND = "synroute_metrics"
M.SERVICE = "synroute_metrics"
-- sc2: sc0 is limits.per_user's in the frontend; a counter already tracked
-- by the frontend would not be tracked again here.
-- The key is "<this backend>|<class>": the backend that serves the request
-- (be_name, also when the decision named another one) and the class, copied
-- here from the decision (only with metrics: the frontend keeps no class
-- var). No decision (Lua failed): "<backend>|", shown as class="none".
M.TRACK_LINES = {
    "http-request set-var(txn.synroute_class) var(txn.synroute),field(2,|)",
    "http-request track-sc2 be_name,concat(|,txn.synroute_class) table " .. M.TABLE,
}
M.TABLE_LINE = "stick-table type string len 64 size 2k store http_req_cnt,http_err_cnt,http_fail_cnt,http_req_rate(1m)"

-- name, type, help; the order of the output
M.NAMES = {
    { "synroute_requests_total", "counter",
      "Requests routed to a pool, by request class and pool (since HAProxy started)" },
    { "synroute_errors_total", "counter",
      "Responses with status 4xx (client errors, code=\"4xx\") and 5xx from a server or a failed response " ..
      "(code=\"5xx\"), by request class and pool" },
    { "synroute_requests_per_minute", "gauge",
      "Requests per minute, over the last minute, by request class and pool" },
    { "synroute_info", "gauge", "Always 1: the synroute version and the Synapse release it routes for" },
}

function M.classes_path(path)
    return (path or "/metrics"):gsub("/$", "") .. "/classes"
end

local FORBIDDEN = "'metrics are only served to admin_networks'"

-- The frontend that serves HAProxy's exporter at metrics.path and the
-- per-class series at classes_path(metrics.path), to admin_networks only.
function M.frontend_lines(dep)
    local m = dep.metrics
    local out = { "# metrics: HAProxy's Prometheus exporter (pools and servers) at " .. m.path ..
        ", the per-class series at " .. M.classes_path(m.path) .. " (docs/deployment.md \"Metrics\")",
        "frontend " .. M.FRONTEND }
    for _, a in ipairs(m.listen) do out[#out + 1] = "    bind " .. a end
    out[#out + 1] = "    no log"
    local acl = require("synroute.values").admin_net_acl(dep)
    if acl then
        out[#out + 1] = "    " .. acl
        out[#out + 1] = "    http-request return status 403 content-type text/plain string " .. FORBIDDEN ..
            " if !synroute_admin_net"
    else
        out[#out + 1] = "    # admin_networks is empty: nobody may read the metrics"
        out[#out + 1] = "    http-request return status 403 content-type text/plain string " .. FORBIDDEN
    end
    out[#out + 1] = "    http-request use-service prometheus-exporter if { path " .. m.path .. " }"
    out[#out + 1] = "    http-request use-service lua." .. M.SERVICE .. " if { path " .. M.classes_path(m.path) .. " }"
    out[#out + 1] = "    http-request return status 404 content-type text/plain string 'not found: try " ..
        m.path .. " or " .. M.classes_path(m.path) .. "'"
    out[#out + 1] = ""
    out[#out + 1] = "# the per-class counters (synroute.metrics), fed by every backend's track-sc2"
    out[#out + 1] = "backend " .. M.TABLE
    out[#out + 1] = "    " .. M.TABLE_LINE
    out[#out + 1] = ""
    return out
end

-- A label value in Prometheus' text format.
local function esc(s)
    return (tostring(s):gsub("[\\\"\n]", { ["\\"] = "\\\\", ["\""] = "\\\"", ["\n"] = "\\n" }))
end

local function num(v)
    return math.tointeger(v) or tonumber(v) or 0
end

-- entries: { ["pool|class"] = { http_req_cnt = n, ... } } (StickTable:dump())
-- info: { version = ..., synapse = ... } -> Prometheus text
function M.render(entries, info)
    local rows = {}
    for key, d in pairs(entries or {}) do
        local pool, class = tostring(key):match("^([^|]*)|(.*)$")
        if pool then
            if class == "" then class = "none" end
            rows[#rows + 1] = { class = class, pool = pool, d = d }
        end
    end
    table.sort(rows, function(a, b)
        if a.class ~= b.class then return a.class < b.class end
        return a.pool < b.pool
    end)
    local out = {}
    local function head(i)
        local n = M.NAMES[i]
        out[#out + 1] = "# HELP " .. n[1] .. " " .. n[3]
        out[#out + 1] = "# TYPE " .. n[1] .. " " .. n[2]
    end
    local function each(name, extra, field)
        for _, r in ipairs(rows) do
            out[#out + 1] = string.format('%s{class="%s",pool="%s"%s} %d', name, esc(r.class), esc(r.pool), extra,
                num(r.d[field]))
        end
    end
    head(1); each("synroute_requests_total", "", "http_req_cnt")
    head(2); each("synroute_errors_total", ',code="4xx"', "http_err_cnt"); each("synroute_errors_total", ',code="5xx"', "http_fail_cnt")
    head(3); each("synroute_requests_per_minute", "", "http_req_rate")
    head(4)
    info = info or {}
    out[#out + 1] = string.format('synroute_info{version="%s",synapse="%s"} 1', esc(info.version or ""),
        esc(info.synapse or ""))
    return table.concat(out, "\n") .. "\n"
end

-- The HTTP applet: one dump of the table per scrape.
function M.service(core, info)
    return function(applet)
        local be = core.backends[M.TABLE]
        local entries = be and be.stktable and be.stktable:dump() or {}
        local body = M.render(entries, info)
        applet:set_status(200)
        applet:add_header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        applet:add_header("content-length", tostring(#body))
        applet:start_response()
        applet:send(body)
    end
end

return M
