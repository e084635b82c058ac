"""The movement ops against onnxruntime: Transpose, Pad, DepthToSpace, SpaceToDepth, Resize, Upsample.

Each test builds a tiny ONNX model, runs it in onnxruntime (graph optimizations off) and through
``aimetcle.onnx.load``: the fused plan and the exact plan (a capture), batch sizes 1 and 3 with a
symbolic batch axis, compared at ``ELEMENTWISE`` (1e-5 relative; data movement is exact). int64 and
bool inputs where the op takes them, and one test per case the library refuses.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402

from test_runtime import ELEMENTWISE, assert_close, ort_session, rng_for  # noqa: E402

BATCHES = (1, 3)
DTYPES = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL}


def make_model(tmp_path, nodes, inputs, outputs=("y",), initializers=None, opset=17, dtype=np.float32):
    """``inputs``: (name, shape) with "N" for the batch axis, or (name, shape, dtype)."""
    infos = [helper.make_tensor_value_info(i[0], DTYPES[i[2] if len(i) > 2 else dtype], i[1]) for i in inputs]
    graph = helper.make_graph(
        nodes, "movement", infos, [helper.make_tensor_value_info(n, DTYPES[dtype], None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_ops_movement")
    model.ir_version = 8
    path = str(tmp_path / "model.onnx")
    onnx.save(model, path)
    return path


def sample(rng, shape, dtype):
    if dtype == np.float32:
        return rng.standard_normal(shape).astype(np.float32)
    if dtype == np.int64:
        return rng.integers(-(1 << 40), 1 << 40, shape, dtype=np.int64)
    return rng.random(shape) < 0.5


def check(path, shapes, dtype=np.float32, rtol=ELEMENTWISE, batches=BATCHES, seed=0, reference=None):
    """Runs both plans and onnxruntime (or ``reference(feeds)``) for each batch size; ``shapes``: {input: shape with "N"}."""
    model = aonnx.load(path)
    session = None if reference else ort_session(path)
    for batch in batches:
        rng = rng_for(path, seed, batch)
        feeds = {name: sample(rng, [batch if d == "N" else d for d in shape], dtype) for name, shape in shapes.items()}
        ref = reference(feeds) if reference else session.run(None, feeds)
        inputs = [feeds[name] for name in model.input_names]
        plans = [("fused", model(*inputs))]
        if dtype == np.float32:
            # Capturing (which forces the exact plan) takes float32 values only.
            plans.append(("exact", aimetcle.run(model, *inputs, capture=model.output_names[:1])[0]))
        for plan, ours in plans:
            ours = ours if isinstance(ours, tuple) else (ours,)
            assert len(ours) == len(ref)
            for k, (a, b) in enumerate(zip(ours, ref)):
                what = f"{plan} plan, batch {batch}, output {k}"
                if dtype == np.float32:
                    assert_close(a, b, rtol, what)
                else:
                    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype}, onnxruntime {b.dtype}"
                    assert a.shape == b.shape and np.array_equal(a, b), f"{what}: differs"
    return model


def needs_shape(tmp_path):
    """Skips a test whose graph computes sizes with Shape when this build does not run Shape."""
    node = helper.make_node("Shape", ["x"], ["y"])
    graph = helper.make_graph([node], "shape", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    path = str(tmp_path / "shape.onnx")
    onnx.save(model, path)
    try:
        aonnx.load(path)(np.zeros(2, np.float32))
    except aimetcle.AimetError as error:
        if "does not run 'Shape'" in str(error):
            pytest.skip("this build does not run Shape")
        raise


def refused(path, *inputs, match):
    with pytest.raises(aimetcle.AimetError, match=match):
        aonnx.load(path)(*inputs)


# --- Transpose ------------------------------------------------------------------------

TRANSPOSES = [
    ("nchw-nhwc", ["N", 16, 9, 11], [0, 2, 3, 1]),
    ("nhwc-nchw", ["N", 9, 11, 16], [0, 3, 1, 2]),
    ("heads", ["N", 7, 4, 24], [0, 2, 1, 3]),
    ("heads-kt", ["N", 4, 7, 24], [0, 1, 3, 2]),
    ("rank3", ["N", 33, 70], [0, 2, 1]),
    ("rank5", ["N", 3, 4, 5, 6], [0, 4, 2, 1, 3]),
    ("unit-axes", ["N", 1, 5, 1, 7], [0, 3, 4, 2, 1]),
    ("identity", ["N", 5, 6], [0, 1, 2]),
    ("big-plane", ["N", 96, 40, 40], [0, 2, 3, 1]),
    ("big-runs", ["N", 64, 12, 64], [0, 2, 1, 3]),
]


@pytest.mark.parametrize("shape,perm", [t[1:] for t in TRANSPOSES], ids=[t[0] for t in TRANSPOSES])
def test_transpose(tmp_path, shape, perm):
    node = helper.make_node("Transpose", ["x"], ["y"], perm=perm)
    check(make_model(tmp_path, [node], [("x", shape)]), {"x": shape})


@pytest.mark.parametrize("perm", [None, [1, 0, 2], [2, 0, 1]], ids=["default", "batch-moves", "batch-last"])
def test_transpose_moving_the_batch_axis(tmp_path, perm):
    node = helper.make_node("Transpose", ["x"], ["y"], **({} if perm is None else {"perm": perm}))
    check(make_model(tmp_path, [node], [("x", ["N", 5, 7])]), {"x": ["N", 5, 7]})


@pytest.mark.parametrize("dtype", [np.int64, np.bool_], ids=["int64", "bool"])
def test_transpose_integer_and_bool(tmp_path, dtype):
    node = helper.make_node("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])
    check(make_model(tmp_path, [node], [("x", ["N", 5, 6, 7])], dtype=dtype), {"x": ["N", 5, 6, 7]}, dtype)


def test_transpose_bad_perm_is_refused(tmp_path):
    node = helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[0, 2, 2])
    path = make_model(tmp_path, [node], [("x", ["N", 3, 4])])
    refused(path, np.zeros((1, 3, 4), np.float32), match="'t'.*perm")


# --- Pad ------------------------------------------------------------------------------

PADS = [
    ("constant", "constant", [0, 1, 2, 3, 0, 2, 1, 0], 18),
    ("constant-crop", "constant", [0, -1, 2, -3, 0, 2, -1, 1], 18),
    ("edge", "edge", [0, 0, 3, 1, 0, 1, 2, 4], 18),
    ("edge-crop", "edge", [0, 0, -2, 1, 0, 1, 2, -3], 18),
    ("reflect", "reflect", [0, 1, 3, 2, 0, 2, 1, 4], 18),
    ("reflect-crop", "reflect", [0, 0, 2, -1, 0, 0, -2, 3], 18),
    ("wrap", "wrap", [0, 2, 3, 5, 0, 1, 7, 2], 19),
    ("wrap-crop", "wrap", [0, 0, -3, 2, 0, 0, 2, -1], 19),
]


@pytest.mark.parametrize("mode,pads,opset", [p[1:] for p in PADS], ids=[p[0] for p in PADS])
def test_pad(tmp_path, mode, pads, opset):
    inits = {"pads": np.array(pads, np.int64)}
    inputs = ["x", "pads"]
    if mode == "constant":
        inits["value"] = np.array(1.5, np.float32)
        inputs.append("value")
    node = helper.make_node("Pad", inputs, ["y"], mode=mode)
    check(make_model(tmp_path, [node], [("x", ["N", 4, 6, 7])], initializers=inits, opset=opset), {"x": ["N", 4, 6, 7]})


@pytest.mark.parametrize("opset", [7, 11], ids=["opset7-attribute", "opset11-input"])
def test_pad_forms(tmp_path, opset):
    pads = [0, 0, 1, 2, 0, 0, 3, 1]
    if opset < 11:
        node = helper.make_node("Pad", ["x"], ["y"], pads=pads, value=-2.0)
        path = make_model(tmp_path, [node], [("x", ["N", 3, 5, 4])], opset=opset)
    else:
        node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant")
        path = make_model(tmp_path, [node], [("x", ["N", 3, 5, 4])], initializers={"pads": np.array(pads, np.int64)}, opset=opset)
    check(path, {"x": ["N", 3, 5, 4]})


def test_pad_axes(tmp_path):
    inits = {"pads": np.array([2, -1, 1, 3], np.int64), "axes": np.array([-1, 1], np.int64), "value": np.float32(0.25)}
    node = helper.make_node("Pad", ["x", "pads", "value", "axes"], ["y"])
    check(make_model(tmp_path, [node], [("x", ["N", 5, 6])], initializers=inits, opset=18), {"x": ["N", 5, 6]})


def test_pad_pads_from_shape(tmp_path):
    needs_shape(tmp_path)
    # pads computed from the input's shape (pad the last axis to 8 elements): known before the run.
    nodes = [helper.make_node("Shape", ["x"], ["s"], start=-1),
             helper.make_node("Sub", ["eight", "s"], ["end"]),
             helper.make_node("Concat", ["zeros", "end"], ["pads"], axis=0),
             helper.make_node("Pad", ["x", "pads"], ["y"], mode="edge")]
    inits = {"eight": np.array([8], np.int64), "zeros": np.array([0, 0, 0, 0, 0], np.int64)}
    check(make_model(tmp_path, nodes, [("x", ["N", 2, 5])], initializers=inits, opset=18), {"x": ["N", 2, 5]})


@pytest.mark.parametrize("dtype", [np.int64, np.bool_], ids=["int64", "bool"])
def test_pad_integer_and_bool(tmp_path, dtype):
    value = np.array(7 if dtype == np.int64 else True, dtype)
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"])
    inits = {"pads": np.array([0, 1, 2, 0, 2, 1], np.int64), "value": value}
    check(make_model(tmp_path, [node], [("x", ["N", 3, 4])], initializers=inits, dtype=dtype), {"x": ["N", 3, 4]}, dtype)


def test_pad_batch_axis(tmp_path):
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")
    inits = {"pads": np.array([1, 0, 0, 1], np.int64)}
    path = make_model(tmp_path, [node], [("x", ["N", 4])], initializers=inits)
    check(path, {"x": ["N", 4]}, batches=(3,))


def test_pad_reflect_wider_than_axis_is_refused(tmp_path):
    node = helper.make_node("Pad", ["x", "pads"], ["y"], name="p", mode="reflect")
    path = make_model(tmp_path, [node], [("x", ["N", 3])], initializers={"pads": np.array([0, 3, 0, 0], np.int64)})
    refused(path, np.zeros((1, 3), np.float32), match="'p'.*reflect padding by 3")


def test_pad_pads_as_graph_input(tmp_path):
    # An int64 graph input is known before the run: the output shape follows the pads fed.
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="edge")
    path = make_model(tmp_path, [node], [("x", ["N", 3]), ("pads", [4], np.int64)])
    session, model = ort_session(path), aonnx.load(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for pads in ([0, 1, 0, 2], [0, 2, 0, -1]):
        feeds = {"x": x, "pads": np.array(pads, np.int64)}
        assert_close(model(x, feeds["pads"]), session.run(None, feeds)[0], ELEMENTWISE, f"pads {pads}")


@pytest.mark.parametrize("shape,target,axes", [
    (["N", 5, 8, 7], [6, 4], [1, 2]),
    (["N", 6, 9, 4], [3, 12], [-2, -1]),
    ([4, 5, 6], [3, 8, 6], None),
], ids=["chw", "negative-axes", "all-axes"])
def test_center_crop_pad(tmp_path, shape, target, axes):
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], **({} if axes is None else {"axes": axes}))
    path = make_model(tmp_path, [node], [("x", shape)], initializers={"shape": np.array(target, np.int64)}, opset=18)
    check(path, {"x": shape}, batches=BATCHES if "N" in shape else (1,))


@pytest.mark.parametrize("time_axis,batch_axis", [(0, 1), (1, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64], ids=["float32", "int64"])
def test_reverse_sequence(tmp_path, time_axis, batch_axis, dtype):
    steps, items = 6, 4
    shape = [steps, items, 3, 5] if time_axis == 0 else [items, steps, 3, 5]
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], time_axis=time_axis, batch_axis=batch_axis)
    path = make_model(tmp_path, [node], [("x", shape, dtype), ("lens", [items], np.int64)], dtype=dtype)
    session, model = ort_session(path), aonnx.load(path)
    rng = rng_for("reverse_sequence", time_axis, dtype.__name__)
    for lens in ([6, 1, 0, 3], [2, 6, 5, 1]):
        feeds = {"x": sample(rng, shape, dtype), "lens": np.array(lens, np.int64)}
        ours, ref = model(feeds["x"], feeds["lens"]), session.run(None, feeds)[0]
        assert ours.dtype == ref.dtype and np.array_equal(ours, ref), f"lens {lens}"


def test_reverse_sequence_too_long_is_refused(tmp_path):
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], name="rev")
    path = make_model(tmp_path, [node], [("x", [3, 2]), ("lens", [2], np.int64)])
    refused(path, np.zeros((3, 2), np.float32), np.array([1, 4], np.int64), match="'rev'.*sequence_lens\\[1\\] = 4")


# --- DepthToSpace / SpaceToDepth ----------------------------------------------------------

@pytest.mark.parametrize("op,attrs,shape", [
    ("DepthToSpace", {"blocksize": 2}, ["N", 8, 5, 6]),
    ("DepthToSpace", {"blocksize": 3, "mode": "CRD"}, ["N", 18, 4, 3]),
    ("DepthToSpace", {"blocksize": 2, "mode": "DCR"}, ["N", 64, 20, 20]),
    ("SpaceToDepth", {"blocksize": 2}, ["N", 3, 8, 6]),
    ("SpaceToDepth", {"blocksize": 4}, ["N", 16, 32, 32]),
], ids=["d2s-dcr", "d2s-crd", "d2s-big", "s2d", "s2d-big"])
def test_depth_space(tmp_path, op, attrs, shape):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    check(make_model(tmp_path, [node], [("x", shape)], opset=13), {"x": shape})


def test_depth_to_space_int64(tmp_path):
    # onnxruntime has no int64 DepthToSpace: numpy's reshape / transpose / reshape (CRD) is the reference.
    def crd(feeds):
        x = feeds["x"]
        n, c, h, w = x.shape
        return [x.reshape(n, c // 4, 2, 2, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // 4, h * 2, w * 2)]
    node = helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")
    path = make_model(tmp_path, [node], [("x", ["N", 8, 3, 2])], dtype=np.int64, opset=13)
    check(path, {"x": ["N", 8, 3, 2]}, np.int64, reference=crd)


def test_depth_to_space_bad_channels_is_refused(tmp_path):
    node = helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=2)
    path = make_model(tmp_path, [node], [("x", ["N", 6, 2, 2])], opset=13)
    refused(path, np.zeros((1, 6, 2, 2), np.float32), match="'d2s'.*multiple of blocksize")


# --- Resize / Upsample ----------------------------------------------------------------

def resize_model(tmp_path, shape, scales=None, sizes=None, roi=None, opset=19, **attrs):
    inits, inputs = {}, ["x", "", "", ""]
    if roi is not None:
        inits["roi"] = np.array(roi, np.float32)
        inputs[1] = "roi"
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        inputs[2] = "scales"
    if sizes is not None:
        inits["sizes"] = np.array(sizes, np.int64)
        inputs[3] = "sizes"
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node("Resize", inputs, ["y"], name="resize", **attrs)
    return make_model(tmp_path, [node], [("x", shape)], initializers=inits, opset=opset)


COORDINATES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def tie_free_size(coordinates, n, candidates):
    """The first output size whose source coordinates are all clear of integers and half-integers.

    At an exact tie (a coordinate of exactly 2.0 for floor, 2.5 for round_prefer_floor) the index
    depends on the last bit of the arithmetic: the library computes it in float64, onnxruntime
    in float32, and either can land on the other side."""
    for out in candidates:
        scale = out / n
        xs = []
        for k in range(out):
            if coordinates == "align_corners":
                xs.append(k * (n - 1) / (out - 1) if 0 < k < out - 1 else 0)
            elif coordinates == "asymmetric":
                xs.append(k / scale)
            else:
                xs.append((k + 0.5) / scale - 0.5)
        if all(x <= 0 or min((2 * x) % 1, 1 - (2 * x) % 1) > 1e-3 for x in xs):
            return out
    raise AssertionError(f"no tie-free size for {coordinates} from {n}")


@pytest.mark.parametrize("coordinates", COORDINATES)
@pytest.mark.parametrize("nearest_mode", NEAREST)
@pytest.mark.parametrize("direction", ["up", "down"])
def test_resize_nearest(tmp_path, coordinates, nearest_mode, direction):
    shape = (7, 11)
    candidates = [range(8, 40), range(2, 7)] if direction == "up" else [range(2, 7), range(2, 11)]
    size = [tie_free_size(coordinates, n, c) for n, c in zip(shape, candidates)]
    inits = {"sizes": np.array(size, np.int64)}
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest", axes=[2, 3],
                            coordinate_transformation_mode=coordinates, nearest_mode=nearest_mode)
    path = make_model(tmp_path, [node], [("x", ["N", 3, *shape])], initializers=inits, opset=19)
    check(path, {"x": ["N", 3, *shape]})


@pytest.mark.parametrize("coordinates", COORDINATES)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [(2.0, 2.0), (0.5, 0.8), (1.5, 0.6)], ids=["x2", "down", "mixed"])
def test_resize_scales(tmp_path, coordinates, mode, scales):
    if coordinates in ("align_corners", "pytorch_half_pixel") and scales == (1.5, 0.6):
        pytest.skip("fractional output widths are refused in this mode (test_resize_fractional_align_corners_is_refused)")
    path = resize_model(tmp_path, ["N", 2, 6, 10], scales=[1, 1, *scales], mode=mode,
                        coordinate_transformation_mode=coordinates)
    check(path, {"x": ["N", 2, 6, 10]})


@pytest.mark.parametrize("mode,exclude_outside", [("linear", 0), ("cubic", 0), ("cubic", 1)])
def test_resize_sizes(tmp_path, mode, exclude_outside):
    path = resize_model(tmp_path, ["N", 3, 9, 7], sizes=[1, 3, 5, 12], mode=mode, exclude_outside=exclude_outside,
                        cubic_coeff_a=-0.5)
    check(path, {"x": ["N", 3, 9, 7]}, batches=(1,))


def test_resize_big_upsample(tmp_path):
    # The segmentation-head pattern: bilinear ×4 and nearest ×2 of big activations.
    path = resize_model(tmp_path, ["N", 21, 33, 33], scales=[1, 1, 4, 4], mode="linear")
    check(path, {"x": ["N", 21, 33, 33]})


def test_resize_nearest_x2(tmp_path):
    path = resize_model(tmp_path, ["N", 64, 20, 20], scales=[1, 1, 2, 2], mode="nearest",
                        coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    check(path, {"x": ["N", 64, 20, 20]})


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("sizes", [(5, 3), (11, 4)], ids=["down", "mixed"])
def test_resize_antialias(tmp_path, mode, sizes):
    path = resize_model(tmp_path, ["N", 2, 16, 13], sizes=list(sizes), axes=[-2, -1], mode=mode, antialias=1)
    check(path, {"x": ["N", 2, 16, 13]})


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
def test_resize_keep_aspect_ratio(tmp_path, policy):
    path = resize_model(tmp_path, ["N", 2, 6, 9], sizes=[8, 8], axes=[2, 3], mode="linear",
                        keep_aspect_ratio_policy=policy)
    check(path, {"x": ["N", 2, 6, 9]})


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_tf_crop_and_resize(tmp_path, mode):
    path = resize_model(tmp_path, ["N", 2, 8, 8], sizes=[5, 6], axes=[2, 3], roi=[0.2, -0.1, 1.1, 0.7],
                        mode=mode, coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=3.5)
    check(path, {"x": ["N", 2, 8, 8]})


def test_resize_to_another_tensor_size(tmp_path):
    needs_shape(tmp_path)
    # The FPN pattern: upsample a coarse map to a finer map's spatial size (sizes computed from Shape).
    nodes = [helper.make_node("Shape", ["x"], ["sx"], end=2),
             helper.make_node("Shape", ["skip"], ["sk"], start=2),
             helper.make_node("Concat", ["sx", "sk"], ["sizes"], axis=0),
             helper.make_node("Resize", ["x", "", "", "sizes"], ["r"], mode="linear"),
             helper.make_node("Add", ["r", "skip"], ["y"])]
    path = make_model(tmp_path, nodes, [("x", ["N", 4, 5, 6]), ("skip", ["N", 4, 10, 12])], opset=15)
    check(path, {"x": ["N", 4, 5, 6], "skip": ["N", 4, 10, 12]})


@pytest.mark.parametrize("opset", [10, 11, 13])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_older_opsets(tmp_path, opset, mode):
    scales = np.array([1, 1, 2, 1.5], np.float32)
    if opset == 10:
        node = helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)
        inits = {"scales": scales}
    else:
        node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode=mode)
        inits = {"scales": scales, "roi": np.array([], np.float32)}
    check(make_model(tmp_path, [node], [("x", ["N", 3, 4, 6])], initializers=inits, opset=opset), {"x": ["N", 3, 4, 6]})


@pytest.mark.parametrize("opset", [7, 9])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(tmp_path, opset, mode):
    scales = [1.0, 1.0, 2.0, 3.0]
    if opset == 7:
        node = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=scales)
        inits = {}
    else:
        node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode)
        inits = {"scales": np.array(scales, np.float32)}
    check(make_model(tmp_path, [node], [("x", ["N", 2, 5, 4])], initializers=inits, opset=opset), {"x": ["N", 2, 5, 4]})


def test_resize_fractional_align_corners_is_refused(tmp_path):
    path = resize_model(tmp_path, ["N", 1, 4, 4], scales=[1, 1, 0.6, 0.6], mode="linear",
                        coordinate_transformation_mode="align_corners")
    refused(path, np.zeros((1, 1, 4, 4), np.float32), match="'resize'.*align_corners.*fractional")


def test_upsample_nearest_downsampling_is_refused(tmp_path):
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], name="up", mode="nearest")
    path = make_model(tmp_path, [node], [("x", ["N", 2, 4])], initializers={"scales": np.array([1, 1, 0.5], np.float32)}, opset=9)
    refused(path, np.zeros((1, 2, 4), np.float32), match="'up'.*nearest downsampling")


def test_resize_tf_crop_with_scales_is_refused(tmp_path):
    path = resize_model(tmp_path, ["N", 1, 4, 4], scales=[1, 1, 2, 2], roi=[0, 0, 0.2, 0.2, 1, 1, 0.8, 0.8],
                        mode="linear", coordinate_transformation_mode="tf_crop_and_resize")
    refused(path, np.zeros((1, 1, 4, 4), np.float32), match="'resize'.*tf_crop_and_resize with scales")


def test_resize_scales_from_a_graph_input(tmp_path):
    """Scales given as a graph input of 4 values: a parameter known before the run, as onnxruntime takes it."""
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="linear")
    path = make_model(tmp_path, [node], [("x", ["N", 1, 4, 4]), ("scales", [4])], opset=13)
    model = aonnx.load(path)
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    scales = np.array([1, 1, 2, 1.5], np.float32)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x, "scales": scales})[0]
    np.testing.assert_allclose(model(x, scales), ref, rtol=1e-5, atol=1e-6)


def test_resize_runtime_scales_are_refused(tmp_path):
    """Scales of undeclared shape are data: the output shape cannot be known before the run."""
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="linear")
    path = make_model(tmp_path, [node], [("x", ["N", 1, 4, 4]), ("scales", None)], opset=13)
    model = aonnx.load(path)
    with pytest.raises(aimetcle.AimetError, match="'resize'.*scales"):
        model(np.zeros((1, 1, 4, 4), np.float32), np.array([1, 1, 2, 2], np.float32))


def test_resize_int64_data_is_refused(tmp_path):
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="nearest")
    path = make_model(tmp_path, [node], [("x", ["N", 1, 4, 4])], initializers={"scales": np.array([1, 1, 2, 2], np.float32)},
                      opset=13, dtype=np.int64)
    refused(path, np.zeros((1, 1, 4, 4), np.int64), match="'resize'.*float32")


# --- GridSample -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample(tmp_path, mode, padding_mode, align_corners):
    if mode == "bicubic" and padding_mode == "border":
        pytest.skip("refused: test_grid_sample_cubic_border_is_refused")
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode, padding_mode=padding_mode,
                            align_corners=align_corners)
    path = make_model(tmp_path, [node], [("x", ["N", 3, 5, 7]), ("grid", ["N", 4, 6, 2])], opset=16)
    model, session = aonnx.load(path), ort_session(path)
    for batch in BATCHES:
        rng = rng_for("grid_sample", mode, padding_mode, align_corners, batch)
        x = sample(rng, (batch, 3, 5, 7), np.float32)
        # Coordinates beyond [-1, 1] exercise the padding; none lands on a rounding tie.
        grid = rng.uniform(-1.6, 1.6, (batch, 4, 6, 2)).astype(np.float32)
        ref = session.run(None, {"x": x, "grid": grid})[0]
        assert_close(model(x, grid), ref, ELEMENTWISE, f"fused plan, batch {batch}")
        assert_close(aimetcle.run(model, x, grid, capture=["y"])[0], ref, ELEMENTWISE, f"exact plan, batch {batch}")


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
def test_grid_sample_3d(tmp_path, mode):
    # Opset 20: any spatial rank; onnxruntime runs 3-D linear / nearest only, so the reference evaluator checks cubic.
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode, padding_mode="reflection")
    path = make_model(tmp_path, [node], [("x", ["N", 2, 4, 5, 3]), ("grid", ["N", 3, 2, 4, 3])], opset=20)
    model = aonnx.load(path)
    rng = rng_for("grid_sample_3d", mode)
    x = sample(rng, (2, 2, 4, 5, 3), np.float32)
    grid = rng.uniform(-1.2, 1.2, (2, 3, 2, 4, 3)).astype(np.float32)
    from onnx.reference import ReferenceEvaluator
    ref = ReferenceEvaluator(onnx.load(path)).run(None, {"x": x, "grid": grid})[0]
    assert_close(model(x, grid), ref, ELEMENTWISE, "3-D")


def test_grid_sample_unknown_mode_is_refused(tmp_path):
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], name="gs", mode="linear")
    path = make_model(tmp_path, [node], [("x", ["N", 1, 3, 3]), ("grid", ["N", 2, 2, 2])], opset=16)
    refused(path, np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 2, 2, 2), np.float32), match="'gs'.*mode 'linear'")


def test_grid_sample_cubic_border_is_refused(tmp_path):
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], name="gs", mode="bicubic", padding_mode="border")
    path = make_model(tmp_path, [node], [("x", ["N", 1, 3, 3]), ("grid", ["N", 2, 2, 2])], opset=16)
    refused(path, np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 2, 2, 2), np.float32), match="'gs'.*cubic.*border")


# --- AffineGrid -----------------------------------------------------------------------

@pytest.mark.parametrize("size,align_corners", [([2, 3, 5, 7], 0), ([2, 3, 5, 7], 1), ([2, 1, 4, 3, 6], 0),
                                                ([2, 1, 4, 3, 6], 1), ([2, 3, 1, 4], 0)],
                         ids=["2d", "2d-align", "3d", "3d-align", "unit-axis"])
def test_affine_grid(tmp_path, size, align_corners):
    r = len(size) - 2
    node = helper.make_node("AffineGrid", ["theta", "size"], ["y"], align_corners=align_corners)
    path = make_model(tmp_path, [node], [("theta", [2, r, r + 1])], initializers={"size": np.array(size, np.int64)}, opset=20)
    rng = rng_for("affine_grid", r, align_corners)
    theta = rng.standard_normal((2, r, r + 1)).astype(np.float32)
    if r == 2:
        ref = ort_session(path).run(None, {"theta": theta})[0]
    else:
        # onnxruntime's AffineGrid is 2-D only: the reference evaluator checks 3-D.
        from onnx.reference import ReferenceEvaluator
        ref = ReferenceEvaluator(onnx.load(path)).run(None, {"theta": theta})[0]
    model = aonnx.load(path)
    assert_close(model(theta), ref, ELEMENTWISE, "fused plan")
    assert_close(aimetcle.run(model, theta, capture=["y"])[0], ref, ELEMENTWISE, "exact plan")


def test_affine_grid_align_corners_unit_axis_is_refused(tmp_path):
    node = helper.make_node("AffineGrid", ["theta", "size"], ["y"], name="ag", align_corners=1)
    path = make_model(tmp_path, [node], [("theta", [1, 2, 3])], initializers={"size": np.array([1, 1, 1, 4], np.int64)}, opset=20)
    refused(path, np.zeros((1, 2, 3), np.float32), match="'ag'.*align_corners with a spatial size of 1")


# --- Col2Im ---------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", [{}, {"strides": [2, 1], "pads": [1, 0, 0, 2], "dilations": [1, 2]}],
                         ids=["plain", "strided-padded-dilated"])
def test_col2im(tmp_path, attrs):
    image, block = [5, 6], [2, 3]
    strides, pads, dilations = attrs.get("strides", [1, 1]), attrs.get("pads", [0] * 4), attrs.get("dilations", [1, 1])
    blocks = [(image[i] + pads[i] + pads[i + 2] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1 for i in range(2)]
    shape = ["N", 3 * block[0] * block[1], blocks[0] * blocks[1]]
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    inits = {"image": np.array(image, np.int64), "block": np.array(block, np.int64)}
    check(make_model(tmp_path, [node], [("x", shape)], initializers=inits, opset=18), {"x": shape})


def test_col2im_wrong_block_count_is_refused(tmp_path):
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], name="c2i")
    inits = {"image": np.array([4, 4], np.int64), "block": np.array([2, 2], np.int64)}
    path = make_model(tmp_path, [node], [("x", ["N", 4, 8])], initializers=inits, opset=18)
    refused(path, np.zeros((1, 4, 8), np.float32), match="'c2i'.*expected \\[N, C")
