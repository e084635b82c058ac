"""Where an installed package keeps its native files, relative to the package folder.

``pip install ./python`` (python/setup.py) and the wheel from ``make wheel`` put them
there; ``python -m aimetcle`` and the ``aimetcle`` command read them. The library itself,
``libaimetcle.so``, sits in the package folder (see ``_lib.library_path``).
"""

import os

COMMAND = "bin/aimetcle"               # the command line, self-contained
HEADER = "include/aimetcle.h"          # the C ABI
PKGCONFIG = "pkgconfig/aimetcle.pc"    # pkg-config file; its prefix is the package folder
LICENSES = "THIRD_PARTY_LICENSES.txt"  # what the binaries link in, and under which licenses


def path(relative):
    """The absolute path of a file of this layout in this installed package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), relative)
