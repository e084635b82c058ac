import AimetCore
import CAimetABI

// Running models: the C half of `aimet_model_run` and the results accessors.

@_cdecl("aimet_model_run")
public func aimet_model_run(_ model: OpaquePointer?, _ inputs: UnsafePointer<aimet_tensor_t>?, _ numInputs: Int32,
                            _ capture: UnsafePointer<UnsafePointer<CChar>?>?, _ numCapture: Int32,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded("aimet_model_run") {
        guard let out else { throw nullError("out") }
        let values = try readValues(inputs, numInputs)
        let wanted = try stringArray(capture, numCapture, "capture")
        let results = try withModel(model) { h in
            let executor = try h.executor()
            return try runCapturing(h.model.graph, wanted) { names in try executor.run(values: values, hook: nil, capture: names) }
        }
        out.pointee = ResultsHandle(results).opaque
    }
}

/// Runs `run` (an executor or a simulation, given the names to capture),
/// returning the graph outputs and then the `capture`d values, in order.
func runCapturing(_ graph: Graph, _ capture: [String],
                  _ run: (Set<String>) throws -> (outputs: [String: Value], captured: [String: Value])) throws -> [(String, Value)] {
    let known = Set(graph.inputs.map(\.name)).union(graph.nodes.flatMap(\.outputs))
    for name in capture where !known.contains(name) {
        throw AimetError(.unknownName, "cannot capture '\(name)': no input or node output has that name")
    }
    let (outputs, captured) = try run(Set(capture))
    var results: [(String, Value)] = []
    for output in graph.outputs {
        guard let value = outputs[output.name] else { throw AimetError(.internalError, "output '\(output.name)' was not computed") }
        results.append((output.name, value))
    }
    for name in capture {
        guard let value = captured[name] else { throw AimetError(.internalError, "'\(name)' was not captured") }
        results.append((name, value))
    }
    return results
}

@_cdecl("aimet_results_count")
public func aimet_results_count(_ results: OpaquePointer?, _ count: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("aimet_results_count") {
        guard let count else { throw nullError("count") }
        count.pointee = Int32(try ResultsHandle.from(results).tensors.count)
    }
}

@_cdecl("aimet_results_get")
public func aimet_results_get(_ results: OpaquePointer?, _ index: Int32, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                              _ data: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                              _ shape: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
                              _ ndim: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded("aimet_results_get") { try ResultsHandle.from(results).get(index, name, data, shape, ndim) }
}

@_cdecl("aimet_results_get_data")
public func aimet_results_get_data(_ results: OpaquePointer?, _ index: Int32, _ dtype: UnsafeMutablePointer<Int32>?,
                                   _ data: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int32 {
    guarded("aimet_results_get_data") { try ResultsHandle.from(results).getData(index, dtype, data) }
}

@_cdecl("aimet_results_free")
public func aimet_results_free(_ results: OpaquePointer?) -> Int32 {
    ResultsHandle.release(results)
}
