"""Exceptions raised for the library's error statuses."""


class AimetError(Exception):
    """A libaimetcle call failed. ``code`` is the aimet_status_t, ``message`` the library's text."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class AimetValueError(AimetError, ValueError):
    """Bad shapes, values or combinations (also a ValueError)."""


class AimetTypeError(AimetError, TypeError):
    """A missing (NULL) argument (also a TypeError)."""


class AimetOSError(AimetError, OSError):
    """A file could not be read or written (also an OSError)."""


class AimetFileNotFoundError(AimetError, FileNotFoundError):
    """No file at the given path (also a FileNotFoundError)."""


class AimetCancelled(AimetError):
    """A progress callback asked the library to stop."""


class AimetKeyError(AimetError, KeyError):
    """No node or parameter of that name (also a KeyError)."""

    def __str__(self):  # KeyError would show the repr of the message
        return self.message


class AimetBusyError(AimetValueError):
    """The handle is in use by another thread (a ValueError, as before the status had its own code)."""


_BY_STATUS = {-1: AimetValueError, -2: AimetTypeError, -3: AimetValueError, -4: AimetValueError,
              -5: AimetValueError, -6: AimetOSError, -7: AimetValueError, -8: AimetFileNotFoundError,
              -9: AimetKeyError, -10: AimetValueError, -11: AimetBusyError, -12: AimetCancelled}


def status_error(code: int, message: str) -> AimetError:
    """The exception for a non-zero status."""
    return _BY_STATUS.get(code, AimetError)(code, message)
