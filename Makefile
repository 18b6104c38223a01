# Front door: `make run` trains the course's MNIST program, `make test` runs the suite.
# Both install missing dependencies first (scripts/setup.sh) and build in ./build.
BUILD ?= build
TYPE  ?= Release
JOBS  ?= $(shell nproc)
MAKEFLAGS += --no-print-directory

.PHONY: all setup configure build run test test-distributed python sanitize fuzz bench install clean

all: build

setup:
	@scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DLAMINA_BUILD_BENCH=OFF -DLAMINA_BUILD_TESTS=ON >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/setup.sh --data
	@scripts/fetch-data.sh mnist
	@$(BUILD)/examples/mnist_mlp data/mnist

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Data-parallel training across hosts (issue 19), on 2 and 4 network namespaces of this machine
# joined by veths (scripts/netns-hosts.sh; needs root): bytes on the wire against ring allreduce's
# 2(N-1)/N, and N hosts against one process (tests/multihost/test_multihost.py, about 30 s). The
# namespaces are always removed, by the script and by the trap here.
test-distributed: build
	@trap 'scripts/netns-hosts.sh down' EXIT INT TERM; \
	  /usr/bin/python3 tests/multihost/test_multihost.py --build $(BUILD)

# The Python package (README.md, Python): the _lamina extension and python/lamina assembled in
# $(BUILD)/python, importable from there; pip install ./python (python/setup.py) wheels the same
# build. (A build directory that pip configured first has the tests off: -DLAMINA_BUILD_TESTS=ON
# above turns them back on.)
python: configure
	@cmake --build $(BUILD) -j $(JOBS) --target _lamina
	@echo "Python package built in $(BUILD)/python. Use it in place:"
	@echo "  PYTHONPATH=$(BUILD)/python python3 -c 'import lamina; print(lamina.__version__)'"
	@echo "or install it into a virtual environment (Debian's pip installs only into one):"
	@echo "  python3 -m venv --system-site-packages .venv"
	@echo "  LAMINA_BUILD_DIR=$(BUILD) .venv/bin/pip install --no-build-isolation ./python"

# The whole suite again with AddressSanitizer + UndefinedBehaviorSanitizer (-O1 -g, its own build
# dir): a memory error, a leak or undefined behaviour fails the test that hit it. The tests under
# mpirun (label mpi) are left out: OpenMPI's own allocations at exit read as leaks. The
# thread_group tests of data parallelism (test_distributed.cpp) run.
SANITIZE_BUILD ?= build-sanitize
sanitize: setup
	@cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLAMINA_SANITIZE=ON -DLAMINA_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(SANITIZE_BUILD) -j $(JOBS)
	@cd $(SANITIZE_BUILD) && ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_string_checks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -LE mpi

# libFuzzer targets (fuzz/: IDX, CSV, spec, model file, ONNX) built with clang + ASan + UBSan in
# build-fuzz, all run at once for FUZZ_TIME seconds each; findings land in build-fuzz/crashes/.
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 60
fuzz:
	@scripts/setup.sh --fuzz
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DLAMINA_FUZZ=ON \
	  -DLAMINA_BUILD_TESTS=OFF -DLAMINA_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# Lamina beside libtorch on the same workloads (bench/README.md): micro-benchmarks, then the
# side-by-side comparison, which writes $(BUILD)/bench/compare.json and prints a table, then the
# course's MNIST program in Lamina-Python, PyTorch (python3-torch, from --dev) and Lamina C++
# ($(BUILD)/bench/python_mnist.json), then data-parallel training over MPI on shared memory and
# namespaced hosts ($(BUILD)/bench/distributed.json; root).
bench:
	@scripts/setup.sh --bench --dev --data
	@scripts/fetch-data.sh mnist fashion_mnist digits
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DLAMINA_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@$(BUILD)/bench/bench_micro --benchmark_min_time=0.05
	@$(BUILD)/bench/bench_compare --data data --out $(BUILD)/bench/compare.json
	@/usr/bin/python3 bench/python_mnist.py --build $(BUILD) --data data --out $(BUILD)/bench/python_mnist.json
	@/usr/bin/python3 bench/distributed.py --build $(BUILD) --data data --out $(BUILD)/bench/distributed.json
	@$(BUILD)/bench/bench_pipeline --data data

install: build
	@cmake --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

clean:
	@rm -rf $(BUILD)
