"""Our results against AIMET's own (aimet-torch 2.42), from tests/vectors."""

import json
import os

import numpy as np
import pytest

from aimetcle import batch_norm_fold, cross_layer_equalization, nn

HERE = os.path.join(os.path.dirname(__file__), "vectors")
with open(os.path.join(HERE, "cases.json")) as f:
    CASES = {case["name"]: case for case in json.load(f)}


def build(spec):
    kind = spec["type"]
    if kind.startswith("BatchNorm"):
        return getattr(nn, kind)(spec["num_features"], eps=spec["eps"])
    if kind == "Linear":
        return nn.Linear(spec["in_features"], spec["out_features"], bias=spec["bias"])
    return getattr(nn, kind)(spec["in_channels"], spec["out_channels"], tuple(spec["kernel_size"]),
                             padding=tuple(spec["padding"]), groups=spec["groups"], bias=spec["bias"])


def load_case(name):
    data = np.load(os.path.join(HERE, name + ".npz"))
    layers = [build(spec) for spec in CASES[name]["layers"]]
    for j, layer in enumerate(layers):
        for field in ("weight", "bias", "running_mean", "running_var"):
            key = f"in{j}.{field}"
            if key in data:
                setattr(layer, field, data[key].copy())
    return layers, data


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("cls_")])
def test_scale_cls_sets_matches_aimet(name):
    layers, data = load_case(name)
    scales = cross_layer_equalization.CrossLayerScaling.scale_cls_sets([tuple(layers)])
    if len(layers) == 3:
        close(scales[0][0], data["scale0"])
        close(scales[0][1], data["scale1"])
    else:
        close(scales[0], data["scale0"])
    for j, layer in enumerate(layers):
        close(layer.weight, data[f"out{j}.weight"])
        close(layer.bias, data[f"out{j}.bias"])


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("bnfold_") and "hbf" not in n])
def test_fold_given_batch_norms_matches_aimet(name):
    layers, data = load_case(name)
    model = nn.Sequential(*layers)
    batch_norm_fold.fold_given_batch_norms(model, [tuple(layers)])
    layer = next(m for m in layers if not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
    close(layer.weight, data["out.weight"])
    close(layer.bias, data["out.bias"])
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())


def test_fold_scale_and_high_bias_fold_match_aimet():
    (conv0, bn1, conv2, bn3), data = load_case("bnfold_cls_hbf_relu")
    model = nn.Sequential(conv0, bn1, nn.ReLU(), conv2, bn3)
    batch_norm_fold.fold_given_batch_norms(model, [(conv0, bn1), (conv2, bn3)])
    scales = cross_layer_equalization.CrossLayerScaling.scale_cls_sets([(conv0, conv2)])
    close(scales[0], data["scale0"])
    info = cross_layer_equalization.ClsSetInfo
    pair = info.ClsSetLayerPairInfo(conv0, conv2, scales[0], True)
    cross_layer_equalization.HighBiasFold.bias_fold([info(pair)], {conv0: bn1, conv2: bn3})
    close(conv0.weight, data["out0.weight"])
    close(conv0.bias, data["out0.bias"])
    close(conv2.weight, data["out2.weight"])
    close(conv2.bias, data["out2.bias"])
