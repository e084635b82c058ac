"""AIMET's QuantizationSimModel for aimetcle models (``aimet_torch.quantsim``).

The simulation runs in the library on a copy of the model taken at
construction: weights are quantized-dequantized with their encodings, op
outputs with activation encodings computed by ``compute_encodings``.
"""

import ctypes
import json
import os
import sys
import time
from ctypes import c_int64, c_void_p

import numpy as np

from . import _lib
from ._model import run_on
from ._modeltree import handle_for
from .defs import QuantScheme
from .onnx import OnnxModel

__all__ = ["QuantizationSimModel"]


class _SimulatedModel:
    """``sim.model``: call it like the model (``sim.model(x)``); it runs the simulation."""

    def __init__(self, sim):
        self._sim = sim

    def __call__(self, *inputs):
        return self._sim._run(inputs)

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def to(self, *args, **kwargs):
        return self


class QuantizationSimModel:
    """Simulates quantization of ``model`` on the CPU.

    :param model: an ``aimetcle.nn`` module tree or an ``aimetcle.onnx`` model
    :param dummy_input: an input array (or tuple of arrays) of the model, used
        to trace a module tree
    :param quant_scheme: ``QuantScheme.post_training_tf`` or ``post_training_tf_enhanced``
        (or their names)
    :param rounding_mode: ``'nearest'`` (as AIMET's default)
    :param default_output_bw: bitwidth of activations (4..16)
    :param default_param_bw: bitwidth of weights (2..16)
    :param in_place: accepted for AIMET compatibility; the simulation works on its own copy
    :param config_file: an AIMET quantsim config JSON file; None: AIMET's classic
        default config (per-tensor symmetric weights, asymmetric activations,
        biases not quantized, conv/gemm + relu quantized once)
    :param per_channel: True / False for per-channel / per-tensor weights; None:
        as the config says (per-tensor by default). AIMET 2.42 without a config
        file quantizes weights per channel; pass ``per_channel=True`` for that.
    """

    def __init__(self, model, dummy_input=None, quant_scheme=QuantScheme.post_training_tf_enhanced,
                 rounding_mode="nearest", default_output_bw=8, default_param_bw=8, in_place=False,
                 config_file=None, per_channel=None, default_data_type=None):
        if rounding_mode != "nearest":
            raise ValueError(f"rounding_mode {rounding_mode!r} is not supported: the simulation rounds to nearest "
                             f"(AdaRound is Adaround.apply_adaround)")
        if default_data_type not in (None, "int") and getattr(default_data_type, "name", None) != "int":
            raise ValueError("only integer quantization is supported")
        scheme = QuantScheme(quant_scheme) if isinstance(quant_scheme, str) else quant_scheme
        if not isinstance(scheme, QuantScheme):
            raise TypeError(f"quant_scheme must be a QuantScheme, got {quant_scheme!r}")
        for name, value in (("default_param_bw", default_param_bw), ("default_output_bw", default_output_bw)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {value!r}")
        config_text = None
        if config_file is not None:
            with open(config_file, "rb") as f:
                config_text = f.read()
        if dummy_input is None and not isinstance(model, OnnxModel):
            raise ValueError("dummy_input is needed to trace the model")
        # The library model: the float model to export, and the source of the simulation's copy.
        self._handle, desc = handle_for(model, dummy_input=dummy_input)
        self._input_names = model.input_names if isinstance(model, OnnxModel) else [n for n, _ in desc.inputs]
        options = _lib.aimet_quantsim_options_t(
            quant_scheme=scheme.library_code, param_bitwidth=int(default_param_bw),
            activation_bitwidth=int(default_output_bw),
            per_channel=-1 if per_channel is None else int(bool(per_channel)), config_json=config_text)
        self._sim = c_void_p()
        _lib.lib().aimet_quantsim_create(self._handle.pointer, ctypes.byref(options), ctypes.byref(self._sim))
        self.model = _SimulatedModel(self)
        self.quant_scheme = scheme

    def __del__(self):
        try:
            if getattr(self, "_sim", None) is not None and self._sim.value:
                _lib.lib().aimet_quantsim_free(self._sim)
                self._sim = None
        except Exception:  # interpreter shutdown
            pass

    # -- AIMET's API ------------------------------------------------------------------

    def compute_encodings(self, forward_pass_callback, forward_pass_callback_args=None, *, progress=True):
        """Calibrates the activation encodings: ``forward_pass_callback(sim.model,
        forward_pass_callback_args)`` runs the model on representative data,
        which the simulation observes; the encodings are then computed.

        A calibration that lasts more than 10 s reports on stderr every 10 s how many
        batches and samples it has observed, and when it is done; ``progress=False``
        silences it."""
        lib = _lib.lib()
        lib.aimet_quantsim_begin_calibration(self._sim)
        self._calibration = {"start": time.perf_counter(), "shown": None, "batches": 0, "samples": 0} \
            if progress else None
        try:
            forward_pass_callback(self.model, forward_pass_callback_args)
        finally:
            calibration, self._calibration = self._calibration, None
        lib.aimet_quantsim_end_calibration(self._sim)
        if calibration and calibration["shown"] is not None:
            self._report(calibration, "done: ")

    _calibration = None
    _REPORT_EVERY = 10.0

    @staticmethod
    def _report(calibration, prefix=""):
        elapsed = time.perf_counter() - calibration["start"]
        calibration["shown"] = elapsed
        sys.stderr.write(f"compute_encodings: {prefix}{calibration['batches']} batches ({calibration['samples']} "
                         f"samples) observed in {elapsed:.0f} s\n")
        sys.stderr.flush()

    def set_and_freeze_param_encodings(self, encoding_path):
        """Uses (and freezes) the param encodings of an AIMET encodings file, e.g.
        the one AdaRound wrote. A file for another model is refused."""
        if not os.path.isfile(encoding_path):
            raise FileNotFoundError(f"no such encodings file: '{encoding_path}'")
        _lib.lib().aimet_quantsim_load_param_encodings(self._sim, os.fsencode(encoding_path), 1)

    def export(self, path, filename_prefix, dummy_input=None, *args, **kwargs):
        """Writes ``{path}/{filename_prefix}.onnx`` (the float model) and
        ``{path}/{filename_prefix}.encodings`` (param and activation encodings,
        AIMET's JSON). Both are written atomically."""
        if not os.path.isdir(path):
            raise FileNotFoundError(f"export folder '{path}' does not exist")
        self._handle.save_onnx(os.path.join(path, f"{filename_prefix}.onnx"))
        _lib.lib().aimet_quantsim_save_encodings(self._sim, os.fsencode(os.path.join(path, f"{filename_prefix}.encodings")))

    # -- inspection --------------------------------------------------------------------

    def encodings(self):
        """The current encodings as AIMET's JSON structure (a dict)."""
        length = c_int64()
        lib = _lib.lib()
        lib.aimet_quantsim_encodings_json(self._sim, None, 0, ctypes.byref(length))
        buffer = ctypes.create_string_buffer(length.value)
        lib.aimet_quantsim_encodings_json(self._sim, buffer, length.value, ctypes.byref(length))
        return json.loads(buffer.value.decode())

    def _run(self, inputs):
        if not inputs:
            raise TypeError("sim.model() needs the model's input array(s)")
        if len(inputs) != len(self._input_names):
            raise ValueError(f"the model takes {len(self._input_names)} input(s), got {len(inputs)}")
        results = run_on(self._sim, _lib.lib().aimet_quantsim_run, dict(zip(self._input_names, inputs)))
        calibration = self._calibration
        if calibration is not None:
            calibration["batches"] += 1
            calibration["samples"] += int(np.shape(inputs[0])[0]) if np.ndim(inputs[0]) else 1
            since = time.perf_counter() - calibration["start"] - (calibration["shown"] or 0.0)
            if since >= self._REPORT_EVERY:
                self._report(calibration)
        outputs = [array for _, array in results]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
