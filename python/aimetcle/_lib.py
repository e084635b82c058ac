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
from ctypes import POINTER, c_char_p, c_float, c_int32, c_int64, c_uint32, c_void_p

from .errors import status_error

ABI_VERSION = 2  # == AIMET_ABI_VERSION

# aimet_status_t
AIMET_STATUS_OK = 0
AIMET_STATUS_INVALID_ARGUMENT = -1
AIMET_STATUS_NULL_POINTER = -2
AIMET_STATUS_SHAPE_MISMATCH = -3
AIMET_STATUS_NUMERIC = -4
AIMET_STATUS_UNSUPPORTED = -5
AIMET_STATUS_IO = -6
AIMET_STATUS_FORMAT = -7
AIMET_STATUS_FILE_NOT_FOUND = -8
AIMET_STATUS_UNKNOWN_NAME = -9
AIMET_STATUS_INVALID_HANDLE = -10
AIMET_STATUS_BUSY = -11
AIMET_STATUS_CANCELLED = -12
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

# aimet_quant_scheme_t
AIMET_QUANT_SCHEME_TF = 1
AIMET_QUANT_SCHEME_TF_ENHANCED = 2

# aimet_equalize_flags_t
AIMET_EQUALIZE_DEFAULT = 0
AIMET_EQUALIZE_KEEP_RELU6 = 1
AIMET_EQUALIZE_NO_BN_FOLD = 2
AIMET_EQUALIZE_NO_SCALE = 4
AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD = 8


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


# typedef enum aimet_dtype { ... } aimet_dtype_t;
AIMET_DTYPE_FLOAT32 = 0
AIMET_DTYPE_INT64 = 1
AIMET_DTYPE_BOOL = 2


class aimet_tensor_t(ctypes.Structure):
    """typedef struct aimet_tensor { ... } aimet_tensor_t;"""
    _fields_ = [
        ("name", c_char_p),
        ("data", c_void_p),
        ("shape", POINTER(c_int64)),
        ("ndim", c_int32),
        ("dtype", c_int32),
    ]


class aimet_quantsim_options_t(ctypes.Structure):
    """typedef struct aimet_quantsim_options { ... } aimet_quantsim_options_t;"""
    _fields_ = [
        ("quant_scheme", c_int32),
        ("param_bitwidth", c_int32),
        ("activation_bitwidth", c_int32),
        ("per_channel", c_int32),
        ("config_json", c_char_p),
    ]


# typedef int32_t (*aimet_adaround_progress_fn)(void *user, const char *layer, int32_t index, int32_t count,
#     double iterations_per_second, double mse_nearest, double mse_adaround, int32_t kept_nearest);
aimet_adaround_progress_fn = ctypes.CFUNCTYPE(c_int32, c_void_p, c_char_p, c_int32, c_int32, ctypes.c_double,
                                              ctypes.c_double, ctypes.c_double, c_int32)


class aimet_adaround_options_t(ctypes.Structure):
    """typedef struct aimet_adaround_options { ... } aimet_adaround_options_t;"""
    _fields_ = [
        ("num_batches", c_int32),
        ("iterations", c_int32),
        ("reg_param", c_float),
        ("beta_start", c_float),
        ("beta_end", c_float),
        ("warm_start", c_float),
        ("param_bitwidth", c_int32),
        ("quant_scheme", c_int32),
        ("per_channel", c_int32),
        ("config_json", c_char_p),
        ("ignore", POINTER(c_char_p)),
        ("num_ignore", c_int32),
        ("override_names", POINTER(c_char_p)),
        ("override_bitwidths", POINTER(c_int32)),
        ("num_overrides", c_int32),
        ("batch_size", c_int32),
        ("position_samples", c_int32),
        ("seed", ctypes.c_uint64),
        ("threads", c_int32),
        ("progress", aimet_adaround_progress_fn),
        ("progress_user", c_void_p),
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

    # --- models (opaque handles: c_void_p) ---
    # aimet_status_t aimet_model_load_onnx(const char *path, aimet_model_t **out);
    "aimet_model_load_onnx": (c_int32, [c_char_p, POINTER(c_void_p)], True),
    # aimet_status_t aimet_model_load_onnx_bytes(const void *data, int64_t size, aimet_model_t **out);
    "aimet_model_load_onnx_bytes": (c_int32, [c_void_p, c_int64, POINTER(c_void_p)], True),
    # aimet_status_t aimet_model_save_onnx(aimet_model_t *model, const char *path);
    "aimet_model_save_onnx": (c_int32, [c_void_p, c_char_p], True),
    # aimet_status_t aimet_model_create(aimet_model_t **out);
    "aimet_model_create": (c_int32, [POINTER(c_void_p)], True),
    # aimet_status_t aimet_model_free(aimet_model_t *model);
    "aimet_model_free": (c_int32, [c_void_p], True),
    # aimet_status_t aimet_model_add_input(aimet_model_t *model, const char *name, const int64_t *shape, int32_t ndim);
    "aimet_model_add_input": (c_int32, [c_void_p, c_char_p, POINTER(c_int64), c_int32], True),
    # aimet_status_t aimet_model_add_output(aimet_model_t *model, const char *name);
    "aimet_model_add_output": (c_int32, [c_void_p, c_char_p], True),
    # aimet_status_t aimet_model_add_node(aimet_model_t *model, const char *op_type, const char *name,
    #     const char *const *inputs, int32_t num_inputs, const char *const *outputs, int32_t num_outputs);
    "aimet_model_add_node": (c_int32, [c_void_p, c_char_p, c_char_p, POINTER(c_char_p), c_int32,
                                       POINTER(c_char_p), c_int32], True),
    # aimet_status_t aimet_model_set_attr_int(aimet_model_t *model, const char *node, const char *attr, int64_t value);
    "aimet_model_set_attr_int": (c_int32, [c_void_p, c_char_p, c_char_p, c_int64], True),
    # aimet_status_t aimet_model_set_attr_ints(aimet_model_t *model, const char *node, const char *attr,
    #     const int64_t *values, int32_t count);
    "aimet_model_set_attr_ints": (c_int32, [c_void_p, c_char_p, c_char_p, POINTER(c_int64), c_int32], True),
    # aimet_status_t aimet_model_set_attr_float(aimet_model_t *model, const char *node, const char *attr, float value);
    "aimet_model_set_attr_float": (c_int32, [c_void_p, c_char_p, c_char_p, c_float], True),
    # aimet_status_t aimet_model_set_param(aimet_model_t *model, const char *name, const float *data,
    #     const int64_t *shape, int32_t ndim);
    # (data as an address: set_param passes ndarray.ctypes.data)
    "aimet_model_set_param": (c_int32, [c_void_p, c_char_p, c_void_p, POINTER(c_int64), c_int32], True),
    # aimet_status_t aimet_model_param_shape(aimet_model_t *model, const char *name, int64_t *shape,
    #     int32_t capacity, int32_t *ndim);
    "aimet_model_param_shape": (c_int32, [c_void_p, c_char_p, POINTER(c_int64), c_int32, POINTER(c_int32)], True),
    # aimet_status_t aimet_model_get_param(aimet_model_t *model, const char *name, float *data, int64_t count);
    "aimet_model_get_param": (c_int32, [c_void_p, c_char_p, POINTER(c_float), c_int64], True),
    # aimet_status_t aimet_model_equalize(aimet_model_t *model, int32_t flags, const char *const *start_names,
    #     int32_t num_starts, const char *const *output_names, int32_t num_outputs);
    "aimet_model_equalize": (c_int32, [c_void_p, c_int32, POINTER(c_char_p), c_int32, POINTER(c_char_p), c_int32],
                             True),
    # aimet_status_t aimet_model_fold_batch_norms(aimet_model_t *model, const char *const *layers,
    #     const char *const *batchnorms, const int32_t *positions, int32_t count);
    "aimet_model_fold_batch_norms": (c_int32, [c_void_p, POINTER(c_char_p), POINTER(c_char_p), POINTER(c_int32),
                                               c_int32], True),
    # aimet_status_t aimet_model_replace_relu6(aimet_model_t *model, const char *const *names, int32_t count);
    "aimet_model_replace_relu6": (c_int32, [c_void_p, POINTER(c_char_p), c_int32], True),
    # aimet_status_t aimet_model_report_counts(aimet_model_t *model, int32_t *folded, int32_t *relu6_replaced,
    #     int32_t *cls_sets, int32_t *high_bias_folded);
    "aimet_model_report_counts": (c_int32, [c_void_p, POINTER(c_int32), POINTER(c_int32), POINTER(c_int32),
                                            POINTER(c_int32)], True),
    # aimet_status_t aimet_model_report_scales(aimet_model_t *model, int32_t set, int32_t pair, float *scales,
    #     int64_t capacity, int64_t *count);
    "aimet_model_report_scales": (c_int32, [c_void_p, c_int32, c_int32, POINTER(c_float), c_int64, POINTER(c_int64)],
                                  True),
    # aimet_status_t aimet_model_report_json(aimet_model_t *model, char *buffer, int64_t capacity, int64_t *length);
    "aimet_model_report_json": (c_int32, [c_void_p, c_char_p, c_int64, POINTER(c_int64)], True),
    # aimet_status_t aimet_model_describe_json(aimet_model_t *model, char *buffer, int64_t capacity, int64_t *length);
    "aimet_model_describe_json": (c_int32, [c_void_p, c_char_p, c_int64, POINTER(c_int64)], True),

    # --- running ---
    # aimet_status_t aimet_model_run(aimet_model_t *model, const aimet_tensor_t *inputs, int32_t num_inputs,
    #     const char *const *capture, int32_t num_capture, aimet_results_t **out);
    "aimet_model_run": (c_int32, [c_void_p, POINTER(aimet_tensor_t), c_int32, POINTER(c_char_p), c_int32,
                                  POINTER(c_void_p)], True),
    # aimet_status_t aimet_results_count(const aimet_results_t *results, int32_t *count);
    "aimet_results_count": (c_int32, [c_void_p, POINTER(c_int32)], True),
    # aimet_status_t aimet_results_get(const aimet_results_t *results, int32_t index, const char **name,
    #     const float **data, const int64_t **shape, int32_t *ndim);
    "aimet_results_get": (c_int32, [c_void_p, c_int32, POINTER(c_char_p), POINTER(POINTER(c_float)),
                                    POINTER(POINTER(c_int64)), POINTER(c_int32)], True),
    # aimet_status_t aimet_results_get_data(const aimet_results_t *results, int32_t index, int32_t *dtype,
    #                                       const void **data);
    "aimet_results_get_data": (c_int32, [c_void_p, c_int32, POINTER(c_int32), POINTER(c_void_p)], True),
    # aimet_status_t aimet_results_free(aimet_results_t *results);
    "aimet_results_free": (c_int32, [c_void_p], True),

    # --- quantization simulation ---
    # aimet_status_t aimet_quantsim_create(aimet_model_t *model, const aimet_quantsim_options_t *options,
    #     aimet_quantsim_t **out);
    "aimet_quantsim_create": (c_int32, [c_void_p, POINTER(aimet_quantsim_options_t), POINTER(c_void_p)], True),
    # aimet_status_t aimet_quantsim_free(aimet_quantsim_t *sim);
    "aimet_quantsim_free": (c_int32, [c_void_p], True),
    # aimet_status_t aimet_quantsim_begin_calibration(aimet_quantsim_t *sim);
    "aimet_quantsim_begin_calibration": (c_int32, [c_void_p], True),
    # aimet_status_t aimet_quantsim_end_calibration(aimet_quantsim_t *sim);
    "aimet_quantsim_end_calibration": (c_int32, [c_void_p], True),
    # aimet_status_t aimet_quantsim_run(aimet_quantsim_t *sim, const aimet_tensor_t *inputs, int32_t num_inputs,
    #     const char *const *capture, int32_t num_capture, aimet_results_t **out);
    "aimet_quantsim_run": (c_int32, [c_void_p, POINTER(aimet_tensor_t), c_int32, POINTER(c_char_p), c_int32,
                                     POINTER(c_void_p)], True),
    # aimet_status_t aimet_quantsim_load_param_encodings(aimet_quantsim_t *sim, const char *path, int32_t freeze);
    "aimet_quantsim_load_param_encodings": (c_int32, [c_void_p, c_char_p, c_int32], True),
    # aimet_status_t aimet_quantsim_save_encodings(aimet_quantsim_t *sim, const char *path);
    "aimet_quantsim_save_encodings": (c_int32, [c_void_p, c_char_p], True),
    # aimet_status_t aimet_quantsim_encodings_json(aimet_quantsim_t *sim, char *buffer, int64_t capacity,
    #     int64_t *length);
    "aimet_quantsim_encodings_json": (c_int32, [c_void_p, c_char_p, c_int64, POINTER(c_int64)], True),

    # --- AdaRound ---
    # aimet_status_t aimet_adaround_options_default(aimet_adaround_options_t *options);
    "aimet_adaround_options_default": (c_int32, [POINTER(aimet_adaround_options_t)], True),
    # aimet_status_t aimet_model_adaround(aimet_model_t *model, const aimet_tensor_t *data, int32_t num_data_batches,
    #     int32_t inputs_per_batch, const aimet_adaround_options_t *options, const char *encodings_path);
    "aimet_model_adaround": (c_int32, [c_void_p, POINTER(aimet_tensor_t), c_int32, c_int32,
                                       POINTER(aimet_adaround_options_t), c_char_p], True),
    # aimet_status_t aimet_model_adaround_report_json(aimet_model_t *model, char *buffer, int64_t capacity,
    #     int64_t *length);
    "aimet_model_adaround_report_json": (c_int32, [c_void_p, c_char_p, c_int64, POINTER(c_int64)], True),
    # aimet_status_t aimet_model_clone(aimet_model_t *model, aimet_model_t **out);
    "aimet_model_clone": (c_int32, [c_void_p, POINTER(c_void_p)], True),
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
