"""Auto mode (fold_all_batch_norms, equalize_model) on module trees and ONNX models: function kept, results
consistent across the two kinds of model, onnxruntime as an independent executor."""

import os
import warnings

import numpy as np
import pytest

import aimetcle
from aimetcle import batch_norm_fold, cross_layer_equalization as cle, models, nn, utils
from aimetcle import onnx as aonnx

import reference

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")
DIGITS_ONNX = os.path.join(DATA, "digits_mbv2.onnx")
DIGITS_NPZ = os.path.join(DATA, "digits_mbv2.npz")
X = np.load(os.path.join(DATA, "digits.npz"))["x_test"][:24]


def digits():
    return models.digits_mbv2(weights=DIGITS_NPZ).eval()


def realistic_batchnorms(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight[...] = rng.uniform(0.3, 2, n)
            m.bias[...] = rng.normal(0, 1, n)
            m.running_mean[...] = rng.normal(0, 0.5, n)
            m.running_var[...] = rng.uniform(0.3, 2, n)
    return model


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("build, shape", [
    (digits, (1, 1, 16, 16)),
    (lambda: realistic_batchnorms(models.mobilenet_v2().eval()), (1, 3, 32, 32)),
    (lambda: realistic_batchnorms(models.resnet18().eval()), (1, 3, 32, 32)),
])
def test_fold_and_scale_keep_the_function(build, shape):
    model = build()
    x = X[:, :, :shape[2], :shape[3]] if shape[1] == 1 else np.random.default_rng(1).normal(size=(4,) + shape[1:]).astype(np.float32)
    expected = reference.run(model, x)
    batchnorms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    pairs = batch_norm_fold.fold_all_batch_norms(model, shape)
    assert len(pairs) == len(batchnorms), "every BN of these models follows a conv"
    assert {id(bn) for _, bn in pairs} == {id(bn) for bn in batchnorms}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert rel(reference.run(model, x), expected) < 1e-4
    utils.replace_modules_of_type1_with_type2(model, nn.ReLU6, nn.ReLU)
    relu_model = reference.run(model, x)
    infos = cle.CrossLayerScaling.scale_model(model, shape)
    assert infos, "the models have CLS sets"
    assert rel(reference.run(model, x), relu_model) < 1e-4
    starts = {id(i.cls_pair_info_list[0].layer1) for i in infos}
    for info in infos:
        for pair in info.cls_pair_info_list:
            if id(pair.layer2) in starts:
                continue  # a later set rescales layer2's outputs, and so its input ranges
            r1 = np.abs(pair.layer1.weight).reshape(pair.layer1.weight.shape[0], -1).max(axis=1)
            w2 = pair.layer2.weight
            c2 = (np.abs(w2).max(axis=(1, 2, 3)) if pair.layer2.groups == w2.shape[0] and w2.shape[1] == 1
                  else np.abs(w2).max(axis=(0, 2, 3)))
            if len(info.cls_pair_info_list) == 1:
                np.testing.assert_allclose(r1, c2, rtol=1e-5)  # after CLS, r(W1') == c(W2')


def test_equalize_model_equals_the_primitive_sequence():
    auto, manual = digits(), digits()
    with pytest.warns(UserWarning, match="replaced 10 ReLU6"):
        infos = cle.equalize_model(auto, (1, 1, 16, 16))
    pairs = batch_norm_fold.fold_all_batch_norms(manual, (1, 1, 16, 16))
    utils.replace_modules_of_type1_with_type2(manual, nn.ReLU6, nn.ReLU)
    manual_infos = cle.CrossLayerScaling.scale_model(manual, (1, 1, 16, 16))
    cle.HighBiasFold.bias_fold(manual_infos, {layer: bn for layer, bn in pairs})
    assert [len(i.cls_pair_info_list) for i in infos] == [2, 2, 2, 2, 1]
    a, m = auto.state_dict(), manual.state_dict()
    assert a.keys() == m.keys()
    for key in a:
        np.testing.assert_allclose(a[key], m[key], rtol=1e-6, atol=1e-7, err_msg=key)
    accuracy = (reference.run(auto, X).argmax(1) == np.load(os.path.join(DATA, "digits.npz"))["y_test"][:24]).mean()
    assert accuracy >= 0.95


def test_keep_relu6_scales_nothing_across_it():
    model = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ReLU6 warning either
        infos = cle.equalize_model(model, (1, 1, 16, 16), keep_relu6=True)
    assert [s.layer2 for i in infos for s in i.cls_pair_info_list] == [model.features[5][0]]
    assert sum(isinstance(m, nn.ReLU6) for m in model.modules()) == 10


def test_failed_equalize_leaves_the_model_as_it_was():
    model = digits()
    model.features[3].conv[2].weight[0, 0, 0, 0] = np.nan
    before = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    kinds = [type(m) for m in model.modules()]
    with pytest.raises(ValueError, match="not finite"):
        quiet(cle.equalize_model, model, (1, 1, 16, 16))
    assert [type(m) for m in model.modules()] == kinds, "ReLU6 and BN modules are back"
    after = model.state_dict()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


# --- ONNX models -----------------------------------------------------------------

ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_onnx_equalize_matches_the_module_tree(tmp_path):
    onnx_model = aonnx.load(DIGITS_ONNX)
    assert isinstance(onnx_model.state_dict()["features.0.0.weight"], np.ndarray)
    assert sum(isinstance(m, nn.BatchNorm2d) for _, m in onnx_model.named_modules()) == 14
    infos = quiet(cle.equalize_model, onnx_model)
    tree = digits()
    quiet(cle.equalize_model, tree, (1, 1, 16, 16))
    assert len(infos) == 5
    tree_sd, onnx_sd = tree.state_dict(), onnx_model.state_dict()
    for key in tree_sd:
        if key in onnx_sd:
            np.testing.assert_allclose(onnx_sd[key], tree_sd[key], rtol=1e-6, atol=1e-7, err_msg=key)
    out = tmp_path / "eq.onnx"
    aonnx.save(onnx_model, out)
    assert rel(run_onnx(str(out), X), reference.run(tree, X)) < 1e-4


def test_onnx_equalize_keeps_the_function_without_relu6_and_hbf(tmp_path):
    model = aonnx.load(DIGITS_ONNX)
    handle = model.handle
    handle.equalize(aimetcle._lib.AIMET_EQUALIZE_KEEP_RELU6 | aimetcle._lib.AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD)
    handle.save_onnx(str(tmp_path / "m.onnx"))
    assert rel(run_onnx(str(tmp_path / "m.onnx"), X), run_onnx(DIGITS_ONNX, X)) < 1e-5


def test_onnx_manual_mode_through_node_views(tmp_path):
    model = aonnx.load(DIGITS_ONNX)
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    bns = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    views = dict(model.named_modules())
    expand, dw = views[convs[1]], views[convs[2]]
    batch_norm_fold.fold_given_batch_norms(model, [(expand, views[bns[1]]), (dw, views[bns[2]])])
    assert views[convs[1]] is model._modules[convs[1]], "views survive a graph operation"
    assert expand.bias is not None and bns[1] not in dict(model.named_modules())
    utils.replace_modules_of_type1_with_type2(model, nn.ReLU6, nn.ReLU)
    assert not any(isinstance(m, nn.ReLU6) for _, m in model.named_modules())
    cle.CrossLayerScaling.scale_cls_sets([(expand, dw)])
    aonnx.save(model, tmp_path / "manual.onnx")
    reference_model = aonnx.load(DIGITS_ONNX)
    utils.replace_modules_of_type1_with_type2(reference_model, nn.ReLU6, nn.ReLU)
    aonnx.save(reference_model, tmp_path / "relu.onnx")
    assert rel(run_onnx(str(tmp_path / "manual.onnx"), X), run_onnx(str(tmp_path / "relu.onnx"), X)) < 1e-4


def test_tensorflow_style_entry_point_limits_the_region():
    from aimetcle.tensorflow.cross_layer_equalization import equalize_model
    model = aonnx.load(DIGITS_ONNX)
    names = [name for name, _ in model.named_modules() if name]
    first_block_end = next(n for n in names if "features.1/conv/conv.2/Conv" in n)
    result = quiet(equalize_model, model, "input", first_block_end)
    assert result is model
    remaining = sum(isinstance(m, nn.BatchNorm2d) for _, m in model.named_modules())
    assert remaining == 14 - 3, "only the stem, expand and depthwise BNs lie before the end op"
    with pytest.raises(KeyError, match="no node or value named 'nope'"):
        equalize_model(aonnx.load(DIGITS_ONNX), "nope", first_block_end)


def test_module_tree_exports_to_onnx(tmp_path):
    model = digits()
    aonnx.save(model, tmp_path / "tree.onnx", input_shapes=(1, 1, 16, 16))
    assert rel(run_onnx(str(tmp_path / "tree.onnx"), X[:1]), reference.run(model, X[:1])) < 1e-5
    prelu = nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4), nn.Conv2d(4, 2, 1)).eval()
    x = np.random.default_rng(0).normal(size=(1, 3, 6, 6)).astype(np.float32)
    aonnx.save(prelu, tmp_path / "prelu.onnx", dummy_input=x)
    assert rel(run_onnx(str(tmp_path / "prelu.onnx"), x), reference.run(prelu, x)) < 1e-5


def test_unknown_ops_survive_a_round_trip(tmp_path):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(DIGITS_ONNX)
    custom = onnx.helper.make_node("Fancy", [proto.graph.output[0].name], ["fancy_out"], name="fancy",
                                   domain="com.example", mode="wild")
    proto.graph.node.append(custom)
    proto.graph.output[0].name = "fancy_out"
    proto.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    proto.metadata_props.append(onnx.StringStringEntryProto(key="owner", value="me"))
    path = tmp_path / "custom.onnx"
    onnx.save(proto, path)
    model = aonnx.load(path)
    quiet(cle.equalize_model, model)
    aonnx.save(model, path)
    saved = onnx.load(path)
    assert [n for n in saved.graph.node if n.name == "fancy"][0] == custom
    assert saved.metadata_props[0].value == "me"
    assert not [n for n in saved.graph.node if n.op_type == "BatchNormalization"]


def test_bad_files_are_clear_errors_and_save_is_atomic(tmp_path):
    onnx = pytest.importorskip("onnx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        aonnx.load(tmp_path / "missing.onnx")
    data = open(DIGITS_ONNX, "rb").read()
    (tmp_path / "cut.onnx").write_bytes(data[:len(data) // 3])
    with pytest.raises(ValueError, match="not a valid ONNX model|truncated"):
        aonnx.load(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello")
    with pytest.raises(ValueError):
        aonnx.load(tmp_path / "text.onnx")
    proto = onnx.load(DIGITS_ONNX)
    onnx.save_model(proto, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=0)
    with pytest.raises(ValueError, match="external"):
        aonnx.load(tmp_path / "ext.onnx")
    proto.opset_import[0].version = 3
    onnx.save(proto, tmp_path / "old.onnx")
    with pytest.raises(ValueError, match="opset 3"):
        aonnx.load(tmp_path / "old.onnx")
    model = aonnx.load(DIGITS_ONNX)
    with pytest.raises(OSError):
        aonnx.save(model, tmp_path / "no" / "such" / "dir.onnx")
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"old contents")
    model._modules[next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))].weight = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="has shape"):
        aonnx.save(model, target)
    assert target.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)).count("keep.onnx") == 1 and not [p for p in os.listdir(tmp_path) if "tmp" in p]
