"""The README's Python examples run as written (in a scratch folder holding the repository's data/;
AdaRound's 10000 iterations cut to 50 to keep the suite short)."""

import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def python_blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_has_its_python_examples():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_example_runs(index, tmp_path, monkeypatch):
    os.symlink(os.path.abspath(os.path.join(ROOT, "data")), tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    code = python_blocks()[index].replace("default_num_iterations=10000", "default_num_iterations=50")
    namespace = {"__name__": "readme"}
    exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)  # noqa: S102 - our own README
    if "accuracy" in namespace:
        assert namespace["accuracy"] > 0.9
        assert (tmp_path / "quantized_digits.onnx").exists() and (tmp_path / "digits.encodings").exists()
