"""Torch checkpoints read without torch (``aimetcle.load_state_dict_file``).

The fixtures were written by torch itself (``fixtures/make_checkpoints.py``): the same object in the
zip and the legacy format, with ``.numpy()`` of each tensor as the expected values. Then: files that
would run code under torch's unrestricted loader are refused (and run nothing), damaged files and
hash mismatches are clear errors, and torchvision's ImageNet MobileNetV2 checkpoint (when
``../shared/data/imagenet_sample`` is there) loads into ``models.mobilenet_v2`` and checks its hash.
"""

import collections
import os
import pickle
import shutil

import numpy as np
import pytest

import aimetcle
from aimetcle import models
from aimetcle.checkpoints import CheckpointError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "imagenet_sample")
MOBILENET = os.path.join(SAMPLE, "mobilenet_v2-b0353104.pth")
MOBILENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}{k}/")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}{i}/")
    else:
        yield prefix[:-1], obj


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_every_tensor_matches_what_torch_saved(fmt):
    loaded = aimetcle.load_state_dict_file(os.path.join(FIXTURES, f"tensors_{fmt}.pth"))
    expected = np.load(os.path.join(FIXTURES, "tensors_expected.npz"))
    assert isinstance(loaded["state"], collections.OrderedDict)
    assert list(loaded["state"])[:3] == ["conv.weight", "transposed", "sliced"], "the saved order is kept"
    assert loaded["epoch"] == 7
    arrays = dict((k, v) for k, v in flatten(loaded) if isinstance(v, np.ndarray))
    assert sorted(arrays) == sorted(expected.files)
    for key in expected.files:
        got, want = arrays[key], expected[key]
        assert got.dtype == want.dtype and got.shape == want.shape, f"{key}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}"
        assert np.array_equal(got, want), key
        assert got.flags.c_contiguous and got.flags.writeable, key
    # Views of one storage come back as separate arrays.
    arrays["state/shared.a"][0, 0] = -1
    assert arrays["state/shared.b"][0] == 10


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_pickle_that_would_run_code_is_refused(fmt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match=r"refused: .*'(posix|os)\.system'"):
        aimetcle.load_state_dict_file(os.path.join(FIXTURES, f"evil_{fmt}.pth"))
    assert not os.path.exists(tmp_path / "PWNED")


def test_damaged_files_are_clear_errors(tmp_path):
    source = os.path.join(FIXTURES, "tensors_legacy.pth")
    data = open(source, "rb").read()
    for name, content in [("truncated.pth", data[: len(data) - 40]), ("header.pth", data[:20]),
                          ("text.pth", b"not a checkpoint at all\n"), ("empty.pth", b"")]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=name):
            aimetcle.load_state_dict_file(path)
    zipped = open(os.path.join(FIXTURES, "tensors_zip.pth"), "rb").read()
    (tmp_path / "cut.pth").write_bytes(zipped[: len(zipped) // 2])
    with pytest.raises(CheckpointError):
        aimetcle.load_state_dict_file(tmp_path / "cut.pth")
    with pytest.raises(FileNotFoundError):
        aimetcle.load_state_dict_file(tmp_path / "missing.pth")


def test_hashes_are_checked(tmp_path):
    source = os.path.join(FIXTURES, "tensors_zip.pth")
    with pytest.raises(CheckpointError, match="sha256"):
        aimetcle.load_state_dict_file(source, sha256="0" * 64)
    # A name carrying torch hub's hash prefix that the content does not have.
    misnamed = tmp_path / "model-deadbeef.pth"
    shutil.copy(source, misnamed)
    with pytest.raises(CheckpointError, match="deadbeef"):
        aimetcle.load_state_dict_file(misnamed)


needs_sample = pytest.mark.skipif(not os.path.exists(MOBILENET), reason="../shared/data/imagenet_sample is not here")


@needs_sample
def test_torchvision_mobilenet_v2_checkpoint_loads_into_the_builder():
    state = aimetcle.load_state_dict_file(MOBILENET, sha256=MOBILENET_SHA256)
    assert len(state) == 314 and state["features.0.0.weight"].shape == (32, 3, 3, 3)
    model = models.mobilenet_v2(weights=MOBILENET)
    assert np.array_equal(model.features[0][0].weight, state["features.0.0.weight"])
    assert np.array_equal(model.classifier[1].bias, state["classifier.1.bias"])
