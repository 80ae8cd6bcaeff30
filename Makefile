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
                libedit-dev pkg-config libfreetype-dev fonts-dejavu-core gcc make

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
# -fopenmp-simd: `#pragma omp simd` marks reductions the compiler may vectorize
# (no OpenMP runtime is linked).
CFLAGS_BASE := -std=c11 $(OPT) -g -fPIC -fno-math-errno -fopenmp-simd -D_GNU_SOURCE $(WARN) -Iengine -Iplots $(PKG_CFLAGS)
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

.PHONY: all deps test demo bench install uninstall clean help check-deps

all: $(PROGRAM) $(CORE_SO) $(LUA_OUT) $(LIB_A) $(LIB_SO)

help:
	@echo "make deps      install missing Debian packages (apt-get)"
	@echo "make           build build/gradlab, build/lua/gradlab/, build/libgradlab.*"
	@echo "make test      deps + build + every Busted spec; last line 'N passed, N failed'"
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
