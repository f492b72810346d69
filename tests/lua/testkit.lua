-- tests/lua/testkit.lua - the assertion kit of the Lua test files.
--   local t = dofile(here .. "/testkit.lua")(prefix)
--   t.check(name, cond, why)   prints "ok <prefix>/<name>" or "FAIL ...: why"
--   t.eq(name, got, want)      check(got == want) with both values in the message
--   t.finish()                 summary on stderr, exit 1 if anything failed
return function(prefix)
    local t = { passed = 0, failed = 0 }
    function t.check(name, cond, why)
        if cond then
            t.passed = t.passed + 1
            print("ok " .. prefix .. "/" .. name)
        else
            t.failed = t.failed + 1
            print("FAIL " .. prefix .. "/" .. name .. ": " .. tostring(why or "condition false"))
        end
    end
    function t.eq(name, got, want)
        local function show(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end
        t.check(name, got == want, "got " .. show(got) .. " want " .. show(want))
    end
    function t.finish()
        io.stderr:write(string.format("%s: %d passed, %d failed\n", prefix, t.passed, t.failed))
        os.exit(t.failed == 0 and 0 or 1)
    end
    return t
end
