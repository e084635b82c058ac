"""The runtime against onnxruntime: every op the executor runs, on random inputs.

Each test builds a tiny ONNX model with ``onnx.helper``, runs it in
onnxruntime (CPUExecutionProvider, graph optimizations off, so every node runs
as written) and through ``aimetcle.onnx.load(path)(x)``, for batch sizes 1 and
3, and compares with an explicit tolerance:

* ``ELEMENTWISE`` (1e-5) for elementwise ops, pools, softmax, views;
* ``LINEAR`` (1e-4) for Conv / ConvTranspose / Gemm / MatMul and whole models.

``assert_close(ours, ref, rtol)`` checks ``|ours - ref| <= rtol * (|ref| + max|ref|)``:
relative to each value, with an absolute floor at ``rtol`` times the largest
magnitude of the reference (values near zero after cancellation carry the
rounding error of the large terms that produced them).

Then whole models (digits_mbv2.onnx on the digits test split, mobilenet_v2 and
resnet18 exported by ``aimetcle.onnx.save``), ``capture``, and the errors of a run.
"""

import os
import zlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import models, nn  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402

ELEMENTWISE = 1e-5
LINEAR = 1e-4
BATCHES = (1, 3)
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data")
DIGITS_ONNX = os.path.join(DATA, "digits_mbv2.onnx")
DIGITS_NPZ = os.path.join(DATA, "digits.npz")


# --- helpers -----------------------------------------------------------------------

def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


ONNX_TYPES = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL}


def make_model(tmp_path, nodes, inputs, outputs, initializers=None, opset=17, name="model"):
    """Writes an ONNX model. ``inputs``: (name, shape) for float32 or (name, shape, dtype), "N" for the
    batch axis; ``outputs``: a name (float32), (name, dtype) or (name, shape, dtype)."""
    def value(entry, is_input):
        if isinstance(entry, str):
            entry = (entry, None, np.float32)
        elif len(entry) == 2:
            entry = (entry[0], entry[1], np.float32) if is_input else (entry[0], None, entry[1])
        n, shape, dtype = entry
        return helper.make_tensor_value_info(n, ONNX_TYPES[dtype], shape)
    graph = helper.make_graph(
        nodes, name, [value(i, True) for i in inputs], [value(o, False) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="aimetcle-tests")
    model.ir_version = 8 if opset < 21 else 10
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(model, path)
    return path


def ort_session(path, threads=1):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def assert_close(ours, ref, rtol, what=""):
    """``|ours - ref| <= rtol * (|ref| + max|ref|)``, same dtype and shape; integers and bools exactly."""
    ref = np.asarray(ref)
    assert isinstance(ours, np.ndarray), f"{what}: got {type(ours).__name__}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype}, onnxruntime {ref.dtype}"
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, onnxruntime {ref.shape}"
    if ref.dtype.kind != "f":
        assert np.array_equal(ours, ref), f"{what}: values differ: ours {ours.ravel()[:8]}, onnxruntime {ref.ravel()[:8]}"
        return
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), f"{what}: NaNs differ"
    finite = np.isfinite(ref)
    assert np.array_equal(ours[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)]), f"{what}: infinities differ"
    ours, ref = ours[finite].astype(np.float64), ref[finite].astype(np.float64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = np.abs(ours - ref)
    bound = rtol * (np.abs(ref) + scale)
    if not np.all(err <= bound):
        k = int(np.argmax(err - bound))
        raise AssertionError(f"{what}: {int(np.sum(err > bound))}/{err.size} values differ beyond rtol {rtol}; worst: "
                             f"ours {ours[k]!r}, onnxruntime {ref[k]!r} (max abs err {err.max():.3g}, max |ref| {scale:.3g})")


def float_input(model, feeds):
    """A float32 input to capture (which forces the exact plan; the hook sees float32 values only)."""
    return next(name for name in model.input_names if feeds[name].dtype == np.float32)


def check(path, make_feeds, rtol=ELEMENTWISE, batches=BATCHES):
    """Runs ``path`` in both for each batch size; ``make_feeds(batch)`` gives {input name: array}.

    Ours runs twice: without a capture (the executor's fused plan) and capturing the first
    float input (the exact plan, one step per node)."""
    model = aonnx.load(path)
    session = ort_session(path)
    for batch in batches:
        feeds = make_feeds(batch)
        ref = session.run(None, feeds)
        inputs = [feeds[name] for name in model.input_names]
        exact, _ = aimetcle.run(model, *inputs, capture=[float_input(model, feeds)])
        for plan, ours in (("fused", model(*inputs)), ("exact", exact)):
            ours = ours if isinstance(ours, tuple) else (ours,)
            assert len(ours) == len(ref)
            for k, (a, b) in enumerate(zip(ours, ref)):
                assert_close(a, b, rtol, f"{plan} plan, batch {batch}, output {k}")
    return model


def single_input(shape, scale=1.0, seed=0, name="x"):
    """make_feeds for one input of shape ("N", ...)."""
    def feeds(batch):
        rng = np.random.default_rng(seed + batch)
        return {name: randn(rng, batch, *shape[1:], scale=scale)}
    return feeds


def unary_model(tmp_path, op, shape, opset=17, extra_inputs=(), initializers=None, nodes_before=(), **attrs):
    node = helper.make_node(op, ["x", *extra_inputs], ["y"], name=op.lower(), **attrs)
    return make_model(tmp_path, [*nodes_before, node], [("x", shape)], ["y"], initializers, opset)


# --- Conv ----------------------------------------------------------------------------

# (id, C_in, C_out, kernel, attributes, bias)
CONV2D = [
    ("3x3", 4, 6, (3, 3), {}, True),
    ("3x3-pad1", 4, 6, (3, 3), dict(pads=[1, 1, 1, 1]), False),
    ("strides", 4, 6, (3, 3), dict(strides=[2, 3]), True),
    ("asym-pads", 4, 6, (3, 3), dict(pads=[0, 1, 2, 1]), False),
    ("dilations", 4, 6, (3, 3), dict(dilations=[2, 3], pads=[2, 1, 1, 3]), True),
    ("rect-kernel", 3, 5, (1, 4), dict(pads=[0, 2, 0, 1], strides=[1, 2]), True),
    ("5x5-s2", 3, 8, (5, 5), dict(pads=[2, 2, 2, 2], strides=[2, 2]), True),
    ("1x1", 8, 16, (1, 1), {}, False),
    ("1x1-bias", 8, 16, (1, 1), {}, True),
    ("1x1-s2", 8, 16, (1, 1), dict(strides=[2, 2]), True),
    ("wide", 24, 40, (3, 3), dict(pads=[1, 1, 1, 1]), True),
    ("group2", 4, 6, (3, 3), dict(group=2, pads=[1, 1, 1, 1]), True),
    ("group2-1x1", 8, 4, (1, 1), dict(group=2), False),
    ("group3-strided", 6, 9, (3, 2), dict(group=3, strides=[2, 1], pads=[1, 0, 0, 1]), True),
    ("dw-3x3", 6, 6, (3, 3), dict(group=6, pads=[1, 1, 1, 1]), True),
    ("dw-3x3-s2", 6, 6, (3, 3), dict(group=6, pads=[1, 1, 1, 1], strides=[2, 2]), False),
    ("dw-3x3-nopad", 5, 5, (3, 3), dict(group=5), True),
    ("dw-3x3-asym", 5, 5, (3, 3), dict(group=5, pads=[0, 2, 1, 0], strides=[1, 2]), True),
    ("dw-3x3-s3", 4, 4, (3, 3), dict(group=4, pads=[1, 1, 1, 1], strides=[3, 3]), True),
    ("dw-3x3-dil2", 4, 4, (3, 3), dict(group=4, pads=[2, 2, 2, 2], dilations=[2, 2]), True),
    ("dw-5x5-s2", 4, 4, (5, 5), dict(group=4, pads=[2, 2, 2, 2], strides=[2, 2]), True),
    ("dw-7x7-same", 6, 6, (7, 7), dict(group=6, pads=[3, 3, 3, 3]), True),
    ("dw-5x5-x2", 3, 6, (5, 5), dict(group=3, pads=[2, 2, 2, 2]), False),
    ("dw-3x5-rows", 4, 4, (3, 5), dict(group=4, pads=[0, 1, 2, 3]), True),
    ("dw-mult2", 4, 8, (3, 3), dict(group=4, pads=[1, 1, 1, 1]), True),
    ("same-upper", 4, 6, (3, 4), dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),
    ("same-lower", 4, 6, (3, 4), dict(auto_pad="SAME_LOWER", strides=[2, 2]), True),
    ("same-upper-s1", 4, 6, (2, 2), dict(auto_pad="SAME_UPPER"), False),
    ("same-lower-s1", 4, 6, (2, 2), dict(auto_pad="SAME_LOWER"), False),
    ("dw-same-upper", 6, 6, (3, 3), dict(auto_pad="SAME_UPPER", group=6, strides=[2, 2]), True),
    ("valid", 4, 6, (3, 3), dict(auto_pad="VALID", strides=[2, 2]), True),
    ("1x1-pad1", 8, 6, (1, 1), dict(pads=[1, 0, 1, 2]), True),
    ("no-kernel-shape", 4, 6, (3, 2), dict(kernel_shape=None), True),
]


@pytest.mark.parametrize("cin,cout,kernel,attrs,bias", [c[1:] for c in CONV2D], ids=[c[0] for c in CONV2D])
@pytest.mark.parametrize("size", [(9, 11), (20, 18), (37, 42)], ids=["9x11", "20x18", "37x42"])
def test_conv2d(tmp_path, cin, cout, kernel, attrs, bias, size):
    rng = rng_for("conv2d", cin, cout, kernel, str(attrs))
    group = attrs.get("group", 1)
    inits = {"w": randn(rng, cout, cin // group, *kernel, scale=0.5)}
    if bias:
        inits["b"] = randn(rng, cout)
    attrs = {"kernel_shape": list(kernel), **attrs}
    if attrs["kernel_shape"] is None:
        del attrs["kernel_shape"]
    node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv", **attrs)
    path = make_model(tmp_path, [node], [("x", ["N", cin, *size])], ["y"], inits)
    check(path, single_input(("N", cin, *size)), LINEAR)


CONV1D = [
    ("k3", 3, 5, 3, {}, True),
    ("k3-pad", 3, 5, 3, dict(pads=[1, 1]), False),
    ("asym-pads-s2", 3, 5, 4, dict(pads=[0, 3], strides=[2]), True),
    ("dilation", 3, 5, 3, dict(dilations=[3], pads=[2, 1]), True),
    ("k1", 6, 4, 1, {}, True),
    ("group2", 4, 6, 3, dict(group=2, pads=[1, 1]), True),
    ("depthwise", 5, 5, 3, dict(group=5, pads=[1, 1], strides=[2]), True),
    ("same-upper", 3, 5, 4, dict(auto_pad="SAME_UPPER", strides=[3]), True),
    ("same-lower", 3, 5, 4, dict(auto_pad="SAME_LOWER", strides=[3]), True),
    ("valid", 3, 5, 3, dict(auto_pad="VALID", strides=[2]), False),
]


@pytest.mark.parametrize("cin,cout,kernel,attrs,bias", [c[1:] for c in CONV1D], ids=[c[0] for c in CONV1D])
def test_conv1d(tmp_path, cin, cout, kernel, attrs, bias):
    rng = rng_for("conv1d", cin, cout, kernel, str(attrs))
    group = attrs.get("group", 1)
    inits = {"w": randn(rng, cout, cin // group, kernel, scale=0.5)}
    if bias:
        inits["b"] = randn(rng, cout)
    node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv",
                            kernel_shape=[kernel], **attrs)
    path = make_model(tmp_path, [node], [("x", ["N", cin, 17])], ["y"], inits)
    check(path, single_input(("N", cin, 17)), LINEAR)


# --- ConvTranspose -----------------------------------------------------------------

CONVT = [
    # (id, C_in, C_out, kernel, attributes, bias)
    ("2d-basic", 4, 6, (3, 3), {}, True),
    ("2d-s2", 4, 6, (3, 3), dict(strides=[2, 2]), True),
    ("2d-s2-pads", 4, 6, (3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1]), False),
    ("2d-s2-outpad", 4, 6, (3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), True),
    ("2d-asym", 4, 6, (4, 3), dict(strides=[3, 2], pads=[0, 1, 2, 0], output_padding=[2, 0]), True),
    ("2d-dilations", 4, 6, (3, 3), dict(dilations=[2, 1], pads=[1, 0, 1, 1]), True),
    ("2d-group2", 4, 6, (3, 3), dict(group=2, strides=[2, 2], pads=[1, 1, 1, 1]), True),
    ("2d-depthwise", 4, 4, (4, 4), dict(group=4, strides=[2, 2], pads=[1, 1, 1, 1]), True),
    ("2d-k2s2", 8, 4, (2, 2), dict(strides=[2, 2]), False),
    ("1d-basic", 3, 5, (3,), {}, True),
    ("1d-s2-outpad", 3, 5, (3,), dict(strides=[2], pads=[1, 0], output_padding=[1]), True),
    ("1d-dilation", 3, 5, (3,), dict(dilations=[2], strides=[3], pads=[0, 2]), False),
    ("1d-group3", 6, 3, (2,), dict(group=3, strides=[2]), True),
    ("2d-output-shape", 4, 6, (3, 3), dict(strides=[2, 2], output_shape=[14, 12]), True),
    ("2d-output-shape-odd", 4, 6, (3, 3), dict(strides=[2, 2], output_shape=[13, 11]), True),
    ("2d-same-upper", 4, 6, (3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER"), True),
    ("2d-same-lower", 4, 6, (4, 3), dict(strides=[2, 2], auto_pad="SAME_LOWER"), True),
    ("2d-valid", 4, 6, (3, 3), dict(strides=[2, 2], auto_pad="VALID"), False),
    ("1d-output-shape", 3, 5, (3,), dict(strides=[2], output_shape=[18]), True),
]


@pytest.mark.parametrize("cin,cout,kernel,attrs,bias", [c[1:] for c in CONVT], ids=[c[0] for c in CONVT])
def test_conv_transpose(tmp_path, cin, cout, kernel, attrs, bias):
    rng = rng_for("convt", cin, cout, kernel, str(attrs))
    group = attrs.get("group", 1)
    inits = {"w": randn(rng, cin, cout // group, *kernel, scale=0.5)}
    if bias:
        inits["b"] = randn(rng, cout)
    node = helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if bias else []), ["y"], name="convt",
                            kernel_shape=list(kernel), **attrs)
    spatial = (7, 6) if len(kernel) == 2 else (9,)
    path = make_model(tmp_path, [node], [("x", ["N", cin, *spatial])], ["y"], inits)
    check(path, single_input(("N", cin, *spatial)), LINEAR)


# --- Gemm / MatMul -------------------------------------------------------------------

@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)], ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("c_shape", ["none", "N", "1xN", "MxN", "scalar", "Mx1"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0)], ids=["a1b1", "a.5b-2"])
@pytest.mark.parametrize("m", [1, 3])
def test_gemm(tmp_path, trans_a, trans_b, c_shape, alpha, beta, m):
    k, n = 7, 5
    rng = rng_for("gemm", trans_a, trans_b, c_shape, alpha, m)
    a_shape = [k, m] if trans_a else [m, k]
    inits = {"B": randn(rng, *([n, k] if trans_b else [k, n]))}
    c = {"none": None, "N": (n,), "1xN": (1, n), "MxN": (m, n), "scalar": (), "Mx1": (m, 1)}[c_shape]
    if c is not None:
        inits["C"] = randn(rng, *c)
    node = helper.make_node("Gemm", ["A", "B"] + (["C"] if c is not None else []), ["Y"], name="gemm",
                            transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)
    path = make_model(tmp_path, [node], [("A", a_shape)], ["Y"], inits)
    check(path, lambda _: {"A": randn(rng, *a_shape)}, LINEAR, batches=(m,))


def test_gemm_runtime_b_and_c(tmp_path):
    """B and C as graph inputs rather than initializers."""
    node = helper.make_node("Gemm", ["A", "B", "C"], ["Y"], transB=1, alpha=1.5, beta=0.25)
    path = make_model(tmp_path, [node], [("A", ["N", 6]), ("B", [4, 6]), ("C", [4])], ["Y"])
    rng = np.random.default_rng(1)
    check(path, lambda n: {"A": randn(rng, n, 6), "B": randn(rng, 4, 6), "C": randn(rng, 4)}, LINEAR)


def test_gemm_large(tmp_path):
    """Big enough for the kernel to split rows between workers."""
    rng = np.random.default_rng(2)
    node = helper.make_node("Gemm", ["A", "B", "C"], ["Y"], transB=1)
    path = make_model(tmp_path, [node], [("A", ["N", 256])], ["Y"], {"B": randn(rng, 300, 256), "C": randn(rng, 300)})
    check(path, lambda n: {"A": randn(rng, 70 * n, 256)}, LINEAR)


MATMUL = [
    # (id, A shape, B shape, B is an initializer)
    ("2d", ["N", 6], [6, 5], True),
    ("2d-runtime-b", ["N", 6], [6, 5], False),
    ("3d-x-2d", ["N", 4, 6], [6, 5], True),
    ("3d-x-3d", ["N", 4, 6], ["N", 6, 5], False),
    ("4d-x-2d", ["N", 2, 4, 6], [6, 5], True),
    ("4d-x-4d", ["N", 2, 4, 6], ["N", 2, 6, 5], False),
    ("4d-bcast-b", ["N", 3, 4, 6], [3, 6, 5], True),
    ("4d-bcast-a1", ["N", 1, 4, 6], [2, 6, 5], True),
    ("4d-bcast-b11", ["N", 2, 4, 6], [1, 1, 6, 5], True),
    ("3d-x-4d", ["N", 4, 6], [2, 1, 6, 5], True),
    ("3d-bcast-b1", ["N", 4, 6], [1, 6, 5], True),
    ("a-vector", ["N", 6], [6], True),
]


def _concrete(shape, n):
    return [n if d == "N" else d for d in shape]


@pytest.mark.parametrize("a_shape,b_shape,b_init", [c[1:] for c in MATMUL], ids=[c[0] for c in MATMUL])
def test_matmul(tmp_path, a_shape, b_shape, b_init):
    rng = np.random.default_rng(3)
    node = helper.make_node("MatMul", ["A", "B"], ["Y"], name="matmul")
    if b_init:
        path = make_model(tmp_path, [node], [("A", a_shape)], ["Y"], {"B": randn(rng, *b_shape)})
        check(path, lambda n: {"A": randn(rng, *_concrete(a_shape, n))}, LINEAR)
    else:
        path = make_model(tmp_path, [node], [("A", a_shape), ("B", b_shape)], ["Y"])
        check(path, lambda n: {"A": randn(rng, *_concrete(a_shape, n)), "B": randn(rng, *_concrete(b_shape, n))}, LINEAR)


# --- elementwise binary ops ------------------------------------------------------------

BROADCASTS = [
    # (id, A shape, B shape, which operands are initializers)
    ("same", ["N", 4, 5, 6], ["N", 4, 5, 6], ""),
    ("C11", ["N", 4, 5, 6], [4, 1, 1], "B"),
    ("C11-first", [4, 1, 1], ["N", 4, 5, 6], "A"),
    ("scalar", ["N", 4, 5, 6], [], "B"),
    ("scalar-first", [], ["N", 4, 5, 6], "A"),
    ("one", ["N", 4, 5, 6], [1], "B"),
    ("last-axis", ["N", 4, 5, 6], [6], "B"),
    ("1C11", ["N", 4, 5, 6], [1, 4, 1, 1], "B"),
    ("both-ways", ["N", 1, 5, 6], [1, 4, 1, 6], "B"),
    ("runtime-C11", ["N", 4, 5, 6], [4, 1, 1], ""),
    ("rank2", ["N", 7], [7], "B"),
    ("N111", ["N", 4, 5, 6], ["N", 1, 1, 1], ""),
    ("big", ["N", 16, 33, 35], [16, 1, 1], "B"),
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("a_shape,b_shape,inits", [c[1:] for c in BROADCASTS], ids=[c[0] for c in BROADCASTS])
def test_binary(tmp_path, op, a_shape, b_shape, inits):
    rng = np.random.default_rng(4)

    def value(shape, n, name):
        v = randn(rng, *_concrete(shape, n))
        if op == "Div" and name == "B":  # keep away from 0
            v = (np.sign(v) + (v == 0)) * (0.5 + np.abs(v))
        return v.astype(np.float32)

    node = helper.make_node(op, ["A", "B"], ["Y"], name=op.lower())
    initializers = {name: value(shape, 1, name) for name, shape in (("A", a_shape), ("B", b_shape)) if name in inits}
    graph_inputs = [(name, shape) for name, shape in (("A", a_shape), ("B", b_shape)) if name not in inits]
    path = make_model(tmp_path, [node], graph_inputs, ["Y"], initializers)
    check(path, lambda n: {name: value(shape, n, name) for name, shape in graph_inputs}, ELEMENTWISE)


# --- normalization and activations ---------------------------------------------------------

@pytest.mark.parametrize("shape", [["N", 5, 6, 7], ["N", 5, 9], ["N", 5]], ids=["4d", "3d", "2d"])
@pytest.mark.parametrize("epsilon", [1e-5, 1e-2])
def test_batch_normalization(tmp_path, shape, epsilon):
    rng = np.random.default_rng(5)
    c = shape[1]
    inits = {"s": randn(rng, c), "b": randn(rng, c), "m": randn(rng, c), "v": rng.uniform(0.2, 2, c).astype(np.float32)}
    path = unary_model(tmp_path, "BatchNormalization", shape, extra_inputs=["s", "b", "m", "v"], initializers=inits,
                       epsilon=epsilon)
    check(path, single_input(shape), ELEMENTWISE)


ACTIVATIONS = [
    ("Relu", {}),
    ("LeakyRelu", {}),
    ("LeakyRelu", {"alpha": 0.2}),
    ("LeakyRelu", {"alpha": -1.5}),
    ("Sigmoid", {}),
    ("Identity", {}),
]


@pytest.mark.parametrize("op,attrs", ACTIVATIONS, ids=[f"{op}{a}" for op, a in ACTIVATIONS])
@pytest.mark.parametrize("shape", [["N", 3, 5, 7], ["N", 16, 33, 31], ["N", 11]], ids=["small", "large", "2d"])
def test_unary(tmp_path, op, attrs, shape):
    path = unary_model(tmp_path, op, shape, **attrs)
    check(path, single_input(shape, scale=6.0), ELEMENTWISE)


def test_sigmoid_saturates(tmp_path):
    path = unary_model(tmp_path, "Sigmoid", ["N", 8])
    x = np.array([[-200, -90, -30, -1e-3, 0, 1e-3, 30, 200]], np.float32)
    check(path, lambda n: {"x": np.repeat(x, n, axis=0)}, ELEMENTWISE)


@pytest.mark.parametrize("slope_shape", [[4, 1, 1], [1], [], [1, 4, 1, 1], [7]],
                         ids=["C11", "one", "scalar", "1C11", "last-axis"])
def test_prelu(tmp_path, slope_shape):
    rng = np.random.default_rng(6)
    path = unary_model(tmp_path, "PRelu", ["N", 4, 5, 7], extra_inputs=["slope"],
                       initializers={"slope": randn(rng, *slope_shape)})
    check(path, single_input(["N", 4, 5, 7]), ELEMENTWISE)


def _scalar(value):
    return np.array(value, dtype=np.float32)


CLIP_11 = [
    # (id, inputs after x, initializers, Constant nodes)
    ("init-both", ["lo", "hi"], {"lo": _scalar(-0.5), "hi": _scalar(0.7)}, {}),
    ("init-relu6", ["lo", "hi"], {"lo": _scalar(0.0), "hi": _scalar(6.0)}, {}),
    ("const-both", ["lo", "hi"], {}, {"lo": -1.25, "hi": 2.0}),
    ("const-relu6", ["lo", "hi"], {}, {"lo": 0.0, "hi": 6.0}),
    ("only-min", ["lo"], {"lo": _scalar(0.3)}, {}),
    ("only-min-zero", ["lo"], {"lo": _scalar(0.0)}, {}),
    ("only-max", ["", "hi"], {"hi": _scalar(-0.2)}, {}),
    ("only-max-const", ["", "hi"], {}, {"hi": 1.5}),
    ("min-empty-max-empty", ["", ""], {}, {}),
    ("no-bounds", [], {}, {}),
]


@pytest.mark.parametrize("extra,inits,constants", [c[1:] for c in CLIP_11], ids=[c[0] for c in CLIP_11])
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_clip_inputs(tmp_path, extra, inits, constants, opset):
    before = [helper.make_node("Constant", [], [name], name=f"const_{name}",
                               value=numpy_helper.from_array(_scalar(v), name)) for name, v in constants.items()]
    path = unary_model(tmp_path, "Clip", ["N", 3, 4, 5], opset=opset, extra_inputs=extra, initializers=inits,
                       nodes_before=before)
    check(path, single_input(["N", 3, 4, 5], scale=4.0), ELEMENTWISE)


@pytest.mark.parametrize("size", [8, 3], ids=["vector-path", "scalar-path"])
def test_clip_min_above_max(tmp_path, size):
    path = unary_model(tmp_path, "Clip", ["N", size], extra_inputs=["lo", "hi"],
                       initializers={"lo": _scalar(1.0), "hi": _scalar(-1.0)})
    check(path, lambda n: {"x": np.linspace(-3, 3, n * size, dtype=np.float32).reshape(n, size)}, ELEMENTWISE)


@pytest.mark.parametrize("attrs", [dict(min=-0.5, max=0.7), dict(min=0.0, max=6.0), dict(min=0.25), dict(max=-0.1), {}],
                         ids=["both", "relu6", "only-min", "only-max", "none"])
@pytest.mark.parametrize("opset", [7, 10])
def test_clip_attributes(tmp_path, attrs, opset):
    path = unary_model(tmp_path, "Clip", ["N", 3, 4, 5], opset=opset, **attrs)
    check(path, single_input(["N", 3, 4, 5], scale=4.0), ELEMENTWISE)


def test_opset_6_is_refused_clearly(tmp_path):
    path = unary_model(tmp_path, "Clip", ["N", 3], opset=6, min=0.0, max=1.0)
    with pytest.raises(ValueError, match="opset 6"):
        aonnx.load(path)


SOFTMAX = [
    # (id, shape, axis or None)
    ("2d-last", ["N", 10], -1),
    ("2d-1", ["N", 10], 1),
    ("2d-default", ["N", 10], None),
    ("3d-last", ["N", 4, 6], -1),
    ("3d-1", ["N", 4, 6], 1),
    ("3d-default", ["N", 4, 6], None),
    ("4d-last", ["N", 3, 4, 5], -1),
    ("4d-1", ["N", 3, 4, 5], 1),
    ("4d-2", ["N", 3, 4, 5], 2),
    ("4d-minus3", ["N", 3, 4, 5], -3),
    ("4d-default", ["N", 3, 4, 5], None),
    ("4d-0", ["N", 3, 4, 5], 0),
    ("large", ["N", 64, 1000], -1),
    ("large-axis1", ["N", 300, 40], 1),
]


@pytest.mark.parametrize("shape,axis", [c[1:] for c in SOFTMAX], ids=[c[0] for c in SOFTMAX])
@pytest.mark.parametrize("opset", [11, 13])
def test_softmax(tmp_path, shape, axis, opset):
    if opset == 11 and shape == ["N", 300, 40]:
        pytest.skip("12000-element rows: test_softmax_long_rows")
    attrs = {} if axis is None else {"axis": axis}
    path = unary_model(tmp_path, "Softmax", shape, opset=opset, **attrs)
    check(path, single_input(shape, scale=5.0), ELEMENTWISE)


def test_softmax_large_magnitudes(tmp_path):
    path = unary_model(tmp_path, "Softmax", ["N", 6])
    x = np.array([[1000, 999, -1000, 0, 88, 89]], np.float32)
    check(path, lambda n: {"x": np.repeat(x, n, axis=0) - np.arange(n, dtype=np.float32)[:, None]}, ELEMENTWISE)


@pytest.mark.parametrize("opset,shape,axis", [(11, ["N", 21, 64, 64], 1), (13, ["N", 100000], -1)],
                         ids=["opset11-flattened-86016", "opset13-100000"])
def test_softmax_long_rows(tmp_path, opset, shape, axis):
    """Softmax outputs are positive: every value within 1e-5 relative of the float64 result."""
    path = unary_model(tmp_path, "Softmax", shape, opset=opset, axis=axis)
    x = single_input(shape, scale=5.0)(2)["x"]
    rows = x.reshape(2, -1).astype(np.float64)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    exact = (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)
    ours = aonnx.load(path)(x)
    err = float(np.max(np.abs(ours - exact) / exact))
    assert err <= 1e-5, f"max relative error {err:.2e}"


def test_softmax_opsets_differ(tmp_path):
    """Opset 11 normalizes over all axes from `axis` on; opset 13 over `axis` alone."""
    x = randn(np.random.default_rng(7), 2, 3, 4, 5)
    old = aonnx.load(unary_model(tmp_path, "Softmax", ["N", 3, 4, 5], opset=11, axis=1))(x)
    new = aonnx.load(unary_model(tmp_path, "Softmax", ["N", 3, 4, 5], opset=13, axis=1))(x)
    np.testing.assert_allclose(old.reshape(2, -1).sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(new.sum(axis=1), 1, rtol=1e-5)
    assert not np.allclose(old, new)


# --- pooling --------------------------------------------------------------------------

MAXPOOL = [
    ("k2s2", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("k3s1", dict(kernel_shape=[3, 3])),
    ("k3s2p1", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("asym-pads", dict(kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0])),
    ("dilations", dict(kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 1, 1, 1])),
    ("ceil", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("ceil-pads", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("ceil-s3", dict(kernel_shape=[2, 2], strides=[3, 3], ceil_mode=1)),
    ("same-upper", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ("same-lower", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER")),
    ("valid", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID")),
    ("1d", dict(kernel_shape=[3], strides=[2], pads=[1, 0])),
    ("1d-ceil-dil", dict(kernel_shape=[2], strides=[2], dilations=[2], ceil_mode=1)),
]


def _pool_shape(attrs, size):
    return ["N", 5, size[1]] if len(attrs["kernel_shape"]) == 1 else ["N", 5, *size]


@pytest.mark.parametrize("attrs", [c[1] for c in MAXPOOL], ids=[c[0] for c in MAXPOOL])
@pytest.mark.parametrize("size", [(9, 10), (34, 35)], ids=["9x10", "34x35"])
def test_max_pool(tmp_path, attrs, size):
    shape = _pool_shape(attrs, size)
    path = unary_model(tmp_path, "MaxPool", shape, **attrs)
    check(path, single_input(shape), ELEMENTWISE)


AVGPOOL = [
    ("k2s2", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("k3s1p1", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    ("k3s2p1", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("asym-pads", dict(kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0])),
    ("ceil", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("ceil-pads", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("same-upper", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ("same-lower", dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    ("1d", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ("1d-ceil", dict(kernel_shape=[3], strides=[2], pads=[1, 0], ceil_mode=1)),
]


@pytest.mark.parametrize("attrs", [c[1] for c in AVGPOOL], ids=[c[0] for c in AVGPOOL])
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("size", [(9, 10), (34, 35)], ids=["9x10", "34x35"])
def test_average_pool(tmp_path, attrs, count_include_pad, size):
    shape = _pool_shape(attrs, size)
    path = unary_model(tmp_path, "AveragePool", shape, count_include_pad=count_include_pad, **attrs)
    check(path, single_input(shape), ELEMENTWISE)


@pytest.mark.parametrize("shape", [["N", 5, 7, 9], ["N", 32, 1, 1], ["N", 6, 13], ["N", 64, 56, 56]],
                         ids=["4d", "1x1", "3d", "large"])
def test_global_average_pool(tmp_path, shape):
    path = unary_model(tmp_path, "GlobalAveragePool", shape)
    check(path, single_input(shape), ELEMENTWISE)


# --- shape ops --------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, 2, 3, 4, -1, -3])
def test_flatten(tmp_path, axis):
    path = unary_model(tmp_path, "Flatten", ["N", 3, 4, 5], axis=axis)
    check(path, single_input(["N", 3, 4, 5]), ELEMENTWISE)


def test_flatten_default_axis(tmp_path):
    path = unary_model(tmp_path, "Flatten", ["N", 3, 4, 5])
    check(path, single_input(["N", 3, 4, 5]), ELEMENTWISE)


@pytest.mark.parametrize("target", [[0, -1], [0, 12, 5], [-1, 5], [0, 3, -1, 1], [0, 0, 20], [-1], [0, 60, 1, 1],
                                    [3, 0, 0, -1]],
                         ids=lambda t: "x".join(map(str, t)))
def test_reshape(tmp_path, target):
    inits = {"shape": np.array(target, np.int64)}
    # a Relu after the reshape: the view's buffer must feed a computing kernel correctly
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 4, 5])], ["y", "r"], inits)
    batches = (3,) if target[0] == 3 else BATCHES
    check(path, single_input(["N", 3, 4, 5]), ELEMENTWISE, batches=batches)


def test_reshape_from_constant_node(tmp_path):
    nodes = [helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([0, -1], np.int64))),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 4, 5])], ["y"])
    check(path, single_input(["N", 3, 4, 5]), ELEMENTWISE)


@pytest.mark.parametrize("axis", [1, -1, 2, 0])
def test_concat(tmp_path, axis):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["x"], ["s"]),
             helper.make_node("Concat", ["r", "x", "s"], ["y"], axis=axis)]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 4, 5])], ["y"])
    check(path, single_input(["N", 3, 4, 5]), ELEMENTWISE)


@pytest.mark.parametrize("axis", [1, -1])
def test_concat_inputs_and_initializer(tmp_path, axis):
    rng = np.random.default_rng(8)
    shapes = {1: (["N", 2, 4, 5], ["N", 3, 4, 5], [1, 4, 4, 5]), -1: (["N", 3, 4, 2], ["N", 3, 4, 5], [1, 3, 4, 1])}[axis]
    nodes = [helper.make_node("Concat", ["a", "b"], ["y"], axis=axis)]
    path = make_model(tmp_path, nodes, [("a", shapes[0]), ("b", shapes[1])], ["y"])
    check(path, lambda n: {"a": randn(rng, *_concrete(shapes[0], n)), "b": randn(rng, *_concrete(shapes[1], n))},
          ELEMENTWISE)
    # with an initializer (fixes the batch to 1)
    nodes = [helper.make_node("Concat", ["a", "c"], ["y"], axis=axis)]
    path = make_model(tmp_path, nodes, [("a", shapes[0])], ["y"], {"c": randn(rng, *shapes[2])}, name="with_init")
    check(path, lambda n: {"a": randn(rng, *_concrete(shapes[0], n))}, ELEMENTWISE, batches=(1,))


def test_identity_output_is_a_copy(tmp_path):
    path = unary_model(tmp_path, "Identity", ["N", 4])
    x = randn(np.random.default_rng(9), 2, 4)
    y = aonnx.load(path)(x)
    np.testing.assert_array_equal(y, x)
    y[...] = 0
    assert np.any(x != 0)


@pytest.mark.parametrize("variant", ["plain", "ratio", "mask-unused", "training-false"])
def test_dropout(tmp_path, variant):
    inits, extra, outputs = {}, [], ["d"]
    if variant in ("ratio", "training-false"):
        inits["ratio"] = _scalar(0.5)
        extra = ["ratio"]
    if variant == "training-false":
        inits["training"] = np.array(False)
        extra = ["ratio", "training"]
    if variant == "mask-unused":
        outputs = ["d", "mask"]
    nodes = [helper.make_node("Dropout", ["x", *extra], outputs), helper.make_node("Relu", ["d"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 4])], ["y"], inits)
    check(path, single_input(["N", 3, 4]), ELEMENTWISE)


def test_dropout_training_mode_is_refused(tmp_path):
    nodes = [helper.make_node("Dropout", ["x", "ratio", "training"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 4])], ["y"], {"ratio": _scalar(0.5), "training": np.array(True)})
    with pytest.raises(ValueError, match="training"):
        aonnx.load(path)(np.ones((2, 4), np.float32))


# --- fusion patterns (Conv + BN + residual Add + activation), as the fused plan runs them ----------

def _conv_node(name, x, y, w, b=None, **attrs):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name=name, **attrs)


def _bn_inits(rng, prefix, c):
    return {f"{prefix}.s": rng.uniform(0.5, 2, c).astype(np.float32), f"{prefix}.b": randn(rng, c),
            f"{prefix}.m": randn(rng, c), f"{prefix}.v": rng.uniform(0.3, 2, c).astype(np.float32)}


def _bn_node(name, x, y, prefix):
    return helper.make_node("BatchNormalization", [x, f"{prefix}.s", f"{prefix}.b", f"{prefix}.m", f"{prefix}.v"], [y],
                            name=name)


FUSION = ["conv-bn-relu", "conv-bn-clip", "conv-add-relu", "conv-bn-add-clip", "conv-leaky", "dwconv-bn-relu6",
          "conv-add-bcast", "add-conv-first-input", "conv-output-also-graph-output", "conv-two-consumers",
          "bn-relu", "bn-leaky", "conv-bn-add-self", "conv1d-bn-relu", "conv-add-init-full", "dwconv-add-relu",
          "conv-grouped-add", "pointwise-bn-add"]


@pytest.mark.parametrize("pattern", FUSION)
def test_fusion_patterns(tmp_path, pattern):
    rng = np.random.default_rng(10)
    c = 6
    inits = {"w": randn(rng, c, c, 3, 3, scale=0.3), "b": randn(rng, c), "dw": randn(rng, c, 1, 3, 3),
             "w1": randn(rng, c, c, 3), "lo": _scalar(0.0), "hi": _scalar(6.0), "bias3": randn(rng, c, 1, 1)}
    inits.update(_bn_inits(rng, "bn", c))
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    outputs, shape = ["y"], ["N", c, 9, 8]
    if pattern == "conv-bn-relu":
        nodes = [_conv_node("c", "x", "c", "w", "b", **conv), _bn_node("bn", "c", "n", "bn"),
                 helper.make_node("Relu", ["n"], ["y"])]
    elif pattern == "conv-bn-clip":
        nodes = [_conv_node("c", "x", "c", "w", **conv), _bn_node("bn", "c", "n", "bn"),
                 helper.make_node("Clip", ["n", "lo", "hi"], ["y"])]
    elif pattern == "conv-add-relu":
        nodes = [_conv_node("c", "x", "c", "w", "b", **conv), helper.make_node("Add", ["c", "x"], ["a"]),
                 helper.make_node("Relu", ["a"], ["y"])]
    elif pattern == "conv-bn-add-clip":
        nodes = [helper.make_node("Relu", ["x"], ["r"]), _conv_node("c", "r", "c", "w", **conv),
                 _bn_node("bn", "c", "n", "bn"), helper.make_node("Add", ["r", "n"], ["a"]),
                 helper.make_node("Clip", ["a", "lo", "hi"], ["y"])]
    elif pattern == "conv-leaky":
        nodes = [_conv_node("c", "x", "c", "w", "b", **conv), helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.1)]
    elif pattern == "dwconv-bn-relu6":
        nodes = [_conv_node("c", "x", "c", "dw", group=c, strides=[2, 2], **conv), _bn_node("bn", "c", "n", "bn"),
                 helper.make_node("Clip", ["n", "lo", "hi"], ["y"])]
    elif pattern == "conv-add-bcast":  # the residual is a [C,1,1] constant: broadcast, not a same-shape add
        nodes = [_conv_node("c", "x", "c", "w", **conv), helper.make_node("Add", ["c", "bias3"], ["a"]),
                 helper.make_node("Relu", ["a"], ["y"])]
    elif pattern == "add-conv-first-input":  # the conv output is the Add's second input
        nodes = [_conv_node("c", "x", "c", "w", "b", strides=[2, 2], **conv), helper.make_node("Relu", ["c"], ["r"]),
                 _conv_node("c2", "r", "c2", "w", **conv), helper.make_node("Add", ["r", "c2"], ["y"])]
    elif pattern == "conv-output-also-graph-output":
        nodes = [_conv_node("c", "x", "c", "w", "b", **conv), _bn_node("bn", "c", "n", "bn"),
                 helper.make_node("Relu", ["n"], ["y"])]
        outputs = ["y", "c", "n"]
    elif pattern == "conv-two-consumers":
        nodes = [_conv_node("c", "x", "c", "w", "b", **conv), helper.make_node("Relu", ["c"], ["r"]),
                 helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Add", ["r", "s"], ["y"])]
    elif pattern == "bn-relu":
        nodes = [_bn_node("bn", "x", "n", "bn"), helper.make_node("Relu", ["n"], ["y"])]
    elif pattern == "bn-leaky":
        nodes = [_bn_node("bn", "x", "n", "bn"), helper.make_node("LeakyRelu", ["n"], ["y"], alpha=0.3)]
    elif pattern == "conv-bn-add-self":  # Add(n, n): both inputs the conv's value
        nodes = [_conv_node("c", "x", "c", "w", **conv), _bn_node("bn", "c", "n", "bn"),
                 helper.make_node("Add", ["n", "n"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    elif pattern == "conv1d-bn-relu":
        shape = ["N", c, 11]
        nodes = [_conv_node("c", "x", "c", "w1", "b", kernel_shape=[3], pads=[1, 1]), _bn_node("bn", "c", "n", "bn"),
                 helper.make_node("Relu", ["n"], ["y"])]
    elif pattern == "conv-add-init-full":  # a [1,C,H,W] constant: same shape as the output for batch 1 only
        inits["full"] = randn(rng, 1, c, 9, 8)
        nodes = [_conv_node("c", "x", "c", "w", **conv), helper.make_node("Add", ["full", "c"], ["a"]),
                 helper.make_node("Relu", ["a"], ["y"])]
    elif pattern == "dwconv-add-relu":
        nodes = [_conv_node("c", "x", "c", "dw", group=c, **conv), helper.make_node("Add", ["c", "x"], ["a"]),
                 helper.make_node("Relu", ["a"], ["y"])]
    elif pattern == "conv-grouped-add":
        inits["wg"] = randn(rng, c, c // 2, 3, 3, scale=0.3)
        nodes = [_conv_node("c", "x", "c", "wg", "b", group=2, **conv), helper.make_node("Add", ["c", "x"], ["a"]),
                 helper.make_node("Clip", ["a", "lo", "hi"], ["y"])]
    elif pattern == "pointwise-bn-add":
        inits["pw"] = randn(rng, c, c, 1, 1, scale=0.3)
        nodes = [_conv_node("c", "x", "c", "pw"), _bn_node("bn", "c", "n", "bn"), helper.make_node("Add", ["n", "x"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", shape)], outputs, inits)
    model = check(path, single_input(shape, seed=3), LINEAR, batches=(1, 3, 5, 8))
    # with a capture the executor runs the exact (unfused) plan: same outputs, and the captured
    # intermediate equals onnxruntime's value of that tensor
    name = "c" if "c" in {n.output[0] for n in nodes} else "n"
    extended = make_model(tmp_path, nodes, [("x", shape)], outputs + ([name] if name not in outputs else []), inits,
                          name="with_capture")
    x = single_input(shape, seed=3)(3)["x"]
    ref = ort_session(extended).run(None, {"x": x})
    outs, captured = aimetcle.run(model, x, capture=[name])
    outs = outs if isinstance(outs, tuple) else (outs,)
    for a, b in zip(outs, ref):
        assert_close(a, b, LINEAR, "exact plan")
    assert_close(captured[name], ref[len(outputs)] if name not in outputs else ref[outputs.index(name)], LINEAR,
                 f"captured '{name}'")


def test_winograd_conv_bn_add_relu(tmp_path):
    """A 3x3 stride-1 conv with >= 16 channels (the Winograd F(4x4, 3x3) path) on a plane whose
    tiles overhang it (13x15), with a folded batch norm, a residual Add and Relu fused in."""
    rng = np.random.default_rng(23)
    c = 16
    inits = {"w": randn(rng, c, c, 3, 3, scale=0.2), "b": randn(rng, c)}
    inits.update(_bn_inits(rng, "bn", c))
    nodes = [_conv_node("c", "x", "c", "w", "b", kernel_shape=[3, 3], pads=[1, 1, 1, 1]), _bn_node("bn", "c", "n", "bn"),
             helper.make_node("Add", ["n", "x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", c, 13, 15])], ["y"], inits)
    check(path, single_input(["N", c, 13, 15]), LINEAR, batches=(1, 3, 5))


def test_conv_add_broadcasting_the_conv_output(tmp_path):
    """Add(conv output [N,1,H,W], x [N,C,H,W]): the sum has the *other* operand's shape."""
    rng = np.random.default_rng(11)
    nodes = [_conv_node("c", "x", "c", "w", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 4, 6, 7])], ["y"], {"w": randn(rng, 1, 4, 3, 3)})
    check(path, single_input(["N", 4, 6, 7]), LINEAR)


def test_conv_add_second_graph_input_broadcast(tmp_path):
    """Add(conv(x) [N,C,H,W], r [1,C,H,W]) with r a graph input: the batch is not split between inputs."""
    rng = np.random.default_rng(19)
    nodes = [_conv_node("c", "x", "c", "w", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "r"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 4, 6, 7]), ("r", [1, 5, 6, 7])], ["y"], {"w": randn(rng, 5, 4, 3, 3)})
    check(path, lambda n: {"x": randn(rng, n, 4, 6, 7), "r": randn(rng, 1, 5, 6, 7)}, LINEAR, batches=(1, 3, 6))


def test_two_inputs_different_batch_roles(tmp_path):
    """A second graph input without a batch axis of its own ([1, C, 1, 1]) beside a batched one."""
    rng = np.random.default_rng(12)
    nodes = [helper.make_node("Mul", ["x", "scale"], ["m"]), helper.make_node("Relu", ["m"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 4, 5, 6]), ("scale", [1, 4, 1, 1])], ["y"])
    check(path, lambda n: {"x": randn(rng, n, 4, 5, 6), "scale": randn(rng, 1, 4, 1, 1)}, ELEMENTWISE,
          batches=(1, 3, 8))


def test_small_cnn_chain(tmp_path):
    """Conv/BN/Relu/MaxPool/Conv/AvgPool/Flatten/Gemm/Softmax: every op feeding the next."""
    rng = np.random.default_rng(13)
    inits = {"w1": randn(rng, 8, 3, 3, 3, scale=0.3), "b1": randn(rng, 8), "w2": randn(rng, 16, 8, 3, 3, scale=0.2),
             "fc": randn(rng, 10, 16 * 4 * 4, scale=0.1), "fb": randn(rng, 10)}
    inits.update(_bn_inits(rng, "bn", 8))
    nodes = [_conv_node("c1", "x", "c1", "w1", "b1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             _bn_node("bn", "c1", "n1", "bn"), helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             _conv_node("c2", "p1", "c2", "w2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p2"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 16, 16])], ["y", "g"], inits)
    check(path, single_input(["N", 3, 16, 16]), LINEAR, batches=(1, 3, 5, 17, 64))


# --- whole models -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    data = np.load(DIGITS_NPZ)
    return data["x_test"], data["y_test"]


def test_digits_mbv2(digits):
    x, y = digits
    assert x.shape == (300, 1, 16, 16)
    model = aonnx.load(DIGITS_ONNX)
    ref = ort_session(DIGITS_ONNX, threads=2).run(None, {"input": x})[0]
    ours = model(x)
    assert_close(ours, ref, LINEAR, "batch 300")
    assert np.mean(np.argmax(ours, axis=1) == y) == pytest.approx(299 / 300)
    assert round(100 * np.mean(np.argmax(ours, axis=1) == y), 2) == 99.67
    ones = np.concatenate([model(x[i:i + 1]) for i in range(len(x))])
    assert_close(ones, ref, LINEAR, "batch 1")
    np.testing.assert_allclose(ones, ours, rtol=1e-5, atol=1e-5 * np.abs(ours).max())


def test_digits_mbv2_capture_matches_onnxruntime(tmp_path, digits):
    """Captured node outputs (exact plan) equal onnxruntime's values of the same tensors."""
    x = digits[0][:7]
    proto = onnx.load(DIGITS_ONNX)
    produced = [out for node in proto.graph.node for out in node.output if node.op_type != "Constant"]
    names = [produced[1], produced[2], produced[10], produced[-3]]
    for name in names:
        proto.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    path = str(tmp_path / "digits_outputs.onnx")
    onnx.save(proto, path)
    ref = ort_session(path).run(None, {"input": x})
    model = aonnx.load(DIGITS_ONNX)
    logits, captured = aimetcle.run(model, x, capture=names)
    assert_close(logits, ref[0], LINEAR, "logits")
    assert list(captured) == names
    for name, value in zip(names, ref[1:]):
        assert_close(captured[name], value, LINEAR, name)


def _randomize_batch_norms(model, seed):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight[...] = rng.uniform(0.5, 1.5, n)
            m.bias[...] = rng.normal(0, 0.2, n)
            m.running_mean[...] = rng.normal(0, 0.2, n)
            m.running_var[...] = rng.uniform(0.5, 2, n)
    return model.eval()


@pytest.mark.parametrize("arch", ["mobilenet_v2", "resnet18"])
def test_exported_models(tmp_path, arch):
    batch = 2
    tree = _randomize_batch_norms(getattr(models, arch)(), seed=14)
    path = str(tmp_path / f"{arch}.onnx")
    aonnx.save(tree, path, input_shapes=(batch, 3, 64, 64))
    x = randn(np.random.default_rng(15), batch, 3, 64, 64)
    ref = ort_session(path, threads=2).run(None, {ort_session(path).get_inputs()[0].name: x})[0]
    assert ref.shape == (batch, 1000)
    loaded = aonnx.load(path)
    assert_close(loaded(x), ref, LINEAR, f"{arch} loaded")
    exact, _ = aimetcle.run(loaded, x, capture=loaded.input_names)
    assert_close(exact, ref, LINEAR, f"{arch} loaded, exact plan")
    assert_close(tree(x), ref, LINEAR, f"{arch} module tree")
    # the loaded model runs other batch sizes too
    assert_close(loaded(x[:1]), ref[:1], LINEAR, f"{arch} batch 1")


# --- errors ---------------------------------------------------------------------------

@pytest.fixture
def small_model(tmp_path):
    rng = np.random.default_rng(16)
    nodes = [_conv_node("conv", "x", "c", "w", "b", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    path = make_model(tmp_path, nodes, [("x", ["N", 3, 8, 8])], ["y"], {"w": randn(rng, 4, 3, 3, 3), "b": randn(rng, 4)})
    x = randn(rng, 2, 3, 8, 8)
    return aonnx.load(path), x, ort_session(path).run(None, {"x": x})[0]


def _still_works(model, x, ref):
    assert_close(model(x), ref, LINEAR, "after the error")


def test_error_wrong_input_name(small_model):
    model, x, ref = small_model
    with pytest.raises((KeyError, ValueError), match="bogus"):
        model.handle.run({"bogus": x})
    with pytest.raises(ValueError, match="input"):
        aimetcle.run(model, x, x)  # two inputs for a one-input model
    _still_works(model, x, ref)


@pytest.mark.parametrize("bad", ["rank3", "rank5", "channels", "empty"])
def test_error_wrong_shape(small_model, bad):
    model, x, ref = small_model
    value = {"rank3": x[0], "rank5": x[None], "channels": x[:, :2], "empty": x[:0]}[bad]
    with pytest.raises(ValueError, match="'x'|shape|channels"):
        model(value)
    _still_works(model, x, ref)


def test_float64_input_is_converted(small_model):
    model, x, ref = small_model
    assert_close(model(x.astype(np.float64)), ref, LINEAR, "float64")
    assert_close(model(np.asfortranarray(x)), ref, LINEAR, "Fortran order")
    assert_close(model(x[:, :, ::-1, :][:, :, ::-1, :]), ref, LINEAR, "strided view")


def test_int_input_is_rejected(small_model):
    model, x, ref = small_model
    with pytest.raises((TypeError, ValueError), match="dtype|float|int"):
        model(np.round(x * 10).astype(np.int64))
    _still_works(model, x, ref)


def test_non_numeric_input_is_rejected(small_model):
    model, x, ref = small_model
    with pytest.raises((TypeError, ValueError), match="dtype|float"):
        model(x.astype(str))
    with pytest.raises(TypeError):
        aimetcle.run(model, x.tolist())
    _still_works(model, x, ref)


def test_non_finite_inputs_run_like_onnxruntime(small_model, tmp_path):
    """NaN and infinities are inputs like any other (an attention mask's -inf), as in onnxruntime: NaN
    propagates to the outputs of its item and no other."""
    model, x, ref = small_model
    bad = x.copy()
    bad[1, 2, 3, 4] = np.nan
    out = model(bad)
    assert np.isnan(out[1]).any() and not np.isnan(out[0]).any()
    bad[1, 2, 3, 4] = -np.inf
    assert model(bad).shape == ref.shape
    _still_works(model, x, ref)


def test_capture_unknown_name(small_model):
    model, x, ref = small_model
    with pytest.raises(KeyError, match="nope"):
        aimetcle.run(model, x, capture=["nope"])
    outs, captured = aimetcle.run(model, x, capture=["c", "x"])
    assert_close(outs, ref, LINEAR, "with capture")
    np.testing.assert_array_equal(captured["x"], x)
    assert captured["c"].shape == (2, 4, 8, 8)
    np.testing.assert_allclose(np.maximum(captured["c"], 0), outs, rtol=1e-6)
    _still_works(model, x, ref)


def test_runs_interleave_batch_sizes(small_model):
    """Cached per-shape plans: alternating batch sizes give the same per-item values."""
    model, x, ref = small_model
    for _ in range(2):
        for n in (2, 1, 2, 1):
            assert_close(model(x[:n]), ref[:n], LINEAR, f"batch {n}")


# --- the model after changes, threads ------------------------------------------------------

def test_weights_edited_in_place_are_used(tmp_path, digits):
    """Editing a weight array of a loaded model changes the next run (the compiled executor is not stale)."""
    x = digits[0][:20]
    model = aonnx.load(DIGITS_ONNX)
    before = model(x)
    model.state_dict()["features.0.0.weight"][...] *= -1.5
    model.state_dict()["classifier.1.bias"][...] += 0.25
    after = model(x)
    path = str(tmp_path / "edited.onnx")
    aonnx.save(model, path)
    assert_close(after, ort_session(path).run(None, {"input": x})[0], LINEAR, "edited")
    assert not np.allclose(before, after)


def test_fold_all_batch_norms_keeps_outputs(digits):
    from aimetcle.batch_norm_fold import fold_all_batch_norms
    x = digits[0][:20]
    model = aonnx.load(DIGITS_ONNX)
    before = model(x)
    fold_all_batch_norms(model, (1, 1, 16, 16))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert_close(model(x), before, LINEAR, "folded ONNX model")
    tree = _randomize_batch_norms(models.resnet18(num_classes=10), seed=17)
    x = randn(np.random.default_rng(18), 2, 3, 32, 32)
    before = tree(x)
    fold_all_batch_norms(tree, (2, 3, 32, 32))
    assert_close(tree(x), before, LINEAR, "folded module tree")


def test_threads_with_their_own_models(digits):
    import threading
    x = digits[0][:40]
    ref = aonnx.load(DIGITS_ONNX)(x)
    failures = []

    def work(seed):
        model = aonnx.load(DIGITS_ONNX)
        for k in range(10):
            n = 1 + (seed * 7 + k * 13) % 40
            try:
                assert_close(model(x[:n]), ref[:n], LINEAR, f"thread {seed}, batch {n}")
            except Exception as exc:  # collected: an exception in a thread does not fail the test
                failures.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_fork_after_runs(digits):
    """A child forked after the library's worker threads started runs models too
    (only the forking thread exists in the child: the pool starts anew there)."""
    x = digits[0][:32]
    model = aonnx.load(DIGITS_ONNX)
    ref = model(x)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if the run completes and matches
        ok = False
        try:
            ok = np.array_equal(model(x), ref) and np.array_equal(aonnx.load(DIGITS_ONNX)(x), ref)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert np.array_equal(model(x), ref)


def test_threads_sharing_one_model(digits):
    """One handle serves one thread at a time: concurrent runs either succeed with the right
    values or raise ValueError ("in use by another thread"); never wrong values or a crash."""
    import threading
    x = digits[0][:30]
    model = aonnx.load(DIGITS_ONNX)
    ref = model(x)
    failures, refusals = [], []

    def work(seed):
        for k in range(10):
            n = 1 + (seed * 11 + k * 7) % 30
            try:
                out = model(x[:n])
            except ValueError as exc:
                refusals.append(str(exc))
                continue
            except Exception as exc:
                failures.append(exc)
                continue
            try:
                assert_close(out, ref[:n], LINEAR, f"thread {seed}, batch {n}")
            except AssertionError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[0]
    assert all("thread" in message for message in refusals), refusals[:1]
    assert_close(model(x), ref, LINEAR, "afterwards")


# Capturing a value the executor never materializes: a Constant node's output or an unused
# optional output (Dropout's mask). The name passes the "known name" check in
# Sources/CAPI/RunExports.swift runCapturing (graph.nodes.flatMap(\.outputs) includes them),
# but the hook never sees it, so `captured[$0]!` traps and the whole process dies
# (SIGILL). Run in a subprocess so that the crash fails only this test.
_CAPTURE_SCRIPT = r"""
import sys
import numpy as np
import aimetcle
from aimetcle import onnx as aonnx
path, name = sys.argv[1], sys.argv[2]
model = aonnx.load(path)
x = np.zeros([2] + [int(d) for d in sys.argv[3].split(",")], np.float32)
try:
    aimetcle.run(model, x, capture=[name])
    print("captured")
except (KeyError, ValueError) as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("what", ["constant-output", "dropout-mask"])
def test_capture_of_values_never_computed_does_not_crash(tmp_path, what):
    import subprocess
    import sys
    if what == "constant-output":
        proto = onnx.load(DIGITS_ONNX)
        name = next(n.output[0] for n in proto.graph.node if n.op_type == "Constant")
        path, dims = DIGITS_ONNX, "1,16,16"
    else:
        nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"]), helper.make_node("Relu", ["d"], ["y"])]
        path = make_model(tmp_path, nodes, [("x", ["N", 3])], ["y"])
        name, dims = "mask", "3"
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    done = subprocess.run([sys.executable, "-c", _CAPTURE_SCRIPT, path, name, dims], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"the process died (status {done.returncode})"
    assert done.stdout.startswith(("captured", "refused"))
