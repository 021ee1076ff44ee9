# heapgate: `make` builds the shim and the CLI; `make test` builds and runs every test.
PREFIX ?= /usr/local
BUILD := build
SWIFT_CONFIG ?= release
SWIFT_BUILD_FLAGS ?=

CC ?= cc
# -flto: what runs once per event is inlined across files (HG_INLINED_ACROSS_FILES): into the
# entry points, the look-up of a stack seen before and the ring push (5.9 % fewer instructions
# on the Rust benchmark's program thread, 6 % less wall time); into the drain's loop, the live
# set (12 % fewer of its instructions on the 8-thread churn). docs/architecture.md, "Entry
# points" and "The drain thread". The functions whose frames the unwinder counts (hg_record,
# hg_stacks_capture, hg_unwind_backtrace) are HG_NOINLINE, with or without it. A compiler or
# linker without LTO support builds the same shim, only slower, with `make SHIM_LTO=`.
SHIM_LTO ?= -flto=auto
SHIM_CFLAGS := -std=c11 -O2 $(SHIM_LTO) -g -fPIC -fvisibility=hidden -fno-optimize-sibling-calls \
               -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -pthread -ICShim/include -ICShim
SHIM_LDFLAGS := -shared -pthread -Wl,--no-undefined -Wl,-z,nodelete
SHIM_LIBS := -lunwind -ldl
SHIM_SOURCES := $(wildcard CShim/*.c)
SHIM_HEADERS := $(wildcard CShim/*.h CShim/include/*.h)
SHIM := $(BUILD)/lib/libheapgate.so
# What `heapgate run` puts in LD_PRELOAD: PRELOAD/$LIB/libheapgate.so. glibc expands $LIB and
# finds a link to the shim; musl opens "$LIB" literally and finds a stub that does nothing
# (CShim/stub/heapgate_preload_stub.c), where the shim would stop it from starting.
PRELOAD := $(BUILD)/lib/heapgate-preload
PRELOAD_STUB_SOURCE := CShim/stub/heapgate_preload_stub.c
CLI := $(BUILD)/bin/heapgate
SWIFT_SOURCES := $(shell find Sources -name '*.swift' -o -name '*.h' -o -name '*.modulemap') Package.swift

.PHONY: all deps shim preload cli fixtures test install example bench clean

all: shim preload cli

# Installs missing Debian packages (apt-get); a no-op when everything is there.
deps:
	scripts/install-deps.sh build

shim: $(SHIM)

# The list of the shim's files, rewritten only when it changes: a file removed from CShim/
# leaves the others older than the shim, which then was not rebuilt without it.
SHIM_FILE_LIST := $(BUILD)/shim-files.txt
$(SHIM_FILE_LIST): FORCE
	@mkdir -p $(dir $@)
	@echo '$(SHIM_SOURCES) $(SHIM_HEADERS)' | cmp -s - $@ || echo '$(SHIM_SOURCES) $(SHIM_HEADERS)' > $@

# Linked beside it and renamed over it: a program that starts while the shim is rebuilt loads
# the old file or the new one, never one half written.
$(SHIM): $(SHIM_SOURCES) $(SHIM_HEADERS) $(SHIM_FILE_LIST) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) $(SHIM_LDFLAGS) -o $@.tmp $(SHIM_SOURCES) $(SHIM_LIBS)
	mv -f $@.tmp $@

FORCE:

# The link for each expansion of $LIB that glibc builds use for x86-64 (Debian and Ubuntu,
# Fedora and SUSE, Arch), and the stub under the literal name.
preload: $(PRELOAD)/.made

$(PRELOAD)/.made: $(SHIM) $(PRELOAD_STUB_SOURCE) Makefile
	@rm -rf $(PRELOAD) && mkdir -p '$(PRELOAD)/$$LIB' $(PRELOAD)/lib/x86_64-linux-gnu $(PRELOAD)/lib64
	$(CC) -shared -nostdlib -fPIC -o '$(PRELOAD)/$$LIB/libheapgate.so' $(PRELOAD_STUB_SOURCE)
	ln -s ../../../libheapgate.so $(PRELOAD)/lib/x86_64-linux-gnu/libheapgate.so
	ln -s ../../libheapgate.so $(PRELOAD)/lib64/libheapgate.so
	ln -s ../../libheapgate.so $(PRELOAD)/lib/libheapgate.so
	@# A 32-bit program's loader expands $$LIB to lib32 (Debian's libc6-i386) or
	@# lib/i386-linux-gnu (multiarch): a 32-bit stub there keeps it from printing that it
	@# cannot load the 64-bit shim. Skipped where the compiler has no -m32.
	@if $(CC) -m32 -shared -nostdlib -fPIC -o $(PRELOAD)/stub32.so $(PRELOAD_STUB_SOURCE) 2>/dev/null; then \
	    mkdir -p $(PRELOAD)/lib32 $(PRELOAD)/lib/i386-linux-gnu; \
	    cp $(PRELOAD)/stub32.so $(PRELOAD)/lib32/libheapgate.so; \
	    mv $(PRELOAD)/stub32.so $(PRELOAD)/lib/i386-linux-gnu/libheapgate.so; \
	fi
	@touch $@

cli: $(CLI)

# The Swift runtime and FoundationEssentials are linked in statically: the CLI then starts in
# 3.3 ms instead of 8 ms (most of that was the dynamic loader relocating Foundation and ICU), which
# every `heapgate run` pays, and runs on machines without the Swift toolchain.
$(CLI): $(SWIFT_SOURCES)
	swift build -c $(SWIFT_CONFIG) --product heapgate --static-swift-stdlib $(SWIFT_BUILD_FLAGS)
	@mkdir -p $(dir $@)
	cp "$$(swift build -c $(SWIFT_CONFIG) --show-bin-path)/heapgate" $@.tmp && mv -f $@.tmp $@

fixtures: $(SHIM)
	scripts/build-fixtures.sh $(BUILD)/fixtures

test:
	scripts/install-deps.sh test
	$(MAKE) all fixtures
	HEAPGATE_BUILD=$(abspath $(BUILD)) swift test $(SWIFT_BUILD_FLAGS)

example:
	scripts/install-deps.sh build
	$(MAKE) -s all
	$(MAKE) -s -C examples BUILD=$(abspath $(BUILD))
	$(CLI) run -- $(BUILD)/examples/leaky

bench:
	scripts/install-deps.sh bench
	$(MAKE) all fixtures
	scripts/bench.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/heapgate
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/heapgate
	install -m 755 $(SHIM) $(DESTDIR)$(PREFIX)/lib/heapgate/libheapgate.so
	rm -rf $(DESTDIR)$(PREFIX)/lib/heapgate/heapgate-preload
	cp -a $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/heapgate/heapgate-preload
	rm -f $(DESTDIR)$(PREFIX)/lib/heapgate/heapgate-preload/.made

clean:
	rm -rf $(BUILD) .build
