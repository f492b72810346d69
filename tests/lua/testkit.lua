-- tests/lua/testkit.lua - the kit of every Lua test file: ok/FAIL/skip
-- lines the runner counts, and where the repository is.
--
--   local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")(prefix)
--   kit.root                   the repository (from the test's own path; absolute
--                              when the test was started from a shell)
--   kit.check(name, cond, why) prints "ok <prefix>/<name>" or "FAIL <prefix>/<name>: why";
--                              returns cond
--   kit.eq(name, got, want)    check(got == want), both values in the message
--   kit.ok(name), kit.fail(name, why), kit.skip(name, why)   ("skip" counts as neither)
--   kit.finish()               summary on stderr, exit 1 if anything failed
-- A message is one line (newlines become " | ").
local root = ((arg and arg[0] or ""):match("^(.*)tests/") or ""):gsub("/$", "")
if root:sub(1, 1) ~= "/" then
    -- relative to the working directory the shell that started us is in
    root = ((os.getenv("PWD") or ".") .. "/" .. root):gsub("/%.?$", "")
end

return function(prefix)
    local t = { passed = 0, failed = 0, root = root }
    local function one_line(s) return (tostring(s):gsub("\n", " | ")) end
    function t.ok(name)
        t.passed = t.passed + 1
        print("ok " .. prefix .. "/" .. name)
    end
    function t.fail(name, why)
        t.failed = t.failed + 1
        print("FAIL " .. prefix .. "/" .. name .. ": " .. one_line(why or "condition false"))
    end
    function t.skip(name, why)
        print("skip " .. prefix .. "/" .. name .. ": " .. one_line(why))
    end
    function t.check(name, cond, why)
        if cond then t.ok(name) else t.fail(name, why) end
        return cond
    end
    function t.eq(name, got, want)
        local function show(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end
        return t.check(name, got == want, "got " .. show(got) .. " want " .. show(want))
    end
    function t.finish()
        io.stderr:write(string.format("%s: %d passed, %d failed\n", prefix, t.passed, t.failed))
        os.exit(t.failed == 0 and 0 or 1)
    end
    return t
end
