"""Activations against onnxruntime and a float64 reference.

Every elementwise activation (Relu, LeakyRelu, PRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish,
Gelu, Elu, Selu, Celu, Softplus, Softsign, Mish, ThresholdedRelu, Swish) and the row-wise Softmax,
LogSoftmax, Hardmax run as tiny ONNX models in onnxruntime (graph optimizations off) and through
``aimetcle.onnx.load``: the fused plan and the exact plan (a capture), batch sizes 1 and 3
(the batch axis symbolic). Then:

* a dense range of inputs, large magnitudes included, against the float64 formula: the vectorized
  kernels (exp, tanh, erf polynomials) stay within 1e-6 relative of it;
* activations fused into a conv / batch-norm epilogue;
* Clip with bounds computed at run time and on int64, Relu on int64;
* the refusals, each naming the node and the reason.
"""

import math
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402
from aimetcle.errors import AimetError  # noqa: E402
from test_runtime import (BATCHES, ELEMENTWISE, LINEAR, assert_close, check, float_input,  # noqa: E402,F401
                          make_model, ort_session)

# --- helpers -------------------------------------------------------------------------

def unary(tmp_path, op, shape=("N", 3, 5, 7), opset=17, dtype=np.float32, extra=(), initializers=None,
          extra_inputs=(), nodes_before=(), **attrs):
    """``y = op(x, *extra)``; an integer model also passes a float32 ``probe`` through an Identity
    (a float32 input to capture: see ``float_input``)."""
    nodes = [*nodes_before, helper.make_node(op, ["x", *extra], ["y"], name=f"{op.lower()}_node", **attrs)]
    inputs, outputs = [("x", list(shape), dtype), *extra_inputs], [("y", None, dtype)]
    if dtype != np.float32:
        nodes.append(helper.make_node("Identity", ["probe"], ["probe_out"], name="probe"))
        inputs.append(("probe", ["N", 2], np.float32))
        outputs.append(("probe_out", None, np.float32))
    return make_model(tmp_path, nodes, inputs, outputs, initializers, opset)


def with_probe(feeds):
    """make_feeds plus the float32 probe of an integer model."""
    return lambda n: {**feeds(n), "probe": np.ones((n, 2), np.float32)}


def feeds_for(shape, scale=4.0, seed=0, name="x", dtype=np.float32):
    def feeds(batch):
        rng = np.random.default_rng(seed + batch)
        concrete = [batch if d == "N" else d for d in shape]
        if dtype == np.int64:
            return {name: rng.integers(-50, 50, concrete).astype(np.int64)}
        return {name: (rng.standard_normal(concrete) * scale).astype(np.float32)}
    return feeds


def refused(path, feeds, *patterns):
    """Loading and running ``path`` raises an AimetError whose message matches every pattern."""
    with pytest.raises(AimetError) as info:
        model = aonnx.load(path)
        model(*[feeds[name] for name in model.input_names])
    for pattern in patterns:
        assert pattern in str(info.value), f"{pattern!r} not in {str(info.value)!r}"


# --- elementwise activations -----------------------------------------------------------

SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875

def f32(x):
    return np.asarray(x).astype(np.float64)


def gelu_tanh_argument(x):
    """``2·√(2/π)·(x + 0.044715·x³)`` rounded as float32 arithmetic rounds it: at large |x| the
    result (a sigmoid far in its tail) is that steep in it, so the reference takes the float32
    argument as the op's own and evaluates the rest in float64."""
    v = x.astype(np.float32)
    with np.errstate(over="ignore"):
        inner = v + np.float32(0.044715) * v * v * v
        return f32(np.float32(2 * np.float32(math.sqrt(2 / math.pi))) * inner)


# (op, attributes, opset, float64 reference; arguments that float32 rounds before a steep function in float32)
ACTIVATIONS = [
    ("Relu", {}, 17, lambda x: np.maximum(x, 0)),
    ("LeakyRelu", {}, 17, lambda x: np.where(x >= 0, x, 0.01 * x)),
    ("LeakyRelu", {"alpha": -1.5}, 17, lambda x: np.where(x >= 0, x, -1.5 * x)),
    ("Sigmoid", {}, 17, lambda x: 1 / (1 + np.exp(-x))),
    ("Tanh", {}, 17, np.tanh),
    ("HardSigmoid", {}, 17, lambda x: np.clip(np.float32(0.2) * x + 0.5, 0, 1)),
    ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.4}, 17, lambda x: np.clip(np.float32(1 / 6) * x + np.float32(0.4), 0, 1)),
    ("HardSwish", {}, 17, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    ("Gelu", {}, 20, lambda x: 0.5 * x * np.vectorize(math.erfc)(-x / math.sqrt(2))),
    ("Gelu", {"approximate": "tanh"}, 20, lambda x: x / (1 + np.exp(-gelu_tanh_argument(x)))),
    ("Elu", {}, 17, lambda x: np.where(x > 0, x, np.expm1(x))),
    ("Elu", {"alpha": 0.5}, 17, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ("Selu", {}, 17, lambda x: np.float32(SELU_GAMMA) * np.where(x > 0, x, np.float32(SELU_ALPHA) * np.expm1(x))),
    ("Selu", {"alpha": 2.0, "gamma": 0.5}, 17, lambda x: 0.5 * np.where(x > 0, x, 2 * np.expm1(x))),
    ("Celu", {}, 17, lambda x: np.maximum(x, 0) + np.minimum(0, np.expm1(x))),
    ("Celu", {"alpha": 2.0}, 17, lambda x: np.maximum(x, 0) + np.minimum(0, 2 * np.expm1(x / 2))),
    ("Softplus", {}, 17, lambda x: np.logaddexp(0, x)),
    ("Softsign", {}, 17, lambda x: x / (1 + np.abs(x))),
    ("Mish", {}, 18, lambda x: x * np.tanh(np.logaddexp(0, x))),
    ("ThresholdedRelu", {}, 17, lambda x: np.where(x > 1, x, 0)),
    ("ThresholdedRelu", {"alpha": -0.5}, 17, lambda x: np.where(x > -0.5, x, 0)),
    ("Swish", {}, 24, lambda x: x / (1 + np.exp(-x))),
    ("Swish", {"alpha": 0.7}, 24, lambda x: x / (1 + np.exp(-f32(np.float32(0.7) * x.astype(np.float32))))),
]
IDS = [f"{op}{''.join(f'-{k}{v}' for k, v in a.items())}" for op, a, _, _ in ACTIVATIONS]


def ort_runs(op, opset):
    """Whether this onnxruntime implements the op at the opset (Swish-24 may be missing)."""
    try:
        ort_session(unary(_TMP, op, shape=("N", 4), opset=opset))
        return True
    except Exception:  # noqa: BLE001 - onnxruntime's own error types vary
        return False


_TMP = None


@pytest.fixture(autouse=True, scope="module")
def _module_tmp(tmp_path_factory):
    global _TMP
    _TMP = tmp_path_factory.mktemp("probe")


@pytest.mark.parametrize("op,attrs,opset,reference", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("shape", [("N", 3, 5, 7), ("N", 16, 33, 31), ("N", 11)], ids=["small", "large", "2d"])
def test_activation_against_onnxruntime(tmp_path, op, attrs, opset, reference, shape):
    if not ort_runs(op, opset):
        pytest.skip(f"onnxruntime {ort.__version__} does not run {op}-{opset}")
    path = unary(tmp_path, op, shape, opset=opset, **attrs)
    check(path, feeds_for(shape, scale=6.0))


def dense_inputs():
    """Every float step of 1/128 over [-100, 100], then ±2^k for k in -126..127 and their neighbours."""
    dense = np.arange(-100 * 128, 100 * 128 + 1, dtype=np.float64) / 128
    powers = np.ldexp(1.0, np.arange(-126, 128))
    wide = np.concatenate([powers, powers * 1.5, powers * 0.75])
    x = np.concatenate([dense, wide, -wide, [np.finfo(np.float32).max, -np.finfo(np.float32).max, 0.0, -0.0]])
    return x.astype(np.float32)


@pytest.mark.parametrize("op,attrs,opset,reference", ACTIVATIONS, ids=IDS)
def test_activation_dense_range(tmp_path, op, attrs, opset, reference):
    """Within 1e-6 relative of the float64 formula (plus 1e-30 absolute: the float32 results near
    the denormal range)
    over [-100, 100] and out to ±FLT_MAX, on the vectorized path (long rows) and the scalar tail."""
    x = dense_inputs()
    x = np.concatenate([x, x[: 37]])  # a tail shorter than a vector
    path = unary(tmp_path, op, ("N", x.size), opset=opset, **attrs)
    model = aonnx.load(path)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = reference(x.astype(np.float64))
    ref32 = ref.astype(np.float32)
    big = ~np.isfinite(ref32)  # beyond float32's range: ±∞ (Selu of FLT_MAX)
    for plan, ours in (("fused", model(x[None])), ("exact", aimetcle.run(model, x[None], capture=["x"])[0])):
        ours = ours[0]
        assert np.array_equal(ours[big], ref32[big]), f"{plan}: values beyond FLT_MAX differ"
        err = np.abs(ours[~big].astype(np.float64) - ref[~big])
        relative = err / (np.abs(ref[~big]) + 1e-30)
        k = int(np.argmax(relative))
        assert relative[k] <= 1e-6, (f"{plan}: {int(np.sum(relative > 1e-6))} values beyond 1e-6 relative; worst at "
                                     f"x = {x[~big][k]!r}: ours {ours[~big][k]!r}, exact {ref[~big][k]!r}")


# --- fusion into a conv / batch-norm epilogue ----------------------------------------

FUSED = [("HardSwish", {}, 17), ("Sigmoid", {}, 17), ("HardSigmoid", {"alpha": 1 / 6}, 17), ("Gelu", {}, 20),
         ("Tanh", {}, 17), ("Elu", {}, 17), ("Mish", {}, 18), ("LeakyRelu", {"alpha": 0.1}, 17)]


@pytest.mark.parametrize("op,attrs,opset", FUSED, ids=[f[0] for f in FUSED])
@pytest.mark.parametrize("layer", ["conv", "conv-bn-add", "depthwise", "bn"])
def test_activation_after_a_layer(tmp_path, op, attrs, opset, layer):
    rng = np.random.default_rng(3)
    c = 8
    init = {"w": (rng.standard_normal((c, c, 3, 3)) * 0.3).astype(np.float32),
            "dw": (rng.standard_normal((c, 1, 3, 3)) * 0.5).astype(np.float32),
            "b": rng.standard_normal(c).astype(np.float32),
            "scale": rng.uniform(0.5, 2, c).astype(np.float32), "bias": rng.standard_normal(c).astype(np.float32),
            "mean": rng.standard_normal(c).astype(np.float32), "var": rng.uniform(0.5, 2, c).astype(np.float32)}
    bn = lambda i, o: helper.make_node("BatchNormalization", [i, "scale", "bias", "mean", "var"], [o], name=f"bn_{o}")
    if layer == "conv":
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["h"], name="conv", pads=[1, 1, 1, 1])]
    elif layer == "conv-bn-add":
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), bn("c", "n"),
                 helper.make_node("Add", ["n", "x"], ["h"], name="add")]
    elif layer == "depthwise":
        nodes = [helper.make_node("Conv", ["x", "dw", "b"], ["h"], name="conv", pads=[1, 1, 1, 1], group=c)]
    else:
        nodes = [bn("x", "h")]
    nodes.append(helper.make_node(op, ["h"], ["y"], name="act", **attrs))
    path = make_model(tmp_path, nodes, [("x", ["N", c, 13, 17], np.float32)], [("y", None, np.float32)], init, opset)
    check(path, feeds_for(["N", c, 13, 17], scale=2.0), LINEAR)


SPELLED_OUT = {
    # torch's nn.GELU() before opset 20, in the orders exporters write it
    "gelu-div": lambda: [helper.make_node("Div", ["h", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                         helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["h", "a"], ["p"]),
                         helper.make_node("Mul", ["p", "half"], ["y"])],
    "gelu-half-first": lambda: [helper.make_node("Mul", ["h", "half"], ["q"]), helper.make_node("Mul", ["h", "rsqrt2"], ["d"]),
                                helper.make_node("Erf", ["d"], ["e"]), helper.make_node("Add", ["one", "e"], ["a"]),
                                helper.make_node("Mul", ["q", "a"], ["y"])],
    "silu": lambda: [helper.make_node("Sigmoid", ["h"], ["s"]), helper.make_node("Mul", ["s", "h"], ["y"])],
    "hardswish": lambda: [helper.make_node("HardSigmoid", ["h"], ["s"], alpha=1 / 6, beta=0.5),
                          helper.make_node("Mul", ["h", "s"], ["y"])],
}


@pytest.mark.parametrize("pattern", sorted(SPELLED_OUT))
@pytest.mark.parametrize("layer", ["linear", "conv", "none"])
def test_activation_spelled_over_several_nodes(tmp_path, pattern, layer):
    """Multi-node activations (run as one step on the fused plan, node by node on the exact one) after a
    Linear exported as MatMul + Add, after a Conv, and on their own."""
    rng = np.random.default_rng(5)
    init = {"w": (rng.standard_normal((12, 20)) * 0.4).astype(np.float32), "b": rng.standard_normal(20).astype(np.float32),
            "cw": (rng.standard_normal((6, 6, 3, 3)) * 0.3).astype(np.float32),
            "sqrt2": scalar(math.sqrt(2)), "rsqrt2": scalar(math.sqrt(0.5)), "one": scalar(1.0), "half": scalar(0.5)}
    if layer == "linear":
        shape, nodes = ["N", 7, 12], [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["b", "m"], ["h"])]
    elif layer == "conv":
        shape, nodes = ["N", 6, 9, 11], [helper.make_node("Conv", ["x", "cw"], ["h"], pads=[1, 1, 1, 1])]
    else:
        shape, nodes = ["N", 5, 33], [helper.make_node("Identity", ["x"], ["h"])]
    path = make_model(tmp_path, nodes + SPELLED_OUT[pattern](), [("x", shape, np.float32)], [("y", None, np.float32)],
                      init)
    check(path, feeds_for(shape, scale=2.0), LINEAR)


def test_silu_after_conv(tmp_path):
    """EfficientNet's SiLU, Conv -> Sigmoid, Mul (the conv's output read twice)."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["h"], ["s"], name="sig"), helper.make_node("Mul", ["h", "s"], ["y"], name="mul")]
    path = make_model(tmp_path, nodes, [("x", ["N", 6, 20, 20], np.float32)], [("y", None, np.float32)],
                      {"w": (rng.standard_normal((6, 6, 3, 3)) * 0.3).astype(np.float32)})
    check(path, feeds_for(["N", 6, 20, 20], scale=2.0), LINEAR)


# --- PRelu -------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,slope_shape", [
    (("N", 4, 5, 7), (4, 1, 1)), (("N", 4, 5, 7), (1,)), (("N", 4, 5, 7), ()), (("N", 4, 5, 7), (1, 4, 1, 1)),
    (("N", 4, 5, 7), (7,)), (("N", 4, 5, 7), (5, 7)), (("N", 4, 5), (5,)), (("N", 4, 5, 7), (4, 5, 7)),
], ids=["C11", "one", "scalar", "1C11", "last-axis", "HW", "broadcast-3d", "full"])
@pytest.mark.parametrize("slope_at_runtime", [False, True], ids=["const", "input"])
def test_prelu(tmp_path, x_shape, slope_shape, slope_at_runtime):
    slope = np.random.default_rng(6).standard_normal(slope_shape).astype(np.float32)
    if slope_at_runtime:
        path = unary(tmp_path, "PRelu", x_shape, extra=["slope"], extra_inputs=[("slope", list(slope_shape), np.float32)])
    else:
        path = unary(tmp_path, "PRelu", x_shape, extra=["slope"], initializers={"slope": slope})
    base = feeds_for(x_shape)
    check(path, lambda n: {**base(n), **({"slope": slope} if slope_at_runtime else {})})


def test_prelu_slope_not_broadcastable_is_refused(tmp_path):
    path = unary(tmp_path, "PRelu", ("N", 4, 5), extra=["slope"], initializers={"slope": np.ones(4, np.float32)})
    refused(path, feeds_for(("N", 4, 5))(2), "prelu_node", "PRelu", "does not broadcast")


# --- Clip --------------------------------------------------------------------------------

def scalar(value, dtype=np.float32):
    return np.array(value, dtype=dtype)


CLIP_RUNTIME = [
    # (id, extra inputs, runtime bounds, initializers)
    ("both-runtime", ["lo", "hi"], {"lo": -0.5, "hi": 0.7}, {}),
    ("min-runtime", ["lo", "hi"], {"lo": 0.25}, {"hi": 1.5}),
    ("max-runtime", ["lo", "hi"], {"hi": -0.2}, {"lo": -3.0}),
    ("only-min-runtime", ["lo"], {"lo": 0.0}, {}),
    ("only-max-runtime", ["", "hi"], {"hi": 2.0}, {}),
    ("min-above-max", ["lo", "hi"], {"lo": 1.0, "hi": -1.0}, {}),
]


@pytest.mark.parametrize("bound_shape", [(), (1,)], ids=["0d", "1d"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64], ids=["float32", "int64"])
@pytest.mark.parametrize("extra,runtime,inits", [c[1:] for c in CLIP_RUNTIME], ids=[c[0] for c in CLIP_RUNTIME])
def test_clip_runtime_bounds(tmp_path, extra, runtime, inits, dtype, bound_shape):
    """Bounds fed as graph inputs: scalars as ONNX says, or of shape [1] as onnxruntime also accepts."""
    scale = 1 if dtype == np.float32 else 20
    runtime = {k: np.full(bound_shape, v * scale, dtype) for k, v in runtime.items()}
    inits = {k: scalar(v * scale, dtype) for k, v in inits.items()}
    path = unary(tmp_path, "Clip", ("N", 3, 40, 50), opset=13, dtype=dtype, extra=extra, initializers=inits,
                 extra_inputs=[(k, list(bound_shape), dtype) for k in runtime])
    base = feeds_for(("N", 3, 40, 50), dtype=dtype)
    feeds = lambda n: {**base(n), **runtime}  # noqa: E731
    check(path, with_probe(feeds) if dtype == np.int64 else feeds)


@pytest.mark.parametrize("bounds", [(-7, 9), (None, 3), (-2, None), (None, None)], ids=["both", "max", "min", "none"])
@pytest.mark.parametrize("opset", [12, 13, 17])
def test_clip_int64_constant_bounds(tmp_path, bounds, opset):
    extra, inits = [], {}
    for name, value in zip(("lo", "hi"), bounds):
        extra.append(name if value is not None else "")
        if value is not None:
            inits[name] = scalar(value, np.int64)
    path = unary(tmp_path, "Clip", ("N", 6), opset=opset, dtype=np.int64, extra=extra, initializers=inits)
    check(path, with_probe(feeds_for(("N", 6), dtype=np.int64)))


def test_clip_int64_extremes(tmp_path):
    """int64 values beyond float32's exact range stay exact."""
    path = unary(tmp_path, "Clip", ("N", 4), opset=13, dtype=np.int64, extra=["lo", "hi"],
                 initializers={"lo": scalar(-(2 ** 53) - 1, np.int64), "hi": scalar(2 ** 62 + 3, np.int64)})
    row = np.array([-(2 ** 63), 2 ** 63 - 1, 2 ** 53 + 1, -(2 ** 53) - 3], np.int64)
    check(path, with_probe(lambda n: {"x": np.repeat(row[None], n, axis=0)}))


def test_relu_int64(tmp_path):
    """Relu-14 on int64 (onnxruntime has no int64 Relu: against numpy), both plans."""
    path = unary(tmp_path, "Relu", ("N", 5, 7), opset=14, dtype=np.int64)
    model = aonnx.load(path)
    for batch in BATCHES:
        x = feeds_for(("N", 5, 7), dtype=np.int64)(batch)["x"]
        x[0, 0, :3] = [-(2 ** 62), 2 ** 62 + 1, 0]
        probe = np.ones((batch, 2), np.float32)
        exact, _ = aimetcle.run(model, x, probe, capture=["probe"])
        for plan, ours in (("fused", model(x, probe)), ("exact", exact)):
            assert_close(ours[0], np.maximum(x, 0), 0, f"{plan} plan, batch {batch}")


def test_clip_bound_with_two_values_is_refused(tmp_path):
    path = unary(tmp_path, "Clip", ("N", 4), opset=13, extra=["lo"], extra_inputs=[("lo", [2], np.float32)])
    feeds = {"x": np.zeros((1, 4), np.float32), "lo": np.zeros(2, np.float32)}
    refused(path, feeds, "clip_node", "min bound", "scalars")


def test_clip_bound_of_another_type_is_refused(tmp_path):
    path = unary(tmp_path, "Clip", ("N", 4), opset=13, extra=["lo"], initializers={"lo": scalar(0, np.int64)})
    refused(path, {"x": np.zeros((1, 4), np.float32)}, "clip_node", "int64", "bounds have the input's type")


# --- Softmax, LogSoftmax, Hardmax ---------------------------------------------------------

ROWWISE = [
    # (id, shape, axis or None)
    ("2d-last", ("N", 10), -1),
    ("2d-default", ("N", 10), None),
    ("3d-1", ("N", 4, 6), 1),
    ("3d-default", ("N", 4, 6), None),
    ("4d-last", ("N", 3, 4, 5), -1),
    ("4d-1", ("N", 3, 4, 5), 1),
    ("4d-2", ("N", 3, 4, 5), 2),
    ("4d-minus3", ("N", 3, 4, 5), -3),
    ("4d-0", ("N", 3, 4, 5), 0),
    ("large", ("N", 64, 1000), -1),
    ("large-axis1", ("N", 300, 40), 1),
]


@pytest.mark.parametrize("shape,axis", [c[1:] for c in ROWWISE], ids=[c[0] for c in ROWWISE])
@pytest.mark.parametrize("opset", [7, 11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_rowwise(tmp_path, op, shape, axis, opset):
    if opset == 7 and axis is not None and axis < 0:
        pytest.skip("opset 7 takes axis >= 0")
    attrs = {} if axis is None else {"axis": axis}
    path = unary(tmp_path, op, shape, opset=opset, **attrs)
    if op == "Hardmax":
        # small integers: ties, where the first maximum wins
        def feeds(n):
            rng = np.random.default_rng(n)
            return {"x": rng.integers(-3, 4, [n if d == "N" else d for d in shape]).astype(np.float32)}
        check(path, feeds)
    else:
        check(path, feeds_for(shape, scale=5.0))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_rowwise_large_magnitudes(tmp_path, op):
    path = unary(tmp_path, op, ("N", 6))
    x = np.array([[1000, 999, -1000, 0, 88, 89]], np.float32)
    check(path, lambda n: {"x": np.repeat(x, n, axis=0) - np.arange(n, dtype=np.float32)[:, None]})


def test_logsoftmax_long_rows(tmp_path):
    """Rows of 10⁵ values: within 1e-5 (relative, floor 1e-5 of the row's largest magnitude) of float64."""
    path = unary(tmp_path, "LogSoftmax", ("N", 100000), opset=13)
    x = feeds_for(("N", 100000), scale=5.0)(2)["x"]
    rows = x.astype(np.float64)
    top = rows.max(axis=1, keepdims=True)
    exact = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
    ours = aonnx.load(path)(x)
    err = np.abs(ours - exact)
    assert np.all(err <= 1e-5 * (np.abs(exact) + np.abs(exact).max())), f"max abs error {err.max():.2e}"


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_rowwise_axis_out_of_range_is_refused(tmp_path, op):
    path = unary(tmp_path, op, ("N", 3, 4), opset=13, axis=3)
    refused(path, feeds_for(("N", 3, 4))(1), f"{op.lower()}_node", "axis 3 is out of range")


# --- refusals of bad attributes ---------------------------------------------------------

def test_gelu_unknown_approximation_is_refused(tmp_path):
    path = unary(tmp_path, "Gelu", ("N", 4), opset=20, approximate="erf")
    refused(path, feeds_for(("N", 4))(1), "gelu_node", "approximate is 'erf'")


def test_celu_alpha_zero_is_refused(tmp_path):
    path = unary(tmp_path, "Celu", ("N", 4), opset=17, alpha=0.0)
    refused(path, feeds_for(("N", 4))(1), "celu_node", "alpha is 0")


def test_activation_of_int64_is_refused(tmp_path):
    path = unary(tmp_path, "Sigmoid", ("N", 4), dtype=np.int64)
    refused(path, with_probe(feeds_for(("N", 4), dtype=np.int64))(1), "sigmoid_node", "int64")
