-- .luacheckrc - luacheck's settings for every Lua file of the repository
-- (run by tests/style/run.sh). The code runs on Lua 5.3 (HAProxy 2.6) and
-- 5.4 (the CLI, HAProxy 3.0): the 5.3 standard library is what both have.
std = "lua53"
-- Lines that hold one generated HAProxy directive or one test case read
-- better whole than wrapped.
max_line_length = false

-- HAProxy's Lua API, only where code runs inside HAProxy.
files["lua/synroute/haproxy.lua"] = { read_globals = { "core" } }
files["tests/bench/action_glue.lua"] = { read_globals = { "core" } }
