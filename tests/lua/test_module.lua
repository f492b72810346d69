-- tests/lua/test_module.lua - the C module `synroute` as Lua sees it:
-- synroute.glob, name_match, getcwd, token, localpart, set:dump(),
-- 1-based error messages built from the core's structured errors, the
-- router spec's field names, the YAML limits and side tables, and the
-- exports that are gone. usage: lua test_module.lua [NAME_PREFIX]

local prefix = (arg and arg[1] or "lua") .. "/module"
local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")(prefix)
local check, eq = kit.check, kit.eq
local synroute = require("synroute")

---------------------------------------------------------------- glob
local function sh(cmd)
    local ok = os.execute(cmd)
    return ok == true or ok == 0
end

local dir = os.tmpname()
os.remove(dir)
local made = sh("mkdir -p '" .. dir .. "/conf.d' && cd '" .. dir .. "/conf.d' && " ..
    "touch b.yaml a.yaml 10-x.yaml .hidden.yaml '{a,b}.yaml' notes.txt && ln -s loop ../loop")
check("glob/setup", made)
do
    local list, err = synroute.glob(dir .. "/conf.d/*.yaml")
    local rel = {}
    for i, p in ipairs(list or {}) do rel[i] = p:sub(#dir + 2) end
    eq("glob/sorted", table.concat(rel, " "),
        "conf.d/10-x.yaml conf.d/a.yaml conf.d/b.yaml conf.d/{a,b}.yaml")
    check("glob/no-error", err == nil, err)
    local none, nerr = synroute.glob(dir .. "/conf.d/*.json")
    check("glob/no-match-empty-list", type(none) == "table" and #none == 0 and nerr == nil)
    local missing = synroute.glob(dir .. "/nodir/*.yaml")
    check("glob/missing-dir-empty-list", type(missing) == "table" and #missing == 0)
    local lit = synroute.glob(dir .. "/conf.d/a.yaml")
    check("glob/literal-path", lit and #lit == 1 and lit[1] == dir .. "/conf.d/a.yaml")
    local brace = synroute.glob(dir .. "/conf.d/{a,b}.yaml")
    check("glob/no-brace-expansion", brace and #brace == 1 and brace[1]:match("{a,b}%.yaml$"))
    local bad, berr = synroute.glob(dir .. "/loop/*.yaml")
    check("glob/unreadable-dir-nil-msg", bad == nil and type(berr) == "string" and
        berr:find("cannot read a directory", 1, true) ~= nil, tostring(berr))
    local nul, nulerr = synroute.glob("a\0b")
    check("glob/nul-byte-nil-msg", nul == nil and type(nulerr) == "string")
    check("glob/non-string-raises", not pcall(synroute.glob, {}))
end
sh("rm -rf '" .. dir .. "'")

---------------------------------------------------------------- set:dump
do
    local set = assert(synroute.regex_set(
        { "^/_matrix/client/(r0|v3)/sync$", "^/_matrix/client/v3/rooms/.*/send", "^/x|^/y" },
        { { "GET" }, false, { "PUT", "POST" } },
        { "sync", "room_send" }))
    local text = set:dump()
    check("dump/string", type(text) == "string" and #text > 0)
    check("dump/summary", text:match("^regex set: 3 entries, 2 with a literal prefix") ~= nil, text)
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    eq("dump/header", lines[2], "entry  name       methods   verify   prefixes  memo  remainder")
    eq("dump/tail-memo", lines[3], "    1  sync       GET       tail            2     2  $")
    eq("dump/glob", lines[4], "    2  room_send  any       glob            1     -  .*/send  [1 dictionary run]")
    eq("dump/full", lines[5], "    3  -          POST,PUT  full            0     -  (whole pattern)  " ..
        "[no literal prefix (a top-level '|'): tried for every request]")
    check("dump/legend", text:find("\nverify: literal ", 1, true) ~= nil)
    eq("dump/len", #set, 3)
    check("dump/method-raises-on-non-set", not pcall(set.dump, {}))
end

---------------------------------------------------------------- errors are 1-based
do
    local set, err = synroute.regex_set({ "^/ok", "^/_matrix/(a|b" }, nil, { "ok", "keys_upload" })
    check("error/regex-set-names-entry", set == nil and
        tostring(err):match('^entry 2 %("keys_upload"%): offset 14: ') ~= nil, tostring(err))
    set, err = synroute.regex_set({ "^/ok", "^/_matrix/(a|b" })
    check("error/regex-set-unnamed", set == nil and tostring(err):match("^entry 2: offset 14: ") ~= nil,
        tostring(err))
    set, err = synroute.regex_set({ "^/ok", 5 })
    eq("error/regex-set-type", (set == nil and err), "entry 2: pattern must be a string")
end

local function spec(t)
    local s = {
        secret = "s",
        targets = {
            { class = "main", generic_backend = "main", key = "none" },
            { class = "push_rules", generic_backend = "client", other_backend = "push_rules",
              generic_methods = { "GET", "HEAD" }, key = "none" },
        },
        entries = {
            { id = "pushrules", pattern = "^/_matrix/client/v3/pushrules/", target = 2 },
        },
        fallback_target = 1,
    }
    for k, v in pairs(t or {}) do s[k] = v end
    return s
end

do
    local r = assert(synroute.router(spec()))
    eq("router/generic-methods-get", r:route("GET - /_matrix/client/v3/pushrules/x -"), "client|push_rules|")
    eq("router/other-backend-put", r:route("PUT - /_matrix/client/v3/pushrules/x -"), "push_rules|push_rules|")
    local s = spec()
    s.targets[2].generic_backend = "bad|name"
    local bad, err = synroute.router(s)
    eq("router/core-error-1-based", bad == nil and err, "target 2: bad backend name")
    s = spec()
    s.entries[2] = { id = "broken", pattern = "^/(x", target = 1 }
    bad, err = synroute.router(s)
    check("router/pattern-error-names-entry", bad == nil and
        tostring(err):match('^entry 2 %("broken"%): offset 4: ') ~= nil, tostring(err))
    s = spec()
    s.targets[1] = { class = "main", be_a = "main", key = "none" }
    bad, err = synroute.router(s)
    eq("router/old-field-names-rejected", (bad == nil and err), "target 1: generic_backend: string expected")
    s = spec({ as_tokens = { { token = "t1" }, { token = "" } } })
    bad, err = synroute.router(s)
    eq("router/as-token-1-based", (bad == nil and err), "as_token 2: token: non-empty string expected")
end

---------------------------------------------------------------- tokens and user IDs
do
    local SYT = "syt_YWxpY2U_rXzmDkPBrbqQOXmJJMdg_0lW9Pa"
    local MAT = "mat_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T"
    local function tk(auth, query) return table.concat({ synroute.token(auth, query) }, " ") end
    eq("token/header", tk("Bearer " .. MAT), MAT .. " mas")
    eq("token/header-wins", tk("Bearer " .. SYT, "access_token=" .. MAT), SYT .. " syt")
    eq("token/query", tk(nil, "since=1&access_token=" .. MAT), MAT .. " mas")
    eq("token/query-form-decoded", tk(nil, "access_token=mat%5Fabc%2Bd"), "mat_abc+d mas")
    eq("token/bad-header-falls-to-query", tk("Bearer a b", "access_token=" .. MAT), MAT .. " mas")
    eq("token/scheme-case-sensitive", tk("bearer " .. MAT), "")
    eq("token/opaque", tk("Bearer as_token_bridge"), "as_token_bridge opaque")
    eq("token/none", tk(nil, "since=1"), "")
    eq("token/empty-query-value", tk(nil, "access_token="), "")
    local none, err = synroute.token(nil, "access_token=%zz")
    check("token/undecodable-nil-msg", none == nil and type(err) == "string", err)
    check("token/non-string-raises", not pcall(synroute.token, {}))

    eq("localpart/plain", synroute.localpart("@alice:hs.example"), "alice")
    eq("localpart/port", synroute.localpart("@bob.x=y:hs.example:8448"), "bob.x=y")
    eq("localpart/no-server", synroute.localpart("@alice"), "alice")
    local lp, lerr = synroute.localpart("alice:hs.example")
    check("localpart/no-at-nil-msg", lp == nil and type(lerr) == "string", lerr)
    eq("localpart/empty", (synroute.localpart("@:hs.example")), nil)
    eq("localpart/space", (synroute.localpart("@a b:hs.example")), nil)
    eq("localpart/control", (synroute.localpart("@a\nb:hs.example")), nil)
    eq("localpart/too-long", (synroute.localpart("@" .. string.rep("a", 256) .. ":hs")), nil)
    check("localpart/non-string-raises", not pcall(synroute.localpart, {}))
end

---------------------------------------------------------------- names and the working directory
do
    check("name_match/star", synroute.name_match("synchrotron-*", "synchrotron-12"))
    check("name_match/class", synroute.name_match("w[12]", "w2") and not synroute.name_match("w[12]", "w3"))
    check("name_match/literal", synroute.name_match("main", "main") and not synroute.name_match("main", "main2"))
    check("name_match/nul-byte", not synroute.name_match("a*", "a\0b"))
    -- a file made by a relative name is there under getcwd()'s path
    local cwd = synroute.getcwd()
    local name = string.format(".synroute-getcwd-%d-%d", os.time(), math.random(1, 1e9))
    local file = io.open(name, "w")
    local seen = file and cwd and io.open(cwd .. "/" .. name, "r")
    check("getcwd/absolute", cwd and cwd:sub(1, 1) == "/", cwd)
    check("getcwd/is-the-working-directory", seen ~= nil, tostring(cwd) .. (file and "" or " (cannot write here)"))
    if seen then seen:close() end
    if file then file:close(); os.remove(name) end
end

---------------------------------------------------------------- yaml limits
do
    local doc, pos = synroute.yaml_parse("a: &x [1, {k: v}]\nb: *x\nc: {}\n", "t.yaml")
    check("yaml/alias-same-table", doc and doc.a == doc.b)
    check("yaml/pos-map-keys", pos and pos[doc].keys.b == 2 and pos[doc].items == nil)
    check("yaml/pos-seq-items", pos and pos[doc.a].items[2] == 1 and pos[doc.a].keys == nil)
    check("yaml/pos-empty-line-only", pos and pos[doc.c].line == 3 and pos[doc.c].keys == nil)
    -- the node limit, overridable per call
    local d2, err = synroute.yaml_parse("a: &x [1, 2, 3]\nb: *x\n", "t.yaml", { max_nodes = 8 })
    eq("yaml/node-limit", d2 == nil and err,
        "t.yaml:2:4: alias *x expands the document beyond 8 nodes (the limit on nodes with aliases expanded)")
    check("yaml/node-limit-raised", synroute.yaml_parse("a: &x [1, 2, 3]\nb: *x\n", "t.yaml", { max_nodes = 12 }))
    -- a billion laughs by default: nil, message, at once
    local lines = { "l0: &l0 [lol, lol]" }
    for i = 1, 12 do
        lines[#lines + 1] = ("l%d: &l%d [%s]"):format(i, i, ("*l" .. (i - 1) .. ", "):rep(9) .. "*l" .. (i - 1))
    end
    local bomb = table.concat(lines, "\n") .. "\n"
    d2, err = synroute.yaml_parse(bomb, "bomb.yaml")
    check("yaml/bomb-refused", d2 == nil and tostring(err):match("^bomb%.yaml:7:%d+: alias %*l5 expands") ~= nil, err)
    d2, err = synroute.yaml_parse("a: 123456\n", "t.yaml", { max_bytes = 9 })
    eq("yaml/byte-limit", d2 == nil and err, "t.yaml: is too large (10 bytes; the limit is 9 bytes)")
    d2, err = synroute.yaml_load("/dev/zero")
    eq("yaml/device-refused", d2 == nil and err, "/dev/zero: is not a regular file (a character device)")
    -- a long scalar named by many aliases is one Lua string (10 MB if copied)
    local big = "s: &s " .. ("x"):rep(10000) .. "\nl: [" .. ("*s, "):rep(999) .. "*s]\n"
    collectgarbage()
    local before = collectgarbage("count")
    d2 = synroute.yaml_parse(big, "big.yaml")
    collectgarbage()
    check("yaml/aliased-string-shared", d2 and #d2.l == 1000 and d2.l[1000] == d2.s and
        collectgarbage("count") - before < 2048, collectgarbage("count") - before)
    -- wrong argument types raise; data errors never do
    check("yaml/limits-not-table-raises", not pcall(synroute.yaml_parse, "a: 1", "t", 5))
    check("yaml/limits-zero-raises", not pcall(synroute.yaml_parse, "a: 1", "t", { max_nodes = 0 }))
    check("yaml/limits-float-raises", not pcall(synroute.yaml_parse, "a: 1", "t", { max_bytes = 1.5 }))
    check("yaml/limits-unknown-raises", not pcall(synroute.yaml_load, "/dev/null", { max_size = 1 }))
end

---------------------------------------------------------------- removed exports
do
    local set = assert(synroute.regex_set({ "^/a" }))
    check("exports/no-parse-token", synroute.parse_token == nil)
    check("exports/no-hash", synroute.hash == nil)
    check("exports/no-set-jit", set.jit == nil)
    check("exports/glob", type(synroute.glob) == "function")
end

kit.finish()
