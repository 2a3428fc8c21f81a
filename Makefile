# vmtrace: build, test, bench, demo, install.
# `make test` and `make demo` first install missing Debian packages (as root)
# or print the apt-get command to run (tools/deps.sh).

LUA_VERSION = 5.4
LUA ?= lua$(LUA_VERSION)
PKG_CONFIG ?= pkg-config
LUA_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir lua$(LUA_VERSION) 2>/dev/null)/lua$(LUA_VERSION)
LUA_LIBS ?= $(shell $(PKG_CONFIG) --libs lua$(LUA_VERSION) 2>/dev/null)
DEP_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcjson uuid 2>/dev/null)
DEP_LIBS ?= -lcjson -luuid -lm

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR ?= $(PREFIX)/bin

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes
ALL_CFLAGS = $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L \
             -Icsrc -I$(LUA_INCDIR) $(DEP_CFLAGS)

CORE_SRC = csrc/clock.c csrc/ids.c csrc/json.c csrc/names.c csrc/collector.c \
           csrc/export.c csrc/export_otlp.c csrc/export_chrome.c csrc/export_folded.c \
           csrc/export_profile.c csrc/stream.c csrc/reader.c \
           csrc/export_summary.c
CORE_OBJ = $(CORE_SRC:csrc/%.c=build/obj/%.o)
BIND_OBJ = build/obj/lvmtrace.o
HDRS = csrc/vmtrace.h csrc/internal.h

MODULE = build/vmtrace/core.so
LIB = build/libvmtrace.a
C_TESTS = build/test_core build/test_states
RUN_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;"

.PHONY: all test bench demo install clean deps check-tests

all: $(MODULE) $(LIB)

build/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MODULE): $(CORE_OBJ) $(BIND_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) -o $@ $^ $(DEP_LIBS)

$(LIB): $(CORE_OBJ) $(BIND_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/test_core: tests/c/test_core.c tests/c/tap.h $(CORE_OBJ)
	$(CC) $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -Icsrc $(DEP_CFLAGS) \
	  -pthread -o $@ tests/c/test_core.c $(CORE_OBJ) $(DEP_LIBS)

build/test_states: tests/c/test_states.c tests/c/tap.h $(LIB)
	$(CC) $(WARN) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -Icsrc -I$(LUA_INCDIR) \
	  $(DEP_CFLAGS) -o $@ tests/c/test_states.c $(LIB) $(LUA_LIBS) $(DEP_LIBS)

build/benchfloor.so: bench/floor.c
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared -I$(LUA_INCDIR) -o $@ $<

deps:
	@tools/deps.sh

check-tests: all $(C_TESTS) build/npm/node_modules/@opentelemetry/otlp-transformer

# The OpenTelemetry protobuf definitions tests/otlp/verify.js decodes OTLP with.
build/npm/node_modules/@opentelemetry/otlp-transformer:
	npm install --prefix build/npm --no-audit --no-fund @opentelemetry/otlp-transformer@0.52.1

test: deps
	@$(MAKE) --no-print-directory check-tests
	@tools/runtests.sh

bench: deps
	@$(MAKE) --no-print-directory all build/benchfloor.so
	$(RUN_ENV) $(LUA) bench/bench.lua

demo: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p out
	$(RUN_ENV) $(LUA) examples/agent.lua

install: all
	install -d $(DESTDIR)$(LIBDIR)/vmtrace $(DESTDIR)$(LUADIR)/vmtrace $(DESTDIR)$(BINDIR)
	install -m 755 $(MODULE) $(DESTDIR)$(LIBDIR)/vmtrace/core.so
	install -m 644 lua/vmtrace/*.lua $(DESTDIR)$(LUADIR)/vmtrace/
	install -m 755 bin/vmtrace $(DESTDIR)$(BINDIR)/vmtrace

clean:
	rm -rf build out
