# Front door: `make run` trains the course's MNIST program, `make test` runs the suite.
# Both install missing dependencies first (scripts/setup.sh) and build in ./build.
BUILD ?= build
TYPE  ?= Release
JOBS  ?= $(shell nproc)
MAKEFLAGS += --no-print-directory

.PHONY: all setup configure build run test bench install clean

all: build

setup:
	@scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DLAMINA_BUILD_BENCH=OFF >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/setup.sh --data
	@scripts/fetch-data.sh mnist
	@$(BUILD)/examples/mnist_mlp data/mnist

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Lamina beside libtorch on the same workloads (bench/README.md): micro-benchmarks, then the
# side-by-side comparison, which writes $(BUILD)/bench/compare.json and prints a table.
bench:
	@scripts/setup.sh --bench --data
	@scripts/fetch-data.sh mnist digits
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DLAMINA_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@$(BUILD)/bench/bench_micro --benchmark_min_time=0.05
	@$(BUILD)/bench/bench_compare --data data --out $(BUILD)/bench/compare.json

install: build
	@cmake --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

clean:
	@rm -rf $(BUILD)
