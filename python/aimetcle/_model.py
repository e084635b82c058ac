"""An owning Python handle over ``aimet_model_t`` (see Include/aimetcle.h, "models")."""

import ctypes
import functools
import json
from ctypes import POINTER, c_char_p, c_float, c_int32, c_int64, c_void_p

import numpy as np

from . import _lib


def _strings(values):
    encoded = [v.encode() for v in values]
    return (c_char_p * max(1, len(encoded)))(*encoded), len(encoded)


@functools.lru_cache(maxsize=1024)
def _shape_array(shape):
    """``_int64s(shape)`` for a shape tuple, made once (read-only for C)."""
    return _int64s(shape)


def _int64s(values):
    values = [int(v) for v in values]
    return (c_int64 * max(1, len(values)))(*values), len(values)


class Handle:
    """Owns one library model. ``close()`` is idempotent; the handle is also
    released when garbage collected."""

    def __init__(self, pointer):
        self._ptr = pointer

    # -- lifetime ---------------------------------------------------------------

    @classmethod
    def create(cls):
        out = c_void_p()
        _lib.lib().aimet_model_create(ctypes.byref(out))
        return cls(out)

    @classmethod
    def load_onnx(cls, path):
        out = c_void_p()
        _lib.lib().aimet_model_load_onnx(_path(path), ctypes.byref(out))
        return cls(out)

    @classmethod
    def from_onnx_bytes(cls, data: bytes):
        out = c_void_p()
        _lib.lib().aimet_model_load_onnx_bytes(data, len(data), ctypes.byref(out))
        return cls(out)

    def close(self):
        if self._ptr is not None and self._ptr.value:
            _lib.lib().aimet_model_free(self._ptr)
        self._ptr = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    @property
    def pointer(self):
        if self._ptr is None:
            raise ValueError("the model handle is closed")
        return self._ptr

    def save_onnx(self, path):
        _lib.lib().aimet_model_save_onnx(self.pointer, _path(path))

    # -- building ---------------------------------------------------------------

    def add_input(self, name, shape):
        dims, n = _int64s(shape)
        _lib.lib().aimet_model_add_input(self.pointer, name.encode(), dims, n)

    def add_output(self, name):
        _lib.lib().aimet_model_add_output(self.pointer, name.encode())

    def add_node(self, op, name, inputs, outputs, attrs=None):
        ins, n_in = _strings(inputs)
        outs, n_out = _strings(outputs)
        _lib.lib().aimet_model_add_node(self.pointer, op.encode(), name.encode(), ins, n_in, outs, n_out)
        for key, value in (attrs or {}).items():
            self.set_attr(name, key, value)

    def set_attr(self, node, key, value):
        lib = _lib.lib()
        if isinstance(value, (bool, int, np.integer)):
            lib.aimet_model_set_attr_int(self.pointer, node.encode(), key.encode(), int(value))
        elif isinstance(value, (float, np.floating)):
            lib.aimet_model_set_attr_float(self.pointer, node.encode(), key.encode(), float(value))
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
            values, n = _int64s(value)
            lib.aimet_model_set_attr_ints(self.pointer, node.encode(), key.encode(), values, n)
        else:
            raise TypeError(f"node '{node}': attribute '{key}' = {value!r} is not an int, float or list of ints")

    # -- parameters -------------------------------------------------------------

    def set_param(self, name, array):
        # Called for every weight before each run of an ONNX model: the data goes as a
        # plain address and the shape from a cache (ctypes conversions cost microseconds).
        array = np.ascontiguousarray(array, dtype=np.float32)
        dims, n = _shape_array(array.shape)
        _lib.lib().aimet_model_set_param(self.pointer, name.encode(), array.ctypes.data, dims, n)

    def param_shape(self, name):
        ndim = c_int32()
        dims = (c_int64 * 16)()
        _lib.lib().aimet_model_param_shape(self.pointer, name.encode(), dims, 16, ctypes.byref(ndim))
        return tuple(dims[:ndim.value])

    def get_param(self, name, out=None):
        """The parameter's values: a new array, or written into ``out`` (float32,
        C-contiguous, same size) when given."""
        if out is None or out.dtype != np.float32 or not out.flags.c_contiguous or not out.flags.writeable:
            target = np.empty(self.param_shape(name), dtype=np.float32)
        else:
            target = out
        _lib.lib().aimet_model_get_param(self.pointer, name.encode(), target.ctypes.data_as(POINTER(c_float)),
                                         target.size)
        if out is not None and target is not out:
            out[...] = target.reshape(out.shape)
        return out if out is not None else target

    # -- transforms ---------------------------------------------------------------

    def equalize(self, flags=0, start_names=None, output_names=None):
        starts, n_starts = _strings(start_names or [])
        outs, n_outs = _strings(output_names or [])
        _lib.lib().aimet_model_equalize(self.pointer, flags, starts, n_starts, outs, n_outs)
        return self.report()

    def fold_batch_norms(self, pairs):
        """pairs: [(layer node name, bn node name, aimet_bn_position_t)]."""
        layers, n = _strings([p[0] for p in pairs])
        bns, _ = _strings([p[1] for p in pairs])
        positions = (c_int32 * max(1, n))(*[p[2] for p in pairs])
        _lib.lib().aimet_model_fold_batch_norms(self.pointer, layers, bns, positions, n)
        return self.report()

    def replace_relu6(self, names=None):
        if names is None:
            _lib.lib().aimet_model_replace_relu6(self.pointer, None, 0)
        else:
            array, n = _strings(names)
            _lib.lib().aimet_model_replace_relu6(self.pointer, array, n)
        return self.report()

    # -- running -------------------------------------------------------------------

    def run(self, inputs, capture=()):
        """Runs the model on ``inputs`` ({name: array}); returns [(name, array)]:
        the graph outputs, then the ``capture``d values (copies)."""
        return run_on(self.pointer, _lib.lib().aimet_model_run, inputs, capture)

    # -- reports ------------------------------------------------------------------

    def report(self):
        """The last transform's report, with each CLS set's factors as float32 arrays."""
        report = json.loads(self._text(_lib.lib().aimet_model_report_json))
        for index, entry in enumerate(report["cls_sets"]):
            entry["scales"] = [self._scales(index, pair) for pair in range(len(entry["layers"]) - 1)]
        return report

    def _scales(self, index, pair):
        count = c_int64()
        lib = _lib.lib()
        lib.aimet_model_report_scales(self.pointer, index, pair, None, 0, ctypes.byref(count))
        out = np.empty(count.value, dtype=np.float32)
        lib.aimet_model_report_scales(self.pointer, index, pair, out.ctypes.data_as(POINTER(c_float)), out.size,
                                      ctypes.byref(count))
        return out

    def describe(self):
        return json.loads(self._text(_lib.lib().aimet_model_describe_json))

    def _text(self, fn):
        length = c_int64()
        fn(self.pointer, None, 0, ctypes.byref(length))
        buffer = ctypes.create_string_buffer(length.value)
        fn(self.pointer, buffer, length.value, ctypes.byref(length))
        return buffer.value.decode()


def _path(path):
    import os
    return os.fsencode(os.fspath(path))


def run_on(pointer, fn, inputs, capture=()):
    """Calls a run function (model or quantsim) and collects its results."""
    arrays = {name: _input_array(name, value) for name, value in inputs.items()}
    keep = []
    tensors = (_lib.aimet_tensor_t * max(1, len(arrays)))()
    for k, (name, array) in enumerate(arrays.items()):
        shape = (c_int64 * max(1, array.ndim))(*array.shape)
        keep.append(shape)
        tensors[k] = _lib.aimet_tensor_t(name.encode(), array.ctypes.data, ctypes.cast(shape, POINTER(c_int64)),
                                         array.ndim, _DTYPE_CODES[array.dtype])
    names, n_capture = _strings(list(capture))
    results = c_void_p()
    fn(pointer, tensors, len(arrays), names, n_capture, ctypes.byref(results))
    try:
        lib = _lib.lib()
        count = c_int32()
        lib.aimet_results_count(results, ctypes.byref(count))
        out = []
        for index in range(count.value):
            name, shape, ndim = c_char_p(), POINTER(c_int64)(), c_int32()
            lib.aimet_results_get(results, index, ctypes.byref(name), None, ctypes.byref(shape), ctypes.byref(ndim))
            dtype, data = c_int32(), c_void_p()
            lib.aimet_results_get_data(results, index, ctypes.byref(dtype), ctypes.byref(data))
            dims = tuple(shape[k] for k in range(ndim.value))
            size = int(np.prod(dims)) if dims else 1
            np_type = _NUMPY_TYPES[dtype.value]
            if size:
                raw = ctypes.string_at(data.value, size * np.dtype(np_type).itemsize)
                values = np.frombuffer(raw, dtype=np_type).copy()
            else:
                values = np.empty(0, np_type)
            out.append((name.value.decode(), values.reshape(dims)))
        return out
    finally:
        _lib.lib().aimet_results_free(results)


_DTYPE_CODES = {np.dtype(np.float32): _lib.AIMET_DTYPE_FLOAT32, np.dtype(np.int64): _lib.AIMET_DTYPE_INT64,
                np.dtype(np.bool_): _lib.AIMET_DTYPE_BOOL}
_NUMPY_TYPES = {_lib.AIMET_DTYPE_FLOAT32: np.float32, _lib.AIMET_DTYPE_INT64: np.int64, _lib.AIMET_DTYPE_BOOL: np.bool_}


def _input_array(name, value):
    """A model input as the library takes it: float32 (other float types converted), int64 (other integer
    types widened) or bool, C-contiguous (``np.asarray(order="C")``: ``np.ascontiguousarray`` would make a
    0-d array, a scalar input such as Clip's ``min``, one of shape [1])."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"input '{name}' must be a NumPy array, got {type(value).__name__}")
    if value.dtype.kind in "iu":
        return np.asarray(value, dtype=np.int64, order="C")
    if value.dtype.kind == "b":
        return np.asarray(value, dtype=np.bool_, order="C")
    if value.dtype != np.float32:
        if value.dtype.kind != "f":
            raise TypeError(f"input '{name}' has dtype {value.dtype}; the model takes float32 (float16/float64 are "
                            f"converted), integer (as int64) or bool input")
        value = value.astype(np.float32)
    return np.asarray(value, order="C")
