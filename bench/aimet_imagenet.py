"""AIMET 2.42's side of bench/imagenet.py: the same rows (images, split, configs, names, columns) with
aimet_torch on torchvision's MobileNetV2. Run through ``bench/aimet_reference.py imagenet`` (see its
docstring for the venv); each row runs in a worker process of this file."""

import json
import os
import resource
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python", "examples"))

import imagenet  # noqa: E402 - the rows and the table (bench/imagenet.py)


def config_file(per_channel, folder):
    """AIMET's default_config.json, with per-channel weights when asked."""
    import aimet_torch
    path = os.path.join(os.path.dirname(aimet_torch.__file__), "common", "quantsim_config", "default_config.json")
    if not per_channel:
        return path
    with open(path) as f:
        config = json.load(f)
    config["defaults"]["per_channel_quantization"] = "True"
    out = os.path.join(folder, "per_channel_config.json")
    with open(out, "w") as f:
        json.dump(config, f)
    return out


def row(spec, data):
    import torch
    torch.set_num_threads(2)
    from torchvision_stub import import_torchvision
    torchvision = import_torchvision()
    from aimet_torch.batch_norm_fold import fold_all_batch_norms
    from aimet_torch.common.defs import QuantScheme
    from aimet_torch.cross_layer_equalization import equalize_model
    from aimet_torch.quantsim import QuantizationSimModel

    def replace_relu6(module):
        # aimet_torch 2.42 no longer has replace_modules_of_type1_with_type2: the same, by hand.
        for name, child in module.named_children():
            if isinstance(child, torch.nn.ReLU6):
                setattr(module, name, torch.nn.ReLU(inplace=child.inplace))
            else:
                replace_relu6(child)

    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(data["weights"], weights_only=True))
    model.eval()
    calib, x_eval = torch.from_numpy(data["calib"]), torch.from_numpy(data["eval"])
    shape = (1, 3, 224, 224)
    steps = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec["prep"] == "folded":
            fold_all_batch_norms(model, input_shapes=shape)
        elif spec["prep"] == "cle":
            replace_relu6(model)
            equalize_model(model, input_shapes=shape)
        elif spec["prep"] == "cle-keep":
            equalize_model(model, input_shapes=shape)  # AIMET 2.42 keeps ReLU6
    steps[spec["prep"]] = time.perf_counter() - start

    def evaluate(m):
        with torch.no_grad():
            return np.concatenate([m(b).numpy() for b in torch.split(x_eval, imagenet.BATCH)])

    def calibrate(m, _=None):
        with torch.no_grad():
            for b in torch.split(calib, imagenet.BATCH):
                m(b)

    if spec.get("bits") is None:
        start = time.perf_counter()
        out = evaluate(model)
        steps["evaluate"] = time.perf_counter() - start
        return out, steps
    work = tempfile.mkdtemp(prefix="aimet-imagenet-")
    config = config_file(spec["per_channel"], work)
    scheme = QuantScheme.post_training_tf_enhanced
    encodings = None
    if spec.get("adaround"):
        if spec.get("position_samples"):
            raise SystemExit("AIMET has no position-sampling estimator")
        from aimet_torch.adaround.adaround_weight import Adaround, AdaroundParameters
        torch.manual_seed(0)
        loader = list(torch.split(calib, imagenet.BATCH))
        params = AdaroundParameters(loader, len(loader), default_num_iterations=spec["iterations"])
        start = time.perf_counter()
        model = Adaround.apply_adaround(model, calib[:1], params, work, "mbv2", default_param_bw=spec["bits"],
                                        default_quant_scheme=scheme, default_config_file=config)
        steps["adaround"] = time.perf_counter() - start
        encodings = os.path.join(work, "mbv2.encodings")
    start = time.perf_counter()
    sim = QuantizationSimModel(model, dummy_input=calib[:1], quant_scheme=scheme, default_param_bw=spec["bits"],
                               default_output_bw=8, config_file=config)
    if encodings:
        sim.set_and_freeze_param_encodings(encodings)
    sim.compute_encodings(calibrate, None)
    steps["compute_encodings"] = time.perf_counter() - start
    start = time.perf_counter()
    out = evaluate(sim.model)
    steps["evaluate"] = time.perf_counter() - start
    return out, steps


def worker(spec_json, data_path, out_path):
    d = np.load(data_path)
    out, steps = row(json.loads(spec_json), {"calib": d["calib"], "eval": d["eval"], "weights": str(d["weights"])})
    np.save(out_path, out)
    print(json.dumps({"steps": steps, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
          flush=True)


def main(argv):
    args = imagenet.arguments(argv)
    args.position_samples = 0  # AIMET has no position-sampling estimator
    imagenet.table(args, "AIMET 2.42", [sys.executable, os.path.abspath(__file__), "--worker"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    else:
        main(sys.argv[1:])
