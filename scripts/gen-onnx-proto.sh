#!/usr/bin/env bash
# Regenerates Sources/AimetCore/ONNX/onnx.pb.swift from onnx.proto (shipped in the
# `onnx` PyPI wheel). Run by hand when updating onnx.proto; the output is committed and
# never generated at build time.
# Needs: protoc (Debian protobuf-compiler) and protoc-gen-swift from apple/swift-protobuf
# 1.39.0 (`swift build -c release --product protoc-gen-swift` in a package depending on it).
set -euo pipefail
cd "$(dirname "$0")/../Sources/AimetCore/ONNX"
PLUGIN=${PROTOC_GEN_SWIFT:-protoc-gen-swift}
protoc --plugin=protoc-gen-swift="$PLUGIN" --swift_opt=Visibility=Internal --swift_out=. onnx.proto
