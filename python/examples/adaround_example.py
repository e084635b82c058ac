"""AIMET's documented AdaRound example (torch_code_examples/adaround.py) on
aimetcle: the same calls with ``aimetcle`` for ``aimet_torch``, on the bundled
trained digits model instead of an ImageNet ResNet-18 (no download here).

    python3 python/examples/adaround_example.py [--iterations 2000] [--out DIR]
"""

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from aimetcle import models  # noqa: E402
from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters  # noqa: E402
from aimetcle.batch_norm_fold import fold_all_batch_norms  # noqa: E402
from aimetcle.defs import QuantScheme  # noqa: E402
from aimetcle.quantsim import QuantizationSimModel  # noqa: E402

DATA = os.path.join(HERE, "..", "..", "data")
DIGITS = np.load(os.path.join(DATA, "digits.npz"))


class DataPipeline:
    """Stands in for the example's ImageNetDataPipeline: (images, labels) batches of 32."""

    @staticmethod
    def get_val_dataloader():
        x, y = DIGITS["x_calib"], DIGITS["y_calib"]
        return [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)]

    @staticmethod
    def evaluate(model):
        logits = model(DIGITS["x_test"])
        return float((logits.argmax(1) == DIGITS["y_test"]).mean())


def pass_calibration_data(model, args=None):
    data_loader = DataPipeline.get_val_dataloader()
    batch_size = 32
    samples = 1000
    batch_cntr = 0
    for input_data, target_data in data_loader:
        model(input_data)
        batch_cntr += 1
        if (batch_cntr * batch_size) > samples:
            break


def apply_adaround_example(iterations=2000, path="./"):
    # Load the model
    model = models.digits_mbv2(weights=os.path.join(DATA, "digits_mbv2.npz")).eval()
    input_shape = (1, 1, 16, 16)
    dummy_input = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)

    # Prepare the model (AIMET: ModelPreparer; aimetcle traces the module tree itself).
    # The recommended flow folds batch norms first.
    fold_all_batch_norms(model, input_shape)

    # Apply AdaRound
    data_loader = DataPipeline.get_val_dataloader()
    params = AdaroundParameters(data_loader=data_loader, num_batches=len(data_loader),
                                default_num_iterations=iterations, default_reg_param=0.01,
                                default_beta_range=(20, 2))
    # Returns model with adarounded weights and their corresponding encodings
    adarounded_model = Adaround.apply_adaround(model, dummy_input, params, path=path, filename_prefix="digits",
                                               default_param_bw=4,
                                               default_quant_scheme=QuantScheme.post_training_tf_enhanced,
                                               default_config_file=None, progress=True)

    # Create Quantization Simulation using the adarounded_model
    sim = QuantizationSimModel(adarounded_model, quant_scheme=QuantScheme.post_training_tf_enhanced,
                               default_param_bw=4, default_output_bw=8, dummy_input=dummy_input)

    # Set and freeze encodings to use same quantization grid and then invoke compute encodings
    sim.set_and_freeze_param_encodings(encoding_path=os.path.join(path, "digits.encodings"))

    # Compute encodings
    sim.compute_encodings(pass_calibration_data, forward_pass_callback_args=None)

    # Determine simulated accuracy
    accuracy = DataPipeline.evaluate(sim.model)
    print(f"W4A8 accuracy after AdaRound: {100 * accuracy:.2f}%")

    # Export the model
    sim.export(path=path, filename_prefix="quantized_digits", dummy_input=dummy_input)
    return accuracy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--out", default=None, help="folder for the encodings and the export (default: a temp dir)")
    args = parser.parse_args()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        apply_adaround_example(args.iterations, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            apply_adaround_example(args.iterations, tmp)


if __name__ == "__main__":
    main()
