#!/usr/bin/env bash
# Lays out DIR, the folder through which `make selfcontained` links OpenBLAS and
# libstdc++ statically into libaimetcle.so and the command line:
#   libopenblas.a   OpenBLAS's static library (Debian: libopenblas-dev)
#   openblas.pc     a pkg-config file for it (libdir DIR, OpenBLAS's own include folder),
#                   so the CBLAS target's pkg-config lookup puts DIR first on the link line
#   libstdc++.a     the C compiler's static C++ runtime (the Swift runtime is C++)
#   exports.map     the linker version script that exports the C ABI (aimet_*) only
# DIR comes before the system folders on the link line, so `-lopenblas` and `-lstdc++`
# find these archives rather than the shared libraries of the same names.
# Usage: static-link-folder.sh DIR   (CC names the C compiler, cc by default)
set -euo pipefail
dir=${1:?usage: static-link-folder.sh DIR}
CC=${CC:-cc}

fail() {
    echo "error: $*" >&2
    exit 1
}

pkg-config --exists openblas 2>/dev/null ||
    fail "pkg-config does not know openblas: install OpenBLAS's development files (Debian: libopenblas-dev)"
openblas_libdir=$(pkg-config --variable=libdir openblas)
openblas_archive=${openblas_libdir%/}/libopenblas.a
[ -f "$openblas_archive" ] ||
    fail "no static OpenBLAS at $openblas_archive: install OpenBLAS's development files (Debian: libopenblas-dev)"

cxx_archive=$("$CC" -print-file-name=libstdc++.a)
[ -f "$cxx_archive" ] ||
    fail "$CC knows no static C++ runtime (libstdc++.a): install it (Debian: libstdc++-12-dev)"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
ln -sf "$openblas_archive" "$dir/libopenblas.a"
ln -sf "$cxx_archive" "$dir/libstdc++.a"
printf '%s\n' "libdir=$dir" '' 'Name: openblas' 'Description: OpenBLAS, linked statically' \
    "Version: $(pkg-config --modversion openblas)" 'Libs: -L${libdir} -lopenblas' \
    "Cflags: $(pkg-config --cflags openblas)" >"$dir/openblas.pc"
printf '%s\n' '{' '  global: aimet_*;' '  local: *;' '};' >"$dir/exports.map"
