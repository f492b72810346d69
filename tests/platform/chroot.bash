# tests/platform/chroot.bash - Debian chroots for the test legs (sourced).
#
#   apt_mirror                      the Debian archive this machine's apt uses
#   chroot_ensure DIR SUITE PKGS    a cached chroot with these packages
#   chroot_run DIR NET CMD...       run CMD inside DIR (NET: net = this
#                                   machine's network, lo = loopback only)
#   copy_checkout SRC DEST          a checkout's files (copy-tree.sh)
#
# Every command in a chroot runs in its own mount and PID namespace
# (unshare): /proc, /sys, /dev and a fresh /tmp are mounted there and
# disappear with the namespace, also when the command fails or is
# interrupted, and no process outlives it. (The namespace's PID 1 is a shell
# that waits for the command, so that the command gets signals as usual.) Nothing is bind-mounted from the
# checkout: the legs copy what they need into the chroot.
#
# Caches (under build/chroot): DIR and DIR.pkgs (mirror, suite and package
# list it was built with). A changed list tops the chroot up (apt-get
# install) when it only grew, else the chroot is built again.

[ "$(id -u)" = 0 ] || { echo "tests/platform: the chroot legs need root (debootstrap, chroot, unshare)" >&2; exit 2; }

platform_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

say() { echo "platform: $*" >&2; }

# The archive apt takes this release's packages from: the first enabled "deb"
# source (one-line *.list or deb822 *.sources) with a plain http(s)/ftp/file
# URI that carries this release's codename (else stable, testing, unstable
# or sid) and the main component.
# (apt_mirror FILE... reads those files instead.)
apt_mirror() {
    local codename files
    codename=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")
    if [ $# -gt 0 ]; then files="$*"; else
        files=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null)
    fi
    # shellcheck disable=SC2086
    [ -n "$files" ] && awk -v codename="$codename" '
        function flush(   i, n, u, s, c, nu, ns, nc, ok) {
            if (type ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[Nn]o/) {
                nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/); nc = split(comps, c, /[ \t]+/)
                ok = 0
                for (i = 1; i <= nc; i++) if (c[i] == "main") ok = 1
                if (ok) for (i = 1; i <= nu; i++) if (u[i] ~ /^(https?|ftp|file):/)
                    for (n = 1; n <= ns; n++) add(u[i], s[n])
            }
            type = uris = suites = comps = enabled = ""
        }
        function add(u, s) {
            if (s == codename && exact == "") exact = u
            if (s ~ /^(stable|testing|unstable|sid)$/ && plain == "") plain = u
        }
        FNR == 1 { flush(); deb822 = FILENAME ~ /\.sources$/ }
        /^[ \t]*#/ { next }
        deb822 && /^[ \t]*$/ { flush(); next }
        deb822 {
            key = tolower($0); sub(/:.*/, "", key); gsub(/[ \t]/, "", key)
            val = $0; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types") type = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "components") comps = val
            else if (key == "enabled") enabled = val
            next
        }
        $1 == "deb" {
            i = 2
            if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            type = "deb"; uris = $i; suites = $(i + 1); comps = ""
            for (j = i + 2; j <= NF; j++) comps = comps " " $j
            sub(/^ /, "", comps)
            flush()
        }
        END { flush(); u = exact != "" ? exact : plain; if (u == "") exit 1; sub(/\/+$/, "", u); print u }
    ' $files
}

# apt's proxy, if it has one, for debootstrap too
apt_proxy_env() {
    local p
    p=$(apt-config shell p Acquire::http::Proxy 2>/dev/null | sed -n "s/^p='\(.*\)'$/\1/p")
    if [ -n "$p" ] && [ "$p" != DIRECT ]; then export http_proxy=$p; fi
}

# chroot_run DIR NET CMD...: CMD inside DIR with a clean environment (PATH,
# HOME, LANG, TERM and the variables named in $CHROOT_PASS_ENV).
chroot_run() {
    local dir=$1 net=$2; shift 2
    local ns=(--mount --pid --fork --kill-child --propagation private)
    [ "$net" = lo ] && ns+=(--net)
    local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
                LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive)
    local v
    for v in ${CHROOT_PASS_ENV:-}; do [ -n "${!v+x}" ] && envs+=("$v=${!v}"); done
    unshare "${ns[@]}" /bin/sh -ec '
        d=$1 net=$2; shift 2
        mount -t proc proc "$d/proc"
        mount -t sysfs -o ro sysfs "$d/sys"
        mount --rbind /dev "$d/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$d/tmp"
        if [ "$net" = lo ]; then ip link set lo up; fi
        chroot "$d" /usr/bin/env -i "$@"
    ' chroot-run "$dir" "$net" "${envs[@]}" "$@"
}

# Services must not start inside a chroot (they would bind ports here).
chroot_no_services() {
    printf '#!/bin/sh\nexit 101\n' > "$1/usr/sbin/policy-rc.d"
    chmod 755 "$1/usr/sbin/policy-rc.d"
}

# chroot_install DIR PKGS...: apt-get install in the chroot (network)
# (after apt-get update; without packages, only the update)
chroot_install() {
    local dir=$1; shift
    chroot_run "$dir" net apt-get update -qq || return 1
    [ $# -gt 0 ] || return 0
    chroot_run "$dir" net apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# chroot_ensure DIR SUITE PKGS...: build DIR with debootstrap (minbase) from
# this machine's archive, or reuse it. Prints what it does on stderr.
chroot_ensure() {
    local dir=$1 suite=$2; shift 2
    local mirror want have stamp=$dir.pkgs
    mirror=$(apt_mirror) || { say "cannot find the Debian archive in the apt sources"; return 1; }
    want=$(printf '%s\n' "mirror $mirror" "suite $suite" $(printf '%s\n' "$@" | sort -u))
    if [ -d "$dir" ] && [ -f "$stamp" ]; then
        have=$(cat "$stamp")
        [ "$have" = "$want" ] && return 0
        if [ "$(head -2 <<<"$have")" = "$(head -2 <<<"$want")" ] &&
           [ -z "$(comm -23 <(tail -n +3 <<<"$have") <(tail -n +3 <<<"$want"))" ]; then
            local add
            add=$(comm -13 <(tail -n +3 <<<"$have") <(tail -n +3 <<<"$want"))
            say "topping up $dir:" $add
            # shellcheck disable=SC2086
            chroot_install "$dir" $add && printf '%s\n' "$want" > "$stamp" && return 0
            say "top-up failed; building $dir again"
        fi
    fi
    say "building $dir: debootstrap --variant=minbase $suite from $mirror"
    rm -f "$stamp"
    chroot_remove "$dir"
    mkdir -p "$(dirname "$dir")"
    apt_proxy_env
    local t0=$SECONDS log=$dir.debootstrap.log
    if ! debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$log" 2>&1; then
        say "debootstrap failed (log: $log):"; tail -5 "$log" >&2; return 1
    fi
    chroot_no_services "$dir"
    say "installing $# packages in $dir"
    chroot_install "$dir" "$@" || { say "apt-get in $dir failed"; return 1; }
    chroot_run "$dir" net apt-get clean
    printf '%s\n' "$want" > "$stamp"
    say "built $dir in $((SECONDS - t0)) s ($(du -sh "$dir" | cut -f1))"
}

# chroot_remove DIR: unmount anything left under DIR, then remove it
chroot_remove() {
    local dir=$1 m
    [ -e "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    rm -rf --one-file-system "$dir"
}

copy_checkout() { bash "$platform_dir/copy-tree.sh" "$1" "$2"; }
