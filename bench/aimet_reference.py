"""The reference: AIMET itself (aimet-torch 2.42.0), on the bundled digits model or on torchvision's
ImageNet MobileNetV2.

* digits (the default): the pipeline of ``bench_adaround.py table`` — W8A8 / W4A8 nearest / W4A8
  AdaRound (2000 iterations, per-tensor ``default_config.json``, 10 calibration batches), logit MSE
  against FP32 on the test split. Results (logits, encodings, adarounded weights per seed;
  rows.jsonl) go to build/aimet-reference/.
* ``imagenet``: the rows of ``bench/imagenet.py`` (same images, split, configs, row names and
  columns: top-1, agreement with FP32, logit MSE, time, peak memory of the row's own process), with
  AIMET's ``fold_all_batch_norms`` / ``equalize_model`` / ``QuantizationSimModel`` / ``Adaround``
  on torchvision's ``mobilenet_v2`` and the same checkpoint. AIMET 2.42 keeps ReLU6 in
  ``equalize_model``; the "ReLU6→ReLU" rows replace it by ReLU first, as AIMET < 2.4 did. Per-channel rows use ``default_config.json`` with ``per_channel_quantization``.

Needs its own environment (torch and AIMET are not dependencies of aimetcle):

    python3 -m venv ../venvs/aimet && ../venvs/aimet/bin/pip install torch==2.13.0 torchvision==0.28.0 && \\
        ../venvs/aimet/bin/pip install aimet-torch==2.42.0 pillow
    ../venvs/aimet/bin/python bench/aimet_reference.py [--seeds 0,1,2,3,4] [--cases raw,folded]
    ../venvs/aimet/bin/python bench/aimet_reference.py imagenet [--rows fp32,folded,cle,cle-keep,adaround] \\
        [--iterations 10000] [--json build/aimet-imagenet.json]
"""
import argparse
import copy
import importlib.util
import json
import os
import random
import shutil
import sys
import time

import numpy as np
import torch

torch.set_num_threads(2)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_stub import import_torchvision  # noqa: E402

import_torchvision()  # aimet_torch imports torchvision

import aimet_torch  # noqa: E402
from aimet_torch.adaround.adaround_weight import Adaround, AdaroundParameters  # noqa: E402
from aimet_torch.batch_norm_fold import fold_all_batch_norms  # noqa: E402
from aimet_torch.common.defs import QuantScheme  # noqa: E402
from aimet_torch.quantsim import QuantizationSimModel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) > 1 and sys.argv[1] == "imagenet":
    import aimet_imagenet  # noqa: E402 - the ImageNet rows, in a file of their own

    aimet_imagenet.main(sys.argv[2:])
    sys.exit(0)
RES = os.path.join(HERE, "..", "build", "aimet-reference")
DATA = os.path.join(HERE, "..", "data")
CONFIG = os.path.join(os.path.dirname(aimet_torch.__file__), "common", "quantsim_config", "default_config.json")
SCHEME = QuantScheme.post_training_tf_enhanced

spec = importlib.util.spec_from_file_location("digits_mbv2", os.path.join(DATA, "digits_mbv2.py"))
dm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dm)

d = np.load(os.path.join(DATA, "digits.npz"))
x_calib = torch.from_numpy(d["x_calib"])
x_test = torch.from_numpy(d["x_test"])
y_test = d["y_test"]
loader = [x_calib[i:i + 32] for i in range(0, 300, 32)]  # 10 batches: 9 x 32 + 1 x 12
dummy = x_calib[:1]


def fp32_model():
    m = dm.DigitsMBV2()
    sd = {k: torch.from_numpy(v) for k, v in np.load(os.path.join(DATA, "digits_mbv2.npz")).items()}
    sd = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    m.load_state_dict(sd)
    return m.eval()


def prepared(case):
    m = fp32_model()
    if case == "folded":
        fold_all_batch_norms(m, input_shapes=(1, 1, 16, 16))
    return m.eval()


with torch.no_grad():
    FP32 = fp32_model()(x_test).numpy()


def score(out):
    out = out.detach().numpy() if torch.is_tensor(out) else out
    return 100 * float((out.argmax(1) == y_test).mean()), float(((out - FP32) ** 2).mean())


def forward_pass(model, _=None):
    with torch.no_grad():
        for b in loader:
            model(b)


def simulate(model, param_bw, encodings=None):
    sim = QuantizationSimModel(model, dummy_input=dummy, quant_scheme=SCHEME, default_param_bw=param_bw,
                               default_output_bw=8, config_file=CONFIG)
    if encodings:
        sim.set_and_freeze_param_encodings(encodings)
    sim.compute_encodings(forward_pass, None)
    return sim


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--cases", default="raw,folded")
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--baselines", action="store_true")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    os.makedirs(RES, exist_ok=True)
    print("aimet_torch", aimet_torch.__version__ if hasattr(aimet_torch, "__version__") else "?",
          "torch", torch.__version__, "threads", torch.get_num_threads(), flush=True)
    print("config", CONFIG, flush=True)
    acc, _ = score(FP32)
    print(f"FP32 acc {acc:.2f}%", flush=True)
    np.save(os.path.join(RES, "fp32_logits.npy"), FP32)

    rows = []
    if a.baselines:
        for case in a.cases.split(","):
            model = prepared(case)
            for bw in (8, 4):
                sim = simulate(copy.deepcopy(model), bw)
                out = sim.model(x_test).detach().numpy()
                acc, mse = score(out)
                tag = f"{case}_W{bw}A8_nearest"
                np.save(os.path.join(RES, tag + "_logits.npy"), out)
                print(f"{case:7s} W{bw}A8 nearest: acc {acc:6.2f}%  MSE {mse:.5f}", flush=True)
                rows.append(dict(case=case, kind=f"W{bw}A8 nearest", acc=acc, mse=mse))

    for seed in seeds:
        for case in a.cases.split(","):
            model = prepared(case)
            tag = f"{case}_seed{seed}"
            out_dir = os.path.join(RES, tag)
            shutil.rmtree(out_dir, ignore_errors=True)
            os.makedirs(out_dir)
            seed_all(seed)
            params = AdaroundParameters(loader, num_batches=10, default_num_iterations=a.iterations)
            t0 = time.perf_counter()
            ada = Adaround.apply_adaround(model, dummy, params, out_dir, "adaround", default_param_bw=4,
                                          default_quant_scheme=SCHEME, default_config_file=CONFIG)
            secs = time.perf_counter() - t0
            enc = os.path.join(out_dir, "adaround.encodings")
            sim = simulate(ada, 4, enc)
            with torch.no_grad():
                out = sim.model(x_test).numpy()
            acc, mse = score(out)
            np.save(os.path.join(out_dir, "logits.npy"), out)
            np.savez(os.path.join(out_dir, "adarounded_state_dict.npz"),
                     **{k: v.detach().numpy().astype(np.float32) for k, v in ada.state_dict().items()})
            # also the (hard-rounded) weights AIMET's sim actually uses, for reference
            qw = {}
            for name, mod in sim.model.named_modules():
                q = getattr(mod, "param_quantizers", None)
                if q is not None and "weight" in q and q["weight"] is not None:
                    with torch.no_grad():
                        qw[name + ".weight"] = q["weight"](mod.weight).detach().numpy()
            np.savez(os.path.join(out_dir, "sim_quantized_weights.npz"), **qw)
            print(f"{case:7s} seed {seed}: acc {acc:6.2f}%  MSE {mse:.5f}  AdaRound {secs:6.1f} s", flush=True)
            rows.append(dict(case=case, kind="W4A8 AdaRound", seed=seed, acc=acc, mse=mse, seconds=secs))
            with open(os.path.join(RES, "rows.jsonl"), "a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
    if a.baselines:
        with open(os.path.join(RES, "baselines.json"), "w") as f:
            json.dump([r for r in rows if "seed" not in r], f, indent=1)


if __name__ == "__main__":
    main()
