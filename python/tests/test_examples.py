"""AIMET's documented manual-mode CLE examples run on aimetcle (python/examples),
checked against the NumPy reference of every step."""

import copy
import os
import subprocess
import sys

import numpy as np
import pytest

from aimetcle import nn

import npref

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)
import post_training_techniques_examples as ex  # noqa: E402


def realistic_batchnorms(model, seed):
    """Trained-looking BN statistics (torchvision's init makes every BN an identity)."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight[...] = rng.uniform(0.2, 3, n)
            m.bias[...] = rng.normal(0, 2, n)
            m.running_mean[...] = rng.normal(0, 1, n)
            m.running_var[...] = rng.uniform(0.05, 4, n)


def capture(monkeypatch, owner, name, seed):
    """Wrap a model builder used by the example: record the model it builds."""
    built = {}
    real = getattr(owner, name)

    def builder(*args, **kwargs):
        kwargs.pop("pretrained", None)  # no pretrained weights offline: a seeded random init
        model = real(*args, **kwargs)
        realistic_batchnorms(model, seed)
        built["model"], built["original"] = model, copy.deepcopy(model)
        return model

    monkeypatch.setattr(owner, name, builder)
    return built


def bn(m):
    return m.weight, m.bias, m.running_mean, m.running_var, m.eps


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(b).max())))


def test_cross_layer_equalization_manual(monkeypatch):
    built = capture(monkeypatch, ex.models, "resnet18", seed=1)
    ex.cross_layer_equalization_manual()
    model, o = built["model"], built["original"]

    w1, b1 = npref.fold_after(o.conv1.weight, None, bn(o.bn1))
    w2, b2 = npref.fold_after(o.layer1[0].conv1.weight, None, bn(o.layer1[0].bn1))
    w1, b1, w2, s0 = npref.cls_pair((w1, b1, False, 1), (w2, b2, False, 1))
    w2, b2, w3, s1 = npref.cls_pair((w2, b2, False, 1), (o.layer1[0].conv2.weight, None, False, 1))
    b1, b2 = npref.high_bias_fold(b1, w2, b2, False, 1, o.bn1.weight, o.bn1.bias, s0, True)
    # pair 2's layer2 (layer1[0].conv2) has no bias: high-bias fold skips it

    close(model.conv1.weight, w1)
    close(model.conv1.bias, b1)
    close(model.layer1[0].conv1.weight, w2)
    close(model.layer1[0].conv1.bias, b2)
    close(model.layer1[0].conv2.weight, w3)
    assert model.layer1[0].conv2.bias is None
    assert isinstance(model.bn1, nn.Identity) and isinstance(model.layer1[0].bn1, nn.Identity)
    assert isinstance(model.layer1[0].bn2, nn.BatchNorm2d), "only the listed BNs are folded"


def test_cross_layer_equalization_depthwise_layers(monkeypatch):
    built = capture(monkeypatch, ex, "MobileNetV2", seed=2)
    ex.cross_layer_equalization_depthwise_layers()
    model, o = built["model"], built["original"]
    first, block = o.features[0], o.features[1].conv

    w1, b1 = npref.fold_after(first[0].weight, None, bn(first[1]))
    wdw, bdw = npref.fold_after(block[0].weight, None, bn(block[1]), False, block[0].groups)
    w3, b3 = npref.fold_after(block[3].weight, None, bn(block[4]))
    w1, b1, wdw, bdw, w3, s12, s23 = npref.cls_triplet((w1, b1, False, 1), (wdw, bdw, False, block[0].groups),
                                                       (w3, b3, False, 1))
    b1, bdw = npref.high_bias_fold(b1, wdw, bdw, False, block[0].groups, first[1].weight, first[1].bias, s12, True)
    bdw, b3 = npref.high_bias_fold(bdw, w3, b3, False, 1, block[1].weight, block[1].bias, s23, True)

    conv = model.features[1].conv
    for actual, expected in ((model.features[0][0].weight, w1), (model.features[0][0].bias, b1),
                             (conv[0].weight, wdw), (conv[0].bias, bdw), (conv[3].weight, w3), (conv[3].bias, b3)):
        close(actual, expected)
    assert not any(isinstance(m, nn.ReLU6) for m in model.modules()), "ReLU6 replaced by ReLU"
    for m in (model.features[0][1], conv[1], conv[4]):
        assert isinstance(m, nn.Identity)


def test_demo_script_runs():
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "run_examples.py")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "cross_layer_equalization_manual" in out.stdout
    assert "cross_layer_equalization_depthwise_layers" in out.stdout


def test_main_job_demo_writes_the_report(tmp_path):
    """`make demo`'s script on the digits model, shortened: the table and the report folder."""
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "demo.py"), "--imagenet", "none", "--iterations", "30",
                          "--quiet", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    table = out.stdout
    assert "digits model instead" in table, "it says why it is not the ImageNet demo"
    assert "W4A8 AdaRound" in table and table.count("per-channel") == 3 and table.count("per-tensor") == 3
    assert "AdaRound W4" not in table, "--quiet silences the progress lines"
    files = set(os.listdir(tmp_path))
    assert {"index.html", "results.json", "table.txt", "summary.svg", "changes_after_optimization.html"} <= files
    assert len([f for f in files if f.startswith("adaround_") and f.endswith(".svg")]) == 6
    assert len([f for f in files if f.startswith("changes_after_optimization_") and f.endswith(".svg")]) == 3
    page = (tmp_path / "index.html").read_text()
    assert page.count("<img") == 10 and "W4A8 AdaRound" in page
    assert "one y-scale" in page and "layers improved on nearest rounding" in page
    import json
    results = json.loads((tmp_path / "results.json").read_text())
    for row in results["rows"]:
        assert row["cells"]["W4A8 AdaRound"]["logit_mse"] < row["cells"]["W4A8 nearest"]["logit_mse"]
    for layers in results["adaround_layers"].values():
        assert len(layers) == 15 and all(e["kept_nearest"] or e["mse_adaround"] < e["mse_nearest"] for e in layers)


SAMPLE = os.path.join(EXAMPLES, "..", "..", "..", "shared", "data", "imagenet_sample")


@pytest.mark.skipif(not os.path.isdir(SAMPLE), reason="../shared/data/imagenet_sample is not here")
def test_main_job_demo_on_imagenet_mobilenet_v2(tmp_path):
    """The ImageNet story on a few images: CLE rescues W6A8 per-tensor, AdaRound improves on nearest W4."""
    pytest.importorskip("PIL")
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "demo.py"), "--calib", "32", "--eval", "64",
                          "--iterations", "20", "--quiet", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    assert "MobileNetV2" in out.stdout and "digits" not in out.stdout
    import json
    results = json.loads((tmp_path / "results.json").read_text())
    cells = {(r["variant"], r["weights"]): r["cells"] for r in results["rows"]}
    assert cells[("equalize_model", "per-tensor")]["W6A8"]["top1"] > cells[("BN folded", "per-tensor")]["W6A8"]["top1"] + 0.2
    w4 = cells[("BN folded", "per-channel")]
    assert w4["W4A8 AdaRound"]["logit_mse"] < w4["W4A8 nearest"]["logit_mse"]
