"""The main job: AIMET's post-training quantization flow on the bundled trained
digits model, with a report.

FP32 -> W8A8 / W4A8 (nearest rounding) -> equalize_model -> W8A8 / W4A8 ->
AdaRound W4A8, per-tensor and per-channel weights, as one accuracy table, and a
report folder (HTML + SVG):
  * per-output-channel weight ranges before/after cross-layer equalization for
    the layers it changed most (Nagel et al. 2019, Fig. 2);
  * per-layer AdaRound reconstruction error, nearest vs adarounded.

    python3 python/examples/demo.py [--out build/demo-report] [--iterations 2000] [--quiet]
    (or: make demo)
"""

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import aimetcle  # noqa: E402
from aimetcle import _svg, models, visualize_model  # noqa: E402
from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters  # noqa: E402
from aimetcle.batch_norm_fold import fold_all_batch_norms  # noqa: E402
from aimetcle.cross_layer_equalization import equalize_model  # noqa: E402
from aimetcle.defs import QuantScheme  # noqa: E402
from aimetcle.quantsim import QuantizationSimModel  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")
DATA = os.path.join(ROOT, "data")
SHAPE = (1, 1, 16, 16)


class Demo:
    def __init__(self, args):
        self.args = args
        d = np.load(os.path.join(DATA, "digits.npz"))
        self.x_test, self.y_test = d["x_test"], d["y_test"]
        self.loader = [d["x_calib"][i:i + 32] for i in range(0, len(d["x_calib"]), 32)]
        self.fp32 = self.model("as trained")(self.x_test)
        self.rows = []
        self.models = {}
        self.adaround_layers = {}

    def say(self, text):
        if not self.args.quiet:
            print(text, flush=True)

    @staticmethod
    def model(variant):
        model = models.digits_mbv2(weights=os.path.join(DATA, "digits_mbv2.npz")).eval()
        if variant == "BN folded":
            fold_all_batch_norms(model, SHAPE)
        elif variant == "equalize_model":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ReLU6 -> ReLU is expected here
                equalize_model(model, SHAPE)
        return model

    def score(self, logits):
        return {"accuracy": float((logits.argmax(1) == self.y_test).mean()),
                "logit_mse": float(((logits - self.fp32) ** 2).mean())}

    def simulate(self, model, bits, per_channel, encodings=None):
        sim = QuantizationSimModel(model, dummy_input=self.x_test[:1],
                                   quant_scheme=QuantScheme.post_training_tf_enhanced,
                                   default_param_bw=bits, default_output_bw=8, per_channel=per_channel)
        if encodings:
            sim.set_and_freeze_param_encodings(encodings)
        sim.compute_encodings(lambda m, _: [m(b) for b in self.loader], None)
        return self.score(sim.model(self.x_test))

    def adaround(self, model, variant, per_channel):
        label = f"{variant}, {'per-channel' if per_channel else 'per-tensor'}"
        self.say(f"  AdaRound W4 ({label}), {self.args.iterations} iterations per layer:")
        layers = []

        def progress(entry):
            layers.append(entry)
            self.say(f"    {entry['index'] + 1:2d}/{entry['count']} {entry['layer']:46s} "
                     f"{entry['iterations_per_second']:8.0f} it/s  MSE {entry['mse_nearest']:.4g} -> "
                     f"{entry['mse_adaround']:.4g}")

        with tempfile.TemporaryDirectory() as tmp:
            params = AdaroundParameters(self.loader, num_batches=len(self.loader),
                                        default_num_iterations=self.args.iterations)
            start = time.perf_counter()
            ada = Adaround.apply_adaround(model, self.x_test[:1], params, tmp, "digits",
                                          default_param_bw=4, per_channel=per_channel, progress=progress)
            seconds = time.perf_counter() - start
            result = self.simulate(ada, 4, per_channel, os.path.join(tmp, "digits.encodings"))
        self.adaround_layers[label] = layers
        result["seconds"] = seconds
        return result

    def run(self):
        acc = self.score(self.fp32)["accuracy"]
        self.say(f"FP32 on the digits test split (300 images): {100 * acc:.2f}%")
        for variant in ("as trained", "BN folded", "equalize_model"):
            # The simulations and AdaRound work on their own copies: one model serves the whole row.
            model = self.models[variant] = self.model(variant)
            fp32 = self.score(model(self.x_test))
            for per_channel in (False, True):
                weights = "per-channel" if per_channel else "per-tensor"
                self.say(f"{variant}, {weights} weights:")
                row = {"model": variant, "weights": weights, "fp32": fp32}
                row["w8a8"] = self.simulate(model, 8, per_channel)
                row["w4a8_nearest"] = self.simulate(model, 4, per_channel)
                row["w4a8_adaround"] = self.adaround(model, variant, per_channel)
                self.rows.append(row)
        return self

    def table_text(self):
        head = (f"{'model':15s} {'weights':12s} {'FP32':>7s}   {'W8A8':>15s}   {'W4A8 nearest':>15s}   "
                f"{'W4A8 AdaRound':>15s}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            cells = [f"{100 * r[k]['accuracy']:6.2f}% {r[k]['logit_mse']:7.4f}" for k in
                     ("w8a8", "w4a8_nearest", "w4a8_adaround")]
            lines.append(f"{r['model']:15s} {r['weights']:12s} {100 * r['fp32']['accuracy']:6.2f}%   "
                         + "   ".join(cells))
        return "\n".join(lines)

    def table_html(self):
        cells = "".join(f"<th>{h}</th>" for h in ("model", "weights", "FP32", "W8A8", "W4A8 nearest",
                                                   "W4A8 AdaRound"))
        rows = [f"<tr>{cells}</tr>"]
        for r in self.rows:
            values = [f"{100 * r['fp32']['accuracy']:.2f}%"] + [
                f"{100 * r[k]['accuracy']:.2f}% <small>(MSE {r[k]['logit_mse']:.4f})</small>"
                for k in ("w8a8", "w4a8_nearest", "w4a8_adaround")]
            rows.append(f"<tr><td>{r['model']}</td><td>{r['weights']}</td>"
                        + "".join(f"<td>{v}</td>" for v in values) + "</tr>")
        return "<table>" + "\n".join(rows) + "</table>"

    def report(self, out):
        os.makedirs(out, exist_ok=True)
        # CLE: the layers whose per-channel ranges it evened out most (folded model before, equalized after).
        before, after = self.models["BN folded"], self.models["equalize_model"]
        old = dict(before.named_modules())
        spread = {}
        for name, module in after.named_modules():
            if name in old and hasattr(module, "weight") and getattr(module, "weight", None) is not None \
                    and np.asarray(module.weight).ndim == 4:
                r0 = visualize_model.relative_ranges(old[name].weight)
                r1 = visualize_model.relative_ranges(module.weight)
                spread[name] = float(r1.min() / max(r0.min(), 1e-30))
        top = sorted(spread, key=spread.get, reverse=True)[:3]
        cle_page = visualize_model.visualize_changes_after_optimization(before, after, out, selected_layers=top)
        sections = [("Accuracy on the digits test split (300 images; logit MSE against FP32)", self.table_html())]
        cle_html = "".join(
            f'<p><b>{name}</b>: smallest channel range relative to the largest grew {spread[name]:.1f}×</p>'
            f'<img src="changes_after_optimization_{visualize_model._file(name)}.svg">' for name in top)
        sections.append(("Cross-layer equalization: weight ranges per output channel, BN folded → equalized",
                         cle_html))
        for label, layers in self.adaround_layers.items():
            name = f"adaround_{visualize_model._file(label)}.svg"
            svg = _svg.grouped_bars(f"AdaRound reconstruction MSE per layer ({label})",
                                    [e["layer"] for e in layers],
                                    [("nearest", [e["mse_nearest"] for e in layers]),
                                     ("AdaRound", [e["mse_adaround"] for e in layers])], "reconstruction MSE")
            with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                f.write(svg)
            sections.append((f"AdaRound per layer ({label})", f'<img src="{name}">'))
        page = visualize_model.write_html(os.path.join(out, "index.html"), "aimetcle demo: digits model", sections)
        with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"rows": self.rows, "adaround_layers": self.adaround_layers, "cle_spread": spread}, f, indent=1)
        with open(os.path.join(out, "table.txt"), "w", encoding="utf-8") as f:
            f.write(self.table_text() + "\n")
        return page, cle_page


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "demo-report"), help="report folder")
    parser.add_argument("--iterations", type=int, default=2000, help="AdaRound iterations per layer")
    parser.add_argument("--quiet", action="store_true", help="print only the table and the report path")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.quiet:
        print(f"aimetcle {aimetcle.__version__}, libaimetcle ABI {aimetcle.abi_version()}\n")
        import run_examples
        run_examples.run_aimet_examples()
        print()
    demo = Demo(args).run()
    page, _ = demo.report(args.out)
    print("\n" + demo.table_text())
    print(f"\nReport: {os.path.relpath(page)}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
