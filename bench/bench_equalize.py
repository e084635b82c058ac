"""Benchmark: equalize_model (BN fold + ReLU6->ReLU + CLS + high-bias fold).

For mobilenet_v2, resnet18 and resnet50 (torchvision structure, 224x224):
  * module tree: aimetcle.cross_layer_equalization.equalize_model (trace + library + write-back),
    against a vectorized NumPy baseline of the same steps on the same sets (the way a
    Python implementation such as AIMET's applies them), run in the same script;
  * ONNX: load, equalize and save timed separately (aimetcle.onnx).
Targets (issue 3): MobileNetV2-sized < 50 ms, ResNet-50-sized < 300 ms, excluding file I/O.

    python3 bench/bench_equalize.py [--repeat 5]
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import aimetcle  # noqa: E402
from aimetcle import cross_layer_equalization as cle, models, nn  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402


def trained_like(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight[...] = rng.uniform(0.3, 2, n)
            m.bias[...] = rng.normal(0, 1, n)
            m.running_mean[...] = rng.normal(0, 0.5, n)
            m.running_var[...] = rng.uniform(0.3, 2, n)
    return model.eval()


# --- NumPy baseline: the same math, vectorized per layer --------------------------

def numpy_equalize(model, folded, cls_sets):
    """BN fold, CLS and high-bias fold with NumPy on the pairs/sets aimetcle found."""
    for conv, bn in folded:
        s = bn.weight / np.sqrt(bn.running_var + bn.eps)
        w = conv.weight
        conv.weight = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        b = conv.bias if conv.bias is not None else np.zeros_like(s)
        conv.bias = bn.bias + (b - bn.running_mean) * s
    bn_of = {id(conv): bn for conv, bn in folded}
    for info in cls_sets:
        layers = [info.cls_pair_info_list[0].layer1] + [p.layer2 for p in info.cls_pair_info_list]
        if len(layers) == 2:
            a, b = layers
            r1 = np.abs(a.weight).reshape(a.weight.shape[0], -1).max(1)
            c2 = np.abs(b.weight).max(axis=(0, 2, 3))
            s = r1 / np.sqrt(r1 * c2)
            s[~np.isfinite(s) | (s == 0)] = 1
            a.weight = a.weight / s[:, None, None, None]
            a.bias = a.bias / s
            b.weight = b.weight * s[None, :, None, None]
            scales = [s]
        else:
            a, dw, c = layers
            r1 = np.abs(a.weight).reshape(a.weight.shape[0], -1).max(1)
            rdw = np.abs(dw.weight).reshape(dw.weight.shape[0], -1).max(1)
            c3 = np.abs(c.weight).max(axis=(0, 2, 3))
            m = np.cbrt(r1 * rdw * c3)
            s12, s23 = r1 / m, m / c3
            a.weight = a.weight / s12[:, None, None, None]
            a.bias = a.bias / s12
            dw.weight = dw.weight * (s12 / s23)[:, None, None, None]
            dw.bias = dw.bias / s23
            c.weight = c.weight * s23[None, :, None, None]
            scales = [s12, s23]
        for k, pair in enumerate(info.cls_pair_info_list):
            bn = bn_of.get(id(pair.layer1))
            if bn is None or pair.layer2.bias is None:
                continue
            beta, gamma = bn.bias / scales[k], bn.weight / scales[k]
            shift = np.maximum(0, beta - 3 * np.abs(gamma))
            pair.layer1.bias = pair.layer1.bias - shift
            w2 = pair.layer2.weight
            if w2.shape[1] == 1 and pair.layer2.groups == w2.shape[0]:
                pair.layer2.bias = pair.layer2.bias + w2.sum(axis=(1, 2, 3)) * shift
            else:
                pair.layer2.bias = pair.layer2.bias + w2.sum(axis=(2, 3)) @ shift


def best_of(repeat, setup, run):
    times = []
    for _ in range(repeat):
        state = setup()
        start = time.perf_counter()
        run(state)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times), 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    shape = (1, 3, 224, 224)
    rows = []
    for name, build in (("mobilenet_v2", models.mobilenet_v2), ("resnet18", models.resnet18),
                        ("resnet50", models.resnet50)):
        template = trained_like(build())
        params = sum(p.size for p in template.parameters())
        ours = best_of(args.repeat, lambda: trained_like(build()), lambda m: cle.equalize_model(m, shape))

        def baseline_setup():
            """The baseline's model, with the pairs and sets aimetcle finds on a twin
            (the search is not part of the baseline's time)."""
            model, twin = trained_like(build()), trained_like(build())
            twin_names = {id(m): n for n, m in twin.named_modules()}
            pairs = aimetcle.batch_norm_fold.fold_all_batch_norms(twin, shape)
            aimetcle.utils.replace_modules_of_type1_with_type2(twin, nn.ReLU6, nn.ReLU)
            infos = cle.CrossLayerScaling.scale_model(twin, shape)
            ours = model.get_submodule
            folded = [(ours(twin_names[id(layer)]), ours(twin_names[id(bn)])) for layer, bn in pairs]
            for info in infos:
                for pair in info.cls_pair_info_list:
                    pair.layer1, pair.layer2 = ours(twin_names[id(pair.layer1)]), ours(twin_names[id(pair.layer2)])
            return model, folded, infos
        base = best_of(args.repeat, baseline_setup, lambda st: numpy_equalize(st[0], st[1], st[2]))

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{name}.onnx")
            aonnx.save(template, path, input_shapes=shape)
            load = best_of(args.repeat, lambda: None, lambda _: aonnx.load(path))
            eq = best_of(args.repeat, lambda: aonnx.load(path), lambda m: cle.equalize_model(m))
            out = os.path.join(tmp, "out.onnx")
            save = best_of(args.repeat, lambda: (lambda m: (cle.equalize_model(m), m)[1])(aonnx.load(path)),
                           lambda m: aonnx.save(m, out))
        rows.append((name, params, ours, base, load, eq, save))

    print(f"equalize_model, best of {args.repeat} (median in brackets), ms; 2-core machine")
    print(f"{'model':14s} {'params':>10s} {'module tree':>16s} {'NumPy baseline':>16s} {'ratio':>6s} "
          f"{'ONNX load':>14s} {'ONNX equalize':>15s} {'ONNX save':>14s}")
    for name, params, ours, base, load, eq, save in rows:
        print(f"{name:14s} {params:10,d} {ours[0]:8.1f} ({ours[1]:5.1f}) {base[0]:8.1f} ({base[1]:5.1f}) "
              f"{base[0] / ours[0]:5.1f}x {load[0]:6.1f} ({load[1]:5.1f}) {eq[0]:7.1f} ({eq[1]:5.1f}) "
              f"{save[0]:6.1f} ({save[1]:5.1f})")


if __name__ == "__main__":
    main()
