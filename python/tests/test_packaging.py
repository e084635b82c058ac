"""The installed package's front doors for C users and the command line, on their own:
`python -m aimetcle` reads the package's pkg-config file, and both it and the `aimetcle`
console script say how to install when the package has no native files (as in the source
tree). Tests/wheel/test_wheel.sh uses them on a real installed wheel."""

import pytest

from aimetcle import __main__ as flags
from aimetcle import _command, _layout

PC = """prefix=${pcfiledir}/..
includedir=${prefix}/include
libdir=${prefix}

Name: aimetcle
Cflags: -I${includedir}
Libs: -L${libdir} -Wl,-rpath,${libdir} -laimetcle
"""


@pytest.fixture
def package(tmp_path, monkeypatch):
    """An empty package folder that _layout points into."""
    monkeypatch.setattr(_layout, "path", lambda relative: str(tmp_path / relative))
    return tmp_path


def write_pc(package, text):
    pc = package / _layout.PKGCONFIG
    pc.parent.mkdir(parents=True)
    pc.write_text(text)
    return pc


def test_pkgconfig_variables_expand_relative_to_the_file(package):
    fields = flags.read_pkgconfig(str(write_pc(package, PC)))
    assert fields["Cflags"] == f"-I{package}/include"
    assert fields["Libs"] == f"-L{package} -Wl,-rpath,{package} -laimetcle"


def test_cflags_and_libs_point_into_the_package(package, capsys):
    write_pc(package, PC)
    flags.main(["--libs", "--cflags"])
    assert capsys.readouterr().out.split() == [f"-I{package}/include", f"-L{package}", f"-Wl,-rpath,{package}", "-laimetcle"]
    flags.main(["--pkgconfigdir"])
    assert capsys.readouterr().out.strip() == str(package / "pkgconfig")


def test_an_undefined_variable_names_the_line(package):
    pc = write_pc(package, "Libs: -L${libdir}\n")
    with pytest.raises(ValueError, match=r"aimetcle.pc:1: \$\{libdir\} is not defined above"):
        flags.read_pkgconfig(str(pc))


def test_a_line_that_is_neither_variable_nor_field_names_the_line(package):
    pc = write_pc(package, "prefix=/x\nnonsense\n")
    with pytest.raises(ValueError, match="aimetcle.pc:2: neither"):
        flags.read_pkgconfig(str(pc))


def test_a_missing_field_is_named(package, capsys):
    write_pc(package, "Cflags: -I/x\n")
    with pytest.raises(SystemExit) as stop:
        flags.main(["--libs"])
    assert stop.value.code == 1
    assert "has no Libs field" in capsys.readouterr().err


def test_no_flag_is_a_usage_error(package, capsys):
    with pytest.raises(SystemExit) as stop:
        flags.main([])
    assert stop.value.code == 2
    assert "give --cflags, --libs and/or --pkgconfigdir" in capsys.readouterr().err


def test_flags_without_the_installed_files_say_how_to_install(package, capsys):
    with pytest.raises(SystemExit) as stop:
        flags.main(["--cflags"])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "has no C files" in err and "pip install ./python" in err


def test_the_console_script_without_the_command_line_says_how_to_install(package):
    with pytest.raises(SystemExit) as stop:
        _command.main()
    assert "has no command line" in str(stop.value.code) and "make wheel" in str(stop.value.code)
