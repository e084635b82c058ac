"""The ``aimetcle`` console script: runs the command line that the package carries
(``bin/aimetcle``, self-contained) with the same arguments."""

import os
import sys

from . import _layout


def main():
    command = _layout.path(_layout.COMMAND)
    if not os.access(command, os.X_OK):
        sys.exit(f"error: this aimetcle package has no command line ({command} is missing or not executable): "
                 f"install it with pip from a wheel (make wheel) or from the source tree (pip install ./python)")
    os.execv(command, ["aimetcle", *sys.argv[1:]])
