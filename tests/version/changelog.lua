-- tests/version/changelog.lua - print the "By route id" table of
-- docs/routes.md from routes/routes.yaml: per release, the entries whose
-- `since` is that release and those whose `until` is the release before.
-- tests/version/run.sh checks that the docs hold exactly this table.
--   lua5.4 tests/version/changelog.lua [routes.yaml]   (LUA_PATH/LUA_CPATH set for synroute)
local routes = require("synroute.routes")
local doc = assert(routes.load(arg[1] or "routes/routes.yaml"))
local rows = {}
for i, v in ipairs(doc.synapse_versions) do
    local add, gone = {}, {}
    for _, e in ipairs(doc.routes) do
        if e.since == v and v ~= doc.oldest then add[#add + 1] = "`" .. e.id .. "`" end
        if e["until"] and doc.synapse_versions[i - 1] == e["until"] then gone[#gone + 1] = "`" .. e.id .. "`" end
    end
    if #add > 0 or #gone > 0 then
        rows[#rows + 1] = "| " .. v .. " | " .. (#add > 0 and table.concat(add, ", ") or "-") .. " | " .. (#gone > 0 and table.concat(gone, ", ") or "-") .. " |"
    end
end
print("| release | entries that start (`since`) | entries that end (`until` the release before) |")
print("|---|---|---|")
print(table.concat(rows, "\n"))
