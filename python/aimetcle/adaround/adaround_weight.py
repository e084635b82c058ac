"""AIMET's AdaRound for aimetcle models (``aimet_torch.adaround.adaround_weight``).

``Adaround.apply_adaround`` learns, layer by layer, whether each weight of a
Conv / ConvTranspose / Linear layer rounds up or down, so that the layer's
output on calibration data stays close to the float model's. It
returns a new model whose weights are the adarounded, dequantized values and
writes ``{path}/{filename_prefix}.encodings``; a QuantizationSimModel with the
same param bitwidth then loads them with ``set_and_freeze_param_encodings``.

The work runs in libaimetcle on its own copy of the model: the caller's model
is never changed, and a failure leaves no encodings file behind.
"""

import copy
import ctypes
import json
import logging
import os
import sys
import time
from ctypes import POINTER, c_char_p, c_int32, c_int64

import numpy as np

from .. import _lib
from .._model import _DTYPE_CODES, Handle, _input_array, _strings
from .._modeltree import handle_for
from ..defs import QuantScheme
from ..errors import AimetCancelled
from ..onnx import OnnxModel

__all__ = ["Adaround", "AdaroundParameters"]

_logger = logging.getLogger("aimetcle.adaround")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class AdaroundParameters:
    """The data and hyper-parameters of AdaRound.

    :param data_loader: any iterable of batches: a NumPy array (the model's
        input), a tuple/list ``(x, y, ...)`` (the first element is the input; a
        model with k inputs takes the first k elements, or a tuple/list given as
        the first element), or a dict keyed by input name
    :param num_batches: how many batches to use (the first ones); the loader
        must yield at least this many
    :param default_num_iterations: optimisation steps per layer; None: 10000,
        or 15000 when a weight bitwidth is below 8 (AIMET's default)
    :param default_reg_param: weight of the rounding loss
    :param default_beta_range: (start, end) of the annealed beta
    :param default_warm_start: fraction of the steps without rounding loss
    :param forward_fn: ``forward_fn(model, batch)`` calls ``model`` with the
        batch's inputs (AIMET's adapter for batches the model does not take
        as they are); the inputs it passes are what AdaRound caches
    """

    def __init__(self, data_loader, num_batches, default_num_iterations=None, default_reg_param=0.01,
                 default_beta_range=(20, 2), default_warm_start=0.2, forward_fn=None):
        if data_loader is None:
            raise ValueError("AdaRound needs a data_loader")
        if not _is_int(num_batches) or num_batches < 1:
            raise ValueError(f"num_batches must be a positive int, got {num_batches!r}")
        if default_num_iterations is not None and (not _is_int(default_num_iterations) or default_num_iterations < 1):
            raise ValueError(f"default_num_iterations must be a positive int or None, got {default_num_iterations!r}")
        try:
            start, end = (float(v) for v in default_beta_range)
        except (TypeError, ValueError):
            raise ValueError(f"default_beta_range must be two numbers, got {default_beta_range!r}") from None
        if forward_fn is not None and not callable(forward_fn):
            raise TypeError("forward_fn must be callable")
        self.data_loader = data_loader
        self.num_batches = int(num_batches)
        self.num_iterations = default_num_iterations
        self.reg_param = float(default_reg_param)
        self.beta_range = (start, end)
        self.warm_start = float(default_warm_start)
        self.forward_fn = forward_fn


class _InputRecorder:
    """Stands in for the model when a ``forward_fn`` is given: records the
    inputs it is called with and returns the float model's outputs."""

    def __init__(self, handle, input_names):
        self._handle = handle
        self._names = input_names
        self.calls = []

    def __call__(self, *inputs):
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            inputs = tuple(inputs[0][name] for name in self._names)
        arrays = _as_inputs(inputs, self._names)
        self.calls.append(arrays)
        outputs = [array for _, array in self._handle.run(dict(zip(self._names, arrays)))]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def eval(self):
        return self


def _as_inputs(values, names):
    if len(values) != len(names):
        raise ValueError(f"the model takes {len(names)} input(s) ({', '.join(names)}), a batch gave {len(values)}")
    return [_input_array(name, value) for name, value in zip(names, values)]


def _batch_inputs(batch, names):
    """The model inputs in one data-loader batch (see AdaroundParameters)."""
    if isinstance(batch, np.ndarray):
        return _as_inputs((batch,), names)
    if isinstance(batch, dict):
        missing = [n for n in names if n not in batch]
        if missing:
            raise ValueError(f"a batch dict lacks the model input(s) {missing}")
        return _as_inputs(tuple(batch[n] for n in names), names)
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("a batch is an empty tuple")
        if isinstance(batch[0], (tuple, list)):
            return _as_inputs(tuple(batch[0]), names)
        if len(batch) < len(names):
            raise ValueError(f"the model takes {len(names)} input(s), a batch holds {len(batch)}")
        return _as_inputs(tuple(batch[:len(names)]), names)
    raise TypeError(f"a data-loader batch must be a NumPy array, a tuple/list (x, y) or a dict, "
                    f"got {type(batch).__name__}")


def _collect(params, handle, names):
    """The first ``num_batches`` batches as lists of float32 arrays."""
    batches = []
    recorder = _InputRecorder(handle, names) if params.forward_fn is not None else None
    for batch in params.data_loader:
        if len(batches) == params.num_batches:
            break
        if recorder is None:
            batches.append(_batch_inputs(batch, names))
            continue
        recorder.calls.clear()
        params.forward_fn(recorder, batch)
        if len(recorder.calls) != 1:
            raise ValueError(f"forward_fn must call the model once per batch, it called it {len(recorder.calls)} "
                             f"times")
        batches.append(recorder.calls[0])
    if not batches:
        raise ValueError("AdaRound needs calibration data: the data loader is empty")
    if len(batches) < params.num_batches:
        raise ValueError(f"AdaRound needs num_batches = {params.num_batches} batches, but the data loader has only "
                         f"{len(batches)}")
    return batches


def _scheme_code(scheme):
    if isinstance(scheme, str):
        scheme = QuantScheme(scheme)
    if scheme == QuantScheme.post_training_tf:
        return _lib.AIMET_QUANT_SCHEME_TF
    if scheme == QuantScheme.post_training_tf_enhanced:
        return _lib.AIMET_QUANT_SCHEME_TF_ENHANCED
    raise ValueError(f"AdaRound supports QuantScheme.post_training_tf and post_training_tf_enhanced, got {scheme!r}")


def _layer_name(model, layer):
    """A layer given as a name, or as a module of ``model``, as the library's name for it."""
    if isinstance(layer, str):
        return layer
    for name, module in model.named_modules():
        if module is layer and name:
            return name
    raise ValueError(f"{type(layer).__name__} module {layer!r} is not a layer of the model")


class Adaround:
    """AIMET's ``Adaround`` (``apply_adaround`` is the entry point)."""

    @classmethod
    def apply_adaround(cls, model, dummy_input, params, path, filename_prefix, default_param_bw=4,
                       param_bw_override_list=None, ignore_quant_ops_list=None,
                       default_quant_scheme=QuantScheme.post_training_tf_enhanced, default_config_file=None,
                       *, per_channel=None, seed=0, position_samples=None, threads=0, progress=None):
        """Adarounds the weights of ``model`` and writes their encodings.

        :param model: an ``aimetcle.nn`` module tree or an ``aimetcle.onnx`` model
            (left unchanged)
        :param dummy_input: an input array (or tuple of arrays) to trace a module tree
        :param params: ``AdaroundParameters``
        :param path: an existing folder for ``{filename_prefix}.encodings``
        :param default_param_bw: weight bitwidth (2..16)
        :param param_bw_override_list: ``[(layer, bitwidth), ...]``; a layer is a
            module of the model or its name
        :param ignore_quant_ops_list: layers (modules or names) not to adaround
            (they keep float weights and get no encoding)
        :param default_quant_scheme: ``post_training_tf`` or ``post_training_tf_enhanced``
        :param default_config_file: an AIMET quantsim config JSON file (weight
            symmetry, per-channel); None: AIMET's classic default config
        :param per_channel: True / False: one weight encoding per output channel /
            per tensor; None: as the config says (per tensor by default)
        :param seed: seed of the mini-batch draws (same seed, same result)
        :param position_samples: optional estimator for convolutions: each step
            uses this many output positions drawn from all cached images
            instead of 32 whole images
        :param threads: worker threads (0: one per processor)
        :param progress: None or True (the default): progress on stderr — on a
            terminal one bar updated as each layer finishes (layers done, elapsed
            time, estimated time left), else a line per layer — and each layer
            logged at INFO on ``aimetcle.adaround``; False: silent; or a callable
            taking a dict per layer
        :returns: the adarounded model (a new module tree / OnnxModel)
        """
        if not isinstance(params, AdaroundParameters):
            raise TypeError(f"params must be an AdaroundParameters, got {type(params).__name__}")
        if not os.path.isdir(path):
            raise FileNotFoundError(f"encodings folder '{path}' does not exist")
        if not isinstance(filename_prefix, str) or not filename_prefix:
            raise ValueError("filename_prefix must be a non-empty string")
        if not _is_int(default_param_bw):
            raise TypeError(f"default_param_bw must be an int, got {default_param_bw!r}")
        options = _lib.aimet_adaround_options_t()
        lib = _lib.lib()
        lib.aimet_adaround_options_default(ctypes.byref(options))
        options.num_batches = params.num_batches
        options.iterations = params.num_iterations or 0
        options.reg_param = params.reg_param
        options.beta_start, options.beta_end = params.beta_range
        options.warm_start = params.warm_start
        options.param_bitwidth = int(default_param_bw)
        options.quant_scheme = _scheme_code(default_quant_scheme)
        options.per_channel = -1 if per_channel is None else int(bool(per_channel))
        if default_config_file is not None:
            with open(default_config_file, "rb") as f:
                options.config_json = f.read()
        ignore, options.num_ignore = _strings([_layer_name(model, m) for m in ignore_quant_ops_list or []])
        options.ignore = ctypes.cast(ignore, POINTER(c_char_p))
        overrides = list(param_bw_override_list or [])
        for entry in overrides:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2 or not _is_int(entry[1]):
                raise ValueError(f"param_bw_override_list entries must be (layer, bitwidth), got {entry!r}")
        names, options.num_overrides = _strings([_layer_name(model, m) for m, _ in overrides])
        bits = (c_int32 * max(1, len(overrides)))(*[int(b) for _, b in overrides])
        options.override_names = ctypes.cast(names, POINTER(c_char_p))
        options.override_bitwidths = ctypes.cast(bits, POINTER(c_int32))
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        options.seed = int(seed)
        if position_samples is not None and (not _is_int(position_samples) or position_samples < 1):
            raise ValueError(f"position_samples must be a positive int or None, got {position_samples!r}")
        options.position_samples = position_samples or 0
        options.threads = int(threads)

        failure = []
        shown = _Progress(sys.stderr) if progress is None or progress is True else None

        def report(user, layer, index, count, speed, mse_nearest, mse_adaround, kept_nearest):
            entry = {"layer": layer.decode(), "index": index, "count": count, "iterations_per_second": speed,
                     "mse_nearest": mse_nearest, "mse_adaround": mse_adaround, "kept_nearest": bool(kept_nearest)}
            try:
                if callable(progress):
                    progress(entry)
                elif shown is not None:
                    _logger.info(_progress_line(entry))
                    shown.layer_done(entry)
            except BaseException as error:  # cannot cross the C boundary: stop, re-raise below
                failure.append(error)
                return 1
            return 0

        callback = _lib.aimet_adaround_progress_fn(report)
        options.progress = callback

        source, desc = handle_for(model, dummy_input=dummy_input)
        work = None
        try:
            input_names = model.input_names if isinstance(model, OnnxModel) else [n for n, _ in desc.inputs]
            batches = _collect(params, source, input_names)
            if isinstance(model, OnnxModel):
                out = ctypes.c_void_p()
                lib.aimet_model_clone(source.pointer, ctypes.byref(out))
                work = Handle(out)
            else:
                work = source
            tensors, keep = _tensors(batches, input_names)
            target = os.path.join(path, f"{filename_prefix}.encodings")
            try:
                lib.aimet_model_adaround(work.pointer, tensors, len(batches), len(input_names),
                                         ctypes.byref(options), os.fsencode(target))
            except AimetCancelled:
                if failure:
                    raise failure[0] from None
                raise
            result = _adaround_report(work)
            if isinstance(model, OnnxModel):
                from .. import nn
                with nn._uninitialized():
                    adarounded = OnnxModel(work)
                work = None  # owned by the new model
                return adarounded
            adarounded = copy.deepcopy(model)
            for layer in result["layers"]:
                module_path, _, attribute = layer["weight"].rpartition(".")
                module = adarounded.get_submodule(module_path) if module_path else adarounded
                work.get_param(layer["weight"], out=getattr(module, attribute))
            return adarounded
        finally:
            if work is not None and work is not source:
                work.close()
            if not isinstance(model, OnnxModel):
                source.close()


class _Progress:
    """AdaRound's progress on a stream: a bar rewritten in place on a terminal, else a line per layer;
    the time left is the mean time per finished layer times the layers left."""

    def __init__(self, stream):
        self.stream = stream
        self.start = time.perf_counter()
        self.bar = hasattr(stream, "isatty") and stream.isatty()

    def layer_done(self, entry):
        done, count = entry["index"] + 1, entry["count"]
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (count - done)
        timing = f"{_duration(elapsed)} elapsed, about {_duration(left)} left" if done < count else \
            f"done in {_duration(elapsed)}"
        if self.bar:
            filled = int(30 * done / count)
            self.stream.write(f"\rAdaRound [{'#' * filled}{'.' * (30 - filled)}] {done}/{count} layers, {timing} "
                              f"({entry['layer'][-30:]})\x1b[K" + ("\n" if done == count else ""))
        else:
            self.stream.write(f"{_progress_line(entry)}; {timing}\n")
        self.stream.flush()


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _progress_line(entry):
    outcome = "kept nearest" if entry["kept_nearest"] else "adarounded"
    return (f"AdaRound layer {entry['index'] + 1}/{entry['count']} {entry['layer']}: "
            f"{entry['iterations_per_second']:.0f} it/s, MSE {entry['mse_nearest']:.6g} -> "
            f"{entry['mse_adaround']:.6g} ({outcome})")


def _tensors(batches, names):
    """aimet_tensor_t over the batches' arrays, batch-major; returns (tensors, keep-alive)."""
    tensors = (_lib.aimet_tensor_t * max(1, len(batches) * len(names)))()
    keep = []
    for b, arrays in enumerate(batches):
        for k, (name, array) in enumerate(zip(names, arrays)):
            shape = (c_int64 * max(1, array.ndim))(*array.shape)
            keep.append((shape, array))
            tensors[b * len(names) + k] = _lib.aimet_tensor_t(name.encode(), array.ctypes.data,
                                                               ctypes.cast(shape, POINTER(c_int64)), array.ndim,
                                                               _DTYPE_CODES[array.dtype])
    return tensors, keep


def _adaround_report(handle):
    """The library's report of the last AdaRound on ``handle`` (layers, encodings)."""
    return json.loads(handle._text(_lib.lib().aimet_model_adaround_report_json))
