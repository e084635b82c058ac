"""What a Python user of the installed wheel does, on the bundled digits model: cross-layer
equalization, a quantization simulation and a short AdaRound. Tests/wheel/test_wheel.sh runs it
with the virtualenv's Python, the Swift toolchain hidden, from outside the source tree.

    use_wheel.py DATA_DIR OUT_DIR

Raises (non-zero exit) when the package is not the installed one or a result is off.
"""

import os
import sys
import warnings

import numpy as np

import aimetcle
from aimetcle import _lib, cross_layer_equalization, onnx
from aimetcle.adaround.adaround_weight import Adaround, AdaroundParameters
from aimetcle.quantsim import QuantizationSimModel


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAIL: {message}")


def accuracy(logits, labels):
    return float((logits.argmax(1) == labels).mean())


def main(data_dir, out_dir):
    package = os.path.dirname(os.path.abspath(aimetcle.__file__))
    check(package.startswith(os.path.abspath(sys.prefix) + os.sep), f"aimetcle imported from {package}, not {sys.prefix}")
    check(_lib.library_path() == os.path.join(package, "libaimetcle.so"), f"loads {_lib.library_path()}")

    digits = np.load(os.path.join(data_dir, "digits.npz"))
    x_calib, x_test, y_test = digits["x_calib"], digits["x_test"], digits["y_test"]
    batches = [x_calib[i:i + 32] for i in range(0, len(x_calib), 32)]

    model = onnx.load(os.path.join(data_dir, "digits_mbv2.onnx"))
    fp32 = accuracy(model(x_test), y_test)
    check(fp32 > 0.95, f"float accuracy {fp32}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning that names the ReLU6 it replaced
        infos = cross_layer_equalization.equalize_model(model)
    sets = [len(info.cls_pair_info_list) for info in infos]
    check(sets == [2, 2, 2, 2, 1], f"CLS sets {sets}")
    equalized = accuracy(model(x_test), y_test)
    check(equalized > 0.95, f"accuracy after CLE {equalized}")

    sim = QuantizationSimModel(model, dummy_input=x_test[:1], default_param_bw=8, default_output_bw=8)
    sim.compute_encodings(lambda m, _: [m(batch) for batch in batches], None)
    w8a8 = accuracy(sim.model(x_test), y_test)
    check(w8a8 > 0.95, f"W8A8 accuracy {w8a8}")

    params = AdaroundParameters(data_loader=batches, num_batches=len(batches), default_num_iterations=10)
    ada = Adaround.apply_adaround(model, x_test[:1], params, path=out_dir, filename_prefix="digits",
                                  default_param_bw=4, progress=False)
    encodings = os.path.join(out_dir, "digits.encodings")
    check(os.path.isfile(encodings), f"no {encodings}")
    w4 = accuracy(ada(x_test), y_test)
    check(w4 > 0.9, f"accuracy with the AdaRounded 4-bit weights {w4}")

    print(f"float {fp32:.3f}; CLS sets {sets}, {equalized:.3f}; W8A8 {w8a8:.3f}; AdaRound W4 (10 iterations) {w4:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: use_wheel.py DATA_DIR OUT_DIR")
    main(*sys.argv[1:])
