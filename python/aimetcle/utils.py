"""Model utilities (AIMET: ``aimet_torch.utils``)."""

from . import nn


def replace_modules_of_type1_with_type2(model, type1, type2):
    """Replace every submodule of type ``type1`` with a new ``type2()``, in place.

    :param model: the model (for an ``aimetcle.onnx`` model: ReLU6 -> ReLU only,
        which rewrites the graph's ``Clip(0, 6)`` nodes as ``Relu``)
    :param type1: the module type to replace (e.g. ``nn.ReLU6``)
    :param type2: the module type to put instead (e.g. ``nn.ReLU``), built with no arguments
    """
    from .onnx import OnnxModel
    if isinstance(model, OnnxModel):
        if not (type1 is nn.ReLU6 and type2 is nn.ReLU):
            raise NotImplementedError("on an ONNX model only ReLU6 -> ReLU replacement is supported")
        names = [name for name, module in model._modules.items() if isinstance(module, nn.ReLU6)]
        model.push()
        model._handle.replace_relu6(names)
        model.pull()
        return
    for name, child in list(model._modules.items()):
        if isinstance(child, type1):
            model._modules[name] = type2()
        elif child is not None:
            replace_modules_of_type1_with_type2(child, type1, type2)
