# gradlab — build, test, demo, bench, install.
# Everything is built out of tree into build/.  `make help` lists the targets.

PREFIX      ?= /usr/local
BUILD       ?= build
CC          ?= cc
PKG_CONFIG  ?= pkg-config
LUA         ?= lua5.4
PYTHON      ?= /usr/bin/python3

# Debian packages the build, the tests and the demo need.
DEB_PACKAGES := lua5.4 liblua5.4-dev libopenblas-dev libpng-dev lua-busted python3-numpy \
                libedit-dev pkg-config libfreetype-dev fonts-dejavu-core gcc make \
                valgrind clang libclang-rt-14-dev

PKGS        := lua5.4 openblas
PKG_CFLAGS   = $(shell $(PKG_CONFIG) --cflags $(PKGS) libedit libpng freetype2 2>/dev/null)
PKG_LIBS_LUA = $(shell $(PKG_CONFIG) --libs lua5.4 2>/dev/null)
PKG_LIBS_BLAS= $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null)
PKG_LIBS_EDIT= $(shell $(PKG_CONFIG) --libs libedit 2>/dev/null)
PKG_LIBS_PLOT= $(shell $(PKG_CONFIG) --libs libpng freetype2 2>/dev/null)

OPT         ?= -O3
WARN        := -Wall -Wextra -Wno-unused-parameter
# -fno-math-errno: the engine never reads errno after math calls, and without
# it GCC cannot vectorize loops calling sqrtf and friends.
# -fno-trapping-math: nothing reads the floating-point exception flags, and
# without it GCC will not turn `c ? a : b * a` into a vector blend.
# -fopenmp-simd: `#pragma omp simd` marks reductions the compiler may vectorize
# (no OpenMP runtime is linked).
# -mprefer-vector-width=512 (x86-64): the AVX-512 copies of the kernels
# (target_clones) use whole 16-float registers; GCC's generic tuning stops at
# 256 bits.  Baseline and AVX2 code is unchanged.  tanh on 2048 floats: 4.6 ->
# 3.0 us here.
VECTOR_WIDTH := $(if $(filter x86_64,$(shell uname -m)),-mprefer-vector-width=512)
CFLAGS_BASE := -std=c11 $(OPT) -g -fPIC -fno-math-errno -fno-trapping-math -fopenmp-simd $(VECTOR_WIDTH) -D_GNU_SOURCE $(WARN) -Iengine -Iplots $(PKG_CFLAGS)
SANITIZE    ?=
CFLAGS_ALL   = $(CFLAGS_BASE) $(SANITIZE) $(EXTRA_CFLAGS)
LDFLAGS_ALL  = $(SANITIZE) $(EXTRA_LDFLAGS)

ENGINE_SRC  := $(wildcard engine/*.c)
PLOTS_SRC   := $(wildcard plots/*.c)
BIND_SRC    := $(wildcard bindings/*.c)
PROG_SRC    := $(wildcard bindings/program/*.c)
LUA_SRC     := $(wildcard bindings/gradlab/*.lua)

ENGINE_OBJ  := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
PLOTS_OBJ   := $(PLOTS_SRC:%.c=$(BUILD)/obj/%.o)
BIND_OBJ    := $(BIND_SRC:%.c=$(BUILD)/obj/%.o)
PROG_OBJ    := $(PROG_SRC:%.c=$(BUILD)/obj/%.o)
LUA_OUT     := $(LUA_SRC:bindings/%=$(BUILD)/lua/%)

CORE_SO     := $(BUILD)/lua/gradlab/core.so
PROGRAM     := $(BUILD)/gradlab
LIB_A       := $(BUILD)/libgradlab.a
LIB_SO      := $(BUILD)/libgradlab.so

.PHONY: all deps test check fuzz fuzz-targets demo bench install uninstall clean help check-deps

all: $(PROGRAM) $(CORE_SO) $(LUA_OUT) $(LIB_A) $(LIB_SO)

help:
	@echo "make deps      install missing Debian packages (apt-get)"
	@echo "make           build build/gradlab, build/lua/gradlab/, build/libgradlab.*"
	@echo "make test      deps + build + every Busted spec; last line 'N passed, N failed'"
	@echo "make check     specs under AddressSanitizer+UBSan (build-check/), valgrind leak run"
	@echo "make fuzz      libFuzzer targets of every parser, FUZZ_SECONDS each (build-fuzz/)"
	@echo "make demo      deps + build + the flagship experiment (PNGs in out/)"
	@echo "make bench     benchmarks against raw BLAS (and PyTorch where installed)"
	@echo "make install   PREFIX=/usr/local"
	@echo "make clean"

# Installs only what is missing, so it is quick when everything is there.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all present"; fi

$(BUILD)/obj/%.o: %.c engine/gradlab.h $(wildcard engine/*.h) $(wildcard bindings/*.h) $(wildcard bindings/program/*.h) $(wildcard plots/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ibindings -c $< -o $@

$(LIB_A): $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(ENGINE_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(PKG_LIBS_BLAS) -lm

$(CORE_SO): $(BIND_OBJ) $(PLOTS_OBJ) $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(PKG_LIBS_PLOT) $(PKG_LIBS_BLAS) -lm

$(PROGRAM): $(PROG_OBJ) $(BIND_OBJ) $(PLOTS_OBJ) $(ENGINE_OBJ)
	$(CC) -o $@ $^ $(LDFLAGS_ALL) -Wl,-E $(PKG_LIBS_LUA) $(PKG_LIBS_EDIT) $(PKG_LIBS_PLOT) $(PKG_LIBS_BLAS) -lm

$(BUILD)/lua/gradlab/%.lua: bindings/gradlab/%.lua
	@mkdir -p $(dir $@)
	cp $< $@

# ------------------------------------------------------------------ tests
# Specs run under stock lua5.4 against build/lua, as a user's script would.
export LUA_PATH  := $(CURDIR)/$(BUILD)/lua/?.lua;$(CURDIR)/$(BUILD)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/lua/?.so;;
export GRADLAB_PROGRAM := $(CURDIR)/$(PROGRAM)
export GRADLAB_PYTHON := $(PYTHON)

test: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(BUILD)
	@$(LUA) /usr/bin/busted --output=TAP spec > $(BUILD)/test.tap 2>&1; \
	    status=$$?; \
	    grep -E '^not ok' -A 12 $(BUILD)/test.tap | grep -v '^ok ' ; \
	    passed=$$(grep -cE '^ok ' $(BUILD)/test.tap); \
	    failed=$$(grep -cE '^not ok ' $(BUILD)/test.tap); \
	    if [ "$$passed" = 0 ] && [ "$$failed" = 0 ]; then cat $(BUILD)/test.tap; failed=1; fi; \
	    echo "$$passed passed, $$failed failed"; \
	    [ "$$failed" = 0 ] && [ "$$status" = 0 ]

# The flagship experiment: figures and CSVs in out/vanishing/.
demo: deps
	@$(MAKE) --no-print-directory all
	$(PROGRAM) scripts/vanishing.lua --out out/vanishing

# PyTorch (Debian's python3-torch) is a benchmark-only dependency: installed here,
# never needed by the tests.
bench: deps
	@dpkg-query -W -f='$${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" || { \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    echo "installing python3-torch for the comparison"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends python3-torch; }
	@$(MAKE) --no-print-directory $(PROGRAM) $(CORE_SO) $(LUA_OUT) $(LIB_A)
	@$(MAKE) --no-print-directory -C bench BUILD=$(CURDIR)/$(BUILD)

# ------------------------------------------------------------- make check
# The engine, bindings and program built with AddressSanitizer and UBSan into
# $(CHECK_BUILD), then every spec run against that build.  The specs run under
# stock lua5.4, which is not instrumented and loads core.so with dlopen, so the
# sanitizer runtimes are preloaded (ASan must come first in the library list);
# children (the sanitized gradlab program, python, sh) inherit the preload,
# which is harmless.  detect_leaks=0: Lua itself is not instrumented and exits
# without freeing its state, so LeakSanitizer would report the interpreter,
# not us; leaks are checked by valgrind on a training script instead (below,
# with the normal build: valgrind cannot run ASan binaries).  allocator may
# return NULL: specs ask for tensors larger than memory on purpose.
# Last line: "check: N passed, N failed" (the specs plus the valgrind run).
CHECK_BUILD    ?= build-check
CHECK_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CHECK_JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CHECK_LPATH     = $(CURDIR)/$(CHECK_BUILD)/lua/?.lua;$(CURDIR)/$(CHECK_BUILD)/lua/?/init.lua;$(CURDIR)/spec/?.lua
CHECK_CPATH     = $(CURDIR)/$(CHECK_BUILD)/lua/?.so
CHECK_ENV       = LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
                  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
                  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                  LUA_PATH="$(CHECK_LPATH);;" LUA_CPATH="$(CHECK_CPATH);;" \
                  GRADLAB_PROGRAM="$(CURDIR)/$(CHECK_BUILD)/gradlab" GRADLAB_SANITIZED=1
# valgrind: OpenBLAS would pick AVX-512 kernels, which valgrind cannot decode.
VALGRIND        = OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 valgrind --leak-check=full \
                  --errors-for-leak-kinds=definite --error-exitcode=99

check: deps
	@mkdir -p $(CHECK_BUILD) && $(MAKE) --no-print-directory all && \
	    $(MAKE) --no-print-directory -j$(CHECK_JOBS) all BUILD=$(CHECK_BUILD) OPT=-O1 \
	        SANITIZE="$(CHECK_SANITIZE)" > $(CHECK_BUILD)/build.log 2>&1 \
	    || { tail -40 $(CHECK_BUILD)/build.log; echo "check: 0 passed, 1 failed"; exit 1; }
	@$(CHECK_ENV) $(LUA) /usr/bin/busted --lpath="$(CHECK_LPATH)" --cpath="$(CHECK_CPATH)" \
	        --output=TAP spec > $(CHECK_BUILD)/check.tap 2>&1; \
	    status=$$?; \
	    grep -E '^not ok' -A 12 $(CHECK_BUILD)/check.tap | grep -v '^ok ' ; \
	    grep -E -A 30 'ERROR: AddressSanitizer|runtime error:' $(CHECK_BUILD)/check.tap | head -80; \
	    passed=$$(grep -cE '^ok ' $(CHECK_BUILD)/check.tap); \
	    failed=$$(grep -cE '^not ok ' $(CHECK_BUILD)/check.tap); \
	    if [ "$$status" != 0 ] && [ "$$failed" = 0 ]; then tail -30 $(CHECK_BUILD)/check.tap; failed=1; fi; \
	    echo "sanitized specs: $$passed ok, $$failed not ok (exit $$status)"; \
	    $(VALGRIND) $(PROGRAM) spec/robust/train_small.lua > $(CHECK_BUILD)/valgrind.log 2>&1; \
	    vstatus=$$?; \
	    grep -E 'definitely lost|ERROR SUMMARY|no leaks are possible' $(CHECK_BUILD)/valgrind.log; \
	    if [ "$$vstatus" = 0 ] && grep -qE 'definitely lost: 0 bytes|no leaks are possible' $(CHECK_BUILD)/valgrind.log; \
	    then passed=$$((passed + 1)); \
	    else failed=$$((failed + 1)); tail -60 $(CHECK_BUILD)/valgrind.log; fi; \
	    echo "check: $$passed passed, $$failed failed"; \
	    [ "$$failed" = 0 ]

# ------------------------------------------------------------------ fuzzing
# libFuzzer targets (spec/fuzz/fuzz_*.c) for every parser, built with Debian's
# clang against the engine compiled with ASan+UBSan into $(FUZZ_BUILD).  Each
# runs FUZZ_SECONDS from the seeds in spec/fuzz/corpus/<target>/ (read only;
# new inputs go to $(FUZZ_BUILD)/corpus/<target>/).  A crash leaves its input
# as $(FUZZ_BUILD)/crash-<target>-*: fix the bug, then copy the file into
# spec/fuzz/corpus/<target>/ so every later run replays it.
FUZZ_BUILD     ?= build-fuzz
FUZZ_SECONDS   ?= 60
FUZZ_CC        ?= clang
FUZZ_TARGETS   := npy npz csv monitor_csv
FUZZ_SANITIZE  := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                  -fno-sanitize-recover=undefined
FUZZ_BIN       := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: deps
	@mkdir -p $(FUZZ_BUILD) && $(MAKE) --no-print-directory -j$(CHECK_JOBS) BUILD=$(FUZZ_BUILD) \
	    CC=$(FUZZ_CC) OPT=-O1 SANITIZE="$(FUZZ_SANITIZE)" fuzz-targets > $(FUZZ_BUILD)/build.log 2>&1 \
	    || { tail -40 $(FUZZ_BUILD)/build.log; echo "fuzz: the targets did not build"; exit 1; }
	@runs=0; crashes=0; \
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    dict=""; [ -f spec/fuzz/$$t.dict ] && dict="-dict=spec/fuzz/$$t.dict"; \
	    ASAN_OPTIONS=allocator_may_return_null=1 \
	    $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
	        -print_final_stats=1 $$dict -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
	        $(FUZZ_BUILD)/corpus/$$t spec/fuzz/corpus/$$t > $(FUZZ_BUILD)/fuzz-$$t.log 2>&1; \
	    status=$$?; \
	    n=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/fuzz-$$t.log | tail -1); \
	    n=$${n:-0}; runs=$$((runs + n)); \
	    if [ "$$status" = 0 ]; then \
	        echo "fuzz $$t: $$n inputs in $(FUZZ_SECONDS) s, no crash"; \
	    else \
	        crashes=$$((crashes + 1)); \
	        echo "fuzz $$t: FAILED after $$n inputs (exit $$status):"; \
	        grep -E -A 40 '==ERROR|runtime error|contract broken|fuzz_monitor_csv:|deadly signal|Test unit written' \
	            $(FUZZ_BUILD)/fuzz-$$t.log | head -60; \
	    fi; \
	done; \
	echo "fuzz: $(words $(FUZZ_TARGETS)) targets, $$runs inputs, $$crashes crashed"; \
	[ "$$crashes" = 0 ]

# Reached through the sub-make above, where BUILD=$(FUZZ_BUILD) and CC=clang.
fuzz-targets: $(FUZZ_BIN) $(LUA_OUT)

$(BUILD)/fuzz/fuzz_%: spec/fuzz/fuzz_%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer $< $(LIB_A) -o $@ $(LDFLAGS_ALL) -fsanitize=fuzzer \
	    $(PKG_LIBS_BLAS) -lm

# The monitor CSV target embeds Lua with the whole core, as the program does.
$(BUILD)/fuzz/fuzz_monitor_csv: spec/fuzz/fuzz_monitor_csv.c $(BIND_OBJ) $(PLOTS_OBJ) $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ibindings -fsanitize=fuzzer -DGRADLAB_LUA_DIR='"$(CURDIR)/$(BUILD)/lua"' \
	    $< $(BIND_OBJ) $(PLOTS_OBJ) $(ENGINE_OBJ) -o $@ $(LDFLAGS_ALL) -fsanitize=fuzzer \
	    $(PKG_LIBS_LUA) $(PKG_LIBS_PLOT) $(PKG_LIBS_BLAS) -lm

# --------------------------------------------------------------- install
LUA_CMOD_DIR := $(PREFIX)/lib/lua/5.4/gradlab
LUA_LMOD_DIR := $(PREFIX)/share/lua/5.4/gradlab

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LUA_CMOD_DIR) $(DESTDIR)$(LUA_LMOD_DIR) \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(PROGRAM) $(DESTDIR)$(PREFIX)/bin/gradlab
	install -m 755 $(CORE_SO) $(DESTDIR)$(LUA_CMOD_DIR)/core.so
	install -m 644 $(LUA_OUT) $(DESTDIR)$(LUA_LMOD_DIR)/
	install -m 644 engine/gradlab.h $(DESTDIR)$(PREFIX)/include/gradlab.h
	install -m 644 $(LIB_A) $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' gradlab.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradlab.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/gradlab $(DESTDIR)$(LUA_CMOD_DIR) $(DESTDIR)$(LUA_LMOD_DIR) \
	    $(DESTDIR)$(PREFIX)/include/gradlab.h $(DESTDIR)$(PREFIX)/lib/libgradlab.* \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradlab.pc

clean:
	rm -rf $(BUILD) out
