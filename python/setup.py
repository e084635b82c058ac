"""Builds the self-contained libaimetcle.so and `aimetcle` command line (`make
selfcontained` in the source tree above this folder: the Swift runtime, libstdc++
and OpenBLAS linked in statically, so they need nothing but glibc) and ships them
inside the `aimetcle` package with the C header, a pkg-config file and the licenses of
what they link in. Installed, `import aimetcle`, the `aimetcle` command and
`python -m aimetcle --cflags --libs` work from any directory, without the Swift
toolchain and without OpenBLAS.

    pip install ./python     (from the source tree; needs what `make selfcontained` needs:
                              Swift 6.1 or later, make, a C compiler with its static C++
                              runtime, OpenBLAS with its static library)
    make wheel               (the same package as a manylinux wheel in dist/)

`AIMETCLE_LIB` still overrides the library the package loads.
"""

import importlib.util
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# What `make selfcontained` writes (Makefile: SELFCONTAINED).
SELFCONTAINED = os.path.join(ROOT, ".build", "selfcontained")


def package_layout():
    """aimetcle/_layout.py, read without importing the package (which needs NumPy)."""
    spec = importlib.util.spec_from_file_location("aimetcle_layout", os.path.join(HERE, "aimetcle", "_layout.py"))
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    return layout


class BuildWithSwiftLibrary(build_py):
    """build_py that first builds the self-contained binaries and copies them, the header
    and the pkg-config file into the package (where aimetcle/_layout.py says)."""

    def run(self):
        if not os.path.isfile(os.path.join(ROOT, "Package.swift")):
            raise RuntimeError(f"no Package.swift above {HERE}: build from the aimetcle source tree "
                               f"(pip install ./python), not from a copy of the python folder")
        make = os.environ.get("MAKE", "make")
        if shutil.which(make) is None:
            raise RuntimeError(f"{make!r} not found: building the aimetcle package needs make, Swift 6.1 or later, a C compiler and OpenBLAS (python/setup.py says more)")
        subprocess.check_call([make, "-C", ROOT, "selfcontained"])
        super().run()
        layout = package_layout()
        package = os.path.join(self.build_lib, "aimetcle")
        for source, target in [
            (os.path.join(SELFCONTAINED, "release", "libaimetcle.so"), "libaimetcle.so"),
            (os.path.join(SELFCONTAINED, "release", "aimetcle-cli"), layout.COMMAND),
            (os.path.join(ROOT, "Include", "aimetcle.h"), layout.HEADER),
            (os.path.join(SELFCONTAINED, "aimetcle.pc"), layout.PKGCONFIG),
        ]:
            target = os.path.join(package, target)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target)


class BinaryDistribution(Distribution):
    """The package carries native binaries: it installs into platlib, as a platform wheel."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """Those binaries are loaded by ctypes and run as a program, no extension module: the
    wheel suits any Python 3 and ABI on this platform (py3-none-linux_x86_64; make wheel
    then retags it manylinux with auditwheel)."""

    def get_tag(self):
        return ("py3", "none", super().get_tag()[2])


setup(cmdclass={"build_py": BuildWithSwiftLibrary, "bdist_wheel": PlatformWheel}, distclass=BinaryDistribution)
