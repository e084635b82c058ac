#!/usr/bin/env bash
# The installed copies work on their own:
#  1. make install PREFIX=<temp>: the C example builds with pkg-config against
#     the installed header and library and runs (no source-tree paths);
#  2. pip install ./python into a temporary folder: `import aimetcle` from
#     another directory loads the libaimetcle.so inside the package.
# Prints "N passed, M failed"; exits non-zero on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
SUITE=install-test . "$ROOT/Tests/lib/check.sh"

check "make install into a temporary prefix" make -s -C "$ROOT" install PREFIX="$T/prefix"
check "the installed files are there" test -f "$T/prefix/include/aimetcle.h" -a -f "$T/prefix/lib/libaimetcle.so" \
    -a -f "$T/prefix/lib/pkgconfig/aimetcle.pc" -a -x "$T/prefix/bin/aimetcle"
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
check "pkg-config knows aimetcle" pkg-config --exists aimetcle
check "the C example builds against the installed copy" \
    sh -c "cd '$T' && cc -std=c11 -Wall -Werror '$ROOT/Tests/install/example.c' \$(pkg-config --cflags --libs aimetcle) -o example"
check "the C example runs" sh -c "cd / && '$T/example' '$ROOT/data/digits_mbv2.onnx' '$T/cle.onnx' | grep -q 'folded 14 BatchNorms, replaced 10 ReLU6, scaled 5 CLS sets'"
check "the installed command line runs" "$T/prefix/bin/aimetcle" inspect "$T/cle.onnx"

check "pip install ./python into a temporary folder" \
    "$PYTHON" -m pip install --quiet --no-deps --target "$T/site" "$ROOT/python"
check "the package carries libaimetcle.so" test -f "$T/site/aimetcle/libaimetcle.so"
check "import aimetcle from another directory loads the bundled library" \
    sh -c "cd / && env -u AIMETCLE_LIB PYTHONPATH='$T/site' '$PYTHON' -c \"
import aimetcle, aimetcle._lib as lib
assert lib.library_path() == '$T/site/aimetcle/libaimetcle.so', lib.library_path()
from aimetcle import models
from aimetcle.cross_layer_equalization import equalize_model
model = models.digits_mbv2(weights='$ROOT/data/digits_mbv2.npz').eval()
equalize_model(model, (1, 1, 16, 16))
\""
check "AIMETCLE_LIB still overrides the bundled library" \
    sh -c "cd / && AIMETCLE_LIB='$ROOT/.build/release/libaimetcle.so' PYTHONPATH='$T/site' '$PYTHON' -c \"
import aimetcle._lib as lib
assert lib.library_path() == '$ROOT/.build/release/libaimetcle.so'
\""
report
