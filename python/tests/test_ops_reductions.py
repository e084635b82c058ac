"""Reductions, normalizations and pools against onnxruntime.

Each test builds a tiny ONNX model with ``onnx.helper``, runs it in onnxruntime (graph
optimizations off) and through ``aimetcle.onnx.load(path)``, both the fused plan
(``aimetcle.run(model, *inputs)``) and the exact plan (the same run capturing the first float
input), for batch sizes 1 and 3 (the batch axis is symbolic), and compares with an explicit
tolerance (``assert_close`` of test_runtime: relative, with a floor at rtol times the largest
magnitude). Integer and bool results must match exactly, in their own dtype.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402

import test_runtime  # noqa: E402
from test_runtime import ELEMENTWISE, assert_close, ort_session, randn, rng_for  # noqa: E402

BATCHES = (1, 3)
REDUCTION = 2e-5  # sums over up to a few hundred terms in a different order than onnxruntime's
NORMALIZATION = 1e-4  # (x − μ)/σ amplifies the rounding of μ near cancellation


def make_model(*args, opset=18, **kwargs):
    return test_runtime.make_model(*args, opset=opset, **kwargs)


def compare(ours, ref, rtol, what):
    ref = np.asarray(ref)
    if ref.dtype == np.float32:
        assert_close(ours, ref, rtol, what)
    else:
        assert isinstance(ours, np.ndarray) and ours.dtype == ref.dtype, f"{what}: {getattr(ours, 'dtype', type(ours))} vs {ref.dtype}"
        assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, reference {ref.shape}"
        assert np.array_equal(ours, ref), f"{what}: {ours} vs {ref}"


def check(path, make_feeds, rtol, reference=None, batches=BATCHES):
    """Runs ``path`` here and in onnxruntime (or ``reference(feeds)`` when given) for each batch size."""
    model = aonnx.load(path)
    session = None if reference else ort_session(path)
    for batch in batches:
        feeds = make_feeds(batch)
        ref = reference(feeds) if reference else session.run(None, feeds)
        inputs = [feeds[name] for name in model.input_names]
        floats = [name for name in model.input_names if feeds[name].dtype == np.float32]
        plans = [("fused", aimetcle.run(model, *inputs))]
        if floats:  # capturing a float input forces the exact plan
            plans.append(("exact", aimetcle.run(model, *inputs, capture=floats[:1])[0]))
        for plan, ours in plans:
            ours = ours if isinstance(ours, tuple) else (ours,)
            assert len(ours) == len(ref)
            for k, (a, b) in enumerate(zip(ours, ref)):
                compare(a, b, rtol, f"{plan} plan, batch {batch}, output {k}")
    return model


def feeds_of(shape, dtype=np.float32, seed=0, transform=None, name="x"):
    def feeds(batch):
        rng = np.random.default_rng(seed + batch)
        if dtype == np.int64:
            x = rng.integers(-5, 6, size=(batch, *shape[1:])).astype(np.int64)
        elif dtype == np.bool_:
            x = rng.random((batch, *shape[1:])) < 0.5
        else:
            x = randn(rng, batch, *shape[1:])
        return {name: transform(x) if transform else x}
    return feeds


# --- Reduce* -------------------------------------------------------------------------

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]

# Inputs that keep each reduction well conditioned: LogSum needs positive sums, Prod values near 1.
TRANSFORMS = {"ReduceLogSum": lambda x: np.abs(x) + 0.1, "ReduceProd": lambda x: (1 + 0.2 * x).astype(np.float32)}

# (id, axes (None = absent), keepdims): contiguous rows, planes (inner > 1), scattered blocks, all, batch axis.
REDUCE_AXES = [
    ("last", [-1], 1), ("hw", [2, 3], 1), ("hw-nokeep", [2, 3], 0), ("channel", [1], 1), ("channel-nokeep", [1], 0),
    ("scattered", [1, 3], 1), ("scattered-nokeep", [3, 1], 0), ("all", None, 1), ("all-nokeep", None, 0),
    ("batch", [0], 1), ("batch-and-w", [0, -1], 0),
]


@pytest.mark.parametrize("axes,keepdims", [c[1:] for c in REDUCE_AXES], ids=[c[0] for c in REDUCE_AXES])
@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce(tmp_path, op, opset, axes, keepdims):
    shape = ["N", 5, 6, 7]
    axes_input = opset >= (13 if op == "ReduceSum" else 18)
    inits, attrs, inputs = {}, {"keepdims": keepdims}, ["x"]
    if axes is not None and axes_input:
        inits["axes"] = np.array(axes, np.int64)
        inputs.append("axes")
    elif axes is not None:
        attrs["axes"] = axes
    node = helper.make_node(op, inputs, ["y"], **attrs)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], inits, opset=opset)
    check(path, feeds_of(shape, transform=TRANSFORMS.get(op)), REDUCTION)


def test_reduce_mean_large_planes(tmp_path):
    """ReduceMean over H, W of a squeeze-excite block (contiguous rows of 56·56), and over C of NHWC (planes)."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1),
             helper.make_node("ReduceMean", ["x"], ["z"], axes=[1], keepdims=0)]
    path = make_model(tmp_path, nodes, [("x", ["N", 24, 56, 56], np.float32)], ["y", "z"], opset=17)
    check(path, feeds_of(["N", 24, 56, 56]), REDUCTION)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_noop_with_empty_axes(tmp_path, op):
    """noop_with_empty_axes = 1 and no axes: nothing is reduced (each element mapped alone)."""
    inputs = ["x", "axes"] if op != "ReduceSum" else ["x", ""]
    node = helper.make_node(op, inputs, ["y"], noop_with_empty_axes=1)
    inits = {"axes": np.zeros(0, np.int64)} if op != "ReduceSum" else {}
    path = make_model(tmp_path, [node], [("x", ["N", 3, 4], np.float32)], ["y"], inits, opset=18)
    check(path, feeds_of(["N", 3, 4], transform=TRANSFORMS.get(op)), ELEMENTWISE)


INT_REDUCE_OPS = ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare"]


@pytest.mark.parametrize("axes", [[1], [1, 2], [0, 2], None], ids=["c", "hw", "scattered", "all"])
@pytest.mark.parametrize("op", INT_REDUCE_OPS)
def test_reduce_int64(tmp_path, op, axes):
    shape = ["N", 3, 4]
    node = helper.make_node(op, ["x", "axes"] if axes else ["x"], ["y"], keepdims=0)
    inits = {"axes": np.array(axes, np.int64)} if axes else {}
    path = make_model(tmp_path, [node], [("x", shape, np.int64)], [("y", np.int64)], inits, opset=18)
    numpy = {"ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min, "ReduceProd": np.prod,
             "ReduceL1": lambda x, axis: np.sum(np.abs(x), axis=axis),
             "ReduceSumSquare": lambda x, axis: np.sum(x * x, axis=axis)}[op]
    check(path, feeds_of(shape, np.int64), 0,
          reference=lambda f: [np.asarray(numpy(f["x"], axis=tuple(axes) if axes else None), np.int64)])


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_bool(tmp_path, op):
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=1)
    path = make_model(tmp_path, [node], [("x", ["N", 4, 5], np.bool_)], [("y", np.bool_)], {"axes": np.array([2], np.int64)}, opset=20)
    fn = np.any if op == "ReduceMax" else np.all
    check(path, feeds_of(["N", 4, 5], np.bool_), 0, reference=lambda f: [fn(f["x"], axis=2, keepdims=True)])


@pytest.mark.parametrize("axes", [[1], [-1, 1], []], ids=["one", "two", "none"])
def test_reduce_axes_from_graph_input(tmp_path, axes):
    """Axes fed as an int64 graph input (known before the run): the kernel reads them as an operand."""
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)
    path = make_model(tmp_path, [node], [("x", ["N", 3, 4], np.float32), ("axes", [len(axes)], np.int64)], ["y"], opset=18)

    def feeds(batch):
        return {**feeds_of(["N", 3, 4])(batch), "axes": np.array(axes, np.int64)}
    check(path, feeds, REDUCTION)


def test_reduce_mean_of_int64_is_refused(tmp_path):
    node = helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[1])
    path = make_model(tmp_path, [node], [("x", ["N", 3], np.int64)], [("y", np.int64)], opset=17)
    with pytest.raises(ValueError, match=r"(?s)'mean'.*ReduceMean.*int64.*float32 only"):
        aonnx.load(path)(np.ones((2, 3), np.int64))


def test_reduce_duplicate_axes_are_invalid(tmp_path):
    node = helper.make_node("ReduceSum", ["x"], ["y"], name="sum", axes=[1, -1])
    path = make_model(tmp_path, [node], [("x", ["N", 3], np.float32)], ["y"], opset=11)
    with pytest.raises(ValueError, match=r"(?s)'sum'.*twice"):
        aonnx.load(path)(np.ones((2, 3), np.float32))


# --- ArgMax / ArgMin -------------------------------------------------------------------

ARG_CASES = [("axis1", 1, 1, 0), ("axis1-last", 1, 1, 1), ("last-nokeep", -1, 0, 0), ("last-nokeep-last", -1, 0, 1),
             ("batch", 0, 1, 0), ("middle", 2, 0, 1)]


@pytest.mark.parametrize("axis,keepdims,last", [c[1:] for c in ARG_CASES], ids=[c[0] for c in ARG_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.int64], ids=["float32", "int64"])
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_extremum(tmp_path, op, dtype, axis, keepdims, last):
    shape = ["N", 4, 5, 6]
    node = helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keepdims, select_last_index=last)
    path = make_model(tmp_path, [node], [("x", shape, dtype)], [("y", np.int64)], opset=13)
    # Rounded values: many ties, so select_last_index matters.
    transform = (lambda x: np.round(x).astype(np.float32)) if dtype == np.float32 else None
    check(path, feeds_of(shape, dtype, transform=transform), 0)


def test_arg_max_feeding_float_ops(tmp_path):
    """ArgMax next to float ops: the exact plan (capture) runs it too."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ArgMax", ["r"], ["y"], axis=-1, keepdims=0)]
    path = make_model(tmp_path, nodes, [("x", ["N", 7, 10], np.float32)], ["r", ("y", np.int64)], opset=11)
    check(path, feeds_of(["N", 7, 10]), 0)


# --- normalizations -------------------------------------------------------------------

LAYER_NORM = [
    # (id, shape, axis, scale shape (None: the normalized shape), bias)
    ("vit", ["N", 17, 192], -1, None, True),
    ("no-bias", ["N", 17, 192], -1, None, False),
    ("two-axes", ["N", 6, 5, 8], 2, None, True),
    ("scale-broadcast", ["N", 6, 5, 8], 2, [8], True),
    ("scale-leading-ones", ["N", 9, 12], -1, [1, 12], True),
    ("nhwc", ["N", 7, 7, 96], 3, None, True),
    ("axis1", ["N", 3, 4, 5], 1, None, True),
    ("odd-row", ["N", 5, 13], -1, None, True),
]


@pytest.mark.parametrize("shape,axis,scale_shape,bias", [c[1:] for c in LAYER_NORM], ids=[c[0] for c in LAYER_NORM])
def test_layer_normalization(tmp_path, shape, axis, scale_shape, bias):
    rng = rng_for("layernorm", str(shape), axis)
    a = axis % len(shape)
    inits = {"scale": randn(rng, *(scale_shape or shape[a:]))}
    if bias:
        inits["bias"] = randn(rng, *(scale_shape or shape[a:]))
    node = helper.make_node("LayerNormalization", ["x", "scale"] + (["bias"] if bias else []), ["y"], axis=axis, epsilon=1e-5)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], inits, opset=17)
    check(path, feeds_of(shape, transform=lambda x: (3 * x + 1).astype(np.float32)), NORMALIZATION)


@pytest.mark.parametrize("axis", [-1, 1])
def test_layer_normalization_statistics_outputs(tmp_path, axis):
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y", "mean", "inv"], axis=axis, epsilon=1e-3)
    rng = rng_for("layernorm-stats", axis)
    normalized = [6, 8] if axis == 1 else [8]
    inits = {"scale": randn(rng, *normalized), "bias": randn(rng, *normalized)}
    path = make_model(tmp_path, [node], [("x", ["N", 6, 8], np.float32)], ["y", "mean", "inv"], inits, opset=17)
    check(path, feeds_of(["N", 6, 8]), NORMALIZATION)


def test_layer_normalization_runtime_scale(tmp_path):
    """Scale and bias as graph inputs (not constants)."""
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"])
    path = make_model(tmp_path, [node], [("x", ["N", 4, 10], np.float32), ("s", [10], np.float32), ("b", [10], np.float32)],
                      ["y"], opset=17)

    def feeds(batch):
        rng = np.random.default_rng(batch)
        return {"x": randn(rng, batch, 4, 10), "s": randn(rng, 10), "b": randn(rng, 10)}
    check(path, feeds, NORMALIZATION)


def test_layer_normalization_stash_type_refused(tmp_path):
    node = helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="ln", stash_type=10)
    path = make_model(tmp_path, [node], [("x", ["N", 4], np.float32)], ["y"], {"scale": np.ones(4, np.float32)}, opset=17)
    with pytest.raises(ValueError, match=r"(?s)'ln'.*stash_type"):
        aonnx.load(path)(np.ones((2, 4), np.float32))


def test_layer_normalization_bad_scale_shape(tmp_path):
    node = helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="ln")
    path = make_model(tmp_path, [node], [("x", ["N", 4], np.float32)], ["y"], {"scale": np.ones(5, np.float32)}, opset=17)
    with pytest.raises(ValueError, match=r"(?s)'ln'.*scale.*broadcast"):
        aonnx.load(path)(np.ones((2, 4), np.float32))


@pytest.mark.parametrize("axis", [-1, 2])
def test_rms_normalization(tmp_path, axis):
    shape = ["N", 5, 6, 16]
    rng = rng_for("rms", axis)
    node = helper.make_node("RMSNormalization", ["x", "scale"], ["y"], axis=axis, epsilon=1e-5)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], {"scale": randn(rng, *shape[axis % 4:])}, opset=23)
    check(path, feeds_of(shape), NORMALIZATION)


@pytest.mark.parametrize("shape", [["N", 6, 9, 11], ["N", 4, 30], ["N", 3, 2, 5, 4]], ids=["2d", "1d", "3d"])
def test_instance_normalization(tmp_path, shape):
    rng = rng_for("instance", str(shape))
    inits = {"scale": randn(rng, shape[1]), "bias": randn(rng, shape[1])}
    node = helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-4)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], inits, opset=17)
    check(path, feeds_of(shape, transform=lambda x: (2 * x - 1).astype(np.float32)), NORMALIZATION)


@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("groups,shape", [(2, ["N", 6, 5, 7]), (3, ["N", 6, 10]), (1, ["N", 4, 3, 3]), (4, ["N", 4, 3, 3])],
                         ids=["2-groups", "3-groups-1d", "one-group", "group-per-channel"])
def test_group_normalization(tmp_path, opset, groups, shape):
    rng = rng_for("group", opset, groups)
    count = groups if opset == 18 else shape[1]
    inits = {"scale": randn(rng, count), "bias": randn(rng, count)}
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], num_groups=groups, epsilon=1e-5)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], inits, opset=opset)
    check(path, feeds_of(shape), NORMALIZATION)


def test_group_normalization_indivisible_channels(tmp_path):
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], name="gn", num_groups=4)
    inits = {"scale": np.ones(6, np.float32), "bias": np.zeros(6, np.float32)}
    path = make_model(tmp_path, [node], [("x", ["N", 6, 3], np.float32)], ["y"], inits, opset=21)
    with pytest.raises(ValueError, match=r"(?s)'gn'.*6 channels.*4 groups"):
        aonnx.load(path)(np.ones((2, 6, 3), np.float32))


def test_batch_normalization_runtime_statistics(tmp_path):
    """Scale, bias, mean and var as graph inputs: normalized with the given statistics."""
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    inputs = [("x", ["N", 5, 4, 6], np.float32)] + [(n, [5], np.float32) for n in "sbmv"]
    path = make_model(tmp_path, [node], inputs, ["y"], opset=15)

    def feeds(batch):
        rng = np.random.default_rng(batch)
        return {"x": randn(rng, batch, 5, 4, 6), "s": randn(rng, 5), "b": randn(rng, 5), "m": randn(rng, 5),
                "v": np.abs(randn(rng, 5)) + 0.1}
    check(path, feeds, ELEMENTWISE)


def test_batch_normalization_training_mode_refused(tmp_path):
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", training_mode=1)
    inits = {k: np.ones(3, np.float32) for k in "sbmv"}
    path = make_model(tmp_path, [node], [("x", ["N", 3, 4], np.float32)], ["y"], inits, opset=15)
    with pytest.raises(ValueError, match=r"(?s)'bn'.*training_mode"):
        aonnx.load(path)(np.ones((2, 3, 4), np.float32))


# --- global pools -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [["N", 5, 7, 9], ["N", 3, 20], ["N", 2, 3, 4, 5]], ids=["2d", "1d", "3d"])
@pytest.mark.parametrize("op,attrs", [("GlobalMaxPool", {}), ("GlobalAveragePool", {}), ("GlobalLpPool", {"p": 2}),
                                      ("GlobalLpPool", {"p": 1}), ("GlobalLpPool", {"p": 3})],
                         ids=["max", "average", "lp2", "lp1", "lp3"])
def test_global_pool(tmp_path, op, attrs, shape):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], opset=17)
    check(path, feeds_of(shape), REDUCTION)


# --- TopK ------------------------------------------------------------------------------

TOPK = [("last", -1, 1, 3), ("last-smallest", -1, 0, 3), ("axis1", 1, 1, 2), ("axis1-smallest", 1, 0, 4),
        ("all", -1, 1, 40), ("small-k-long-line", -1, 1, 2), ("zero", -1, 1, 0), ("batch", 0, 1, 1)]


@pytest.mark.parametrize("axis,largest,k", [c[1:] for c in TOPK], ids=[c[0] for c in TOPK])
@pytest.mark.parametrize("dtype", [np.float32, np.int64], ids=["float32", "int64"])
def test_topk(tmp_path, dtype, axis, largest, k):
    shape = ["N", 5, 40]
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=axis, largest=largest, sorted=1)
    path = make_model(tmp_path, [node], [("x", shape, dtype)], [("values", dtype), ("indices", np.int64)],
                      {"k": np.array([k], np.int64)}, opset=11)
    # Rounded floats: ties, which onnxruntime orders by index.
    transform = (lambda x: np.round(2 * x).astype(np.float32)) if dtype == np.float32 else None
    check(path, feeds_of(shape, dtype, transform=transform), 0, batches=(1, 3) if axis != 0 else (3,))


def test_topk_attribute_form(tmp_path):
    """Opset < 10: k is an attribute."""
    node = helper.make_node("TopK", ["x"], ["values", "indices"], axis=1, k=2)
    path = make_model(tmp_path, [node], [("x", ["N", 6, 3], np.float32)], ["values", ("indices", np.int64)], opset=9)
    check(path, feeds_of(["N", 6, 3]), 0)


def test_topk_k_too_large(tmp_path):
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="top")
    path = make_model(tmp_path, [node], [("x", ["N", 4], np.float32)], ["values", ("indices", np.int64)],
                      {"k": np.array([5], np.int64)}, opset=11)
    with pytest.raises(ValueError, match=r"(?s)'top'.*k = 5"):
        aonnx.load(path)(np.ones((2, 4), np.float32))


# --- pools -----------------------------------------------------------------------------------

POOLS = [
    ("max-3d", "MaxPool", ["N", 2, 6, 7, 8], dict(kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1, 0, 1, 1])),
    ("avg-3d", "AveragePool", ["N", 2, 6, 7, 8], dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1])),
    ("avg-3d-include-pad-ceil", "AveragePool", ["N", 2, 6, 7, 8],
     dict(kernel_shape=[3, 2, 3], strides=[2, 2, 2], pads=[1, 1, 0, 1, 0, 1], count_include_pad=1, ceil_mode=1)),
    ("max-3d-dilated", "MaxPool", ["N", 2, 7, 6, 5], dict(kernel_shape=[2, 2, 2], dilations=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1])),
    ("max-3d-same-lower", "MaxPool", ["N", 2, 7, 6, 5], dict(kernel_shape=[3, 2, 2], strides=[2, 2, 1], auto_pad="SAME_LOWER")),
    ("lp2-2d", "LpPool", ["N", 3, 9, 10], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("lp1-1d", "LpPool", ["N", 3, 12], dict(kernel_shape=[3], p=1)),
    ("lp3-2d-same", "LpPool", ["N", 2, 7, 8], dict(kernel_shape=[2, 3], p=3, auto_pad="SAME_LOWER")),
    ("lp2-3d", "LpPool", ["N", 2, 4, 5, 6], dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2])),
]


@pytest.mark.parametrize("op,shape,attrs", [c[1:] for c in POOLS], ids=[c[0] for c in POOLS])
def test_pool(tmp_path, op, shape, attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y"], opset=18)
    check(path, feeds_of(shape), ELEMENTWISE)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("shape,attrs", [(["N", 3, 7, 9], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
                                         (["N", 2, 10], dict(kernel_shape=[2], strides=[2])),
                                         (["N", 2, 4, 5, 6], dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2]))],
                         ids=["2d", "1d", "3d"])
def test_max_pool_indices(tmp_path, shape, attrs, storage_order):
    if storage_order and len(shape) != 4:
        pytest.skip("onnxruntime takes storage_order for 2-D pools only")
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], storage_order=storage_order, **attrs)
    path = make_model(tmp_path, [node], [("x", shape, np.float32)], ["y", ("i", np.int64)], opset=12)
    check(path, feeds_of(shape, transform=lambda x: np.round(x).astype(np.float32)), 0)


# --- other normalizations ----------------------------------------------------------------

@pytest.mark.parametrize("axes", [None, [2, 3], [1], [0, 1, 2, 3]], ids=["default", "hw", "c", "all"])
def test_mean_variance_normalization(tmp_path, axes):
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], **({"axes": axes} if axes else {}))
    path = make_model(tmp_path, [node], [("x", ["N", 3, 5, 6], np.float32)], ["y"], opset=13)
    check(path, feeds_of(["N", 3, 5, 6]), NORMALIZATION)


@pytest.mark.parametrize("axis,p", [(-1, 2), (1, 1), (0, 2), (2, 1)])
def test_lp_normalization(tmp_path, axis, p):
    node = helper.make_node("LpNormalization", ["x"], ["y"], axis=axis, p=p)
    path = make_model(tmp_path, [node], [("x", ["N", 4, 5], np.float32)], ["y"], opset=13)

    def feeds(batch):
        x = randn(np.random.default_rng(batch), batch, 4, 5)
        x[0, 1, :] = 0  # a zero row: its norm is 0 and the output 0 (for axis -1)
        return {"x": x}
    check(path, feeds, ELEMENTWISE)


def lrn_reference(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    squares = np.zeros_like(x, dtype=np.float64)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - (size - 1) // 2), min(channels - 1, c + size - 1 - (size - 1) // 2)
        squares[:, c] = np.sum(x[:, lo:hi + 1].astype(np.float64) ** 2, axis=1)
    return (x / (bias + alpha / size * squares) ** beta).astype(np.float32)


@pytest.mark.parametrize("size,attrs", [(3, {}), (5, dict(alpha=0.01, beta=0.5, bias=2.0)), (2, dict(alpha=0.1))])
def test_lrn(tmp_path, size, attrs):
    """Odd sizes against onnxruntime; an even size (onnxruntime refuses it) against the formula."""
    node = helper.make_node("LRN", ["x"], ["y"], size=size, **attrs)
    path = make_model(tmp_path, [node], [("x", ["N", 7, 5, 6], np.float32)], ["y"], opset=13)
    reference = (lambda f: [lrn_reference(f["x"], size, **attrs)]) if size % 2 == 0 else None
    check(path, feeds_of(["N", 7, 5, 6], transform=lambda x: (3 * x).astype(np.float32)), ELEMENTWISE, reference=reference)


def test_pool_same_with_dilations_refused(tmp_path):
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], dilations=[2, 2], auto_pad="SAME_UPPER")
    path = make_model(tmp_path, [node], [("x", ["N", 2, 6, 6], np.float32)], ["y"], opset=12)
    with pytest.raises(ValueError, match=r"(?s)'pool'.*SAME with dilations"):
        aonnx.load(path)(np.ones((1, 2, 6, 6), np.float32))


# --- losses ---------------------------------------------------------------------------------

LOSSES = [
    # (id, scores shape, reduction, weight, ignore_index)
    ("none", ["N", 5], "none", False, None),
    ("sum", ["N", 5], "sum", False, None),
    ("mean", ["N", 5], "mean", False, None),
    ("mean-weight", ["N", 5], "mean", True, None),
    ("mean-weight-ignore", ["N", 5, 3, 2], "mean", True, 2),
    ("none-ignore-spatial", ["N", 4, 6], "none", False, 0),
    ("sum-weight-spatial", ["N", 4, 3, 2], "sum", True, None),
    ("mean-ignore-out-of-range", ["N", 4, 3], "mean", False, -1),
]


@pytest.mark.parametrize("shape,reduction,weight,ignore", [c[1:] for c in LOSSES], ids=[c[0] for c in LOSSES])
@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
def test_loss(tmp_path, op, shape, reduction, weight, ignore):
    classes = shape[1]
    attrs = {"reduction": reduction, **({"ignore_index": ignore} if ignore is not None else {})}
    rng = rng_for("loss", op, str(shape))
    inits = {"w": np.abs(randn(rng, classes)) + 0.1} if weight else {}
    outputs = ["loss"] + (["log_prob"] if op == "SoftmaxCrossEntropyLoss" else [])
    node = helper.make_node(op, ["x", "t"] + (["w"] if weight else []), outputs, **attrs)
    target_shape = [shape[0], *shape[2:]]
    path = make_model(tmp_path, [node], [("x", shape, np.float32), ("t", target_shape, np.int64)], outputs, inits, opset=13)

    def feeds(batch):
        rng = np.random.default_rng(batch)
        t = rng.integers(0, classes, size=(batch, *shape[2:])).astype(np.int64)
        if ignore is not None:
            t.flat[0] = ignore
        return {"x": randn(rng, batch, *shape[1:]), "t": t}
    check(path, feeds, REDUCTION if reduction != "none" else ELEMENTWISE)


def test_loss_target_out_of_range(tmp_path):
    node = helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["loss"], name="nll", reduction="sum")
    path = make_model(tmp_path, [node], [("x", ["N", 3], np.float32), ("t", ["N"], np.int64)], ["loss"], opset=13)
    with pytest.raises(ValueError, match=r"(?s)'nll'.*target 3.*outside the 3 classes"):
        aimetcle.run(aonnx.load(path), np.ones((2, 3), np.float32), np.array([0, 3], np.int64))


# --- MaxUnpool ---------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs,output_shape", [(dict(kernel_shape=[2, 2], strides=[2, 2]), False),
                                                (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), False),
                                                (dict(kernel_shape=[2, 2], strides=[2, 2]), True)],
                         ids=["2x2", "3x3-pads", "output-shape"])
def test_max_unpool_after_max_pool(tmp_path, attrs, output_shape):
    """MaxPool's values and indices scattered back by MaxUnpool."""
    shape = ["N", 3, 7, 7] if "pads" in attrs else ["N", 3, 8, 8]  # sizes the unpooling restores
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], **attrs),
             helper.make_node("MaxUnpool", ["p", "i"] + (["s"] if output_shape else []), ["y"], **attrs)]
    inputs = [("x", shape, np.float32)] + ([("s", [4], np.int64)] if output_shape else [])
    path = make_model(tmp_path, nodes, inputs, ["y"], opset=11)

    def feeds(batch):
        f = feeds_of(shape)(batch)
        if output_shape:
            f["s"] = np.array([batch, 3, 8, 8], np.int64)
        return f
    check(path, feeds, 0)


def test_max_unpool_larger_output_shape_refused(tmp_path):
    node = helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], name="unpool", kernel_shape=[2, 2], strides=[2, 2])
    inputs = [("x", [1, 1, 2, 2], np.float32), ("i", [1, 1, 2, 2], np.int64)]
    path = make_model(tmp_path, [node], inputs, ["y"], {"s": np.array([1, 1, 5, 5], np.int64)}, opset=11)
    with pytest.raises(ValueError, match=r"(?s)'unpool'.*output_shape.*differs"):
        aonnx.load(path)(np.ones((1, 1, 2, 2), np.float32), np.array([0, 3, 9, 15], np.int64).reshape(1, 1, 2, 2))
