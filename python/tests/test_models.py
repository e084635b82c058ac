"""aimetcle.models reproduces torchvision's (and AIMET's example) module trees.

Parameter counts and key names are torchvision's published ones; the digits
model is checked end to end: its trained torch state_dict loads strictly and
the NumPy reference forward reproduces its published test accuracy.
"""
import pathlib
import warnings

import numpy as np
import pytest

import reference
from aimetcle import models, nn

HERE = pathlib.Path(__file__).resolve()
# the bundled digits data set and trained model (data/README.md)
DATA = HERE.parents[2] / "data"


def n_params(model):
    return sum(p.size for p in model.parameters())


@pytest.fixture(scope="module")
def r18():
    return models.resnet18()


@pytest.fixture(scope="module")
def mbv2():
    return models.mobilenet_v2()


# ----------------------------------------------------------------------------
# Structure and names
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("build, params, keys", [
    (models.resnet18, 11_689_512, 122),
    (models.resnet34, 21_797_672, 218),
    (models.resnet50, 25_557_032, 320),
    (models.mobilenet_v2, 3_504_872, 314),
    (models.MobileNetV2, 3_504_872, 314),
])
def test_parameter_counts_match_torchvision(build, params, keys):
    model = build()
    assert n_params(model) == params
    assert len(model.state_dict()) == keys


def test_resnet18_keys_and_structure(r18):
    sd = r18.state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                "layer1.1.bn2.bias", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                "layer4.1.conv2.weight", "fc.weight", "fc.bias"):
        assert key in sd, key
    assert list(sd)[:7] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                            "bn1.num_batches_tracked", "layer1.0.conv1.weight"]
    assert list(sd)[-2:] == ["fc.weight", "fc.bias"]
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["fc.weight"].shape == (1000, 512)
    assert [n for n, _ in r18.named_children()] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                                     "layer3", "layer4", "avgpool", "fc"]
    block = r18.layer2[0]
    assert isinstance(block, models.BasicBlock) and block.stride == 2
    assert [n for n, _ in block.named_children()] == ["conv1", "bn1", "relu", "conv2", "bn2", "downsample"]
    assert r18.layer1[0].downsample is None and r18.layer2[1].downsample is None
    assert repr(r18.conv1) == "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"
    assert repr(r18.maxpool) == "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    assert repr(r18.avgpool) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    assert repr(block.relu) == "ReLU(inplace=True)"
    assert repr(r18).startswith("ResNet(\n  (conv1): Conv2d(3, 64")


def test_resnet50_bottleneck_structure():
    m = models.resnet50(num_classes=10)
    b = m.layer1[0]
    assert isinstance(b, models.Bottleneck)
    assert [n for n, _ in b.named_children()] == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu",
                                                  "downsample"]
    assert b.downsample[0].weight.shape == (256, 64, 1, 1)   # expansion 4 needs a projection at once
    assert m.layer2[0].conv2.stride == (2, 2)                 # torchvision v1.5: stride on the 3x3
    assert m.fc.weight.shape == (10, 2048)


def test_mobilenet_v2_keys_and_structure(mbv2):
    sd = mbv2.state_dict()
    for key in ("features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
                "features.1.conv.1.weight", "features.1.conv.2.running_mean", "features.2.conv.0.0.weight",
                "features.2.conv.1.0.weight", "features.2.conv.2.weight", "features.2.conv.3.running_mean",
                "features.17.conv.3.bias", "features.18.0.weight", "features.18.1.num_batches_tracked",
                "classifier.1.weight", "classifier.1.bias"):
        assert key in sd, key
    assert "features.19.0.weight" not in sd
    assert sd["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert sd["classifier.1.weight"].shape == (1000, 1280)
    f = mbv2.features
    assert len(f) == 19 and isinstance(f[0], models.Conv2dNormActivation)
    dw = f[1].conv[0][0]
    assert repr(dw) == "Conv2d(32, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=32, bias=False)"
    assert repr(f[1].conv[1]) == "Conv2d(32, 16, kernel_size=(1, 1), stride=(1, 1), bias=False)"
    assert len(f[1].conv) == 3 and len(f[2].conv) == 4
    assert [b.use_res_connect for b in list(f)[1:18]] == \
        [False, False, True, False, True, True, False, True, True, True, False, True, True, False, True, True, False]
    assert f[2].conv[1][0].stride == (2, 2) and f[2].conv[1][0].groups == 96
    assert repr(mbv2.classifier[0]) == "Dropout(p=0.2, inplace=False)"
    text = repr(mbv2)
    assert text.startswith("MobileNetV2(\n  (features): Sequential(\n    (0): Conv2dNormActivation(\n"
                           "      (0): Conv2d(3, 32, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
                           "      (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, "
                           "track_running_stats=True)\n      (2): ReLU6(inplace=True)\n")
    assert "    (1): InvertedResidual(\n" in text
    assert mbv2.features[0][1:]._modules.keys() == {"1", "2"}   # slicing a subclass gives a Sequential


def test_mobilenet_v2_width_multiplier_rounds_like_torchvision():
    assert models._make_divisible(32 * 0.35, 8) == 16 and models._make_divisible(1280 * 1.4, 8) == 1792
    m = models.mobilenet_v2(width_mult=0.5, num_classes=7)
    assert m.features[0][0].out_channels == 16 and m.classifier[1].weight.shape == (7, 1280)


def test_aimet_example_mobilenet_structure():
    m = models.MobileNetV2()
    conv = m.features[1].conv
    assert len(conv) == 5 and len(m.features[2].conv) == 8
    assert isinstance(conv[0], nn.Conv2d) and conv[0].groups == 32 and conv[0].bias is None
    assert isinstance(conv[1], nn.BatchNorm2d) and isinstance(conv[2], nn.ReLU6)
    assert isinstance(conv[3], nn.Conv2d) and conv[3].weight.shape == (16, 32, 1, 1)
    assert isinstance(conv[4], nn.BatchNorm2d) and conv[4].num_features == 16
    assert repr(m.features[-1]) == "AvgPool2d(kernel_size=7, stride=7, padding=0)"
    assert len(m.features) == 20 and repr(m.classifier[0]) == "Dropout(p=0.0, inplace=False)"
    assert "features.1.conv.0.weight" in m.state_dict() and "features.18.0.weight" in m.state_dict()
    assert repr(m.features[1]).startswith("InvertedResidual(")
    with pytest.raises(ValueError, match="multiple of 32"):
        models.MobileNetV2(input_size=100)


# ----------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------

def test_torchvision_initialisation(r18, mbv2):
    w = r18.layer3[0].conv2.weight                      # 256 x 256 x 3 x 3, fan_out = 2304
    assert abs(w.std() / np.sqrt(2 / 2304) - 1) < 0.02 and abs(w.mean()) < 1e-3
    assert all(np.all(m.weight == 1) and np.all(m.bias == 0) for m in r18.modules()
               if isinstance(m, nn.BatchNorm2d))
    assert np.abs(r18.fc.weight).max() <= 1 / np.sqrt(512)   # default Linear init
    fc = mbv2.classifier[1]
    assert abs(fc.weight.std() / 0.01 - 1) < 0.02 and np.all(fc.bias == 0)
    dw = mbv2.features[5].conv[1][0].weight             # 192 x 1 x 3 x 3: fan_out = 192 * 9
    assert abs(dw.std() / np.sqrt(2 / (192 * 9)) - 1) < 0.1
    for m in (r18, mbv2):
        assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in m.parameters())


def test_builders_are_reproducible_under_manual_seed():
    nn.manual_seed(3)
    a = models.mobilenet_v2(width_mult=0.35).state_dict()
    nn.manual_seed(3)
    b = models.mobilenet_v2(width_mult=0.35).state_dict()
    c = models.mobilenet_v2(width_mult=0.35).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["features.0.0.weight"], c["features.0.0.weight"])


# ----------------------------------------------------------------------------
# Pretrained weights (offline)
# ----------------------------------------------------------------------------

def test_pretrained_without_weights_refuses_with_instructions(monkeypatch, tmp_path):
    monkeypatch.delenv(models.WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth.*AIMETCLE_WEIGHTS_DIR.*pretrained=False"):
        models.resnet18(pretrained=True)
    monkeypatch.setenv(models.WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no mobilenet_v2-b0353104\.pth or mobilenet_v2\.npz in .*pip install"):
        models.mobilenet_v2(weights="IMAGENET1K_V1", width_mult=0.35)


def test_pretrained_reads_npz_from_weights_dir_and_paths(tmp_path, monkeypatch):
    nn.manual_seed(11)
    source = models.mobilenet_v2(width_mult=0.35, num_classes=3)
    path = tmp_path / "mobilenet_v2.npz"
    np.savez(path, **source.state_dict())
    monkeypatch.setenv(models.WEIGHTS_DIR_ENV, str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = [models.mobilenet_v2(pretrained=True, width_mult=0.35, num_classes=3),
                  models.mobilenet_v2(weights=str(path), width_mult=0.35, num_classes=3),
                  models.mobilenet_v2(weights=path, width_mult=0.35, num_classes=3),
                  models.mobilenet_v2(weights=source.state_dict(), width_mult=0.35, num_classes=3)]
    for m in loaded:
        for key, value in source.state_dict().items():
            np.testing.assert_array_equal(m.state_dict()[key], value)
    with pytest.raises(nn.StateDictError, match="size mismatch for classifier.1.weight"):
        models.mobilenet_v2(weights=path, width_mult=0.35)        # 1000 classes
    with pytest.raises(FileNotFoundError):
        models.resnet18(weights=str(tmp_path / "absent.npz"))


# ----------------------------------------------------------------------------
# Forward with the NumPy reference
# ----------------------------------------------------------------------------

X32 = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("build, kwargs", [
    (models.resnet18, {}), (models.resnet50, {"num_classes": 10}), (models.mobilenet_v2, {}),
    (models.MobileNetV2, {"input_size": 32}),
])
def test_models_run_under_the_reference_forward(build, kwargs):
    model = build(**kwargs).eval()
    y = reference.run(model, X32)
    assert y.shape == (1, kwargs.get("num_classes", 1000)) and y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.std(y) > 0


def test_basic_block_forward_is_torchvision_control_flow(r18):
    block = r18.layer2[0].eval()
    x = np.random.default_rng(1).standard_normal((2, 64, 8, 8)).astype(np.float32)
    with reference.numpy_forward():
        got = block(x)
        main = block.bn2(block.conv2(np.maximum(block.bn1(block.conv1(x)), 0)))
        expected = np.maximum(main + block.downsample(x), 0)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert got.shape == (2, 128, 4, 4)


def test_inverted_residual_adds_its_input():
    block = models.mobilenet_v2(width_mult=0.35).features[3].eval()
    assert block.use_res_connect
    x = np.random.default_rng(2).standard_normal((1, 8, 8, 8)).astype(np.float32)
    with reference.numpy_forward():
        np.testing.assert_allclose(block(x), x + block.conv(x), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------
# digits_mbv2: a real trained torch model
# ----------------------------------------------------------------------------

def test_digits_model_key_scheme_matches_the_torch_checkpoint():
    data = np.load(DATA / "digits_mbv2.npz")
    model = models.digits_mbv2()
    assert list(model.state_dict()) == list(data.files)
    for key in data.files:
        assert model.state_dict()[key].shape == data[key].shape, key
    assert n_params(model) == 34_682
    assert repr(model.features[0][2]) == "ReLU6()"       # digits_mbv2.py uses inplace=False


def test_digits_model_reaches_published_accuracy():
    data = np.load(DATA / "digits.npz")
    model = models.digits_mbv2(weights=DATA / "digits_mbv2.npz").eval()
    assert int(model.features[0][1].num_batches_tracked) == 1140
    logits = reference.run(model, data["x_test"])
    accuracy = float(np.mean(logits.argmax(axis=1) == data["y_test"]))
    assert logits.shape == (300, 10)
    assert accuracy >= 0.99, accuracy                     # README: 99.67 % (299 / 300)
