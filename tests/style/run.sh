#!/usr/bin/env bash
# tests/style/run.sh - one style per language, checked. Prints
# "ok style/<check>" or "FAIL style/<check>: why" per check; exits 1 if any
# failed. Each language is one block below; a new check is one more block.
#
#   C  clang-format   .clang-format (written for Debian bookworm's
#                     clang-format 14) over c_ext/ and tests/unit/;
#                     fix with: clang-format -i c_ext/*.[ch] tests/unit/*.[ch]
#      cppcheck       c_ext/, warnings + style + performance + portability;
#                     a finding is fixed, or suppressed inline
#                     (// cppcheck-suppress id) with a comment saying why
#      function size  no function in c_ext/ over 80 lines
#
# Missing tools are installed with apt-get (announced on stderr).
set -u
cd "$(dirname "$0")/../.."
# These check the source, not the platform: they run once, in the host leg
# (the formatting reference is bookworm's clang-format 14; another release's
# clang-format formats differently).
if [ -n "${SYNROUTE_LEG:-}" ] && [ "$SYNROUTE_LEG" != host ]; then
    echo "skip style: source checks run in the host leg only (this is the $SYNROUTE_LEG leg)"
    exit 0
fi
rc=0

fail() { echo "FAIL style/$1: $2"; rc=1; }

sudo_=; [ "$(id -u)" = 0 ] || sudo_=sudo
need() {   # command package: install package when command is missing
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "style: installing $2" >&2
    $sudo_ apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "$2" >&2 &&
        command -v "$1" >/dev/null 2>&1
}

c_files=$(ls c_ext/*.[ch] tests/unit/*.[ch])

# ---- C: clang-format ------------------------------------------------------
if ! need clang-format clang-format; then
    fail clang-format "clang-format is missing and could not be installed"
elif out=$(clang-format --dry-run -Werror $c_files 2>&1); then
    echo "ok style/clang-format"
else
    bad=$(echo "$out" | grep -o '^[^:]*\.[ch]:[0-9]*' | sort -u -t: -k1,1 | head -5 | tr '\n' ' ')
    fail clang-format "not formatted: ${bad}(clang-format -i c_ext/*.[ch] tests/unit/*.[ch])"
fi

# ---- C: cppcheck ----------------------------------------------------------
if ! need cppcheck cppcheck; then
    fail cppcheck "cppcheck is missing and could not be installed"
elif out=$(cppcheck --enable=warning,style,performance,portability --std=c11 \
               --inline-suppr --quiet --error-exitcode=1 -I c_ext c_ext/ 2>&1); then
    echo "ok style/cppcheck"
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
if [ -z "$long" ]; then
    echo "ok style/c-function-size"
else
    fail c-function-size "over 80 lines: $long"
fi

exit $rc
