"""AIMET TensorFlow's ``equalize_model(sess, start_op_names, output_op_names)``.

There is no TensorFlow session here: ``sess`` is an ``aimetcle.onnx`` model
(for example a Keras model converted to ONNX). The graph between the named
start and output ops (node or value names) is equalized in place.
"""

from .. import _lib
from .._modeltree import Transform
from ..cross_layer_equalization import _warn_relu6
from ..onnx import OnnxModel


def equalize_model(sess, start_op_names, output_op_names):
    """BN fold, ReLU6 -> ReLU, CLS and high-bias fold between the named ops.

    :param sess: an ``aimetcle.onnx.OnnxModel``
    :param start_op_names: name or list of names of the starting ops / inputs
    :param output_op_names: name or list of names of the output ops / values
    :return: the equalized model (the same object, updated in place)
    """
    if not isinstance(sess, OnnxModel):
        raise TypeError(f"sess must be an aimetcle.onnx model (aimetcle.onnx.load), got {type(sess).__name__}")
    starts = [start_op_names] if isinstance(start_op_names, str) else list(start_op_names)
    outputs = [output_op_names] if isinstance(output_op_names, str) else list(output_op_names)
    transform = Transform(sess).run(lambda handle: handle.equalize(_lib.AIMET_EQUALIZE_DEFAULT, starts, outputs))
    _warn_relu6(len(transform.report["relu6_replaced"]))
    return sess
