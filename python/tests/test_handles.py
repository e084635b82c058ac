"""Handle misuse through the ctypes layer: a freed or foreign handle raises
(status AIMET_STATUS_INVALID_HANDLE), never crashes; Model.close is idempotent."""

import ctypes
from ctypes import c_void_p

import pytest

from aimetcle import _lib
from aimetcle.errors import AimetBusyError, AimetError, AimetValueError


def new_model():
    out = c_void_p()
    _lib.lib().aimet_model_create(ctypes.byref(out))
    return out


def test_use_after_free_and_double_free_raise():
    lib = _lib.lib()
    model = new_model()
    lib.aimet_model_free(model)
    with pytest.raises(AimetValueError, match="not a live model handle") as info:
        lib.aimet_model_add_output(model, b"y")
    assert info.value.code == _lib.AIMET_STATUS_INVALID_HANDLE
    with pytest.raises(AimetValueError, match="aimet_model_free: .*already freed"):
        lib.aimet_model_free(model)


def test_freeing_null_is_fine():
    lib = _lib.lib()
    for free in (lib.aimet_model_free, lib.aimet_quantsim_free, lib.aimet_results_free):
        assert free(None) == _lib.AIMET_STATUS_OK


def test_handle_of_another_kind_is_refused():
    lib = _lib.lib()
    model = new_model()
    with pytest.raises(AimetValueError, match="is a model handle, not a quantsim handle"):
        lib.aimet_quantsim_free(model)
    lib.aimet_model_add_output(model, b"y")  # still alive
    lib.aimet_model_free(model)


def test_busy_maps_to_a_value_error():
    error = _lib.status_error(_lib.AIMET_STATUS_BUSY, "the model is in use by another thread")
    assert isinstance(error, AimetBusyError) and isinstance(error, ValueError) and isinstance(error, AimetError)


def test_model_handle_close_is_idempotent():
    from aimetcle._model import Handle
    handle = Handle.create()
    handle.close()
    handle.close()
    with pytest.raises(Exception):  # closed: the wrapper refuses before the library sees it
        handle.add_output("y")
