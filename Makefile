# aimetcle — build, test and demo entry points (see README.md).
#   make demo   the main job: AIMET's documented CLE examples on aimetcle
#   make test   every suite: swift test, the C tests, pytest

SWIFT       ?= swift
CC          ?= cc
PYTHON      ?= python3
CONFIG      ?= release
LIBDIR      := $(CURDIR)/.build/$(CONFIG)
BUILD       := $(CURDIR)/build

.PHONY: all lib demo test test-swift test-c test-python clean

all: lib

lib:
	$(SWIFT) build -c $(CONFIG) --product aimetcle

demo: lib
	$(PYTHON) python/examples/run_examples.py

test: test-swift test-c test-python

test-swift:
	$(SWIFT) test --disable-swift-testing

$(BUILD)/test_capi: Tests/capi/test_capi.c Include/aimetcle.h lib
	mkdir -p $(BUILD)
	$(CC) -std=c11 -Wall -Wextra -Werror -IInclude $< -L$(LIBDIR) -laimetcle -Wl,-rpath,$(LIBDIR) -lm -pthread -o $@

test-c: $(BUILD)/test_capi
	$(BUILD)/test_capi

test-python: lib
	cd python && AIMETCLE_LIB=$(LIBDIR)/libaimetcle.so $(PYTHON) -m pytest -q tests

clean:
	rm -rf $(BUILD) .build
