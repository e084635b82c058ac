"""ONNX's own conformance cases on this library and on onnxruntime, side by side.

The cases are the backend node tests that ship in the ``onnx`` package
(``onnx.backend.test.case.node.collect_testcases()``), restricted to those whose graph inputs
and outputs are all float32 or int64. Each case runs

* in onnxruntime (CPUExecutionProvider), and
* in this library, twice: the fused plan (``model(x)``) and the exact, node-by-node plan
  (the same run with a hook, forced by capturing an output),

and each result is compared with the case's expected outputs at the case's own tolerance
(``rtol``/``atol`` as ONNX's backend runner uses them; dtypes must match). Our run of a case
ends in one of: **pass**, **refused** (the library raised its error: the message names the op
and why), **wrong** (ran but differs on either plan), **crash** or **hang** (the worker process
died or took over 60 s; each case runs in a worker process that is restarted after either).

    python3 bench/onnx_conformance.py [--ops Gather,Slice] [--show refused|wrong|all] [--json out.json]

The summary's target: our passes >= 90 % of the cases onnxruntime passes; 0 wrong, 0 crash/hang.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

CASE_TIMEOUT = 60  # seconds per case in the worker


def collect():
    """The float32/int64 cases: name -> TestCase."""
    import onnx
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    allowed = {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}
    selected = {}
    for case in cases:
        if case.model is None or not case.data_sets:
            continue
        graph = case.model.graph
        initializers = {t.name for t in graph.initializer}
        values = [v for v in graph.input if v.name not in initializers] + list(graph.output)
        if all(v.type.HasField("tensor_type") and v.type.tensor_type.elem_type in allowed for v in values):
            selected[case.name] = case
    return selected


def matches(got, expected, rtol, atol):
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for k, (g, e) in enumerate(zip(got, expected)):
        e = np.asarray(e)
        g = np.asarray(g)
        if g.dtype != e.dtype:
            return f"output {k}: dtype {g.dtype}, expected {e.dtype}"
        if g.shape != e.shape:
            return f"output {k}: shape {g.shape}, expected {e.shape}"
        if e.dtype.kind == "f":
            if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
                worst = float(np.nanmax(np.abs(g.astype(np.float64) - e))) if e.size else 0.0
                return f"output {k}: max |diff| {worst:.3g}"
        elif not np.array_equal(g, e):
            return f"output {k}: values differ"
    return None


def run_ort(case):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(case.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        for inputs, expected in case.data_sets:
            got = session.run(None, dict(zip(names, inputs)))
            problem = matches(got, expected, case.rtol, case.atol)
            if problem:
                return False, problem
        return True, ""
    except Exception as error:  # noqa: BLE001 - any failure is a failed case
        return False, str(error).splitlines()[0][:200]


# --- the worker: runs our library on case names read from stdin ---------------------------

def worker():
    import aimetcle
    import onnx
    from aimetcle import onnx as aonnx
    cases = collect()
    folder = tempfile.mkdtemp(prefix="conformance-")
    for line in sys.stdin:
        name = line.strip()
        case = cases[name]
        path = os.path.join(folder, "model.onnx")
        onnx.save(case.model, path)
        try:
            model = aonnx.load(path)
            outcome, detail = "pass", ""
            for inputs, expected in case.data_sets:
                arrays = [np.asarray(x) for x in inputs]
                fused = aimetcle.run(model, *arrays)
                fused = list(fused) if isinstance(fused, tuple) else [fused]
                output_names = [o.name for o in case.model.graph.output]
                exact, _ = aimetcle.run(model, *arrays, capture=[output_names[0]])
                exact = list(exact) if isinstance(exact, tuple) else [exact]
                problem = matches(fused, expected, case.rtol, case.atol)
                problem = problem and f"fused plan: {problem}"
                if not problem:
                    problem = matches(exact, expected, case.rtol, case.atol)
                    problem = problem and f"exact plan: {problem}"
                if problem:
                    outcome, detail = "wrong", problem
                    break
        except aimetcle.AimetError as error:
            outcome, detail = "refused", str(error)
        except Exception as error:  # noqa: BLE001 - reported as its own class
            outcome, detail = "refused", f"{type(error).__name__}: {error}"
        print(json.dumps({"name": name, "outcome": outcome, "detail": detail[:300]}), flush=True)


def run_ours(names):
    """Runs the cases in worker processes; a dead or stuck worker marks its case and is replaced."""
    results = {}
    pending = list(names)
    while pending:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        try:
            while pending:
                name = pending[0]
                proc.stdin.write(name + "\n")
                proc.stdin.flush()
                line = read_line(proc, CASE_TIMEOUT + (60 if not results else 0))
                if line is None:
                    outcome = "hang" if proc.poll() is None else "crash"
                    results[name] = {"outcome": outcome, "detail": f"worker exit code {proc.poll()}"}
                    pending.pop(0)
                    break
                record = json.loads(line)
                results[record["name"]] = record
                pending.pop(0)
        finally:
            proc.kill()
            proc.wait()
    return results


def read_line(proc, timeout):
    import selectors
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if selector.select(timeout=max(0.0, deadline - time.time())):
            line = proc.stdout.readline()
            return line if line else None
        if proc.poll() is not None:
            return None
    return None


def op_of(case):
    return ",".join(sorted({n.op_type for n in case.model.graph.node})) or "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ops", default="", help="only cases whose nodes include one of these op types")
    parser.add_argument("--show", default="", choices=["", "refused", "wrong", "all"],
                        help="list the cases with this outcome")
    parser.add_argument("--json", default="", help="write every case's outcome to this file")
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    import onnxruntime
    started = time.time()
    cases = collect()
    if args.ops:
        wanted = set(args.ops.split(","))
        cases = {k: v for k, v in cases.items() if wanted & {n.op_type for n in v.model.graph.node}}
    names = sorted(cases)
    ort_results = {name: run_ort(cases[name]) for name in names}
    ours = run_ours(names)
    counts = collections.Counter(r["outcome"] for r in ours.values())
    ort_pass = [n for n in names if ort_results[n][0]]
    ours_pass = [n for n in names if ours[n]["outcome"] == "pass"]
    both = [n for n in ort_pass if ours[n]["outcome"] == "pass"]
    print(f"ONNX node conformance cases with float32/int64 inputs and outputs: {len(names)} "
          f"(onnx {__import__('onnx').__version__}, onnxruntime {onnxruntime.__version__})")
    print(f"  onnxruntime passes {len(ort_pass)}")
    print(f"  aimetcle    passes {len(ours_pass)}: {len(both)} of onnxruntime's {len(ort_pass)} "
          f"({100.0 * len(both) / max(1, len(ort_pass)):.1f} %; target >= 90 %)")
    print("  aimetcle outcomes: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in
                                              ("pass", "refused", "wrong", "crash", "hang")))
    refused_ops = collections.Counter(op_of(cases[n]) for n in ort_pass if ours[n]["outcome"] == "refused")
    if refused_ops:
        print("  refused (of the cases onnxruntime passes), by op: " +
              ", ".join(f"{op} {c}" for op, c in refused_ops.most_common(40)))
    for name in names:
        outcome = ours[name]["outcome"]
        if outcome in ("wrong", "crash", "hang") or args.show == "all" or args.show == outcome:
            print(f"    {outcome:8s} {name} [{op_of(cases[name])}] {ours[name]['detail']}")
    print(f"  ({time.time() - started:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({n: {"ort": ort_results[n][0], **ours[n]} for n in names}, f, indent=1)


if __name__ == "__main__":
    main()
