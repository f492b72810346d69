# synroute - build, test, demo, bench.
#   make          build the module for Lua 5.3 (HAProxy) and 5.4 (CLI, tests)
#   make test     install what the tests need, build, run every suite
#   make demo     install what the demo needs, bring up examples/full on loopback
#   make bench    classifier micro-benchmark + instructions per request
#   make install  put the CLI on PATH (PREFIX=/usr/local)

PREFIX   ?= /usr/local
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CORE_SRC := c_ext/sr_rset.c c_ext/sr_rset_prefix.c c_ext/sr_rset_glob.c c_ext/sr_rset_trie.c c_ext/sr_rset_memo.c c_ext/sr_rset_match.c c_ext/sr_rset_dump.c c_ext/sr_parse.c c_ext/sr_hash.c c_ext/sr_yaml.c c_ext/sr_router.c c_ext/sr_glob.c c_ext/sr_util.c
LIBS     := -lpcre2-8 -lyaml

# Debian packages every target needs; installed only when missing.
PKGS := haproxy varnish lua5.3 lua5.4 liblua5.3-dev liblua5.4-dev libpcre2-dev \
        gcc libc6-dev make python3 iproute2 \
        libyaml-dev pkg-config curl wrk nginx-light valgrind
DEPS_STAMP := build/.deps

.PHONY: all deps test demo bench install clean unit
all: build/5.3/synroute.so build/5.4/synroute.so build/unit_tests build/rset_bench

$(DEPS_STAMP):
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p build && touch $@
deps: $(DEPS_STAMP)

build/5.3/synroute.so: $(CORE_SRC) c_ext/lsynroute.c c_ext/*.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I/usr/include/lua5.3 -o $@ $(CORE_SRC) c_ext/lsynroute.c $(LIBS)

build/5.4/synroute.so: $(CORE_SRC) c_ext/lsynroute.c c_ext/*.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I/usr/include/lua5.4 -o $@ $(CORE_SRC) c_ext/lsynroute.c $(LIBS)

build/unit_tests: $(CORE_SRC) tests/unit/*.c tests/unit/*.h c_ext/sr_core.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -Ic_ext -o $@ $(CORE_SRC) tests/unit/*.c $(LIBS)

build/rset_bench: $(CORE_SRC) tests/bench/rset_bench.c c_ext/sr_core.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) -O2 $(WARN) -Ic_ext -o $@ $(CORE_SRC) tests/bench/rset_bench.c $(LIBS)

unit: build/unit_tests
	build/unit_tests

test: all
	bash tests/run.sh

demo: all
	bash examples/demo.sh

bench: all
	bash tests/bench/bench.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/share/synroute/build/5.3 $(DESTDIR)$(PREFIX)/share/synroute/build/5.4 \
	           $(DESTDIR)$(PREFIX)/share/synroute/lua/synroute $(DESTDIR)$(PREFIX)/share/synroute/routes \
	           $(DESTDIR)$(PREFIX)/share/synroute/haproxy $(DESTDIR)$(PREFIX)/share/synroute/bin $(DESTDIR)$(PREFIX)/bin
	install -m 644 build/5.3/synroute.so $(DESTDIR)$(PREFIX)/share/synroute/build/5.3/
	install -m 644 build/5.4/synroute.so $(DESTDIR)$(PREFIX)/share/synroute/build/5.4/
	install -m 644 lua/synroute/*.lua $(DESTDIR)$(PREFIX)/share/synroute/lua/synroute/
	install -m 644 routes/routes.yaml $(DESTDIR)$(PREFIX)/share/synroute/routes/
	cp -R haproxy/. $(DESTDIR)$(PREFIX)/share/synroute/haproxy/
	install -m 755 bin/synroute $(DESTDIR)$(PREFIX)/share/synroute/bin/synroute
	ln -sf $(PREFIX)/share/synroute/bin/synroute $(DESTDIR)$(PREFIX)/bin/synroute

clean:
	rm -rf build/5.3 build/5.4 build/unit_tests build/rset_bench

# make fuzz: a longer session of every fuzz target than make test's (FUZZ_SECONDS
# in total, split evenly), then each target's line coverage of sr_router.c and
# sr_rset*.c (FUZZ_COVERAGE=0 skips it); see tests/fuzz/run.sh
.PHONY: fuzz
fuzz: build/5.4/synroute.so
	FUZZ_SECONDS=$${FUZZ_SECONDS:-900} FUZZ_COVERAGE=$${FUZZ_COVERAGE:-1} bash tests/fuzz/run.sh
