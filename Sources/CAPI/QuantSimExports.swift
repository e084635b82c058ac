import AimetCore
import CAimetABI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// AIMET's QuantizationSimModel over a model handle, in header order.

/// What an `aimet_quantsim_t *` points to.
final class QuantSimHandle: Handle {
    override class var kind: String { "quantsim" }
    let sim: QuantSim
    init(_ sim: QuantSim) {
        self.sim = sim
        super.init()
    }
}

func withSim<R>(_ pointer: OpaquePointer?, _ body: (QuantSim) throws -> R) throws -> R {
    let handle = try QuantSimHandle.from(pointer)
    return try handle.exclusive { try body(handle.sim) }
}

@_cdecl("aimet_quantsim_create")
public func aimet_quantsim_create(_ model: OpaquePointer?, _ options: UnsafePointer<aimet_quantsim_options_t>?,
                                  _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_quantsim_create") {
        guard let out else { throw nullError("out") }
        guard let o = options?.pointee else { throw nullError("options") }
        var settings = QuantSim.Options()
        switch aimet_quant_scheme(rawValue: UInt32(bitPattern: o.quant_scheme)) {
        case AIMET_QUANT_SCHEME_TF: settings.scheme = .postTrainingTF
        case AIMET_QUANT_SCHEME_TF_ENHANCED: settings.scheme = .postTrainingTFEnhanced
        default: throw AimetError(.invalidArgument, "quant_scheme must be AIMET_QUANT_SCHEME_TF (1) or _TF_ENHANCED (2), got \(o.quant_scheme)")
        }
        settings.paramBitwidth = Int(o.param_bitwidth)
        settings.activationBitwidth = Int(o.activation_bitwidth)
        switch o.per_channel {
        case -1: settings.perChannel = nil
        case 0, 1: settings.perChannel = o.per_channel == 1
        default: throw AimetError(.invalidArgument, "per_channel must be -1, 0 or 1, got \(o.per_channel)")
        }
        if let text = o.config_json {
            settings.config = try QuantSimConfig(json: Data(String(cString: text).utf8))
        }
        let snapshot = try withModel(model) { $0.model }
        out.pointee = QuantSimHandle(try QuantSim(model: snapshot, options: settings)).opaque
    }
}

@_cdecl("aimet_quantsim_free")
public func aimet_quantsim_free(_ sim: OpaquePointer?) -> Int32 { QuantSimHandle.release(sim) }

@_cdecl("aimet_quantsim_begin_calibration")
public func aimet_quantsim_begin_calibration(_ sim: OpaquePointer?) -> Int32 {
    guarded("aimet_quantsim_begin_calibration") { try withSim(sim) { $0.beginCalibration() } }
}

@_cdecl("aimet_quantsim_end_calibration")
public func aimet_quantsim_end_calibration(_ sim: OpaquePointer?) -> Int32 {
    guarded("aimet_quantsim_end_calibration") { try withSim(sim) { try $0.endCalibration() } }
}

@_cdecl("aimet_quantsim_run")
public func aimet_quantsim_run(_ sim: OpaquePointer?, _ inputs: UnsafePointer<aimet_tensor_t>?, _ numInputs: Int32,
                               _ capture: UnsafePointer<UnsafePointer<CChar>?>?, _ numCapture: Int32,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_quantsim_run") {
        guard let out else { throw nullError("out") }
        let values = try readValues(inputs, numInputs)
        let wanted = try stringArray(capture, numCapture, "capture")
        let results = try withSim(sim) { s in
            try runCapturing(s.model.graph, wanted) { names in try s.run(values: values, capture: names) }
        }
        out.pointee = ResultsHandle(results).opaque
    }
}

@_cdecl("aimet_quantsim_load_param_encodings")
public func aimet_quantsim_load_param_encodings(_ sim: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ freeze: Int32) -> Int32 {
    guarded("aimet_quantsim_load_param_encodings") {
        let file = try EncodingsFile(contentsOf: requiredString(path, "path"))
        try withSim(sim) { try $0.setParamEncodings(file, freeze: freeze != 0) }
    }
}

@_cdecl("aimet_quantsim_save_encodings")
public func aimet_quantsim_save_encodings(_ sim: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("aimet_quantsim_save_encodings") {
        let target = try requiredString(path, "path")
        try withSim(sim) { try $0.encodingsFile().write(to: target) }
    }
}

@_cdecl("aimet_quantsim_encodings_json")
public func aimet_quantsim_encodings_json(_ sim: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                          _ length: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("aimet_quantsim_encodings_json") {
        let text = try withSim(sim) { try $0.encodingsFile().jsonText() }
        try fillText(text, buffer, capacity, length)
    }
}
