# aimetcle — build, test and demo entry points (see README.md).
#   make demo   the main job: the digits model through CLE and AdaRound, with a report
#               (build/demo-report/index.html); DEMO_ARGS="--quiet --iterations N"
#   make test   every suite: swift test, the C tests, the CLI tests, pytest
#   make cli    the command line, as build/aimetcle

SWIFT       ?= swift
CC          ?= cc
PYTHON      ?= python3
CONFIG      ?= release
LIBDIR      := $(CURDIR)/.build/$(CONFIG)
BUILD       := $(CURDIR)/build

.PHONY: all lib cli demo test test-swift test-c test-cli test-python clean

all: lib

lib:
	$(SWIFT) build -c $(CONFIG) --product aimetcle

# SwiftPM drops an executable product named like the library product
# `aimetcle`, so the executable is `aimetcle-cli`, installed as build/aimetcle.
cli:
	$(SWIFT) build -c $(CONFIG) --product aimetcle-cli
	mkdir -p $(BUILD)
	cp $(LIBDIR)/aimetcle-cli $(BUILD)/aimetcle

demo: lib
	$(PYTHON) python/examples/demo.py $(DEMO_ARGS)

test: test-swift test-c test-cli test-python

test-swift:
	$(SWIFT) test --disable-swift-testing

$(BUILD)/test_%: Tests/capi/test_%.c Tests/capi/check.h Include/aimetcle.h lib
	mkdir -p $(BUILD)
	$(CC) -std=c11 -Wall -Wextra -Werror -IInclude $< -L$(LIBDIR) -laimetcle -Wl,-rpath,$(LIBDIR) -lm -pthread -o $@

test-c: $(BUILD)/test_capi $(BUILD)/test_model $(BUILD)/test_quantsim $(BUILD)/test_adaround
	$(BUILD)/test_capi
	$(BUILD)/test_model $(CURDIR)/data/digits_mbv2.onnx
	$(BUILD)/test_quantsim $(CURDIR)/data/digits_mbv2.onnx
	$(BUILD)/test_adaround $(CURDIR)/data/digits_mbv2.onnx $(CURDIR)/data/digits.npz

test-cli: cli
	AIMETCLE=$(BUILD)/aimetcle PYTHON=$(PYTHON) bash Tests/cli/test_cli.sh

test-python: lib
	cd python && AIMETCLE_LIB=$(LIBDIR)/libaimetcle.so $(PYTHON) -m pytest -q tests

clean:
	rm -rf $(BUILD) .build
