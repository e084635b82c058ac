#!/usr/bin/env bash
# The wheel works on its own, without the Swift toolchain:
#  1. make wheel writes one dist/aimetcle-*-py3-none-manylinux_*_x86_64.whl holding the package,
#     libaimetcle.so, the command line, the C header, the pkg-config file and the licenses;
#  2. pip installs it into a fresh virtualenv; ldd of the installed libaimetcle.so and command
#     line lists nothing outside the package and the C runtime (glibc);
#  3. in a mount namespace where an empty folder hides the Swift toolchain: Python runs CLE, a
#     quantization simulation and a 10-iteration AdaRound (use_wheel.py), the `aimetcle` command
#     inspects a model, and a C program builds against the installed package (with
#     `python -m aimetcle --cflags --libs`, and with pkg-config) and runs.
# Needs unshare (util-linux) and root, or user namespaces for `unshare --map-root-user`.
# Prints "N passed, M failed"; exits non-zero on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
CC=${CC:-cc}
MODEL=$ROOT/data/digits_mbv2.onnx
SUITE=wheel-test . "$ROOT/Tests/lib/check.sh"
finish() {
    report
    exit
}
fails() { ! "$@"; }
# prints PATTERN COMMAND...: COMMAND succeeds and prints a line matching PATTERN (grep -E).
prints() {
    local pattern=$1
    shift
    "$@" >"$T/printed" 2>&1
    local status=$?
    cat "$T/printed"
    [ "$status" -eq 0 ] && grep -qE "$pattern" "$T/printed"
}

# The libraries that ldd says FILE loads from outside DIR and the C runtime (the loader, libc,
# libm, libpthread, libdl): printed, one ldd line each; fails if there is any.
ALLOWED='^(linux-vdso\.so\.1|/lib(64)?/ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2)$'
only_glibc_outside() {
    local file=$1 dir=$2
    ldd "$file" | awk -v allowed="$ALLOWED" -v dir="$dir/" '
        $1 ~ allowed { next }
        $2 == "=>" && index($3, dir) == 1 { next }
        { print; foreign = 1 }
        END { exit foreign }'
}

# give_up MESSAGE: a check that the rest depends on failed.
give_up() {
    echo "FAIL: $*" >&2
    failed=$((failed + 1))
    finish
}

# The Swift toolchain: its root (above usr/bin/swift) and the folder of its runtime libraries.
swift_bin=$(command -v "${SWIFT:-swift}") || give_up "no swift on PATH: the test hides the toolchain it finds there"
TOOLCHAIN=$(dirname "$(dirname "$(dirname "$(readlink -f "$swift_bin")")")")
RUNTIME=$("$swift_bin" -print-target-info | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["paths"]["runtimeLibraryPaths"][0])')
case $TOOLCHAIN in
    / | /usr | /usr/local) give_up "the Swift toolchain is in the system folders ($swift_bin): this test cannot hide it" ;;
esac
case $RUNTIME in
    "$TOOLCHAIN"/*) [ -f "$RUNTIME/libswiftCore.so" ] || give_up "no libswiftCore.so in the toolchain's runtime folder $RUNTIME" ;;
    *) give_up "the Swift runtime ($RUNTIME) is not inside the toolchain ($TOOLCHAIN): hiding one leaves the other" ;;
esac

# without_toolchain COMMAND...: COMMAND in a mount namespace where an empty folder covers $TOOLCHAIN.
mkdir "$T/empty"
unshare_user=()
[ "$(id -u)" -eq 0 ] || unshare_user=(--map-root-user)
without_toolchain() {
    unshare --mount "${unshare_user[@]}" -- sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
        sh "$T/empty" "$TOOLCHAIN" "$@"
}

check "make wheel" make -s -C "$ROOT" wheel
wheels=("$ROOT"/dist/aimetcle-*-py3-none-manylinux_*_x86_64.whl)
check "make wheel writes one manylinux wheel into dist/" test ${#wheels[@]} -eq 1 -a -f "${wheels[0]}"
[ -f "${wheels[0]}" ] || finish  # (that check failed)
WHEEL=${wheels[0]}
check "the wheel holds the package, library, command line, header, pkg-config file, licenses and console script" \
    "$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
wanted = {"aimetcle/__init__.py", "aimetcle/__main__.py", "aimetcle/libaimetcle.so", "aimetcle/bin/aimetcle",
          "aimetcle/include/aimetcle.h", "aimetcle/pkgconfig/aimetcle.pc", "aimetcle/THIRD_PARTY_LICENSES.txt"}
missing = wanted - names
assert not missing, f"missing: {sorted(missing)}"
entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
assert entry_points, "no entry_points.txt"
text = zipfile.ZipFile(sys.argv[1]).read(entry_points[0]).decode()
assert "aimetcle = aimetcle._command:main" in text, text
EOF

check "pip installs the wheel into a fresh virtualenv" \
    sh -c "'$PYTHON' -m venv '$T/venv' && '$T/venv/bin/python' -m pip install --quiet --disable-pip-version-check '$WHEEL'"
PKG=$(cd / && "$T/venv/bin/python" -c 'import aimetcle, os; print(os.path.dirname(aimetcle.__file__))' 2>&1)
check "the virtualenv imports the installed package" test -f "$PKG/libaimetcle.so"
[ -f "$PKG/libaimetcle.so" ] || finish  # (that check failed)

check "ldd: libaimetcle.so loads nothing from outside the package but glibc" only_glibc_outside "$PKG/libaimetcle.so" "$PKG"
check "ldd: the command line loads nothing from outside the package but glibc" only_glibc_outside "$PKG/bin/aimetcle" "$PKG"
check "the ldd check flags a library that needs the toolchain ($RUNTIME/libswiftDispatch.so)" \
    fails only_glibc_outside "$RUNTIME/libswiftDispatch.so" "$PKG"

check "the namespace hides the toolchain (no swift, no $RUNTIME/libswiftCore.so)" \
    without_toolchain sh -c "! command -v swift && test ! -e '$RUNTIME/libswiftCore.so'"
mkdir "$T/work"
check "Python without the toolchain: CLE, quantization simulation and a 10-iteration AdaRound" \
    without_toolchain env --chdir="$T/work" "$T/venv/bin/python" "$ROOT/Tests/wheel/use_wheel.py" "$ROOT/data" "$T/work"
check "the aimetcle command without the toolchain inspects the digits model (14 Conv)" \
    prints '^  Conv +14$' without_toolchain "$T/venv/bin/aimetcle" inspect "$MODEL"

FLAGS=$(cd / && "$T/venv/bin/python" -m aimetcle --cflags --libs 2>&1)
check "python -m aimetcle --cflags --libs points into the installed package ($FLAGS)" \
    test "$FLAGS" = "-I$PKG/include -L$PKG -Wl,-rpath,$PKG -laimetcle"
check "a C program builds against the installed package without the toolchain (those flags)" \
    without_toolchain "$CC" -std=c11 -Wall -Werror "$ROOT/Tests/install/example.c" $FLAGS -o "$T/example"
check "the C program runs without the toolchain" \
    prints 'scaled 5 CLS sets' without_toolchain env --chdir=/ "$T/example" "$MODEL" "$T/cle.onnx"
PCDIR=$(cd / && "$T/venv/bin/python" -m aimetcle --pkgconfigdir 2>&1)
check "it builds the same with pkg-config (PKG_CONFIG_PATH=\$(python -m aimetcle --pkgconfigdir))" \
    without_toolchain sh -c "'$CC' -std=c11 -Wall -Werror '$ROOT/Tests/install/example.c' \
        \$(PKG_CONFIG_PATH='$PCDIR' pkg-config --cflags --libs aimetcle) -o '$T/example-pc' && '$T/example-pc' '$MODEL' '$T/cle-pc.onnx'"
check "python -m aimetcle without a flag is a usage error (status 2)" \
    sh -c "cd / && '$T/venv/bin/python' -m aimetcle; test \$? -eq 2"
finish
