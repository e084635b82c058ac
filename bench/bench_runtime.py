"""Benchmark: the runtime's images/s against onnxruntime, with the same thread count.

Models, batch 32 by default:
  * data/digits_mbv2.onnx (1x16x16 input);
  * mobilenet_v2 and resnet18 (torchvision structure, random weights) at 224x224, exported with
    ``aimetcle.onnx.save(models.X().eval(), path, input_shapes=(1, 3, 224, 224))`` into a temp dir.
  * efficientnet_b0, mobilenet_v3_large, convnext_tiny and vit_b_16 (torchvision, random weights, BN
    statistics from train-mode passes) as ``torch.onnx.export`` wrote them (classic exporter, eval mode),
    taken from ``build/corpus/`` where ``bench/model_corpus.py`` caches its exports; run
    ``bench/model_corpus.py --models efficientnet_b0,mobilenet_v3_large,convnext_tiny,vit_b_16 --exports eval``
    (in the bench venv) first, or they are skipped with a note.
Both engines run the same file (for onnxruntime the declared batch axis is made dynamic);
onnxruntime gets ``intra_op_num_threads = 2``, ``inter_op_num_threads = 1``; the library uses
one worker per online processor (2 on the reference machine; the header says if not).
Times are best-of-N wall times of one ``run`` on the whole batch, after a warm-up run.
The ratio is ours / onnxruntime time (the project's target: <= 1.5x).

Also the library's GEMM throughput: one large Conv (256->256, 3x3, pad 1, 56x56, batch 8, as
an ONNX model), GFLOP/s = 2 * MACs / time, next to numpy's 2048x2048 matmul as the machine's
reference (and onnxruntime on the same Conv).

    python3 bench/bench_runtime.py [--repeat 5] [--batch 32]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import aimetcle  # noqa: E402
from aimetcle import models, nn  # noqa: E402
from aimetcle import onnx as aonnx  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "build", "corpus")
EXPORTED = ("efficientnet_b0", "mobilenet_v3_large", "convnext_tiny", "vit_b_16")
DIGITS_ONNX = os.path.join(ROOT, "data", "digits_mbv2.onnx")
ORT_THREADS = 2


def best_of(repeat, *fns):
    """Best and median wall time in seconds of each ``fn()``, after one warm-up call each.
    The functions take turns within every repetition, so a load change on the machine
    (other processes) hits them alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [(min(t), float(np.median(t))) for t in times]


def ort_session(path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = ORT_THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def dynamic_batch(path, out_path):
    """A copy of ``path`` whose inputs and outputs have a free batch axis (for onnxruntime;
    the library runs any batch size whatever the declared one)."""
    import onnx
    model = onnx.load(path)
    for value in list(model.graph.input) + list(model.graph.output):
        if value.type.tensor_type.HasField("shape") and value.type.tensor_type.shape.dim:
            dim = value.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = "N"
    del model.graph.value_info[:]
    onnx.save(model, out_path)
    return out_path


def trained_like(model, seed=0):
    """Non-trivial batch-norm statistics, so activations keep a sensible range through the net."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight[...] = rng.uniform(0.5, 1.5, n)
            m.bias[...] = rng.normal(0, 0.2, n)
            m.running_mean[...] = rng.normal(0, 0.2, n)
            m.running_var[...] = rng.uniform(0.5, 2, n)
    return model.eval()


def compare_model(name, path, x, repeat):
    """(name, model(x) best/median s, handle run best/median s, onnxruntime best/median s,
    max relative difference of the outputs)."""
    model = aonnx.load(path)
    handle = model.handle  # the library model, weights pushed once
    feeds = {model.input_names[0]: x}
    session = ort_session(dynamic_batch(path, path + ".ort.onnx"))
    input_name = session.get_inputs()[0].name
    ours = model(x)
    ref = session.run(None, {input_name: x})[0]
    diff = float(np.max(np.abs(ours - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
    t_model, t_handle, t_ort = best_of(repeat, lambda: model(x), lambda: handle.run(feeds),
                                       lambda: session.run(None, {input_name: x}))
    return name, t_model, t_handle, t_ort, diff


def gemm_rates(repeat, tmp):
    """GFLOP/s of the library and onnxruntime on one big Conv, and of numpy's matmul."""
    n, c, hw = 8, 256, 56
    conv = nn.Conv2d(c, c, 3, padding=1, bias=True)
    path = os.path.join(tmp, "conv256.onnx")
    aonnx.save(conv, path, input_shapes=(n, c, hw, hw))
    flops = 2.0 * n * c * hw * hw * c * 9
    x = np.random.default_rng(1).standard_normal((n, c, hw, hw)).astype(np.float32)
    model = aonnx.load(path)
    handle, feeds = model.handle, {model.input_names[0]: x}
    session = ort_session(path)
    input_name = session.get_inputs()[0].name
    a = np.random.default_rng(2).standard_normal((2048, 2048)).astype(np.float32)
    b = np.random.default_rng(3).standard_normal((2048, 2048)).astype(np.float32)
    (ours, _), (theirs, _), (ref, _) = best_of(repeat, lambda: handle.run(feeds),
                                               lambda: session.run(None, {input_name: x}), lambda: a @ b)
    return [(f"Conv 256->256 3x3, {hw}x{hw}, batch {n} (aimetcle)", flops / ours / 1e9, ours),
            (f"same Conv (onnxruntime, {ORT_THREADS} threads)", flops / theirs / 1e9, theirs),
            ("numpy matmul 2048x2048 float32", 2.0 * 2048 ** 3 / ref / 1e9, ref)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (best is reported)")
    parser.add_argument("--batch", type=int, default=32, help="images per run")
    args = parser.parse_args()
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
    except ImportError as exc:
        sys.exit(f"bench_runtime.py needs onnx and onnxruntime ({exc})")

    from aimetcle import _lib
    workers = os.sysconf("SC_NPROCESSORS_ONLN")
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        digits = os.path.join(tmp, "digits_mbv2.onnx")
        with open(DIGITS_ONNX, "rb") as src, open(digits, "wb") as dst:
            dst.write(src.read())
        data = np.load(os.path.join(ROOT, "data", "digits.npz"))["x_test"]
        x = data[np.arange(args.batch) % len(data)]
        rows.append(compare_model("digits_mbv2 16x16", digits, x, args.repeat))
        x = rng.standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
        for name in ("mobilenet_v2", "resnet18"):
            path = os.path.join(tmp, f"{name}.onnx")
            aonnx.save(trained_like(getattr(models, name)()), path, input_shapes=(1, 3, 224, 224))
            rows.append(compare_model(f"{name} 224x224", path, x, args.repeat))
        skipped = []
        for name in EXPORTED:
            path = os.path.join(CORPUS, f"{name}.eval.onnx")
            if not os.path.exists(path):
                skipped.append(name)
                continue
            copy = os.path.join(tmp, f"{name}.onnx")
            with open(path, "rb") as src, open(copy, "wb") as dst:
                dst.write(src.read())
            try:
                rows.append(compare_model(f"{name} (torch)", copy, x, args.repeat))
            except aimetcle.AimetError as error:
                skipped.append(f"{name} (refused: {str(error)[:100]})")
        rates = gemm_rates(args.repeat, tmp)

    print(f"aimetcle runtime vs onnxruntime {ort.__version__}: batch {args.batch}, best of {args.repeat} "
          f"(median in brackets)")
    print(f"library: {os.path.relpath(_lib.library_path())}")
    note = "" if workers == ORT_THREADS else f"  (NOTE: not equal to onnxruntime's {ORT_THREADS})"
    print(f"threads: aimetcle {workers} workers (online processors){note}, onnxruntime intra-op {ORT_THREADS}")
    print()
    print("model(x): the public call (weights pushed, run); run only: the library model's run alone")
    print(f"{'model':20s} {'model(x) ms':>17s} {'img/s':>7s} {'run only ms':>17s} {'onnxruntime ms':>17s} "
          f"{'img/s':>7s} {'ratio':>6s} {'<=1.5x':>6s} {'max rel diff':>12s}")
    for name, ours, run_only, theirs, diff in rows:
        ratio = ours[0] / theirs[0]
        print(f"{name:20s} {1e3 * ours[0]:8.1f} ({1e3 * ours[1]:6.1f}) {args.batch / ours[0]:7.0f} "
              f"{1e3 * run_only[0]:8.1f} ({1e3 * run_only[1]:6.1f}) "
              f"{1e3 * theirs[0]:8.1f} ({1e3 * theirs[1]:6.1f}) {args.batch / theirs[0]:7.0f} "
              f"{ratio:5.2f}x {'ok' if ratio <= 1.5 else 'MISS':>6s} {diff:12.1e}")
    if skipped:
        print(f"not run: {', '.join(skipped)} (export them with bench/model_corpus.py --exports eval)")
    print()
    print(f"{'GEMM throughput':52s} {'GFLOP/s':>8s} {'ms':>8s}")
    for name, rate, seconds in rates:
        print(f"{name:52s} {rate:8.1f} {1e3 * seconds:8.1f}")


if __name__ == "__main__":
    main()
