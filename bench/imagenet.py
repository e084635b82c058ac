"""ImageNet MobileNetV2 through CLE, quantization simulation and AdaRound: the quality table.

torchvision's ImageNet MobileNetV2 checkpoint (read without torch) on a folder of ImageNet-style
images, 224×224 RGB already centre-cropped (``../shared/data/imagenet_sample`` by default: 1000
images, one per class, the label from the WordNet id that starts each file name, the class index its
position among the sorted ids). Calibration: the first ``--calib`` files in sorted order (256);
evaluation: the rest (744). Each row reports top-1, top-1 agreement with FP32 and the logit MSE
against FP32 on the evaluation images, the time of the row's steps and the peak memory of the
process that ran it (each row runs in a worker process of its own, so its peak is its own).

Rows (``--rows``, comma-separated groups; default all but ``adaround``, which takes long):

* ``fp32``      the checkpoint as it is;
* ``folded``    ``fold_all_batch_norms``, then W8A8 / W6A8 / W4A8, per-tensor and per-channel;
* ``cle``       ``equalize_model`` (ReLU6 replaced by ReLU, as AIMET < 2.4 and the DFQ paper), the same six;
* ``cle-keep``  ``equalize_model(keep_relu6=True)`` (no set scaled across a ReLU6, as AIMET 2.42), the same six;
* ``adaround``  AdaRound W4A8 after BN folding and after ``equalize_model``, per-tensor and per-channel,
                ``--iterations`` per layer (AIMET's default 10000), on the calibration images in
                batches of 32; also with the position-sampling estimator (``--position-samples``).

Quantization: TF-enhanced ranges, 8-bit activations, AIMET's default config; weights' bit width as
the row says. Needs Pillow to decode the JPEGs (a bench dependency: ``pip install pillow``).

    AIMETCLE_LIB=.build/release/libaimetcle.so python3 bench/imagenet.py \\
        [--images ../shared/data/imagenet_sample/images] [--weights .../mobilenet_v2-b0353104.pth] \\
        [--rows fp32,folded,cle,cle-keep,adaround] [--iterations 10000] [--position-samples 2048] \\
        [--select 'W6A8 per-tensor'] [--json build/imagenet.json]
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "python", "examples"))
SAMPLE = os.path.join(ROOT, "..", "shared", "data", "imagenet_sample")
BATCH = 32
SHAPE = (1, 3, 224, 224)


# --- data --------------------------------------------------------------------------------------

def batches(x):
    return [x[i:i + BATCH] for i in range(0, len(x), BATCH)]


def logits(model, x):
    return np.concatenate([np.asarray(model(b)) for b in batches(x)])


# --- one row (in a worker) -----------------------------------------------------------------------

def prepared(weights, prep):
    """The checkpoint's MobileNetV2 after `prep` (folded / cle / cle-keep / fp32), and the seconds it took."""
    from aimetcle import models
    from aimetcle.batch_norm_fold import fold_all_batch_norms
    from aimetcle.cross_layer_equalization import equalize_model
    model = models.mobilenet_v2(weights=weights).eval()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ReLU6 replacement is announced; the table says it
        if prep == "folded":
            fold_all_batch_norms(model, input_shapes=SHAPE)
        elif prep == "cle":
            equalize_model(model, input_shapes=SHAPE)
        elif prep == "cle-keep":
            equalize_model(model, input_shapes=SHAPE, keep_relu6=True)
    return model, time.perf_counter() - start


def simulate(model, calib, bits, per_channel, encodings=None):
    from aimetcle.defs import QuantScheme
    from aimetcle.quantsim import QuantizationSimModel
    sim = QuantizationSimModel(model, dummy_input=calib[:1], quant_scheme=QuantScheme.post_training_tf_enhanced,
                               default_param_bw=bits, default_output_bw=8, per_channel=per_channel)
    if encodings:
        sim.set_and_freeze_param_encodings(encodings)
    sim.compute_encodings(lambda m, _: [m(b) for b in batches(calib)], None)
    return sim


def row(spec, data):
    """Runs one row: {'prep', 'bits', 'per_channel', 'adaround', 'iterations', 'position_samples'}."""
    calib, x_eval = data["calib"], data["eval"]
    model, prep_seconds = prepared(data["weights"], spec["prep"])
    steps = {spec["prep"]: prep_seconds}
    if spec.get("bits") is None:
        start = time.perf_counter()
        out = logits(model, x_eval)
        steps["evaluate"] = time.perf_counter() - start
        return out, steps
    encodings = None
    work = tempfile.mkdtemp(prefix="imagenet-")
    if spec.get("adaround"):
        from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters
        start = time.perf_counter()
        params = AdaroundParameters(batches(calib), len(batches(calib)), default_num_iterations=spec["iterations"])
        model = Adaround.apply_adaround(model, calib[:1], params, work, "mbv2", default_param_bw=spec["bits"],
                                        per_channel=spec["per_channel"], position_samples=spec.get("position_samples"),
                                        progress=False)
        steps["adaround"] = time.perf_counter() - start
        encodings = os.path.join(work, "mbv2.encodings")
    start = time.perf_counter()
    sim = simulate(model, calib, spec["bits"], spec["per_channel"], encodings)
    steps["compute_encodings"] = time.perf_counter() - start
    start = time.perf_counter()
    out = logits(sim.model, x_eval)
    steps["evaluate"] = time.perf_counter() - start
    return out, steps


def worker(spec_json, data_path, out_path):
    spec = json.loads(spec_json)
    d = np.load(data_path)
    data = {"calib": d["calib"], "eval": d["eval"], "weights": str(d["weights"])}
    out, steps = row(spec, data)
    np.save(out_path, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(json.dumps({"steps": steps, "peak_mib": peak}), flush=True)


# --- the table ---------------------------------------------------------------------------------

def specs(groups, iterations, position_samples):
    rows = []
    if "fp32" in groups:
        rows.append({"name": "FP32", "prep": "fp32"})
    labels = {"folded": "BNs folded", "cle": "equalize_model (ReLU6→ReLU)", "cle-keep": "equalize_model (ReLU6 kept)"}
    for prep in ("folded", "cle", "cle-keep"):
        if prep in groups:
            for bits in (8, 6, 4):
                for pc in (False, True):
                    rows.append({"name": f"{labels[prep]}, W{bits}A8 {'per-channel' if pc else 'per-tensor'}",
                                 "prep": prep, "bits": bits, "per_channel": pc})
    if "adaround" in groups:
        for prep in ("folded", "cle"):
            for pc in (False, True):
                for samples in [None] + ([position_samples] if position_samples else []):
                    estimator = f", position sampling {samples}" if samples else ""
                    rows.append({"name": f"{labels[prep]}, W4A8 {'per-channel' if pc else 'per-tensor'} AdaRound "
                                         f"{iterations} it{estimator}",
                                 "prep": prep, "bits": 4, "per_channel": pc, "adaround": True,
                                 "iterations": iterations, "position_samples": samples})
    return rows


def run_row(spec, data_path, reference, labels, worker_command=None):
    """Runs one row in a worker process (`worker_command`: the command line before the worker's
    arguments; by default this script's own worker) and scores its logits."""
    command = worker_command or [sys.executable, os.path.abspath(__file__), "--worker"]
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "logits.npy")
        proc = subprocess.run(command + [json.dumps(spec), data_path, out_path], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            return {"name": spec["name"], "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        out = np.load(out_path)
    result = json.loads(lines[-1])
    top1 = 100.0 * float((out.argmax(1) == labels).mean())
    agree = 100.0 * float((out.argmax(1) == reference.argmax(1)).mean()) if reference is not None else 100.0
    mse = float(((out - reference) ** 2).mean()) if reference is not None else 0.0
    return {"name": spec["name"], "top1": top1, "agreement": agree, "mse": mse, **result, "logits": out}


def main():
    args = arguments()
    if args.worker:
        worker(*args.worker)
        return
    table(args, "aimetcle")


def table(args, engine, worker_command=None):
    """Loads the images, runs every row of `args.rows` through the worker, prints and writes the table."""
    import imagenet_sample
    groups = set(args.rows.split(","))
    calib, x_eval, labels = imagenet_sample.load(args.images, args.calib)
    print(f"{engine}: MobileNetV2 (torchvision IMAGENET1K_V1) on {len(x_eval)} evaluation images, {len(calib)} for "
          f"calibration ({args.images}); TF-enhanced, 8-bit activations; each row in its own process", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "data.npz")
        np.savez(data_path, calib=calib, eval=x_eval, weights=np.array(args.weights))
        reference = None
        rows = []
        todo = [s for s in specs(groups | {"fp32"}, args.iterations, args.position_samples)
                if s["prep"] == "fp32" or re.search(args.select, s["name"])]
        print(f"  {'row':72s} {'top-1':>7s} {'agree':>7s} {'logit MSE':>10s} {'time s':>8s} {'peak MiB':>9s}")
        for spec in todo:
            r = run_row(spec, data_path, reference, labels, worker_command)
            if spec["prep"] == "fp32" and "logits" in r:
                reference = r["logits"]
                r["agreement"], r["mse"] = 100.0, 0.0
            r.pop("logits", None)
            rows.append(r)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"engine": engine, "rows": rows}, f, indent=1)
            if "error" in r:
                print(f"  {r['name']:72s} error: {r['error']}", flush=True)
                continue
            seconds = sum(r["steps"].values())
            print(f"  {r['name']:72s} {r['top1']:6.2f}% {r['agreement']:6.2f}% {r['mse']:10.4f} {seconds:8.1f} "
                  f"{r['peak_mib']:9.0f}", flush=True)
    return rows


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--images", default=os.path.join(SAMPLE, "images"))
    parser.add_argument("--weights", default=os.path.join(SAMPLE, "mobilenet_v2-b0353104.pth"),
                        help="torchvision's checkpoint file (its sha256 is checked)")
    parser.add_argument("--calib", type=int, default=256, help="calibration images (the first in sorted order)")
    parser.add_argument("--rows", default="fp32,folded,cle,cle-keep")
    parser.add_argument("--iterations", type=int, default=10000, help="AdaRound iterations per layer")
    parser.add_argument("--position-samples", type=int, default=2048, help="AdaRound's position-sampling estimator")
    parser.add_argument("--select", default="", help="only the rows whose name matches this regular expression")
    parser.add_argument("--json", default="", help="write the rows (without logits) here, after each row")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
