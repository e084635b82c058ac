"""Trace an ``aimetcle.nn`` model into a flat graph with ONNX semantics (like torch.fx).

A module tree does not say how its layers connect; ``forward`` does. AIMET's
graph-based APIs (``fold_all_batch_norms(model, input_shapes)``, the CLE
search for conv/BN/ReLU/conv sequences) therefore trace the model first.
``trace`` does the same: it runs ``forward`` on symbolic values (``Proxy``)
that record every layer call and operation instead of computing, and keeps
each value's shape, so reshapes resolve to explicit dimensions and the native
side can size buffers without re-deriving torch's output-size formulas.

The result (``GraphDescription``) uses ONNX op types and attribute names
(opset 17), so one consumer reads a traced model and an ONNX file alike. The
weights stay the model's own arrays under their ``state_dict`` keys: whatever
the consumer writes into them changes the model.

How values get intercepted: ``nn.Module.__call__`` hands a call with a Proxy
argument to ``Proxy.__aimetcle_module_call__``, and ``nn.functional`` ops
hand theirs to ``Proxy.__aimetcle_function__``. Known layers become nodes;
any other module's ``forward`` runs on the Proxies, so the tracer descends
into containers, blocks and user code. Python control flow on shapes and
module attributes is simply evaluated; control flow on tensor *values* cannot
be captured and raises ``TraceError``. Forward hooks do not run while tracing.

Where the description departs from strict ONNX opset 17 (the consumer is
aimetcle's own runtime, which wants everything as static attributes):

* ``Clip`` carries ``min`` / ``max`` and ``Reshape`` carries ``shape`` as
  attributes (opset 17 takes them as inputs).
* ``PRelu``'s slope keeps torch's ``[num_parameters]`` layout and applies
  along axis 1 (ONNX broadcasting would align it with the last axis).
* ``Flatten`` is emitted only where torch's result equals ONNX's 2-D one
  (everything from axis 1 on flattened); other flattens and views become
  ``Reshape`` with the explicit target shape, batch dimension included.
"""
from __future__ import annotations

import inspect
import itertools
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import nn
from .nn import _normalize_dim

__all__ = ["GraphDescription", "NodeSpec", "Proxy", "TraceError", "describe", "trace"]

Shape = Tuple[int, ...]


class TraceError(ValueError):
    """``forward`` needs tensor values (``if x:``, ``for row in x``), which do not exist while tracing."""


@dataclass
class NodeSpec:
    """One graph node.

    ``outputs`` is always ``[name]``: every op here has one result, and naming
    the value after its node keeps error messages and the listing readable.
    ``module`` is the ``named_modules()`` path of the layer whose call made the
    node (shared by all calls of that layer), or None for operations.
    """

    name: str
    op: str
    inputs: List[str]
    outputs: List[str]
    attrs: Dict[str, Any] = field(default_factory=dict)
    module: Optional[str] = None


@dataclass
class GraphDescription:
    """A traced model: nodes in execution order over named values.

    ``params`` maps input names that are not produced by a node to arrays:
    the model's live float32 arrays under their ``state_dict`` keys, plus the
    tracer's own ones (listed in ``synthetic``): scalar constants of
    arithmetic and the unit scale / zero shift of BN layers with
    ``affine=False``. ``shapes`` holds every graph input and node output.
    """

    inputs: List[Tuple[str, Shape]]
    outputs: List[str]
    nodes: List[NodeSpec]
    params: Dict[str, np.ndarray]
    shapes: Dict[str, Shape]
    synthetic: set


# ----------------------------------------------------------------------------
# Symbolic values
# ----------------------------------------------------------------------------

class Proxy:
    """A value flowing through ``forward`` while tracing: a name and a shape, no data.

    Supports what model code does with activations: layer and functional
    calls, ``+ - *`` with another Proxy or a scalar, and the shape-level
    tensor methods (``shape``, ``size``, ``dim``, ``view``, ``reshape``,
    ``flatten``, spatial ``mean``).
    """

    __slots__ = ("_tracer", "name")

    # NumPy defers binary operators to us (np.float32(2) * x reaches __rmul__,
    # an array operand reaches the clear error in _Tracer.binary) and refuses
    # its ufuncs instead of building object arrays around a Proxy.
    __array_ufunc__ = None

    def __init__(self, tracer: "_Tracer", name: str) -> None:
        self._tracer = tracer
        self.name = name

    def __repr__(self) -> str:
        return f"Proxy({self.name!r}, shape={list(self.shape)})"

    def __aimetcle_module_call__(self, module: nn.Module, args: tuple, kwargs: dict) -> Any:
        return self._tracer.call_module(module, args, kwargs)

    def __aimetcle_function__(self, name: str, args: tuple, kwargs: dict) -> Any:
        return self._tracer.call_function(name, args, kwargs)

    # -- shape queries (answered at trace time) -------------------------------

    @property
    def shape(self) -> Shape:
        return self._tracer.shapes[self.name]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim: Optional[int] = None) -> Any:
        shape = self.shape
        return shape if dim is None else shape[_normalize_dim(dim, len(shape))]

    # -- shape-changing methods -----------------------------------------------

    def view(self, *shape: Any) -> "Proxy":
        """Also ``reshape``: they differ only in memory layout, which a graph does not have."""
        target = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._tracer.reshape(self, target)

    reshape = view

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Proxy":
        return self._tracer.flatten(self, start_dim, end_dim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> "Proxy":
        return self._tracer.mean(self, dim, keepdim)

    # -- arithmetic -----------------------------------------------------------

    def __add__(self, other: Any) -> "Proxy":
        return self._tracer.binary("Add", self, other)

    def __radd__(self, other: Any) -> "Proxy":
        return self._tracer.binary("Add", other, self)

    def __sub__(self, other: Any) -> "Proxy":
        return self._tracer.binary("Sub", self, other)

    def __rsub__(self, other: Any) -> "Proxy":
        return self._tracer.binary("Sub", other, self)

    def __mul__(self, other: Any) -> "Proxy":
        return self._tracer.binary("Mul", self, other)

    def __rmul__(self, other: Any) -> "Proxy":
        return self._tracer.binary("Mul", other, self)

    # -- what needs data ------------------------------------------------------

    def _data_dependent(self, what: str) -> TraceError:
        return TraceError(f"data-dependent control flow cannot be traced: {what} needs the values of "
                          f"{self.name!r}, which do not exist while tracing{self._tracer.where()}; "
                          "branch on shapes or module attributes instead")

    def __bool__(self) -> bool:
        raise self._data_dependent("a truth test (if / while / and / or)")

    def __iter__(self) -> Iterator[Any]:
        raise self._data_dependent("iterating over a value")

    def __int__(self) -> int:
        raise self._data_dependent("converting to a number")

    __float__ = __index__ = __int__

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(f"traced value {self.name!r} has no data, so NumPy cannot run on it"
                        f"{self._tracer.where()}; use aimetcle.nn layers and nn.functional ops in forward")


# ----------------------------------------------------------------------------
# The tracer
# ----------------------------------------------------------------------------

def _snake(op: str) -> str:
    """'GlobalAveragePool' -> 'global_average_pool': the base name of operation nodes."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()


def _numbered(base: str) -> Iterator[str]:
    """base, base_1, base_2, ...: torch.fx's naming of repeated names."""
    yield base
    for k in itertools.count(1):
        yield f"{base}_{k}"


def _pair(value: Any) -> Tuple[int, int]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _pool_size(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling output size, including its rule that the last window must start
    inside the input or the left padding (ONNX's ceil_mode formula lacks that rule)."""
    span = length + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


class _Tracer:
    """State of one ``trace`` call: the nodes, values, shapes and names so far."""

    def __init__(self, model: nn.Module) -> None:
        self.paths: Dict[nn.Module, str] = {m: path for path, m in model.named_modules()}
        self._module_paths = set(self.paths.values())
        self.nodes: List[NodeSpec] = []
        self.params: Dict[str, np.ndarray] = {}
        self.shapes: Dict[str, Shape] = {}
        self.synthetic: set = set()
        # Node names double as value names, so they must not shadow a weight either.
        self._used = set(model.state_dict())
        self._scope: List[str] = []  # labels of the modules whose forward is running

    # -- names and context ----------------------------------------------------

    def _unique(self, candidates: Iterator[str], reserved: Callable[[str], bool]) -> str:
        name = next(n for n in candidates if n not in self._used and not reserved(n))
        self._used.add(name)
        return name

    def label(self, path: Optional[str], module: nn.Module) -> str:
        kind = type(module).__name__
        if path is None:
            return f"an unregistered {kind}"
        return f"{path!r} ({kind})" if path else f"the model ({kind})"

    def where(self) -> str:
        return f" (in {self._scope[-1]})" if self._scope else ""

    # -- values ---------------------------------------------------------------

    def add_input(self, name: str, shape: Shape) -> Proxy:
        self._used.add(name)
        self.shapes[name] = shape
        return Proxy(self, name)

    def value(self, v: Any, what: str) -> Proxy:
        """``v`` as a Proxy of this trace, or a clear error for anything else."""
        if isinstance(v, Proxy):
            if v._tracer is not self:
                raise ValueError(f"{what}: {v!r} belongs to another trace")
            return v
        raise TypeError(f"{what}: expected a traced value, got {type(v).__name__}; only the model's "
                        f"inputs and values computed from them can enter the graph{self.where()}")

    def shape_of(self, x: Proxy, label: str, ranks: Sequence[int]) -> Shape:
        shape = x.shape
        if len(shape) not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise ValueError(f"{label} expects a {want} input, got shape {list(shape)} (value {x.name!r})")
        return shape

    def node(self, op: str, inputs: Sequence[str], shape: Sequence[int],
             attrs: Optional[Dict[str, Any]] = None, path: Optional[str] = None) -> Proxy:
        """Record a node and return its output value.

        A layer's node is named by its path (``path_1``, ``path_2``... when the
        layer is called again); an operation's by its op type. Operation names
        never take a module path, so a layer keeps its own name.
        """
        if path:
            name = self._unique(_numbered(path), lambda n: n != path and n in self._module_paths)
        else:
            name = self._unique(_numbered(_snake(op)), self._module_paths.__contains__)
        self.nodes.append(NodeSpec(name, op, list(inputs), [name], attrs or {}, path))
        self.shapes[name] = tuple(int(d) for d in shape)
        return Proxy(self, name)

    def param(self, path: str, attr: str, array: Any, shape: Shape, label: str) -> str:
        """Register a layer's live array under its state_dict key, checked for what the C side needs."""
        key = f"{path}.{attr}" if path else attr
        if not (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.flags.c_contiguous):
            got = f"a {array.dtype} array" if isinstance(array, np.ndarray) else type(array).__name__
            raise TypeError(f"{label}: {attr} must be a C-contiguous float32 array (the graph shares "
                            f"the model's arrays), got {got}")
        if array.shape != tuple(shape):
            raise ValueError(f"{label}: {attr} has shape {list(array.shape)}, but the layer's "
                             f"configuration needs {list(shape)}")
        self.params[key] = array
        return key

    def synthetic_param(self, name: str, array: np.ndarray) -> str:
        self.params[name] = array
        self.synthetic.add(name)
        return name

    def constant(self, value: numbers.Real) -> str:
        name = self._unique((f"_const_{k}" for k in itertools.count()), self._module_paths.__contains__)
        return self.synthetic_param(name, np.array(value, dtype=np.float32))

    # -- dispatch -------------------------------------------------------------

    def call_module(self, module: nn.Module, args: tuple, kwargs: dict) -> Any:
        path = self.paths.get(module)
        label = self.label(path, module)
        has_state = any(v is not None for v in itertools.chain(module._parameters.values(),
                                                               module._buffers.values()))
        handler = _leaf_handler(module)
        if handler is not None:
            if path is None and has_state:
                raise ValueError(f"{label} is called in forward but is not a submodule of the traced "
                                 "model, so its parameters have no state_dict names; assign it to an "
                                 "attribute of the model")
            if len(args) != 1 or kwargs:
                raise TypeError(f"{label} takes one input, got {len(args)} positional and "
                                f"{len(kwargs)} keyword arguments")
            return handler(self, path, module, self.value(args[0], label))
        if has_state and not module._modules:
            # Its forward would compute with arrays the graph cannot hold.
            supported = ", ".join(sorted(cls.__name__ for cls in _LEAVES))
            raise TypeError(f"cannot trace {label}: it holds parameters or buffers but is not a layer "
                            f"type the tracer knows, so its computation cannot be recorded. Supported "
                            f"layers: {supported}. Modules without parameters are traced through "
                            "their forward.")
        self._scope.append(label)
        try:
            return module.forward(*args, **kwargs)
        finally:
            self._scope.pop()

    def call_function(self, name: str, args: tuple, kwargs: dict) -> Any:
        handler = _FUNCTIONS.get(name)
        if handler is None:
            raise NotImplementedError(f"nn.functional.{name} cannot be traced{self.where()}")
        bound = inspect.signature(getattr(nn.functional, name)).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        if "input" in arguments:
            arguments["input"] = self.value(arguments["input"], f"nn.functional.{name}")
        return handler(self, arguments)

    # -- operations -----------------------------------------------------------

    def unary(self, op: str, x: Proxy, attrs: Optional[Dict[str, Any]] = None,
              path: Optional[str] = None) -> Proxy:
        return self.node(op, [x.name], x.shape, attrs, path)

    def binary(self, op: str, lhs: Any, rhs: Any) -> Proxy:
        verb = {"Add": "add", "Sub": "subtract", "Mul": "multiply"}[op]
        operands = []
        for v in (lhs, rhs):
            if isinstance(v, Proxy):
                operands.append(self.value(v, verb))
            elif isinstance(v, numbers.Real):
                operands.append(v)
            else:
                raise TypeError(f"cannot {verb} a traced value and a {type(v).__name__}: only traced "
                                "values and Python / NumPy scalars can be combined (constant arrays "
                                f"cannot enter the graph){self.where()}")
        shapes = [v.shape if isinstance(v, Proxy) else () for v in operands]
        try:
            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"cannot {verb} values of shapes {list(shapes[0])} and {list(shapes[1])}: "
                             f"they do not broadcast{self.where()}") from None
        names = [v.name if isinstance(v, Proxy) else self.constant(v) for v in operands]
        return self.node(op, names, shape)

    def reshape_node(self, x: Proxy, out: Shape, path: Optional[str] = None) -> Proxy:
        """``Flatten`` where ONNX's 2-D result is torch's, else ``Reshape`` to explicit dims."""
        shape = x.shape
        if len(shape) >= 2 and out == (shape[0], math.prod(shape[1:])):
            return self.node("Flatten", [x.name], out, {"axis": 1}, path)
        return self.node("Reshape", [x.name], out, {"shape": list(out)}, path)

    def reshape(self, x: Proxy, target: Sequence[Any]) -> Proxy:
        shape = x.shape
        total = math.prod(shape)
        dims = [int(d) for d in target]
        free = [i for i, d in enumerate(dims) if d == -1]
        known = math.prod(d for d in dims if d != -1)
        if len(free) > 1 or any(d < -1 for d in dims):
            raise ValueError(f"invalid shape {dims} for view/reshape of {x.name!r}{self.where()}")
        if free and known and total % known == 0:
            dims[free[0]] = total // known
        if math.prod(dims) != total or -1 in dims:
            raise ValueError(f"shape {list(target)} is invalid for {x.name!r} of shape {list(shape)} "
                             f"({total} elements){self.where()}")
        return self.reshape_node(x, tuple(dims))

    def flatten(self, x: Proxy, start_dim: int, end_dim: int, path: Optional[str] = None) -> Proxy:
        shape = x.shape
        if not shape:
            return self.reshape_node(x, (1,), path)
        start, end = _normalize_dim(start_dim, len(shape)), _normalize_dim(end_dim, len(shape))
        if start > end:
            raise ValueError(f"flatten of {x.name!r}: start_dim {start_dim} comes after end_dim "
                             f"{end_dim}{self.where()}")
        out = shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]
        return self.reshape_node(x, out, path)

    def mean(self, x: Proxy, dim: Any, keepdim: bool) -> Proxy:
        shape = x.shape
        dims = () if dim is None else dim if isinstance(dim, (tuple, list)) else (dim,)
        if len(shape) != 4 or sorted(_normalize_dim(d, 4) for d in dims) != [2, 3]:
            raise NotImplementedError(f"mean of {x.name!r} (shape {list(shape)}) over dim={dim} cannot be "
                                      "traced: only the spatial mean, dims (2, 3) of a 4-D value, maps to "
                                      f"GlobalAveragePool{self.where()}")
        pooled = self.node("GlobalAveragePool", [x.name], shape[:2] + (1, 1))
        return pooled if keepdim else self.node("Flatten", [pooled.name], shape[:2], {"axis": 1})

    def cat(self, tensors: Sequence[Any], dim: int) -> Proxy:
        values = [self.value(v, "nn.functional.cat") for v in tensors]
        if not values:
            raise ValueError(f"nn.functional.cat got no values to concatenate{self.where()}")
        shapes = [v.shape for v in values]
        axis = _normalize_dim(dim, len(shapes[0]))
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0]))
                                               if i != axis):
                raise ValueError(f"cannot concatenate shapes {[list(s) for s in shapes]} along dim {dim}: "
                                 f"they differ in another dimension{self.where()}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return self.node("Concat", [v.name for v in values], out, {"axis": axis})

    def adaptive_avg_pool(self, x: Proxy, output_size: Any, label: str, path: Optional[str] = None) -> Proxy:
        shape = self.shape_of(x, label, (4,))
        size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        out = tuple(n if o is None else int(o) for n, o in zip(shape[2:], size))
        if out == (1, 1):
            return self.node("GlobalAveragePool", [x.name], shape[:2] + out, path=path)
        if any(n % o for n, o in zip(shape[2:], out)):
            raise NotImplementedError(f"{label}: adaptive average pooling from {list(shape[2:])} to "
                                      f"{list(out)} has windows of unequal size; only output sizes that "
                                      "divide the input size map to ONNX AveragePool")
        kernel = [n // o for n, o in zip(shape[2:], out)]
        attrs = {"kernel_shape": kernel, "strides": kernel, "pads": [0, 0, 0, 0], "ceil_mode": 0,
                 "count_include_pad": 0}
        return self.node("AveragePool", [x.name], shape[:2] + out, attrs, path)


# ----------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------

def _check_channels(label: str, want: int, shape: Shape) -> None:
    if shape[1] != want:
        raise ValueError(f"{label} expects {want} input channels, got {shape[1]} "
                         f"(input shape {list(shape)})")


def _check_output(label: str, shape: Shape, spatial: Sequence[int]) -> None:
    if any(n < 1 for n in spatial):
        raise ValueError(f"{label}: input of shape {list(shape)} is too small, the output's spatial "
                         f"size would be {list(spatial)}")


def _conv(t: _Tracer, path: str, m: Any, x: Proxy) -> Proxy:
    label = t.label(path, m)
    nd = len(m.kernel_size)
    op = "ConvTranspose" if m.transposed else "Conv"
    shape = t.shape_of(x, label, (nd + 2,))
    if m.padding_mode != "zeros":
        raise NotImplementedError(f"{label}: padding_mode={m.padding_mode!r} cannot be traced; "
                                  f"ONNX {op} pads with zeros only")
    _check_channels(label, m.in_channels, shape)
    k, s, d = m.kernel_size, m.stride, m.dilation
    if m.padding == "valid":
        begin = end = (0,) * nd
    elif m.padding == "same":  # torch puts the odd element of the total at the end
        totals = [di * (ki - 1) for ki, di in zip(k, d)]
        begin, end = [tot // 2 for tot in totals], [tot - tot // 2 for tot in totals]
    else:
        begin = end = m.padding
    if m.transposed:
        spatial = [(n - 1) * si - b - e + di * (ki - 1) + op_ + 1
                   for n, ki, si, di, b, e, op_ in zip(shape[2:], k, s, d, begin, end, m.output_padding)]
        w_shape = (m.in_channels, m.out_channels // m.groups) + tuple(k)
    else:
        spatial = [(n + b + e - di * (ki - 1) - 1) // si + 1
                   for n, ki, si, di, b, e in zip(shape[2:], k, s, d, begin, end)]
        w_shape = (m.out_channels, m.in_channels // m.groups) + tuple(k)
    _check_output(label, shape, spatial)
    inputs = [x.name, t.param(path, "weight", m.weight, w_shape, label)]
    if m.bias is not None:
        inputs.append(t.param(path, "bias", m.bias, (m.out_channels,), label))
    attrs = {"kernel_shape": list(k), "strides": list(s), "pads": list(begin) + list(end),
             "dilations": list(d), "group": m.groups}
    if m.transposed:
        attrs["output_padding"] = list(m.output_padding)
    return t.node(op, inputs, (shape[0], m.out_channels, *spatial), attrs, path)


def _linear(t: _Tracer, path: str, m: nn.Linear, x: Proxy) -> Proxy:
    label = t.label(path, m)
    shape = x.shape
    if len(shape) != 2:
        raise NotImplementedError(f"{label} got a {len(shape)}-D input {list(shape)}; only 2-D inputs "
                                  "[N, in_features] map to ONNX Gemm (flatten before the layer)")
    if shape[1] != m.in_features:
        raise ValueError(f"{label} expects {m.in_features} input features, got {shape[1]} "
                         f"(input shape {list(shape)})")
    inputs = [x.name, t.param(path, "weight", m.weight, (m.out_features, m.in_features), label)]
    if m.bias is not None:
        inputs.append(t.param(path, "bias", m.bias, (m.out_features,), label))
    return t.node("Gemm", inputs, (shape[0], m.out_features), {"alpha": 1.0, "beta": 1.0, "transB": 1}, path)


def _batch_norm(t: _Tracer, path: str, m: Any, x: Proxy) -> Proxy:
    label = t.label(path, m)
    shape = t.shape_of(x, label, (2, 3) if isinstance(m, nn.BatchNorm1d) else (4,))
    _check_channels(label, m.num_features, shape)
    if m.running_mean is None or m.running_var is None:
        raise NotImplementedError(f"{label} has track_running_stats=False, so it normalises with batch "
                                  "statistics even in eval mode; ONNX BatchNormalization needs running "
                                  "statistics")
    c = (m.num_features,)
    inputs = [x.name]
    for attr, fill in (("weight", 1.0), ("bias", 0.0)):  # affine=False: the identity affine
        array = getattr(m, attr)
        inputs.append(t.param(path, attr, array, c, label) if array is not None else
                      t.synthetic_param(f"{path}.{attr}" if path else attr, np.full(c, fill, np.float32)))
    inputs += [t.param(path, "running_mean", m.running_mean, c, label),
               t.param(path, "running_var", m.running_var, c, label)]
    # ONNX's momentum weighs the running value, torch's the batch value.
    momentum = 0.9 if m.momentum is None else 1.0 - m.momentum
    return t.node("BatchNormalization", inputs, shape, {"epsilon": float(m.eps), "momentum": float(momentum)},
                  path)


def _prelu(t: _Tracer, path: str, m: nn.PReLU, x: Proxy) -> Proxy:
    label = t.label(path, m)
    shape = x.shape
    if m.num_parameters > 1 and (len(shape) < 2 or shape[1] != m.num_parameters):
        raise ValueError(f"{label} has {m.num_parameters} slopes for axis 1, but its input has shape "
                         f"{list(shape)}")
    weight = t.param(path, "weight", m.weight, (m.num_parameters,), label)
    return t.node("PRelu", [x.name, weight], shape, path=path)


def _max_pool(t: _Tracer, path: str, m: nn.MaxPool2d, x: Proxy) -> Proxy:
    label = t.label(path, m)
    shape = t.shape_of(x, label, (4,))
    k, s, p, d = (_pair(v) for v in (m.kernel_size, m.stride, m.padding, m.dilation))
    spatial = [_pool_size(n, *a, m.ceil_mode) for n, *a in zip(shape[2:], k, s, p, d)]
    _check_output(label, shape, spatial)
    attrs = {"kernel_shape": list(k), "strides": list(s), "pads": list(p) * 2, "dilations": list(d),
             "ceil_mode": int(m.ceil_mode)}
    return t.node("MaxPool", [x.name], shape[:2] + tuple(spatial), attrs, path)


def _avg_pool(t: _Tracer, path: str, m: nn.AvgPool2d, x: Proxy) -> Proxy:
    label = t.label(path, m)
    shape = t.shape_of(x, label, (4,))
    if m.divisor_override is not None:
        raise NotImplementedError(f"{label}: divisor_override has no ONNX AveragePool equivalent")
    k, s, p = (_pair(v) for v in (m.kernel_size, m.stride, m.padding))
    spatial = [_pool_size(n, *a, 1, m.ceil_mode) for n, *a in zip(shape[2:], k, s, p)]
    _check_output(label, shape, spatial)
    attrs = {"kernel_shape": list(k), "strides": list(s), "pads": list(p) * 2, "ceil_mode": int(m.ceil_mode),
             "count_include_pad": int(m.count_include_pad)}
    return t.node("AveragePool", [x.name], shape[:2] + tuple(spatial), attrs, path)


_RELU6 = {"min": 0.0, "max": 6.0}

# Layer type -> handler(tracer, path, module, input). Dropout is recorded (as
# torch's exporter in training-preserving mode does) and is the identity: the
# trace has eval semantics.
_LEAVES: Dict[type, Callable[[_Tracer, str, Any, Proxy], Proxy]] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.ConvTranspose1d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: lambda t, path, m, x: t.unary("Relu", x, path=path),
    nn.ReLU6: lambda t, path, m, x: t.unary("Clip", x, dict(_RELU6), path),
    nn.PReLU: _prelu,
    nn.LeakyReLU: lambda t, path, m, x: t.unary("LeakyRelu", x, {"alpha": float(m.negative_slope)}, path),
    nn.Sigmoid: lambda t, path, m, x: t.unary("Sigmoid", x, path=path),
    # An Identity (a folded BatchNorm, a removed layer) computes nothing: no node, so
    # that it does not stand between a layer and its activation.
    nn.Identity: lambda t, path, m, x: x,
    nn.Dropout: lambda t, path, m, x: t.unary("Dropout", x, path=path),
    nn.Flatten: lambda t, path, m, x: t.flatten(x, m.start_dim, m.end_dim, path),
    nn.MaxPool2d: _max_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: lambda t, path, m, x: t.adaptive_avg_pool(x, m.output_size, t.label(path, m), path),
}

# nn.functional name -> handler(tracer, bound arguments with defaults applied)
_FUNCTIONS: Dict[str, Callable[[_Tracer, Dict[str, Any]], Proxy]] = {
    "relu": lambda t, a: t.unary("Relu", a["input"]),
    "relu6": lambda t, a: t.unary("Clip", a["input"], dict(_RELU6)),
    "leaky_relu": lambda t, a: t.unary("LeakyRelu", a["input"], {"alpha": float(a["negative_slope"])}),
    "sigmoid": lambda t, a: t.unary("Sigmoid", a["input"]),
    "flatten": lambda t, a: t.flatten(a["input"], a["start_dim"], a["end_dim"]),
    "cat": lambda t, a: t.cat(a["tensors"], a["dim"]),
    "adaptive_avg_pool2d": lambda t, a: t.adaptive_avg_pool(a["input"], a["output_size"],
                                                            f"adaptive_avg_pool2d{t.where()}"),
}


def _leaf_handler(module: nn.Module) -> Optional[Callable[..., Proxy]]:
    """The handler of a known layer type, unless a subclass replaced its forward:
    then the subclass's own code is what runs, so it is traced (or refused) as such."""
    for cls in type(module).__mro__:
        if cls in _LEAVES:
            return _LEAVES[cls] if type(module).forward is cls.forward else None
    return None


# ----------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------

def _input_shapes(input_shapes: Any, dummy_input: Any) -> List[Shape]:
    """AIMET's conventions: one shape tuple or a list of them; or array(s) whose shapes are used."""
    if (input_shapes is None) == (dummy_input is None):
        raise TypeError("trace() needs exactly one of input_shapes and dummy_input")
    if dummy_input is not None:
        items = dummy_input if isinstance(dummy_input, (tuple, list)) else [dummy_input]
        shapes = [np.shape(a) for a in items]
    elif (isinstance(input_shapes, (tuple, list)) and input_shapes
          and all(isinstance(s, (tuple, list)) for s in input_shapes)):
        shapes = list(input_shapes)
    else:
        shapes = [input_shapes]
    result = []
    for shape in shapes:
        if not isinstance(shape, (tuple, list)) or not all(
                isinstance(d, numbers.Integral) and d >= 1 for d in shape):
            raise ValueError(f"an input shape must be a tuple of positive ints, got {shape!r}")
        result.append(tuple(int(d) for d in shape))
    return result


def trace(model: nn.Module, input_shapes: Any = None, dummy_input: Any = None) -> GraphDescription:
    """Run ``model.forward`` symbolically and return its graph.

    ``input_shapes``: a shape tuple for one input (``(1, 3, 224, 224)``) or a
    list of tuples for several, as AIMET's ``fold_all_batch_norms`` takes;
    or ``dummy_input``: an array or tuple of arrays (only shapes are used).
    Inputs are named ``input``, or ``input.0``, ``input.1``... The model is
    traced with eval semantics (every ``training`` flag is False during the
    trace and restored afterwards, also on errors); nothing else is touched.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"trace() takes an aimetcle.nn.Module, got {type(model).__name__}")
    shapes = _input_shapes(input_shapes, dummy_input)
    tracer = _Tracer(model)
    names = ["input"] if len(shapes) == 1 else [f"input.{i}" for i in range(len(shapes))]
    proxies = [tracer.add_input(name, shape) for name, shape in zip(names, shapes)]
    modes = {m: m.training for m in model.modules()}
    try:
        for m in modes:
            object.__setattr__(m, "training", False)
        result = model(*proxies)
    finally:
        for m, mode in modes.items():
            object.__setattr__(m, "training", mode)
    items = result if isinstance(result, (tuple, list)) else (result,)
    if not items or not all(isinstance(v, Proxy) for v in items):
        raise TypeError("forward must return a traced value or a tuple / list of them, got "
                        f"{type(result).__name__}")
    outputs = [tracer.value(v, "the model's output").name for v in items]
    return GraphDescription(inputs=list(zip(names, shapes)), outputs=outputs, nodes=tracer.nodes,
                            params=tracer.params, shapes=tracer.shapes, synthetic=tracer.synthetic)


def describe(desc: GraphDescription) -> str:
    """One line per node, ``name  op  inputs -> output  shape``, between the graph's inputs and outputs."""
    width = max((len(n.name) for n in desc.nodes), default=0)
    op_width = max((len(n.op) for n in desc.nodes), default=0)
    lines = ["inputs: " + ", ".join(f"{name} {list(shape)}" for name, shape in desc.inputs)]
    for n in desc.nodes:
        out = n.outputs[0]
        lines.append(f"  {n.name:<{width}}  {n.op:<{op_width}}  {', '.join(n.inputs)} -> {out}  "
                     f"{list(desc.shapes[out])}")
    lines.append("outputs: " + ", ".join(desc.outputs))
    return "\n".join(lines)
