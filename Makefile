# aimetcle — build, test and demo entry points (see README.md).
#   make demo   the main job: the digits model through CLE and AdaRound, with a report
#               (build/demo-report/index.html); DEMO_ARGS="--quiet --iterations N"
#   make test   every suite: swift test, the C tests, the CLI tests, pytest
#   make cli    the command line, as build/aimetcle
#   make install PREFIX=/usr/local   header, library, pkg-config file and the command line

SWIFT       ?= swift
CC          ?= cc
PYTHON      ?= python3
CONFIG      ?= release
LIBDIR      := $(CURDIR)/.build/$(CONFIG)
BUILD       := $(CURDIR)/build
PREFIX      ?= /usr/local
VERSION     := 0.1.0

.PHONY: all lib cli demo test test-swift test-c test-cli test-python test-install install clean

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

test: test-swift test-c test-cli test-python test-install

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

# include/aimetcle.h, lib/libaimetcle.so, lib/pkgconfig/aimetcle.pc, bin/aimetcle.
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 Include/aimetcle.h $(DESTDIR)$(PREFIX)/include/aimetcle.h
	install -m 755 $(LIBDIR)/libaimetcle.so $(DESTDIR)$(PREFIX)/lib/libaimetcle.so
	install -m 755 $(BUILD)/aimetcle $(DESTDIR)$(PREFIX)/bin/aimetcle
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'libdir=$${prefix}/lib' '' \
	  'Name: aimetcle' 'Description: AIMET cross-layer equalization and AdaRound (C ABI)' 'Version: $(VERSION)' \
	  'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -laimetcle' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/aimetcle.pc

# make install into a temporary prefix + the C example through pkg-config;
# pip install ./python into a temporary folder + import from elsewhere.
test-install: lib cli
	PYTHON=$(PYTHON) bash Tests/install/test_install.sh

clean:
	rm -rf $(BUILD) .build
