# callpipe - one build for the core library, the three services, the test tools and the tests.
#
#   make            build everything (build/)
#   make deps       install missing Debian packages
#   make check      build and run every test; ends with "N passed, N failed"
#   make SANITIZER=address|undefined check   the same, instrumented (build-address/, ...)
#   make fuzz       run every libFuzzer target for longer (FUZZ_SECONDS, default 60)
#   make demo       the whole pipeline on the local stack (see README.md)

CC       ?= cc
SANITIZER ?=
BUILD    := build$(if $(SANITIZER),-$(SANITIZER))
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT      := -O2 -g
CFLAGS   := $(CSTD) $(WARN) $(OPT) -MMD -MP -Icore -Iingest -Iaggregator -Iloader $(EXTRA_CFLAGS)
LDFLAGS  := $(EXTRA_LDFLAGS)

ifeq ($(SANITIZER),address)
  CFLAGS  += -fsanitize=address -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=address
else ifeq ($(SANITIZER),undefined)
  CFLAGS  += -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=undefined
else ifneq ($(SANITIZER),)
  $(error SANITIZER must be address or undefined)
endif

# msgpack-c 4.x is "msgpack"; upstream 6.x renamed it "msgpack-c" (libraries.md section 2).
MSGPACK_PC := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS     := libuv rdkafka libpq $(MSGPACK_PC) libcyaml yajl jansson libcurl openssl zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   += $(PKG_CFLAGS)
LIBS     := $(PKG_LIBS) -lhttp_parser -lcsv -lpthread -lm

CORE_SRC    := $(wildcard core/*.c)
SERVICE_SRC := $(wildcard ingest/*.c ingest/sources/*/*.c aggregator/*.c loader/*.c cmd/*.c)
SERVICE_SRC := $(filter-out cmd/main.c,$(SERVICE_SRC))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
TOOL_SRC    := $(wildcard tests/tools/*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)

CORE_OBJ    := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVICE_OBJ := $(SERVICE_SRC:%.c=$(BUILD)/%.o)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

LIBCORE  := $(BUILD)/libcallpipe.a
LIBSVC   := $(BUILD)/libcallpipe-services.a
CALLPIPE := $(BUILD)/callpipe

.SECONDARY:
.PHONY: all deps check unit fuzz fuzz-build demo demo-stop e2e bench bench-ingest bench-aggregator bench-loader bench-e2e clean format docs
all: $(CALLPIPE) $(UNIT_BIN) $(TOOL_BIN)

deps:
	@tests/scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBCORE): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Services as a library too, so unit tests can call a service's pure parts.
$(LIBSVC): $(SERVICE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(SERVICE_OBJ)

$(CALLPIPE): $(BUILD)/cmd/main.o $(LIBSVC) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBSVC) $(LIBCORE) $(LIBS)

# Test helpers as an archive: a program pulls only the helpers it calls
# (tools do not link cmocka; the golden runner needs it).
LIBTEST := $(BUILD)/libcallpipe-test.a
$(LIBTEST): $(TESTLIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(TESTLIB_OBJ)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBTEST) $(LIBSVC) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBTEST) $(LIBSVC) $(LIBCORE) $(LIBS) -lcmocka

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIBTEST) $(LIBSVC) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBTEST) $(LIBSVC) $(LIBCORE) $(LIBS)

# Every test: unit binaries, integration scripts, short fuzz runs.
# deps first and on its own: a parallel build must not start before the headers exist.
check:
	@tests/scripts/deps.sh
	@$(MAKE) --no-print-directory all fuzz-build
	@BUILD=$(BUILD) SANITIZER=$(SANITIZER) tests/run.sh

unit: all
	@BUILD=$(BUILD) tests/run.sh unit

# libFuzzer targets: clang, ASan + UBSan, built from the sources directly.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Icore -Iingest -Iaggregator -Iloader $(PKG_CFLAGS) \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_SRC := $(CORE_SRC) $(SERVICE_SRC)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=build-fuzz/obj/%.o)
fuzz-build: $(FUZZ_BIN)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build-fuzz/libfuzzcore.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libfuzzcore.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< build-fuzz/libfuzzcore.a $(LIBS)
fuzz: fuzz-build
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} tests/scripts/fuzz.sh

# Benchmarks (not part of check): the collector against rsyslog, syslog-ng and a plain
# librdkafka producer; table in build/bench/ingest.md (see tests/bench/README.md).
bench: bench-ingest bench-aggregator bench-loader
bench-ingest: $(CALLPIPE) $(TOOL_BIN)
	@BUILD=$(BUILD) tests/bench/ingest.sh
# The aggregator: 2,000,000 events Kafka -> PostgreSQL against a COPY ceiling; build/bench/aggregator.md.
bench-aggregator: $(CALLPIPE) $(TOOL_BIN)
	@BUILD=$(BUILD) tests/bench/aggregator.sh
# The loader: 1,000,000 outbox rows into the emulator against jsforce's bulk2; build/bench/loader.md.
bench-loader: $(CALLPIPE) $(TOOL_BIN)
	@BUILD=$(BUILD) tests/bench/loader.sh

# The whole pipeline on this machine with the PBX simulator, then a report (tests/demo/README.md).
# DEMO_SECONDS, DEMO_SPEED, DEMO_PBX, DEMO_SEED; DEMO_KEEP=1 keeps it running until make demo-stop.
demo:
	@tests/scripts/deps.sh || echo "demo: some packages are missing (see above); trying anyway"
	@$(MAKE) --no-print-directory $(CALLPIPE) $(TOOL_BIN)
	@BUILD=$(BUILD) tests/demo/demo.sh
demo-stop:
	@BUILD=$(BUILD) tests/demo/demo.sh stop
# End to end through every service, checked exactly against the simulator's ground truth.
e2e: $(CALLPIPE) $(TOOL_BIN)
	@BUILD=$(BUILD) tests/run.sh integration e2e
# 20,000 events/s from the simulator: event-to-PostgreSQL latency, CPU and RSS per service.
bench-e2e: $(CALLPIPE) $(TOOL_BIN)
	@BUILD=$(BUILD) tests/bench/e2e.sh

docs: $(CALLPIPE)
	@BUILD=$(BUILD) tests/scripts/config-doc.sh > docs/config.md && echo "wrote docs/config.md"

format:
	clang-format -i $(CORE_SRC) $(SERVICE_SRC) $(wildcard core/*.h) $(UNIT_SRC) $(TOOL_SRC)

clean:
	rm -rf build build-address build-undefined build-fuzz

-include $(shell find $(BUILD) build-fuzz -name '*.d' -type f 2>/dev/null)
