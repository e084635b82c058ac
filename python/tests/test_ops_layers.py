"""Layer ops against onnxruntime: Conv / ConvTranspose with weights at run time and over 3
spatial axes, Gemm and MatMul batch splitting, MatMul vector and attention shapes, Einsum.

Each test builds a tiny ONNX model, runs it in onnxruntime (graph optimizations off) and
through ``aimetcle.onnx.load`` on both plans (fused, and exact by capturing an input), for
batch sizes 1 and 3 on a symbolic batch axis (``check`` of test_runtime), at ``LINEAR``
(1e-4 relative, products summing many terms). Refusals assert the message names the node
and the reason.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402
from test_runtime import LINEAR, check, make_model, randn, rng_for  # noqa: E402


def concrete(shape, n):
    return [n if d == "N" else d for d in shape]


def feeds_for(shapes, seed=0):
    """make_feeds for graph inputs {name: shape with "N"}."""
    def feeds(n):
        rng = np.random.default_rng(seed + n)
        return {name: randn(rng, *concrete(shape, n), scale=0.5) for name, shape in shapes.items()}
    return feeds


def refusal(tmp_path, nodes, inputs, outputs, feeds, initializers=None, opset=17):
    """The error a run (or the load) raises, as text."""
    graph = helper.make_graph(
        nodes, "refusal",
        [helper.make_tensor_value_info(n, dtype, shape) for n, dtype, shape in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = str(tmp_path / "refusal.onnx")
    onnx.save(model, path)
    with pytest.raises(aimetcle.AimetError) as error:
        loaded = aonnx.load(path)
        loaded(*feeds)
    return str(error.value)


# --- Conv / ConvTranspose with weights at run time ------------------------------------

RUNTIME_CONV = [
    # (id, op, x shape, weight shape, bias, attributes)
    ("conv2d", "Conv", ["N", 3, 9, 8], [3, 3, 3, 3], True, dict(pads=[1, 1, 1, 1])),
    ("conv2d-nobias-s2", "Conv", ["N", 4, 9, 8], [5, 4, 3, 2], False, dict(strides=[2, 2])),
    ("conv2d-group-same", "Conv", ["N", 4, 9, 8], [6, 2, 3, 3], True, dict(group=2, auto_pad="SAME_UPPER", strides=[2, 1])),
    ("conv2d-depthwise", "Conv", ["N", 3, 9, 8], [3, 1, 3, 3], True, dict(group=3, pads=[1, 0, 1, 2])),
    ("conv2d-3x3-wide", "Conv", ["N", 16, 10, 12], [16, 16, 3, 3], True, dict(pads=[1, 1, 1, 1])),
    ("conv1d", "Conv", ["N", 3, 17], [5, 3, 4], True, dict(dilations=[2], pads=[1, 2])),
    ("conv3d", "Conv", ["N", 2, 5, 6, 7], [3, 2, 3, 2, 3], True, dict(pads=[1, 0, 1, 1, 1, 0], strides=[1, 2, 2])),
    ("convt2d", "ConvTranspose", ["N", 3, 5, 4], [3, 2, 3, 3], True, dict(strides=[2, 2], pads=[1, 0, 0, 1])),
    ("convt2d-group", "ConvTranspose", ["N", 4, 5, 4], [4, 3, 2, 3], False, dict(group=2, strides=[2, 1])),
    ("convt1d", "ConvTranspose", ["N", 3, 7], [3, 4, 3], True, dict(strides=[3], output_padding=[1])),
    ("convt3d", "ConvTranspose", ["N", 2, 3, 4, 3], [2, 3, 2, 3, 2], True, dict(strides=[2, 1, 2])),
]


@pytest.mark.parametrize("op,x_shape,w_shape,bias,attrs", [c[1:] for c in RUNTIME_CONV], ids=[c[0] for c in RUNTIME_CONV])
def test_runtime_weights(tmp_path, op, x_shape, w_shape, bias, attrs):
    """Weight and bias as graph inputs. The weight's first axis is 3 for several cases, equal to
    batch 3: the batch must not be split (the weights index channels, not images)."""
    m = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
    inputs = {"x": x_shape, "w": w_shape}
    if bias:
        inputs["b"] = [m]
    node = helper.make_node(op, list(inputs), ["y"], name="layer", **attrs)
    path = make_model(tmp_path, [node], list(inputs.items()), ["y"])
    check(path, feeds_for(inputs), LINEAR)


def test_runtime_weight_computed(tmp_path):
    """A weight computed in the graph (scaled by an input), an initializer bias."""
    rng = rng_for("computed-weight")
    nodes = [helper.make_node("Mul", ["w0", "s"], ["w"]),
             helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["y"], ["z"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 8, 8]), ("s", [1])], ["z"],
                      {"w0": randn(rng, 4, 3, 3, 3), "b": randn(rng, 4)})
    check(path, lambda n: {"x": randn(rng, n, 3, 8, 8), "s": np.array([1.7], np.float32)}, LINEAR)


def test_runtime_bias_only(tmp_path):
    """A constant weight with a bias from the input: the run-time path too."""
    rng = rng_for("runtime-bias")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")
    path = make_model(tmp_path, [node], [("x", ["N", 3, 6, 6]), ("b", [4])], ["y"], {"w": randn(rng, 4, 3, 3, 3)})
    check(path, feeds_for({"x": ["N", 3, 6, 6], "b": [4]}), LINEAR)


def test_runtime_weight_channel_mismatch(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv_bad")
    message = refusal(tmp_path, [node], [("x", TensorProto.FLOAT, ["N", 3, 6, 6]), ("w", TensorProto.FLOAT, [4, 2, 3, 3])],
                      ["y"], [np.ones((1, 3, 6, 6), np.float32), np.ones((4, 2, 3, 3), np.float32)])
    assert "conv_bad" in message and "channels" in message


def test_conv_int64_weight_refused(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv_int")
    message = refusal(tmp_path, [node], [("x", TensorProto.FLOAT, ["N", 3, 6, 6]), ("w", TensorProto.INT64, [4, 3, 3, 3])],
                      ["y"], [np.ones((1, 3, 6, 6), np.float32), np.ones((4, 3, 3, 3), np.int64)])
    assert "conv_int" in message and "int64" in message


# --- 3-D convolutions ---------------------------------------------------------------------

CONV3D = [
    # (id, C_in, C_out, kernel, attributes, bias)
    ("k3", 3, 4, (3, 3, 3), {}, True),
    ("pads-strides", 3, 4, (3, 2, 3), dict(pads=[1, 0, 2, 1, 1, 0], strides=[2, 1, 2]), True),
    ("dilations", 2, 3, (2, 3, 2), dict(dilations=[2, 1, 2], pads=[1, 1, 1, 1, 1, 1]), False),
    ("group", 4, 6, (3, 3, 3), dict(group=2, pads=[1, 1, 1, 1, 1, 1]), True),
    ("depthwise", 3, 3, (3, 3, 3), dict(group=3, strides=[1, 2, 2]), True),
    ("same-upper", 3, 4, (2, 3, 4), dict(auto_pad="SAME_UPPER", strides=[2, 2, 1]), True),
    ("same-lower", 3, 4, (2, 3, 4), dict(auto_pad="SAME_LOWER", strides=[1, 2, 3]), False),
    ("valid", 3, 4, (3, 3, 3), dict(auto_pad="VALID", strides=[2, 2, 2]), True),
    ("pointwise", 5, 4, (1, 1, 1), {}, True),
]


@pytest.mark.parametrize("cin,cout,kernel,attrs,bias", [c[1:] for c in CONV3D], ids=[c[0] for c in CONV3D])
def test_conv3d(tmp_path, cin, cout, kernel, attrs, bias):
    rng = rng_for("conv3d", cin, cout, kernel, str(attrs))
    inits = {"w": randn(rng, cout, cin // attrs.get("group", 1), *kernel, scale=0.5)}
    if bias:
        inits["b"] = randn(rng, cout)
    node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv", kernel_shape=list(kernel), **attrs)
    path = make_model(tmp_path, [node], [("x", ["N", cin, 7, 8, 9])], ["y"], inits)
    check(path, feeds_for({"x": ["N", cin, 7, 8, 9]}), LINEAR)


def test_conv3d_fused_batchnorm_add_relu(tmp_path):
    """Conv3d + BatchNormalization + residual Add + Relu: the fused plan folds them into the conv."""
    rng = rng_for("conv3d-fused")
    c = 4
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1] * 6),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mu", "var"], ["bn"]),
             helper.make_node("Add", ["bn", "x"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    inits = {"w": randn(rng, c, c, 3, 3, 3, scale=0.3), "b": randn(rng, c), "g": randn(rng, c),
             "beta": randn(rng, c), "mu": randn(rng, c), "var": np.abs(randn(rng, c)) + 0.5}
    path = make_model(tmp_path, nodes, [("x", ["N", c, 5, 6, 7])], ["y"], inits)
    check(path, feeds_for({"x": ["N", c, 5, 6, 7]}), LINEAR)


CONVT3D = [
    ("basic", 3, 4, (3, 3, 3), {}, True),
    ("strides-pads", 3, 4, (3, 2, 3), dict(strides=[2, 1, 2], pads=[1, 0, 1, 0, 1, 1]), True),
    ("output-padding", 2, 3, (3, 3, 3), dict(strides=[2, 2, 3], output_padding=[1, 0, 2]), False),
    ("group-dilations", 4, 6, (2, 2, 2), dict(group=2, dilations=[2, 1, 2]), True),
    ("output-shape", 3, 2, (3, 3, 3), dict(strides=[2, 2, 2], output_shape=[9, 10, 8]), True),
    ("same-upper", 3, 2, (3, 2, 3), dict(strides=[2, 2, 1], auto_pad="SAME_UPPER"), True),
]


@pytest.mark.parametrize("cin,cout,kernel,attrs,bias", [c[1:] for c in CONVT3D], ids=[c[0] for c in CONVT3D])
def test_conv_transpose3d(tmp_path, cin, cout, kernel, attrs, bias):
    rng = rng_for("convt3d", cin, cout, kernel, str(attrs))
    inits = {"w": randn(rng, cin, cout // attrs.get("group", 1), *kernel, scale=0.5)}
    if bias:
        inits["b"] = randn(rng, cout)
    node = helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if bias else []), ["y"], name="convt",
                            kernel_shape=list(kernel), **attrs)
    path = make_model(tmp_path, [node], [("x", ["N", cin, 4, 5, 3])], ["y"], inits)
    check(path, feeds_for({"x": ["N", cin, 4, 5, 3]}), LINEAR)


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_transpose_output_shape_beyond_full(tmp_path, dims):
    """output_shape one larger than the largest output on each axis: the extra positions hold the bias."""
    rng = rng_for("convt-beyond", dims)
    spatial = [3, 4][:dims]
    full = [3 * (s - 1) + 3 for s in spatial]
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="convt", strides=[3] * dims,
                            output_shape=[f + 1 for f in full])
    path = make_model(tmp_path, [node], [("x", ["N", 2, *spatial])], ["y"],
                      {"w": randn(rng, 2, 3, *[3] * dims), "b": randn(rng, 3)})
    check(path, feeds_for({"x": ["N", 2, *spatial]}), LINEAR)


# --- Gemm / MatMul -----------------------------------------------------------------------------

def test_gemm_runtime_b_batch_sized(tmp_path):
    """B computed at run time with as many rows (K) as the batch: a batch split would cut B."""
    node = helper.make_node("Gemm", ["A", "B", "C"], ["Y"], name="gemm")
    path = make_model(tmp_path, [node], [("A", ["N", 3]), ("B", [3, 4]), ("C", ["N", 4])], ["Y"])
    check(path, feeds_for({"A": ["N", 3], "B": [3, 4], "C": ["N", 4]}), LINEAR)


def test_gemm_constant_c_per_row(tmp_path):
    """A constant C with one row per output row: batch 3 only (C fixes M)."""
    rng = rng_for("gemm-c-rows")
    node = helper.make_node("Gemm", ["A", "B", "C"], ["Y"], name="gemm", transB=1)
    path = make_model(tmp_path, [node], [("A", ["N", 5])], ["Y"], {"B": randn(rng, 4, 5), "C": randn(rng, 3, 4)})
    check(path, feeds_for({"A": ["N", 5]}), LINEAR, batches=(3,))


MATMUL = [
    # (id, A shape, B shape, B constant)
    ("1d-1d", [7], [7], True),
    ("1d-x-3d", [6], ["N", 6, 5], False),
    ("3d-x-1d", ["N", 4, 6], [6], False),
    ("2d-x-1d-runtime", ["N", 6], [6], False),
    ("runtime-b-batch-sized", ["N", 3], [3, 3], False),
    ("2d-a-x-3d-b", [4, 6], ["N", 6, 5], False),
    ("bcast-both", ["N", 1, 4, 6], [1, 3, 6, 5], False),
    ("attention-scores", ["N", 4, 64, 32], ["N", 4, 32, 64], False),
    ("attention-values", ["N", 4, 64, 64], ["N", 4, 64, 32], False),
    ("large-rows", ["N", 300, 128], [128, 96], True),
]


@pytest.mark.parametrize("a_shape,b_shape,b_const", [c[1:] for c in MATMUL], ids=[c[0] for c in MATMUL])
def test_matmul(tmp_path, a_shape, b_shape, b_const):
    rng = rng_for("matmul", str(a_shape), str(b_shape))
    node = helper.make_node("MatMul", ["A", "B"], ["Y"], name="matmul")
    if b_const:
        path = make_model(tmp_path, [node], [("A", a_shape)], ["Y"], {"B": randn(rng, *b_shape)})
        check(path, feeds_for({"A": a_shape}), LINEAR)
    else:
        path = make_model(tmp_path, [node], [("A", a_shape), ("B", b_shape)], ["Y"])
        check(path, feeds_for({"A": a_shape, "B": b_shape}), LINEAR)


def test_matmul_constant_a(tmp_path):
    """A constant, B from the input with batch axes: each item reads all of A."""
    rng = rng_for("matmul-const-a")
    node = helper.make_node("MatMul", ["A", "B"], ["Y"], name="matmul")
    path = make_model(tmp_path, [node], [("B", ["N", 6, 5])], ["Y"], {"A": randn(rng, 4, 6)})
    check(path, feeds_for({"B": ["N", 6, 5]}), LINEAR)


def test_matmul_int64_refused(tmp_path):
    node = helper.make_node("MatMul", ["A", "B"], ["Y"], name="matmul_int")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.INT64, ["N", 3]),
                                            helper.make_tensor_value_info("B", TensorProto.INT64, [3, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    with pytest.raises(aimetcle.AimetError) as error:
        aonnx.load(path)(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))
    assert "matmul_int" in str(error.value) and "int64" in str(error.value)


# --- Einsum ---------------------------------------------------------------------------------

EINSUM = [
    # (equation, A shape, B shape, which operands are constants)
    ("bij,bjk->bik", ["N", 3, 4], ["N", 4, 5], ""),
    ("bhid,bhjd->bhij", ["N", 2, 5, 8], ["N", 2, 6, 8], ""),
    ("bhij,bhjd->bhid", ["N", 2, 5, 6], ["N", 2, 6, 8], ""),
    ("ij,jk", ["N", 4], [4, 5], "B"),
    ("ij,jk->ik", ["N", 4], [4, 5], ""),
    ("bi,bi->b", ["N", 7], ["N", 7], ""),
    ("ji,jk->ik", [4, "N"], [4, 5], "B"),
    ("ij,kj->ik", ["N", 4], [5, 4], "B"),
    ("bij,bkj->bki", ["N", 3, 4], ["N", 5, 4], ""),
    ("ibj,jbk->bik", [3, "N", 4], [4, "N", 5], ""),
    ("...ij,...jk->...ik", ["N", 2, 3, 4], [1, 2, 4, 5], "B"),
    ("...ij,jk", ["N", 3, 4], [4, 5], "B"),
    ("bij,jk->bik", ["N", 3, 4], [4, 5], "B"),
    ("nc,ck->nk", ["N", 6], [6, 3], "B"),
    ("bhqd,bkhd->bhqk", ["N", 2, 3, 4], ["N", 5, 2, 4], ""),
    ("ij,ij", [3, 4], [3, 4], "B"),
    ("bi,j->bij", ["N", 3], [4], "B"),
    ("kj,bij->bik", [5, 4], ["N", 3, 4], "A"),
]


@pytest.mark.parametrize("equation,a_shape,b_shape,consts", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(tmp_path, equation, a_shape, b_shape, consts):
    rng = rng_for("einsum", equation)
    node = helper.make_node("Einsum", ["A", "B"], ["Y"], name="einsum", equation=equation)
    shapes = {"A": a_shape, "B": b_shape}
    inits = {k: randn(rng, *shapes[k]) for k in consts}
    inputs = {k: s for k, s in shapes.items() if k not in consts}
    path = make_model(tmp_path, [node], list(inputs.items()), ["Y"], inits, opset=12)
    check(path, feeds_for(inputs), LINEAR, batches=(1, 3) if "N" in str(list(inputs.values())) else (1,))


@pytest.mark.parametrize("equation,operands,reason", [
    ("ii,ij->j", 2, "diagonal"),
    ("ij,jk->k", 2, "summed within one operand"),
    ("...ij,...jk->ik", 2, "'...' dimensions are summed"),
    ("ij->ji", 1, "1 operands"),
    ("ij,jk,kl->il", 3, "3 operands"),
])
def test_einsum_refused(tmp_path, equation, operands, reason):
    names = ["A", "B", "C"][:operands]
    node = helper.make_node("Einsum", names, ["Y"], name="einsum_x", equation=equation)
    message = refusal(tmp_path, [node], [(n, TensorProto.FLOAT, [3, 3]) for n in names], ["Y"],
                      [np.ones((3, 3), np.float32)] * operands, opset=12)
    assert "einsum_x" in message and equation in message and reason in message


# --- Attention (opset 23/24) -----------------------------------------------------------------

def make_typed_model(tmp_path, nodes, inputs, outputs, initializers=None, opset=23):
    """``inputs``: (name, TensorProto type, shape with "N")."""
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info(n, dtype, shape) for n, dtype, shape in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    path = str(tmp_path / "attention.onnx")
    onnx.save(model, path)
    return path


def typed_feeds(inputs, seed=0, masks=None):
    """make_feeds: float inputs random, bool inputs random with each row keeping one True,
    int64 inputs from ``masks[name](n)``."""
    def feeds(n):
        rng = np.random.default_rng(seed + n)
        out = {}
        for name, dtype, shape in inputs:
            dims = concrete(shape, n)
            if dtype == TensorProto.BOOL:
                mask = rng.random(dims) < 0.7
                mask[..., 0] = True
                out[name] = mask
            elif dtype == TensorProto.INT64:
                out[name] = masks[name](n)
            else:
                out[name] = randn(rng, *dims)
        return out
    return feeds


F, B, I = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64

ATTENTION = [
    # (id, inputs (name, type, shape), outputs, attributes)
    ("4d", [("Q", F, ["N", 3, 4, 8]), ("K", F, ["N", 3, 6, 8]), ("V", F, ["N", 3, 6, 8])], ["Y"], {}),
    ("4d-gqa-causal", [("Q", F, ["N", 6, 5, 8]), ("K", F, ["N", 2, 7, 8]), ("V", F, ["N", 2, 7, 4])], ["Y"], dict(is_causal=1)),
    ("4d-scale-softcap", [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8])], ["Y"],
     dict(scale=0.3, softcap=1.5)),
    ("3d", [("Q", F, ["N", 4, 24]), ("K", F, ["N", 6, 24]), ("V", F, ["N", 6, 30])], ["Y"], dict(q_num_heads=3, kv_num_heads=3)),
    ("3d-mqa-causal", [("Q", F, ["N", 5, 32]), ("K", F, ["N", 5, 8]), ("V", F, ["N", 5, 6])], ["Y"],
     dict(q_num_heads=4, kv_num_heads=1, is_causal=1)),
    ("float-mask-4d", [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8]), ("M", F, ["N", 1, 4, 6])],
     ["Y"], {}),
    ("bool-mask-2d-causal", [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8]), ("M", B, [4, 6])],
     ["Y"], dict(is_causal=1)),
    ("past-present", [("Q", F, ["N", 4, 3, 8]), ("K", F, ["N", 2, 3, 8]), ("V", F, ["N", 2, 3, 6]), ("", F, None),
                      ("PK", F, ["N", 2, 5, 8]), ("PV", F, ["N", 2, 5, 6])], ["Y", "present_key", "present_value"], dict(is_causal=1)),
    ("3d-past-qk-bias", [("Q", F, ["N", 3, 16]), ("K", F, ["N", 3, 16]), ("V", F, ["N", 3, 16]), ("M", F, [3, 7]),
                         ("PK", F, ["N", 2, 4, 8]), ("PV", F, ["N", 2, 4, 8])],
     ["Y", "present_key", "present_value", "qk"], dict(q_num_heads=2, kv_num_heads=2, qk_matmul_output_mode=2)),
    ("qk-mode0", [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8])], ["Y", "", "", "qk"], {}),
    ("qk-mode1-softcap", [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8])], ["Y", "", "", "qk"],
     dict(qk_matmul_output_mode=1, softcap=2.0)),
    ("qk-mode3-masked-row", [("Q", F, ["N", 2, 3, 8]), ("K", F, ["N", 2, 3, 8]), ("V", F, ["N", 2, 3, 8]), ("M", B, [3, 3])],
     ["Y", "", "", "qk"], dict(qk_matmul_output_mode=3)),
    ("large", [("Q", F, ["N", 4, 64, 32]), ("K", F, ["N", 4, 64, 32]), ("V", F, ["N", 4, 64, 32])], ["Y"], dict(is_causal=1)),
]


@pytest.mark.parametrize("inputs,outputs,attrs", [c[1:] for c in ATTENTION], ids=[c[0] for c in ATTENTION])
def test_attention(tmp_path, inputs, outputs, attrs):
    names = [name for name, _, _ in inputs]
    graph_inputs = [i for i in inputs if i[0]]
    node = helper.make_node("Attention", names, outputs, name="attention", **attrs)
    path = make_typed_model(tmp_path, [node], graph_inputs, [o for o in outputs if o])
    make_feeds = typed_feeds(graph_inputs)
    if "masked-row" in str(outputs) or attrs.get("qk_matmul_output_mode") == 3:
        # One query row with every key masked: Y and the probabilities are 0 there.
        def make_feeds(n, base=make_feeds):
            feeds = base(n)
            feeds["M"][1, :] = False
            return feeds
    check(path, make_feeds, LINEAR)


def test_attention_nonpad_kv_seqlen(tmp_path):
    """Opset 24: keys beyond nonpad_kv_seqlen[b] are padding; causal offsets per batch item."""
    inputs = [("Q", F, ["N", 2, 2, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8]), ("L", I, ["N"])]
    node = helper.make_node("Attention", ["Q", "K", "V", "", "", "", "L"], ["Y"], name="attention", is_causal=1)
    path = make_typed_model(tmp_path, [node], inputs, ["Y"], opset=24)
    check(path, typed_feeds(inputs, masks={"L": lambda n: np.array([4, 6, 3][:n], np.int64)}), LINEAR)


@pytest.mark.parametrize("mask_type", [F, B], ids=["float", "bool"])
def test_attention_short_mask(tmp_path, mask_type):
    """A mask with fewer columns than keys: the missing columns are masked (onnxruntime refuses
    such a mask; the reference implementation pads it with -inf / False)."""
    from onnx.reference import ReferenceEvaluator
    inputs = [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8]), ("M", mask_type, ["N", 1, 4, 5])]
    node = helper.make_node("Attention", ["Q", "K", "V", "M"], ["Y"], name="attention", is_causal=1)
    path = make_typed_model(tmp_path, [node], inputs, ["Y"])
    model, reference = aonnx.load(path), ReferenceEvaluator(path)
    for n in (1, 3):
        feeds = typed_feeds(inputs)(n)
        if mask_type == F:
            feeds["M"] = feeds["M"].clip(-1, 1)
        expected = reference.run(None, feeds)[0]
        args = [feeds[k] for k in "QKVM"]
        exact, _ = aimetcle.run(model, *args, capture=["Q"])
        for ours in (model(*args), exact):
            np.testing.assert_allclose(ours, expected, rtol=LINEAR, atol=LINEAR)


def test_attention_constant_mask_batch_split(tmp_path):
    """A constant [B, 1, Lq, T] mask at batch 3: the batch must not be split (the constant would not be)."""
    rng = rng_for("attention-constant-mask")
    mask = randn(rng, 3, 1, 4, 6)
    node = helper.make_node("Attention", ["Q", "K", "V", "M"], ["Y"], name="attention")
    inputs = [("Q", F, ["N", 2, 4, 8]), ("K", F, ["N", 2, 6, 8]), ("V", F, ["N", 2, 6, 8])]
    path = make_typed_model(tmp_path, [node], inputs, ["Y"], {"M": mask})
    check(path, typed_feeds(inputs), LINEAR, batches=(3,))


@pytest.mark.parametrize("attrs,outputs,reason", [
    (dict(softcap=2.0), ["Y", "", "", "qk"], "qk_matmul_output_mode 0 with a softcap"),
    (dict(softmax_precision=10), ["Y"], "softmax_precision 10"),
    (dict(q_num_heads=2), ["Y"], "q_num_heads and kv_num_heads"),
])
def test_attention_refused(tmp_path, attrs, outputs, reason):
    three_d = "q_num_heads" in attrs
    shape = ["N", 4, 16] if three_d else ["N", 2, 4, 8]
    node = helper.make_node("Attention", ["Q", "K", "V"], outputs, name="attention_x", **attrs)
    path = make_typed_model(tmp_path, [node], [(n, F, shape) for n in "QKV"], [o for o in outputs if o])
    x = np.ones(concrete(shape, 1), np.float32)
    with pytest.raises(aimetcle.AimetError) as error:
        aonnx.load(path)(x, x, x)
    assert "attention_x" in str(error.value) and reason in str(error.value)


def test_attention_past_without_value_invalid(tmp_path):
    node = helper.make_node("Attention", ["Q", "K", "V", "", "PK"], ["Y"], name="attention_p")
    shape = ["N", 2, 4, 8]
    path = make_typed_model(tmp_path, [node], [(n, F, shape) for n in ["Q", "K", "V", "PK"]], ["Y"])
    x = np.ones(concrete(shape, 1), np.float32)
    with pytest.raises(aimetcle.AimetError) as error:
        aonnx.load(path)(x, x, x, x)
    assert "attention_p" in str(error.value) and "past_key and past_value" in str(error.value)


# --- RotaryEmbedding (opset 23) ----------------------------------------------------------------

ROTARY = [
    # (id, X shape, attributes, position ids)
    ("4d-positions", ["N", 2, 5, 8], {}, True),
    ("4d-interleaved", ["N", 2, 5, 8], dict(interleaved=1), True),
    ("4d-partial", ["N", 2, 5, 12], dict(rotary_embedding_dim=8), True),
    ("3d-heads", ["N", 5, 24], dict(num_heads=3), True),
    ("3d-partial-interleaved", ["N", 5, 24], dict(num_heads=2, rotary_embedding_dim=6, interleaved=1), True),
    ("4d-no-positions", ["N", 2, 5, 8], {}, False),
]


@pytest.mark.parametrize("x_shape,attrs,positions", [c[1:] for c in ROTARY], ids=[c[0] for c in ROTARY])
def test_rotary_embedding(tmp_path, x_shape, attrs, positions):
    heads = attrs.get("num_heads")
    head = x_shape[3] if len(x_shape) == 4 else x_shape[2] // heads
    half = attrs.get("rotary_embedding_dim", head) // 2
    seq = x_shape[2] if len(x_shape) == 4 else x_shape[1]
    node_inputs = ["X", "cos", "sin"] + (["P"] if positions else [])
    node = helper.make_node("RotaryEmbedding", node_inputs, ["Y"], name="rope", **attrs)
    if positions:
        angles = np.arange(16)[:, None] * (0.5 ** np.arange(half))[None, :]
        inits = {"cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32)}
        inputs = [("X", F, x_shape), ("P", I, ["N", seq])]
        feeds = typed_feeds(inputs, masks={"P": lambda n: np.random.default_rng(n).integers(0, 16, (n, seq))})
    else:
        inits = {}
        inputs = [("X", F, x_shape), ("cos", F, ["N", seq, half]), ("sin", F, ["N", seq, half])]
        feeds = typed_feeds(inputs)
    path = make_typed_model(tmp_path, [node], inputs, ["Y"], inits)
    check(path, feeds, LINEAR)


def test_rotary_position_out_of_range(tmp_path):
    node = helper.make_node("RotaryEmbedding", ["X", "cos", "sin", "P"], ["Y"], name="rope_x")
    cache = np.ones((4, 4), np.float32)
    path = make_typed_model(tmp_path, [node], [("X", F, ["N", 1, 2, 8]), ("P", I, ["N", 2])], ["Y"], {"cos": cache, "sin": cache})
    with pytest.raises(aimetcle.AimetError) as error:
        aonnx.load(path)(np.ones((1, 1, 2, 8), np.float32), np.array([[0, 4]], np.int64))
    assert "rope_x" in str(error.value) and "outside the cos/sin cache" in str(error.value)
