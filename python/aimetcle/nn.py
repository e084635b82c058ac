"""A torch.nn look-alike module tree over float32 NumPy arrays.

AIMET's APIs take a ``torch.nn.Module`` and change its layers in place. This
module gives aimetcle the same shape of object without torch: a tree of
``Module`` objects whose parameters and buffers are plain NumPy arrays with
torch's layouts and torch's ``state_dict`` key names. Code written against
``torch.nn`` (building a model, walking ``named_modules()``, assigning
``conv.weight = ...``, loading a ``state_dict``) reads the same here.

What is deliberately different from torch:

* Parameters are ``np.ndarray`` (float32, C-contiguous), not ``Parameter``
  tensors; there is no autograd. ``state_dict()`` hands out the module's own
  arrays, so writing into them changes the model (torch's tensors behave the
  same way, minus ``.data``).
* Numeric forward of Conv / Linear / BatchNorm / pooling is not implemented
  here: it belongs to the aimetcle runtime. Their ``forward`` raises
  ``NotImplementedError``. The cheap element-wise layers (activations,
  Identity, Flatten, Dropout) do run in NumPy.
* Activations never modify their input, even with ``inplace=True``: an
  in-place NumPy write could reach an array the caller still owns. The flag
  is kept for signature and ``repr`` fidelity.

Random initialisation follows torch's formulas using one module-level NumPy
generator; ``manual_seed(seed)`` resets it (seed 0 at import), so a model
built twice after the same seed has identical weights.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import math
import operator
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv1d",
    "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Dropout", "Flatten",
    "Identity", "LeakyReLU", "Linear", "MaxPool2d", "Module", "ModuleList",
    "PReLU", "ReLU", "ReLU6", "Sequential", "Sigmoid", "StateDictError",
    "StateDictKeyError", "device", "functional", "init", "manual_seed",
]

# ----------------------------------------------------------------------------
# Random state and devices
# ----------------------------------------------------------------------------

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset the generator behind every default initialisation (like torch.manual_seed)."""
    global _rng
    _rng = np.random.default_rng(seed)


class device:
    """The only device there is: ``device('cpu')``.

    Exists so that torch-style code (``model.to(device('cpu'))``) runs
    unchanged; asking for anything else is an error rather than a silent no-op.
    """

    __slots__ = ("type", "index")

    def __init__(self, type: Any = "cpu", index: Optional[int] = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if isinstance(type, str) and ":" in type and index is None:
            type, _, idx = type.partition(":")
            index = int(idx) if idx.isdigit() else idx
        if type != "cpu" or index not in (None, 0):
            where = type if index is None else f"{type}:{index}"
            raise ValueError(f"aimetcle runs on the CPU only; device {where!r} is not available")
        self.type = "cpu"
        self.index = index

    def __repr__(self) -> str:
        return "device(type='cpu')" if self.index is None else f"device(type='cpu', index={self.index})"

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("cpu", self.index))


def _is_cpu(value: Any) -> bool:
    """True for 'cpu', device('cpu') and a foreign device object of type 'cpu' (e.g. torch's)."""
    if isinstance(value, device):
        return True
    if isinstance(value, str):
        try:
            device(value)
        except ValueError:
            return False
        return True
    return getattr(value, "type", None) == "cpu" and getattr(value, "index", None) in (None, 0)


def _is_float32(value: Any) -> bool:
    if value is np.float32:
        return True
    try:
        return np.dtype(value) == np.float32
    except TypeError:
        return False


def _check_factory_kwargs(device_: Any, dtype: Any) -> None:
    """Accept torch's ``device=`` / ``dtype=`` layer arguments when they ask for what we have."""
    if device_ is not None and not _is_cpu(device_):
        raise ValueError(f"aimetcle layers live on the CPU only, got device={device_!r}")
    if dtype is not None and not _is_float32(dtype):
        raise ValueError(f"aimetcle layers hold float32 only, got dtype={dtype!r}")


# ----------------------------------------------------------------------------
# Initialisation (torch.nn.init over NumPy arrays, in place)
# ----------------------------------------------------------------------------

def _calculate_fan_in_and_fan_out(array: np.ndarray) -> Tuple[int, int]:
    if array.ndim < 2:
        raise ValueError("fan in and fan out can not be computed for an array with fewer than 2 dimensions")
    receptive = int(np.prod(array.shape[2:])) if array.ndim > 2 else 1
    return array.shape[1] * receptive, array.shape[0] * receptive


def _gain(nonlinearity: str, param: Optional[float] = None) -> float:
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _fill(array: np.ndarray, values: Any) -> np.ndarray:
    array[...] = values
    return array


class init:
    """``torch.nn.init`` for NumPy arrays: each function fills its argument in place and returns it."""

    calculate_gain = staticmethod(_gain)
    _calculate_fan_in_and_fan_out = staticmethod(_calculate_fan_in_and_fan_out)

    @staticmethod
    def uniform_(array: np.ndarray, a: float = 0.0, b: float = 1.0) -> np.ndarray:
        return _fill(array, _rng.uniform(a, b, size=array.shape))

    @staticmethod
    def normal_(array: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
        return _fill(array, _rng.normal(mean, std, size=array.shape))

    @staticmethod
    def constant_(array: np.ndarray, val: float) -> np.ndarray:
        return _fill(array, val)

    @staticmethod
    def zeros_(array: np.ndarray) -> np.ndarray:
        return _fill(array, 0)

    @staticmethod
    def ones_(array: np.ndarray) -> np.ndarray:
        return _fill(array, 1)

    @staticmethod
    def _kaiming_std(array: np.ndarray, a: float, mode: str, nonlinearity: str) -> float:
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
        fan_in, fan_out = _calculate_fan_in_and_fan_out(array)
        fan = fan_in if mode == "fan_in" else fan_out
        if fan == 0:
            return 0.0
        return _gain(nonlinearity, a) / math.sqrt(fan)

    @staticmethod
    def kaiming_uniform_(array: np.ndarray, a: float = 0, mode: str = "fan_in",
                         nonlinearity: str = "leaky_relu") -> np.ndarray:
        bound = math.sqrt(3.0) * init._kaiming_std(array, a, mode, nonlinearity)
        return _fill(array, _rng.uniform(-bound, bound, size=array.shape))

    @staticmethod
    def kaiming_normal_(array: np.ndarray, a: float = 0, mode: str = "fan_in",
                        nonlinearity: str = "leaky_relu") -> np.ndarray:
        std = init._kaiming_std(array, a, mode, nonlinearity)
        return _fill(array, _rng.normal(0.0, std, size=array.shape))


_skip_init = threading.local()


class _RuntimeDispatch:
    """Whether ``module(ndarray)`` runs on the library's executor (tests turn it
    off to run a NumPy reference through the same module code)."""
    enabled = True


_runtime = _RuntimeDispatch()


@contextlib.contextmanager
def _uninitialized():
    """Layers built inside get zero weights instead of random ones: for views
    whose weights are assigned right after (ONNX models), where drawing
    millions of random numbers would only waste time."""
    _skip_init.active = True
    try:
        yield
    finally:
        _skip_init.active = False


def _uniform_fan_in(shape: Tuple[int, ...], fan_in: int) -> np.ndarray:
    """torch's default layer init: kaiming_uniform(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    if getattr(_skip_init, "active", False):
        return np.zeros(shape, dtype=np.float32)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return np.ascontiguousarray(_rng.uniform(-bound, bound, size=shape), dtype=np.float32)


# ----------------------------------------------------------------------------
# Module
# ----------------------------------------------------------------------------

class StateDictError(ValueError):
    """A state_dict does not fit the model (shape, dtype, or keys); nothing was loaded."""


class StateDictKeyError(StateDictError, KeyError):
    """A strict load found missing or unexpected keys; also a KeyError, as a dict look-up failure."""

    def __str__(self) -> str:  # KeyError would show repr() of the message
        return str(self.args[0]) if self.args else ""


class _IncompatibleKeys(NamedTuple("IncompatibleKeys", [("missing_keys", List[str]),
                                                          ("unexpected_keys", List[str])])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _RemovableHandle:
    """Returned by the hook registrations; ``remove()`` unregisters (idempotent)."""

    _ids = itertools.count()

    def __init__(self, hooks: Dict[int, Callable]):
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "_RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')


class Module:
    """Base class of every layer and model, mirroring ``torch.nn.Module``.

    Children live in ``_modules``, parameters in ``_parameters`` and buffers
    in ``_buffers`` (all insertion-ordered dicts), so iteration order and
    ``state_dict`` keys match torch's. Modules hash by identity, so they can
    be dict keys (AIMET's APIs map layer -> BN that way); do not define
    ``__eq__`` on subclasses.
    """

    training: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})

    # -- attribute routing -----------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params, buffers, modules = d.get("_parameters"), d.get("_buffers"), d.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            d.pop(name, None)
            params.pop(name, None)
            buffers.pop(name, None)
            self._non_persistent_buffers_set.discard(name)
            modules[name] = value
        elif params is not None and name in params:
            # Validation happens where the value is used (load_state_dict, the
            # native transforms), so any object is accepted here, as with torch.
            params[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (aimetcle.nn.Module or None expected)")
            modules[name] = value
        elif buffers is not None and name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails; read __dict__ directly so a
        # half-built object (copy, pickle) cannot recurse.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            entries = d.get(store)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> List[str]:
        keys = set(super().__dir__())
        keys.update(self._parameters, self._buffers, self._modules)
        return sorted(k for k in keys if not k[0].isdigit())

    # -- registration ------------------------------------------------------------

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        """Register ``module`` as child ``name`` (``None`` reserves the slot, as in torch)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def register_parameter(self, name: str, param: Any) -> None:
        """Register a parameter. A float32 C-contiguous array is kept as is (shared with the
        caller, like a torch Parameter); anything else numeric is converted to one."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None:
            param = _as_float32_array(param, f"parameter '{name}'")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Register a buffer (state that is not a parameter, e.g. BN running stats).

        Buffers keep their dtype (``num_batches_tracked`` is int64).
        ``persistent=False`` keeps it out of ``state_dict``.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            tensor = np.asarray(tensor)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    # -- traversal -------------------------------------------------------------

    def named_modules(self, memo: Optional[set] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, "Module"]]:
        """Yield ``(qualified name, module)`` depth-first, ``('', self)`` first, each module once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[Tuple[str, Any]]:
        seen = set()  # ids: arrays are not hashable
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[Tuple[str, np.ndarray]]:
        """Yield ``(key, array)`` for every parameter that is not None (the live arrays)."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, value in self.named_parameters(recurse=recurse):
            yield value

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, np.ndarray]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, value in self.named_buffers(recurse=recurse):
            yield value

    def get_submodule(self, target: str) -> "Module":
        """The module at dotted path ``target`` (``''`` is self), e.g. ``'layer1.0.conv1'``."""
        module = self
        if target == "":
            return module
        for i, atom in enumerate(target.split(".")):
            child = module._modules.get(atom) if isinstance(module, Module) else None
            if not isinstance(child, Module):
                path = ".".join(target.split(".")[:i])
                raise AttributeError(f"{module._get_name() if isinstance(module, Module) else module}"
                                     f" has no attribute `{atom}`" + (f" (at '{path}')" if path else ""))
            module = child
        return module

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call ``fn`` on every child (recursively) and then on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- state -------------------------------------------------------------------

    def state_dict(self, *, destination: Optional[Dict[str, Any]] = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, np.ndarray]":
        """Parameters and persistent buffers by torch's key names.

        The values are the module's own arrays, not copies: writing into
        ``sd['conv1.weight']`` changes the model. Copy them (``{k: v.copy()}``)
        to keep a snapshot. ``keep_vars`` exists for torch compatibility only.
        """
        if destination is None:
            destination = OrderedDict()
        for name, value in self._parameters.items():
            if value is not None:
                destination[prefix + name] = value
        for name, value in self._buffers.items():
            if value is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = value
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _state_entries(self) -> Iterator[Tuple[str, "Module", str, bool]]:
        """(key, owner, attribute name, is_buffer) for every state_dict entry, in order."""
        for prefix, module in self.named_modules(remove_duplicate=False):
            dot = prefix + "." if prefix else ""
            for name, value in module._parameters.items():
                if value is not None:
                    yield dot + name, module, name, False
            for name, value in module._buffers.items():
                if value is not None and name not in module._non_persistent_buffers_set:
                    yield dot + name, module, name, True

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> _IncompatibleKeys:
        """Copy ``state_dict``'s values into the model, converted to the registered dtype.

        Float values become float32; integer buffers (``num_batches_tracked``)
        keep int64, so an npz saved from torch loads as is. Everything is
        checked before anything is written, so a failed load leaves the model
        untouched. As in torch: a shape mismatch is an error even with
        ``strict=False``; a missing ``num_batches_tracked`` is not reported
        (old checkpoints lack it); ``strict`` reports missing and unexpected
        keys. Arrays that are already float32 C-contiguous are updated in
        place, so references to them (e.g. from ``state_dict()``) stay live.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        provided = list(state_dict.keys())
        entries = list(self._state_entries())
        known = set()
        missing: List[str] = []
        errors: List[str] = []
        plan = []
        for key, owner, name, is_buffer in entries:
            if key in known:  # a module registered twice: load it once
                continue
            known.add(key)
            if key not in state_dict:
                if not (is_buffer and name == "num_batches_tracked"):
                    missing.append(key)
                continue
            current = getattr(owner, name)
            target_dtype = current.dtype if is_buffer and isinstance(current, np.ndarray) \
                and current.dtype.kind in "iub" else np.float32
            try:
                value = np.asarray(state_dict[key])
                if target_dtype != np.float32 and value.dtype.kind == "f":
                    if not np.all(np.isfinite(value)) or np.any(value != np.round(value)):
                        raise ValueError("expected integer values")
                value = value.astype(target_dtype, copy=False)
            except (TypeError, ValueError) as exc:
                errors.append(f"cannot convert the value for {key} to {np.dtype(target_dtype).name}: {exc}")
                continue
            want = tuple(np.shape(current))
            if value.shape != want:
                errors.append(f"size mismatch for {key}: copying a param with shape {value.shape} "
                              f"from checkpoint, the shape in current model is {want}.")
                continue
            plan.append((owner, name, is_buffer, current, value))
        unexpected = [k for k in provided if k not in known]
        key_problem = strict and (missing or unexpected)
        if errors or key_problem:
            lines = []
            if strict and unexpected:
                lines.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if strict and missing:
                lines.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
            lines.extend(errors)
            message = f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(lines)
            raise (StateDictKeyError if key_problem and not errors else StateDictError)(message)
        for owner, name, is_buffer, current, value in plan:
            if (isinstance(current, np.ndarray) and current.dtype == value.dtype
                    and current.flags.c_contiguous and current.flags.writeable):
                current[...] = value
            else:
                store = owner._buffers if is_buffer else owner._parameters
                store[name] = np.array(value, dtype=value.dtype, order="C", copy=True)
        return _IncompatibleKeys(missing, unexpected)

    # -- mode and placement --------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Accepted for torch compatibility: only the CPU and float32 exist, anything else is an error."""
        kwargs.pop("non_blocking", None)
        for value in list(args) + list(kwargs.values()):
            if not (_is_cpu(value) or _is_float32(value)):
                raise ValueError(f"aimetcle models live on the CPU in float32; cannot move to {value!r}")
        unknown = set(kwargs) - {"device", "dtype"}
        if unknown:
            raise TypeError(f"to() got unexpected keyword argument(s) {sorted(unknown)}")
        return self

    def cpu(self) -> "Module":
        return self

    def float(self) -> "Module":
        return self

    # -- running -------------------------------------------------------------------

    def register_forward_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """``hook(module, args)`` runs before forward; a non-None result replaces ``args``."""
        handle = _RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook: Callable) -> _RemovableHandle:
        """``hook(module, args, output)`` runs after forward; a non-None result replaces the output."""
        handle = _RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A tracer's symbolic value (aimetcle.tracing.Proxy) takes over the whole
        # call, hooks included: it records the layer, or descends into forward.
        for arg in args:
            intercept = getattr(type(arg), "__aimetcle_module_call__", None)
            if intercept is not None:
                return intercept(arg, self, args, kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        # NumPy inputs run on the library's executor (the layers here hold weights
        # but compute nothing themselves), with inference semantics (BatchNorm uses
        # its running statistics); hooks of submodules do not run there.
        if (_runtime.enabled and not getattr(self, "_numpy_forward", False) and args and not kwargs
                and all(isinstance(a, np.ndarray) for a in args)):
            from .runtime import run
            output = run(self, *args)
        else:
            output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'Module [{self._get_name()}] is missing the required "forward" function')

    # -- printing --------------------------------------------------------------------

    def _get_name(self) -> str:
        # A class may show torch's name where ours must differ (two MobileNetV2s in models.py).
        return type(self).__dict__.get("_torch_name") or type(self).__name__

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(module), 2) for key, module in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def _as_float32_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.flags.c_contiguous:
        return value
    try:
        array = np.asarray(value)
    except Exception as exc:  # arbitrary objects: report them as a type problem
        raise TypeError(f"{what} must be a float array, got {type(value).__name__}") from exc
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be a float array, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _unavailable(module: Module) -> NotImplementedError:
    return NotImplementedError(
        f"{module._get_name()}.forward: running a model arrives with the aimetcle runtime; "
        "the NumPy layer objects hold weights but do not compute convolutions, linear layers, "
        "batch norms or pooling")


# ----------------------------------------------------------------------------
# Functional ops (NumPy)
# ----------------------------------------------------------------------------

def _dispatchable(fn: Callable) -> Callable:
    """Let non-NumPy values (a tracer's symbolic values) take over a functional op.

    A value whose type defines ``__aimetcle_function__(self, name, args, kwargs)``
    receives the call instead of NumPy, like torch's ``__torch_function__``.
    """
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            candidates = arg if isinstance(arg, (list, tuple)) else (arg,)
            for value in candidates:
                hook = getattr(type(value), "__aimetcle_function__", None)
                if hook is not None:
                    return hook(value, name, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper


def _normalize_dim(dim: int, ndim: int) -> int:
    d = operator.index(dim)
    if not -ndim <= d < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
    return d % ndim


class functional:
    """The ``torch.nn.functional`` / ``torch`` ops that model forward code uses, in NumPy.

    Model builders call these (``nn.functional.flatten(x, 1)``) instead of
    NumPy directly so a tracer can intercept them (see ``_dispatchable``).
    None of them writes into its input, whatever ``inplace`` says.
    """

    @staticmethod
    @_dispatchable
    def relu(input: np.ndarray, inplace: bool = False) -> np.ndarray:
        return np.maximum(input, 0)

    @staticmethod
    @_dispatchable
    def relu6(input: np.ndarray, inplace: bool = False) -> np.ndarray:
        return np.clip(input, 0, 6)

    @staticmethod
    @_dispatchable
    def leaky_relu(input: np.ndarray, negative_slope: float = 0.01, inplace: bool = False) -> np.ndarray:
        return np.where(input >= 0, input, input * np.asarray(negative_slope, dtype=input.dtype))

    @staticmethod
    @_dispatchable
    def sigmoid(input: np.ndarray) -> np.ndarray:
        x = np.asarray(input)
        e = np.exp(-np.abs(x))  # stable for large |x|
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    @staticmethod
    @_dispatchable
    def flatten(input: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
        x = np.asarray(input)
        if x.ndim == 0:
            return x.reshape(1)
        s, e = _normalize_dim(start_dim, x.ndim), _normalize_dim(end_dim, x.ndim)
        if s > e:
            raise ValueError("flatten() has invalid args: start_dim cannot come after end_dim")
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])

    @staticmethod
    @_dispatchable
    def cat(tensors: Any, dim: int = 0) -> np.ndarray:
        arrays = [np.asarray(t) for t in tensors]
        if not arrays:
            raise ValueError("cat() expected a non-empty list of arrays")
        return np.concatenate(arrays, axis=_normalize_dim(dim, arrays[0].ndim))

    @staticmethod
    @_dispatchable
    def adaptive_avg_pool2d(input: np.ndarray, output_size: Any) -> np.ndarray:
        """Global average pooling (``output_size`` 1 or (1, 1)); other sizes belong to the runtime."""
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if size != (1, 1):
            raise NotImplementedError("adaptive_avg_pool2d supports output_size 1 only; "
                                      "other sizes arrive with the aimetcle runtime")
        x = np.asarray(input)
        if x.ndim not in (3, 4):
            raise ValueError(f"adaptive_avg_pool2d expects a 3-D or 4-D input, got shape {x.shape}")
        return x.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(x.dtype, copy=False)


# ----------------------------------------------------------------------------
# Argument helpers
# ----------------------------------------------------------------------------

def _ntuple(value: Any, n: int, what: str, minimum: int) -> Tuple[int, ...]:
    """torch's _pair/_single, but checked: right length, integers, at least ``minimum``."""
    if isinstance(value, (tuple, list)):
        items = tuple(value)
        if len(items) != n:
            raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {value!r}")
    else:
        items = (value,) * n
    try:
        items = tuple(operator.index(v) for v in items)
    except TypeError:
        raise TypeError(f"{what} must be an int or a tuple of {n} ints, got {value!r}") from None
    if any(v < minimum for v in items):
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
    return items


def _positive_int(value: Any, what: str, minimum: int = 1) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}") from None
    if v < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {v}")
    return v


# ----------------------------------------------------------------------------
# Convolutions
# ----------------------------------------------------------------------------

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared construction of (transposed) convolutions; attributes exactly as torch stores them."""

    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
                 padding: Any, dilation: Any, transposed: bool, output_padding: Any,
                 groups: int, bias: bool, padding_mode: str, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        _check_factory_kwargs(device, dtype)
        n = self._dims
        groups = _positive_int(groups, "groups")
        in_channels = _positive_int(in_channels, "in_channels")
        out_channels = _positive_int(out_channels, "out_channels")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, "
                             f"but got padding_mode='{padding_mode}'")
        kernel_size = _ntuple(kernel_size, n, "kernel_size", 1)
        stride = _ntuple(stride, n, "stride", 1)
        dilation = _ntuple(dilation, n, "dilation", 1)
        if isinstance(padding, str):
            if transposed:
                raise ValueError(f"{type(self).__name__} does not accept string padding, got {padding!r}")
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = _ntuple(padding, n, "padding", 0)
        output_padding = _ntuple(output_padding, n, "output_padding", 0)
        if transposed:
            if padding_mode != "zeros":
                raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
            for op, s, d in zip(output_padding, stride, dilation):
                if op >= s and op >= d:
                    raise ValueError("output padding must be smaller than either stride or dilation, "
                                     f"but got output_padding={output_padding}, stride={stride}, "
                                     f"dilation={dilation}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        if transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        # torch's fan_in is weight.size(1) * prod(kernel) in both layouts.
        fan_in = shape[1] * int(np.prod(kernel_size))
        self.register_parameter("weight", _uniform_fan_in(shape, fan_in))
        self.register_parameter("bias", _uniform_fan_in((out_channels,), fan_in) if bias else None)

    def extra_repr(self) -> str:
        n = self._dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def forward(self, input: Any) -> Any:
        raise _unavailable(self)


class Conv1d(_ConvNd):
    """1-D convolution; weight ``[out_channels, in_channels/groups, K]``."""

    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)


class Conv2d(_ConvNd):
    """2-D convolution; weight ``[out_channels, in_channels/groups, kH, kW]``."""

    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)


class ConvTranspose1d(_ConvNd):
    """1-D transposed convolution; weight ``[in_channels, out_channels/groups, K]``."""

    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution; weight ``[in_channels, out_channels/groups, kH, kW]``."""

    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype)


class Linear(Module):
    """``y = x W^T + b``; weight ``[out_features, in_features]``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        _check_factory_kwargs(device, dtype)
        self.in_features = _positive_int(in_features, "in_features", 0)
        self.out_features = _positive_int(out_features, "out_features", 0)
        self.register_parameter("weight", _uniform_fan_in((self.out_features, self.in_features),
                                                          self.in_features))
        self.register_parameter("bias", _uniform_fan_in((self.out_features,), self.in_features)
                                if bias else None)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, input: Any) -> Any:
        raise _unavailable(self)


# ----------------------------------------------------------------------------
# Batch norm
# ----------------------------------------------------------------------------

class _BatchNorm(Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        _check_factory_kwargs(device, dtype)
        self.num_features = _positive_int(num_features, "num_features")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        c = self.num_features
        if affine:
            self.register_parameter("weight", np.ones(c, dtype=np.float32))
            self.register_parameter("bias", np.zeros(c, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=np.float32))
            self.register_buffer("running_var", np.ones(c, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def forward(self, input: Any) -> Any:
        raise _unavailable(self)


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``[N, C]`` or ``[N, C, L]``."""


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``[N, C, H, W]``."""


# ----------------------------------------------------------------------------
# Activations and shape layers (these do run in NumPy)
# ----------------------------------------------------------------------------

class ReLU(Module):
    _numpy_forward = True  # computed here, not by the library

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def forward(self, input: Any) -> Any:
        return functional.relu(input)


class ReLU6(Module):
    """``min(max(x, 0), 6)``; attributes as torch's Hardtanh subclass."""

    _numpy_forward = True  # computed here, not by the library

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.min_val = 0.0
        self.max_val = 6.0
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def forward(self, input: Any) -> Any:
        return functional.relu6(input)


class PReLU(Module):
    """``max(0, x) + w * min(0, x)``, one slope or one per channel (axis 1)."""

    _numpy_forward = True  # computed here, not by the library

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        _check_factory_kwargs(device, dtype)
        self.num_parameters = _positive_int(num_parameters, "num_parameters")
        self.init = init
        self.register_parameter("weight", np.full(self.num_parameters, init, dtype=np.float32))

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"

    def forward(self, input: Any) -> Any:
        x = np.asarray(input)
        w = np.asarray(self.weight, dtype=x.dtype)
        if w.size > 1:
            if x.ndim < 2 or x.shape[1] != w.size:
                raise ValueError(f"PReLU with {w.size} parameters expects {w.size} channels on axis 1, "
                                 f"got shape {x.shape}")
            w = w.reshape((1, -1) + (1,) * (x.ndim - 2))
        else:
            w = w.reshape(())
        return np.where(x >= 0, x, x * w)


class LeakyReLU(Module):
    _numpy_forward = True  # computed here, not by the library

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")

    def forward(self, input: Any) -> Any:
        return functional.leaky_relu(input, self.negative_slope)


class Sigmoid(Module):
    _numpy_forward = True  # computed here, not by the library

    def forward(self, input: Any) -> Any:
        return functional.sigmoid(input)


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments, as torch's does."""

    _numpy_forward = True  # computed here, not by the library

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Dropout(Module):
    """Identity in eval mode; in training mode torch's inverted dropout with the module generator."""

    _numpy_forward = True  # computed here, not by the library

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input: Any) -> Any:
        if not self.training or self.p == 0:
            return input
        x = np.asarray(input)
        if self.p == 1:
            return np.zeros_like(x)
        keep = _rng.random(x.shape) >= self.p
        return (x * keep / (1 - self.p)).astype(x.dtype, copy=False)


class Flatten(Module):
    _numpy_forward = True  # computed here, not by the library

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, input: Any) -> Any:
        return functional.flatten(input, self.start_dim, self.end_dim)


# ----------------------------------------------------------------------------
# Pooling (structure only; numbers come from the runtime)
# ----------------------------------------------------------------------------

def _check_pool_args(kernel_size: Any, stride: Any, padding: Any) -> None:
    k = _ntuple(kernel_size, 2, "kernel_size", 1)
    _ntuple(kernel_size if stride is None else stride, 2, "stride", 1)
    p = _ntuple(padding, 2, "padding", 0)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"pad should be at most half of effective kernel size, but got "
                         f"pad={padding}, kernel_size={kernel_size}")


class MaxPool2d(Module):
    """Attributes stored raw (an int stays an int), as torch's pooling layers do."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        if return_indices:
            raise ValueError("MaxPool2d(return_indices=True) is not supported")
        _check_pool_args(kernel_size, stride, padding)
        _ntuple(dilation, 2, "dilation", 1)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def forward(self, input: Any) -> Any:
        raise _unavailable(self)


class AvgPool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: Optional[int] = None) -> None:
        super().__init__()
        _check_pool_args(kernel_size, stride, padding)
        if divisor_override is not None:
            _positive_int(divisor_override, "divisor_override")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Any) -> Any:
        raise _unavailable(self)


class AdaptiveAvgPool2d(Module):
    """``output_size``: an int, or a pair whose entries may be None (keep that input size)."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        items = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if len(items) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        for v in items:
            if v is not None:
                _positive_int(v, "output_size")
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Any) -> Any:
        raise _unavailable(self)


# ----------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------

def _index(idx: Any, size: int) -> int:
    i = operator.index(idx)
    if not -size <= i < size:
        raise IndexError(f"index {i} is out of range")
    return i % size


class Sequential(Module):
    """Runs its children in order. ``Sequential(m0, m1, ...)`` names them '0', '1', ...;
    ``Sequential(OrderedDict(name=module, ...))`` keeps the given names."""

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def _slice(self, items: List[Tuple[str, Module]]) -> "Sequential":
        # torch calls self.__class__(OrderedDict); subclasses with their own
        # constructor (Conv2dNormActivation) cannot take that, so they get a Sequential.
        cls = type(self) if type(self).__init__ is Sequential.__init__ else Sequential
        return cls(OrderedDict(items))

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, slice):
            return self._slice(list(self._modules.items())[idx])
        return list(self._modules.values())[_index(idx, len(self._modules))]

    def __setitem__(self, idx: Any, module: Module) -> None:
        key = list(self._modules.keys())[_index(idx, len(self._modules))]
        setattr(self, key, module)

    def __delitem__(self, idx: Any) -> None:
        keys = list(self._modules.keys())
        doomed = keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys))]]
        for key in doomed:
            del self._modules[key]
        # torch renumbers so that integer names stay 0..n-1
        items = list(self._modules.values())
        self._modules.clear()
        self._modules.update((str(i), m) for i, m in enumerate(items))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, sequential: Any) -> "Sequential":
        for module in sequential:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        n = len(self._modules)
        i = operator.index(index)
        if not -n <= i <= n:
            raise IndexError(f"Index out of range: {index}")
        if i < 0:
            i += n
        items = list(self._modules.values())
        items.insert(i, module)
        self._modules.clear()
        self._modules.update((str(j), m) for j, m in enumerate(items))
        return self

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input


class ModuleList(Module):
    """A list of children, indexed like a list; it has no forward of its own."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_index(idx, len(self._modules)))]

    def __setitem__(self, idx: Any, module: Module) -> None:
        setattr(self, str(_index(idx, len(self._modules))), module)

    def __delitem__(self, idx: Any) -> None:
        keys = list(self._modules.keys())
        doomed = keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys))]]
        for key in doomed:
            del self._modules[key]
        items = list(self._modules.values())
        self._modules.clear()
        self._modules.update((str(i), m) for i, m in enumerate(items))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Any) -> "ModuleList":
        return self.extend(modules)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Any) -> "ModuleList":
        if isinstance(modules, (Module, str)) or not hasattr(modules, "__iter__"):
            raise TypeError("ModuleList.extend should be called with an iterable, "
                            f"but got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def __repr__(self) -> str:
        # torch compresses runs of identical children: "(0-2): 3 x Linear(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs: List[List[Any]] = []
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = []
        for start, end, r in runs:
            head = f"({start}): " if start == end else f"({start}-{end}): {end - start + 1} x "
            lines.append(_addindent(head + r, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"
