"""Binding nn modules to the C structs of _lib: validation and write-back.

Arrays are passed to the library in place when they already are float32 and
C-contiguous (the usual case); otherwise a contiguous working copy goes in and
the result is copied back into the module's own array, so callers holding a
reference to ``conv.weight`` always see the update.
"""

import ctypes
from ctypes import POINTER, c_float, c_int64

import numpy as np

from . import _lib, nn

CONV_KINDS = {
    nn.Conv1d: _lib.AIMET_LAYER_CONV1D,
    nn.Conv2d: _lib.AIMET_LAYER_CONV2D,
    nn.ConvTranspose1d: _lib.AIMET_LAYER_CONV_TRANSPOSE1D,
    nn.ConvTranspose2d: _lib.AIMET_LAYER_CONV_TRANSPOSE2D,
}
WEIGHT_LAYER_TYPES = tuple(CONV_KINDS) + (nn.Linear,)
BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


def layer_kind(module):
    for cls, kind in CONV_KINDS.items():
        if isinstance(module, cls):
            return kind
    if isinstance(module, nn.Linear):
        return _lib.AIMET_LAYER_LINEAR
    return None


def expected_weight_shape(module):
    if isinstance(module, nn.Linear):
        return (module.out_features, module.in_features)
    k = tuple(module.kernel_size)
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
        return (module.in_channels, module.out_channels // module.groups) + k
    return (module.out_channels, module.in_channels // module.groups) + k


def is_padded(module):
    padding = getattr(module, "padding", 0)
    if isinstance(padding, str):
        return padding == "same" and any(k > 1 for k in module.kernel_size)
    return any(int(p) != 0 for p in np.atleast_1d(padding))


def checked_array(value, label, field, shape):
    """The module's array if usable by the library; a clear error otherwise."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{label}: {field} must be a float32 NumPy array, got {type(value).__name__}")
    if value.dtype != np.float32:
        raise TypeError(f"{label}: {field} has dtype {value.dtype}; the library works in place on float32 "
                        f"arrays: assign {field}.astype(np.float32)")
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{label}: {field} has shape {tuple(value.shape)}, the layer needs {tuple(shape)}")
    if not value.flags.writeable:
        raise ValueError(f"{label}: {field} is read-only; the library updates it in place")
    return value


class _Buffer:
    """A float32 array handed to C, and how to write the result back."""

    def __init__(self, array):
        self.target = array
        self.work = array if array.flags.c_contiguous else np.ascontiguousarray(array)

    @property
    def pointer(self):
        return self.work.ctypes.data_as(POINTER(c_float))

    def commit(self):
        if self.work is not self.target:
            self.target[...] = self.work


class BoundLayer:
    """An nn weight layer as an ``aimet_layer_t`` over its own arrays.

    ``with_bias=True`` supplies a zero bias buffer for a layer without one; it
    is attached to the module by ``commit()``, after the call succeeded.
    """

    def __init__(self, module, label, with_bias=False):
        kind = layer_kind(module)
        if kind is None:
            raise TypeError(f"{label} is a {type(module).__name__}; expected Conv1d, Conv2d, ConvTranspose1d, "
                            f"ConvTranspose2d or Linear")
        self.module = module
        self.label = label
        shape = expected_weight_shape(module)
        self.weight = _Buffer(checked_array(module.weight, label, "weight", shape))
        out_channels = module.out_features if kind == _lib.AIMET_LAYER_LINEAR else module.out_channels
        self.out_channels = out_channels
        self.new_bias = None
        if module.bias is not None:
            self.bias = _Buffer(checked_array(module.bias, label, "bias", (out_channels,)))
        elif with_bias:
            self.new_bias = np.zeros(out_channels, dtype=np.float32)
            self.bias = _Buffer(self.new_bias)
        else:
            self.bias = None
        self._shape = (c_int64 * len(shape))(*shape)
        self._name = label.encode()
        self.struct = _lib.aimet_layer_t(
            kind=kind,
            groups=int(getattr(module, "groups", 1)),
            padded=int(kind in (_lib.AIMET_LAYER_CONV1D, _lib.AIMET_LAYER_CONV2D) and is_padded(module)),
            weight_ndim=len(shape),
            weight=self.weight.pointer,
            weight_shape=ctypes.cast(self._shape, POINTER(c_int64)),
            bias=self.bias.pointer if self.bias else None,
            bias_len=self.bias.work.size if self.bias else 0,
            name=self._name,
        )

    def commit(self):
        self.weight.commit()
        if self.new_bias is not None:
            self.module.bias = self.new_bias
        elif self.bias is not None:
            self.bias.commit()


class BoundBatchNorm:
    """An nn BatchNorm as an ``aimet_batchnorm_t`` (read only)."""

    def __init__(self, module, label):
        if not isinstance(module, BATCHNORM_TYPES):
            raise TypeError(f"{label} is a {type(module).__name__}; expected BatchNorm1d or BatchNorm2d")
        n = module.num_features
        gamma = module.weight if module.weight is not None else np.ones(n, np.float32)
        beta = module.bias if module.bias is not None else np.zeros(n, np.float32)
        fields = {"weight": gamma, "bias": beta,
                  "running_mean": module.running_mean, "running_var": module.running_var}
        self.arrays = {}
        for field, value in fields.items():
            if value is None:
                raise ValueError(f"{label}: {field} is None; folding needs running statistics "
                                 f"(track_running_stats=True)")
            array = checked_array(value, label, field, (n,))
            self.arrays[field] = np.ascontiguousarray(array)
        self._name = label.encode()
        ptr = {k: v.ctypes.data_as(POINTER(c_float)) for k, v in self.arrays.items()}
        self.struct = _lib.aimet_batchnorm_t(
            gamma=ptr["weight"], beta=ptr["bias"], running_mean=ptr["running_mean"],
            running_var=ptr["running_var"], num_features=n, eps=float(module.eps), name=self._name)


class Snapshot:
    """Restores weights and biases of modules if a multi-step transform fails.

    Each library call is atomic; a Python API that makes several calls wraps
    them in ``with Snapshot(modules):`` so that it, too, completes or changes
    nothing.
    """

    def __init__(self, modules):
        self.saved = []
        seen = set()
        for module in modules:
            if id(module) in seen or layer_kind(module) is None:
                continue
            seen.add(id(module))
            self.saved.append((module, module.weight, _copy(module.weight), module.bias, _copy(module.bias)))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        for module, weight, weight_copy, bias, bias_copy in self.saved:
            module.weight = weight
            if isinstance(weight, np.ndarray) and weight_copy is not None:
                weight[...] = weight_copy
            module.bias = bias
            if isinstance(bias, np.ndarray) and bias_copy is not None:
                bias[...] = bias_copy
        return False


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else None


def module_names(model):
    """id(module) -> dotted name, for messages."""
    return {id(m): (name or type(m).__name__) for name, m in model.named_modules()}
