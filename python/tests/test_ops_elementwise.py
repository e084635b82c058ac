"""Elementwise ops against onnxruntime: arithmetic (float32 and int64), variadic Sum/Mean/Max/Min,
comparisons and logic, Where, Cast/CastLike, IsNaN/IsInf, and the functions of one tensor.

Each test builds a tiny ONNX model with ``onnx.helper``, runs it in onnxruntime (graph optimizations off)
and through ``aimetcle.onnx.load(path)``: the fused plan (``model(*inputs)``) and the exact plan (a run
capturing a float value), for batch sizes 1 and 3 (the batch axis is symbolic). Float results must agree
within ``ELEMENTWISE`` (1e-5 relative, see ``test_runtime.assert_close``); integer and bool results exactly,
in the library's dtype (int64 for every integer type, bool).

Integer values computed from a float input (a Cast) run in the executor's kernels; integer graph inputs are
known before the run, so their arithmetic is evaluated with the input shapes (the same kernels, another path).
Both are covered.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import aimetcle  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402

from test_runtime import ELEMENTWISE, BATCHES, assert_close, ort_session, rng_for  # noqa: E402

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


# --- helpers -----------------------------------------------------------------------

def model_file(tmp_path, nodes, inputs, outputs, initializers=None, opset=17, name="model"):
    """Writes a model. ``inputs`` / ``outputs``: (name, elem type, shape or None), "N" for the batch axis."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_ops_elementwise")
    model.ir_version = 8
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(model, path)
    return path


def assert_same(ours, ref, rtol, what):
    """Float: within rtol (NaN where onnxruntime has NaN); integer: equal values as int64; bool: equal."""
    ref = np.asarray(ref)
    if ref.dtype.kind == "f":
        nan = np.isnan(ref)
        assert isinstance(ours, np.ndarray) and ours.shape == ref.shape, f"{what}: {getattr(ours, 'shape', ours)} vs {ref.shape}"
        assert np.array_equal(np.isnan(ours), nan), f"{what}: NaN positions differ: ours {ours}, onnxruntime {ref}"
        ours, ref = np.where(nan, 0, ours).astype(ours.dtype), np.where(nan, 0, ref).astype(ref.dtype)
        inf = np.isinf(ref)
        assert np.array_equal(ours[inf], ref[inf]), f"{what}: infinities differ"
        assert_close(np.where(inf, 0, ours).astype(np.float32), np.where(inf, 0, ref), rtol, what)
    elif ref.dtype.kind in "iu":
        assert ours.dtype == np.int64, f"{what}: dtype {ours.dtype}, expected int64"
        assert ours.shape == ref.shape, f"{what}: shape {ours.shape}, onnxruntime {ref.shape}"
        expected = ref.astype(np.int64)  # (uint64 bit patterns as int64, as the library stores them)
        assert np.array_equal(ours, expected), f"{what}: ours {ours.ravel()[:12]}, onnxruntime {expected.ravel()[:12]}"
    else:
        assert ours.dtype == np.bool_, f"{what}: dtype {ours.dtype}, expected bool"
        assert ours.shape == ref.shape and np.array_equal(ours, ref), f"{what}: ours {ours}, onnxruntime {ref}"


def check(path, make_feeds, rtol=ELEMENTWISE, capture=None, batches=BATCHES):
    """Runs ``path`` in both for each batch size; ``make_feeds(batch)`` gives {input name: array}. Ours runs
    the fused plan and the exact plan (capturing ``capture``, default the first input, which must be float)."""
    model = aonnx.load(path)
    session = ort_session(path)
    for batch in batches:
        feeds = make_feeds(batch)
        ref = session.run(None, feeds)
        inputs = [feeds[name] for name in model.input_names]
        exact, _ = aimetcle.run(model, *inputs, capture=[capture or model.input_names[0]])
        for plan, ours in (("fused", model(*inputs)), ("exact", exact)):
            ours = ours if isinstance(ours, tuple) else (ours,)
            assert len(ours) == len(ref)
            for k, (a, b) in enumerate(zip(ours, ref)):
                assert_same(a, b, rtol, f"{plan} plan, batch {batch}, output {k}")
    return model


def specials(values):
    """make_feeds for input 'x' of ones; the model multiplies it by the constant 'v' holding ``values`` (NaN and
    infinities: the library takes finite inputs only), so the values reach the op at run time."""
    return lambda batch: {"x": np.ones((batch, *np.shape(values)[1:]), np.float32)}


def floats(*shape, scale=1.0, seed=0, low=None, high=None):
    """make_feeds-style generator of float32 data for a shape with the batch first."""
    def make(batch, key=""):
        rng = rng_for(seed, batch, key)
        dims = (batch, *shape[1:])
        if low is not None:
            return rng.uniform(low, high, dims).astype(np.float32)
        return (rng.standard_normal(dims) * scale).astype(np.float32)
    return make


# --- float arithmetic ----------------------------------------------------------------

@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
@pytest.mark.parametrize("b_shape", [["N", 3, 4, 5], [4, 1], [1], [1, 3, 1, 5]])
def test_float_binary_broadcast(tmp_path, op, b_shape):
    """Both operands runtime inputs; b broadcast along various axes (or the same shape, or a scalar)."""
    dims = [d for d in b_shape]
    path = model_file(tmp_path, [helper.make_node(op, ["a", "b"], ["y"], name=op.lower())],
                      [("a", F, ["N", 3, 4, 5]), ("b", F, dims)], [("y", F, None)])

    def feeds(batch):
        rng = rng_for(op, batch, str(b_shape))
        a = rng.standard_normal((batch, 3, 4, 5)).astype(np.float32)
        b_dims = [batch if d == "N" else d for d in dims]
        b = rng.standard_normal(b_dims).astype(np.float32)
        if op == "Pow":
            a = np.abs(a) + 0.1
        if op == "Div":
            b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
        return {"a": a, "b": b}
    check(path, feeds)


def test_float_binary_large_and_constant(tmp_path):
    """A large tensor (split over workers, vector tails) against per-channel constants, chained."""
    c = rng_for("const").standard_normal((1, 7, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Sub", ["m", "x"], ["s"]),
             helper.make_node("Div", ["s", "two"], ["d"]), helper.make_node("Max", ["d", "c"], ["mx"]),
             helper.make_node("Min", ["c", "mx"], ["y"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 7, 61, 77])], [("y", F, None)],
                      {"c": c, "two": np.array(2.0, np.float32)})
    check(path, lambda batch: {"x": floats("N", 7, 61, 77, seed=1)(batch)})


def test_pow_exponents(tmp_path):
    """x² (the special case), x^0.5, x^3, x^-1.5, and a float base with an int64 exponent."""
    nodes = [helper.make_node("Pow", ["x", "two"], ["p2"]), helper.make_node("Pow", ["x", "half"], ["p05"]),
             helper.make_node("Pow", ["x", "three"], ["p3"]), helper.make_node("Pow", ["x", "neg"], ["pn"]),
             helper.make_node("Pow", ["x", "ints"], ["pi"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 4, 33])], [(n, F, None) for n in ["p2", "p05", "p3", "pn", "pi"]],
                      {"two": np.array(2.0, np.float32), "half": np.array([0.5], np.float32),
                       "three": np.array(3.0, np.float32), "neg": np.array(-1.5, np.float32),
                       "ints": np.arange(-3, 30, dtype=np.int64)}, opset=15)
    check(path, lambda batch: {"x": floats("N", 4, 33, low=0.1, high=3.0)(batch)})


def test_pow_negative_base_and_special_values(tmp_path):
    """Negative bases with integral and fractional exponents (NaN), zeros, infinities."""
    v = np.array([[-2.0, -2.0, 0.0, 0.0, np.inf, -np.inf, 1.0, np.nan, -0.5, 3.0]], np.float32)
    e = np.array([3.0, 0.5, -1.0, 0.0, -2.0, 3.0, np.nan, 0.0, 2.0, 40.0], np.float32)
    nodes = [helper.make_node("Mul", ["x", "v"], ["b"]), helper.make_node("Pow", ["b", "e"], ["y"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 10])], [("y", F, None)], {"e": e, "v": v})
    check(path, specials(v))


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_float_fmod(tmp_path, fmod):
    """fmod = 1: C's fmod; fmod = 0 on floats (opset 28): numpy's mod, the sign of the divisor."""
    path = model_file(tmp_path, [helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)],
                      [("a", F, ["N", 6, 5]), ("b", F, [5])], [("y", F, None)], opset=28 if fmod == 0 else 17)

    def feeds(batch):
        rng = rng_for("fmod", batch)
        return {"a": (rng.standard_normal((batch, 6, 5)) * 10).astype(np.float32),
                "b": np.array([2.5, -3.0, 0.7, -1.1, 4.0], np.float32)}
    check(path, feeds)


def test_max_min_nan_propagate(tmp_path):
    """A NaN in either operand gives NaN (as onnxruntime), in the vector loop and the tail."""
    a = np.array([[np.nan, 1, 2, 5, -1, np.nan, 3, 0, 7, np.nan, 1]], np.float32)
    b = np.array([[0, np.nan, 3, 4, -2, 1, np.nan, 0, 8, 2, np.nan]], np.float32)
    nodes = [helper.make_node("Mul", ["x", "va"], ["a"]), helper.make_node("Mul", ["x", "vb"], ["b"]),
             helper.make_node("Max", ["a", "b"], ["mx"]), helper.make_node("Min", ["a", "b"], ["mn"]),
             helper.make_node("Max", ["a", "b", "x"], ["m3"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 11])], [("mx", F, None), ("mn", F, None), ("m3", F, None)],
                      {"va": a, "vb": b})
    check(path, specials(a))


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
@pytest.mark.parametrize("count", [1, 2, 4])
def test_variadic(tmp_path, op, count):
    """One to four inputs, broadcasting together (the first smaller than the result)."""
    shapes = [[1, 5, 1], ["N", 1, 6], [5, 6], [6]][:count]
    if count == 1:
        shapes = [["N", 5, 6]]
    names = [f"x{k}" for k in range(count)]
    path = model_file(tmp_path, [helper.make_node(op, names, ["y"])],
                      [(n, F, s) for n, s in zip(names, shapes)], [("y", F, None)], opset=13)
    capture = next(n for n, s in zip(names, shapes) if "N" in s)

    def feeds(batch):
        rng = rng_for(op, count, batch)
        return {n: rng.standard_normal([batch if d == "N" else d for d in s]).astype(np.float32) for n, s in zip(names, shapes)}
    check(path, feeds, capture=capture)


# --- int64 arithmetic ----------------------------------------------------------------

def int_model(tmp_path, nodes, outputs, b, opset=17):
    """Float input x → Cast to int64 'a' (run-time integers), constant int64 'b'; int64 outputs."""
    cast = helper.make_node("Cast", ["x"], ["a"], to=I64)
    return model_file(tmp_path, [cast, *nodes], [("x", F, ["N", 3, 8])], [(n, I64, None) for n in outputs],
                      {"b": b}, opset=opset)


def int_feeds(batch, seed="ints"):
    rng = rng_for(seed, batch)
    return {"x": rng.integers(-60, 60, (batch, 3, 8)).astype(np.float32)}


def test_int64_arithmetic_runtime(tmp_path):
    """Add, Sub, Mul, Div (truncating), Mod (both sign rules), Max, Min, Pow on int64 computed at run time."""
    b = np.array([3, -3, 7, -7, 1, -1, 5, 11], np.int64)
    ops = [("Add", {}), ("Sub", {}), ("Mul", {}), ("Div", {}), ("Mod", {}), ("Mod", {"fmod": 1}), ("Max", {}), ("Min", {})]
    nodes = [helper.make_node(op, ["a", "b"], [f"y{k}"], **attrs) for k, (op, attrs) in enumerate(ops)]
    path = int_model(tmp_path, nodes, [f"y{k}" for k in range(len(ops))], b)
    check(path, int_feeds)


def test_int64_pow(tmp_path):
    """int64 ^ int64 (negative exponents give 0 or ±1, large results the overflow value), int64 ^ float."""
    nodes = [helper.make_node("Pow", ["a", "b"], ["y0"]), helper.make_node("Pow", ["a", "e"], ["y1"])]
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["a"], to=I64), *nodes], [("x", F, ["N", 8])],
                      [("y0", I64, None), ("y1", I64, None)],
                      {"b": np.array([0, 1, 2, 3, -1, 13, 5, 2], np.int64),
                       "e": np.array([0.5, 2.5, 1.0, 3.0, -1.0, 2.0, 0.25, 1.5], np.float32)}, opset=15)

    def feeds(batch):
        rng = rng_for("ipow", batch)
        return {"x": rng.integers(-9, 9, (batch, 8)).astype(np.float32)}
    check(path, feeds)


def test_int64_inputs_known_before_run(tmp_path):
    """int64 graph inputs: the arithmetic is evaluated before the run (fused plan; capture of the float input)."""
    ops = ["Add", "Sub", "Mul", "Div", "Mod", "Max", "Min"]
    nodes = [helper.make_node(op, ["i", "j"], [f"y{k}"]) for k, op in enumerate(ops)]
    nodes.append(helper.make_node("Relu", ["x"], ["r"]))
    path = model_file(tmp_path, nodes, [("x", F, ["N", 2]), ("i", I64, [2, 5]), ("j", I64, [5])],
                      [(f"y{k}", I64, None) for k in range(len(ops))] + [("r", F, None)])

    def feeds(batch):
        rng = rng_for("known", batch)
        j = rng.integers(1, 9, 5) * rng.choice([-1, 1], 5)
        return {"x": rng.standard_normal((batch, 2)).astype(np.float32),
                "i": rng.integers(-100, 100, (2, 5)).astype(np.int64), "j": j.astype(np.int64)}
    check(path, feeds, capture="x")


def test_int64_wraps(tmp_path):
    """Overflow wraps as two's complement (onnxruntime's C++ int64 arithmetic)."""
    big = np.array([2**62, -2**63, 2**63 - 1, 3], np.int64)
    nodes = [helper.make_node("Add", ["a", "big"], ["s"]), helper.make_node("Mul", ["s", "big"], ["y"]),
             helper.make_node("Neg", ["big"], ["nb"]), helper.make_node("Sub", ["a", "nb"], ["z"])]
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["a"], to=I64), *nodes], [("x", F, ["N", 4])],
                      [("y", I64, None), ("z", I64, None)], {"big": big})
    check(path, lambda batch: {"x": np.tile(np.array([[2**62, 5, 1, -7]], np.float32), (batch, 1))})


def test_int64_division_by_zero_refused(tmp_path):
    """onnxruntime stops the process on an integer division by zero; the library reports an error naming the node."""
    path = int_model(tmp_path, [helper.make_node("Div", ["a", "b"], ["y"], name="idiv")], ["y"],
                     np.array([1, 2, 0, 4, 5, 6, 7, 8], np.int64))
    model = aonnx.load(path)
    with pytest.raises(ValueError, match=r"idiv.*division by zero"):
        model(np.ones((1, 3, 8), np.float32))


# --- comparisons, logic, Where ------------------------------------------------------

@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
def test_compare_float_and_int(tmp_path, op):
    """Float comparisons with broadcasting (rounded data so that ties occur; a NaN compares false) and int64."""
    nodes = [helper.make_node(op, ["x", "c"], ["yf"]), helper.make_node(op, ["c", "x"], ["yr"]),
             helper.make_node("Round", ["x"], ["x2"]), helper.make_node(op, ["x", "x2"], ["ys"]),
             helper.make_node("Cast", ["x"], ["xi"], to=I64), helper.make_node(op, ["xi", "ci"], ["yi"])]
    c = np.array([[-1.0], [0.0], [np.nan], [1.0]], np.float32)
    path = model_file(tmp_path, nodes, [("x", F, ["N", 4, 9])],
                      [("yf", B, None), ("yr", B, None), ("ys", B, None), ("yi", B, None)],
                      {"c": c, "ci": np.array([-1, 0, 2, 1, 0, 1, -2, 3, 0], np.int64)}, opset=13)

    def feeds(batch):
        rng = rng_for(op, batch)
        return {"x": (np.round(rng.standard_normal((batch, 4, 9)) * 4) / 2).astype(np.float32)}
    check(path, feeds)


def test_logic(tmp_path):
    """And, Or, Xor, Not, Equal on bool values (from comparisons and a bool input), broadcasting."""
    nodes = [helper.make_node("Greater", ["x", "zero"], ["p"]), helper.make_node("Less", ["x", "half"], ["q"]),
             helper.make_node("And", ["p", "m"], ["y_and"]), helper.make_node("Or", ["q", "m"], ["y_or"]),
             helper.make_node("Xor", ["p", "q"], ["y_xor"]), helper.make_node("Not", ["p"], ["y_not"]),
             helper.make_node("Equal", ["q", "m"], ["y_eq"])]
    outs = ["y_and", "y_or", "y_xor", "y_not", "y_eq"]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 3, 5]), ("m", B, [5])], [(n, B, None) for n in outs],
                      {"zero": np.array(0.0, np.float32), "half": np.array(0.5, np.float32)}, opset=13)

    def feeds(batch):
        rng = rng_for("logic", batch)
        return {"x": rng.standard_normal((batch, 3, 5)).astype(np.float32), "m": rng.integers(0, 2, 5).astype(bool)}
    check(path, feeds)


def test_where_attention_mask(tmp_path):
    """The transformer pattern: scores [N, H, S, S], a causal bool mask [S, S] stored in the model, -inf elsewhere;
    then float/int64 branches with three-way broadcasting under a computed condition."""
    s = 17
    mask = np.tril(np.ones((s, s), bool))
    nodes = [helper.make_node("Where", ["mask", "x", "ninf"], ["y"]),
             helper.make_node("Greater", ["x", "zero"], ["cond"]),
             helper.make_node("Where", ["cond", "row", "x"], ["y2"]),
             helper.make_node("Cast", ["x"], ["xi"], to=I64),
             helper.make_node("Where", ["cond", "xi", "ints"], ["y3"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 2, s, s])], [("y", F, None), ("y2", F, None), ("y3", I64, None)],
                      {"mask": mask, "ninf": np.array(-np.inf, np.float32), "zero": np.array(0.0, np.float32),
                       "row": np.arange(s, dtype=np.float32), "ints": np.arange(s, dtype=np.int64).reshape(s, 1) - 5})
    check(path, lambda batch: {"x": (floats("N", 2, s, s, scale=3)(batch))})


def test_where_runtime_condition_broadcast(tmp_path):
    """Condition from a bool input of another shape, both branches runtime floats."""
    path = model_file(tmp_path, [helper.make_node("Where", ["c", "a", "b"], ["y"])],
                      [("c", B, [1, 4, 1]), ("a", F, ["N", 1, 6]), ("b", F, [4, 6])], [("y", F, None)])

    def feeds(batch):
        rng = rng_for("where", batch)
        return {"c": rng.integers(0, 2, (1, 4, 1)).astype(bool), "a": rng.standard_normal((batch, 1, 6)).astype(np.float32),
                "b": rng.standard_normal((4, 6)).astype(np.float32)}
    check(path, feeds, capture="a")


# --- Cast, CastLike -------------------------------------------------------------------

CAST_VALUES = np.array([0.0, -0.0, 1.7, -1.7, 2.5, -2.5, 127.9, 128.5, -129.2, 255.5, 256.0, 300.5, -300.5,
                        32767.0, 40000.0, -40000.0, 65535.9, 70000.0, 2.0e9, -2.0e9, 1e-30, 12345.678], np.float32)


@pytest.mark.parametrize("to", [TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8,
                                TensorProto.UINT8, TensorProto.UINT16, TensorProto.BOOL, TensorProto.FLOAT])
def test_cast_from_float(tmp_path, to):
    """float32 → each type: truncation, wrapping of the narrow integer types, != 0 for bool."""
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["y"], to=to)], [("x", F, ["N", 22])], [("y", to, None)])
    check(path, lambda batch: {"x": np.stack([CAST_VALUES * (1 if k % 2 == 0 else -1) for k in range(batch)])})


def test_cast_float_out_of_range_int32_and_int64(tmp_path):
    """Out of range and NaN: the processor's integer indefinite (onnxruntime on x86-64), wrapped to int8/int32."""
    v = np.array([[3e9, -3e9, 1e20, -1e20, np.nan, np.inf, -np.inf, 9.3e18, -9.3e18]], np.float32)
    nodes = [helper.make_node("Mul", ["x", "v"], ["m"])] + [
        helper.make_node("Cast", ["m"], [f"y{k}"], to=t) for k, t in enumerate([TensorProto.INT64, TensorProto.INT32,
                                                                               TensorProto.INT8])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 9])], [("y0", I64, None), ("y1", TensorProto.INT32, None),
                                                              ("y2", TensorProto.INT8, None)], {"v": v})
    check(path, specials(v))


@pytest.mark.parametrize("to", [TensorProto.UINT32, TensorProto.UINT64])
def test_cast_float_to_unsigned_wide(tmp_path, to):
    """float32 → uint32 / uint64 within the range where onnxruntime wraps (negative values wrap)."""
    x = np.array([[0.0, 1.7, -1.7, 300.5, -300.5, 3.0e9, 2.0e9, -2.0e9, 4.2e9]], np.float32)
    if to == TensorProto.UINT64:
        x = np.concatenate([x, [[1.5e19, -9.0e18]]], axis=1).astype(np.float32)
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["y"], to=to)], [("x", F, ["N", x.shape[1]])], [("y", to, None)])
    check(path, lambda batch: {"x": np.repeat(x, batch, 0)})


def test_cast_float_to_uint32_out_of_range_refused(tmp_path):
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT32, name="tou32")],
                      [("x", F, ["N", 2])], [("y", TensorProto.UINT32, None)])
    model = aonnx.load(path)
    with pytest.raises(ValueError, match=r"tou32.*outside the range of uint32"):
        model(np.array([[1.0, -3e9]], np.float32))
    with pytest.raises(ValueError, match=r"tou32.*outside the range of uint32"):
        model(np.array([[1.0, 5e9]], np.float32))


@pytest.mark.parametrize("to", [TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8,
                                TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.BOOL,
                                TensorProto.INT64])
def test_cast_from_int64(tmp_path, to):
    """int64 (run-time values and large constants) → each type: wrap to the width, rounding to float32."""
    big = np.array([2**40 + 5, -(2**40) - 3, 2**31, -(2**31) - 1, 70000, -70000, 2**53 + 1, 2**63 - 1, -2**63,
                    16777217, 255, 256], np.int64)
    nodes = [helper.make_node("Cast", ["x"], ["a"], to=I64), helper.make_node("Mul", ["a", "k"], ["p"]),
             helper.make_node("Add", ["p", "big"], ["s"]), helper.make_node("Cast", ["s"], ["y"], to=to)]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 12])], [("y", to, None)],
                      {"k": np.array(1000003, np.int64), "big": big})

    def feeds(batch):
        rng = rng_for("cast_int", batch)
        return {"x": rng.integers(-3000, 3000, (batch, 12)).astype(np.float32)}
    check(path, feeds)


def test_cast_from_bool_and_castlike(tmp_path):
    """bool → float32 / int64; CastLike to float32, int64 and bool targets."""
    nodes = [helper.make_node("Greater", ["x", "zero"], ["p"]),
             helper.make_node("Cast", ["p"], ["yf"], to=F), helper.make_node("Cast", ["p"], ["yi"], to=I64),
             helper.make_node("CastLike", ["x", "like_i"], ["li"]), helper.make_node("CastLike", ["li", "zero"], ["lf"]),
             helper.make_node("CastLike", ["x", "p"], ["lb"]), helper.make_node("CastLike", ["p", "like_i"], ["lpi"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 3, 7])],
                      [("yf", F, None), ("yi", I64, None), ("li", I64, None), ("lf", F, None), ("lb", B, None),
                       ("lpi", I64, None)],
                      {"zero": np.array(0.0, np.float32), "like_i": np.array([1], np.int64)},
                      opset=15)
    check(path, lambda batch: {"x": np.round(floats("N", 3, 7, scale=3)(batch))})


def test_cast_to_float16_refused(tmp_path):
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16, name="tohalf"),
                                 helper.make_node("Cast", ["h"], ["y"], to=F)], [("x", F, ["N", 4])], [("y", F, None)])
    with pytest.raises(ValueError, match=r"tohalf.*float16.*not supported"):
        aonnx.load(path)(np.ones((1, 4), np.float32))


# --- IsNaN, IsInf, unary functions --------------------------------------------------

@pytest.mark.parametrize("pos,neg", [(1, 1), (1, 0), (0, 1)])
def test_isnan_isinf(tmp_path, pos, neg):
    v = np.array([[np.nan, np.inf, -np.inf, 0.0, -1.0, 3e38, -np.nan]], np.float32)
    nodes = [helper.make_node("Mul", ["x", "v"], ["m"]), helper.make_node("IsNaN", ["m"], ["n"]),
             helper.make_node("IsInf", ["m"], ["i"], detect_positive=pos, detect_negative=neg)]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 7])], [("n", B, None), ("i", B, None)], {"v": v}, opset=20)
    check(path, specials(v))


UNARY = {  # op: (low, high) of the data, or None for standard normal · 3
    "Neg": None, "Abs": None, "Sign": None, "Floor": None, "Ceil": None, "Round": None,
    "Sqrt": (0.0, 50.0), "Reciprocal": (0.05, 20.0), "Exp": (-20.0, 20.0), "Log": (1e-3, 100.0), "Erf": None,
    "Sin": (-10.0, 10.0), "Cos": (-10.0, 10.0), "Tan": (-1.4, 1.4), "Asin": (-0.99, 0.99), "Acos": (-0.99, 0.99),
    "Atan": None, "Sinh": (-8.0, 8.0), "Cosh": (-8.0, 8.0), "Asinh": None, "Acosh": (1.01, 50.0),
    "Atanh": (-0.99, 0.99),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_float(tmp_path, op):
    """Each function on a tensor large enough to be split over workers (and with a vector tail)."""
    rng_range = UNARY[op]
    path = model_file(tmp_path, [helper.make_node(op, ["x"], ["y"])], [("x", F, ["N", 3, 101, 113])], [("y", F, None)], opset=13)

    def feeds(batch):
        if rng_range is None:
            x = floats("N", 3, 101, 113, scale=3, seed=op)(batch)
            if op in ("Round", "Floor", "Ceil", "Sign"):
                x.ravel()[:64] = np.arange(-16, 16, 0.5, dtype=np.float32)  # halfway cases and exact integers
            return {"x": x}
        return {"x": floats("N", 3, 101, 113, seed=op, low=rng_range[0], high=rng_range[1])(batch)}
    check(path, feeds)


def test_unary_special_values(tmp_path):
    """Signed zeros, NaN and infinities through Sign, Abs, Neg, Round, Floor, Sqrt, Exp, Log, Erf, Reciprocal."""
    v = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, -2.5, 2.5, -0.5, 0.5, 1.5, -3e-30, 89.0, -104.0]], np.float32)
    ops = ["Sign", "Abs", "Neg", "Round", "Floor", "Ceil", "Sqrt", "Exp", "Log", "Erf", "Reciprocal"]
    nodes = [helper.make_node("Mul", ["x", "v"], ["m"])] + [helper.make_node(op, ["m"], [f"y{k}"]) for k, op in enumerate(ops)]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 13])], [(f"y{k}", F, None) for k in range(len(ops))], {"v": v},
                      opset=13)
    model = check(path, specials(v))
    # Signs of zeros: Round(-0.5) and Neg(0) are -0, Sign(-0) and Abs(-0) are +0.
    x = specials(v)(1)["x"]
    ours = model(x)
    ref = ort_session(path).run(None, {"x": x})
    for k, op in enumerate(ops):
        zero = ref[k] == 0
        assert np.array_equal(np.signbit(ours[k][zero]), np.signbit(ref[k][zero])), f"{op}: signs of zeros differ"


def test_neg_abs_sign_int64(tmp_path):
    nodes = [helper.make_node("Cast", ["x"], ["a"], to=I64)] + [
        helper.make_node(op, ["a"], [f"y{k}"]) for k, op in enumerate(["Neg", "Abs", "Sign"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 40])], [(f"y{k}", I64, None) for k in range(3)], opset=13)

    def feeds(batch):
        return {"x": rng_for("nas", batch).integers(-1000, 1000, (batch, 40)).astype(np.float32)}
    check(path, feeds)


@pytest.mark.parametrize("bias,lambd", [(0.0, 0.5), (1.5, 1.0), (-0.5, 0.0)])
def test_shrink(tmp_path, bias, lambd):
    path = model_file(tmp_path, [helper.make_node("Shrink", ["x"], ["y"], bias=bias, lambd=lambd)],
                      [("x", F, ["N", 4, 37])], [("y", F, None)], opset=13)
    check(path, lambda batch: {"x": floats("N", 4, 37, scale=2, seed=1)(batch)})


def test_gelu_erf_pattern(tmp_path):
    """GELU as ViT exports write it: x · 0.5 · (1 + erf(x / √2))."""
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 197, 96])], [("y", F, None)],
                      {"sqrt2": np.array(1.4142135, np.float32), "one": np.array(1.0, np.float32),
                       "half": np.array(0.5, np.float32)})
    check(path, lambda batch: {"x": floats("N", 197, 96, scale=2)(batch)})


# --- BitShift ---------------------------------------------------------------------------

def test_bitshift_right(tmp_path):
    """uint64 / uint8 values (stored as int64) shifted right, shifts 0 … 7."""
    nodes = [helper.make_node("Cast", ["x"], ["u"], to=TensorProto.UINT64),
             helper.make_node("Cast", ["k"], ["s"], to=TensorProto.UINT64),
             helper.make_node("BitShift", ["u", "s"], ["r"], direction="RIGHT"),
             helper.make_node("Cast", ["x"], ["u8"], to=TensorProto.UINT8),
             helper.make_node("Cast", ["k"], ["s8"], to=TensorProto.UINT8),
             helper.make_node("BitShift", ["u8", "s8"], ["r8"], direction="RIGHT")]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 8])], [("r", TensorProto.UINT64, None), ("r8", TensorProto.UINT8, None)],
                      {"k": np.arange(8, dtype=np.int64)})
    check(path, lambda batch: {"x": rng_for("shift", batch).integers(0, 255, (batch, 8)).astype(np.float32)})


def test_bitshift_left_refused(tmp_path):
    nodes = [helper.make_node("Cast", ["x"], ["u"], to=TensorProto.UINT8),
             helper.make_node("Cast", ["k"], ["s"], to=TensorProto.UINT8),
             helper.make_node("BitShift", ["u", "s"], ["y"], direction="LEFT", name="shl")]
    path = model_file(tmp_path, nodes, [("x", F, ["N", 2])], [("y", TensorProto.UINT8, None)], {"k": np.ones(2, np.int64)})
    with pytest.raises(ValueError, match=r"shl.*LEFT shift is not supported"):
        aonnx.load(path)(np.ones((1, 2), np.float32))


# --- refusals -----------------------------------------------------------------------------

def test_mod_float_fmod0_before_opset28_refused(tmp_path):
    path = model_file(tmp_path, [helper.make_node("Mod", ["x", "c"], ["y"], name="fmod0")], [("x", F, ["N", 2])],
                      [("y", F, None)], {"c": np.ones(2, np.float32)})
    with pytest.raises(ValueError, match=r"fmod0.*fmod = 1 before opset 28"):
        aonnx.load(path)(np.ones((1, 2), np.float32))


def test_int64_function_refused(tmp_path):
    """Functions of floats (Sqrt, ...) are refused on integers, naming the node."""
    path = model_file(tmp_path, [helper.make_node("Cast", ["x"], ["a"], to=I64),
                                 helper.make_node("Sqrt", ["a"], ["y"], name="isqrt")],
                      [("x", F, ["N", 2])], [("y", I64, None)])
    with pytest.raises(ValueError, match=r"isqrt.*float32 only"):
        aonnx.load(path)(np.ones((1, 2), np.float32))


@pytest.mark.parametrize("op,low,high,bound", [("Exp", -87.0, 88.7, 1.5e-7), ("Erf", -5.0, 5.0, 2e-7),
                                               ("Erf", -1e-3, 1e-3, 2e-7)])
def test_exp_erf_accuracy(tmp_path, op, low, high, bound):
    """The vectorized Exp and Erf against double precision on a dense grid: maximum relative error below ``bound``
    (onnxruntime's own are about 8e-8)."""
    import math
    path = model_file(tmp_path, [helper.make_node(op, ["x"], ["y"])], [("x", F, ["N", 200003])], [("y", F, None)])
    x = np.linspace(low, high, 200003, dtype=np.float32)[None]
    ours = aonnx.load(path)(x).astype(np.float64)
    ref = np.exp(x.astype(np.float64)) if op == "Exp" else np.vectorize(math.erf)(x.astype(np.float64))
    nonzero = ref != 0
    worst = np.max(np.abs(ours - ref)[nonzero] / np.abs(ref[nonzero]))
    assert worst < bound, f"{op}: max relative error {worst:.3g}"
