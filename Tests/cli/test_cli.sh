#!/usr/bin/env bash
# Smoke tests of the `aimetcle` command line on the bundled digits model.
#   make test-cli            (builds build/aimetcle first)
#   AIMETCLE=path/to/aimetcle bash Tests/cli/test_cli.sh
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI=${AIMETCLE:-$ROOT/build/aimetcle}
MODEL=$ROOT/data/digits_mbv2.onnx
PYTHON=${PYTHON:-python3}

if [ ! -x "$CLI" ]; then
    echo "no aimetcle binary at $CLI (run 'make cli' or set AIMETCLE)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/aimetcle-cli-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

passed=0
failed=0
skipped=0

# check DESCRIPTION COMMAND...: one check, passes when COMMAND succeeds.
check() {
    local description=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $description" >&2
        echo "  command: $*" >&2
        [ -s "$T/stdout" ] && sed 's/^/  stdout: /' "$T/stdout" | head -20 >&2
        [ -s "$T/stderr" ] && sed 's/^/  stderr: /' "$T/stderr" | head -20 >&2
    fi
}

# run ARGS...: runs the CLI; stdout, stderr in $T/stdout, $T/stderr, status in $rc.
run() {
    "$CLI" "$@" >"$T/stdout" 2>"$T/stderr"
    rc=$?
}

has() { grep -qF -- "$1" "$T/stdout"; }          # stdout contains the text
err_has() { grep -qF -- "$1" "$T/stderr"; }      # stderr contains the text
is() { [ "$1" = "$2" ]; }
no_file() { [ ! -e "$1" ]; }
# stderr is exactly one line starting with "error: " (no stack trace, no usage)
one_error_line() { [ "$(wc -l <"$T/stderr")" -eq 1 ] && head -1 "$T/stderr" | grep -q '^error: '; }
json_field() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$T/stdout" "$1"; }
has_python() { command -v "$PYTHON" >/dev/null 2>&1; }

MODEL_SUM=$(cksum <"$MODEL")

# ---------------------------------------------------------------- help, version
run --version
check "--version exits 0" is "$rc" 0
check "--version prints a version" grep -qE '^[0-9]+\.[0-9]+\.[0-9]+' "$T/stdout"

run --help
check "--help exits 0" is "$rc" 0
check "--help lists inspect" has "inspect"
check "--help lists equalize" has "equalize"

for sub in inspect equalize; do
    run "$sub" --help
    check "$sub --help exits 0" is "$rc" 0
    check "$sub --help shows its usage" has "USAGE: aimetcle $sub"
    check "$sub --help shows examples" has "aimetcle $sub model.onnx"
    run help "$sub"
    check "help $sub exits 0" is "$rc" 0
    check "help $sub shows its usage" has "USAGE: aimetcle $sub"
done

run frobnicate
check "an unknown subcommand fails" test "$rc" -ne 0

# ---------------------------------------------------------------------- inspect
run inspect "$MODEL"
check "inspect exits 0" is "$rc" 0
check "inspect shows the opset" grep -qE '^Opset: +17$' "$T/stdout"
check "inspect shows the input and its shape" grep -qE '^Inputs: +input +\[\?, 1, 16, 16\]$' "$T/stdout"
check "inspect shows the output and its shape" grep -qE '^Outputs: +logits +\[\?, 10\]$' "$T/stdout"
check "inspect counts 14 Conv" grep -qE '^  Conv +14$' "$T/stdout"
check "inspect counts 14 BatchNormalization" grep -qE '^  BatchNormalization +14$' "$T/stdout"
check "inspect counts 10 Clip" grep -qE '^  Clip +10$' "$T/stdout"
check "inspect counts 10 ReLU6" grep -qE '^ReLU6: +10 Clip\(0, 6\) nodes$' "$T/stdout"
check "inspect: 14 BN pairs would fold" has "14 BatchNormalization nodes would fold"
check "inspect lists a long folded pair" \
    grep -qE '^  /features/features.1/conv/conv.0/conv.0.0/Conv +← /features/features.1/conv/conv.0/conv.0.1/BatchNormalization$' "$T/stdout"
check "inspect: 10 ReLU6 would be replaced" has "10 ReLU6 nodes would be replaced"
check "inspect: 5 CLS sets" has "5 CLS sets would be scaled"
check "inspect: stderr is empty" test ! -s "$T/stderr"
check "inspect does not change the model" is "$(cksum <"$MODEL")" "$MODEL_SUM"

run inspect "$MODEL" --keep-relu6
check "inspect --keep-relu6 exits 0" is "$rc" 0
check "inspect --keep-relu6 replaces no ReLU6" has "ReLU6 → ReLU: off (--keep-relu6)"

if has_python; then
    run inspect --json "$MODEL"
    check "inspect --json exits 0" is "$rc" 0
    check "inspect --json: opset" is "$(json_field 'd["opset"]')" 17
    check "inspect --json: 14 Conv" is "$(json_field 'd["ops"]["Conv"]')" 14
    check "inspect --json: 10 relu6" is "$(json_field 'd["relu6"]')" 10
    check "inspect --json: 14 folded" is "$(json_field 'len(d["equalization"]["folded"])')" 14
    check "inspect --json: 5 CLS sets" is "$(json_field 'len(d["equalization"]["cls_sets"])')" 5
else
    skipped=$((skipped + 1))
    echo "skip: inspect --json checks ($PYTHON not found)" >&2
fi

# --------------------------------------------------------------------- equalize
OUT=$T/digits_cle.onnx
run equalize "$MODEL" -o "$OUT"
check "equalize exits 0" is "$rc" 0
check "equalize: 14 BN pairs folded" has "14 BatchNormalization nodes folded"
check "equalize lists a long folded pair" \
    grep -qE '^  /features/features.5/features.5.0/Conv +← /features/features.5/features.5.1/BatchNormalization$' "$T/stdout"
check "equalize: 10 ReLU6 replaced" has "10 ReLU6 nodes were replaced"
check "equalize: 5 CLS sets" has "5 CLS sets scaled"
check "equalize: triplets with relu flags and scales" \
    grep -qE '^ +/features/features.1/conv/conv.2/Conv +relu +S23 [0-9.e+-]+ \.\. [0-9.e+-]+$' "$T/stdout"
check "equalize: high-bias fold count" grep -qE '^High-bias fold: [0-9]+ pairs? folded$' "$T/stdout"
check "equalize: timings" grep -qE '^Timings: load [0-9.]+ ms, equalize [0-9.]+ ms, save [0-9.]+ ms$' "$T/stdout"
check "equalize wrote the output" test -s "$OUT"
check "equalize does not change the input" is "$(cksum <"$MODEL")" "$MODEL_SUM"

run inspect "$OUT"
check "inspect of the equalized model exits 0" is "$rc" 0
check "the equalized model has no BatchNormalization" sh -c "! grep -qE '^  BatchNormalization ' '$T/stdout'"
check "the equalized model has nothing left to fold" has "0 BatchNormalization nodes would fold"
check "the equalized model still has 14 Conv" grep -qE '^  Conv +14$' "$T/stdout"
check "the equalized model has no ReLU6" grep -qE '^ReLU6: +0 Clip\(0, 6\) nodes$' "$T/stdout"
check "the equalized model has 10 Relu" grep -qE '^  Relu +10$' "$T/stdout"

run equalize "$MODEL" -o "$T/quiet.onnx" --quiet
check "equalize --quiet exits 0" is "$rc" 0
check "equalize --quiet prints nothing" test ! -s "$T/stdout"
check "equalize --quiet wrote the output" test -s "$T/quiet.onnx"

if has_python; then
    run equalize "$MODEL" -o "$T/json.onnx" --json
    check "equalize --json exits 0" is "$rc" 0
    check "equalize --json: 14 folded" is "$(json_field 'len(d["report"]["folded"])')" 14
    check "equalize --json: 10 relu6" is "$(json_field 'len(d["report"]["relu6_replaced"])')" 10
    check "equalize --json: 5 CLS sets" is "$(json_field 'len(d["report"]["cls_sets"])')" 5
    check "equalize --json: timings" is "$(json_field 'sorted(d["timings_ms"])')" "['equalize', 'load', 'save']"
else
    skipped=$((skipped + 1))
    echo "skip: equalize --json checks ($PYTHON not found)" >&2
fi

# ----------------------------------------------------------------------- errors
run equalize "$MODEL" -o "$MODEL"
check "-o equal to the input is refused" is "$rc" 1
check "-o equal to the input: one error line" one_error_line
check "-o equal to the input: says --in-place" err_has "--in-place"
check "-o equal to the input leaves it intact" is "$(cksum <"$MODEL")" "$MODEL_SUM"

cp "$MODEL" "$T/inplace.onnx"
run equalize "$T/inplace.onnx" --in-place --quiet
check "--in-place without -o exits 0" is "$rc" 0
check "--in-place rewrote the file" sh -c "! cmp -s '$MODEL' '$T/inplace.onnx'"

head -c 1000 "$MODEL" >"$T/truncated.onnx"
for sub in inspect equalize; do
    if [ "$sub" = inspect ]; then run inspect "$T/truncated.onnx"; else run equalize "$T/truncated.onnx" -o "$T/from_truncated.onnx"; fi
    check "$sub of a truncated model exits 1" is "$rc" 1
    check "$sub of a truncated model: one error line" one_error_line
    check "$sub of a truncated model: says truncated" err_has "truncated"
done
check "no output file from a truncated model" no_file "$T/from_truncated.onnx"

for sub in inspect equalize; do
    if [ "$sub" = inspect ]; then run inspect "$T/missing.onnx"; else run equalize "$T/missing.onnx" -o "$T/from_missing.onnx"; fi
    check "$sub of a missing file exits 1" is "$rc" 1
    check "$sub of a missing file: one error line" one_error_line
    check "$sub of a missing file: says no such file" err_has "error: no such file: '$T/missing.onnx'"
done
check "no output file from a missing model" no_file "$T/from_missing.onnx"

run equalize "$MODEL" -o "$T/region.onnx" --start no-such-node
check "an unknown --start name exits 1" is "$rc" 1
check "an unknown --start name: one error line" one_error_line
check "an unknown --start name: names it" err_has "no-such-node"
check "no output file after an unknown --start name" no_file "$T/region.onnx"

run equalize "$MODEL" -o "$T/no/such/dir/out.onnx"
check "an output in a missing folder exits 1" is "$rc" 1
check "an output in a missing folder: one error line" one_error_line

# --------------------------------------------------------------------- adaround
if has_python && "$PYTHON" -c "import numpy" 2>/dev/null; then
    "$PYTHON" -c "import numpy as np, sys; d = np.load(sys.argv[1]); np.save(sys.argv[2], d['x_calib'][:96]); np.save(sys.argv[3], d['x_calib'][:96].astype(np.float64)); np.save(sys.argv[4], d['y_calib'][:96])" \
        "$ROOT/data/digits.npz" "$T/calib.npy" "$T/calib64.npy" "$T/labels.npy"
    run adaround "$MODEL" --data "$T/calib.npy" --param-bw 4 --iterations 50 -o "$T/ada.onnx" --encodings "$T/ada.encodings"
    check "adaround exits 0" is "$rc" 0
    check "adaround prints a line per layer" is "$(grep -c '^layer [0-9]*/15 .* it/s, MSE .* → ' "$T/stdout")" 15
    check "adaround says where it wrote" has "encodings → $T/ada.encodings"
    check "adaround writes the model" test -s "$T/ada.onnx"
    check "adaround writes AIMET's param_encodings for 15 layers" "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); e=d['param_encodings']; sys.exit(0 if list(d)==['param_encodings'] and len(e)==15 and all(v[0]['bitwidth']==4 and v[0]['is_symmetric']=='True' for v in e.values()) else 1)" "$T/ada.encodings"
    check "adaround leaves the input model alone" is "$(cksum <"$MODEL")" "$MODEL_SUM"
    run inspect "$T/ada.onnx"
    check "the adarounded model loads" is "$rc" 0
    run adaround "$MODEL" --data "$T/calib64.npy" --iterations 20 --batch-size 16 --num-batches 3 -o "$T/ada2.onnx" --quiet
    check "adaround --quiet takes float64 data, prints nothing" is "$rc$(cat "$T/stdout")" 0
    check "adaround defaults the encodings path to OUT.encodings" test -s "$T/ada2.encodings"
    run adaround "$MODEL" --data "$T/calib.npy" --iterations 20 --per-channel --json -o "$T/ada3.onnx"
    check "adaround --json exits 0" is "$rc" 0
    check "adaround --json reports 15 layers" is "$(json_field 'len(d["layers"])')" 15
    check "adaround --json has timings" is "$(json_field '"adaround" in d["timings_ms"]')" True
    check "adaround --per-channel writes one encoding per channel" "$PYTHON" -c "import json,sys; e=json.load(open(sys.argv[1]))['param_encodings']; sys.exit(0 if len(e['features.0.0.weight'])==16 else 1)" "$T/ada3.encodings"
    run adaround "$MODEL" --data "$T/calib.npy" --iterations 10 --ignore nope -o "$T/bad.onnx"
    check "adaround --ignore with an unknown layer fails" is "$rc" 1
    check "... with one error line naming it" one_error_line
    check "... naming the layer" err_has "'nope'"
    check "... writing neither file" no_file "$T/bad.onnx"
    check "... nor the encodings" no_file "$T/bad.encodings"
    run adaround "$MODEL" --data "$T/labels.npy" --iterations 10 -o "$T/bad.onnx"
    check "adaround with int64 data fails clearly" err_has "dtype"
    run adaround "$MODEL" --data "$T/ada.onnx" --iterations 10 -o "$T/bad.onnx"
    check "adaround with a non-.npy file fails clearly" err_has "not a .npy file"
    run adaround "$MODEL" --data "$T/calib.npy" --param-bw 1 -o "$T/bad.onnx"
    check "adaround --param-bw 1 fails clearly" err_has "2...16"
    run adaround "$MODEL" --data "$T/calib.npy" --num-batches 9 -o "$T/bad.onnx"
    check "adaround with too few batches fails clearly" err_has "has only 3"
    run adaround "$MODEL" --data "$T/calib.npy" -o "$MODEL"
    check "adaround refuses to overwrite its input" err_has "is the input model"
    check "... leaving it alone" is "$(cksum <"$MODEL")" "$MODEL_SUM"
    check "adaround failures wrote nothing" no_file "$T/bad.onnx"
else
    skipped=$((skipped + 1))
    echo "skip: adaround checks (python3 with numpy not found)" >&2
fi

# ------------------------------------------------------------------ onnxruntime
if has_python && "$PYTHON" -c "import onnxruntime, numpy" >/dev/null 2>&1; then
    run equalize "$MODEL" -o "$T/exact.onnx" --keep-relu6 --no-high-bias-fold --quiet
    check "equalize --keep-relu6 --no-high-bias-fold exits 0" is "$rc" 0
    check "onnxruntime runs the equalized model like the original (1e-4 relative)" \
        "$PYTHON" - "$MODEL" "$T/exact.onnx" "$OUT" <<'EOF'
import sys
import numpy as np
import onnxruntime as ort

original, exact, default = sys.argv[1:4]
x = np.random.default_rng(0).standard_normal((4, 1, 16, 16)).astype(np.float32)
def run(path):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
want, got = run(original), run(exact)
error = np.abs(got - want).max() / np.abs(want).max()
ok = got.shape == want.shape and error <= 1e-4
# The default equalization (ReLU6 -> ReLU, high-bias fold) also loads and runs.
other = run(default)
ok = ok and other.shape == want.shape and bool(np.isfinite(other).all())
if not ok:
    print(f"relative difference {error:g}, shapes {got.shape} {want.shape} {other.shape}", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
else
    skipped=$((skipped + 1))
    echo "skip: onnxruntime check (python3 with onnxruntime and numpy not found)" >&2
fi

[ "$skipped" -gt 0 ] && echo "($skipped group(s) of checks skipped)" >&2
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
