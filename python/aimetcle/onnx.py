"""ONNX models without the ``onnx`` package: ``load(path)`` / ``save(model, path)``.

``load`` returns an ``OnnxModel``: an ``nn.Module`` whose children are views of
the graph's nodes, named by node name — ``nn.Conv2d`` / ``nn.ConvTranspose2d`` /
``nn.Linear`` / ``nn.BatchNorm2d`` / ``nn.ReLU`` / ``nn.ReLU6`` / ``nn.Identity``
where the node is one, ``OnnxNode`` otherwise — so every API that takes a
module tree takes it too. ``state_dict()`` is keyed by initializer name.
The library holds the graph; the views hold the weights as float32 NumPy
arrays, written to the library before every graph operation (``push``) and
refreshed in place after it (``pull``), so the view objects a caller holds
stay valid.
"""

import os

import numpy as np

from . import nn
from ._model import Handle

__all__ = ["OnnxModel", "OnnxNode", "load", "save"]


class OnnxNode(nn.Module):
    """A graph node that is not one of the nn layer types (Add, Concat, ...)."""

    def __init__(self, op_type, attributes=None):
        super().__init__()
        self.op_type = op_type
        self.attributes = dict(attributes or {})

    def extra_repr(self):
        return f"op_type={self.op_type!r}"


def _view(node, params):
    """The nn view of a described node, or None when it needs an OnnxNode."""
    op, attrs, inputs = node["op"], node["attributes"], node["inputs"]
    weight = params.get(inputs[1]) if len(inputs) > 1 else None
    has_bias = len(inputs) > 2 and inputs[2] in params
    if op in ("Conv", "ConvTranspose") and weight is not None and weight.ndim in (3, 4):
        dims = weight.ndim - 2
        groups = int(attrs.get("group", 1))
        pads = attrs.get("pads", [0] * 2 * dims)
        padding = tuple(max(pads[k], pads[k + dims]) for k in range(dims))
        if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            padding = tuple(max(1, k // 2) for k in weight.shape[2:])  # marks the layer as padded
        common = dict(stride=tuple(attrs.get("strides", [1] * dims)), padding=padding,
                      dilation=tuple(attrs.get("dilations", [1] * dims)), groups=groups, bias=has_bias)
        if op == "Conv":
            cls = nn.Conv1d if dims == 1 else nn.Conv2d
            return cls(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), **common)
        cls = nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
        out_pad = tuple(attrs.get("output_padding", [0] * dims))
        return cls(weight.shape[0], weight.shape[1] * groups, tuple(weight.shape[2:]), output_padding=out_pad,
                   **common)
    if (op == "Gemm" and weight is not None and weight.ndim == 2 and attrs.get("transB", 0) == 1
            and attrs.get("transA", 0) == 0 and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0):
        return nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
    if op == "BatchNormalization" and len(inputs) == 5 and all(name in params for name in inputs[1:]):
        return nn.BatchNorm2d(params[inputs[1]].shape[0], eps=float(attrs.get("epsilon", 1e-5)))
    if op == "Relu":
        return nn.ReLU()
    if op == "Identity":
        return nn.Identity()
    return None


_PARAM_SLOTS = {nn.BatchNorm2d: ("weight", "bias", "running_mean", "running_var")}


class OnnxModel(nn.Module):
    """An ONNX model held by the library, with nn views of its nodes."""

    def __init__(self, handle):
        super().__init__()
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_bindings", {})  # node name -> [(attribute, param name)]
        object.__setattr__(self, "_clip6", set())  # Clip nodes with bounds (0, 6)
        self._build()

    # -- structure ---------------------------------------------------------------

    def _build(self):
        """(Re)creates views from the library's graph, keeping existing view
        objects (and their arrays) for nodes that are still there."""
        description = self._handle.describe()
        params = {}
        for entry in description["params"]:
            old = self._params.get(entry["name"])
            new = self._handle.get_param(entry["name"])
            if old is not None and old.shape == new.shape and old.dtype == np.float32:
                old[...] = new
                new = old
            params[entry["name"]] = new
        old_views = dict(self._modules)
        self._modules.clear()
        self._bindings.clear()
        self._clip6.clear()
        for node in description["nodes"]:
            name, op = node["name"], node["op"]
            view = old_views.get(name)
            fresh = _view(node, params) if op != "Clip" else None
            if op == "Clip" and _is_relu6(node, params, description):
                fresh = nn.ReLU6()
                self._clip6.add(name)
            if fresh is None:
                fresh = OnnxNode(op, node["attributes"])
            if view is None or type(view) is not type(fresh):
                view = fresh
            self._modules[name] = view
            self._bindings[name] = self._bind(view, node, params)
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_description", description)

    @staticmethod
    def _bind(view, node, params):
        """Points the view's parameters at the graph's arrays; returns the bindings."""
        inputs = node["inputs"]
        if isinstance(view, nn.BatchNorm2d):
            slots = list(zip(("weight", "bias", "running_mean", "running_var"), inputs[1:5]))
        elif isinstance(view, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)):
            slots = [("weight", inputs[1])] + ([("bias", inputs[2])] if len(inputs) > 2 and inputs[2] in params else [])
            if len(slots) == 1:
                view.bias = None
        else:
            return []
        for attribute, param in slots:
            setattr(view, attribute, params[param])
        return slots

    @property
    def input_names(self):
        return [v["name"] for v in self._description["inputs"]]

    @property
    def output_names(self):
        return [v["name"] for v in self._description["outputs"]]

    @property
    def handle(self):
        """The library model, with the views' current weights written to it."""
        self.push()
        return self._handle

    # -- weights -----------------------------------------------------------------

    def push(self):
        """Writes every view's weights to the library (validated first)."""
        from ._layers import checked_array
        writes = []
        for node, slots in self._bindings.items():
            view = self._modules.get(node)
            for attribute, param in slots:
                value = getattr(view, attribute)
                writes.append((param, checked_array(value, node, attribute, self._params[param].shape)))
            if isinstance(view, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)) \
                    and view.bias is not None and len(slots) == 1:
                raise NotImplementedError(f"node '{node}' gained a bias outside the library's transforms; an ONNX "
                                          f"model gains biases only through fold_given_batch_norms / equalize_model")
        for param, value in writes:
            self._handle.set_param(param, value)
            self._params[param] = value

    def pull(self):
        """Refreshes the views from the library after a graph operation."""
        self._build()

    def state_dict(self, *args, **kwargs):
        """The float initializers by name (live arrays)."""
        result = dict(self._params)
        for node, slots in self._bindings.items():
            for attribute, param in slots:
                result[param] = getattr(self._modules[node], attribute)
        return result

    def load_state_dict(self, state_dict, strict=True):
        current = self.state_dict()
        missing = sorted(set(current) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(current))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for key, value in state_dict.items():
            if key in current:
                value = np.asarray(value, dtype=np.float32)
                if value.shape != current[key].shape:
                    raise ValueError(f"load_state_dict: '{key}' has shape {value.shape}, the model needs "
                                     f"{current[key].shape}")
                current[key][...] = value
        return missing, unexpected

    def forward(self, *inputs):
        raise NotImplementedError("running an ONNX model arrives with the aimetcle runtime")

    def _get_name(self):
        return "OnnxModel"


def _is_relu6(node, params, description):
    attrs, inputs = node["attributes"], node["inputs"]
    if "min" in attrs and "max" in attrs:
        return (attrs["min"], attrs["max"]) == (0.0, 6.0)
    if len(inputs) != 3:
        return False
    constants = {n["outputs"][0]: n["attributes"].get("value") for n in description["nodes"] if n["op"] == "Constant"}

    def scalar(name):
        if name in params:
            return float(params[name].reshape(-1)[0]) if params[name].size == 1 else None
        value = constants.get(name)
        return float(value["values"][0]) if isinstance(value, dict) and len(value["values"]) == 1 else None

    return (scalar(inputs[1]), scalar(inputs[2])) == (0.0, 6.0)


def load(path):
    """Loads an ONNX file as an ``OnnxModel`` (no ``onnx`` package needed).

    Malformed or truncated files, external-data models and unsupported opsets
    raise with a message that says what is wrong."""
    with nn._uninitialized():
        return OnnxModel(Handle.load_onnx(path))


def save(model, path, input_shapes=None, dummy_input=None):
    """Writes ``model`` as ONNX: an ``OnnxModel`` with its current weights, or an
    ``nn.Module`` tree traced with ``input_shapes`` / ``dummy_input`` (opset 17).
    The file is written to a temporary name and renamed: a failure never leaves
    a half-written file."""
    if isinstance(model, OnnxModel):
        model.handle.save_onnx(path)
        return
    if input_shapes is None and dummy_input is None:
        raise ValueError("saving a module tree as ONNX needs input_shapes or dummy_input to trace it")
    from ._modeltree import handle_for
    handle, _ = handle_for(model, input_shapes, dummy_input)
    try:
        handle.save_onnx(os.fspath(path))
    finally:
        handle.close()
