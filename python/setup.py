"""Builds libaimetcle.so with SwiftPM (`swift build -c release --product
aimetcle` in the source tree above this folder) and ships it inside the
`aimetcle` package, so `import aimetcle` works from any directory.

    pip install ./python          (from the source tree; needs Swift 6 and OpenBLAS)

`AIMETCLE_LIB` still overrides the library the package loads. The library
keeps the Swift toolchain's runtime path as its RUNPATH: the toolchain must
stay where it was at build time.
"""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class BuildWithSwiftLibrary(build_py):
    """build_py that first builds libaimetcle.so and copies it into the package."""

    def run(self):
        if not os.path.isfile(os.path.join(ROOT, "Package.swift")):
            raise RuntimeError(f"no Package.swift above {HERE}: build from the aimetcle source tree "
                               f"(pip install ./python), not from a copy of the python folder")
        swift = os.environ.get("SWIFT", "swift")
        subprocess.check_call([swift, "build", "-c", "release", "--product", "aimetcle"], cwd=ROOT)
        built = os.path.join(ROOT, ".build", "release", "libaimetcle.so")
        super().run()
        target = os.path.join(self.build_lib, "aimetcle", "libaimetcle.so")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(built, target)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithSwiftLibrary}, distclass=BinaryDistribution)
