"""The header is the contract: header == exported symbols == _lib.py declarations."""

import os
import re
import subprocess

import pytest

from aimetcle import _lib

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "Include", "aimetcle.h")


def header_text():
    with open(HEADER) as f:
        return re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)


def header_functions():
    return set(re.findall(r"\b(aimet_\w+)\s*\(", header_text()))


def test_header_declares_what_lib_declares():
    assert header_functions() == set(_lib._DECLARATIONS)


def test_library_exports_exactly_the_header():
    out = subprocess.run(["nm", "-D", "--defined-only", _lib.library_path()], capture_output=True, text=True,
                         check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if re.search(r" T aimet_", line)}
    assert exported == header_functions()


def test_enum_values_match_header():
    text = header_text()
    values = dict((name, int(value)) for name, value in re.findall(r"\b(AIMET_[A-Z0-9_]+)\s*=\s*(-?\d+)", text))
    assert values, "no enum values parsed"
    for name, value in values.items():
        assert getattr(_lib, name) == value, name
    assert _lib.ABI_VERSION == int(re.search(r"#define AIMET_ABI_VERSION (\d+)", text).group(1))


@pytest.mark.parametrize("struct", ["aimet_layer", "aimet_batchnorm"])
def test_struct_fields_match_header(struct):
    body = re.search(r"typedef struct %s \{(.*?)\}" % struct, header_text(), re.S).group(1)
    names = re.findall(r"(\w+);", body)
    assert [f[0] for f in getattr(_lib, struct + "_t")._fields_] == names


def test_abi_version_and_status_strings():
    assert _lib.aimet_abi_version() == _lib.ABI_VERSION
    assert _lib.aimet_status_string(_lib.AIMET_STATUS_NUMERIC).startswith("numeric")
    assert _lib.aimet_status_string(777) == "unknown status"
