# tierflow: `make demo` and `make test` do everything on a fresh Debian 12 machine.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300

.PHONY: all deps configure build demo test fuzz chaos bench clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD_DIR)/tierflow

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 1200
	@scripts/fuzz.sh 15

# Every libFuzzer target (fuzz/, built with clang in build-fuzz) for FUZZ_SECONDS each.
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# The chaos driver's full run: kill -9 of the coordinator (and movers) under 100,000 mixed
# requests. CHAOS_ARGS="--seed N" replays a run.
CHAOS_ARGS ?=
chaos: build
	@$(BUILD_DIR)/tierflow_chaos --requests 100000 --coordinator-kills 20 $(CHAOS_ARGS)

bench: build
	@scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
