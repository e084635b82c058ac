"""Batch-norm folding (AIMET: ``aimet_torch.batch_norm_fold``), SPEC §1."""

from . import _lib, nn
from ._layers import BATCHNORM_TYPES, BoundBatchNorm, BoundLayer, Snapshot, layer_kind, module_names


def _parents(model):
    """id(module) -> (parent module, child key) for every submodule."""
    parents = {}
    for _, module in model.named_modules():
        for key, child in module._modules.items():
            if child is not None:
                parents.setdefault(id(child), (module, key))
    return parents


def _describe(module):
    return type(module).__name__ if module is not None else "None"


def fold_given_batch_norms(model, layer_pairs):
    """Fold the given BatchNorms into their layers, in place.

    Each pair is ``(layer, bn)`` (BN after the layer: fold backward) or
    ``(bn, layer)`` (BN before it: fold forward), with layer a Conv1d, Conv2d,
    ConvTranspose1d/2d or Linear. The layer's weight and bias arrays are
    updated in place (a layer without bias gains one); each folded BN is
    replaced by ``nn.Identity`` in the model. Either every pair is folded or,
    on error, nothing changes.

    :param model: the model holding the layers.
    :param layer_pairs: pairs of layers to fold, as above.
    :return: None
    """
    names = module_names(model)
    parents = _parents(model)
    plan = []
    folded_bns = set()
    for i, pair in enumerate(layer_pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"layer_pairs[{i}] must be a (layer, bn) or (bn, layer) pair, got {pair!r}")
        first, second = pair
        if layer_kind(first) is not None and isinstance(second, BATCHNORM_TYPES):
            layer, bn, position = first, second, _lib.AIMET_BN_AFTER_LAYER
        elif isinstance(first, BATCHNORM_TYPES) and layer_kind(second) is not None:
            bn, layer, position = first, second, _lib.AIMET_BN_BEFORE_LAYER
        else:
            raise TypeError(f"layer_pairs[{i}] is ({_describe(first)}, {_describe(second)}); expected "
                            f"(Conv/Linear, BatchNorm) or (BatchNorm, Conv/Linear)")
        for module, what in ((layer, "layer"), (bn, "BatchNorm")):
            if id(module) not in names or module is model:
                raise ValueError(f"layer_pairs[{i}]: the {what} {_describe(module)} is not a submodule of the model")
        if id(bn) in folded_bns:
            raise ValueError(f"layer_pairs[{i}]: BatchNorm '{names[id(bn)]}' appears in more than one pair")
        folded_bns.add(id(bn))
        plan.append((layer, bn, position))

    with Snapshot(layer for layer, _, _ in plan):
        for layer, bn, position in plan:
            bound = BoundLayer(layer, names[id(layer)], with_bias=True)
            _lib.aimet_bn_fold(bound.struct, BoundBatchNorm(bn, names[id(bn)]).struct, position)
            bound.commit()

    for _, bn, _ in plan:
        parent, key = parents[id(bn)]
        parent._modules[key] = nn.Identity()
