import AimetCore
import CAimetABI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The model-handle half of the C ABI, in header order.

// MARK: - Lifetime

@_cdecl("aimet_model_load_onnx")
public func aimet_model_load_onnx(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_model_load_onnx") {
        guard let out else { throw nullError("out") }
        let model = try Model.load(onnxFile: requiredString(path, "path"))
        out.pointee = ModelHandle(model).opaque
    }
}

@_cdecl("aimet_model_load_onnx_bytes")
public func aimet_model_load_onnx_bytes(_ data: UnsafeRawPointer?, _ size: Int64,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_model_load_onnx_bytes") {
        guard let out else { throw nullError("out") }
        guard let data else { throw nullError("data") }
        guard size >= 0 else { throw AimetError(.invalidArgument, "size \(size) is negative") }
        let model = try Model(onnxData: Data(bytes: data, count: Int(size)))
        out.pointee = ModelHandle(model).opaque
    }
}

@_cdecl("aimet_model_save_onnx")
public func aimet_model_save_onnx(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded("aimet_model_save_onnx") {
        let target = try requiredString(path, "path")
        try withModel(model) { try $0.model.save(onnxFile: target) }
    }
}

@_cdecl("aimet_model_create")
public func aimet_model_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_model_create") {
        guard let out else { throw nullError("out") }
        out.pointee = ModelHandle(Model(graph: Graph())).opaque
    }
}

@_cdecl("aimet_model_free")
public func aimet_model_free(_ model: OpaquePointer?) -> Int32 { ModelHandle.release(model) }

// MARK: - Building

@_cdecl("aimet_model_add_input")
public func aimet_model_add_input(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                  _ shape: UnsafePointer<Int64>?, _ ndim: Int32) -> Int32 {
    guarded("aimet_model_add_input") {
        let value = try requiredString(name, "name")
        let dims = try int64Array(shape, ndim, "shape")
        try withModel(model) { h in
            guard !h.model.graph.inputs.contains(where: { $0.name == value }) else {
                throw AimetError(.invalidArgument, "the model already has an input named '\(value)'")
            }
            h.model.graph.inputs.append(ValueInfo(name: value, shape: dims))
        }
    }
}

@_cdecl("aimet_model_add_output")
public func aimet_model_add_output(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> Int32 {
    guarded("aimet_model_add_output") {
        let value = try requiredString(name, "name")
        try withModel(model) { $0.model.graph.outputs.append(ValueInfo(name: value, shape: nil)) }
    }
}

@_cdecl("aimet_model_add_node")
public func aimet_model_add_node(_ model: OpaquePointer?, _ opType: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?,
                                 _ inputs: UnsafePointer<UnsafePointer<CChar>?>?, _ numInputs: Int32,
                                 _ outputs: UnsafePointer<UnsafePointer<CChar>?>?, _ numOutputs: Int32) -> Int32 {
    guarded("aimet_model_add_node") {
        let op = try requiredString(opType, "op_type")
        let nodeName = try requiredString(name, "name")
        let ins = try stringArray(inputs, numInputs, "inputs")
        let outs = try stringArray(outputs, numOutputs, "outputs")
        guard !op.isEmpty, !nodeName.isEmpty, !outs.isEmpty else {
            throw AimetError(.invalidArgument, "a node needs an op type, a name and at least one output")
        }
        try withModel(model) { h in
            guard h.model.graph.nodeIndex(named: nodeName) == nil else {
                throw AimetError(.invalidArgument, "the model already has a node named '\(nodeName)'")
            }
            h.model.graph.nodes.append(Node(name: nodeName, op: Op(onnxType: op), inputs: ins, outputs: outs))
        }
    }
}

private func setAttribute(_ function: String, _ model: OpaquePointer?, _ node: UnsafePointer<CChar>?,
                          _ attr: UnsafePointer<CChar>?, _ value: () throws -> Attribute) -> Int32 {
    guarded(function) {
        let nodeName = try requiredString(node, "node")
        let key = try requiredString(attr, "attr")
        let attribute = try value()
        try withModel(model) { h in
            guard let i = h.model.graph.nodeIndex(named: nodeName) else {
                throw AimetError(.unknownName, "no node named '\(nodeName)'")
            }
            h.model.graph.nodes[i].attributes[key] = attribute
        }
    }
}

@_cdecl("aimet_model_set_attr_int")
public func aimet_model_set_attr_int(_ model: OpaquePointer?, _ node: UnsafePointer<CChar>?,
                                     _ attr: UnsafePointer<CChar>?, _ value: Int64) -> Int32 {
    setAttribute("aimet_model_set_attr_int", model, node, attr) { .int(Int(value)) }
}

@_cdecl("aimet_model_set_attr_ints")
public func aimet_model_set_attr_ints(_ model: OpaquePointer?, _ node: UnsafePointer<CChar>?, _ attr: UnsafePointer<CChar>?,
                                      _ values: UnsafePointer<Int64>?, _ count: Int32) -> Int32 {
    setAttribute("aimet_model_set_attr_ints", model, node, attr) { .ints(try int64Array(values, count, "values")) }
}

@_cdecl("aimet_model_set_attr_float")
public func aimet_model_set_attr_float(_ model: OpaquePointer?, _ node: UnsafePointer<CChar>?,
                                       _ attr: UnsafePointer<CChar>?, _ value: Float) -> Int32 {
    setAttribute("aimet_model_set_attr_float", model, node, attr) { .float(value) }
}

// MARK: - Parameters

@_cdecl("aimet_model_set_param")
public func aimet_model_set_param(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ data: UnsafePointer<Float>?,
                                  _ shape: UnsafePointer<Int64>?, _ ndim: Int32) -> Int32 {
    guarded("aimet_model_set_param") {
        let key = try requiredString(name, "name")
        let dims = try int64Array(shape, ndim, "shape")
        guard dims.allSatisfy({ $0 >= 0 }) else { throw AimetError(.shapeMismatch, "'\(key)': negative dimension in \(dims)") }
        // Overflow-checked at every step: a later 0 must not hide an overflow,
        // which Tensor's own element count would trap on.
        var count = 1
        for d in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 40 else {
                throw AimetError(.invalidArgument, "'\(key)': shape \(dims) is too large")
            }
            count = product
        }
        // Writing an unchanged value keeps the compiled executor; checked in place,
        // without a copy (`model(x)` writes every weight before each run).
        guard try !withModel(model, { h in h.model.graph.params[key]?.holds(data, dims) ?? false }) else { return }
        let values = try readFloats(data, count: Int64(count), what: "'\(key)' data")
        if let i = values.firstNonFinite { throw AimetError(.numeric, "'\(key)' is not finite at flat index \(i) (\(values[i]))") }
        let tensor = try Tensor(shape: dims, data: values)
        try withModel(model) { h in h.model.graph.params[key] = tensor }
    }
}

@_cdecl("aimet_model_param_shape")
public func aimet_model_param_shape(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ shape: UnsafeMutablePointer<Int64>?,
                                    _ capacity: Int32, _ ndim: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("aimet_model_param_shape") {
        let key = try requiredString(name, "name")
        guard let ndim else { throw nullError("ndim") }
        try withModel(model) { h in
            guard let tensor = h.model.graph.params[key] else { throw AimetError(.unknownName, "no parameter named '\(key)'") }
            ndim.pointee = Int32(tensor.rank)
            guard let shape else { return }
            for (k, d) in tensor.shape.prefix(Int(max(0, capacity))).enumerated() { shape[k] = Int64(d) }
        }
    }
}

@_cdecl("aimet_model_get_param")
public func aimet_model_get_param(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                  _ data: UnsafeMutablePointer<Float>?, _ count: Int64) -> Int32 {
    guarded("aimet_model_get_param") {
        let key = try requiredString(name, "name")
        guard let data else { throw nullError("data") }
        try withModel(model) { h in
            guard let tensor = h.model.graph.params[key] else { throw AimetError(.unknownName, "no parameter named '\(key)'") }
            guard Int64(tensor.count) == count else {
                throw AimetError(.shapeMismatch, "'\(key)' has \(tensor.count) elements (shape \(tensor.shape)), the buffer \(count)")
            }
            tensor.data.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: tensor.count) }
        }
    }
}

// MARK: - Transforms

@_cdecl("aimet_model_equalize")
public func aimet_model_equalize(_ model: OpaquePointer?, _ flags: Int32,
                                 _ starts: UnsafePointer<UnsafePointer<CChar>?>?, _ numStarts: Int32,
                                 _ outputs: UnsafePointer<UnsafePointer<CChar>?>?, _ numOutputs: Int32) -> Int32 {
    guarded("aimet_model_equalize") {
        let known: Int32 = 1 | 2 | 4 | 8
        guard flags & ~known == 0 else { throw AimetError(.invalidArgument, "unknown flag bits \(flags & ~known)") }
        var options = Equalize.Options()
        options.replaceRelu6 = flags & Int32(AIMET_EQUALIZE_KEEP_RELU6.rawValue) == 0
        options.foldBatchNorms = flags & Int32(AIMET_EQUALIZE_NO_BN_FOLD.rawValue) == 0
        options.scale = flags & Int32(AIMET_EQUALIZE_NO_SCALE.rawValue) == 0
        options.highBiasFold = flags & Int32(AIMET_EQUALIZE_NO_HIGH_BIAS_FOLD.rawValue) == 0
        let startNames = try stringArray(starts, numStarts, "start_names")
        let outputNames = try stringArray(outputs, numOutputs, "output_names")
        try withModel(model) { h in
            h.report = try Equalize.run(&h.model, options: options, starts: startNames.isEmpty ? nil : startNames,
                                        outputs: outputNames.isEmpty ? nil : outputNames)
        }
    }
}

@_cdecl("aimet_model_fold_batch_norms")
public func aimet_model_fold_batch_norms(_ model: OpaquePointer?, _ layers: UnsafePointer<UnsafePointer<CChar>?>?,
                                         _ batchnorms: UnsafePointer<UnsafePointer<CChar>?>?,
                                         _ positions: UnsafePointer<Int32>?, _ count: Int32) -> Int32 {
    guarded("aimet_model_fold_batch_norms") {
        let layerNames = try stringArray(layers, count, "layers")
        let bnNames = try stringArray(batchnorms, count, "batchnorms")
        guard count == 0 || positions != nil else { throw nullError("positions") }
        let where_ = try (0..<Int(count)).map { try bnPosition(positions![$0]) }
        try withModel(model) { h in
            let folded = try h.model.transact { m in
                try BatchNormFold.fold(Array(zip(layerNames, zip(bnNames, where_)).map { ($0, $1.0, $1.1) }), in: &m.graph)
            }
            h.report = EqualizeReport(folded: folded)
        }
    }
}

@_cdecl("aimet_model_replace_relu6")
public func aimet_model_replace_relu6(_ model: OpaquePointer?, _ names: UnsafePointer<UnsafePointer<CChar>?>?,
                                      _ count: Int32) -> Int32 {
    guarded("aimet_model_replace_relu6") {
        let wanted = names == nil ? nil : try stringArray(names, count, "names")
        try withModel(model) { h in
            let graph = h.model.graph
            var region: Set<Int>?
            if let wanted {
                region = []
                for name in wanted {
                    guard let i = graph.nodeIndex(named: name) else { throw AimetError(.unknownName, "no node named '\(name)'") }
                    region!.insert(i)
                }
            }
            let replaced = ReluSixReplacement.apply(&h.model.graph, region: region)
            h.report = EqualizeReport(relu6Replaced: replaced)
        }
    }
}

// MARK: - Reports

@_cdecl("aimet_model_report_counts")
public func aimet_model_report_counts(_ model: OpaquePointer?, _ folded: UnsafeMutablePointer<Int32>?,
                                      _ relu6: UnsafeMutablePointer<Int32>?, _ clsSets: UnsafeMutablePointer<Int32>?,
                                      _ highBias: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("aimet_model_report_counts") {
        try withModel(model) { h in
            folded?.pointee = Int32(h.report.folded.count)
            relu6?.pointee = Int32(h.report.relu6Replaced.count)
            clsSets?.pointee = Int32(h.report.clsSets.count)
            highBias?.pointee = Int32(h.report.highBiasFolded)
        }
    }
}

@_cdecl("aimet_model_report_scales")
public func aimet_model_report_scales(_ model: OpaquePointer?, _ set: Int32, _ pair: Int32,
                                      _ scales: UnsafeMutablePointer<Float>?, _ capacity: Int64,
                                      _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("aimet_model_report_scales") {
        guard let count else { throw nullError("count") }
        let factors = try withModel(model) { h -> [Float] in
            guard set >= 0, Int(set) < h.report.clsSets.count else {
                throw AimetError(.invalidArgument, "set \(set) is out of range: the report has \(h.report.clsSets.count) CLS sets")
            }
            let entry = h.report.clsSets[Int(set)]
            guard pair >= 0, Int(pair) < entry.scales.count else {
                throw AimetError(.invalidArgument, "pair \(pair) is out of range: set \(set) has \(entry.scales.count) pair(s)")
            }
            return entry.scales[Int(pair)]
        }
        count.pointee = Int64(factors.count)
        guard let scales, capacity >= Int64(factors.count) else { return }
        factors.withUnsafeBufferPointer { scales.update(from: $0.baseAddress!, count: $0.count) }
    }
}

@_cdecl("aimet_model_report_json")
public func aimet_model_report_json(_ model: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                    _ length: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("aimet_model_report_json") {
        let text = try withModel(model) { $0.report.json(graph: $0.model.graph, scales: false).text() }
        try fillText(text, buffer, capacity, length)
    }
}

@_cdecl("aimet_model_describe_json")
public func aimet_model_describe_json(_ model: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                      _ length: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded("aimet_model_describe_json") {
        let text = try withModel(model) { $0.model.graph.describeJSON.text() }
        try fillText(text, buffer, capacity, length)
    }
}
