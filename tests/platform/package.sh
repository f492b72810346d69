#!/usr/bin/env bash
# tests/platform/package.sh - the install and packaging suite (tests/run.sh
# runs it in each leg).
#
#   install/*     make install into a DESTDIR: the layout, the placeholders
#                 filled in, and make uninstall removing it again
#   deb/*         make deb: the package's files, conffile and dependencies
#   hardening/*   the package build log: dpkg-buildflags' hardening flags on
#                 every compile and link; the modules linked with RELRO and BIND_NOW
#   lintian/*     lintian on the package: no errors; every tag it reports is
#                 printed as a '# lintian:' line (and kept in build/deb/lintian.txt)
#
# Leaves the package in build/deb/ (the trixie leg installs it in a clean chroot).
T=package
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, ok/fail/check

# == make install / make uninstall ============================================
dest=$tmp/dest
if ! make -s install DESTDIR="$dest" PREFIX=/usr/local >"$tmp/install.log" 2>&1; then
    fail install/runs "make install failed: $(tail -3 "$tmp/install.log")"
else
    ok install/runs
    miss=""
    for f in usr/local/lib/lua/5.3/synroute.so usr/local/lib/lua/5.4/synroute.so \
             usr/local/share/lua/5.3/synroute/cli.lua usr/local/share/lua/5.4/synroute/cli.lua \
             usr/local/share/lua/5.3/synroute/haproxy.lua usr/local/share/lua/5.4/synroute/haproxy.lua \
             usr/local/share/synroute/routes/routes.yaml usr/local/share/synroute/haproxy/errors/503.http \
             usr/local/bin/synroute usr/local/share/man/man1/synroute.1 etc/synroute/synroute.yaml; do
        [ -f "$dest/$f" ] || miss="$miss $f"
    done
    check install/layout "${miss:+missing:$miss}"
    nlua=$(ls lua/synroute/*.lua | wc -l)
    n53=$(ls "$dest"/usr/local/share/lua/5.3/synroute/*.lua 2>/dev/null | wc -l)
    n54=$(ls "$dest"/usr/local/share/lua/5.4/synroute/*.lua 2>/dev/null | wc -l)
    check install/all-lua-files "$([ "$n53" = "$nlua" ] && [ "$n54" = "$nlua" ] || echo "lua/synroute has $nlua files, installed 5.3: $n53, 5.4: $n54")"
    left=$(grep -rl '@SYNROUTE_DATADIR@\|@SYNROUTE_CLI@' "$dest" 2>/dev/null | sed "s|^$dest/||")
    check install/placeholders-filled "${left:+placeholder left in: $left}"
    if [ -f lua/synroute/paths.lua ]; then
        check install/paths-datadir "$(grep -q '"/usr/local/share/synroute"' "$dest/usr/local/share/lua/5.4/synroute/paths.lua" || echo "paths.lua does not name /usr/local/share/synroute")"
    fi
    launcher=$dest/usr/local/bin/synroute
    check install/launcher "$([ -x "$launcher" ] && grep -q '^installed_cli="/usr/local/share/lua/5.4/synroute/cli.lua"$' "$launcher" || echo "bin/synroute does not point at /usr/local/share/lua/5.4/synroute/cli.lua")"
    cmp -s "$dest/etc/synroute/synroute.yaml" etc/synroute.yaml
    check install/sample-config "$([ $? = 0 ] || echo "etc/synroute/synroute.yaml differs from the sample")"
    # a second install keeps an edited configuration
    echo "# edited" >> "$dest/etc/synroute/synroute.yaml"
    make -s install DESTDIR="$dest" PREFIX=/usr/local >"$tmp/install2.log" 2>&1
    check install/keeps-config "$(tail -1 "$dest/etc/synroute/synroute.yaml" | grep -qx '# edited' || echo "a second make install replaced the edited configuration")"
    make -s uninstall DESTDIR="$dest" PREFIX=/usr/local >"$tmp/uninstall.log" 2>&1
    left=$(cd "$dest" && find . -type f | sort | tr '\n' ' ')
    check uninstall/removes "$([ "$left" = "./etc/synroute/synroute.yaml " ] || echo "left after make uninstall: $left")"
    left=$(cd "$dest" && find . -mindepth 1 -type d -name '*synroute*' | tr '\n' ' ')
    check uninstall/dirs "$([ "$left" = "./etc/synroute " ] || echo "directories left: $left")"
fi

# == make deb ===================================================================
if ! command -v dpkg-buildpackage >/dev/null 2>&1 || ! command -v dh >/dev/null 2>&1; then
    fail deb/build "dpkg-buildpackage and dh are needed (apt-get install debhelper dpkg-dev)"
    exit 1
fi
if ! make deb >"$tmp/deb.log" 2>&1; then
    cp "$tmp/deb.log" build/deb-failed.log 2>/dev/null
    fail deb/build "make deb failed (log: build/deb-failed.log): $(grep -m3 -iE 'error|failed' "$tmp/deb.log" | tr '\n' ' ')"
    exit 1
fi
cp "$tmp/deb.log" build/deb/build.log
deb=$(ls build/deb/synroute_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then fail deb/build "no build/deb/synroute_*.deb after make deb"; exit 1; fi
ok deb/build
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' > "$tmp/files"
miss=""
for f in /usr/lib/$multiarch/lua/5.3/synroute.so /usr/lib/$multiarch/lua/5.4/synroute.so \
         /usr/share/lua/5.3/synroute/cli.lua /usr/share/lua/5.4/synroute/cli.lua \
         /usr/share/lua/5.3/synroute/haproxy.lua /usr/share/lua/5.4/synroute/haproxy.lua \
         /usr/share/synroute/routes/routes.yaml /usr/share/synroute/haproxy/errors/503.http \
         /usr/bin/synroute /usr/share/man/man1/synroute.1.gz /etc/synroute/synroute.yaml \
         /usr/share/doc/synroute/copyright; do
    grep -qxF "$f" "$tmp/files" || miss="$miss $f"
done
check deb/files "${miss:+missing:$miss}"
stray=$(grep -E '^/usr/(local|share/synroute/(build|lua|bin))' "$tmp/files" | tr '\n' ' ')
check deb/no-repository-layout "${stray:+unexpected: $stray}"
dpkg-deb -e "$deb" "$tmp/ctrl"
check deb/conffile "$(grep -qx /etc/synroute/synroute.yaml "$tmp/ctrl/conffiles" 2>/dev/null || echo "/etc/synroute/synroute.yaml is not a conffile")"
depends=$(dpkg-deb -f "$deb" Depends)
miss=""
for d in lua5.4 lua-cjson lua-argparse libyaml libpcre2-8 libc6; do
    grep -q "\(^\|, \)$d" <<<"$depends" || miss="$miss $d"
done
check deb/depends "${miss:+Depends lacks$miss: $depends}"
check deb/recommends-haproxy "$(dpkg-deb -f "$deb" Recommends | grep -qw haproxy || echo "haproxy is not recommended")"
dpkg-deb -x "$deb" "$tmp/x"
check deb/launcher-installed-mode "$(grep -q '^installed_cli="/usr/share/lua/5.4/synroute/cli.lua"$' "$tmp/x/usr/bin/synroute" || echo "/usr/bin/synroute does not point at /usr/share/lua/5.4/synroute/cli.lua")"

# == hardening (the build log, as blhc reads it) ===============================
log=build/deb/build.log
bf() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
want_cflags=$(bf CFLAGS) want_cppflags=$(bf CPPFLAGS) want_ldflags=$(bf LDFLAGS)
# compiler invocations of the package build: every one needs CFLAGS, those
# with C sources CPPFLAGS, those that link LDFLAGS
grep -E '^(cc|gcc|[a-z0-9_-]*-gcc(-[0-9]+)?) ' "$log" > "$tmp/cc"
ncc=$(wc -l < "$tmp/cc")
bad=""
while IFS= read -r line; do
    want=$want_cflags
    case " $line " in *".c "*) want="$want $want_cppflags" ;; esac
    case " $line " in *" -c "*) ;; *) want="$want $want_ldflags" ;; esac
    for flag in $want; do
        case $flag in -ffile-prefix-map=*|-fdebug-prefix-map=*) continue ;; esac
        case " $line " in *" $flag "*) ;; *) bad="$bad [${line:0:50}... lacks $flag]" ;; esac
    done
done < "$tmp/cc"
check hardening/build-flags "$([ "$ncc" -ge 4 ] || echo "only $ncc compiler lines in $log")${bad:0:600}"
bad=""
for v in 5.3 5.4; do
    so=$tmp/x/usr/lib/$multiarch/lua/$v/synroute.so
    readelf -d "$so" 2>/dev/null | grep -q 'BIND_NOW' || bad="$bad $v:no-BIND_NOW"
    readelf -lW "$so" 2>/dev/null | grep -q 'GNU_RELRO' || bad="$bad $v:no-RELRO"
    readelf -d "$so" 2>/dev/null | grep -q 'NEEDED.*liblua' && bad="$bad $v:links-liblua"
done
check hardening/modules "${bad:+$bad}"

# == lintian ======================================================================
if ! command -v lintian >/dev/null 2>&1; then
    fail lintian/errors "lintian is not installed"
else
    changes=$(ls build/deb/synroute_*.changes 2>/dev/null | head -1)
    lintian --display-info --pedantic --tag-display-limit 0 "${changes:-$deb}" > build/deb/lintian.txt 2>&1
    sed 's/^/# lintian: /' build/deb/lintian.txt
    errors=$(grep -c '^E: ' build/deb/lintian.txt)
    check lintian/errors "$([ "$errors" = 0 ] || grep '^E: ' build/deb/lintian.txt | head -5 | tr '\n' ' ')"
fi
[ "$fails" = 0 ]
