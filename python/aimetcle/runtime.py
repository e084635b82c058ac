"""Running models: ``run(model, *inputs, capture=None)``, also behind ``model(x)``.

Module trees are traced for the input shapes and run by the library's
executor (float32, NCHW, any batch); an ONNX model runs as loaded.
"""

import numpy as np

from ._modeltree import handle_for
from .onnx import OnnxModel


def run(model, *inputs, capture=None):
    """Runs ``model`` on NumPy ``inputs`` (one per model input: float32 data, int64 or bool where the
    model declares them; none for an ONNX model without inputs).

    :param capture: names of values to return as well (node outputs; for a
        module tree, the module paths of its layers)
    :return: the output array (a tuple for several outputs); with ``capture``,
        ``(outputs, {name: array})``
    """
    if not inputs and not (isinstance(model, OnnxModel) and not model.input_names):
        raise TypeError("run() needs the model's input array(s)")
    for k, x in enumerate(inputs):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input {k} must be a NumPy array, got {type(x).__name__}")
    handle, desc = handle_for(model, dummy_input=inputs if len(inputs) != 1 else inputs[0])
    try:
        names = model.input_names if isinstance(model, OnnxModel) else [name for name, _ in desc.inputs]
        if len(names) != len(inputs):
            raise ValueError(f"the model takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}")
        results = handle.run(dict(zip(names, inputs)), capture or ())
    finally:
        if not isinstance(model, OnnxModel):
            handle.close()
    n_out = len(results) - len(capture or ())
    outputs = [array for _, array in results[:n_out]]
    outputs = outputs[0] if len(outputs) == 1 else tuple(outputs)
    if capture:
        return outputs, {name: array for name, array in results[n_out:]}
    return outputs
