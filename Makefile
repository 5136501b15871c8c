# The two commands: `make run` and `make test`. Everything else is a helper for them.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./sluice-data
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
# The sanitizer configuration runs the unit tests of these binaries (see README "Testing"), except the
# suites in ASAN_EXCLUDE, which have not been through a sanitizer run yet.
ASAN_TARGETS ?= test_core test_broker test_trigger test_autoscaler test_agents example_agents
ASAN_EXCLUDE ?= Kafka|Activator|RevisionHistory

.PHONY: run test deps build build-asan unit-asan integration e2e fuzz fuzz-short soak bench format clean

run: deps build
	./$(BUILD)/sluice serve --listen $(LISTEN) --data-dir $(DATA_DIR) --apply examples/demo.yaml

test: deps build build-asan
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 300
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600 -L unit -E '$(ASAN_EXCLUDE)'
	$(MAKE) fuzz-short
	$(MAKE) e2e

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/build.ninja
	cmake --build $(BUILD) -j$(JOBS)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DSLUICE_SANITIZE=ON -DSLUICE_BENCH=OFF $(CMAKE_FLAGS)

# The sanitizer build runs the unit tests (see README "Testing"): only they are built there.
build-asan: $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target $(ASAN_TARGETS)

$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_BENCH=OFF -DSLUICE_WERROR=OFF

# Every fuzz target for FUZZ_SECONDS each (`make fuzz`); `fuzz-short` is the 10-second pass in `make test`.
fuzz: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets
	scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=10

e2e: build
	@if [ -f tests/e2e/package.json ]; then cd tests/e2e && SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice SLUICE_BUILD=$(CURDIR)/$(BUILD) node --test; fi

soak: build
	SLUICE_SOAK=1 ./$(BUILD)/test_integration --gtest_filter='*Soak*'

bench: build
	scripts/run-bench.sh $(BUILD)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
