# synroute - build, install, package, test, demo, bench.
#
#   make            build the module for Lua 5.3 and 5.4 (build/5.x/synroute.so)
#                   and the C test binaries; installs nothing
#   make deps       install (apt-get) the Debian packages building needs
#   make test       install what the tests need, build, run every suite twice:
#                   on this machine and in a Debian 13 chroot (tests/platform)
#   make demo       install what the demo needs, bring up examples/full on loopback
#   make bench      benchmarks on this machine's HAProxy and in the Debian 13 chroot
#   make install    PREFIX, DESTDIR, LIBDIR, DATADIR, SYSCONFDIR (see below)
#   make uninstall  remove what make install put there
#   make deb        the Debian package (dpkg-buildpackage) in build/deb/
#   make fuzz       a longer fuzzing session (FUZZ_SECONDS, default 900) with coverage
#   make clean      remove everything make built (build/)
#
# CPPFLAGS, CFLAGS and LDFLAGS from the environment or the command line are
# honoured (dpkg-buildflags' hardening flags reach every compile and link).

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
DATADIR    ?= $(PREFIX)/share/synroute
LUADIR     ?= $(PREFIX)/share/lua
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR    ?=
# where the shared benchmark lives (mix.tsv, instr.sh, the peers)
BENCH_DIR  ?= ../shared/bench

CC         ?= cc
PKG_CONFIG ?= pkg-config
CFLAGS     ?= -O2 -g
INSTALL    ?= install
LUA_VERSIONS := 5.3 5.4

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# pkg-config module -> the Debian package that provides it
PC_MODULES := lua5.3:liblua5.3-dev lua5.4:liblua5.4-dev libpcre2-8:libpcre2-dev yaml-0.1:libyaml-dev
LIB_CFLAGS  = $(shell $(PKG_CONFIG) --cflags libpcre2-8 yaml-0.1 2>/dev/null)
LIBS        = $(shell $(PKG_CONFIG) --libs libpcre2-8 yaml-0.1 2>/dev/null)
# the module takes only Lua's headers; the host (lua5.x, HAProxy) provides the symbols
lua_cflags  = $(shell $(PKG_CONFIG) --cflags lua$(1) 2>/dev/null)

# The core: every c_ext/sr_*.c, compiled once (PIC) and linked into both
# modules and the test and bench binaries.
CORE_SRC := $(sort $(wildcard c_ext/sr_*.c))
CORE_OBJ := $(CORE_SRC:c_ext/%.c=build/obj/%.o)
MODULES  := $(LUA_VERSIONS:%=build/%/synroute.so)
DEPFLAGS  = -MMD -MP

# Debian packages. Building: BUILD_PKGS (make deps). The CLI runs on lua5.4 and
# needs CLI_PKGS (the .deb's Depends say the same).
# The test, demo and bench targets add theirs, each installed only when missing.
BUILD_PKGS := gcc libc6-dev make pkg-config liblua5.3-dev liblua5.4-dev libpcre2-dev libyaml-dev
CLI_PKGS   := lua5.4 lua-cjson lua-argparse lua-socket
DEMO_PKGS  := $(CLI_PKGS) haproxy curl iproute2
BENCH_PKGS := $(CLI_PKGS) haproxy curl iproute2 valgrind wrk nginx-light debootstrap
TEST_PKGS  := $(CLI_PKGS) lua5.3 lua-check haproxy varnish valgrind wrk \
              nginx-light curl iproute2 procps python3 clang libclang-rt-dev debootstrap build-essential debhelper \
              dpkg-dev lintian

.PHONY: all deps build-deps chroot-pkgs test test-deps demo bench unit install uninstall deb clean
.DELETE_ON_ERROR:
.SECONDARY: $(LUA_VERSIONS:%=build/obj/lsynroute-%.o)

all: $(MODULES) build/unit_tests build/rset_bench

# Stops the build early, naming what is missing, instead of failing inside the
# compiler; installs nothing (make deps does).
build-deps:
	@missing=""; \
	command -v $(firstword $(CC)) >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	if ! command -v $(PKG_CONFIG) >/dev/null 2>&1; then missing="$$missing pkg-config"; else \
	  for m in $(PC_MODULES); do $(PKG_CONFIG) --exists $${m%%:*} || missing="$$missing $${m#*:}"; done; fi; \
	if [ -n "$$missing" ]; then \
	  echo "synroute: cannot build, missing Debian packages:$$missing" >&2; \
	  echo "synroute: run 'make deps' to install what building needs (or: apt-get install$$missing)" >&2; \
	  exit 1; \
	fi

# $(call apt_install,PACKAGES): install the packages that are not installed yet
define apt_install
	@missing=""; for p in $(1); do \
	  [ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" = installed ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_PKGS))

test-deps:
	$(call apt_install,$(BUILD_PKGS) $(TEST_PKGS))

# the packages of the test chroot (tests/platform)
chroot-pkgs:
	@echo $(filter-out debootstrap,$(BUILD_PKGS) $(TEST_PKGS))

build/obj/%.o: c_ext/%.c | build-deps
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(LIB_CFLAGS) $(CFLAGS) $(WARN) -fPIC $(DEPFLAGS) -c -o $@ $<

build/obj/lsynroute-%.o: c_ext/lsynroute.c | build-deps
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(call lua_cflags,$*) $(CFLAGS) $(WARN) -fPIC $(DEPFLAGS) -c -o $@ $<

build/%/synroute.so: build/obj/lsynroute-%.o $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $^ $(LIBS)

build/unit_tests: $(CORE_OBJ) $(wildcard tests/unit/*.c tests/unit/*.h) c_ext/sr_core.h | build-deps
	$(CC) $(CPPFLAGS) -Ic_ext $(LIB_CFLAGS) $(CFLAGS) $(WARN) $(LDFLAGS) -o $@ $(filter %.c,$^) $(CORE_OBJ) $(LIBS)

build/rset_bench: $(CORE_OBJ) tests/bench/rset_bench.c c_ext/sr_core.h | build-deps
	$(CC) $(CPPFLAGS) -Ic_ext $(LIB_CFLAGS) $(CFLAGS) $(WARN) $(LDFLAGS) -o $@ $(filter %.c,$^) $(CORE_OBJ) $(LIBS)

-include $(wildcard build/obj/*.d)

unit: build/unit_tests
	build/unit_tests

# LEGS="host trixie" (default both): which legs tests/platform/legs.sh runs
test: test-deps
	$(MAKE) all
	BENCH_DIR="$(BENCH_DIR)" bash tests/platform/legs.sh test

demo:
	$(call apt_install,$(BUILD_PKGS) $(DEMO_PKGS))
	$(MAKE) all
	bash examples/demo.sh

bench:
	$(call apt_install,$(BUILD_PKGS) $(BENCH_PKGS))
	$(MAKE) all
	BENCH_DIR="$(BENCH_DIR)" bash tests/platform/legs.sh bench

# == install ==================================================================
# $(LIBDIR)/lua/5.x/synroute.so and $(LUADIR)/5.x/synroute/*.lua are where
# each Lua (and HAProxy's embedded Lua) looks by default when PREFIX is /usr
# or /usr/local. The Lua files learn DATADIR from paths.lua; the launcher
# learns where cli.lua is.
SED_DATADIR := s|@SYNROUTE_DATADIR@|$(DATADIR)|
D := $(DESTDIR)

install: $(MODULES)
	@set -e; for v in $(LUA_VERSIONS); do \
	  $(INSTALL) -d $(D)$(LIBDIR)/lua/$$v $(D)$(LUADIR)/$$v/synroute; \
	  echo "$(INSTALL) -m 644 build/$$v/synroute.so $(D)$(LIBDIR)/lua/$$v/"; \
	  $(INSTALL) -m 644 build/$$v/synroute.so $(D)$(LIBDIR)/lua/$$v/synroute.so; \
	  echo "lua/synroute/*.lua -> $(D)$(LUADIR)/$$v/synroute/ (sed '$(SED_DATADIR)')"; \
	  for f in lua/synroute/*.lua; do \
	    t=$(D)$(LUADIR)/$$v/synroute/$${f##*/}; \
	    sed '$(SED_DATADIR)' $$f > $$t.tmp && chmod 644 $$t.tmp && mv $$t.tmp $$t; \
	  done; \
	done
	$(INSTALL) -d $(D)$(DATADIR)/routes $(D)$(DATADIR)/haproxy/errors
	$(INSTALL) -m 644 routes/routes.yaml $(D)$(DATADIR)/routes/
	$(INSTALL) -m 644 haproxy/*.cfg $(D)$(DATADIR)/haproxy/
	$(INSTALL) -m 644 haproxy/errors/* $(D)$(DATADIR)/haproxy/errors/
	$(INSTALL) -d $(D)$(BINDIR) $(D)$(MANDIR)/man1
	sed 's|@SYNROUTE_CLI@|$(LUADIR)/5.4/synroute/cli.lua|' bin/synroute > $(D)$(BINDIR)/synroute.tmp
	chmod 755 $(D)$(BINDIR)/synroute.tmp && mv $(D)$(BINDIR)/synroute.tmp $(D)$(BINDIR)/synroute
	$(INSTALL) -m 644 docs/synroute.1 $(D)$(MANDIR)/man1/synroute.1
	$(INSTALL) -d $(D)$(SYSCONFDIR)/synroute
	@if [ -e $(D)$(SYSCONFDIR)/synroute/synroute.yaml ]; then \
	  echo "keeping $(D)$(SYSCONFDIR)/synroute/synroute.yaml (the sample is etc/synroute.yaml)"; \
	else \
	  echo "$(INSTALL) -m 644 etc/synroute.yaml $(D)$(SYSCONFDIR)/synroute/synroute.yaml"; \
	  $(INSTALL) -m 644 etc/synroute.yaml $(D)$(SYSCONFDIR)/synroute/synroute.yaml; \
	fi
	@command -v lua5.4 >/dev/null 2>&1 || echo "note: the synroute command runs with lua5.4, which is not installed"

# the configuration stays when it differs from the sample (it was edited)
uninstall:
	@set -e; for v in $(LUA_VERSIONS); do \
	  rm -f $(D)$(LIBDIR)/lua/$$v/synroute.so; \
	  rm -rf $(D)$(LUADIR)/$$v/synroute; \
	  rmdir $(D)$(LIBDIR)/lua/$$v $(D)$(LUADIR)/$$v 2>/dev/null || true; \
	done; \
	rmdir $(D)$(LIBDIR)/lua $(D)$(LUADIR) 2>/dev/null || true
	rm -f $(D)$(DATADIR)/routes/routes.yaml $(patsubst %,$(D)$(DATADIR)/%,$(wildcard haproxy/*.cfg haproxy/errors/*))
	-rmdir $(D)$(DATADIR)/routes $(D)$(DATADIR)/haproxy/errors $(D)$(DATADIR)/haproxy $(D)$(DATADIR) 2>/dev/null
	rm -f $(D)$(BINDIR)/synroute $(D)$(MANDIR)/man1/synroute.1
	@c=$(D)$(SYSCONFDIR)/synroute/synroute.yaml; \
	if [ -f $$c ] && ! cmp -s $$c etc/synroute.yaml; then echo "keeping $$c (changed from the sample)"; \
	else rm -f $$c; rmdir $(D)$(SYSCONFDIR)/synroute 2>/dev/null || true; fi

# == Debian package ===========================================================
# Built from a copy of the checkout (the files git knows, plus new ones not
# ignored) in build/deb/, so that dpkg-buildpackage's clean step leaves this
# tree's build/ alone. Result: build/deb/synroute_<version>_<arch>.deb (and the
# source package, so that lintian sees both).
deb:
	@for c in dpkg-buildpackage dh; do command -v $$c >/dev/null 2>&1 || { \
	  echo "synroute: make deb needs debhelper, dpkg-dev and build-essential (apt-get install them; make test does)" >&2; exit 1; }; done
	rm -rf build/deb && mkdir -p build/deb/src
	bash tests/platform/copy-tree.sh . build/deb/src
	cd build/deb/src && dpkg-buildpackage -us -uc
	@ls -1 build/deb/*.deb

# == clean ====================================================================
# build/ also holds the test chroots (tests/platform); nothing is mounted in
# them once a leg ends, but make sure before removing them.
clean:
	@if [ -d build ]; then \
	  b=$$(cd build && pwd -P); \
	  for m in $$(awk -v b="$$b/" 'index($$2, b) == 1 { print $$2 }' /proc/self/mounts | sort -r); do \
	    echo "umount $$m"; umount "$$m" || umount -l "$$m"; \
	  done; \
	fi
	rm -rf --one-file-system build

# make fuzz: a longer session of every fuzz target than make test's (FUZZ_SECONDS
# in total, split evenly), then each target's line coverage of sr_router.c and
# sr_rset*.c (FUZZ_COVERAGE=0 skips it); see tests/fuzz/run.sh
.PHONY: fuzz
fuzz: build/5.4/synroute.so
	FUZZ_SECONDS=$${FUZZ_SECONDS:-900} FUZZ_COVERAGE=$${FUZZ_COVERAGE:-1} bash tests/fuzz/run.sh
