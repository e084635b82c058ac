"""The shape and data-movement ops against onnxruntime: Shape, Size, Gather, GatherElements, GatherND,
Squeeze, Unsqueeze, Slice, Split, Concat, ConstantOfShape, Range, Expand, Tile, Trilu, OneHot,
ScatterElements / Scatter / ScatterND, EyeLike, Constant, and Identity / Flatten / Reshape on int64 and bool.

Each test builds a tiny ONNX model with ``onnx.helper``, runs it in onnxruntime (graph optimizations
off) and through ``aimetcle.onnx.load(path)``: the fused plan (``aimetcle.run(model, *inputs)``) and
the exact plan (the same run capturing the first input), for batch sizes 1 and 3 where the model has a
batch axis ("N", symbolic). Float outputs are compared with ``assert_close`` at 1e-5 relative (these ops
only move values, so they are in fact exact); int64 and bool outputs must be equal, dtype included.
Integer shape arithmetic (Shape -> Gather -> Concat -> Reshape) is evaluated before the run; the same
kernels run at run time on data (Gather / Slice / Split / Concat on activations, int64 graph inputs).
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aimetcle
from aimetcle import onnx as aonnx
from aimetcle.errors import AimetError
from test_runtime import assert_close, ort_session, rng_for

RTOL = 1e-5
INT64_MAX = np.iinfo(np.int64).max
TYPES = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL}


def build(tmp_path, nodes, inputs, outputs, initializers=None, opset=17, name="model"):
    """Writes a model; ``inputs``/``outputs`` are (name, dtype, shape) with "N" for the batch axis.

    A model without a float input gets one ("x", through a Relu to an extra output): capturing it is
    what forces the exact plan (integer and bool inputs are values known before the run)."""
    if all(t != np.float32 for _, t, _ in inputs):
        inputs = [("x", np.float32, ["N", 2])] + list(inputs)
        outputs = list(outputs) + [("x_relu", np.float32, None)]
        nodes = list(nodes) + [helper.make_node("Relu", ["x"], ["x_relu"])]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TYPES[t], s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, TYPES[t], s) for n, t, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_ops_shapes")
    model.ir_version = 8
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(model, path)
    return path


def same(ours, ref, what):
    ref = np.asarray(ref)
    assert isinstance(ours, np.ndarray), f"{what}: got {type(ours).__name__}"
    if ref.dtype == np.float32:
        assert_close(ours, ref, RTOL, what)
    else:
        assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype}, onnxruntime {ref.dtype}"
        assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, onnxruntime {ref.shape}"
        assert np.array_equal(ours, ref), f"{what}: ours {ours}, onnxruntime {ref}"


def check(path, feeds, batches=(1, 3)):
    """Runs ``path`` in both for each batch size; ``feeds(batch)`` gives {input name: array}."""
    model = aonnx.load(path)
    session = ort_session(path)
    for batch in batches:
        values = feeds(batch)
        if "x" in model.input_names and "x" not in values:
            values["x"] = rng_for("x", batch).standard_normal((batch, 2)).astype(np.float32)
        ref = session.run(None, values)
        inputs = [values[name] for name in model.input_names]
        fused = aimetcle.run(model, *inputs)
        exact, _ = aimetcle.run(model, *inputs, capture=model.input_names[:1])
        for plan, ours in (("fused", fused), ("exact", exact)):
            ours = ours if isinstance(ours, tuple) else (ours,)
            assert len(ours) == len(ref)
            for k, (a, b) in enumerate(zip(ours, ref)):
                same(a, b, f"{plan} plan, batch {batch}, output {k}")
    return model


def floats(shape, seed=0, **extra):
    """feeds for one float input "x" of shape ("N", ...), plus fixed ``extra`` arrays."""
    def feeds(batch):
        rng = rng_for(shape, seed, batch)
        return {"x": rng.standard_normal((batch, *shape[1:])).astype(np.float32), **extra}
    return feeds


def refused(path, feeds, *words):
    """The run fails with an error naming the node and each of ``words``."""
    model = aonnx.load(path)
    values = feeds(2)
    if "x" in model.input_names and "x" not in values:
        values["x"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(AimetError) as info:
        aimetcle.run(model, *[values[name] for name in model.input_names])
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def i64(*values):
    return np.array(values, dtype=np.int64)


# --- Shape, Size, and the shape arithmetic of exported models ------------------------------

@pytest.mark.parametrize("attrs,opset", [({}, 13), ({}, 15), (dict(start=1), 15), (dict(end=-1), 15),
                                         (dict(start=-2, end=10), 15), (dict(start=3, end=1), 15)])
def test_shape(tmp_path, attrs, opset):
    node = helper.make_node("Shape", ["x"], ["y"], **attrs)
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3, 4])], [("y", np.int64, None)], opset=opset)
    check(path, floats(["N", 3, 4]))


def test_size(tmp_path):
    path = build(tmp_path, [helper.make_node("Size", ["x"], ["y"])], [("x", np.float32, ["N", 3, 5])],
                 [("y", np.int64, None)])
    check(path, floats(["N", 3, 5]))


def test_flatten_through_shape_arithmetic(tmp_path):
    """torch.flatten(x, 1) as PyTorch exports it: Shape, Gather, Unsqueeze, Concat, Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 2, 3, 4])], [("y", np.float32, None)],
                 dict(zero=np.array(0, dtype=np.int64), axes=i64(0), minus1=i64(-1)), opset=13)
    check(path, floats(["N", 2, 3, 4]))


# --- Gather --------------------------------------------------------------------------------

@pytest.mark.parametrize("axis,indices", [
    (0, np.array(-1, dtype=np.int64)), (1, i64(2, 0, -1)), (-1, np.array([[0, 3], [-2, 1]], dtype=np.int64)),
    (2, np.array(-1, dtype=np.int64)), (1, i64(-3))])
def test_gather_constant_indices(tmp_path, axis, indices):
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3, 4])], [("y", np.float32, None)], dict(i=indices))
    check(path, floats(["N", 3, 4]))


def test_gather_runtime_indices_large(tmp_path):
    """int64 indices given with the run; data large enough for the parallel copy."""
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=1)
    path = build(tmp_path, [node], [("x", np.float32, ["N", 16, 64, 64]), ("i", np.int64, [5])],
                 [("y", np.float32, None)])
    check(path, floats(["N", 16, 64, 64], i=i64(15, 0, -3, 7, 7)))


def test_gather_int64_data(tmp_path):
    node = helper.make_node("Gather", ["d", "i"], ["y"], axis=0)
    path = build(tmp_path, [node], [("d", np.int64, [4, 2]), ("i", np.int64, [3])], [("y", np.int64, None)])
    check(path, lambda b: {"d": np.arange(8, dtype=np.int64).reshape(4, 2) * 10**12, "i": i64(3, -4, 1)}, batches=(1,))


def test_gather_index_out_of_range_is_refused(tmp_path):
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=1, name="pick")
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3]), ("i", np.int64, [1])], [("y", np.float32, None)])
    # (Errors of a kernel's run name the op only; the executor adds node names to shape errors.)
    refused(path, floats(["N", 3], i=i64(3)), "index 3 is out of range for axis 1 of size 3")


# --- GatherElements, GatherND --------------------------------------------------------------

@pytest.mark.parametrize("axis", [1, -1])
def test_gather_elements(tmp_path, axis):
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)
    path = build(tmp_path, [node], [("x", np.float32, [2, 3, 4]), ("i", np.int64, [2, 3, 2])], [("y", np.float32, None)])
    idx = rng_for("ge", axis).integers(-3, 3, size=(2, 3, 2)).astype(np.int64)
    check(path, lambda b: {"x": rng_for("ge-x", b).standard_normal((2, 3, 4)).astype(np.float32), "i": idx}, batches=(1,))


@pytest.mark.parametrize("batch_dims,data,indices", [
    (0, (3, 4, 5), np.array([[0, 1], [2, -1]], dtype=np.int64)),
    (0, (3, 4, 5), np.array([[[1], [0]]], dtype=np.int64)),
    (1, (3, 4, 5), np.array([[1], [3], [-4]], dtype=np.int64)),
    (1, (3, 4, 5), np.array([[[1, 2]], [[0, 4]], [[3, 0]]], dtype=np.int64)),
])
def test_gather_nd(tmp_path, batch_dims, data, indices):
    node = helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=batch_dims)
    path = build(tmp_path, [node], [("x", np.float32, list(data))], [("y", np.float32, None)], dict(i=indices), opset=13)
    check(path, lambda b: {"x": rng_for("gnd", b).standard_normal(data).astype(np.float32)}, batches=(1,))


# --- Squeeze, Unsqueeze ----------------------------------------------------------------------

@pytest.mark.parametrize("opset,axes", [(11, [2]), (11, [-1, 2]), (11, None), (13, [2]), (13, [-1, 2]), (13, None)])
def test_squeeze(tmp_path, opset, axes):
    if opset >= 13:
        node = helper.make_node("Squeeze", ["x", "axes"] if axes else ["x"], ["y"])
        inits = dict(axes=np.array(axes, dtype=np.int64)) if axes else {}
    else:
        node = helper.make_node("Squeeze", ["x"], ["y"], **({"axes": axes} if axes else {}))
        inits = {}
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3, 1, 1])], [("y", np.float32, None)], inits, opset=opset)
    # Without axes every size-1 axis goes, the batch of 1 too: shapes follow the run's inputs.
    check(path, floats(["N", 3, 1, 1]))


@pytest.mark.parametrize("opset,axes", [(11, [1]), (11, [-1, 0]), (13, [1]), (13, [3, -5]), (13, [2, 1])])
def test_unsqueeze(tmp_path, opset, axes):
    if opset >= 13:
        node = helper.make_node("Unsqueeze", ["x", "axes"], ["y"])
        inits = dict(axes=np.array(axes, dtype=np.int64))
    else:
        node = helper.make_node("Unsqueeze", ["x"], ["y"], axes=axes)
        inits = {}
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3, 4])], [("y", np.float32, None)], inits, opset=opset)
    check(path, floats(["N", 3, 4]))


def test_unsqueeze_axes_from_shape(tmp_path):
    """Axes computed before the run (from a Shape), not constant: the view reads them as an operand."""
    nodes = [helper.make_node("Shape", ["x"], ["axes"], start=2),  # [3]
             helper.make_node("Unsqueeze", ["x", "axes"], ["y"])]
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 2, 3])], [("y", np.float32, None)], opset=15)
    check(path, floats(["N", 2, 3]))


def test_squeeze_non_unit_axis_is_refused(tmp_path):
    node = helper.make_node("Squeeze", ["x", "axes"], ["y"], name="sq")
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3])], [("y", np.float32, None)], dict(axes=i64(1)), opset=13)
    refused(path, floats(["N", 3]), "sq", "cannot squeeze axis 1")


# --- Slice -----------------------------------------------------------------------------------

SLICES = [
    ("last-axis", [1], [3], [2], None),
    ("to-end", [1], [INT64_MAX], [-1], None),
    ("negative", [-3, 0], [-1, 2], [1, 2], None),
    ("steps", [0, 3], [INT64_MAX, 0], [1, 2], [2, -1]),
    ("reverse-all", [-1], [-INT64_MAX], [3], [-1]),
    ("step-3", [4, 1], [0, 10], [3, 1], [-3, 3]),
    ("clamped", [-100, 2], [100, 100], [1, 2], None),
    ("empty", [2], [1], [1], None),
    ("whole-batch", [0, 1], [INT64_MAX, 2], [0, 1], None),
    ("batch-axis", [1], [INT64_MAX], [0], None),
    ("default-axes", [0, 0, 1], [INT64_MAX, 2, 4], None, None),
]


@pytest.mark.parametrize("starts,ends,axes,steps", [s[1:] for s in SLICES], ids=[s[0] for s in SLICES])
def test_slice_constant_inputs(tmp_path, starts, ends, axes, steps):
    names = ["x", "starts", "ends"] + (["axes"] if axes is not None else [""] if steps is not None else [])
    inits = dict(starts=np.array(starts, dtype=np.int64), ends=np.array(ends, dtype=np.int64))
    if axes is not None:
        inits["axes"] = np.array(axes, dtype=np.int64)
    if steps is not None:
        names.append("steps")
        inits["steps"] = np.array(steps, dtype=np.int64)
    path = build(tmp_path, [helper.make_node("Slice", names, ["y"])], [("x", np.float32, ["N", 3, 5, 6])],
                 [("y", np.float32, None)], inits, opset=13)
    check(path, floats(["N", 3, 5, 6]))


@pytest.mark.parametrize("attrs", [dict(starts=[1], ends=[3], axes=[2]), dict(starts=[0, -2], ends=[2, 1000]),
                                   dict(starts=[0, 1], ends=[INT64_MAX, -1], axes=[-1, 1])])
def test_slice_attributes(tmp_path, attrs):
    path = build(tmp_path, [helper.make_node("Slice", ["x"], ["y"], **attrs)], [("x", np.float32, ["N", 4, 5])],
                 [("y", np.float32, None)], opset=9)
    check(path, floats(["N", 4, 5]))


def test_slice_runtime_inputs(tmp_path):
    """starts / ends / axes / steps as int64 graph inputs (given with the run)."""
    node = helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])
    path = build(tmp_path, [node], [("x", np.float32, ["N", 6, 7]), ("s", np.int64, [2]), ("e", np.int64, [2]),
                                    ("a", np.int64, [2]), ("t", np.int64, [2])], [("y", np.float32, None)], opset=13)
    check(path, floats(["N", 6, 7], s=i64(-1, 1), e=i64(0, 7), a=i64(2, 1), t=i64(-2, 2)))


def test_slice_large_channels(tmp_path):
    """A channel slice of a large activation (contiguous runs copied in parallel)."""
    node = helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])
    path = build(tmp_path, [node], [("x", np.float32, ["N", 64, 40, 40])], [("y", np.float32, None)],
                 dict(s=i64(16), e=i64(48), a=i64(1)), opset=13)
    check(path, floats(["N", 64, 40, 40]))


def test_slice_int64_shape(tmp_path):
    """The last two dims of a shape: Shape -> Slice -> Concat -> Reshape."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "start", "end"], ["hw"]),
             helper.make_node("Concat", ["minus1", "hw"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 3, 4, 5])], [("y", np.float32, None)],
                 dict(start=i64(-2), end=i64(INT64_MAX), minus1=i64(-1)), opset=13)
    check(path, floats(["N", 3, 4, 5]))


def test_slice_step_zero_is_refused(tmp_path):
    node = helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"], name="cut")
    path = build(tmp_path, [node], [("x", np.float32, ["N", 4])], [("y", np.float32, None)],
                 dict(s=i64(0), e=i64(2), a=i64(1), t=i64(0)), opset=13)
    refused(path, floats(["N", 4]), "cut", "step 0")


# --- Split -----------------------------------------------------------------------------------

@pytest.mark.parametrize("opset,axis,split,outputs,extent", [
    (11, 1, [2, 4], 2, 6), (11, -1, None, 3, 6), (13, 1, [1, 2, 3], 3, 6), (13, 2, None, 2, 8),
    (18, 1, None, 3, 7), (18, 2, [5, 3], 2, 8), (13, 0, [1, 1], 2, 6)])
def test_split(tmp_path, opset, axis, split, outputs, extent):
    names = [f"y{k}" for k in range(outputs)]
    attrs, inputs, inits = dict(axis=axis), ["x"], {}
    if split is not None and opset < 13:
        attrs["split"] = split
    elif split is not None:
        inputs.append("split")
        inits["split"] = np.array(split, dtype=np.int64)
    elif opset >= 18:
        attrs["num_outputs"] = outputs
    shape = ["N", extent, 8] if axis != 0 else [2, extent, 8]
    if axis in (-1, 2):
        shape = ["N", 3, extent]
    path = build(tmp_path, [helper.make_node("Split", inputs, names, **attrs)], [("x", np.float32, shape)],
                 [(n, np.float32, None) for n in names], inits, opset=opset)
    check(path, floats(shape), batches=(1, 3) if shape[0] == "N" else (2,))


def test_split_uneven_before_opset_18_is_refused(tmp_path):
    node = helper.make_node("Split", ["x"], ["a", "b"], axis=1, name="halves")
    path = build(tmp_path, [node], [("x", np.float32, ["N", 5])], [("a", np.float32, None), ("b", np.float32, None)],
                 opset=13)
    refused(path, floats(["N", 5]), "halves", "does not split into 2 equal outputs")


# --- Concat ----------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [1, -1, 0])
def test_concat_float(tmp_path, axis):
    node = helper.make_node("Concat", ["x", "c", "x"], ["y"], axis=axis)
    cshape = {1: (1, 2, 32, 32), -1: (1, 16, 32, 5), 0: (2, 16, 32, 32)}[axis]
    c = rng_for("concat", axis).standard_normal(cshape).astype(np.float32)
    if axis != 0:
        c = np.broadcast_to(c, cshape).copy()
        nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
                 helper.make_node("Concat", ["n", "rest"], ["cs"], axis=0), helper.make_node("Expand", ["c", "cs"], ["ce"]),
                 helper.make_node("Concat", ["x", "ce", "x"], ["y"], axis=axis)]
        inits = dict(c=c, zero=i64(0), one=i64(1), rest=np.array(cshape[1:], dtype=np.int64))
    else:
        nodes, inits = [node], dict(c=c)
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 16, 32, 32])], [("y", np.float32, None)], inits, opset=13)
    check(path, floats(["N", 16, 32, 32]))


def test_concat_int64_and_bool(tmp_path):
    nodes = [helper.make_node("Concat", ["a", "b"], ["i"], axis=1),
             helper.make_node("Concat", ["p", "q", "p"], ["m"], axis=0)]
    path = build(tmp_path, nodes, [("a", np.int64, [2, 3]), ("b", np.int64, [2, 1]), ("p", np.bool_, [2]),
                                   ("q", np.bool_, [1])], [("i", np.int64, None), ("m", np.bool_, None)])
    check(path, lambda b: {"a": np.arange(6, dtype=np.int64).reshape(2, 3) - 2**40, "b": i64(7, -7).reshape(2, 1),
                           "p": np.array([True, False]), "q": np.array([True])}, batches=(1,))


# --- ConstantOfShape, Range, EyeLike ---------------------------------------------------------

@pytest.mark.parametrize("value", [None, np.array([2.5], dtype=np.float32), np.array([-3], dtype=np.int64),
                                   np.array([True])])
def test_constant_of_shape(tmp_path, value):
    """Filled to the input's shape (so it follows the batch); added to or output beside the input."""
    attrs = {} if value is None else dict(value=numpy_helper.from_array(value))
    dtype = np.float32 if value is None else value.dtype.type
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["c"], **attrs)]
    outputs = [("c", dtype, None)]
    if dtype == np.float32:
        nodes.append(helper.make_node("Add", ["x", "c"], ["y"]))
        outputs = [("y", np.float32, None)]
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 3, 2])], outputs)
    check(path, floats(["N", 3, 2]))


def test_range(tmp_path):
    """Positions 0..T-1 from the input's shape (int64), and a float Range of constants."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["t"], axis=0),
             helper.make_node("Range", ["zero", "t", "step"], ["pos"]),
             helper.make_node("Range", ["f0", "f1", "fd"], ["r"]),
             helper.make_node("Range", ["i0", "i1", "id"], ["down"])]
    inits = dict(one=np.array(1, dtype=np.int64), zero=np.array(0, dtype=np.int64), step=np.array(2, dtype=np.int64),
                 f0=np.array(1.0, dtype=np.float32), f1=np.array(-2.0, dtype=np.float32), fd=np.array(-0.75, dtype=np.float32),
                 i0=np.array(10, dtype=np.int64), i1=np.array(-1, dtype=np.int64), id=np.array(-3, dtype=np.int64))
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 7])],
                 [("pos", np.int64, None), ("r", np.float32, None), ("down", np.int64, None)], inits)
    check(path, floats(["N", 7]))


def test_range_of_float_inputs(tmp_path):
    """Float inputs declared as a few values of rank 0 or 1 are parameters known before the run."""
    node = helper.make_node("Range", ["a", "b", "c"], ["y"], name="steps")
    path = build(tmp_path, [node], [("a", np.float32, []), ("b", np.float32, []), ("c", np.float32, [])],
                 [("y", np.float32, None)])
    check(path, lambda b: {k: np.array(v, dtype=np.float32) for k, v in dict(a=0.5, b=3, c=0.75).items()})


def test_range_of_runtime_floats_is_refused(tmp_path):
    """Inputs without a declared shape are data: a Range of them cannot be shaped before the run."""
    node = helper.make_node("Range", ["a", "b", "c"], ["y"], name="steps")
    path = build(tmp_path, [node], [("a", np.float32, None), ("b", np.float32, None), ("c", np.float32, None)],
                 [("y", np.float32, None)])
    refused(path, lambda b: {k: np.array(v, dtype=np.float32) for k, v in dict(a=0, b=3, c=1).items()},
            "steps", "start is computed from the input data at run time")


@pytest.mark.parametrize("attrs", [{}, dict(k=1), dict(k=-2, dtype=TensorProto.INT64)])
def test_eye_like(tmp_path, attrs):
    dtype = np.int64 if attrs.get("dtype") == TensorProto.INT64 else np.float32
    path = build(tmp_path, [helper.make_node("EyeLike", ["x"], ["y"], **attrs)], [("x", np.float32, [4, 5])],
                 [("y", dtype, None)])
    check(path, lambda b: {"x": np.ones((4, 5), dtype=np.float32)}, batches=(1,))


# --- Expand, Tile ----------------------------------------------------------------------------

def test_expand(tmp_path):
    """A per-channel constant expanded to the input's shape, and an input expanded both ways."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Expand", ["c", "s"], ["e"]),
             helper.make_node("Expand", ["x", "wide"], ["w"]),
             helper.make_node("Add", ["e", "w"], ["y"])]
    c = rng_for("expand").standard_normal((3, 1)).astype(np.float32)
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 3, 1])], [("y", np.float32, None)],
                 dict(c=c, wide=i64(1, 1, 5)))
    check(path, floats(["N", 3, 1]))
    big = [helper.make_node("Expand", ["x", "shape"], ["y"])]
    path = build(tmp_path, big, [("x", np.float32, ["N", 1, 64, 1])], [("y", np.float32, None)],
                 dict(shape=i64(1, 32, 64, 48)), name="big")
    check(path, floats(["N", 1, 64, 1]))


def test_expand_int64(tmp_path):
    node = helper.make_node("Expand", ["a", "shape"], ["y"])
    path = build(tmp_path, [node], [("a", np.int64, [3, 1])], [("y", np.int64, None)], dict(shape=i64(2, 1, 4)))
    check(path, lambda b: {"a": i64(1, -2**50, 3).reshape(3, 1)}, batches=(1,))


@pytest.mark.parametrize("repeats", [(1, 2, 3), (2, 1, 1), (1, 1, 1)])
def test_tile(tmp_path, repeats):
    node = helper.make_node("Tile", ["x", "r"], ["y"])
    path = build(tmp_path, [node], [("x", np.float32, ["N", 3, 4])], [("y", np.float32, None)],
                 dict(r=np.array(repeats, dtype=np.int64)))
    check(path, floats(["N", 3, 4]))


def test_tile_int64_runtime_repeats(tmp_path):
    node = helper.make_node("Tile", ["a", "r"], ["y"])
    path = build(tmp_path, [node], [("a", np.int64, [2, 3]), ("r", np.int64, [2])], [("y", np.int64, None)])
    check(path, lambda b: {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "r": i64(3, 2)}, batches=(1,))


# --- Trilu -----------------------------------------------------------------------------------

@pytest.mark.parametrize("upper,k", [(1, None), (0, None), (1, 2), (0, -1), (1, -7), (0, 9)])
def test_trilu(tmp_path, upper, k):
    inputs = ["x"] + (["k"] if k is not None else [])
    inits = dict(k=np.array(k, dtype=np.int64)) if k is not None else {}
    path = build(tmp_path, [helper.make_node("Trilu", inputs, ["y"], upper=upper)], [("x", np.float32, ["N", 2, 5, 6])],
                 [("y", np.float32, None)], inits, opset=14)
    check(path, floats(["N", 2, 5, 6]))


def test_trilu_int64_with_runtime_k(tmp_path):
    node = helper.make_node("Trilu", ["a", "k"], ["y"], upper=0)
    path = build(tmp_path, [node], [("a", np.int64, [4, 3]), ("k", np.int64, [])], [("y", np.int64, None)], opset=14)
    check(path, lambda b: {"a": np.arange(1, 13, dtype=np.int64).reshape(4, 3), "k": np.array(-1, dtype=np.int64)},
          batches=(1,))


# --- OneHot ----------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_one_hot(tmp_path, axis):
    node = helper.make_node("OneHot", ["i", "depth", "values"], ["y"], axis=axis)
    path = build(tmp_path, [node], [("i", np.int64, [2, 3])], [("y", np.float32, None)],
                 dict(depth=np.array(5, dtype=np.int64), values=np.array([-1.5, 2.0], dtype=np.float32)), opset=11)
    check(path, lambda b: {"i": i64(0, 4, -1, 7, -5, 2).reshape(2, 3)}, batches=(1,))


def test_one_hot_runtime_depth_is_refused(tmp_path):
    node = helper.make_node("OneHot", ["i", "depth", "values"], ["y"], name="hot")
    path = build(tmp_path, [node], [("i", np.int64, [3]), ("depth", np.float32, None)], [("y", np.float32, None)],
                 dict(values=np.array([0, 1], dtype=np.float32)), opset=11)
    refused(path, lambda b: {"i": i64(0, 1, 2), "depth": np.array(4, dtype=np.float32)},
            "hot", "depth is computed from the input data at run time")


# --- Scatter ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction,opset", [("none", 16), ("add", 16), ("mul", 16), ("max", 18), ("min", 18)])
def test_scatter_elements(tmp_path, reduction, opset):
    node = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=1, reduction=reduction)
    idx = np.array([[[0, 2], [1, -1]], [[2, 1], [0, 0]]], dtype=np.int64)
    if reduction == "none":
        idx = np.array([[[0, 2], [1, -3]], [[2, 1], [0, 0]]], dtype=np.int64)[:, :1]
    path = build(tmp_path, [node], [("x", np.float32, [2, 3, 2]), ("u", np.float32, list(idx.shape))],
                 [("y", np.float32, None)], dict(i=idx), opset=opset)
    check(path, lambda b: {"x": rng_for("se-x").standard_normal((2, 3, 2)).astype(np.float32),
                           "u": rng_for("se-u").standard_normal(idx.shape).astype(np.float32)}, batches=(1,))


def test_scatter_opset_10(tmp_path):
    node = helper.make_node("Scatter", ["x", "i", "u"], ["y"], axis=0)
    idx = np.array([[1, 0, 2], [0, 2, 1]], dtype=np.int64)
    path = build(tmp_path, [node], [("x", np.float32, [3, 3]), ("u", np.float32, [2, 3])], [("y", np.float32, None)],
                 dict(i=idx), opset=10)
    check(path, lambda b: {"x": np.zeros((3, 3), dtype=np.float32), "u": np.arange(6, dtype=np.float32).reshape(2, 3)},
          batches=(1,))


@pytest.mark.parametrize("reduction,opset", [("none", 13), ("add", 16), ("mul", 16), ("max", 18), ("min", 18)])
def test_scatter_nd(tmp_path, reduction, opset):
    attrs = {} if opset < 16 else dict(reduction=reduction)
    node = helper.make_node("ScatterND", ["x", "i", "u"], ["y"], **attrs)
    idx = np.array([[0], [2], [-1]], dtype=np.int64) if reduction != "none" else np.array([[0, 1], [2, 3]], dtype=np.int64)
    ushape = (3, 4, 5) if reduction != "none" else (2, 5)
    path = build(tmp_path, [node], [("x", np.float32, [3, 4, 5]), ("u", np.float32, list(ushape))],
                 [("y", np.float32, None)], dict(i=idx), opset=opset)
    check(path, lambda b: {"x": rng_for("snd-x").standard_normal((3, 4, 5)).astype(np.float32),
                           "u": rng_for("snd-u").standard_normal(ushape).astype(np.float32)}, batches=(1,))


def test_scatter_nd_int64(tmp_path):
    node = helper.make_node("ScatterND", ["d", "i", "u"], ["y"], reduction="add")
    path = build(tmp_path, [node], [("d", np.int64, [4]), ("u", np.int64, [2])], [("y", np.int64, None)],
                 dict(i=np.array([[1], [1]], dtype=np.int64)), opset=16)
    check(path, lambda b: {"d": i64(1, 2, 3, 4), "u": i64(10, 2**40)}, batches=(1,))


def test_scatter_bool_reduction_is_refused(tmp_path):
    node = helper.make_node("ScatterElements", ["m", "i", "u"], ["y"], reduction="add", name="orr")
    path = build(tmp_path, [node], [("m", np.bool_, [3]), ("u", np.bool_, [1])], [("y", np.bool_, None)],
                 dict(i=i64(1)), opset=16)
    refused(path, lambda b: {"m": np.array([True, False, True]), "u": np.array([True])}, "orr", "reduction 'add' on bool")


# --- Constant forms, views on int64 and bool ------------------------------------------------

def test_constant_forms(tmp_path):
    nodes = [helper.make_node("Constant", [], ["a"], value_int=3),
             helper.make_node("Constant", [], ["b"], value_ints=[4, -5]),
             helper.make_node("Constant", [], ["c"], value_float=1.5),
             helper.make_node("Constant", [], ["d"], value_floats=[0.25, -2.0]),
             helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(np.array([True, False, True]))),
             helper.make_node("Constant", [], ["f"], value=numpy_helper.from_array(np.array([[7], [8]], dtype=np.int32))),
             helper.make_node("Concat", ["b", "b"], ["bb"], axis=0),
             helper.make_node("Mul", ["x", "c"], ["xc"]),
             helper.make_node("Add", ["xc", "d"], ["y"]),
             helper.make_node("Identity", ["e"], ["e2"]),
             helper.make_node("Unsqueeze", ["a", "zero"], ["a1"]),
             helper.make_node("Concat", ["a1", "bb"], ["ab"], axis=0)]
    path = build(tmp_path, nodes, [("x", np.float32, ["N", 2])],
                 [("y", np.float32, None), ("e2", np.bool_, None), ("ab", np.int64, None)], dict(zero=i64(0)), opset=13)
    check(path, floats(["N", 2]))


def test_views_on_int64_and_bool(tmp_path):
    nodes = [helper.make_node("Reshape", ["a", "shape"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=2),
             helper.make_node("Identity", ["m"], ["mi"]),
             helper.make_node("Unsqueeze", ["m", "zero"], ["mu"]),
             helper.make_node("Squeeze", ["mu", "zero"], ["ms"]),
             helper.make_node("Slice", ["m", "one", "big"], ["mslice"]),
             helper.make_node("Gather", ["m", "two"], ["mg"], axis=0),
             helper.make_node("Tile", ["m", "two"], ["mt"])]
    path = build(tmp_path, nodes, [("a", np.int64, [2, 6]), ("m", np.bool_, [3])],
                 [(n, t, None) for n, t in (("f", np.int64), ("mi", np.bool_), ("ms", np.bool_), ("mslice", np.bool_),
                                            ("mg", np.bool_), ("mt", np.bool_))],
                 dict(shape=i64(3, 2, 2), zero=i64(0), one=i64(1), big=i64(INT64_MAX), two=i64(2)), opset=13)
    check(path, lambda b: {"a": np.arange(12, dtype=np.int64).reshape(2, 6) * -(2**33),
                           "m": np.array([True, False, True])}, batches=(1,))
