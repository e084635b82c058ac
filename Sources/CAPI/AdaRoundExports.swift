import AimetCore
import CAimetABI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// AIMET's Adaround.apply_adaround on a model handle, in header order.

@_cdecl("aimet_adaround_options_default")
public func aimet_adaround_options_default(_ options: UnsafeMutablePointer<aimet_adaround_options_t>?) -> Int32 {
    guarded("aimet_adaround_options_default") {
        guard let options else { throw nullError("options") }
        let d = AdaRoundParameters(numBatches: 1)
        options.pointee = aimet_adaround_options_t(
            num_batches: 0, iterations: 0, reg_param: d.regParam,
            beta_start: Float(d.betaRange.start), beta_end: Float(d.betaRange.end), warm_start: Float(d.warmStart),
            param_bitwidth: Int32(d.paramBitwidth), quant_scheme: Int32(AIMET_QUANT_SCHEME_TF_ENHANCED.rawValue),
            per_channel: -1, config_json: nil, ignore: nil, num_ignore: 0,
            override_names: nil, override_bitwidths: nil, num_overrides: 0,
            batch_size: Int32(d.batchSize), position_samples: 0, seed: d.seed, threads: 0,
            progress: nil, progress_user: nil)
    }
}

/// The Swift parameters for C options; `available` batches were given.
func adaRoundParameters(_ o: aimet_adaround_options_t, available: Int) throws -> AdaRoundParameters {
    guard o.num_batches >= 0 else { throw AimetError(.invalidArgument, "num_batches must be >= 0 (0: all), got \(o.num_batches)") }
    guard o.iterations >= 0 else { throw AimetError(.invalidArgument, "iterations must be >= 0 (0: AIMET's default), got \(o.iterations)") }
    guard o.position_samples >= 0 else {
        throw AimetError(.invalidArgument, "position_samples must be >= 0 (0: whole samples), got \(o.position_samples)")
    }
    var p = AdaRoundParameters(numBatches: o.num_batches == 0 ? available : Int(o.num_batches),
                               iterations: o.iterations == 0 ? nil : Int(o.iterations))
    p.regParam = o.reg_param
    p.betaRange = (Double(o.beta_start), Double(o.beta_end))
    p.warmStart = Double(o.warm_start)
    p.paramBitwidth = Int(o.param_bitwidth)
    switch aimet_quant_scheme(rawValue: UInt32(bitPattern: o.quant_scheme)) {
    case AIMET_QUANT_SCHEME_TF: p.scheme = .postTrainingTF
    case AIMET_QUANT_SCHEME_TF_ENHANCED: p.scheme = .postTrainingTFEnhanced
    default: throw AimetError(.invalidArgument, "quant_scheme must be AIMET_QUANT_SCHEME_TF (1) or _TF_ENHANCED (2), got \(o.quant_scheme)")
    }
    switch o.per_channel {
    case -1: p.perChannel = nil
    case 0, 1: p.perChannel = o.per_channel == 1
    default: throw AimetError(.invalidArgument, "per_channel must be -1, 0 or 1, got \(o.per_channel)")
    }
    if let text = o.config_json { p.config = try QuantSimConfig(json: Data(String(cString: text).utf8)) }
    p.ignore = try stringArray(o.ignore, o.num_ignore, "ignore")
    let names = try stringArray(o.override_names, o.num_overrides, "override_names")
    if !names.isEmpty {
        guard let bits = o.override_bitwidths else { throw nullError("override_bitwidths") }
        for (k, name) in names.enumerated() {
            guard p.paramBitwidthOverrides[name] == nil else {
                throw AimetError(.invalidArgument, "override_names: '\(name)' is given twice")
            }
            p.paramBitwidthOverrides[name] = Int(bits[k])
        }
    }
    p.batchSize = Int(o.batch_size)
    p.positionSamples = o.position_samples == 0 ? nil : Int(o.position_samples)
    p.seed = o.seed
    guard o.threads >= 0 else { throw AimetError(.invalidArgument, "threads must be >= 0 (0: one per processor), got \(o.threads)") }
    p.threads = Int(o.threads)
    return p
}

@_cdecl("aimet_model_adaround")
public func aimet_model_adaround(_ model: OpaquePointer?, _ data: UnsafePointer<aimet_tensor_t>?, _ numDataBatches: Int32,
                                 _ inputsPerBatch: Int32, _ options: UnsafePointer<aimet_adaround_options_t>?,
                                 _ encodingsPath: UnsafePointer<CChar>?) -> Int32 {
    guarded("aimet_model_adaround") {
        guard let o = options?.pointee else { throw nullError("options") }
        guard numDataBatches > 0 else {
            throw AimetError(.invalidArgument, "AdaRound needs calibration data: the data loader is empty (num_data_batches \(numDataBatches))")
        }
        guard inputsPerBatch >= 1 else {
            throw AimetError(.invalidArgument, "inputs_per_batch must be at least 1, got \(inputsPerBatch)")
        }
        let (total, overflow) = numDataBatches.multipliedReportingOverflow(by: inputsPerBatch)
        guard !overflow else { throw AimetError(.invalidArgument, "num_data_batches × inputs_per_batch overflows") }
        guard total == 0 || data != nil else { throw nullError("data") }
        let batches = try (0..<Int(numDataBatches)).map { b in
            try readInputs(data.map { $0 + b * Int(inputsPerBatch) }, inputsPerBatch)
        }
        let parameters = try adaRoundParameters(o, available: batches.count)
        let path = encodingsPath.map { String(cString: $0) }
        try withModel(model) { h in
            let progress: AdaRound.Progress? = o.progress.map { callback in
                { name, index, count, r in
                    let stop = name.withCString {
                        callback(o.progress_user, $0, Int32(index), Int32(count), r.iterationsPerSecond, r.mseNearest,
                                 r.mseAdaRound, r.keptNearest ? 1 : 0)
                    }
                    if stop != 0 {
                        throw AimetError(.cancelled, "stopped by the progress callback after layer \(index + 1) of \(count) ('\(name)')")
                    }
                }
            }
            let result = try AdaRound.apply(model: h.model, inputs: batches, parameters: parameters, progress: progress)
            // The file first: if it cannot be written, the model stays as it was.
            if let path { try result.encodings.write(to: path) }
            h.model = result.model
            h.adaRound = (result.report, result.encodings)
        }
    }
}

@_cdecl("aimet_model_adaround_report_json")
public func aimet_model_adaround_report_json(_ model: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                             _ length: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("aimet_model_adaround_report_json") {
        let text = try withModel(model) { h -> String in
            guard let last = h.adaRound else { return #"{"layers":[],"encodings":null}"# }
            return #"{"layers":"# + JSON.array(last.report.map(\.json)).text() + #","encodings":"#
                + (try last.encodings.jsonText()) + "}"
        }
        try fillText(text, buffer, capacity, length)
    }
}

@_cdecl("aimet_model_clone")
public func aimet_model_clone(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_model_clone") {
        guard let out else { throw nullError("out") }
        let copy = try withModel(model) { $0.model }
        out.pointee = ModelHandle(copy).opaque
    }
}
