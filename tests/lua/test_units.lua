-- tests/lua/test_units.lua - unit tests of the Lua side: json, routes
-- validation and version semantics, policy fallback chains, api.input.
-- usage: lua test_units.lua [NAME_PREFIX]

local prefix = (arg and arg[1] or "lua") .. "/unit"
local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")(prefix)
local check, eq = kit.check, kit.eq

---------------------------------------------------------------- json (the encoder)
local json = require("synroute.json")
eq("json/order", json.encode({ route = "r", class = "c", key = "", backend = "b", zeta = 1, alpha = true },
    { order = { "class", "backend", "key", "route" } }),
    '{"class":"c","backend":"b","key":"","route":"r","alpha":true,"zeta":1}')
eq("json/sorted", json.encode({ b = 1, a = 2, c = { 1, 2, "x" } }), '{"a":2,"b":1,"c":[1,2,"x"]}')
eq("json/escape", json.encode('a"b\\c\n\t\1/'), '"a\\"b\\\\c\\n\\t\\u0001/"')
eq("json/utf8-kept", json.encode("zoë aþ !r:hs"), '"zoë aþ !r:hs"')
eq("json/invalid-utf8", json.encode("a\255b\195"), '"a\\u00ffb\\u00c3"')
eq("json/overlong", json.encode("\192\175"), '"\\u00c0\\u00af"')
eq("json/empty-object", json.encode({}), "{}")
eq("json/numbers", json.encode({ 1, -2, 1.5, 3.0 }), "[1,-2,1.5,3]")
check("json/cycle-raises", not pcall(json.encode, (function() local t = {} t.t = t return t end)()))
check("json/nan-raises", not pcall(json.encode, 0 / 0))
do
    local cjson = require("cjson.safe")
    local v = cjson.decode(json.encode({ c = "xé😀\n\1", a = { 1, 2 }, d = true }))
    check("json/cjson-reads-it", v and v.c == "xé😀\n\1" and v.a[2] == 2 and v.d == true)
end

---------------------------------------------------------------- values
local values = require("synroute.values")
eq("values/duration-s", values.duration("2s"), 2)
eq("values/duration-ms", values.duration("500ms"), 0.5)
eq("values/duration-bare-is-ms", values.duration("750"), 0.75)
eq("values/duration-integer-is-ms", values.duration(1500), 1.5)
eq("values/duration-m", values.duration("1m"), 60)
eq("values/duration-d", values.duration("2d"), 172800)
check("values/duration-us", math.abs(values.duration("10us") - 0.00001) < 1e-15)
eq("values/duration-zero", values.duration("0s"), 0)
eq("values/duration-bad-unit", values.duration("2x"), nil)
eq("values/duration-space", values.duration("2 s"), nil)
eq("values/duration-negative", values.duration(-1), nil)
eq("values/duration-fraction", values.duration("1.5s"), nil)
eq("values/duration-too-long", values.duration(string.rep("9", 13) .. "s"), nil)
eq("values/size", values.size("100k"), "100k")
eq("values/size-integer", values.size(5000), "5000")
eq("values/size-bad", values.size("10kb"), nil)
eq("values/rate", table.concat({ values.rate("3/10s") }, " "), "3 10s 10")
eq("values/rate-spaces", table.concat({ values.rate(" 20 / 1m ") }, " "), "20 1m 60")
eq("values/rate-bare-is-ms", table.concat({ values.rate("3/1000") }, " "), "3 1000 1")
eq("values/rate-under-1s", values.rate("3/10"), nil)
eq("values/rate-zero", values.rate("0/10s"), nil)
eq("values/addr", table.concat({ values.addr("127.0.0.1:8008") }, " "), "127.0.0.1 8008")
eq("values/addr-v6", table.concat({ values.addr("[::1]:8008") }, " "), "::1 8008")
eq("values/addr-wildcard", table.concat({ values.addr(":443") }, " "), " 443")
eq("values/addr-no-port", values.addr("localhost"), nil)
eq("values/addr-port-range", values.addr("h:65536"), nil)
eq("values/host_port-v6", values.host_port("::1", 80), "[::1]:80")
eq("values/host_port-v4", values.host_port("10.0.0.1", 80), "10.0.0.1:80")
eq("values/server_addr-path", values.server_addr({ path = "/run/s.sock" }), "/run/s.sock")
eq("values/endpoint-localhost", values.endpoint("localhost", 80), "127.0.0.1:80")
eq("values/endpoint-unix", values.endpoint(nil, nil, "/s"), "unix:/s")
check("values/network", values.network("10.0.0.0/8") and values.network("::1") and values.network("fd00::/8")
    and values.network("127.0.0.1"))
check("values/network-bad", not values.network("10.0.0.0/33") and not values.network("1:2:3")
    and not values.network("300.1.1.1") and not values.network("::1/129") and not values.network("x"))
check("values/in_network", values.in_network("10.1.2.3", "10.0.0.0/8") and not values.in_network("11.0.0.1", "10.0.0.0/8")
    and values.in_network("::ffff:10.0.0.1", "10.0.0.0/8") and values.in_network("fd00::1", "fd00::/8"))
eq("values/natural", (function()
    local t = { "w-10", "w-2", "w-1" }
    table.sort(t, values.natural_less)
    return table.concat(t, " ")
end)(), "w-1 w-2 w-10")

---------------------------------------------------------------- settings: the schema walk
do
    local settings = require("synroute.settings")
    local yamlfile = require("synroute.yamlfile")
    local path = os.tmpname()
    -- problems and values of `text` checked against `schema`
    local function walk(schema, text)
        local f = assert(io.open(path, "w"))
        f:write(text)
        f:close()
        local report = yamlfile.report()
        local s, at = settings.check(schema, report:load(path), report)
        local msgs = {}
        for _, p in ipairs(report.problems) do msgs[#msgs + 1] = (p:gsub("^[^:]*:", "")) end
        return s, table.concat(msgs, " | "), at
    end
    local SCHEMA = { expect = "expected a mapping", keys = {
        mode = { type = "string", enum = { "fast", "safe" }, default = "safe", expect = "expected fast or safe" },
        n = { type = "integer", min = 1, max = 9, expect = "expected 1 to 9" },
        wait = { type = "duration", min = 1, default = "5s", expect = "expected a duration like 5s" },
        sec = { keys = { a = { type = "boolean", default = true, expect = "expected true or false" } },
                expect = "expected a mapping with a" },
        opt = { optional = true, expect = "expected a mapping", keys = { b = { type = "string", required = true,
                expect = "expected a string" } } },
        names = { optional = true, expect = "expected a mapping of names",
                  each = { name = function(k) if k:match("^x") then return "names: '" .. k .. "' starts with x" end end,
                           short = "list", keys = { list = { type = "strings" }, extra = { type = "string" } } } },
    } }
    local s, msgs = walk(SCHEMA, "{}\n")
    eq("settings/defaults", s.mode .. " " .. s.wait .. " " .. tostring(s.sec.a) .. " " .. tostring(s.opt), "safe 5s true nil")
    eq("settings/defaults-no-problem", msgs, "")
    s, msgs = walk(SCHEMA, "mode: slow\nn: 10\nwait: 500ms\nsec: [1]\nopt: {}\nzz: 1\n")
    eq("settings/bad-values-unset", tostring(s.mode) .. " " .. tostring(s.n) .. " " .. tostring(s.sec), "nil nil nil")
    eq("settings/messages", msgs, "1: mode: expected fast or safe | 2: n: expected 1 to 9 | 5: opt.b: expected a string" ..
        " | 4: sec: expected a mapping with a | 3: wait: expected a duration like 5s" ..
        " | 6: unknown setting 'zz' (mode, n, names, opt, sec, wait)")
    local at
    s, msgs, at = walk(SCHEMA, "mode: fast\nnames:\n  a: [w1, w2]\n  b: { list: w3, extra: e }\n  xy: [z]\n")
    eq("settings/enum-ok", s.mode, "fast")
    eq("settings/short-form", table.concat(s.names.a.list, ",") .. " " .. table.concat(s.names.b.list, ",") ..
        " " .. s.names.b.extra, "w1,w2 w3 e")
    eq("settings/each-name", msgs, "5: names: 'xy' starts with x")
    eq("settings/at-short-form", at("names.a.list.2"), path .. ":3")
    eq("settings/at-absent", at("names.c"), path .. ":1")
    os.remove(path)
end

---------------------------------------------------------------- policy (pure)
local policy = require("synroute.policy")
local function dep_with(pools, serves_media)
    local d = { main = { name = "main", serves_media = serves_media ~= false }, pools = {} }
    for _, p in ipairs(pools) do d.pools[p] = { servers = {} } end
    return d
end
local function res(class, dep, generic)
    local a, b, mask = policy.resolve(class, dep, generic)
    return a .. "/" .. b .. (mask and ("/" .. table.concat(mask, ",")) or "")
end
do
    local none = dep_with({})
    local gen = dep_with({ "generic" })
    local fed = dep_with({ "generic", "federation" })
    local full = dep_with({ "generic", "client", "sync", "initial_sync", "federation" })
    local chains = {
        -- class, deployment, expected (generic_backend/other_backend[/generic_methods])
        { "initial_sync", full, "initial_sync/initial_sync" },
        { "initial_sync", dep_with({ "generic", "sync" }), "sync/sync" },
        { "initial_sync", gen, "generic/generic" },
        { "initial_sync", none, "main/main" },
        { "sync", dep_with({ "generic", "initial_sync" }), "generic/generic" },
        { "sync", none, "main/main" },
        { "federation_send", fed, "federation/federation" },
        { "federation_send", gen, "generic/generic" },
        { "federation_send", dep_with({ "federation_send" }), "federation_send/federation_send" },
        { "federation", dep_with({ "client" }), "main/main" },
        { "encryption", full, "client/client" },
        { "login", gen, "generic/generic" },
        { "user_directory", dep_with({ "user_directory", "client" }), "user_directory/user_directory" },
        { "messages", dep_with({ "client" }), "client/client" },
        { "messages", none, "main/main" },
        { "client", dep_with({ "sync", "federation" }), "main/main" },
        { "event_send", gen, "generic/generic" },
        { "event_send", dep_with({ "client" }), "main/main" },
        { "sso", gen, "main/main" },
        { "sso", dep_with({ "sso" }), "sso/sso" },
        { "admin", gen, "main/main" },
        { "admin", dep_with({ "admin" }), "admin/admin" },
        { "media", gen, "main/main" },
        { "media", dep_with({ "generic" }, false), "media/media" },
        { "media", dep_with({ "media" }), "media/media" },
        { "blocked", full, "blocked/blocked" },
        { "blocked", nil, "blocked/blocked" },
        { "main", full, "main/main" },
        { "sync", nil, "main/main" },
        { "media", nil, "main/main" },
        { "typing", dep_with({ "typing", "generic" }), "typing/typing" },
        { "typing", gen, "main/main" },
        { "typing", nil, "main/main" },
    }
    for i, c in ipairs(chains) do
        eq(string.format("policy/chain-%d-%s", i, c[1]), res(c[1], c[2]), c[3])
    end
    -- writers with a generic method list
    eq("policy/writer-get-generic", res("account_data", gen, { "GET" }), "generic/main/GET")
    eq("policy/writer-get-client", res("account_data", dep_with({ "client", "generic" }), { "GET", "HEAD" }), "client/main/GET,HEAD")
    eq("policy/writer-get-nopool", res("account_data", none, { "GET" }), "main/main")
    eq("policy/writer-own-pool", res("account_data", dep_with({ "account_data", "generic" }), { "GET" }), "account_data/account_data")
    eq("policy/writer-all", res("device_lists", gen, "all"), "generic/generic")
    eq("policy/writer-none", res("receipts", gen, "none"), "main/main")
    eq("policy/writer-default-none", res("receipts", gen), "main/main")
    eq("policy/nonwriter-get-only", res("client", gen, { "GET" }), "generic/main/GET")
    eq("policy/nonwriter-none", res("client", gen, "none"), "main/main")
end
do
    -- build(): targets, alt targets, reasons, as_ok, dedupe, backends
    local entries = {
        { id = "sync", class = "sync", pattern = "^/s$", refine = "since", alt_class = "initial_sync", generic = "all" },
        { id = "send", class = "event_send", pattern = "^/e$", generic = "all" },
        { id = "tags", class = "account_data", pattern = "^/t$", generic = { "GET" } },
        { id = "typing", class = "typing", pattern = "^/ty$", generic = "none" },
        { id = "old", class = "client", pattern = "^/o$", generic = "all", reason = "served by workers since 1.99" },
        { id = "rep", class = "blocked", pattern = "^/r$", generic = "all" },
        { id = "sso", class = "sso", pattern = "^/sso$", generic = "all" },
        { id = "prof", class = "event_send", pattern = "^/p$", key = "path_user", generic = "all" },
        { id = "send2", class = "event_send", pattern = "^/e2$", methods = { "PUT" }, generic = "all" },
    }
    local dep = dep_with({ "generic", "sync", "appservice" })
    dep.hash_secret = "s3cret"
    dep.as_tokens = { { token = "astok", sender = "bot" } }
    local spec, backends = policy.build(entries, dep)
    local T = spec.targets
    local function tgt(i) return T[spec.entries[i].target] end
    eq("build/secret", spec.secret, "s3cret")
    eq("build/sync", tgt(1).generic_backend .. " " .. tgt(1).key .. " " .. tostring(tgt(1).as_ok), "sync user true")
    local alt = T[spec.entries[1].alt_target]
    eq("build/alt", alt.class .. " " .. alt.generic_backend .. " " .. alt.key, "initial_sync sync user")
    eq("build/refine", spec.entries[1].refine, "since")
    eq("build/event_send", tgt(2).generic_backend .. " " .. tgt(2).key .. " " .. tostring(tgt(2).as_ok), "generic room true")
    eq("build/tags", tgt(3).generic_backend .. " " .. tgt(3).other_backend .. " " .. table.concat(tgt(3).generic_methods, ",") .. " " .. tostring(tgt(3).as_ok),
        "generic main GET false")
    eq("build/typing", tgt(4).generic_backend .. " " .. tostring(tgt(4).as_ok), "main false")
    eq("build/reason", tgt(5).generic_backend .. " " .. tostring(tgt(5).reason) .. " " .. tostring(tgt(5).as_ok),
        "main served by workers since 1.99 false")
    eq("build/blocked", tgt(6).generic_backend .. " " .. tgt(6).class .. " " .. tostring(tgt(6).as_ok), "blocked blocked false")
    eq("build/sso", tgt(7).generic_backend .. " " .. tostring(tgt(7).as_ok), "main false")
    eq("build/path_user", tgt(8).key, "path_user")
    eq("build/dedupe", spec.entries[2].target, spec.entries[9].target)
    eq("build/methods", table.concat(spec.entries[9].methods, ","), "PUT")
    local fb = T[spec.fallback_target]
    eq("build/fallback", fb.class .. " " .. fb.generic_backend .. " " .. fb.key, "main main none")
    eq("build/as_backend", spec.as_backend, "appservice")
    eq("build/as_tokens", spec.as_tokens[1].token .. " " .. spec.as_tokens[1].sender, "astok bot")
    -- blocked is a class, not a backend: the frontend answers it 404
    eq("build/backends", table.concat(backends, " "), "appservice generic main sync")
    local s2 = policy.build(entries, nil)
    eq("build/nodep-secret", s2.secret, policy.DEFAULT_SECRET)
    local all_main = true
    for i = 1, #s2.entries do
        local t = s2.targets[s2.entries[i].target]
        if t.class ~= "blocked" and (t.generic_backend ~= "main" or t.other_backend ~= "main") then all_main = false end
        if t.class == "blocked" and t.generic_backend ~= "blocked" then all_main = false end
    end
    check("build/nodep-all-main", all_main)
    eq("build/nodep-no-as", s2.as_backend, nil)
end

---------------------------------------------------------------- api.input
local api = require("synroute.api")
do
    -- expected strings checked against HAProxy 2.6.12's set-var-fmt (see api.lua)
    local cases = {
        { { method = "GET", target = "/a/b?x=1" }, "GET 127.0.0.1 /a/b?x=1 " },
        { { target = "/a", headers = { "Authorization: Bearer syt_abc" } }, "GET 127.0.0.1 /a Bearer syt_abc" },
        { { target = "/a", headers = { "Authorization:" } }, "GET 127.0.0.1 /a " },
        { { target = "/a", headers = { "Authorization: one", "authorization: two" } }, "GET 127.0.0.1 /a two" },
        { { target = "/a", headers = { "Authorization: \t Bearer  tok \t" } }, "GET 127.0.0.1 /a Bearer  tok" },
        { { target = "/a", headers = { "Authorization: a, b" } }, "GET 127.0.0.1 /a a, b" },
        { { target = "/a", headers = { "X-Other: 1", "AUTHORIZATION: Bearer z", "Host: h" } }, "GET 127.0.0.1 /a Bearer z" },
        { { target = "/a", headers = { Authorization = "Bearer m" } }, "GET 127.0.0.1 /a Bearer m" },
        { { method = "PUT", target = "/q%20r?a=%2B+b&c", src = "::1" }, "PUT ::1 /q%20r?a=%2B+b&c " },
        { { target = "http://example.org/abs/path?q=1" }, "GET 127.0.0.1 /abs/path?q=1 " },
        { { target = "https://example.org:8448/x" }, "GET 127.0.0.1 /x " },
        { { target = "http://example.org" }, "GET 127.0.0.1  " },
        { { method = "OPTIONS", target = "*" }, "OPTIONS 127.0.0.1  " },
        { { target = "/x", headers = { "Authorization: -" } }, "GET 127.0.0.1 /x -" },
        { { target = "/x", src = "192.0.2.1", headers = { 'Authorization: X-Matrix origin="a b",key="x\\"y"  ' } },
          'GET 192.0.2.1 /x X-Matrix origin="a b",key="x\\"y"' },
    }
    for i, c in ipairs(cases) do
        eq("input/" .. i, api.input(c[1]), c[2])
    end
    check("input/bad-headers-raise", not pcall(api.input, { target = "/", headers = { 1 } }))
end

---------------------------------------------------------------- api.new errors
do
    local e, err = api.new{ pools = { "sync", "nosuchpool" } }
    check("new/unknown-pool", e == nil and tostring(err):find("nosuchpool", 1, true), err)
    e, err = api.new{ pools = "all", dep = {} }
    check("new/two-sources", e == nil and err ~= nil, err)
    e, err = api.new{ pools = "all", version = "one.two" }
    check("new/bad-version", e == nil and tostring(err):find("one.two", 1, true), err)
    e, err = api.new{ routes = kit.root .. "/no/such/routes.yaml" }
    check("new/missing-routes", e == nil and tostring(err):find("no/such/routes.yaml", 1, true), err)
    e, err = api.new{}
    check("new/no-config", e ~= nil and e.dep == nil and #e.backends >= 1, err)
    if e then
        eq("new/no-config-backends", table.concat(e.backends, " "), "main")
        check("new/version-default", e.version == e.routes.latest, e.version)
    end
    e, err = api.new{ pools = "all", version = "1.60" }
    check("new/version-override", e ~= nil and e.version == "1.60", err)
    e, err = api.new{ pools = "all", version = "1.999" }
    check("new/unknown-version-warns", e ~= nil and #e.warnings == 1 and e.warnings[1]:find("1.999", 1, true), err)
end

---------------------------------------------------------------- routes validation
local routes = require("synroute.routes")
do
    eq("version/cmp-lt", routes.compare_versions("1.60", "1.157"), -1)
    eq("version/cmp-eq", routes.compare_versions("1.100", "1.100"), 0)
    eq("version/cmp-gt", routes.compare_versions("1.100", "1.99"), 1)
    eq("version/cmp-patch", routes.compare_versions("1.100.1", "1.100"), 1)
    check("version/bad", routes.parse_version("1") == nil and routes.parse_version("v1.2") == nil
        and routes.parse_version("1.2.3.4") == nil and routes.parse_version(1.2) == nil)

    local HEAD = 'version: 1\nsynapse_versions: ["1.60", "1.70", "1.80", "1.157"]\nroutes:\n'
    local function parse(body) return routes.parse(HEAD .. body, "t.yaml") end
    local good, gerr = parse([[
  - id: sync
    class: sync
    pattern: '^/_matrix/client/(r0|v3)/sync$'
    refine: since
    alt_class: initial_sync
  - id: old_thing
    class: client
    pattern: '^/old$'
    until: "1.70"
  - id: new_thing
    class: client
    pattern: '^/new$'
    since: "1.80"
    methods: [GET, HEAD]
  - id: tags
    class: account_data
    pattern: '^/tags'
    generic: [GET]
  - id: typing
    class: typing
    pattern: '^/typing'
]])
    check("routes/good", good ~= nil, gerr)
    if good then
        eq("routes/latest", good.latest, "1.157")
        eq("routes/default-since", good.routes[1].since, "1.60")
        eq("routes/default-generic", good.routes[1].generic, "all")
        eq("routes/writer-default-generic", good.routes[5].generic, "none")
        eq("routes/generic-list", table.concat(good.routes[4].generic, ","), "GET")
        eq("routes/line", good.routes[2].line, 9)
        local function ids(list)
            local t = {}
            for _, e in ipairs(list) do t[#t + 1] = e.id .. (e.reason and ("(" .. e.reason .. ")") or "") end
            return table.concat(t, " ")
        end
        eq("active/latest", ids(routes.active(good)), "sync new_thing tags typing")
        eq("active/1.157", ids(routes.active(good, "1.157")), "sync new_thing tags typing")
        eq("active/1.70", ids(routes.active(good, "1.70")),
            "sync old_thing new_thing(served by workers since 1.80) tags typing")
        eq("active/1.60", ids(routes.active(good, "1.60")),
            "sync old_thing new_thing(served by workers since 1.80) tags typing")
        eq("active/1.80", ids(routes.active(good, "1.80")), "sync new_thing tags typing")
        eq("active/1.75-unknown", ids(routes.active(good, "1.75")),
            "sync new_thing(served by workers since 1.80) tags typing")
        local a, aerr = routes.active(good, "latest")
        check("active/bad-version", a == nil and tostring(aerr):find("latest", 1, true), aerr)
        check("active/copies", routes.active(good, "1.60")[3] ~= good.routes[3] and good.routes[3].reason == nil)
    end

    -- each bad entry: body, expected "t.yaml:LINE: ...fragment"
    local bad = {
        { "unknown-class", "  - id: a\n    class: nosuch\n    pattern: '^/a'\n", "t.yaml:5:", "unknown class" },
        { "bad-id", "  - id: Bad-Id\n    class: client\n    pattern: '^/a'\n", "t.yaml:4:", "bad id" },
        { "dup-id", "  - id: a\n    class: client\n    pattern: '^/a'\n  - id: a\n    class: client\n    pattern: '^/b'\n",
          "t.yaml:7:", "duplicate id a (first at line 4)" },
        { "bad-method", "  - id: a\n    class: client\n    pattern: '^/a'\n    methods: [GET, FETCH]\n", "t.yaml:7:", "bad method" },
        { "lower-method", "  - id: a\n    class: client\n    pattern: '^/a'\n    methods: [get]\n", "t.yaml:7:", "bad method" },
        { "methods-not-list", "  - id: a\n    class: client\n    pattern: '^/a'\n    methods: GET\n", "t.yaml:7:", "methods must be" },
        { "dup-method", "  - id: a\n    class: client\n    pattern: '^/a'\n    methods: [GET, GET]\n", "t.yaml:7:", "twice" },
        { "bad-since", "  - id: a\n    class: client\n    pattern: '^/a'\n    since: \"1.x\"\n", "t.yaml:7:", "bad version" },
        { "unquoted-since", "  - id: a\n    class: client\n    pattern: '^/a'\n    since: 2\n", "t.yaml:7:", "quoted version" },
        { "unknown-since", "  - id: a\n    class: client\n    pattern: '^/a'\n    since: \"1.65\"\n", "t.yaml:7:", "not in synapse_versions" },
        { "since-after-until", "  - id: a\n    class: client\n    pattern: '^/a'\n    since: \"1.80\"\n    until: \"1.70\"\n",
          "t.yaml:7:", "since 1.80 is after until 1.70" },
        { "refine-no-alt", "  - id: a\n    class: sync\n    pattern: '^/a'\n    refine: since\n", "t.yaml:7:", "refine without alt_class" },
        { "alt-no-refine", "  - id: a\n    class: sync\n    pattern: '^/a'\n    alt_class: initial_sync\n", "t.yaml:7:", "alt_class without refine" },
        { "bad-refine", "  - id: a\n    class: sync\n    pattern: '^/a'\n    refine: until\n    alt_class: initial_sync\n", "t.yaml:7:", "refine must be" },
        { "bad-alt", "  - id: a\n    class: sync\n    pattern: '^/a'\n    refine: since\n    alt_class: nope\n", "t.yaml:8:", "unknown alt_class" },
        { "bad-key", "  - id: a\n    class: sync\n    pattern: '^/a'\n    key: token\n", "t.yaml:7:", "key must be" },
        { "bad-generic", "  - id: a\n    class: typing\n    pattern: '^/a'\n    generic: some\n", "t.yaml:7:", "generic must be" },
        { "pattern-anchor", "  - id: a\n    class: client\n    pattern: '/a'\n", "t.yaml:6:", "must start with '^'" },
        { "pattern-syntax", "  - id: a\n    class: client\n    pattern: '^/a(b'\n", "t.yaml:6:", "bad pattern" },
        { "missing-pattern", "  - id: a\n    class: client\n", "t.yaml:4:", "missing pattern" },
        { "missing-class", "  - id: a\n    pattern: '^/a'\n", "t.yaml:4:", "missing class" },
        { "unknown-key", "  - id: a\n    class: client\n    pattern: '^/a'\n    metods: [GET]\n", "t.yaml:7:", "unknown key" },
        { "entry-not-map", "  - just a string\n", "t.yaml:4:", "must be a map" },
    }
    for _, b in ipairs(bad) do
        local doc, err = parse(b[2])
        local ok_ = doc == nil and type(err) == "string" and err:find(b[3], 1, true) == 1
            and err:find(b[4], 1, true) ~= nil
        check("routes/bad-" .. b[1], ok_, tostring(err) .. " (want " .. b[3] .. " ... " .. b[4] .. ")")
    end
    local function top(name, text, want_line, frag)
        local doc, err = routes.parse(text, "t.yaml")
        check("routes/top-" .. name, doc == nil and type(err) == "string"
            and err:find("t.yaml:" .. want_line .. ":", 1, true) == 1 and err:find(frag, 1, true) ~= nil, err)
    end
    top("version", 'version: 2\nsynapse_versions: ["1.60"]\nroutes: []\n', 1, "version must be 1")
    top("no-versions", 'version: 1\nroutes:\n  - id: a\n    class: client\n    pattern: "^/a"\n', 1, "synapse_versions")
    top("versions-order", 'version: 1\nsynapse_versions: ["1.60", "1.59"]\nroutes:\n  - id: a\n    class: client\n    pattern: "^/a"\n',
        2, "increasing")
    top("empty-routes", 'version: 1\nsynapse_versions: ["1.60"]\nroutes: []\n', 3, "routes is empty")
    top("not-a-map", '- 1\n- 2\n', 1, "must be a map")
    local doc, err, list = parse("  - id: a\n    class: nosuch\n    pattern: '^/a'\n  - id: b\n    class: client\n    pattern: '/b'\n")
    check("routes/all-errors", doc == nil and type(list) == "table" and #list == 2, err)
    local y, yerr = routes.parse("version: 1\nroutes: [\n", "t.yaml")
    check("routes/yaml-error", y == nil and tostring(yerr):match("^t%.yaml:%d+"), yerr)
    local f, ferr = routes.load(kit.root .. "/nonexistent.yaml")
    check("routes/missing-file", f == nil and tostring(ferr):find("nonexistent.yaml", 1, true), ferr)
end

---------------------------------------------------------------- the real routes.yaml
do
    local path = require("synroute.paths").routes_file
    local doc, err = routes.load(path)
    check("routes.yaml/valid", doc ~= nil, err)
    if doc then
        check("routes.yaml/warnings", #doc.warnings == 0, table.concat(doc.warnings, "; "))
        for _, v in ipairs(doc.synapse_versions) do
            local a, aerr = routes.active(doc, v)
            if not a then check("routes.yaml/active-" .. v, false, aerr) break end
        end
        local classes = {}
        for _, e in ipairs(doc.routes) do classes[e.class] = true end
        for _, c in ipairs(require("synroute.classes").LIST) do
            if c ~= "main" and c ~= "initial_sync" then
                check("routes.yaml/has-class-" .. c, classes[c], "no entry of class " .. c)
            end
        end
    end
end

---------------------------------------------------------------- values written into haproxy.cfg
do
    local v = require("synroute.values")
    for _, h in ipairs({ "127.0.0.1", "::1", "fd00::1:2", "::ffff:10.0.0.1", "localhost", "synapse-worker_1.internal",
                         "example.org." }) do
        check("values/host-ok/" .. h, v.host(h))
    end
    for _, h in ipairs({ "", "127.0.0.1\nhttp-request return", "127.0.0.1 backup", "300.1.1.1", "1.2.3", "a..b",
                         "-a.org", "a#b", "[::1]", "a/b", ("x"):rep(64) .. ".org" }) do
        check("values/host-bad/" .. v.show(h), not v.host(h))
    end
    check("values/addr-bad-host", not v.addr("a b:80") and not v.addr("x\ny:80"))
    check("values/addr-ok", v.addr("[::1]:8080") == "::1" and v.addr(":80") == "" and v.addr("*:80") == "*")
    check("values/socket-path-ok", v.socket_path("/run/synapse/main.sock"))
    for _, p in ipairs({ "run/x.sock", "/run/a b.sock", "/run/x.sock\nserver", "/" .. ("x"):rep(107), '/run/"x' }) do
        check("values/socket-path-bad/" .. v.show(p), not v.socket_path(p))
    end
    eq("values/server-name-kept", v.server_name("generic-1"), "generic-1")
    local a, b = v.server_name("wörker-1"), v.server_name("wärker-1")
    check("values/server-name-no-collision", a ~= b, a .. " = " .. b)
    check("values/server-name-readable", a:match("^w_rker%-1%-%x%x%x%x%x%x%x%x$"), a)
    check("values/server-name-token", v.token(a) and v.token(v.server_name("a b\nc")))
    eq("values/server-name-stable", v.server_name("wörker-1"), a)
    check("values/token-bad", not v.token("a b") and not v.token("a\nb") and not v.token("a#b") and not v.token('a"'))
    eq("values/show", v.show("a\nb\\"), "a\\010b\\092")
    eq("values/suggest-typo", v.suggest("worker_listener", { "worker_name", "worker_listeners" }), "worker_listeners")
    eq("values/suggest-swap", v.suggest("tga", { "type", "tls", "tag" }), "tag")
    eq("values/suggest-none", v.suggest("colour", { "type", "tls", "tag" }), nil)
end

---------------------------------------------------------------- the generator refuses what is not one clean word
do
    local config = require("synroute.config")
    local gen = require("synroute.haproxy_gen")
    local root = arg[0]:match("^(.*)tests/") or ""
    local dep = config.load(root .. "tests/check/cases/ok/synroute.yaml")
    check("gen/ok-loads", dep ~= nil)
    if dep then
        local good, text = pcall(gen.generate, dep, { glue = "/g.lua", errors_dir = "/e" })
        check("gen/ok-generates", good and text:find("\n    server generic%-1 127%.0%.0%.1:38510"), text)
        -- values that bypassed check (defence in depth): each is refused
        local s = dep.pools.generic.servers[1]
        local cases = {
            { "name-newline", "name", "generic-1\n    http-request return status 200" },
            { "host-space", "host", "127.0.0.1 backup" },
            { "host-newline", "host", "127.0.0.1\n    http-request return status 200" },
        }
        for _, c in ipairs(cases) do
            local old = s[c[2]]
            s[c[2]] = c[3]
            local ok2, err = pcall(gen.generate, dep, { glue = "/g.lua", errors_dir = "/e" })
            local out = ok2 and err or ""
            check("gen/refuses-" .. c[1], not ok2 and tostring(err):find("refusing to write", 1, true) and
                not out:find("\n    http-request return status 200", 1, true), tostring(err))
            s[c[2]] = old
        end
        local ok3, err3 = pcall(gen.generate, dep, { glue = '/g"\n.lua', errors_dir = "/e" })
        check("gen/refuses-quoted", not ok3 and tostring(err3):find("refusing to write", 1, true), tostring(err3))
    end
end

---------------------------------------------------------------- the record of the backend set (drift)
do
    local pools = require("synroute.pools")
    local dep = { main = { host = "127.0.0.1", port = 8008 }, pools = {
        generic = { servers = { { name = "generic-1", host = "127.0.0.1", port = 8081 } } },
        sso = { servers = { { name = "sso-1", host = "127.0.0.1", port = 8082 },
                            { name = "sso-2", host = "127.0.0.1", port = 8083, backup = true } } } } }
    local r = pools.record(dep, "1.157")
    eq("record/format", r, "v=1.157;main=127.0.0.1:8008;generic=generic-1@127.0.0.1:8081;" ..
        "sso=sso-1@127.0.0.1:8082,sso-2@127.0.0.1:8083+backup")
    eq("record/same", #pools.drift(r, r), 0)
    dep.pools.typing = { servers = { { name = "typing-1", host = "127.0.0.1", port = 8090 } }, writer = true }
    eq("record/new-writer", table.concat(pools.drift(r, pools.record(dep, "1.157")), "|"),
        "pool typing: now typing-1@127.0.0.1:8090; haproxy.cfg was generated without it")
    dep.pools.typing, dep.pools.generic.servers[1].port = nil, 9000
    eq("record/moved", table.concat(pools.drift(r, pools.record(dep, "1.158")), "|"),
        "pool generic: now generic-1@127.0.0.1:9000; haproxy.cfg has generic-1@127.0.0.1:8081|" ..
        "Synapse release: now 1.158; haproxy.cfg was generated for 1.157")
    dep.pools.sso = nil
    check("record/gone", table.concat(pools.drift(r, pools.record(dep, "1.157")), "|"):find(
        "pool sso: haproxy.cfg has it (sso-1@127.0.0.1:8082, sso-2@127.0.0.1:8083+backup); the deployment no " ..
        "longer has it", 1, true))
end

kit.finish()
