"""Real exported models through the whole library: the model corpus bench.

Every torchvision classification model up to 100 M parameters, plus deeplabv3_mobilenet_v3_large and
lraspp_mobilenet_v3_large (and, with ``--timm``, a few timm networks), with random weights (a head
initialized to zero gets random weights too, so outputs are not all 0) and BN statistics from real forward
passes (a few train-mode batches of random images), each exported three
ways with ``torch.onnx.export``:

* ``eval``     the classic exporter in eval mode (BatchNorms fused into the convs), opset 17;
* ``preserve`` the classic exporter with ``training=TrainingMode.PRESERVE`` (BatchNorms kept), opset 17;
* ``dynamo``   the dynamo exporter (``dynamo=True``), its default opset;

all with a symbolic batch axis. Each file then goes through, in a worker process of its own (a crash
or hang is reported, never hidden):

1. ``load``      ``aimetcle.onnx.load``
2. ``run``       our run vs onnxruntime on 2 images (max |diff| <= 1e-4 · max |onnxruntime|)
3. ``fold+cls``  ``fold_all_batch_norms`` + ``CrossLayerScaling.scale_model``: outputs unchanged (1e-4)
4. ``equalize``  ``equalize_model`` (ReLU6 replaced: outputs may change), then
5. ``save``      ``aimetcle.onnx.save`` and onnxruntime on the saved file equals our run (1e-4)
6. ``quantsim``  ``QuantizationSimModel`` W8A8: ``compute_encodings``, ``sim.model(x)``, ``export``, and the
                 exported model runs in onnxruntime
7. ``adaround``  ``Adaround.apply_adaround`` W4, 10 iterations, 1 batch of 2 images

A file passes when every step passes. The table (``--markdown``) has one row per model and the
outcome of each export: ``ok`` or the first failing step (``refused``: the library's own error, whose
message names the op and why; ``wrong``: a result off tolerance; ``crash``/``hang``).

Set-up (bench-only dependencies, in their own venv; the machines keep this CPU torch locally):

    python3 -m venv ../venvs/bench && ../venvs/bench/bin/pip install torch==2.13.0 torchvision==0.28.0 \\
        numpy onnx onnxruntime onnxscript && ../venvs/bench/bin/pip install --no-deps timm
    AIMETCLE_LIB=.build/release/libaimetcle.so ../venvs/bench/bin/python bench/model_corpus.py \\
        [--models resnet18,vit_b_16] [--exports eval,preserve,dynamo] [--timm] [--markdown out.md] [--json out.json] \\
        [--resume]

Exports are cached in ``build/corpus/`` (delete it to re-export); each file's outcome is appended to
``build/corpus/results.jsonl`` as it finishes, and ``--resume`` takes those already there (the whole corpus
takes hours on 2 cores, so it can be run in pieces).
"""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_stub import import_torchvision  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
CACHE = os.path.join(ROOT, "build", "corpus")
EXPORTS = ("eval", "preserve", "dynamo")
STEPS = ("load", "run", "fold+cls", "equalize", "save", "quantsim", "adaround")
TOL = 1e-4
FILE_TIMEOUT = 1800
EXTRA_TORCHVISION = ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
TIMM_MODELS = ("efficientnet_lite0", "mobilevit_xs", "convnext_atto", "deit_tiny_patch16_224", "resnet26d",
               "mobilenetv3_small_100", "regnety_002", "ghostnet_100")


# --- torch side ------------------------------------------------------------------------------

def model_names(with_timm):
    torchvision = import_torchvision()
    names = [("tv", n) for n in sorted(torchvision.models.list_models(module=torchvision.models))]
    names += [("tv", n) for n in EXTRA_TORCHVISION]
    if with_timm:
        names += [("timm", n) for n in TIMM_MODELS]
    return names


def build(source, name):
    import torch
    if source == "timm":
        import timm
        return timm.create_model(name, pretrained=False)
    torchvision = import_torchvision()
    model = torchvision.models.get_model(name, weights=None)
    if name in EXTRA_TORCHVISION:
        class Out(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)["out"]
        model = Out(model)
    return model


def image_size(name):
    return 299 if name == "inception_v3" else 224


def export(source, name, kind, path):
    """Builds the model, sets BN statistics from train-mode passes, exports it; returns its parameter count."""
    import torch
    torch.manual_seed(0)
    model = build(source, name)
    for module in model.modules():
        # A zero-initialized head (torchvision's ViT, Swin) would make every output 0 and the comparisons void.
        if isinstance(module, torch.nn.Linear) and not module.weight.detach().any():
            torch.nn.init.normal_(module.weight, std=0.02)
    params = sum(p.numel() for p in model.parameters())
    if params > 100_000_000:
        return params
    size = image_size(name)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, size, size))
    model.eval()
    x = torch.randn(1, 3, size, size)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if kind == "dynamo":
            # A batch of 2 as the example and an automatic batch axis: torch keeps it symbolic where the
            # model allows, else specializes it to 2, the batch the pipeline runs.
            torch.onnx.export(model, (torch.randn(2, 3, size, size),), path, dynamo=True, external_data=False,
                              dynamic_shapes=({0: torch.export.Dim.AUTO},), input_names=["input"],
                              output_names=["output"])
        else:
            mode = torch.onnx.TrainingMode.PRESERVE if kind == "preserve" else torch.onnx.TrainingMode.EVAL
            torch.onnx.export(model, x, path, dynamo=False, opset_version=17, training=mode,
                              do_constant_folding=kind == "eval", input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    return params


# --- our side (the worker) ---------------------------------------------------------------------

def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def ort_run(path, x):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def pipeline(path, size):
    """Runs the steps on one file; returns {step: (outcome, detail)} up to the first failure."""
    import aimetcle
    from aimetcle import batch_norm_fold, cross_layer_equalization as cle
    from aimetcle import onnx as aonnx
    from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters
    from aimetcle.quantsim import QuantizationSimModel
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    results = {}
    work = tempfile.mkdtemp(prefix="corpus-")

    def step(name, fn):
        started = time.time()
        try:
            detail = fn() or ""
            results[name] = ("ok", f"{detail} ({time.time() - started:.1f} s)".strip())
            return True
        except AssertionError as error:
            results[name] = ("wrong", str(error))
        except aimetcle.AimetError as error:
            results[name] = ("refused", str(error))
        except Exception as error:  # noqa: BLE001 - any other failure, reported with its type
            results[name] = ("error", f"{type(error).__name__}: {error}")
        return False

    state = {}

    def quietly(fn, *args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)

    def load():
        state["model"] = quietly(aonnx.load, path)

    def run():
        ours = state["model"](x)
        state["ours"] = ours
        state["ref"] = ort_run(path, x)
        r = relative(ours, state["ref"])
        assert r <= TOL, f"max |ours - onnxruntime| = {r:.2e} of max |onnxruntime|"
        return f"rel {r:.1e}"

    def fold_cls():
        model = aonnx.load(path)
        pairs = quietly(batch_norm_fold.fold_all_batch_norms, model, None)
        sets = quietly(cle.CrossLayerScaling.scale_model, model, None)
        r = relative(model(x), state["ours"])
        assert r <= TOL, f"outputs changed by {r:.2e} after folding {len(pairs)} BNs and scaling {len(sets)} sets"
        return f"{len(pairs)} BNs, {len(sets)} CLS sets, rel {r:.1e}"

    def equalize():
        model = aonnx.load(path)
        quietly(cle.equalize_model, model)
        state["equalized"] = model

    def save():
        model = state["equalized"]
        saved = os.path.join(work, "equalized.onnx")
        aonnx.save(model, saved)
        r = relative(ort_run(saved, x), model(x))
        assert r <= TOL, f"onnxruntime on the saved model differs from our run by {r:.2e}"
        return f"rel {r:.1e}"

    def quantsim():
        sim = QuantizationSimModel(aonnx.load(path), dummy_input=x[:1], default_output_bw=8, default_param_bw=8)
        sim.compute_encodings(lambda model, _: model(x), None)
        y = sim.model(x)
        sim.export(work, "sim", dummy_input=x[:1])
        exported = [f for f in os.listdir(work) if f.startswith("sim") and f.endswith(".onnx")]
        assert exported, "export wrote no ONNX file"
        ort_run(os.path.join(work, exported[0]), x)
        r = relative(y, state["ours"])
        return f"W8A8 vs FP32 rel {r:.1e}"

    def adaround():
        params = AdaroundParameters(data_loader=[x], num_batches=1, default_num_iterations=10)
        Adaround.apply_adaround(aonnx.load(path), x[:1], params, path=work, filename_prefix="ada", default_param_bw=4,
                                progress=False)

    for name, fn in (("load", load), ("run", run), ("fold+cls", fold_cls), ("equalize", equalize), ("save", save),
                     ("quantsim", quantsim), ("adaround", adaround)):
        if not step(name, fn):
            break
    return results


def worker(path, size):
    print(json.dumps(pipeline(path, size)), flush=True)


def run_file(path, size):
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", path, "--size", str(size)],
                              capture_output=True, text=True, timeout=FILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"run": ("hang", f"over {FILE_TIMEOUT} s")}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"load": ("crash", f"worker exit code {proc.returncode}: {proc.stderr.strip()[-300:]}")}
    return {k: tuple(v) for k, v in json.loads(lines[-1]).items()}


def first_failure(results):
    for name in STEPS:
        if name not in results:
            return None
        outcome, detail = results[name]
        if outcome != "ok":
            return name, outcome, detail
    return None


def remember(record, name, kind, results):
    with open(record, "a") as f:
        f.write(json.dumps({"model": name, "export": kind, "results": results}) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=224, help=argparse.SUPPRESS)
    parser.add_argument("--models", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--exports", default=",".join(EXPORTS))
    parser.add_argument("--timm", action="store_true", help="add the timm networks")
    parser.add_argument("--markdown", default="", help="write the table to this file")
    parser.add_argument("--json", default="", help="write every step's outcome to this file")
    parser.add_argument("--record", default=os.path.join(CACHE, "results.jsonl"),
                        help="each file's outcome is appended here as it finishes")
    parser.add_argument("--resume", action="store_true",
                        help="take the outcome of files already in --record instead of running them again")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.size)
        return
    os.makedirs(CACHE, exist_ok=True)
    names = model_names(args.timm)
    if args.models:
        wanted = args.models.split(",")
        names = [n for n in names if n[1] in wanted]
    exports = args.exports.split(",")
    recorded = {}
    if args.resume and os.path.exists(args.record):
        with open(args.record) as f:
            for line in f:
                entry = json.loads(line)
                recorded[(entry["model"], entry["export"])] = {k: tuple(v) for k, v in entry["results"].items()}
    table = {}
    started = time.time()
    for source, name in names:
        row = table.setdefault(name, {})
        for kind in exports:
            path = os.path.join(CACHE, f"{name}.{kind}.onnx")
            skip = os.path.join(CACHE, f"{name}.{kind}.skip")
            if os.path.exists(skip):
                continue
            if (name, kind) in recorded:
                row[kind] = recorded[(name, kind)]
                continue
            if not os.path.exists(path):
                try:
                    params = export(source, name, kind, path)
                except Exception as error:  # noqa: BLE001 - an export failure is torch's, reported as such
                    row[kind] = {"export": ("export failed", f"{type(error).__name__}: {str(error)[:200]}")}
                    remember(args.record, name, kind, row[kind])
                    print(f"{name:32s} {kind:9s} export failed: {type(error).__name__}: {str(error)[:120]}", flush=True)
                    continue
                if params > 100_000_000:
                    open(skip, "w").write(f"{params} parameters\n")
                    table.pop(name, None) if not row else None
                    break
            results = run_file(path, image_size(name))
            row[kind] = results
            remember(args.record, name, kind, results)
            failure = first_failure(results)
            status = "ok" if failure is None else f"{failure[0]}: {failure[1]}: {failure[2][:150]}"
            print(f"{name:32s} {kind:9s} {status}", flush=True)
    files = [(name, kind, r) for name, row in table.items() for kind, r in row.items()]
    passed = [f for f in files if "export" not in f[2] and first_failure(f[2]) is None]
    exported = [f for f in files if "export" not in f[2]]
    print(f"\n{len(passed)} of {len(exported)} exported files pass every step "
          f"({100.0 * len(passed) / max(1, len(exported)):.1f} %; target >= 95 %); "
          f"{len(files) - len(exported)} exports failed in torch; {time.time() - started:.0f} s")
    for step_name in STEPS:
        failing = [f for f in exported if (first_failure(f[2]) or ("",))[0] == step_name]
        if failing:
            print(f"  first failure at {step_name}: {len(failing)}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("| model | " + " | ".join(exports) + " |\n|---|" + "---|" * len(exports) + "\n")
            for name, row in table.items():
                cells = []
                for kind in exports:
                    r = row.get(kind)
                    if r is None:
                        cells.append("")
                    elif "export" in r:
                        cells.append("export failed")
                    else:
                        failure = first_failure(r)
                        cells.append("ok" if failure is None else f"{failure[0]}: {failure[1]}")
                f.write(f"| {name} | " + " | ".join(cells) + " |\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
