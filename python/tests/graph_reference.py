"""A NumPy interpreter for ``tracing.GraphDescription``: an independent check of the tracer.

Every node is computed from its op type, ONNX attributes and named inputs
alone, never from the module that made it, using reference.py's kernels.
So interpreting a traced graph agrees with running the model under
``reference.numpy_forward()`` only if the tracer recorded the right ops,
attributes, parameters and wiring. Each result's shape is also checked
against ``desc.shapes``, which tests the tracer's shape inference against
the kernels (themselves checked against torch's definitions in test_nn.py).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict

import numpy as np

import reference


def _split_pads(attrs: Dict[str, Any]):
    n = len(attrs["kernel_shape"])
    return attrs["pads"][:n], attrs["pads"][n:]


def _symmetric_pads(attrs: Dict[str, Any]):
    begin, end = _split_pads(attrs)
    assert begin == end, f"torch pads this op symmetrically, got pads {attrs['pads']}"
    return begin


def _conv(a: Dict[str, Any], x, w, b=None):
    # Pad explicitly so that asymmetric ('same' with an even kernel) pads work too.
    begin, end = _split_pads(a)
    x = np.pad(x, ((0, 0), (0, 0)) + tuple(zip(begin, end)))
    fn = reference.conv1d if len(a["kernel_shape"]) == 1 else reference.conv2d
    return fn(x, w, b, a["strides"], 0, a["dilations"], a["group"])


def _conv_transpose(a: Dict[str, Any], x, w, b=None):
    fn = reference.conv_transpose1d if len(a["kernel_shape"]) == 1 else reference.conv_transpose2d
    return fn(x, w, b, a["strides"], _symmetric_pads(a), a["output_padding"], a["group"], a["dilations"])


def _gemm(a: Dict[str, Any], x, w, c=None):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    y = a["alpha"] * (x @ (w.T if a.get("transB") else w))
    if c is not None:
        y = y + a["beta"] * np.asarray(c, np.float64)
    return y.astype(np.float32)


def _flatten(a: Dict[str, Any], x):
    axis = a["axis"]
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _global_average_pool(a: Dict[str, Any], x):
    axes = tuple(range(2, x.ndim))
    return np.asarray(x, np.float64).mean(axis=axes, keepdims=True).astype(np.float32)


OPS: Dict[str, Callable[..., np.ndarray]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "BatchNormalization": lambda a, x, scale, bias, mean, var: reference.batch_norm(
        x, mean, var, scale, bias, a["epsilon"]),
    "Relu": lambda a, x: reference.relu(x),
    "Clip": lambda a, x: np.clip(x, a["min"], a["max"]).astype(np.float32),
    "PRelu": lambda a, x, slope: reference.prelu(x, slope),  # torch's per-channel layout (tracing.py)
    "LeakyRelu": lambda a, x: reference.leaky_relu(x, a["alpha"]),
    "Sigmoid": lambda a, x: reference.sigmoid(x),
    "Identity": lambda a, x: x,
    "Dropout": lambda a, x: x,
    "Flatten": _flatten,
    "Reshape": lambda a, x: x.reshape(a["shape"]),
    "MaxPool": lambda a, x: reference.max_pool2d(x, a["kernel_shape"], a["strides"], _symmetric_pads(a),
                                                 a["dilations"], bool(a["ceil_mode"])),
    "AveragePool": lambda a, x: reference.avg_pool2d(x, a["kernel_shape"], a["strides"], _symmetric_pads(a),
                                                     bool(a["ceil_mode"]), bool(a["count_include_pad"])),
    "GlobalAveragePool": _global_average_pool,
    "Concat": lambda a, *xs: np.concatenate(xs, axis=a["axis"]),
    "Add": lambda a, x, y: x + y,
    "Sub": lambda a, x, y: x - y,
    "Mul": lambda a, x, y: x * y,
}


def run_graph(desc: Any, *inputs: np.ndarray) -> Any:
    """Interpret ``desc`` on ``inputs``; one array for one graph output, else a tuple."""
    assert len(inputs) == len(desc.inputs)
    values: Dict[str, np.ndarray] = dict(desc.params)
    for (name, shape), x in zip(desc.inputs, inputs):
        assert x.shape == shape, (name, x.shape, shape)
        values[name] = np.asarray(x, np.float32)
    for node in desc.nodes:
        assert node.outputs == [node.name] and node.name not in values, node
        out = OPS[node.op](node.attrs, *(values[i] for i in node.inputs))
        assert out.shape == desc.shapes[node.name], (node.name, out.shape, desc.shapes[node.name])
        values[node.name] = out
    outputs = tuple(values[name] for name in desc.outputs)
    return outputs[0] if len(outputs) == 1 else outputs
