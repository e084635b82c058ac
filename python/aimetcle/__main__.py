"""``python -m aimetcle --cflags --libs``: the compiler and linker flags of the C ABI
that this installed package carries (its header and libaimetcle.so), read from its
pkg-config file, so a C program builds against the package without the source tree:

    cc my.c $(python -m aimetcle --cflags --libs) -o my

``--pkgconfigdir`` prints the folder of that file, for ``PKG_CONFIG_PATH``.
"""

import argparse
import os
import re
import sys

from . import _layout


def read_pkgconfig(path):
    """The fields (``Cflags``, ``Libs``, ...) of a pkg-config file, its variables expanded;
    ``${pcfiledir}`` is the file's folder and paths come out normalized."""
    variables = {"pcfiledir": os.path.dirname(os.path.abspath(path))}
    fields = {}

    def expand(text, line_number):
        def value(match):
            name = match.group(1)
            if name not in variables:
                raise ValueError(f"{path}:{line_number}: ${{{name}}} is not defined above")
            return variables[name]
        return re.sub(r"\$\{(\w+)\}", value, text)

    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            variable = re.fullmatch(r"(\w+)\s*=\s*(.*)", line)
            field = re.fullmatch(r"([\w.]+)\s*:\s*(.*)", line)
            if variable:
                variables[variable.group(1)] = os.path.normpath(expand(variable.group(2), number))
            elif field:
                fields[field.group(1)] = expand(field.group(2), number)
            else:
                raise ValueError(f"{path}:{number}: neither 'name=value' nor 'Field: value': {line!r}")
    return fields


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m aimetcle",
        description="Compiler and linker flags for C programs against this installed aimetcle package "
                    "(the command line itself is the `aimetcle` command).")
    parser.add_argument("--cflags", action="store_true", help="the compiler flags (the header's folder)")
    parser.add_argument("--libs", action="store_true", help="the linker flags (libaimetcle.so, with its folder as rpath)")
    parser.add_argument("--pkgconfigdir", action="store_true", help="the folder of aimetcle.pc, for PKG_CONFIG_PATH")
    args = parser.parse_args(argv)
    if not (args.cflags or args.libs or args.pkgconfigdir):
        parser.error("give --cflags, --libs and/or --pkgconfigdir")
    pc = _layout.path(_layout.PKGCONFIG)
    if not os.path.isfile(pc):
        parser.exit(1, f"error: this aimetcle package has no C files ({pc} is missing): install it with pip "
                       f"from a wheel (make wheel) or from the source tree (pip install ./python)\n")
    try:
        fields = read_pkgconfig(pc)
    except ValueError as e:
        parser.exit(1, f"error: {e}\n")
    wanted = [name for name, asked in (("Cflags", args.cflags), ("Libs", args.libs)) if asked]
    missing = [name for name in wanted if name not in fields]
    if missing:
        parser.exit(1, f"error: {pc} has no {' and no '.join(missing)} field\n")
    flags = [fields[name] for name in wanted]
    if args.pkgconfigdir:
        flags.append(os.path.dirname(pc))
    print(" ".join(flags))


if __name__ == "__main__":
    main(sys.argv[1:])
