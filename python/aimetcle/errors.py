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


def status_error(code: int, message: str) -> AimetError:
    """The exception for a non-zero status."""
    if code == -2:
        return AimetTypeError(code, message)
    if code in (-1, -3, -4, -5):
        return AimetValueError(code, message)
    return AimetError(code, message)
