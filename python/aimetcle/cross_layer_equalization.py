"""Cross-layer scaling and high-bias fold (AIMET: ``aimet_torch.cross_layer_equalization``)."""

import logging
import warnings

import numpy as np

from . import _lib, nn
from ._layers import BoundBatchNorm, BoundLayer, Snapshot
from ._modeltree import Transform
from .onnx import OnnxModel

logger = logging.getLogger(__name__)


class ClsSetInfo:
    """The layers of one CLS set with their scale factors and whether a ReLU
    sits between them. Two pairs for a depthwise-separable triplet
    (conv -> depthwise, depthwise -> conv), else one.
    """

    class ClsSetLayerPairInfo:
        """A pair of layers that were scaled by CLS.

        :param layer1: layer whose bias is folded
        :param layer2: layer into whose bias layer1's bias is folded
        :param scale_factor: the pair's CLS scale factors (one per channel between)
        :param relu_activation_between_layers: whether the activation between is ReLU
        """

        def __init__(self, layer1, layer2, scale_factor, relu_activation_between_layers):
            self.layer1 = layer1
            self.layer2 = layer2
            self.scale_factor = scale_factor
            self.relu_activation_between_layers = relu_activation_between_layers

        def __repr__(self):
            return (f"ClsSetLayerPairInfo({type(self.layer1).__name__} -> {type(self.layer2).__name__}, "
                    f"relu={self.relu_activation_between_layers})")

    def __init__(self, cls_pair_1, cls_pair_2=None):
        self.cls_pair_info_list = [cls_pair_1] if cls_pair_2 is None else [cls_pair_1, cls_pair_2]

    def __repr__(self):
        return f"ClsSetInfo({self.cls_pair_info_list!r})"


class CrossLayerScaling:
    """Cross-layer scaling. Methods work on the class (AIMET 1.x examples) and on
    an instance (AIMET 2.x)."""

    @staticmethod
    def scale_model(model, input_shapes=None, dummy_input=None):
        """Find the CLS sets of the model and scale them, in place.

        Sets are consecutive convs joined only through ReLU / PReLU; ReLU6 and
        unfolded BNs end them (fold BNs and replace ReLU6 first, as
        ``equalize_model`` does).

        :param model: the model (module tree or ``aimetcle.onnx`` model)
        :param input_shapes: input shape(s) for tracing the model
        :param dummy_input: an input array (or tuple of arrays), instead of shapes
        :return: a ClsSetInfo per scaled set, in model order
        """
        flags = _lib.AIMET_EQUALIZE_KEEP_RELU6 | _lib.AIMET_EQUALIZE_NO_BN_FOLD | _lib.AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD
        transform = Transform(model, input_shapes, dummy_input).run(lambda handle: handle.equalize(flags))
        return transform.cls_set_infos()

    @staticmethod
    def scale_cls_sets(cls_sets):
        """Scale each CLS set in place, in order.

        :param cls_sets: list of ``(conv, conv)`` pairs or ``(conv, depthwise conv, conv)`` triplets
        :return: per set, the scale factors: an array for a pair, a tuple
            ``(S12, S23)`` of arrays for a triplet. On error nothing changes.
        """
        cls_sets = list(cls_sets)
        with Snapshot(layer for cls_set in cls_sets for layer in _as_set(cls_set)):
            return [CrossLayerScaling.scale_cls_set(cls_set, _label=f"cls_sets[{i}]")
                    for i, cls_set in enumerate(cls_sets)]

    @staticmethod
    def scale_cls_set(cls_set, _label="cls_set"):
        """Scale one pair or triplet in place; returns its scale factors (see scale_cls_sets)."""
        layers = _as_set(cls_set)
        bound = [BoundLayer(layer, f"{_label}[{j}] ({type(layer).__name__})") for j, layer in enumerate(layers)]
        channels = bound[0].out_channels
        scales = np.empty(channels * (2 if len(layers) == 3 else 1), dtype=np.float32)
        _lib.aimet_cls_scale_set([b.struct for b in bound], scales)
        for b in bound:
            b.commit()
        if len(layers) == 3:
            return scales[:channels].copy(), scales[channels:].copy()
        return scales

    @staticmethod
    def scale_cls_set_with_conv_layers(cls_set):
        """AIMET's name for scaling one pair; returns its scale factors."""
        return CrossLayerScaling.scale_cls_set(cls_set)

    @staticmethod
    def scale_cls_set_with_depthwise_layers(cls_set):
        """AIMET's name for scaling one triplet; returns ``(S12, S23)``."""
        return CrossLayerScaling.scale_cls_set(cls_set)


class HighBiasFold:
    """High-bias fold."""

    @staticmethod
    def bias_fold(cls_set_info_list, bn_layers):
        """Fold the part of each layer1's bias above ``beta - 3|gamma|`` into layer2.

        :param cls_set_info_list: ClsSetInfo per scaled set (from CLS)
        :param bn_layers: dict from layer to the BN that was folded into it
        :return: None. Pairs whose layer1 has no BN entry, or where a layer has
            no bias, are skipped. On error nothing changes.
        """
        cls_set_info_list = list(cls_set_info_list)
        if not bn_layers:
            logger.info("High-bias fold: no BatchNorm layers given, nothing to fold")
            return
        pairs = [pair for info in cls_set_info_list for pair in info.cls_pair_info_list]
        with Snapshot(layer for pair in pairs for layer in (pair.layer1, pair.layer2)):
            for i, pair in enumerate(pairs):
                bn = bn_layers.get(pair.layer1)
                if bn is None:
                    continue
                label = f"pair {i}"
                first = BoundLayer(pair.layer1, f"{label} layer1 ({type(pair.layer1).__name__})")
                second = BoundLayer(pair.layer2, f"{label} layer2 ({type(pair.layer2).__name__})")
                scale = np.ascontiguousarray(pair.scale_factor, dtype=np.float32).reshape(-1)
                if _lib.aimet_hbf_fold_pair(first.struct, second.struct, BoundBatchNorm(bn, f"{label} BN").struct,
                                            scale, pair.relu_activation_between_layers):
                    first.commit()
                    second.commit()


def _as_set(cls_set):
    if not isinstance(cls_set, (tuple, list)):
        raise TypeError(f"a CLS set is a tuple of 2 or 3 layers, got {type(cls_set).__name__}")
    return list(cls_set)


def equalize_model(model, input_shapes=None, dummy_input=None, keep_relu6=False):
    """Cross-layer equalization in auto mode, in place: fold all BatchNorms,
    replace ReLU6 with ReLU, scale every CLS set, then high-bias fold.

    ReLU6 is not positively homogeneous, so scaling across it would change the
    model; like AIMET, ReLU6 modules are replaced by ReLU (with a warning that
    says how many). ``keep_relu6=True`` keeps them, and no set is scaled
    across one. On error the model is left exactly as it was.

    :param model: the model (module tree or ``aimetcle.onnx`` model)
    :param input_shapes: input shape(s) for tracing a module tree
    :param dummy_input: an input array (or tuple of arrays), instead of shapes
    :param keep_relu6: keep ReLU6 activations (not in AIMET's signature)
    :return: the ClsSetInfo list of the scaled sets (AIMET returns None)
    """
    if isinstance(model, OnnxModel):
        flags = _lib.AIMET_EQUALIZE_KEEP_RELU6 if keep_relu6 else 0
        transform = Transform(model).run(lambda handle: handle.equalize(flags))
        _warn_relu6(len(transform.report["relu6_replaced"]))
        return transform.cls_set_infos()
    replaced = [] if keep_relu6 else _replace_relu6_modules(model)
    try:
        transform = Transform(model, input_shapes, dummy_input).run(
            lambda handle: handle.equalize(_lib.AIMET_EQUALIZE_KEEP_RELU6))
    except BaseException:
        for parent, key, module in replaced:
            parent._modules[key] = module
        raise
    _warn_relu6(len(replaced))
    return transform.cls_set_infos()


def _replace_relu6_modules(model):
    replaced = []
    for _, module in list(model.named_modules()):
        for key, child in list(module._modules.items()):
            if isinstance(child, nn.ReLU6):
                module._modules[key] = nn.ReLU()
                replaced.append((module, key, child))
    return replaced


def _warn_relu6(count):
    if count:
        warnings.warn(f"equalize_model replaced {count} ReLU6 activation(s) with ReLU: cross-layer scaling is not "
                      f"valid across ReLU6 (AIMET does the same); pass keep_relu6=True to keep them", UserWarning,
                      stacklevel=3)
