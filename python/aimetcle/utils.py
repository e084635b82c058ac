"""Model utilities (AIMET: ``aimet_torch.utils``)."""


def replace_modules_of_type1_with_type2(model, type1, type2):
    """Replace every submodule of type ``type1`` with a new ``type2()``, in place.

    :param model: the model
    :param type1: the module type to replace (e.g. ``nn.ReLU6``)
    :param type2: the module type to put instead (e.g. ``nn.ReLU``), built with no arguments
    """
    for name, child in list(model._modules.items()):
        if isinstance(child, type1):
            model._modules[name] = type2()
        elif child is not None:
            replace_modules_of_type1_with_type2(child, type1, type2)
