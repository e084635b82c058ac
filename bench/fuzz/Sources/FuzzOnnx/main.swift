// libFuzzer entry point: the fuzzed bytes go through everything a caller can
// do with an untrusted ONNX file — the C API's load, describe, equalize and
// report, and the core's export round trip; with FUZZ_RUN=1 in the
// environment also a run of the model and of its quantization simulation
// (before and after equalize) on small inputs of the declared shapes. Any outcome but an AimetError (a trap, an
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

/// Runs the model, then its quantization simulation (calibrated on the same
/// data), on inputs of its declared shapes (free dimensions 1) when they are
/// small (at most 4096 values each).
private func run(_ model: Model) {
    guard let inputs = model.graph.sampleInputs(maxValues: 4096) else { return }
    if let executor = try? Executor(model: model) { _ = try? executor.run(inputs) }
    // The quantization simulation: calibrate on the same inputs, simulate, encodings JSON.
    guard let sim = try? QuantSim(model: model) else { return }
    sim.beginCalibration()
    _ = try? sim.run(inputs)
    guard (try? sim.endCalibration()) != nil else { return }
    _ = try? sim.run(inputs)
    _ = try? sim.encodingsFile().jsonText()
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
