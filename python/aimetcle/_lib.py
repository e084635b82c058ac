"""ctypes mirror of Include/aimetcle.h — one declaration per header symbol.

Each block: the C declaration as a comment, then argtypes/restype, then a
typed Python stub. A non-zero status raises through ``errcheck``: callers never
check integers by hand. The library is loaded on first use, so ``import
aimetcle`` works before the Swift library is built; the first call then says
how to build it.

Where the library comes from, first match wins:
  1. ``$AIMETCLE_LIB`` (a path to libaimetcle.so);
  2. ``libaimetcle.so`` next to this file (an installed package);
  3. the newest of ``.build/{release,debug}/libaimetcle.so`` in the source tree.
"""

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_float, c_int32, c_int64, c_uint32

from .errors import status_error

ABI_VERSION = 1  # == AIMET_ABI_VERSION

# aimet_status_t
AIMET_STATUS_OK = 0
AIMET_STATUS_INVALID_ARGUMENT = -1
AIMET_STATUS_NULL_POINTER = -2
AIMET_STATUS_SHAPE_MISMATCH = -3
AIMET_STATUS_NUMERIC = -4
AIMET_STATUS_UNSUPPORTED = -5
AIMET_STATUS_INTERNAL = -99

# aimet_layer_kind_t
AIMET_LAYER_CONV1D = 1
AIMET_LAYER_CONV2D = 2
AIMET_LAYER_CONV_TRANSPOSE1D = 3
AIMET_LAYER_CONV_TRANSPOSE2D = 4
AIMET_LAYER_LINEAR = 5

# aimet_bn_position_t
AIMET_BN_AFTER_LAYER = 0
AIMET_BN_BEFORE_LAYER = 1


class aimet_layer_t(ctypes.Structure):
    """typedef struct aimet_layer { ... } aimet_layer_t;"""
    _fields_ = [
        ("kind", c_int32),
        ("groups", c_int32),
        ("padded", c_int32),
        ("weight_ndim", c_int32),
        ("weight", POINTER(c_float)),
        ("weight_shape", POINTER(c_int64)),
        ("bias", POINTER(c_float)),
        ("bias_len", c_int64),
        ("name", c_char_p),
    ]


class aimet_batchnorm_t(ctypes.Structure):
    """typedef struct aimet_batchnorm { ... } aimet_batchnorm_t;"""
    _fields_ = [
        ("gamma", POINTER(c_float)),
        ("beta", POINTER(c_float)),
        ("running_mean", POINTER(c_float)),
        ("running_var", POINTER(c_float)),
        ("num_features", c_int64),
        ("eps", c_float),
        ("name", c_char_p),
    ]


# name -> (restype, argtypes, raises on non-zero status)
_DECLARATIONS = {
    # uint32_t aimet_abi_version(void);
    "aimet_abi_version": (c_uint32, [], False),
    # const char *aimet_status_string(aimet_status_t status);
    "aimet_status_string": (c_char_p, [c_int32], False),
    # const char *aimet_last_error(void);
    "aimet_last_error": (c_char_p, [], False),
    # aimet_status_t aimet_bn_fold_check(const aimet_layer_t *layer, const aimet_batchnorm_t *bn,
    #                                    int32_t position, int32_t *foldable);
    "aimet_bn_fold_check": (c_int32, [POINTER(aimet_layer_t), POINTER(aimet_batchnorm_t), c_int32,
                                      POINTER(c_int32)], True),
    # aimet_status_t aimet_bn_fold(aimet_layer_t *layer, const aimet_batchnorm_t *bn, int32_t position);
    "aimet_bn_fold": (c_int32, [POINTER(aimet_layer_t), POINTER(aimet_batchnorm_t), c_int32], True),
    # aimet_status_t aimet_cls_scale_set(aimet_layer_t *const *layers, int32_t count,
    #                                    float *scales, int64_t scales_len);
    "aimet_cls_scale_set": (c_int32, [POINTER(POINTER(aimet_layer_t)), c_int32, POINTER(c_float), c_int64],
                            True),
    # aimet_status_t aimet_hbf_fold_pair(aimet_layer_t *layer1, aimet_layer_t *layer2,
    #                                    const aimet_batchnorm_t *bn, const float *scale,
    #                                    int64_t scale_len, int32_t relu_between, int32_t *applied);
    "aimet_hbf_fold_pair": (c_int32, [POINTER(aimet_layer_t), POINTER(aimet_layer_t), POINTER(aimet_batchnorm_t),
                                      POINTER(c_float), c_int64, c_int32, POINTER(c_int32)], True),
}

_lock = threading.Lock()
_cdll = None


def library_path():
    """The path of the libaimetcle.so this package will load (see module doc)."""
    env = os.environ.get("AIMETCLE_LIB")
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"AIMETCLE_LIB={env!r} is not a file")
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = os.path.join(here, "libaimetcle.so")
    if os.path.isfile(bundled):
        return bundled
    root = os.path.dirname(os.path.dirname(here))
    built = [os.path.join(root, ".build", cfg, "libaimetcle.so") for cfg in ("release", "debug")]
    built = [p for p in built if os.path.isfile(p)]
    if not built:
        raise FileNotFoundError(
            "libaimetcle.so not found: build it with `swift build -c release` in the aimetcle "
            "source tree, or point AIMETCLE_LIB at it")
    return max(built, key=os.path.getmtime)


def _errcheck(status, func, args):
    if status != AIMET_STATUS_OK:
        raise status_error(status, _cdll.aimet_last_error().decode("utf-8", "replace"))
    return status


def lib():
    """The loaded, declared and version-checked library (loaded once)."""
    global _cdll
    if _cdll is None:
        with _lock:
            if _cdll is None:
                cdll = ctypes.CDLL(library_path())
                for name, (restype, argtypes, checked) in _DECLARATIONS.items():
                    fn = getattr(cdll, name)
                    fn.restype = restype
                    fn.argtypes = argtypes
                    if checked:
                        fn.errcheck = _errcheck
                version = cdll.aimet_abi_version()
                if version != ABI_VERSION:
                    raise ImportError(f"libaimetcle.so has ABI version {version}, this package needs "
                                      f"{ABI_VERSION}: rebuild the library or reinstall the package")
                _cdll = cdll
    return _cdll


# --- typed stubs -----------------------------------------------------------

def aimet_abi_version() -> int:
    return lib().aimet_abi_version()


def aimet_status_string(status: int) -> str:
    return lib().aimet_status_string(status).decode()


def aimet_last_error() -> str:
    return lib().aimet_last_error().decode("utf-8", "replace")


def aimet_bn_fold_check(layer: aimet_layer_t, bn: aimet_batchnorm_t, position: int) -> bool:
    foldable = c_int32(0)
    lib().aimet_bn_fold_check(ctypes.byref(layer), ctypes.byref(bn), position, ctypes.byref(foldable))
    return bool(foldable.value)


def aimet_bn_fold(layer: aimet_layer_t, bn: aimet_batchnorm_t, position: int) -> None:
    lib().aimet_bn_fold(ctypes.byref(layer), ctypes.byref(bn), position)


def aimet_cls_scale_set(layers, scales_out) -> None:
    """``layers``: aimet_layer_t structs; ``scales_out``: a float32 NumPy array of C or 2*C."""
    array = (POINTER(aimet_layer_t) * len(layers))(*[ctypes.pointer(layer) for layer in layers])
    lib().aimet_cls_scale_set(array, len(layers), scales_out.ctypes.data_as(POINTER(c_float)), scales_out.size)


def aimet_hbf_fold_pair(layer1: aimet_layer_t, layer2: aimet_layer_t, bn: aimet_batchnorm_t,
                        scale, relu_between: bool) -> bool:
    """``scale``: a float32 C-contiguous NumPy array. Returns whether the pair was folded."""
    applied = c_int32(0)
    lib().aimet_hbf_fold_pair(ctypes.byref(layer1), ctypes.byref(layer2), ctypes.byref(bn),
                              scale.ctypes.data_as(POINTER(c_float)), scale.size, int(bool(relu_between)),
                              ctypes.byref(applied))
    return bool(applied.value)
