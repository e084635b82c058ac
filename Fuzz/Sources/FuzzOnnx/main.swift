// libFuzzer entry point: the fuzzed bytes go through everything a caller can
// do with an untrusted ONNX file — the C API's load, describe, equalize and
// report, and the core's export round trip; with FUZZ_RUN=1 in the
// environment also a run of the model (before and after equalize) on small
// inputs of the declared shapes. Any outcome but an AimetError (a trap, an
// ASan report) is a finding. Built and run by bench/fuzz_onnx.sh.
import AimetCore
import CAPI
import Foundation

/// Whether to run the models too (FUZZ_RUN=1), read once.
private let runModels = ProcessInfo.processInfo.environment["FUZZ_RUN"] == "1"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOnnx(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    throughCAPI(start, count)
    guard let model = try? Model(onnxData: data) else { return 0 }
    roundTrip(model)
    if runModels { run(model) }
    var equalized = model
    if (try? Equalize.run(&equalized)) != nil {
        roundTrip(equalized)
        if runModels { run(equalized) }
    }
    return 0
}

/// Load, describe, equalize and report through the C ABI, as Python does.
private func throughCAPI(_ start: UnsafeRawPointer, _ count: Int) {
    var handle: OpaquePointer?
    guard aimet_model_load_onnx_bytes(start, Int64(count), &handle) == 0 else { return }
    defer { _ = aimet_model_free(handle) }
    var length: Int64 = 0
    if aimet_model_describe_json(handle, nil, 0, &length) == 0 {
        var text = [CChar](repeating: 0, count: Int(length))
        _ = aimet_model_describe_json(handle, &text, length, &length)
    }
    if aimet_model_equalize(handle, 0, nil, 0, nil, 0) == 0 {
        _ = aimet_model_report_json(handle, nil, 0, &length)
    }
}

/// Runs the model on inputs of its declared shapes (free dimensions 1) when
/// they are small (at most 4096 values each).
private func run(_ model: Model) {
    var inputs: [String: Tensor] = [:]
    for input in model.graph.inputs {
        let shape = (input.shape ?? [1]).map { $0 <= 0 ? 1 : $0 }
        guard shape.count <= 6, shape.allSatisfy({ $0 <= 4096 }),
              shape.reduce(1, *) <= 4096 else { return }
        let count = shape.reduce(1, *)
        guard let tensor = try? Tensor(shape: shape, data: (0..<count).map { Float($0 % 7) - 3 }) else { return }
        inputs[input.name] = tensor
    }
    guard let executor = try? Executor(model: model) else { return }
    _ = try? executor.run(inputs)
}

/// A model the loader accepted must export, and the export must load again.
private func roundTrip(_ model: Model) {
    guard let bytes = try? model.onnxData() else { return }
    do {
        _ = try Model(onnxData: bytes)
    } catch {
        fatalError("an exported model does not load again: \(error)")
    }
}
