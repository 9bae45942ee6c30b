# The two commands of the quick start:
#   make demo   installs what is missing, builds (Release), runs examples/forward_wave.toml into
#               out/forward_wave.h5 and draws out/forward_wave.png
#   make test   installs what is missing, builds, runs every test (ctest: C++ and Python)
# make test-sanitize builds the C++ tests with AddressSanitizer and UndefinedBehaviorSanitizer in
# their own folder (SANITIZE_BUILD) and runs every test case; any report fails it.
BUILD ?= build
SANITIZE_BUILD ?= build-sanitize
JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3

.PHONY: all deps configure build demo test test-sanitize bench bench-training bench-wp clean

all: build

deps:
	@bash tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@mkdir -p out
	$(BUILD)/learnflow run examples/forward_wave.toml -o out/forward_wave.h5 --force
	$(BUILD)/learnflow info out/forward_wave.h5 --segments 2
	$(PYTHON) tools/plot waves out/forward_wave.h5 -o out/forward_wave.png

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Debug: assertions on (the sanitizer flags' -O1 overrides its -O0). halt_on_error and
# -fno-sanitize-recover=all (CMakeLists.txt): the first report ends the run with a failure.
test-sanitize: deps
	@cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLEARNFLOW_SANITIZE=ON \
	       -DLEARNFLOW_BENCH=OFF >/dev/null
	@cmake --build $(SANITIZE_BUILD) -j $(JOBS) --target learnflow_tests
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	$(SANITIZE_BUILD)/tests/learnflow_tests

bench: build
	$(PYTHON) bench/run_bench.py --build $(BUILD)

bench-training: build
	$(PYTHON) bench/training_bench.py --build $(BUILD)

# Work-precision against SciPy and CVODE (bench/README.md): CVODE built optimised first.
bench-wp: build
	test -f $(BUILD)/sundials/lib/libsundials_cvode.a || tools/build-sundials.sh $(BUILD)/sundials
	cmake -S . -B $(BUILD) -DLEARNFLOW_SUNDIALS_PREFIX=$(abspath $(BUILD))/sundials
	cmake --build $(BUILD) --target learnflow_cvode_bench
	$(PYTHON) bench/wp_bench.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) out
