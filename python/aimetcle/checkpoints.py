"""Torch checkpoints (``.pth`` / ``.pt``) read into NumPy arrays, without torch.

``load_state_dict_file(path)`` reads what ``torch.save(model.state_dict(), path)`` writes, in both
of torch's formats:

* the zip format (torch >= 1.6): ``<name>/data.pkl`` holds the pickled object and each tensor
  storage is the raw file ``<name>/data/<key>`` (byte order in ``<name>/byteorder``, little-endian
  when absent);
* the legacy format (``_use_new_zipfile_serialization=False``, and every checkpoint older than torch
  1.6, such as torchvision's ``mobilenet_v2-b0353104.pth``): five pickles in a row — a magic number,
  the protocol version (1001), system information, the object, the list of storage keys — then each
  storage in that order as an int64 element count followed by its raw bytes.

Nothing in the file is executed: the unpickler resolves only the names a checkpoint of tensors needs
(``collections.OrderedDict``, torch's tensor- and parameter-rebuild functions, its storage types,
``torch.Size``) to local stand-ins; any other global is refused with ``UnpicklingError`` naming it.
Tensors become NumPy arrays (a copy, C-contiguous, with the tensor's shape; bfloat16 widened to
float32); views are bounds-checked against their storage.

A file whose name carries torch hub's hash prefix (``mobilenet_v2-b0353104.pth``: the first hex
digits of its sha256) is checked against it, and ``sha256=`` checks the whole digest.
"""
from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import re
import struct
import zipfile
from typing import Any, BinaryIO, Dict, Optional, Union

import numpy as np

__all__ = ["load_state_dict_file", "CheckpointError"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch's storage types and the element type each holds.
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
    """A file that is not a torch checkpoint of tensors this reader can take, or a damaged one."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` and its kin: the pickle names the class, never calls it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage the pickle refers to; its bytes are read after the pickle (legacy) or from the zip."""

    def __init__(self, kind: _StorageType, key: str, numel: Optional[int]) -> None:
        self.kind, self.key, self.numel = kind, key, numel
        self.array: Optional[np.ndarray] = None


class _Tensor:
    """A tensor as the pickle describes it: a view of a storage, made an array once storages are read."""

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any) -> None:
        if not isinstance(storage, _Storage):
            raise CheckpointError("a tensor is rebuilt from something that is not a storage")
        try:
            self.offset = int(offset)
            self.size = tuple(int(s) for s in size)
            self.stride = tuple(int(s) for s in stride)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"a tensor has a malformed shape or stride: {error}") from None
        if len(self.size) != len(self.stride) or self.offset < 0 or any(s < 0 for s in self.size + self.stride):
            raise CheckpointError(f"a tensor has a malformed view: offset {offset}, size {size}, stride {stride}")
        self.storage = storage

    def to_numpy(self) -> np.ndarray:
        data = self.storage.array
        assert data is not None
        if any(s == 0 for s in self.size):
            return np.zeros(self.size, _numpy_dtype(self.storage.kind))
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= data.size:
            raise CheckpointError(f"a tensor of shape {self.size} reads element {last} of a storage of {data.size}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride), writeable=False)
        array = np.array(view, copy=True, order="C")
        if self.storage.kind.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array.astype(_numpy_dtype(self.storage.kind).newbyteorder("="), copy=False)


def _numpy_dtype(kind: _StorageType) -> np.dtype:
    return np.dtype(np.float32) if kind.name == "BFloat16Storage" else kind.dtype


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _Tensor:
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]);
    # _rebuild_tensor(storage, offset, size, stride).
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    # _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its tensor here.
    return data


class _Size(tuple):
    """``torch.Size``: a tuple of ints."""


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "Size"): _Size,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only the names in ``_ALLOWED`` and torch's storage types; refuses every other global."""

    def __init__(self, file: BinaryIO, storage: Any) -> None:
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refused: the file asks for the global '{module}.{name}', which a checkpoint of tensors does not "
                "need (nothing in it was run)")
        return found

    def persistent_load(self, pid: Any) -> Any:
        return self._storage(pid)


def _storage_reference(pid: Any, storages: Dict[str, _Storage], legacy: bool) -> _Storage:
    """('storage', type, key, location, numel[, view_metadata]) -> the storage, one object per key."""
    if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
        raise CheckpointError(f"unknown persistent reference {str(pid)[:80]!r} (expected a tensor storage)")
    kind, key = pid[1], str(pid[2])
    if not isinstance(kind, _StorageType):
        raise CheckpointError(f"storage {key!r} has an unknown type {kind!r}")
    if legacy and len(pid) > 5 and pid[5] is not None:
        raise CheckpointError(f"storage {key!r} is a view of another storage (a torch < 0.4 file); re-save it")
    if key not in storages:
        storages[key] = _Storage(kind, key, None if legacy else int(pid[4]))
    return storages[key]


def _materialize(obj: Any) -> Any:
    """The object with every tensor stand-in replaced by its array (dicts, lists and tuples walked)."""
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, collections.OrderedDict):
        result = collections.OrderedDict((k, _materialize(v)) for k, v in obj.items())
        return result
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v) for v in obj]
    if isinstance(obj, tuple) and not isinstance(obj, _Size):
        return tuple(_materialize(v) for v in obj)
    return obj


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: a zip without one data.pkl is not a torch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        order = "<"
        if prefix + "byteorder" in names:
            order = "<" if archive.read(prefix + "byteorder").strip() == b"little" else ">"
        storages: Dict[str, _Storage] = {}
        unpickler = _Unpickler(io.BytesIO(archive.read(pickles[0])),
                               lambda pid: _storage_reference(pid, storages, legacy=False))
        obj = unpickler.load()
        for key, storage in storages.items():
            entry = prefix + "data/" + key
            if entry not in names:
                raise CheckpointError(f"{path}: storage {key!r} is missing from the archive")
            raw = archive.read(entry)
            dtype = storage.kind.dtype.newbyteorder(order)
            if len(raw) % dtype.itemsize or (storage.numel is not None and len(raw) // dtype.itemsize < storage.numel):
                raise CheckpointError(f"{path}: storage {key!r} has {len(raw)} bytes, too few for its elements")
            storage.array = np.frombuffer(raw, dtype)
    return obj


def _read_legacy(path: str) -> Any:
    with open(path, "rb") as f:
        def plain() -> Any:
            return _Unpickler(f, lambda pid: (_ for _ in ()).throw(
                CheckpointError("a header pickle refers to a storage"))).load()
        try:
            magic = plain()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise CheckpointError(f"{path}: not a torch checkpoint (neither a zip nor torch's legacy pickle format): "
                                  f"{error}") from None
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch checkpoint (the first pickle is not torch's magic number)")
        protocol = plain()
        if protocol != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: legacy protocol version {protocol!r}; this reader knows {_LEGACY_PROTOCOL}")
        info = plain()
        little = not isinstance(info, dict) or info.get("little_endian", True)
        storages: Dict[str, _Storage] = {}
        obj = _Unpickler(f, lambda pid: _storage_reference(pid, storages, legacy=True)).load()
        keys = plain()
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: the storage key list is missing")
        for key in keys:
            key = str(key)
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{path}: the file ends before storage {key!r}")
            (numel,) = struct.unpack("<q" if little else ">q", header)
            storage = storages.get(key)
            if storage is None or numel < 0:
                raise CheckpointError(f"{path}: storage {key!r} is not referred to by any tensor")
            dtype = storage.kind.dtype.newbyteorder("<" if little else ">")
            raw = f.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise CheckpointError(f"{path}: the file ends inside storage {key!r}")
            storage.array = np.frombuffer(raw, dtype)
        missing = [k for k, s in storages.items() if s.array is None]
        if missing:
            raise CheckpointError(f"{path}: storages {missing[:3]} have no data")
    return obj


def _check_hash(path: str, sha256: Optional[str]) -> None:
    prefix = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z]+$", os.path.basename(path))
    if sha256 is None and prefix is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256.lower():
        raise CheckpointError(f"{path}: sha256 {actual} is not the expected {sha256.lower()} (a damaged or different "
                              "file)")
    if prefix is not None and not actual.startswith(prefix.group(1)):
        raise CheckpointError(f"{path}: sha256 {actual} does not start with {prefix.group(1)}, the hash its name "
                              "carries (a damaged or different file)")


def load_state_dict_file(path: Union[str, os.PathLike], sha256: Optional[str] = None) -> Any:
    """Reads a torch checkpoint (a ``state_dict`` or any dict / list of tensors) into NumPy arrays.

    Returns the saved object with each tensor (and ``nn.Parameter``) replaced by a C-contiguous array
    of its shape and dtype (bfloat16 as float32); a state dict comes back as an ``OrderedDict`` in the
    saved order. ``sha256``: the expected digest; a file named with torch hub's hash prefix is checked
    against that prefix in any case. Raises ``CheckpointError`` (a ``ValueError``) for a damaged file
    or a hash mismatch, ``pickle.UnpicklingError`` for a pickle that asks for anything beyond tensors,
    ``FileNotFoundError`` when there is no file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    _check_hash(path, sha256)
    try:
        obj = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except (pickle.UnpicklingError, CheckpointError):
        raise
    except (EOFError, zipfile.BadZipFile, struct.error, ValueError, TypeError, KeyError, IndexError,
            AttributeError) as error:
        raise CheckpointError(f"{path}: a damaged torch checkpoint ({type(error).__name__}: {error})") from None
    return _materialize(obj)
