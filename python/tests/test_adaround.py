"""AdaRound (issue 5): AIMET's documented flow on the bundled digits model from
Python — apply_adaround → QuantizationSimModel with the same param bitwidth →
set_and_freeze_param_encodings → compute_encodings → evaluate → export — the
rounding invariant, the encodings file, per-layer errors, options and bad input."""

import io
import json
import os
import sys

import numpy as np
import pytest

from aimetcle import models, nn
from aimetcle import onnx as aonnx
from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters
from aimetcle.batch_norm_fold import fold_all_batch_norms
from aimetcle.defs import QuantScheme
from aimetcle.quantsim import QuantizationSimModel

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")
DIGITS = np.load(os.path.join(DATA, "digits.npz"))
X_TEST, Y_TEST = DIGITS["x_test"], DIGITS["y_test"]
X_CALIB, Y_CALIB = DIGITS["x_calib"], DIGITS["y_calib"]
LOADER = [(X_CALIB[i:i + 32], Y_CALIB[i:i + 32]) for i in range(0, len(X_CALIB), 32)]  # 10 batches, as AIMET's


def digits(folded=False):
    model = models.digits_mbv2(weights=os.path.join(DATA, "digits_mbv2.npz")).eval()
    if folded:
        fold_all_batch_norms(model, input_shapes=(1, 1, 16, 16))
    return model


@pytest.fixture(scope="module")
def fp32():
    return digits()(X_TEST)


def pass_calibration_data(model, args):
    for images, _ in LOADER:
        model(images)


def simulate(model, encodings=None, param_bw=4, **kwargs):
    sim = QuantizationSimModel(model, dummy_input=X_TEST[:1], quant_scheme=QuantScheme.post_training_tf_enhanced,
                               default_param_bw=param_bw, default_output_bw=8, **kwargs)
    if encodings:
        sim.set_and_freeze_param_encodings(encoding_path=encodings)
    sim.compute_encodings(pass_calibration_data, forward_pass_callback_args=None)
    return sim


def evaluate(outputs, reference):
    return float((outputs.argmax(1) == Y_TEST).mean()), float(((outputs - reference) ** 2).mean())


def weights(model):
    return {name: np.array(value) for name, value in model.state_dict().items() if name.endswith(".weight")}


def fake_quantize(w, encoding):
    """AIMET's quantize-dequantize in float32, per entry."""
    scale, offset, bits = np.float32(encoding["scale"]), np.float32(encoding["offset"]), encoding["bitwidth"]
    q = np.clip(np.round(w / scale) - offset, 0, 2 ** bits - 1)
    return ((q + offset) * scale).astype(np.float32)


# -- the documented flow ------------------------------------------------------------------

def test_documented_example_end_to_end(tmp_path, fp32, capsys):
    """AIMET's example, names changed: BN folded first, 4-bit weights, 2000 iterations."""
    model = digits(folded=True)
    before = weights(model)
    params = AdaroundParameters(data_loader=LOADER, num_batches=10, default_num_iterations=2000,
                                default_reg_param=0.01, default_beta_range=(20, 2))
    ada_model = Adaround.apply_adaround(model, X_TEST[:1], params, path=str(tmp_path), filename_prefix="digits",
                                        default_param_bw=4, default_quant_scheme=QuantScheme.post_training_tf_enhanced,
                                        default_config_file=None)
    assert all(np.array_equal(before[k], v) for k, v in weights(model).items()), "the caller's model is unchanged"
    encodings = tmp_path / "digits.encodings"
    sim = simulate(ada_model, str(encodings))
    accuracy, error = evaluate(sim.model(X_TEST), fp32)
    nearest = evaluate(simulate(digits(folded=True)).model(X_TEST), fp32)
    with capsys.disabled():
        print(f"\n  digits W4A8 (BN folded, 2000 it): nearest {100 * nearest[0]:.2f}% (logit MSE {nearest[1]:.3f})"
              f"  AdaRound {100 * accuracy:.2f}% (logit MSE {error:.4f})")
    assert accuracy >= 0.99
    assert error <= 0.1 and error < nearest[1] / 10
    sim.export(path=str(tmp_path), filename_prefix="quantized_digits", dummy_input=X_TEST[:1])
    exported = json.loads((tmp_path / "quantized_digits.encodings").read_text())
    assert exported["param_encodings"] == json.loads(encodings.read_text())["param_encodings"], "frozen encodings kept"
    assert aonnx.load(str(tmp_path / "quantized_digits.onnx"))(X_TEST[:4]).shape == (4, 10)


def test_onnx_model_in_and_out(tmp_path, fp32):
    model = aonnx.load(os.path.join(DATA, "digits_mbv2.onnx"))
    original = model(X_TEST)
    params = AdaroundParameters(LOADER, num_batches=10, default_num_iterations=300)
    ada_model = Adaround.apply_adaround(model, X_TEST[:1], params, str(tmp_path), "onnx", default_param_bw=4)
    assert isinstance(ada_model, aonnx.OnnxModel) and ada_model is not model
    np.testing.assert_array_equal(model(X_TEST), original)
    accuracy, error = evaluate(simulate(ada_model, str(tmp_path / "onnx.encodings")).model(X_TEST), fp32)
    assert accuracy >= 0.98 and error < 0.5
    aonnx.save(ada_model, str(tmp_path / "ada.onnx"))
    reloaded = aonnx.load(str(tmp_path / "ada.onnx"))
    np.testing.assert_array_equal(reloaded(X_TEST[:8]), ada_model(X_TEST[:8]))


# -- rounding and encodings ----------------------------------------------------------------

@pytest.mark.parametrize("per_channel", [False, True])
def test_rounding_invariant_and_encodings_schema(tmp_path, per_channel):
    model = digits(folded=True)
    original = weights(model)
    params = AdaroundParameters(LOADER, num_batches=4, default_num_iterations=200)
    ada = Adaround.apply_adaround(model, X_TEST[:1], params, str(tmp_path), "inv", per_channel=per_channel)
    encodings = json.loads((tmp_path / "inv.encodings").read_text())
    assert list(encodings) == ["param_encodings"]
    param = encodings["param_encodings"]
    adarounded = weights(ada)
    assert sorted(param) == sorted(k for k in original if original[k].ndim in (2, 4))
    changed = 0
    for name, entries in param.items():
        w, w_ada = original[name], adarounded[name]
        assert len(entries) == (w.shape[0] if per_channel else 1)
        for k, e in enumerate(entries):
            assert set(e) == {"bitwidth", "dtype", "is_symmetric", "max", "min", "offset", "scale"}
            assert (e["bitwidth"], e["dtype"], e["is_symmetric"]) == (4, "int", "True")
            rows = slice(k, k + 1) if per_channel else slice(None)
            # Symmetric: offset -8; AIMET's default config is unsigned-symmetric, so a
            # channel without negative weights gets offset 0.
            lo = -8 if np.any(w[rows] < 0) else 0
            assert e["offset"] == lo
            assert e["min"] == pytest.approx(lo * e["scale"]) and e["max"] == pytest.approx((lo + 15) * e["scale"])
            scale = np.float32(e["scale"])
            grid = w_ada[rows] / scale
            assert np.all(np.abs(grid - np.round(grid)) < 1e-3), "on the grid"
            low = np.clip(np.floor(w[rows] / scale), lo, lo + 15)
            high = np.clip(np.floor(w[rows] / scale) + 1, lo, lo + 15)
            steps = np.round(grid)
            assert np.all((steps == low) | (steps == high)), "floor or ceil of W/scale, within the clamp"
            # Reloading the encodings reproduces the same quantized weights, bit for bit.
            np.testing.assert_array_equal(fake_quantize(w_ada[rows], e), w_ada[rows])
            changed += int(np.sum(steps != np.clip(np.round(w[rows] / scale), lo, lo + 15)))
    assert changed > 0, "some weights round the other way than nearest"


def test_frozen_encodings_reproduce_the_adarounded_weights(tmp_path):
    model = digits(folded=True)
    params = AdaroundParameters(LOADER, num_batches=2, default_num_iterations=100)
    ada = Adaround.apply_adaround(model, X_TEST[:1], params, str(tmp_path), "f")
    sim = simulate(ada, str(tmp_path / "f.encodings"))
    assert sim.encodings()["param_encodings"] == json.loads((tmp_path / "f.encodings").read_text())["param_encodings"]
    # Frozen: a second calibration keeps them.
    sim.compute_encodings(pass_calibration_data, None)
    assert sim.encodings()["param_encodings"] == json.loads((tmp_path / "f.encodings").read_text())["param_encodings"]


def test_every_layer_reports_no_worse_than_nearest(tmp_path):
    lines = []
    params = AdaroundParameters(LOADER, num_batches=10, default_num_iterations=300)
    Adaround.apply_adaround(digits(), X_TEST[:1], params, str(tmp_path), "p", progress=lines.append)
    assert [entry["index"] for entry in lines] == list(range(15)) and all(e["count"] == 15 for e in lines)
    for entry in lines:
        assert entry["mse_adaround"] <= entry["mse_nearest"], entry
        assert entry["kept_nearest"] or entry["mse_adaround"] < entry["mse_nearest"]
        assert entry["iterations_per_second"] > 0
    assert sum(not e["kept_nearest"] for e in lines) >= 12


def test_progress_is_shown_by_default_and_silenced_by_false(tmp_path, capsys):
    params = AdaroundParameters(LOADER, num_batches=1, default_num_iterations=20)
    Adaround.apply_adaround(digits(), X_TEST[:1], params, str(tmp_path), "a")
    lines = capsys.readouterr().err.splitlines()
    # Not a terminal: a line per layer, the time left, the last one the total.
    assert len(lines) == 15 and lines[0].startswith("AdaRound layer 1/15 ") and "left" in lines[0], lines[:2]
    assert "done in" in lines[-1]
    Adaround.apply_adaround(digits(), X_TEST[:1], params, str(tmp_path), "b", progress=False)
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_one_bar():
    from aimetcle.adaround.adaround_weight import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream = Terminal()
    bar = _Progress(stream)
    for i in range(3):
        bar.layer_done({"layer": f"features.{i}.conv", "index": i, "count": 3, "iterations_per_second": 1.0,
                        "mse_nearest": 2.0, "mse_adaround": 1.0, "kept_nearest": False})
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    assert "[##########....................] 1/3 layers" in text and "3/3 layers, done in" in text


def test_same_seed_same_result_other_seed_other_result(tmp_path):
    def run(seed, prefix):
        params = AdaroundParameters(LOADER, num_batches=3, default_num_iterations=150)
        ada = Adaround.apply_adaround(digits(folded=True), X_TEST[:1], params, str(tmp_path), prefix, seed=seed)
        return weights(ada), (tmp_path / f"{prefix}.encodings").read_bytes()

    a, ea = run(7, "a")
    b, eb = run(7, "b")
    c, _ = run(8, "c")
    assert ea == eb and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_ignore_and_bitwidth_overrides(tmp_path):
    model = digits(folded=True)
    first, last = model.features[0][0], model.classifier[1]
    params = AdaroundParameters(LOADER, num_batches=2, default_num_iterations=50)
    ada = Adaround.apply_adaround(model, X_TEST[:1], params, str(tmp_path), "o", default_param_bw=4,
                                  param_bw_override_list=[(last, 8), ("features.1.conv.2", 3)],
                                  ignore_quant_ops_list=[first])
    param = json.loads((tmp_path / "o.encodings").read_text())["param_encodings"]
    assert "features.0.0.weight" not in param and len(param) == 14
    np.testing.assert_array_equal(ada.features[0][0].weight, first.weight)
    assert param["classifier.1.weight"][0]["bitwidth"] == 8
    assert param["features.1.conv.2.weight"][0]["bitwidth"] == 3
    assert param["features.2.conv.2.weight"][0]["bitwidth"] == 4


def test_forward_fn_and_dict_batches(tmp_path):
    loader = [{"image": X_CALIB[i:i + 32], "label": Y_CALIB[i:i + 32]} for i in range(0, 96, 32)]
    calls = []

    def forward_fn(model, batch):
        calls.append(len(batch["image"]))
        return model(batch["image"])

    params = AdaroundParameters(loader, num_batches=3, default_num_iterations=20, forward_fn=forward_fn)
    Adaround.apply_adaround(digits(), X_TEST[:1], params, str(tmp_path), "fw")
    assert calls == [32, 32, 32]
    # A generator works as a loader; plain arrays are batches too.
    params = AdaroundParameters((X_CALIB[i:i + 16] for i in range(0, 64, 16)), num_batches=4,
                                default_num_iterations=20)
    Adaround.apply_adaround(digits(), X_TEST[:1], params, str(tmp_path), "gen")
    assert (tmp_path / "gen.encodings").exists()


# -- bad input ---------------------------------------------------------------------------

def test_bad_input_is_a_clear_error_and_nothing_is_written(tmp_path):
    model = digits()
    before = weights(model)
    few = AdaroundParameters(LOADER[:3], num_batches=4, default_num_iterations=5)
    ok = AdaroundParameters(LOADER, num_batches=2, default_num_iterations=5)
    path = str(tmp_path)
    with pytest.raises(ValueError, match="num_batches = 4 batches, but the data loader has only 3"):
        Adaround.apply_adaround(model, X_TEST[:1], few, path, "x")
    with pytest.raises(ValueError, match="data loader is empty"):
        Adaround.apply_adaround(model, X_TEST[:1], AdaroundParameters([], num_batches=1), path, "x")
    with pytest.raises(ValueError, match="num_batches"):
        AdaroundParameters(LOADER, num_batches=0)
    with pytest.raises(ValueError, match="default_num_iterations"):
        AdaroundParameters(LOADER, num_batches=1, default_num_iterations=0)
    for bits in (1, 17):
        with pytest.raises(ValueError, match="2...16"):
            Adaround.apply_adaround(model, X_TEST[:1], ok, path, "x", default_param_bw=bits)
    with pytest.raises(ValueError, match="bitwidth override"):
        Adaround.apply_adaround(model, X_TEST[:1], ok, path, "x", param_bw_override_list=[("features.0.0", 20)])
    with pytest.raises(KeyError, match="no_such_layer"):
        Adaround.apply_adaround(model, X_TEST[:1], ok, path, "x", ignore_quant_ops_list=["no_such_layer"])
    with pytest.raises(ValueError, match="not a layer of the model"):
        Adaround.apply_adaround(model, X_TEST[:1], ok, path, "x", ignore_quant_ops_list=[nn.Conv2d(1, 1, 1)])
    with pytest.raises(ValueError, match="post_training_tf"):
        Adaround.apply_adaround(model, X_TEST[:1], ok, path, "x",
                                default_quant_scheme=QuantScheme.post_training_percentile)
    with pytest.raises(FileNotFoundError):
        Adaround.apply_adaround(model, X_TEST[:1], ok, str(tmp_path / "missing"), "x")
    with pytest.raises(TypeError, match="data-loader batch"):
        Adaround.apply_adaround(model, X_TEST[:1], AdaroundParameters(["abc"], num_batches=1), path, "x")
    with pytest.raises(TypeError, match="NumPy array"):
        Adaround.apply_adaround(model, X_TEST[:1], AdaroundParameters([[1, 2]], num_batches=1), path, "x")
    nan = X_CALIB[:8].copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        Adaround.apply_adaround(model, X_TEST[:1], AdaroundParameters([nan], num_batches=1), path, "x")
    with pytest.raises(ValueError):
        Adaround.apply_adaround(model, X_TEST[:1], AdaroundParameters([X_CALIB[:4, :, :8]], num_batches=1), path, "x")

    def failing(entry):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        Adaround.apply_adaround(model, X_TEST[:1], ok, path, "x", progress=failing)
    assert not [f for f in os.listdir(path) if f.startswith("x.encodings")], "no encodings file after a failure"
    assert all(np.array_equal(before[k], v) for k, v in weights(model).items())


def test_the_documented_example_script_runs(tmp_path, capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    try:
        import adaround_example
    finally:
        sys.path.pop(0)
    accuracy = adaround_example.apply_adaround_example(iterations=100, path=str(tmp_path))
    assert accuracy >= 0.97
    assert {"digits.encodings", "quantized_digits.onnx", "quantized_digits.encodings"} <= set(os.listdir(tmp_path))
    assert "AdaRound layer 15/15" in capsys.readouterr().err, "progress=True shows a line per layer on stderr"


def test_linear_exported_as_matmul_plus_add(tmp_path):
    """A transformer block's Linear as PyTorch exports it, MatMul + Add of the bias, on [N, L, C] tokens:
    both layers are adarounded with the bias and the activation after the Add in the loss. fc1's bias of
    -5 sends almost every output below zero, where the Relu after the Add hides rounding errors: with bias
    and Relu in the loss, round-to-nearest's error is near 0 (without them, about 0.8)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    init = {"w1": (rng.standard_normal((16, 32)) * 0.3).astype(np.float32), "b1": np.full(32, -5.0, np.float32),
            "w2": (rng.standard_normal((32, 8)) * 0.3).astype(np.float32), "b2": np.full(8, -5.0, np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m1"], name="fc1"),
             helper.make_node("Add", ["m1", "b1"], ["a1"], name="fc1_bias"),
             helper.make_node("Relu", ["a1"], ["r1"], name="act"),
             helper.make_node("MatMul", ["r1", "w2"], ["m2"], name="fc2"),
             helper.make_node("Add", ["m2", "b2"], ["y"], name="fc2_bias")]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "block.onnx"))
    x = rng.standard_normal((8, 10, 16)).astype(np.float32)
    entries = []
    params = AdaroundParameters(data_loader=[x], num_batches=1, default_num_iterations=200)
    ada = Adaround.apply_adaround(aonnx.load(tmp_path / "block.onnx"), x[:1], params, str(tmp_path), "block",
                                  default_param_bw=4, progress=entries.append)
    assert [e["layer"] for e in entries] == ["fc1", "fc2"]
    assert entries[0]["mse_nearest"] < 0.05, f"fc1: bias and Relu are part of the loss ({entries[0]})"
    for e in entries:
        assert e["mse_adaround"] <= e["mse_nearest"]
    encodings = json.load(open(tmp_path / "block.encodings"))["param_encodings"]
    assert set(encodings) == {"w1", "w2"}
    w1 = ada.state_dict()["w1"]
    scale = encodings["w1"][0]["scale"]
    q = w1 / scale
    assert np.allclose(q, np.round(q), atol=1e-3), "adarounded weights sit on the quantization grid"
