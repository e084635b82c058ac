"""aimetcle — AIMET's cross-layer equalization and AdaRound for NumPy users.

The numerics run in libaimetcle.so (Swift, C ABI); this package mirrors
AIMET's PyTorch API over NumPy arrays: use ``aimetcle`` where AIMET's
examples say ``aimet_torch`` and ``aimetcle.nn`` where they say ``torch.nn``.
"""

from . import batch_norm_fold, cross_layer_equalization, defs, models, nn, onnx, quantsim, tracing, utils
from .runtime import run
from .checkpoints import load_state_dict_file
from .errors import AimetError
from .nn import device

__version__ = "0.1.0"

__all__ = ["AimetError", "load_state_dict_file", "batch_norm_fold", "cross_layer_equalization", "defs", "device", "models", "nn", "onnx",
           "quantsim", "run", "tracing", "utils", "abi_version"]


def abi_version():
    """The ABI version of the loaded libaimetcle.so."""
    from . import _lib
    return _lib.aimet_abi_version()
