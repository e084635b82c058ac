"""AIMET's documented manual-mode CLE examples on aimetcle (``make demo`` runs
these first), then the same primitive calls on the bundled trained digits model,
with a report of what equalization did to its weight ranges.

    python3 python/examples/run_examples.py
"""

import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import aimetcle  # noqa: E402
from aimetcle import batch_norm_fold, cross_layer_equalization, models, nn, utils  # noqa: E402

import post_training_techniques_examples as examples  # noqa: E402

DIGITS_WEIGHTS = os.path.join(HERE, "..", "..", "data", "digits_mbv2.npz")


def output_ranges(layer):
    """Per-output-channel max |W| (torch layout; all convs here are non-transposed)."""
    w = layer.weight
    return np.abs(w.reshape(w.shape[0], -1)).max(axis=1)


def spread(ranges):
    """How unequal the channel ranges are: max / min (1 = perfectly equal)."""
    return float(ranges.max() / max(ranges.min(), 1e-12))


def run_aimet_examples():
    print("AIMET's documented examples (aimet_torch -> aimetcle):")
    for fn in (examples.cross_layer_equalization_manual, examples.cross_layer_equalization_depthwise_layers):
        start = time.perf_counter()
        notes = set()
        real = examples.models.resnet18

        def resnet18(pretrained=False, **kwargs):
            # The example asks for ImageNet weights; without the file here it runs on a random init.
            try:
                return real(pretrained=pretrained, **kwargs)
            except FileNotFoundError:
                notes.add("resnet18: no pretrained weights here, random init")
                return real(**kwargs)
        examples.models.resnet18 = resnet18
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fn()
        finally:
            examples.models.resnet18 = real
        note = "; ".join(sorted(notes | {str(w.message).split(";")[0] for w in caught}))
        print(f"  {fn.__name__:45s} ok  {1e3 * (time.perf_counter() - start):7.1f} ms"
              + (f"  ({note})" if note else ""))


def digits_cls_sets(model):
    """Manual mode as the examples do it: the (expand, depthwise, project) triplet of each block."""
    return [(block.conv[0][0], block.conv[1][0], block.conv[2]) for block in model.features[1:5]]


def digits_bn_pairs(model):
    """Every (conv, BN) pair: a conv directly followed by a BN in the same Sequential."""
    pairs = []
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            children = list(module)
            pairs += [(a, b) for a, b in zip(children, children[1:])
                      if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)]
    return pairs


def run_digits():
    model = models.digits_mbv2(weights=DIGITS_WEIGHTS).eval()
    names = {id(m): name for name, m in model.named_modules()}
    start = time.perf_counter()
    pairs = digits_bn_pairs(model)
    bn_dict = {conv: bn for conv, bn in pairs}
    batch_norm_fold.fold_given_batch_norms(model, pairs)
    utils.replace_modules_of_type1_with_type2(model, nn.ReLU6, nn.ReLU)
    sets = digits_cls_sets(model)
    before = [[output_ranges(layer) for layer in s] for s in sets]
    scales = cross_layer_equalization.CrossLayerScaling.scale_cls_sets(sets)
    info = cross_layer_equalization.ClsSetInfo
    pair = info.ClsSetLayerPairInfo
    infos = [info(pair(a, dw, s12, True), pair(dw, b, s23, True)) for (a, dw, b), (s12, s23) in zip(sets, scales)]
    biases = {id(layer): layer.bias.copy() for s in sets for layer in s}
    cross_layer_equalization.HighBiasFold.bias_fold(infos, bn_dict)
    elapsed = 1e3 * (time.perf_counter() - start)

    print(f"\nBundled digits model (trained, {len(pairs)} BatchNorms): fold + ReLU6->ReLU + CLS on "
          f"{len(sets)} depthwise-separable triplets + high-bias fold in {elapsed:.1f} ms")
    print(f"  {'layer':28s} {'channels':>8s} {'range spread before':>20s} {'after':>8s} {'bias moved':>11s}")
    for s, ranges in zip(sets, before):
        for layer, r in zip(s, ranges):
            moved = float(np.abs(layer.bias - biases[id(layer)]).max())
            print(f"  {names[id(layer)]:28s} {r.size:8d} {spread(r):20.1f} {spread(output_ranges(layer)):8.1f} "
                  f"{moved:11.3f}")
    print("  (range spread = max/min of the per-output-channel weight ranges; CLS evens the ranges\n"
          "   of consecutive layers, so per-tensor weight quantization wastes fewer levels)")


DIGITS_DATA = os.path.join(HERE, "..", "..", "data", "digits.npz")


def run_quantsim():
    """FP32 vs simulated W8A8 / W4A8 (nearest rounding) on the digits test split,
    before and after equalize_model."""
    from aimetcle.quantsim import QuantizationSimModel

    data = np.load(DIGITS_DATA)
    x, y, calib = data["x_test"], data["y_test"], data["x_calib"]

    def calibrate(model, images):
        for start in range(0, len(images), 32):
            model(images[start:start + 32])

    print(f"\nQuantization simulation, digits test split ({len(y)} images; accuracy, logit MSE vs FP32):")
    print(f"  {'model':22s} {'FP32':>8s} {'W8A8':>16s} {'W4A8 nearest':>18s} {'W4A8 per-channel':>18s}")
    for label in ("as trained", "after equalize_model"):
        model = models.digits_mbv2(weights=DIGITS_WEIGHTS).eval()
        if label != "as trained":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cross_layer_equalization.equalize_model(model, (1, 1, 16, 16))
        reference = model(x)
        cells = [f"{100 * (reference.argmax(1) == y).mean():7.2f}%"]
        for bits, per_channel in ((8, False), (4, False), (4, True)):
            sim = QuantizationSimModel(model, dummy_input=x[:1], default_param_bw=bits, default_output_bw=8,
                                       per_channel=per_channel)
            sim.compute_encodings(calibrate, calib)
            out = sim.model(x)
            cells.append(f"{100 * (out.argmax(1) == y).mean():6.2f}% {((out - reference) ** 2).mean():8.4f}")
        print(f"  {label:22s} {cells[0]:>8s} {cells[1]:>16s} {cells[2]:>18s} {cells[3]:>18s}")


if __name__ == "__main__":
    print(f"aimetcle {aimetcle.__version__}, libaimetcle ABI {aimetcle.abi_version()}\n")
    run_aimet_examples()
    run_digits()
    run_quantsim()
