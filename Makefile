# sandlock-runc — plain GNU make. `make help` lists the targets.
CXX      ?= g++
CC       ?= gcc
PREFIX   ?= /usr/local
SYSCONFDIR ?= /etc
# check, demo and bench build on every core (CI and README call them without -j).
NPROC    := $(shell nproc 2>/dev/null || echo 2)
BUILD    ?= build
# -g1 (line tables: backtraces name function, file and line) rather than -g: a fifth to a
# third less CPU for the json-heavy files. `make CXXFLAGS='-O2 -g'` for a debugger's locals.
CXXFLAGS ?= -O2 -g1
CFLAGS   ?= -O2 -g
WARN      = -Wall -Wextra -Werror
# Function and data sections let the static link drop what no caller uses (a fifth of
# the text): fewer pages for every runtime and shim process to map.
override CXXFLAGS += -std=c++20 $(WARN) -I. -MMD -MP -D_GNU_SOURCE -ffunction-sections -fdata-sections
override CFLAGS   += -std=gnu11 $(WARN) -MMD -MP
LDLIBS    = -lseccomp -lcap -lyaml-cpp -lbpf -lelf -lz -lresolv -lpthread
SANITIZE  = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Every .cpp under these folders is part of the runtime library; main.cpp is the program.
LIB_DIRS  = spec runtime hooks
# The egress filter's programs are generated at build time by a program that links the
# library (filter.hpp): their data (filter_program.cpp) is linked into the programs, not
# the library.
FILTER_SRC = runtime/egress/filter_program.cpp runtime/egress/filter_gen_main.cpp
LIB_SRC   = $(filter-out runtime/main.cpp runtime/shim_main.cpp runtime/systemd_main.cpp $(FILTER_SRC),$(shell find $(LIB_DIRS) -name '*.cpp' | sort))
HELPER_SRC = $(sort $(wildcard integration/helpers/*.c))

define objs
$(patsubst %.cpp,$(1)/obj/%.o,$(2))
endef

LIB_OBJ   = $(call objs,$(BUILD),$(LIB_SRC))
PROG_OBJ  = $(call objs,$(BUILD),runtime/main.cpp runtime/shim_main.cpp runtime/systemd_main.cpp $(FILTER_SRC))
FILTER_OBJ = $(BUILD)/obj/runtime/egress/filter_program.o
ASAN_FILTER_OBJ = $(ASAN)/obj/runtime/egress/filter_program.o
# The test files are compiled together, TEST_UNITS translation units of them (one per
# core): tests/unity.sh writes each unit's list of includes under $(BUILD)/gen/tests/.
# 30 files each paid the precompiled header's load and compiled the same templates again.
TEST_UNITS ?= $(NPROC)
UNITY_SRC = $(foreach k,$(shell seq 1 $(TEST_UNITS)),$(BUILD)/gen/tests/unit_$(k).cpp)
UNITY_OBJ = $(patsubst $(BUILD)/gen/tests/%.cpp,$(BUILD)/obj/tests-unity/%.o,$(UNITY_SRC))
TEST_OBJ  = $(call objs,$(BUILD),tests/main.cpp) $(UNITY_OBJ)
HELPERS   = $(patsubst integration/helpers/%.c,$(BUILD)/helpers/%,$(HELPER_SRC))
ASAN      = $(BUILD)/asan
ASAN_LIB_OBJ  = $(call objs,$(ASAN),$(LIB_SRC))
ASAN_UNITY_OBJ = $(patsubst $(BUILD)/gen/tests/%.cpp,$(ASAN)/obj/tests-unity/%.o,$(UNITY_SRC))
ASAN_TEST_OBJ = $(call objs,$(ASAN),tests/main.cpp) $(ASAN_UNITY_OBJ)

.PHONY: all help deps check unit unit-unprivileged integration asan install demo bench clean rootfs FORCE

# The commit `--version` names: `git describe --always --dirty` when this directory is
# the top of a git checkout (never an enclosing repository's), "unknown" for a tarball.
# The header is rewritten only when that text changes: a new commit (or a tree turning
# dirty) recompiles runtime/cli/cli.cpp alone, an unchanged tree nothing.
GIT_DESCRIBE := $(shell [ "$$(git -C . rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
	git describe --always --dirty 2>/dev/null || echo unknown)
VERSION_DIR = $(BUILD)/gen
VERSION_H = $(VERSION_DIR)/sandlock_version.h

$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@line='#define SANDLOCK_COMMIT "$(GIT_DESCRIBE)"'; \
	if [ ! -f $@ ] || [ "$$(cat $@)" != "$$line" ]; then echo "$$line" >$@; echo "$@: $(GIT_DESCRIBE)"; fi

$(BUILD)/obj/runtime/cli/cli.o $(ASAN)/obj/runtime/cli/cli.o: $(VERSION_H)
$(BUILD)/obj/runtime/cli/cli.o $(ASAN)/obj/runtime/cli/cli.o: override CXXFLAGS += -I$(VERSION_DIR)

# The egress programs (runtime/egress/bpf/egress.bpf.c): restricted C compiled for the BPF
# target, stripped of DWARF (libbpf needs only the BTF), and embedded in the runtime as a
# libbpf skeleton header that runtime/egress/kernel_layer.cpp includes. The BTF's line
# info names the source file: relative to the checkout (-fdebug-prefix-map), so that the
# same source gives the same object, and the same pinned set, wherever it is built (each
# clone pinned a set of its own: five 1 MiB tables of kernel memory a set).
BPF_CLANG ?= clang
BPF_OBJ   = $(VERSION_DIR)/egress.bpf.o
BPF_SKEL  = $(VERSION_DIR)/egress.skel.h
MULTIARCH := $(shell $(CC) -dumpmachine 2>/dev/null)

$(BPF_OBJ): runtime/egress/bpf/egress.bpf.c runtime/egress/bpf/egress_maps.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) -g -O2 -Wall -Werror -target bpf -fdebug-prefix-map=$(CURDIR)=. -I/usr/include/$(MULTIARCH) -c $< -o $@
	llvm-strip -g $@

$(BPF_SKEL): $(BPF_OBJ)
	bpftool gen skeleton $< name egress_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/runtime/egress/kernel_layer.o $(ASAN)/obj/runtime/egress/kernel_layer.o: $(BPF_SKEL)
$(BUILD)/obj/runtime/egress/kernel_layer.o $(ASAN)/obj/runtime/egress/kernel_layer.o: override CXXFLAGS += -I$(VERSION_DIR)

# The egress seccomp filter (runtime/egress/filter.hpp): policy-independent, so libseccomp
# builds it here once rather than in every create. The include is rewritten only when the
# programs change.
FILTER_INC = $(VERSION_DIR)/egress_filter.inc

$(BUILD)/filter-gen: $(BUILD)/obj/runtime/egress/filter_gen_main.o $(BUILD)/libsandlock.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

$(FILTER_INC): $(BUILD)/filter-gen
	@mkdir -p $(dir $@)
	@$(BUILD)/filter-gen >$@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "$@: generated"; fi

$(FILTER_OBJ) $(ASAN_FILTER_OBJ): $(FILTER_INC)
$(FILTER_OBJ) $(ASAN_FILTER_OBJ): override CXXFLAGS += -I$(VERSION_DIR)

all: $(BUILD)/sandlock-runc $(BUILD)/sandlock-shim $(BUILD)/sandlock-systemd $(HELPERS)

help:
	@echo "make            build $(BUILD)/sandlock-runc and the test helpers"
	@echo "make deps       apt-get install every build and test dependency; mount bpffs if missing"
	@echo "make check      deps, build, unit tests, integration tests (as root)"
	@echo "make unit       unit tests only"
	@echo "make unit-unprivileged  the unit tests as nobody (root-only ones skip, saying why)"
	@echo "make asan       build and run the unit tests under ASan/UBSan"
	@echo "make demo       deps, build, a busybox bundle, and run a container"
	@echo "make install    install binary and man pages under PREFIX=$(PREFIX)"
	@echo "make bench      benchmarks against runc and crun (bench/RESULTS.md);"
	@echo "                QUICK=1 a short run, BENCH_ONLY=lifecycle|shim|egress|datapath|scale|live one section"

# Precompiled headers (`make PCH=` builds without): runtime/precompiled.hpp (the
# standard library, nlohmann/json) for the runtime's files, tests/precompiled.hpp (that
# and Boost.Test) for the tests', parsed once per build instead of once per file: 2 to 4
# CPU-seconds a file. Each is compiled with its objects' flags; GCC refuses one built
# with others (-Winvalid-pch says why) and the compile fails rather than slows down.
PCH ?= 1
# Compiled without it: tests/main.cpp, whose BOOST_TEST_MODULE must come before
# Boost.Test's header; sockaddr_bpf.cpp (kernel_layer.cpp once renamed), where GCC 12.2
# inlines differently with a PCH and then warns falsely (-Warray-bounds, std::string's
# operator+ on an rvalue, a known GCC 12 false positive). Add a file here if that
# happens to it too.
PCH_EXCLUDE = tests/main.cpp runtime/egress/sockaddr_bpf.cpp runtime/egress/kernel_layer.cpp
# -include of $(1)/pch/$(2) for the object $@ (of source $<).
pch_flags = $(if $(PCH),$(if $(filter $(PCH_EXCLUDE),$<),,-Winvalid-pch -include $(1)/pch/$(2)))
# The tests are compiled without optimisation (and line tables only, whatever CXXFLAGS
# says): a third less CPU than -O1, and they run as fast (they wait on the kernel). The
# runtime they test keeps CXXFLAGS.
TEST_CXXFLAGS ?= -O0 -g1

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(call pch_flags,$(BUILD),runtime/precompiled.hpp) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(TEST_CXXFLAGS) $(call pch_flags,$(BUILD),tests/precompiled.hpp) -c $< -o $@

.SECONDARY: $(UNITY_SRC)
# Rewritten only when its list changes (a test file added or removed), so that an
# unchanged list rebuilds nothing; -MMD tracks the files it includes.
$(UNITY_SRC): $(BUILD)/gen/tests/unit_%.cpp: FORCE
	@mkdir -p $(dir $@)
	@tests/unity.sh $(TEST_UNITS) $* >$@.new; \
	if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; echo "$@: $$(grep -c include $@) test files"; fi

$(UNITY_OBJ): $(BUILD)/obj/tests-unity/%.o: $(BUILD)/gen/tests/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(TEST_CXXFLAGS) $(call pch_flags,$(BUILD),tests/precompiled.hpp) -c $< -o $@

$(ASAN_UNITY_OBJ): $(ASAN)/obj/tests-unity/%.o: $(BUILD)/gen/tests/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SANITIZE) $(TEST_CXXFLAGS) $(call pch_flags,$(ASAN),tests/precompiled.hpp) -c $< -o $@

$(ASAN)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SANITIZE) $(call pch_flags,$(ASAN),runtime/precompiled.hpp) -c $< -o $@

$(ASAN)/obj/tests/%.o: tests/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SANITIZE) $(TEST_CXXFLAGS) $(call pch_flags,$(ASAN),tests/precompiled.hpp) -c $< -o $@

$(BUILD)/pch/%.hpp.gch: %.hpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -x c++-header -c $< -o $@

$(BUILD)/pch/tests/%.hpp.gch: tests/%.hpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(TEST_CXXFLAGS) -x c++-header -c $< -o $@

$(ASAN)/pch/%.hpp.gch: %.hpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SANITIZE) -x c++-header -c $< -o $@

$(ASAN)/pch/tests/%.hpp.gch: tests/%.hpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SANITIZE) $(TEST_CXXFLAGS) -x c++-header -c $< -o $@

ifneq ($(PCH),)
$(LIB_OBJ) $(PROG_OBJ): $(BUILD)/pch/runtime/precompiled.hpp.gch
$(TEST_OBJ): $(BUILD)/pch/tests/precompiled.hpp.gch
$(ASAN_LIB_OBJ) $(ASAN_FILTER_OBJ): $(ASAN)/pch/runtime/precompiled.hpp.gch
$(ASAN_TEST_OBJ): $(ASAN)/pch/tests/precompiled.hpp.gch
endif

$(BUILD)/libsandlock.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The runtime (and the shim, which is the same binary) is linked statically: it
# starts in half the time and its resident set is a third smaller (bench/RESULTS.md),
# which every `run` and every shim pay. The one warning this gives is glibc's about
# getaddrinfo in a static program (NSS modules would have to match this glibc); the
# runtime relies only on the `files` and `dns` sources, which static glibc has built
# in. That known message is dropped from the output; any other warning is shown.
STATIC_LDFLAGS ?= -static -Wl,--gc-sections
GETADDRINFO_WARNING = -e "Using 'getaddrinfo' in statically linked" -e "in function .sandlock::egress::SystemResolver::lookup"
define link_static
	@echo "$(CXX) $(CXXFLAGS) $(STATIC_LDFLAGS) -o $@ $^ $(LDLIBS)"
	@$(CXX) $(CXXFLAGS) $(STATIC_LDFLAGS) -o $@ $^ $(LDLIBS) 2>$@.ld-log || { cat $@.ld-log >&2; rm -f $@.ld-log; exit 1; }
	@grep -v $(GETADDRINFO_WARNING) $@.ld-log >&2 || true
	@rm -f $@.ld-log
endef

$(BUILD)/sandlock-runc: $(BUILD)/obj/runtime/main.o $(FILTER_OBJ) $(BUILD)/libsandlock.a
	$(link_static)

# The egress shim on its own (runtime/shim_main.cpp); create uses it when it lies next
# to sandlock-runc, else `sandlock-runc shim`.
$(BUILD)/sandlock-shim: $(BUILD)/obj/runtime/shim_main.o $(FILTER_OBJ) $(BUILD)/libsandlock.a
	$(link_static)

# The systemd cgroup driver's D-Bus client (runtime/systemd_main.cpp): linked against the
# shared libsystemd, the only form Debian ships, so it is a program of its own.
$(BUILD)/sandlock-systemd: $(BUILD)/obj/runtime/systemd_main.o
	$(CXX) $(CXXFLAGS) -o $@ $^ -lsystemd

$(BUILD)/unit-tests: $(TEST_OBJ) $(FILTER_OBJ) $(BUILD)/libsandlock.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS) -lboost_unit_test_framework

$(ASAN)/unit-tests: $(ASAN_TEST_OBJ) $(ASAN_FILTER_OBJ) $(ASAN_LIB_OBJ)
	$(CXX) $(CXXFLAGS) $(SANITIZE) -o $@ $^ $(LDLIBS) -lboost_unit_test_framework

$(BUILD)/helpers/%: integration/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(HELPER_LDFLAGS) -o $@ $< -lpthread

# Runs inside the busybox rootfs, which has no libc.
$(BUILD)/helpers/egress_probe: HELPER_LDFLAGS = -static
$(BUILD)/helpers/shim_attack: HELPER_LDFLAGS = -static
$(BUILD)/helpers/unix_probe: HELPER_LDFLAGS = -static
$(BUILD)/helpers/pause: HELPER_LDFLAGS = -static

DEB_PACKAGES = g++ make pkg-config nlohmann-json3-dev libseccomp-dev libcap-dev \
	libyaml-cpp-dev libboost-test-dev libcli11-dev libsystemd-dev systemd busybox-static bats iproute2 \
	util-linux procps jq socat iptables nftables \
	podman netavark containerd conmon aardvark-dns catatonit uidmap slirp4netns \
	runc crun hyperfine time bpftool \
	clang llvm libbpf-dev libelf-dev zlib1g-dev \
	containernetworking-plugins python3-grpcio python3-protobuf protobuf-compiler dnsmasq-base

deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "installing: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	else echo "make deps: run as root on Debian to install: $(DEB_PACKAGES)"; fi
	@# bpffs, where the egress programs are pinned once per machine: systemd mounts it at
	@# boot; a host whose init does not (this one's) gets it here.
	@if [ "$$(id -u)" = 0 ] && [ "$$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then \
		mount -t bpf bpf /sys/fs/bpf && echo "make deps: mounted bpffs at /sys/fs/bpf (systemd does at boot)"; fi

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests --report_level=short

# The unit tests as an unprivileged user (nobody), from root: those that need root skip,
# saying so, and every other one must pass. (A user's own `make unit` does the same.)
unit-unprivileged: $(BUILD)/unit-tests
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all $(BUILD)/unit-tests --report_level=short

asan: $(ASAN)/unit-tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(ASAN)/unit-tests --report_level=short

# The one test command (README, .ci/run): ends with "N passed, N failed".
check: deps
	$(MAKE) -j$(NPROC) all $(BUILD)/unit-tests
	BUILD=$(abspath $(BUILD)) tests/check.sh

integration: all
	BUILD=$(abspath $(BUILD)) tests/check.sh --integration-only

demo: deps
	$(MAKE) -j$(NPROC) all
	BUILD=$(abspath $(BUILD)) integration/demo.sh

bench: deps
	$(MAKE) -j$(NPROC) all
	BUILD=$(abspath $(BUILD)) bench/run.sh $(if $(QUICK),--quick) $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

install: $(BUILD)/sandlock-runc $(BUILD)/sandlock-shim $(BUILD)/sandlock-systemd
	install -D -m 0755 $(BUILD)/sandlock-runc $(DESTDIR)$(PREFIX)/bin/sandlock-runc
	install -D -m 0755 $(BUILD)/sandlock-shim $(DESTDIR)$(PREFIX)/bin/sandlock-shim
	install -D -m 0755 $(BUILD)/sandlock-systemd $(DESTDIR)$(PREFIX)/bin/sandlock-systemd
	for page in man/*.[0-9]; do \
		sec=$${page##*.}; install -D -m 0644 $$page $(DESTDIR)$(PREFIX)/share/man/man$$sec/$$(basename $$page); \
	done
	# the operator's configuration, commented; it takes effect once copied to config.yaml
	install -D -m 0644 config.yaml.example $(DESTDIR)$(SYSCONFDIR)/sandlock-runc/config.yaml.example

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
