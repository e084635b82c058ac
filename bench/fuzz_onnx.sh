#!/usr/bin/env bash
# Fuzzes the ONNX loader with libFuzzer + AddressSanitizer (bench/fuzz/, issue 6 §3).
#
#   bench/fuzz_onnx.sh [RUNS] [extra libFuzzer flags...]     (default 1000000 runs)
#
# FUZZ_RUN=1 in the environment also runs each loaded model (the executor).
#
# Builds bench/fuzz/ (the harness bench/fuzz/Sources/FuzzOnnx/main.swift: C API load -> describe ->
# equalize -> report, core export round trip) with --sanitize=fuzzer,address
# into .build/fuzz, then runs it from the seed corpus bench/fuzz/corpus (regenerate
# with python3 bench/fuzz/make_seeds.py). New corpus entries go to
# .build/fuzz/corpus, crashing inputs to .build/fuzz/crashes/. Prints
# libFuzzer's final stats and one summary line: executions, exec/s, seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
shift || true
scratch=$PWD/.build/fuzz
mkdir -p "$scratch/corpus" "$scratch/crashes"

# --sanitize=fuzzer makes SwiftPM link libFuzzer's main in place of the
# executable's; the one flag -sanitize=fuzzer,address, which comes last and so
# wins, keeps the coverage instrumentation that a separate -sanitize=address
# (SwiftPM's --sanitize=address) would drop.
# SwiftPM does not notice files added to a path dependency (the main package)
# once it has planned the build: forget the plan, keep the objects.
rm -f "$scratch/release.yaml"
(cd bench/fuzz && swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --scratch-path "$scratch" --product FuzzOnnx)
harness=$scratch/release/FuzzOnnx

log=$scratch/fuzz.log
# SWIFT_BACKTRACE=enable=no: on a Swift trap, libFuzzer's own handler reports
# and saves the input (the Swift backtracer's memory reads trip ASan).
start=$(date +%s)
set +e
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:${ASAN_OPTIONS:-} "$harness" -runs="$runs" -max_len=4096 -dict=bench/fuzz/onnx.dict \
    -print_final_stats=1 -artifact_prefix="$scratch/crashes/" "$@" \
    "$scratch/corpus" bench/fuzz/corpus 2>&1 | tee "$log" | grep -E "^#[0-9]+ +(INITED|DONE|pulse)|ERROR|SUMMARY|==|stat::"
status=${PIPESTATUS[0]}
set -e
seconds=$(( $(date +%s) - start ))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
echo "fuzz_onnx: ${execs:-?} executions, ${rate:-?} exec/s, ${seconds} s, exit ${status}; crashes in $scratch/crashes/"
exit "$status"
