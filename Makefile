# The two commands: `make run` and `make test`. Everything else is a helper for them.
JOBS ?= $(shell nproc)
# ctest runs twice as many tests as cores: most integration tests wait on processes, sockets and timers
# (at -j2 on two cores ctest used under one core; -j4 took 378 s down to 240 s, bench/RESULTS.md).
TEST_JOBS ?= $(shell echo $$(( $$(nproc) * 2 )))
# `build`: the release build (`make run`, `make bench`). `build-test`: the test configuration, ASan+UBSan at
# -O0 (compiles about as fast as -O2 and catches more), where `make test` builds and runs every test. It is a
# unity build (CMAKE_UNITY_BUILD: each target's sources compiled eight to a unit), which parses the Asio,
# Beast and json headers and generates their instantiations once per unit instead of once per source: half
# the compile time (bench/RESULTS.md).
BUILD ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./sluice-data
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

.PHONY: run test deps build build-test e2e e2e-run fuzz soak bench format clean

run: deps build
	./$(BUILD)/sluice serve --listen $(LISTEN) --data-dir $(DATA_DIR) --apply examples/demo.yaml

# Unit and integration tests, fuzz corpus replays (ctest), then the Node e2e tests, all on the sanitizer build.
test: deps build-test
	cd $(TEST_BUILD) && ctest --output-on-failure -j$(TEST_JOBS) --timeout 600
	$(MAKE) e2e-run E2E_BUILD=$(TEST_BUILD)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS)

$(TEST_BUILD)/build.ninja:
	cmake -S . -B $(TEST_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DSLUICE_SANITIZE=ON -DSLUICE_BENCH=OFF -DCMAKE_UNITY_BUILD=ON $(CMAKE_FLAGS)

build-test: $(TEST_BUILD)/build.ninja
	cmake --build $(TEST_BUILD) -j$(JOBS)

$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_BENCH=OFF -DSLUICE_WERROR=OFF

# Every libFuzzer target for FUZZ_SECONDS each, seeded from fuzz/corpus/ (clang; `make test` only replays
# the corpus).
fuzz: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets
	scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The Node e2e tests (MCP and A2A SDK clients) against the release build, or E2E_BUILD.
E2E_BUILD ?= $(BUILD)
e2e: build e2e-run

e2e-run:
	@if [ -f tests/e2e/package.json ]; then cd tests/e2e && SLUICE_BIN=$(CURDIR)/$(E2E_BUILD)/sluice SLUICE_BUILD=$(CURDIR)/$(E2E_BUILD) node --test; fi

soak: build
	SLUICE_SOAK=1 ./$(BUILD)/test_integration --gtest_filter='*Soak*'
	SLUICE_SOAK=1 ./$(BUILD)/test_kafka_integration --gtest_filter='*Soak*'

bench: build
	scripts/run-bench.sh $(BUILD)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
