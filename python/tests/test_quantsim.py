"""QuantizationSimModel on the bundled digits model (issue 4): accuracy at W8A8 and
W4A8, AIMET's flow (compute_encodings, export, set_and_freeze_param_encodings),
the config file, and bad input."""

import json
import os

import numpy as np
import pytest

import aimetcle
from aimetcle import models, nn
from aimetcle import onnx as aonnx
from aimetcle.defs import QuantScheme
from aimetcle.quantsim import QuantizationSimModel

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")
DIGITS = np.load(os.path.join(DATA, "digits.npz"))
X_TEST, Y_TEST, X_CALIB = DIGITS["x_test"], DIGITS["y_test"], DIGITS["x_calib"]


def digits():
    return models.digits_mbv2(weights=os.path.join(DATA, "digits_mbv2.npz")).eval()


def calibrate(model, data):
    for start in range(0, len(data), 32):
        model(data[start:start + 32])


def evaluate(outputs, reference):
    return float((outputs.argmax(1) == Y_TEST).mean()), float(((outputs - reference) ** 2).mean())


@pytest.fixture(scope="module")
def fp32():
    return digits()(X_TEST)


def simulate(model, param_bw, **kwargs):
    sim = QuantizationSimModel(model, dummy_input=X_TEST[:1], default_param_bw=param_bw, default_output_bw=8,
                               **kwargs)
    sim.compute_encodings(calibrate, X_CALIB)
    return sim


def test_accuracy_table_fp32_w8a8_w4a8(fp32, capsys):
    accuracy_fp32, _ = evaluate(fp32, fp32)
    w8 = evaluate(simulate(digits(), 8).model(X_TEST), fp32)
    w4 = evaluate(simulate(digits(), 4).model(X_TEST), fp32)
    with capsys.disabled():
        print(f"\n  digits test split: FP32 {100 * accuracy_fp32:.2f}%  W8A8 {100 * w8[0]:.2f}% (logit MSE {w8[1]:.4f})"
              f"  W4A8 nearest {100 * w4[0]:.2f}% (logit MSE {w4[1]:.3f})")
    assert accuracy_fp32 == pytest.approx(299 / 300)
    assert accuracy_fp32 - w8[0] <= 0.01, "W8A8 within 1 point of FP32"
    assert w8[1] < 0.05
    assert 0.95 <= w4[0] <= 0.99 and 0.5 < w4[1] < 2.5, "4-bit nearest rounding hurts, as with AIMET (97.0-97.7%)"


def test_onnx_model_simulates_like_the_module_tree(fp32):
    tree = simulate(digits(), 8, quant_scheme=QuantScheme.post_training_tf)
    onnx_sim = QuantizationSimModel(aonnx.load(os.path.join(DATA, "digits_mbv2.onnx")), dummy_input=X_TEST[:1],
                                    quant_scheme="post_training_tf")
    onnx_sim.compute_encodings(calibrate, X_CALIB)
    a, b = tree.model(X_TEST[:64]), onnx_sim.model(X_TEST[:64])
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max(), "same quantizers on the same weights"
    assert (a.argmax(1) == b.argmax(1)).mean() > 0.98


def test_quantizer_placement_follows_the_default_config():
    model = digits()
    aimetcle.batch_norm_fold.fold_all_batch_norms(model, (1, 1, 16, 16))  # the recommended flow
    sim = simulate(model, 8)
    enc = sim.encodings()
    assert enc["version"] == "0.6.1"
    params, activations = enc["param_encodings"], enc["activation_encodings"]
    assert "features.0.0.weight" in params and "classifier.1.weight" in params
    assert not any(name.endswith(".bias") for name in params), "biases are not quantized"
    assert all(e[0]["is_symmetric"] == "True" and len(e) == 1 for e in params.values()), "per-tensor symmetric weights"
    assert "input" in activations, "model input quantized"
    assert "features.0.0" not in activations and "features.0.2" in activations, "Conv+ReLU6 quantized once, after"
    assert "flatten" not in activations, "data movement is not quantized"
    # With the BNs kept, AIMET simulates them as folded: no quantizer between a conv and its BN,
    # Conv → BN → ReLU6 quantized once after the ReLU6, Conv → BN (projection) after the BN.
    unfolded = simulate(digits(), 8).encodings()["activation_encodings"]
    assert "features.0.0" not in unfolded and "features.0.1" not in unfolded and "features.0.2" in unfolded
    assert "features.1.conv.2" not in unfolded and "features.1.conv.3" in unfolded
    assert len(unfolded) == len(activations), "the same quantizers as on the folded model"
    assert all(e[0]["is_symmetric"] == "False" and e[0]["bitwidth"] == 8 for e in activations.values())


def test_per_channel_and_config_file(tmp_path):
    per_channel = simulate(digits(), 4, per_channel=True).encodings()["param_encodings"]
    assert len(per_channel["features.0.0.weight"]) == 16
    config = {
        "defaults": {"ops": {"is_output_quantized": "True"}, "params": {"is_quantized": "True", "is_symmetric": "False"},
                     "per_channel_quantization": "True"},
        "params": {"bias": {"is_quantized": "False"}},
        "op_type": {"Gemm": {"per_channel_quantization": "False"}},
        "supergroups": [{"op_list": ["Conv", "Clip"]}],
        "model_input": {"is_input_quantized": "False"},
        "model_output": {},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    enc = simulate(digits(), 8, config_file=str(path)).encodings()
    assert len(enc["param_encodings"]["features.1.conv.0.0.weight"]) == 96
    assert len(enc["param_encodings"]["classifier.1.weight"]) == 1
    assert enc["param_encodings"]["features.0.0.weight"][0]["is_symmetric"] == "False"
    assert "input" not in enc["activation_encodings"]
    path.write_text('{"defaults": {"ops": {"is_output_quantized": "maybe"}}}')
    with pytest.raises(ValueError, match="is_output_quantized"):
        QuantizationSimModel(digits(), dummy_input=X_TEST[:1], config_file=str(path))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="quantsim config"):
        QuantizationSimModel(digits(), dummy_input=X_TEST[:1], config_file=str(path))


def test_export_and_frozen_encodings_reproduce_the_simulation(tmp_path, fp32):
    sim = simulate(digits(), 4)
    expected = sim.model(X_TEST)
    sim.export(str(tmp_path), "digits_w4", dummy_input=X_TEST[:1])
    assert sorted(os.listdir(tmp_path)) == ["digits_w4.encodings", "digits_w4.onnx"]
    exported = json.loads((tmp_path / "digits_w4.encodings").read_text())
    assert exported["param_encodings"]["features.0.0.weight"][0]["bitwidth"] == 4
    # AIMET's flow: a new sim with the same param bitwidth, frozen param encodings, calibrated activations.
    frozen = QuantizationSimModel(digits(), dummy_input=X_TEST[:1], default_param_bw=8)
    frozen.set_and_freeze_param_encodings(str(tmp_path / "digits_w4.encodings"))
    frozen.compute_encodings(calibrate, X_CALIB)
    assert frozen.encodings()["param_encodings"] == exported["param_encodings"], "bit-exact reload"
    np.testing.assert_allclose(frozen.model(X_TEST), expected, rtol=0, atol=1e-5)
    reloaded = aonnx.load(tmp_path / "digits_w4.onnx")
    np.testing.assert_allclose(reloaded(X_TEST[:8]), fp32[:8], rtol=1e-5, atol=1e-5)


def test_bad_use_is_a_clear_error(tmp_path):
    sim = QuantizationSimModel(digits(), dummy_input=X_TEST[:1])
    with pytest.raises(ValueError, match="compute_encodings"):
        sim.model(X_TEST[:2])
    with pytest.raises(ValueError, match="bitwidth 1 is out of range"):
        QuantizationSimModel(digits(), dummy_input=X_TEST[:1], default_param_bw=1)
    with pytest.raises(ValueError, match="bitwidth 2 is out of range"):
        QuantizationSimModel(digits(), dummy_input=X_TEST[:1], default_output_bw=2)
    with pytest.raises(NotImplementedError):
        QuantizationSimModel(digits(), dummy_input=X_TEST[:1], quant_scheme=QuantScheme.post_training_percentile)
    other = tmp_path / "other.encodings"
    other.write_text(json.dumps({"param_encodings": {"conv9.weight": [
        {"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "max": 1.0, "min": -1.0078740119934082,
         "offset": -128, "scale": 0.007874015718698502}]}}))
    with pytest.raises(KeyError, match="another model"):
        sim.set_and_freeze_param_encodings(str(other))
    with pytest.raises(FileNotFoundError):
        sim.set_and_freeze_param_encodings(str(tmp_path / "missing.encodings"))
    sim.compute_encodings(calibrate, X_CALIB[:32])
    with pytest.raises(ValueError, match="input"):
        sim.model(X_TEST[:2, :, :8, :8].copy() * np.nan)
    assert sim.model(X_TEST[:2]).shape == (2, 10), "still usable after an error"
    with pytest.raises(ValueError, match="no calibration data"):
        QuantizationSimModel(digits(), dummy_input=X_TEST[:1]).compute_encodings(lambda model, args: None)


def test_a_long_calibration_reports_progress_on_stderr(capsys, monkeypatch):
    x = X_CALIB
    sim = QuantizationSimModel(digits(), dummy_input=x[:1])
    sim.compute_encodings(lambda m, _: [m(x[i:i + 32]) for i in range(0, 96, 32)], None)
    assert capsys.readouterr().err == "", "a short calibration says nothing"
    monkeypatch.setattr(QuantizationSimModel, "_REPORT_EVERY", 0.0)  # as if every batch took 10 s
    sim.compute_encodings(lambda m, _: [m(x[i:i + 32]) for i in range(0, 96, 32)], None)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("compute_encodings: 1 batches (32 samples) observed in "), lines
    assert len(lines) == 4 and lines[-1].startswith("compute_encodings: done: 3 batches (96 samples) observed in ")
    sim.compute_encodings(lambda m, _: [m(x[:32])], None, progress=False)
    assert capsys.readouterr().err == ""
