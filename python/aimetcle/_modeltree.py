"""The bridge between nn module trees and library models for the graph-level
(auto-mode) APIs: trace → build a library model → transform it there → write
the results back into the module tree.

Everything that can fail happens in the library on its own copy of the
weights; the module tree is touched only after the transform succeeded, so a
failure leaves the caller's model exactly as it was.
"""

import warnings

import numpy as np

from . import nn
from ._model import Handle
from .onnx import OnnxModel
from .tracing import trace



def handle_for(model, input_shapes=None, dummy_input=None):
    """A library model for ``model``: its own handle for an OnnxModel (weights
    pushed), else a new one built from a trace. Returns (handle, description or None)."""
    if isinstance(model, OnnxModel):
        return model.handle, None
    if input_shapes is None and dummy_input is None:
        raise ValueError("input_shapes or dummy_input is needed to trace the model")
    desc = trace(model, input_shapes, dummy_input)
    handle = Handle.create()
    try:
        for name, shape in desc.inputs:
            handle.add_input(name, shape)
        for node in desc.nodes:
            handle.add_node(node.op, node.name, node.inputs, node.outputs, node.attrs)
        for name, array in desc.params.items():
            handle.set_param(name, _onnx_layout(desc, name, array))
        for name in desc.outputs:
            handle.add_output(name)
    except BaseException:
        handle.close()
        raise
    return handle, desc


def _onnx_layout(desc, name, array):
    """PRelu slopes keep torch's [C] in the module; ONNX broadcasts them from
    the last axis, so the graph gets [C, 1, ...]."""
    for node in desc.nodes:
        if node.op == "PRelu" and len(node.inputs) > 1 and node.inputs[1] == name and array.ndim == 1 and array.size > 1:
            rank = len(desc.shapes[node.inputs[0]])
            return array.reshape((-1,) + (1,) * (rank - 2))
    return array


class Transform:
    """Runs one library transform for ``model`` and maps its report back.

    ``report`` is the library's report; ``module(node_name)`` gives the module
    behind a node (the OnnxModel view, or the traced module).
    """

    def __init__(self, model, input_shapes=None, dummy_input=None):
        self.model = model
        self.handle, self.desc = handle_for(model, input_shapes, dummy_input)
        self.nodes = {} if self.desc is None else {n.name: n for n in self.desc.nodes}
        self.report = None

    def module(self, node_name):
        if isinstance(self.model, OnnxModel):
            return self.model._modules[node_name]
        return self.model.get_submodule(self.nodes[node_name].module)

    def run(self, fn):
        try:
            self.report = fn(self.handle)
            self._write_back()
        finally:
            if not isinstance(self.model, OnnxModel):
                self.handle.close()
        for entry in self.report.get("unfolded_batchnorms", []):
            name = entry["batchnorm"]
            if not isinstance(self.model, OnnxModel) and name in self.nodes:
                name = self.nodes[name].module or name
            warnings.warn(f"BatchNorm '{name}' is not folded: {entry['reason']}", stacklevel=3)
        return self

    def _write_back(self):
        if isinstance(self.model, OnnxModel):
            self.model.pull()
            return
        for entry in self.report.get("layers", []):
            module = self.module(entry["node"])
            self.handle.get_param(entry["weight"], out=module.weight)
            if entry["bias"] is not None:
                if module.bias is None:
                    module.bias = self.handle.get_param(entry["bias"])
                else:
                    self.handle.get_param(entry["bias"], out=module.bias)
        parents = {id(child): (module, key) for _, module in self.model.named_modules()
                   for key, child in module._modules.items()}
        for pair in self.report.get("folded", []):
            parent, key = parents[id(self.module(pair["batchnorm"]))]
            parent._modules[key] = nn.Identity()

    def folded_pairs(self, bn_modules):
        """[(layer module, BN module)] from the report; ``bn_modules`` maps BN
        node names to the BN modules as they were before the fold."""
        return [(self.module(p["layer"]), bn_modules[p["batchnorm"]]) for p in self.report["folded"]]

    def batchnorms(self):
        """Node name -> BN module, taken before a fold replaces them."""
        if isinstance(self.model, OnnxModel):
            return {name: m for name, m in self.model._modules.items() if isinstance(m, nn.BatchNorm2d)}
        return {n.name: self.model.get_submodule(n.module) for n in self.desc.nodes
                if n.op == "BatchNormalization" and n.module is not None}

    def cls_set_infos(self):
        from .cross_layer_equalization import ClsSetInfo
        infos = []
        for s in self.report["cls_sets"]:
            layers = [self.module(name) for name in s["layers"]]
            pairs = [ClsSetInfo.ClsSetLayerPairInfo(layers[k], layers[k + 1], np.asarray(s["scales"][k], np.float32),
                                                    s["relu_between"][k]) for k in range(len(layers) - 1)]
            infos.append(ClsSetInfo(*pairs))
        return infos
