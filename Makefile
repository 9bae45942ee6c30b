# The two commands of the quick start:
#   make demo   installs what is missing, builds (Release), runs examples/forward_wave.toml into
#               out/forward_wave.h5 and draws out/forward_wave.png
#   make test   installs what is missing, builds, runs every test (ctest: C++ and Python)
BUILD ?= build
JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3

.PHONY: all deps configure build demo test bench bench-training clean

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

bench: build
	$(PYTHON) bench/run_bench.py --build $(BUILD)

bench-training: build
	$(PYTHON) bench/training_bench.py --build $(BUILD)

clean:
	rm -rf $(BUILD) out
