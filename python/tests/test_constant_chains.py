"""Constants restated by nodes: the classic PyTorch exporter writes ``b2 = Identity(b1)`` where two
initializers are equal, and some exporters give weights or BN statistics as Constant nodes. At load
those become constants, so BN folding finds every BN, the executor runs the file, and a save hands back
a model onnxruntime runs to the same outputs. BNs left unfolded are named in a warning with the reason.
"""

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import batch_norm_fold  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402


def ort_run(path, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def deduplicated_model(path, rng):
    """x -> Conv -> BN -> Relu -> Conv -> BN -> y; the second BN's scale, bias and var are Identity
    nodes of the first's (equal values, de-duplicated as torch does), its mean a Constant node, and the
    second conv's bias an Identity of a Constant."""
    c = 8
    init = {
        "w1": rng.standard_normal((c, 3, 3, 3)).astype(np.float32) * 0.3,
        "w2": rng.standard_normal((c, c, 1, 1)).astype(np.float32) * 0.3,
        "g1": rng.uniform(0.5, 1.5, c).astype(np.float32),
        "b1": rng.standard_normal(c).astype(np.float32) * 0.1,
        "m1": rng.standard_normal(c).astype(np.float32) * 0.1,
        "v1": rng.uniform(0.5, 2.0, c).astype(np.float32),
    }
    mean2 = rng.standard_normal(c).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g1", "b1", "m1", "v1"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Constant", [], ["bias2_src"], name="const_bias",
                         value=numpy_helper.from_array(np.full(c, 0.05, np.float32))),
        helper.make_node("Identity", ["bias2_src"], ["bias2"], name="id_bias"),
        helper.make_node("Conv", ["r1", "w2", "bias2"], ["c2"], name="conv2"),
        helper.make_node("Identity", ["g1"], ["g2"], name="id_g"),
        helper.make_node("Identity", ["b1"], ["b2"], name="id_b"),
        helper.make_node("Identity", ["v1"], ["v2"], name="id_v"),
        helper.make_node("Constant", [], ["m2"], name="const_m", value=numpy_helper.from_array(mean2)),
        helper.make_node("BatchNormalization", ["c2", "g2", "b2", "m2", "v2"], ["y"], name="bn2"),
    ]
    graph = helper.make_graph(nodes, "dedup", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_identity_and_constant_restated_constants_fold(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "dedup.onnx"
    deduplicated_model(path, rng)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    reference = ort_run(path, x)
    model = aonnx.load(path)
    np.testing.assert_allclose(model(x), reference, rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every BN folds: no warning
        pairs = batch_norm_fold.fold_all_batch_norms(model, None)
    assert len(pairs) == 2
    np.testing.assert_allclose(model(x), reference, rtol=1e-4, atol=1e-5)
    saved = tmp_path / "folded.onnx"
    aonnx.save(model, saved)
    np.testing.assert_allclose(ort_run(saved, x), reference, rtol=1e-4, atol=1e-5)
    kinds = {n.op_type for n in onnx.load(str(saved)).graph.node}
    assert "BatchNormalization" not in kinds and "Identity" not in kinds


def test_unfolded_batchnorms_are_named_with_the_reason(tmp_path):
    rng = np.random.default_rng(4)
    c = 4
    init = {"w": rng.standard_normal((c, 3, 1, 1)).astype(np.float32),
            "g": np.ones(2 * c, np.float32), "b": np.zeros(2 * c, np.float32),
            "m": np.zeros(2 * c, np.float32), "v": np.ones(2 * c, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Concat", ["c", "c"], ["cat"], name="cat", axis=1),
        helper.make_node("BatchNormalization", ["cat", "g", "b", "m", "v"], ["y"], name="bn_after_concat"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    loaded = aonnx.load(tmp_path / "m.onnx")
    with pytest.warns(UserWarning, match=r"BatchNorm 'bn_after_concat' is not folded: it follows 'cat', a Concat"):
        assert batch_norm_fold.fold_all_batch_norms(loaded, None) == []
