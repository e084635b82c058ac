"""Batch-norm folding (AIMET: ``aimet_torch.batch_norm_fold``)."""

from . import _lib, nn
from ._layers import BATCHNORM_TYPES, BoundBatchNorm, BoundLayer, Snapshot, layer_kind, module_names
from ._modeltree import Transform
from .onnx import OnnxModel


def fold_all_batch_norms(model, input_shapes, dummy_input=None):
    """Fold every BatchNorm that a Conv1d/Conv2d/ConvTranspose/Linear can absorb, in place.

    The model is traced with ``input_shapes`` (or ``dummy_input``) to find
    ``layer -> bn`` edges (the layer feeds only the BN) and then ``bn -> layer``
    edges (the BN feeds only the layer, and the fold is valid). Folded BNs
    become ``nn.Identity``; a layer without bias gains one. An ``OnnxModel``
    needs no shapes. On error nothing changes.

    :param model: the model (module tree or ``aimetcle.onnx`` model)
    :param input_shapes: input shape(s) of the model, e.g. ``(1, 3, 224, 224)``
    :param dummy_input: an input array (or tuple of arrays), instead of shapes
    :return: ``[(layer, bn)]`` for every folded pair, layer first
    """
    transform = Transform(model, input_shapes, dummy_input)
    batchnorms = transform.batchnorms()
    flags = _lib.AIMET_EQUALIZE_KEEP_RELU6 | _lib.AIMET_EQUALIZE_NO_SCALE | _lib.AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD
    transform.run(lambda handle: handle.equalize(flags))
    return transform.folded_pairs(batchnorms)


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
    if isinstance(model, OnnxModel):
        _fold_given_onnx(model, layer_pairs)
        return
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


def _fold_given_onnx(model, layer_pairs):
    """fold_given_batch_norms on an ONNX model: the library folds by node name."""
    names = {id(module): name for name, module in model._modules.items()}
    pairs = []
    for i, pair in enumerate(layer_pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or any(id(m) not in names for m in pair):
            raise ValueError(f"layer_pairs[{i}] must be two nodes of this ONNX model (its named_modules())")
        first, second = pair
        if isinstance(second, BATCHNORM_TYPES):
            pairs.append((names[id(first)], names[id(second)], _lib.AIMET_BN_AFTER_LAYER))
        else:
            pairs.append((names[id(second)], names[id(first)], _lib.AIMET_BN_BEFORE_LAYER))
    model.push()
    model._handle.fold_batch_norms(pairs)
    model.pull()
