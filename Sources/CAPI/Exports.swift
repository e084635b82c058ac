import AimetCore
import CAimetABI

// The exported C functions, one per header declaration, in header order.
// Each body: read (copy + validate) everything, call the core, write back.

// MARK: - Library

@_cdecl("aimet_abi_version")
public func aimet_abi_version() -> UInt32 { UInt32(AIMET_ABI_VERSION) }

@_cdecl("aimet_status_string")
public func aimet_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    UnsafeRawPointer(statusText(status).utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("aimet_last_error")
public func aimet_last_error() -> UnsafePointer<CChar> { lastErrorPointer() }

// MARK: - Batch-norm folding

@_cdecl("aimet_bn_fold_check")
public func aimet_bn_fold_check(_ layer: UnsafePointer<aimet_layer_t>?, _ bn: UnsafePointer<aimet_batchnorm_t>?,
                                _ position: Int32, _ foldable: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("aimet_bn_fold_check") {
        guard let foldable else { throw nullError("foldable") }
        let where_ = try bnPosition(position)
        let ok = try BatchNormFold.check(readLayer(layer, "layer"), readBatchNorm(bn), where_)
        foldable.pointee = ok ? 1 : 0
    }
}

@_cdecl("aimet_bn_fold")
public func aimet_bn_fold(_ layer: UnsafeMutablePointer<aimet_layer_t>?, _ bn: UnsafePointer<aimet_batchnorm_t>?,
                          _ position: Int32) -> Int32 {
    guarded("aimet_bn_fold") {
        let where_ = try bnPosition(position)
        var target = try readLayer(layer, "layer")
        guard target.bias != nil else {
            throw AimetError(.nullPointer, "\(target.name): bias is NULL; folding writes a bias, so pass a buffer of \(target.outChannels) floats (zeros for a layer that had none)")
        }
        try BatchNormFold.fold(readBatchNorm(bn), into: &target, position: where_)
        writeLayer(target, to: layer!)
    }
}

// MARK: - Cross-layer scaling

@_cdecl("aimet_cls_scale_set")
public func aimet_cls_scale_set(_ layers: UnsafePointer<UnsafeMutablePointer<aimet_layer_t>?>?, _ count: Int32,
                                _ scales: UnsafeMutablePointer<Float>?, _ scalesLen: Int64) -> Int32 {
    guarded("aimet_cls_scale_set") {
        guard let layers else { throw nullError("layers") }
        guard count == 2 || count == 3 else {
            throw AimetError(.invalidArgument, "a CLS set has 2 layers (pair) or 3 (conv, depthwise, conv), got \(count)")
        }
        guard let scales else { throw nullError("scales") }
        let pointers = (0..<Int(count)).map { layers[$0] }
        let set = try pointers.enumerated().map { try readLayer($1, "layer \($0)") }
        for i in 0..<set.count {
            for j in (i + 1)..<set.count where pointers[i]?.pointee.weight == pointers[j]?.pointee.weight {
                throw AimetError(.invalidArgument, "layers \(i) and \(j) of the CLS set share one weight buffer; a set names distinct layers")
            }
        }
        let channels = set[0].outChannels
        let needed = Int64(count == 2 ? channels : 2 * channels)
        guard scalesLen == needed else {
            throw AimetError(.shapeMismatch, "scales holds \(scalesLen) floats; this set needs \(needed) (\(count == 2 ? "C" : "2*C") for C = \(channels) channels between)")
        }
        var scaled = set
        let factors = try CrossLayerScaling.scaleSet(&scaled).flatMap { $0 }
        for (layer, pointer) in zip(scaled, pointers) { writeLayer(layer, to: pointer!) }
        factors.withUnsafeBufferPointer { scales.update(from: $0.baseAddress!, count: $0.count) }
    }
}

// MARK: - High-bias fold

@_cdecl("aimet_hbf_fold_pair")
public func aimet_hbf_fold_pair(_ layer1: UnsafeMutablePointer<aimet_layer_t>?, _ layer2: UnsafeMutablePointer<aimet_layer_t>?,
                                _ bn: UnsafePointer<aimet_batchnorm_t>?, _ scale: UnsafePointer<Float>?,
                                _ scaleLen: Int64, _ reluBetween: Int32, _ applied: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("aimet_hbf_fold_pair") {
        guard let applied else { throw nullError("applied") }
        var first = try readLayer(layer1, "layer1")
        var second = try readLayer(layer2, "layer2")
        if layer1?.pointee.weight == layer2?.pointee.weight {
            throw AimetError(.invalidArgument, "layer1 and layer2 share one weight buffer; a pair names two layers")
        }
        let params = try readBatchNorm(bn, needsStatistics: false)
        let factors = try readFloats(scale, count: scaleLen, what: "scale")
        let done = try HighBiasFold.foldPair(&first, &second, bnGamma: params.gamma, bnBeta: params.beta,
                                             scale: factors, reluBetween: reluBetween != 0)
        if done {
            writeLayer(first, to: layer1!)
            writeLayer(second, to: layer2!)
        }
        applied.pointee = done ? 1 : 0
    }
}
