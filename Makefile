# Front door: `make run` trains the main example, `make test` runs the suite.
# Both install missing dependencies first (scripts/setup.sh) and build in ./build.
BUILD ?= build
TYPE  ?= Release
JOBS  ?= $(shell nproc)
MAKEFLAGS += --no-print-directory

.PHONY: all setup configure build run test install clean

all: build

setup:
	@scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@$(BUILD)/examples/linear_regression

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

install: build
	@cmake --install $(BUILD) --prefix $(or $(PREFIX),/usr/local)

clean:
	@rm -rf $(BUILD)
