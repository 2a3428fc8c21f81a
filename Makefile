# vmtrace: build, test, bench, demo, install.
# `make test` and `make demo` first install missing Debian packages (as root)
# or print the apt-get command to run (tools/deps.sh).

LUA_VERSION = 5.4
LUA ?= lua$(LUA_VERSION)
PKG_CONFIG ?= pkg-config
LUA_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir lua$(LUA_VERSION) 2>/dev/null)/lua$(LUA_VERSION)
LUA_LIBS ?= $(shell $(PKG_CONFIG) --libs lua$(LUA_VERSION) 2>/dev/null)
CORE_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcjson uuid 2>/dev/null)
OTLP_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl zlib 2>/dev/null)
CORE_LIBS ?= -lcjson -luuid -lm
OTLP_LIBS ?= -lcurl -lz -pthread

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR ?= $(PREFIX)/bin

CC ?= cc
# The optimisation and visibility flags: rockspec/vmtrace-scm-1.rockspec
# builds with the same (tests/rock checks it).
OPT_CFLAGS = -O2 -fvisibility=hidden
CFLAGS ?= $(OPT_CFLAGS) -g
WARN = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes
ALL_CFLAGS = $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L \
             -Icsrc -I$(LUA_INCDIR) $(CORE_CFLAGS)
# The test programs' own code (tests/c, tests/fuzz) is compiled without
# optimisation: it compiles six times faster, and the code under test, the
# objects it links, keeps CFLAGS.
TEST_OPT = -O0

# The core (plain C), then what the OTLP/HTTP module adds (libcurl, zlib).
CORE_SRC = csrc/core/alloc.c csrc/core/status.c csrc/core/kind.c csrc/core/clock.c csrc/core/names.c \
           csrc/core/value.c csrc/core/store.c csrc/core/usage.c csrc/core/pricing.c \
           csrc/core/response.c csrc/otel/otel.c csrc/otel/env.c \
           csrc/io/buf.c csrc/io/json.c csrc/io/file.c csrc/io/stream.c csrc/io/reader.c \
           csrc/io/console.c csrc/export/export.c csrc/export/summary.c csrc/export/otlp.c csrc/export/chrome.c \
           csrc/export/folded.c csrc/export/profile.c csrc/export/html.c
OTLP_SHARED = csrc/core/alloc.c csrc/core/status.c csrc/core/kind.c csrc/core/clock.c csrc/core/value.c \
              csrc/core/usage.c csrc/otel/otel.c csrc/otel/env.c csrc/io/buf.c csrc/io/json.c \
              csrc/io/file.c csrc/export/otlp.c
# B is the build directory: build/ for the normal build, build/asan/ for the
# AddressSanitizer + UndefinedBehaviorSanitizer one (make asan).
B = build
CORE_OBJ = $(CORE_SRC:csrc/%.c=$(B)/obj/%.o)
BIND_OBJ = $(B)/obj/lua/lvmtrace.o
OTLP_OBJ = $(B)/obj/otlp_http/exporter.o $(B)/obj/lua/l_otlp_http.o \
           $(OTLP_SHARED:csrc/%.c=$(B)/obj/%.o)
HDRS = $(wildcard csrc/*.h csrc/*/*.h)
BIND_PARTS = $(wildcard csrc/lua/l_*.c)

MODULE = $(B)/vmtrace/core.so
OTLP_MODULE = $(B)/vmtrace/otlp_http.so
LIB = $(B)/libvmtrace.a
C_TESTS = $(B)/test_core $(B)/test_clock $(B)/test_states $(B)/test_oom $(B)/replay_ops $(B)/replay_reader \
          $(B)/replay_traceparent $(B)/host_example $(B)/fork_host
RUN_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;"
SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: FORCE npm-packages all test bench demo install install-rock clean deps check-tests asan valgrind gc-stress fuzz rock-test \
        report-template screenshot

all: $(MODULE) $(OTLP_MODULE) $(LIB)

# The compiler and flags the objects were built with: a change rebuilds them,
# and an object of this build is reused only with the same flags (tests/rock).
FLAGS_STAMP = $(B)/obj/cflags.txt
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(ALL_CFLAGS) / $(OTLP_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) / $(OTLP_CFLAGS)' >$@
FORCE:

$(B)/obj/%.o: csrc/%.c $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BIND_OBJ): csrc/lua/lvmtrace.c $(BIND_PARTS) $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/obj/lua/l_otlp_http.o: csrc/lua/l_otlp_http.c csrc/lua/l_check.c $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(OTLP_CFLAGS) -c $< -o $@

$(B)/obj/otlp_http/exporter.o: csrc/otlp_http/exporter.c $(HDRS) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(OTLP_CFLAGS) -c $< -o $@

# vmtrace.core links Lua's C API (from the interpreter), cJSON, libuuid, libm
$(MODULE): $(CORE_OBJ) $(BIND_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) -o $@ $^ $(CORE_LIBS)

# vmtrace.otlp_http, loaded on the first vmtrace.otlp.start
$(OTLP_MODULE): $(OTLP_OBJ) Makefile
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) -Wl,-z,nodelete -o $@ $(OTLP_OBJ) $(OTLP_LIBS) $(CORE_LIBS) # never unloaded: a replaced exporter's thread may still run
	@! nm -u $@ | grep -w 'vt_[a-z_]*' || { echo "$@ needs the symbols above: they are hidden in core.so" >&2; rm -f $@; exit 1; }

$(LIB): $(CORE_OBJ) $(BIND_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/test_core: tests/c/test_core.c tests/c/tap.h tests/c/snapshot.h $(CORE_OBJ)
	$(CC) $(WARN) $(CFLAGS) $(TEST_OPT) -D_POSIX_C_SOURCE=200809L -Icsrc $(CORE_CFLAGS) \
	  -pthread -o $@ tests/c/test_core.c $(CORE_OBJ) $(CORE_LIBS)

$(B)/test_clock: tests/c/test_clock.c tests/c/tap.h $(CORE_OBJ)
	$(CC) $(WARN) $(CFLAGS) $(TEST_OPT) -D_POSIX_C_SOURCE=200809L -Icsrc $(CORE_CFLAGS) \
	  -pthread -o $@ tests/c/test_clock.c $(CORE_OBJ) $(CORE_LIBS)

$(B)/test_oom: tests/c/test_oom.c tests/c/tap.h $(CORE_OBJ)
	$(CC) $(WARN) $(CFLAGS) $(TEST_OPT) -D_POSIX_C_SOURCE=200809L -Icsrc $(CORE_CFLAGS) \
	  -o $@ tests/c/test_oom.c $(CORE_OBJ) $(CORE_LIBS)

$(B)/test_states: tests/c/test_states.c tests/c/tap.h $(LIB)
	$(CC) $(WARN) $(CFLAGS) $(TEST_OPT) -D_POSIX_C_SOURCE=200809L -Icsrc -I$(LUA_INCDIR) \
	  $(CORE_CFLAGS) -o $@ tests/c/test_states.c $(LIB) $(LUA_LIBS) $(CORE_LIBS)

# the README's C host example, built as a user would
$(B)/host_example: examples/host.c $(LIB)
	$(CC) -std=c99 -Wall -Wextra $(CFLAGS) -Icsrc -I$(LUA_INCDIR) -o $@ examples/host.c $(LIB) \
	  $(LUA_LIBS) $(CORE_LIBS)

# a host that gives scripts fork() (spec/16)
$(B)/fork_host: tests/c/fork_host.c $(LIB)
	$(CC) -std=c99 -Wall -Wextra $(CFLAGS) -D_POSIX_C_SOURCE=200809L -Icsrc -I$(LUA_INCDIR) -o $@ \
	  tests/c/fork_host.c $(LIB) $(LUA_LIBS) $(CORE_LIBS) -Wl,-E

# the fuzz harnesses, replaying their regression inputs and seed corpora
$(B)/replay_%: tests/fuzz/replay.c tests/fuzz/fuzz_%.c tests/fuzz/fuzz_check.h $(CORE_OBJ)
	$(CC) $(WARN) $(CFLAGS) $(TEST_OPT) -D_POSIX_C_SOURCE=200809L -Icsrc $(CORE_CFLAGS) \
	  -o $@ tests/fuzz/replay.c tests/fuzz/fuzz_$*.c $(CORE_OBJ) $(CORE_LIBS)
# fuzz_reader.c shares test_core's collector snapshot
$(B)/replay_reader: tests/c/snapshot.h

build/benchfloor.so: bench/floor.c
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared -I$(LUA_INCDIR) -o $@ $<

# docs/report.png, the README's picture of the report: the demo's trace in
# headless Chromium (needs chromium and tests/browser's npm packages).
screenshot: all
	@mkdir -p out docs
	$(RUN_ENV) $(LUA) examples/agent.lua >/dev/null
	node tests/browser/screenshot.js out/report.html -o docs/report.png

# The HTML report's page, embedded in the core: regenerate after editing
# report/ (tests/browser/template.sh checks the committed header is current).
report-template:
	node tools/report.js --template -o build/report-template.html
	$(LUA) tools/embed_template.lua build/report-template.html csrc/export/report_template.h

deps:
	@tools/deps.sh

check-tests: all $(C_TESTS)

# The OpenTelemetry protobuf definitions tests/otlp/verify.js decodes OTLP with,
# and the browser tests' pinned packages (tests/browser/package.json), in one
# npm install (make test runs it while the C code compiles).
npm-packages: build/npm/node_modules/@opentelemetry/otlp-transformer
build/npm/node_modules/@opentelemetry/otlp-transformer:
	npm install --prefix build/npm --no-audit --no-fund @opentelemetry/otlp-transformer@0.52.1 \
	  $$(node -e 'const d=require("./tests/browser/package.json").dependencies; console.log(Object.keys(d).map(k=>k+"@"+d[k]).join(" "))')

# builds and installs the npm packages at once (tools/runtests.sh plain)
test: deps
	@tools/runtests.sh plain

# The whole suite again: built with ASan+UBSan, under valgrind memcheck, and
# under an aggressive garbage collector. .ci/run runs all three after test.
# Some specs take programs of the plain build in every mode (the README's
# blocks run bin/vmtrace and compile C against build/libvmtrace.a as a user
# would; a child copies build/vmtrace/core.so): make asan builds it too.
asan: deps
	@$(MAKE) --no-print-directory -j4 check-tests
	@$(MAKE) --no-print-directory -j4 B=build/asan CFLAGS="$(SAN_FLAGS)" check-tests npm-packages
	@tools/runtests.sh asan

valgrind: deps
	@$(MAKE) --no-print-directory -j4 check-tests npm-packages
	@tools/runtests.sh valgrind

gc-stress: deps
	@$(MAKE) --no-print-directory -j4 check-tests npm-packages
	@tools/runtests.sh gc

# libFuzzer harnesses (clang): each runs FUZZ_SECONDS on its corpus.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
fuzz: deps
	@mkdir -p build/fuzz
	@for h in ops reader traceparent; do \
	  clang $(FUZZ_FLAGS) -D_POSIX_C_SOURCE=200809L -Icsrc $(CORE_CFLAGS) tests/fuzz/fuzz_$$h.c \
	    $(CORE_SRC) $(CORE_LIBS) -o build/fuzz/fuzz_$$h || exit 1; \
	  mkdir -p build/fuzz/corpus_$$h; \
	  echo "fuzz_$$h: $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$h build/fuzz/corpus_$$h tests/fuzz/corpus/$$h \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	    2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash-' ; \
	done

bench: deps
	@$(MAKE) --no-print-directory all build/benchfloor.so
	$(RUN_ENV) $(LUA) bench/bench.lua
	@echo "== the same figures on the module luarocks installs (a clean copy, into build/rocktree)"
	@rm -rf build/rocktree && tools/install_rock.sh $(CURDIR)/build/rocktree >build/rocktree.log 2>&1 \
	  || { tail -n 20 build/rocktree.log; exit 1; }
	@eval "$$(luarocks --lua-version=5.4 --tree=$(CURDIR)/build/rocktree path)" && \
	  VMTRACE_BENCH_INSTALLED=1 $(LUA) bench/bench.lua --quick
	$(RUN_ENV) $(LUA) bench/auto.lua
	@if [ -x /usr/bin/chromium ] && [ -d build/npm/node_modules/puppeteer-core ]; then \
	  echo "== the HTML report in headless Chromium (tests/browser/ready_bench.js, vmtrace's writer)"; \
	  node tests/browser/ready_bench.js --writer 'bin/vmtrace report {in} -o {out}'; \
	else echo "(the HTML report's ready time needs chromium: run make test as root once)"; fi

demo: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p out
	$(RUN_ENV) $(LUA) examples/agent.lua
	@echo "open out/report.html in a browser to look at the trace"
	@echo
	@echo "examples/auto.lua, an untouched script, under vmtrace run --calls (out/auto.html):"
	$(RUN_ENV) $(LUA) bin/vmtrace run --calls --summary -o out/auto.html examples/auto.lua

install: install-rock
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 bin/vmtrace $(DESTDIR)$(BINDIR)/vmtrace

# What luarocks installs through this Makefile (it installs bin/vmtrace itself).
install-rock: $(MODULE) $(OTLP_MODULE)
	install -d $(DESTDIR)$(LIBDIR)/vmtrace $(DESTDIR)$(LUADIR)/vmtrace
	install -m 755 $(MODULE) $(DESTDIR)$(LIBDIR)/vmtrace/core.so
	install -m 755 $(OTLP_MODULE) $(DESTDIR)$(LIBDIR)/vmtrace/otlp_http.so
	install -m 644 lua/vmtrace/*.lua $(DESTDIR)$(LUADIR)/vmtrace/

clean:
	rm -rf build out

# a variable's value, as the Makefile sees it (tools/install_rock.sh)
print-%:
	@echo '$($*)'
