#!/usr/bin/env bash
# tests/style/run.sh - one style per language, checked. Prints
# "ok style/<check>" or "FAIL style/<check>: why" per check; exits 1 if any
# failed. Each language is one block below; a new check is one more block.
#
#   C    clang-format   .clang-format (written for Debian bookworm's
#                       clang-format 14) over c_ext/ and tests/unit/;
#                       fix with: clang-format -i c_ext/*.[ch] tests/unit/*.[ch]
#        cppcheck       c_ext/, warnings + style + performance + portability;
#                       a finding is fixed, or suppressed inline
#                       (// cppcheck-suppress id) with a comment saying why
#        function size  no function in c_ext/ over 80 lines
#   Lua  luacheck       .luacheckrc, every Lua file (lua/, tests/, examples/)
#        compiles       under luac5.4 and luac5.3 (HAProxy 2.6 embeds 5.3;
#                       where no luac5.3 is installed that half is a skip)
#        indentation    4 spaces a level: no tab, no line indented by 2
#                       (outside multi-line long strings)
#        function size  no function in lua/ over 80 lines
#
# Missing tools are installed with apt-get (announced on stderr).
T=style
. "$(dirname -- "$0")/../lib.bash"   # root, ok/fail/skip, need_pkg
# These check the source, not the platform: they run once, in the host leg
# (the formatting reference is bookworm's clang-format 14; another release's
# clang-format formats differently).
if [ -n "${SYNROUTE_LEG:-}" ] && [ "$SYNROUTE_LEG" != host ]; then
    echo "skip style: source checks run in the host leg only (this is the $SYNROUTE_LEG leg)"
    exit 0
fi

c_files=$(ls c_ext/*.[ch] tests/unit/*.[ch])
lua_files=$(find lua tests examples -name '*.lua' | sort)

# ---- C: clang-format ------------------------------------------------------
if ! need_pkg clang-format; then
    fail clang-format "clang-format is missing and could not be installed"
elif out=$(clang-format --dry-run -Werror $c_files 2>&1); then
    ok clang-format
else
    bad=$(echo "$out" | grep -o '^[^:]*\.[ch]:[0-9]*' | sort -u -t: -k1,1 | head -5 | tr '\n' ' ')
    fail clang-format "not formatted: ${bad}(clang-format -i c_ext/*.[ch] tests/unit/*.[ch])"
fi

# ---- C: cppcheck ----------------------------------------------------------
if ! need_pkg cppcheck; then
    fail cppcheck "cppcheck is missing and could not be installed"
elif out=$(cppcheck --enable=warning,style,performance,portability --std=c11 \
               --inline-suppr --quiet --error-exitcode=1 -I c_ext c_ext/ 2>&1); then
    ok cppcheck
else
    fail cppcheck "$(echo "$out" | grep -m3 -E '(error|warning|style|performance|portability):' | tr '\n' ' ')"
fi

# ---- C: function size -----------------------------------------------------
# A function is its definition line(s) down to the '}' in column 0.
long=$(awk '
    FNR == 1 { start = 0 }
    /^[A-Za-z_].*\(/ && !/;[ \t]*$/ && !/^(typedef|struct|enum|union)/ { start = FNR; name = $0 }
    /^}/ && start { if (FNR - start + 1 > 80) printf "%s:%d %d lines; ", FILENAME, start, FNR - start + 1; start = 0 }
' c_ext/*.c)
if [ -z "$long" ]; then ok c-function-size; else fail c-function-size "over 80 lines: $long"; fi

# ---- Lua: luacheck -----------------------------------------------------------
if ! need_pkg lua-check; then
    fail luacheck "luacheck is missing and could not be installed"
elif out=$(luacheck --no-color --codes -q $lua_files 2>&1); then
    ok luacheck
else
    fail luacheck "$(echo "$out" | grep -m5 -E '^ +[^ ]+:[0-9]+:' | sed 's/^ *//' | tr '\n' ' ')"
fi

# ---- Lua: compiles under every Lua synroute runs on -----------------------
for v in 5.4 5.3; do
    if ! command -v "luac$v" >/dev/null 2>&1; then
        skip "lua-compiles-$v" "luac$v is not installed here"
        continue
    fi
    bad=$(for f in $lua_files; do luac$v -p "$f" 2>&1; done | head -3 | tr '\n' ' ')
    if [ -z "$bad" ]; then ok "lua-compiles-$v"; else fail "lua-compiles-$v" "$bad"; fi
done

# ---- Lua: indentation ------------------------------------------------------
# A line indented by exactly 2 spaces is the mark of a 2-space file; lines
# inside a long string ([[ ... ]], [==[ ... ]==]) spanning several lines are
# text, not code.
bad=$(awk '
    FNR == 1 { inl = 0 }
    !inl && (/^ *\t/ || /^  [^ ]/) { printf "%s:%d ", FILENAME, FNR }
    {
        if (!inl && match($0, /\[=*\[/)) {
            shut = "]" substr($0, RSTART + 1, RLENGTH - 2) "]"
            if (!index(substr($0, RSTART + RLENGTH), shut)) inl = 1
        } else if (inl && index($0, shut)) inl = 0
    }
' $lua_files | cut -c1-300)
if [ -z "$bad" ]; then ok lua-indentation; else fail lua-indentation "not 4 spaces a level: $bad"; fi

# ---- Lua: function size -----------------------------------------------------
# luac lists every function as "function <file:first,last>".
long=$(for f in lua/synroute/*.lua; do
    luac5.4 -p -l -l "$f" | sed -n 's/^function <[^>]*:\([0-9]*\),\([0-9]*\)>.*/\1 \2/p' |
        while read -r a b; do
            [ $((b - a + 1)) -gt 80 ] && printf '%s:%d %d lines; ' "$f" "$a" $((b - a + 1))
        done
done)
if [ -z "$long" ]; then ok lua-function-size; else fail lua-function-size "over 80 lines: $long"; fi

exit $(( fails > 0 ))
